//! What can go wrong in field management: [`FieldManagerError`] for input that is not a valid field
//! set, `managedFields` list or object, and [`ApplyError`] for a failed server-side apply, whose
//! [`Conflict`]s print exactly like the real server's 409 (message and `details.causes`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::managed::{Identity, Operation};
use crate::gofmt::go_quote;

/// Bad input: malformed `fieldsV1`/`managedFields`, or an object that does not fit its structure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldManagerError {
    /// A `fieldsV1` document that is not a valid field set.
    #[error("invalid fieldsV1: {0}")]
    FieldsV1(String),
    /// A `metadata.managedFields` list or entry that cannot be decoded.
    #[error("invalid managedFields: {0}")]
    ManagedFields(String),
    /// An object whose lists do not fit the structure (list-map item without its key, duplicates).
    #[error("{0}")]
    Object(String),
}

/// Why a server-side apply failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields the configuration changes are owned by other managers: HTTP 409 `Conflict`, with
    /// [`ApplyError::causes`] as `details.causes`. The Display text is the real server's message.
    #[error("{}", conflicts_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration carries `metadata.managedFields` (HTTP 400 BadRequest).
    #[error("metadata.managedFields must be nil")]
    ManagedFieldsInConfig,
    /// The configuration or the live object does not fit the structure (duplicate list-map keys,
    /// an item without its key field, a configuration that is not an object).
    #[error("{0}")]
    Invalid(String),
}

impl From<FieldManagerError> for ApplyError {
    fn from(e: FieldManagerError) -> Self {
        ApplyError::Invalid(e.to_string())
    }
}

impl ApplyError {
    /// The `details.causes` of the 409 Status: one `FieldManagerConflict` per (manager, field).
    /// Empty for the other variants.
    pub fn causes(&self) -> Vec<Value> {
        match self {
            ApplyError::Conflicts(conflicts) => conflicts.iter().map(Conflict::cause).collect(),
            _ => Vec::new(),
        }
    }
}

/// One field of the applied configuration that another manager owns with a different value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// How the other manager got the field.
    pub operation: Operation,
    /// The other manager's `apiVersion` (printed for Update managers only).
    pub api_version: String,
    /// The other manager's subresource, if any.
    pub subresource: Option<String>,
    /// The field as the real server prints it: `.data.a`, `.spec.containers[name="x"].image`.
    pub field: String,
}

impl Conflict {
    /// The manager as the real server names it in messages: `"applier-one"`,
    /// `"editor" using v1`, `"ctrl" with subresource "status" using v1`.
    pub fn manager_description(&self) -> String {
        let mut s = go_quote(&self.manager);
        if let Some(sub) = &self.subresource {
            let _ = write!(s, " with subresource {}", go_quote(sub));
        }
        if self.operation == Operation::Update {
            let _ = write!(s, " using {}", self.api_version);
        }
        s
    }

    /// The `details.causes` item: `{"reason":"FieldManagerConflict","message":..,"field":..}`.
    pub fn cause(&self) -> Value {
        let mut m = Map::new();
        m.insert("reason".into(), Value::String("FieldManagerConflict".into()));
        m.insert(
            "message".into(),
            Value::String(format!("conflict with {}", self.manager_description())),
        );
        m.insert("field".into(), Value::String(self.field.clone()));
        Value::Object(m)
    }

    fn identity(&self) -> Identity {
        Identity::new(
            &self.manager,
            self.operation,
            &self.api_version,
            self.subresource.as_deref(),
        )
    }
}

/// The real server's conflict message (`getConflictMessage`): one conflict is printed inline, more
/// are grouped by manager, managers sorted by their identifier.
fn conflicts_message(conflicts: &[Conflict]) -> String {
    if let [only] = conflicts {
        return format!(
            "Apply failed with 1 conflict: conflict with {}: {}",
            only.manager_description(),
            only.field
        );
    }
    let mut groups: BTreeMap<String, (String, Vec<&str>)> = BTreeMap::new();
    for c in conflicts {
        groups
            .entry(c.identity().json())
            .or_insert_with(|| (c.manager_description(), Vec::new()))
            .1
            .push(&c.field);
    }
    let mut lines = Vec::new();
    for (description, fields) in groups.values() {
        lines.push(format!("conflicts with {description}:"));
        lines.extend(fields.iter().map(|f| format!("- {f}")));
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::fieldmanager::{PathElement, path_to_string};
    use crate::gofmt::go_float;

    #[test]
    fn conflict_descriptions_follow_the_real_server() {
        let c = Conflict {
            manager: "ctrl".into(),
            operation: Operation::Update,
            api_version: "v1".into(),
            subresource: Some("status".into()),
            field: ".status.phase".into(),
        };
        assert_eq!(
            c.manager_description(),
            "\"ctrl\" with subresource \"status\" using v1"
        );
        assert_eq!(
            ApplyError::Conflicts(vec![c]).to_string(),
            "Apply failed with 1 conflict: conflict with \"ctrl\" with subresource \"status\" using v1: .status.phase"
        );
        assert_eq!(
            path_to_string(&[PathElement::Field("spec".into()), PathElement::Value(json!(1.5))]),
            ".spec[=1.5]"
        );
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_quote("a\"b\n"), "\"a\\\"b\\n\"");
    }
}
