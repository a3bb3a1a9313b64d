//! The long-running subcommands: `wasmop run` (a host against a cluster), `wasmop dev` (the
//! embedded API server with a host on it, filled with the example CRDs and sample objects) and
//! `wasmop apiserver` (the embedded API server alone). Each runs until Ctrl-C or SIGTERM.

use std::path::PathBuf;

use crate::cli::{ApiServerArgs, DevArgs, RunArgs};
use crate::host::{self, Host, HostError, KubeconfigError, ManifestError};

/// The field manager of what `wasmop dev` applies.
const DEV_MANAGER: &str = "wasmop-dev";

/// Why a subcommand stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("connecting to the cluster (kubeconfig or in-cluster)")]
    Connect(#[source] Box<kube::Error>),
    #[error("starting the embedded API server in {}", .dir.display())]
    ApiServer {
        dir: PathBuf,
        #[source]
        source: wasmop_apiserver::StartError,
    },
    #[error("connecting to the embedded API server")]
    Kubeconfig(#[source] KubeconfigError),
    #[error("starting the host")]
    Host(#[source] HostError),
    #[error("applying manifests")]
    Manifests(#[source] ManifestError),
}

impl From<HostError> for CommandError {
    fn from(e: HostError) -> Self {
        CommandError::Host(e)
    }
}

impl From<ManifestError> for CommandError {
    fn from(e: ManifestError) -> Self {
        CommandError::Manifests(e)
    }
}

/// `wasmop run`.
pub async fn run(args: RunArgs) -> Result<(), CommandError> {
    let client = kube::Client::try_default()
        .await
        .map_err(|e| CommandError::Connect(Box::new(e)))?;
    let mut host = Host::start(client, &args.host, &args.plugins).await?;
    host.watch().await;
    println!("wasmop host running with plugins from {}", args.plugins.display());
    println!(
        "plugin status: wasmop plugins --status-addr {}",
        host.status_addr()
    );
    shutdown_signal().await;
    host.stop().await;
    Ok(())
}

/// `wasmop dev`: the API server with the example CRDs, the host with the plugins, then the sample
/// objects.
pub async fn dev(args: DevArgs) -> Result<(), CommandError> {
    let server = wasmop_apiserver::ApiServer::start(args.apiserver.config())
        .await
        .map_err(|source| CommandError::ApiServer {
            dir: args.apiserver.data_dir.clone(),
            source,
        })?;
    let client = host::client_from_kubeconfig(&server.kubeconfig())
        .await
        .map_err(CommandError::Kubeconfig)?;
    let crds = host::apply_manifests(&client, &wasmop_example_plugins::crds_dir(), DEV_MANAGER).await?;
    let dir = args
        .plugins
        .clone()
        .unwrap_or_else(wasmop_example_plugins::plugins_dir);
    let mut host = Host::start(client.clone(), &args.host, &dir).await?;
    host.watch().await;
    let plugins = host.manager().status().await.len();
    let samples = host::apply_manifests(&client, &wasmop_example_plugins::samples_dir(), DEV_MANAGER).await?;
    let kubeconfig =
        std::path::absolute(server.kubeconfig_path()).unwrap_or_else(|_| server.kubeconfig_path().into());
    println!(
        "wasmop dev: API server {} with {crds} CRD(s), {plugins} plugins from {}, {samples} sample objects",
        server.url(),
        dir.display()
    );
    println!("kubeconfig: {}", kubeconfig.display());
    println!("point kubectl at it:  export KUBECONFIG={}", kubeconfig.display());
    println!("then try:             kubectl get databases,statefulsets,services,configmaps,pdb -A");
    println!(
        "plugin status:        wasmop plugins --status-addr {}",
        host.status_addr()
    );
    shutdown_signal().await;
    host.stop().await;
    server.shutdown().await;
    Ok(())
}

/// `wasmop apiserver`.
pub async fn apiserver(args: ApiServerArgs) -> Result<(), CommandError> {
    let server = wasmop_apiserver::ApiServer::start(args.config())
        .await
        .map_err(|source| CommandError::ApiServer {
            dir: args.data_dir.clone(),
            source,
        })?;
    let kubeconfig =
        std::path::absolute(server.kubeconfig_path()).unwrap_or_else(|_| server.kubeconfig_path().into());
    println!("wasmop API server listening on {}", server.url());
    println!("kubeconfig: {}", kubeconfig.display());
    println!("point kubectl at it:  export KUBECONFIG={}", kubeconfig.display());
    shutdown_signal().await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
