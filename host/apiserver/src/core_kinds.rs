//! What the core and aggregation kinds need beyond a plain stored kind: the verbs and subresources a
//! real kube-apiserver lists for them in discovery (`pods/log`, `pods/eviction`,
//! `certificatesigningrequests/approval`, `serviceaccounts/token`, read-only `componentstatuses`,
//! ...), which subresource paths are routed, and the synthetic `ComponentStatus` list.

use serde_json::{Value, json};

use crate::registry::ResourceInfo;

/// One subresource as discovery lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct Subresource {
    pub name: &'static str,
    /// `(group, version, kind)` of what it answers; empty group/version mean the resource's own.
    pub group: &'static str,
    pub version: &'static str,
    /// None: the resource's own kind.
    pub kind: Option<&'static str>,
    pub verbs: &'static [&'static str],
}

const GPU: &[&str] = &["get", "patch", "update"];

fn sub(name: &'static str, kind: Option<&'static str>, verbs: &'static [&'static str]) -> Subresource {
    Subresource {
        name,
        group: "",
        version: "",
        kind,
        verbs,
    }
}

fn is(ri: &ResourceInfo, group: &str, plural: &str) -> bool {
    !ri.is_custom() && ri.group == group && ri.plural == plural
}

/// Verbs that differ from the usual full set (None: the usual ones).
pub fn verbs(ri: &ResourceInfo) -> Option<&'static [&'static str]> {
    if is(ri, "", "componentstatuses") {
        Some(&["get", "list"])
    } else if is(ri, "", "namespaces") {
        Some(&["create", "delete", "get", "list", "patch", "update", "watch"])
    } else {
        None
    }
}

/// Every subresource of a resource, sorted by name as a real server lists them.
pub fn subresources(ri: &ResourceInfo) -> Vec<Subresource> {
    let mut subs = Vec::new();
    if ri.status {
        subs.push(sub("status", None, GPU));
    }
    if ri.scale.is_some() {
        subs.push(Subresource {
            name: "scale",
            group: "autoscaling",
            version: "v1",
            kind: Some("Scale"),
            verbs: GPU,
        });
    }
    if is(ri, "", "pods") {
        subs.push(sub("attach", Some("PodAttachOptions"), &["create", "get"]));
        subs.push(sub("binding", Some("Binding"), &["create"]));
        subs.push(sub("ephemeralcontainers", None, GPU));
        subs.push(Subresource {
            name: "eviction",
            group: "policy",
            version: "v1",
            kind: Some("Eviction"),
            verbs: &["create"],
        });
        subs.push(sub("exec", Some("PodExecOptions"), &["create", "get"]));
        subs.push(sub("log", None, &["get"]));
        subs.push(sub(
            "portforward",
            Some("PodPortForwardOptions"),
            &["create", "get"],
        ));
        subs.push(sub(
            "proxy",
            Some("PodProxyOptions"),
            &["create", "delete", "get", "patch", "update"],
        ));
    }
    if is(ri, "", "nodes") {
        subs.push(sub(
            "proxy",
            Some("NodeProxyOptions"),
            &["create", "delete", "get", "patch", "update"],
        ));
    }
    if is(ri, "", "namespaces") {
        subs.push(sub("finalize", None, &["update"]));
    }
    if is(ri, "certificates.k8s.io", "certificatesigningrequests") {
        subs.push(sub("approval", None, GPU));
    }
    if is(ri, "", "serviceaccounts") {
        // Answered by `auth::reviews` (TokenRequest), not routed as a subresource here.
        subs.push(Subresource {
            name: "token",
            group: "authentication.k8s.io",
            version: "v1",
            kind: Some("TokenRequest"),
            verbs: &["create"],
        });
    }
    subs.sort_by_key(|s| s.name);
    subs
}

/// Subresources this server actually answers (discovery lists a few more: exec, attach, proxy).
pub fn routed(ri: &ResourceInfo, sub: &str) -> bool {
    match sub {
        "status" => ri.status,
        "scale" => ri.scale.is_some(),
        "finalize" => is(ri, "", "namespaces"),
        "log" | "eviction" | "ephemeralcontainers" | "binding" => is(ri, "", "pods"),
        "approval" => is(ri, "certificates.k8s.io", "certificatesigningrequests"),
        _ => false,
    }
}

/// APIService names are `version.group`; the core group's (`v1.`) ends with the dot.
pub fn is_core_apiservice_name(ri: &ResourceInfo, name: &str) -> bool {
    is(ri, "apiregistration.k8s.io", "apiservices")
        && name
            .strip_suffix('.')
            .is_some_and(wasmop_apimachinery::validation::is_dns_label)
}

/// `status.selector` of a built-in kind's Scale: its `spec.selector` as a selector string, the way
/// `metav1.LabelSelectorAsSelector(...).String()` prints it (a ReplicationController's selector is a
/// plain map).
pub fn scale_selector(obj: &Value) -> Option<String> {
    let sel = obj.pointer("/spec/selector")?.as_object()?;
    let mut reqs: Vec<(String, String)> = Vec::new();
    let labels = if sel.contains_key("matchLabels") || sel.contains_key("matchExpressions") {
        sel.get("matchLabels").and_then(Value::as_object)
    } else {
        Some(sel)
    };
    for (k, v) in labels.into_iter().flatten() {
        reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or("").to_string();
        let mut values: Vec<&str> = e["values"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        values.sort_unstable();
        let text = match e["operator"].as_str().unwrap_or("") {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.clone(),
            "DoesNotExist" => format!("!{key}"),
            _ => continue,
        };
        reqs.push((key, text));
    }
    reqs.sort();
    Some(reqs.into_iter().map(|(_, t)| t).collect::<Vec<_>>().join(","))
}

/// The components a real control plane reports in `kubectl get componentstatuses`.
const COMPONENTS: [&str; 3] = ["scheduler", "controller-manager", "etcd-0"];

/// One `ComponentStatus`, healthy (None if `name` is not a component).
pub fn component_status(name: &str) -> Option<Value> {
    COMPONENTS.contains(&name).then(|| {
        json!({
            "kind": "ComponentStatus",
            "apiVersion": "v1",
            "metadata": {"name": name, "creationTimestamp": null},
            "conditions": [{"type": "Healthy", "status": "True", "message": "ok"}],
        })
    })
}

/// The `ComponentStatusList` (items without kind/apiVersion, as in every built-in list).
pub fn component_status_list() -> Value {
    let items: Vec<Value> = COMPONENTS
        .iter()
        .filter_map(|n| component_status(n))
        .map(|mut v| {
            if let Some(m) = v.as_object_mut() {
                m.remove("kind");
                m.remove("apiVersion");
            }
            v
        })
        .collect();
    json!({"kind": "ComponentStatusList", "apiVersion": "v1", "metadata": {}, "items": items})
}

/// The deprecation warning a real server sends with every ComponentStatus answer.
pub const COMPONENT_STATUS_WARNING: &str = "v1 ComponentStatus is deprecated in v1.19+";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn pods_list_the_subresources_of_a_real_server_in_order() {
        let reg = Registry::default();
        let pods = reg.lookup("", "v1", "pods").unwrap();
        let names: Vec<_> = subresources(&pods).iter().map(|s| s.name).collect();
        assert_eq!(
            names,
            [
                "attach",
                "binding",
                "ephemeralcontainers",
                "eviction",
                "exec",
                "log",
                "portforward",
                "proxy",
                "status"
            ]
        );
        let rc = reg.lookup("", "v1", "replicationcontrollers").unwrap();
        let names: Vec<_> = subresources(&rc).iter().map(|s| s.name).collect();
        assert_eq!(names, ["scale", "status"]);
        let cs = reg.lookup("", "v1", "componentstatuses").unwrap();
        assert_eq!(cs.verbs(), ["get", "list"]);
        assert_eq!(cs.short_names, ["cs"]);
    }

    #[test]
    fn scale_selectors_print_like_go() {
        let d = json!({"spec": {"selector": {"matchLabels": {"b": "2", "a": "1"},
            "matchExpressions": [{"key": "c", "operator": "In", "values": ["y", "x"]}, {"key": "d", "operator": "DoesNotExist"}]}}});
        assert_eq!(scale_selector(&d).unwrap(), "a=1,b=2,c in (x,y),!d");
        let rc = json!({"spec": {"selector": {"app": "web"}}});
        assert_eq!(scale_selector(&rc).unwrap(), "app=web");
    }

    #[test]
    fn component_statuses_are_healthy() {
        let list = component_status_list();
        assert_eq!(list["items"].as_array().unwrap().len(), 3);
        assert_eq!(list["items"][2]["metadata"]["name"], "etcd-0");
        assert!(component_status("nope").is_none());
    }
}
