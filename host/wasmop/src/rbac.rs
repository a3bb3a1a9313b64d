//! `wasmop rbac`: the RBAC a host needs to run a set of plugins, generated from what the plugins
//! declare (never hand-written): a ClusterRole with the union of the plugins' `rbac_rules()`, kinds
//! mapped to resource plurals, plus the host's own needs (status and finalizers subresources of the
//! primary kinds, events in both event APIs), a ClusterRoleBinding to the host's ServiceAccount, and
//! a namespaced Role and RoleBinding for the leader-election Lease.
//!
//! Offline, the plurals come from a table of the built-in kinds k8s-openapi knows
//! (`Resource::URL_PATH_SEGMENT`) and from the CRDs the plugins declare (`metadata.crds`,
//! `spec.names.plural`); any other kind is an error naming it and the plugin.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use clap::Args;
use k8s_openapi::Resource;
use serde_json::{Value, json};
use wasmop_contract::Metadata;
use wasmop_runtime::PluginLimits;

use crate::offline::OfflineError;

/// `wasmop rbac`.
#[derive(Debug, Clone, Args)]
pub struct RbacArgs {
    /// The plugins: `.wasm` components, or directories whose `*.wasm` files are all taken (with the
    /// variable, comma-separated).
    #[arg(env = "WASMOP_RBAC_PLUGINS", required = true, num_args = 1.., value_delimiter = ',')]
    pub plugins: Vec<PathBuf>,
    /// Name of the ClusterRole and ClusterRoleBinding (the leader-election Role and RoleBinding get
    /// `-leader-election` appended).
    #[arg(long, env = "WASMOP_RBAC_NAME", default_value = "wasmop")]
    pub name: String,
    /// Namespace of the host's ServiceAccount and of its leader-election Lease.
    #[arg(long, env = "WASMOP_RBAC_NAMESPACE", default_value = "wasmop-system")]
    pub namespace: String,
    /// The host's ServiceAccount.
    #[arg(long, env = "WASMOP_RBAC_SERVICE_ACCOUNT", default_value = "wasmop")]
    pub service_account: String,
}

/// Why `wasmop rbac` failed; every message names the file or kind it is about.
#[derive(Debug, thiserror::Error)]
pub enum RbacError {
    #[error(transparent)]
    Offline(#[from] OfflineError),
    #[error("reading the plugin directory {dir}")]
    ReadDir {
        dir: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the plugin directory {0} holds no .wasm file")]
    Empty(String),
    #[error(
        "{file}: the plugin {plugin} uses the kind {kind}, which is neither a built-in kind nor a CRD \
         the plugins declare in metadata.crds, so its resource name is unknown"
    )]
    UnknownKind {
        file: String,
        plugin: String,
        kind: String,
    },
    #[error("{file}: metadata.crds[{index}] {reason}")]
    Crd {
        file: String,
        index: usize,
        reason: String,
    },
    #[error("writing YAML")]
    Yaml(#[from] serde_yaml::Error),
}

/// Names of what is generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub name: String,
    pub namespace: String,
    pub service_account: String,
}

impl Default for Names {
    fn default() -> Names {
        Names {
            name: "wasmop".into(),
            namespace: "wasmop-system".into(),
            service_account: "wasmop".into(),
        }
    }
}

/// Loads the plugins and prints their RBAC as one YAML stream.
pub async fn rbac(args: RbacArgs) -> Result<(), RbacError> {
    let runtime = crate::offline::runtime()?;
    let mut plugins = Vec::new();
    for path in plugin_files(&args.plugins)? {
        let plugin = crate::offline::load(&runtime, &path, PluginLimits::default()).await?;
        plugins.push((path.display().to_string(), plugin.metadata().clone()));
    }
    let names = Names {
        name: args.name,
        namespace: args.namespace,
        service_account: args.service_account,
    };
    print!("{}", render(&plugins, &names)?);
    Ok(())
}

/// The files named, with each directory replaced by its `*.wasm` files (sorted; hidden entries such
/// as a mounted ConfigMap's `..data` skipped, symlinks followed).
pub fn plugin_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, RbacError> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let dir = path.display().to_string();
        let entries = std::fs::read_dir(path).map_err(|source| RbacError::ReadDir {
            dir: dir.clone(),
            source,
        })?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| {
                let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
                !name.starts_with('.') && name.ends_with(".wasm") && p.is_file()
            })
            .collect();
        if found.is_empty() {
            return Err(RbacError::Empty(dir));
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// Group, kind and plural of a built-in type.
macro_rules! builtins {
    ($($t:ty),* $(,)?) => {
        &[$((<$t as Resource>::GROUP, <$t as Resource>::KIND, <$t as Resource>::URL_PATH_SEGMENT)),*]
    };
}

/// The built-in kinds k8s-openapi knows (feature `v1_33`), with their resource plurals.
const BUILTINS: &[(&str, &str, &str)] = {
    use k8s_openapi::api::*;
    use k8s_openapi::kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration;
    builtins!(
        admissionregistration::v1::MutatingWebhookConfiguration,
        admissionregistration::v1::ValidatingAdmissionPolicy,
        admissionregistration::v1::ValidatingAdmissionPolicyBinding,
        admissionregistration::v1::ValidatingWebhookConfiguration,
        apiregistration::APIService,
        apps::v1::ControllerRevision,
        apps::v1::DaemonSet,
        apps::v1::Deployment,
        apps::v1::ReplicaSet,
        apps::v1::StatefulSet,
        autoscaling::v2::HorizontalPodAutoscaler,
        batch::v1::CronJob,
        batch::v1::Job,
        certificates::v1::CertificateSigningRequest,
        coordination::v1::Lease,
        core::v1::ConfigMap,
        core::v1::Endpoints,
        core::v1::Event,
        core::v1::LimitRange,
        core::v1::Namespace,
        core::v1::Node,
        core::v1::PersistentVolume,
        core::v1::PersistentVolumeClaim,
        core::v1::Pod,
        core::v1::PodTemplate,
        core::v1::ReplicationController,
        core::v1::ResourceQuota,
        core::v1::Secret,
        core::v1::Service,
        core::v1::ServiceAccount,
        discovery::v1::EndpointSlice,
        events::v1::Event,
        flowcontrol::v1::FlowSchema,
        flowcontrol::v1::PriorityLevelConfiguration,
        networking::v1::IPAddress,
        networking::v1::Ingress,
        networking::v1::IngressClass,
        networking::v1::NetworkPolicy,
        networking::v1::ServiceCIDR,
        node::v1::RuntimeClass,
        policy::v1::PodDisruptionBudget,
        rbac::v1::ClusterRole,
        rbac::v1::ClusterRoleBinding,
        rbac::v1::Role,
        rbac::v1::RoleBinding,
        resource::v1beta1::DeviceClass,
        resource::v1beta1::ResourceClaim,
        resource::v1beta1::ResourceClaimTemplate,
        resource::v1beta1::ResourceSlice,
        scheduling::v1::PriorityClass,
        storage::v1::CSIDriver,
        storage::v1::CSINode,
        storage::v1::CSIStorageCapacity,
        storage::v1::StorageClass,
        storage::v1::VolumeAttachment,
        k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    )
};

/// The order verbs are listed in, as Kubernetes' own roles do.
const VERB_ORDER: &[&str] = &[
    "get",
    "list",
    "watch",
    "create",
    "update",
    "patch",
    "delete",
    "deletecollection",
];

/// Verbs with their rank in [`VERB_ORDER`], sorted.
type RankedVerbs = Vec<(usize, String)>;

fn verb_rank(v: &str) -> (usize, String) {
    (
        VERB_ORDER
            .iter()
            .position(|x| *x == v)
            .unwrap_or(VERB_ORDER.len()),
        v.to_string(),
    )
}

/// (group, kind) → plural of the CRDs the plugins declare.
fn crd_plurals(plugins: &[(String, Metadata)]) -> Result<BTreeMap<(String, String), String>, RbacError> {
    let mut out = BTreeMap::new();
    for (file, m) in plugins {
        for (index, text) in m.crds.iter().enumerate() {
            let bad = |reason: &str| RbacError::Crd {
                file: file.clone(),
                index,
                reason: reason.to_string(),
            };
            let doc: Value = serde_yaml::from_str(text).map_err(|e| bad(&format!("is not YAML: {e}")))?;
            let field = |path: &[&str]| {
                path.iter()
                    .try_fold(&doc, |v, k| v.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            };
            let (Some(group), Some(kind), Some(plural)) = (
                field(&["spec", "group"]),
                field(&["spec", "names", "kind"]),
                field(&["spec", "names", "plural"]),
            ) else {
                return Err(bad("lacks spec.group, spec.names.kind or spec.names.plural"));
            };
            out.insert((group, kind), plural);
        }
    }
    Ok(out)
}

/// The YAML stream `wasmop rbac` prints for these plugins (file name and metadata each).
pub fn render(plugins: &[(String, Metadata)], names: &Names) -> Result<String, RbacError> {
    let crds = crd_plurals(plugins)?;
    let plural = |file: &str, m: &Metadata, group: &str, kind: &str| -> Result<String, RbacError> {
        if let Some(p) = crds.get(&(group.to_string(), kind.to_string())) {
            return Ok(p.clone());
        }
        BUILTINS
            .iter()
            .find(|(g, k, _)| *g == group && *k == kind)
            .map(|(_, _, p)| p.to_string())
            .ok_or_else(|| RbacError::UnknownKind {
                file: file.to_string(),
                plugin: m.name.clone(),
                kind: if group.is_empty() {
                    kind.to_string()
                } else {
                    format!("{kind}.{group}")
                },
            })
    };
    // (group, resource) → verbs.
    let mut access: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut grant = |group: &str, resource: &str, verbs: &[&str]| {
        access
            .entry((group.to_string(), resource.to_string()))
            .or_default()
            .extend(verbs.iter().map(|v| v.to_string()));
    };
    for (file, m) in plugins {
        for rule in m.rbac_rules() {
            for group in &rule.api_groups {
                for kind in &rule.kinds {
                    let resource = plural(file, m, group, kind)?;
                    let verbs: Vec<&str> = rule.verbs.iter().map(String::as_str).collect();
                    grant(group, &resource, &verbs);
                }
            }
        }
        // The host writes the primary objects' status, and sets ownerReferences with
        // blockOwnerDeletion on their children, which needs update on `finalizers`.
        let primary = plural(file, m, &m.primary.group, &m.primary.kind)?;
        grant(
            &m.primary.group,
            &format!("{primary}/status"),
            &["get", "patch", "update"],
        );
        grant(&m.primary.group, &format!("{primary}/finalizers"), &["update"]);
    }
    // Events: kube's recorder writes events.k8s.io/v1; core events for older readers.
    grant("", "events", &["create", "patch"]);
    grant("events.k8s.io", "events", &["create", "patch"]);

    // One rule per group and verb set, resources sorted.
    let mut rules: BTreeMap<(String, RankedVerbs), BTreeSet<String>> = BTreeMap::new();
    for ((group, resource), verbs) in access {
        let mut verbs: Vec<(usize, String)> = verbs.iter().map(|v| verb_rank(v)).collect();
        verbs.sort();
        rules.entry((group, verbs)).or_default().insert(resource);
    }
    // Ordered by group, then resource, as a reader looks them up.
    let mut rules: Vec<_> = rules.into_iter().collect();
    rules.sort_by(|((ga, _), ra), ((gb, _), rb)| (ga, ra.first()).cmp(&(gb, rb.first())));
    let rules: Vec<Value> = rules
        .into_iter()
        .map(|((group, verbs), resources)| {
            json!({
                "apiGroups": [group],
                "resources": resources,
                "verbs": verbs.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            })
        })
        .collect();

    let labels = json!({"app.kubernetes.io/name": "wasmop", "app.kubernetes.io/component": "rbac"});
    let subject = json!([{
        "kind": "ServiceAccount",
        "name": names.service_account,
        "namespace": names.namespace,
    }]);
    let election = format!("{}-leader-election", names.name);
    let docs = [
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": names.name, "labels": labels},
            "rules": rules,
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": names.name, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": names.name},
            "subjects": subject,
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": election, "namespace": names.namespace, "labels": labels},
            "rules": [{
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get", "list", "watch", "create", "update", "patch"],
            }],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": election, "namespace": names.namespace, "labels": labels},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": election},
            "subjects": subject,
        }),
    ];
    let mut plugin_names: Vec<&str> = plugins.iter().map(|(_, m)| m.name.as_str()).collect();
    plugin_names.sort();
    let mut out = format!(
        "# Generated by `wasmop rbac` for the plugins: {}. Do not edit: regenerate it.\n",
        plugin_names.join(", ")
    );
    for doc in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&doc)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmop_contract::{Gvk, Lookup, Verb};

    fn rules(out: &str) -> Vec<Value> {
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(out)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs[0]["kind"], "ClusterRole");
        docs[0]["rules"].as_array().unwrap().clone()
    }

    fn verbs_of(rules: &[Value], group: &str, resource: &str) -> Vec<String> {
        rules
            .iter()
            .find(|r| {
                r["apiGroups"][0] == group && r["resources"].as_array().unwrap().iter().any(|x| x == resource)
            })
            .map(|r| serde_json::from_value(r["verbs"].clone()).unwrap())
            .unwrap_or_default()
    }

    #[test]
    fn kinds_map_to_plurals_and_the_host_needs_are_added() {
        let db_crd = "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n\
                      metadata: {name: databases.example.com}\n\
                      spec: {group: example.com, names: {kind: Database, plural: databases}}\n";
        let db = Metadata::new("db", "1.0.0", Gvk::new("example.com", "v1", "Database"))
            .owns(Gvk::new("apps", "v1", "StatefulSet"))
            .crd(db_crd);
        let guard = Metadata::new("guard", "1.0.0", Gvk::new("apps", "v1", "Deployment"))
            .owns(Gvk::new("policy", "v1", "PodDisruptionBudget"))
            .lookup(Lookup::new(Gvk::new("", "v1", "Namespace")))
            .writes(Gvk::new("", "v1", "ConfigMap"), &[Verb::Delete]);
        let out = render(
            &[("db.wasm".into(), db), ("guard.wasm".into(), guard)],
            &Names::default(),
        )
        .unwrap();
        let rules = rules(&out);
        assert_eq!(
            verbs_of(&rules, "example.com", "databases"),
            ["get", "list", "watch", "update", "patch"]
        );
        assert_eq!(
            verbs_of(&rules, "example.com", "databases/status"),
            ["get", "update", "patch"]
        );
        assert_eq!(verbs_of(&rules, "apps", "deployments/finalizers"), ["update"]);
        assert_eq!(
            verbs_of(&rules, "policy", "poddisruptionbudgets"),
            ["get", "list", "watch", "create", "update", "patch", "delete"]
        );
        assert_eq!(verbs_of(&rules, "", "namespaces"), ["get", "list", "watch"]);
        assert_eq!(
            verbs_of(&rules, "", "configmaps"),
            ["get", "list", "watch", "delete"]
        );
        assert_eq!(verbs_of(&rules, "events.k8s.io", "events"), ["create", "patch"]);
        assert_eq!(verbs_of(&rules, "", "events"), ["create", "patch"]);
        assert!(out.contains("kind: ClusterRoleBinding"), "{out}");
        assert!(out.contains("name: wasmop-leader-election"), "{out}");
        assert!(out.contains("- leases"), "{out}");
        // Deterministic, whatever the order of the plugins.
        let again = render(
            &[
                ("guard.wasm".into(), {
                    Metadata::new("guard", "1.0.0", Gvk::new("apps", "v1", "Deployment"))
                        .owns(Gvk::new("policy", "v1", "PodDisruptionBudget"))
                        .lookup(Lookup::new(Gvk::new("", "v1", "Namespace")))
                        .writes(Gvk::new("", "v1", "ConfigMap"), &[Verb::Delete])
                }),
                ("db.wasm".into(), {
                    Metadata::new("db", "1.0.0", Gvk::new("example.com", "v1", "Database"))
                        .owns(Gvk::new("apps", "v1", "StatefulSet"))
                        .crd(db_crd)
                }),
            ],
            &Names::default(),
        )
        .unwrap();
        assert_eq!(out, again);
    }

    #[test]
    fn an_unknown_kind_is_an_error_naming_it() {
        let m = Metadata::new("w", "1.0.0", Gvk::new("example.com", "v1", "Widget"));
        let err = render(&[("w.wasm".into(), m)], &Names::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("w.wasm: the plugin w uses the kind Widget.example.com"),
            "{err}"
        );
    }

    #[test]
    fn a_mounted_configmap_directory_yields_each_plugin_once() {
        let dir = tempfile::tempdir().unwrap();
        let stamp = dir.path().join("..2024_01_01_00_00_00.000000001");
        std::fs::create_dir(&stamp).unwrap();
        for name in ["b.wasm", "a.wasm", "a.toml"] {
            std::fs::write(stamp.join(name), b"").unwrap();
        }
        std::os::unix::fs::symlink("..2024_01_01_00_00_00.000000001", dir.path().join("..data")).unwrap();
        for name in ["b.wasm", "a.wasm", "a.toml"] {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.path().join(name)).unwrap();
        }
        let files = plugin_files(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(files, vec![dir.path().join("a.wasm"), dir.path().join("b.wasm")]);
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(
            plugin_files(&[empty.path().to_path_buf()]),
            Err(RbacError::Empty(_))
        ));
    }

    #[test]
    fn names_and_namespace_are_flags() {
        let m = Metadata::new("g", "1.0.0", Gvk::new("apps", "v1", "Deployment"));
        let names = Names {
            name: "ops".into(),
            namespace: "tools".into(),
            service_account: "host".into(),
        };
        let out = render(&[("g.wasm".into(), m)], &names).unwrap();
        assert!(out.contains("name: ops\n"), "{out}");
        assert!(out.contains("namespace: tools\n"), "{out}");
        assert!(out.contains("name: host\n"), "{out}");
        assert!(out.contains("name: ops-leader-election\n"), "{out}");
    }
}
