//! The answer of a successful reconcile ([`Desired`]), what it is made of, and its builder methods
//! (plain ones: the guest SDK adds typed ones for k8s-openapi kinds).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::kind::ObjectRef;

/// How a [`Patch`] body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatchType {
    /// RFC 7386 JSON merge patch.
    Merge,
    /// RFC 6902 JSON patch (a list of operations).
    Json,
}

/// A patch to an object the plugin does not own (needs patch permission on its kind).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patch {
    pub target: ObjectRef,
    pub patch_type: PatchType,
    /// The patch document.
    pub body: Value,
}

/// The type of an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something went wrong.
    Warning,
}

/// A Kubernetes Event the host records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub event_type: EventType,
    /// UpperCamelCase reason (`Provisioned`).
    pub reason: String,
    pub message: String,
    /// The object the event is about; `None` is the primary object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regarding: Option<ObjectRef>,
}

impl Event {
    /// A Normal event about the primary object.
    pub fn normal(reason: impl Into<String>, message: impl Into<String>) -> Event {
        Event {
            event_type: EventType::Normal,
            reason: reason.into(),
            message: message.into(),
            regarding: None,
        }
    }

    /// A Warning event about the primary object.
    pub fn warning(reason: impl Into<String>, message: impl Into<String>) -> Event {
        Event {
            event_type: EventType::Warning,
            ..Event::normal(reason, message)
        }
    }

    /// The same event about another object.
    pub fn regarding(mut self, object: ObjectRef) -> Event {
        self.regarding = Some(object);
        self
    }
}

/// The state a plugin wants; the host makes it true.
///
/// `apply` is full intent: every child the object should have, every time; children of owned kinds
/// that the object owned before and that are not listed are deleted by the host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Desired {
    /// Children to server-side apply, as JSON with `apiVersion`, `kind` and `metadata.name`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub apply: Vec<Value>,
    /// Patches to objects of kinds with patch permission.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub patches: Vec<Patch>,
    /// The primary object's new `status`, written through the status subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
    /// Objects to delete (children, or kinds with delete permission).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deletions: Vec<ObjectRef>,
    /// Events to record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<Event>,
    /// Reconcile this object again after this many seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requeue_after_seconds: Option<u32>,
    /// Whether the object should carry the plugin's finalizer: `true` adds it before any child is
    /// applied; `false` removes it after the rest is written (during deletion: cleanup is done).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finalizer: bool,
    /// Problems found while building the answer (a value that does not serialise): a non-empty list
    /// turns the whole answer into a permanent error before it reaches the host.
    #[serde(skip)]
    pub errors: Vec<String>,
}

/// `value` as JSON, or the reason it is not, kept in `errors`.
fn to_json(value: impl Serialize, what: &str, errors: &mut Vec<String>) -> Option<Value> {
    match serde_json::to_value(value) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(format!("{what}: cannot serialise: {e}"));
            None
        }
    }
}

/// Builder methods: each takes and returns the value, so they chain. A value that does not
/// serialise is not added; its error is kept in [`Desired::errors`].
impl Desired {
    /// Nothing to do: no children (so existing ones are pruned), no status change, no finalizer.
    pub fn new() -> Desired {
        Desired::default()
    }

    /// Adds a child given as any serialisable value (`serde_json::json!` or a struct); it must
    /// carry `apiVersion`, `kind` and `metadata.name` itself.
    pub fn apply_json(mut self, object: impl Serialize) -> Desired {
        if let Some(v) = to_json(object, "apply", &mut self.errors) {
            self.apply.push(v);
        }
        self
    }

    /// Adds an RFC 7386 merge patch to an object (needs patch permission on its kind).
    pub fn merge_patch(mut self, target: ObjectRef, body: impl Serialize) -> Desired {
        if let Some(body) = to_json(body, "merge patch", &mut self.errors) {
            self.patches.push(Patch {
                target,
                patch_type: PatchType::Merge,
                body,
            });
        }
        self
    }

    /// Adds an RFC 6902 JSON patch (a list of operations) to an object.
    pub fn json_patch(mut self, target: ObjectRef, operations: impl Serialize) -> Desired {
        if let Some(body) = to_json(operations, "JSON patch", &mut self.errors) {
            self.patches.push(Patch {
                target,
                patch_type: PatchType::Json,
                body,
            });
        }
        self
    }

    /// Sets the primary object's new `status` (a struct or `serde_json::json!`); it replaces what
    /// the plugin wrote before, so give all of it every time.
    pub fn status(mut self, status: impl Serialize) -> Desired {
        self.status = to_json(status, "status", &mut self.errors);
        self
    }

    /// Adds an object to delete.
    pub fn delete(mut self, target: ObjectRef) -> Desired {
        self.deletions.push(target);
        self
    }

    /// Adds an event.
    pub fn event(mut self, event: Event) -> Desired {
        self.events.push(event);
        self
    }

    /// Asks for another reconcile of this object after `seconds`.
    pub fn requeue_after_seconds(mut self, seconds: u32) -> Desired {
        self.requeue_after_seconds = Some(seconds);
        self
    }

    /// Holds the object with the plugin's finalizer, so that its deletion waits for a `deletion`
    /// reconcile. Leaving it out releases the finalizer (during deletion: cleanup is done).
    pub fn finalizer(mut self) -> Desired {
        self.finalizer = true;
        self
    }

    /// What the host would refuse: the builder's [`errors`](Desired::errors), and applied objects
    /// without `apiVersion`, `kind` or `metadata.name`. Empty when the answer is usable.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = self.errors.clone();
        for (i, o) in self.apply.iter().enumerate() {
            for (pointer, field) in [
                ("/apiVersion", "apiVersion"),
                ("/kind", "kind"),
                ("/metadata/name", "metadata.name"),
            ] {
                let present = o
                    .pointer(pointer)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty());
                if !present {
                    problems.push(format!("apply[{i}]: {field} is missing"));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Gvk;
    use serde_json::json;

    #[test]
    fn builders_chain_and_problems_are_reported() {
        let cm = ObjectRef::new(Gvk::new("", "v1", "ConfigMap"), Some("demo"), "x");
        let d = Desired::new()
            .apply_json(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}))
            .merge_patch(cm.clone(), json!({"data": {"a": "b"}}))
            .json_patch(cm.clone(), json!([{"op": "remove", "path": "/data/a"}]))
            .status(json!({"phase": "Ready"}))
            .delete(cm)
            .event(Event::normal("Done", "ok"))
            .requeue_after_seconds(30)
            .finalizer();
        assert!(d.problems().is_empty(), "{:?}", d.problems());
        assert_eq!((d.patches.len(), d.deletions.len()), (2, 1));
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(v["requeueAfterSeconds"], 30);
        assert_eq!(v["finalizer"], true);
        assert_eq!(v["events"][0]["eventType"], "Normal");
        assert_eq!(v["patches"][0]["patchType"], "merge");

        let bad = Desired::new().apply_json(json!({"kind": "ConfigMap", "metadata": {}}));
        assert_eq!(
            bad.problems(),
            vec![
                "apply[0]: apiVersion is missing",
                "apply[0]: metadata.name is missing"
            ]
        );
        let unserialisable = std::collections::HashMap::from([((1, 2), 3)]);
        let bad = Desired::new().status(unserialisable);
        assert_eq!(bad.status, None);
        assert!(
            bad.problems()[0].starts_with("status: cannot serialise"),
            "{:?}",
            bad.problems()
        );
    }
}
