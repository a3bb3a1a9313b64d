//! configmap-replicator: a ConfigMap annotated `wasmop.io/replicate-to: ns-a,ns-b` is copied into
//! those namespaces — same name, same `data` and `binaryData`, the label `wasmop.io/replica: "true"`
//! and the annotation `wasmop.io/replica-of: <namespace>/<name>` — and kept in sync.
//!
//! * Namespaces that do not exist (or are terminating) are skipped, with a log line and a Warning
//!   event when the source changed; the source's own namespace is skipped. The Namespace lookup
//!   triggers: when a namespace appears (or goes), [`map`](Plugin::map) names the sources that list
//!   it, read from the host's cache, and they are reconciled again. (A copy edited by hand is
//!   repaired at once: the host maps its change to the source.)
//! * The copies are children in other namespaces: the host cannot give them owner references, so
//!   it tracks them by its labels, and prunes a copy whose namespace left the list.
//! * Deleting the source deletes the copies (the garbage collector would not): the plugin holds its
//!   finalizer on annotated ConfigMaps only, and answers a deletion with no children and without
//!   the finalizer, so the host prunes the copies and then releases the source. A source whose
//!   annotation is removed is answered the same way: its copies are pruned, its finalizer released.
//! * The copies are ConfigMaps too, so they are reconciled as primary objects: a copy has nothing to
//!   replicate, and its answer is empty (no finalizer), as is that of any ConfigMap without the
//!   annotation.

use std::collections::BTreeSet;

use wasmop_sdk::k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use wasmop_sdk::k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use wasmop_sdk::prelude::*;

/// The annotation listing the namespaces to copy into.
const REPLICATE_TO: &str = "wasmop.io/replicate-to";
/// The label marking a copy.
const REPLICA_LABEL: &str = "wasmop.io/replica";
/// The annotation on a copy naming its source.
const REPLICA_OF: &str = "wasmop.io/replica-of";

/// The replicator.
pub struct Replicator;

fn join(names: &BTreeSet<String>) -> String {
    names.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// The namespaces a source's annotation names, without its own namespace.
fn wanted_namespaces(annotation: &str, own_namespace: &str) -> BTreeSet<String> {
    annotation
        .split(',')
        .map(str::trim)
        .filter(|ns| !ns.is_empty() && *ns != own_namespace)
        .map(String::from)
        .collect()
}

/// The answer for a source that no longer replicates (deleted, or its annotation removed): no
/// children, so the host prunes the copies, and no finalizer, so it is released.
fn stop_replicating(current: &BTreeSet<String>, reason: &str, message: &str) -> Desired {
    if current.is_empty() {
        return Desired::new();
    }
    Desired::new().event(Event::normal(reason, format!("{message} {}", join(current))))
}

impl Plugin for Replicator {
    fn metadata() -> Metadata {
        Metadata::new(
            "configmap-replicator",
            env!("CARGO_PKG_VERSION"),
            Gvk::of::<ConfigMap>(),
        )
        .owns(Gvk::of::<ConfigMap>())
        .lookup(Lookup::new(Gvk::of::<Namespace>()).triggers())
        .resync_seconds(300)
    }

    fn reconcile(s: Snapshot) -> Result<Desired, Error> {
        let current: BTreeSet<String> = s
            .children::<ConfigMap>()?
            .into_iter()
            .filter_map(|c| c.metadata.namespace)
            .collect();
        if s.is_deleting() {
            return Ok(stop_replicating(
                &current,
                "ReplicasDeleted",
                "deleting the copies in",
            ));
        }
        if s.label(REPLICA_LABEL).is_some() {
            return Ok(Desired::new());
        }
        let Some(annotation) = s.annotation(REPLICATE_TO) else {
            return Ok(stop_replicating(
                &current,
                "ReplicaRemoved",
                "removed the copies in",
            ));
        };
        let source: ConfigMap = s.object()?;
        let own_namespace = s.namespace().unwrap_or_default();
        let wanted = wanted_namespaces(annotation, own_namespace);
        let existing: BTreeSet<String> = s
            .lookup::<Namespace>()?
            .into_iter()
            .filter(|ns| ns.status.as_ref().and_then(|st| st.phase.as_deref()) != Some("Terminating"))
            .filter_map(|ns| ns.metadata.name)
            .collect();
        let targets: BTreeSet<String> = wanted.intersection(&existing).cloned().collect();
        let missing: BTreeSet<String> = wanted.difference(&existing).cloned().collect();

        let mut desired = Desired::new().finalizer();
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
            // No polling: the Namespace lookup triggers, so a namespace that appears later maps
            // back to this source.
            wasmop_sdk::warn!("{}/{}: no namespace {}", own_namespace, s.name(), join(&missing));
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

    /// A Namespace changed (created, changed, deleted): the sources whose annotation names it, in
    /// every namespace, from the host's cache.
    fn map(trigger: Trigger) -> Result<Vec<ObjectKey>, Error> {
        let namespace = trigger.name();
        let sources = wasmop_sdk::cache::list::<ConfigMap>(None, None)?;
        Ok(sources
            .into_iter()
            .filter(|cm| {
                let meta = &cm.metadata;
                let own = meta.namespace.as_deref().unwrap_or_default();
                meta.annotations
                    .as_ref()
                    .and_then(|a| a.get(REPLICATE_TO))
                    .is_some_and(|list| wanted_namespaces(list, own).contains(namespace))
            })
            .filter_map(|cm| {
                let name = cm.metadata.name?;
                Some(ObjectKey::new(cm.metadata.namespace.as_deref(), &name))
            })
            .collect())
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
        use wasmop_sdk::Plugin;
        let m = super::Replicator::metadata();
        m.validate().unwrap();
        assert!(m.has_triggers());
    }
}
