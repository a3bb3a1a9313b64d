//! One plugin's controller: turns shared-watch events into work-queue keys (children map to their
//! owner), runs reconciles on a bounded number of workers, and handles the outcome — backoff on
//! errors, Retry-After on 429, an immediate retry on 409, requeue-after, permanent errors left until
//! the object changes — plus the finalizer protocol and periodic resync.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::ResourceExt;
use kube::api::DynamicObject;
use kube::runtime::events::{Event as KubeEvent, EventType as KubeEventType};
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use wasmop_apimachinery::selector::LabelSelector;
use wasmop_contract::{
    EventType, Gvk, LookupResult, Metadata, Reason, ReconcileFailure, Reconciler, Snapshot,
};

use crate::apply::{self, OWNER_ANNOTATION, Target, WriteError};
use crate::backoff::Backoff;
use crate::cache::{KindEvent, KindWatch, PluginCache, strip};
use crate::queue::WorkQueue;
use crate::{PluginSettings, Shared};

/// An object's identity inside one plugin: namespace (empty when cluster-scoped) and name.
pub type Key = (String, String);

/// Counters of one plugin, for logs, tests and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub reconciles: AtomicU64,
    pub failures: AtomicU64,
    pub writes: AtomicU64,
    pub refused: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub reconciles: u64,
    pub failures: u64,
    pub writes: u64,
    pub refused: u64,
}

pub struct Controller {
    shared: Arc<Shared>,
    pub(crate) plugin: RwLock<Arc<dyn Reconciler>>,
    pub(crate) meta: Metadata,
    settings: PluginSettings,
    pub(crate) queue: Arc<WorkQueue<Key>>,
    backoff: Mutex<Backoff<Key>>,
    pub(crate) stats: Stats,
    /// Recently recorded events, so a steady state records nothing new.
    recorded: Mutex<HashMap<(String, String, String), tokio::time::Instant>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("plugin", &self.meta.name)
            .finish()
    }
}

const EVENT_DEDUP: Duration = Duration::from_secs(600);

fn key_of(o: &DynamicObject) -> Key {
    (o.namespace().unwrap_or_default(), o.name_any())
}

fn ns_opt(ns: &str) -> Option<&str> {
    if ns.is_empty() { None } else { Some(ns) }
}

impl Controller {
    pub(crate) fn new(
        shared: Arc<Shared>,
        plugin: Arc<dyn Reconciler>,
        settings: PluginSettings,
    ) -> Arc<Controller> {
        let meta = plugin.metadata().clone();
        Arc::new(Controller {
            backoff: Mutex::new(Backoff::new(shared.config.backoff)),
            shared,
            plugin: RwLock::new(plugin),
            meta,
            settings,
            queue: Arc::new(WorkQueue::default()),
            stats: Stats::default(),
            recorded: Mutex::new(HashMap::new()),
            tasks: Mutex::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
        })
    }

    pub fn stats(&self) -> StatsSnapshot {
        StatsSnapshot {
            reconciles: self.stats.reconciles.load(Ordering::Relaxed),
            failures: self.stats.failures.load(Ordering::Relaxed),
            writes: self.stats.writes.load(Ordering::Relaxed),
            refused: self.stats.refused.load(Ordering::Relaxed),
        }
    }

    /// Every kind this plugin reads: primary, owned, looked up.
    pub fn kinds(&self) -> Vec<Gvk> {
        let mut kinds = vec![self.meta.primary.clone()];
        kinds.extend(self.meta.owns.iter().cloned());
        kinds.extend(self.meta.lookups.iter().map(|l| l.kind.clone()));
        kinds.extend(self.meta.writes.iter().map(|w| w.kind.clone()));
        kinds.sort();
        kinds.dedup();
        kinds
    }

    fn concurrency(&self) -> usize {
        self.settings
            .max_concurrent_reconciles
            .or(Some(self.meta.max_concurrent_reconciles as usize).filter(|c| *c > 0))
            .unwrap_or(self.shared.config.default_concurrency)
            .max(1)
    }

    fn resync(&self) -> Option<Duration> {
        self.settings
            .resync
            .or(Some(Duration::from_secs(u64::from(self.meta.resync_seconds))).filter(|d| !d.is_zero()))
    }

    /// Starts the watches, the event pumps, the resync timer and the workers.
    pub(crate) async fn start(self: &Arc<Self>) {
        let mut watches = Vec::new();
        for g in self.kinds() {
            watches.push(self.shared.caches.watch_eventually(&g).await);
        }
        let primary = self.shared.caches.watch_eventually(&self.meta.primary).await;
        let mut tasks = Vec::new();
        for w in watches {
            let is_primary = w.gvk == self.meta.primary;
            let is_owned = self.meta.owns.contains(&w.gvk);
            if !is_primary && !is_owned {
                continue;
            }
            // Subscribe before the initial enqueue so nothing falls in between.
            let rx = w.subscribe();
            let this = self.clone();
            let primary = primary.clone();
            tasks.push(tokio::spawn(async move {
                this.pump(rx, is_primary, is_owned, primary).await
            }));
        }
        primary.ready().await;
        self.enqueue_all(&primary, Reason::Change);
        if let Some(period) = self.resync() {
            let this = self.clone();
            let primary = primary.clone();
            tasks.push(tokio::spawn(async move {
                let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
                loop {
                    tick.tick().await;
                    this.enqueue_all(&primary, Reason::Resync);
                }
            }));
        }
        *self.tasks.lock().expect("tasks lock") = tasks;
        let mut workers = Vec::new();
        for _ in 0..self.concurrency() {
            let this = self.clone();
            let primary = primary.clone();
            workers.push(tokio::spawn(async move {
                while let Some((key, reason)) = this.queue.next().await {
                    this.reconcile(&primary, &key, reason).await;
                    this.queue.done(&key);
                }
            }));
        }
        *self.workers.lock().expect("workers lock") = workers;
        tracing::info!(plugin = %self.meta.name, version = %self.meta.version, primary = %self.meta.primary, "plugin started");
    }

    /// Stops taking new work, lets in-flight reconciles finish, and stops the pumps.
    pub(crate) async fn stop(&self) {
        self.queue.close();
        for t in self.tasks.lock().expect("tasks lock").drain(..) {
            t.abort();
        }
        let workers: Vec<_> = self.workers.lock().expect("workers lock").drain(..).collect();
        for w in workers {
            let _ = w.await;
        }
    }

    pub(crate) fn enqueue_all(&self, primary: &KindWatch, reason: Reason) {
        for o in primary.list(None, None) {
            if self.meta.namespaces.allows(o.namespace().as_deref()) {
                self.queue.add(key_of(&o), reason, Duration::ZERO);
            }
        }
    }

    /// The owner key of a child event: by owner reference, else by the host's annotation.
    fn owner_of(&self, child: &DynamicObject, primary: &KindWatch) -> Option<Key> {
        if let Some(r) = child
            .owner_references()
            .iter()
            .find(|r| r.controller == Some(true) && r.kind == primary.resource.kind)
        {
            let ns = if primary.namespaced {
                child.namespace().unwrap_or_default()
            } else {
                String::new()
            };
            return Some((ns, r.name.clone()));
        }
        if child.labels().get(apply::PLUGIN_LABEL) != Some(&self.meta.name) {
            return None;
        }
        let owner = child.annotations().get(OWNER_ANNOTATION)?;
        let (ns, name) = owner.split_once('/')?;
        Some((ns.to_string(), name.to_string()))
    }

    async fn pump(
        self: Arc<Self>,
        mut rx: tokio::sync::broadcast::Receiver<KindEvent>,
        is_primary: bool,
        is_owned: bool,
        primary: Arc<KindWatch>,
    ) {
        loop {
            match rx.recv().await {
                Ok(KindEvent::Applied(o) | KindEvent::Deleted(o)) => {
                    if is_primary && self.meta.namespaces.allows(o.namespace().as_deref()) {
                        self.queue.add(key_of(&o), Reason::Change, Duration::ZERO);
                    }
                    // A plugin may own objects of its primary kind: they are children too.
                    if is_owned && let Some(owner) = self.owner_of(&o, &primary) {
                        self.queue.add(owner, Reason::ChildChange, Duration::ZERO);
                    }
                }
                Ok(KindEvent::Resynced) | Err(RecvError::Lagged(_)) => {
                    self.enqueue_all(&primary, Reason::Resync)
                }
                Err(RecvError::Closed) => return,
            }
        }
    }

    fn snapshot(&self, target: &Target<'_>, reason: Reason, attempt: u32) -> Snapshot {
        let children = target
            .children()
            .into_iter()
            .map(|(w, o)| strip(w.to_json(&o)))
            .collect();
        let lookups = self
            .meta
            .lookups
            .iter()
            .map(|l| {
                let selector = l
                    .label_selector
                    .as_deref()
                    .and_then(|s| LabelSelector::parse(s).ok());
                let objects = match self.shared.caches.get(&l.kind) {
                    Some(w) => w
                        .list(l.namespace.as_deref(), selector.as_ref())
                        .into_iter()
                        .filter(|o| self.meta.namespaces.allows(o.namespace().as_deref()))
                        .map(|o| strip(w.to_json(&o)))
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
            object: strip(target.primary.to_json(target.object)),
            children,
            lookups,
            reason,
            attempt,
            config: self.settings.config.clone(),
        }
    }

    /// One reconcile of `key`, with everything around it.
    async fn reconcile(&self, primary: &KindWatch, key: &Key, reason: Reason) {
        let Some(object) = primary.get(ns_opt(&key.0), &key.1) else {
            // Gone: children with owner references are garbage-collected by the API server.
            self.backoff.lock().expect("backoff lock").reset(key);
            return;
        };
        let target = Target {
            client: &self.shared.client,
            caches: &self.shared.caches,
            limiter: &self.shared.limiter,
            meta: &self.meta,
            primary,
            object: &object,
        };
        let finalizer = self.meta.finalizer_name();
        let holds_finalizer = object.finalizers().contains(&finalizer);
        let reason = if object.metadata.deletion_timestamp.is_some() {
            if !(self.meta.finalizer && holds_finalizer) {
                return;
            }
            Reason::Deletion
        } else if self.meta.finalizer && !holds_finalizer {
            // The updated object comes back through the watch and is reconciled then.
            if let Err(e) = apply::set_finalizer(&target, true).await {
                self.write_failed(key, e, &object).await;
            } else {
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
            }
            return;
        } else {
            reason
        };
        let attempt = self.backoff.lock().expect("backoff lock").attempts(key) + 1;
        let snapshot = self.snapshot(&target, reason, attempt);
        let cache = Arc::new(PluginCache {
            caches: self.shared.caches.clone(),
            allowed: self.kinds(),
            scope: self.meta.namespaces.clone(),
        });
        let plugin = self.plugin.read().expect("plugin lock").clone();
        self.stats.reconciles.fetch_add(1, Ordering::Relaxed);
        let result = plugin.reconcile(snapshot, cache).await;
        let desired = match result {
            Ok(d) => d,
            Err(failure) => return self.reconcile_failed(key, failure),
        };
        match apply::execute(&target, &desired).await {
            Ok(sent) => {
                self.stats.writes.fetch_add(sent.writes, Ordering::Relaxed);
            }
            Err(e) => return self.write_failed(key, e, &object).await,
        }
        self.record_events(&target, &desired).await;
        if reason == Reason::Deletion && desired.finalizer_done {
            if let Err(e) = apply::set_finalizer(&target, false).await {
                return self.write_failed(key, e, &object).await;
            }
            self.stats.writes.fetch_add(1, Ordering::Relaxed);
        }
        self.backoff.lock().expect("backoff lock").reset(key);
        if let Some(secs) = desired.requeue_after_seconds {
            self.queue
                .add(key.clone(), Reason::Retry, Duration::from_secs(u64::from(secs)));
        }
    }

    fn reconcile_failed(&self, key: &Key, failure: ReconcileFailure) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        if failure.retryable() {
            let delay = self.backoff.lock().expect("backoff lock").failure(key);
            tracing::warn!(plugin = %self.meta.name, object = %format!("{}/{}", key.0, key.1), error = %failure, retry_in = ?delay, "reconcile failed");
            self.queue.add(key.clone(), Reason::Retry, delay);
        } else {
            tracing::warn!(plugin = %self.meta.name, object = %format!("{}/{}", key.0, key.1), error = %failure, "reconcile failed permanently; waiting for the object to change");
        }
    }

    async fn write_failed(&self, key: &Key, e: WriteError, object: &DynamicObject) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        let object_name = format!("{}/{}", key.0, key.1);
        match e {
            WriteError::Refused(reasons) => {
                self.stats.refused.fetch_add(1, Ordering::Relaxed);
                tracing::error!(plugin = %self.meta.name, object = %object_name, refused = ?reasons, "plugin asked for undeclared writes; nothing was sent");
                let message = format!(
                    "wasmop refused writes of plugin {}: {}",
                    self.meta.name,
                    reasons.join("; ")
                );
                self.publish(object, KubeEventType::Warning, "WriteRefused", &message)
                    .await;
            }
            WriteError::RetryAfter(d) => {
                self.shared.limiter.pause_for(d).await;
                tracing::info!(plugin = %self.meta.name, object = %object_name, retry_in = ?d, "API server asked to slow down");
                self.queue.add(key.clone(), Reason::Retry, d);
            }
            WriteError::Conflict(msg) => {
                tracing::debug!(plugin = %self.meta.name, object = %object_name, %msg, "write conflict; retrying with the fresh object");
                // Give the watch a moment to deliver the newer object.
                self.queue
                    .add(key.clone(), Reason::Retry, Duration::from_millis(50));
            }
            WriteError::Failed(msg) => {
                let delay = self.backoff.lock().expect("backoff lock").failure(key);
                tracing::warn!(plugin = %self.meta.name, object = %object_name, error = %msg, retry_in = ?delay, "write failed");
                self.queue.add(key.clone(), Reason::Retry, delay);
            }
        }
    }

    async fn record_events(&self, target: &Target<'_>, desired: &wasmop_contract::Desired) {
        for e in &desired.events {
            let regarding = match &e.regarding {
                None => Some(target.object.clone()),
                Some(r) => self
                    .shared
                    .caches
                    .get(&r.kind)
                    .and_then(|w| w.get(r.namespace.as_deref(), &r.name))
                    .map(|o| (*o).clone()),
            };
            let Some(obj) = regarding else { continue };
            let type_ = match e.event_type {
                EventType::Normal => KubeEventType::Normal,
                EventType::Warning => KubeEventType::Warning,
            };
            self.publish(&obj, type_, &e.reason, &e.message).await;
        }
    }

    /// Publishes an event unless the same one was recorded for the object recently.
    async fn publish(&self, obj: &DynamicObject, type_: KubeEventType, reason: &str, message: &str) {
        let dedup_key = (
            obj.uid().unwrap_or_default(),
            reason.to_string(),
            message.to_string(),
        );
        {
            let mut recorded = self.recorded.lock().expect("events lock");
            let now = tokio::time::Instant::now();
            recorded.retain(|_, at| now.duration_since(*at) < EVENT_DEDUP);
            if recorded.contains_key(&dedup_key) {
                return;
            }
            recorded.insert(dedup_key, now);
        }
        let types = obj.types.clone().unwrap_or_default();
        let reference = ObjectReference {
            api_version: Some(types.api_version),
            kind: Some(types.kind),
            name: Some(obj.name_any()),
            namespace: obj.namespace(),
            uid: obj.uid(),
            resource_version: obj.resource_version(),
            ..Default::default()
        };
        let event = KubeEvent {
            type_,
            reason: reason.to_string(),
            note: Some(message.to_string()),
            action: reason.to_string(),
            secondary: None,
        };
        self.shared.limiter.acquire().await;
        match self.shared.recorder.publish(&event, &reference).await {
            Ok(()) => {
                self.stats.writes.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::warn!(plugin = %self.meta.name, error = %e, "recording an event failed"),
        }
    }
}
