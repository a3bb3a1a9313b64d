//! The plugin contract (`wit/reconciler.wit`) as plain Rust types, shared by the engine and the plugin
//! runtime so that neither sees the other's dependencies: the engine never sees wasmtime types, the
//! runtime never sees kube. The runtime converts between these and its `bindgen!` types; the engine
//! turns them into API calls.
//!
//! Also here: validation of a plugin's [`Metadata`] and the RBAC rules it implies.

use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

/// A Kubernetes kind; `group` is empty for the core group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Gvk {
    pub group: String,
    pub version: String,
    pub kind: String,
}

impl Gvk {
    pub fn new(group: &str, version: &str, kind: &str) -> Gvk {
        Gvk {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        }
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

impl std::fmt::Display for Gvk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.api_version(), self.kind)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    Patch,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritePermission {
    pub kind: Gvk,
    pub verbs: Vec<Verb>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceScope {
    All,
    Only(Vec<String>),
}

impl NamespaceScope {
    /// Whether an object in `namespace` (None: cluster-scoped) is in scope.
    pub fn allows(&self, namespace: Option<&str>) -> bool {
        match (self, namespace) {
            (NamespaceScope::All, _) | (_, None) => true,
            (NamespaceScope::Only(list), Some(ns)) => list.iter().any(|n| n == ns),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lookup {
    pub kind: Gvk,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
}

/// What a plugin declares about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub name: String,
    pub version: String,
    pub primary: Gvk,
    pub owns: Vec<Gvk>,
    pub lookups: Vec<Lookup>,
    pub writes: Vec<WritePermission>,
    pub finalizer: bool,
    pub namespaces: NamespaceScope,
    pub resync_seconds: u32,
    pub max_concurrent_reconciles: u32,
}

/// Why a plugin's metadata is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("name {0:?} must be a DNS label: lower-case letters, digits and '-', at most 63 characters")]
    Name(String),
    #[error("version must not be empty")]
    Version,
    #[error("{field}: kind {gvk:?} needs a version and a kind")]
    Kind { field: &'static str, gvk: Gvk },
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

impl Metadata {
    /// The field manager the host applies with: `wasmop/<name>`.
    pub fn field_manager(&self) -> String {
        format!("wasmop/{}", self.name)
    }

    /// The finalizer the host adds when `finalizer` is set: `wasmop.io/<name>`.
    pub fn finalizer_name(&self) -> String {
        format!("wasmop.io/{}", self.name)
    }

    /// Checks what the host relies on.
    pub fn validate(&self) -> Result<(), MetadataError> {
        if !is_dns_label(&self.name) {
            return Err(MetadataError::Name(self.name.clone()));
        }
        if self.version.trim().is_empty() {
            return Err(MetadataError::Version);
        }
        let check = |field: &'static str, g: &Gvk| {
            if g.version.is_empty() || g.kind.is_empty() {
                Err(MetadataError::Kind {
                    field,
                    gvk: g.clone(),
                })
            } else {
                Ok(())
            }
        };
        check("primary", &self.primary)?;
        // Owning the primary kind is allowed: a plugin may create objects of its own kind (copies).
        for g in &self.owns {
            check("owns", g)?;
        }
        for l in &self.lookups {
            check("lookups", &l.kind)?;
        }
        for w in &self.writes {
            check("writes", &w.kind)?;
            if w.verbs.is_empty() {
                return Err(MetadataError::Field {
                    field: "writes",
                    reason: format!("{} lists no verbs", w.kind),
                });
            }
        }
        if let NamespaceScope::Only(list) = &self.namespaces {
            if list.is_empty() {
                return Err(MetadataError::Field {
                    field: "namespaces",
                    reason: "an empty namespace list".into(),
                });
            }
            if let Some(bad) = list.iter().find(|n| !is_dns_label(n)) {
                return Err(MetadataError::Field {
                    field: "namespaces",
                    reason: format!("{bad:?} is not a namespace name"),
                });
            }
        }
        Ok(())
    }

    /// Whether the plugin may patch (or delete) objects of `kind`.
    pub fn may(&self, verb: Verb, kind: &Gvk) -> bool {
        self.owns.contains(kind)
            || self
                .writes
                .iter()
                .any(|w| &w.kind == kind && w.verbs.contains(&verb))
    }
}

/// Why a reconcile runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    Change,
    ChildChange,
    Resync,
    Retry,
    Deletion,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LookupResult {
    pub lookup: Lookup,
    /// Matching objects, as JSON.
    pub objects: Vec<serde_json::Value>,
}

/// Everything one reconcile gets. Objects are JSON values here; the runtime serialises them to text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub object: serde_json::Value,
    #[serde(default)]
    pub children: Vec<serde_json::Value>,
    #[serde(default)]
    pub lookups: Vec<LookupResult>,
    pub reason: Reason,
    #[serde(default = "one")]
    pub attempt: u32,
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
}

fn one() -> u32 {
    1
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ObjectRef {
    pub kind: Gvk,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchType {
    Merge,
    Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    pub target: ObjectRef,
    pub patch_type: PatchType,
    pub body: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub event_type: EventType,
    pub reason: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regarding: Option<ObjectRef>,
}

/// The state a plugin wants; the host makes it true.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Desired {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apply: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deletions: Vec<ObjectRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finalizer_done: bool,
}

/// Why a reconcile produced no desired state. A guest trap is not an error the guest returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileFailure {
    /// The plugin asked for a retry with backoff.
    #[error("plugin error (will retry): {0}")]
    Retry(String),
    /// The plugin says only a change of the object can help.
    #[error("plugin error (permanent): {0}")]
    Permanent(String),
    /// The guest trapped (a panic, an unreachable, a bad memory access).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The guest ran past its deadline.
    #[error("plugin exceeded its deadline of {0:?}")]
    Timeout(std::time::Duration),
    /// The guest tried to grow its memory past the cap.
    #[error("plugin exceeded its memory cap of {0} bytes")]
    OutOfMemory(u64),
    /// The guest answered something the host cannot use (malformed JSON, ...).
    #[error("plugin returned an invalid answer: {0}")]
    Invalid(String),
}

impl ReconcileFailure {
    /// Whether the engine should retry with backoff (everything but a permanent error).
    pub fn retryable(&self) -> bool {
        !matches!(self, ReconcileFailure::Permanent(_))
    }
}

/// Read-only cache access the host gives a reconcile (limited by the engine to declared kinds).
pub trait CacheReader: Send + Sync {
    fn get(&self, kind: &Gvk, namespace: Option<&str>, name: &str) -> Option<serde_json::Value>;
    fn list(
        &self,
        kind: &Gvk,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Vec<serde_json::Value>;
}

/// A cache with nothing in it (offline `wasmop test`).
#[derive(Debug, Default, Clone, Copy)]
pub struct EmptyCache;

impl CacheReader for EmptyCache {
    fn get(&self, _: &Gvk, _: Option<&str>, _: &str) -> Option<serde_json::Value> {
        None
    }

    fn list(&self, _: &Gvk, _: Option<&str>, _: Option<&str>) -> Vec<serde_json::Value> {
        Vec::new()
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A loaded plugin, as the engine sees it.
pub trait Reconciler: Send + Sync {
    fn metadata(&self) -> &Metadata;

    fn reconcile<'a>(
        &'a self,
        snapshot: Snapshot,
        cache: std::sync::Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Desired, ReconcileFailure>>;
}

/// One RBAC rule (`rbac.authorization.k8s.io/v1` PolicyRule) the host needs for a plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRule {
    #[serde(rename = "apiGroups")]
    pub api_groups: Vec<String>,
    /// Kinds, to be mapped to resource names by whoever knows the plurals (the host's discovery).
    pub kinds: Vec<String>,
    pub verbs: Vec<String>,
}

impl Metadata {
    /// The access the host needs to run this plugin, one rule per kind.
    pub fn rbac_rules(&self) -> Vec<PolicyRule> {
        let read = ["get", "list", "watch"];
        let mut rules: Vec<PolicyRule> = Vec::new();
        let mut add = |g: &Gvk, verbs: &[&str]| {
            let verbs: Vec<String> = verbs.iter().map(|v| v.to_string()).collect();
            match rules
                .iter_mut()
                .find(|r| r.api_groups == [g.group.clone()] && r.kinds == [g.kind.clone()])
            {
                Some(r) => {
                    for v in verbs {
                        if !r.verbs.contains(&v) {
                            r.verbs.push(v);
                        }
                    }
                }
                None => rules.push(PolicyRule {
                    api_groups: vec![g.group.clone()],
                    kinds: vec![g.kind.clone()],
                    verbs,
                }),
            }
        };
        add(&self.primary, &read);
        add(&self.primary, &["patch", "update"]);
        for g in &self.owns {
            add(
                g,
                &["get", "list", "watch", "create", "patch", "update", "delete"],
            );
        }
        for l in &self.lookups {
            add(&l.kind, &read);
        }
        for w in &self.writes {
            add(&w.kind, &read);
            for v in &w.verbs {
                add(
                    &w.kind,
                    &[match v {
                        Verb::Patch => "patch",
                        Verb::Delete => "delete",
                    }],
                );
            }
        }
        add(&Gvk::new("", "v1", "Event"), &["create", "patch"]);
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> Metadata {
        Metadata {
            name: "pdb-guard".into(),
            version: "0.1.0".into(),
            primary: Gvk::new("apps", "v1", "Deployment"),
            owns: vec![Gvk::new("policy", "v1", "PodDisruptionBudget")],
            lookups: vec![],
            writes: vec![],
            finalizer: false,
            namespaces: NamespaceScope::All,
            resync_seconds: 300,
            max_concurrent_reconciles: 0,
        }
    }

    #[test]
    fn metadata_validation_names_the_field() {
        assert!(meta().validate().is_ok());
        let mut m = meta();
        m.name = "Bad Name".into();
        assert!(matches!(m.validate(), Err(MetadataError::Name(_))));
        let mut m = meta();
        m.owns.push(Gvk::new("", "", "ConfigMap"));
        assert_eq!(
            m.validate().unwrap_err().to_string(),
            "owns: kind Gvk { group: \"\", version: \"\", kind: \"ConfigMap\" } needs a version and a kind"
        );
        let mut m = meta();
        m.namespaces = NamespaceScope::Only(vec![]);
        assert!(m.validate().is_err());
    }

    #[test]
    fn permissions_follow_the_declaration() {
        let mut m = meta();
        m.writes.push(WritePermission {
            kind: Gvk::new("", "v1", "ConfigMap"),
            verbs: vec![Verb::Delete],
        });
        assert!(m.may(Verb::Patch, &Gvk::new("policy", "v1", "PodDisruptionBudget")));
        assert!(m.may(Verb::Delete, &Gvk::new("", "v1", "ConfigMap")));
        assert!(!m.may(Verb::Patch, &Gvk::new("", "v1", "ConfigMap")));
        assert!(!m.may(Verb::Delete, &Gvk::new("", "v1", "Secret")));
        let rules = m.rbac_rules();
        let deploy = rules.iter().find(|r| r.kinds == ["Deployment"]).unwrap();
        assert_eq!(deploy.verbs, vec!["get", "list", "watch", "patch", "update"]);
    }

    #[test]
    fn snapshots_read_from_yaml_like_fixtures() {
        let s: Snapshot = serde_json::from_value(
            serde_json::json!({"object": {"kind": "Deployment"}, "reason": "child-change"}),
        )
        .unwrap();
        assert_eq!(
            (s.reason, s.attempt, s.config.clone()),
            (Reason::ChildChange, 1, serde_json::json!({}))
        );
    }
}
