//! Walking objects with their [`Structure`]: how each value merges (its [`Shape`]), the path
//! element of each list item, the set of fields an object holds (structured-merge-diff's
//! `ToFieldSet`) and the comparison of two objects (its `Compare`). Merging and removal, the walks
//! apply adds, are in `merge.rs`. Like structured-merge-diff's `typed` package, with the schema
//! reduced to what a [`Structure`] knows.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::value::value_eq;
use super::{FieldManagerError, FieldSet, PathElement, path_to_string};
use crate::structure::{ListType, Structure};

/// How a list's items are identified: by value (a set) or by key fields (a list-map).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ListKind {
    Set,
    Keyed(Vec<String>),
}

/// How a value merges: replaced whole (scalars, atomic lists and maps), field by field, item by item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Shape {
    Leaf,
    Map,
    List(ListKind),
}

/// Where a value sits: as a field of a map, or as an item of a set list or of a list-map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pos {
    Field,
    SetItem,
    KeyedItem,
}

/// What changed from one object to another, as field sets (structured-merge-diff's `Comparison`).
#[derive(Debug, Default)]
pub(super) struct Comparison {
    pub(super) added: FieldSet,
    pub(super) modified: FieldSet,
    pub(super) removed: FieldSet,
}

impl Comparison {
    /// Drops changes under reset fields: they are neither owned nor conflicting.
    pub(super) fn exclude(&mut self, reset: &FieldSet) {
        if reset.is_empty() {
            return;
        }
        self.added = self.added.recursive_difference(reset);
        self.modified = self.modified.recursive_difference(reset);
        self.removed = self.removed.recursive_difference(reset);
    }

    pub(super) fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// structured-merge-diff's typed walks (ToFieldSet, Compare, Merge, RemoveItems) over plain JSON,
/// with the schema reduced to what a [`Structure`] knows.
pub(super) struct Walker<'a> {
    pub(super) s: &'a dyn Structure,
}

pub(super) type WalkResult<T> = Result<T, FieldManagerError>;

impl Walker<'_> {
    fn list_type(&self, names: &[String]) -> ListType {
        // ObjectMeta is the same for every kind, whatever the kind's structure knows about it.
        if let [first, second] = names
            && first == "metadata"
        {
            match second.as_str() {
                "finalizers" => return ListType::Set,
                "ownerReferences" => return ListType::Map(vec!["uid".into()]),
                _ => {}
            }
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.s.list_type(&refs)
    }

    fn map_is_atomic(&self, names: &[String]) -> bool {
        // OwnerReference is `structType=atomic`: items are owned whole (`k:{"uid":..}: {}`).
        if let [.., parent, last] = names
            && parent == "metadata"
            && last == "ownerReferences"
        {
            return true;
        }
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        self.s.map_is_atomic(&refs)
    }

    pub(super) fn shape(&self, pos: Pos, names: &[String], v: &Value) -> Shape {
        match (pos, v) {
            (Pos::SetItem, _) => Shape::Leaf,
            (_, Value::Object(_)) if self.map_is_atomic(names) => Shape::Leaf,
            (_, Value::Object(_)) => Shape::Map,
            (Pos::Field, Value::Array(_)) => match self.list_type(names) {
                ListType::Atomic => Shape::Leaf,
                ListType::Set => Shape::List(ListKind::Set),
                ListType::Map(keys) if keys.is_empty() => Shape::List(ListKind::Set),
                ListType::Map(keys) => Shape::List(ListKind::Keyed(keys)),
            },
            _ => Shape::Leaf,
        }
    }

    /// The shape of a pair of values; null takes the shape of the other side (a null map is an empty
    /// map), and values of different kinds are leaves.
    pub(super) fn pair_shape(
        &self,
        pos: Pos,
        names: &[String],
        lhs: Option<&Value>,
        rhs: Option<&Value>,
    ) -> Shape {
        let l = lhs.filter(|v| !v.is_null());
        let r = rhs.filter(|v| !v.is_null());
        match (l, r) {
            (Some(a), Some(b)) => {
                let sa = self.shape(pos, names, a);
                if sa == self.shape(pos, names, b) {
                    sa
                } else {
                    Shape::Leaf
                }
            }
            (Some(v), None) | (None, Some(v)) => self.shape(pos, names, v),
            (None, None) => Shape::Leaf,
        }
    }

    /// The items of a list with their path elements, first occurrence of each key only. `strict`
    /// rejects duplicates (an applied configuration must not have any).
    pub(super) fn index_items<'v>(
        &self,
        kind: &ListKind,
        path: &[PathElement],
        list: &'v [Value],
        strict: bool,
    ) -> WalkResult<Vec<(PathElement, &'v Value)>> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::with_capacity(list.len());
        for item in list {
            let pe = item_element(kind, item).map_err(|e| object_error(path, &e))?;
            if seen.contains(&pe) {
                if strict {
                    return Err(object_error(path, &format!("duplicate entries for key {pe}")));
                }
                continue;
            }
            seen.insert(pe.clone());
            out.push((pe, item));
        }
        Ok(out)
    }

    // ---- ToFieldSet ----

    pub(super) fn field_set(&self, v: &Value, strict: bool) -> WalkResult<FieldSet> {
        Ok(self
            .collect(Pos::Field, &mut Vec::new(), &mut Vec::new(), v, strict)?
            .0)
    }

    /// The paths under `v`, and whether `v` itself is a leaf its parent must list.
    fn collect(
        &self,
        pos: Pos,
        names: &mut Vec<String>,
        path: &mut Vec<PathElement>,
        v: &Value,
        strict: bool,
    ) -> WalkResult<(FieldSet, bool)> {
        let mut set = FieldSet::new();
        match self.shape(pos, names, v) {
            Shape::Leaf => return Ok((set, true)),
            Shape::Map => {
                for (key, child) in v.as_object().into_iter().flatten() {
                    let pe = PathElement::Field(key.clone());
                    names.push(key.clone());
                    path.push(pe.clone());
                    let (sub, leaf) = self.collect(Pos::Field, names, path, child, strict)?;
                    path.pop();
                    names.pop();
                    // A null or empty map is owned as such, so that `{}` and absent stay different.
                    if leaf || child.is_null() || child.as_object().is_some_and(Map::is_empty) {
                        set.members.insert(pe.clone());
                    }
                    if !sub.is_empty() {
                        set.children.insert(pe, sub);
                    }
                }
            }
            Shape::List(kind) => {
                let item_pos = item_pos(&kind);
                let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
                for (pe, item) in self.index_items(&kind, path, items, strict)? {
                    path.push(pe.clone());
                    let (sub, _) = self.collect(item_pos, names, path, item, strict)?;
                    path.pop();
                    set.members.insert(pe.clone());
                    if !sub.is_empty() {
                        let merged = match set.children.remove(&pe) {
                            Some(existing) => existing.union(&sub),
                            None => sub,
                        };
                        set.children.insert(pe, merged);
                    }
                }
            }
        }
        Ok((set, false))
    }

    // ---- Compare ----

    pub(super) fn compare_root(&self, lhs: &Value, rhs: &Value) -> WalkResult<Comparison> {
        let mut c = Comparison::default();
        self.compare(
            Pos::Field,
            &mut Vec::new(),
            &mut Vec::new(),
            Some(lhs),
            Some(rhs),
            &mut c,
        )?;
        Ok(c)
    }

    /// Leaves are added, removed or modified; maps and lists are added or removed as wholes on top
    /// of their items (that is where `".": {}` comes from).
    fn compare(
        &self,
        pos: Pos,
        names: &mut Vec<String>,
        path: &mut Vec<PathElement>,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
        c: &mut Comparison,
    ) -> WalkResult<()> {
        let leaf = |path: &[PathElement], c: &mut Comparison| match (lhs, rhs) {
            (None, _) => c.added.insert(path),
            (_, None) => c.removed.insert(path),
            (Some(a), Some(b)) if !value_eq(a, b) => c.modified.insert(path),
            _ => {}
        };
        match self.pair_shape(pos, names, lhs, rhs) {
            Shape::Leaf => leaf(path, c),
            Shape::Map => {
                let lm = lhs.and_then(Value::as_object);
                let rm = rhs.and_then(Value::as_object);
                if lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty) {
                    leaf(path, c);
                    return Ok(());
                }
                let keys: BTreeSet<&String> = lm.into_iter().chain(rm).flat_map(Map::keys).collect();
                for key in keys {
                    names.push(key.clone());
                    path.push(PathElement::Field(key.clone()));
                    let (l, r) = (lm.and_then(|m| m.get(key)), rm.and_then(|m| m.get(key)));
                    self.compare(Pos::Field, names, path, l, r, c)?;
                    path.pop();
                    names.pop();
                }
                container_hook(path, lhs, rhs, c);
            }
            Shape::List(kind) => {
                let la = lhs
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                let ra = rhs
                    .and_then(Value::as_array)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                if la.is_empty() && ra.is_empty() {
                    leaf(path, c);
                    return Ok(());
                }
                let li = self.index_items(&kind, path, la, false)?;
                let ri = self.index_items(&kind, path, ra, false)?;
                let lmap: BTreeMap<&PathElement, &Value> = li.iter().map(|(pe, v)| (pe, *v)).collect();
                let rmap: BTreeMap<&PathElement, &Value> = ri.iter().map(|(pe, v)| (pe, *v)).collect();
                let ipos = item_pos(&kind);
                for (pe, l) in &li {
                    path.push(pe.clone());
                    self.compare(ipos, names, path, Some(l), rmap.get(pe).copied(), c)?;
                    path.pop();
                }
                for (pe, r) in ri.iter().filter(|(pe, _)| !lmap.contains_key(pe)) {
                    path.push(pe.clone());
                    self.compare(ipos, names, path, None, Some(r), c)?;
                    path.pop();
                }
                container_hook(path, lhs, rhs, c);
            }
        }
        Ok(())
    }
}

pub(super) fn item_pos(kind: &ListKind) -> Pos {
    match kind {
        ListKind::Set => Pos::SetItem,
        ListKind::Keyed(_) => Pos::KeyedItem,
    }
}

/// A map or list as a whole: added when it did not exist, removed when it no longer does.
fn container_hook(path: &[PathElement], lhs: Option<&Value>, rhs: Option<&Value>, c: &mut Comparison) {
    if lhs.is_none() {
        c.added.insert(path);
    } else if rhs.is_none() {
        c.removed.insert(path);
    }
}

fn object_error(path: &[PathElement], message: &str) -> FieldManagerError {
    if path.is_empty() {
        FieldManagerError::Object(message.to_string())
    } else {
        FieldManagerError::Object(format!("{}: {message}", path_to_string(path)))
    }
}

/// The path element of a list item: its value in a set, its key fields in a list-map.
pub(super) fn item_element(kind: &ListKind, item: &Value) -> Result<PathElement, String> {
    let keys = match kind {
        ListKind::Set => return Ok(PathElement::Value(item.clone())),
        ListKind::Keyed(keys) => keys,
    };
    let obj = match item {
        Value::Object(obj) => obj,
        Value::Null => return Err("associative list with keys may not have a null element".into()),
        _ => return Err("associative list with keys may not have non-map elements".into()),
    };
    let mut fields = Vec::with_capacity(keys.len());
    for key in keys {
        match obj.get(key) {
            Some(v) => fields.push((key.clone(), v.clone())),
            // The only defaulted list-map key of the built-in kinds (container, service and endpoint
            // ports); the real server looks items up with the schema default.
            None if key == "protocol" => fields.push((key.clone(), Value::String("TCP".into()))),
            None => {
                return Err(format!(
                    "associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
                ));
            }
        }
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(PathElement::Key(fields))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fieldmanager::testdata::*;
    use crate::fieldmanager::{FieldManager, decode_managed_fields};
    use crate::structure::BuiltinStructure;

    #[test]
    fn deployment_create_matches_the_recording() {
        // The real server compares against the kind's zero object, where nested structs exist
        // (spec, strategy, template...): those get no "." on create, unlike labels.
        struct Deployment;
        impl Structure for Deployment {
            fn list_type(&self, path: &[&str]) -> ListType {
                BuiltinStructure.list_type(path)
            }
            fn map_is_atomic(&self, path: &[&str]) -> bool {
                path == ["spec", "selector"]
            }
        }
        let zero = j(
            r#"{"metadata":{"creationTimestamp":null},"spec":{"selector":null,"template":{"metadata":{"creationTimestamp":null},"spec":{"containers":null}},"strategy":{}},"status":{}}"#,
        );
        let fm = FieldManager::new(
            &Deployment,
            "k8s-reference-recorder",
            "apps/v1",
            "2026-11-22T07:23:24Z",
        );
        let managed = fm.update(Some(&zero), &j(DEPLOYMENT), vec![]);
        assert_eq!(managed.len(), 1);
        assert_eq!(managed[0].fields.to_fields_v1(), j(DEPLOYMENT_FIELDS));
    }

    #[test]
    fn odd_shapes_never_panic() {
        let s = WidgetStructure;
        let odd = [
            json!(null),
            json!([1, 2]),
            json!("x"),
            json!({"spec": "scalar"}),
            json!({"spec": {"tags": [{"a": 1}, null, 3, 3]}}),
            json!({"spec": {"tags": null}, "status": {"conditions": null}}),
            json!({"spec": {"tags": {}}, "status": {"conditions": [{"type": "A"}, {"type": "A"}]}}),
            json!({"metadata": {"managedFields": "junk", "ownerReferences": [{"uid": "u"}, 5]}}),
            json!({"metadata": {"finalizers": [{"x": 1}], "labels": null}, "spec": {"n": 1.5e300}}),
        ];
        let fm = FieldManager::new(&s, "m", "example.com/v1", "2026-01-01T00:00:00Z");
        for before in &odd {
            for after in &odd {
                let managed = fm.update(Some(before), after, vec![]);
                let _ = fm.update(Some(after), before, managed.clone());
                let _ = fm.apply(Some(before), after, managed.clone(), false);
                let _ = fm.apply(Some(before), after, managed, true);
            }
            let _ = FieldSet::from_value(before, &s);
            let _ = FieldSet::from_fields_v1(before);
            let _ = decode_managed_fields(before);
        }
    }
}
