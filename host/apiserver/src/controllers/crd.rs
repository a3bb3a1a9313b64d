//! The CustomResourceDefinition lifecycle: an accepted CRD starts serving its resources at once
//! (NamesAccepted and Established conditions written by `kube-apiserver` on `/status`); a name clash
//! is reported instead; a deleted CRD has its instances removed (the
//! `customresourcecleanup.apiextensions.k8s.io` finalizer) and then stops being served.

use std::sync::Arc;

use serde_json::{Value, json};
use wasmop_apimachinery::time;

use super::MANAGER;
use super::gc::resource_info;
use crate::Core;
use crate::admission::{finalizers, is_terminating, meta_str, name_of};
use crate::objects::{self, DeleteOptions, WriteOptions};
use crate::patch::PatchType;
use crate::registry::{PrinterColumn, ResourceInfo, ScaleSpec, Schema};
use crate::store::{Event, EventType, Key};

const CRDS: &str = "apiextensions.k8s.io/customresourcedefinitions";
const CLEANUP: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Kubernetes version priority: GA before beta before alpha, higher numbers first.
fn version_priority(v: &str) -> (u8, i64, i64) {
    let Some(rest) = v.strip_prefix('v') else {
        return (0, 0, 0);
    };
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let major: i64 = digits.parse().unwrap_or(0);
    let tail = &rest[digits.len()..];
    let minor = |t: &str| t.parse::<i64>().unwrap_or(0);
    if tail.is_empty() {
        (3, major, 0)
    } else if let Some(t) = tail.strip_prefix("beta") {
        (2, major, minor(t))
    } else if let Some(t) = tail.strip_prefix("alpha") {
        (1, major, minor(t))
    } else {
        (0, major, 0)
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// The resources a CRD serves, preferred version first.
/// The status a created CRD has before the controller's first pass (reference
/// `04-crd-status/01-crd-create-response.http`): no conditions, empty accepted names, the storage
/// version stored.
pub fn initial_status(crd: &mut Value) {
    let storage: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    crd["status"] = json!({
        "conditions": null,
        "acceptedNames": {"plural": "", "kind": ""},
        "storedVersions": storage,
    });
}

/// The CEL rules (`x-kubernetes-validations`) of every version's schema that do not compile: one
/// 422 cause each, at the rule's path in the CRD, as upstream validates a CRD on create and update.
pub fn rule_causes(crd: &Value) -> Vec<crate::error::Cause> {
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array);
    let mut causes = Vec::new();
    for (i, v) in versions.into_iter().flatten().enumerate() {
        let Some(schema) = v.pointer("/schema/openAPIV3Schema") else {
            continue;
        };
        for e in wasmop_apimachinery::celrules::check_schema(schema) {
            causes.push(crate::error::Cause {
                reason: e.cause_reason().to_string(),
                message: e.message(),
                field: format!("spec.versions[{i}].schema.openAPIV3Schema.{}", e.field),
            });
        }
    }
    causes
}

pub fn infos(crd: &Value) -> Vec<ResourceInfo> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let s = |v: &Value| v.as_str().unwrap_or("").to_string();
    let kind = s(&names["kind"]);
    let mut versions: Vec<&Value> = spec["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["served"].as_bool().unwrap_or(false))
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|v| std::cmp::Reverse(version_priority(v["name"].as_str().unwrap_or(""))));
    versions
        .into_iter()
        .map(|v| {
            let schema = v
                .pointer("/schema/openAPIV3Schema")
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}));
            let scale = v.pointer("/subresources/scale").map(|sc| ScaleSpec {
                spec_replicas_path: s(&sc["specReplicasPath"]),
                status_replicas_path: s(&sc["statusReplicasPath"]),
                label_selector_path: sc["labelSelectorPath"].as_str().map(String::from),
            });
            let printer_columns = v["additionalPrinterColumns"]
                .as_array()
                .map(|cols| {
                    cols.iter()
                        .map(|c| PrinterColumn {
                            name: s(&c["name"]),
                            type_: s(&c["type"]),
                            json_path: s(&c["jsonPath"]),
                            description: s(&c["description"]),
                            priority: c["priority"].as_i64().unwrap_or(0),
                        })
                        .collect()
                })
                .unwrap_or_default();
            ResourceInfo {
                group: s(&spec["group"]),
                version: s(&v["name"]),
                kind: kind.clone(),
                list_kind: names["listKind"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| format!("{kind}List")),
                plural: s(&names["plural"]),
                singular: names["singular"]
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| kind.to_ascii_lowercase()),
                short_names: strings(names.get("shortNames")),
                categories: strings(names.get("categories")),
                namespaced: spec["scope"].as_str() != Some("Cluster"),
                status: v.pointer("/subresources/status").is_some(),
                scale,
                generation: true,
                schema: Schema::Custom {
                    openapi: Arc::new(schema),
                },
                printer_columns,
                crd_uid: Some(meta_str(crd, "uid").unwrap_or("").to_string()),
            }
        })
        .collect()
}

/// A clash of names with another served resource, as the condition message says it.
fn conflict(core: &Core, crd: &Value, infos: &[ResourceInfo]) -> Option<(&'static str, String)> {
    let uid = meta_str(crd, "uid").unwrap_or("");
    let first = infos.first()?;
    for other in core.registry.all() {
        if other.group != first.group || other.crd_uid.as_deref() == Some(uid) {
            continue;
        }
        if other.plural == first.plural {
            return Some((
                "PluralConflict",
                format!("\"{}\" is already in use", first.plural),
            ));
        }
        if other.kind == first.kind {
            return Some(("KindConflict", format!("\"{}\" is already in use", first.kind)));
        }
    }
    None
}

/// Serves every CRD in the store (at start-up, before requests are accepted).
pub fn register_all(core: &Core) {
    let (_, crds) = core.store.list(CRDS, None);
    for crd in crds {
        let infos = infos(&crd);
        if conflict(core, &crd, &infos).is_none() {
            core.registry.set_crd(meta_str(&crd, "uid").unwrap_or(""), infos);
        }
    }
}

pub fn resync(core: &Core, all: &[(Key, Arc<Value>)]) {
    for (k, obj) in all {
        if k.resource == CRDS {
            reconcile(core, obj);
        }
    }
}

pub fn on_event(core: &Core, e: &Event) {
    if e.key.resource == CRDS {
        match e.type_ {
            EventType::Deleted => core
                .registry
                .set_crd(meta_str(&e.object, "uid").unwrap_or(""), Vec::new()),
            _ => reconcile(core, &e.object),
        }
        return;
    }
    // The last instance of a terminating CRD going away releases the CRD.
    if e.type_ == EventType::Deleted
        && let Some(ri) = resource_info(core, &e.key.resource)
        && ri.is_custom()
        && let Some(crd) = core.store.get(&crd_key(&ri))
        && is_terminating(&crd)
    {
        reconcile(core, &crd);
    }
}

fn crd_key(ri: &ResourceInfo) -> Key {
    Key {
        resource: CRDS.into(),
        namespace: String::new(),
        name: format!("{}.{}", ri.plural, ri.group),
    }
}

fn reconcile(core: &Core, crd: &Value) {
    if is_terminating(crd) {
        cleanup(core, crd);
        return;
    }
    let infos = infos(crd);
    let uid = meta_str(crd, "uid").unwrap_or("").to_string();
    let names = &crd["spec"]["names"];
    let conditions = match conflict(core, crd, &infos) {
        Some((reason, message)) => {
            core.registry.set_crd(&uid, Vec::new());
            vec![
                ("NamesAccepted", "False", reason.to_string(), message),
                (
                    "Established",
                    "False",
                    "NotAccepted".into(),
                    "not all names are accepted".into(),
                ),
            ]
        }
        None => {
            core.registry.set_crd(&uid, infos);
            vec![
                (
                    "NamesAccepted",
                    "True",
                    "NoConflicts".into(),
                    "no conflicts found".into(),
                ),
                (
                    "Established",
                    "True",
                    "InitialNamesAccepted".into(),
                    "the initial names have been accepted".into(),
                ),
            ]
        }
    };
    let old_conditions = crd
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let now = time::now();
    let conditions: Vec<Value> = conditions
        .into_iter()
        .map(|(t, status, reason, message)| {
            let old = old_conditions.iter().find(|c| c["type"] == t);
            let since = match old {
                Some(c) if c["status"] == status => c["lastTransitionTime"].clone(),
                _ => json!(now),
            };
            json!({"type": t, "status": status, "lastTransitionTime": since, "reason": reason, "message": message})
        })
        .collect();
    let mut accepted = json!({"plural": names["plural"], "singular": names["singular"], "kind": names["kind"], "listKind": names["listKind"]});
    if let Some(sn) = names.get("shortNames") {
        accepted["shortNames"] = sn.clone();
    }
    if let Some(c) = names.get("categories") {
        accepted["categories"] = c.clone();
    }
    let storage: Vec<Value> = crd["spec"]["versions"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter(|v| v["storage"].as_bool() == Some(true))
                .map(|v| v["name"].clone())
                .collect()
        })
        .unwrap_or_default();
    let mut stored = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in storage {
        if !stored.contains(&v) {
            stored.push(v);
        }
    }
    let status = json!({"conditions": conditions, "acceptedNames": accepted, "storedVersions": stored});
    if crd.get("status") == Some(&status) {
        return;
    }
    let Some(ri) = core
        .registry
        .lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return;
    };
    let body = json!({"metadata": {"resourceVersion": meta_str(crd, "resourceVersion")}, "status": status});
    let opts = WriteOptions {
        manager: MANAGER.into(),
        ..Default::default()
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    if let Err(e) = objects::patch(
        core,
        &ri,
        "",
        name_of(crd),
        Some("status"),
        PatchType::Merge,
        &bytes,
        &opts,
    ) && e.code != 409
        && e.code != 404
    {
        tracing::warn!(crd = name_of(crd), error = %e, "updating CRD status failed");
    }
}

/// Deletes the instances of a terminating CRD, then releases its cleanup finalizer.
fn cleanup(core: &Core, crd: &Value) {
    let infos = infos(crd);
    let Some(first) = infos.first() else {
        return release(core, crd);
    };
    let (_, instances) = core.store.list(&first.storage_key(), None);
    if instances.is_empty() {
        return release(core, crd);
    }
    let Some(ri) = core.registry.lookup(&first.group, &first.version, &first.plural) else {
        return;
    };
    for obj in instances.iter().filter(|o| !is_terminating(o)) {
        let ns = meta_str(obj, "namespace").unwrap_or("");
        let opts = DeleteOptions {
            propagation: Some("Background".into()),
            ..Default::default()
        };
        if let Err(e) = objects::delete(core, &ri, ns, name_of(obj), &opts)
            && e.code != 404
        {
            tracing::warn!(crd = name_of(crd), object = name_of(obj), error = %e, "deleting CRD instance failed");
        }
    }
}

fn release(core: &Core, crd: &Value) {
    let rest: Vec<String> = finalizers(crd).into_iter().filter(|f| f != CLEANUP).collect();
    let Some(ri) = core
        .registry
        .lookup("apiextensions.k8s.io", "v1", "customresourcedefinitions")
    else {
        return;
    };
    let body = json!({"metadata": {"finalizers": rest, "resourceVersion": meta_str(crd, "resourceVersion")}});
    let opts = WriteOptions {
        manager: MANAGER.into(),
        ..Default::default()
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    if let Err(e) = objects::patch(core, &ri, "", name_of(crd), None, PatchType::Merge, &bytes, &opts)
        && e.code != 409
        && e.code != 404
    {
        tracing::warn!(crd = name_of(crd), error = %e, "releasing CRD failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_ordered_by_kubernetes_priority() {
        let mut vs = vec!["v1alpha1", "v1beta2", "v2", "v1", "v1beta1"];
        vs.sort_by_key(|v| std::cmp::Reverse(version_priority(v)));
        assert_eq!(vs, vec!["v2", "v1", "v1beta2", "v1beta1", "v1alpha1"]);
    }
}
