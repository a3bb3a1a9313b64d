//! Prometheus metrics of a running host (`GET /metrics` on the status endpoint): the engine's own
//! (defined once in `wasmop_engine::metrics`, registered by `Engine::register_metrics`) and the
//! host's — plugin loads and the compile cache, whether each plugin is up, and the peak linear
//! memory of its calls (from the runtime), its runtime's live tasks — in one registry with the `wasmop` prefix. `docs/operations.md` ("Metrics") lists every metric.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::plugins::manager::{PluginManager, State};

/// Load (compile or cache read, link, metadata) durations by `result` (`ok`, `error`).
pub type LoadDurations = Family<[(&'static str, String); 1], Histogram, fn() -> Histogram>;

/// Seconds from 10 ms to about 80 s.
fn load_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 14))
}

pub fn load_durations() -> LoadDurations {
    Family::new_with_constructor(load_histogram)
}

/// The metrics text of the host `manager` belongs to.
pub async fn render(manager: &PluginManager) -> String {
    let mut registry = Registry::with_prefix("wasmop");
    manager.engine().register_metrics(&mut registry).await;
    let up = Family::<[(&'static str, String); 2], Gauge>::default();
    for s in manager.status().await {
        let Some(name) = s.name else { continue };
        up.get_or_create(&[("plugin", name), ("version", s.version.unwrap_or_default())])
            .set(i64::from(s.state == State::Running));
    }
    registry.register(
        "plugin_up",
        "Whether the plugin is running (1), or starting or failed to load (0)",
        up,
    );
    let high_water = Family::<[(&'static str, String); 1], Gauge>::default();
    for (name, bytes) in manager.memory_high_water().await {
        high_water
            .get_or_create(&[("plugin", name)])
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }
    registry.register_with_unit(
        "guest_memory_high_water",
        "The most linear memory one call (reconcile or map) of the running plugin version held so far",
        Unit::Bytes,
        high_water,
    );
    // Calls the runtime contained (deadline, memory cap, answer size cap, invalid answer, trap) and
    // log lines its rate limit dropped, per running plugin version.
    let contained = Family::<[(&'static str, String); 2], Counter>::default();
    let dropped = Family::<[(&'static str, String); 1], Counter>::default();
    for (name, counts, lines) in manager.contained().await {
        for (how, n) in counts {
            contained
                .get_or_create(&[("plugin", name.clone()), ("cause", how.as_str().into())])
                .inc_by(n);
        }
        dropped.get_or_create(&[("plugin", name)]).inc_by(lines);
    }
    registry.register(
        "plugin_calls_contained",
        "Calls of the running plugin version the host stopped or refused, by cause: deadline, memory, answer_size, invalid_answer, trap",
        contained,
    );
    registry.register(
        "plugin_log_lines_dropped",
        "Log lines (log calls, stdout and stderr lines) of the running plugin version dropped by its log rate limit",
        dropped,
    );
    registry.register_with_unit(
        "plugin_load_duration",
        "Time to load a plugin file: compile (or read the compile cache), link, read its metadata",
        Unit::Seconds,
        manager.load_durations().clone(),
    );
    // Tasks alive on the host's async runtime (watches, pumps, workers, timers, connections): flat
    // under steady load, so a count that keeps growing is a leaked task (the churn soak checks it).
    let tasks = Gauge::<i64>::default();
    tasks.set(
        i64::try_from(tokio::runtime::Handle::current().metrics().num_alive_tasks()).unwrap_or(i64::MAX),
    );
    registry.register("host_tasks", "Tasks alive on the host's async runtime", tasks);
    if let Some(stats) = manager.artifact_cache_stats() {
        let counter = |n: u64| {
            let c = Counter::<u64>::default();
            c.inc_by(n);
            c
        };
        registry.register(
            "plugin_compile_cache_hits",
            "Plugin loads served by the compile cache (no compilation)",
            counter(stats.hits),
        );
        registry.register(
            "plugin_compile_cache_misses",
            "Plugin loads that compiled",
            counter(stats.misses),
        );
        registry.register(
            "plugin_compile_cache_rejected",
            "Cached artifacts not loaded because they were truncated, foreign or failed their MAC (each recompiled and rewritten)",
            counter(stats.rejected),
        );
        registry.register(
            "plugin_compile_cache_write_errors",
            "Compiled plugins that could not be written to the compile cache",
            counter(stats.write_errors),
        );
    }
    let mut out = String::new();
    let _ = encode(&mut out, &registry);
    out
}
