//! The embedded, single-node, Kubernetes-compatible API server: wasmop's default backend for
//! development, tests and edge nodes without a cluster.
//!
//! It speaks the Kubernetes REST API over real HTTP(S) well enough that the kube-rs client
//! (`Api`, `runtime::watcher`, `reflector`, `Discovery`) and `kubectl` work against it unchanged, and
//! keeps its state durable in a data directory. `docs/embedded-apiserver.md` lists what is supported.
//!
//! Layout (one module per responsibility):
//! - [`registry`]: which resources are served (built-in table + CRDs);
//! - [`store`]: durable objects, revisions and watch history;
//! - [`objects`]: the verbs and their metadata semantics; [`admission`]: validation; [`patch`] and
//!   [`managed`]: patches, server-side apply and managedFields;
//! - [`http`]: routing, discovery, OpenAPI, tables and watch streaming;
//! - [`auth`]: authentication (admin and ServiceAccount tokens), impersonation, RBAC, access reviews;
//! - [`controllers`]: garbage collection, namespace deletion and CRD lifecycle;
//! - [`tls`], [`faults`]: transport security and test fault injection.

pub mod admission;
pub mod auth;
pub mod controllers;
pub mod core_kinds;
pub mod defaults;
pub mod error;
pub mod eviction;
pub mod faults;
pub mod http;
pub mod managed;
pub mod objects;
pub mod patch;
pub mod registry;
pub mod status;
pub mod store;
pub mod tls;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;

pub use error::ApiError;
pub use faults::{FaultSettings, Faults, Forbidden};

/// How to run the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where objects, the certificate, the token and the kubeconfig live.
    pub data_dir: PathBuf,
    pub bind: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// The bearer token clients must send; generated (and kept in the data dir) when None.
    pub token: Option<String>,
    /// Serve plain HTTP instead of HTTPS with a self-signed certificate.
    pub insecure_http: bool,
    /// How many past events watches can resume from before they get 410 Gone.
    pub history_limit: usize,
    /// Allow fault injection (for tests).
    pub faults: bool,
    /// How often watches that ask for bookmarks get one (a real server: about a minute).
    pub bookmark_interval: std::time::Duration,
    /// Enforce RBAC (Roles and bindings) for every user but `system:masters`; off: every
    /// authenticated user may do anything.
    pub rbac: bool,
    /// Open watches one user may hold at once (0: no limit); more are answered 429.
    pub max_watches_per_client: usize,
    /// Simulate kubelets and the controller manager for workloads (Deployment, ReplicaSet,
    /// StatefulSet, DaemonSet, Job status); off: workload status stays as clients write it.
    pub simulate: Option<controllers::simulate::Settings>,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            token: None,
            insecure_http: false,
            history_limit: 10_000,
            faults: false,
            bookmark_interval: std::time::Duration::from_secs(60),
            rbac: false,
            max_watches_per_client: 1000,
            simulate: None,
        }
    }
}

/// Errors starting the server.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error(transparent)]
    SigningKey(#[from] auth::token::KeyError),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write { path: String, source: std::io::Error },
}

/// Shared state of a running server: what handlers and controllers work on.
pub struct Core {
    pub registry: registry::Registry,
    pub store: store::Store,
    pub faults: Faults,
    pub token: String,
    /// ServiceAccount token signing and whether RBAC is enforced.
    pub auth: auth::Auth,
    /// Ends open watches when the server shuts down.
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_interval: std::time::Duration,
    /// Open watches per user.
    pub watches: Arc<http::watch::Limiter>,
}

impl std::fmt::Debug for Core {
    /// Without the admin token: a debug print must not leak it into a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("store", &self.store)
            .field("token", &"<redacted>")
            .field("watches", &self.watches)
            .finish_non_exhaustive()
    }
}

/// A running server. Dropping it does not stop it; call [`ApiServer::shutdown`].
#[derive(Debug)]
pub struct ApiServer {
    core: Arc<Core>,
    addr: SocketAddr,
    url: String,
    ca_pem: Option<String>,
    kubeconfig_path: PathBuf,
    server: tokio::task::JoinHandle<()>,
    controllers: Vec<tokio::task::JoinHandle<()>>,
}

/// Writes a file only its owner can read (token, key, kubeconfig).
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    opts.mode(0o600);
    let mut f = opts.open(path)?;
    f.write_all(contents)?;
    f.sync_all()
}

fn load_or_create_token(dir: &Path) -> Result<String, StartError> {
    let path = dir.join("token");
    if let Ok(t) = std::fs::read_to_string(&path)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let token = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    write_private(&path, token.as_bytes()).map_err(|source| StartError::Write {
        path: path.display().to_string(),
        source,
    })?;
    Ok(token)
}

impl ApiServer {
    /// Opens the store, binds the port, starts serving and the built-in controllers.
    pub async fn start(config: Config) -> Result<ApiServer, StartError> {
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(|source| StartError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        let token = match config.token.clone() {
            Some(t) => t,
            None => load_or_create_token(&dir)?,
        };
        let store = store::Store::open(&dir, config.history_limit)?;
        let core = Arc::new(Core {
            registry: registry::Registry::default(),
            store,
            faults: Faults::new(config.faults),
            token,
            auth: auth::Auth::new(config.rbac, auth::token::Signer::load_or_create(&dir)?),
            shutdown: tokio::sync::watch::channel(false).0,
            bookmark_interval: config.bookmark_interval,
            watches: http::watch::Limiter::new(config.max_watches_per_client),
        });
        // Serve every CRD that was established before a restart before accepting requests.
        controllers::crd::register_all(&core);
        controllers::bootstrap(&core);
        let addr = SocketAddr::new(config.bind, config.port);
        let tcp = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| StartError::Bind { addr, source })?;
        let addr = tcp
            .local_addr()
            .map_err(|source| StartError::Bind { addr, source })?;
        controllers::kubernetes_service::ensure(&core, addr);
        let app = http::router(core.clone());
        let mut shutdown_rx = core.shutdown.subscribe();
        let shutdown = async move {
            let _ = shutdown_rx.wait_for(|s| *s).await;
        };
        let host = if addr.ip().is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            addr.ip()
        };
        let host_port = SocketAddr::new(host, addr.port());
        let (url, ca_pem, server) = if config.insecure_http {
            // No Nagle delay: a watch writes each event as its own small chunk, which would wait for
            // the client's delayed ACK (40 ms) behind the previous one (Go servers set it too).
            let tcp = axum::serve::ListenerExt::tap_io(tcp, |s| {
                let _ = s.set_nodelay(true);
            });
            let server = tokio::spawn(async move {
                if let Err(e) = axum::serve(tcp, app).with_graceful_shutdown(shutdown).await {
                    tracing::error!(error = %e, "API server stopped");
                }
            });
            (format!("http://{host_port}"), None, server)
        } else {
            let pair = tls::load_or_generate(&dir.join("tls"))?;
            let listener = tls::TlsListener::new(tcp, &pair)?;
            let server = tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
                    tracing::error!(error = %e, "API server stopped");
                }
            });
            (format!("https://{host_port}"), Some(pair.cert_pem), server)
        };
        let mut controllers = controllers::spawn_all(core.clone());
        if let Some(settings) = config.simulate {
            controllers.push(controllers::simulate::spawn(core.clone(), settings));
        }
        let server = ApiServer {
            core,
            addr,
            url,
            ca_pem,
            kubeconfig_path: dir.join("kubeconfig"),
            server,
            controllers,
        };
        let path = &server.kubeconfig_path;
        write_private(path, server.kubeconfig().as_bytes()).map_err(|source| StartError::Write {
            path: path.display().to_string(),
            source,
        })?;
        tracing::info!(url = %server.url, kubeconfig = %server.kubeconfig_path.display(), "embedded API server listening");
        Ok(server)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn token(&self) -> &str {
        &self.core.token
    }

    /// The self-signed CA certificate (PEM), when serving HTTPS.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// The kubeconfig `wasmop` wrote for this server (`kubectl --kubeconfig PATH`).
    pub fn kubeconfig_path(&self) -> &Path {
        &self.kubeconfig_path
    }

    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    /// Fault injection switches (effective only with `Config::faults`).
    pub fn faults(&self) -> &Faults {
        &self.core.faults
    }

    /// Writes committed since start (counts every create, update and delete).
    pub fn write_count(&self) -> u64 {
        self.core.store.write_count()
    }

    /// A kubeconfig YAML for this server, with the token and the CA.
    pub fn kubeconfig(&self) -> String {
        let cluster = match &self.ca_pem {
            Some(ca) => format!(
                "    server: {}\n    certificate-authority-data: {}\n",
                self.url,
                base64::engine::general_purpose::STANDARD.encode(ca)
            ),
            None => format!("    server: {}\n", self.url),
        };
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: wasmop\n  cluster:\n{cluster}users:\n- name: wasmop\n  user:\n    token: {}\ncontexts:\n- name: wasmop\n  context:\n    cluster: wasmop\n    user: wasmop\n    namespace: default\ncurrent-context: wasmop\npreferences: {{}}\n",
            self.core.token
        )
    }

    /// Stops accepting requests, ends open watches and waits for the server and controllers.
    /// Returns once the store is closed, so the data directory can be opened again at once.
    pub async fn shutdown(self) {
        self.core.shutdown.send_replace(true);
        let _ = self.server.await;
        for c in self.controllers {
            c.abort();
            let _ = c.await;
        }
        // Watch streams and blocking writes still finishing hold the core (and with it the database)
        // for a moment after the signal; wait for them rather than leave the database open.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while Arc::strong_count(&self.core) > 1 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if Arc::strong_count(&self.core) > 1 {
            tracing::warn!("API server stopped with requests still holding its store");
        }
    }
}
