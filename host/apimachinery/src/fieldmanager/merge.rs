//! The walks server-side apply adds to [`Walker`]: merging a configuration into the live object
//! (structured-merge-diff's `Merge`, with its list order), removing a set of fields from an object
//! (`RemoveItems`) and pruning what an applier dropped (`prune`, v4.2).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::walk::{ListKind, Pos, Shape, WalkResult, Walker, item_element, item_pos};
use super::{FieldSet, ManagedFieldsEntry, PathElement};

impl Walker<'_> {
    pub(super) fn merge_root(&self, live: &Value, config: &Value) -> WalkResult<Value> {
        let merged = self.merge(
            Pos::Field,
            &mut Vec::new(),
            &mut Vec::new(),
            Some(live),
            Some(config),
        )?;
        Ok(merged.unwrap_or_else(|| Value::Object(Map::new())))
    }

    /// Merges `rhs` (the configuration) into `lhs` (the live object): leaves take the configuration's
    /// value, maps merge by key, list-maps and sets by item, keeping live items the configuration does
    /// not mention. `None` when there is nothing (structured-merge-diff's nil output).
    fn merge(
        &self,
        pos: Pos,
        names: &mut Vec<String>,
        path: &mut Vec<PathElement>,
        lhs: Option<&Value>,
        rhs: Option<&Value>,
    ) -> WalkResult<Option<Value>> {
        let leaf = || rhs.or(lhs).cloned();
        match self.pair_shape(pos, names, lhs, rhs) {
            Shape::Leaf => Ok(leaf()),
            Shape::Map => {
                let lm = lhs.and_then(Value::as_object);
                let rm = rhs.and_then(Value::as_object);
                if lm.is_none_or(Map::is_empty) && rm.is_none_or(Map::is_empty) {
                    return Ok(leaf());
                }
                let mut keys: Vec<&String> = lm.into_iter().flat_map(Map::keys).collect();
                keys.extend(
                    rm.into_iter()
                        .flat_map(Map::keys)
                        .filter(|k| lm.is_none_or(|m| !m.contains_key(*k))),
                );
                let mut out = Map::new();
                for key in keys {
                    names.push(key.clone());
                    path.push(PathElement::Field(key.clone()));
                    let (l, r) = (lm.and_then(|m| m.get(key)), rm.and_then(|m| m.get(key)));
                    let merged = self.merge(Pos::Field, names, path, l, r)?;
                    path.pop();
                    names.pop();
                    if let Some(v) = merged {
                        out.insert(key.clone(), v);
                    }
                }
                Ok((!out.is_empty()).then_some(Value::Object(out)))
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
                    return Ok(leaf());
                }
                let ri = self.index_items(&kind, path, ra, true)?;
                let li = self.index_items(&kind, path, la, false)?;
                let out = self.merge_items(&kind, names, path, &li, &ri)?;
                Ok((!out.is_empty()).then_some(Value::Array(out)))
            }
        }
    }

    /// structured-merge-diff's list merge order: items in both lists follow the configuration's order,
    /// live-only items keep their place relative to them, new items come where the configuration
    /// puts them (after the live items when it only adds).
    fn merge_items(
        &self,
        kind: &ListKind,
        names: &mut Vec<String>,
        path: &mut Vec<PathElement>,
        li: &[(PathElement, &Value)],
        ri: &[(PathElement, &Value)],
    ) -> WalkResult<Vec<Value>> {
        let lmap: BTreeMap<&PathElement, &Value> = li.iter().map(|(pe, v)| (pe, *v)).collect();
        let rmap: BTreeMap<&PathElement, &Value> = ri.iter().map(|(pe, v)| (pe, *v)).collect();
        let shared: Vec<&PathElement> = ri
            .iter()
            .map(|(pe, _)| pe)
            .filter(|pe| lmap.contains_key(pe))
            .collect();
        let mut shared_iter = shared.into_iter();
        let mut next_shared = shared_iter.next();
        let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
        let ipos = item_pos(kind);
        let mut out = Vec::new();
        let mut push =
            |w: &Self, pe: &PathElement, l: Option<&Value>, r: Option<&Value>, out: &mut Vec<Value>| {
                path.push(pe.clone());
                let merged = w.merge(ipos, names, path, l, r);
                path.pop();
                merged.map(|m| out.extend(m))
            };
        let (mut l, mut r) = (0, 0);
        while l < li.len() || r < ri.len() {
            if l < li.len() && r < ri.len() {
                let pe = &li[l].0;
                if *pe == ri[r].0 {
                    merged_rhs.insert(pe);
                    push(self, pe, Some(li[l].1), Some(ri[r].1), &mut out)?;
                    l += 1;
                    r += 1;
                    next_shared = shared_iter.next();
                    continue;
                }
                if rmap.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                    // A shared item, but not the one due in this round: it comes with the configuration.
                    l += 1;
                    continue;
                }
            }
            if l < li.len() {
                let pe = &li[l].0;
                if !rmap.contains_key(pe) {
                    push(self, pe, Some(li[l].1), None, &mut out)?;
                    l += 1;
                    continue;
                }
                if merged_rhs.contains(pe) || r >= ri.len() {
                    // Already merged with its configuration item; never loop on it.
                    l += 1;
                    continue;
                }
            }
            if r < ri.len() {
                let pe = &ri[r].0;
                merged_rhs.insert(pe);
                push(self, pe, lmap.get(pe).copied(), Some(ri[r].1), &mut out)?;
                r += 1;
                if next_shared.is_some_and(|n| n == pe) {
                    next_shared = shared_iter.next();
                }
            }
        }
        Ok(out)
    }

    // ---- RemoveItems ----

    /// `v` without the paths of `set`. A map or list left empty becomes `None`; inside a map that is a
    /// `null` (structured-merge-diff keeps the key) unless `drop_emptied`, which removes the key the way
    /// decoding the stored object does. List items left empty are dropped.
    fn remove(
        &self,
        pos: Pos,
        names: &mut Vec<String>,
        v: &Value,
        set: &FieldSet,
        drop_emptied: bool,
    ) -> Option<Value> {
        match self.shape(pos, names, v) {
            Shape::Leaf => Some(v.clone()),
            Shape::Map => {
                let obj = v.as_object()?;
                let mut out = Map::new();
                for (key, child) in obj {
                    let pe = PathElement::Field(key.clone());
                    if set.members.contains(&pe) {
                        continue;
                    }
                    let kept = match set.children.get(&pe) {
                        Some(sub) => {
                            names.push(key.clone());
                            let kept = self.remove(Pos::Field, names, child, sub, drop_emptied);
                            names.pop();
                            kept
                        }
                        None => Some(child.clone()),
                    };
                    match kept {
                        Some(value) => {
                            out.insert(key.clone(), value);
                        }
                        None if !drop_emptied => {
                            out.insert(key.clone(), Value::Null);
                        }
                        None => {}
                    }
                }
                (!out.is_empty()).then_some(Value::Object(out))
            }
            Shape::List(kind) => {
                let ipos = item_pos(&kind);
                let mut out = Vec::new();
                for item in v.as_array().into_iter().flatten() {
                    let Ok(pe) = item_element(&kind, item) else {
                        out.push(item.clone());
                        continue;
                    };
                    if set.members.contains(&pe) {
                        continue;
                    }
                    match set.children.get(&pe) {
                        Some(sub) => out.extend(self.remove(ipos, names, item, sub, drop_emptied)),
                        None => out.push(item.clone()),
                    }
                }
                (!out.is_empty()).then_some(Value::Array(out))
            }
        }
    }

    fn remove_root(&self, v: &Value, set: &FieldSet, drop_emptied: bool) -> Value {
        if set.is_empty() {
            return v.clone();
        }
        self.remove(Pos::Field, &mut Vec::new(), v, set, drop_emptied)
            .unwrap_or_else(|| Value::Object(Map::new()))
    }

    /// structured-merge-diff v4.2's `prune`: removes what the applier owned last time and no longer
    /// applies, unless another manager (or the new configuration) still owns it. Returns the object
    /// to compare with (emptied maps as `null`, as the real server compares) and the object to keep.
    pub(super) fn prune(
        &self,
        merged: &Value,
        managers: &[ManagedFieldsEntry],
        last: Option<&FieldSet>,
    ) -> WalkResult<(Value, Value)> {
        let Some(last) = last.filter(|s| !s.is_empty()) else {
            return Ok((merged.clone(), merged.clone()));
        };
        let pruned = self.remove_root(merged, last, false);
        // addBackOwnedItems
        let owned = managers
            .iter()
            .fold(FieldSet::new(), |acc, e| acc.union(&e.fields));
        let merged_set = self.field_set(merged, false)?;
        let pruned_set = self.field_set(&pruned, false)?;
        let pruned = self.remove_root(merged, &merged_set.difference(&pruned_set.union(&owned)), false);
        // addBackDanglingItems: only what the applier owned last time may go.
        let pruned_set = self.field_set(&pruned, false)?;
        let gone = merged_set.difference(&pruned_set).intersection(last);
        Ok((
            self.remove_root(merged, &gone, false),
            self.remove_root(merged, &gone, true),
        ))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fieldmanager::testdata::*;
    use crate::fieldmanager::{FieldManager, decode_managed_fields};
    use crate::structure::BuiltinStructure;

    #[test]
    fn apply_merges_list_maps_by_key_and_prunes_dropped_items() {
        let s = BuiltinStructure;
        let live = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "a", "image": "a:1"},
            {"name": "b", "image": "b:1"}
        ]}});
        let creator = FieldManager::new(&s, "creator", "v1", "2026-01-01T00:00:00Z");
        let managed = creator.update(None, &live, vec![]);
        let live = stored(&live, &managed);

        // The applier adds c and co-owns b (same image): no conflict, order live then new.
        let config = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "b", "image": "b:1"},
            {"name": "c", "image": "c:1"}
        ]}});
        let fm = FieldManager::new(&s, "applier", "v1", "2026-01-01T00:00:01Z");
        let out = fm
            .apply(Some(&live), &config, decode_managed_fields(&live).unwrap(), false)
            .unwrap();
        let names: Vec<&Value> = out.object["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["name"])
            .collect();
        assert_eq!(names, [&json!("a"), &json!("b"), &json!("c")]);
        let applier = out.managed.iter().find(|e| e.manager == "applier").unwrap();
        assert_eq!(
            applier.fields.to_fields_v1(),
            json!({"f:spec": {"f:containers": {
                "k:{\"name\":\"b\"}": {".": {}, "f:image": {}, "f:name": {}},
                "k:{\"name\":\"c\"}": {".": {}, "f:image": {}, "f:name": {}}
            }}})
        );
        let live = stored(&out.object, &out.managed);

        // A different image for b conflicts with the creator, printed by key.
        let clash = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
            {"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}
        ]}});
        let err = fm
            .apply(Some(&live), &clash, decode_managed_fields(&live).unwrap(), false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 1 conflict: conflict with \"creator\" using v1: .spec.containers[name=\"b\"].image"
        );

        // Dropping c (owned by the applier alone) removes it; dropping b keeps it (creator owns it).
        let config =
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}});
        let fm = FieldManager::new(&s, "applier", "v1", "2026-01-01T00:00:02Z");
        let out = fm
            .apply(Some(&live), &config, decode_managed_fields(&live).unwrap(), false)
            .unwrap();
        let names: Vec<&Value> = out.object["spec"]["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| &c["name"])
            .collect();
        assert_eq!(names, [&json!("a"), &json!("b")]);
        assert!(out.managed.iter().all(|e| e.manager != "applier"));
    }

    #[test]
    fn emptied_maps_are_removed_from_the_object() {
        let s = BuiltinStructure;
        let fm = FieldManager::new(&s, "only", "v1", "2026-01-01T00:00:00Z");
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"a": "1"}}, "data": {"k": "v"}});
        let out = fm.apply(None, &config, vec![], false).unwrap();
        let live = stored(&out.object, &out.managed);
        let config = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}});
        let fm = FieldManager::new(&s, "only", "v1", "2026-01-01T00:00:01Z");
        let out = fm
            .apply(Some(&live), &config, decode_managed_fields(&live).unwrap(), false)
            .unwrap();
        assert_eq!(
            out.object,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
        );
        assert!(out.managed.is_empty());
    }
}
