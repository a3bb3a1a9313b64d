//! The host proper, in-process: a kube client, the reconcile engine, the WebAssembly runtime and the
//! plugin directory manager with its status endpoint ([`Host`]). `wasmop run` and `wasmop dev` start
//! one; so do the integration tests. Also what `dev` needs to fill a server: [`apply_manifests`],
//! [`apply_documents`] and [`client_from_kubeconfig`].

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::{ApiCapabilities, Scope};
use wasmop_engine::Engine;
use wasmop_engine::leader::{Elector, KubeLeases, LeaderConfig, LeaseError};
use wasmop_runtime::{Runtime, RuntimeError};

use crate::cli::HostArgs;
use crate::plugins::manager::PluginManager;
use crate::plugins::status;

/// Why a host did not start.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("the plugin directory {} does not exist", .0.display())]
    NoPluginDir(PathBuf),
    #[error("starting the WebAssembly runtime")]
    Runtime(#[source] RuntimeError),
    #[error("serving the status endpoint on {addr}")]
    Status {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("leader election")]
    Leader(#[source] LeaseError),
}

/// The engine, the runtime and the plugin directory manager with its status endpoint. Plugins are
/// loaded by [`Host::sync`] (once) or [`Host::watch`] (and then on every change of the directory)
/// until [`Host::stop`].
pub struct Host {
    client: kube::Client,
    engine: Arc<Engine>,
    manager: Arc<PluginManager>,
    stop: tokio::sync::watch::Sender<bool>,
    watcher: Option<tokio::task::JoinHandle<()>>,
    status_addr: SocketAddr,
    /// The leader elector and its stop signal, with `--leader-elect`.
    elector: Option<(tokio::sync::watch::Sender<bool>, tokio::task::JoinHandle<()>)>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("plugin_dir", &self.manager.dir())
            .field("status_addr", &self.status_addr)
            .finish_non_exhaustive()
    }
}

impl Host {
    /// Starts the engine on `client`, the runtime and the status endpoint; loads no plugin yet.
    pub async fn start(
        client: kube::Client,
        args: &HostArgs,
        plugin_dir: impl Into<PathBuf>,
    ) -> Result<Host, HostError> {
        let dir = plugin_dir.into();
        if !dir.is_dir() {
            return Err(HostError::NoPluginDir(dir));
        }
        let engine = Arc::new(Engine::new(client.clone(), args.engine.config()));
        let runtime = Runtime::new(args.cache.runtime_config()).map_err(HostError::Runtime)?;
        let manager = Arc::new(PluginManager::new(
            runtime,
            engine.clone(),
            dir,
            args.limits.limits(),
        ));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let addr = args.status.status_addr;
        let status_addr = status::serve(addr, manager.clone(), args.status.liveness_timeout, stop_rx)
            .await
            .map_err(|source| HostError::Status { addr, source })?;
        Ok(Host {
            client,
            engine,
            manager,
            stop,
            watcher: None,
            status_addr,
            elector: None,
        })
    }

    /// Takes part in leader election on the Lease `config` names: from now on this host reconciles
    /// and writes only while it holds the lease (its caches and plugins stay warm meanwhile). Call
    /// before loading plugins, so that a standby never writes.
    pub fn lead(&mut self, config: LeaderConfig) -> Result<(), HostError> {
        config.validate().map_err(HostError::Leader)?;
        self.engine.set_leading(false);
        tracing::info!(lease = %format!("{}/{}", config.namespace, config.name), identity = %config.identity, "leader election: standing by until the lease is held");
        let elector = Elector::new(KubeLeases::new(self.client.clone(), &config), config);
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(elector.run(self.engine.gate().clone(), stop_rx));
        self.elector = Some((stop, task));
        Ok(())
    }

    /// Brings the plugins in line with the directory once; returns whether anything changed.
    pub async fn sync(&self) -> bool {
        self.manager.sync().await
    }

    /// Loads what the directory holds now, then follows its changes in the background.
    pub async fn watch(&mut self) {
        self.manager.sync().await;
        if self.watcher.is_none() {
            self.watcher = Some(tokio::spawn(self.manager.clone().watch(self.stop.subscribe())));
        }
    }

    pub fn manager(&self) -> &Arc<PluginManager> {
        &self.manager
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Where the status endpoint listens (the bound port when the configured one was 0).
    pub fn status_addr(&self) -> SocketAddr {
        self.status_addr
    }

    /// Stops watching, closes the status endpoint and stops every plugin after its in-flight
    /// reconciles (still leading meanwhile), then releases the lease if this host holds it.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        if let Some(w) = self.watcher {
            let _ = w.await;
        }
        self.engine.shutdown().await;
        if let Some((stop, task)) = self.elector {
            stop.send_replace(true);
            let _ = task.await;
        }
    }
}

/// Why a kubeconfig gave no client.
#[derive(Debug, thiserror::Error)]
pub enum KubeconfigError {
    #[error("parsing the kubeconfig")]
    Parse(#[source] kube::config::KubeconfigError),
    #[error("loading the kubeconfig")]
    Load(#[source] kube::config::KubeconfigError),
    #[error("creating a client from the kubeconfig")]
    Client(#[source] Box<kube::Error>),
}

/// A kube client for a kubeconfig document, made as [`host_client`] makes the host's.
pub async fn client_from_kubeconfig(yaml: &str) -> Result<kube::Client, KubeconfigError> {
    let kc = Kubeconfig::from_yaml(yaml).map_err(KubeconfigError::Parse)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .map_err(KubeconfigError::Load)?;
    host_client(config).map_err(|e| KubeconfigError::Client(Box::new(e)))
}

/// The client the host runs on: without kube-rs's own retry of 429, 503 and 504, because the
/// engine owns retries. Under kube-rs's retry a throttled write was sent again without a token of
/// the global write bucket (the host wrote faster than `--write-qps`) and its 429 never reached the
/// engine (no pause of the other writes, no count in `wasmop_api_writes_total`):
/// `tests/it/engine_write_faults.rs`. The watches back off on their own.
pub fn host_client(mut config: kube::Config) -> Result<kube::Client, kube::Error> {
    config.default_retry = false;
    kube::Client::try_from(config)
}

/// Why manifests were not applied; `origin` is the file (or plugin) the documents came from.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("reading {}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing {origin}")]
    Parse {
        origin: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("an object in {origin}")]
    Object {
        origin: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("an object without apiVersion/kind in {origin}")]
    NoKind { origin: String },
    #[error("an object without a name in {origin}")]
    NoName { origin: String },
    #[error("kind {gvk} from {origin} is not served")]
    NotServed {
        gvk: String,
        origin: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("applying {kind} {name} from {origin}")]
    Apply {
        kind: String,
        name: String,
        origin: String,
        #[source]
        source: Box<kube::Error>,
    },
}

/// Server-side applies every object of the YAML files in `dir` (multi-document files allowed), in
/// file name order, as field manager `manager`; returns how many objects were applied.
pub async fn apply_manifests(
    client: &kube::Client,
    dir: &Path,
    manager: &str,
) -> Result<usize, ManifestError> {
    let read_error = |source| ManifestError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut applied = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).map_err(|source| ManifestError::Read {
            path: file.clone(),
            source,
        })?;
        applied += apply_documents(client, &text, &file.display().to_string(), manager).await?;
    }
    Ok(applied)
}

/// Server-side applies every object of a YAML (or JSON) text, multi-document allowed, as field
/// manager `manager`; a kind that is not served yet (a CRD just created) is waited for a little.
/// `origin` names where the text came from in errors.
pub async fn apply_documents(
    client: &kube::Client,
    text: &str,
    origin: &str,
    manager: &str,
) -> Result<usize, ManifestError> {
    // Parse the whole text first: the YAML parser must not be held across an await.
    let docs = serde_yaml::Deserializer::from_str(text)
        .map(|doc| {
            serde::Deserialize::deserialize(doc).map_err(|source| ManifestError::Parse {
                origin: origin.to_string(),
                source,
            })
        })
        .collect::<Result<Vec<serde_json::Value>, _>>()?;
    let mut applied = 0;
    for value in docs.into_iter().filter(|v| !v.is_null()) {
        let obj: DynamicObject =
            serde_json::from_value(value.clone()).map_err(|source| ManifestError::Object {
                origin: origin.to_string(),
                source,
            })?;
        let types = obj.types.clone().ok_or_else(|| ManifestError::NoKind {
            origin: origin.to_string(),
        })?;
        let name = obj.metadata.name.clone().ok_or_else(|| ManifestError::NoName {
            origin: origin.to_string(),
        })?;
        let (group, version) = types
            .api_version
            .split_once('/')
            .unwrap_or(("", &types.api_version));
        let gvk = GroupVersionKind::gvk(group, version, &types.kind);
        let (ar, caps) = wait_for_kind(client, &gvk)
            .await
            .map_err(|source| ManifestError::NotServed {
                gvk: format!("{}/{}", types.api_version, types.kind),
                origin: origin.to_string(),
                source: Box::new(source),
            })?;
        let api: Api<DynamicObject> = match (&caps.scope, obj.metadata.namespace.as_deref()) {
            (Scope::Namespaced, ns) => Api::namespaced_with(client.clone(), ns.unwrap_or("default"), &ar),
            (Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
        };
        api.patch(&name, &PatchParams::apply(manager).force(), &Patch::Apply(&value))
            .await
            .map_err(|source| ManifestError::Apply {
                kind: types.kind.clone(),
                name: name.clone(),
                origin: origin.to_string(),
                source: Box::new(source),
            })?;
        applied += 1;
    }
    Ok(applied)
}

/// Resolves a kind, waiting up to ten seconds for CRDs that were just created.
async fn wait_for_kind(
    client: &kube::Client,
    gvk: &GroupVersionKind,
) -> Result<(ApiResource, ApiCapabilities), kube::Error> {
    let mut attempts = 0;
    loop {
        match kube::discovery::pinned_kind(client, gvk).await {
            Ok(found) => return Ok(found),
            Err(e) if attempts >= 50 => return Err(e),
            Err(_) => attempts += 1,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
