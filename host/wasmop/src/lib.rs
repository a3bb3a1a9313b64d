//! wasmop, the host of Kubernetes reconcilers written as WebAssembly plugins, as a library: the
//! `wasmop` binary (`main.rs`) only parses its command line, sets up logging and calls in here, and
//! tests start a [`Host`] in-process the same way `wasmop run` does.
//!
//! - [`host`]: [`Host`] — the engine, the runtime, the plugin directory manager and the status
//!   endpoint — and [`apply_manifests`] / [`client_from_kubeconfig`] for filling a server;
//! - [`plugins`]: the plugin directory, the plugin lifecycle and the status endpoint;
//! - [`commands`]: the long-running subcommands (`run`, `dev`, `apiserver`);
//! - [`offline`]: `wasmop test`, `wasmop inspect` and `wasmop crd`;
//! - [`rbac`]: `wasmop rbac`, the RBAC a host needs for a set of plugins;
//! - [`scaffold`]: `wasmop new` and `wasmop build`, plugin projects in Rust, Python and JavaScript;
//! - [`cli`]: the command line (every flag also a `WASMOP_*` variable), [`HostArgs`] among it;
//! - [`telemetry`]: Prometheus metrics.
//!
//! With the cargo feature `examples` (default), `wasmop dev` without `--plugins` runs the example
//! plugins; without it the crate does not depend on their build.

pub mod cli;
pub mod commands;
pub mod host;
pub mod offline;
pub mod plugins;
pub mod rbac;
pub mod scaffold;
pub mod telemetry;

pub use cli::HostArgs;
pub use host::{Host, HostError, ManifestError, apply_documents, apply_manifests, client_from_kubeconfig};
pub use plugins::manager::{PluginManager, PluginStatus, State};
