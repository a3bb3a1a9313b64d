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
    /// Print the RBAC (ClusterRole, bindings, leader-election Role) a host needs for plugins.
    Rbac(crate::rbac::RbacArgs),
    /// Compile plugins ahead of time into a compile cache (for images and edge nodes): a host
    /// given that `--cache-dir` loads them without compiling.
    Compile(CompileArgs),
    /// Create a plugin project (Rust, Python or JavaScript/TypeScript) that builds and passes its
    /// golden test out of the box.
    New(crate::scaffold::NewArgs),
    /// Build a plugin project into a `.wasm` component (the language is detected from its
    /// manifest).
    Build(crate::scaffold::BuildArgs),
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
    /// Directory of compiled plugins, so restarts and re-added files load without compiling. It
    /// must belong to the user running wasmop and not be writable by others (else it is refused and
    /// every plugin is compiled); created with mode 0700. Default: `$XDG_CACHE_HOME/wasmop`, else
    /// `~/.cache/wasmop`; none without a home directory (the container image sets it).
    #[arg(long, env = "WASMOP_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// Compile every plugin on every load.
    #[arg(long, env = "WASMOP_NO_CACHE")]
    pub no_cache: bool,
    /// Instances of one plugin that can exist at once: each plugin gets its own pool of this many
    /// slots, sized from its component (its memories and tables; 4 GiB of address space reserved,
    /// not committed, per memory and slot) and keeping each memory's first pages resident between
    /// calls; a call waits for a free slot. 0: no pools (each call maps its instance's memories and
    /// unmaps them when it ends: slower calls, nothing reserved).
    #[arg(long, env = "WASMOP_INSTANCE_POOL", default_value_t = 4)]
    pub instance_pool: u32,
    /// The `wasmop` executable to compile plugins with, in a child process (`wasmop compile`), so
    /// that the memory compiling takes is not kept by the host: set by `wasmop run` and `wasmop dev`
    /// to themselves; `None` (a host in another program, such as the tests) compiles in-process.
    #[arg(skip)]
    pub compiler: Option<PathBuf>,
    /// The largest plugin file that is compiled at all, e.g. `128Mi`; a larger one is refused.
    #[arg(long, env = "WASMOP_MAX_PLUGIN_SIZE", default_value = "128Mi", value_parser = crate::offline::parse_bytes)]
    pub max_plugin_size: u64,
    /// Time one plugin's compile in the child process may take; then the child is killed and the
    /// plugin refused (the running version of it, if any, keeps running).
    #[arg(long, env = "WASMOP_COMPILE_TIMEOUT", default_value = "180s", value_parser = crate::offline::parse_duration)]
    pub compile_timeout: std::time::Duration,
    /// Memory the compiling child process may use (its data, `RLIMIT_DATA`), e.g. `2Gi`; past it
    /// the plugin is refused.
    #[arg(long, env = "WASMOP_COMPILE_MEMORY", default_value = "2Gi", value_parser = crate::offline::parse_bytes)]
    pub compile_memory: u64,
}

impl CacheArgs {
    /// These settings, compiling in a child process of this very executable.
    pub fn compiling_in_child(&self) -> CacheArgs {
        let compiler = std::env::current_exe()
            .inspect_err(|e| {
                tracing::warn!(error = %e, "cannot find this executable to compile plugins with: compiling in this process, bounded by size only")
            })
            .ok();
        CacheArgs {
            compiler,
            ..self.clone()
        }
    }
}

impl CacheArgs {
    /// The bounds on compiling one plugin.
    pub fn compile_limits(&self) -> wasmop_runtime::CompileLimits {
        wasmop_runtime::CompileLimits {
            max_component_bytes: self.max_plugin_size,
            timeout: self.compile_timeout,
            memory_bytes: self.compile_memory,
        }
    }

    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir.clone().or_else(user_cache_dir)
    }

    /// The runtime these settings describe.
    pub fn runtime_config(&self) -> wasmop_runtime::RuntimeConfig {
        wasmop_runtime::RuntimeConfig {
            cache_dir: self.dir(),
            instances_per_plugin: self.instance_pool,
            compiler: self.compiler.clone(),
            compile_limits: self.compile_limits(),
            ..wasmop_runtime::RuntimeConfig::default()
        }
    }
}

/// The running user's compile cache by default ([`default_cache_dir`] of this environment).
pub fn user_cache_dir() -> Option<PathBuf> {
    default_cache_dir(std::env::var_os("XDG_CACHE_HOME"), std::env::var_os("HOME"))
}

/// The XDG base directory rule: `$XDG_CACHE_HOME/wasmop` if it is set to an absolute path, else
/// `$HOME/.cache/wasmop`. Never a shared place such as the temporary directory, where another user
/// could create the directory first.
fn default_cache_dir(
    xdg_cache_home: Option<std::ffi::OsString>,
    home: Option<std::ffi::OsString>,
) -> Option<PathBuf> {
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    absolute(xdg_cache_home)
        .or_else(|| absolute(home).map(|h| h.join(".cache")))
        .map(|d| d.join("wasmop"))
}

/// `wasmop compile`.
#[derive(Debug, Clone, Args)]
pub struct CompileArgs {
    /// Plugin files (`.wasm` components) to compile (with the variable, comma-separated).
    #[arg(env = "WASMOP_COMPILE_PLUGINS", required = true, num_args = 1.., value_delimiter = ',')]
    pub plugins: Vec<PathBuf>,
    /// The compile cache to write: the directory a host is then given with `--cache-dir` (created
    /// mode 0700 with its key if new). Default: the host's default, `$XDG_CACHE_HOME/wasmop` or
    /// `~/.cache/wasmop`.
    #[arg(short = 'o', long, env = "WASMOP_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// The largest plugin file that is compiled, e.g. `128Mi` (a host compiling in a child passes
    /// its own `--max-plugin-size`).
    #[arg(long, env = "WASMOP_MAX_PLUGIN_SIZE", default_value = "128Mi", value_parser = crate::offline::parse_bytes)]
    pub max_plugin_size: u64,
}

/// Where the host serves its plugin status.
#[derive(Debug, Clone, Args)]
pub struct StatusArgs {
    /// Address of the local status endpoint (`GET /plugins`, `/metrics`, `/readyz`, `/livez`,
    /// `/healthz`).
    #[arg(long, env = "WASMOP_STATUS_ADDR", default_value = "127.0.0.1:9464")]
    pub status_addr: std::net::SocketAddr,
    /// `/livez` fails when the async runtime's watchdog has not ticked for this long.
    #[arg(long, env = "WASMOP_LIVENESS_TIMEOUT", default_value = "10s", value_parser = crate::offline::parse_duration)]
    pub liveness_timeout: std::time::Duration,
}

/// Leader election among replicas of `wasmop run`: only the holder of a `coordination.k8s.io/v1`
/// Lease reconciles; the others keep their caches and plugins warm and take over when it goes.
#[derive(Debug, Clone, Args)]
pub struct LeaderArgs {
    /// Elect a leader through a Lease (run several replicas for availability).
    #[arg(long, env = "WASMOP_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Name of the Lease.
    #[arg(long, env = "WASMOP_LEASE_NAME", default_value = "wasmop")]
    pub lease_name: String,
    /// Namespace of the Lease (default: the pod's namespace, from the service account or
    /// `POD_NAMESPACE`, else `default`).
    #[arg(long, env = "WASMOP_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// This replica's identity in the Lease (default: `POD_NAME`, else the host name plus a random
    /// suffix).
    #[arg(long, env = "WASMOP_LEADER_IDENTITY")]
    pub leader_identity: Option<String>,
    /// How long a Lease is valid after its holder last renewed it.
    #[arg(long, env = "WASMOP_LEASE_DURATION", default_value = "15s", value_parser = crate::offline::parse_duration)]
    pub lease_duration: std::time::Duration,
    /// How long the leader keeps reconciling without a successful renewal (shorter than the lease
    /// duration: it stops writing before anyone else may take over).
    #[arg(long, env = "WASMOP_RENEW_DEADLINE", default_value = "10s", value_parser = crate::offline::parse_duration)]
    pub renew_deadline: std::time::Duration,
    /// How often to try to acquire or renew the Lease.
    #[arg(long, env = "WASMOP_LEADER_RETRY_PERIOD", default_value = "2s", value_parser = crate::offline::parse_duration)]
    pub leader_retry_period: std::time::Duration,
}

/// Where the service account's namespace is mounted in a pod.
const POD_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

impl LeaderArgs {
    /// The election's settings; `None` without `--leader-elect`.
    pub fn config(&self) -> Option<wasmop_engine::leader::LeaderConfig> {
        if !self.leader_elect {
            return None;
        }
        let namespace = self.lease_namespace.clone().unwrap_or_else(|| {
            std::fs::read_to_string(POD_NAMESPACE_FILE)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .or_else(|| std::env::var("POD_NAMESPACE").ok().filter(|s| !s.is_empty()))
                .unwrap_or_else(|| "default".into())
        });
        let identity = self.leader_identity.clone().unwrap_or_else(default_identity);
        Some(wasmop_engine::leader::LeaderConfig {
            name: self.lease_name.clone(),
            namespace,
            identity,
            lease_duration: self.lease_duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.leader_retry_period,
        })
    }
}

/// `POD_NAME`, else the host name with a random suffix (two processes on one machine differ).
fn default_identity() -> String {
    if let Some(pod) = std::env::var("POD_NAME").ok().filter(|s| !s.is_empty()) {
        return pod;
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "wasmop".into());
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    format!("{host}_{:08x}", hasher.finish() as u32)
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
    pub leader: LeaderArgs,
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
    /// Enforce RBAC (Roles, ClusterRoles and their bindings) for every user but `system:masters`
    /// (the admin token); off: every authenticated user may do anything.
    #[arg(long, env = "WASMOP_RBAC")]
    pub rbac: bool,
    /// Open watches one user may hold at once (0: no limit); more are answered 429 Too Many Requests.
    #[arg(long, env = "WASMOP_MAX_WATCHES_PER_CLIENT", default_value_t = 1000)]
    pub max_watches_per_client: usize,
    /// Simulate kubelets and the controller manager: Deployments, ReplicaSets, StatefulSets,
    /// DaemonSets and Jobs report ready (or, annotated `simulate.wasmop.io/fail: MESSAGE`, failed)
    /// after --simulate-delay. Always on in `wasmop dev`.
    #[arg(long, env = "WASMOP_SIMULATE_WORKLOADS")]
    pub simulate_workloads: bool,
    /// How long a simulated workload takes to become ready after a change.
    #[arg(long, env = "WASMOP_SIMULATE_DELAY", default_value = "1s", value_parser = crate::offline::parse_duration)]
    pub simulate_delay: std::time::Duration,
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
        c.rbac = self.rbac;
        c.max_watches_per_client = self.max_watches_per_client;
        c.simulate = self
            .simulate_workloads
            .then_some(wasmop_apiserver::controllers::simulate::Settings {
                delay: self.simulate_delay,
            });
        c
    }

    /// The configuration of `wasmop dev`: the same, with the workload simulator always on.
    pub fn dev_config(&self) -> wasmop_apiserver::Config {
        let mut c = self.config();
        c.simulate = Some(wasmop_apiserver::controllers::simulate::Settings {
            delay: self.simulate_delay,
        });
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_default_cache_is_the_users_own_never_the_temporary_directory() {
        let os = |s: &str| Some(std::ffi::OsString::from(s));
        assert_eq!(
            default_cache_dir(os("/xdg"), os("/home/me")),
            Some(PathBuf::from("/xdg/wasmop"))
        );
        assert_eq!(
            default_cache_dir(None, os("/home/me")),
            Some(PathBuf::from("/home/me/.cache/wasmop"))
        );
        // The XDG rule: a relative value is ignored.
        assert_eq!(
            default_cache_dir(os("rel"), os("/home/me")),
            Some(PathBuf::from("/home/me/.cache/wasmop"))
        );
        assert_eq!(default_cache_dir(None, None), None);
        assert_eq!(default_cache_dir(os(""), os("")), None);
        let cli = Cli::try_parse_from(["wasmop", "run", "--plugins", "/p", "--cache-dir", "/c"]).unwrap();
        let Command::Run(run) = cli.command else { panic!() };
        assert_eq!(run.host.cache.dir(), Some(PathBuf::from("/c")));
        let cli = Cli::try_parse_from(["wasmop", "compile", "-o", "/c", "a.wasm", "b.wasm"]).unwrap();
        let Command::Compile(c) = cli.command else {
            panic!()
        };
        assert_eq!((c.plugins.len(), c.cache_dir), (2, Some(PathBuf::from("/c"))));
    }

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
    fn workloads_are_simulated_in_dev_and_on_request_only() {
        let server = |args: &[&str]| match Cli::try_parse_from([&["wasmop"], args].concat()).unwrap().command
        {
            Command::Apiserver(a) => a.config(),
            Command::Dev(a) => a.apiserver.dev_config(),
            other => panic!("{other:?}"),
        };
        assert_eq!(server(&["apiserver"]).simulate, None);
        let on = server(&["apiserver", "--simulate-workloads", "--simulate-delay", "250ms"]);
        assert_eq!(
            on.simulate.map(|s| s.delay),
            Some(std::time::Duration::from_millis(250))
        );
        assert_eq!(
            server(&["dev"]).simulate.map(|s| s.delay),
            Some(std::time::Duration::from_secs(1))
        );
    }

    #[test]
    fn leader_election_is_off_by_default_and_follows_client_go_defaults() {
        let run =
            |args: &[&str]| match Cli::try_parse_from([&["wasmop", "run", "--plugins", "/p"], args].concat())
                .unwrap()
                .command
            {
                Command::Run(a) => a,
                other => panic!("{other:?}"),
            };
        assert_eq!(run(&[]).leader.config(), None);
        let c = run(&[
            "--leader-elect",
            "--lease-namespace",
            "ops",
            "--leader-identity",
            "me",
        ])
        .leader
        .config()
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.namespace.as_str(), c.identity.as_str()),
            ("wasmop", "ops", "me")
        );
        assert_eq!(
            (c.lease_duration, c.renew_deadline, c.retry_period),
            (
                std::time::Duration::from_secs(15),
                std::time::Duration::from_secs(10),
                std::time::Duration::from_secs(2)
            )
        );
        assert!(c.validate().is_ok());
        let a = default_identity();
        assert!(!a.is_empty());
        let flags: Vec<String> = Cli::command()
            .find_subcommand("run")
            .unwrap()
            .get_arguments()
            .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
            .collect();
        for env in [
            "WASMOP_LEADER_ELECT",
            "WASMOP_LEASE_NAME",
            "WASMOP_LEASE_NAMESPACE",
            "WASMOP_LEADER_IDENTITY",
            "WASMOP_LEASE_DURATION",
            "WASMOP_RENEW_DEADLINE",
            "WASMOP_LEADER_RETRY_PERIOD",
            "WASMOP_LIVENESS_TIMEOUT",
        ] {
            assert!(flags.iter().any(|f| f == env), "{env}");
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
