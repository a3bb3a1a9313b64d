//! Defaults of workload kinds (apps/v1 Deployment, StatefulSet, DaemonSet; batch/v1 Job) as
//! kube-apiserver sets them (see `08-patch/00-create-deployment.http`).

use serde_json::{Map, Value, json};

use super::pod::{self, default, object};

fn template(spec: &mut Map<String, Value>) {
    if let Some(t) = spec.get_mut("template").and_then(Value::as_object_mut) {
        pod::template(t);
    }
}

fn empty_status(obj: &mut Map<String, Value>, status: Value) {
    if obj.get("status").is_none_or(Value::is_null) {
        obj.insert("status".into(), status);
    }
}

/// `SetDefaults_Deployment`.
pub fn deployment(obj: &mut Map<String, Value>) {
    let spec = object(obj, "spec");
    default(spec, "replicas", json!(1));
    let strategy = object(spec, "strategy");
    default(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        let ru = object(strategy, "rollingUpdate");
        default(ru, "maxUnavailable", json!("25%"));
        default(ru, "maxSurge", json!("25%"));
    }
    default(spec, "revisionHistoryLimit", json!(10));
    default(spec, "progressDeadlineSeconds", json!(600));
    template(spec);
    empty_status(obj, json!({}));
}

/// `SetDefaults_StatefulSet`.
pub fn stateful_set(obj: &mut Map<String, Value>) {
    let spec = object(obj, "spec");
    default(spec, "replicas", json!(1));
    default(spec, "podManagementPolicy", json!("OrderedReady"));
    let strategy = object(spec, "updateStrategy");
    default(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        let ru = object(strategy, "rollingUpdate");
        default(ru, "partition", json!(0));
    }
    default(spec, "revisionHistoryLimit", json!(10));
    default(
        spec,
        "persistentVolumeClaimRetentionPolicy",
        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
    );
    if let Some(claims) = spec.get_mut("volumeClaimTemplates").and_then(Value::as_array_mut) {
        for c in claims.iter_mut().filter_map(Value::as_object_mut) {
            default(object(c, "spec"), "volumeMode", json!("Filesystem"));
            default(c, "status", json!({"phase": "Pending"}));
        }
    }
    template(spec);
    empty_status(obj, json!({"replicas": 0, "availableReplicas": 0}));
}

/// `SetDefaults_DaemonSet`.
pub fn daemon_set(obj: &mut Map<String, Value>) {
    let spec = object(obj, "spec");
    let strategy = object(spec, "updateStrategy");
    default(strategy, "type", json!("RollingUpdate"));
    if strategy["type"] == "RollingUpdate" {
        let ru = object(strategy, "rollingUpdate");
        default(ru, "maxUnavailable", json!(1));
        default(ru, "maxSurge", json!(0));
    }
    default(spec, "revisionHistoryLimit", json!(10));
    template(spec);
    empty_status(
        obj,
        json!({"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0, "numberReady": 0}),
    );
}

/// `SetDefaults_Job` (the generated selector needs the uid, see [`job_selector`]).
pub fn job(obj: &mut Map<String, Value>) {
    let spec = object(obj, "spec");
    let both_unset = spec.get("parallelism").is_none_or(Value::is_null)
        && spec.get("completions").is_none_or(Value::is_null);
    if both_unset {
        spec.insert("completions".into(), json!(1));
        spec.insert("parallelism".into(), json!(1));
    }
    default(spec, "parallelism", json!(1));
    default(spec, "backoffLimit", json!(6));
    default(spec, "completionMode", json!("NonIndexed"));
    default(spec, "suspend", json!(false));
    template(spec);
    empty_status(obj, json!({}));
}

/// The selector and template labels kube-apiserver generates for a Job without `manualSelector`.
pub fn job_selector(obj: &mut Value) {
    let uid = obj
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let name = crate::admission::name_of(obj).to_string();
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if spec.get("manualSelector") == Some(&json!(true)) || uid.is_empty() {
        return;
    }
    if spec.get("selector").is_none_or(Value::is_null) {
        spec.insert(
            "selector".into(),
            json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
        );
    }
    let labels = object(object(object(spec, "template"), "metadata"), "labels");
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels.entry(k).or_insert_with(|| json!(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_defaults_match_the_recording() {
        let mut d = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "a", "image": "nginx:1.25"}]}}}});
        deployment(d.as_object_mut().unwrap());
        assert_eq!(
            d["spec"]["strategy"],
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}})
        );
        assert_eq!(d["spec"]["revisionHistoryLimit"], 10);
        assert_eq!(d["spec"]["progressDeadlineSeconds"], 600);
        assert_eq!(d["spec"]["replicas"], 2);
        assert_eq!(d["status"], json!({}));
        assert_eq!(d["spec"]["template"]["spec"]["dnsPolicy"], "ClusterFirst");
    }

    #[test]
    fn jobs_get_a_generated_selector() {
        let mut j = json!({"metadata": {"name": "j", "uid": "u1"}, "spec": {"template": {"spec": {"containers": []}}}});
        job(j.as_object_mut().unwrap());
        job_selector(&mut j);
        assert_eq!(j["spec"]["completions"], 1);
        assert_eq!(
            j["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
            "u1"
        );
        assert_eq!(j["spec"]["template"]["metadata"]["labels"]["job-name"], "j");
    }
}
