//! hog (test fixture): reconciles ConfigMaps and allocates 1 MiB blocks without bound in
//! reconcile, so the host's memory cap must stop it (a failed allocation aborts, which traps).
//! Its metadata is valid.

use wasmop_sdk::k8s_openapi::api::core::v1::ConfigMap;
use wasmop_sdk::prelude::*;

/// Eats memory.
struct Hog;

impl Plugin for Hog {
    fn metadata() -> Metadata {
        Metadata::new("hog", env!("CARGO_PKG_VERSION"), Gvk::of::<ConfigMap>())
    }

    fn reconcile(_: Snapshot) -> Result<Desired, Error> {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        loop {
            // Written to, so that no allocation can be elided.
            let mut block = vec![0u8; 1 << 20];
            block[blocks.len() % (1 << 20)] = 1;
            blocks.push(std::hint::black_box(block));
        }
    }
}

wasmop_sdk::export_plugin!(Hog);
