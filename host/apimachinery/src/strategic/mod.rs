//! Strategic merge patch (`application/strategic-merge-patch+json`) for built-in kinds, as the
//! kube-apiserver applies it (`k8s.io/apimachinery/pkg/util/strategicpatch`, `StrategicMergeMapPatch`).
//!
//! This module owns only the merge itself: JSON object in, JSON object (or a typed error) out. Decoding
//! the body, defaulting, validation, `managedFields` and HTTP status mapping belong to the server.
//!
//! Semantics, following the Go implementation:
//! - maps merge recursively; `null` deletes a key (a `null` for a key that is not there is ignored);
//! - lists merge by the [`Structure`] of their path: [`ListType::Map`] merges items by the *first* key
//!   (the Go `patchMergeKey`), [`ListType::Set`] is a union of scalars, [`ListType::Atomic`] is replaced;
//! - after a merge the list order is the patch order, with items only on the server interleaved where
//!   they were (Go `normalizeElementOrder`), which is why a new `env` item lands right after the patch
//!   item before it and not at the end;
//! - directives: `$patch: replace|delete` on a map or as a list item, `$retainKeys`,
//!   `$setElementOrder/<list>`, `$deleteFromPrimitiveList/<list>`. Directive keys never reach the result.
//!   As in Go, `{"$patch":"delete"}` on a map leaves an empty map (not a missing key), and
//!   `$patch: merge` is rejected both on a map and in a list.
//!
//! Deliberate differences from Go, all on inputs kubectl never produces:
//! - a patch value for a key the original lacks is merged into an empty value instead of being copied
//!   verbatim, so nested `null`s and directives do not leak into the stored object;
//! - `$deleteFromPrimitiveList/<list>` for a missing list is a no-op (Go stores the deletion list as the
//!   list), and on an atomic list it deletes (Go replaces the list with the deletion list);
//! - a `$setElementOrder` item list ending in directive items is accepted (Go rejects it by accident).

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use crate::structure::{ListType, Structure};

#[cfg(test)]
mod tests;

/// Marker key of the map/list-item directives (`replace`, `delete`).
const DIRECTIVE: &str = "$patch";
/// Parallel key listing the fields a map keeps.
const RETAIN_KEYS: &str = "$retainKeys";
/// Prefix of the parallel list fixing the order of a merged list.
const SET_ELEMENT_ORDER: &str = "$setElementOrder";
/// Prefix of the parallel list of scalars to remove from a primitive list.
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";

/// How deep values may nest. Parsed JSON is already capped at 128 levels by serde_json; this only guards
/// the stack against values built in code.
const MAX_DEPTH: usize = 200;

/// Go's name for a JSON object, used in messages copied from `mergepatch`.
const GO_MAP: &str = "map[string]interface {}";
/// Go's name for a JSON array.
const GO_SLICE: &str = "[]interface {}";

/// Why a strategic merge patch could not be applied. Messages follow the Go ones word for word where
/// Go has one, so clients matching on them keep working; [`Self::status_code`] gives the HTTP code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StrategicMergeError {
    /// The patch is a JSON array, string, number or boolean (the decoder error of the apiserver).
    #[error("json: cannot unmarshal {0} into Go value of type map[string]interface {{}}")]
    PatchNotObject(&'static str),
    /// The stored object is not a JSON object: a caller bug, never the client's fault.
    #[error("the object to patch is not a JSON object")]
    OriginalNotObject,
    /// `$deleteFromPrimitiveList/...` is misspelt or its value is not a list of scalars.
    #[error("invalid patch format of primitive list")]
    BadPrimitiveListFormat,
    /// `$retainKeys` is not a list, or the patch sets a key the list does not retain.
    #[error("invalid patch format of retainKeys")]
    BadRetainKeysFormat,
    /// `$setElementOrder...` has no `/<list>` suffix.
    #[error("invalid patch format of setElementOrder list")]
    BadSetElementOrderFormat,
    /// A merging list contains lists.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// An item of a merging list lacks the merge key.
    #[error("map: {map} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// The item, printed like Go's `%v`.
        map: String,
        /// The merge key.
        key: String,
    },
    /// `$patch` has a value other than `replace` or `delete` (Go rejects `merge` too).
    #[error("unknown patch type: {directive} in map: {map}")]
    UnknownPatchType {
        /// The directive value, printed like Go's `%s`.
        directive: String,
        /// The map holding it, printed like Go's `%v`.
        map: String,
    },
    /// `{"$patch": "merge"}` as a list item.
    #[error("merging lists cannot yet be specified in the patch")]
    MergeDirectiveInList,
    /// A list of objects is declared mergeable but has no merge key.
    #[error("cannot merge lists without merge key for {path}")]
    NoMergeKey {
        /// Dotted path of the list.
        path: String,
    },
    /// A merging list mixes objects and scalars, or scalars of different types.
    #[error("list element types are not identical: {0}")]
    MixedListElements(String),
    /// A value has the wrong JSON type for where it is (Go `ErrBadArgType`).
    #[error("expected a {expected}, but received a {actual}")]
    WrongType {
        /// Expected Go type.
        expected: &'static str,
        /// Received Go type.
        actual: &'static str,
    },
    /// The items of a list and its `$setElementOrder` list are in different orders.
    #[error("The order in patch list:\n{patch}\n doesn't match $setElementOrder list:\n{order}\n")]
    OrderMismatch {
        /// The patch list, printed like Go's `%v`.
        patch: String,
        /// The order list, printed like Go's `%v`.
        order: String,
    },
    /// The values nest deeper than this module recurses.
    #[error("object nested deeper than {0} levels")]
    TooDeep(usize),
}

impl StrategicMergeError {
    /// The HTTP status kube-apiserver answers with (`interpretStrategicMergePatchError`): malformed
    /// directives and undecodable patches are 400 BadRequest, lists of lists 422 Invalid, and
    /// everything else reaches the client as a 500 whose `reason` is empty and `message` is this error.
    pub fn status_code(&self) -> u16 {
        match self {
            Self::PatchNotObject(_)
            | Self::BadPrimitiveListFormat
            | Self::BadRetainKeysFormat
            | Self::BadSetElementOrderFormat
            | Self::TooDeep(_) => 400,
            Self::ListOfLists => 422,
            _ => 500,
        }
    }
}

/// Applies the strategic merge `patch` to `original`, merging lists as `structure` says.
///
/// `original` must be a JSON object. A `null` patch is a no-op, as in the apiserver (Go decodes it into a
/// nil map); any other non-object patch is [`StrategicMergeError::PatchNotObject`].
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    structure: &dyn Structure,
) -> Result<Value, StrategicMergeError> {
    let Value::Object(original) = original else {
        return Err(StrategicMergeError::OriginalNotObject);
    };
    let patch = match patch {
        Value::Object(patch) => patch,
        Value::Null => return Ok(Value::Object(original.clone())),
        Value::Array(_) => return Err(StrategicMergeError::PatchNotObject("array")),
        Value::String(_) => return Err(StrategicMergeError::PatchNotObject("string")),
        Value::Number(_) => return Err(StrategicMergeError::PatchNotObject("number")),
        Value::Bool(_) => return Err(StrategicMergeError::PatchNotObject("bool")),
    };
    let mut merger = Merger {
        structure,
        path: Vec::new(),
    };
    merger.merge_map(original.clone(), patch, 0).map(Value::Object)
}

/// The walk state: the structure to ask and the field path of the value being merged.
struct Merger<'a> {
    structure: &'a dyn Structure,
    /// Field names from the root, list items skipped (the form [`Structure::list_type`] expects).
    path: Vec<String>,
}

/// What the items of one or more lists are, for the Go rule that a merging list is homogeneous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElementKind {
    Map,
    Scalar,
}

impl Merger<'_> {
    /// Runs `f` with `field` pushed on the path.
    fn in_field<T>(&mut self, field: &str, f: impl FnOnce(&mut Self) -> T) -> T {
        self.path.push(field.to_owned());
        let out = f(self);
        self.path.pop();
        out
    }

    fn list_type(&self) -> ListType {
        let path: Vec<&str> = self.path.iter().map(String::as_str).collect();
        self.structure.list_type(&path)
    }

    /// The SMP merge key of the list at the current path: the first list-map key, as `patchMergeKey`.
    fn merge_key(list_type: &ListType) -> Option<String> {
        match list_type {
            ListType::Map(keys) => keys.first().cloned(),
            ListType::Atomic | ListType::Set => None,
        }
    }

    fn no_merge_key(&self) -> StrategicMergeError {
        StrategicMergeError::NoMergeKey {
            path: self.path.join("."),
        }
    }

    /// Go `mergeMap`: merges `patch` into `original` at the current path.
    fn merge_map(
        &mut self,
        mut original: Map<String, Value>,
        patch: &Map<String, Value>,
        depth: usize,
    ) -> Result<Map<String, Value>, StrategicMergeError> {
        if depth > MAX_DEPTH {
            return Err(StrategicMergeError::TooDeep(MAX_DEPTH));
        }
        // A map-level directive decides the whole map; nothing else in the patch is merged.
        if let Some(directive) = patch.get(DIRECTIVE) {
            return match directive.as_str() {
                Some("replace") => {
                    let mut replacement = patch.clone();
                    replacement.remove(DIRECTIVE);
                    self.merge_map(Map::new(), &replacement, depth + 1)
                }
                // Go answers an empty map, not a missing key: `{"$patch":"delete"}` leaves `{}`.
                Some("delete") => Ok(Map::new()),
                _ => Err(StrategicMergeError::UnknownPatchType {
                    directive: go_fmt_s(directive),
                    map: go_fmt_map(patch),
                }),
            };
        }

        if let Some(retain) = patch.get(RETAIN_KEYS) {
            apply_retain_keys(&mut original, patch, retain)?;
        }

        // Ordered lists first (Go `mergePatchIntoOriginal`): the list they name is merged and reordered
        // there and must not be merged again below.
        let mut ordered: HashSet<&str> = HashSet::new();
        for (key, order) in patch {
            if key.starts_with(SET_ELEMENT_ORDER) {
                ordered.insert(self.merge_ordered_list(&mut original, patch, key, order, depth)?);
            }
        }

        // Deletions from primitive lists run after the merge of the same list, so a patch that both adds
        // and removes values sees the merged list.
        let mut deletions: Vec<(&str, &Value)> = Vec::new();
        for (key, patch_value) in patch {
            if key == RETAIN_KEYS || key.starts_with(SET_ELEMENT_ORDER) || ordered.contains(key.as_str()) {
                continue;
            }
            if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
                let field = directive_field(key, DELETE_FROM_PRIMITIVE_LIST)
                    .ok_or(StrategicMergeError::BadPrimitiveListFormat)?;
                deletions.push((field, patch_value));
                continue;
            }
            if patch_value.is_null() {
                remove_key(&mut original, key);
                continue;
            }
            match original.get_mut(key) {
                None => {
                    let value = self.in_field(key, |m| m.fresh_value(patch_value, depth + 1))?;
                    original.insert(key.clone(), value);
                }
                Some(slot) => {
                    let current = std::mem::take(slot);
                    *slot = self.in_field(key, |m| m.merge_value(current, patch_value, depth + 1))?;
                }
            }
        }

        for (field, deletion) in deletions {
            delete_from_primitive_list(&mut original, field, deletion)?;
        }
        Ok(original)
    }

    /// Merges one field present on both sides: maps and lists recurse, anything else is replaced.
    fn merge_value(
        &mut self,
        current: Value,
        patch: &Value,
        depth: usize,
    ) -> Result<Value, StrategicMergeError> {
        match (current, patch) {
            (Value::Object(current), Value::Object(patch)) => {
                self.merge_map(current, patch, depth).map(Value::Object)
            }
            (Value::Array(current), Value::Array(patch)) => {
                self.merge_list(current, patch, depth).map(Value::Array)
            }
            // Different types (including a stored `null`) or scalars: the patch value wins.
            (_, patch) => self.fresh_value(patch, depth),
        }
    }

    /// A patch value for a field the original does not have: merged into nothing, so that its nulls
    /// vanish and its directives are interpreted (Go copies it verbatim).
    fn fresh_value(&mut self, patch: &Value, depth: usize) -> Result<Value, StrategicMergeError> {
        match patch {
            Value::Object(patch) => self.merge_map(Map::new(), patch, depth).map(Value::Object),
            Value::Array(patch) => self.merge_list(Vec::new(), patch, depth).map(Value::Array),
            scalar => Ok(scalar.clone()),
        }
    }

    /// Go `mergeSliceHandler`: merges the list at the current path by its list type.
    fn merge_list(
        &mut self,
        original: Vec<Value>,
        patch: &[Value],
        depth: usize,
    ) -> Result<Vec<Value>, StrategicMergeError> {
        if depth > MAX_DEPTH {
            return Err(StrategicMergeError::TooDeep(MAX_DEPTH));
        }
        let list_type = self.list_type();
        match list_type {
            // Replaced as a whole; the items are still cleaned of nulls and directives.
            ListType::Atomic => patch
                .iter()
                .map(|item| self.fresh_value(item, depth + 1))
                .collect(),
            ListType::Set | ListType::Map(_) => {
                let merge_key = Self::merge_key(&list_type);
                self.merge_slice(original, patch, merge_key.as_deref(), depth)
            }
        }
    }

    /// Go `mergeSlice`: a list with `patchStrategy: merge`, of scalars (union) or of objects (by key).
    fn merge_slice(
        &mut self,
        original: Vec<Value>,
        patch: &[Value],
        merge_key: Option<&str>,
        depth: usize,
    ) -> Result<Vec<Value>, StrategicMergeError> {
        if original.is_empty() && patch.is_empty() {
            return Ok(original);
        }
        match element_kind(&[&original, patch])? {
            Some(ElementKind::Scalar) | None => {
                if merge_key.is_some() {
                    // Go unions the scalars, then fails partitioning them as maps.
                    let first = original.first().or(patch.first());
                    return Err(StrategicMergeError::WrongType {
                        expected: GO_MAP,
                        actual: first.map_or("<nil>", go_type),
                    });
                }
                let mut seen = HashSet::new();
                let merged: Vec<Value> = original
                    .iter()
                    .chain(patch)
                    .filter(|v| seen.insert(key_string(v)))
                    .cloned()
                    .collect();
                let patch_order: Vec<String> = patch.iter().map(key_string).collect();
                let server_order: Vec<String> = original.iter().map(key_string).collect();
                Ok(normalize_order(merged, &patch_order, &server_order, |v| {
                    Some(key_string(v))
                }))
            }
            Some(ElementKind::Map) => {
                let merge_key = merge_key.ok_or_else(|| self.no_merge_key())?;
                self.merge_map_slice(original, patch, merge_key, depth)
            }
        }
    }

    /// The object half of Go `mergeSlice`: list-item directives, then merge by key, then order.
    fn merge_map_slice(
        &mut self,
        mut original: Vec<Value>,
        patch: &[Value],
        merge_key: &str,
        depth: usize,
    ) -> Result<Vec<Value>, StrategicMergeError> {
        // Go `mergeSliceWithSpecialElements`: items carrying `$patch` act on the list and are dropped.
        let mut items: Vec<&Map<String, Value>> = Vec::with_capacity(patch.len());
        let mut replace = false;
        for item in patch {
            let item = as_map(item)?;
            let Some(directive) = item.get(DIRECTIVE) else {
                items.push(item);
                continue;
            };
            match directive.as_str() {
                Some("delete") => {
                    let value = item
                        .get(merge_key)
                        .ok_or_else(|| missing_merge_key(item, merge_key))?;
                    original.retain(|o| o.get(merge_key) != Some(value));
                }
                // Keep scanning: the other directive items must still be dropped.
                Some("replace") => replace = true,
                Some("merge") => return Err(StrategicMergeError::MergeDirectiveInList),
                _ => {
                    return Err(StrategicMergeError::UnknownPatchType {
                        directive: go_fmt_s(directive),
                        map: go_fmt_map(item),
                    });
                }
            }
        }
        if replace {
            // The list becomes exactly the non-directive items, in patch order, duplicates kept.
            original = items
                .iter()
                .map(|item| self.merge_map(Map::new(), item, depth + 1).map(Value::Object))
                .collect::<Result<_, _>>()?;
            items.clear();
        }

        // Go `mergeSliceWithoutSpecialElements`: merge into the first item with the same key, or append.
        let server_order = original
            .iter()
            .map(|item| merge_key_string(item, merge_key))
            .collect::<Result<Vec<String>, _>>()?;
        let mut position: HashMap<String, usize> = HashMap::new();
        for (i, key) in server_order.iter().enumerate() {
            position.entry(key.clone()).or_insert(i);
        }
        let mut merged = original;
        let mut patch_order = Vec::with_capacity(items.len());
        for item in items {
            let key = item
                .get(merge_key)
                .map(key_string)
                .ok_or_else(|| missing_merge_key(item, merge_key))?;
            match position.get(&key).and_then(|&i| merged.get_mut(i)) {
                Some(slot) => {
                    let current = match std::mem::take(slot) {
                        Value::Object(current) => current,
                        // Unreachable: every original item was checked to be an object above.
                        _ => Map::new(),
                    };
                    *slot = Value::Object(self.merge_map(current, item, depth + 1)?);
                }
                None => {
                    position.insert(key.clone(), merged.len());
                    merged.push(Value::Object(self.merge_map(Map::new(), item, depth + 1)?));
                }
            }
            patch_order.push(key);
        }
        Ok(normalize_order(merged, &patch_order, &server_order, |v| {
            v.get(merge_key).map(key_string)
        }))
    }

    /// Go `mergePatchIntoOriginal` for one `$setElementOrder/<field>`: merges `<field>` and puts the
    /// result in the given order. Returns the field, which the caller must not merge again.
    fn merge_ordered_list<'p>(
        &mut self,
        original: &mut Map<String, Value>,
        patch: &'p Map<String, Value>,
        key: &'p str,
        order: &Value,
        depth: usize,
    ) -> Result<&'p str, StrategicMergeError> {
        let Value::Array(order) = order else {
            return Err(StrategicMergeError::WrongType {
                expected: GO_SLICE,
                actual: go_type(order),
            });
        };
        let field =
            directive_field(key, SET_ELEMENT_ORDER).ok_or(StrategicMergeError::BadSetElementOrderFormat)?;
        let original_list = match original.get(field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(list)) => Some(list.clone()),
            Some(other) => {
                return Err(StrategicMergeError::WrongType {
                    expected: GO_SLICE,
                    actual: go_type(other),
                });
            }
        };
        let patch_list = match patch.get(field) {
            None => None,
            Some(Value::Array(list)) => Some(list.as_slice()),
            Some(other) => {
                return Err(StrategicMergeError::WrongType {
                    expected: GO_SLICE,
                    actual: go_type(other),
                });
            }
        };
        self.in_field(field, |m| {
            let list_type = m.list_type();
            let merge_key = Self::merge_key(&list_type);
            validate_order(patch_list.unwrap_or_default(), order, merge_key.as_deref())?;
            let merged = match (&original_list, patch_list) {
                (Some(current), None) => current.clone(),
                (None, Some(patch)) => m.merge_list(Vec::new(), patch, depth + 1)?,
                (Some(current), Some(patch)) => m.merge_list(current.clone(), patch, depth + 1)?,
                (None, None) => return Ok(()),
            };
            let server = original_list.unwrap_or_default();
            let merged = m.reorder(merged, order, &server, merge_key.as_deref())?;
            original.insert(field.to_owned(), Value::Array(merged));
            Ok(())
        })?;
        Ok(field)
    }

    /// Puts a merged list in `$setElementOrder` order: listed items as listed, the others where they
    /// were on the server (Go `normalizeElementOrder` with the order list as the patch order).
    fn reorder(
        &self,
        merged: Vec<Value>,
        order: &[Value],
        server: &[Value],
        merge_key: Option<&str>,
    ) -> Result<Vec<Value>, StrategicMergeError> {
        if merged.is_empty() {
            return Ok(merged);
        }
        match merge_key {
            Some(merge_key) => {
                let order_keys = order
                    .iter()
                    .map(|v| merge_key_string(v, merge_key))
                    .collect::<Result<Vec<_>, _>>()?;
                let server_keys = server
                    .iter()
                    .map(|v| merge_key_string(v, merge_key))
                    .collect::<Result<Vec<_>, _>>()?;
                for item in &merged {
                    merge_key_string(item, merge_key)?;
                }
                Ok(normalize_order(merged, &order_keys, &server_keys, |v| {
                    v.get(merge_key).map(key_string)
                }))
            }
            None => {
                // Scalars are their own key; objects without a merge key cannot be matched (Go panics).
                if merged.iter().any(|v| v.is_object() || v.is_array()) {
                    return Err(self.no_merge_key());
                }
                let order_keys: Vec<String> = order.iter().map(key_string).collect();
                let server_keys: Vec<String> = server.iter().map(key_string).collect();
                Ok(normalize_order(merged, &order_keys, &server_keys, |v| {
                    Some(key_string(v))
                }))
            }
        }
    }
}

/// `$deleteFromPrimitiveList/<field>`: removes every listed scalar from the list `field`.
fn delete_from_primitive_list(
    original: &mut Map<String, Value>,
    field: &str,
    deletion: &Value,
) -> Result<(), StrategicMergeError> {
    let deletion = match deletion {
        // Go treats a null parallel list like any null: the list itself is deleted.
        Value::Null => {
            remove_key(original, field);
            return Ok(());
        }
        Value::Array(deletion) => deletion,
        _ => return Err(StrategicMergeError::BadPrimitiveListFormat),
    };
    let Some(Value::Array(list)) = original.get_mut(field) else {
        return Ok(());
    };
    if element_kind(&[list, deletion])? == Some(ElementKind::Map) {
        return Err(StrategicMergeError::BadPrimitiveListFormat);
    }
    let doomed: HashSet<String> = deletion.iter().map(key_string).collect();
    list.retain(|v| !doomed.contains(&key_string(v)));
    Ok(())
}

/// Go `applyRetainKeysDirective` (server side): every key the patch sets must be retained, and keys of
/// the original that are not retained are dropped before merging.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    retain: &Value,
) -> Result<(), StrategicMergeError> {
    let Value::Array(retain) = retain else {
        return Err(StrategicMergeError::BadRetainKeysFormat);
    };
    let retained: HashSet<&str> = retain.iter().filter_map(Value::as_str).collect();
    for (key, value) in patch {
        if key == RETAIN_KEYS
            || value.is_null()
            || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || key.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !retained.contains(key.as_str()) {
            return Err(StrategicMergeError::BadRetainKeysFormat);
        }
    }
    original.retain(|key, _| retained.contains(key.as_str()));
    Ok(())
}

/// Go `validatePatchWithSetOrderList`: the non-directive patch items must appear in the order list, in
/// the same relative order.
fn validate_order(
    patch: &[Value],
    order: &[Value],
    merge_key: Option<&str>,
) -> Result<(), StrategicMergeError> {
    if patch.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut items = Vec::with_capacity(patch.len());
    for item in patch {
        if merge_key.is_some() || item.is_object() {
            // Directive items (deletions, replace markers) take no place in the order.
            if as_map(item)?.contains_key(DIRECTIVE) {
                continue;
            }
        }
        items.push(item);
    }
    let mut next = 0;
    for wanted in order {
        let Some(item) = items.get(next) else { break };
        let equal = match merge_key {
            None => *item == wanted,
            Some(merge_key) => {
                let left = as_map(item)?;
                let right = as_map(wanted)?;
                let left = left
                    .get(merge_key)
                    .ok_or_else(|| missing_merge_key(left, merge_key))?;
                let right = right
                    .get(merge_key)
                    .ok_or_else(|| missing_merge_key(right, merge_key))?;
                left == right
            }
        };
        if equal {
            next += 1;
        }
    }
    if next < items.len() {
        return Err(StrategicMergeError::OrderMismatch {
            patch: go_fmt_list(patch),
            order: go_fmt_list(order),
        });
    }
    Ok(())
}

/// Go `normalizeElementOrder`: patch items in patch order, server-only items in server order, the two
/// interleaved by their server positions (Go `mergeSortedSlice`). Keys are canonical JSON strings.
fn normalize_order(
    merged: Vec<Value>,
    patch_order: &[String],
    server_order: &[String],
    key_of: impl Fn(&Value) -> Option<String>,
) -> Vec<Value> {
    let patch_index = first_positions(patch_order);
    let server_index = first_positions(server_order);
    // (sort position, position on the server, item)
    let mut patch_items: Vec<(usize, Option<usize>, Value)> = Vec::new();
    let mut server_items: Vec<(usize, Option<usize>, Value)> = Vec::new();
    for item in merged {
        let key = key_of(&item);
        let on_server = key.as_deref().and_then(|k| server_index.get(k)).copied();
        match key.as_deref().and_then(|k| patch_index.get(k)).copied() {
            Some(in_patch) => patch_items.push((in_patch, on_server, item)),
            // Items missing from the server order go last (Go's comparator is not a strict order there;
            // it cannot happen for lists built by this module).
            None => server_items.push((on_server.unwrap_or(usize::MAX), on_server, item)),
        }
    }
    // Stable, like Go's sort.SliceStable.
    patch_items.sort_by_key(|(position, _, _)| *position);
    server_items.sort_by_key(|(position, _, _)| *position);

    // Go `mergeSortedSlice(serverOnly, patch)`: a server item goes first only when both it and the next
    // patch item are on the server and it was before; new patch items therefore come as early as they can.
    let mut out = Vec::with_capacity(patch_items.len() + server_items.len());
    let mut server_items = server_items.into_iter().peekable();
    let mut patch_items = patch_items.into_iter().peekable();
    loop {
        let take_server = match (server_items.peek(), patch_items.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some((_, left, _)), Some((_, right, _))) => matches!((left, right), (Some(l), Some(r)) if l < r),
        };
        let next = if take_server {
            server_items.next()
        } else {
            patch_items.next()
        };
        if let Some((_, _, item)) = next {
            out.push(item);
        }
    }
    out
}

/// Position of the first occurrence of each key (Go `index` returns the first match).
fn first_positions(keys: &[String]) -> HashMap<&str, usize> {
    let mut index = HashMap::with_capacity(keys.len());
    for (i, key) in keys.iter().enumerate() {
        index.entry(key.as_str()).or_insert(i);
    }
    index
}

/// The kind shared by all items of `lists`, `None` when they are all empty. Go requires one element
/// type per merging list (`sliceElementType`); integers and floats count as one type here.
fn element_kind(lists: &[&[Value]]) -> Result<Option<ElementKind>, StrategicMergeError> {
    let mut seen: Option<&'static str> = None;
    for item in lists.iter().flat_map(|list| list.iter()) {
        if item.is_array() {
            return Err(StrategicMergeError::ListOfLists);
        }
        let kind = match item {
            Value::Number(_) => "number",
            other => go_type(other),
        };
        match seen {
            None => seen = Some(kind),
            Some(previous) if previous == kind => {}
            Some(_) => {
                let all: Vec<String> = lists.iter().map(|list| go_fmt_list(list)).collect();
                return Err(StrategicMergeError::MixedListElements(format!(
                    "[{}]",
                    all.join(" ")
                )));
            }
        }
    }
    Ok(seen.map(|kind| {
        if kind == GO_MAP {
            ElementKind::Map
        } else {
            ElementKind::Scalar
        }
    }))
}

/// The field a parallel directive key names (Go `extractKey`): `<prefix>/<field>`, prefix exact.
fn directive_field<'k>(key: &'k str, prefix: &str) -> Option<&'k str> {
    match key.split_once('/') {
        Some((head, field)) if head == prefix => Some(field),
        _ => None,
    }
}

/// Removes `key` keeping the order of the other fields (`Map::remove` swaps under `preserve_order`).
fn remove_key(map: &mut Map<String, Value>, key: &str) {
    if map.contains_key(key) {
        map.retain(|k, _| k != key);
    }
}

fn as_map(item: &Value) -> Result<&Map<String, Value>, StrategicMergeError> {
    item.as_object().ok_or(StrategicMergeError::WrongType {
        expected: GO_MAP,
        actual: go_type(item),
    })
}

fn missing_merge_key(item: &Map<String, Value>, merge_key: &str) -> StrategicMergeError {
    StrategicMergeError::MissingMergeKey {
        map: go_fmt_map(item),
        key: merge_key.to_owned(),
    }
}

/// The canonical key of an item of a keyed list, checking it is an object that has the key.
fn merge_key_string(item: &Value, merge_key: &str) -> Result<String, StrategicMergeError> {
    let map = as_map(item)?;
    map.get(merge_key)
        .map(key_string)
        .ok_or_else(|| missing_merge_key(map, merge_key))
}

/// A hashable identity for a JSON value. Equal exactly when the values are `==` (Go `==` on decoded
/// JSON: `1` and `1.0` differ), since both come from the same number representation.
fn key_string(value: &Value) -> String {
    value.to_string()
}

/// Go's `reflect.TypeOf(v).String()` for a decoded JSON value.
fn go_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => GO_SLICE,
        Value::Object(_) => GO_MAP,
    }
}

/// Go's `%v` of a decoded JSON value: `map[k:v ...]` with sorted keys, `[a b]`, bare strings.
fn go_fmt(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => s.clone(),
        Value::Array(list) => go_fmt_list(list),
        Value::Object(map) => go_fmt_map(map),
    }
}

fn go_fmt_list(list: &[Value]) -> String {
    let items: Vec<String> = list.iter().map(go_fmt).collect();
    format!("[{}]", items.join(" "))
}

fn go_fmt_map(map: &Map<String, Value>) -> String {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let items: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{k}:{}", go_fmt(v)))
        .collect();
    format!("map[{}]", items.join(" "))
}

/// Go's `%s` of a decoded JSON value: strings bare, other scalars as `%!s(type=value)`.
fn go_fmt_s(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => go_fmt(value),
        Value::Null => "%!s(<nil>)".to_owned(),
        other => format!("%!s({}={})", go_type(other), go_fmt(other)),
    }
}
