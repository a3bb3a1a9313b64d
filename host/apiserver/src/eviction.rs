//! `pods/eviction` (policy/v1 `Eviction`) as kube-apiserver's eviction REST answers it: Pods that
//! cannot be disrupted further (pending, terminal, already terminating) are deleted at once; otherwise
//! the one PodDisruptionBudget selecting the Pod decides. No disruption controller runs here, so the
//! budget's status (`desiredHealthy`, `currentHealthy`, `disruptionsAllowed`) is computed on the spot
//! from its spec and the matching Pods' readiness, the way the disruption controller computes it.

use serde_json::{Value, json};
use wasmop_apimachinery::selector::LabelSelector;

use crate::Core;
use crate::admission::{is_terminating, meta, name_of};
use crate::error::{ApiError, ApiResult};
use crate::objects::{self, DeleteOptions};
use crate::registry::ResourceInfo;

/// A budget's status as the disruption controller would compute it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub expected: i64,
    pub desired_healthy: i64,
    pub current_healthy: i64,
    pub disruptions_allowed: i64,
}

/// Whether a Pod has the `Ready` condition `True`.
pub fn is_ready(pod: &Value) -> bool {
    pod.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| c["type"] == "Ready" && c["status"] == "True"))
}

/// `intstr.GetScaledValueFromIntOrPercent(v, total, roundUp)`.
fn scaled(v: &Value, total: i64, round_up: bool) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            let pct: i64 = s.strip_suffix('%')?.parse().ok()?;
            let x = pct * total;
            Some(if round_up { (x + 99) / 100 } else { x / 100 })
        }
        _ => None,
    }
}

/// The disruption controller's arithmetic over the Pods a budget selects.
pub fn budget(pdb: &Value, pods: &[&Value]) -> Budget {
    let spec = &pdb["spec"];
    let count = pods.len() as i64;
    let (expected, desired) = if let Some(max) = spec.get("maxUnavailable").filter(|v| !v.is_null()) {
        let max = scaled(max, count, true).unwrap_or(0);
        (count, (count - max).max(0))
    } else if let Some(min) = spec.get("minAvailable").filter(|v| !v.is_null()) {
        (count, scaled(min, count, true).unwrap_or(0))
    } else {
        (0, 0)
    };
    let healthy = pods.iter().filter(|p| !is_terminating(p) && is_ready(p)).count() as i64;
    let allowed = if expected <= 0 {
        0
    } else {
        (healthy - desired).max(0)
    };
    Budget {
        expected,
        desired_healthy: desired,
        current_healthy: healthy,
        disruptions_allowed: allowed,
    }
}

/// Pending, terminal and terminating Pods are deleted without asking any budget.
fn can_ignore_budget(pod: &Value) -> bool {
    matches!(
        pod.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed" | "Pending") | None
    ) || is_terminating(pod)
}

fn success(code: u16) -> (u16, Value) {
    (
        code,
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}),
    )
}

/// POST `pods/{name}/eviction`: the answer's HTTP code and `Status` body.
pub fn evict(
    core: &Core,
    pods: &ResourceInfo,
    namespace: &str,
    name: &str,
    body: &Value,
) -> ApiResult<(u16, Value)> {
    let body_name = body
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if body_name != name {
        return Err(ApiError::bad_request(
            "name in URL does not match name in Eviction object",
        ));
    }
    let mut delete = DeleteOptions::default();
    if let Some(opts) = body.get("deleteOptions").filter(|o| o.is_object()) {
        delete.merge_body(opts);
    }
    let pod = objects::get(core, pods, namespace, name)?;
    if can_ignore_budget(&pod) {
        objects::delete(core, pods, namespace, name, &delete)?;
        return Ok(success(201));
    }
    let labels = meta(&pod)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object);
    let (_, pdbs) = core.store.list("policy/poddisruptionbudgets", Some(namespace));
    let matching: Vec<&Value> = pdbs
        .iter()
        .map(|p| p.as_ref())
        .filter(|p| {
            let sel = p.pointer("/spec/selector").cloned().unwrap_or(Value::Null);
            LabelSelector::from_json(&sel).is_ok_and(|s| !s.is_empty() && s.matches(labels))
        })
        .collect();
    if matching.len() > 1 {
        return Ok((
            500,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.",
                "code": 500}),
        ));
    }
    if let Some(pdb) = matching.first() {
        let (_, all_pods) = core.store.list(&pods.storage_key(), Some(namespace));
        let sel = LabelSelector::from_json(pdb.pointer("/spec/selector").unwrap_or(&Value::Null))
            .unwrap_or_else(|_| LabelSelector::nothing());
        let selected: Vec<&Value> = all_pods
            .iter()
            .map(|p| p.as_ref())
            .filter(|p| sel.matches(meta(p).and_then(|m| m.get("labels")).and_then(Value::as_object)))
            .collect();
        let b = budget(pdb, &selected);
        let always_allow = pdb
            .pointer("/spec/unhealthyPodEvictionPolicy")
            .and_then(Value::as_str)
            == Some("AlwaysAllow");
        let unhealthy_may_go = !is_ready(&pod)
            && (always_allow || (b.current_healthy >= b.desired_healthy && b.desired_healthy > 0));
        if !unhealthy_may_go && b.disruptions_allowed == 0 {
            let mut e = ApiError::new(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
            );
            e.details = Some(json!({"causes": [{
                "reason": "DisruptionBudget",
                "message": format!(
                    "The disruption budget {} needs {} healthy pods and has {} currently",
                    name_of(pdb), b.desired_healthy, b.current_healthy
                ),
            }]}));
            return Err(e);
        }
    }
    objects::delete(core, pods, namespace, name, &delete)?;
    Ok(success(201))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(ready: bool) -> Value {
        json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}})
    }

    #[test]
    fn min_available_and_max_unavailable_as_the_controller_computes_them() {
        let (a, b, c) = (pod(true), pod(true), pod(false));
        let pods = [&a, &b, &c];
        let min2 = json!({"spec": {"minAvailable": 2}});
        assert_eq!(
            budget(&min2, &pods),
            Budget {
                expected: 3,
                desired_healthy: 2,
                current_healthy: 2,
                disruptions_allowed: 0
            }
        );
        let pct = json!({"spec": {"minAvailable": "50%"}});
        assert_eq!(budget(&pct, &pods).desired_healthy, 2);
        assert_eq!(budget(&pct, &pods).disruptions_allowed, 0);
        let max1 = json!({"spec": {"maxUnavailable": 1}});
        assert_eq!(budget(&max1, &pods).desired_healthy, 2);
        let max_pct = json!({"spec": {"maxUnavailable": "34%"}});
        assert_eq!(budget(&max_pct, &pods).desired_healthy, 1);
        assert_eq!(budget(&max_pct, &pods).disruptions_allowed, 1);
        assert_eq!(budget(&json!({"spec": {}}), &pods).disruptions_allowed, 0);
    }

    #[test]
    fn pending_pods_ignore_budgets() {
        assert!(can_ignore_budget(&json!({"status": {"phase": "Pending"}})));
        assert!(!can_ignore_budget(&pod(true)));
    }
}
