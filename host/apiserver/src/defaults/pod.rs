//! Pod spec defaults (`SetDefaults_PodSpec`, `SetDefaults_Container`, probes, volumes) shared by Pods
//! and every Pod template, and a Pod's QoS class (`qos.GetPodQOS`).

use serde_json::{Map, Value, json};

/// Sets `key` to `value` in `obj` when it is missing or null.
pub fn default(obj: &mut Map<String, Value>, key: &str, value: Value) {
    if obj.get(key).is_none_or(Value::is_null) {
        obj.insert(key.to_string(), value);
    }
}

/// The object at `key`, created as `{}` when missing or not an object.
pub fn object<'a>(obj: &'a mut Map<String, Value>, key: &str) -> &'a mut Map<String, Value> {
    if !obj.get(key).is_some_and(Value::is_object) {
        obj.insert(key.to_string(), Value::Object(Map::new()));
    }
    obj.get_mut(key)
        .and_then(Value::as_object_mut)
        .expect("just made an object")
}

/// Each object item of the array at `key`.
pub fn each(obj: &mut Map<String, Value>, key: &str, mut f: impl FnMut(&mut Map<String, Value>)) {
    if let Some(items) = obj.get_mut(key).and_then(Value::as_array_mut) {
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            f(item);
        }
    }
}

/// `Always` for `:latest` or untagged images, `IfNotPresent` for a tag or a digest.
pub fn image_pull_policy(image: &str) -> &'static str {
    if image.contains('@') {
        return "IfNotPresent";
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    match last.split_once(':') {
        Some((_, tag)) if tag != "latest" => "IfNotPresent",
        _ => "Always",
    }
}

fn probe(p: &mut Map<String, Value>) {
    default(p, "timeoutSeconds", json!(1));
    default(p, "periodSeconds", json!(10));
    default(p, "successThreshold", json!(1));
    default(p, "failureThreshold", json!(3));
    if let Some(get) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
        default(get, "path", json!("/"));
        default(get, "scheme", json!("HTTP"));
    }
}

fn container(c: &mut Map<String, Value>, ephemeral: bool) {
    default(c, "terminationMessagePath", json!("/dev/termination-log"));
    default(c, "terminationMessagePolicy", json!("File"));
    let image = c.get("image").and_then(Value::as_str).unwrap_or("").to_string();
    default(c, "imagePullPolicy", json!(image_pull_policy(&image)));
    if !ephemeral {
        default(c, "resources", json!({}));
    }
    each(c, "ports", |p| default(p, "protocol", json!("TCP")));
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(key).and_then(Value::as_object_mut) {
            probe(p);
        }
    }
    each(c, "env", |e| {
        if let Some(f) = e
            .get_mut("valueFrom")
            .and_then(|v| v.get_mut("fieldRef"))
            .and_then(Value::as_object_mut)
        {
            default(f, "apiVersion", json!("v1"));
        }
    });
}

fn volume(v: &mut Map<String, Value>) {
    for (source, mode_key) in [
        ("secret", "defaultMode"),
        ("configMap", "defaultMode"),
        ("projected", "defaultMode"),
        ("downwardAPI", "defaultMode"),
    ] {
        if let Some(s) = v.get_mut(source).and_then(Value::as_object_mut) {
            default(s, mode_key, json!(420));
        }
    }
    let has_source = v.keys().any(|k| k != "name");
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
}

/// `SetDefaults_PodSpec` and what it reaches (containers, probes, volumes).
pub fn spec(spec: &mut Map<String, Value>) {
    default(spec, "restartPolicy", json!("Always"));
    default(spec, "terminationGracePeriodSeconds", json!(30));
    default(spec, "dnsPolicy", json!("ClusterFirst"));
    default(spec, "securityContext", json!({}));
    default(spec, "schedulerName", json!("default-scheduler"));
    each(spec, "containers", |c| container(c, false));
    each(spec, "initContainers", |c| container(c, false));
    each(spec, "ephemeralContainers", |c| container(c, true));
    each(spec, "volumes", volume);
}

/// A Pod template (`spec.template` of workloads): its spec defaults.
pub fn template(template: &mut Map<String, Value>) {
    spec(object(template, "spec"));
}

/// What only Pods get (`SetDefaults_Pod` and the admission plugins every cluster runs: Priority,
/// DefaultTolerationSeconds, ServiceAccount's name).
pub fn pod_only(spec: &mut Map<String, Value>) {
    // Requests default to limits.
    for list in ["containers", "initContainers"] {
        each(spec, list, |c| {
            let Some(limits) = c
                .get("resources")
                .and_then(|r| r.get("limits"))
                .and_then(Value::as_object)
                .cloned()
            else {
                return;
            };
            let res = object(c, "resources");
            let requests = object(res, "requests");
            for (k, v) in limits {
                requests.entry(k).or_insert(v);
            }
        });
    }
    default(spec, "enableServiceLinks", json!(true));
    default(spec, "serviceAccountName", json!("default"));
    let sa = spec["serviceAccountName"].clone();
    default(spec, "serviceAccount", sa);
    default(spec, "priority", json!(0));
    default(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    let tolerations = spec.entry("tolerations").or_insert_with(|| json!([]));
    if let Some(list) = tolerations.as_array_mut() {
        for key in ["node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"] {
            let present = list.iter().any(|t| {
                t["effect"] == "NoExecute"
                    && (t["key"] == key || (t["key"].is_null() && t["operator"] == "Exists"))
            });
            if !present {
                list.push(json!({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}));
            }
        }
    }
}

/// `qos.GetPodQOS`: BestEffort, Burstable or Guaranteed from the containers' requests and limits.
pub fn qos_class(spec: &Value) -> &'static str {
    let mut any = false;
    let mut guaranteed = true;
    for list in ["containers", "initContainers"] {
        for c in spec.get(list).and_then(Value::as_array).into_iter().flatten() {
            let req = c.pointer("/resources/requests").and_then(Value::as_object);
            let lim = c.pointer("/resources/limits").and_then(Value::as_object);
            fn relevant<'v>(m: Option<&'v Map<String, Value>>, k: &str) -> Option<&'v Value> {
                m.and_then(|m| m.get(k)).filter(|v| !v.is_null() && *v != "0")
            }
            for k in ["cpu", "memory"] {
                if relevant(req, k).is_some() || relevant(lim, k).is_some() {
                    any = true;
                }
                match (relevant(req, k), relevant(lim, k)) {
                    (_, None) => guaranteed = false,
                    (Some(r), Some(l)) if r != l => guaranteed = false,
                    _ => {}
                }
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_pull_policy_follows_the_tag_rule() {
        assert_eq!(image_pull_policy("nginx"), "Always");
        assert_eq!(image_pull_policy("nginx:latest"), "Always");
        assert_eq!(image_pull_policy("nginx:1.25"), "IfNotPresent");
        assert_eq!(image_pull_policy("localhost:5000/app"), "Always");
        assert_eq!(image_pull_policy("localhost:5000/app:v1"), "IfNotPresent");
        assert_eq!(image_pull_policy("app@sha256:abcd"), "IfNotPresent");
    }

    #[test]
    fn qos_classes() {
        assert_eq!(qos_class(&json!({"containers": [{"name": "a"}]})), "BestEffort");
        let g = json!({"containers": [{"resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]});
        assert_eq!(qos_class(&g), "Guaranteed");
        let b = json!({"containers": [{"resources": {"requests": {"cpu": "1"}}}]});
        assert_eq!(qos_class(&b), "Burstable");
    }

    #[test]
    fn template_defaults_match_the_deployment_recording() {
        let mut t = json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}});
        template(t.as_object_mut().unwrap());
        let spec = &t["spec"];
        assert_eq!(spec["restartPolicy"], "Always");
        assert_eq!(spec["terminationGracePeriodSeconds"], 30);
        assert_eq!(spec["securityContext"], json!({}));
        let c = &spec["containers"][0];
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(c["resources"], json!({}));
        assert_eq!(c["terminationMessagePolicy"], "File");
        assert!(spec.get("enableServiceLinks").is_none());
    }
}
