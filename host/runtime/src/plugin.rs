//! A loaded plugin and its calls (`reconcile`, `map`): fresh store, deadline, memory cap, answer
//! size cap, the log rate limit its calls share, the mapping of every outcome to the contract (for
//! either contract version the plugin implements), and the count of each contained failure.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use wasmop_contract::{
    BoxFuture, CacheReader, Desired, Metadata, ObjectKey, Reason, ReconcileFailure, Reconciler, Snapshot,
    SnapshotText, Trigger,
};
use wasmtime::{PoolConcurrencyLimitError, Trap};

use crate::bindings::{v0_1, v0_2};
use crate::convert;
use crate::host::{HostState, LogLimiter};
use crate::pool::PluginEngine;
use crate::runtime::Runtime;

/// What one call of a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginLimits {
    /// Wall-clock time for one call, instantiation included (checked at every epoch tick).
    pub deadline: Duration,
    /// Linear memory of one call's instance, all memories together.
    pub memory_bytes: u64,
    /// The size of one answer: every string of a `reconcile` (or `map`) result together (the JSON
    /// documents, names, messages). A larger answer is refused whole before any of it is parsed.
    pub answer_bytes: u64,
}

impl PluginLimits {
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(2);
    pub const DEFAULT_MEMORY_BYTES: u64 = 64 << 20;
    /// kube-apiserver refuses a request body over 3 MiB, so no one object of an answer can be
    /// written if larger; 8 MiB leaves room for two such objects and the rest, while keeping what
    /// the host holds and parses per call (a parsed JSON tree takes several times its text) small.
    pub const DEFAULT_ANSWER_BYTES: u64 = 8 << 20;
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            deadline: Self::DEFAULT_DEADLINE,
            memory_bytes: Self::DEFAULT_MEMORY_BYTES,
            answer_bytes: Self::DEFAULT_ANSWER_BYTES,
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
    /// Keeps the epoch ticker (and compile cache) alive as long as the plugin.
    _runtime: Runtime,
    /// Its engine and instance pool.
    engine: Arc<PluginEngine>,
    file: String,
    name: Arc<str>,
    metadata: Metadata,
    world: World,
    /// The most linear memory one call of this plugin held, over its calls so far.
    memory_high_water: AtomicU64,
    /// The log rate limit all its calls share.
    log: Arc<LogLimiter>,
    /// Its calls that failed, by cause, and the last such failure.
    failures: [AtomicU64; Containment::ALL.len()],
    last_failure: Mutex<Option<String>>,
}

/// How the host contained a failed call of a plugin (the guest's own `retry` and `permanent` errors
/// are answers, not failures of the call, and are not counted here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Containment {
    /// Stopped at its deadline.
    Deadline,
    /// Refused memory past its cap.
    Memory,
    /// Its answer was over the answer size cap.
    AnswerSize,
    /// Its answer was not what the contract allows (a JSON document that does not parse, ...).
    InvalidAnswer,
    /// It trapped (a panic, an unreachable, a bad memory access).
    Trap,
}

impl Containment {
    pub const ALL: [Containment; 5] = [
        Containment::Deadline,
        Containment::Memory,
        Containment::AnswerSize,
        Containment::InvalidAnswer,
        Containment::Trap,
    ];

    /// Its label in metrics: `deadline`, `memory`, `answer_size`, `invalid_answer`, `trap`.
    pub fn as_str(self) -> &'static str {
        match self {
            Containment::Deadline => "deadline",
            Containment::Memory => "memory",
            Containment::AnswerSize => "answer_size",
            Containment::InvalidAnswer => "invalid_answer",
            Containment::Trap => "trap",
        }
    }

    fn of(failure: &ReconcileFailure) -> Option<Containment> {
        match failure {
            ReconcileFailure::Timeout(_) => Some(Containment::Deadline),
            ReconcileFailure::OutOfMemory(_) => Some(Containment::Memory),
            ReconcileFailure::Invalid(_) => Some(Containment::InvalidAnswer),
            ReconcileFailure::Trap(_) => Some(Containment::Trap),
            ReconcileFailure::Retry(_) | ReconcileFailure::Permanent(_) => None,
        }
    }
}

/// The linked component, by the contract version it implements.
pub(crate) enum World {
    V0_2(v0_2::ReconcilerPre<HostState>),
    V0_1 {
        pre: v0_1::ReconcilerPre<HostState>,
        /// The 0.1 metadata switched the finalizer on for every object.
        finalizer_everywhere: bool,
    },
}

impl World {
    fn version(&self) -> &'static str {
        match self {
            World::V0_2(_) => v0_2::VERSION,
            World::V0_1 { .. } => v0_1::VERSION,
        }
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("file", &self.inner.file)
            .field("name", &self.inner.metadata.name)
            .field("contract", &self.inner.world.version())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Plugin {
    pub(crate) fn new(
        runtime: Runtime,
        engine: Arc<PluginEngine>,
        file: String,
        metadata: Metadata,
        world: World,
        limits: PluginLimits,
    ) -> Plugin {
        Plugin {
            inner: Arc::new(PluginInner {
                _runtime: runtime,
                engine,
                file,
                name: metadata.name.as_str().into(),
                metadata,
                world,
                memory_high_water: AtomicU64::new(0),
                log: Arc::new(LogLimiter::new()),
                failures: Default::default(),
                last_failure: Mutex::new(None),
            }),
            limits,
        }
    }

    /// What the plugin declared (validated).
    pub fn metadata(&self) -> &Metadata {
        &self.inner.metadata
    }

    /// The version of the contract the plugin implements: `"0.2.0"` or `"0.1.0"`.
    pub fn contract_version(&self) -> &'static str {
        self.inner.world.version()
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

    /// Its instance pool (`None` with the on-demand allocator).
    pub fn instance_pool(&self) -> Option<crate::pool::InstancePool> {
        self.inner.engine.pool
    }

    /// The peak linear memory (bytes, all memories of the instance together) of its calls so far
    /// (`reconcile` and `map`, failed ones included; a growth refused by the memory cap is not
    /// counted): the highest of each call's high-water mark. Shared by clones; 0 before any call.
    pub fn memory_high_water(&self) -> u64 {
        self.inner.memory_high_water.load(Ordering::Relaxed)
    }

    /// Records the high-water mark of a finished call.
    fn record_memory(&self, store: &wasmtime::Store<HostState>) {
        self.inner
            .memory_high_water
            .fetch_max(store.data().limiter.peak(), Ordering::Relaxed);
    }

    /// Log lines of its calls dropped by its log rate limit so far (shared by clones).
    pub fn log_lines_dropped(&self) -> u64 {
        self.inner.log.dropped()
    }

    /// Its calls (`reconcile`, `map`) the host contained so far, by how (shared by clones).
    pub fn contained(&self) -> Vec<(Containment, u64)> {
        Containment::ALL
            .iter()
            .zip(&self.inner.failures)
            .map(|(c, n)| (*c, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// The last contained failure of one of its calls (see [`contained`](Self::contained)), as
    /// the engine reports it; `None` while every call ended with an answer or the guest's own error.
    pub fn last_failure(&self) -> Option<String> {
        self.inner
            .last_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counts a contained failure as `how`.
    fn record_failure(&self, how: Containment, failure: &ReconcileFailure) {
        self.inner.failures[how as usize].fetch_add(1, Ordering::Relaxed);
        *self.inner.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(failure.to_string());
    }

    /// The result of a call, its failure (if the host contained one) counted.
    fn counted<T>(&self, result: Result<T, ReconcileFailure>) -> Result<T, ReconcileFailure> {
        if let Err(failure) = &result
            && let Some(how) = Containment::of(failure)
        {
            self.record_failure(how, failure);
        }
        result
    }

    /// Refuses an answer of `size` bytes over the answer cap, naming the plugin and the cap.
    fn check_answer_size(&self, size: usize, limits: PluginLimits) -> Result<(), ReconcileFailure> {
        if size as u64 <= limits.answer_bytes {
            return Ok(());
        }
        let failure = ReconcileFailure::Invalid(format!(
            "the answer of plugin {} is {size} bytes, over its answer size cap of {} bytes \
             (--max-answer); nothing of it was used",
            self.inner.name, limits.answer_bytes
        ));
        self.record_failure(Containment::AnswerSize, &failure);
        Err(failure)
    }

    /// A fresh store for one call, its log lines counted against the plugin's rate limit.
    fn store(&self, cache: Arc<dyn CacheReader>, limits: PluginLimits) -> wasmtime::Store<HostState> {
        let mut store = self.inner.engine.store(self.inner.name.clone(), cache, limits);
        store.data_mut().share_log_limiter(self.inner.log.clone());
        store
    }

    /// One reconcile, in a fresh instance. Never panics because of the guest.
    pub async fn reconcile(
        &self,
        snapshot: &Snapshot,
        cache: Arc<dyn CacheReader>,
    ) -> Result<Desired, ReconcileFailure> {
        match &self.inner.world {
            World::V0_2(pre) => {
                self.reconcile_0_2(pre, convert::snapshot_to_wit(snapshot), cache)
                    .await
            }
            World::V0_1 {
                pre,
                finalizer_everywhere,
            } => {
                let input = crate::v0_1::snapshot_to_wit(snapshot);
                self.reconcile_0_1(pre, *finalizer_everywhere, input, snapshot.reason, cache)
                    .await
            }
        }
    }

    /// [`reconcile`](Self::reconcile) with the objects as the engine's JSON text, handed to the
    /// guest as they are.
    pub async fn reconcile_text(
        &self,
        snapshot: SnapshotText,
        cache: Arc<dyn CacheReader>,
    ) -> Result<Desired, ReconcileFailure> {
        match &self.inner.world {
            World::V0_2(pre) => {
                self.reconcile_0_2(pre, convert::snapshot_text_to_wit(snapshot), cache)
                    .await
            }
            World::V0_1 {
                pre,
                finalizer_everywhere,
            } => {
                let reason = snapshot.reason;
                let input = crate::v0_1::snapshot_text_to_wit(snapshot);
                self.reconcile_0_1(pre, *finalizer_everywhere, input, reason, cache)
                    .await
            }
        }
    }

    async fn reconcile_0_2(
        &self,
        pre: &v0_2::ReconcilerPre<HostState>,
        input: v0_2::types::Snapshot,
        cache: Arc<dyn CacheReader>,
    ) -> Result<Desired, ReconcileFailure> {
        let limits = self.limits;
        // Held until the store is dropped: the instance's pool slot.
        let _slot = self.inner.engine.slot().await;
        let mut store = self.store(cache, limits);
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_reconcile(&mut store, &input).await
        };
        let outcome = bounded(limits, call).await;
        self.record_memory(&store);
        match outcome {
            Outcome::Done(Ok(Ok(desired))) => {
                self.check_answer_size(convert::desired_size(&desired), limits)?;
                self.counted(convert::desired_from_wit(desired))
            }
            Outcome::Done(Ok(Err(error))) => Err(convert::error_from_wit(error)),
            Outcome::Done(Err(e)) => self.counted(Err(classify(e, store.data(), limits))),
            Outcome::Failed(failure) => self.counted(Err(failure)),
        }
    }

    async fn reconcile_0_1(
        &self,
        pre: &v0_1::ReconcilerPre<HostState>,
        finalizer_everywhere: bool,
        input: v0_1::types::Snapshot,
        reason: Reason,
        cache: Arc<dyn CacheReader>,
    ) -> Result<Desired, ReconcileFailure> {
        let limits = self.limits;
        let _slot = self.inner.engine.slot().await;
        let mut store = self.store(cache, limits);
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_reconcile(&mut store, &input).await
        };
        let outcome = bounded(limits, call).await;
        self.record_memory(&store);
        match outcome {
            Outcome::Done(Ok(Ok(desired))) => {
                self.check_answer_size(crate::v0_1::desired_size(&desired), limits)?;
                self.counted(crate::v0_1::desired_from_wit(
                    desired,
                    reason,
                    finalizer_everywhere,
                ))
            }
            Outcome::Done(Ok(Err(error))) => Err(crate::v0_1::error_from_wit(error)),
            Outcome::Done(Err(e)) => self.counted(Err(classify(e, store.data(), limits))),
            Outcome::Failed(failure) => self.counted(Err(failure)),
        }
    }

    /// The primary objects a change to an object of a triggering lookup concerns: the guest's
    /// `map`, in a fresh instance with the same deadline, memory cap and cache as a reconcile. A
    /// 0.1 plugin has no `map` (and no triggering lookups): it answers nothing.
    pub async fn map(
        &self,
        trigger: &Trigger,
        cache: Arc<dyn CacheReader>,
    ) -> Result<Vec<ObjectKey>, ReconcileFailure> {
        let World::V0_2(pre) = &self.inner.world else {
            return Ok(Vec::new());
        };
        let limits = self.limits;
        // Held until the store is dropped: the instance's pool slot.
        let _slot = self.inner.engine.slot().await;
        let mut store = self.store(cache, limits);
        let input = convert::trigger_to_wit(trigger);
        let call = async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_map(&mut store, &input).await
        };
        let outcome = bounded(limits, call).await;
        self.record_memory(&store);
        match outcome {
            Outcome::Done(Ok(Ok(keys))) => {
                self.check_answer_size(convert::keys_size(&keys), limits)?;
                Ok(convert::keys_from_wit(keys))
            }
            Outcome::Done(Ok(Err(error))) => Err(convert::error_from_wit(error)),
            Outcome::Done(Err(e)) => self.counted(Err(classify(e, store.data(), limits))),
            Outcome::Failed(failure) => self.counted(Err(failure)),
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

    fn takes_text(&self) -> bool {
        true
    }

    fn reconcile_text<'a>(
        &'a self,
        snapshot: SnapshotText,
        cache: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Desired, ReconcileFailure>> {
        Box::pin(async move { Plugin::reconcile_text(self, snapshot, cache).await })
    }

    fn map<'a>(
        &'a self,
        trigger: Trigger,
        cache: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Vec<ObjectKey>, ReconcileFailure>> {
        Box::pin(async move { Plugin::map(self, &trigger, cache).await })
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasmop_contract::{EmptyCache, Gvk, Reason};

    /// The configmap-replicator as built against the 0.1 contract (`finalizer: true` in its
    /// metadata: the finalizer on every object).
    const REPLICATOR_0_1: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/configmap-replicator-0.1.0.wasm"
    );

    fn snapshot(reason: Reason) -> Snapshot {
        serde_json::from_value(json!({
            "object": {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "settings", "namespace": "demo", "uid": "u-1"},
                "data": {"a": "1"},
            },
            "lookups": [{"lookup": {"apiVersion": "v1", "kind": "Namespace"}, "objects": []}],
            "reason": reason,
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn a_0_1_plugin_loads_and_is_adapted_to_the_contract() {
        let plugin = Runtime::shared()
            .unwrap()
            .load(REPLICATOR_0_1, PluginLimits::default())
            .unwrap();
        assert_eq!(plugin.contract_version(), "0.1.0");
        let m = plugin.metadata();
        assert_eq!(m.name, "configmap-replicator");
        assert_eq!(m.primary, Gvk::new("", "v1", "ConfigMap"));
        assert_eq!(m.finalizer, None);
        assert_eq!(m.finalizer_name(), "wasmop.io/configmap-replicator");
        assert_eq!(m.lookups.len(), 1);
        assert!(!m.has_triggers());
        assert!(m.crds.is_empty());

        // The 0.1 finalizer was for every object: every answer holds it ...
        let cache: Arc<dyn CacheReader> = Arc::new(EmptyCache);
        let desired = plugin
            .reconcile(&snapshot(Reason::Change), cache.clone())
            .await
            .unwrap();
        assert!(desired.finalizer);
        assert!(desired.apply.is_empty(), "no annotation, no copies");
        let desired = plugin
            .reconcile(&snapshot(Reason::Trigger), cache.clone())
            .await
            .unwrap();
        assert!(desired.finalizer, "a trigger reaches it as a change");
        // ... until a deletion reconcile says finalizer-done.
        let desired = plugin
            .reconcile(&snapshot(Reason::Deletion), cache.clone())
            .await
            .unwrap();
        assert!(!desired.finalizer);

        // No map in 0.1.
        let trigger = Trigger {
            lookup: 0,
            object: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
            deleted: false,
        };
        assert_eq!(plugin.map(&trigger, cache).await, Ok(Vec::new()));
    }

    #[tokio::test]
    async fn the_memory_high_water_mark_is_the_peak_of_the_calls_and_shared_by_clones() {
        let plugin = Runtime::shared()
            .unwrap()
            .load(REPLICATOR_0_1, PluginLimits::default())
            .unwrap();
        assert_eq!(
            plugin.memory_high_water(),
            0,
            "no call yet (metadata at load is not one)"
        );
        let cache: Arc<dyn CacheReader> = Arc::new(EmptyCache);
        plugin
            .reconcile(&snapshot(Reason::Change), cache.clone())
            .await
            .unwrap();
        let first = plugin.memory_high_water();
        assert!(first > 0, "an instance has linear memory");
        assert!(first <= PluginLimits::DEFAULT_MEMORY_BYTES);
        // A clone with other limits shares the mark: one that cannot even instantiate does not lower it.
        let tiny = plugin.clone().with_limits(PluginLimits {
            memory_bytes: 64 << 10,
            ..PluginLimits::default()
        });
        assert!(first > 64 << 10, "the replicator needs more than 64 KiB");
        assert_eq!(
            tiny.reconcile(&snapshot(Reason::Change), cache.clone())
                .await
                .unwrap_err(),
            ReconcileFailure::OutOfMemory(64 << 10)
        );
        assert_eq!(tiny.memory_high_water(), first);
        plugin
            .reconcile(&snapshot(Reason::Deletion), cache)
            .await
            .unwrap();
        assert!(plugin.memory_high_water() >= first);
        assert_eq!(tiny.memory_high_water(), plugin.memory_high_water());
    }
}
