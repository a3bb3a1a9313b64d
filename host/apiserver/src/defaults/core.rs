//! Defaults of core/v1 kinds as kube-apiserver sets them: Pods (spec defaults, admission-set fields,
//! `status.phase: Pending` with the QoS class), Services (type, session affinity, traffic policy,
//! ports), ReplicationControllers, Endpoints.

use serde_json::{Map, Value, json};

use super::pod::{self, default, each, object};

/// A new Pod: spec defaults, then the status kube-apiserver gives every created Pod.
pub fn pod_create(obj: &mut Map<String, Value>) {
    pod_spec(obj);
    let qos = pod::qos_class(obj.get("spec").unwrap_or(&Value::Null));
    obj.insert("status".into(), json!({"phase": "Pending", "qosClass": qos}));
}

/// Spec defaults of a Pod (on every write).
pub fn pod_spec(obj: &mut Map<String, Value>) {
    let spec = object(obj, "spec");
    pod::spec(spec);
    pod::pod_only(spec);
}

/// `SetDefaults_Service` (addresses are allocated separately, see `cluster_ip`).
pub fn service(obj: &mut Map<String, Value>) {
    let spec = object(obj, "spec");
    default(spec, "type", json!("ClusterIP"));
    let kind = spec["type"].as_str().unwrap_or("").to_string();
    default(spec, "sessionAffinity", json!("None"));
    if kind != "ExternalName" {
        default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if kind == "NodePort" || kind == "LoadBalancer" {
        default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if kind == "LoadBalancer" {
        default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    each(spec, "ports", |p| {
        default(p, "protocol", json!("TCP"));
        let unset = p
            .get("targetPort")
            .is_none_or(|t| t.is_null() || *t == json!(0) || *t == json!(""));
        if unset && let Some(port) = p.get("port").cloned() {
            p.insert("targetPort".into(), port);
        }
    });
    if obj.get("status").is_none_or(Value::is_null) {
        obj.insert("status".into(), json!({"loadBalancer": {}}));
    }
}

/// `SetDefaults_ReplicationController`: selector and labels from the template, one replica.
pub fn replication_controller(obj: &mut Map<String, Value>) {
    let template_labels = obj
        .get("spec")
        .and_then(|s| s.pointer("/template/metadata/labels"))
        .filter(|l| l.as_object().is_some_and(|m| !m.is_empty()))
        .cloned();
    if let Some(labels) = &template_labels {
        let meta = object(obj, "metadata");
        if meta
            .get("labels")
            .is_none_or(|l| l.as_object().is_none_or(Map::is_empty))
        {
            meta.insert("labels".into(), labels.clone());
        }
    }
    let spec = object(obj, "spec");
    if let Some(labels) = template_labels
        && spec
            .get("selector")
            .is_none_or(|s| s.as_object().is_none_or(Map::is_empty))
    {
        spec.insert("selector".into(), labels);
    }
    default(spec, "replicas", json!(1));
    if let Some(t) = spec.get_mut("template").and_then(Value::as_object_mut) {
        pod::template(t);
    }
    if obj.get("status").is_none_or(Value::is_null) {
        obj.insert("status".into(), json!({"replicas": 0}));
    }
}

/// Endpoints ports default to TCP.
pub fn endpoints(obj: &mut Map<String, Value>) {
    each(obj, "subsets", |s| {
        each(s, "ports", |p| default(p, "protocol", json!("TCP")))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_pod_is_pending_with_its_defaults() {
        let mut p = json!({"spec": {"containers": [{"name": "c", "image": "busybox"}]}, "status": {"phase": "Running"}});
        pod_create(p.as_object_mut().unwrap());
        assert_eq!(p["status"], json!({"phase": "Pending", "qosClass": "BestEffort"}));
        assert_eq!(p["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(p["spec"]["enableServiceLinks"], true);
        assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(p["spec"]["tolerations"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn service_ports_get_protocol_and_target_port() {
        let mut s = json!({"spec": {"ports": [{"port": 80}, {"port": 443, "targetPort": "https"}]}});
        service(s.as_object_mut().unwrap());
        assert_eq!(s["spec"]["type"], "ClusterIP");
        assert_eq!(s["spec"]["sessionAffinity"], "None");
        assert_eq!(s["spec"]["internalTrafficPolicy"], "Cluster");
        assert_eq!(
            s["spec"]["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(s["spec"]["ports"][1]["targetPort"], "https");
    }
}
