//! The ClusterRole aggregation controller: a ClusterRole with an `aggregationRule` gets, as its
//! `rules`, the rules of every other ClusterRole its selectors match (as kube-controller-manager's
//! `clusterrole-aggregation` controller writes them), so `kubectl get clusterrole view -o yaml` shows
//! what the role grants. The authorizer aggregates at evaluation time as well, so a decision never
//! waits for this controller.

use serde_json::{Value, json};

use crate::Core;
use crate::auth::rbac::Policy;
use crate::objects::{self, WriteOptions};
use crate::patch::PatchType;
use crate::store::Event;

const CLUSTER_ROLES: &str = "rbac.authorization.k8s.io/clusterroles";

/// Whether an event may change an aggregated role.
pub fn concerns(e: &Event) -> bool {
    e.key.resource == CLUSTER_ROLES
}

/// Writes the aggregated rules of every aggregated ClusterRole whose stored rules differ.
pub fn reconcile(core: &Core) {
    let policy = Policy::from_store(&core.store);
    let Some(ri) = core
        .registry
        .lookup("rbac.authorization.k8s.io", "v1", "clusterroles")
    else {
        return;
    };
    for role in policy
        .cluster_roles
        .iter()
        .filter(|r| r.aggregation_rule.is_some())
    {
        let name = role.metadata.name.clone().unwrap_or_default();
        let Some(wanted) = policy.aggregated_rules(&name) else {
            continue;
        };
        if role.rules.clone().unwrap_or_default() == wanted {
            continue;
        }
        let rules: Value = serde_json::to_value(&wanted).unwrap_or(Value::Null);
        let body = serde_json::to_vec(&json!({"rules": rules})).unwrap_or_default();
        let opts = WriteOptions {
            manager: "clusterrole-aggregation-controller".into(),
            ..Default::default()
        };
        if let Err(e) = objects::patch(core, &ri, "", &name, None, PatchType::Merge, &body, &opts)
            && e.code != 404
        {
            tracing::warn!(clusterrole = %name, error = %e, "could not write aggregated rules");
        }
    }
}
