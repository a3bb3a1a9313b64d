//! The plugin lifecycle: a file found in the directory is compiled and checked off the reconcile path;
//! only a valid component starts, or replaces the running version of, its plugin. A broken file is
//! reported (logs and status) and the previous version keeps running. A removed file stops its plugin
//! after in-flight work drains; its children stay, and objects still carrying its finalizer are
//! reported.
//!
//! ```text
//!              file added / changed
//!   (absent) ─────────────────────────> loading ──ok──> running ──file changed──> loading
//!      ^                                   │               │                         │
//!      │                                   └─error─> failed (previous version,       │
//!      │                                             if any, keeps running) <─error──┘
//!      └────────────── file removed: drain in-flight reconciles, stop ──────────────┘
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Mutex;
use wasmop_contract::{Metadata, Reconciler};
use wasmop_engine::{Engine, PluginSettings};
use wasmop_runtime::{PluginLimits, Runtime};

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
    pub last_error: Option<String>,
    /// Whether the running version was loaded from the compile cache (no compilation).
    #[serde(default)]
    pub from_cache: bool,
}

#[derive(Debug, Clone, Copy, Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Running,
    Failed,
}

struct Running {
    meta: Metadata,
    settings_key: String,
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
}

/// The parts of the metadata that decide watches and permissions: when they change, the plugin is
/// restarted rather than swapped in place.
fn shape(m: &Metadata) -> String {
    let mut m = m.clone();
    m.version.clear();
    serde_json::to_string(&m).unwrap_or_default()
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
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The status of every plugin file.
    pub async fn status(&self) -> Vec<PluginStatus> {
        self.entries
            .lock()
            .await
            .values()
            .map(|e| e.status.clone())
            .collect()
    }

    /// Brings the running plugins in line with the directory; returns whether anything changed.
    pub async fn sync(&self) -> bool {
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
                last_error: None,
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
        let loaded = tokio::task::spawn_blocking(move || runtime.load_bytes(&file, &bytes, limits)).await;
        let plugin = match loaded {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return self.fail(&found, e.to_string()).await,
            Err(e) => return self.fail(&found, format!("loading panicked: {e}")).await,
        };
        let from_cache = self.runtime.cache_stats().map(|(hits, _)| hits) > hits_before;
        let meta = plugin.metadata().clone();
        let plugin_settings = PluginSettings {
            config: settings.config_json(),
            max_concurrent_reconciles: settings.max_concurrent_reconciles,
            resync: settings.resync_seconds.map(Duration::from_secs),
        };
        let settings_key = format!("{:?}{:?}", plugin_settings, limits);
        let mut entries = self.entries.lock().await;
        if let Some((other, _)) = entries.iter().find(|(stem, e)| {
            **stem != found.stem && e.running.as_ref().is_some_and(|r| r.meta.name == meta.name)
        }) {
            let msg = format!("plugin name {:?} is already used by {other}.wasm", meta.name);
            drop(entries);
            return self.fail(&found, msg).await;
        }
        let previous = entries.get_mut(&found.stem).and_then(|e| e.running.take());
        let plugin: Arc<dyn Reconciler> = Arc::new(plugin);
        let result = match &previous {
            Some(old)
                if old.meta.name == meta.name
                    && shape(&old.meta) == shape(&meta)
                    && old.settings_key == settings_key =>
            {
                self.engine.replace_plugin(plugin).await
            }
            Some(old) => {
                let _ = self.engine.remove_plugin(&old.meta.name).await;
                self.engine.add_plugin(plugin, plugin_settings).await
            }
            None => self.engine.add_plugin(plugin, plugin_settings).await,
        };
        if let Err(e) = result {
            if let (Some(old), Some(entry)) = (previous, entries.get_mut(&found.stem)) {
                entry.running = Some(old);
            }
            drop(entries);
            return self.fail(&found, e.to_string()).await;
        }
        tracing::info!(
            plugin = %meta.name, version = %meta.version, file = %found.wasm.display(), hash = %&found.hash[..12],
            swapped = previous.is_some(), "plugin running"
        );
        entries.insert(
            found.stem.clone(),
            Entry {
                status: PluginStatus {
                    file: found.wasm.display().to_string(),
                    name: Some(meta.name.clone()),
                    version: Some(meta.version.clone()),
                    hash: Some(found.hash[..12].to_string()),
                    state: State::Running,
                    last_error: None,
                    from_cache,
                },
                fingerprint: found.fingerprint(),
                running: Some(Running { meta, settings_key }),
            },
        );
    }

    async fn remove(&self, stem: &str) {
        let Some(entry) = self.entries.lock().await.remove(stem) else {
            return;
        };
        let Some(running) = entry.running else { return };
        let name = running.meta.name.clone();
        if running.meta.finalizer {
            let held = self
                .engine
                .objects_with_finalizer(&running.meta.primary, &running.meta.finalizer_name());
            if !held.is_empty() {
                tracing::warn!(
                    plugin = %name, finalizer = %running.meta.finalizer_name(), objects = ?held,
                    "plugin removed while objects carry its finalizer: they stay until it is restored or the finalizer is removed by hand"
                );
            }
        }
        let _ = self.engine.remove_plugin(&name).await;
        tracing::info!(plugin = %name, file = %entry.status.file, "plugin stopped (its children stay)");
    }

    async fn log_table(&self) {
        for s in self.status().await {
            tracing::info!(
                file = %s.file, name = s.name.as_deref().unwrap_or("-"), version = s.version.as_deref().unwrap_or("-"),
                hash = s.hash.as_deref().unwrap_or("-"), state = ?s.state, last_error = s.last_error.as_deref().unwrap_or("-"),
                "plugin"
            );
        }
    }

    /// Syncs now, then on every change of the directory (debounced), until `shutdown` fires.
    /// A slow periodic rescan backs up file-system events, which some volume types drop.
    pub async fn watch(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        use notify::Watcher;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut watcher = match notify::recommended_watcher(move |_res: notify::Result<notify::Event>| {
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
