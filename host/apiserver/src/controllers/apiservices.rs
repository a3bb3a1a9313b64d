//! The `apiregistration.k8s.io/v1` APIServices a real server lists for its built-in group versions
//! (`v1.`, `v1.apps`, ...): `Local`, always `Available`, with the aggregator's group and version
//! priorities. Created at start when missing.

use serde_json::json;
use wasmop_apimachinery::time;

use super::MANAGER;
use crate::Core;
use crate::objects::{self, WriteOptions};

/// kube-apiserver's `apiVersionPriorities` (group priority minimum, version priority).
fn priority(group: &str) -> (i64, i64) {
    match group {
        "" => (18000, 1),
        "apiregistration.k8s.io" => (17900, 15),
        "apps" => (17800, 15),
        "events.k8s.io" => (17750, 15),
        "authentication.k8s.io" => (17700, 15),
        "authorization.k8s.io" => (17600, 15),
        "autoscaling" => (17500, 30),
        "batch" => (17400, 15),
        "certificates.k8s.io" => (17300, 15),
        "networking.k8s.io" => (17200, 15),
        "policy" => (17100, 15),
        "rbac.authorization.k8s.io" => (17000, 15),
        "storage.k8s.io" => (16800, 15),
        "admissionregistration.k8s.io" => (16700, 15),
        "scheduling.k8s.io" => (16600, 15),
        "coordination.k8s.io" => (16500, 15),
        "apiextensions.k8s.io" => (16400, 15),
        "node.k8s.io" => (16300, 15),
        "discovery.k8s.io" => (16200, 15),
        "flowcontrol.apiserver.k8s.io" => (16100, 21),
        _ => (1000, 15),
    }
}

/// Creates the APIService of every built-in group version that has none.
pub fn ensure(core: &Core) {
    let Some(ri) = core
        .registry
        .lookup("apiregistration.k8s.io", "v1", "apiservices")
    else {
        return;
    };
    let now = time::now();
    for (group, versions) in core.registry.groups() {
        for (version, resources) in versions {
            if resources.iter().all(|r| r.is_custom()) {
                continue;
            }
            let name = format!("{version}.{group}");
            if core.store.get(&objects::key(&ri, "", &name)).is_some() {
                continue;
            }
            let (group_priority, version_priority) = priority(&group);
            let mut spec = json!({"version": version, "groupPriorityMinimum": group_priority, "versionPriority": version_priority});
            if !group.is_empty() {
                spec["group"] = group.clone().into();
            }
            let body = json!({
                "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": name, "labels": {"kube-aggregator.kubernetes.io/automanaged": "onstart"}},
                "spec": spec,
                "status": {"conditions": [{"type": "Available", "status": "True", "lastTransitionTime": now,
                    "reason": "Local", "message": "Local APIServices are always available"}]},
            });
            let opts = WriteOptions {
                manager: MANAGER.into(),
                ..Default::default()
            };
            if let Err(e) = objects::create(core, &ri, "", body, &opts) {
                tracing::warn!(apiservice = %name, error = %e, "could not create APIService");
            }
        }
    }
}
