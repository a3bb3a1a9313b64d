//! spin (test fixture): reconciles ConfigMaps and never returns from reconcile (a busy loop), so
//! the host's deadline must stop it. Its metadata is valid.

use wasmop_sdk::k8s_openapi::api::core::v1::ConfigMap;
use wasmop_sdk::prelude::*;

/// Loops forever.
struct Spin;

impl Plugin for Spin {
    fn metadata() -> Metadata {
        Metadata::new("spin", env!("CARGO_PKG_VERSION"), Gvk::of::<ConfigMap>())
    }

    fn reconcile(_: Snapshot) -> Result<Desired, Error> {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }
}

wasmop_sdk::export_plugin!(Spin);
