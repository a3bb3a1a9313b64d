//! One reconcile of one key: the object from the primary store, the deletion and parking checks,
//! the snapshot (or the result cache's answer for a snapshot already answered), the plugin call, the
//! plan, the writes in order, then the plugin's events, and the outcome handed to the error policy.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::ResourceExt;
use wasmop_contract::{Desired, EventType, ObjectKey, Reason, ReconcileFailure};

use super::Controller;
use crate::cache::PluginCache;
use crate::object::CachedObject;
use crate::plan::{self, Context};
use crate::store::KindStore;
use crate::writer::Write;

/// How long an identical event about the same object is not recorded again.
const EVENT_DEDUP: Duration = Duration::from_secs(600);

/// When each recent event was recorded, by a 64-bit hash of the object's uid, the reason and the
/// message (a collision, at odds of about one in 2^64 per pair, would only skip one duplicate
/// event): 16 bytes an entry rather than three strings. The map holds every event of the last
/// [`EVENT_DEDUP`], and up to twice that between sweeps: with the strings, a 30-minute soak's
/// map grew by a 3 MB step late in the run as its table reached that size.
///
/// Expired entries are dropped when the map has doubled since the last sweep, so that a sweep
/// costs O(1) per event, not O(events) as on every publish.
#[derive(Debug, Default)]
pub(super) struct Recorded {
    at: HashMap<u64, tokio::time::Instant>,
    sweep_at: usize,
    hasher: std::hash::RandomState,
}

impl Recorded {
    /// Whether the event (object uid, reason, message) was not recorded within [`EVENT_DEDUP`]
    /// of `now`; if so it is, from now.
    fn first_in_a_while(&mut self, event: (&str, &str, &str), now: tokio::time::Instant) -> bool {
        let key = std::hash::BuildHasher::hash_one(&self.hasher, event);
        let fresh = |at: &tokio::time::Instant| now.duration_since(*at) < EVENT_DEDUP;
        if self.at.get(&key).is_some_and(fresh) {
            return false;
        }
        if self.at.len() >= self.sweep_at {
            self.at.retain(|_, at| fresh(at));
            self.sweep_at = (self.at.len() * 2).max(1024);
        }
        self.at.insert(key, now);
        true
    }
}

/// How one reconcile ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Nothing to do: the object is gone, or being deleted without the plugin's finalizer.
    Nothing,
    /// Skipped: the object's last failure was permanent and it has not changed.
    Parked,
    /// Skipped: the plugin already answered this very snapshot, and its answer is true.
    Unchanged,
    Success,
    Error,
}

impl Outcome {
    pub(super) fn label(self) -> Option<&'static str> {
        match self {
            Outcome::Nothing => None,
            Outcome::Parked => Some("parked"),
            Outcome::Unchanged => Some("unchanged"),
            Outcome::Success => Some("success"),
            Outcome::Error => Some("error"),
        }
    }
}

impl Controller {
    pub(super) async fn reconcile(&self, key: &ObjectKey, reason: Reason) -> Outcome {
        let primary = self.primary().clone();
        let Some(object) = primary.get(key.namespace.as_deref(), &key.name) else {
            // Gone: children with owner references are garbage-collected by the API server.
            self.forget(key);
            return Outcome::Nothing;
        };
        if self.is_parked(key, &object) {
            self.stats.parked.fetch_add(1, Ordering::Relaxed);
            return Outcome::Parked;
        }
        let reason = if object.metadata.deletion_timestamp.is_some() {
            if !object.finalizers().contains(&self.meta.finalizer_name()) {
                return Outcome::Nothing;
            }
            Reason::Deletion
        } else {
            reason
        };
        let cx = Context {
            meta: &self.meta,
            cache: &*self.cache,
            primary: &primary,
            object: &object,
        };
        let inputs = self.inputs(&cx);
        let fingerprint = inputs.fingerprint(&object);
        // A deletion is always the plugin's to answer: its cleanup may be what the snapshot lacks.
        if reason != Reason::Deletion
            && self.settings.cache_results != Some(false)
            && self.memo.hit(key, fingerprint)
        {
            self.stats.unchanged.fetch_add(1, Ordering::Relaxed);
            self.succeeded(key, None);
            return Outcome::Unchanged;
        }
        let attempt = self.backoff.lock().expect("backoff lock").attempts(key) + 1;
        let cache = Arc::new(PluginCache::new(self.cache.clone(), self.meta.clone()));
        let plugin = self.plugin.read().expect("plugin lock").clone();
        let call = if plugin.takes_text() {
            plugin.reconcile_text(inputs.snapshot_text(&cx, self, reason, attempt), cache.clone())
        } else {
            plugin.reconcile(inputs.snapshot(&cx, self, reason, attempt), cache.clone())
        };
        drop(inputs);
        self.stats.reconciles.fetch_add(1, Ordering::Relaxed);
        self.memo.forget(key);
        let desired = match call.await {
            Ok(d) if d.errors.is_empty() => d,
            Ok(d) => {
                let failure = ReconcileFailure::Invalid(d.errors.join("; "));
                self.reconcile_failed(key, &object, failure).await;
                return Outcome::Error;
            }
            Err(failure) => {
                self.reconcile_failed(key, &object, failure).await;
                return Outcome::Error;
            }
        };
        let mut plan = match plan::plan(&cx, &desired, &wasmop_apimachinery::time::now()) {
            Ok(p) => p,
            Err(e) => {
                self.write_failed(key, &object, e).await;
                return Outcome::Error;
            }
        };
        self.stats.skipped.fetch_add(plan.skipped, Ordering::Relaxed);
        let mut unseen = self.unseen.take(key, &*self.cache);
        super::unseen::prune(&mut plan, &unseen);
        for write in &plan.writes {
            if let Err(e) = self.writer.write(write).await {
                self.unseen.keep(key, unseen, &*self.cache);
                self.write_failed(key, &object, e).await;
                return Outcome::Error;
            }
            super::unseen::wrote(&mut unseen, write);
            self.wrote();
        }
        self.unseen.keep(key, unseen, &*self.cache);
        self.record_events(&primary, &object, &desired).await;
        self.memo
            .remember(key, &self.meta.primary, fingerprint, &desired, cache.was_read());
        self.succeeded(key, desired.requeue_after_seconds);
        Outcome::Success
    }

    async fn record_events(&self, primary: &KindStore, object: &Arc<CachedObject>, desired: &Desired) {
        for e in &desired.events {
            let regarding = match &e.regarding {
                None => Some((object.clone(), primary.resource.clone())),
                Some(r) => self.cache.get(&r.kind).and_then(|store| {
                    store
                        .get(r.namespace.as_deref(), &r.name)
                        .map(|o| (o, store.resource.clone()))
                }),
            };
            if let Some((obj, resource)) = regarding {
                self.publish_about(&obj, &resource, e.event_type, &e.reason, &e.message)
                    .await;
            }
        }
    }

    /// Publishes an event about the primary object `obj`.
    pub(super) async fn publish(&self, obj: &CachedObject, type_: EventType, reason: &str, message: &str) {
        let resource = self.primary().resource.clone();
        self.publish_about(obj, &resource, type_, reason, message).await;
    }

    /// Publishes an event unless the same one was recorded for the object recently.
    async fn publish_about(
        &self,
        obj: &CachedObject,
        resource: &kube::api::ApiResource,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) {
        let uid = obj.uid().unwrap_or_default();
        {
            let mut recorded = self.recorded.lock().expect("events lock");
            if !recorded.first_in_a_while((&uid, reason, message), tokio::time::Instant::now()) {
                return;
            }
        }
        let write = Write::Event {
            regarding: ObjectReference {
                api_version: Some(resource.api_version.clone()),
                kind: Some(resource.kind.clone()),
                name: Some(obj.name_any()),
                namespace: obj.namespace(),
                uid: obj.uid(),
                resource_version: obj.resource_version(),
                ..Default::default()
            },
            event_type,
            reason: reason.to_string(),
            message: message.to_string(),
        };
        match self.writer.write(&write).await {
            Ok(()) => {
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(plugin = %self.meta.name, error = %e, "recording an event failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_recorded_again_only_after_the_dedup_period_and_old_ones_are_swept() {
        let mut r = Recorded::default();
        let t0 = tokio::time::Instant::now();
        let uids: Vec<String> = (0..6000).map(|i| format!("uid-{i}")).collect();
        let key = |i: usize| (uids[i].as_str(), "Created", "m");
        assert!(r.first_in_a_while(key(0), t0));
        assert!(!r.first_in_a_while(key(0), t0 + Duration::from_secs(1)));
        // Another reason or message about the same object is another event.
        assert!(r.first_in_a_while(("uid-0", "Deleted", "m"), t0 + Duration::from_secs(1)));
        assert!(r.first_in_a_while(("uid-0", "Created", "n"), t0 + Duration::from_secs(1)));
        assert!(r.first_in_a_while(key(0), t0 + EVENT_DEDUP));
        // Thousands of events later than the period: the map does not keep them all.
        let later = t0 + EVENT_DEDUP * 3;
        for i in 1..3000 {
            assert!(r.first_in_a_while(key(i), t0 + EVENT_DEDUP));
        }
        for i in 3000..6000 {
            assert!(r.first_in_a_while(key(i), later));
        }
        assert!(r.at.len() < 4000, "expired events were swept: {}", r.at.len());
    }
}
