//! Typed access to what a call gets: [`SnapshotExt`] on the contract's [`Snapshot`],
//! [`LookupResultExt`] on its lookup results and [`TriggerExt`] on a `map` call's [`Trigger`].
//! Typed access deserialises on each call; keep the result rather than asking twice in a loop.

use k8s_openapi::Resource;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Condition, Error, Gvk, GvkExt, LookupResult, Reason, Snapshot, Trigger};

/// `value` as `T`, or a permanent error naming what it was and its name.
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

fn str_at<'a>(object: &'a Value, pointer: &str) -> Option<&'a str> {
    object.pointer(pointer).and_then(Value::as_str)
}

/// Typed access to a [`Snapshot`]: the primary object, its children, the lookups, the
/// configuration, and why the reconcile runs.
pub trait SnapshotExt {
    /// Why this reconcile runs.
    fn reason(&self) -> Reason;

    /// 1 for the first attempt; counts up while reconciles of this object fail.
    fn attempt(&self) -> u32;

    /// Whether the object is going away: reason [`Reason::Deletion`], or a `deletionTimestamp` is
    /// set. A plugin holding its finalizer cleans up, then answers without
    /// [`Desired::finalizer`](crate::Desired::finalizer) to release it.
    fn is_deleting(&self) -> bool;

    /// The primary object as a k8s-openapi type (its `apiVersion` and `kind` must match `K`).
    fn object<K: Resource + DeserializeOwned>(&self) -> Result<K, Error>;

    /// The primary object as any deserialisable type, e.g. a custom resource's own struct.
    fn object_as<T: DeserializeOwned>(&self) -> Result<T, Error>;

    /// The primary object as JSON.
    fn object_json(&self) -> &Value;

    /// The primary object's `metadata` (default when absent or unreadable).
    fn meta(&self) -> ObjectMeta;

    /// The primary object's name.
    fn name(&self) -> &str;

    /// The primary object's namespace; `None` when cluster-scoped.
    fn namespace(&self) -> Option<&str>;

    /// The primary object's uid.
    fn uid(&self) -> Option<&str>;

    /// The primary object's `metadata.generation`: what `status.observedGeneration` should report.
    fn generation(&self) -> Option<i64>;

    /// One label of the primary object.
    fn label(&self, key: &str) -> Option<&str>;

    /// One annotation of the primary object.
    fn annotation(&self, key: &str) -> Option<&str>;

    /// Metadata for a child: this name, in the primary object's namespace. (The host adds the
    /// owner reference and its tracking labels; a namespaced child without a namespace also lands
    /// in the primary object's namespace.)
    fn child_meta(&self, name: impl Into<String>) -> ObjectMeta;

    /// The children of kind `K` (those this object owns, as found by the host).
    fn children<K: Resource + DeserializeOwned>(&self) -> Result<Vec<K>, Error>;

    /// The child of kind `K` with this name (in any namespace), if there is one.
    fn child<K: Resource + DeserializeOwned>(&self, name: &str) -> Result<Option<K>, Error>;

    /// The children of a kind, deserialised as `T` (for kinds without a k8s-openapi type).
    fn children_as<T: DeserializeOwned>(&self, kind: &Gvk) -> Result<Vec<T>, Error>;

    /// Every child, as JSON.
    fn children_json(&self) -> &[Value];

    /// The objects of kind `K` from every declared lookup of that kind.
    fn lookup<K: Resource + DeserializeOwned>(&self) -> Result<Vec<K>, Error>;

    /// The declared lookups' results, in declaration order.
    fn lookups(&self) -> &[LookupResult];

    /// The plugin's configuration as `T` (the host passes `{}` when none is given, so give `T`
    /// `#[serde(default)]` fields).
    fn config<T: DeserializeOwned>(&self) -> Result<T, Error>;

    /// The plugin's configuration, as JSON.
    fn config_json(&self) -> &Value;

    /// The primary object's current `status.conditions` (entries that do not parse are skipped).
    fn conditions(&self) -> Vec<Condition>;

    /// The new full set of conditions with `lastTransitionTime` carried over from the current
    /// status where a condition kept its status ([`Condition::carry_over`]).
    fn update_conditions(&self, new: impl IntoIterator<Item = Condition>) -> Vec<Condition> {
        Condition::carry_over(&self.conditions(), new)
    }
}

impl SnapshotExt for Snapshot {
    fn reason(&self) -> Reason {
        self.reason
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    fn is_deleting(&self) -> bool {
        self.reason == Reason::Deletion
            || self
                .object
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null())
    }

    fn object<K: Resource + DeserializeOwned>(&self) -> Result<K, Error> {
        from_json(&self.object, K::KIND)
    }

    fn object_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        from_json(&self.object, "the object")
    }

    fn object_json(&self) -> &Value {
        &self.object
    }

    fn meta(&self) -> ObjectMeta {
        self.object
            .get("metadata")
            .and_then(|m| ObjectMeta::deserialize(m).ok())
            .unwrap_or_default()
    }

    fn name(&self) -> &str {
        str_at(&self.object, "/metadata/name").unwrap_or_default()
    }

    fn namespace(&self) -> Option<&str> {
        str_at(&self.object, "/metadata/namespace")
    }

    fn uid(&self) -> Option<&str> {
        str_at(&self.object, "/metadata/uid")
    }

    fn generation(&self) -> Option<i64> {
        self.object
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.object.get("metadata")?.get("labels")?.get(key)?.as_str()
    }

    fn annotation(&self, key: &str) -> Option<&str> {
        self.object
            .get("metadata")?
            .get("annotations")?
            .get(key)?
            .as_str()
    }

    fn child_meta(&self, name: impl Into<String>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: SnapshotExt::namespace(self).map(String::from),
            ..ObjectMeta::default()
        }
    }

    fn children<K: Resource + DeserializeOwned>(&self) -> Result<Vec<K>, Error> {
        self.children_as(&Gvk::of::<K>())
    }

    fn child<K: Resource + DeserializeOwned>(&self, name: &str) -> Result<Option<K>, Error> {
        let gvk = Gvk::of::<K>();
        self.children
            .iter()
            .find(|c| gvk.matches(c) && str_at(c, "/metadata/name") == Some(name))
            .map(|c| from_json(c, K::KIND))
            .transpose()
    }

    fn children_as<T: DeserializeOwned>(&self, kind: &Gvk) -> Result<Vec<T>, Error> {
        self.children
            .iter()
            .filter(|c| kind.matches(c))
            .map(|c| from_json(c, &kind.kind))
            .collect()
    }

    fn children_json(&self) -> &[Value] {
        &self.children
    }

    fn lookup<K: Resource + DeserializeOwned>(&self) -> Result<Vec<K>, Error> {
        let gvk = Gvk::of::<K>();
        self.lookups
            .iter()
            .filter(|l| l.lookup.kind == gvk)
            .flat_map(|l| &l.objects)
            .map(|o| from_json(o, K::KIND))
            .collect()
    }

    fn lookups(&self) -> &[LookupResult] {
        &self.lookups
    }

    fn config<T: DeserializeOwned>(&self) -> Result<T, Error> {
        from_json(&self.config, "the plugin configuration")
    }

    fn config_json(&self) -> &Value {
        &self.config
    }

    fn conditions(&self) -> Vec<Condition> {
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
}

/// Typed objects of one declared lookup's results.
pub trait LookupResultExt {
    /// The objects deserialised as `T`.
    fn objects_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error>;
}

impl LookupResultExt for LookupResult {
    fn objects_as<T: DeserializeOwned>(&self) -> Result<Vec<T>, Error> {
        self.objects
            .iter()
            .map(|o| from_json(o, "lookup object"))
            .collect()
    }
}

/// Typed access to the object of a [`Trigger`] (the changed object of a triggering lookup).
pub trait TriggerExt {
    /// The object as a k8s-openapi type.
    fn object<K: Resource + DeserializeOwned>(&self) -> Result<K, Error>;

    /// The object as any deserialisable type.
    fn object_as<T: DeserializeOwned>(&self) -> Result<T, Error>;

    /// The object's name.
    fn name(&self) -> &str;

    /// The object's namespace; `None` when cluster-scoped.
    fn namespace(&self) -> Option<&str>;
}

impl TriggerExt for Trigger {
    fn object<K: Resource + DeserializeOwned>(&self) -> Result<K, Error> {
        from_json(&self.object, K::KIND)
    }

    fn object_as<T: DeserializeOwned>(&self) -> Result<T, Error> {
        from_json(&self.object, "the trigger object")
    }

    fn name(&self) -> &str {
        str_at(&self.object, "/metadata/name").unwrap_or_default()
    }

    fn namespace(&self) -> Option<&str> {
        str_at(&self.object, "/metadata/namespace")
    }
}
