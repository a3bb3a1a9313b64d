//! Server-side printing and the scale subresource: `meta.k8s.io/v1` Tables for `kubectl get`
//! (columns per built-in kind, `additionalPrinterColumns` for CRDs) and `autoscaling/v1` Scale
//! views of objects with replicas.

use serde_json::{Value, json};
use wasmop_apimachinery::time;

use crate::admission::{meta, meta_mut, meta_str};
use crate::error::{ApiError, ApiResult};
use crate::registry::{PrinterColumn, ResourceInfo};

const NAME_DESC: &str = "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const AGE_DESC: &str = "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";

fn column(name: &str, type_: &str, json_path: &str) -> PrinterColumn {
    PrinterColumn {
        name: name.into(),
        type_: type_.into(),
        json_path: json_path.into(),
        description: String::new(),
        priority: 0,
    }
}

/// The columns between Name and Age for a kind.
fn columns(ri: &ResourceInfo) -> Vec<PrinterColumn> {
    if ri.is_custom() {
        return ri.printer_columns.clone();
    }
    match (ri.group.as_str(), ri.plural.as_str()) {
        ("", "configmaps") => vec![column("Data", "integer", "#data-count")],
        ("", "secrets") => vec![
            column("Type", "string", ".type"),
            column("Data", "integer", "#data-count"),
        ],
        ("", "namespaces") => vec![column("Status", "string", ".status.phase")],
        ("", "pods") => vec![column("Status", "string", ".status.phase")],
        ("", "services") => vec![
            column("Type", "string", ".spec.type"),
            column("Cluster-IP", "string", ".spec.clusterIP"),
        ],
        ("apps", "deployments" | "statefulsets") => vec![column("Ready", "string", "#ready")],
        ("policy", "poddisruptionbudgets") => vec![
            column("Min Available", "string", ".spec.minAvailable"),
            column("Max Unavailable", "string", ".spec.maxUnavailable"),
        ],
        _ => Vec::new(),
    }
}

/// Evaluates the small JSONPath subset printer columns use: `.a.b`, `.a[0]`, `.a[?(@.k=="v")].b`.
pub fn json_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    let mut rest = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('.');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let inner = &r[..end];
            rest = r[end + 1..].trim_start_matches('.');
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (k, v) = filter.split_once("==")?;
                let v = v.trim().trim_matches('"').trim_matches('\'');
                cur = cur
                    .as_array()?
                    .iter()
                    .find(|item| item.get(k.trim()).and_then(Value::as_str) == Some(v))?;
            } else {
                cur = cur.get(inner.parse::<usize>().ok()?)?;
            }
            continue;
        }
        let end = rest.find(['.', '[']).unwrap_or(rest.len());
        cur = cur.get(&rest[..end])?;
        rest = rest[end..].trim_start_matches('.');
    }
    Some(cur)
}

fn cell(obj: &Value, c: &PrinterColumn) -> Value {
    match c.json_path.as_str() {
        "#data-count" => {
            let n = |f: &str| obj.get(f).and_then(Value::as_object).map_or(0, |m| m.len());
            json!(n("data") + n("binaryData"))
        }
        "#ready" => {
            let ready = obj
                .pointer("/status/readyReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let want = obj.pointer("/spec/replicas").and_then(Value::as_i64).unwrap_or(1);
            json!(format!("{ready}/{want}"))
        }
        path => match json_path(obj, path) {
            None | Some(Value::Null) => {
                if c.type_ == "string" {
                    json!("<none>")
                } else {
                    Value::Null
                }
            }
            Some(v) if c.type_ == "date" => v.as_str().map_or(v.clone(), |s| json!(time::age(s))),
            Some(v) => v.clone(),
        },
    }
}

fn column_definitions(ri: &ResourceInfo) -> Value {
    let mut defs = vec![
        json!({"name": "Name", "type": "string", "format": "name", "description": NAME_DESC, "priority": 0}),
    ];
    for c in columns(ri) {
        let t = if c.type_ == "date" {
            "date"
        } else {
            c.type_.as_str()
        };
        defs.push(json!({"name": c.name, "type": t, "format": "", "description": c.description, "priority": c.priority}));
    }
    if !columns(ri).iter().any(|c| c.name == "Age") {
        defs.push(
            json!({"name": "Age", "type": "string", "format": "", "description": AGE_DESC, "priority": 0}),
        );
    }
    Value::Array(defs)
}

fn row(ri: &ResourceInfo, obj: &Value, include_object: Option<&str>) -> Value {
    let mut cells = vec![json!(meta_str(obj, "name").unwrap_or(""))];
    let cols = columns(ri);
    cells.extend(cols.iter().map(|c| cell(obj, c)));
    if !cols.iter().any(|c| c.name == "Age") {
        cells.push(json!(
            meta_str(obj, "creationTimestamp")
                .map(time::age)
                .unwrap_or_else(|| "<unknown>".into())
        ));
    }
    let object = match include_object {
        Some("None") => Value::Null,
        Some("Object") => obj.clone(),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta(obj).cloned().map(Value::Object).unwrap_or_else(|| json!({})),
        }),
    };
    json!({"cells": cells, "object": object})
}

/// A Table of a `<Kind>List`.
pub fn list_table(ri: &ResourceInfo, list: &Value, include_object: Option<&str>) -> Value {
    let rows: Vec<Value> = list["items"].as_array().map_or(Vec::new(), |items| {
        items.iter().map(|o| row(ri, o, include_object)).collect()
    });
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list["metadata"].clone(),
        "columnDefinitions": column_definitions(ri),
        "rows": rows,
    })
}

/// A Table of one object; `with_columns` false gives `"columnDefinitions": null` (later watch events).
pub fn object_table(
    ri: &ResourceInfo,
    obj: &Value,
    include_object: Option<&str>,
    with_columns: bool,
) -> Value {
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": meta_str(obj, "resourceVersion").unwrap_or("")},
        "columnDefinitions": if with_columns { column_definitions(ri) } else { Value::Null },
        "rows": [row(ri, obj, include_object)],
    })
}

pub fn one_table(ri: &ResourceInfo, obj: &Value, include_object: Option<&str>) -> Value {
    object_table(ri, obj, include_object, true)
}

fn path_pointer(path: &str) -> String {
    path.trim_start_matches('.')
        .split('.')
        .fold(String::new(), |acc, p| format!("{acc}/{p}"))
}

/// The `autoscaling/v1` Scale view of an object.
pub fn scale_of(ri: &ResourceInfo, obj: &Value) -> Value {
    let Some(scale) = &ri.scale else {
        return Value::Null;
    };
    let m = meta(obj);
    let pick = |k: &str| m.and_then(|m| m.get(k)).cloned().unwrap_or(Value::Null);
    let mut status = json!({"replicas": obj.pointer(&path_pointer(&scale.status_replicas_path)).cloned().unwrap_or(json!(0))});
    if !ri.is_custom() {
        if let Some(sel) = crate::core_kinds::scale_selector(obj) {
            status["selector"] = sel.into();
        }
    } else if let Some(sel) = scale
        .label_selector_path
        .as_deref()
        .and_then(|p| obj.pointer(&path_pointer(p)))
    {
        status["selector"] = sel.clone();
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": pick("name"), "namespace": pick("namespace"), "uid": pick("uid"),
            "resourceVersion": pick("resourceVersion"), "creationTimestamp": pick("creationTimestamp"),
        },
        "spec": {"replicas": obj.pointer(&path_pointer(&scale.spec_replicas_path)).cloned().unwrap_or(json!(0))},
        "status": status,
    })
}

/// Writes a Scale's `spec.replicas` (and resourceVersion precondition) into the object.
pub fn apply_scale(ri: &ResourceInfo, current: Value, scale: &Value) -> ApiResult<Value> {
    let Some(spec) = &ri.scale else {
        return Err(ApiError::resource_not_found());
    };
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| ApiError::bad_request("Scale.spec.replicas must be an integer"))?;
    let mut obj = current;
    let pointer = path_pointer(&spec.spec_replicas_path);
    let mut cur = &mut obj;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            cur[*p] = json!(replicas);
        } else {
            if !cur.get(*p).is_some_and(Value::is_object) {
                cur[*p] = json!({});
            }
            cur = &mut cur[*p];
        }
    }
    if let Some(rv) = scale
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        meta_mut(&mut obj).insert("resourceVersion".into(), rv.into());
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_path_follows_fields_indexes_and_filters() {
        let obj = json!({"status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}]}});
        assert_eq!(
            json_path(&obj, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(&json!("True"))
        );
        assert_eq!(
            json_path(&obj, ".status.conditions[0].type"),
            Some(&json!("Synced"))
        );
        assert_eq!(json_path(&obj, ".spec.replicas"), None);
    }
}
