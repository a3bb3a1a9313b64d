//! The engine's Prometheus metrics, one definition each: counters and histograms updated where things
//! happen (controllers, queues, writers, watches), and gauges read from the engine's state at each
//! scrape ([`crate::Engine::register_metrics`]). The host's status endpoint (`wasmop` crate,
//! `telemetry.rs`) encodes them with its own; `docs/operations.md` ("Metrics") lists them all.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Labels: one, two or three (name, value) pairs.
pub type Labels1 = [(&'static str, String); 1];
pub type Labels2 = [(&'static str, String); 2];
pub type Labels3 = [(&'static str, String); 3];

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Seconds from 1 ms to about 33 s.
fn seconds_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// See the module docs. Cloning shares the same series.
#[derive(Debug, Clone)]
pub struct Metrics {
    /// `plugin`, `outcome` (`success`, `error`, `parked`).
    pub reconciles: Family<Labels2, Counter>,
    /// `plugin`.
    pub reconcile_duration: HistogramFamily<Labels1>,
    /// `plugin`.
    pub queue_adds: Family<Labels1, Counter>,
    /// `plugin`: from the moment a key is due to the moment a worker takes it.
    pub queue_duration: HistogramFamily<Labels1>,
    /// `plugin`: keys scheduled again after a failure.
    pub retries: Family<Labels1, Counter>,
    /// `plugin`, `reason` (`backoff`, `retry_after`, `conflict`): how long a failed key waits
    /// before it is reconciled again.
    pub retry_delay: HistogramFamily<Labels2>,
    /// `plugin`: desired states refused because they asked for undeclared writes.
    pub refused: Family<Labels1, Counter>,
    /// `plugin`, `verb`, `code`.
    pub writes: Family<Labels3, Counter>,
    /// `plugin`.
    pub limiter_wait: Family<Labels1, Counter<f64, AtomicU64>>,
    /// `kind`.
    pub watch_restarts: Family<Labels1, Counter>,
    /// `kind`.
    pub watch_relists: Family<Labels1, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reconciles: Family::default(),
            reconcile_duration: Family::new_with_constructor(seconds_histogram),
            queue_adds: Family::default(),
            queue_duration: Family::new_with_constructor(seconds_histogram),
            retries: Family::default(),
            retry_delay: Family::new_with_constructor(seconds_histogram),
            refused: Family::default(),
            writes: Family::default(),
            limiter_wait: Family::default(),
            watch_restarts: Family::default(),
            watch_relists: Family::default(),
        }
    }
}

pub(crate) fn plugin(name: &str) -> Labels1 {
    [("plugin", name.to_string())]
}

pub(crate) fn kind(kind: impl std::fmt::Display) -> Labels1 {
    [("kind", kind.to_string())]
}

impl Metrics {
    /// Registers every series (sharing them) in `registry`, which carries the `wasmop` prefix.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "reconciles",
            "Reconciles by plugin and outcome (success, error, parked: skipped after a permanent failure)",
            self.reconciles.clone(),
        );
        registry.register_with_unit(
            "reconcile_duration",
            "Time of one reconcile: snapshot, plugin call, plan and writes",
            Unit::Seconds,
            self.reconcile_duration.clone(),
        );
        registry.register(
            "queue_adds",
            "Keys added to a plugin's work queue (coalesced adds included)",
            self.queue_adds.clone(),
        );
        registry.register_with_unit(
            "queue_duration",
            "Time a key waited in the work queue after it was due",
            Unit::Seconds,
            self.queue_duration.clone(),
        );
        registry.register(
            "reconcile_retries",
            "Keys scheduled again after a failed reconcile (backoff, Retry-After or conflict)",
            self.retries.clone(),
        );
        registry.register_with_unit(
            "retry_delay",
            "Delay before a failed key is reconciled again, by plugin and reason (backoff: per-key exponential backoff; retry_after: the API server's Retry-After; conflict)",
            Unit::Seconds,
            self.retry_delay.clone(),
        );
        registry.register(
            "refused_answers",
            "Desired states refused because they asked for writes the plugin did not declare",
            self.refused.clone(),
        );
        registry.register(
            "api_writes",
            "API writes sent, by plugin, verb and response code (`error`: no response)",
            self.writes.clone(),
        );
        registry.register_with_unit(
            "write_limiter_wait",
            "Time writes waited for the global write token bucket",
            Unit::Seconds,
            self.limiter_wait.clone(),
        );
        registry.register(
            "watch_restarts",
            "Watch errors after which the kind's watch restarts (with backoff)",
            self.watch_restarts.clone(),
        );
        registry.register(
            "watch_relists",
            "Full lists of a kind (the first one, and after a watch expired or failed)",
            self.watch_relists.clone(),
        );
    }
}
