//! Typed children in the desired state: [`DesiredExt`], the k8s-openapi half of [`Desired`]'s
//! builder (the plain half — status, patches, deletions, events, requeue, finalizer — is
//! `Desired`'s own).

use k8s_openapi::Resource;
use serde::Serialize;

use crate::Desired;

/// Adds children of k8s-openapi kinds (or any [`Resource`]) to a [`Desired`].
///
/// ```
/// use wasmop_sdk::k8s_openapi::api::core::v1::ConfigMap;
/// use wasmop_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
/// use wasmop_sdk::prelude::*;
///
/// let cm = ConfigMap {
///     metadata: ObjectMeta { name: Some("settings".into()), ..Default::default() },
///     ..Default::default()
/// };
/// let desired = Desired::new()
///     .apply(cm)
///     .status(wasmop_sdk::serde_json::json!({"phase": "Ready"}))
///     .event(Event::normal("Configured", "settings written"))
///     .requeue_after_seconds(60)
///     .finalizer();
/// assert_eq!(desired.apply[0]["kind"], "ConfigMap");
/// assert!(desired.problems().is_empty());
/// ```
pub trait DesiredExt: Sized {
    /// Adds a child; `apiVersion` and `kind` are set from `K`. Set `metadata.name`; the namespace
    /// defaults to the primary object's. A value that does not serialise is not added and makes
    /// the whole answer a permanent error ([`Desired::errors`]).
    fn apply<K: Resource + Serialize>(self, object: K) -> Self;

    /// Adds several children of one kind.
    fn apply_all<K: Resource + Serialize>(self, objects: impl IntoIterator<Item = K>) -> Self {
        objects.into_iter().fold(self, DesiredExt::apply)
    }
}

impl DesiredExt for Desired {
    fn apply<K: Resource + Serialize>(mut self, object: K) -> Desired {
        match serde_json::to_value(object) {
            Ok(serde_json::Value::Object(mut map)) => {
                map.insert("apiVersion".into(), K::API_VERSION.into());
                map.insert("kind".into(), K::KIND.into());
                self.apply.push(map.into());
            }
            Ok(_) => self
                .errors
                .push(format!("apply: a {} is not a JSON object", K::KIND)),
            Err(e) => self.errors.push(format!("{}: cannot serialise: {e}", K::KIND)),
        }
        self
    }
}
