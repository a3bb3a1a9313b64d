//! Prometheus metrics of a running host, rendered at each scrape from the engine's counters and the
//! plugin manager's state (`GET /metrics` on the status endpoint).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use wasmop_engine::Engine;

use crate::plugins::manager::{PluginStatus, State};

type ByPlugin = Vec<(String, String)>;

/// The metrics text for the plugins in `status`.
pub async fn render(engine: &Engine, status: &[PluginStatus]) -> String {
    let reconciles = Family::<ByPlugin, Counter>::default();
    let failures = Family::<ByPlugin, Counter>::default();
    let writes = Family::<ByPlugin, Counter>::default();
    let refused = Family::<ByPlugin, Counter>::default();
    let queued = Family::<ByPlugin, Gauge>::default();
    let running = Family::<ByPlugin, Gauge>::default();
    let up = Family::<ByPlugin, Gauge>::default();
    for s in status {
        let Some(name) = s.name.clone() else { continue };
        let labels = vec![("plugin".to_string(), name.clone())];
        up.get_or_create(&vec![
            ("plugin".to_string(), name.clone()),
            ("version".to_string(), s.version.clone().unwrap_or_default()),
        ])
        .set(i64::from(s.state == State::Running));
        if let Some(stats) = engine.stats(&name).await {
            reconciles.get_or_create(&labels).inc_by(stats.reconciles);
            failures.get_or_create(&labels).inc_by(stats.failures);
            writes.get_or_create(&labels).inc_by(stats.writes);
            refused.get_or_create(&labels).inc_by(stats.refused);
        }
        if let Some((pending, in_flight)) = engine.backlog(&name).await {
            queued.get_or_create(&labels).set(pending as i64);
            running.get_or_create(&labels).set(in_flight as i64);
        }
    }
    let mut registry = Registry::with_prefix("wasmop");
    registry.register("reconciles", "Reconciles run", reconciles);
    registry.register(
        "reconcile_failures",
        "Reconciles that failed (guest error, trap, timeout, failed write)",
        failures,
    );
    registry.register("writes", "API writes sent", writes);
    registry.register(
        "refused_answers",
        "Desired states refused for undeclared writes",
        refused,
    );
    registry.register("queued_keys", "Objects waiting to be reconciled", queued);
    registry.register("running_reconciles", "Reconciles in flight", running);
    registry.register(
        "plugin_up",
        "Whether the plugin is running (1), or starting or failed to load (0)",
        up,
    );
    let mut out = String::new();
    let _ = encode(&mut out, &registry);
    out
}
