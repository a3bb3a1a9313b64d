//! The reconcile engine: everything a controller needs that is hard and shared, for any number of
//! plugins. It owns the kube client, one watch and cache per kind ([`cache`], [`store`]), a work
//! queue, workers and per-key backoff per plugin ([`controller`], [`queue`], [`backoff`]), the
//! global write rate limit ([`ratelimit`]), and turns a plugin's desired state into API writes
//! ([`plan`], [`writer`]). With leader election ([`leader`]) only the host holding the lease
//! reconciles and writes ([`gate`]); its Prometheus metrics are defined once in [`metrics`].
//!
//! It sees plugins only through [`wasmop_contract::Reconciler`]: no wasmtime types here.

pub mod backoff;
pub mod cache;
pub mod controller;
pub mod gate;
pub mod leader;
pub mod metrics;
pub mod object;
pub mod plan;
pub mod queue;
pub mod ratelimit;
pub mod store;
pub mod writer;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use kube::ResourceExt;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use wasmop_contract::{Gvk, Reconciler};

pub use backoff::BackoffConfig;
pub use controller::{Forbidden, StatsSnapshot};
pub use ratelimit::RateLimitConfig;

use cache::{Cache, Caches};
use controller::{Controller, ControllerConfig};
use gate::Gate;
use metrics::Metrics;
use writer::KubeWriter;

/// Engine-wide settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub backoff: BackoffConfig,
    pub rate_limit: RateLimitConfig,
    /// Workers per plugin when the plugin does not say.
    pub default_concurrency: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            backoff: BackoffConfig::default(),
            rate_limit: RateLimitConfig::default(),
            default_concurrency: 4,
        }
    }
}

/// Per-plugin settings from the host (overrides of what the plugin declares).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PluginSettings {
    /// Passed to every reconcile as `snapshot.config`.
    pub config: serde_json::Value,
    pub max_concurrent_reconciles: Option<usize>,
    pub resync: Option<Duration>,
    /// Whether a reconcile whose snapshot the plugin already answered may be skipped (the result
    /// cache, see `controller::memo`); `None` is yes. Off only for a plugin that breaks the
    /// contract's promise that its answer depends on nothing but its snapshot and cache reads.
    pub cache_results: Option<bool>,
}

/// What [`Engine::upsert_plugin`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    /// The plugin was not running: it starts.
    Started,
    /// Same declaration and settings: the new code took over in place (no watch restarted).
    Swapped,
    /// The declaration (kinds, scope, ...) or the settings changed: stopped, then started again.
    Restarted,
}

/// Where a running plugin is in its start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginState {
    /// Not reconciling yet, and why (a kind not served yet, a cache not synced yet).
    Starting { reason: String },
    /// Reconciling.
    Running,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no plugin named {0} is running")]
    NotRunning(String),
}

/// The engine (see the crate docs).
pub struct Engine {
    client: Client,
    config: EngineConfig,
    caches: Arc<Caches>,
    limiter: Arc<ratelimit::TokenBucket>,
    controllers: tokio::sync::Mutex<HashMap<String, Arc<Controller>>>,
    gate: Arc<Gate>,
    metrics: Metrics,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("caches", &self.caches).finish()
    }
}

impl Engine {
    pub fn new(client: Client, config: EngineConfig) -> Engine {
        let metrics = Metrics::default();
        Engine {
            caches: Arc::new(Caches::new(client.clone(), metrics.clone())),
            limiter: Arc::new(ratelimit::TokenBucket::new(config.rate_limit)),
            client,
            config,
            controllers: tokio::sync::Mutex::new(HashMap::new()),
            gate: Arc::new(Gate::default()),
            metrics,
        }
    }

    /// Whether this engine reconciles and writes (see [`gate`]). Leading by default; a standby
    /// (`false`) keeps its watches and plugins but its workers take no keys and its writers refuse.
    /// Becoming leader reconciles every object of every plugin once.
    pub fn set_leading(&self, leading: bool) {
        if self.gate.set(leading) {
            tracing::info!(leading, "leadership changed");
        }
    }

    pub fn is_leading(&self) -> bool {
        self.gate.is_open()
    }

    /// The leadership gate, for the leader elector.
    pub fn gate(&self) -> &Arc<Gate> {
        &self.gate
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Registers the engine's metrics in `registry` (prefix `wasmop`), with the gauges read now:
    /// queue depth and reconciles in flight per plugin, objects cached per kind, leadership.
    pub async fn register_metrics(&self, registry: &mut Registry) {
        self.metrics.register(registry);
        let depth = Family::<metrics::Labels1, Gauge>::default();
        let running = Family::<metrics::Labels1, Gauge>::default();
        for (name, c) in self.controllers.lock().await.iter() {
            let labels = metrics::plugin(name);
            depth.get_or_create(&labels).set(c.queue.pending() as i64);
            running.get_or_create(&labels).set(c.queue.running() as i64);
        }
        let cached = Family::<metrics::Labels1, Gauge>::default();
        for (gvk, n) in self.caches.sizes() {
            cached.get_or_create(&metrics::kind(&gvk)).set(n as i64);
        }
        let leader = Gauge::<i64>::default();
        leader.set(i64::from(self.is_leading()));
        registry.register("queue_depth", "Keys waiting in a plugin's work queue", depth);
        registry.register("running_reconciles", "Reconciles in flight", running);
        registry.register("cached_objects", "Objects in the shared cache, by kind", cached);
        registry.register(
            "leader",
            "Whether this host reconciles (1: it holds the lease, or leader election is off)",
            leader,
        );
    }

    /// Names of the running plugins, sorted.
    pub async fn plugins(&self) -> Vec<String> {
        let mut names: Vec<String> = self.controllers.lock().await.keys().cloned().collect();
        names.sort();
        names
    }

    fn controller(&self, plugin: Arc<dyn Reconciler>, settings: PluginSettings) -> Arc<Controller> {
        let writer = KubeWriter::new(
            self.client.clone(),
            self.limiter.clone(),
            plugin.metadata().field_manager(),
            self.gate.clone(),
            self.metrics.clone(),
            plugin.metadata().name.clone(),
        );
        let config = ControllerConfig {
            backoff: self.config.backoff,
            default_concurrency: self.config.default_concurrency,
            kind_retry: Duration::from_secs(2),
            gate: self.gate.clone(),
            metrics: self.metrics.clone(),
        };
        Controller::new(
            plugin,
            settings,
            self.caches.clone() as Arc<dyn Cache>,
            Arc::new(writer),
            config,
        )
    }

    /// Starts `plugin`, or brings the running plugin of the same name to this version: swapped in
    /// place when its declaration (all but `version`) and settings are unchanged — reconciles in
    /// flight finish on the old code, a key is never reconciled by both, every object is then
    /// reconciled once by the new one — and restarted otherwise (the watches it needs start, the
    /// ones nobody needs any more stop). Start-up continues in the background: see
    /// [`plugin_state`](Self::plugin_state).
    pub async fn upsert_plugin(
        &self,
        plugin: Arc<dyn Reconciler>,
        settings: PluginSettings,
    ) -> Result<Upserted, EngineError> {
        let name = plugin.metadata().name.clone();
        let mut controllers = self.controllers.lock().await;
        let outcome = match controllers.get(&name) {
            None => Upserted::Started,
            Some(c) => {
                let mut old = (*c.meta).clone();
                old.version.clone_from(&plugin.metadata().version);
                if old == *plugin.metadata() && c.settings == settings {
                    c.swap(plugin);
                    return Ok(Upserted::Swapped);
                }
                let c = controllers.remove(&name).expect("present");
                c.stop().await;
                Upserted::Restarted
            }
        };
        let c = self.controller(plugin, settings);
        c.start();
        controllers.insert(name, c);
        self.retain_needed(&controllers);
        Ok(outcome)
    }

    /// Stops a plugin after its in-flight reconciles finish; watches nobody needs any more stop.
    pub async fn remove_plugin(&self, name: &str) -> Result<(), EngineError> {
        let mut controllers = self.controllers.lock().await;
        let c = controllers
            .remove(name)
            .ok_or_else(|| EngineError::NotRunning(name.into()))?;
        c.stop().await;
        self.retain_needed(&controllers);
        Ok(())
    }

    fn retain_needed(&self, controllers: &HashMap<String, Arc<Controller>>) {
        let needed: Vec<Gvk> = controllers.values().flat_map(|c| c.kinds()).collect();
        self.caches.retain(&needed);
    }

    /// Where a running plugin is in its start-up; `None` when no such plugin runs.
    pub async fn plugin_state(&self, name: &str) -> Option<PluginState> {
        self.controllers.lock().await.get(name).map(|c| c.state())
    }

    /// Waits until a plugin reconciles, or `timeout` passes; returns its state then.
    pub async fn wait_running(&self, name: &str, timeout: Duration) -> Option<PluginState> {
        let c = self.controllers.lock().await.get(name).cloned()?;
        let _ = tokio::time::timeout(timeout, c.running()).await;
        Some(c.state())
    }

    /// Reconciles every object of a running plugin again (reason `resync`), as its periodic resync
    /// does; returns how many objects were queued.
    pub async fn resync(&self, name: &str) -> Result<usize, EngineError> {
        let controllers = self.controllers.lock().await;
        let c = controllers
            .get(name)
            .ok_or_else(|| EngineError::NotRunning(name.into()))?;
        Ok(c.resync())
    }

    pub async fn stats(&self, name: &str) -> Option<StatsSnapshot> {
        self.controllers.lock().await.get(name).map(|c| c.stats())
    }

    /// The last write of a running plugin that the API server forbade (403), unless one of its
    /// writes succeeded since: the permission its RBAC lacks, in the API server's words.
    pub async fn forbidden(&self, name: &str) -> Option<Forbidden> {
        self.controllers
            .lock()
            .await
            .get(name)
            .and_then(|c| c.forbidden())
    }

    /// Keys waiting or running for a plugin.
    pub async fn backlog(&self, name: &str) -> Option<(usize, usize)> {
        self.controllers
            .lock()
            .await
            .get(name)
            .map(|c| (c.queue.pending(), c.queue.running()))
    }

    /// `namespace/name` of the cached objects of `kind` that carry `finalizer`.
    pub fn objects_with_finalizer(&self, kind: &Gvk, finalizer: &str) -> Vec<String> {
        let Some(store) = self.caches.get(kind) else {
            return Vec::new();
        };
        store
            .list(None, None)
            .into_iter()
            .filter(|o| o.finalizers().iter().any(|f| f == finalizer))
            .map(|o| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()))
            .collect()
    }

    /// Kinds with a running shared watch.
    pub fn watched_kinds(&self) -> Vec<Gvk> {
        self.caches.watched()
    }

    /// Stops every plugin: all stop taking work at once, then each finishes its reconciles in
    /// flight (each bounded by the plugin's deadline and its writes).
    pub async fn shutdown(&self) {
        for c in self.controllers.lock().await.values() {
            c.close();
        }
        for n in self.plugins().await {
            let _ = self.remove_plugin(&n).await;
        }
    }
}
