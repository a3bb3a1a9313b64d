//! Command-line interface: clap argument structs, flattened and reused across subcommands; every
//! flag can also be set through a `WASMOP_*` environment variable.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

pub use crate::offline::{CrdArgs, InspectArgs, PluginLimitsArgs, TestArgs};

#[derive(Debug, Parser)]
#[command(
    name = "wasmop",
    version,
    about = "Kubernetes reconcilers as WebAssembly plugins"
)]
pub struct Cli {
    #[command(flatten)]
    pub log: LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the host against a cluster (kubeconfig or in-cluster config), with the plugins of a
    /// watched directory.
    Run(RunArgs),
    /// Run everything locally: the embedded API server and the host with a plugin directory (by
    /// default the example plugins and sample objects); prints how to point kubectl at it.
    Dev(DevArgs),
    /// List the plugins a running host has loaded.
    Plugins(PluginsArgs),
    /// Run the embedded Kubernetes-compatible API server alone, until Ctrl-C or SIGTERM.
    Apiserver(ApiServerArgs),
    /// Run one reconcile of a plugin offline on a snapshot file; print the desired state as YAML.
    Test(TestArgs),
    /// Print a plugin's contract version, metadata and the RBAC rules it needs, as YAML.
    Inspect(InspectArgs),
    /// Print the CustomResourceDefinitions plugins declare, as one YAML stream.
    Crd(CrdArgs),
}

/// Logging.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log filter, in `tracing` env-filter syntax (e.g. `info,wasmop_apiserver=debug`).
    #[arg(long, env = "WASMOP_LOG", default_value = "info", global = true)]
    pub log: String,
}

/// The reconcile engine's shared limits.
#[derive(Debug, Clone, Args)]
pub struct EngineArgs {
    /// Sustained API writes per second, for all plugins together.
    #[arg(long, env = "WASMOP_WRITE_QPS", default_value_t = 50.0)]
    pub write_qps: f64,
    /// API writes allowed in a burst.
    #[arg(long, env = "WASMOP_WRITE_BURST", default_value_t = 100)]
    pub write_burst: u32,
    /// First retry delay after a failed reconcile (doubles per failure, with jitter).
    #[arg(long, env = "WASMOP_BACKOFF_BASE", default_value = "200ms", value_parser = crate::offline::parse_duration)]
    pub backoff_base: std::time::Duration,
    /// Longest retry delay.
    #[arg(long, env = "WASMOP_BACKOFF_CAP", default_value = "5m", value_parser = crate::offline::parse_duration)]
    pub backoff_cap: std::time::Duration,
    /// Concurrent reconciles per plugin when the plugin does not say.
    #[arg(long, env = "WASMOP_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
}

impl EngineArgs {
    pub fn config(&self) -> wasmop_engine::EngineConfig {
        wasmop_engine::EngineConfig {
            backoff: wasmop_engine::BackoffConfig {
                base: self.backoff_base,
                cap: self.backoff_cap,
            },
            rate_limit: wasmop_engine::RateLimitConfig {
                qps: self.write_qps,
                burst: self.write_burst,
            },
            default_concurrency: self.concurrency,
        }
    }
}

/// The on-disk cache of compiled plugins.
#[derive(Debug, Clone, Args)]
pub struct CacheArgs {
    /// Directory of compiled plugins, so restarts and re-added files load without compiling
    /// (default: `wasmop-cache` in the system temporary directory).
    #[arg(long, env = "WASMOP_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every plugin on every load.
    #[arg(long, env = "WASMOP_NO_CACHE")]
    pub no_cache: bool,
}

impl CacheArgs {
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        Some(
            self.cache_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join("wasmop-cache")),
        )
    }
}

/// Where the host serves its plugin status.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Address of the local status endpoint (`GET /plugins`, `GET /metrics`, `GET /healthz`).
    #[arg(long, env = "WASMOP_STATUS_ADDR", default_value = "127.0.0.1:9464")]
    pub status_addr: std::net::SocketAddr,
}

/// What a host is made of, shared by `run` and `dev`: the engine, the plugins' limits, the compile
/// cache and the status endpoint.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    #[command(flatten)]
    pub limits: PluginLimitsArgs,
    #[command(flatten)]
    pub cache: CacheArgs,
    #[command(flatten)]
    pub status: StatusArgs,
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Directory of plugin `.wasm` files (and optional `<name>.toml` settings), watched for changes.
    #[arg(long, env = "WASMOP_PLUGINS")]
    pub plugins: PathBuf,
    #[command(flatten)]
    pub host: HostArgs,
}

#[derive(Debug, Clone, Args)]
pub struct DevArgs {
    #[command(flatten)]
    pub apiserver: ApiServerArgs,
    /// Plugin directory to load and watch; the CRDs its plugins declare are applied. Without it,
    /// the example plugins with their CRDs and sample objects (only in a build with the cargo
    /// feature `examples`, the default).
    #[arg(long, env = "WASMOP_PLUGINS")]
    pub plugins: Option<PathBuf>,
    /// Directory of YAML manifests (sample objects) applied once the plugins' CRDs are in.
    #[arg(long, env = "WASMOP_MANIFESTS")]
    pub manifests: Option<PathBuf>,
    #[command(flatten)]
    pub host: HostArgs,
}

#[derive(Debug, Clone, Args)]
pub struct PluginsArgs {
    #[command(flatten)]
    pub status: StatusArgs,
}

/// The embedded API server.
#[derive(Debug, Clone, Args)]
pub struct ApiServerArgs {
    /// Where objects, the TLS certificate, the token and the kubeconfig are kept.
    #[arg(long, env = "WASMOP_DATA_DIR", default_value = ".wasmop")]
    pub data_dir: PathBuf,
    /// Port to listen on (0 picks a free one).
    #[arg(long, env = "WASMOP_PORT", default_value_t = 6443)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "WASMOP_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Bearer token clients must present (generated and kept in the data directory when absent).
    #[arg(long, env = "WASMOP_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Serve plain HTTP instead of HTTPS with a self-signed certificate.
    #[arg(long, env = "WASMOP_INSECURE_HTTP")]
    pub insecure_http: bool,
    /// How many past events a watch can resume from before it gets 410 Gone.
    #[arg(long, env = "WASMOP_WATCH_HISTORY", default_value_t = 10_000)]
    pub watch_history: usize,
    /// Allow run-time fault injection (429s, 500s, latency, closed watches) for tests.
    #[arg(long, env = "WASMOP_FAULT_INJECTION")]
    pub fault_injection: bool,
}

impl ApiServerArgs {
    pub fn config(&self) -> wasmop_apiserver::Config {
        let mut c = wasmop_apiserver::Config::new(&self.data_dir);
        c.port = self.port;
        c.bind = self.bind;
        c.token = self.token.clone();
        c.insecure_http = self.insecure_http;
        c.history_limit = self.watch_history;
        c.faults = self.fault_injection;
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn run_and_dev_share_the_host_flags() {
        let cmd = Cli::command();
        let flags = |name: &str| -> Vec<String> {
            let sub = cmd.find_subcommand(name).expect(name);
            sub.get_arguments().map(|a| a.get_id().to_string()).collect()
        };
        let (run, dev) = (flags("run"), flags("dev"));
        for flag in [
            "write_qps",
            "deadline",
            "memory",
            "cache_dir",
            "status_addr",
            "plugins",
        ] {
            assert!(
                run.contains(&flag.to_string()) && dev.contains(&flag.to_string()),
                "{flag}"
            );
        }
    }

    #[test]
    fn every_flag_has_an_environment_variable() {
        Cli::command().debug_assert();
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            for arg in sub.get_arguments() {
                if arg.get_id() == "help" || arg.get_id() == "version" {
                    continue;
                }
                assert!(
                    arg.get_env().is_some(),
                    "{} --{} has no env variable",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
    }
}
