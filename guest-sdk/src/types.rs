//! Kinds, object references and the plugin's declaration.

use std::fmt;

use k8s_openapi::Resource;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

/// A Kubernetes kind: group, version and kind. `group` is empty for the core group (`v1`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Gvk {
    /// The API group (`apps`, `example.com`); empty for the core group.
    pub group: String,
    /// The version (`v1`).
    pub version: String,
    /// The kind (`Deployment`).
    pub kind: String,
}

impl Gvk {
    /// A kind from its parts: `Gvk::new("example.com", "v1", "Database")`.
    pub fn new(group: impl Into<String>, version: impl Into<String>, kind: impl Into<String>) -> Gvk {
        Gvk {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    /// The kind of a k8s-openapi type (or any type implementing [`k8s_openapi::Resource`]):
    /// `Gvk::of::<Deployment>()`.
    pub fn of<K: Resource>() -> Gvk {
        Gvk::new(K::GROUP, K::VERSION, K::KIND)
    }

    /// A kind from an `apiVersion` (`apps/v1`, `v1`) and a kind.
    pub fn from_api_version(api_version: &str, kind: &str) -> Gvk {
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        Gvk::new(group, version, kind)
    }

    /// The kind of an object in JSON form, from its `apiVersion` and `kind`.
    pub fn of_object(object: &Value) -> Option<Gvk> {
        let api_version = object.get("apiVersion")?.as_str()?;
        let kind = object.get("kind")?.as_str()?;
        Some(Gvk::from_api_version(api_version, kind))
    }

    /// The `apiVersion` of this kind: `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// Whether an object in JSON form is of this kind.
    pub fn matches(&self, object: &Value) -> bool {
        object.get("kind").and_then(Value::as_str) == Some(self.kind.as_str())
            && object.get("apiVersion").and_then(Value::as_str) == Some(self.api_version().as_str())
    }
}

impl fmt::Display for Gvk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.api_version(), self.kind)
    }
}

/// Points at one object: for patches, deletions and the subject of events.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// The object's kind.
    pub kind: Gvk,
    /// Its namespace; `None` for cluster-scoped objects.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl ObjectRef {
    /// A reference from its parts.
    pub fn new(kind: Gvk, namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef {
            kind,
            namespace: namespace.map(String::from),
            name: name.into(),
        }
    }

    /// A reference to an object of a k8s-openapi kind: `ObjectRef::of::<ConfigMap>(Some("ns"), "x")`.
    pub fn of<K: Resource>(namespace: Option<&str>, name: &str) -> ObjectRef {
        ObjectRef::new(Gvk::of::<K>(), namespace, name)
    }

    /// A reference to a typed object, from its kind and `metadata`.
    pub fn from_object<K>(object: &K) -> ObjectRef
    where
        K: Resource + k8s_openapi::Metadata<Ty = ObjectMeta>,
    {
        let meta = object.metadata();
        ObjectRef {
            kind: Gvk::of::<K>(),
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    /// A reference to an object in JSON form; `None` without `apiVersion`, `kind` or a name.
    pub fn from_json(object: &Value) -> Option<ObjectRef> {
        let kind = Gvk::of_object(object)?;
        let name = object.pointer("/metadata/name")?.as_str()?;
        let namespace = object.pointer("/metadata/namespace").and_then(Value::as_str);
        Some(ObjectRef::new(kind, namespace, name))
    }
}

/// What a plugin may do to objects of a kind it does not own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// Merge or JSON patches ([`crate::Desired::merge_patch`], [`crate::Desired::json_patch`]).
    Patch,
    /// Deletions ([`crate::Desired::delete`]).
    Delete,
}

/// A kind the plugin may write to without owning it, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePermission {
    /// The kind.
    pub kind: Gvk,
    /// What the plugin may do to its objects.
    pub verbs: Vec<Verb>,
}

/// Which namespaces the plugin watches and writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NamespaceScope {
    /// Every namespace, and cluster-scoped objects.
    #[default]
    All,
    /// Only these namespaces.
    Only(Vec<String>),
}

/// A query the host answers from its cache for every reconcile ([`crate::Snapshot::lookup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lookup {
    /// The kind to list.
    pub kind: Gvk,
    /// Only this namespace; `None` is every namespace (or a cluster-scoped kind).
    pub namespace: Option<String>,
    /// A label selector (`app=web,tier in (a,b)`); `None` selects everything.
    pub label_selector: Option<String>,
}

impl Lookup {
    /// Every object of a kind: `Lookup::new(Gvk::of::<Namespace>())`.
    pub fn new(kind: Gvk) -> Lookup {
        Lookup {
            kind,
            namespace: None,
            label_selector: None,
        }
    }

    /// Only objects in this namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Lookup {
        self.namespace = Some(namespace.into());
        self
    }

    /// Only objects matching this label selector (`app=web`).
    pub fn label_selector(mut self, selector: impl Into<String>) -> Lookup {
        self.label_selector = Some(selector.into());
        self
    }
}

/// What a plugin declares about itself; read once when the plugin is loaded.
///
/// ```
/// use wasmop_sdk::k8s_openapi::api::{apps::v1::Deployment, policy::v1::PodDisruptionBudget};
/// use wasmop_sdk::{Gvk, Metadata};
///
/// let meta = Metadata::new("pdb-guard", "0.1.0", Gvk::of::<Deployment>())
///     .owns(Gvk::of::<PodDisruptionBudget>())
///     .resync_seconds(600);
/// assert_eq!(meta.owns.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    /// Unique plugin name, a DNS label (`database-operator`). The host's field manager is
    /// `wasmop/<name>`, its finalizer `wasmop.io/<name>`.
    pub name: String,
    /// The plugin's own version (semver); `env!("CARGO_PKG_VERSION")` is a good value.
    pub version: String,
    /// The kind it reconciles: one reconcile per object of this kind.
    pub primary: Gvk,
    /// Kinds it creates and owns (children): applied with an owner reference (or tracking labels
    /// across namespaces), pruned when no longer desired; a change to one reconciles its owner.
    pub owns: Vec<Gvk>,
    /// Queries answered from the host's cache in every snapshot, in this order.
    pub lookups: Vec<Lookup>,
    /// Other kinds it may patch or delete. Writes outside `owns` and `writes` are refused.
    pub writes: Vec<WritePermission>,
    /// Whether the host adds a finalizer to every primary object, so the plugin can clean up
    /// (reason [`crate::Reason::Deletion`], answered with [`crate::Desired::finalizer_done`]).
    pub finalizer: bool,
    /// Which namespaces it watches and writes.
    pub namespaces: NamespaceScope,
    /// Every object is reconciled again after this many seconds (0: never).
    pub resync_seconds: u32,
    /// At most this many reconciles run at once (0: the host's default).
    pub max_concurrent_reconciles: u32,
}

impl Metadata {
    /// A declaration with a name, a version and a primary kind; it owns, looks up and writes
    /// nothing else, has no finalizer, watches every namespace and never resyncs.
    pub fn new(name: impl Into<String>, version: impl Into<String>, primary: Gvk) -> Metadata {
        Metadata {
            name: name.into(),
            version: version.into(),
            primary,
            owns: Vec::new(),
            lookups: Vec::new(),
            writes: Vec::new(),
            finalizer: false,
            namespaces: NamespaceScope::All,
            resync_seconds: 0,
            max_concurrent_reconciles: 0,
        }
    }

    /// Adds an owned kind (children returned in [`crate::Desired::apply`]).
    pub fn owns(mut self, kind: Gvk) -> Metadata {
        self.owns.push(kind);
        self
    }

    /// Adds a lookup.
    pub fn lookup(mut self, lookup: Lookup) -> Metadata {
        self.lookups.push(lookup);
        self
    }

    /// Allows patches and/or deletions of a kind the plugin does not own.
    pub fn writes(mut self, kind: Gvk, verbs: &[Verb]) -> Metadata {
        self.writes.push(WritePermission {
            kind,
            verbs: verbs.to_vec(),
        });
        self
    }

    /// Asks the host to hold every primary object with the finalizer `wasmop.io/<name>` until the
    /// plugin answers a [`crate::Reason::Deletion`] reconcile with `finalizer_done`.
    pub fn finalizer(mut self, finalizer: bool) -> Metadata {
        self.finalizer = finalizer;
        self
    }

    /// Limits the plugin to these namespaces (or [`NamespaceScope::All`]).
    pub fn namespaces(mut self, namespaces: NamespaceScope) -> Metadata {
        self.namespaces = namespaces;
        self
    }

    /// Reconciles every object again after this many seconds (0: never).
    pub fn resync_seconds(mut self, seconds: u32) -> Metadata {
        self.resync_seconds = seconds;
        self
    }

    /// Runs at most this many reconciles at once (0: the host's default).
    pub fn max_concurrent_reconciles(mut self, n: u32) -> Metadata {
        self.max_concurrent_reconciles = n;
        self
    }
}
