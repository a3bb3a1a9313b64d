//! What one reconcile sees: the primary object, its children (from the owner index, not a scan),
//! each declared lookup's results (its namespace is a range of the store, its selector applied, the
//! plugin's namespaces respected), all without `managedFields`, plus the attempt and configuration.
//!
//! It is gathered in two steps: the cached objects it is made of ([`Inputs`], shared `Arc`s, cheap),
//! whose [`Fingerprint`] the result cache compares, and only when the plugin is really called,
//! their JSON: as values ([`Inputs::snapshot`]), or as the cached text itself for a plugin that
//! takes text ([`Inputs::snapshot_text`], a WebAssembly plugin: nothing parsed or serialised).

use std::sync::Arc;

use kube::ResourceExt;
use wasmop_apimachinery::selector::LabelSelector;
use wasmop_contract::{LookupResult, Reason, Snapshot, SnapshotText};

use super::Controller;
use super::memo::{Fingerprint, FingerprintBuilder};
use crate::object::CachedObject;
use crate::plan::Context;
use crate::store::KindStore;

/// Objects of one store.
type Found = (Arc<KindStore>, Vec<Arc<CachedObject>>);

/// The cached objects a snapshot is made of, in snapshot order.
pub(super) struct Inputs {
    children: Vec<(Arc<KindStore>, Arc<CachedObject>)>,
    /// Per declared lookup, its store (if watched) and matching objects.
    lookups: Vec<Option<Found>>,
}

impl Controller {
    pub(super) fn inputs(&self, cx: &Context<'_>) -> Inputs {
        let lookups = self
            .meta
            .lookups
            .iter()
            .map(|l| {
                let selector = l
                    .label_selector
                    .as_deref()
                    .map(|s| LabelSelector::parse(s).unwrap_or_else(|_| LabelSelector::nothing()));
                let store = self.cache.get(&l.kind)?;
                let objects = store
                    .list(l.namespace.as_deref(), selector.as_ref())
                    .into_iter()
                    .filter(|o| self.meta.namespaces.allows(o.namespace().as_deref()))
                    .collect();
                Some((store, objects))
            })
            .collect();
        Inputs {
            children: cx.children(),
            lookups,
        }
    }
}

impl Inputs {
    /// The identity of the snapshot these inputs make, with `object` as the primary object.
    pub(super) fn fingerprint(&self, object: &CachedObject) -> Fingerprint {
        let mut f = FingerprintBuilder::default();
        f.object(object);
        f.part();
        for (_, child) in &self.children {
            f.object(child);
        }
        for lookup in &self.lookups {
            f.part();
            for o in lookup.iter().flat_map(|(_, objects)| objects) {
                f.object(o);
            }
        }
        f.finish()
    }

    /// The snapshot itself: every object as JSON.
    pub(super) fn snapshot(
        &self,
        cx: &Context<'_>,
        controller: &Controller,
        reason: Reason,
        attempt: u32,
    ) -> Snapshot {
        let children = self.children.iter().map(|(_, o)| o.to_value()).collect();
        let lookups = controller
            .meta
            .lookups
            .iter()
            .zip(&self.lookups)
            .map(|(l, found)| LookupResult {
                lookup: l.clone(),
                objects: found
                    .iter()
                    .flat_map(|(_, objects)| objects.iter().map(|o| o.to_value()))
                    .collect(),
            })
            .collect();
        Snapshot {
            object: cx.object.to_value(),
            children,
            lookups,
            reason,
            attempt,
            config: controller.settings.config.clone(),
        }
    }

    /// The same snapshot with every object as its cached JSON text.
    pub(super) fn snapshot_text(
        &self,
        cx: &Context<'_>,
        controller: &Controller,
        reason: Reason,
        attempt: u32,
    ) -> SnapshotText {
        let text = |o: &CachedObject| o.json().to_owned();
        let lookups = controller
            .meta
            .lookups
            .iter()
            .zip(&self.lookups)
            .map(|(l, found)| {
                let objects = found
                    .iter()
                    .flat_map(|(_, objects)| objects.iter().map(|o| text(o)));
                (l.clone(), objects.collect())
            })
            .collect();
        SnapshotText {
            object: text(cx.object),
            children: self.children.iter().map(|(_, o)| text(o)).collect(),
            lookups,
            reason,
            attempt,
            config: controller.settings.config.to_string(),
        }
    }
}
