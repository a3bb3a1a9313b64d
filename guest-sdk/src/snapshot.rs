//! What one reconcile gets.

use k8s_openapi::Resource;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Condition, Error, Gvk, Lookup};

/// Why a reconcile runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The primary object was created or changed.
    Change,
    /// One of its children changed or was deleted.
    ChildChange,
    /// The periodic resync.
    Resync,
    /// A retry after an error or a failed write, or a requested requeue.
    Retry,
    /// The object is being deleted and carries the plugin's finalizer: clean up, then answer with
    /// [`crate::Desired::finalizer_done`].
    Deletion,
}

/// The results of one declared [`Lookup`].
#[derive(Debug, Clone, PartialEq)]
pub struct LookupResult {
    /// The lookup, as declared.
    pub lookup: Lookup,
    /// The matching objects, as JSON.
    pub objects: Vec<Value>,
}

impl LookupResult {
    /// The objects deserialised as `T`.
    pub fn objects_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        self.objects
            .iter()
            .map(|o| from_json(o, "lookup object"))
            .collect()
    }
}

/// Everything one reconcile gets: the primary object, its children, the lookups' results, the
/// reason, the attempt and the plugin's configuration.
///
/// Typed access deserialises on each call; keep the result rather than asking twice in a loop.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    object: Value,
    children: Vec<Value>,
    lookups: Vec<LookupResult>,
    reason: Reason,
    attempt: u32,
    config: Value,
}

pub(crate) fn from_json<T: DeserializeOwned>(value: &Value, what: &str) -> Result<T, Error> {
    T::deserialize(value).map_err(|e| {
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .map(|n| format!(" {n}"))
            .unwrap_or_default();
        Error::permanent(format!(
            "cannot read {what}{name} as {}: {e}",
            std::any::type_name::<T>()
        ))
    })
}

impl Snapshot {
    /// A snapshot of one object, reason [`Reason::Change`], first attempt, no children, no lookups,
    /// configuration `{}`: for unit tests of a plugin (the host builds the real ones).
    pub fn new(object: Value) -> Snapshot {
        Snapshot {
            object,
            children: Vec::new(),
            lookups: Vec::new(),
            reason: Reason::Change,
            attempt: 1,
            config: Value::Object(Default::default()),
        }
    }

    /// The same snapshot with another reason.
    pub fn with_reason(mut self, reason: Reason) -> Snapshot {
        self.reason = reason;
        self
    }

    /// The same snapshot with another attempt number.
    pub fn with_attempt(mut self, attempt: u32) -> Snapshot {
        self.attempt = attempt;
        self
    }

    /// The same snapshot with one more child (JSON; use `serde_json::to_value` for typed objects).
    pub fn with_child(mut self, child: Value) -> Snapshot {
        self.children.push(child);
        self
    }

    /// The same snapshot with one more lookup result.
    pub fn with_lookup(mut self, lookup: Lookup, objects: Vec<Value>) -> Snapshot {
        self.lookups.push(LookupResult { lookup, objects });
        self
    }

    /// The same snapshot with this configuration.
    pub fn with_config(mut self, config: Value) -> Snapshot {
        self.config = config;
        self
    }

    /// Why this reconcile runs.
    pub fn reason(&self) -> Reason {
        self.reason
    }

    /// 1 for the first attempt; counts up while reconciles of this object fail.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// Whether the object is going away: reason [`Reason::Deletion`], or a `deletionTimestamp` is
    /// set. With a finalizer, answer with [`crate::Desired::finalizer_done`] once cleaned up.
    pub fn is_deleting(&self) -> bool {
        self.reason == Reason::Deletion
            || self
                .object
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null())
    }

    /// The primary object as a k8s-openapi type (its `apiVersion` and `kind` must match `K`).
    pub fn object<K: Resource + DeserializeOwned>(&self) -> Result<K, Error> {
        from_json(&self.object, K::KIND)
    }

    /// The primary object as any deserialisable type, e.g. a custom resource's own struct.
    pub fn object_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        from_json(&self.object, "the object")
    }

    /// The primary object as JSON.
    pub fn object_json(&self) -> &Value {
        &self.object
    }

    /// The primary object's `metadata` (default when absent or unreadable).
    pub fn meta(&self) -> ObjectMeta {
        self.object
            .get("metadata")
            .and_then(|m| ObjectMeta::deserialize(m).ok())
            .unwrap_or_default()
    }

    /// The primary object's name.
    pub fn name(&self) -> &str {
        self.str_at("/metadata/name").unwrap_or_default()
    }

    /// The primary object's namespace; `None` when cluster-scoped.
    pub fn namespace(&self) -> Option<&str> {
        self.str_at("/metadata/namespace")
    }

    /// The primary object's uid.
    pub fn uid(&self) -> Option<&str> {
        self.str_at("/metadata/uid")
    }

    /// The primary object's `metadata.generation`: what `status.observedGeneration` should report.
    pub fn generation(&self) -> Option<i64> {
        self.object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
    }

    /// One label of the primary object.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.object.get("metadata")?.get("labels")?.get(key)?.as_str()
    }

    /// One annotation of the primary object.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.object
            .get("metadata")?
            .get("annotations")?
            .get(key)?
            .as_str()
    }

    fn str_at(&self, pointer: &str) -> Option<&str> {
        self.object.pointer(pointer).and_then(Value::as_str)
    }

    /// Metadata for a child: this name, in the primary object's namespace. (The host adds the
    /// owner reference and its tracking labels; a namespaced child without a namespace also lands
    /// in the primary object's namespace.)
    pub fn child_meta(&self, name: impl Into<String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: self.namespace().map(String::from),
            ..ObjectMeta::default()
        }
    }

    /// The children of kind `K` (those this object owns, as found by the host).
    pub fn children<K: Resource + DeserializeOwned>(&self) -> Result<Vec<K>, Error> {
        self.children_as(&Gvk::of::<K>())
    }

    /// The child of kind `K` with this name (in any namespace), if there is one.
    pub fn child<K: Resource + DeserializeOwned>(&self, name: &str) -> Result<Option<K>, Error> {
        let gvk = Gvk::of::<K>();
        self.children
            .iter()
            .find(|c| gvk.matches(c) && c.pointer("/metadata/name").and_then(Value::as_str) == Some(name))
            .map(|c| from_json(c, K::KIND))
            .transpose()
    }

    /// The children of a kind, deserialised as `T` (for kinds without a k8s-openapi type).
    pub fn children_as<T: DeserializeOwned>(&self, kind: &Gvk) -> Result<Vec<T>, Error> {
        self.children
            .iter()
            .filter(|c| kind.matches(c))
            .map(|c| from_json(c, &kind.kind))
            .collect()
    }

    /// Every child, as JSON.
    pub fn children_json(&self) -> &[Value] {
        &self.children
    }

    /// The objects of kind `K` from every declared lookup of that kind.
    pub fn lookup<K: Resource + DeserializeOwned>(&self) -> Result<Vec<K>, Error> {
        let gvk = Gvk::of::<K>();
        self.lookups
            .iter()
            .filter(|l| l.lookup.kind == gvk)
            .flat_map(|l| &l.objects)
            .map(|o| from_json(o, K::KIND))
            .collect()
    }

    /// The declared lookups' results, in declaration order.
    pub fn lookups(&self) -> &[LookupResult] {
        &self.lookups
    }

    /// The plugin's configuration as `T` (the host passes `{}` when none is given, so give `T`
    /// `#[serde(default)]` fields).
    pub fn config<T: DeserializeOwned>(&self) -> Result<T, Error> {
        from_json(&self.config, "the plugin configuration")
    }

    /// The plugin's configuration, as JSON.
    pub fn config_json(&self) -> &Value {
        &self.config
    }

    /// The primary object's current `status.conditions` (entries that do not parse are skipped).
    pub fn conditions(&self) -> Vec<Condition> {
        self.object
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .map(|list| {
                list.iter()
                    .filter_map(|c| Condition::deserialize(c).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The new full set of conditions with `lastTransitionTime` carried over from the current
    /// status where a condition kept its status ([`Condition::carry_over`]).
    pub fn update_conditions(&self, new: impl IntoIterator<Item = Condition>) -> Vec<Condition> {
        Condition::carry_over(&self.conditions(), new)
    }

    pub(crate) fn from_parts(
        object: Value,
        children: Vec<Value>,
        lookups: Vec<LookupResult>,
        reason: Reason,
        attempt: u32,
        config: Value,
    ) -> Snapshot {
        Snapshot {
            object,
            children,
            lookups,
            reason,
            attempt,
            config,
        }
    }
}
