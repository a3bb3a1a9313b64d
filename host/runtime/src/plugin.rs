//! A loaded plugin and one reconcile: fresh store, deadline, memory cap, and the mapping of every
//! outcome to the contract.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use wasmop_contract::{BoxFuture, CacheReader, Desired, Metadata, ReconcileFailure, Reconciler, Snapshot};
use wasmtime::component::Component;
use wasmtime::{PoolConcurrencyLimitError, Trap};

use crate::bindings::ReconcilerPre;
use crate::convert;
use crate::error::LoadError;
use crate::host::HostState;
use crate::runtime::Runtime;

/// What one call of a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Wall-clock time for one call, instantiation included (checked at every epoch tick).
    pub deadline: Duration,
    /// Linear memory of one call's instance, all memories together.
    pub memory_bytes: u64,
}

impl PluginLimits {
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
    pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            deadline: Self::DEFAULT_DEADLINE,
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
        }
    }
}

/// After the deadline, how long a guest blocked in a host call (a WASI sleep) may keep its store
/// before the host drops the call. Running guest code is stopped at the next epoch tick instead.
const HOST_GRACE: Duration = Duration::from_millis(500);

/// A compiled, linked and validated plugin. Cheap to clone; clones share the compiled code.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
    limits: PluginLimits,
}

struct PluginInner {
    runtime: Runtime,
    file: String,
    name: Arc<str>,
    metadata: Metadata,
    pre: ReconcilerPre<HostState>,
    component: Component,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("file", &self.inner.file)
            .field("name", &self.inner.metadata.name)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn new(
        runtime: Runtime,
        file: String,
        metadata: Metadata,
        pre: ReconcilerPre<HostState>,
        component: Component,
        limits: PluginLimits,
    ) -> Plugin {
        Plugin {
            inner: Arc::new(PluginInner {
                runtime,
                file,
                name: metadata.name.as_str().into(),
                metadata,
                pre,
                component,
            }),
            limits,
        }
    }

    /// What the plugin declared (validated).
    pub fn metadata(&self) -> &Metadata {
        &self.inner.metadata
    }

    /// The file it was loaded from (or the name given to `load_bytes`).
    pub fn file(&self) -> &str {
        &self.inner.file
    }

    pub fn limits(&self) -> PluginLimits {
        self.limits
    }

    /// The same plugin (sharing its compiled code) with other limits.
    pub fn with_limits(mut self, limits: PluginLimits) -> Plugin {
        self.limits = limits;
        self
    }

    /// The compiled code in the engine's artifact format (see `CompiledPlugin::serialize`).
    pub fn serialize(&self) -> Result<Vec<u8>, LoadError> {
        self.inner
            .component
            .serialize()
            .map_err(|e| LoadError::Serialize {
                file: self.inner.file.clone(),
                reason: format!("{e:#}"),
            })
    }

    /// One reconcile, in a fresh instance. Never panics because of the guest.
    pub async fn reconcile(
        &self,
        snapshot: &Snapshot,
        cache: Arc<dyn CacheReader>,
    ) -> Result<Desired, ReconcileFailure> {
        let limits = self.limits;
        let input = convert::snapshot_to_wit(snapshot);
        let mut store = self.inner.runtime.store(self.inner.name.clone(), cache, limits);
        let pre = &self.inner.pre;
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_reconcile(&mut store, &input).await
        };
        match bounded(limits, call).await {
            Outcome::Done(Ok(Ok(desired))) => convert::desired_from_wit(desired),
            Outcome::Done(Ok(Err(error))) => Err(convert::error_from_wit(error)),
            Outcome::Done(Err(e)) => Err(classify(e, store.data(), limits)),
            Outcome::Failed(failure) => Err(failure),
        }
    }
}

/// How a call ended, before looking at the store.
pub(crate) enum Outcome<T> {
    /// The call returned or wasmtime reported an error (trap, interrupt, refused growth, ...).
    Done(wasmtime::Result<T>),
    /// The host stopped it: past the deadline in a host call, or a host panic.
    Failed(ReconcileFailure),
}

/// Runs a call into a guest, bounded from outside too: guest code is stopped by the epoch callback,
/// but a guest waiting in a host call (a WASI sleep) is not, so with a tokio runtime around, the call
/// is dropped a little after its deadline. A panic in the host part of the call is caught.
pub(crate) async fn bounded<T>(
    limits: PluginLimits,
    call: impl Future<Output = wasmtime::Result<T>>,
) -> Outcome<T> {
    let result = if tokio::runtime::Handle::try_current().is_ok() {
        let call = tokio::time::timeout(limits.deadline + HOST_GRACE, call);
        match AssertUnwindSafe(call).catch_unwind().await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(_elapsed)) => return Outcome::Failed(ReconcileFailure::Timeout(limits.deadline)),
            Err(panic) => Err(panic),
        }
    } else {
        AssertUnwindSafe(call).catch_unwind().await
    };
    match result {
        Ok(result) => Outcome::Done(result),
        Err(panic) => Outcome::Failed(ReconcileFailure::Trap(format!(
            "the host panicked during the call: {}",
            panic_message(&*panic)
        ))),
    }
}

impl Reconciler for Plugin {
    fn metadata(&self) -> &Metadata {
        &self.inner.metadata
    }

    fn reconcile<'a>(
        &'a self,
        snapshot: Snapshot,
        cache: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Desired, ReconcileFailure>> {
        Box::pin(async move { Plugin::reconcile(self, &snapshot, cache).await })
    }
}

/// What a failed call (instantiation or export) means, from the store's own records first.
pub(crate) fn classify(e: wasmtime::Error, state: &HostState, limits: PluginLimits) -> ReconcileFailure {
    if state.timed_out || matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return ReconcileFailure::Timeout(limits.deadline);
    }
    if state.limiter.hit {
        return ReconcileFailure::OutOfMemory(limits.memory_bytes);
    }
    if e.is::<PoolConcurrencyLimitError>() {
        return ReconcileFailure::Retry(format!("the host is at its plugin instance limit: {e:#}"));
    }
    // The wasm backtrace (in the error's context) is for the log; the failure carries the trap
    // and what the guest said last on stderr (a Rust guest's panic message).
    tracing::debug!(target: "wasmop::plugin", plugin = %state.plugin(), "call failed: {e:?}");
    let mut message = match e.downcast_ref::<Trap>() {
        Some(trap) => trap.to_string(),
        None => format!("{e:#}"),
    };
    let stderr = state.stderr_tail();
    if !stderr.is_empty() {
        message.push_str("; guest stderr: ");
        message.push_str(&stderr);
    }
    ReconcileFailure::Trap(message)
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(no message)".into()
    }
}
