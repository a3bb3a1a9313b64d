//! {{name}}: a wasmop plugin. Every new or changed ConfigMap gets a `Greeted` event naming how
//! many keys it holds.
//!
//! Build: `wasmop build` (a component of the `wasmop:reconciler@0.2.0` world). Test: `cargo test`
//! (the golden files in `tests/`, run natively) or `wasmop test {{name}}.wasm --snapshot
//! tests/greet.snapshot.yaml`.

use wasmop_sdk::k8s_openapi::api::core::v1::ConfigMap;
use wasmop_sdk::prelude::*;

/// Greets every new or changed ConfigMap.
struct Greeter;

impl Plugin for Greeter {
    fn metadata() -> Metadata {
        Metadata::new("{{name}}", env!("CARGO_PKG_VERSION"), Gvk::of::<ConfigMap>())
    }

    fn reconcile(snapshot: Snapshot) -> Result<Desired, Error> {
        let cm: ConfigMap = snapshot.object()?;
        let keys = cm.data.map_or(0, |d| d.len());
        // Only a change is news; resyncs and deletions are not greeted.
        if snapshot.reason() != Reason::Change {
            return Ok(Desired::new());
        }
        let greeting = format!("Hello, {}! You hold {keys} keys.", snapshot.name());
        Ok(Desired::new().event(Event::normal("Greeted", greeting)))
    }
}

wasmop_sdk::export_plugin!(Greeter);

#[cfg(test)]
mod tests {
    #[test]
    fn golden() {
        wasmop_sdk::testing::check_fixtures::<super::Greeter>(concat!(env!("CARGO_MANIFEST_DIR"), "/tests"));
    }

    #[test]
    fn metadata_is_valid() {
        use wasmop_sdk::Plugin;
        super::Greeter::metadata().validate().unwrap();
    }
}
