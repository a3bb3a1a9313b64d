//! API errors as the Kubernetes `Status` objects clients expect: the `reason` and `code` of a real
//! kube-apiserver (see `shared/k8s-reference/05-errors`), so kube-rs and kubectl classify them the same way.

use serde_json::{Value, json};

/// One `details.causes[]` item.
#[derive(Debug, Clone, PartialEq)]
pub struct Cause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

/// A failed request, rendered as a `Status` body with the matching HTTP code.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    /// `details`: `None` omits the key, `Some(json!({}))` prints `"details": {}`.
    pub details: Option<Value>,
    /// Seconds for the `Retry-After` header and `details.retryAfterSeconds`.
    pub retry_after: Option<u64>,
    /// `metadata.continue` of the Status (an expired continue token gets a fresh one).
    pub continue_token: Option<String>,
}

/// Identifies the resource in error messages and `details`: `configmaps` or `widgets.example.com`.
#[derive(Debug, Clone, Copy)]
pub struct ResourceRef<'a> {
    pub group: &'a str,
    pub plural: &'a str,
}

impl ResourceRef<'_> {
    /// `configmaps`, `deployments.apps`, `widgets.example.com`: the qualified resource of messages.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn details(&self, name: &str) -> Value {
        let mut d = serde_json::Map::new();
        if !name.is_empty() {
            d.insert("name".into(), name.into());
        }
        if !self.group.is_empty() {
            d.insert("group".into(), self.group.into());
        }
        d.insert("kind".into(), self.plural.into());
        Value::Object(d)
    }
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
            continue_token: None,
        }
    }

    pub(crate) fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn not_found(r: ResourceRef<'_>, name: &str) -> Self {
        Self::new(404, "NotFound", format!("{} \"{name}\" not found", r.qualified()))
            .with_details(r.details(name))
    }

    /// Unknown resource under a known API group.
    pub fn resource_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn already_exists(r: ResourceRef<'_>, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", r.qualified()),
        )
        .with_details(r.details(name))
    }

    /// Optimistic-concurrency failure: a stale `resourceVersion`.
    pub fn conflict(r: ResourceRef<'_>, name: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                r.qualified()
            ),
        )
        .with_details(r.details(name))
    }

    /// A 409 Conflict with a custom message (failed preconditions).
    pub fn conflict_msg(r: ResourceRef<'_>, name: &str, msg: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {msg}",
                r.qualified()
            ),
        )
        .with_details(r.details(name))
    }

    /// 422 from object validation: `details.kind` is the Kind, not the plural.
    pub fn invalid(kind: &str, group: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let items: Vec<String> = causes
            .iter()
            .map(|c| {
                if c.field.is_empty() {
                    c.message.clone()
                } else {
                    format!("{}: {}", c.field, c.message)
                }
            })
            .collect();
        let summary = if items.len() == 1 {
            items[0].clone()
        } else {
            format!("[{}]", items.join(", "))
        };
        let mut details = serde_json::Map::new();
        details.insert("name".into(), name.into());
        if !group.is_empty() {
            details.insert("group".into(), group.into());
        }
        details.insert("kind".into(), kind.into());
        details.insert("causes".into(), causes_json(&causes));
        Self::new(
            422,
            "Invalid",
            format!("{qualified_kind} \"{name}\" is invalid: {summary}"),
        )
        .with_details(Value::Object(details))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(415, "UnsupportedMediaType", message).with_details(json!({}))
    }

    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(406, "NotAcceptable", message)
    }

    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn too_many_requests(retry_after: u64) -> Self {
        let mut e = Self::new(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
        )
        .with_details(json!({"retryAfterSeconds": retry_after}));
        e.retry_after = Some(retry_after);
        e
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {}", message.into()),
        )
    }

    pub fn timeout(message: impl Into<String>, retry_after: u64) -> Self {
        let mut e =
            Self::new(504, "Timeout", message).with_details(json!({"retryAfterSeconds": retry_after}));
        e.retry_after = Some(retry_after);
        e
    }

    pub fn forbidden(r: ResourceRef<'_>, message: impl Into<String>) -> Self {
        let mut d = r.details("");
        d.as_object_mut().map(|m| m.remove("name"));
        Self::new(403, "Forbidden", message).with_details(d)
    }

    pub fn unauthorized() -> Self {
        Self::new(401, "Unauthorized", "Unauthorized")
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("kind".into(), "Status".into());
        m.insert("apiVersion".into(), "v1".into());
        let mut meta = serde_json::Map::new();
        if let Some(c) = &self.continue_token {
            meta.insert("continue".into(), c.clone().into());
        }
        m.insert("metadata".into(), Value::Object(meta));
        m.insert("status".into(), "Failure".into());
        m.insert("message".into(), self.message.clone().into());
        // kube-apiserver omits an empty reason (`StatusReasonUnknown`, e.g. a storage error it cannot
        // classify).
        if !self.reason.is_empty() {
            m.insert("reason".into(), self.reason.into());
        }
        if let Some(d) = &self.details {
            m.insert("details".into(), d.clone());
        }
        m.insert("code".into(), self.code.into());
        Value::Object(m)
    }
}

pub fn causes_json(causes: &[Cause]) -> Value {
    Value::Array(
        causes
            .iter()
            .map(|c| {
                let mut o = serde_json::Map::new();
                o.insert("reason".into(), c.reason.clone().into());
                o.insert("message".into(), c.message.clone().into());
                if !c.field.is_empty() {
                    o.insert("field".into(), c.field.clone().into());
                }
                Value::Object(o)
            })
            .collect(),
    )
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_the_recorded_status() {
        let e = ApiError::not_found(
            ResourceRef {
                group: "example.com",
                plural: "widgets",
            },
            "nope",
        );
        assert_eq!(
            serde_json::to_string(&e.to_status()).unwrap(),
            r#"{"apiVersion":"v1","code":404,"details":{"group":"example.com","kind":"widgets","name":"nope"},"kind":"Status","message":"widgets.example.com \"nope\" not found","metadata":{},"reason":"NotFound","status":"Failure"}"#
        );
    }

    #[test]
    fn invalid_lists_several_causes_in_brackets() {
        let c = |f: &str| Cause {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: f.into(),
        };
        let e = ApiError::invalid("Widget", "example.com", "bad", vec![c("spec.a"), c("spec.b")]);
        assert_eq!(
            e.message,
            "Widget.example.com \"bad\" is invalid: [spec.a: Required value, spec.b: Required value]"
        );
        assert_eq!(e.details.unwrap()["kind"], "Widget");
    }
}
