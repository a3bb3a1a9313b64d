//! The answer of a successful reconcile.

use k8s_openapi::Resource;
use serde::Serialize;
use serde_json::Value;

use crate::{Error, ObjectRef};

/// How a [`Patch`] body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PatchType {
    /// RFC 7386 JSON merge patch.
    Merge,
    /// RFC 6902 JSON patch (a list of operations).
    Json,
}

/// A patch to an object the plugin does not own (needs [`crate::Verb::Patch`] on its kind).
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// The object to patch.
    pub target: ObjectRef,
    /// How the body is read.
    pub patch_type: PatchType,
    /// The patch document.
    pub body: Value,
}

/// The type of an [`Event`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// Something expected happened.
    Normal,
    /// Something went wrong.
    Warning,
}

/// A Kubernetes Event the host records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Normal or Warning.
    pub event_type: EventType,
    /// UpperCamelCase reason (`Provisioned`).
    pub reason: String,
    /// Human-readable message.
    pub message: String,
    /// The object the event is about; `None` is the primary object.
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

/// The state the host makes true after a successful reconcile.
///
/// Build it with the methods (each takes and returns the value, so they chain); the fields are
/// public for reading and for direct edits. Serialisation failures in the builder methods are kept
/// and turn the whole answer into a permanent [`Error`] when it is handed to the host.
///
/// `apply` is full intent: every child the object should have, every time. Children of owned kinds
/// that the object owned before and that are not listed are deleted by the host.
///
/// ```
/// use wasmop_sdk::k8s_openapi::api::core::v1::ConfigMap;
/// use wasmop_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
/// use wasmop_sdk::{Desired, Event};
///
/// let cm = ConfigMap {
///     metadata: ObjectMeta { name: Some("settings".into()), ..Default::default() },
///     ..Default::default()
/// };
/// let desired = Desired::new()
///     .apply(cm)
///     .status(wasmop_sdk::serde_json::json!({"phase": "Ready"}))
///     .event(Event::normal("Configured", "settings written"))
///     .requeue_after_seconds(60);
/// assert_eq!(desired.apply[0]["kind"], "ConfigMap");
/// assert!(desired.validate().is_ok());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// Children to server-side apply, as JSON with `apiVersion`, `kind` and `metadata.name`.
    pub apply: Vec<Value>,
    /// Patches to objects of kinds with patch permission.
    pub patches: Vec<Patch>,
    /// The primary object's new `status`, written through the status subresource.
    pub status: Option<Value>,
    /// Objects to delete (children, or kinds with delete permission).
    pub deletions: Vec<ObjectRef>,
    /// Events to record.
    pub events: Vec<Event>,
    /// Reconcile this object again after this many seconds.
    pub requeue_after_seconds: Option<u32>,
    /// With reason [`crate::Reason::Deletion`]: cleanup is complete, the finalizer may go.
    pub finalizer_done: bool,
    errors: Vec<String>,
}

fn to_json(value: impl Serialize, what: &str, errors: &mut Vec<String>) -> Option<Value> {
    match serde_json::to_value(value) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(format!("{what}: cannot serialise: {e}"));
            None
        }
    }
}

impl Desired {
    /// Nothing to do: no children (so existing ones are pruned), no status change.
    pub fn new() -> Desired {
        Desired::default()
    }

    /// Adds a child of a k8s-openapi kind (or any [`Resource`]); `apiVersion` and `kind` are set
    /// from `K`. Set `metadata.name`; the namespace defaults to the primary object's.
    pub fn apply<K: Resource + Serialize>(mut self, object: K) -> Desired {
        if let Some(mut v) = to_json(object, K::KIND, &mut self.errors) {
            match v.as_object_mut() {
                Some(map) => {
                    map.insert("apiVersion".into(), K::API_VERSION.into());
                    map.insert("kind".into(), K::KIND.into());
                    self.apply.push(v);
                }
                None => self
                    .errors
                    .push(format!("apply: a {} is not a JSON object", K::KIND)),
            }
        }
        self
    }

    /// Adds several children of one kind.
    pub fn apply_all<K: Resource + Serialize>(self, objects: impl IntoIterator<Item = K>) -> Desired {
        objects.into_iter().fold(self, Desired::apply)
    }

    /// Adds a child given as any serialisable value (`serde_json::json!` or a custom struct); it must
    /// carry `apiVersion`, `kind` and `metadata.name` itself.
    pub fn apply_json(mut self, object: impl Serialize) -> Desired {
        if let Some(v) = to_json(object, "apply", &mut self.errors) {
            self.apply.push(v);
        }
        self
    }

    /// Adds an RFC 7386 merge patch to an object (needs [`crate::Verb::Patch`] on its kind).
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
    /// this plugin wrote before, so give all of it every time.
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

    /// Tells the host that cleanup is complete and it may remove the finalizer (reason
    /// [`crate::Reason::Deletion`]).
    pub fn finalizer_done(mut self) -> Desired {
        self.finalizer_done = true;
        self
    }

    /// Checks what the host would refuse anyway: serialisation failures in the builder methods, and
    /// applied objects without `apiVersion`, `kind` or `metadata.name`. The SDK calls it before
    /// handing the answer to the host and answers a permanent error instead when it fails.
    pub fn validate(&self) -> Result<(), Error> {
        let mut errors = self.errors.clone();
        for (i, o) in self.apply.iter().enumerate() {
            let has = |p: &str| {
                o.pointer(p)
                    .and_then(Value::as_str)
                    .is_some_and(|s| !s.is_empty())
            };
            for (pointer, field) in [
                ("/apiVersion", "apiVersion"),
                ("/kind", "kind"),
                ("/metadata/name", "metadata.name"),
            ] {
                if !has(pointer) {
                    errors.push(format!("apply[{i}]: {field} is missing"));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Error::permanent(format!(
                "invalid desired state: {}",
                errors.join("; ")
            )))
        }
    }
}
