//! Service IP allocation from the service CIDR (10.96.0.0/12, as kubeadm and kind configure it), and
//! NodePort allocation from 30000-32767.
//!
//! The allocators' state is the stored Services themselves: an address is taken while a Service holds
//! it, so allocations survive restarts and are never handed out twice. Allocation runs under the
//! store's writer lock (inside `Store::mutate`), so concurrent creates cannot pick the same address.

use std::collections::HashSet;
use std::net::Ipv4Addr;

use rand::Rng;
use serde_json::{Value, json};

use crate::Core;
use crate::error::{ApiError, ApiResult, Cause};

/// The service CIDR's network address and prefix length.
pub const CIDR: (Ipv4Addr, u32) = (Ipv4Addr::new(10, 96, 0, 0), 12);

/// The first usable address: the `default/kubernetes` Service's.
pub fn first() -> Ipv4Addr {
    Ipv4Addr::from(u32::from(CIDR.0) + 1)
}

fn size() -> u32 {
    1 << (32 - CIDR.1)
}

fn in_range(ip: Ipv4Addr) -> bool {
    let base = u32::from(CIDR.0);
    let n = u32::from(ip);
    // The network and broadcast addresses are never handed out.
    n > base && n < base + size() - 1
}

/// Addresses held by stored Services.
fn used(core: &Core) -> HashSet<Ipv4Addr> {
    let (_, services) = core.store.list("/services", None);
    services
        .iter()
        .flat_map(|s| {
            let mut ips: Vec<String> = s
                .pointer("/spec/clusterIPs")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
                .unwrap_or_default();
            if let Some(ip) = s.pointer("/spec/clusterIP").and_then(Value::as_str) {
                ips.push(ip.to_string());
            }
            ips
        })
        .filter_map(|ip| ip.parse().ok())
        .collect()
}

fn invalid(name: &str, requested: &str, detail: String) -> ApiError {
    ApiError::invalid(
        "Service",
        "",
        name,
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: []string{{\"{requested}\"}}: failed to allocate IP {requested}: {detail}"
            ),
            field: "spec.clusterIPs".into(),
        }],
    )
}

/// Gives a new Service its `clusterIP`/`clusterIPs` (a requested address is checked, `None` stays
/// headless, ExternalName Services get none) and its IP family fields.
pub fn allocate(core: &Core, svc: &mut Value) -> ApiResult<()> {
    let name = crate::admission::name_of(svc).to_string();
    let Some(spec) = svc.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if spec.get("type").and_then(Value::as_str) == Some("ExternalName") {
        return Ok(());
    }
    let requested = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .or_else(|| {
            spec.get("clusterIPs")
                .and_then(|a| a.get(0))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(String::from)
        });
    let ip = match requested.as_deref() {
        Some("None") => "None".to_string(),
        Some(r) => {
            let ip: Ipv4Addr = r
                .parse()
                .map_err(|_| invalid(&name, r, "must be a valid IP address".into()))?;
            if !in_range(ip) {
                return Err(invalid(
                    &name,
                    r,
                    format!(
                        "provided IP ({r}) is not in the valid range. The range of valid IPs is {}/{}",
                        CIDR.0, CIDR.1
                    ),
                ));
            }
            if used(core).contains(&ip) {
                return Err(invalid(&name, r, "provided IP is already allocated".into()));
            }
            r.to_string()
        }
        None => {
            let taken = used(core);
            let base = u32::from(CIDR.0);
            let mut rng = rand::rng();
            // Random like kube-apiserver's allocator; the first address stays for `kubernetes`.
            let mut pick = None;
            for _ in 0..64 {
                let ip = Ipv4Addr::from(base + rng.random_range(2..size() - 1));
                if !taken.contains(&ip) {
                    pick = Some(ip);
                    break;
                }
            }
            let pick = match pick {
                Some(ip) => ip,
                None => (base + 2..base + size() - 1)
                    .map(Ipv4Addr::from)
                    .find(|ip| !taken.contains(ip))
                    .ok_or_else(|| ApiError::internal("the service CIDR is full"))?,
            };
            pick.to_string()
        }
    };
    spec.insert("clusterIP".into(), json!(ip));
    spec.insert("clusterIPs".into(), json!([ip]));
    if spec.get("ipFamilies").is_none_or(Value::is_null) {
        spec.insert("ipFamilies".into(), json!(["IPv4"]));
    }
    if spec.get("ipFamilyPolicy").is_none_or(Value::is_null) {
        spec.insert("ipFamilyPolicy".into(), json!("SingleStack"));
    }
    Ok(())
}

/// The NodePort range (`--service-node-port-range` default).
pub const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

/// NodePorts held by stored Services.
fn used_node_ports(core: &Core) -> HashSet<i64> {
    let (_, services) = core.store.list("/services", None);
    services
        .iter()
        .filter_map(|s| s.pointer("/spec/ports").and_then(Value::as_array))
        .flatten()
        .filter_map(|p| p.get("nodePort").and_then(Value::as_i64))
        .collect()
}

/// Gives every port of a NodePort or LoadBalancer Service a free `nodePort` (a requested one is
/// checked: out of range or taken → 422, as kube-apiserver's port allocator answers).
pub fn allocate_node_ports(core: &Core, svc: &mut Value) -> ApiResult<()> {
    let name = crate::admission::name_of(svc).to_string();
    let kind = svc.pointer("/spec/type").and_then(Value::as_str).unwrap_or("");
    let wants = kind == "NodePort"
        || (kind == "LoadBalancer"
            && svc.pointer("/spec/allocateLoadBalancerNodePorts") != Some(&json!(false)));
    if !wants {
        return Ok(());
    }
    let mut taken = used_node_ports(core);
    let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    let mut rng = rand::rng();
    for (i, p) in ports.iter_mut().enumerate() {
        match p.get("nodePort").and_then(Value::as_i64).filter(|n| *n != 0) {
            Some(n) => {
                let detail = if !NODE_PORTS.contains(&n) {
                    Some(format!(
                        "provided port is not in the valid range. The range of valid ports is {}-{}",
                        NODE_PORTS.start(),
                        NODE_PORTS.end()
                    ))
                } else if taken.contains(&n) {
                    Some("provided port is already allocated".to_string())
                } else {
                    None
                };
                if let Some(detail) = detail {
                    return Err(ApiError::invalid(
                        "Service",
                        "",
                        &name,
                        vec![Cause {
                            reason: "FieldValueInvalid".into(),
                            message: format!("Invalid value: {n}: {detail}"),
                            field: format!("spec.ports[{i}].nodePort"),
                        }],
                    ));
                }
                taken.insert(n);
            }
            None => {
                let free = (0..64)
                    .map(|_| rng.random_range(NODE_PORTS))
                    .find(|n| !taken.contains(n))
                    .or_else(|| NODE_PORTS.clone().find(|n| !taken.contains(n)))
                    .ok_or_else(|| ApiError::internal("the NodePort range is full"))?;
                taken.insert(free);
                if let Some(m) = p.as_object_mut() {
                    m.insert("nodePort".into(), json!(free));
                }
            }
        }
    }
    Ok(())
}

/// An update keeps the allocated addresses when the new version leaves them out (as
/// `patchAllocatedValues` does).
pub fn carry_over(old: &Value, new: &mut Value) {
    for key in ["clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"] {
        let missing = new
            .pointer(&format!("/spec/{key}"))
            .is_none_or(|v| v.is_null() || v == "" || v.as_array().is_some_and(Vec::is_empty));
        if missing
            && let Some(v) = old.pointer(&format!("/spec/{key}"))
            && let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut)
        {
            spec.insert(key.into(), v.clone());
        }
    }
    // NodePorts left out of an update stay with their port (matched by name, then port number).
    let old_ports = old
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if let Some(ports) = new.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
        for p in ports.iter_mut() {
            if p.get("nodePort").is_some_and(|n| !n.is_null() && *n != json!(0)) {
                continue;
            }
            let same = old_ports.iter().find(|o| {
                o.get("name") == p.get("name")
                    && o.get("port") == p.get("port")
                    && o.get("nodePort").is_some()
            });
            if let (Some(o), Some(m)) = (same, p.as_object_mut()) {
                m.insert("nodePort".into(), o["nodePort"].clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_excludes_network_and_broadcast() {
        assert_eq!(first().to_string(), "10.96.0.1");
        assert!(!in_range(Ipv4Addr::new(10, 96, 0, 0)));
        assert!(in_range(Ipv4Addr::new(10, 111, 255, 254)));
        assert!(!in_range(Ipv4Addr::new(10, 111, 255, 255)));
        assert!(!in_range(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn updates_keep_node_ports() {
        let old = json!({"spec": {"ports": [{"name": "http", "port": 80, "nodePort": 30080}]}});
        let mut new = json!({"spec": {"ports": [{"name": "http", "port": 80}]}});
        carry_over(&old, &mut new);
        assert_eq!(new["spec"]["ports"][0]["nodePort"], 30080);
    }

    #[test]
    fn updates_keep_allocated_addresses() {
        let old = json!({"spec": {"clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"]}});
        let mut new = json!({"spec": {"ports": []}});
        carry_over(&old, &mut new);
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.0.7"]));
    }
}
