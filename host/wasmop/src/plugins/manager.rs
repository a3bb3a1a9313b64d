//! The plugin lifecycle: a file found in the directory is compiled and checked off the reconcile path;
//! only a valid component starts, or replaces the running version of, its plugin
//! ([`Engine::upsert_plugin`] decides between swapping the code in place and restarting). A broken
//! file is reported (logs and status) and the previous version keeps running. A started plugin is
//! `starting` until the engine serves it (its kinds served, its caches synced), then `running`. A
//! removed file stops its plugin after in-flight work drains; its children stay, and objects still
//! carrying its finalizer are reported.
//!
//! ```text
//!              file added / changed
//!   (absent) ─────────────────────────> loading ──ok──> starting ──> running ──file changed──> loading
//!      ^                                   │                                                      │
//!      │                                   └─error─> failed (previous version,                    │
//!      │                                             if any, keeps running) <─error───────────────┘
//!      └────────────── file removed: drain in-flight reconciles, stop ──────────────┘
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;
use wasmop_contract::Metadata;
use wasmop_engine::{Engine, PluginSettings, PluginState};
use wasmop_runtime::{Plugin, PluginLimits, Runtime};

use super::dir::{self, Found};

/// What `wasmop plugins` shows for one file.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct PluginStatus {
    pub file: String,
    pub name: Option<String>,
    pub version: Option<String>,
    /// sha256 of the running component (first 12 hex digits).
    pub hash: Option<String>,
    pub state: State,
    /// Why a plugin is `starting` (a kind not served yet, a cache not synced yet).
    #[serde(default)]
    pub reason: Option<String>,
    pub last_error: Option<String>,
    /// The last write of the running plugin that the API server forbade (403), in its words (the
    /// verb, resource, group and namespace the plugin's RBAC lacks); gone once a write succeeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forbidden: Option<String>,
    /// The last call of the running version that the host contained — stopped at its deadline or
    /// memory cap, an answer over the answer size cap or not valid, a trap — in the engine's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
    /// Whether the running version was loaded from the compile cache (no compilation).
    #[serde(default)]
    pub from_cache: bool,
}

#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Loaded and handed to the engine, which does not reconcile with it yet (see `reason`).
    Starting,
    /// Reconciling.
    Running,
    /// Not running: the file could not be loaded (see `last_error`).
    Failed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Starting => "starting",
            State::Running => "running",
            State::Failed => "failed",
        }
    }
}

/// The version of a file the engine runs.
struct Running {
    meta: Metadata,
    /// The loaded plugin (a clone of what the engine runs: it shares its memory high-water mark).
    plugin: Plugin,
    /// Logs the plugin's way from `starting` to `running`; ends with this version.
    reporter: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.reporter.abort();
    }
}

struct Entry {
    status: PluginStatus,
    /// The version last tried (loaded or failed), so an unchanged broken file is not retried.
    fingerprint: (String, Option<String>),
    running: Option<Running>,
}

/// See the module docs.
pub struct PluginManager {
    runtime: Runtime,
    engine: Arc<Engine>,
    dir: PathBuf,
    defaults: PluginLimits,
    settle: Duration,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// Whether the directory has been read once (readiness waits for it).
    synced: std::sync::atomic::AtomicBool,
    /// How many times the directory was synced.
    syncs: std::sync::atomic::AtomicU64,
    /// How long loads took, by result (see [`crate::telemetry`]).
    load_duration: crate::telemetry::LoadDurations,
}

impl std::fmt::Debug for PluginManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginManager")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Logs where a plugin is in its start-up whenever that changes, until it runs (or is gone).
async fn report_start(engine: Arc<Engine>, name: String, version: String) {
    let mut state = engine.plugin_state(&name).await;
    let mut last = None;
    loop {
        match state {
            None => return,
            Some(PluginState::Running) => {
                tracing::info!(plugin = %name, version = %version, "plugin running");
                return;
            }
            Some(PluginState::Starting { reason }) => {
                if last.as_ref() != Some(&reason) {
                    tracing::info!(plugin = %name, version = %version, reason = %reason, "plugin starting");
                    last = Some(reason);
                }
            }
        }
        // Returns as soon as the plugin runs; otherwise its state after a while.
        state = engine.wait_running(&name, Duration::from_secs(1)).await;
    }
}

impl PluginManager {
    pub fn new(runtime: Runtime, engine: Arc<Engine>, dir: PathBuf, defaults: PluginLimits) -> PluginManager {
        PluginManager {
            runtime,
            engine,
            dir,
            defaults,
            settle: Duration::from_millis(250),
            entries: Mutex::new(BTreeMap::new()),
            synced: std::sync::atomic::AtomicBool::new(false),
            syncs: Default::default(),
            load_duration: crate::telemetry::load_durations(),
        }
    }

    /// Whether the directory was read once and every plugin that runs has synced its watches (a
    /// standby replica too): what `/readyz` answers.
    pub async fn ready(&self) -> Result<(), String> {
        if !self.synced.load(std::sync::atomic::Ordering::SeqCst) {
            return Err("the plugin directory has not been read yet".into());
        }
        let waiting: Vec<String> = self
            .status()
            .await
            .into_iter()
            .filter(|s| s.state == State::Starting)
            .map(|s| format!("{}: {}", s.name.unwrap_or(s.file), s.reason.unwrap_or_default()))
            .collect();
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(waiting.join("; "))
        }
    }

    /// Compile-cache hits and misses so far (`None` without a cache).
    pub fn cache_stats(&self) -> Option<(usize, usize)> {
        self.runtime.cache_stats()
    }

    /// All the compile cache's counters, rejected artifacts included (`None` without a cache).
    pub fn artifact_cache_stats(&self) -> Option<wasmop_runtime::CacheStats> {
        self.runtime.artifact_cache_stats()
    }

    pub fn load_durations(&self) -> &crate::telemetry::LoadDurations {
        &self.load_duration
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The directory this manager follows.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// The status of every plugin file; the state of a running one as the engine has it now.
    pub async fn status(&self) -> Vec<PluginStatus> {
        let entries = self.entries.lock().await;
        let mut out = Vec::with_capacity(entries.len());
        for entry in entries.values() {
            let mut status = entry.status.clone();
            (status.state, status.reason) = match &entry.running {
                None => (State::Failed, None),
                Some(running) => match self.engine.plugin_state(&running.meta.name).await {
                    Some(PluginState::Running) => (State::Running, None),
                    Some(PluginState::Starting { reason }) => (State::Starting, Some(reason)),
                    None => (State::Failed, Some("the engine does not run it".into())),
                },
            };
            status.forbidden = match &entry.running {
                Some(running) => self
                    .engine
                    .forbidden(&running.meta.name)
                    .await
                    .map(|f| f.to_string()),
                None => None,
            };
            status.last_failure = entry.running.as_ref().and_then(|r| r.plugin.last_failure());
            out.push(status);
        }
        out
    }

    /// The peak linear memory of one call of each running plugin so far: (plugin name, bytes).
    pub async fn memory_high_water(&self) -> Vec<(String, u64)> {
        self.entries
            .lock()
            .await
            .values()
            .filter_map(|e| e.running.as_ref())
            .map(|r| (r.meta.name.clone(), r.plugin.memory_high_water()))
            .collect()
    }

    /// Each running plugin's calls the runtime contained, by how, and its log lines dropped by its
    /// log rate limit: (plugin name, counts, dropped lines).
    pub async fn contained(&self) -> Vec<(String, Vec<(wasmop_runtime::Containment, u64)>, u64)> {
        self.entries
            .lock()
            .await
            .values()
            .filter_map(|e| e.running.as_ref())
            .map(|r| {
                let p = &r.plugin;
                (r.meta.name.clone(), p.contained(), p.log_lines_dropped())
            })
            .collect()
    }

    /// The CustomResourceDefinitions the running plugins declare: (plugin name, document).
    pub async fn declared_crds(&self) -> Vec<(String, String)> {
        self.entries
            .lock()
            .await
            .values()
            .filter_map(|e| e.running.as_ref())
            .flat_map(|r| r.meta.crds.iter().map(|crd| (r.meta.name.clone(), crd.clone())))
            .collect()
    }

    /// How many times the directory has been synced (read and compared with what runs).
    pub fn syncs(&self) -> u64 {
        self.syncs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Brings the running plugins in line with the directory; returns whether anything changed.
    pub async fn sync(&self) -> bool {
        self.syncs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let present = match dir::scan(&self.dir) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(dir = %self.dir.display(), error = %e, "cannot read the plugin directory");
                return false;
            }
        };
        let stable = match dir::stable_scan(&self.dir, self.settle).await {
            Ok(s) => s,
            Err(_) => return false,
        };
        let mut changed = false;
        for (stem, found) in stable {
            let known = self
                .entries
                .lock()
                .await
                .get(&stem)
                .map(|e| e.fingerprint.clone());
            if known.as_ref() != Some(&found.fingerprint()) {
                self.load(found).await;
                changed = true;
            }
        }
        let gone: Vec<String> = self
            .entries
            .lock()
            .await
            .keys()
            .filter(|stem| !present.contains_key(*stem))
            .cloned()
            .collect();
        for stem in gone {
            self.remove(&stem).await;
            changed = true;
        }
        if changed {
            self.log_table().await;
        }
        self.synced.store(true, std::sync::atomic::Ordering::SeqCst);
        changed
    }

    async fn fail(&self, found: &Found, error: String) {
        tracing::error!(file = %found.wasm.display(), error = %error, "plugin not loaded; the previous version (if any) keeps running");
        let mut entries = self.entries.lock().await;
        let entry = entries.entry(found.stem.clone()).or_insert_with(|| Entry {
            status: PluginStatus {
                file: found.wasm.display().to_string(),
                name: None,
                version: None,
                hash: None,
                state: State::Failed,
                reason: None,
                last_error: None,
                forbidden: None,
                last_failure: None,
                from_cache: false,
            },
            fingerprint: found.fingerprint(),
            running: None,
        });
        entry.fingerprint = found.fingerprint();
        entry.status.last_error = Some(error);
        if entry.running.is_none() {
            entry.status.state = State::Failed;
        }
    }

    async fn load(&self, found: Found) {
        let settings = match &found.settings {
            Ok(s) => s.clone(),
            Err(e) => return self.fail(&found, e.clone()).await,
        };
        let mut limits = self.defaults;
        if let Some(ms) = settings.deadline_ms {
            limits.deadline = Duration::from_millis(ms);
        }
        if let Some(mib) = settings.memory_mib {
            limits.memory_bytes = mib << 20;
        }
        let runtime = self.runtime.clone();
        let hits_before = runtime.cache_stats().map(|(hits, _)| hits);
        let (file, bytes) = (found.wasm.display().to_string(), found.bytes.clone());
        // Compiling takes CPU seconds: off the async workers, and off every reconcile path.
        let started = std::time::Instant::now();
        let loaded = tokio::task::spawn_blocking(move || runtime.load_bytes(&file, &bytes, limits)).await;
        let result = if matches!(loaded, Ok(Ok(_))) {
            "ok"
        } else {
            "error"
        };
        self.load_duration
            .get_or_create(&[("result", result.to_string())])
            .observe(started.elapsed().as_secs_f64());
        let plugin = match loaded {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return self.fail(&found, e.to_string()).await,
            Err(e) => return self.fail(&found, format!("loading panicked: {e}")).await,
        };
        let from_cache = self.runtime.cache_stats().map(|(hits, _)| hits) > hits_before;
        let meta = plugin.metadata().clone();
        // The limits travel with the plugin itself: a change of limits alone swaps the code in place.
        let plugin_settings = PluginSettings {
            config: settings.config_json(),
            max_concurrent_reconciles: settings.max_concurrent_reconciles,
            resync: settings.resync_seconds.map(Duration::from_secs),
            cache_results: settings.cache_results,
        };
        let mut entries = self.entries.lock().await;
        if let Some((other, _)) = entries.iter().find(|(stem, e)| {
            **stem != found.stem && e.running.as_ref().is_some_and(|r| r.meta.name == meta.name)
        }) {
            let msg = format!("plugin name {:?} is already used by {other}.wasm", meta.name);
            drop(entries);
            return self.fail(&found, msg).await;
        }
        let previous = entries.get_mut(&found.stem).and_then(|e| e.running.take());
        // The file now holds a plugin of another name: the old one stops first.
        if let Some(old) = &previous
            && old.meta.name != meta.name
        {
            let _ = self.engine.remove_plugin(&old.meta.name).await;
        }
        let upserted = match self
            .engine
            .upsert_plugin(Arc::new(plugin.clone()), plugin_settings)
            .await
        {
            Ok(u) => u,
            Err(e) => {
                // Whatever of the previous version still runs stays in the table.
                if let Some(old) = previous
                    && self.engine.plugin_state(&old.meta.name).await.is_some()
                    && let Some(entry) = entries.get_mut(&found.stem)
                {
                    entry.running = Some(old);
                }
                drop(entries);
                return self.fail(&found, e.to_string()).await;
            }
        };
        tracing::info!(
            plugin = %meta.name, version = %meta.version, file = %found.wasm.display(), hash = %&found.hash[..12],
            how = ?upserted, from_cache, "plugin loaded"
        );
        drop(previous);
        let reporter = tokio::spawn(report_start(
            self.engine.clone(),
            meta.name.clone(),
            meta.version.clone(),
        ));
        entries.insert(
            found.stem.clone(),
            Entry {
                status: PluginStatus {
                    file: found.wasm.display().to_string(),
                    name: Some(meta.name.clone()),
                    version: Some(meta.version.clone()),
                    hash: Some(found.hash[..12].to_string()),
                    state: State::Starting,
                    reason: None,
                    last_error: None,
                    forbidden: None,
                    last_failure: None,
                    from_cache,
                },
                fingerprint: found.fingerprint(),
                running: Some(Running {
                    meta,
                    plugin,
                    reporter,
                }),
            },
        );
    }

    async fn remove(&self, stem: &str) {
        let Some(entry) = self.entries.lock().await.remove(stem) else {
            return;
        };
        let Some(running) = entry.running else { return };
        let name = running.meta.name.clone();
        // Finalizers are requested per object: any object of the primary kind may carry one.
        let finalizer = running.meta.finalizer_name();
        let held = self
            .engine
            .objects_with_finalizer(&running.meta.primary, &finalizer);
        if !held.is_empty() {
            tracing::warn!(
                plugin = %name, finalizer = %finalizer, objects = ?held,
                "plugin removed while objects carry its finalizer: they stay until it is restored or the finalizer is removed by hand"
            );
        }
        drop(running);
        let _ = self.engine.remove_plugin(&name).await;
        tracing::info!(plugin = %name, file = %entry.status.file, "plugin stopped (its children stay)");
    }

    async fn log_table(&self) {
        for s in self.status().await {
            tracing::info!(
                file = %s.file, name = s.name.as_deref().unwrap_or("-"), version = s.version.as_deref().unwrap_or("-"),
                hash = s.hash.as_deref().unwrap_or("-"), state = s.state.as_str(), reason = s.reason.as_deref().unwrap_or("-"),
                last_error = s.last_error.as_deref().unwrap_or("-"),
                "plugin"
            );
        }
    }

    /// Syncs now, then on every change of the directory (debounced), until `shutdown` fires.
    /// A slow periodic rescan backs up file-system events, which some volume types drop.
    pub async fn watch(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        use notify::Watcher;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = match notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            // Opening a file is an event too (inotify's IN_OPEN): without this, every sync's own
            // reads of the plugin files would start the next sync, forever.
            if res.is_ok_and(|e| e.kind.is_access()) {
                return;
            }
            let _ = tx.send(());
        }) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the plugin directory; falling back to polling");
                None
            }
        };
        if let Some(w) = watcher.as_mut()
            && let Err(e) = w.watch(&self.dir, notify::RecursiveMode::NonRecursive)
        {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot watch the plugin directory; falling back to polling");
        }
        // Only now, with the watch in place, read the directory: a change from here on is seen.
        self.sync().await;
        let mut rescan = tokio::time::interval(Duration::from_secs(30));
        rescan.tick().await;
        loop {
            tokio::select! {
                Some(()) = rx.recv() => {
                    // Debounce: wait for a quiet moment before reading the directory.
                    while tokio::time::timeout(Duration::from_millis(200), rx.recv()).await.is_ok_and(|m| m.is_some()) {}
                }
                _ = rescan.tick() => {}
                _ = shutdown.changed() => return,
            }
            self.sync().await;
        }
    }
}
