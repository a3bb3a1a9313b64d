//! Admission of an incoming object: the checks and normalisation a write goes through before it is
//! stored — the object's identity against the URL, metadata validation, typed decoding of built-in
//! kinds, structural-schema pruning, defaulting and validation of custom resources, and the
//! `fieldValidation` (Ignore / Warn / Strict) handling of unknown fields.

use serde_json::{Map, Value};
use wasmop_apimachinery::schema;
use wasmop_apimachinery::validation::{is_dns_label, is_dns_subdomain};

use crate::error::{ApiError, ApiResult, Cause};
use crate::registry::{ResourceInfo, Schema};

/// `?fieldValidation=`: what to do with unknown fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> ApiResult<Self> {
        match s {
            None | Some("") | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation must be one of \"Ignore\", \"Warn\", or \"Strict\", got \"{other}\""
            ))),
        }
    }
}

pub fn meta(obj: &Value) -> Option<&Map<String, Value>> {
    obj.get("metadata").and_then(Value::as_object)
}

pub fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = Value::Object(Map::new());
    }
    obj["metadata"].as_object_mut().expect("metadata is an object")
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj)?.get(field)?.as_str()
}

pub fn name_of(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or("")
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

pub fn is_terminating(obj: &Value) -> bool {
    meta(obj).is_some_and(|m| m.get("deletionTimestamp").is_some_and(|v| !v.is_null()))
}

const SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/// Kinds whose names must be DNS labels rather than subdomains.
fn name_is_label(ri: &ResourceInfo) -> bool {
    ri.group.is_empty() && matches!(ri.plural.as_str(), "namespaces" | "services")
}

fn invalid_cause(field: &str, value: &str, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid".into(),
        message: format!("Invalid value: {}: {detail}", Value::String(value.into())),
        field: field.into(),
    }
}

/// Checks the metadata every object needs; returns the causes of a 422.
pub fn validate_metadata(ri: &ResourceInfo, obj: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = name_of(obj);
    if name.is_empty() {
        causes.push(Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value: name or generateName is required".into(),
            field: "metadata.name".into(),
        });
    } else if crate::auth::rbac::is_rbac_kind(ri) {
        // RBAC objects only need a valid path segment (`system:discovery`).
        if let Some(msg) = crate::auth::rbac::path_segment_error(name) {
            causes.push(invalid_cause("metadata.name", name, &msg));
        }
    } else if name_is_label(ri) {
        if !is_dns_label(name) {
            causes.push(invalid_cause("metadata.name", name, LABEL_MSG));
        }
    } else if crate::core_kinds::is_core_apiservice_name(ri, name) {
        // `v1.`: the core group's APIService (version, a dot, an empty group).
    } else if !is_dns_subdomain(name) {
        causes.push(invalid_cause("metadata.name", name, SUBDOMAIN_MSG));
    }
    for field in ["labels", "annotations"] {
        if let Some(m) = meta(obj).and_then(|m| m.get(field)) {
            match m.as_object() {
                Some(map) if map.values().all(Value::is_string) => {}
                None if m.is_null() => {}
                _ => causes.push(Cause {
                    reason: "FieldValueTypeInvalid".into(),
                    message: "Invalid value: must be a map of strings".into(),
                    field: format!("metadata.{field}"),
                }),
            }
        }
    }
    causes
}

/// The result of decoding and checking an object's body against its kind's schema.
#[derive(Debug)]
pub struct Normalized {
    pub object: Value,
    /// Unknown fields that were dropped, as `.spec.bogus` paths (for `Warning` headers or strict errors).
    pub unknown: Vec<String>,
}

/// Decodes `obj` through its kind's schema: typed for built-ins, pruned, defaulted and validated for
/// custom resources.
pub fn normalize(ri: &ResourceInfo, obj: Value, validation: FieldValidation) -> ApiResult<Normalized> {
    normalize_update(ri, obj, None, validation)
}

/// [`normalize`] of an update: `old` (the stored object) is what CEL transition rules see as `oldSelf`.
pub fn normalize_update(
    ri: &ResourceInfo,
    obj: Value,
    old: Option<&Value>,
    validation: FieldValidation,
) -> ApiResult<Normalized> {
    let name = name_of(&obj).to_string();
    let normalized = match &ri.schema {
        Schema::Builtin { decode, .. } => {
            let decoded = decode(obj.clone()).map_err(|e| {
                ApiError::invalid(
                    &ri.kind,
                    &ri.group,
                    &name,
                    vec![Cause {
                        reason: "FieldValueTypeInvalid".into(),
                        message: e.to_string(),
                        field: String::new(),
                    }],
                )
            })?;
            if ri.group == "apiextensions.k8s.io" && ri.plural == "customresourcedefinitions" {
                let causes = crate::controllers::crd::rule_causes(&decoded);
                if !causes.is_empty() {
                    return Err(ApiError::invalid(&ri.kind, &ri.group, &name, causes));
                }
            }
            let mut unknown = Vec::new();
            dropped_fields(&obj, &decoded, "", &mut unknown);
            Normalized {
                object: decoded,
                unknown,
            }
        }
        Schema::Custom { openapi } => {
            let mut obj = obj;
            let unknown = schema::prune(openapi, &mut obj);
            schema::apply_defaults(openapi, &mut obj);
            let mut errors = schema::validate(openapi, &obj);
            let rule_errors = wasmop_apimachinery::celrules::validate(openapi, &obj, old, &errors);
            errors.extend(rule_errors);
            if !errors.is_empty() {
                let causes = errors
                    .iter()
                    .map(|e| {
                        let full = e.to_string();
                        let prefix = format!("{}: ", e.field);
                        let message = full.strip_prefix(&prefix).unwrap_or(&full).to_string();
                        Cause {
                            reason: e.cause_reason().to_string(),
                            message,
                            field: e.field.clone(),
                        }
                    })
                    .collect();
                return Err(ApiError::invalid(&ri.kind, &ri.group, &name, causes));
            }
            Normalized { object: obj, unknown }
        }
    };
    if validation == FieldValidation::Strict && !normalized.unknown.is_empty() {
        let list: Vec<String> = normalized
            .unknown
            .iter()
            .map(|f| format!("unknown field \"{}\"", f.trim_start_matches('.')))
            .collect();
        return Err(ApiError::bad_request(format!(
            "{kind} in version \"{v}\" cannot be handled as a {kind}: strict decoding error: {}",
            list.join(", "),
            kind = ri.kind,
            v = ri.version
        )));
    }
    Ok(normalized)
}

/// Fields present (and not null) in `input` but missing from `decoded`: what typed decoding dropped.
fn dropped_fields(input: &Value, decoded: &Value, path: &str, out: &mut Vec<String>) {
    match (input, decoded) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                match b.get(k) {
                    None if !v.is_null() => out.push(p),
                    Some(dv) => dropped_fields(v, dv, &p, out),
                    None => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                dropped_fields(x, y, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// The `Warning` header values for dropped fields.
pub fn unknown_field_warnings(unknown: &[String]) -> Vec<String> {
    unknown
        .iter()
        .map(|f| format!("unknown field \"{}\"", f.trim_start_matches('.')))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;
    use serde_json::json;

    #[test]
    fn names_are_checked_as_the_kind_requires() {
        let reg = Registry::default();
        let cm = reg.lookup("", "v1", "configmaps").unwrap();
        let causes = validate_metadata(&cm, &json!({"metadata": {"name": "Bad_Name"}}));
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "metadata.name");
        assert!(
            causes[0]
                .message
                .starts_with("Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain")
        );
        assert!(validate_metadata(&cm, &json!({"metadata": {"name": "a.b-c"}})).is_empty());
        let ns = reg.lookup("", "v1", "namespaces").unwrap();
        assert_eq!(
            validate_metadata(&ns, &json!({"metadata": {"name": "a.b"}})).len(),
            1
        );
    }

    #[test]
    fn strict_validation_rejects_unknown_fields_of_builtins() {
        let reg = Registry::default();
        let cm = reg.lookup("", "v1", "configmaps").unwrap();
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "bogus": 1});
        let warn = normalize(&cm, obj.clone(), FieldValidation::Warn).unwrap();
        assert_eq!(warn.unknown, vec!["bogus".to_string()]);
        let err = normalize(&cm, obj, FieldValidation::Strict).unwrap_err();
        assert_eq!(
            err.message,
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"bogus\""
        );
    }

    #[test]
    fn wrongly_typed_builtin_fields_are_invalid() {
        let reg = Registry::default();
        let cm = reg.lookup("", "v1", "configmaps").unwrap();
        let err = normalize(
            &cm,
            json!({"metadata": {"name": "a"}, "data": {"k": 5}}),
            FieldValidation::Warn,
        )
        .unwrap_err();
        assert_eq!(err.code, 422);
    }
}
