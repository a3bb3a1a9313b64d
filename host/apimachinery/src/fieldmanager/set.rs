//! [`FieldSet`]: a set of field paths with the set algebra ownership needs (union, intersection,
//! difference, recursive difference) and its exact `fieldsV1` JSON form. Like structured-merge-diff's
//! `fieldpath.Set` and its `fieldsV1` serialisation.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::walk::Walker;
use super::{FieldManagerError, PathElement};
use crate::structure::Structure;

/// A set of field paths, stored as a tree like structured-merge-diff's `fieldpath.Set`: at each
/// level, `members` are the paths that end here and `children` the subtrees that go deeper. A path
/// can be both (a map the manager created and some of its fields): `fieldsV1` marks that with `".": {}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    pub(super) members: BTreeSet<PathElement>,
    /// Invariant: never holds an empty set.
    pub(super) children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// A set of field-name paths, e.g. the reset fields of a status write:
    /// `FieldSet::from_field_paths(&[&["spec"], &["metadata"]])`.
    pub fn from_field_paths(paths: &[&[&str]]) -> Self {
        let mut set = FieldSet::new();
        for path in paths {
            let elements: Vec<PathElement> = path.iter().map(|n| PathElement::Field(n.to_string())).collect();
            set.insert(&elements);
        }
        set
    }

    /// Whether the set holds no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Adds a path (the empty path, the whole object, is never tracked).
    pub fn insert(&mut self, path: &[PathElement]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    /// Whether the set holds exactly this path.
    pub fn contains(&self, path: &[PathElement]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.contains(rest)),
        }
    }

    /// Every path in the set, in structured-merge-diff's iteration order (at each level the members,
    /// then the children).
    pub fn paths(&self) -> Vec<Vec<PathElement>> {
        let mut out = Vec::new();
        self.walk_paths(&mut Vec::new(), &mut |p| out.push(p.to_vec()));
        out
    }

    pub(super) fn walk_paths(&self, prefix: &mut Vec<PathElement>, f: &mut dyn FnMut(&[PathElement])) {
        for m in &self.members {
            prefix.push(m.clone());
            f(prefix);
            prefix.pop();
        }
        for (pe, child) in &self.children {
            prefix.push(pe.clone());
            child.walk_paths(prefix, f);
            prefix.pop();
        }
    }

    /// Paths in either set.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (pe, child) in &other.children {
            match out.children.get_mut(pe) {
                Some(mine) => *mine = mine.union(child),
                None => {
                    out.children.insert(pe.clone(), child.clone());
                }
            }
        }
        out
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.intersection(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if let Some(theirs) = other.children.get(pe) {
                let both = child.intersection(theirs);
                if !both.is_empty() {
                    children.insert(pe.clone(), both);
                }
            }
        }
        FieldSet { members, children }
    }

    /// Paths of `self` not in `other` (exact paths: removing `.a` leaves `.a.b`).
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            let rest = match other.children.get(pe) {
                Some(theirs) => child.difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(pe.clone(), rest);
            }
        }
        FieldSet { members, children }
    }

    /// Paths of `self` that neither are in `other` nor lie under a path of `other` (removing `.a`
    /// also removes `.a.b`): how reset fields are ignored.
    pub fn recursive_difference(&self, other: &FieldSet) -> FieldSet {
        let members = self.members.difference(&other.members).cloned().collect();
        let mut children = BTreeMap::new();
        for (pe, child) in &self.children {
            if other.members.contains(pe) {
                continue;
            }
            let rest = match other.children.get(pe) {
                Some(theirs) => child.recursive_difference(theirs),
                None => child.clone(),
            };
            if !rest.is_empty() {
                children.insert(pe.clone(), rest);
            }
        }
        FieldSet { members, children }
    }

    /// Parses the `fieldsV1` JSON form. Unknown element types are dropped like the real server does;
    /// anything else malformed is an error.
    pub fn from_fields_v1(value: &Value) -> Result<FieldSet, FieldManagerError> {
        match value {
            Value::Object(obj) => Ok(parse_fields_v1(obj)?.0.unwrap_or_default()),
            Value::Null => Ok(FieldSet::new()),
            _ => Err(FieldManagerError::FieldsV1("expected a JSON object".into())),
        }
    }

    /// The `fieldsV1` JSON form: `{"f:data":{".":{},"f:a":{}}}`.
    pub fn to_fields_v1(&self) -> Value {
        let mut out = Map::new();
        let keys: BTreeSet<&PathElement> = self.members.iter().chain(self.children.keys()).collect();
        for pe in keys {
            let mut body = Map::new();
            if let Some(child) = self.children.get(pe) {
                if self.members.contains(pe) {
                    body.insert(".".into(), Value::Object(Map::new()));
                }
                if let Value::Object(inner) = child.to_fields_v1() {
                    body.extend(inner);
                }
            }
            out.insert(pe.to_fields_v1_key(), Value::Object(body));
        }
        Value::Object(out)
    }

    /// The fields present in `obj`: every leaf (scalars, atomic lists and maps, empty maps, nulls)
    /// and every list item, like structured-merge-diff's `ToFieldSet`. This is what an applier owns.
    pub fn from_value(obj: &Value, structure: &dyn Structure) -> Result<FieldSet, FieldManagerError> {
        Walker { s: structure }.field_set(obj, false)
    }
}

/// structured-merge-diff's `readIterV1`: returns the children found and whether the node itself is a
/// member (it is when marked with `"."` or when it has no children at all).
fn parse_fields_v1(obj: &Map<String, Value>) -> Result<(Option<FieldSet>, bool), FieldManagerError> {
    let mut set: Option<FieldSet> = None;
    let mut is_member = false;
    for (key, value) in obj {
        if key == "." {
            is_member = true;
            continue;
        }
        let Some(pe) = PathElement::from_fields_v1_key(key)? else {
            continue;
        };
        let Value::Object(inner) = value else {
            return Err(FieldManagerError::FieldsV1(format!(
                "the value of {key:?} is not an object"
            )));
        };
        let (grandchildren, child_is_member) = parse_fields_v1(inner)?;
        if child_is_member {
            set.get_or_insert_default().members.insert(pe.clone());
        }
        if let Some(grandchildren) = grandchildren {
            let children = &mut set.get_or_insert_default().children;
            let merged = match children.remove(&pe) {
                Some(existing) => existing.union(&grandchildren),
                None => grandchildren,
            };
            children.insert(pe, merged);
        }
    }
    if set.is_none() {
        is_member = true;
    }
    Ok((set, is_member))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fieldmanager::testdata::*;
    use crate::fieldmanager::{decode_managed_fields, encode_managed_fields};

    #[test]
    fn fields_v1_from_the_recordings_round_trip() {
        for list in [CM01, CM05, CM07, W01, W06, W09, FOREGROUND_DEPENDENT] {
            let entries = decode_managed_fields(&json!({"metadata": {"managedFields": j(list)}})).unwrap();
            assert_eq!(encode_managed_fields(&entries), j(list));
            for entry in entries {
                let back = FieldSet::from_fields_v1(&entry.fields.to_fields_v1()).unwrap();
                assert_eq!(back, entry.fields);
            }
        }
        let deployment = FieldSet::from_fields_v1(&j(DEPLOYMENT_FIELDS)).unwrap();
        assert_eq!(deployment.to_fields_v1(), j(DEPLOYMENT_FIELDS));
        assert!(deployment.contains(&[
            PathElement::Field("spec".into()),
            PathElement::Field("template".into()),
            PathElement::Field("spec".into()),
            PathElement::Field("containers".into()),
            PathElement::Key(vec![("name".into(), json!("app"))]),
            PathElement::Field("ports".into()),
            PathElement::Key(vec![
                ("containerPort".into(), json!(80)),
                ("protocol".into(), json!("TCP"))
            ]),
        ]));
    }

    #[test]
    fn fields_v1_member_and_children_shapes() {
        let set = FieldSet::from_fields_v1(&j(
            r#"{"f:data":{".":{},"f:a":{}},"f:x":{},"x:future":{"f:y":{}}}"#,
        ))
        .unwrap();
        let data = PathElement::Field("data".into());
        assert!(set.contains(std::slice::from_ref(&data)));
        assert!(set.contains(&[data.clone(), PathElement::Field("a".into())]));
        assert!(set.contains(&[PathElement::Field("x".into())]));
        // Unknown element types are dropped, like the real server does.
        assert_eq!(set.to_fields_v1(), j(r#"{"f:data":{".":{},"f:a":{}},"f:x":{}}"#));
        let keyed = PathElement::from_fields_v1_key(r#"k:{"protocol":"TCP","containerPort":80}"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            keyed.to_fields_v1_key(),
            r#"k:{"containerPort":80,"protocol":"TCP"}"#
        );
        assert_eq!(keyed.to_string(), r#"[containerPort=80,protocol="TCP"]"#);
        assert_eq!(
            PathElement::Value(json!("a<b")).to_fields_v1_key(),
            r#"v:"a\u003cb""#
        );
        assert_eq!(PathElement::Index(3).to_fields_v1_key(), "i:3");
    }

    #[test]
    fn set_algebra() {
        let a = FieldSet::from_fields_v1(&j(r#"{"f:a":{".":{},"f:x":{}},"f:b":{}}"#)).unwrap();
        let b = FieldSet::from_fields_v1(&j(r#"{"f:a":{"f:x":{},"f:y":{}}}"#)).unwrap();
        assert_eq!(
            a.union(&b).to_fields_v1(),
            j(r#"{"f:a":{".":{},"f:x":{},"f:y":{}},"f:b":{}}"#)
        );
        assert_eq!(a.intersection(&b).to_fields_v1(), j(r#"{"f:a":{"f:x":{}}}"#));
        assert_eq!(a.difference(&b).to_fields_v1(), j(r#"{"f:a":{}, "f:b":{}}"#));
        let reset = FieldSet::from_field_paths(&[&["a"]]);
        assert_eq!(
            a.difference(&reset).to_fields_v1(),
            j(r#"{"f:a":{"f:x":{}},"f:b":{}}"#)
        );
        assert_eq!(a.recursive_difference(&reset).to_fields_v1(), j(r#"{"f:b":{}}"#));
        assert!(a.difference(&a).is_empty());
        assert_eq!(a.paths().len(), 3);
    }
}
