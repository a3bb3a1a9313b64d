//! Runs reconciler plugins: WebAssembly components of the `wasmop:reconciler@0.2.0` world
//! (`wit/reconciler.wit`), or of the older `wasmop:reconciler@0.1.0` (`wit/v0.1/reconciler.wit`,
//! adapted to the current contract), on wasmtime.
//!
//! A [`Runtime`] owns one wasmtime engine (component model, pooling allocator, epoch interruption
//! driven by a background ticker thread) and one linker with the plugin's imports: `cache`, `log`
//! (of both versions) and WASI p2 with nothing granted. [`Runtime::load`] compiles a file, checks
//! that it is a reconciler (0.2, else 0.1), calls its `metadata` export once and validates the
//! answer. The resulting [`Plugin`] implements [`wasmop_contract::Reconciler`]: every call
//! (`reconcile`, `map`) runs in a fresh store (no state survives between calls) with a deadline and
//! a memory cap ([`PluginLimits`]), and every way a guest can fail — a trap, a timeout, running out
//! of memory, a malformed answer — is a [`ReconcileFailure`](wasmop_contract::ReconcileFailure),
//! never a host crash.
//!
//! Loading is CPU-bound (compiling a component takes a while): call it from a blocking thread
//! (`tokio::task::spawn_blocking`). Reconciles are `async` and yield to the executor at every epoch
//! tick, so a spinning guest never holds a tokio worker for long.

mod bindings;
mod cache;
mod compile;
mod convert;
mod error;
mod host;
mod plugin;
mod pool;
mod runtime;
mod v0_1;

pub use cache::{ArtifactCache, CacheStats, Rejection};
pub use compile::CompileLimits;
pub use error::{CacheError, LoadError, RuntimeError};
pub use plugin::{Containment, Plugin, PluginLimits};
pub use pool::{Footprint, InstancePool};
pub use runtime::{CompiledPlugin, Runtime, RuntimeConfig};

/// Loads a plugin with the [shared](Runtime::shared) runtime and the default limits.
pub fn load(path: impl AsRef<std::path::Path>) -> Result<Plugin, LoadError> {
    let path = path.as_ref();
    let runtime = Runtime::shared().map_err(|source| LoadError::Runtime {
        file: path.display().to_string(),
        source,
    })?;
    runtime.load(path, PluginLimits::default())
}
