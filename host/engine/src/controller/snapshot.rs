//! What one reconcile sees: the primary object, its children (from the owner index, not a scan),
//! each declared lookup's results (its namespace is a range of the store, its selector applied, the
//! plugin's namespaces respected), all without `managedFields`, plus the attempt and configuration.

use kube::ResourceExt;
use wasmop_apimachinery::selector::LabelSelector;
use wasmop_contract::{LookupResult, Reason, Snapshot};

use super::Controller;
use crate::cache::strip;
use crate::plan::Context;

impl Controller {
    pub(super) fn snapshot(&self, cx: &Context<'_>, reason: Reason, attempt: u32) -> Snapshot {
        let children = cx
            .children()
            .into_iter()
            .map(|(store, o)| strip(store.to_json(&o)))
            .collect();
        let lookups = self
            .meta
            .lookups
            .iter()
            .map(|l| {
                let selector = l
                    .label_selector
                    .as_deref()
                    .map(|s| LabelSelector::parse(s).unwrap_or_else(|_| LabelSelector::nothing()));
                let objects = match self.cache.get(&l.kind) {
                    Some(store) => store
                        .list(l.namespace.as_deref(), selector.as_ref())
                        .into_iter()
                        .filter(|o| self.meta.namespaces.allows(o.namespace().as_deref()))
                        .map(|o| strip(store.to_json(&o)))
                        .collect(),
                    None => Vec::new(),
                };
                LookupResult {
                    lookup: l.clone(),
                    objects,
                }
            })
            .collect();
        Snapshot {
            object: strip(cx.primary.to_json(cx.object)),
            children,
            lookups,
            reason,
            attempt,
            config: self.settings.config.clone(),
        }
    }
}
