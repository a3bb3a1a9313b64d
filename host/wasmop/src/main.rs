//! `wasmop`: the host binary. Parses the command line, sets up logging and runs a subcommand.

mod cli;
mod host;
mod offline;
mod plugins;
mod telemetry;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&cli.log.log).context("invalid --log filter")?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // kube's TLS uses rustls with ring; one process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Run(args) => host::run(args).await,
        Command::Dev(args) => host::dev(args).await,
        Command::Plugins(args) => plugins::status::print(args.status.status_addr).await,
        Command::Apiserver(args) => apiserver(args).await,
        Command::Test(args) => offline::test(args).await,
        Command::Inspect(args) => offline::inspect(args).await,
        Command::Crd(args) => offline::crd(args).await,
    }
}

async fn apiserver(args: cli::ApiServerArgs) -> anyhow::Result<()> {
    let server = wasmop_apiserver::ApiServer::start(args.config())
        .await
        .with_context(|| format!("starting the API server in {}", args.data_dir.display()))?;
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
