//! Discovery documents: `/version`, the legacy `/api`, `/apis`, `/api/v1`, `/apis/{g}`, `/apis/{g}/{v}`
//! and the aggregated `APIGroupDiscoveryList` (v2 and v2beta1) that kubectl and kube-rs ask for first.
//! Everything is generated from the live registry, so a new CRD shows up at once.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceInfo};

pub fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": concat!("v1.33.0-wasmop.", env!("CARGO_PKG_VERSION")),
        "gitCommit": "",
        "gitTreeState": "clean",
        "buildDate": "",
        "goVersion": "",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
    })
}

/// `/api` (no `apiVersion` field, reference behaviour 7).
pub fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

fn api_group(group: &str, versions: &[String]) -> Value {
    let vs: Vec<Value> = versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": vs, "preferredVersion": vs.first().cloned().unwrap_or(Value::Null)})
}

/// `/apis`: every named group.
pub fn group_list(registry: &Registry) -> Value {
    let groups: Vec<Value> = registry
        .groups()
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, vs)| api_group(g, &vs.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>()))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/{group}`.
pub fn group(registry: &Registry, group: &str) -> Option<Value> {
    let groups = registry.groups();
    let (_, vs) = groups.iter().find(|(g, _)| g == group)?;
    let mut doc = api_group(group, &vs.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>());
    doc["kind"] = "APIGroup".into();
    doc["apiVersion"] = "v1".into();
    Some(doc)
}

fn sorted(resources: &[Arc<ResourceInfo>]) -> Vec<Arc<ResourceInfo>> {
    let mut r = resources.to_vec();
    r.sort_by(|a, b| a.plural.cmp(&b.plural));
    r
}

/// `/api/v1` or `/apis/{group}/{version}`: the legacy `APIResourceList`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let groups = registry.groups();
    let (_, vs) = groups.iter().find(|(g, _)| g == group)?;
    let (_, resources) = vs.iter().find(|(v, _)| v == version)?;
    let mut items = Vec::new();
    for r in sorted(resources) {
        let mut item = json!({
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": r.verbs(),
        });
        if !r.short_names.is_empty() {
            item["shortNames"] = json!(r.short_names);
        }
        if !r.categories.is_empty() {
            item["categories"] = json!(r.categories);
        }
        items.push(item);
        for s in crate::core_kinds::subresources(&r) {
            let mut sub = json!({"name": format!("{}/{}", r.plural, s.name), "singularName": "", "namespaced": r.namespaced});
            if !s.group.is_empty() {
                sub["group"] = s.group.into();
                sub["version"] = s.version.into();
            }
            sub["kind"] = s.kind.unwrap_or(&r.kind).into();
            sub["verbs"] = json!(s.verbs);
            items.push(sub);
        }
    }
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    let mut doc = json!({"kind": "APIResourceList", "groupVersion": gv, "resources": items});
    if !group.is_empty() {
        doc["apiVersion"] = "v1".into();
    }
    Some(doc)
}

/// Which aggregated discovery version an `Accept` header asks for, if any.
pub fn aggregated_version(accept: &str) -> Option<&'static str> {
    for part in accept.split(',') {
        let p = part.replace(' ', "");
        if p.contains("as=APIGroupDiscoveryList") && p.contains("g=apidiscovery.k8s.io") {
            if p.contains("v=v2beta1") {
                return Some("v2beta1");
            }
            if p.contains("v=v2") {
                return Some("v2");
            }
        }
    }
    None
}

/// The aggregated `APIGroupDiscoveryList` for the core group (`/api`) or the named groups (`/apis`).
pub fn aggregated(registry: &Registry, core: bool, version: &str) -> Value {
    let mut items = Vec::new();
    for (group, versions) in registry.groups() {
        if group.is_empty() != core {
            continue;
        }
        let mut vs = Vec::new();
        for (v, resources) in &versions {
            let mut rs = Vec::new();
            for r in sorted(resources) {
                let kind = |k: &str| {
                    if r.is_custom() {
                        json!({"group": r.group, "version": r.version, "kind": k})
                    } else {
                        json!({"group": "", "version": "", "kind": k})
                    }
                };
                let mut item = json!({
                    "resource": r.plural,
                    "responseKind": kind(&r.kind),
                    "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
                    "singularResource": r.singular,
                    "verbs": r.verbs(),
                });
                if !r.short_names.is_empty() {
                    item["shortNames"] = json!(r.short_names);
                }
                if !r.categories.is_empty() {
                    item["categories"] = json!(r.categories);
                }
                let mut subs = Vec::new();
                for s in crate::core_kinds::subresources(&r) {
                    let response_kind = if s.group.is_empty() {
                        kind(s.kind.unwrap_or(&r.kind))
                    } else {
                        json!({"group": s.group, "version": s.version, "kind": s.kind.unwrap_or(&r.kind)})
                    };
                    subs.push(
                        json!({"subresource": s.name, "responseKind": response_kind, "verbs": s.verbs}),
                    );
                }
                if !subs.is_empty() {
                    item["subresources"] = Value::Array(subs);
                }
                rs.push(item);
            }
            vs.push(json!({"version": v, "resources": rs, "freshness": "Current"}));
        }
        let metadata = if core {
            json!({"creationTimestamp": null})
        } else {
            json!({"name": group, "creationTimestamp": null})
        };
        items.push(json!({"metadata": metadata, "versions": vs}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": format!("apidiscovery.k8s.io/{version}"), "metadata": {}, "items": items})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_accept_headers_pick_a_discovery_version() {
        let k128 =
            "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(k128), Some("v2beta1"));
        let k132 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(aggregated_version(k132), Some("v2"));
        assert_eq!(aggregated_version("application/json"), None);
    }

    #[test]
    fn legacy_documents_list_subresources() {
        let reg = Registry::default();
        let apps = resource_list(&reg, "apps", "v1").unwrap();
        let names: Vec<&str> = apps["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"deployments/status") && names.contains(&"deployments/scale"));
        assert_eq!(apps["apiVersion"], "v1");
        assert!(resource_list(&reg, "", "v1").unwrap().get("apiVersion").is_none());
    }

    #[test]
    fn service_account_tokens_are_listed_as_a_real_server_does() {
        let reg = Registry::default();
        // As in `01-discovery/api-v1.http`.
        let core = resource_list(&reg, "", "v1").unwrap();
        let token = core["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "serviceaccounts/token")
            .expect("serviceaccounts/token in /api/v1");
        assert_eq!(
            *token,
            json!({"name": "serviceaccounts/token", "singularName": "", "namespaced": true,
                "group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest", "verbs": ["create"]})
        );
        let aggregated = aggregated(&reg, true, "v2beta1");
        let sa = aggregated["items"][0]["versions"][0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["resource"] == "serviceaccounts")
            .unwrap();
        assert_eq!(
            sa["subresources"],
            json!([{"subresource": "token",
                "responseKind": {"group": "authentication.k8s.io", "version": "v1", "kind": "TokenRequest"},
                "verbs": ["create"]}])
        );
    }

    #[test]
    fn network_policies_are_served_in_the_group_order_of_a_real_server() {
        let reg = Registry::default();
        let groups: Vec<String> = group_list(&reg)["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["name"].as_str().unwrap().to_string())
            .collect();
        let at = |name: &str| groups.iter().position(|g| g == name).unwrap();
        // `01-discovery/apis.http`: ... certificates.k8s.io, networking.k8s.io, policy ...
        assert_eq!(at("networking.k8s.io"), at("certificates.k8s.io") + 1);
        assert_eq!(at("policy"), at("networking.k8s.io") + 1);
        let networking = resource_list(&reg, "networking.k8s.io", "v1").unwrap();
        assert_eq!(
            networking["resources"],
            json!([{"name": "networkpolicies", "singularName": "networkpolicy", "namespaced": true,
                "kind": "NetworkPolicy", "verbs": ["create", "delete", "deletecollection", "get", "list",
                "patch", "update", "watch"], "shortNames": ["netpol"]}])
        );
        let aggregated = aggregated(&reg, false, "v2beta1");
        let item = aggregated["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["metadata"]["name"] == "networking.k8s.io")
            .unwrap();
        let np = &item["versions"][0]["resources"][0];
        assert_eq!(np["resource"], "networkpolicies");
        assert_eq!(
            np["responseKind"],
            json!({"group": "", "version": "", "kind": "NetworkPolicy"})
        );
        assert_eq!(np["scope"], "Namespaced");
        assert_eq!(np["shortNames"], json!(["netpol"]));
        assert!(np.get("subresources").is_none(), "no status in v1.28");
    }
}
