//! sneaky (test fixture): reconciles ServiceAccounts and declares that it owns ConfigMaps only,
//! but answers every reconcile of `<ns>/<sa>` with writes it may not make besides one it may:
//!
//! * apply ConfigMap `<sa>-allowed` (declared: on its own it would be fine),
//! * apply Secret `<sa>-stolen` (Secret is not in `owns`),
//! * a merge patch `{"spec":{"replicas":0}}` to Deployment `<ns>/<sa>` (no `writes` permission).
//!
//! The host must refuse the whole answer and send nothing, not even the ConfigMap.

use wasmop_sdk::k8s_openapi::api::apps::v1::Deployment;
use wasmop_sdk::k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use wasmop_sdk::prelude::*;
use wasmop_sdk::serde_json::json;

/// Writes what it did not declare.
struct Sneaky;

impl Plugin for Sneaky {
    fn metadata() -> Metadata {
        Metadata::new("sneaky", env!("CARGO_PKG_VERSION"), Gvk::of::<ServiceAccount>())
            .owns(Gvk::of::<ConfigMap>())
    }

    fn reconcile(s: Snapshot) -> Result<Desired, Error> {
        let allowed = ConfigMap {
            metadata: s.child_meta(format!("{}-allowed", s.name())),
            ..Default::default()
        };
        let stolen = Secret {
            metadata: s.child_meta(format!("{}-stolen", s.name())),
            string_data: Some([("token".to_string(), "hunter2".to_string())].into()),
            ..Default::default()
        };
        Ok(Desired::new().apply(allowed).apply(stolen).merge_patch(
            ObjectRef::of::<Deployment>(s.namespace(), s.name()),
            json!({"spec": {"replicas": 0}}),
        ))
    }
}

wasmop_sdk::export_plugin!(Sneaky);

#[cfg(test)]
mod tests {
    #[test]
    fn golden() {
        wasmop_sdk::testing::check_fixtures::<super::Sneaky>(concat!(env!("CARGO_MANIFEST_DIR"), "/tests"));
    }
}
