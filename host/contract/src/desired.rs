//! The answer of a successful reconcile ([`Desired`]) and what it is made of.

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
