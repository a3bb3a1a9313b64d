//! Defaulting of built-in kinds as kube-apiserver does it, one file per group: [`pod`] (Pod spec and
//! template defaults, QoS), [`core`] (Pods, Services, ReplicationControllers, Endpoints), [`apps`]
//! (Deployments, StatefulSets, DaemonSets, Jobs) and [`cluster_ip`] (Service address allocation).
//!
//! Two moments, as upstream: [`apply`] is decode-time defaulting (every create and update, before
//! managedFields are computed, so defaulted fields are owned by the writer), [`on_create`] is what
//! a kind's strategy sets on create after that (a Pod's status, a Service's addresses, a Job's
//! selector); [`on_update`] carries allocated values over on updates.

pub mod apps;
pub mod cluster_ip;
pub mod core;
pub mod pod;

use serde_json::Value;

use crate::Core;
use crate::error::ApiResult;
use crate::registry::ResourceInfo;

fn which(ri: &ResourceInfo) -> (&str, &str) {
    if ri.is_custom() {
        ("", "")
    } else {
        (ri.group.as_str(), ri.plural.as_str())
    }
}

/// Decode-time defaults of a built-in object (create and update).
pub fn apply(ri: &ResourceInfo, obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    match which(ri) {
        ("", "pods") => core::pod_spec(m),
        ("", "services") => core::service(m),
        ("", "replicationcontrollers") => core::replication_controller(m),
        ("", "endpoints") => core::endpoints(m),
        ("apps", "deployments") => apps::deployment(m),
        ("apps", "statefulsets") => apps::stateful_set(m),
        ("apps", "daemonsets") => apps::daemon_set(m),
        ("batch", "jobs") => apps::job(m),
        _ => {}
    }
}

/// What a create sets after admission. Runs under the store's writer lock (see `cluster_ip`).
pub fn on_create(core: &Core, ri: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    match which(ri) {
        ("", "pods") => {
            if let Some(m) = obj.as_object_mut() {
                core::pod_create(m);
            }
        }
        ("", "services") => {
            cluster_ip::allocate(core, obj)?;
            cluster_ip::allocate_node_ports(core, obj)?;
        }
        ("batch", "jobs") => apps::job_selector(obj),
        _ => {}
    }
    Ok(())
}

/// Values allocated on create that an update leaving them out keeps.
pub fn on_update(ri: &ResourceInfo, old: &Value, new: &mut Value) {
    if which(ri) == ("", "services") {
        cluster_ip::carry_over(old, new);
    }
}

/// Kinds whose DELETE answers the deleted object rather than a `Status` (`ReturnDeletedObject`).
pub fn returns_deleted_object(ri: &ResourceInfo) -> bool {
    matches!(which(ri), ("", "pods" | "services"))
}
