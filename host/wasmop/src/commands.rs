//! The long-running subcommands: `wasmop run` (a host against a cluster), `wasmop dev` (the
//! embedded API server with a host on it, filled with CRDs and sample objects) and `wasmop
//! apiserver` (the embedded API server alone). Each runs until Ctrl-C or SIGTERM. Also `wasmop compile`
//! (plugins compiled ahead of time into a compile cache).

use std::path::PathBuf;
use std::time::Duration;

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
    #[error(
        "wasmop dev needs a plugin directory: pass --plugins DIR (or set WASMOP_PLUGINS), and \
         --manifests DIR for sample objects; this wasmop was built without the example plugins \
         (cargo feature `examples`)"
    )]
    NoPlugins,
    #[error("wasmop compile needs a cache directory: pass -o DIR (there is no home directory)")]
    NoCacheDir,
    #[error("the compile cache")]
    Cache(#[source] wasmop_runtime::CacheError),
    #[error("setting up the compiler")]
    Runtime(#[source] wasmop_runtime::RuntimeError),
    #[error("{failed} of {total} plugins were not compiled into the cache (see above)")]
    Compile { failed: usize, total: usize },
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

/// How long `wasmop run` gives its graceful shutdown (reconciles in flight, releasing the lease):
/// within Kubernetes' default grace period of 30 s.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// `wasmop run`: on the first SIGTERM or Ctrl-C it stops taking work, lets the reconciles in flight
/// finish, releases the lease and exits 0 (within [`SHUTDOWN_GRACE`]); a second signal exits at
/// once.
pub async fn run(mut args: RunArgs) -> Result<(), CommandError> {
    args.host.cache = args.host.cache.compiling_in_child();
    let first_signal = signals();
    let config = kube::Config::infer()
        .await
        .map_err(|e| CommandError::Connect(Box::new(kube::Error::InferConfig(e))))?;
    let client = host::host_client(config).map_err(|e| CommandError::Connect(Box::new(e)))?;
    let mut host = Host::start(client, &args.host, &args.plugins).await?;
    if let Some(config) = args.leader.config() {
        host.lead(config)?;
    }
    host.watch().await;
    println!("wasmop host running with plugins from {}", args.plugins.display());
    println!(
        "plugin status: wasmop plugins --status-addr {}",
        host.status_addr()
    );
    let _ = first_signal.await;
    tracing::info!("shutting down: finishing the reconciles in flight, then releasing the lease");
    if tokio::time::timeout(SHUTDOWN_GRACE, host.stop()).await.is_err() {
        tracing::warn!(grace = ?SHUTDOWN_GRACE, "graceful shutdown did not finish in time; exiting");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Listens for SIGTERM and SIGINT from now on: the receiver resolves at the first; a second one
/// exits the process at once (status 130).
fn signals() -> tokio::sync::oneshot::Receiver<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (term, int) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (term, int) else {
            tracing::warn!("cannot listen for signals");
            return std::future::pending().await;
        };
        let mut tx = Some(tx);
        loop {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            match tx.take() {
                Some(tx) => {
                    let _ = tx.send(());
                }
                None => {
                    tracing::warn!("second signal: exiting at once");
                    std::process::exit(130);
                }
            }
        }
    });
    rx
}

/// What `wasmop dev` loads and applies.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DevSources {
    plugins: PathBuf,
    manifests: Option<PathBuf>,
}

impl DevSources {
    /// The directories the flags name; without `--plugins`, the example plugins (and, unless
    /// `--manifests` says otherwise, their sample objects) in a build that has them.
    fn of(args: &DevArgs) -> Result<DevSources, CommandError> {
        match &args.plugins {
            Some(plugins) => Ok(DevSources {
                plugins: plugins.clone(),
                manifests: args.manifests.clone(),
            }),
            None => Self::examples(args.manifests.clone()).ok_or(CommandError::NoPlugins),
        }
    }

    #[cfg(feature = "examples")]
    fn examples(manifests: Option<PathBuf>) -> Option<DevSources> {
        Some(DevSources {
            plugins: wasmop_example_plugins::plugins_dir(),
            manifests: manifests.or_else(|| Some(wasmop_example_plugins::samples_dir())),
        })
    }

    #[cfg(not(feature = "examples"))]
    fn examples(_manifests: Option<PathBuf>) -> Option<DevSources> {
        None
    }
}

/// `wasmop dev`: the API server, then the host with the plugins, then the CRDs the plugins declare
/// (a plugin whose kinds are not served yet is `starting` until they are), then the manifests.
pub async fn dev(mut args: DevArgs) -> Result<(), CommandError> {
    args.host.cache = args.host.cache.compiling_in_child();
    let sources = DevSources::of(&args)?;
    let server = wasmop_apiserver::ApiServer::start(args.apiserver.dev_config())
        .await
        .map_err(|source| CommandError::ApiServer {
            dir: args.apiserver.data_dir.clone(),
            source,
        })?;
    let client = host::client_from_kubeconfig(&server.kubeconfig())
        .await
        .map_err(CommandError::Kubeconfig)?;
    let mut host = Host::start(client.clone(), &args.host, &sources.plugins).await?;
    host.watch().await;
    let plugins = host.manager().status().await.len();
    let mut crds = 0;
    for (plugin, crd) in host.manager().declared_crds().await {
        crds += host::apply_documents(&client, &crd, &format!("plugin {plugin}"), DEV_MANAGER).await?;
    }
    let objects = match &sources.manifests {
        Some(dir) => host::apply_manifests(&client, dir, DEV_MANAGER).await?,
        None => 0,
    };
    let kubeconfig =
        std::path::absolute(server.kubeconfig_path()).unwrap_or_else(|_| server.kubeconfig_path().into());
    println!(
        "wasmop dev: API server {} with {crds} CRD(s), {plugins} plugin(s) from {}, {objects} object(s){}",
        server.url(),
        sources.plugins.display(),
        sources
            .manifests
            .as_ref()
            .map(|m| format!(" from {}", m.display()))
            .unwrap_or_default()
    );
    println!("kubeconfig: {}", kubeconfig.display());
    println!("point kubectl at it:  export KUBECONFIG={}", kubeconfig.display());
    if args.plugins.is_none() {
        println!("then try:             kubectl get databases,statefulsets,services,configmaps,pdb -A");
    }
    println!(
        "workloads:            simulated, ready {:?} after a change (annotate one simulate.wasmop.io/fail=MESSAGE to make it fail)",
        args.apiserver.simulate_delay
    );
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

/// `wasmop compile`: compiles each plugin into the compile cache `-o DIR` (created with its key if
/// new), checking that it is a reconciler whose metadata validates, so that a host with the same
/// `--cache-dir` (same wasmop build, same CPU features) loads it without compiling. A directory
/// that is refused is an error here, unlike for a host: filling it is the command's only purpose.
pub async fn compile(args: crate::cli::CompileArgs) -> Result<(), CommandError> {
    let dir = args
        .cache_dir
        .clone()
        .or_else(crate::cli::user_cache_dir)
        .ok_or(CommandError::NoCacheDir)?;
    wasmop_runtime::ArtifactCache::open(&dir).map_err(CommandError::Cache)?;
    let runtime = wasmop_runtime::Runtime::new(wasmop_runtime::RuntimeConfig {
        cache_dir: Some(dir.clone()),
        compile_limits: wasmop_runtime::CompileLimits {
            max_component_bytes: args.max_plugin_size,
            ..wasmop_runtime::CompileLimits::default()
        },
        ..wasmop_runtime::RuntimeConfig::default()
    })
    .map_err(CommandError::Runtime)?;
    let total = args.plugins.len();
    // Compiling is CPU-bound (on all cores) and a plugin's metadata call blocks: off the executor.
    let failed = tokio::task::spawn_blocking(move || {
        let mut failed = 0;
        for path in &args.plugins {
            match compile_one(&runtime, path) {
                Ok(line) => println!("{line}"),
                Err(e) => {
                    eprintln!("error: {e}");
                    failed += 1;
                }
            }
        }
        failed
    })
    .await
    .unwrap_or(total);
    if failed > 0 {
        return Err(CommandError::Compile { failed, total });
    }
    println!("compile cache: {}", dir.display());
    Ok(())
}

/// Compiles (or finds) one plugin's artifact; the line to print, or why it is not in the cache.
fn compile_one(runtime: &wasmop_runtime::Runtime, path: &std::path::Path) -> Result<String, String> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{file}: cannot read the file: {e}"))?;
    let before = runtime.artifact_cache_stats().unwrap_or_default();
    let started = std::time::Instant::now();
    let plugin = runtime
        .load_bytes(&file, &bytes, wasmop_runtime::PluginLimits::default())
        .map_err(|e| e.to_string())?;
    let after = runtime.artifact_cache_stats().unwrap_or_default();
    let artifact = runtime
        .artifact_path(&bytes)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    if after.write_errors > before.write_errors {
        return Err(format!(
            "{file}: compiled, but {artifact} could not be written (see the log)"
        ));
    }
    let how = if after.hits > before.hits {
        "already in the cache".to_string()
    } else {
        format!("compiled in {} ms", started.elapsed().as_millis())
    };
    let meta = plugin.metadata();
    Ok(format!(
        "{file}: {} {}: {how} -> {artifact}",
        meta.name, meta.version
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn dev_args(args: &[&str]) -> DevArgs {
        let cli = crate::cli::Cli::try_parse_from([&["wasmop", "dev"], args].concat()).unwrap();
        match cli.command {
            crate::cli::Command::Dev(a) => a,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_plugin_directory_comes_with_the_given_manifests_only() {
        let sources = DevSources::of(&dev_args(&["--plugins", "/p", "--manifests", "/m"])).unwrap();
        assert_eq!(
            sources,
            DevSources {
                plugins: "/p".into(),
                manifests: Some("/m".into()),
            }
        );
        let sources = DevSources::of(&dev_args(&["--plugins", "/p"])).unwrap();
        assert_eq!(sources.manifests, None, "no example samples for other plugins");
    }

    #[cfg(feature = "examples")]
    #[test]
    fn without_plugins_dev_runs_the_examples() {
        let sources = DevSources::of(&dev_args(&[])).unwrap();
        assert_eq!(sources.plugins, wasmop_example_plugins::plugins_dir());
        assert_eq!(sources.manifests, Some(wasmop_example_plugins::samples_dir()));
    }

    #[cfg(not(feature = "examples"))]
    #[test]
    fn without_the_examples_dev_says_what_is_missing() {
        let err = DevSources::of(&dev_args(&[])).unwrap_err().to_string();
        assert!(err.contains("--plugins DIR") && err.contains("examples"), "{err}");
    }
}
