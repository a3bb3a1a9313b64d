//! PATCH bodies: which patch type a `Content-Type` names, how its body is parsed, and how it is applied
//! to the current object. Server-side apply is merged by [`crate::managed`]; the rest here.

use serde_json::Value;
use wasmop_apimachinery::{jsonpatch, strategic};

use crate::admission::FieldValidation;
use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902).
    Json,
    /// `application/merge-patch+json` (RFC 7386).
    Merge,
    /// `application/strategic-merge-patch+json` (built-in kinds only).
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

impl PatchType {
    pub fn from_content_type(content_type: &str) -> ApiResult<PatchType> {
        let media = content_type.split(';').next().unwrap_or("").trim();
        match media {
            "application/json-patch+json" => Ok(PatchType::Json),
            "application/merge-patch+json" => Ok(PatchType::Merge),
            "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
            "application/apply-patch+yaml" => Ok(PatchType::Apply),
            _ => Err(ApiError::unsupported_media_type("415: Unsupported Media Type")),
        }
    }
}

/// Parses a patch body (JSON, or YAML for apply) and checks the patch type fits the resource.
pub fn parse(ri: &ResourceInfo, patch_type: PatchType, body: &[u8]) -> ApiResult<Value> {
    if patch_type == PatchType::Strategic && ri.is_custom() {
        return Err(ApiError::unsupported_media_type(
            "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
        ));
    }
    let value: Value = match patch_type {
        PatchType::Apply => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        _ => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?,
    };
    match (patch_type, &value) {
        // Decoded against the live object, as the server does (a missing object is 404 first); kept
        // as the client's text, which `test` operations compare with.
        (PatchType::Json, _) => Ok(Value::String(String::from_utf8_lossy(body).into_owned())),
        (_, Value::Object(_)) => Ok(value),
        (PatchType::Apply, _) => Err(ApiError::bad_request(
            "error decoding YAML: the applied configuration is not an object",
        )),
        _ => Err(ApiError::bad_request(
            "error decoding patch: the patch is not a JSON object",
        )),
    }
}

/// The "request rejected" 422 a real server gives for JSON patch failures (reference behaviour 54).
fn json_patch_failed() -> ApiError {
    let mut e = ApiError::new(
        422,
        "Invalid",
        "the server rejected our request due to an error in our request",
    );
    e.details = Some(serde_json::json!({}));
    e
}

/// Applies a JSON, merge or strategic patch to `current`, as a request without `fieldValidation`.
pub fn apply(ri: &ResourceInfo, patch_type: PatchType, current: &Value, patch: &Value) -> ApiResult<Value> {
    apply_with(ri, patch_type, current, patch, FieldValidation::Warn)
}

/// The `Warning`s a patch body itself earns: unknown members of JSON patch operations, with the
/// default `fieldValidation=Warn` (`Strict` is not distinguished: they stay warnings).
pub fn warnings(patch_type: PatchType, patch: &Value, validation: FieldValidation) -> Vec<String> {
    if patch_type == PatchType::Json && validation != FieldValidation::Ignore {
        match patch {
            Value::String(text) => serde_json::from_str(text)
                .map(|p| jsonpatch::unknown_field_warnings(&p))
                .unwrap_or_default(),
            ops => jsonpatch::unknown_field_warnings(ops),
        }
    } else {
        Vec::new()
    }
}

/// The error a real server gives for a JSON patch that does not decode or apply.
fn json_patch_error(e: jsonpatch::Error) -> ApiError {
    match e {
        jsonpatch::Error::Decode(m) => ApiError::bad_request(m),
        e @ jsonpatch::Error::TooManyOperations(_) => {
            ApiError::new(413, "RequestEntityTooLarge", e.to_string())
        }
        jsonpatch::Error::Failed(_) => json_patch_failed(),
        // kube-apiserver's Go code panics here; its panic filter answers 500.
        jsonpatch::Error::Panic(_) => {
            ApiError::internal("This request caused apiserver to panic. Look in the logs for details.")
        }
    }
}

/// Applies a JSON, merge or strategic patch to `current`; `validation` decides how strictly a JSON
/// patch body is decoded (the server checks it against its op struct unless `Ignore`).
pub fn apply_with(
    ri: &ResourceInfo,
    patch_type: PatchType,
    current: &Value,
    patch: &Value,
    validation: FieldValidation,
) -> ApiResult<Value> {
    match patch_type {
        PatchType::Merge => {
            let mut doc = current.clone();
            json_patch::merge(&mut doc, patch);
            Ok(doc)
        }
        PatchType::Json => {
            let strict = validation != FieldValidation::Ignore;
            match patch {
                Value::String(text) => jsonpatch::apply_text(current, text, strict),
                ops => jsonpatch::apply(current, ops, strict),
            }
            .map_err(json_patch_error)
        }
        PatchType::Strategic => {
            strategic::strategic_merge(current, patch, &*ri.structure()).map_err(|e| match e.status_code() {
                400 => ApiError::bad_request(e.to_string()),
                422 => ApiError::new(422, "Invalid", e.to_string()),
                _ => ApiError::internal(e.to_string()),
            })
        }
        PatchType::Apply => Err(ApiError::internal("server-side apply is not a plain patch")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn json_patch_replace_of_a_missing_key_adds_it_and_failures_are_422() {
        let reg = Registry::default();
        let cm = reg.lookup("", "v1", "configmaps").unwrap();
        let cur = json!({"data": {"a": "1"}});
        let out = apply(
            &cm,
            PatchType::Json,
            &cur,
            &json!([{"op": "replace", "path": "/data/b", "value": "2"}]),
        )
        .unwrap();
        assert_eq!(out["data"]["b"], "2");
        let err = apply(
            &cm,
            PatchType::Json,
            &cur,
            &json!([{"op": "test", "path": "/data/a", "value": "x"}]),
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
    }

    #[test]
    fn json_patch_status_codes_match_the_server() {
        let reg = Registry::default();
        let cm = reg.lookup("", "v1", "configmaps").unwrap();
        let cur = json!({"metadata": {"name": "a"}});
        let finalizer = json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": []}
        ]);
        let out = apply(&cm, PatchType::Json, &cur, &finalizer).unwrap();
        assert_eq!(out["metadata"]["finalizers"], json!([]));
        let code = |p: Value| apply(&cm, PatchType::Json, &cur, &p).unwrap_err().code;
        assert_eq!(code(json!({"op": "add"})), 400);
        assert_eq!(code(json!([{"op": "remove", "path": "/metadata/labels"}])), 422);
        assert_eq!(code(json!([{"op": "test", "path": "/metadata/labels"}])), 500);
        let e = apply(
            &cm,
            PatchType::Json,
            &cur,
            &json!([{"op": "add", "path": "/x/y", "value": 1}]),
        )
        .unwrap_err();
        assert_eq!(e.details, Some(json!({})));
        assert_eq!(e.reason, "Invalid");
    }

    #[test]
    fn content_types_pick_the_patch_type() {
        assert_eq!(
            PatchType::from_content_type("application/merge-patch+json").unwrap(),
            PatchType::Merge
        );
        assert_eq!(
            PatchType::from_content_type("application/json").unwrap_err().code,
            415
        );
    }
}
