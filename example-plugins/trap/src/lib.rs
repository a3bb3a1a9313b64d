//! trap (test fixture): reconciles ConfigMaps and panics in every reconcile, which traps the
//! instance. Its metadata is valid.

use wasmop_sdk::k8s_openapi::api::core::v1::ConfigMap;
use wasmop_sdk::prelude::*;

/// Panics.
struct Trap;

impl Plugin for Trap {
    fn metadata() -> Metadata {
        Metadata::new("trap", env!("CARGO_PKG_VERSION"), Gvk::of::<ConfigMap>())
    }

    fn reconcile(s: Snapshot) -> Result<Desired, Error> {
        panic!("trap: deliberate panic while reconciling {}", s.name());
    }
}

wasmop_sdk::export_plugin!(Trap);
