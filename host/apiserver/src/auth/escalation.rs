//! RBAC escalation prevention, as kube-apiserver's RBAC storage does it: with RBAC enforced, a user
//! outside `system:masters` may write a Role or ClusterRole only with rules they already hold (or with
//! the `escalate` verb on it), and a RoleBinding or ClusterRoleBinding only to a role whose rules they
//! hold (or with the `bind` verb on it); only `system:masters` may write an `aggregationRule`.
//! `Covers` breaks the new rules down to single verb/group/resource/name rules, each of which one of
//! the user's rules must cover. A PATCH is checked against the current rules plus the ones the patch
//! carries (a safe over-approximation: the patch is not applied here).

use http::{Method, header};
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::Value;

use super::{Attributes, MASTERS, UserInfo};
use crate::error::{ApiError, ApiResult};
use crate::http::RequestCtx;
use crate::store::Key;

const RBAC: &str = "rbac.authorization.k8s.io";

fn has(list: &[String], v: &str) -> bool {
    list.iter().any(|x| x == v)
}

/// `resourceCoversAll`.
fn resources_cover(owner: &[String], wanted: &[String]) -> bool {
    if has(owner, "*") {
        return true;
    }
    wanted.iter().all(|path| {
        has(owner, path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| has(owner, &format!("*/{sub}")))
    })
}

/// `nonResourceURLsCoversAll`.
fn urls_cover(owner: &[String], wanted: &[String]) -> bool {
    wanted.iter().all(|path| {
        owner
            .iter()
            .any(|o| o == path || (o.ends_with('*') && path.starts_with(o.trim_end_matches('*'))))
    })
}

fn list(v: &Option<Vec<String>>) -> &[String] {
    v.as_deref().unwrap_or(&[])
}

/// `ruleCovers`.
fn rule_covers(owner: &PolicyRule, sub: &PolicyRule) -> bool {
    let all = |o: &[String], s: &[String]| has(o, "*") || s.iter().all(|x| has(o, x));
    let names = if list(&sub.resource_names).is_empty() {
        list(&owner.resource_names).is_empty()
    } else {
        list(&owner.resource_names).is_empty()
            || list(&sub.resource_names)
                .iter()
                .all(|n| has(list(&owner.resource_names), n))
    };
    all(&owner.verbs, &sub.verbs)
        && all(list(&owner.api_groups), list(&sub.api_groups))
        && resources_cover(list(&owner.resources), list(&sub.resources))
        && urls_cover(list(&owner.non_resource_urls), list(&sub.non_resource_urls))
        && names
}

/// `BreakdownRule`: one rule per group, resource, verb (and name).
fn breakdown(rule: &PolicyRule) -> Vec<PolicyRule> {
    let one = |v: &str| Some(vec![v.to_string()]);
    let mut out = Vec::new();
    for group in list(&rule.api_groups) {
        for resource in list(&rule.resources) {
            for verb in &rule.verbs {
                if list(&rule.resource_names).is_empty() {
                    out.push(PolicyRule {
                        api_groups: one(group),
                        resources: one(resource),
                        verbs: vec![verb.clone()],
                        ..Default::default()
                    });
                }
                for name in list(&rule.resource_names) {
                    out.push(PolicyRule {
                        api_groups: one(group),
                        resources: one(resource),
                        resource_names: one(name),
                        verbs: vec![verb.clone()],
                        ..Default::default()
                    });
                }
            }
        }
    }
    for url in list(&rule.non_resource_urls) {
        for verb in &rule.verbs {
            out.push(PolicyRule {
                non_resource_urls: one(url),
                verbs: vec![verb.clone()],
                ..Default::default()
            });
        }
    }
    out
}

/// `Covers`: the broken-down rules of `wanted` that no rule of `owner` covers.
pub fn uncovered(owner: &[PolicyRule], wanted: &[PolicyRule]) -> Vec<PolicyRule> {
    let mut missing = Vec::new();
    for rule in wanted.iter().flat_map(breakdown) {
        if !owner.iter().any(|o| rule_covers(o, &rule)) && !missing.contains(&rule) {
            missing.push(rule);
        }
    }
    missing
}

/// `rbacv1helpers.CompactString`: `{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}`.
fn compact(rule: &PolicyRule) -> String {
    let field = |name: &str, values: &[String]| {
        (!values.is_empty()).then(|| format!("{name}:[\"{}\"]", values.join("\" \"")))
    };
    let parts: Vec<String> = [
        field("APIGroups", list(&rule.api_groups)),
        field("Resources", list(&rule.resources)),
        field("ResourceNames", list(&rule.resource_names)),
        field("NonResourceURLs", list(&rule.non_resource_urls)),
        field("Verbs", &rule.verbs),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!("{{{}}}", parts.join(", "))
}

fn rules_of(v: &Value) -> Vec<PolicyRule> {
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|r| serde_json::from_value(r.clone()).ok())
            .collect(),
        _ => Vec::new(),
    }
}

/// A patch body as JSON (YAML for server-side apply).
fn patch_body(ctx: &RequestCtx) -> Value {
    let ct = ctx
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ct.starts_with("application/apply-patch+yaml") {
        serde_yaml::from_slice(&ctx.body).unwrap_or(Value::Null)
    } else {
        serde_json::from_slice(&ctx.body).unwrap_or(Value::Null)
    }
}

/// Rules a patch body may introduce (merge, strategic and apply patches; JSON patch values).
fn patch_rules(body: &Value) -> Vec<PolicyRule> {
    match body {
        Value::Array(ops) => ops
            .iter()
            .flat_map(|op| match &op["value"] {
                v @ Value::Array(_) => rules_of(v),
                v @ Value::Object(_) => rules_of(&Value::Array(vec![v.clone()])),
                _ => Vec::new(),
            })
            .collect(),
        _ => rules_of(&body["rules"]),
    }
}

fn forbidden(resource: &str, name: &str, message: String) -> ApiError {
    let mut details = serde_json::Map::new();
    if !name.is_empty() {
        details.insert("name".into(), name.into());
    }
    details.insert("group".into(), RBAC.into());
    details.insert("kind".into(), resource.into());
    let subject = if name.is_empty() {
        format!("{resource}.{RBAC}")
    } else {
        format!("{resource}.{RBAC} {name:?}")
    };
    ApiError::new(403, "Forbidden", format!("{subject} is forbidden: {message}"))
        .with_details(Value::Object(details))
}

fn may(ctx: &RequestCtx, verb: &str, resource: &str, namespace: &str, name: &str) -> bool {
    let a = Attributes {
        user: ctx.user.clone(),
        verb: verb.into(),
        resource_request: true,
        api_group: RBAC.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: name.into(),
        ..Default::default()
    };
    matches!(super::authorize(&ctx.core, &a), super::rbac::Decision::Allow(_))
}

fn escalation_error(user: &UserInfo, resource: &str, name: &str, missing: &[PolicyRule]) -> ApiError {
    let rules: Vec<String> = missing.iter().map(compact).collect();
    forbidden(
        resource,
        name,
        format!(
            "user {:?} (groups={:?}) is attempting to grant RBAC permissions not currently held:\n{}",
            user.name,
            user.groups,
            rules.join("\n")
        ),
    )
}

/// Refuses a write of a Role, ClusterRole or binding that would grant more than the caller holds.
pub fn check(ctx: &RequestCtx, group: &str, version: &str, rest: &[&str]) -> ApiResult<()> {
    if group != RBAC || !ctx.core.auth.rbac || ctx.user.in_group(MASTERS) {
        return Ok(());
    }
    let (namespace, resource, name) = match rest {
        ["namespaces", ns, res] => (*ns, *res, ""),
        ["namespaces", ns, res, name] => (*ns, *res, *name),
        [res] => ("", *res, ""),
        [res, name] => ("", *res, *name),
        _ => return Ok(()),
    };
    let write = matches!(
        (&ctx.method, name.is_empty()),
        (&Method::POST, true) | (&Method::PUT, false) | (&Method::PATCH, false)
    );
    if !write {
        return Ok(());
    }
    let stored = (!name.is_empty())
        .then(|| {
            ctx.core.store.get(&Key {
                resource: format!("{RBAC}/{resource}"),
                namespace: namespace.into(),
                name: name.into(),
            })
        })
        .flatten();
    let body: Value = if ctx.method == Method::PATCH {
        patch_body(ctx)
    } else {
        let Some(ri) = ctx.core.registry.lookup(group, version, resource) else {
            return Ok(());
        };
        ctx.json_body(&ri)?
    };
    let object_name = match body["metadata"]["name"].as_str() {
        Some(n) if name.is_empty() => n.to_string(),
        _ => name.to_string(),
    };
    match resource {
        "roles" | "clusterroles" => {
            if may(ctx, "escalate", resource, namespace, &object_name) {
                return Ok(());
            }
            let aggregation = match &body {
                Value::Array(ops) => ops.iter().any(|op| {
                    op["path"]
                        .as_str()
                        .is_some_and(|p| p.starts_with("/aggregationRule"))
                }),
                other => !other["aggregationRule"].is_null(),
            };
            if resource == "clusterroles" && aggregation {
                return Err(forbidden(
                    resource,
                    &object_name,
                    "must have cluster-admin privileges to use the aggregationRule".into(),
                ));
            }
            let mut wanted = rules_of(&body["rules"]);
            if ctx.method == Method::PATCH {
                wanted = patch_rules(&body);
                if let Some(current) = &stored {
                    wanted.extend(rules_of(&current["rules"]));
                }
            }
            let (owned, _) = ctx
                .core
                .auth
                .policy(&ctx.core.store)
                .rules_for(&ctx.user, namespace);
            let missing = uncovered(&owned, &wanted);
            if missing.is_empty() {
                Ok(())
            } else {
                Err(escalation_error(&ctx.user, resource, &object_name, &missing))
            }
        }
        "rolebindings" | "clusterrolebindings" => {
            let role_ref = match (&stored, body.get("roleRef")) {
                (_, Some(r)) if r.is_object() => r.clone(),
                (Some(current), _) => current["roleRef"].clone(),
                _ => return Ok(()),
            };
            let kind = role_ref["kind"].as_str().unwrap_or("");
            let role = role_ref["name"].as_str().unwrap_or("");
            let (role_resource, role_ns) = if kind == "Role" {
                ("roles", namespace)
            } else {
                ("clusterroles", namespace)
            };
            if may(ctx, "bind", role_resource, role_ns, role) {
                return Ok(());
            }
            let policy = ctx.core.auth.policy(&ctx.core.store);
            let wanted = if kind == "Role" {
                policy
                    .roles
                    .iter()
                    .find(|r| {
                        r.metadata.namespace.as_deref() == Some(namespace)
                            && r.metadata.name.as_deref() == Some(role)
                    })
                    .and_then(|r| r.rules.clone())
                    .unwrap_or_default()
            } else {
                policy.cluster_role_rules(role).unwrap_or_default()
            };
            let (owned, _) = policy.rules_for(&ctx.user, namespace);
            let missing = uncovered(&owned, &wanted);
            if missing.is_empty() {
                Ok(())
            } else {
                Err(escalation_error(&ctx.user, resource, &object_name, &missing))
            }
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rules(v: Value) -> Vec<PolicyRule> {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn covers_breaks_rules_down_and_honours_wildcards() {
        let owner = rules(json!([
            {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps", "*/status"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["one"]},
            {"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}
        ]));
        let ok = rules(json!([
            {"verbs": ["list"], "apiGroups": [""], "resources": ["configmaps", "pods/status"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["one"]},
            {"verbs": ["get"], "nonResourceURLs": ["/apis/apps"]}
        ]));
        assert!(uncovered(&owner, &ok).is_empty());
        let too_much = rules(json!([
            {"verbs": ["get", "delete"], "apiGroups": [""], "resources": ["configmaps"]},
            {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"]}
        ]));
        let missing = uncovered(&owner, &too_much);
        assert_eq!(
            missing.iter().map(compact).collect::<Vec<_>>(),
            [
                "{APIGroups:[\"\"], Resources:[\"configmaps\"], Verbs:[\"delete\"]}",
                "{APIGroups:[\"\"], Resources:[\"secrets\"], Verbs:[\"get\"]}"
            ]
        );
        let star = rules(json!([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}]));
        assert!(uncovered(&star, &too_much).is_empty());
    }
}
