//! What a plugin declares about itself ([`Metadata`]), with builders, validation, the finalizer and
//! field manager names the host uses for it, and the RBAC rules it implies.

use serde::{Deserialize, Serialize};

use wasmop_apimachinery::validation::{is_dns_label, is_prefixed_qualified_name};

use crate::kind::Gvk;

/// What a plugin may do to objects of a kind it does not own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verb {
    /// Merge or JSON patches.
    Patch,
    /// Deletions.
    Delete,
}

/// A kind the plugin may write to without owning it, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WritePermission {
    #[serde(flatten)]
    pub kind: Gvk,
    pub verbs: Vec<Verb>,
}

/// Which namespaces the plugin watches and writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceScope {
    /// Every namespace, and cluster-scoped objects.
    #[default]
    All,
    /// Only these namespaces.
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

/// A query the host answers from its cache for every reconcile; with `triggers`, a change to a
/// matching object is mapped (by the plugin's `map`) to primary objects to reconcile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lookup {
    #[serde(flatten)]
    pub kind: Gvk,
    /// Only this namespace; `None` is every namespace (or a cluster-scoped kind).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A label selector (`app=web,tier in (a,b)`); `None` selects everything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selector: Option<String>,
    /// Whether a change to a matching object triggers reconciles (through the plugin's `map`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub triggers: bool,
}

impl Lookup {
    /// Every object of a kind.
    pub fn new(kind: Gvk) -> Lookup {
        Lookup {
            kind,
            namespace: None,
            label_selector: None,
            triggers: false,
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

    /// A change to a matching object triggers reconciles of the primary objects the plugin's `map`
    /// names.
    pub fn triggers(mut self) -> Lookup {
        self.triggers = true;
        self
    }
}

/// What a plugin declares about itself; read once when the plugin is loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// Unique plugin name, a DNS label (`database-operator`). The host's field manager is
    /// `wasmop/<name>`.
    pub name: String,
    /// The plugin's own version (semver).
    pub version: String,
    /// The kind it reconciles: one reconcile per object of this kind.
    pub primary: Gvk,
    /// Kinds it creates and owns (children): applied with an owner reference (or tracking labels
    /// across namespaces), pruned when no longer desired; a change to one reconciles its owner.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owns: Vec<Gvk>,
    /// Queries answered from the host's cache in every snapshot, in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lookups: Vec<Lookup>,
    /// Other kinds it may patch or delete. Writes outside `owns` and `writes` are refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writes: Vec<WritePermission>,
    /// The finalizer put on objects whose desired state asks for one; `None` is `wasmop.io/<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finalizer: Option<String>,
    /// Which namespaces it watches and writes.
    #[serde(default)]
    pub namespaces: NamespaceScope,
    /// Every object is reconciled again after this many seconds (0: never).
    #[serde(default)]
    pub resync_seconds: u32,
    /// At most this many reconciles run at once (0: the host's default).
    #[serde(default)]
    pub max_concurrent_reconciles: u32,
    /// CustomResourceDefinitions of the plugin's kinds (YAML or JSON documents), for `wasmop crd`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub crds: Vec<String>,
}

/// Why a plugin's metadata is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("name {0:?} must be a DNS label: lower-case letters, digits and '-', at most 63 characters")]
    Name(String),
    #[error("version must not be empty")]
    Version,
    #[error("{field}: kind {gvk} needs a version and a kind")]
    Kind { field: &'static str, gvk: Gvk },
    #[error("{field}: {reason}")]
    Field { field: &'static str, reason: String },
}

impl Metadata {
    /// A declaration with a name, a version and a primary kind; it owns, looks up and writes
    /// nothing else, uses the default finalizer name, watches every namespace and never resyncs.
    pub fn new(name: impl Into<String>, version: impl Into<String>, primary: Gvk) -> Metadata {
        Metadata {
            name: name.into(),
            version: version.into(),
            primary,
            owns: Vec::new(),
            lookups: Vec::new(),
            writes: Vec::new(),
            finalizer: None,
            namespaces: NamespaceScope::All,
            resync_seconds: 0,
            max_concurrent_reconciles: 0,
            crds: Vec::new(),
        }
    }

    /// Adds an owned kind (children returned in `Desired::apply`).
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

    /// Names the finalizer (a qualified name, `example.com/cleanup`) instead of `wasmop.io/<name>`.
    pub fn finalizer(mut self, name: impl Into<String>) -> Metadata {
        self.finalizer = Some(name.into());
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

    /// Adds a CustomResourceDefinition (YAML or JSON) of one of the plugin's kinds.
    pub fn crd(mut self, document: impl Into<String>) -> Metadata {
        self.crds.push(document.into());
        self
    }

    /// The field manager the host applies with: `wasmop/<name>`.
    pub fn field_manager(&self) -> String {
        format!("wasmop/{}", self.name)
    }

    /// The finalizer the host adds where the plugin asks for one: the declared name, else
    /// `wasmop.io/<name>`.
    pub fn finalizer_name(&self) -> String {
        self.finalizer
            .clone()
            .unwrap_or_else(|| format!("wasmop.io/{}", self.name))
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
            if let Some(ns) = &l.namespace
                && !is_dns_label(ns)
            {
                return Err(MetadataError::Field {
                    field: "lookups",
                    reason: format!("{ns:?} is not a namespace name"),
                });
            }
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
        if let Some(f) = &self.finalizer
            && !is_prefixed_qualified_name(f)
        {
            return Err(MetadataError::Field {
                field: "finalizer",
                reason: format!("{f:?} is not a qualified name like example.com/cleanup"),
            });
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

    /// Every kind the plugin reads: primary, owned, looked up, written; sorted, without repeats.
    pub fn kinds(&self) -> Vec<Gvk> {
        let mut kinds = vec![self.primary.clone()];
        kinds.extend(self.owns.iter().cloned());
        kinds.extend(self.lookups.iter().map(|l| l.kind.clone()));
        kinds.extend(self.writes.iter().map(|w| w.kind.clone()));
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// Whether any lookup triggers reconciles.
    pub fn has_triggers(&self) -> bool {
        self.lookups.iter().any(|l| l.triggers)
    }
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
        Metadata::new("pdb-guard", "0.1.0", Gvk::new("apps", "v1", "Deployment"))
            .owns(Gvk::new("policy", "v1", "PodDisruptionBudget"))
            .resync_seconds(300)
    }

    #[test]
    fn metadata_validation_names_the_field() {
        assert!(meta().validate().is_ok());
        let mut m = meta();
        m.name = "Bad Name".into();
        assert!(matches!(m.validate(), Err(MetadataError::Name(_))));
        let m = meta().owns(Gvk::new("", "", "ConfigMap"));
        assert_eq!(
            m.validate().unwrap_err().to_string(),
            "owns: kind /ConfigMap needs a version and a kind"
        );
        let m = meta().namespaces(NamespaceScope::Only(vec![]));
        assert!(m.validate().is_err());
        let m = meta().finalizer("no-slash");
        assert!(
            m.validate().unwrap_err().to_string().starts_with("finalizer: "),
            "a finalizer must be qualified"
        );
        let m = meta().finalizer("example.com/cleanup");
        assert!(m.validate().is_ok());
        assert_eq!(m.finalizer_name(), "example.com/cleanup");
        assert_eq!(meta().finalizer_name(), "wasmop.io/pdb-guard");
    }

    #[test]
    fn permissions_follow_the_declaration() {
        let m = meta().writes(Gvk::new("", "v1", "ConfigMap"), &[Verb::Delete]);
        assert!(m.may(Verb::Patch, &Gvk::new("policy", "v1", "PodDisruptionBudget")));
        assert!(m.may(Verb::Delete, &Gvk::new("", "v1", "ConfigMap")));
        assert!(!m.may(Verb::Patch, &Gvk::new("", "v1", "ConfigMap")));
        assert!(!m.may(Verb::Delete, &Gvk::new("", "v1", "Secret")));
        let rules = m.rbac_rules();
        let deploy = rules.iter().find(|r| r.kinds == ["Deployment"]).unwrap();
        assert_eq!(deploy.verbs, vec!["get", "list", "watch", "patch", "update"]);
    }

    #[test]
    fn metadata_documents_are_camel_case() {
        let m = meta().lookup(Lookup::new(Gvk::new("", "v1", "Namespace")).triggers());
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(v["resyncSeconds"], 300);
        assert_eq!(
            v["lookups"][0],
            serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "triggers": true})
        );
        assert_eq!(serde_json::from_value::<Metadata>(v).unwrap(), m);
    }
}
