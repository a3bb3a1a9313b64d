// Shared source of the `stamp-v1` and `stamp-v2` test plugins (each defines `STAMP`): a plugin whose
// two versions behave differently, for hot-reload tests. Every ConfigMap labelled `stamp=yes` gets
// the annotation `stamp.wasmop.io/version: <STAMP>`.

use wasmop_sdk::k8s_openapi::api::core::v1::ConfigMap;
use wasmop_sdk::prelude::*;
use wasmop_sdk::serde_json::json;

/// Stamps labelled ConfigMaps with its version.
struct Stamp;

impl Plugin for Stamp {
    fn metadata() -> Metadata {
        Metadata::new("stamp", STAMP_VERSION, Gvk::of::<ConfigMap>()).writes(Gvk::of::<ConfigMap>(), &[Verb::Patch])
    }

    fn reconcile(s: Snapshot) -> Result<Desired, Error> {
        if s.label("stamp") != Some("yes") || s.annotation("stamp.wasmop.io/version") == Some(STAMP) {
            return Ok(Desired::new());
        }
        let target = ObjectRef::of::<ConfigMap>(s.namespace(), s.name());
        Ok(Desired::new().merge_patch(target, json!({"metadata": {"annotations": {"stamp.wasmop.io/version": STAMP}}})))
    }
}

wasmop_sdk::export_plugin!(Stamp);
