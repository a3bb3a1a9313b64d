//! Service IP allocation from the service CIDR (10.96.0.0/12, as kubeadm and kind configure it).
//!
//! The allocator's state is the stored Services themselves: an address is taken while a Service holds
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
    fn updates_keep_allocated_addresses() {
        let old = json!({"spec": {"clusterIP": "10.96.0.7", "clusterIPs": ["10.96.0.7"]}});
        let mut new = json!({"spec": {"ports": []}});
        carry_over(&old, &mut new);
        assert_eq!(new["spec"]["clusterIPs"], json!(["10.96.0.7"]));
    }
}
