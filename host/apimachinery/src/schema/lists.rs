//! Validation of what a schema says beyond a node's own value: nested embedded resources
//! (`x-kubernetes-embedded-resource`, ObjectMeta checks) and `x-kubernetes-list-type` uniqueness
//! (`set` and `map` lists), as kube-apiserver's `objectmeta.Validate` and
//! `listtype.ValidateListSetsAndMaps` do.

use super::*;

// --- embedded resources (objectmeta.Validate) ---------------------------------------------------

/// Walks an object for nested `x-kubernetes-embedded-resource` nodes. The root is never one here.
pub(super) fn embedded_in_object(
    s: &Value,
    map: &Map<String, Value>,
    path: &str,
    root: bool,
    out: &mut Vec<FieldError>,
) {
    if !root && flag(s, "x-kubernetes-embedded-resource") {
        embedded_resource(map, path, out);
    }
    let props = properties(s);
    for k in sorted_keys(map) {
        if root && META_FIELDS.contains(&k.as_str()) {
            continue;
        }
        let v = &map[k.as_str()];
        if let Some(p) = props.and_then(|p| p.get(k.as_str())) {
            embedded_in_value(p, v, &path_child(path, k), out);
        } else if let Some(a) = additional_schema(s) {
            embedded_in_value(a, v, &path_key(path, k), out);
        }
    }
}

fn embedded_in_value(s: &Value, v: &Value, path: &str, out: &mut Vec<FieldError>) {
    match v {
        Value::Object(map) => embedded_in_object(s, map, path, false, out),
        Value::Array(items) => {
            if let Some(item) = items_schema(s) {
                for (i, v) in items.iter().enumerate() {
                    embedded_in_value(item, v, &path_index(path, i), out);
                }
            }
        }
        _ => {}
    }
}

/// `validateEmbeddedResource`: `apiVersion` and `kind` are required non-empty strings. The embedded
/// `metadata` is not validated as ObjectMeta here.
fn embedded_resource(map: &Map<String, Value>, path: &str, out: &mut Vec<FieldError>) {
    for field in ["apiVersion", "kind"] {
        if !map.contains_key(field) {
            out.push(error(
                FieldErrorKind::Required,
                path_child(path, field),
                None,
                "must not be empty".into(),
            ));
        }
    }
    for k in sorted_keys(map) {
        let v = &map[k.as_str()];
        let field = path_child(path, k);
        let invalid =
            |value: Value, detail: String| error(FieldErrorKind::Invalid, field.clone(), Some(value), detail);
        match (k.as_str(), v) {
            ("apiVersion" | "kind", Value::String(s)) if s.is_empty() => {
                out.push(invalid(v.clone(), "must not be empty".into()));
            }
            ("apiVersion", Value::String(s)) if s != "/" && s.matches('/').count() > 1 => {
                out.push(invalid(v.clone(), format!("unexpected GroupVersion string: {s}")));
            }
            ("apiVersion" | "kind", Value::String(_)) => {}
            ("apiVersion" | "kind", _) => out.push(invalid(v.clone(), "must be a string".into())),
            _ => {}
        }
    }
}

// --- x-kubernetes-list-type (listtype.ValidateListSetsAndMaps) ----------------------------------

pub(super) fn list_sets_and_maps(s: &Value, map: &Map<String, Value>, path: &str, out: &mut Vec<FieldError>) {
    if let Some(a) = additional_schema(s) {
        for k in sorted_keys(map) {
            list_sets_and_maps_value(a, &map[k.as_str()], &path_key(path, k), out);
        }
    }
    if let Some(props) = properties(s) {
        for k in sorted_keys(map) {
            if let Some(p) = props.get(k.as_str()) {
                list_sets_and_maps_value(p, &map[k.as_str()], &path_child(path, k), out);
            }
        }
    }
}

fn list_sets_and_maps_value(s: &Value, v: &Value, path: &str, out: &mut Vec<FieldError>) {
    match v {
        Value::Array(items) => {
            match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("set") => {
                    let keys: Vec<SetKey> = items.iter().map(SetKey::of).collect();
                    for i in non_unique(&keys) {
                        out.push(error(
                            FieldErrorKind::Duplicate,
                            path_index(path, i),
                            Some(items[i].clone()),
                            String::new(),
                        ));
                    }
                }
                Some("map") => list_map(s, items, path, out),
                _ => {}
            }
            if let Some(item) = items_schema(s) {
                for (i, v) in items.iter().enumerate() {
                    list_sets_and_maps_value(item, v, &path_index(path, i), out);
                }
            }
        }
        Value::Object(map) => list_sets_and_maps(s, map, path, out),
        _ => {}
    }
}

/// How Go compares set items: scalars by type and value (int64 1 differs from float64 1), compounds by
/// their JSON encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum SetKey {
    Unspecified,
    Null,
    Bool(bool),
    Int(i64),
    Float(u64),
    Str(String),
    Compound(String),
}

impl SetKey {
    fn of(v: &Value) -> SetKey {
        match v {
            Value::Null => SetKey::Null,
            Value::Bool(b) => SetKey::Bool(*b),
            Value::Number(n) => match num(n) {
                Num::Int(i) => SetKey::Int(i),
                // -0.0 == 0.0 as a Go map key.
                Num::Float(f) => SetKey::Float(if f == 0.0 { 0 } else { f.to_bits() }),
            },
            Value::String(s) => SetKey::Str(s.clone()),
            Value::Array(_) | Value::Object(_) => SetKey::Compound(go_json(v)),
        }
    }
}

/// `validateListSet`: the index of each value's *second* appearance.
fn non_unique(keys: &[SetKey]) -> Vec<usize> {
    let mut seen: HashMap<&SetKey, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let times = seen.entry(k).or_insert(0);
        *times += 1;
        if *times == 2 {
            out.push(i);
        }
    }
    out
}

/// `validateListMap`.
fn list_map(s: &Value, items: &[Value], path: &str, out: &mut Vec<FieldError>) {
    if let Some(i) = items.iter().position(|x| !x.is_null() && !x.is_object()) {
        out.push(error(
            FieldErrorKind::Invalid,
            path_index(path, i),
            Some(items[i].clone()),
            "must be an object for an array of list-type map".into(),
        ));
        return;
    }
    if items.len() <= 1 {
        return;
    }
    let key_fields: Vec<&str> = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if let [key_field] = key_fields.as_slice() {
        let values: Vec<Option<&Value>> = items.iter().map(|x| x.get(*key_field)).collect();
        let keys: Vec<SetKey> = values
            .iter()
            .map(|v| v.map_or(SetKey::Unspecified, SetKey::of))
            .collect();
        for i in non_unique(&keys) {
            let mut shown = Map::new();
            if let Some(v) = values[i] {
                shown.insert(key_field.to_string(), v.clone());
            }
            out.push(error(
                FieldErrorKind::Duplicate,
                path_index(path, i),
                Some(Value::Object(shown)),
                String::new(),
            ));
        }
        return;
    }
    let key_maps: Vec<Value> = items
        .iter()
        .map(|x| {
            let mut key = Map::new();
            for f in &key_fields {
                if let Some(v) = x.get(*f) {
                    key.insert(f.to_string(), v.clone());
                }
            }
            Value::Object(key)
        })
        .collect();
    let keys: Vec<SetKey> = key_maps.iter().map(SetKey::of).collect();
    for i in non_unique(&keys) {
        out.push(error(
            FieldErrorKind::Duplicate,
            path_index(path, i),
            Some(key_maps[i].clone()),
            String::new(),
        ));
    }
}
