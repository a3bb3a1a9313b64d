//! One plugin's controller: its lifecycle (start-up with a visible state, workers, stop) and the
//! pieces it is made of, one concern each:
//!
//! * [`triggers`]: which events become which work-queue keys (primary changes, children to their
//!   owner, triggering lookups through the plugin's `map`), plus resync;
//! * [`snapshot`]: what a reconcile sees, read from the stores;
//! * [`memo`]: the result cache, which skips a reconcile whose snapshot was already answered;
//! * [`reconcile`]: one reconcile of one key: snapshot, plugin, plan, writes, events;
//! * [`policy`]: what a failure means — backoff, Retry-After, a quick retry on conflict, or parking
//!   a permanent error until the object or the plugin changes.
//!
//! The controller reads through a [`Cache`] and writes through a [`Writer`], so that all of it is
//! unit-tested on tokio's paused clock with in-memory stores and a recording writer (`tests.rs`).
//! Every task it starts is owned here and ended by [`Controller::stop`].
//!
//! Workers reconcile only while the engine's [`Gate`] is open (this host leads, or leader election
//! is off); a key taken while it is closed is dropped, because every object is enqueued when the
//! gate opens.

mod memo;
mod policy;
mod reconcile;
mod snapshot;
mod triggers;
mod unseen;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use tokio::task::JoinHandle;
use wasmop_contract::{Gvk, Metadata, ObjectKey, Reason, Reconciler};

use crate::backoff::{Backoff, BackoffConfig};
use crate::cache::Cache;
use crate::gate::Gate;
use crate::metrics::{self, Metrics};
use crate::queue::WorkQueue;
use crate::store::KindStore;
use crate::writer::Writer;
use crate::{PluginSettings, PluginState};

/// Counters of one plugin, for logs, tests and metrics.
#[derive(Debug, Default)]
pub struct Stats {
    pub reconciles: AtomicU64,
    pub failures: AtomicU64,
    pub writes: AtomicU64,
    pub refused: AtomicU64,
    pub skipped: AtomicU64,
    pub parked: AtomicU64,
    pub forbidden: AtomicU64,
    pub unchanged: AtomicU64,
}

/// A copy of [`Stats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    pub reconciles: u64,
    pub failures: u64,
    pub writes: u64,
    pub refused: u64,
    /// Writes found already done in the cache, not sent.
    pub skipped: u64,
    /// Reconciles not run because the object's last failure was permanent and it has not changed.
    pub parked: u64,
    /// Writes the API server forbade (403): the plugin's RBAC lacks a permission.
    pub forbidden: u64,
    /// Reconciles answered from the result cache: the snapshot was the one last answered, so the
    /// plugin was not called and nothing was written.
    pub unchanged: u64,
}

/// The last write of a plugin that the API server forbade (403), kept until a later write of the
/// plugin succeeds: which permission its RBAC lacks, for `wasmop plugins`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    /// The primary object whose reconcile wrote (`namespace/name`).
    pub object: String,
    /// The write that was refused (`apply of PodDisruptionBudget demo/web`).
    pub write: String,
    /// The API server's message, which names the user, verb, resource, group and namespace.
    pub message: String,
}

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (reconciling {}): {}",
            self.write, self.object, self.message
        )
    }
}

/// What a controller is set up with.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    pub backoff: BackoffConfig,
    /// Workers when neither the settings nor the plugin say.
    pub default_concurrency: usize,
    /// How long to wait before asking again for a kind that is not served.
    pub kind_retry: Duration,
    /// Whether this host may reconcile (it leads).
    pub gate: Arc<Gate>,
    pub metrics: Metrics,
}

/// See the module docs.
pub struct Controller {
    pub(crate) meta: Arc<Metadata>,
    pub(crate) settings: PluginSettings,
    plugin: RwLock<Arc<dyn Reconciler>>,
    cache: Arc<dyn Cache>,
    writer: Arc<dyn Writer>,
    config: ControllerConfig,
    pub(crate) queue: WorkQueue<ObjectKey>,
    backoff: Mutex<Backoff<ObjectKey>>,
    /// Keys whose last failure was permanent, with the resourceVersion it happened at.
    parked: Mutex<HashMap<ObjectKey, Option<String>>>,
    /// The last answer per key, by snapshot.
    memo: memo::Memo,
    /// Children each key applied that the cache does not show yet, pruned with those it shows.
    unseen: unseen::Unseen,
    stats: Stats,
    /// The last forbidden write, until a write succeeds.
    forbidden: Mutex<Option<Forbidden>>,
    /// Recently recorded events, so a steady state records nothing new.
    recorded: Mutex<reconcile::Recorded>,
    state: tokio::sync::watch::Sender<PluginState>,
    primary: OnceLock<Arc<KindStore>>,
    /// Whether changes of triggering lookups are mapped yet: not during the first lists, which the
    /// start-up's reconcile of every object covers (mapping each listed object would call the
    /// plugin's `map` once per object of the lookup kind for nothing).
    triggers_live: AtomicBool,
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

impl Controller {
    pub(crate) fn new(
        plugin: Arc<dyn Reconciler>,
        settings: PluginSettings,
        cache: Arc<dyn Cache>,
        writer: Arc<dyn Writer>,
        config: ControllerConfig,
    ) -> Arc<Controller> {
        let meta = Arc::new(plugin.metadata().clone());
        let labels = metrics::plugin(&meta.name);
        let queue = WorkQueue::with_metrics(
            config.metrics.queue_adds.get_or_create(&labels).clone(),
            config.metrics.queue_duration.get_or_create(&labels).clone(),
        );
        Arc::new(Controller {
            backoff: Mutex::new(Backoff::new(config.backoff)),
            meta,
            settings,
            plugin: RwLock::new(plugin),
            cache,
            writer,
            config,
            queue,
            parked: Mutex::new(HashMap::new()),
            memo: memo::Memo::default(),
            unseen: unseen::Unseen::default(),
            stats: Stats::default(),
            forbidden: Mutex::new(None),
            recorded: Mutex::default(),
            state: tokio::sync::watch::channel(PluginState::Starting {
                reason: "starting".into(),
            })
            .0,
            primary: OnceLock::new(),
            triggers_live: AtomicBool::new(false),
            tasks: Mutex::new(Vec::new()),
            workers: Mutex::new(Vec::new()),
        })
    }

    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.stats;
        StatsSnapshot {
            reconciles: s.reconciles.load(Ordering::Relaxed),
            failures: s.failures.load(Ordering::Relaxed),
            writes: s.writes.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            skipped: s.skipped.load(Ordering::Relaxed),
            parked: s.parked.load(Ordering::Relaxed),
            forbidden: s.forbidden.load(Ordering::Relaxed),
            unchanged: s.unchanged.load(Ordering::Relaxed),
        }
    }

    /// The last write the API server forbade, unless a write succeeded since.
    pub fn forbidden(&self) -> Option<Forbidden> {
        self.forbidden.lock().expect("forbidden lock").clone()
    }

    pub fn state(&self) -> PluginState {
        self.state.borrow().clone()
    }

    /// Waits until the plugin reconciles (tests, start-up reports).
    pub async fn running(&self) {
        let mut rx = self.state.subscribe();
        let _ = rx.wait_for(|s| *s == PluginState::Running).await;
    }

    fn set_state(&self, state: PluginState) {
        let changed = self.state.send_if_modified(|s| {
            if *s == state {
                false
            } else {
                *s = state.clone();
                true
            }
        });
        if changed && let PluginState::Starting { reason } = &state {
            tracing::info!(plugin = %self.meta.name, %reason, "plugin starting");
        }
    }

    /// Every kind this plugin reads or writes (each needs a watch).
    pub fn kinds(&self) -> Vec<Gvk> {
        self.meta.kinds()
    }

    /// Swaps in new code for the same declaration: reconciles in flight finish on the old version,
    /// parked failures are retried, every object is reconciled once by the new one.
    pub(crate) fn swap(&self, plugin: Arc<dyn Reconciler>) {
        *self.plugin.write().expect("plugin lock") = plugin;
        self.parked.lock().expect("parked lock").clear();
        self.memo.clear();
        self.enqueue_all(Reason::Change);
    }

    /// Reconciles every object again (reason `resync`); returns how many keys were queued.
    pub(crate) fn resync(&self) -> usize {
        self.enqueue_all(Reason::Resync)
    }

    fn concurrency(&self) -> usize {
        self.settings
            .max_concurrent_reconciles
            .or(Some(self.meta.max_concurrent_reconciles as usize).filter(|c| *c > 0))
            .unwrap_or(self.config.default_concurrency)
            .max(1)
    }

    fn resync_period(&self) -> Option<Duration> {
        self.settings
            .resync
            .or(Some(Duration::from_secs(u64::from(self.meta.resync_seconds))).filter(|d| !d.is_zero()))
    }

    /// Starts the controller in the background: the returned task (owned by the controller) waits
    /// for every kind to be served and its cache synced — saying why in the plugin's state while it
    /// waits — then starts the event pumps, the resync timer and the workers.
    pub(crate) fn start(self: &Arc<Self>) {
        let this = self.clone();
        let task = tokio::spawn(async move { this.run().await });
        self.tasks.lock().expect("tasks lock").push(task);
    }

    async fn run(self: Arc<Self>) {
        let mut stores = Vec::new();
        for gvk in self.kinds() {
            stores.push(self.store_eventually(&gvk).await);
        }
        let primary = stores
            .iter()
            .find(|s| s.gvk == self.meta.primary)
            .expect("the primary kind is one of the kinds")
            .clone();
        let _ = self.primary.set(primary);
        // Subscribe before waiting for the caches, so that no event falls in between.
        for store in &stores {
            self.spawn_pump(store);
        }
        for store in &stores {
            if !store.is_ready() {
                self.set_state(PluginState::Starting {
                    reason: format!("waiting for the cache of {} to sync", store.gvk),
                });
                store.ready().await;
            }
        }
        // From here on a change of a triggering lookup is mapped: one seen before is covered by the
        // reconcile of every object, which reads the lookups when it runs.
        self.triggers_live.store(true, Ordering::SeqCst);
        self.enqueue_all(Reason::Change);
        if let Some(period) = self.resync_period() {
            self.spawn_resync(period);
        }
        self.spawn_leadership_follower();
        let mut workers = self.workers.lock().expect("workers lock");
        for _ in 0..self.concurrency() {
            let this = self.clone();
            workers.push(tokio::spawn(async move { this.work().await }));
        }
        drop(workers);
        self.set_state(PluginState::Running);
        tracing::info!(plugin = %self.meta.name, version = %self.meta.version, primary = %self.meta.primary, "plugin started");
    }

    /// One worker: reconciles due keys until the queue closes. While the gate is closed it drops
    /// them (the queue of a standby stays empty): every object is enqueued when the gate opens.
    async fn work(&self) {
        while let Some((key, reason)) = self.queue.next().await {
            if !self.config.gate.is_open() {
                self.queue.done(&key);
                continue;
            }
            let started = tokio::time::Instant::now();
            let outcome = self.reconcile(&key, reason).await;
            let labels = metrics::plugin(&self.meta.name);
            if let Some(outcome) = outcome.label() {
                let m = &self.config.metrics;
                m.reconciles
                    .get_or_create(&[labels[0].clone(), ("outcome", outcome.to_string())])
                    .inc();
                if outcome != "parked" {
                    m.reconcile_duration
                        .get_or_create(&labels)
                        .observe(started.elapsed().as_secs_f64());
                }
            }
            self.queue.done(&key);
        }
    }

    /// Every time the gate opens (this host won the lease), every object is reconciled once.
    fn spawn_leadership_follower(self: &Arc<Self>) {
        let mut rx = self.config.gate.subscribe();
        let this = self.clone();
        self.spawn(tokio::spawn(async move {
            let mut open = *rx.borrow_and_update();
            while rx.changed().await.is_ok() {
                let now = *rx.borrow_and_update();
                if now && !open {
                    this.enqueue_all(Reason::Change);
                }
                open = now;
            }
        }));
    }

    /// The store of `gvk`, asking again while the kind is not served (a CRD applied later).
    async fn store_eventually(&self, gvk: &Gvk) -> Arc<KindStore> {
        let mut warned = false;
        loop {
            match self.cache.store(gvk).await {
                Ok(s) => return s,
                Err(reason) => {
                    let reason = format!("waiting for kind {gvk} to be served: {reason}");
                    if !warned {
                        tracing::warn!(plugin = %self.meta.name, %reason, "plugin cannot start yet");
                        warned = true;
                    }
                    self.set_state(PluginState::Starting { reason });
                    tokio::time::sleep(self.config.kind_retry).await;
                }
            }
        }
    }

    pub(crate) fn primary(&self) -> &Arc<KindStore> {
        self.primary
            .get()
            .expect("workers start after the primary store is set")
    }

    fn spawn(&self, task: JoinHandle<()>) {
        self.tasks.lock().expect("tasks lock").push(task);
    }

    /// Stops taking new work (reconciles in flight go on).
    pub(crate) fn close(&self) {
        self.queue.close();
    }

    /// Stops taking new work, ends every task the controller started, and lets the reconciles in
    /// flight finish.
    pub(crate) async fn stop(&self) {
        self.close();
        for t in self.tasks.lock().expect("tasks lock").drain(..) {
            t.abort();
        }
        let workers: Vec<_> = self.workers.lock().expect("workers lock").drain(..).collect();
        for w in workers {
            let _ = w.await;
        }
    }
}
