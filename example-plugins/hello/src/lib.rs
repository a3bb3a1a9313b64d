//! hello: the smallest useful wasmop plugin. Every new or changed ConfigMap gets a `Greeted` event.

use wasmop_sdk::k8s_openapi::api::core::v1::ConfigMap;
use wasmop_sdk::prelude::*;

/// Greets every new or changed ConfigMap with an Event.
struct Hello;

impl Plugin for Hello {
    fn metadata() -> Metadata {
        Metadata::new("hello", env!("CARGO_PKG_VERSION"), Gvk::of::<ConfigMap>())
    }

    fn reconcile(snapshot: Snapshot) -> Result<Desired, Error> {
        let cm: ConfigMap = snapshot.object()?;
        let keys = cm.data.map_or(0, |d| d.len());
        wasmop_sdk::info!("hello, {} ({keys} keys)", snapshot.name());
        if snapshot.reason() != Reason::Change {
            return Ok(Desired::new());
        }
        let greeting = format!("Hello, {}! You hold {keys} keys.", snapshot.name());
        Ok(Desired::new().event(Event::normal("Greeted", greeting)))
    }
}

wasmop_sdk::export_plugin!(Hello);

#[cfg(test)]
mod tests {
    #[test]
    fn golden() {
        wasmop_sdk::testing::check_fixtures::<super::Hello>(concat!(env!("CARGO_MANIFEST_DIR"), "/tests"));
    }

    #[test]
    fn metadata_is_valid() {
        use wasmop_sdk::Plugin;
        super::Hello::metadata().validate().unwrap();
    }
}
