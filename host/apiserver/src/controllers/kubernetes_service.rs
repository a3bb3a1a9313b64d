//! The `default/kubernetes` Service and its Endpoints, which every cluster has and in-cluster
//! clients resolve: the first address of the service CIDR, port 443 (`https`), pointing at the
//! address this server listens on. Kept current at every start (the port may change between runs).

use std::net::SocketAddr;

use serde_json::{Value, json};

use super::MANAGER;
use crate::Core;
use crate::defaults::cluster_ip;
use crate::objects::{self, WriteOptions};

fn opts() -> WriteOptions {
    WriteOptions {
        manager: MANAGER.into(),
        ..Default::default()
    }
}

/// Creates or updates `default/kubernetes` (Service and Endpoints) for a server at `addr`.
pub fn ensure(core: &Core, addr: SocketAddr) {
    let ip = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    let port = addr.port();
    if let Some(ri) = core.registry.lookup("", "v1", "services") {
        let desired = json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"component": "apiserver", "provider": "kubernetes"}},
            "spec": {"type": "ClusterIP", "clusterIP": cluster_ip::first().to_string(), "sessionAffinity": "None",
                "ports": [{"name": "https", "protocol": "TCP", "port": 443, "targetPort": port}]},
        });
        write(core, &ri, desired, |current| {
            current.pointer("/spec/ports/0/targetPort") == Some(&json!(port))
        });
    }
    if let Some(ri) = core.registry.lookup("", "v1", "endpoints") {
        let desired = json!({
            "apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": "kubernetes", "namespace": "default",
                "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "https", "port": port, "protocol": "TCP"}]}],
        });
        let subsets = desired["subsets"].clone();
        write(core, &ri, desired, |current| {
            current.get("subsets") == Some(&subsets)
        });
    }
}

/// Creates `desired`, or replaces the stored object's spec/subsets when `up_to_date` says it differs.
fn write(
    core: &Core,
    ri: &crate::registry::ResourceInfo,
    desired: Value,
    up_to_date: impl Fn(&Value) -> bool,
) {
    match objects::get(core, ri, "default", "kubernetes") {
        Err(_) => {
            if let Err(e) = objects::create(core, ri, "default", desired, &opts()) {
                tracing::warn!(kind = %ri.kind, error = %e, "could not create default/kubernetes");
            }
        }
        Ok(current) if up_to_date(&current) => {}
        Ok(mut current) => {
            for key in ["spec", "subsets"] {
                if let Some(v) = desired.get(key) {
                    match (current.get_mut(key), v) {
                        (Some(Value::Object(c)), Value::Object(d)) => {
                            for (k, v) in d {
                                if k != "clusterIP" {
                                    c.insert(k.clone(), v.clone());
                                }
                            }
                        }
                        _ => current[key] = v.clone(),
                    }
                }
            }
            if let Err(e) = objects::update(core, ri, "default", "kubernetes", None, current, &opts()) {
                tracing::warn!(kind = %ri.kind, error = %e, "could not update default/kubernetes");
            }
        }
    }
}
