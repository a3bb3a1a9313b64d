//! The statuses the workload simulator writes: what the kube-controller-manager (with kubelets
//! behind it) would report for a Deployment, ReplicaSet, StatefulSet, DaemonSet or Job, computed
//! from the object alone, without I/O or clock (the current time is passed in).
//!
//! Every workload goes through two stages: [`Stage::Started`] right after a change is seen (the
//! controller observed the new generation and created the pods, which are not ready yet: ready
//! counts carried over from the previous status) and [`Stage::Settled`] after the simulated delay
//! (every pod ready, a Job complete; or, for a workload annotated with [`FAIL_ANNOTATION`], the
//! pods never become ready and a condition says why). Conditions keep their `lastTransitionTime`
//! while their status stays, so computing the same stage twice gives the same status, and the
//! simulator writes nothing when the stored status already is the target.

use serde_json::{Map, Value, json};

/// The annotation that makes a workload fail: its value is the failure message.
pub const FAIL_ANNOTATION: &str = "simulate.wasmop.io/fail";

/// The condition reason of a simulated failure where Kubernetes has no specific one (ReplicaSet,
/// StatefulSet, DaemonSet: condition `ReplicaFailure`).
pub const FAILURE_REASON: &str = "SimulatedFailure";

/// The workload kinds the simulator drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Workload {
    Deployment,
    ReplicaSet,
    StatefulSet,
    DaemonSet,
    Job,
}

impl Workload {
    pub const ALL: [Workload; 5] = [
        Workload::Deployment,
        Workload::ReplicaSet,
        Workload::StatefulSet,
        Workload::DaemonSet,
        Workload::Job,
    ];

    /// The storage resource (`group/plural`, as in [`crate::store::Key`]).
    pub fn resource(self) -> &'static str {
        match self {
            Workload::Deployment => "apps/deployments",
            Workload::ReplicaSet => "apps/replicasets",
            Workload::StatefulSet => "apps/statefulsets",
            Workload::DaemonSet => "apps/daemonsets",
            Workload::Job => "batch/jobs",
        }
    }

    pub fn of_resource(resource: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.resource() == resource)
    }
}

/// How far a change has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The change is observed, the pods exist but are not ready yet.
    Started,
    /// Every pod is ready (or, for a failing workload, will never be).
    Settled,
}

/// The failure message a workload is annotated with, if any.
pub fn failure(obj: &Value) -> Option<&str> {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(FAIL_ANNOTATION))
        .and_then(Value::as_str)
}

/// Whether a Job has finished (Complete or Failed): a finished Job never changes again.
pub fn job_finished(obj: &Value) -> bool {
    conditions(obj)
        .iter()
        .any(|c| (c["type"] == "Complete" || c["type"] == "Failed") && c["status"] == "True")
}

/// Whether a Job is suspended (`spec.suspend`): it runs no pods, and the simulator leaves it alone.
pub fn job_suspended(obj: &Value) -> bool {
    obj.pointer("/spec/suspend").and_then(Value::as_bool) == Some(true)
}

/// The status `kind` has at `stage`. `nodes` is how many nodes a DaemonSet runs on; `now` is the
/// RFC 3339 time stamped on what changes.
pub fn status(kind: Workload, obj: &Value, stage: Stage, nodes: u64, now: &str) -> Value {
    let old = obj.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut new = match kind {
        Workload::Deployment => deployment(obj, &old, stage),
        Workload::ReplicaSet => replica_set(obj, &old, stage),
        Workload::StatefulSet => stateful_set(obj, &old, stage),
        Workload::DaemonSet => daemon_set(obj, &old, stage, nodes),
        Workload::Job => job(obj, &old, stage, now),
    };
    stamp_conditions(&mut new, &old, now);
    new
}

fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation")
        .and_then(Value::as_i64)
        .unwrap_or(1)
}

fn name(obj: &Value) -> &str {
    crate::admission::name_of(obj)
}

fn int(v: &Value, pointer: &str) -> Option<i64> {
    v.pointer(pointer).and_then(Value::as_i64)
}

fn conditions(obj: &Value) -> Vec<Value> {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Sets `key` to `n`, or leaves it out when it is zero and the Go field is `omitempty`.
fn count(status: &mut Map<String, Value>, key: &str, n: i64, omit_zero: bool) {
    if n != 0 || !omit_zero {
        status.insert(key.into(), json!(n));
    }
}

/// What stays ready from before a change: the old ready count, at most the new desired count, and
/// none while the workload is failing.
fn carried(obj: &Value, old: &Value, field: &str, desired: i64) -> i64 {
    if failure(obj).is_some() {
        return 0;
    }
    old.get(field)
        .and_then(Value::as_i64)
        .unwrap_or(0)
        .clamp(0, desired)
}

/// The ready count at `stage`.
fn ready(obj: &Value, old: &Value, field: &str, desired: i64, stage: Stage) -> i64 {
    match (stage, failure(obj)) {
        (Stage::Settled, None) => desired,
        (Stage::Settled, Some(_)) => 0,
        (Stage::Started, _) => carried(obj, old, field, desired),
    }
}

fn condition(type_: &str, status: bool, reason: &str, message: String) -> Value {
    json!({
        "type": type_,
        "status": if status { "True" } else { "False" },
        "reason": reason,
        "message": message,
    })
}

/// The `ReplicaFailure` condition of a failing ReplicaSet, StatefulSet or DaemonSet, once settled.
fn replica_failure(obj: &Value, stage: Stage) -> Option<Value> {
    match (stage, failure(obj)) {
        (Stage::Settled, Some(message)) => Some(condition(
            "ReplicaFailure",
            true,
            FAILURE_REASON,
            message.to_string(),
        )),
        _ => None,
    }
}

/// Gives every new condition its time stamps: kept from the old condition of the same type while
/// its status (for `lastUpdateTime`: status, reason and message) stays, `now` otherwise. Only the
/// stamps the kind uses are set (`lastUpdateTime` for Deployments, `lastProbeTime` for Jobs).
fn stamp_conditions(new: &mut Value, old: &Value, now: &str) {
    let Some(list) = new.get_mut("conditions").and_then(Value::as_array_mut) else {
        return;
    };
    let old = old
        .get("conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for c in list.iter_mut() {
        let before = old.iter().find(|o| o["type"] == c["type"]);
        let same_status = before.is_some_and(|o| o["status"] == c["status"]);
        let unchanged =
            same_status && before.is_some_and(|o| o["reason"] == c["reason"] && o["message"] == c["message"]);
        let keep = |field: &str, keep: bool| match before.and_then(|o| o.get(field)) {
            Some(t) if keep => t.clone(),
            _ => json!(now),
        };
        let transition = keep("lastTransitionTime", same_status);
        for stamp in ["lastUpdateTime", "lastProbeTime"] {
            if c.get(stamp).is_some() {
                c[stamp] = keep(stamp, unchanged);
            }
        }
        c["lastTransitionTime"] = transition;
    }
}

/// A stable short hash of a pod template, in the alphabet Kubernetes uses for pod-template-hash
/// and controller revisions (no vowels, no look-alike digits), so names read like real ones.
fn template_hash(obj: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let text = obj
        .pointer("/spec/template")
        .map(Value::to_string)
        .unwrap_or_default();
    // FNV-1a: stable across runs and platforms.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let mut out = String::new();
    for _ in 0..10 {
        out.push(char::from(ALPHABET[(h % ALPHABET.len() as u64) as usize]));
        h /= ALPHABET.len() as u64;
    }
    out
}

/// `maxUnavailable` of a rolling update (an integer or a percentage rounded down; default 25%).
fn max_unavailable(obj: &Value, replicas: i64) -> i64 {
    let v = obj.pointer("/spec/strategy/rollingUpdate/maxUnavailable");
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(0),
        Some(Value::String(s)) if s.ends_with('%') => {
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(25);
            replicas * pct / 100
        }
        _ if obj.pointer("/spec/strategy/type") == Some(&json!("Recreate")) => replicas,
        _ => replicas * 25 / 100,
    }
}

fn deployment(obj: &Value, old: &Value, stage: Stage) -> Value {
    let replicas = int(obj, "/spec/replicas").unwrap_or(1);
    let ready = ready(obj, old, "readyReplicas", replicas, stage);
    let available = ready;
    let rs = format!("{}-{}", name(obj), template_hash(obj));
    let mut s = Map::new();
    s.insert("observedGeneration".into(), json!(generation(obj)));
    count(&mut s, "replicas", replicas, true);
    count(&mut s, "updatedReplicas", replicas, true);
    count(&mut s, "readyReplicas", ready, true);
    count(&mut s, "availableReplicas", available, true);
    count(&mut s, "unavailableReplicas", replicas - available, true);
    let minimum = available >= replicas - max_unavailable(obj, replicas);
    let available_condition = if minimum {
        condition(
            "Available",
            true,
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.".into(),
        )
    } else {
        condition(
            "Available",
            false,
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.".into(),
        )
    };
    let progressing = match (stage, failure(obj)) {
        (Stage::Settled, Some(message)) => condition(
            "Progressing",
            false,
            "ProgressDeadlineExceeded",
            format!("ReplicaSet \"{rs}\" has timed out progressing: {message}"),
        ),
        (Stage::Settled, None) => condition(
            "Progressing",
            true,
            "NewReplicaSetAvailable",
            format!("ReplicaSet \"{rs}\" has successfully progressed."),
        ),
        (Stage::Started, _) => condition(
            "Progressing",
            true,
            "ReplicaSetUpdated",
            format!("ReplicaSet \"{rs}\" is progressing."),
        ),
    };
    let mut conditions = vec![available_condition, progressing];
    for c in &mut conditions {
        c["lastUpdateTime"] = Value::Null;
    }
    s.insert("conditions".into(), Value::Array(conditions));
    Value::Object(s)
}

fn replica_set(obj: &Value, old: &Value, stage: Stage) -> Value {
    let replicas = int(obj, "/spec/replicas").unwrap_or(1);
    let ready = ready(obj, old, "readyReplicas", replicas, stage);
    let mut s = Map::new();
    count(&mut s, "replicas", replicas, false);
    count(&mut s, "fullyLabeledReplicas", replicas, true);
    count(&mut s, "readyReplicas", ready, true);
    count(&mut s, "availableReplicas", ready, true);
    s.insert("observedGeneration".into(), json!(generation(obj)));
    if let Some(c) = replica_failure(obj, stage) {
        s.insert("conditions".into(), json!([c]));
    }
    Value::Object(s)
}

fn stateful_set(obj: &Value, old: &Value, stage: Stage) -> Value {
    let replicas = int(obj, "/spec/replicas").unwrap_or(1);
    let ready = ready(obj, old, "readyReplicas", replicas, stage);
    let revision = format!("{}-{}", name(obj), template_hash(obj));
    let mut s = Map::new();
    s.insert("observedGeneration".into(), json!(generation(obj)));
    count(&mut s, "replicas", replicas, false);
    count(&mut s, "readyReplicas", ready, true);
    count(&mut s, "currentReplicas", replicas, true);
    count(&mut s, "updatedReplicas", replicas, true);
    s.insert("currentRevision".into(), json!(revision));
    s.insert("updateRevision".into(), json!(revision));
    s.insert("collisionCount".into(), json!(0));
    count(&mut s, "availableReplicas", ready, false);
    if let Some(c) = replica_failure(obj, stage) {
        s.insert("conditions".into(), json!([c]));
    }
    Value::Object(s)
}

fn daemon_set(obj: &Value, old: &Value, stage: Stage, nodes: u64) -> Value {
    let desired = i64::try_from(nodes).unwrap_or(i64::MAX);
    let ready = ready(obj, old, "numberReady", desired, stage);
    let mut s = Map::new();
    count(&mut s, "currentNumberScheduled", desired, false);
    count(&mut s, "numberMisscheduled", 0, false);
    count(&mut s, "desiredNumberScheduled", desired, false);
    count(&mut s, "numberReady", ready, false);
    s.insert("observedGeneration".into(), json!(generation(obj)));
    count(&mut s, "updatedNumberScheduled", desired, true);
    count(&mut s, "numberAvailable", ready, true);
    count(&mut s, "numberUnavailable", desired - ready, true);
    if let Some(c) = replica_failure(obj, stage) {
        s.insert("conditions".into(), json!([c]));
    }
    Value::Object(s)
}

fn job(obj: &Value, old: &Value, stage: Stage, now: &str) -> Value {
    // Without completions, a Job is done when any pod succeeds.
    let completions = int(obj, "/spec/completions").unwrap_or(1).max(0);
    let parallelism = int(obj, "/spec/parallelism").unwrap_or(1).max(0);
    let backoff_limit = int(obj, "/spec/backoffLimit").unwrap_or(6).max(0);
    let start = old.get("startTime").cloned().unwrap_or_else(|| json!(now));
    let mut s = Map::new();
    s.insert("startTime".into(), start);
    match (stage, failure(obj)) {
        (Stage::Started, _) => {
            count(&mut s, "active", parallelism.min(completions), true);
        }
        (Stage::Settled, None) => {
            let message = "Reached expected number of succeeded pods";
            s.insert(
                "completionTime".into(),
                old.get("completionTime").cloned().unwrap_or_else(|| json!(now)),
            );
            count(&mut s, "succeeded", completions, true);
            let mut conditions = vec![
                condition("SuccessCriteriaMet", true, "CompletionsReached", message.into()),
                condition("Complete", true, "CompletionsReached", message.into()),
            ];
            for c in &mut conditions {
                c["lastProbeTime"] = Value::Null;
            }
            s.insert("conditions".into(), Value::Array(conditions));
        }
        (Stage::Settled, Some(why)) => {
            let message = format!("Job has reached the specified backoff limit: {why}");
            count(&mut s, "failed", backoff_limit + 1, true);
            let mut conditions = vec![
                condition("FailureTarget", true, "BackoffLimitExceeded", message.clone()),
                condition("Failed", true, "BackoffLimitExceeded", message),
            ];
            for c in &mut conditions {
                c["lastProbeTime"] = Value::Null;
            }
            s.insert("conditions".into(), Value::Array(conditions));
        }
    }
    s.insert("ready".into(), json!(0));
    s.insert("terminating".into(), json!(0));
    s.insert("uncountedTerminatedPods".into(), json!({}));
    Value::Object(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: &str = "2026-01-01T00:00:00Z";
    const T1: &str = "2026-01-01T00:00:05Z";

    fn with_status(mut obj: Value, status: Value) -> Value {
        obj["status"] = status;
        obj
    }

    fn deploy(replicas: i64, generation: i64) -> Value {
        json!({"metadata": {"name": "web", "generation": generation},
               "spec": {"replicas": replicas, "template": {"metadata": {"labels": {"app": "web"}}}}})
    }

    fn cond<'a>(status: &'a Value, t: &str) -> &'a Value {
        status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap_or_else(|| panic!("no {t} in {status}"))
    }

    #[test]
    fn a_deployment_progresses_then_becomes_available() {
        let d = deploy(3, 1);
        let started = status(Workload::Deployment, &d, Stage::Started, 1, T0);
        assert_eq!(started["observedGeneration"], 1);
        assert_eq!(started["replicas"], 3);
        assert_eq!(started["unavailableReplicas"], 3);
        assert!(
            started.get("readyReplicas").is_none(),
            "zero counts are left out: {started}"
        );
        assert_eq!(
            cond(&started, "Available")["reason"],
            "MinimumReplicasUnavailable"
        );
        assert_eq!(cond(&started, "Progressing")["reason"], "ReplicaSetUpdated");

        let d = with_status(d, started);
        let settled = status(Workload::Deployment, &d, Stage::Settled, 1, T1);
        for field in [
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
        ] {
            assert_eq!(settled[field], 3, "{field}: {settled}");
        }
        assert!(settled.get("unavailableReplicas").is_none());
        let available = cond(&settled, "Available");
        assert_eq!(
            (&available["status"], &available["reason"]),
            (&json!("True"), &json!("MinimumReplicasAvailable"))
        );
        assert_eq!(available["lastTransitionTime"], T1);
        let progressing = cond(&settled, "Progressing");
        assert_eq!(progressing["reason"], "NewReplicaSetAvailable");
        assert!(
            progressing["message"]
                .as_str()
                .unwrap()
                .starts_with("ReplicaSet \"web-")
        );
        // Progressing stayed True: its transition time is kept, its update time moves.
        assert_eq!(progressing["lastTransitionTime"], T0);
        assert_eq!(progressing["lastUpdateTime"], T1);
    }

    #[test]
    fn computing_a_stage_again_gives_the_same_status() {
        let d = deploy(2, 1);
        let settled = status(Workload::Deployment, &d, Stage::Settled, 1, T0);
        let again = status(
            Workload::Deployment,
            &with_status(d, settled.clone()),
            Stage::Settled,
            1,
            T1,
        );
        assert_eq!(again, settled);
    }

    #[test]
    fn scaling_keeps_the_ready_pods_until_the_new_ones_are_ready() {
        let d = deploy(2, 1);
        let settled = status(Workload::Deployment, &d, Stage::Settled, 1, T0);
        let scaled = with_status(deploy(4, 2), settled);
        let started = status(Workload::Deployment, &scaled, Stage::Started, 1, T1);
        assert_eq!(started["observedGeneration"], 2);
        assert_eq!(started["readyReplicas"], 2);
        assert_eq!(started["unavailableReplicas"], 2);
        // 2 of 4 available, 25% may be unavailable: below the minimum.
        assert_eq!(cond(&started, "Available")["status"], "False");
        let settled = status(
            Workload::Deployment,
            &with_status(scaled, started),
            Stage::Settled,
            1,
            T1,
        );
        assert_eq!(settled["availableReplicas"], 4);
        let down = status(
            Workload::Deployment,
            &with_status(deploy(1, 3), settled),
            Stage::Started,
            1,
            T1,
        );
        assert_eq!(down["readyReplicas"], 1, "never more ready than desired");
    }

    #[test]
    fn a_failing_deployment_exceeds_its_progress_deadline() {
        let mut d = deploy(2, 1);
        d["metadata"]["annotations"] = json!({FAIL_ANNOTATION: "image pull failed"});
        let settled = status(Workload::Deployment, &d, Stage::Settled, 1, T0);
        assert!(settled.get("readyReplicas").is_none());
        assert_eq!(settled["unavailableReplicas"], 2);
        let p = cond(&settled, "Progressing");
        assert_eq!(
            (&p["status"], &p["reason"]),
            (&json!("False"), &json!("ProgressDeadlineExceeded"))
        );
        assert!(p["message"].as_str().unwrap().ends_with("image pull failed"));
        assert_eq!(cond(&settled, "Available")["status"], "False");
    }

    #[test]
    fn a_statefulset_reports_revisions_and_a_failure_condition() {
        let sts = json!({"metadata": {"name": "db", "generation": 1}, "spec": {"replicas": 3, "template": {}},
                         "status": {"replicas": 0, "availableReplicas": 0}});
        let started = status(Workload::StatefulSet, &sts, Stage::Started, 1, T0);
        assert_eq!(
            (started["replicas"].clone(), started["availableReplicas"].clone()),
            (json!(3), json!(0))
        );
        assert!(started.get("readyReplicas").is_none());
        assert_eq!(started["currentRevision"], started["updateRevision"]);
        assert!(started["currentRevision"].as_str().unwrap().starts_with("db-"));
        let settled = status(Workload::StatefulSet, &sts, Stage::Settled, 1, T0);
        assert_eq!(
            (
                settled["readyReplicas"].clone(),
                settled["availableReplicas"].clone()
            ),
            (json!(3), json!(3))
        );
        assert!(settled.get("conditions").is_none());

        let mut failing = sts.clone();
        failing["metadata"]["annotations"] = json!({FAIL_ANNOTATION: "disk full"});
        let failed = status(Workload::StatefulSet, &failing, Stage::Settled, 1, T0);
        assert!(failed.get("readyReplicas").is_none());
        let c = cond(&failed, "ReplicaFailure");
        assert_eq!(
            (&c["status"], &c["reason"], &c["message"]),
            (&json!("True"), &json!(FAILURE_REASON), &json!("disk full"))
        );
        assert_eq!(c["lastTransitionTime"], T0);
        assert!(c.get("lastUpdateTime").is_none());
    }

    #[test]
    fn a_daemonset_runs_one_pod_per_node() {
        let ds = json!({"metadata": {"name": "agent", "generation": 2}, "spec": {"template": {}}});
        let s = status(Workload::DaemonSet, &ds, Stage::Settled, 3, T0);
        for field in [
            "desiredNumberScheduled",
            "currentNumberScheduled",
            "numberReady",
            "numberAvailable",
            "updatedNumberScheduled",
        ] {
            assert_eq!(s[field], 3, "{field}");
        }
        assert_eq!(s["numberMisscheduled"], 0);
        assert_eq!(s["observedGeneration"], 2);
        let started = status(Workload::DaemonSet, &ds, Stage::Started, 3, T0);
        assert_eq!(
            (
                started["numberReady"].clone(),
                started["numberUnavailable"].clone()
            ),
            (json!(0), json!(3))
        );
    }

    #[test]
    fn a_replicaset_becomes_ready() {
        let rs = json!({"metadata": {"name": "web-1", "generation": 1}, "spec": {"replicas": 2}});
        let s = status(Workload::ReplicaSet, &rs, Stage::Settled, 1, T0);
        assert_eq!(
            (
                s["replicas"].clone(),
                s["readyReplicas"].clone(),
                s["availableReplicas"].clone()
            ),
            (json!(2), json!(2), json!(2))
        );
    }

    #[test]
    fn a_job_completes_with_its_completions() {
        let job = json!({"metadata": {"name": "migrate", "generation": 1},
                         "spec": {"completions": 3, "parallelism": 2, "backoffLimit": 6}, "status": {}});
        let started = status(Workload::Job, &job, Stage::Started, 1, T0);
        assert_eq!(
            (started["startTime"].clone(), started["active"].clone()),
            (json!(T0), json!(2))
        );
        assert!(!job_finished(&with_status(job.clone(), started.clone())));
        let job = with_status(job, started);
        let done = status(Workload::Job, &job, Stage::Settled, 1, T1);
        assert_eq!(done["succeeded"], 3);
        assert_eq!(done["startTime"], T0);
        assert_eq!(done["completionTime"], T1);
        assert!(done.get("active").is_none());
        let c = cond(&done, "Complete");
        assert_eq!(
            (&c["status"], &c["reason"]),
            (&json!("True"), &json!("CompletionsReached"))
        );
        assert_eq!(c["lastProbeTime"], T1);
        assert!(job_finished(&with_status(job, done)));
    }

    #[test]
    fn a_failing_job_exceeds_its_backoff_limit() {
        let job = json!({"metadata": {"name": "migrate", "annotations": {FAIL_ANNOTATION: "exit code 1"}},
                         "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 2}});
        let failed = status(Workload::Job, &job, Stage::Settled, 1, T0);
        assert_eq!(failed["failed"], 3);
        assert!(failed.get("completionTime").is_none() && failed.get("succeeded").is_none());
        let c = cond(&failed, "Failed");
        assert_eq!(
            (&c["status"], &c["reason"]),
            (&json!("True"), &json!("BackoffLimitExceeded"))
        );
        assert!(c["message"].as_str().unwrap().contains("exit code 1"));
        assert!(job_finished(&with_status(job, failed)));
    }

    #[test]
    fn template_hashes_are_stable_and_follow_the_template() {
        let a = deploy(1, 1);
        let mut b = deploy(1, 1);
        assert_eq!(template_hash(&a), template_hash(&b));
        b["spec"]["template"]["metadata"]["labels"]["app"] = json!("other");
        assert_ne!(template_hash(&a), template_hash(&b));
        assert!(
            template_hash(&a)
                .chars()
                .all(|c| "bcdfghjklmnpqrstvwxz2456789".contains(c))
        );
    }
}
