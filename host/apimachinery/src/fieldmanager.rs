//! Server-side apply and `metadata.managedFields` bookkeeping, the way kube-apiserver v1.28 does it
//! (`sigs.k8s.io/structured-merge-diff` v4.2 plus the apiserver's field-manager chain).
//!
//! This module owns:
//! - [`FieldSet`]: a set of field paths, with the exact `fieldsV1` JSON form ([`FieldSet::from_fields_v1`],
//!   [`FieldSet::to_fields_v1`]) and the set algebra ownership needs.
//! - [`ManagedFieldsEntry`]: one `metadata.managedFields` item, decoded and encoded the way the real
//!   server does (validation, time normalisation, the sort order of rule 19, the 10-updater cap).
//! - [`FieldManager::update`]: ownership after a create / PUT / non-apply PATCH.
//! - [`FieldManager::apply`]: server-side apply (merge, pruning of dropped fields, conflicts, force).
//!
//! It knows nothing about HTTP, storage or strategies: the caller decodes `managedFields`
//! ([`managed_fields_for_update`], [`decode_managed_fields`]), calls one of the two operations and writes
//! the result back with [`set_managed_fields`]. How lists merge comes from a [`Structure`]; `metadata`
//! is always `ObjectMeta`, so its lists (`finalizers` a set, `ownerReferences` a map of atomic items
//! keyed by `uid`) are known here whatever the structure says.
//!
//! How the server calls it (`FieldManager { subresource, reset, .. }` per request):
//! - create / PUT / JSON, merge or strategic patch: `update(stored, &final_object,
//!   managed_fields_for_update(&final_object, stored, is_subresource))`, then [`set_managed_fields`]
//!   on the object to store. Pass the object after defaulting and the strategy's resets; on create
//!   `stored` is `None` (or the kind's zero object, for built-ins whose zero value has nested structs).
//! - apply: `apply(stored, &config, decode_managed_fields(stored)?, force)`; map
//!   [`ApplyError::Conflicts`] to a 409 with [`ApplyError::causes`], then reset strategy-owned fields
//!   and [`set_managed_fields`] on [`ApplyOutcome::object`].
//! - `reset`: `status` for the main resource of a kind with a status subresource; for `/status`,
//!   everything the status strategy restores (`apiVersion`, `kind`, `metadata`, `spec` for custom
//!   resources).
//! - A write whose object and managedFields both equal the stored ones is a no-op (rule 21).
//!
//! JSON objects here are `serde_json` maps: with the `preserve_order` feature, `fieldsV1` and entry
//! keys come out in the real server's order; without it, sorted by key (the same except where numeric
//! keys sort differently as text, e.g. `k:{"port":443}` before `k:{"port":80}`).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{self, Write as _};

use serde_json::{Map, Value};

use crate::gofmt::{go_float, go_json, go_json_string, go_quote};
use crate::structure::{ListType, Structure};

/// Update managers beyond this many are merged, oldest first, into `ancient-changes` buckets.
const MAX_UPDATE_MANAGERS: usize = 10;
/// Manager name of the bucket that holds merged old updates.
const ANCIENT_CHANGES: &str = "ancient-changes";

// ---------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------

/// Bad input: malformed `fieldsV1`/`managedFields`, or an object that does not fit its structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldManagerError {
    /// A `fieldsV1` document that is not a valid field set.
    #[error("invalid fieldsV1: {0}")]
    FieldsV1(String),
    /// A `metadata.managedFields` list or entry that cannot be decoded.
    #[error("invalid managedFields: {0}")]
    ManagedFields(String),
    /// An object whose lists do not fit the structure (list-map item without its key, duplicates).
    #[error("{0}")]
    Object(String),
}

/// Why a server-side apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields the configuration changes are owned by other managers: HTTP 409 `Conflict`, with
    /// [`ApplyError::causes`] as `details.causes`. The Display text is the real server's message.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration carries `metadata.managedFields` (HTTP 400 BadRequest).
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInConfig,
    /// The configuration or the live object does not fit the structure (duplicate list-map keys,
    /// an item without its key field, a configuration that is not an object).
    #[error("{0}")]
    Invalid(String),
}

impl From<FieldManagerError> for ApplyError {
    fn from(e: FieldManagerError) -> Self {
        ApplyError::Invalid(e.to_string())
    }
}

impl ApplyError {
    /// The `details.causes` of the 409 Status: one `FieldManagerConflict` per (manager, field).
    /// Empty for the other variants.
    pub fn causes(&self) -> Vec<Value> {
        match self {
            ApplyError::Conflicts(conflicts) => conflicts.iter().map(Conflict::cause).collect(),
            _ => Vec::new(),
        }
    }
}

/// One field of the applied configuration that another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// How the other manager got the field.
    pub operation: Operation,
    /// The other manager's `apiVersion` (printed for Update managers only).
    pub api_version: String,
    /// The other manager's subresource, if any.
    pub subresource: Option<String>,
    /// The field as the real server prints it: `.data.a`, `.spec.containers[name="x"].image`.
    pub field: String,
}

impl Conflict {
    /// The manager as the real server names it in messages: `"applier-one"`,
    /// `"editor" using v1`, `"ctrl" with subresource "status" using v1`.
    pub fn manager_description(&self) -> String {
        let mut s = go_quote(&self.manager);
        if let Some(sub) = &self.subresource {
            let _ = write!(s, " with subresource {}", go_quote(sub));
        }
        if self.operation == Operation::Update {
            let _ = write!(s, " using {}", self.api_version);
        }
        s
    }

    /// The `details.causes` item: `{"reason":"FieldManagerConflict","message":..,"field":..}`.
    pub fn cause(&self) -> Value {
        let mut m = Map::new();
        m.insert("reason".into(), Value::String("FieldManagerConflict".into()));
        m.insert(
            "message".into(),
            Value::String(format!("conflict with {}", self.manager_description())),
        );
        m.insert("field".into(), Value::String(self.field.clone()));
        Value::Object(m)
    }

    fn identity(&self) -> Identity {
        Identity::new(
            &self.manager,
            self.operation,
            &self.api_version,
            self.subresource.as_deref(),
        )
    }
}

/// The real server's conflict message (`getConflictMessage`): one conflict is printed inline, more
/// are grouped by manager, managers sorted by their identifier.
fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager_description(),
            only.field
        );
    }
    let mut groups: BTreeMap<String, (String, Vec<&str>)> = BTreeMap::new();
    for c in conflicts {
        groups
            .entry(c.identity().json())
            .or_insert_with(|| (c.manager_description(), Vec::new()))
            .1
            .push(&c.field);
    }
    let mut lines = Vec::new();
    for (description, fields) in groups.values() {
        lines.push(format!("conflicts with {description}:"));
        lines.extend(fields.iter().map(|f| format!("- {f}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

// ---------------------------------------------------------------------------------------------------
// Path elements
// ---------------------------------------------------------------------------------------------------

/// One step of a field path.
#[derive(Debug, Clone)]
pub enum PathElement {
    /// `f:name`: a field of a struct or a key of a map.
    Field(String),
    /// `k:{"name":"a"}`: a list-map item, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// `v:"a"`: a set-list item, by value.
    Value(Value),
    /// `i:0`: a list item by position. Never produced here; kept when read from `fieldsV1`.
    Index(i64),
}

impl PathElement {
    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `fieldsV1` key: `f:name`, `k:{"name":"a"}`, `v:"a"`, `i:0`.
    pub fn to_fields_v1_key(&self) -> String {
        let mut s = String::new();
        match self {
            PathElement::Field(name) => {
                s.push_str("f:");
                s.push_str(name);
            }
            PathElement::Key(fields) => {
                s.push_str("k:{");
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        s.push(',');
                    }
                    s.push_str(&go_json_string(name));
                    s.push(':');
                    s.push_str(&go_json(value));
                }
                s.push('}');
            }
            PathElement::Value(value) => {
                s.push_str("v:");
                s.push_str(&go_json(value));
            }
            PathElement::Index(i) => {
                let _ = write!(s, "i:{i}");
            }
        }
        s
    }

    /// Parses a `fieldsV1` key. `Ok(None)` for an unknown element type (`x:...`), which the real
    /// server drops rather than rejects.
    pub fn from_fields_v1_key(key: &str) -> Result<Option<PathElement>, FieldManagerError> {
        let bytes = key.as_bytes();
        if bytes.len() < 2 {
            return Err(FieldManagerError::FieldsV1(format!(
                "key must be 2 characters long: {key:?}"
            )));
        }
        if bytes[1] != b':' {
            return Err(FieldManagerError::FieldsV1(format!("missing colon: {key:?}")));
        }
        // bytes[1] is ':' so bytes[0] is a one-byte character and index 2 is a char boundary.
        let rest = &key[2..];
        let bad = |what: &str| FieldManagerError::FieldsV1(format!("{what} in {key:?}"));
        Ok(Some(match bytes[0] {
            b'f' => PathElement::Field(rest.to_string()),
            b'k' => {
                let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(rest) else {
                    return Err(bad("key is not a JSON object"));
                };
                let mut fields: Vec<(String, Value)> = obj.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                PathElement::Key(fields)
            }
            b'v' => PathElement::Value(serde_json::from_str(rest).map_err(|_| bad("value is not JSON"))?),
            b'i' => PathElement::Index(rest.parse().map_err(|_| bad("index is not an integer"))?),
            _ => return Ok(None),
        }))
    }
}

impl Ord for PathElement {
    /// structured-merge-diff's order: fields, then keys, then values, then indices.
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((an, av), (bn, bv)) in a.iter().zip(b) {
                    let c = an.cmp(bn).then_with(|| value_cmp(av, bv));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => value_cmp(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

impl fmt::Display for PathElement {
    /// The real server's path syntax: `.name`, `[name="a",port=80]`, `[="a"]`, `[0]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                let parts: Vec<String> = fields
                    .iter()
                    .map(|(n, v)| format!("{n}={}", go_value_string(v)))
                    .collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={}]", go_value_string(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as the real server prints it in conflicts: `.spec.containers[name="x"].image`.
pub fn path_to_string(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

// ---------------------------------------------------------------------------------------------------
// FieldSet
// ---------------------------------------------------------------------------------------------------

/// A set of field paths, stored as a tree like structured-merge-diff's `fieldpath.Set`: at each
/// level, `members` are the paths that end here and `children` the subtrees that go deeper. A path
/// can be both (a map the manager created and some of its fields): `fieldsV1` marks that with `".": {}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSet {
    members: BTreeSet<PathElement>,
    /// Invariant: never holds an empty set.
    children: BTreeMap<PathElement, FieldSet>,
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

    fn walk_paths(&self, prefix: &mut Vec<PathElement>, f: &mut dyn FnMut(&[PathElement])) {
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

/// The fields never tracked for the writing manager (the apiserver's `stripMetaManager`, plus
/// `deletionTimestamp`/`deletionGracePeriodSeconds`, which only deletion sets). `generateName` and
/// labels/annotations are ordinary fields (cm-10 records `f:generateName`).
fn strip_set() -> FieldSet {
    let mut set = FieldSet::from_field_paths(&[&["apiVersion"], &["kind"], &["metadata"]]);
    for name in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        set.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field(name.into()),
        ]);
    }
    set
}

// ---------------------------------------------------------------------------------------------------
// Walking objects with their structure
// ---------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum ListKind {
    Set,
    Keyed(Vec<String>),
}

/// How a value merges: replaced whole (scalars, atomic lists and maps), field by field, item by item.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Shape {
    Leaf,
    Map,
    List(ListKind),
}

/// Where a value sits: as a field of a map, or as an item of a set list or of a list-map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    Field,
    SetItem,
    KeyedItem,
}

#[derive(Debug, Default)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

impl Comparison {
    /// Drops changes under reset fields: they are neither owned nor conflicting.
    fn exclude(&mut self, reset: &FieldSet) {
        if reset.is_empty() {
            return;
        }
        self.added = self.added.recursive_difference(reset);
        self.modified = self.modified.recursive_difference(reset);
        self.removed = self.removed.recursive_difference(reset);
    }

    fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }
}

/// structured-merge-diff's typed walks (ToFieldSet, Compare, Merge, RemoveItems) over plain JSON,
/// with the schema reduced to what a [`Structure`] knows.
struct Walker<'a> {
    s: &'a dyn Structure,
}

type WalkResult<T> = Result<T, FieldManagerError>;

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

    fn shape(&self, pos: Pos, names: &[String], v: &Value) -> Shape {
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
    fn pair_shape(&self, pos: Pos, names: &[String], lhs: Option<&Value>, rhs: Option<&Value>) -> Shape {
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
    fn index_items<'v>(
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

    fn field_set(&self, v: &Value, strict: bool) -> WalkResult<FieldSet> {
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

    fn compare_root(&self, lhs: &Value, rhs: &Value) -> WalkResult<Comparison> {
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

    // ---- Merge (apply) ----

    fn merge_root(&self, live: &Value, config: &Value) -> WalkResult<Value> {
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
    fn prune(
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

fn item_pos(kind: &ListKind) -> Pos {
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
fn item_element(kind: &ListKind, item: &Value) -> Result<PathElement, String> {
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

// ---------------------------------------------------------------------------------------------------
// Values: structured-merge-diff's ordering and equality, Go's printing
// ---------------------------------------------------------------------------------------------------

fn is_float(n: &serde_json::Number) -> bool {
    n.is_f64()
}

fn num_f64(n: &serde_json::Number) -> f64 {
    n.as_f64().unwrap_or(0.0)
}

/// Numbers (compared numerically) < strings < booleans < lists < maps < null.
fn value_cmp(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if is_float(x) || is_float(y) {
                num_f64(x).partial_cmp(&num_f64(y)).unwrap_or(Ordering::Equal)
            } else if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x.cmp(&y)
            } else {
                // u64 beyond i64: compare as unsigned (both non-negative) or by sign.
                match (x.as_u64(), y.as_u64()) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => Ordering::Greater,
                    (None, Some(_)) => Ordering::Less,
                    (None, None) => Ordering::Equal,
                }
            }
        }
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (p, q) in x.iter().zip(y) {
                let c = value_cmp(p, q);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                match (x.get(k), y.get(k)) {
                    (None, _) => return Ordering::Greater,
                    (_, None) => return Ordering::Less,
                    (Some(p), Some(q)) => {
                        let c = value_cmp(p, q);
                        if c != Ordering::Equal {
                            return c;
                        }
                    }
                }
            }
            Ordering::Equal
        }
        (Value::Null, Value::Null) => Ordering::Equal,
        _ => rank(a).cmp(&rank(b)),
    }
}

/// structured-merge-diff equality: like JSON equality, but `1` equals `1.0`.
fn value_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(_), Value::Number(_)) => value_cmp(a, b) == Ordering::Equal,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| value_eq(p, q))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| value_eq(v, w)))
        }
        _ => a == b,
    }
}

/// structured-merge-diff's `value.ToString`, used in printed paths (`[name="a"]`, `[=80]`).
fn go_value_string(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if is_float(n) => go_float(num_f64(n)),
        Value::Number(n) => n.to_string(),
        Value::String(s) => go_quote(s),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(go_value_string).collect::<Vec<_>>().join(",")
        ),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", go_value_string(v)))
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------------
// Time (RFC 3339, second precision, UTC)
// ---------------------------------------------------------------------------------------------------

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Seconds since the epoch of an RFC 3339 time (`2026-11-22T07:14:17Z`, fractions and offsets too).
fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[(month - 1) as usize] {
        return None;
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start {
            return None;
        }
    }
    let offset = match b.get(i)? {
        b'Z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && b[i + 3] == b':' => {
            let (h, m) = (num(i + 1..i + 3)?, num(i + 4..i + 6)?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// `2026-11-22T07:14:17Z`, the way `metav1.Time` is written.
fn format_rfc3339(secs: i64) -> String {
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

// ---------------------------------------------------------------------------------------------------
// managedFields entries
// ---------------------------------------------------------------------------------------------------

/// How a manager came to own its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply (`application/apply-patch+yaml`).
    Apply,
    /// Create, update, or a non-apply patch.
    Update,
}

impl Operation {
    /// `"Apply"` or `"Update"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// One item of `metadata.managedFields`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager (`?fieldManager=` or the User-Agent's product).
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The API version the fields were written in.
    pub api_version: String,
    /// When the manager last changed the object (RFC 3339, `Z`). An applier whose first apply changed
    /// nothing has none, like on the real server.
    pub time: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
    /// `status` for writes through `/status`.
    pub subresource: Option<String>,
}

/// What makes two entries the same manager (the apiserver's manager identifier): Update entries
/// differ per apiVersion, Apply entries do not.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Identity {
    manager: String,
    operation: Operation,
    api_version: Option<String>,
    subresource: Option<String>,
}

impl Identity {
    fn new(manager: &str, operation: Operation, api_version: &str, subresource: Option<&str>) -> Self {
        Identity {
            manager: manager.to_string(),
            operation,
            api_version: (operation == Operation::Update && !api_version.is_empty())
                .then(|| api_version.to_string()),
            subresource: subresource.filter(|s| !s.is_empty()).map(str::to_string),
        }
    }

    /// `{"manager":"editor","operation":"Update","apiVersion":"v1"}`: what the real server sorts
    /// conflict groups and capped updaters by.
    fn json(&self) -> String {
        let mut s = String::from("{");
        if !self.manager.is_empty() {
            s.push_str("\"manager\":");
            s.push_str(&go_json_string(&self.manager));
            s.push(',');
        }
        let _ = write!(s, "\"operation\":\"{}\"", self.operation.as_str());
        if let Some(v) = &self.api_version {
            s.push_str(",\"apiVersion\":");
            s.push_str(&go_json_string(v));
        }
        if let Some(sub) = &self.subresource {
            s.push_str(",\"subresource\":");
            s.push_str(&go_json_string(sub));
        }
        s.push('}');
        s
    }
}

impl ManagedFieldsEntry {
    fn identity(&self) -> Identity {
        Identity::new(
            &self.manager,
            self.operation,
            &self.api_version,
            self.subresource.as_deref(),
        )
    }

    fn time_secs(&self) -> i64 {
        self.time.as_deref().and_then(parse_rfc3339).unwrap_or(0)
    }

    /// Decodes one `managedFields` item, validating it like the real server (operation `Apply` or
    /// `Update`, non-empty `apiVersion`, `fieldsType: FieldsV1`, RFC 3339 `time`). The time is
    /// normalised to UTC seconds, as re-encoding `metav1.Time` does.
    pub fn from_json(value: &Value) -> Result<ManagedFieldsEntry, FieldManagerError> {
        let err = |m: String| FieldManagerError::ManagedFields(m);
        let Value::Object(obj) = value else {
            return Err(err("a managedFields entry must be an object".into()));
        };
        let string = |key: &str| -> Result<Option<&str>, FieldManagerError> {
            match obj.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s)),
                Some(_) => Err(err(format!("{key} must be a string"))),
            }
        };
        let manager = string("manager")?.unwrap_or_default().to_string();
        let operation = match string("operation")? {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            _ => return Err(err("operation must be `Apply` or `Update`".into())),
        };
        let api_version = match string("apiVersion")? {
            Some(v) if !v.is_empty() => v.to_string(),
            _ => return Err(err("apiVersion must not be empty".into())),
        };
        match string("fieldsType")? {
            Some("FieldsV1") => {}
            None | Some("") => return Err(err("missing fieldsType in managed fields entry".into())),
            Some(other) => {
                return Err(err(format!(
                    "invalid fieldsType {other:?} in managed fields entry"
                )));
            }
        }
        let time = match string("time")? {
            None => None,
            Some(t) => Some(format_rfc3339(
                parse_rfc3339(t).ok_or_else(|| err(format!("invalid time {t:?}")))?,
            )),
        };
        let fields = FieldSet::from_fields_v1(obj.get("fieldsV1").unwrap_or(&Value::Null))?;
        let subresource = string("subresource")?
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        Ok(ManagedFieldsEntry {
            manager,
            operation,
            api_version,
            time,
            fields,
            subresource,
        })
    }

    /// Encodes the entry: `manager, operation, apiVersion, time, fieldsType, fieldsV1, subresource`
    /// (empty ones omitted, as Go does).
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        if !self.manager.is_empty() {
            m.insert("manager".into(), Value::String(self.manager.clone()));
        }
        m.insert("operation".into(), Value::String(self.operation.as_str().into()));
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(sub) = &self.subresource {
            m.insert("subresource".into(), Value::String(sub.clone()));
        }
        Value::Object(m)
    }
}

/// Sorts entries like the real server (rule 19): Apply before Update, then by time (none first),
/// manager, apiVersion, subresource.
pub fn sort_managed_fields(entries: &mut [ManagedFieldsEntry]) {
    entries.sort_by(|p, q| {
        p.operation
            .cmp(&q.operation)
            .then_with(|| p.time_secs().cmp(&q.time_secs()))
            .then_with(|| p.manager.cmp(&q.manager))
            .then_with(|| p.api_version.cmp(&q.api_version))
            .then_with(|| {
                p.subresource
                    .as_deref()
                    .unwrap_or("")
                    .cmp(q.subresource.as_deref().unwrap_or(""))
            })
    });
}

/// Decodes `metadata.managedFields` of an object (absent or null: none). Entries naming the same
/// manager collapse into the last one, as the real server's map does.
pub fn decode_managed_fields(obj: &Value) -> Result<Vec<ManagedFieldsEntry>, FieldManagerError> {
    match obj.pointer("/metadata/managedFields") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(dedupe(
            items
                .iter()
                .map(ManagedFieldsEntry::from_json)
                .collect::<Result<_, _>>()?,
        )),
        Some(_) => Err(FieldManagerError::ManagedFields(
            "managedFields must be a list".into(),
        )),
    }
}

/// The `metadata.managedFields` JSON array, sorted (rule 19).
pub fn encode_managed_fields(entries: &[ManagedFieldsEntry]) -> Value {
    let mut sorted = entries.to_vec();
    sort_managed_fields(&mut sorted);
    Value::Array(sorted.iter().map(ManagedFieldsEntry::to_json).collect())
}

/// Writes `metadata.managedFields`, or removes the key when no manager owns anything (rule 20).
pub fn set_managed_fields(obj: &mut Value, entries: &[ManagedFieldsEntry]) {
    let Some(root) = obj.as_object_mut() else {
        return;
    };
    if entries.is_empty() {
        if let Some(Value::Object(meta)) = root.get_mut("metadata") {
            meta.remove("managedFields");
        }
        return;
    }
    let meta = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !meta.is_object() {
        *meta = Value::Object(Map::new());
    }
    if let Value::Object(meta) = meta {
        meta.insert("managedFields".into(), encode_managed_fields(entries));
    }
}

/// The managers an Update starts from, chosen like the real server (`decodeLiveOrNew`):
/// - a `/status` (any subresource) write: the live object's;
/// - `managedFields: [{}]` (only empty entries): none, which is how clients clear the list;
/// - the new object's, when it has a valid non-empty list (clients may edit managedFields);
/// - otherwise the live object's (clients that drop the field do not wipe it); undecodable: none.
pub fn managed_fields_for_update(
    new: &Value,
    live: Option<&Value>,
    subresource: bool,
) -> Vec<ManagedFieldsEntry> {
    let from_live = || {
        live.and_then(|l| decode_managed_fields(l).ok())
            .unwrap_or_default()
    };
    if subresource {
        return from_live();
    }
    if let Some(Value::Array(items)) = new.pointer("/metadata/managedFields")
        && !items.is_empty()
        && items
            .iter()
            .all(|i| i.as_object().is_some_and(|o| o.values().all(is_zero_json)))
    {
        return Vec::new();
    }
    match decode_managed_fields(new) {
        Ok(entries) if !entries.is_empty() => entries,
        _ => from_live(),
    }
}

/// Whether a JSON value decodes to Go's zero value (what `reflect.DeepEqual(entry, {})` tests).
fn is_zero_json(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// Later entries with the same identity replace earlier ones (the real server keeps a map).
fn dedupe(entries: Vec<ManagedFieldsEntry>) -> Vec<ManagedFieldsEntry> {
    let mut out: Vec<ManagedFieldsEntry> = Vec::with_capacity(entries.len());
    for e in entries {
        match out.iter().position(|o| o.identity() == e.identity()) {
            Some(i) => out[i] = e,
            None => out.push(e),
        }
    }
    out
}

/// The apiserver's `capManagersManager`: with more than 10 Update entries, the oldest are merged
/// into one `ancient-changes` entry per apiVersion.
fn cap_update_managers(entries: &mut Vec<ManagedFieldsEntry>) {
    let mut updaters: Vec<(i64, String, Identity)> = entries
        .iter()
        .filter(|e| e.operation == Operation::Update)
        .map(|e| (e.time_secs(), e.identity().json(), e.identity()))
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let find =
        |entries: &[ManagedFieldsEntry], id: &Identity| entries.iter().position(|e| e.identity() == *id);
    let mut first_of_version: BTreeMap<String, Identity> = BTreeMap::new();
    let mut length = updaters.len();
    for (_, _, id) in updaters {
        if length <= MAX_UPDATE_MANAGERS {
            break;
        }
        let Some(index) = find(entries, &id) else {
            continue;
        };
        let entry = entries[index].clone();
        let version = entry.api_version.clone();
        let Some(first) = first_of_version.get(&version) else {
            first_of_version.insert(version, id);
            continue;
        };
        let bucket = Identity::new(ANCIENT_CHANGES, Operation::Update, &version, None);
        if find(entries, &bucket).is_none()
            && let Some(first_index) = find(entries, first)
        {
            let moved = &mut entries[first_index];
            moved.manager = ANCIENT_CHANGES.into();
            moved.subresource = None;
        }
        let merged_fields = match find(entries, &bucket) {
            Some(b) => entry.fields.union(&entries[b].fields),
            None => entry.fields.clone(),
        };
        // As in the real code, the merged entry goes away after its fields joined the bucket.
        if let Some(i) = find(entries, &id) {
            entries.remove(i);
        }
        length -= 1;
        let bucket_entry = ManagedFieldsEntry {
            manager: ANCIENT_CHANGES.into(),
            operation: Operation::Update,
            api_version: version,
            time: entry.time.clone(),
            fields: merged_fields,
            subresource: None,
        };
        match find(entries, &bucket) {
            Some(b) => entries[b] = bucket_entry,
            None if id != bucket => entries.push(bucket_entry),
            None => {}
        }
    }
}

fn without_managed_fields(obj: Option<&Value>) -> Value {
    let mut v = obj.cloned().unwrap_or_else(|| Value::Object(Map::new()));
    if let Some(Value::Object(meta)) = v.get_mut("metadata") {
        meta.remove("managedFields");
    }
    v
}

// ---------------------------------------------------------------------------------------------------
// The two operations
// ---------------------------------------------------------------------------------------------------

/// Who writes, how, and when: the parameters shared by [`FieldManager::update`] and
/// [`FieldManager::apply`].
pub struct FieldManager<'a> {
    /// How the kind's lists merge.
    pub structure: &'a dyn Structure,
    /// The field manager's name.
    pub manager: &'a str,
    /// The API version of the request (`v1`, `example.com/v1`).
    pub api_version: &'a str,
    /// `Some("status")` for writes through `/status`: recorded as `subresource` on the entry.
    pub subresource: Option<&'a str>,
    /// Fields the write may not own, because the strategy resets them (`resetFields`): e.g. `status`
    /// for a main-resource write of a kind with a status subresource, `apiVersion`/`kind`/`metadata`/
    /// `spec` for a custom resource's status write. Changes there neither give ownership nor conflict.
    pub reset: FieldSet,
    /// The time of the write, RFC 3339 with `Z` (`2026-11-22T07:14:17Z`).
    pub now: &'a str,
}

/// The result of a successful server-side apply.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyOutcome {
    /// The merged object without `metadata.managedFields` (write them with [`set_managed_fields`]).
    /// When nothing changed, this is the live object.
    pub object: Value,
    /// The managers afterwards, sorted.
    pub managed: Vec<ManagedFieldsEntry>,
    /// Whether the object changed (changes under reset fields do not count): when false and
    /// `managed` equals the stored list, the apply is a no-op and nothing must be written (rule 21).
    pub changed: bool,
}

impl<'a> FieldManager<'a> {
    /// A manager writing the main resource, resetting nothing.
    pub fn new(structure: &'a dyn Structure, manager: &'a str, api_version: &'a str, now: &'a str) -> Self {
        FieldManager {
            structure,
            manager,
            api_version,
            subresource: None,
            reset: FieldSet::new(),
            now,
        }
    }

    fn walker(&self) -> Walker<'a> {
        Walker { s: self.structure }
    }

    /// Ownership after an Update (create, PUT, or a JSON / merge / strategic patch): `before` is the
    /// stored object (`None` on create: the empty object), `after` the object about to be stored.
    /// The writer takes every field it added or changed away from the other managers, removed fields
    /// leave every manager, managers left with nothing disappear, and the writer's entry is stamped
    /// with `now` only when it gained something, so a no-op write leaves the list untouched.
    ///
    /// `managed` is usually [`managed_fields_for_update`]. The result is sorted. If the objects do not
    /// fit the structure (a list-map item without its key) the result is empty, as the real server
    /// drops managedFields when it cannot compute them; such objects fail validation anyway.
    pub fn update(
        &self,
        before: Option<&Value>,
        after: &Value,
        managed: Vec<ManagedFieldsEntry>,
    ) -> Vec<ManagedFieldsEntry> {
        self.try_update(before, after, managed).unwrap_or_default()
    }

    fn try_update(
        &self,
        before: Option<&Value>,
        after: &Value,
        managed: Vec<ManagedFieldsEntry>,
    ) -> Result<Vec<ManagedFieldsEntry>, FieldManagerError> {
        let walker = self.walker();
        let before = without_managed_fields(before);
        let after = without_managed_fields(Some(after));
        let mut cmp = walker.compare_root(&before, &after)?;
        cmp.exclude(&self.reset);
        let changed = cmp.modified.union(&cmp.added);

        let mut managers = dedupe(managed);
        for entry in &mut managers {
            entry.fields = entry.fields.difference(&changed).difference(&cmp.removed);
        }
        managers.retain(|e| !e.fields.is_empty());

        let mine = changed
            .difference(&cmp.removed)
            .recursive_difference(&self.reset)
            .difference(&strip_set());
        if !mine.is_empty() {
            let id = Identity::new(
                self.manager,
                Operation::Update,
                self.api_version,
                self.subresource,
            );
            match managers.iter_mut().find(|e| e.identity() == id) {
                Some(entry) => {
                    entry.fields = mine.union(&entry.fields);
                    entry.time = Some(self.now.to_string());
                }
                None => managers.push(ManagedFieldsEntry {
                    manager: self.manager.to_string(),
                    operation: Operation::Update,
                    api_version: self.api_version.to_string(),
                    time: Some(self.now.to_string()),
                    fields: mine,
                    subresource: self.subresource.map(str::to_string),
                }),
            }
        }
        cap_update_managers(&mut managers);
        sort_managed_fields(&mut managers);
        Ok(managers)
    }

    /// Server-side apply of `applied` onto `live` (`None`: the object does not exist and is created
    /// from the configuration). `managed` is the live object's list ([`decode_managed_fields`]).
    ///
    /// The configuration is merged into the live object; fields this manager applied last time and
    /// leaves out now are removed unless another manager owns them; the manager then owns exactly
    /// what it applied. Changing a field another manager owns is a conflict unless `force`, which
    /// takes the field from them. The caller still resets strategy-owned fields (`status` on the
    /// main resource, everything but `status` on `/status`) in the returned object.
    pub fn apply(
        &self,
        live: Option<&Value>,
        applied: &Value,
        managed: Vec<ManagedFieldsEntry>,
        force: bool,
    ) -> Result<ApplyOutcome, ApplyError> {
        if !applied.is_object() {
            return Err(ApplyError::Invalid(
                "the applied configuration must be an object".into(),
            ));
        }
        if applied
            .pointer("/metadata/managedFields")
            .is_some_and(|v| !v.is_null())
        {
            return Err(ApplyError::ManagedFieldsInConfig);
        }
        let walker = self.walker();
        let live = without_managed_fields(live);
        let applied_set = walker.field_set(applied, true)?.recursive_difference(&self.reset);
        let merged = walker.merge_root(&live, applied)?;

        let id = Identity::new(self.manager, Operation::Apply, self.api_version, self.subresource);
        let mut managers = dedupe(managed);
        sort_managed_fields(&mut managers);
        let last = managers
            .iter()
            .find(|e| e.identity() == id)
            .map(|e| e.fields.clone());
        match managers.iter_mut().find(|e| e.identity() == id) {
            Some(entry) => {
                entry.fields = applied_set;
                entry.api_version = self.api_version.to_string();
            }
            None => managers.push(ManagedFieldsEntry {
                manager: self.manager.to_string(),
                operation: Operation::Apply,
                api_version: self.api_version.to_string(),
                time: None,
                fields: applied_set,
                subresource: self.subresource.map(str::to_string),
            }),
        }

        let (compared, object) = walker.prune(&merged, &managers, last.as_ref())?;
        let mut cmp = walker.compare_root(&live, &compared)?;
        cmp.exclude(&self.reset);
        let changed_fields = cmp.modified.union(&cmp.added);

        let mut conflicts = Vec::new();
        for entry in managers.iter().filter(|e| e.identity() != id) {
            let taken = entry.fields.intersection(&changed_fields);
            taken.walk_paths(&mut Vec::new(), &mut |path| {
                conflicts.push(Conflict {
                    manager: entry.manager.clone(),
                    operation: entry.operation,
                    api_version: entry.api_version.clone(),
                    subresource: entry.subresource.clone(),
                    field: path_to_string(path),
                })
            });
        }
        if !force && !conflicts.is_empty() {
            return Err(ApplyError::Conflicts(conflicts));
        }
        for entry in managers.iter_mut().filter(|e| e.identity() != id) {
            entry.fields = entry.fields.difference(&changed_fields).difference(&cmp.removed);
        }
        let strip = strip_set();
        let changed = !cmp.is_same();
        for entry in managers.iter_mut().filter(|e| e.identity() == id) {
            entry.fields = entry.fields.difference(&strip);
            if changed {
                entry.time = Some(self.now.to_string());
            }
        }
        managers.retain(|e| !e.fields.is_empty());
        cap_update_managers(&mut managers);
        sort_managed_fields(&mut managers);
        Ok(ApplyOutcome {
            object: if changed { object } else { live },
            managed: managers,
            changed,
        })
    }
}

impl fmt::Debug for FieldManager<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldManager")
            .field("manager", &self.manager)
            .field("api_version", &self.api_version)
            .field("subresource", &self.subresource)
            .field("reset", &self.reset)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::structure::BuiltinStructure;

    fn j(s: &str) -> Value {
        serde_json::from_str(s).expect("fixture is JSON")
    }

    fn stored(obj: &Value, managed: &[ManagedFieldsEntry]) -> Value {
        let mut obj = obj.clone();
        set_managed_fields(&mut obj, managed);
        obj
    }

    fn assert_managed(actual: &[ManagedFieldsEntry], expected: &str) {
        assert_eq!(encode_managed_fields(actual), j(expected));
    }

    /// The Widget CRD of the recordings: `spec.tags` is a set, `status.conditions` a map keyed by type.
    struct WidgetStructure;

    impl Structure for WidgetStructure {
        fn list_type(&self, path: &[&str]) -> ListType {
            match path {
                ["spec", "tags"] => ListType::Set,
                ["status", "conditions"] => ListType::Map(vec!["type".into()]),
                _ => ListType::Atomic,
            }
        }
    }

    // ---- recorded managedFields (03-metadata) ----

    const CM01: &str = r#"[{"manager":"k8s-reference-recorder","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:14:17Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:a":{},"f:b":{}},"f:metadata":{"f:labels":{".":{},"f:app":{}}}}}]"#;
    const CM02: &str = r#"[{"manager":"k8s-reference-recorder","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:14:17Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:b":{}},"f:metadata":{"f:labels":{".":{},"f:app":{}}}}},{"manager":"editor","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:14:31Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{},"f:c":{}}}}]"#;
    const CM03: &str = r#"[{"manager":"applier-one","operation":"Apply","apiVersion":"v1","time":"2026-11-22T07:14:32Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{},"f:d":{}}}},{"manager":"k8s-reference-recorder","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:14:17Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:b":{}},"f:metadata":{"f:labels":{".":{},"f:app":{}}}}},{"manager":"editor","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:14:31Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{},"f:c":{}}}}]"#;
    const CM04: &str = r#"[{"manager":"applier-one","operation":"Apply","apiVersion":"v1","time":"2026-11-22T07:14:32Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{},"f:d":{}}}},{"manager":"applier-two","operation":"Apply","apiVersion":"v1","time":"2026-11-22T07:14:33Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:e":{}},"f:metadata":{"f:labels":{"f:tier":{}}}}},{"manager":"k8s-reference-recorder","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:14:17Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:b":{}},"f:metadata":{"f:labels":{".":{},"f:app":{}}}}},{"manager":"editor","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:14:31Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{},"f:c":{}}}}]"#;
    const CM05: &str = r#"[{"manager":"applier-two","operation":"Apply","apiVersion":"v1","time":"2026-11-22T07:14:33Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:e":{}},"f:metadata":{"f:labels":{"f:tier":{}}}}},{"manager":"applier-one","operation":"Apply","apiVersion":"v1","time":"2026-11-22T07:14:34Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{}}}},{"manager":"k8s-reference-recorder","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:14:17Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:b":{}},"f:metadata":{"f:labels":{".":{},"f:app":{}}}}},{"manager":"editor","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:14:31Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{},"f:c":{}}}}]"#;
    const CM06_STATUS: &str = r#"{"message":"Apply failed with 2 conflicts: conflicts with \"applier-one\":\n- .data.a\nconflicts with \"editor\" using v1:\n- .data.a","causes":[{"reason":"FieldManagerConflict","message":"conflict with \"applier-one\"","field":".data.a"},{"reason":"FieldManagerConflict","message":"conflict with \"editor\" using v1","field":".data.a"}]}"#;
    const CM07: &str = r#"[{"manager":"applier-two","operation":"Apply","apiVersion":"v1","time":"2026-11-22T07:14:36Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:a":{},"f:e":{}},"f:metadata":{"f:labels":{"f:tier":{}}}}},{"manager":"k8s-reference-recorder","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:14:17Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:b":{}},"f:metadata":{"f:labels":{".":{},"f:app":{}}}}},{"manager":"editor","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:14:31Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:c":{}}}}]"#;

    const W01: &str = r#"[{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"f:color":{},"f:size":{},"f:tags":{".":{},"v:\"a\"":{}}}},"manager":"k8s-reference-recorder","operation":"Update","time":"2026-11-22T07:14:52Z"}]"#;
    const W02: &str = r#"[{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"f:color":{},"f:tags":{".":{},"v:\"a\"":{}}}},"manager":"k8s-reference-recorder","operation":"Update","time":"2026-11-22T07:14:52Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:size":{},"f:tags":{"v:\"z\"":{}}}},"manager":"editor","operation":"Update","time":"2026-11-22T07:15:08Z"}]"#;
    const W03: &str = r#"[{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"f:color":{},"f:tags":{".":{},"v:\"a\"":{}}}},"manager":"k8s-reference-recorder","operation":"Update","time":"2026-11-22T07:14:52Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{".":{},"f:note":{}}},"f:spec":{"f:size":{},"f:tags":{"v:\"z\"":{}}}},"manager":"editor","operation":"Update","time":"2026-11-22T07:15:09Z"}]"#;
    const W04: &str = r#"[{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:color":{},"f:tags":{"v:\"a\"":{},"v:\"b\"":{}}}},"manager":"applier-one","operation":"Apply","time":"2026-11-22T07:15:10Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"f:color":{},"f:tags":{".":{},"v:\"a\"":{}}}},"manager":"k8s-reference-recorder","operation":"Update","time":"2026-11-22T07:14:52Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{".":{},"f:note":{}}},"f:spec":{"f:size":{},"f:tags":{"v:\"z\"":{}}}},"manager":"editor","operation":"Update","time":"2026-11-22T07:15:09Z"}]"#;
    const W05: &str = r#"[{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:color":{},"f:tags":{"v:\"a\"":{},"v:\"b\"":{}}}},"manager":"applier-one","operation":"Apply","time":"2026-11-22T07:15:10Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:tags":{"v:\"c\"":{}}}},"manager":"applier-two","operation":"Apply","time":"2026-11-22T07:15:11Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"f:color":{},"f:tags":{".":{},"v:\"a\"":{}}}},"manager":"k8s-reference-recorder","operation":"Update","time":"2026-11-22T07:14:52Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{".":{},"f:note":{}}},"f:spec":{"f:size":{},"f:tags":{"v:\"z\"":{}}}},"manager":"editor","operation":"Update","time":"2026-11-22T07:15:09Z"}]"#;
    const W06: &str = r#"[{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:color":{},"f:tags":{"v:\"a\"":{},"v:\"b\"":{}}}},"manager":"applier-one","operation":"Apply","time":"2026-11-22T07:15:10Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:tags":{"v:\"c\"":{}}}},"manager":"applier-two","operation":"Apply","time":"2026-11-22T07:15:11Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"f:color":{},"f:tags":{".":{},"v:\"a\"":{}}}},"manager":"k8s-reference-recorder","operation":"Update","time":"2026-11-22T07:14:52Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{".":{},"f:note":{}}},"f:spec":{"f:size":{},"f:tags":{"v:\"z\"":{}}}},"manager":"editor","operation":"Update","time":"2026-11-22T07:15:09Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{".":{},"f:observedGeneration":{},"f:phase":{}}},"manager":"status-controller","operation":"Update","subresource":"status","time":"2026-11-22T07:15:12Z"}]"#;
    const W07: &str = r#"[{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:color":{},"f:tags":{"v:\"a\"":{},"v:\"b\"":{}}}},"manager":"applier-one","operation":"Apply","time":"2026-11-22T07:15:10Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:tags":{"v:\"c\"":{}}}},"manager":"applier-two","operation":"Apply","time":"2026-11-22T07:15:11Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:conditions":{"k:{\"type\":\"Ready\"}":{".":{},"f:lastTransitionTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}}}}},"manager":"status-applier","operation":"Apply","subresource":"status","time":"2026-11-22T07:15:13Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"f:color":{},"f:tags":{".":{},"v:\"a\"":{}}}},"manager":"k8s-reference-recorder","operation":"Update","time":"2026-11-22T07:14:52Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{".":{},"f:note":{}}},"f:spec":{"f:size":{},"f:tags":{"v:\"z\"":{}}}},"manager":"editor","operation":"Update","time":"2026-11-22T07:15:09Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{".":{},"f:observedGeneration":{},"f:phase":{}}},"manager":"status-controller","operation":"Update","subresource":"status","time":"2026-11-22T07:15:12Z"}]"#;
    const W09: &str = r#"[{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:color":{},"f:tags":{"v:\"a\"":{},"v:\"b\"":{}}}},"manager":"applier-one","operation":"Apply","time":"2026-11-22T07:15:10Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:tags":{"v:\"c\"":{}}}},"manager":"applier-two","operation":"Apply","time":"2026-11-22T07:15:11Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:conditions":{"k:{\"type\":\"Ready\"}":{".":{},"f:lastTransitionTime":{},"f:message":{},"f:reason":{},"f:status":{},"f:type":{}}}}},"manager":"status-applier","operation":"Apply","subresource":"status","time":"2026-11-22T07:15:13Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{".":{},"f:color":{},"f:tags":{".":{},"v:\"a\"":{}}}},"manager":"k8s-reference-recorder","operation":"Update","time":"2026-11-22T07:14:52Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{".":{},"f:observedGeneration":{},"f:phase":{}}},"manager":"status-controller","operation":"Update","subresource":"status","time":"2026-11-22T07:15:12Z"},{"apiVersion":"example.com/v1","fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:annotations":{".":{},"f:note":{}},"f:labels":{"f:extra":{}}},"f:spec":{"f:size":{},"f:tags":{"v:\"z\"":{}}}},"manager":"editor","operation":"Update","time":"2026-11-22T07:15:14Z"}]"#;

    const FOREGROUND_DEPENDENT: &str = r#"[{"manager":"k8s-reference-recorder","operation":"Update","apiVersion":"v1","time":"2026-11-22T07:21:29Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{".":{},"f:role":{}},"f:metadata":{"f:finalizers":{".":{},"v:\"example.com/hold\"":{}},"f:ownerReferences":{".":{},"k:{\"uid\":\"fb5ccb62-875d-491f-bb14-9744b9d6fd58\"}":{}}}}}]"#;
    const DEPLOYMENT: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"793","generation":1,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web","tier":"front"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.25","ports":[{"containerPort":80,"protocol":"TCP"}],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"},{"name":"sidecar","image":"busybox:1.36","command":["sleep","3600"],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
    const DEPLOYMENT_FIELDS: &str = r#"{"f:metadata":{"f:labels":{".":{},"f:app":{},"f:tier":{}}},"f:spec":{"f:progressDeadlineSeconds":{},"f:replicas":{},"f:revisionHistoryLimit":{},"f:selector":{},"f:strategy":{"f:rollingUpdate":{".":{},"f:maxSurge":{},"f:maxUnavailable":{}},"f:type":{}},"f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},"f:env":{".":{},"k:{\"name\":\"A\"}":{".":{},"f:name":{},"f:value":{}},"k:{\"name\":\"B\"}":{".":{},"f:name":{},"f:value":{}}},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{".":{},"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{},"f:protocol":{}}},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}},"k:{\"name\":\"sidecar\"}":{".":{},"f:command":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:resources":{},"f:terminationMessagePath":{},"f:terminationMessagePolicy":{}}},"f:dnsPolicy":{},"f:restartPolicy":{},"f:schedulerName":{},"f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}}"#;

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
    fn malformed_fields_v1_and_managed_fields_are_errors() {
        for bad in [
            r#"{"f:a":1}"#,
            r#"{"q":{}}"#,
            r#"{"k:[1]":{}}"#,
            r#"{"v:nope":{}}"#,
            r#"{"i:x":{}}"#,
            "[]",
        ] {
            assert!(FieldSet::from_fields_v1(&j(bad)).is_err(), "{bad}");
        }
        let entry = |e: Value| decode_managed_fields(&json!({"metadata": {"managedFields": [e]}}));
        let ok = json!({"manager":"m","operation":"Update","apiVersion":"v1","fieldsType":"FieldsV1","fieldsV1":{}});
        assert!(entry(ok.clone()).is_ok());
        for (key, value) in [
            ("operation", json!("Patch")),
            ("apiVersion", json!("")),
            ("fieldsType", json!("FieldsV2")),
            ("fieldsType", Value::Null),
            ("time", json!("yesterday")),
            ("manager", json!(5)),
            ("fieldsV1", json!({"f:a": "x"})),
        ] {
            let mut e = ok.clone();
            e[key] = value;
            assert!(entry(e).is_err(), "{key}");
        }
        assert!(decode_managed_fields(&json!({"metadata": {"managedFields": {}}})).is_err());
        assert!(decode_managed_fields(&json!({"metadata": {"managedFields": [7]}})).is_err());
    }

    #[test]
    fn times_are_normalised_to_utc_seconds() {
        let e = ManagedFieldsEntry::from_json(&json!({
            "manager": "m", "operation": "Update", "apiVersion": "v1",
            "time": "2026-11-22T08:14:17.123+01:00", "fieldsType": "FieldsV1"
        }))
        .unwrap();
        assert_eq!(e.time.as_deref(), Some("2026-11-22T07:14:17Z"));
        assert_eq!(
            format_rfc3339(parse_rfc3339("2024-02-29T23:59:59Z").unwrap()),
            "2024-02-29T23:59:59Z"
        );
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2023-01-01 00:00:00Z"), None);
    }

    #[test]
    fn configmap_sequence_matches_the_recordings() {
        let s = BuiltinStructure;
        // cm-01: POST by the User-Agent's manager.
        let created = j(
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"meta-cm","namespace":"ref","uid":"e656b328-5b16-4579-a754-249500e95450","resourceVersion":"646","creationTimestamp":"2026-11-22T07:14:17Z","labels":{"app":"x"}},"data":{"a":"1","b":"2"}}"#,
        );
        let fm = FieldManager::new(&s, "k8s-reference-recorder", "v1", "2026-11-22T07:14:17Z");
        let m1 = fm.update(None, &created, managed_fields_for_update(&created, None, false));
        assert_managed(&m1, CM01);
        let cm1 = stored(&created, &m1);

        // cm-02: PUT by editor, the body without managedFields: editor takes a and c.
        let put = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref","resourceVersion":"646","labels":{"app":"x"}},"data":{"a":"10","b":"2","c":"3"}}"#,
        );
        let mut after = put.clone();
        after["metadata"]["uid"] = cm1["metadata"]["uid"].clone();
        after["metadata"]["creationTimestamp"] = cm1["metadata"]["creationTimestamp"].clone();
        let fm = FieldManager::new(&s, "editor", "v1", "2026-11-22T07:14:31Z");
        let m2 = fm.update(
            Some(&cm1),
            &after,
            managed_fields_for_update(&put, Some(&cm1), false),
        );
        assert_managed(&m2, CM02);
        let cm2 = stored(&after, &m2);

        // cm-03: applier-one applies a (same value: co-owned) and d.
        let config = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref"},"data":{"a":"10","d":"4"}}"#,
        );
        let fm = FieldManager::new(&s, "applier-one", "v1", "2026-11-22T07:14:32Z");
        let out = fm
            .apply(Some(&cm2), &config, decode_managed_fields(&cm2).unwrap(), false)
            .unwrap();
        assert!(out.changed);
        assert_eq!(
            out.object["data"],
            json!({"a": "10", "b": "2", "c": "3", "d": "4"})
        );
        assert_managed(&out.managed, CM03);
        let cm3 = stored(&out.object, &out.managed);

        // cm-04: applier-two owns e and a label.
        let config = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref","labels":{"tier":"two"}},"data":{"e":"5"}}"#,
        );
        let fm = FieldManager::new(&s, "applier-two", "v1", "2026-11-22T07:14:33Z");
        let out = fm
            .apply(Some(&cm3), &config, decode_managed_fields(&cm3).unwrap(), false)
            .unwrap();
        assert_eq!(
            out.object["metadata"]["labels"],
            json!({"app": "x", "tier": "two"})
        );
        assert_managed(&out.managed, CM04);
        let cm4 = stored(&out.object, &out.managed);

        // cm-05: applier-one drops d, which only it owned: d disappears; a stays (editor owns it too).
        let config = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref"},"data":{"a":"10"}}"#,
        );
        let fm = FieldManager::new(&s, "applier-one", "v1", "2026-11-22T07:14:34Z");
        let out = fm
            .apply(Some(&cm4), &config, decode_managed_fields(&cm4).unwrap(), false)
            .unwrap();
        assert_eq!(
            out.object["data"],
            json!({"a": "10", "b": "2", "c": "3", "e": "5"})
        );
        assert_managed(&out.managed, CM05);
        let cm5 = stored(&out.object, &out.managed);

        // cm-06: applier-two sets a to another value: 409 with one cause per manager.
        let config = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref","labels":{"tier":"two"}},"data":{"e":"5","a":"99"}}"#,
        );
        let fm = FieldManager::new(&s, "applier-two", "v1", "2026-11-22T07:14:35Z");
        let err = fm
            .apply(Some(&cm5), &config, decode_managed_fields(&cm5).unwrap(), false)
            .unwrap_err();
        let expected = j(CM06_STATUS);
        assert_eq!(err.to_string(), expected["message"]);
        assert_eq!(Value::Array(err.causes()), expected["causes"]);

        // cm-07: the same with force: applier-two takes a; applier-one is left with nothing.
        let fm = FieldManager::new(&s, "applier-two", "v1", "2026-11-22T07:14:36Z");
        let out = fm
            .apply(Some(&cm5), &config, decode_managed_fields(&cm5).unwrap(), true)
            .unwrap();
        assert_eq!(
            out.object["data"],
            json!({"a": "99", "b": "2", "c": "3", "e": "5"})
        );
        assert_managed(&out.managed, CM07);
        let cm7 = stored(&out.object, &out.managed);

        // cm-08: PUT of the unchanged object (no managedFields in the body): nothing changes.
        let mut put = cm7.clone();
        put["metadata"].as_object_mut().unwrap().remove("managedFields");
        let fm = FieldManager::new(&s, "editor", "v1", "2026-11-22T07:14:40Z");
        let m8 = fm.update(
            Some(&cm7),
            &put,
            managed_fields_for_update(&put, Some(&cm7), false),
        );
        assert_eq!(stored(&put, &m8), cm7);

        // cm-09: re-applying the same configuration: unchanged object, unchanged entries and times.
        let fm = FieldManager::new(&s, "applier-two", "v1", "2026-11-22T07:14:41Z");
        let out = fm
            .apply(Some(&cm7), &config, decode_managed_fields(&cm7).unwrap(), true)
            .unwrap();
        assert!(!out.changed);
        assert_eq!(stored(&out.object, &out.managed), cm7);

        // 05-errors/409-ssa-conflict.http: an intruder changing fields of two Update managers.
        let config = j(
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"meta-cm","namespace":"ref","labels":{"app":"changed"}},"data":{"b":"changed","c":"changed"}}"#,
        );
        let fm = FieldManager::new(&s, "intruder", "v1", "2026-11-22T07:16:00Z");
        let err = fm
            .apply(Some(&cm7), &config, decode_managed_fields(&cm7).unwrap(), false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 3 conflicts: conflicts with \"editor\" using v1:\n- .data.c\nconflicts with \"k8s-reference-recorder\" using v1:\n- .data.b\n- .metadata.labels.app"
        );
        let fields: Vec<Value> = err.causes().iter().map(|c| c["field"].clone()).collect();
        assert_eq!(
            fields,
            [json!(".data.b"), json!(".metadata.labels.app"), json!(".data.c")]
        );
    }

    #[test]
    fn widget_sequence_matches_the_recordings() {
        let s = WidgetStructure;
        let api = "example.com/v1";
        // widget-01: create.
        let created = j(
            r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"creationTimestamp":"2026-11-22T07:14:52Z","generation":1,"labels":{"app":"x"},"name":"meta-w","namespace":"ref","resourceVersion":"655","uid":"4625db57-2f5e-41bc-842a-86c8d87b372f"},"spec":{"color":"red","size":1,"tags":["a"]}}"#,
        );
        let m1 = FieldManager::new(&s, "k8s-reference-recorder", api, "2026-11-22T07:14:52Z").update(
            None,
            &created,
            vec![],
        );
        assert_managed(&m1, W01);
        let w1 = stored(&created, &m1);

        // widget-02: PUT by editor (body carries the managedFields it read): size and a new set item.
        let mut put = w1.clone();
        put["spec"]["size"] = json!(2);
        put["spec"]["tags"] = json!(["a", "z"]);
        let fm = FieldManager::new(&s, "editor", api, "2026-11-22T07:15:08Z");
        let m2 = fm.update(Some(&w1), &put, managed_fields_for_update(&put, Some(&w1), false));
        assert_managed(&m2, W02);
        let w2 = stored(&put, &m2);

        // widget-03: PUT adding an annotation.
        let mut put = w2.clone();
        put["metadata"]["annotations"] = json!({"note": "hello"});
        let fm = FieldManager::new(&s, "editor", api, "2026-11-22T07:15:09Z");
        let m3 = fm.update(Some(&w2), &put, managed_fields_for_update(&put, Some(&w2), false));
        assert_managed(&m3, W03);
        let w3 = stored(&put, &m3);

        // widget-04: applier-one co-owns color and a, adds b to the set (appended after live items).
        let config = j(
            r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"meta-w","namespace":"ref"},"spec":{"color":"red","tags":["a","b"]}}"#,
        );
        let fm = FieldManager::new(&s, "applier-one", api, "2026-11-22T07:15:10Z");
        let out = fm
            .apply(Some(&w3), &config, decode_managed_fields(&w3).unwrap(), false)
            .unwrap();
        assert_eq!(out.object["spec"]["tags"], json!(["a", "z", "b"]));
        assert_managed(&out.managed, W04);
        let w4 = stored(&out.object, &out.managed);

        // widget-05: applier-two owns its own set item.
        let config = j(
            r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"meta-w","namespace":"ref"},"spec":{"tags":["c"]}}"#,
        );
        let fm = FieldManager::new(&s, "applier-two", api, "2026-11-22T07:15:11Z");
        let out = fm
            .apply(Some(&w4), &config, decode_managed_fields(&w4).unwrap(), false)
            .unwrap();
        assert_eq!(out.object["spec"]["tags"], json!(["a", "z", "b", "c"]));
        assert_managed(&out.managed, W05);
        let w5 = stored(&out.object, &out.managed);

        // widget-06: merge patch on /status also trying to change spec: only status is owned.
        let status_reset =
            FieldSet::from_field_paths(&[&["apiVersion"], &["kind"], &["metadata"], &["spec"]]);
        let mut patched = w5.clone();
        patched["spec"]["size"] = json!(100);
        patched["status"] = json!({"phase": "Running", "observedGeneration": 2});
        let fm = FieldManager {
            subresource: Some("status"),
            reset: status_reset.clone(),
            ..FieldManager::new(&s, "status-controller", api, "2026-11-22T07:15:12Z")
        };
        let m6 = fm.update(
            Some(&w5),
            &patched,
            managed_fields_for_update(&patched, Some(&w5), true),
        );
        assert_managed(&m6, W06);
        patched["spec"] = w5["spec"].clone(); // the status strategy's reset
        let w6 = stored(&patched, &m6);

        // widget-07: server-side apply on /status of a condition: k:{"type":"Ready"}.
        let config = j(
            r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"meta-w","namespace":"ref"},"status":{"conditions":[{"type":"Ready","status":"True","reason":"Done","message":"ready","lastTransitionTime":"2026-11-22T00:00:00Z"}]}}"#,
        );
        let fm = FieldManager {
            subresource: Some("status"),
            reset: status_reset,
            ..FieldManager::new(&s, "status-applier", api, "2026-11-22T07:15:13Z")
        };
        let out = fm
            .apply(Some(&w6), &config, decode_managed_fields(&w6).unwrap(), false)
            .unwrap();
        assert_eq!(out.object["status"]["phase"], json!("Running"));
        assert_eq!(out.object["status"]["conditions"][0]["type"], json!("Ready"));
        assert_managed(&out.managed, W07);
        let w7 = stored(&out.object, &out.managed);

        // widget-08: main-resource PUT changing status (ignored) and adding a label.
        let mut put = w7.clone();
        put["status"]["phase"] = json!("Hacked");
        put["metadata"]["labels"]["extra"] = json!("1");
        let fm = FieldManager {
            reset: FieldSet::from_field_paths(&[&["status"]]),
            ..FieldManager::new(&s, "editor", api, "2026-11-22T07:15:14Z")
        };
        let m8 = fm.update(Some(&w7), &put, managed_fields_for_update(&put, Some(&w7), false));
        assert_managed(&m8, W09);

        // 05-errors/409-ssa-conflict-crd-object.http: conflicts with an Apply and two Update managers.
        put["status"]["phase"] = json!("Running");
        let w8 = stored(&put, &m8);
        let config = j(
            r#"{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"meta-w","namespace":"ref"},"spec":{"size":9,"color":"green"}}"#,
        );
        let fm = FieldManager::new(&s, "intruder", api, "2026-11-22T07:16:00Z");
        let err = fm
            .apply(Some(&w8), &config, decode_managed_fields(&w8).unwrap(), false)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Apply failed with 3 conflicts: conflicts with \"applier-one\":\n- .spec.color\nconflicts with \"editor\" using example.com/v1:\n- .spec.size\nconflicts with \"k8s-reference-recorder\" using example.com/v1:\n- .spec.color"
        );
        assert_eq!(
            Value::Array(err.causes()),
            json!([
                {"reason": "FieldManagerConflict", "message": "conflict with \"applier-one\"", "field": ".spec.color"},
                {"reason": "FieldManagerConflict", "message": "conflict with \"k8s-reference-recorder\" using example.com/v1", "field": ".spec.color"},
                {"reason": "FieldManagerConflict", "message": "conflict with \"editor\" using example.com/v1", "field": ".spec.size"}
            ])
        );
    }

    #[test]
    fn apply_to_a_missing_object_creates_it() {
        // 08-patch/18-ssa-create-if-missing.http
        let config =
            j(r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"ssa-created"},"data":{"k":"v"}}"#);
        let fm = FieldManager::new(&BuiltinStructure, "me", "v1", "2026-11-22T07:23:46Z");
        let out = fm.apply(None, &config, vec![], false).unwrap();
        assert!(out.changed);
        assert_eq!(out.object, config);
        assert_managed(
            &out.managed,
            r#"[{"manager":"me","operation":"Apply","apiVersion":"v1","time":"2026-11-22T07:23:46Z","fieldsType":"FieldsV1","fieldsV1":{"f:data":{"f:k":{}}}}]"#,
        );
    }

    #[test]
    fn create_with_owner_references_and_finalizers() {
        // 07-deletion/foreground-slow-01-create-dependent.http
        let created = j(
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"dep-slow","namespace":"del","uid":"537f5a8b-40d5-496b-a157-9698281fc5c0","resourceVersion":"750","creationTimestamp":"2026-11-22T07:21:29Z","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner-slow","uid":"fb5ccb62-875d-491f-bb14-9744b9d6fd58","blockOwnerDeletion":true}],"finalizers":["example.com/hold"]},"data":{"role":"dependent"}}"#,
        );
        let fm = FieldManager::new(
            &BuiltinStructure,
            "k8s-reference-recorder",
            "v1",
            "2026-11-22T07:21:29Z",
        );
        let managed = fm.update(None, &created, vec![]);
        assert_managed(&managed, FOREGROUND_DEPENDENT);

        // Deletion sets deletionTimestamp: never tracked, so an update recording it changes nothing.
        let live = stored(&created, &managed);
        let mut terminating = live.clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2026-11-22T07:21:30Z");
        terminating["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        let fm = FieldManager::new(&BuiltinStructure, "kube-apiserver", "v1", "2026-11-22T07:21:30Z");
        assert_eq!(fm.update(Some(&live), &terminating, managed.clone()), managed);
    }

    #[test]
    fn removal_gives_no_ownership_and_empties_managed_fields() {
        // 07-deletion/orphan-02-get-dependent.http: the GC strips ownerReferences, the creator's only
        // field, so no manager is left and the key disappears.
        let created = j(
            r#"{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"dep-or","namespace":"del","ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner-or","uid":"u-1"}]}}"#,
        );
        let creator = FieldManager::new(
            &BuiltinStructure,
            "k8s-reference-recorder",
            "v1",
            "2026-11-22T07:21:53Z",
        );
        let managed = creator.update(None, &created, vec![]);
        let live = stored(&created, &managed);
        let mut orphaned = live.clone();
        orphaned["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("ownerReferences");
        let gc = FieldManager::new(
            &BuiltinStructure,
            "kube-controller-manager",
            "v1",
            "2026-11-22T07:21:54Z",
        );
        let after = gc.update(Some(&live), &orphaned, decode_managed_fields(&live).unwrap());
        assert!(after.is_empty());
        set_managed_fields(&mut orphaned, &after);
        assert!(orphaned["metadata"].get("managedFields").is_none());
    }

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

    #[test]
    fn apply_rejects_bad_configurations() {
        let fm = FieldManager::new(&BuiltinStructure, "m", "v1", "2026-01-01T00:00:00Z");
        let with_managed = json!({"metadata": {"name": "x", "managedFields": []}});
        assert_eq!(
            fm.apply(None, &with_managed, vec![], false),
            Err(ApplyError::ManagedFieldsInConfig)
        );
        assert_eq!(
            ApplyError::ManagedFieldsInConfig.to_string(),
            "metadata.managedFields must be nil"
        );
        let dup = json!({"spec": {"containers": [{"name": "a"}, {"name": "a"}]}});
        let err = fm.apply(None, &dup, vec![], false).unwrap_err();
        assert_eq!(
            err.to_string(),
            ".spec.containers: duplicate entries for key [name=\"a\"]"
        );
        let keyless = json!({"spec": {"containers": [{"image": "x"}]}});
        assert!(matches!(
            fm.apply(None, &keyless, vec![], false),
            Err(ApplyError::Invalid(_))
        ));
        assert!(matches!(
            fm.apply(None, &json!([1]), vec![], false),
            Err(ApplyError::Invalid(_))
        ));
        // Update never fails: an object that does not fit is recorded as nobody's, like the real server.
        assert!(fm.update(None, &keyless, vec![]).is_empty());
    }

    #[test]
    fn first_apply_that_changes_nothing_has_no_time() {
        let s = BuiltinStructure;
        let live =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}});
        let managed =
            FieldManager::new(&s, "creator", "v1", "2026-01-01T00:00:00Z").update(None, &live, vec![]);
        let live = stored(&live, &managed);
        let fm = FieldManager::new(&s, "late", "v1", "2026-01-01T00:00:05Z");
        let config =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {"a": "1"}});
        let out = fm
            .apply(Some(&live), &config, decode_managed_fields(&live).unwrap(), false)
            .unwrap();
        assert!(!out.changed);
        assert_eq!(out.managed[0].manager, "late");
        assert_eq!(out.managed[0].time, None);
        assert_eq!(out.managed[1].manager, "creator");
    }

    #[test]
    fn managed_fields_source_for_updates() {
        let live = json!({"metadata": {"managedFields": j(CM01)}});
        let live_entries = decode_managed_fields(&live).unwrap();
        // Absent, empty or malformed in the body: the live list.
        assert_eq!(
            managed_fields_for_update(&json!({}), Some(&live), false),
            live_entries
        );
        assert_eq!(
            managed_fields_for_update(&json!({"metadata": {"managedFields": []}}), Some(&live), false),
            live_entries
        );
        let bad = json!({"metadata": {"managedFields": [{"operation": "Nope"}]}});
        assert_eq!(managed_fields_for_update(&bad, Some(&live), false), live_entries);
        // [{}] clears the list.
        assert!(
            managed_fields_for_update(&json!({"metadata": {"managedFields": [{}]}}), Some(&live), false)
                .is_empty()
        );
        // A valid list in the body wins, except on a subresource.
        let other = json!({"metadata": {"managedFields": j(CM07)}});
        assert_eq!(
            managed_fields_for_update(&other, Some(&live), false),
            decode_managed_fields(&other).unwrap()
        );
        assert_eq!(managed_fields_for_update(&other, Some(&live), true), live_entries);
    }

    #[test]
    fn more_than_ten_updaters_are_capped_into_ancient_changes() {
        let s = BuiltinStructure;
        let mut obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}});
        let mut managed = Vec::new();
        for i in 0..11 {
            let before = obj.clone();
            obj["data"][format!("k{i}")] = json!("v");
            let now = format!("2026-01-01T00:00:{i:02}Z");
            let manager = format!("m{i:02}");
            managed = FieldManager::new(&s, &manager, "v1", &now).update(Some(&before), &obj, managed);
        }
        assert_eq!(managed.len(), 10);
        let ancient = managed.iter().find(|e| e.manager == ANCIENT_CHANGES).unwrap();
        assert_eq!(ancient.time.as_deref(), Some("2026-01-01T00:00:01Z"));
        // `data: {}` existed before, so nobody owns the map itself.
        assert_eq!(
            ancient.fields.to_fields_v1(),
            json!({"f:data": {"f:k0": {}, "f:k1": {}}})
        );
        assert!(managed.iter().all(|e| e.manager != "m00" && e.manager != "m01"));
    }

    #[test]
    fn conflict_descriptions_follow_the_real_server() {
        let c = Conflict {
            manager: "ctrl".into(),
            operation: Operation::Update,
            api_version: "v1".into(),
            subresource: Some("status".into()),
            field: ".status.phase".into(),
        };
        assert_eq!(
            c.manager_description(),
            "\"ctrl\" with subresource \"status\" using v1"
        );
        assert_eq!(
            ApplyError::Conflicts(vec![c]).to_string(),
            "Apply failed with 1 conflict: conflict with \"ctrl\" with subresource \"status\" using v1: .status.phase"
        );
        assert_eq!(
            path_to_string(&[PathElement::Field("spec".into()), PathElement::Value(json!(1.5))]),
            ".spec[=1.5]"
        );
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
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
