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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::structure::BuiltinStructure;

    fn json(text: &str) -> Value {
        serde_json::from_str(text).expect("test JSON parses")
    }

    fn smp(original: &Value, patch: &str) -> Result<Value, StrategicMergeError> {
        strategic_merge(original, &json(patch), &BuiltinStructure)
    }

    /// What the apiserver does between the merge and the response that this module does not: default
    /// new containers, and bump resourceVersion/generation (dropped on both sides of the comparison).
    fn as_stored(mut object: Value) -> Value {
        if let Some(containers) = object
            .pointer_mut("/spec/template/spec/containers")
            .and_then(Value::as_array_mut)
        {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                container.entry("resources").or_insert_with(|| json("{}"));
                container
                    .entry("terminationMessagePath")
                    .or_insert_with(|| "/dev/termination-log".into());
                container
                    .entry("terminationMessagePolicy")
                    .or_insert_with(|| "File".into());
                container
                    .entry("imagePullPolicy")
                    .or_insert_with(|| "IfNotPresent".into());
            }
        }
        if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
            metadata.remove("resourceVersion");
            metadata.remove("generation");
        }
        object
    }

    /// Replays one recorded PATCH: `before` patched with `patch` must give the recorded `after`.
    fn replay(before: &Value, patch: &str, after: &str) -> Value {
        let merged = smp(before, patch).expect("recorded patch applies");
        assert_eq!(as_stored(merged.clone()), as_stored(json(after)));
        merged
    }

    fn has_directive(value: &Value) -> bool {
        match value {
            Value::Object(map) => map.iter().any(|(k, v)| k.starts_with('$') || has_directive(v)),
            Value::Array(list) => list.iter().any(has_directive),
            _ => false,
        }
    }

    fn containers(object: &Value) -> &Vec<Value> {
        object
            .pointer("/spec/template/spec/containers")
            .and_then(Value::as_array)
            .expect("containers")
    }

    /// `08-patch/00-create-deployment.http` response (managedFields dropped).
    const CREATED: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"793","generation":1,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web","tier":"front"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.25","ports":[{"containerPort":80,"protocol":"TCP"}],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"},{"name":"sidecar","image":"busybox:1.36","command":["sleep","3600"],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
    /// `08-patch/01-strategic-merge-containers-by-name.http` response (managedFields dropped).
    const AFTER_01: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"794","generation":2,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web","tier":"front"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.26","ports":[{"containerPort":80,"protocol":"TCP"}],"env":[{"name":"A","value":"10"},{"name":"C","value":"3"},{"name":"B","value":"2"}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"},{"name":"sidecar","image":"busybox:1.36","command":["sleep","3600"],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
    /// `08-patch/01-strategic-merge-containers-by-name.http` request body.
    const PATCH_01: &str = r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.26","env":[{"name":"A","value":"10"},{"name":"C","value":"3"}]}]}}}}"#;
    /// `08-patch/02-strategic-merge-patch-delete-directive.http` response (managedFields dropped).
    const AFTER_02: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"795","generation":3,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web","tier":"front"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.26","ports":[{"containerPort":80,"protocol":"TCP"}],"env":[{"name":"A","value":"10"},{"name":"C","value":"3"}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
    /// `08-patch/02-strategic-merge-patch-delete-directive.http` request body.
    const PATCH_02: &str = r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"},{"name":"app","env":[{"name":"B","$patch":"delete"}]}]}}}}"#;
    /// `08-patch/03-strategic-merge-patch-replace-directive.http` response (managedFields dropped).
    const AFTER_03: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"796","generation":4,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web","tier":"front"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"only","image":"redis:7","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
    /// `08-patch/03-strategic-merge-patch-replace-directive.http` request body.
    const PATCH_03: &str = r#"{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"redis:7"},{"$patch":"replace"}]}}}}"#;
    /// `08-patch/04-strategic-merge-null-deletes-map-key.http` response (managedFields dropped).
    const AFTER_04: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"797","generation":4,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"only","image":"redis:7","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
    /// `08-patch/04-strategic-merge-null-deletes-map-key.http` request body.
    const PATCH_04: &str = r#"{"metadata":{"labels":{"tier":null}}}"#;
    /// `08-patch/06-merge-patch-null-deletes.http` response (managedFields dropped).
    const AFTER_06: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"799","generation":6,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web"},"annotations":{"keep":"yes"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.27","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
    /// `08-patch/07-strategic-merge-setElementOrder.http` response (managedFields dropped).
    const AFTER_07: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"802","generation":7,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web"},"annotations":{"keep":"yes"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"side","image":"busybox:1.36","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"},{"name":"app","image":"nginx:1.27","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
    /// `08-patch/07-strategic-merge-setElementOrder.http` request body.
    const PATCH_07: &str = r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"side"},{"name":"app"}],"containers":[{"name":"side","image":"busybox:1.36"}]}}}}"#;
    /// `08-patch/08-strategic-merge-deleteFromPrimitiveList.http` response (managedFields dropped).
    const AFTER_08: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"804","generation":7,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web"},"annotations":{"keep":"yes"},"finalizers":["example.com/a","example.com/c"]},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"side","image":"busybox:1.36","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"},{"name":"app","image":"nginx:1.27","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
    /// `08-patch/08-strategic-merge-deleteFromPrimitiveList.http` request body.
    const PATCH_08: &str = r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["example.com/b"]}}"#;

    #[test]
    fn recorded_01_containers_and_env_merge_by_name() {
        let after = replay(&json(CREATED), PATCH_01, AFTER_01);
        // The new env item follows the patch item before it, not the end of the list.
        let env = after
            .pointer("/spec/template/spec/containers/0/env")
            .expect("env");
        assert_eq!(
            env,
            &json(r#"[{"name":"A","value":"10"},{"name":"C","value":"3"},{"name":"B","value":"2"}]"#)
        );
    }

    #[test]
    fn recorded_02_patch_delete_removes_items_by_merge_key() {
        replay(&json(AFTER_01), PATCH_02, AFTER_02);
    }

    #[test]
    fn recorded_03_patch_replace_in_list_replaces_the_list() {
        let after = replay(&json(AFTER_02), PATCH_03, AFTER_03);
        // Exactly the patch's item (the server then defaults it).
        assert_eq!(
            Value::Array(containers(&after).clone()),
            json(r#"[{"name":"only","image":"redis:7"}]"#)
        );
    }

    #[test]
    fn recorded_04_null_deletes_a_map_key() {
        replay(&json(AFTER_03), PATCH_04, AFTER_04);
    }

    #[test]
    fn recorded_07_set_element_order_adds_and_orders() {
        replay(&json(AFTER_06), PATCH_07, AFTER_07);
    }

    #[test]
    fn recorded_08_delete_from_primitive_list() {
        // The recording's unrecorded write in between (resourceVersion 803) set finalizers [a, b, c].
        let mut before = json(AFTER_07);
        before["metadata"]["finalizers"] = json(r#"["example.com/a","example.com/b","example.com/c"]"#);
        replay(&before, PATCH_08, AFTER_08);
    }

    #[test]
    fn nested_lists_merge_by_their_own_keys() {
        let original = json(
            r#"{"spec":{"template":{"spec":{"containers":[
                {"name":"app","ports":[{"containerPort":80,"protocol":"TCP"},{"containerPort":9090,"protocol":"TCP"}],
                 "env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},
                {"name":"side","env":[{"name":"A","value":"side"}]}]}}}}"#,
        );
        let patch = r#"{"spec":{"template":{"spec":{"containers":[
            {"name":"app","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],
             "env":[{"name":"B","value":null,"valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]}]}}}}"#;
        let merged = smp(&original, patch).expect("merges");
        let app = &containers(&merged)[0];
        assert_eq!(
            app["ports"],
            json(
                r#"[{"containerPort":80,"protocol":"TCP","name":"http"},{"containerPort":443},{"containerPort":9090,"protocol":"TCP"}]"#
            )
        );
        assert_eq!(
            app["env"],
            json(
                r#"[{"name":"A","value":"1"},{"name":"B","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]"#
            )
        );
        // The other container's env with the same key is untouched.
        assert_eq!(
            containers(&merged)[1],
            original["spec"]["template"]["spec"]["containers"][1]
        );
    }

    #[test]
    fn empty_and_null_patches_are_no_ops() {
        let original = json(CREATED);
        assert_eq!(smp(&original, "{}"), Ok(original.clone()));
        assert_eq!(smp(&original, "null"), Ok(original.clone()));
    }

    #[test]
    fn null_on_a_missing_key_is_ignored() {
        let original = json(CREATED);
        assert_eq!(
            smp(
                &original,
                r#"{"spec":{"paused":null},"metadata":{"labels":{"nope":null}}}"#
            ),
            Ok(original.clone())
        );
        // Under a map that does not exist yet the null vanishes too (Go would store it).
        let merged = smp(
            &original,
            r#"{"metadata":{"annotations":{"gone":null,"kept":"1"}}}"#,
        )
        .expect("merges");
        assert_eq!(merged["metadata"]["annotations"], json(r#"{"kept":"1"}"#));
    }

    #[test]
    fn null_replaces_stored_null_with_a_map() {
        let original = json(CREATED);
        let merged = smp(
            &original,
            r#"{"spec":{"template":{"metadata":{"creationTimestamp":{"a":1}}}}}"#,
        )
        .expect("merges");
        assert_eq!(
            merged["spec"]["template"]["metadata"]["creationTimestamp"],
            json(r#"{"a":1}"#)
        );
    }

    #[test]
    fn map_directives() {
        let original = json(CREATED);
        let replaced = smp(
            &original,
            r#"{"spec":{"strategy":{"$patch":"replace","type":"Recreate"}}}"#,
        )
        .expect("replaces");
        assert_eq!(replaced["spec"]["strategy"], json(r#"{"type":"Recreate"}"#));
        // Go gives the map back empty rather than removing the key.
        let deleted = smp(&original, r#"{"spec":{"strategy":{"$patch":"delete"}}}"#).expect("deletes");
        assert_eq!(deleted["spec"]["strategy"], json("{}"));
        let err = smp(
            &original,
            r#"{"spec":{"strategy":{"$patch":"merge","type":"Recreate"}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown patch type: merge in map: map[$patch:merge type:Recreate]"
        );
        assert_eq!(err.status_code(), 500);
        let err = smp(&original, r#"{"spec":{"$patch":5}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown patch type: %!s(int64=5) in map: map[$patch:5]"
        );
    }

    #[test]
    fn retain_keys_drops_unlisted_fields() {
        let original = json(CREATED);
        let merged = smp(
            &original,
            r#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}"#,
        )
        .expect("merges");
        assert_eq!(merged["spec"]["strategy"], json(r#"{"type":"Recreate"}"#));
        let err = smp(
            &original,
            r#"{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{}}}}"#,
        )
        .unwrap_err();
        assert_eq!(err, StrategicMergeError::BadRetainKeysFormat);
        assert_eq!(err.status_code(), 400);
        let err = smp(&original, r#"{"spec":{"strategy":{"$retainKeys":"type"}}}"#).unwrap_err();
        assert_eq!(err, StrategicMergeError::BadRetainKeysFormat);
    }

    #[test]
    fn primitive_merge_lists_union_in_patch_order() {
        let original = json(r#"{"metadata":{"finalizers":["x","a"]}}"#);
        let merged = smp(&original, r#"{"metadata":{"finalizers":["b","a"]}}"#).expect("merges");
        assert_eq!(merged["metadata"]["finalizers"], json(r#"["b","x","a"]"#));
        let ordered = smp(
            &original,
            r#"{"metadata":{"$setElementOrder/finalizers":["a","x"]}}"#,
        )
        .expect("reorders");
        assert_eq!(ordered["metadata"]["finalizers"], json(r#"["a","x"]"#));
        // Additions and deletions of one patch: the deletion sees the merged list.
        let both = smp(
            &original,
            r#"{"metadata":{"finalizers":["c"],"$deleteFromPrimitiveList/finalizers":["x","absent"]}}"#,
        )
        .expect("merges");
        assert_eq!(both["metadata"]["finalizers"], json(r#"["c","a"]"#));
        // Deleting from a list that is not there changes nothing.
        let none = json(r#"{"metadata":{}}"#);
        assert_eq!(
            smp(
                &none,
                r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["x"]}}"#
            ),
            Ok(none.clone())
        );
    }

    #[test]
    fn atomic_lists_are_replaced() {
        let original = json(r#"{"spec":{"tolerations":[{"key":"a"},{"key":"b"}],"args":["1","2"]}}"#);
        let merged = smp(
            &original,
            r#"{"spec":{"tolerations":[{"key":"c","value":null}],"args":["3"]}}"#,
        )
        .expect("merges");
        assert_eq!(
            merged,
            json(r#"{"spec":{"tolerations":[{"key":"c"}],"args":["3"]}}"#)
        );
    }

    #[test]
    fn list_item_directives() {
        let original = json(AFTER_01);
        // Deleting an absent item is fine; replace with no items empties the list.
        let merged = smp(
            &original,
            r#"{"spec":{"template":{"spec":{"containers":[{"name":"nope","$patch":"delete"}]}}}}"#,
        )
        .expect("merges");
        assert_eq!(merged, original);
        let emptied = smp(
            &original,
            r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"replace"}]}}}}"#,
        )
        .expect("merges");
        assert_eq!(containers(&emptied), &Vec::<Value>::new());
        let err = smp(
            &original,
            r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"merge"}]}}}}"#,
        )
        .unwrap_err();
        assert_eq!(err, StrategicMergeError::MergeDirectiveInList);
        let err = smp(
            &original,
            r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete"}]}}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "map: map[$patch:delete] does not contain declared merge key: name"
        );
        let err = smp(
            &original,
            r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"zap"}]}}}}"#,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "unknown patch type: zap in map: map[$patch:zap]");
    }

    #[test]
    fn patch_items_need_the_merge_key() {
        let err = smp(
            &json(CREATED),
            r#"{"spec":{"template":{"spec":{"containers":[{"image":"nginx"}]}}}}"#,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "map: map[image:nginx] does not contain declared merge key: name"
        );
        assert_eq!(err.status_code(), 500);
    }

    #[test]
    fn directives_never_leak_into_new_fields() {
        let patch = r#"{"spec":{"template":{"spec":{
            "initContainers":[{"name":"gone","$patch":"delete"},{"name":"i","env":[{"name":"X","value":null}],
                              "securityContext":{"$patch":"replace","runAsUser":1},
                              "$setElementOrder/env":[{"name":"X"}]}],
            "volumes":[{"name":"v","emptyDir":{}},{"$patch":"replace"}]}}}}"#;
        let merged = smp(&json(CREATED), patch).expect("merges");
        assert!(!has_directive(&merged), "{merged}");
        assert_eq!(
            merged["spec"]["template"]["spec"]["initContainers"],
            json(r#"[{"name":"i","env":[{"name":"X"}],"securityContext":{"runAsUser":1}}]"#)
        );
        assert_eq!(
            merged["spec"]["template"]["spec"]["volumes"],
            json(r#"[{"name":"v","emptyDir":{}}]"#)
        );
    }

    #[test]
    fn set_element_order_checks() {
        let original = json(AFTER_07);
        let err = smp(
            &original,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"},{"name":"side"}],
                "containers":[{"name":"side","image":"x"},{"name":"app","image":"y"}]}}}}"#,
        )
        .unwrap_err();
        assert!(matches!(err, StrategicMergeError::OrderMismatch { .. }), "{err}");
        // Only the order changes when the list itself is not in the patch.
        let reordered = smp(
            &original,
            r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"},{"name":"side"}]}}}}"#,
        )
        .expect("reorders");
        let names: Vec<&Value> = containers(&reordered).iter().map(|c| &c["name"]).collect();
        assert_eq!(names, [&json(r#""app""#), &json(r#""side""#)]);
        let err = smp(&original, r#"{"spec":{"$setElementOrder":[]}}"#).unwrap_err();
        assert_eq!(err, StrategicMergeError::BadSetElementOrderFormat);
        let err = smp(&original, r#"{"spec":{"$setElementOrder/x":"y"}}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "expected a []interface {}, but received a string"
        );
        let err = smp(
            &original,
            r#"{"metadata":{"$deleteFromPrimitiveListX/finalizers":["a"]}}"#,
        )
        .unwrap_err();
        assert_eq!(err, StrategicMergeError::BadPrimitiveListFormat);
        let err = smp(
            &original,
            r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":"a"}}"#,
        )
        .unwrap_err();
        assert_eq!(err, StrategicMergeError::BadPrimitiveListFormat);
    }

    #[test]
    fn malformed_lists() {
        let original = json(r#"{"metadata":{"finalizers":["a"]}}"#);
        let err = smp(&original, r#"{"metadata":{"finalizers":[["b"]]}}"#).unwrap_err();
        assert_eq!(
            (err.to_string().as_str(), err.status_code()),
            ("lists of lists are not supported", 422)
        );
        let err = smp(&original, r#"{"metadata":{"finalizers":[1]}}"#).unwrap_err();
        assert_eq!(err.to_string(), "list element types are not identical: [[a] [1]]");
        let err = smp(&original, r#"{"metadata":{"finalizers":[{"a":1}]}}"#).unwrap_err();
        assert!(matches!(err, StrategicMergeError::MixedListElements(_)), "{err}");
        let err = smp(
            &json(CREATED),
            r#"{"spec":{"template":{"spec":{"containers":["app"]}}}}"#,
        )
        .unwrap_err();
        assert!(matches!(err, StrategicMergeError::MixedListElements(_)), "{err}");
    }

    #[test]
    fn non_object_patches_are_rejected_like_the_apiserver() {
        let original = json(CREATED);
        for (patch, kind) in [
            ("[]", "array"),
            (r#""x""#, "string"),
            ("1", "number"),
            ("true", "bool"),
        ] {
            let err = smp(&original, patch).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}")
            );
            assert_eq!(err.status_code(), 400);
        }
        assert_eq!(
            strategic_merge(&json("[]"), &json("{}"), &BuiltinStructure),
            Err(StrategicMergeError::OriginalNotObject)
        );
    }

    #[test]
    fn deep_values_error_instead_of_overflowing() {
        fn nest(depth: usize) -> Value {
            let mut value = json(r#"{"leaf":1}"#);
            for _ in 0..depth {
                let mut map = Map::new();
                map.insert("a".into(), value);
                value = Value::Object(map);
            }
            value
        }
        assert!(strategic_merge(&nest(120), &nest(120), &BuiltinStructure).is_ok());
        assert_eq!(
            strategic_merge(&json("{}"), &nest(1000), &BuiltinStructure),
            Err(StrategicMergeError::TooDeep(MAX_DEPTH))
        );
        assert_eq!(
            strategic_merge(&nest(1000), &nest(1000), &BuiltinStructure),
            Err(StrategicMergeError::TooDeep(MAX_DEPTH))
        );
    }
}
