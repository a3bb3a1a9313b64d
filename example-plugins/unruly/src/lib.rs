//! unruly (test fixture): reconciles ConfigMaps and misbehaves in the way a ConfigMap's
//! `data.fault` names, for the host's plugin fault tests:
//!
//! * `big-answer`: answers one child ConfigMap of 10 MiB (the host's answer size cap must refuse it);
//! * `bad-json`: answers a valid child and a document that is not JSON (nothing may be written);
//! * `log-flood`: logs 20 000 lines, then answers a child `<name>-flooded` (the host's log rate
//!   limit must drop most lines and the call still succeed).
//!
//! Any other ConfigMap gets an empty answer. The bad answers cannot be built with the SDK's types
//! (they always serialise valid JSON), so the component's `reconcile` is written against the
//! generated bindings; `metadata` and `map` are the SDK's.

// Natively (the workspace's unit tests) nothing is exported, so the component side is unused.
#![cfg_attr(not(target_family = "wasm"), allow(dead_code))]

use wasmop_sdk::__bindings::Guest;
use wasmop_sdk::__bindings::wasmop::reconciler::types as wit;
use wasmop_sdk::k8s_openapi::api::core::v1::ConfigMap;
use wasmop_sdk::prelude::*;
use wasmop_sdk::serde_json::{self, Value};

/// The declaration (and the SDK's side of the export).
struct Unruly;

impl Plugin for Unruly {
    fn metadata() -> Metadata {
        Metadata::new("unruly", env!("CARGO_PKG_VERSION"), Gvk::of::<ConfigMap>())
            .owns(Gvk::of::<ConfigMap>())
    }

    fn reconcile(_: Snapshot) -> Result<Desired, Error> {
        Ok(Desired::new())
    }
}

/// The exported component: the SDK's export, with a `reconcile` of its own.
struct Raw;

type Sdk = wasmop_sdk::__private::Exporter<Unruly>;

/// A child ConfigMap named `name` in `namespace` holding `blob`, as JSON text.
fn child(namespace: &str, name: &str, blob: &str) -> String {
    serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"blob": blob},
    })
    .to_string()
}

fn answer(apply: Vec<String>) -> wit::Desired {
    wit::Desired {
        apply,
        patches: Vec::new(),
        status: None,
        deletions: Vec::new(),
        events: Vec::new(),
        requeue_after_seconds: None,
        finalizer: false,
    }
}

impl Guest for Raw {
    fn metadata() -> wit::Metadata {
        <Sdk as Guest>::metadata()
    }

    fn reconcile(snapshot: wit::Snapshot) -> Result<wit::Desired, wit::ReconcileError> {
        let object: Value = serde_json::from_str(&snapshot.object).unwrap_or_default();
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let name = text(&object["metadata"]["name"]);
        let namespace = text(&object["metadata"]["namespace"]);
        match object["data"]["fault"].as_str() {
            Some("big-answer") => Ok(answer(vec![child(
                &namespace,
                &format!("{name}-big"),
                &"x".repeat(10 << 20),
            )])),
            Some("bad-json") => Ok(answer(vec![
                child(&namespace, &format!("{name}-partial"), "fine"),
                r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "#.to_string(),
            ])),
            Some("log-flood") => {
                for i in 0..20_000 {
                    wasmop_sdk::log::log(wasmop_sdk::log::Level::Info, &format!("flood line {i}"));
                }
                Ok(answer(vec![child(
                    &namespace,
                    &format!("{name}-flooded"),
                    "done",
                )]))
            }
            _ => <Sdk as Guest>::reconcile(snapshot),
        }
    }

    fn map(trigger: wit::Trigger) -> Result<Vec<wit::ObjectKey>, wit::ReconcileError> {
        <Sdk as Guest>::map(trigger)
    }
}

#[cfg(target_family = "wasm")]
wasmop_sdk::__bindings::__export_reconciler!(Raw with_types_in wasmop_sdk::__bindings);
