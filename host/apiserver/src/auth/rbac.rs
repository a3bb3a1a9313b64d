//! The RBAC authorizer, evaluated as kube-apiserver's `plugin/pkg/auth/authorizer/rbac` does: the
//! rules of every ClusterRoleBinding and (in the request's namespace) every RoleBinding whose
//! subjects name the user, one of its groups or its ServiceAccount; a rule allows when its verbs,
//! API groups, resources (`*`, `pods/log`, `*/scale`) and resource names, or its non-resource URLs
//! (`/apis/*`), match. ClusterRoles with an `aggregationRule` also carry the rules of every
//! ClusterRole their selectors match (aggregated at evaluation time).

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::{
    AggregationRule, ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject,
};
use serde::de::DeserializeOwned;
use wasmop_apimachinery::selector::LabelSelector;

use super::{Attributes, UserInfo};
use crate::store::Store;

const RBAC: &str = "rbac.authorization.k8s.io";

/// The RBAC objects a decision reads, as a snapshot of the store.
#[derive(Debug, Default, Clone)]
pub struct Policy {
    pub cluster_roles: Vec<ClusterRole>,
    pub roles: Vec<Role>,
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    pub role_bindings: Vec<RoleBinding>,
}

/// What RBAC says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// With the reason a real server gives (`RBAC: allowed by ClusterRoleBinding ...`).
    Allow(String),
    /// With the reason (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`), often empty.
    Deny(String),
}

fn load<T: DeserializeOwned>(store: &Store, plural: &str) -> Vec<T> {
    store
        .list(&format!("{RBAC}/{plural}"), None)
        .1
        .into_iter()
        .filter_map(|v| serde_json::from_value((*v).clone()).ok())
        .collect()
}

/// Whether a binding subject names the user (`namespace`: the RoleBinding's, for ServiceAccount
/// subjects without one).
pub fn applies_to(user: &UserInfo, subject: &Subject, binding_namespace: &str) -> bool {
    match subject.kind.as_str() {
        "User" => user.name == subject.name,
        "Group" => user.groups.contains(&subject.name),
        "ServiceAccount" => {
            let ns = match subject.namespace.as_deref() {
                Some(ns) if !ns.is_empty() => ns,
                _ => binding_namespace,
            };
            !ns.is_empty() && user.name == format!("system:serviceaccount:{ns}:{}", subject.name)
        }
        _ => false,
    }
}

fn has(list: &[String], wanted: &str) -> bool {
    list.iter().any(|v| v == "*" || v == wanted)
}

/// `rbacv1helpers.ResourceMatches`: `*`, the combined `resource/subresource`, or `*/subresource`.
fn resource_matches(rule_resources: &[String], combined: &str, subresource: &str) -> bool {
    rule_resources.iter().any(|r| {
        r == "*"
            || r == combined
            || (!subresource.is_empty()
                && r.len() == subresource.len() + 2
                && r.starts_with("*/")
                && r.ends_with(subresource))
    })
}

/// `rbacv1helpers.NonResourceURLMatches`: exact, `*`, or a prefix ending in `*`.
fn url_matches(rule_urls: &[String], path: &str) -> bool {
    rule_urls
        .iter()
        .any(|u| u == "*" || u == path || (u.ends_with('*') && path.starts_with(u.trim_end_matches('*'))))
}

/// `rbac.RuleAllows`.
pub fn rule_allows(a: &Attributes, rule: &PolicyRule) -> bool {
    if !has(&rule.verbs, &a.verb) {
        return false;
    }
    if !a.resource_request {
        return url_matches(rule.non_resource_urls.as_deref().unwrap_or(&[]), &a.path);
    }
    let combined = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let names = rule.resource_names.as_deref().unwrap_or(&[]);
    has(rule.api_groups.as_deref().unwrap_or(&[]), &a.api_group)
        && resource_matches(
            rule.resources.as_deref().unwrap_or(&[]),
            &combined,
            &a.subresource,
        )
        && (names.is_empty() || names.contains(&a.name))
}

/// Roles, ClusterRoles and their bindings: named by any valid path segment, not a DNS subdomain.
pub fn is_rbac_kind(ri: &crate::registry::ResourceInfo) -> bool {
    !ri.is_custom()
        && ri.group == RBAC
        && matches!(
            ri.plural.as_str(),
            "roles" | "rolebindings" | "clusterroles" | "clusterrolebindings"
        )
}

/// `path.ValidatePathSegmentName`: why `name` is not a valid RBAC object name.
pub fn path_segment_error(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    ['/', '%']
        .into_iter()
        .find(|c| name.contains(*c))
        .map(|c| format!("may not contain '{c}'"))
}

fn selectors(agg: &AggregationRule) -> Vec<LabelSelector> {
    agg.cluster_role_selectors
        .iter()
        .flatten()
        .filter_map(|s| serde_json::to_value(s).ok())
        .filter_map(|s| LabelSelector::from_json(&s).ok())
        .collect()
}

fn matches_any(selectors: &[LabelSelector], role: &ClusterRole) -> bool {
    let labels = serde_json::to_value(&role.metadata.labels).ok();
    let labels = labels.as_ref().and_then(|l| l.as_object());
    selectors.iter().any(|s| s.matches(labels))
}

/// `describeSubject`: how an allow reason names the subject (`User "jane"`, `ServiceAccount "bot/ns"`).
fn describe(s: &Subject, binding_namespace: &str) -> String {
    if s.kind == "ServiceAccount" {
        let ns = s
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
            .unwrap_or(binding_namespace);
        format!("{} {:?}", s.kind, format!("{}/{ns}", s.name))
    } else {
        format!("{} {:?}", s.kind, s.name)
    }
}

fn not_found(kind: &str, name: &str) -> String {
    format!("{kind}.{RBAC} \"{name}\" not found")
}

impl Policy {
    pub fn from_store(store: &Store) -> Policy {
        Policy {
            cluster_roles: load(store, "clusterroles"),
            roles: load(store, "roles"),
            cluster_role_bindings: load(store, "clusterrolebindings"),
            role_bindings: load(store, "rolebindings"),
        }
    }

    fn cluster_role(&self, name: &str) -> Option<&ClusterRole> {
        self.cluster_roles
            .iter()
            .find(|r| r.metadata.name.as_deref() == Some(name))
    }

    /// A ClusterRole's rules, with those of the ClusterRoles its `aggregationRule` selects.
    pub fn cluster_role_rules(&self, name: &str) -> Result<Vec<PolicyRule>, String> {
        let role = self
            .cluster_role(name)
            .ok_or_else(|| not_found("clusterrole", name))?;
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        self.collect(role, &mut seen, &mut out);
        Ok(out)
    }

    /// What the aggregation controller writes into an aggregated ClusterRole: the rules of every
    /// other ClusterRole its selectors match, in name order, without duplicates (None: no such
    /// role, or it does not aggregate).
    pub fn aggregated_rules(&self, name: &str) -> Option<Vec<PolicyRule>> {
        let role = self.cluster_role(name)?;
        let selectors = selectors(role.aggregation_rule.as_ref()?);
        let mut out: Vec<PolicyRule> = Vec::new();
        for other in &self.cluster_roles {
            if other.metadata.name.as_deref() == Some(name) || !matches_any(&selectors, other) {
                continue;
            }
            let mut seen = BTreeSet::from([name]);
            let mut rules = Vec::new();
            self.collect(other, &mut seen, &mut rules);
            for r in rules {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        Some(out)
    }

    fn collect<'a>(&'a self, role: &'a ClusterRole, seen: &mut BTreeSet<&'a str>, out: &mut Vec<PolicyRule>) {
        if !seen.insert(role.metadata.name.as_deref().unwrap_or("")) {
            return;
        }
        for rule in role.rules.iter().flatten() {
            if !out.contains(rule) {
                out.push(rule.clone());
            }
        }
        let Some(agg) = &role.aggregation_rule else {
            return;
        };
        let selectors = selectors(agg);
        for other in &self.cluster_roles {
            if matches_any(&selectors, other) {
                self.collect(other, seen, out);
            }
        }
    }

    fn role_rules(&self, namespace: &str, name: &str) -> Result<Vec<PolicyRule>, String> {
        self.roles
            .iter()
            .find(|r| {
                r.metadata.namespace.as_deref() == Some(namespace) && r.metadata.name.as_deref() == Some(name)
            })
            .map(|r| r.rules.clone().unwrap_or_default())
            .ok_or_else(|| not_found("role", name))
    }

    /// Visits the rules that apply to `user` in `namespace` ("" for cluster scope) with a
    /// description of the binding that grants them; stops when `visit` returns true. Returns the
    /// errors met on the way (missing roles).
    fn visit(
        &self,
        user: &UserInfo,
        namespace: &str,
        visit: &mut dyn FnMut(&str, &PolicyRule) -> bool,
    ) -> (bool, Vec<String>) {
        let mut errors = Vec::new();
        for b in &self.cluster_role_bindings {
            let Some(subject) = b.subjects.iter().flatten().find(|s| applies_to(user, s, "")) else {
                continue;
            };
            match self.cluster_role_rules(&b.role_ref.name) {
                Err(e) => errors.push(e),
                Ok(rules) => {
                    let by = format!(
                        "ClusterRoleBinding {:?} of ClusterRole {:?} to {}",
                        b.metadata.name.as_deref().unwrap_or(""),
                        b.role_ref.name,
                        describe(subject, "")
                    );
                    if rules.iter().any(|r| visit(&by, r)) {
                        return (true, errors);
                    }
                }
            }
        }
        if namespace.is_empty() {
            return (false, errors);
        }
        for b in &self.role_bindings {
            if b.metadata.namespace.as_deref() != Some(namespace) {
                continue;
            }
            let Some(subject) = b
                .subjects
                .iter()
                .flatten()
                .find(|s| applies_to(user, s, namespace))
            else {
                continue;
            };
            let rules = match b.role_ref.kind.as_str() {
                "ClusterRole" => self.cluster_role_rules(&b.role_ref.name),
                "Role" => self.role_rules(namespace, &b.role_ref.name),
                other => Err(format!("unsupported role reference kind: {other:?}")),
            };
            match rules {
                Err(e) => errors.push(e),
                Ok(rules) => {
                    let by = format!(
                        "RoleBinding {:?} of {} {:?} to {}",
                        format!("{}/{namespace}", b.metadata.name.as_deref().unwrap_or("")),
                        b.role_ref.kind,
                        b.role_ref.name,
                        describe(subject, namespace)
                    );
                    if rules.iter().any(|r| visit(&by, r)) {
                        return (true, errors);
                    }
                }
            }
        }
        (false, errors)
    }

    /// `RBACAuthorizer.Authorize`.
    pub fn authorize(&self, a: &Attributes) -> Decision {
        let mut allowed_by = String::new();
        let (allowed, errors) = self.visit(&a.user, &a.namespace, &mut |by, rule| {
            let ok = rule_allows(a, rule);
            if ok {
                allowed_by = by.to_string();
            }
            ok
        });
        if allowed {
            return Decision::Allow(format!("RBAC: allowed by {allowed_by}"));
        }
        let reason = match errors.as_slice() {
            [] => String::new(),
            [one] => format!("RBAC: {one}"),
            many => format!("RBAC: [{}]", many.join(", ")),
        };
        Decision::Deny(reason)
    }

    /// Every rule that applies to `user` in `namespace` (SelfSubjectRulesReview), and the errors.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<PolicyRule>, Vec<String>) {
        let mut rules = Vec::new();
        let (_, errors) = self.visit(user, namespace, &mut |_, r| {
            rules.push(r.clone());
            false
        });
        (rules, errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v<T: serde::de::DeserializeOwned>(x: serde_json::Value) -> T {
        serde_json::from_value(x).unwrap()
    }
    use serde_json::json;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: String::new(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn res(
        u: &UserInfo,
        verb: &str,
        group: &str,
        resource: &str,
        sub: &str,
        ns: &str,
        name: &str,
    ) -> Attributes {
        Attributes {
            user: u.clone(),
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            namespace: ns.into(),
            name: name.into(),
            path: String::new(),
        }
    }

    fn rule(v: serde_json::Value) -> PolicyRule {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let u = user("jane", &[]);
        let r = rule(json!({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]}));
        assert!(rule_allows(&res(&u, "get", "", "pods", "", "a", "p"), &r));
        assert!(rule_allows(&res(&u, "get", "", "pods", "log", "a", "p"), &r));
        assert!(!rule_allows(&res(&u, "get", "", "pods", "exec", "a", "p"), &r));
        assert!(!rule_allows(&res(&u, "delete", "", "pods", "", "a", "p"), &r));
        assert!(!rule_allows(&res(&u, "get", "apps", "pods", "", "a", "p"), &r));
        let star = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(rule_allows(
            &res(&u, "patch", "apps", "deployments", "scale", "", "x"),
            &star
        ));
        let sub = rule(json!({"verbs": ["update"], "apiGroups": ["apps"], "resources": ["*/scale"]}));
        assert!(rule_allows(
            &res(&u, "update", "apps", "deployments", "scale", "a", "w"),
            &sub
        ));
        assert!(!rule_allows(
            &res(&u, "update", "apps", "deployments", "", "a", "w"),
            &sub
        ));
        assert!(!rule_allows(
            &res(&u, "update", "apps", "deployments", "status", "a", "w"),
            &sub
        ));
        let named = rule(
            json!({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["one"]}),
        );
        assert!(rule_allows(
            &res(&u, "get", "", "configmaps", "", "a", "one"),
            &named
        ));
        assert!(!rule_allows(
            &res(&u, "get", "", "configmaps", "", "a", "two"),
            &named
        ));
        assert!(!rule_allows(
            &res(&u, "list", "", "configmaps", "", "a", ""),
            &named
        ));
    }

    #[test]
    fn non_resource_urls_match_exactly_or_by_prefix() {
        let u = user("jane", &[]);
        let r = rule(json!({"verbs": ["get"], "nonResourceURLs": ["/healthz", "/apis/*"]}));
        let path = |p: &str| Attributes {
            user: u.clone(),
            verb: "get".into(),
            resource_request: false,
            path: p.into(),
            ..res(&u, "get", "", "", "", "", "")
        };
        assert!(rule_allows(&path("/healthz"), &r));
        assert!(rule_allows(&path("/apis/apps/v1"), &r));
        assert!(!rule_allows(&path("/healthz/etcd"), &r));
        assert!(!rule_allows(&path("/api"), &r));
        // A resource rule never grants a path.
        let resources = rule(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}));
        assert!(!rule_allows(&path("/healthz"), &resources));
    }

    fn policy() -> Policy {
        Policy {
            cluster_roles: vec![
                v(
                    json!({"metadata": {"name": "cm-reader", "labels": {"agg": "yes"}}, "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"]}]}),
                ),
                v(
                    json!({"metadata": {"name": "aggregated"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"agg": "yes"}}]}}),
                ),
                v(
                    json!({"metadata": {"name": "secrets", "labels": {"agg": "no"}}, "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}]}),
                ),
            ],
            roles: vec![v(
                json!({"metadata": {"name": "deployer", "namespace": "a"}, "rules": [{"verbs": ["create"], "apiGroups": ["apps"], "resources": ["deployments"]}]}),
            )],
            cluster_role_bindings: vec![
                v(
                    json!({"metadata": {"name": "readers"}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "secrets"}, "subjects": [{"kind": "Group", "name": "readers"}]}),
                ),
                v(
                    json!({"metadata": {"name": "broken"}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "missing"}, "subjects": [{"kind": "User", "name": "jane"}]}),
                ),
            ],
            role_bindings: vec![
                v(
                    json!({"metadata": {"name": "jane-deploys", "namespace": "a"}, "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "deployer"}, "subjects": [{"kind": "User", "name": "jane"}]}),
                ),
                v(
                    json!({"metadata": {"name": "sa-agg", "namespace": "a"}, "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "aggregated"}, "subjects": [{"kind": "ServiceAccount", "name": "bot"}]}),
                ),
            ],
        }
    }

    #[test]
    fn bindings_grant_by_user_group_and_service_account_in_their_scope() {
        let p = policy();
        let jane = user("jane", &["system:authenticated"]);
        assert!(
            matches!(p.authorize(&res(&jane, "create", "apps", "deployments", "", "a", "")), Decision::Allow(r) if r == "RBAC: allowed by RoleBinding \"jane-deploys/a\" of Role \"deployer\" to User \"jane\"")
        );
        // A RoleBinding grants nothing in other namespaces or cluster-wide; the missing role is the reason.
        assert_eq!(
            p.authorize(&res(&jane, "create", "apps", "deployments", "", "b", "")),
            Decision::Deny("RBAC: clusterrole.rbac.authorization.k8s.io \"missing\" not found".into())
        );
        let reader = user("bob", &["readers"]);
        assert!(matches!(
            p.authorize(&res(&reader, "get", "", "secrets", "", "any", "s")),
            Decision::Allow(_)
        ));
        assert!(matches!(
            p.authorize(&res(&reader, "get", "", "secrets", "", "", "")),
            Decision::Allow(_)
        ));
        assert_eq!(
            p.authorize(&res(&reader, "list", "", "secrets", "", "any", "")),
            Decision::Deny(String::new())
        );
        let bot = user(
            "system:serviceaccount:a:bot",
            &["system:serviceaccounts", "system:serviceaccounts:a"],
        );
        let other_bot = user("system:serviceaccount:b:bot", &[]);
        // The aggregated ClusterRole carries cm-reader's rules (label agg=yes), not secrets' (agg=no).
        assert!(matches!(
            p.authorize(&res(&bot, "list", "", "configmaps", "", "a", "")),
            Decision::Allow(_)
        ));
        assert!(matches!(
            p.authorize(&res(&bot, "get", "", "secrets", "", "a", "s")),
            Decision::Deny(_)
        ));
        assert!(matches!(
            p.authorize(&res(&other_bot, "list", "", "configmaps", "", "a", "")),
            Decision::Deny(_)
        ));
        assert!(matches!(
            p.authorize(&res(&bot, "list", "", "configmaps", "", "b", "")),
            Decision::Deny(_)
        ));
    }

    #[test]
    fn rbac_names_are_path_segments() {
        assert_eq!(path_segment_error("system:discovery"), None);
        assert_eq!(path_segment_error("a/b").as_deref(), Some("may not contain '/'"));
        assert_eq!(path_segment_error("..").as_deref(), Some("may not be '..'"));
    }

    #[test]
    fn aggregation_follows_nested_aggregated_roles_once() {
        let mut p = policy();
        p.cluster_roles.push(
            serde_json::from_value(json!({"metadata": {"name": "outer"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"tier": "inner"}}]}}))
                .unwrap(),
        );
        if let Some(r) = p
            .cluster_roles
            .iter_mut()
            .find(|r| r.metadata.name.as_deref() == Some("aggregated"))
        {
            r.metadata.labels = Some([("tier".to_string(), "inner".to_string())].into());
        }
        let rules = p.cluster_role_rules("outer").unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(p.aggregated_rules("outer").unwrap(), rules);
        assert_eq!(p.aggregated_rules("cm-reader"), None);
        assert_eq!(
            rules[0].resources.as_deref(),
            Some(&["configmaps".to_string()][..])
        );
    }
}
