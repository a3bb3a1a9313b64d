//! The roles and bindings kube-apiserver's RBAC bootstrap creates in a fresh cluster (a faithful
//! subset of `plugin/pkg/auth/authorizer/rbac/bootstrappolicy`): `cluster-admin` bound to
//! `system:masters`; the aggregated user-facing roles `admin`, `edit` and `view` with the
//! `system:aggregate-to-*` roles that feed them; `system:discovery`, `system:basic-user` and
//! `system:public-info-viewer` bound to the authenticated (and, for public info, unauthenticated)
//! groups. Each is created at start when missing (an edited one is left alone).

use serde_json::{Value, json};

use crate::Core;
use crate::controllers::MANAGER;
use crate::objects::{self, WriteOptions};

const RBAC: &str = "rbac.authorization.k8s.io";
const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn rule(verbs: &[&str], group: &str, resources: &[&str]) -> Value {
    json!({"verbs": verbs, "apiGroups": [group], "resources": resources})
}

fn urls(verbs: &[&str], urls: &[&str]) -> Value {
    json!({"verbs": verbs, "nonResourceURLs": urls})
}

fn meta(name: &str, labels: &[(&str, &str)]) -> Value {
    let mut l = serde_json::Map::new();
    l.insert("kubernetes.io/bootstrapping".into(), "rbac-defaults".into());
    for (k, v) in labels {
        l.insert(k.to_string(), v.to_string().into());
    }
    json!({"name": name, "labels": l, "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"}})
}

fn cluster_role(name: &str, labels: &[(&str, &str)], rules: Vec<Value>) -> Value {
    json!({"apiVersion": format!("{RBAC}/v1"), "kind": "ClusterRole", "metadata": meta(name, labels), "rules": rules})
}

fn aggregated(name: &str, labels: &[(&str, &str)], to: &str) -> Value {
    let mut role = cluster_role(name, labels, Vec::new());
    role["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {format!("rbac.authorization.k8s.io/aggregate-to-{to}"): "true"}}]});
    role
}

fn binding(name: &str, role: &str, groups: &[&str]) -> Value {
    let subjects: Vec<Value> = groups
        .iter()
        .map(|g| json!({"apiGroup": RBAC, "kind": "Group", "name": g}))
        .collect();
    json!({"apiVersion": format!("{RBAC}/v1"), "kind": "ClusterRoleBinding", "metadata": meta(name, &[]),
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": role}, "subjects": subjects})
}

const TO_ADMIN: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-admin", "true");
const TO_EDIT: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-edit", "true");
const TO_VIEW: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-view", "true");

/// The bootstrap ClusterRoles.
pub fn cluster_roles() -> Vec<Value> {
    let view_core = &[
        "bindings",
        "configmaps",
        "endpoints",
        "events",
        "limitranges",
        "namespaces/status",
        "persistentvolumeclaims",
        "persistentvolumeclaims/status",
        "pods",
        "pods/log",
        "pods/status",
        "replicationcontrollers",
        "replicationcontrollers/scale",
        "replicationcontrollers/status",
        "resourcequotas",
        "resourcequotas/status",
        "serviceaccounts",
        "services",
        "services/status",
    ];
    let view_apps = &[
        "controllerrevisions",
        "daemonsets",
        "daemonsets/status",
        "deployments",
        "deployments/scale",
        "deployments/status",
        "replicasets",
        "replicasets/scale",
        "replicasets/status",
        "statefulsets",
        "statefulsets/scale",
        "statefulsets/status",
    ];
    vec![
        cluster_role(
            "cluster-admin",
            &[],
            vec![rule(&["*"], "*", &["*"]), urls(&["*"], &["*"])],
        ),
        aggregated("admin", &[], "admin"),
        aggregated("edit", &[TO_ADMIN], "edit"),
        aggregated("view", &[TO_EDIT], "view"),
        cluster_role(
            "system:aggregate-to-admin",
            &[TO_ADMIN],
            vec![
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["localsubjectaccessreviews"],
                ),
                rule(ALL, RBAC, &["rolebindings", "roles"]),
            ],
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[TO_EDIT],
            vec![
                rule(
                    READ,
                    "",
                    &[
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                        "secrets",
                        "services/proxy",
                    ],
                ),
                rule(&["impersonate"], "", &["serviceaccounts"]),
                rule(
                    WRITE,
                    "",
                    &[
                        "pods",
                        "pods/attach",
                        "pods/exec",
                        "pods/portforward",
                        "pods/proxy",
                        "configmaps",
                        "events",
                        "persistentvolumeclaims",
                        "replicationcontrollers",
                        "replicationcontrollers/scale",
                        "secrets",
                        "serviceaccounts",
                        "services",
                        "services/proxy",
                    ],
                ),
                rule(&["create"], "", &["serviceaccounts/token"]),
                rule(
                    WRITE,
                    "apps",
                    &[
                        "daemonsets",
                        "deployments",
                        "deployments/rollback",
                        "deployments/scale",
                        "replicasets",
                        "replicasets/scale",
                        "statefulsets",
                        "statefulsets/scale",
                    ],
                ),
                rule(WRITE, "autoscaling", &["horizontalpodautoscalers"]),
                rule(WRITE, "batch", &["cronjobs", "jobs"]),
                rule(WRITE, "policy", &["poddisruptionbudgets"]),
                rule(WRITE, "networking.k8s.io", &["ingresses", "networkpolicies"]),
                rule(WRITE, "coordination.k8s.io", &["leases"]),
            ],
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[TO_VIEW],
            vec![
                rule(READ, "", view_core),
                rule(READ, "", &["namespaces"]),
                rule(READ, "discovery.k8s.io", &["endpointslices"]),
                rule(READ, "apps", view_apps),
                rule(
                    READ,
                    "autoscaling",
                    &["horizontalpodautoscalers", "horizontalpodautoscalers/status"],
                ),
                rule(
                    READ,
                    "batch",
                    &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
                ),
                rule(
                    READ,
                    "policy",
                    &["poddisruptionbudgets", "poddisruptionbudgets/status"],
                ),
                rule(
                    READ,
                    "networking.k8s.io",
                    &["ingresses", "ingresses/status", "networkpolicies"],
                ),
                rule(READ, "coordination.k8s.io", &["leases"]),
            ],
        ),
        cluster_role(
            "system:discovery",
            &[],
            vec![urls(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/openapi",
                    "/openapi/*",
                    "/readyz",
                    "/version",
                    "/version/",
                ],
            )],
        ),
        cluster_role(
            "system:basic-user",
            &[],
            vec![
                rule(&["create"], "authentication.k8s.io", &["selfsubjectreviews"]),
                rule(
                    &["create"],
                    "authorization.k8s.io",
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
            ],
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            vec![urls(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
    ]
}

/// The bootstrap ClusterRoleBindings.
pub fn cluster_role_bindings() -> Vec<Value> {
    vec![
        binding("cluster-admin", "cluster-admin", &["system:masters"]),
        binding("system:discovery", "system:discovery", &["system:authenticated"]),
        binding(
            "system:basic-user",
            "system:basic-user",
            &["system:authenticated"],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &["system:authenticated", "system:unauthenticated"],
        ),
    ]
}

/// Creates every bootstrap role and binding that is missing.
pub fn ensure(core: &Core) {
    for (plural, objects) in [
        ("clusterroles", cluster_roles()),
        ("clusterrolebindings", cluster_role_bindings()),
    ] {
        let Some(ri) = core.registry.lookup(RBAC, "v1", plural) else {
            continue;
        };
        for obj in objects {
            let name = obj["metadata"]["name"].as_str().unwrap_or("").to_string();
            if core.store.get(&objects::key(&ri, "", &name)).is_some() {
                continue;
            }
            let opts = WriteOptions {
                manager: MANAGER.into(),
                ..Default::default()
            };
            if let Err(e) = objects::create(core, &ri, "", obj, &opts) {
                tracing::warn!(%name, error = %e, "could not create bootstrap RBAC object");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<T: serde::de::DeserializeOwned>(x: serde_json::Value) -> T {
        serde_json::from_value(x).unwrap()
    }
    use crate::auth::rbac::{Decision, Policy};
    use crate::auth::{Attributes, UserInfo};

    fn policy() -> Policy {
        Policy {
            cluster_roles: cluster_roles().into_iter().map(v).collect(),
            cluster_role_bindings: cluster_role_bindings().into_iter().map(v).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn admin_edit_and_view_aggregate_their_feeder_roles() {
        let p = policy();
        let has = |role: &str, verb: &str, group: &str, resource: &str| {
            let a = Attributes {
                verb: verb.into(),
                resource_request: true,
                api_group: group.into(),
                resource: resource.into(),
                ..Default::default()
            };
            p.cluster_role_rules(role)
                .unwrap()
                .iter()
                .any(|r| crate::auth::rbac::rule_allows(&a, r))
        };
        assert!(has("view", "list", "", "configmaps"));
        assert!(!has("view", "get", "", "secrets"));
        assert!(!has("view", "create", "", "configmaps"));
        assert!(has("edit", "create", "", "configmaps") && has("edit", "get", "", "secrets"));
        assert!(has("edit", "list", "apps", "deployments"));
        assert!(!has("edit", "create", RBAC, "roles"));
        assert!(has("admin", "create", RBAC, "roles") && has("admin", "list", "", "pods"));
    }

    #[test]
    fn authenticated_users_may_read_discovery_and_anonymous_ones_public_info() {
        let p = policy();
        let path = |user: UserInfo, path: &str| Attributes {
            user,
            verb: "get".into(),
            path: path.into(),
            ..Default::default()
        };
        let jane = UserInfo {
            name: "jane".into(),
            groups: vec!["system:authenticated".into()],
            ..Default::default()
        };
        assert!(matches!(
            p.authorize(&path(jane.clone(), "/apis/apps/v1")),
            Decision::Allow(_)
        ));
        assert!(matches!(p.authorize(&path(jane, "/metrics")), Decision::Deny(_)));
        assert!(matches!(
            p.authorize(&path(UserInfo::anonymous(), "/version")),
            Decision::Allow(_)
        ));
        assert!(matches!(
            p.authorize(&path(UserInfo::anonymous(), "/api")),
            Decision::Deny(_)
        ));
        let masters = UserInfo::admin();
        assert!(matches!(
            p.authorize(&Attributes {
                user: masters,
                verb: "delete".into(),
                resource_request: true,
                resource: "nodes".into(),
                ..Default::default()
            }),
            Decision::Allow(r) if r.contains("ClusterRoleBinding \"cluster-admin\"")
        ));
    }
}
