//! Which resources the server serves: one [`ResourceInfo`] per group/version/resource.
//!
//! Built-in kinds come from [`builtins`], one line each, typed through k8s-openapi; custom resources are
//! added and removed at run time as CustomResourceDefinitions become Established or are deleted
//! (see `controllers::crd`). Discovery, routing, validation and storage all read this one table.

use std::any::TypeId;
use std::sync::{Arc, RwLock};

use k8s_openapi::api::{
    apps, authentication, authorization, batch, certificates, coordination, core, events, networking, policy,
    rbac,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1::APIService;
use k8s_openapi::{ListableResource, NamespaceResourceScope, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use wasmop_apimachinery::schema::SchemaStructure;
use wasmop_apimachinery::structure::{BuiltinStructure, Structure};

use crate::error::ResourceRef;

/// How objects of a resource are checked and normalised.
#[derive(Clone)]
pub enum Schema {
    /// Decoded through its k8s-openapi type: wrong types fail, unknown fields are dropped.
    Builtin {
        decode: fn(Value) -> Result<Value, serde_json::Error>,
        /// Adds the kind's OpenAPI v3 schemas (k8s-openapi's `JsonSchema`), see `http::builtin_schemas`.
        openapi: fn(&mut wasmop_apimachinery::openapi::Components),
    },
    /// A custom resource version's `openAPIV3Schema`.
    Custom { openapi: Arc<Value> },
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Schema::Builtin { .. } => f.write_str("Builtin"),
            Schema::Custom { .. } => f.write_str("Custom"),
        }
    }
}

/// `additionalPrinterColumns` of a CRD version (the Table columns of `kubectl get`).
#[derive(Debug, Clone)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub json_path: String,
    pub description: String,
    pub priority: i64,
}

/// `subresources.scale` of a CRD (or the built-in scale of Deployments and StatefulSets).
#[derive(Debug, Clone)]
pub struct ScaleSpec {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub label_selector_path: Option<String>,
}

/// One served group/version/resource.
#[derive(Debug, Clone)]
pub struct ResourceInfo {
    pub group: String,
    pub version: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub namespaced: bool,
    /// The `/status` subresource: main writes keep status, status writes keep everything else.
    pub status: bool,
    pub scale: Option<ScaleSpec>,
    /// `metadata.generation` is kept and bumped on spec changes.
    pub generation: bool,
    pub schema: Schema,
    pub printer_columns: Vec<PrinterColumn>,
    /// The UID of the CRD that serves this resource (None for built-ins).
    pub crd_uid: Option<String>,
}

impl ResourceInfo {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage identity: objects are shared by every version of a group/resource.
    pub fn storage_key(&self) -> String {
        format!("{}/{}", self.group, self.plural)
    }

    pub fn resource_ref(&self) -> ResourceRef<'_> {
        ResourceRef {
            group: &self.group,
            plural: &self.plural,
        }
    }

    pub fn is_custom(&self) -> bool {
        self.crd_uid.is_some()
    }

    /// How lists inside this kind's objects merge (SMP and SSA).
    pub fn structure(&self) -> Box<dyn Structure + '_> {
        match &self.schema {
            Schema::Builtin { .. } => Box::new(BuiltinStructure),
            Schema::Custom { openapi } => Box::new(SchemaStructure(openapi)),
        }
    }

    pub fn verbs(&self) -> &'static [&'static str] {
        if let Some(verbs) = crate::core_kinds::verbs(self) {
            verbs
        } else if let Some(verbs) = (!self.is_custom())
            .then(|| crate::auth::reviews::verbs(&self.group, &self.plural))
            .flatten()
        {
            verbs
        } else if self.is_custom() {
            // The order a real server reports for CRDs (reference behaviour 6).
            &[
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "create",
                "update",
                "watch",
            ]
        } else {
            &[
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            ]
        }
    }
}

fn typed<K: DeserializeOwned + Serialize>(mut v: Value) -> Result<Value, serde_json::Error> {
    // Go decodes base64 ([]byte fields) ignoring line breaks, and clients send them wrapped
    // (kustomize's binaryData: 70 columns); k8s-openapi's decoder does not skip them.
    let mut unwrap = |field: &str| {
        if let Some(Value::Object(map)) = v.get_mut(field) {
            for value in map.values_mut() {
                if let Value::String(s) = value
                    && s.contains(['\n', '\r'])
                {
                    s.retain(|c| c != '\n' && c != '\r');
                }
            }
        }
    };
    unwrap("binaryData");
    if std::any::type_name::<K>().ends_with("::Secret") {
        unwrap("data");
    }
    serde_json::to_value(serde_json::from_value::<K>(v)?)
}

#[derive(Clone, Copy, Default)]
struct Flags {
    status: bool,
    scale: bool,
    generation: bool,
}

const NONE: Flags = Flags {
    status: false,
    scale: false,
    generation: false,
};
const STATUS: Flags = Flags {
    status: true,
    scale: false,
    generation: false,
};
/// Kept `generation`, no status subresource (NetworkPolicy).
const GENERATION: Flags = Flags {
    status: false,
    scale: false,
    generation: true,
};
const WORKLOAD: Flags = Flags {
    status: true,
    scale: false,
    generation: true,
};
const SCALABLE: Flags = Flags {
    status: true,
    scale: true,
    generation: true,
};

fn openapi<K: Resource + schemars::JsonSchema>(c: &mut wasmop_apimachinery::openapi::Components) {
    c.add::<K>(K::GROUP, K::VERSION, K::KIND);
}

fn builtin<K>(short_names: &[&str], categories: &[&str], flags: Flags) -> ResourceInfo
where
    K: Resource + ListableResource + DeserializeOwned + Serialize + schemars::JsonSchema + 'static,
{
    ResourceInfo {
        group: K::GROUP.into(),
        version: K::VERSION.into(),
        kind: K::KIND.into(),
        list_kind: K::LIST_KIND.into(),
        plural: K::URL_PATH_SEGMENT.into(),
        singular: K::KIND.to_ascii_lowercase(),
        short_names: short_names.iter().map(|s| s.to_string()).collect(),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        namespaced: TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>(),
        status: flags.status,
        scale: flags.scale.then(|| ScaleSpec {
            spec_replicas_path: ".spec.replicas".into(),
            status_replicas_path: ".status.replicas".into(),
            label_selector_path: Some(".status.selector".into()),
        }),
        generation: flags.generation,
        schema: Schema::Builtin {
            decode: typed::<K>,
            openapi: openapi::<K>,
        },
        printer_columns: Vec::new(),
        crd_uid: None,
    }
}

/// A create-only kind (TokenReview, SelfSubjectAccessReview, ...): answered by `auth::reviews`,
/// never stored or listed.
fn review<K>() -> ResourceInfo
where
    K: Resource + DeserializeOwned + Serialize + schemars::JsonSchema + 'static,
{
    ResourceInfo {
        group: K::GROUP.into(),
        version: K::VERSION.into(),
        kind: K::KIND.into(),
        list_kind: String::new(),
        plural: K::URL_PATH_SEGMENT.into(),
        singular: K::KIND.to_ascii_lowercase(),
        namespaced: TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>(),
        schema: Schema::Builtin {
            decode: typed::<K>,
            openapi: openapi::<K>,
        },
        ..builtin::<core::v1::ConfigMap>(&[], &[], NONE)
    }
}

/// The built-in kinds, in the group order a real server reports in discovery.
/// Serving one more built-in kind is one more line here.
pub fn builtins() -> Vec<ResourceInfo> {
    let all = &["all"][..];
    vec![
        builtin::<core::v1::Namespace>(&["ns"], &[], STATUS),
        builtin::<core::v1::ConfigMap>(&["cm"], &[], NONE),
        builtin::<core::v1::Secret>(&[], &[], NONE),
        builtin::<core::v1::Service>(&["svc"], all, STATUS),
        builtin::<core::v1::ServiceAccount>(&["sa"], &[], NONE),
        builtin::<core::v1::Pod>(&["po"], all, STATUS),
        builtin::<core::v1::Event>(&["ev"], &[], NONE),
        builtin::<core::v1::Node>(&["no"], &[], STATUS),
        builtin::<core::v1::Endpoints>(&["ep"], &[], NONE),
        builtin::<core::v1::ReplicationController>(&["rc"], all, SCALABLE),
        builtin::<core::v1::LimitRange>(&["limits"], &[], NONE),
        builtin::<core::v1::ResourceQuota>(&["quota"], &[], STATUS),
        builtin::<core::v1::ComponentStatus>(&["cs"], &[], NONE),
        builtin::<APIService>(&[], &["api-extensions"], STATUS),
        builtin::<apps::v1::Deployment>(&["deploy"], all, SCALABLE),
        builtin::<apps::v1::ReplicaSet>(&["rs"], all, SCALABLE),
        builtin::<apps::v1::StatefulSet>(&["sts"], all, SCALABLE),
        builtin::<apps::v1::DaemonSet>(&["ds"], all, WORKLOAD),
        builtin::<events::v1::Event>(&["ev"], &[], NONE),
        review::<authentication::v1::SelfSubjectReview>(),
        review::<authentication::v1::TokenReview>(),
        review::<authorization::v1::LocalSubjectAccessReview>(),
        review::<authorization::v1::SelfSubjectAccessReview>(),
        review::<authorization::v1::SelfSubjectRulesReview>(),
        review::<authorization::v1::SubjectAccessReview>(),
        builtin::<batch::v1::Job>(&[], all, WORKLOAD),
        builtin::<batch::v1::CronJob>(&["cj"], all, WORKLOAD),
        builtin::<certificates::v1::CertificateSigningRequest>(&["csr"], &[], STATUS),
        builtin::<networking::v1::NetworkPolicy>(&["netpol"], &[], GENERATION),
        builtin::<policy::v1::PodDisruptionBudget>(&["pdb"], &[], WORKLOAD),
        builtin::<rbac::v1::ClusterRoleBinding>(&[], &[], NONE),
        builtin::<rbac::v1::ClusterRole>(&[], &[], NONE),
        builtin::<rbac::v1::RoleBinding>(&[], &[], NONE),
        builtin::<rbac::v1::Role>(&[], &[], NONE),
        builtin::<CustomResourceDefinition>(&["crd", "crds"], &["api-extensions"], WORKLOAD),
        builtin::<coordination::v1::Lease>(&[], &[], NONE),
    ]
}

/// A group with its versions (preferred first) and each version's resources.
pub type GroupResources = (String, Vec<(String, Vec<Arc<ResourceInfo>>)>);

/// The live table of served resources.
#[derive(Debug)]
pub struct Registry {
    entries: RwLock<Vec<Arc<ResourceInfo>>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            entries: RwLock::new(builtins().into_iter().map(Arc::new).collect()),
        }
    }
}

impl Registry {
    pub fn all(&self) -> Vec<Arc<ResourceInfo>> {
        self.entries.read().expect("registry lock").clone()
    }

    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.entries
            .read()
            .expect("registry lock")
            .iter()
            .find(|r| r.group == group && r.version == version && r.plural == plural)
            .cloned()
    }

    /// Any served version of a group/resource (the first registered is the preferred one).
    pub fn lookup_any_version(&self, group: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.entries
            .read()
            .expect("registry lock")
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .cloned()
    }

    pub fn lookup_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let (group, version) = split_api_version(api_version);
        self.entries
            .read()
            .expect("registry lock")
            .iter()
            .find(|r| r.group == group && r.version == version && r.kind == kind)
            .cloned()
    }

    pub fn has_group(&self, group: &str) -> bool {
        self.entries
            .read()
            .expect("registry lock")
            .iter()
            .any(|r| r.group == group)
    }

    /// Replaces every resource served for the CRD `crd_uid` with `infos` (empty to stop serving).
    pub fn set_crd(&self, crd_uid: &str, infos: Vec<ResourceInfo>) {
        let mut entries = self.entries.write().expect("registry lock");
        entries.retain(|r| r.crd_uid.as_deref() != Some(crd_uid));
        entries.extend(infos.into_iter().map(Arc::new));
    }

    /// Groups in discovery order with their versions (preferred first) and the resources of each.
    pub fn groups(&self) -> Vec<GroupResources> {
        let mut groups: Vec<GroupResources> = Vec::new();
        for r in self.entries.read().expect("registry lock").iter() {
            let gi = match groups.iter().position(|(g, _)| *g == r.group) {
                Some(i) => i,
                None => {
                    groups.push((r.group.clone(), Vec::new()));
                    groups.len() - 1
                }
            };
            let versions = &mut groups[gi].1;
            let vi = match versions.iter().position(|(v, _)| *v == r.version) {
                Some(i) => i,
                None => {
                    versions.push((r.version.clone(), Vec::new()));
                    versions.len() - 1
                }
            };
            versions[vi].1.push(r.clone());
        }
        groups
    }
}

pub fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_table_has_the_right_scopes_and_names() {
        let reg = Registry::default();
        let ns = reg.lookup("", "v1", "namespaces").unwrap();
        assert!(!ns.namespaced);
        let cm = reg.lookup("", "v1", "configmaps").unwrap();
        assert!(cm.namespaced && cm.kind == "ConfigMap" && cm.list_kind == "ConfigMapList");
        let crb = reg
            .lookup("rbac.authorization.k8s.io", "v1", "clusterrolebindings")
            .unwrap();
        assert!(!crb.namespaced);
        let deploy = reg.lookup_kind("apps/v1", "Deployment").unwrap();
        assert!(deploy.generation && deploy.status && deploy.scale.is_some());
        assert_eq!(reg.lookup("", "v1", "events").unwrap().kind, "Event");
        assert_eq!(
            reg.lookup("events.k8s.io", "v1", "events").unwrap().group,
            "events.k8s.io"
        );
    }

    #[test]
    fn typed_decoding_rejects_wrong_types_and_drops_unknown_fields() {
        let cm = builtins().into_iter().find(|r| r.kind == "ConfigMap").unwrap();
        let Schema::Builtin { decode, .. } = cm.schema else {
            panic!()
        };
        let out =
            decode(serde_json::json!({"metadata": {"name": "a"}, "data": {"k": "v"}, "bogus": 1})).unwrap();
        assert_eq!(out["data"]["k"], "v");
        assert!(out.get("bogus").is_none());
        assert!(decode(serde_json::json!({"metadata": {"name": "a"}, "data": {"k": 1}})).is_err());
    }
}
