//! Pruning (fields the schema does not know, non-nullable `null`s), structural defaulting, and the
//! list/map structure server-side apply reads from a schema ([`SchemaStructure`]).

use super::*;

// ---------------------------------------------------------------------------------------------
// Pruning and defaulting
// ---------------------------------------------------------------------------------------------

/// Structural pruning as the server's decoder does it: removes every field the schema does not specify,
/// except under `x-kubernetes-preserve-unknown-fields: true` and except `apiVersion`/`kind` (strings) and
/// `metadata` (an object) at the root and in embedded resources; then removes non-nullable `null`s
/// that have no `default` (`PruneNonNullableNullsWithoutDefaults`). Returns the removed unknown
/// fields, sorted, as the server prints them (`spec.bogus`, `spec.items[0].x`); `metadata` contents
/// are the server's business. `additionalProperties: true` keeps its values as they are.
pub fn prune(schema: &Value, object: &mut Value) -> Vec<String> {
    let mut unknown = Vec::new();
    prune_value(object, Some(schema), true, "", &mut unknown);
    prune_nulls(object, Some(schema));
    unknown.sort();
    unknown
}

fn prune_value(x: &mut Value, s: Option<&Value>, root: bool, path: &str, unknown: &mut Vec<String>) {
    if let Some(s) = s
        && flag(s, "x-kubernetes-preserve-unknown-fields")
    {
        skip_prune(x, s, root, path, unknown);
        return;
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                unknown.extend(map.keys().map(|k| path_child(path, k)));
                map.clear();
                return;
            };
            let embedded = root || flag(s, "x-kubernetes-embedded-resource");
            let props = properties(s);
            let additional = s.get("additionalProperties");
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                let Some(v) = map.get_mut(&k) else { continue };
                if embedded {
                    match (k.as_str(), &*v) {
                        ("apiVersion" | "kind", Value::String(_)) | ("metadata", Value::Object(_)) => {
                            continue;
                        }
                        _ => {}
                    }
                }
                if let Some(p) = props.and_then(|p| p.get(&k)) {
                    prune_value(v, Some(p), false, &path_child(path, &k), unknown);
                } else if let Some(a @ Value::Object(_)) = additional {
                    prune_value(v, Some(a), false, &path_child(path, &k), unknown);
                } else if additional == Some(&Value::Bool(true)) {
                    // kept as is: the schema allows anything there
                } else {
                    if !(META_FIELDS.contains(&k.as_str()) && path.is_empty()) {
                        unknown.push(path_child(path, &k));
                    }
                    map.remove(&k);
                }
            }
        }
        Value::Array(items) => {
            let item = s.and_then(items_schema);
            for (i, v) in items.iter_mut().enumerate() {
                prune_value(v, item, false, &path_index(path, i), unknown);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`: unknown fields stay, known ones are still pruned.
fn skip_prune(x: &mut Value, s: &Value, root: bool, path: &str, unknown: &mut Vec<String>) {
    match x {
        Value::Object(map) => {
            let embedded = root || flag(s, "x-kubernetes-embedded-resource");
            let props = properties(s);
            for (k, v) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    prune_value(v, Some(p), false, &path_child(path, k), unknown);
                } else if let Some(a) = additional_schema(s) {
                    prune_value(v, Some(a), false, &path_child(path, k), unknown);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = items_schema(s) {
                for (i, v) in items.iter_mut().enumerate() {
                    skip_prune(v, item, false, &path_index(path, i), unknown);
                }
            }
        }
        _ => {}
    }
}

/// The schema of a field: its property, or `additionalProperties`.
fn schema_for_field<'a>(s: Option<&'a Value>, field: &str) -> Option<&'a Value> {
    let s = s?;
    properties(s)
        .and_then(|p| p.get(field))
        .or_else(|| additional_schema(s))
}

/// `PruneNonNullableNullsWithoutDefaults`.
fn prune_nulls(x: &mut Value, s: Option<&Value>) {
    match x {
        Value::Object(map) => {
            map.retain(|k, v| {
                let sch = schema_for_field(s, k);
                !(v.is_null() && sch.is_some_and(|sch| !nullable(sch) && default_of(sch).is_none()))
            });
            for (k, v) in map.iter_mut() {
                prune_nulls(v, schema_for_field(s, k));
            }
        }
        Value::Array(items) => {
            let item = s.and_then(items_schema);
            for v in items {
                prune_nulls(v, item);
            }
        }
        _ => {}
    }
}

/// Structural defaulting (`defaulting.Default`): a property's `default` fills it when missing or a
/// non-nullable `null`; list items and `additionalProperties` values that are non-nullable `null`s get
/// their schema's default. Parents are never created.
pub fn apply_defaults(schema: &Value, object: &mut Value) {
    match object {
        Value::Object(map) => {
            let props = properties(schema);
            if let Some(props) = props {
                for (k, prop) in props {
                    let Some(default) = default_of(prop) else { continue };
                    match map.get(k) {
                        None => {
                            map.insert(k.clone(), default.clone());
                        }
                        Some(Value::Null) if !nullable(prop) => {
                            map.insert(k.clone(), default.clone());
                        }
                        Some(_) => {}
                    }
                }
            }
            let additional = additional_schema(schema);
            for (k, v) in map.iter_mut() {
                if let Some(p) = props.and_then(|p| p.get(k)) {
                    apply_defaults(p, v);
                } else if let Some(a) = additional {
                    if v.is_null()
                        && !nullable(a)
                        && let Some(d) = default_of(a)
                    {
                        *v = d.clone();
                    }
                    apply_defaults(a, v);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item) = items_schema(schema) {
                for v in items {
                    if v.is_null()
                        && !nullable(item)
                        && let Some(d) = default_of(item)
                    {
                        *v = d.clone();
                    }
                    apply_defaults(item, v);
                }
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// Structure for server-side apply
// ---------------------------------------------------------------------------------------------

/// The [`Structure`] of a custom resource, read from its `openAPIV3Schema`: `x-kubernetes-list-type`
/// (`atomic`, `set`, `map` with `x-kubernetes-list-map-keys`; none means atomic) and
/// `x-kubernetes-map-type: atomic`, found by following `properties`, `items` and
/// `additionalProperties`. The root `metadata` is ObjectMeta, whatever the schema says, so it follows
/// [`BuiltinStructure`].
#[derive(Debug, Clone, Copy)]
pub struct SchemaStructure<'a>(pub &'a Value);

impl SchemaStructure<'_> {
    /// The schema node at a path of field names (list items skipped).
    fn node(&self, path: &[&str]) -> Option<&Value> {
        let mut cur = self.0;
        for seg in path {
            // A path skips list items, so descend through (possibly nested) arrays first.
            while let Some(item) = items_schema(cur) {
                cur = item;
            }
            cur = properties(cur)
                .and_then(|p| p.get(*seg))
                .or_else(|| additional_schema(cur))?;
        }
        Some(cur)
    }
}

impl Structure for SchemaStructure<'_> {
    fn list_type(&self, path: &[&str]) -> ListType {
        if path.first() == Some(&"metadata") {
            return BuiltinStructure.list_type(path);
        }
        let Some(node) = self.node(path) else {
            return ListType::Atomic;
        };
        match node.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                node.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect(),
            ),
            _ => ListType::Atomic,
        }
    }

    fn map_is_atomic(&self, path: &[&str]) -> bool {
        if path.first() == Some(&"metadata") {
            return BuiltinStructure.map_is_atomic(path);
        }
        self.node(path)
            .and_then(|n| n.get("x-kubernetes-map-type"))
            .and_then(Value::as_str)
            == Some("atomic")
    }
}
