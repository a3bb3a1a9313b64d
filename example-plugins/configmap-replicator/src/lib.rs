//! configmap-replicator: a ConfigMap annotated `wasmop.io/replicate-to: ns-a,ns-b` is copied into
//! those namespaces — same name, same `data` and `binaryData`, the label `wasmop.io/replica: "true"`
//! and the annotation `wasmop.io/replica-of: <namespace>/<name>` — and kept in sync.
//!
//! * Namespaces that do not exist (or are terminating) are skipped, with a log line, a Warning
//!   event when the source changed, and a requeue to look for them again; the source's own
//!   namespace is skipped. (A copy edited by hand is repaired at once: the host maps its change to
//!   the source.)
//! * The copies are children in other namespaces: the host cannot give them owner references, so
//!   it tracks them by its labels, and prunes a copy whose namespace left the list.
//! * Deleting the source deletes the copies (the garbage collector would not): the plugin holds a
//!   finalizer and answers a deletion with no children and `finalizer_done`, and the host prunes.
//! * The copies are ConfigMaps too, so they are reconciled as primary objects: a copy has nothing to
//!   replicate, and its answer is empty.

use std::collections::BTreeSet;

use wasmop_sdk::k8s_openapi::api::core::v1::{ConfigMap, Namespace};

/// How soon a source naming a namespace that does not exist is looked at again.
const MISSING_NAMESPACE_RETRY_SECONDS: u32 = 5;
use wasmop_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use wasmop_sdk::prelude::*;

/// The annotation listing the namespaces to copy into.
const REPLICATE_TO: &str = "wasmop.io/replicate-to";
/// The label marking a copy.
const REPLICA_LABEL: &str = "wasmop.io/replica";
/// The annotation on a copy naming its source.
const REPLICA_OF: &str = "wasmop.io/replica-of";

/// The replicator.
struct Replicator;

fn join(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

impl Plugin for Replicator {
    fn metadata() -> Metadata {
        Metadata::new(
            "configmap-replicator",
            env!("CARGO_PKG_VERSION"),
            Gvk::of::<ConfigMap>(),
        )
        .owns(Gvk::of::<ConfigMap>())
        .lookup(Lookup::new(Gvk::of::<Namespace>()))
        .finalizer(true)
        .resync_seconds(300)
    }

    fn reconcile(s: Snapshot) -> Result<Desired, Error> {
        let current: BTreeSet<String> = s
            .children::<ConfigMap>()?
            .into_iter()
            .filter_map(|c| c.metadata.namespace)
            .collect();
        if s.is_deleting() {
            // No children: the host deletes every copy, then removes the finalizer.
            let mut desired = Desired::new().finalizer_done();
            if !current.is_empty() {
                desired = desired.event(Event::normal(
                    "ReplicasDeleted",
                    format!("deleting the copies in {}", join(&current)),
                ));
            }
            return Ok(desired);
        }
        if s.label(REPLICA_LABEL).is_some() {
            return Ok(Desired::new());
        }
        let source: ConfigMap = s.object()?;
        let own_namespace = s.namespace().unwrap_or_default();
        let wanted: BTreeSet<String> = s
            .annotation(REPLICATE_TO)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|ns| !ns.is_empty() && *ns != own_namespace)
            .map(String::from)
            .collect();
        let existing: BTreeSet<String> = s
            .lookup::<Namespace>()?
            .into_iter()
            .filter(|ns| ns.status.as_ref().and_then(|st| st.phase.as_deref()) != Some("Terminating"))
            .filter_map(|ns| ns.metadata.name)
            .collect();
        let targets: BTreeSet<String> = wanted.intersection(&existing).cloned().collect();
        let missing: BTreeSet<String> = wanted.difference(&existing).cloned().collect();

        let mut desired = Desired::new();
        for ns in &targets {
            desired = desired.apply(ConfigMap {
                metadata: ObjectMeta {
                    name: Some(s.name().to_string()),
                    namespace: Some(ns.clone()),
                    labels: Some([(REPLICA_LABEL.to_string(), "true".to_string())].into()),
                    annotations: Some(
                        [(REPLICA_OF.to_string(), format!("{own_namespace}/{}", s.name()))].into(),
                    ),
                    ..Default::default()
                },
                data: source.data.clone(),
                binary_data: source.binary_data.clone(),
                ..Default::default()
            });
        }
        if !missing.is_empty() {
            wasmop_sdk::warn!("{}/{}: no namespace {}", own_namespace, s.name(), join(&missing));
            // Namespaces are only looked up, not watched: look again later for the missing ones
            // (they may just not have reached the host's cache yet).
            desired = desired.requeue_after_seconds(MISSING_NAMESPACE_RETRY_SECONDS);
            if s.reason() == Reason::Change {
                desired = desired.event(Event::warning(
                    "NamespaceNotFound",
                    format!("not copied to missing namespaces: {}", join(&missing)),
                ));
            }
        }
        let added: BTreeSet<String> = targets.difference(&current).cloned().collect();
        let removed: BTreeSet<String> = current.difference(&targets).cloned().collect();
        if !added.is_empty() {
            desired = desired.event(Event::normal("Replicated", format!("copied to {}", join(&added))));
        }
        if !removed.is_empty() {
            desired = desired.event(Event::normal(
                "ReplicaRemoved",
                format!("removed the copies in {}", join(&removed)),
            ));
        }
        Ok(desired)
    }
}

wasmop_sdk::export_plugin!(Replicator);

#[cfg(test)]
mod tests {
    #[test]
    fn golden() {
        wasmop_sdk::testing::check_fixtures::<super::Replicator>(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests"
        ));
    }

    #[test]
    fn metadata_is_valid() {
        wasmop_sdk::testing::metadata::<super::Replicator>()
            .validate()
            .unwrap();
    }
}
