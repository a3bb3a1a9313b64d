//! Which events become which work-queue keys: a change of a primary object is its own key
//! (`change`); a change of a child is its owner's key (`child-change`), found by the controller
//! owner reference or, for children in other namespaces, by the host's owner annotation; a change of
//! an object matching a triggering lookup is handed to the plugin's `map`, whose answer is enqueued
//! (`trigger`). A pump lagging behind its store, and the periodic resync, enqueue every object.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use kube::ResourceExt;
use tokio::sync::broadcast::error::RecvError;
use wasmop_apimachinery::selector::LabelSelector;
use wasmop_contract::{ObjectKey, Reason, Trigger};

use super::Controller;
use crate::cache::{PluginCache, lookup_matches};
use crate::object::CachedObject;
use crate::plan::{OWNER_ANNOTATION, PLUGIN_LABEL};
use crate::store::{KindEvent, KindStore};

/// What one store's events mean to this plugin.
struct Roles {
    primary: bool,
    owned: bool,
    /// Indexes of the triggering lookups of this kind, with their parsed selectors.
    triggers: Vec<(u32, Option<LabelSelector>)>,
}

impl Controller {
    /// Queues every object of the primary kind; returns how many.
    pub(super) fn enqueue_all(&self, reason: Reason) -> usize {
        let Some(primary) = self.primary.get() else {
            return 0;
        };
        let mut queued = 0;
        for (ns, name) in primary.keys() {
            let ns = (!ns.is_empty()).then_some(ns.as_str());
            if self.meta.namespaces.allows(ns) {
                self.queue.add(ObjectKey::new(ns, &name), reason, Duration::ZERO);
                queued += 1;
            }
        }
        queued
    }

    fn roles(&self, store: &KindStore) -> Roles {
        Roles {
            primary: store.gvk == self.meta.primary,
            owned: self.meta.owns.contains(&store.gvk),
            triggers: self
                .meta
                .lookups
                .iter()
                .enumerate()
                .filter(|(_, l)| l.triggers && l.kind == store.gvk)
                .map(|(i, l)| {
                    let selector = l
                        .label_selector
                        .as_deref()
                        .map(|s| LabelSelector::parse(s).unwrap_or_else(|_| LabelSelector::nothing()));
                    (i as u32, selector)
                })
                .collect(),
        }
    }

    /// Subscribes to `store` and turns its events into keys, if they mean anything to this plugin.
    pub(super) fn spawn_pump(self: &Arc<Self>, store: &Arc<KindStore>) {
        let roles = self.roles(store);
        if !roles.primary && !roles.owned && roles.triggers.is_empty() {
            return;
        }
        let rx = store.subscribe();
        let this = self.clone();
        let store = store.clone();
        self.spawn(tokio::spawn(async move { this.pump(rx, store, roles).await }));
    }

    pub(super) fn spawn_resync(self: &Arc<Self>, period: Duration) {
        let this = self.clone();
        self.spawn(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                this.enqueue_all(Reason::Resync);
            }
        }));
    }

    async fn pump(
        self: Arc<Self>,
        mut rx: tokio::sync::broadcast::Receiver<KindEvent>,
        store: Arc<KindStore>,
        roles: Roles,
    ) {
        loop {
            let (obj, deleted) = match rx.recv().await {
                Ok(KindEvent::Applied(o)) => (o, false),
                Ok(KindEvent::Deleted(o)) => (o, true),
                Err(RecvError::Lagged(_)) => {
                    self.enqueue_all(Reason::Resync);
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let ns = obj.namespace();
            if roles.primary && self.meta.namespaces.allows(ns.as_deref()) {
                self.queue.add(
                    ObjectKey::new(ns.as_deref(), &obj.name_any()),
                    Reason::Change,
                    Duration::ZERO,
                );
            }
            // A plugin may own objects of its primary kind: they are children too.
            if roles.owned
                && let Some(owner) = self.owner_of(&obj)
            {
                self.queue.add(owner, Reason::ChildChange, Duration::ZERO);
            }
            // A standby maps nothing: becoming leader enqueues every object anyway.
            let live = self.triggers_live.load(Ordering::SeqCst) && self.config.gate.is_open();
            for (index, selector) in roles.triggers.iter().filter(|_| live) {
                let lookup = &self.meta.lookups[*index as usize];
                if self.meta.namespaces.allows(ns.as_deref())
                    && lookup_matches(lookup.namespace.as_deref(), selector.as_ref(), &obj)
                {
                    self.map(*index, &store, &obj, deleted).await;
                }
            }
        }
    }

    /// The owner key of a child: by controller owner reference, else by the host's annotation on
    /// children this plugin made.
    fn owner_of(&self, child: &CachedObject) -> Option<ObjectKey> {
        let primary = self.primary.get()?;
        if let Some(r) = child
            .owner_references()
            .iter()
            .find(|r| r.controller == Some(true) && r.kind == primary.resource.kind)
        {
            let ns = if primary.namespaced {
                child.namespace()
            } else {
                None
            };
            return Some(ObjectKey::new(ns.as_deref(), &r.name));
        }
        if child.labels().get(PLUGIN_LABEL) != Some(&self.meta.name) {
            return None;
        }
        let (ns, name) = child.annotations().get(OWNER_ANNOTATION)?.split_once('/')?;
        Some(ObjectKey::new(Some(ns), name))
    }

    /// Asks the plugin which primary objects a changed lookup object concerns, and enqueues them.
    async fn map(&self, lookup: u32, store: &KindStore, obj: &CachedObject, deleted: bool) {
        let trigger = Trigger {
            lookup,
            object: obj.to_value(),
            deleted,
        };
        let cache = Arc::new(PluginCache::new(self.cache.clone(), self.meta.clone()));
        let plugin = self.plugin.read().expect("plugin lock").clone();
        match plugin.map(trigger, cache).await {
            Ok(keys) => {
                for key in keys {
                    if self.meta.namespaces.allows(key.namespace.as_deref()) {
                        self.queue.add(key, Reason::Trigger, Duration::ZERO);
                    }
                }
            }
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(plugin = %self.meta.name, kind = %store.gvk, object = %obj.name_any(), error = %e,
                    "the plugin's map failed; this change triggers nothing");
            }
        }
    }
}
