//! Metadata-only responses: `Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1`
//! (or `as=PartialObjectMetadataList`, or `v=v1beta1`) turns every object a verb answers with into a
//! `PartialObjectMetadata` that carries only `metadata`, as kube-apiserver's `transformObject` does.
//! kube-rs' `Api::get_metadata`/`list_metadata`/`patch_metadata` and `runtime::metadata_watcher`
//! depend on it. `Status` bodies pass through unchanged; asking for the list form of one object (or
//! the object form of a list) is 406 NotAcceptable, as upstream.

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

/// Whether the client asked for one object or a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Object,
    List,
}

/// The metadata-only form a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub shape: Shape,
    /// `v1` or `v1beta1` (of `meta.k8s.io`).
    pub version: &'static str,
}

impl Target {
    fn api_version(&self) -> String {
        format!("meta.k8s.io/{}", self.version)
    }
}

/// The first media range of `Accept` that names a conversion (`as=`), when it is a metadata form.
/// A plain `application/json` range first means no conversion; a Table is handled elsewhere.
pub fn from_accept(accept: &str) -> Option<Target> {
    for clause in accept.split(',') {
        let mut parts = clause.split(';').map(str::trim);
        let media = parts.next().unwrap_or("");
        if !matches!(
            media,
            "application/json" | "application/*" | "*/*" | "application/yaml"
        ) {
            continue;
        }
        let (mut as_, mut g, mut v) = ("", "", "");
        for p in parts {
            match p.split_once('=') {
                Some(("as", x)) => as_ = x,
                Some(("g", x)) => g = x,
                Some(("v", x)) => v = x,
                _ => {}
            }
        }
        if as_.is_empty() {
            return None;
        }
        let shape = match as_ {
            "PartialObjectMetadata" => Shape::Object,
            "PartialObjectMetadataList" => Shape::List,
            _ => return None,
        };
        let version = match (g, v) {
            ("meta.k8s.io", "v1") => "v1",
            ("meta.k8s.io", "v1beta1") => "v1beta1",
            // An unsupported group or version: a later range may still fit.
            _ => continue,
        };
        return Some(Target { shape, version });
    }
    None
}

fn is_list(v: &Value) -> bool {
    v.get("items").is_some_and(Value::is_array)
        && v.get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
}

fn go_type(v: &Value, list: bool) -> String {
    let api_version = v.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("");
    let builtin = !api_version.contains('.') || api_version.contains(".k8s.io/");
    if !builtin || kind.is_empty() {
        return if list {
            "*unstructured.UnstructuredList"
        } else {
            "*unstructured.Unstructured"
        }
        .to_string();
    }
    let group = api_version.split('/').next().unwrap_or("");
    let package = if api_version == "v1" {
        "core"
    } else {
        group.split('.').next().unwrap_or(group)
    };
    format!("*{package}.{kind}")
}

/// `meta.AsPartialObjectMetadata`: kind, apiVersion and the object's metadata.
fn partial(obj: &Value, api_version: &str) -> Value {
    let metadata = obj
        .get("metadata")
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    json!({"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": metadata})
}

/// Converts a response body to the requested metadata-only form.
pub fn transform(body: &Value, target: Target) -> ApiResult<Value> {
    if body.get("kind").and_then(Value::as_str) == Some("Status") {
        return Ok(body.clone());
    }
    let api_version = target.api_version();
    match (target.shape, is_list(body)) {
        (Shape::Object, false) => Ok(partial(body, &api_version)),
        (Shape::Object, true) => Err(not_acceptable(format!(
            "you requested PartialObjectMetadata, but the requested object is a list ({})",
            go_type(body, true)
        ))),
        (Shape::List, false) => Err(not_acceptable(format!(
            "you requested PartialObjectMetadataList, but the requested object is not a list ({})",
            go_type(body, false)
        ))),
        (Shape::List, true) => {
            let items: Vec<Value> = body["items"]
                .as_array()
                .map(|a| a.iter().map(|i| partial(i, &api_version)).collect())
                .unwrap_or_default();
            let mut meta = Map::new();
            if let Some(m) = body.get("metadata").and_then(Value::as_object) {
                for k in ["resourceVersion", "continue", "remainingItemCount"] {
                    if let Some(v) = m.get(k).filter(|v| !v.is_null() && v.as_str() != Some("")) {
                        meta.insert(k.into(), v.clone());
                    }
                }
            }
            Ok(json!({
                "kind": "PartialObjectMetadataList",
                "apiVersion": api_version,
                "metadata": meta,
                "items": items,
            }))
        }
    }
}

/// A watch event's object: every event but ERROR carries the object form (a list target counts as
/// the object form, one object per event).
pub fn transform_event(object: &Value, target: Target) -> Value {
    partial(object, &target.api_version())
}

fn not_acceptable(message: String) -> ApiError {
    ApiError::not_acceptable(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
    const V1_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

    #[test]
    fn accept_headers_pick_the_form() {
        assert_eq!(
            from_accept(V1),
            Some(Target {
                shape: Shape::Object,
                version: "v1"
            })
        );
        assert_eq!(
            from_accept(V1_LIST),
            Some(Target {
                shape: Shape::List,
                version: "v1"
            })
        );
        assert_eq!(
            from_accept(
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1, application/json"
            ),
            Some(Target {
                shape: Shape::Object,
                version: "v1beta1"
            })
        );
        assert_eq!(from_accept("application/json"), None);
        assert_eq!(from_accept("application/json;as=Table;g=meta.k8s.io;v=v1"), None);
        assert_eq!(
            from_accept("application/json, application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
            None
        );
        assert_eq!(
            from_accept(
                "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v2,"
                    .to_string()
                    .as_str()
            ),
            None
        );
    }

    #[test]
    fn objects_and_lists_keep_only_metadata() {
        let cm = json!({"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "a", "resourceVersion": "5"}, "data": {"x": "1"}});
        let t = transform(&cm, from_accept(V1).unwrap()).unwrap();
        assert_eq!(
            t,
            json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": {"name": "a", "resourceVersion": "5"}})
        );
        let list = json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {"resourceVersion": "9"}, "items": [cm]});
        let t = transform(&list, from_accept(V1_LIST).unwrap()).unwrap();
        assert_eq!(t["kind"], "PartialObjectMetadataList");
        assert_eq!(t["metadata"], json!({"resourceVersion": "9"}));
        assert_eq!(t["items"][0]["kind"], "PartialObjectMetadata");
        assert!(t["items"][0].get("data").is_none());
        assert_eq!(transform(&list, from_accept(V1).unwrap()).unwrap_err().code, 406);
        let e = transform(&cm, from_accept(V1_LIST).unwrap()).unwrap_err();
        assert_eq!(e.code, 406);
        assert!(e.message.contains("(*core.ConfigMap)"), "{}", e.message);
        let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Success"});
        assert_eq!(transform(&status, from_accept(V1).unwrap()).unwrap(), status);
    }
}
