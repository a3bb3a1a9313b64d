//! The reconcile engine: everything a controller needs that is hard and shared, for any number of
//! plugins. It owns the kube client, one watch and cache per kind ([`cache`]), a work queue, workers
//! and per-key backoff per plugin ([`controller`], [`queue`], [`backoff`]), the global write rate
//! limit ([`ratelimit`]), and turns a plugin's desired state into API writes ([`apply`]).
//!
//! It sees plugins only through [`wasmop_contract::Reconciler`]: no wasmtime types here.

pub mod apply;
pub mod backoff;
pub mod cache;
pub mod controller;
pub mod queue;
pub mod ratelimit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use wasmop_contract::{Gvk, Reason, Reconciler};

pub use backoff::BackoffConfig;
pub use controller::StatsSnapshot;
pub use ratelimit::RateLimitConfig;

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
#[derive(Debug, Clone, Default)]
pub struct PluginSettings {
    /// Passed to every reconcile as `snapshot.config`.
    pub config: serde_json::Value,
    pub max_concurrent_reconciles: Option<usize>,
    pub resync: Option<Duration>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("kind {gvk} is not served by the API server: {reason}")]
    UnknownKind { gvk: Gvk, reason: String },
    #[error("a plugin named {0} is already running")]
    Duplicate(String),
    #[error("no plugin named {0} is running")]
    NotRunning(String),
}

/// What every controller shares.
pub(crate) struct Shared {
    pub client: Client,
    pub config: EngineConfig,
    pub caches: Arc<cache::Caches>,
    pub limiter: ratelimit::TokenBucket,
    pub recorder: Recorder,
}

/// The engine (see the crate docs).
pub struct Engine {
    shared: Arc<Shared>,
    controllers: tokio::sync::Mutex<HashMap<String, Arc<controller::Controller>>>,
    names: Mutex<Vec<String>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("plugins", &self.plugins())
            .finish()
    }
}

impl Engine {
    pub fn new(client: Client, config: EngineConfig) -> Engine {
        let reporter = Reporter {
            controller: "wasmop".into(),
            instance: None,
        };
        let shared = Arc::new(Shared {
            caches: Arc::new(cache::Caches::new(client.clone())),
            limiter: ratelimit::TokenBucket::new(config.rate_limit),
            recorder: Recorder::new(client.clone(), reporter),
            client,
            config,
        });
        Engine {
            shared,
            controllers: tokio::sync::Mutex::new(HashMap::new()),
            names: Mutex::new(Vec::new()),
        }
    }

    /// Names of the running plugins.
    pub fn plugins(&self) -> Vec<String> {
        self.names.lock().expect("names lock").clone()
    }

    /// Starts reconciling with `plugin`. Waits for the watches it needs (a kind that is not served
    /// yet, such as a CRD applied later, is waited for in the background).
    pub async fn add_plugin(
        &self,
        plugin: Arc<dyn Reconciler>,
        settings: PluginSettings,
    ) -> Result<(), EngineError> {
        let name = plugin.metadata().name.clone();
        let mut controllers = self.controllers.lock().await;
        if controllers.contains_key(&name) {
            return Err(EngineError::Duplicate(name));
        }
        let c = controller::Controller::new(self.shared.clone(), plugin, settings);
        controllers.insert(name.clone(), c.clone());
        self.names.lock().expect("names lock").push(name);
        drop(controllers);
        tokio::spawn(async move { c.start().await });
        Ok(())
    }

    /// Replaces a running plugin's code: reconciles in flight finish on the old version, every object
    /// is then reconciled once by the new one (a key is never reconciled by both at once).
    pub async fn replace_plugin(&self, plugin: Arc<dyn Reconciler>) -> Result<(), EngineError> {
        let name = plugin.metadata().name.clone();
        let controllers = self.controllers.lock().await;
        let c = controllers
            .get(&name)
            .ok_or_else(|| EngineError::NotRunning(name.clone()))?;
        *c.plugin.write().expect("plugin lock") = plugin;
        if let Some(primary) = self.shared.caches.get(&c.meta.primary) {
            c.enqueue_all(&primary, Reason::Change);
        }
        Ok(())
    }

    /// Stops a plugin after its in-flight reconciles finish; watches nobody needs any more stop.
    pub async fn remove_plugin(&self, name: &str) -> Result<(), EngineError> {
        let c = self
            .controllers
            .lock()
            .await
            .remove(name)
            .ok_or_else(|| EngineError::NotRunning(name.into()))?;
        self.names.lock().expect("names lock").retain(|n| n != name);
        c.stop().await;
        let needed: Vec<Gvk> = self
            .controllers
            .lock()
            .await
            .values()
            .flat_map(|c| c.kinds())
            .collect();
        self.shared.caches.retain(&needed);
        Ok(())
    }

    pub async fn stats(&self, name: &str) -> Option<StatsSnapshot> {
        self.controllers.lock().await.get(name).map(|c| c.stats())
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
        use kube::ResourceExt;
        let Some(w) = self.shared.caches.get(kind) else {
            return Vec::new();
        };
        w.list(None, None)
            .into_iter()
            .filter(|o| o.finalizers().iter().any(|f| f == finalizer))
            .map(|o| format!("{}/{}", o.namespace().unwrap_or_default(), o.name_any()))
            .collect()
    }

    /// Kinds with a running shared watch.
    pub fn watched_kinds(&self) -> Vec<Gvk> {
        self.shared.caches.watched()
    }

    /// Stops every plugin.
    pub async fn shutdown(&self) {
        let names = self.plugins();
        for n in names {
            let _ = self.remove_plugin(&n).await;
        }
    }
}
