//! The engine's rows of the fault matrix (issue 11, `docs/reliability.md`): the host against an API
//! server that throttles half of its writes (429 with Retry-After), and against one that fails and
//! slows a share of all requests (500s, 200 ms). Each checks convergence, that no object is lost and
//! no child duplicated, what the API server saw of the host's pacing (its request journal), and the
//! host's metrics. The fault window is 8 s here; `WASMOP_LONG_FAULTS=1` runs the full 30 s.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DynamicObject, ListParams};
use wasmop_apiserver::FaultSettings;
use wasmop_apiserver::faults::Seen;
use wasmop_engine::{PluginSettings, PluginState};

use crate::latency::{Probe, SAMPLES, assert_within_target, under_load};
use crate::support::{Host, apply_yaml, databases, eventually, host_args, status_get, try_apply_yaml};

/// How long the faults last: the row's 30 s with `WASMOP_LONG_FAULTS=1`, 8 s otherwise (CI).
fn fault_window() -> Duration {
    if std::env::var("WASMOP_LONG_FAULTS").is_ok_and(|v| v == "1") {
        Duration::from_secs(30)
    } else {
        Duration::from_secs(8)
    }
}

/// A host with its own global write limit (`--write-qps`, `--write-burst`).
async fn host_with_limit(qps: f64, burst: u32) -> Host {
    let mut args = host_args();
    args.engine.write_qps = qps;
    args.engine.write_burst = burst;
    Host::start_with_args(&args).await
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: web, image: nginx}}]}}\n"
    )
}

/// The test's own calls meet the faults too: retried until they succeed.
async fn retrying<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, kube::Error>>,
{
    eventually(60, what, || {
        let fut = f();
        async move { fut.await.ok() }
    })
    .await
}

/// Writes the host sent: the plugins' children and events (the test itself writes only
/// Deployments, ConfigMaps, Databases and Namespaces).
fn host_writes<'a>(journal: &'a [Seen], resources: &[&str]) -> Vec<&'a Seen> {
    journal
        .iter()
        .filter(|s| matches!(s.verb, "create" | "update" | "patch" | "delete"))
        .filter(|s| resources.iter().any(|r| s.path.contains(&format!("/{r}"))))
        .collect()
}

/// The most requests that arrived within any window of `window`.
fn max_in_window(requests: &[&Seen], window: Duration) -> usize {
    let mut most = 0;
    let mut first = 0;
    for (i, r) in requests.iter().enumerate() {
        while r.at.duration_since(requests[first].at) >= window {
            first += 1;
        }
        most = most.max(i + 1 - first);
    }
    most
}

/// Sum of a metric's series whose labels contain every `label="value"` of `filters`.
fn metric(text: &str, name: &str, filters: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(series, _)| {
            series.split('{').next() == Some(name) && filters.iter().all(|f| series.contains(f))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// The controller owner's uid of each object, by object name; panics on a duplicate name.
fn owners(items: impl IntoIterator<Item = kube::api::ObjectMeta>) -> BTreeMap<String, String> {
    let mut by_name = BTreeMap::new();
    for meta in items {
        let owner = meta
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid)
            .unwrap_or_default();
        let name = meta.name.unwrap_or_default();
        assert!(by_name.insert(name.clone(), owner).is_none(), "{name} twice");
    }
    by_name
}

/// Every Deployment in `default` has exactly one budget, owned by it, and there is no other.
async fn one_budget_per_deployment(client: &kube::Client, n: usize) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let lp = ListParams::default();
    let ds = retrying("the Deployments", || deployments.list(&lp)).await;
    assert_eq!(ds.items.len(), n, "no Deployment lost");
    let budgets = retrying("the budgets", || pdbs.list(&lp)).await;
    let owned = owners(budgets.items.into_iter().map(|p| p.metadata));
    let expected: BTreeMap<String, String> = ds
        .items
        .into_iter()
        .map(|d| (d.metadata.name.unwrap(), d.metadata.uid.unwrap()))
        .collect();
    assert_eq!(owned, expected, "one budget per Deployment, owned by it");
}

/// The host is alive: its liveness endpoint answers and every plugin is running.
async fn host_alive(h: &Host, plugins: &[&str]) {
    let live = status_get(h.host.status_addr(), "/livez").await;
    assert!(live.contains("ok"), "liveness: {live}");
    for p in plugins {
        let state = h.engine.wait_running(p, Duration::from_secs(5)).await;
        assert_eq!(state, Some(PluginState::Running), "{p}");
    }
}

/// Row "50 % of writes answered 429 with Retry-After for 30 s": Retry-After honoured (a 429 pauses
/// the writes of its resource), the write rate never above the limit, converges after.
#[tokio::test(flavor = "multi_thread")]
async fn half_of_writes_throttled_with_retry_after_are_paced_and_converge() {
    const QPS: f64 = 5.0;
    const BURST: u32 = 5;
    const RETRY_AFTER: u64 = 2;
    let window = fault_window();
    // More work than the limit lets through in the window, so that the limit is what paces it.
    let n = (window.as_secs() * 4) as usize;
    let h = host_with_limit(QPS, BURST).await;
    let client = h.t.client.clone();
    for i in 0..n {
        apply_yaml(&client, &deployment(&format!("web{i}"))).await;
    }
    h.t.server.faults().set(FaultSettings {
        too_many_requests: 0.5,
        retry_after_seconds: RETRY_AFTER,
        writes_only: true,
        record: true,
        ..Default::default()
    });
    let faults_on = Instant::now();
    // pdb-guard starts under the faults with n budgets (and n events) to write.
    h.plugin("pdb-guard", PluginSettings::default()).await;
    tokio::time::sleep(window.saturating_sub(faults_on.elapsed())).await;
    let done_in_window = Api::<PodDisruptionBudget>::namespaced(client.clone(), "default")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .len();
    h.t.server.faults().set(FaultSettings {
        record: true,
        ..Default::default()
    });
    let faults_off = Instant::now();
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    eventually(60, "every budget after the faults", || async {
        let list = pdbs.list(&ListParams::default()).await.ok()?;
        (list.items.len() == n).then_some(())
    })
    .await;
    // The events too, though half of their first tries were throttled: one per budget.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "default");
    let announced = || async {
        let mut by_deployment: BTreeMap<String, usize> = BTreeMap::new();
        for e in events.list(&ListParams::default()).await.ok()?.items {
            if e.reason.as_deref() == Some("DisruptionBudgetCreated") {
                let name = e.regarding.and_then(|r| r.name).unwrap_or_default();
                *by_deployment.entry(name).or_default() += 1;
            }
        }
        Some(by_deployment)
    };
    let by_deployment = eventually(60, "an event per budget", || async {
        let seen = announced().await?;
        (seen.len() == n).then_some(seen)
    })
    .await;
    let converged_after = faults_off.elapsed();
    assert!(
        by_deployment.values().all(|c| *c == 1),
        "one event each: {by_deployment:?}"
    );
    one_budget_per_deployment(&client, n).await;
    host_alive(&h, &["pdb-guard"]).await;

    // What the API server saw of the host's writes.
    let journal = h.t.server.faults().journal();
    let writes = host_writes(&journal, &["poddisruptionbudgets", "events"]);
    let throttled: Vec<&&Seen> = writes.iter().filter(|s| s.injected == Some(429)).collect();
    assert!(!throttled.is_empty(), "some of the host's writes were throttled");
    // Retry-After honoured: after a 429 the host sends no write of that resource for Retry-After
    // (writes already on their way when the 429 was answered excepted: 100 ms), and never the
    // same one.
    let pause = Duration::from_secs(RETRY_AFTER);
    let resource = |s: &Seen| {
        ["poddisruptionbudgets", "events"]
            .into_iter()
            .find(|r| s.path.contains(&format!("/{r}")))
    };
    let mut early = Vec::new();
    let mut min_same_retry = Duration::MAX;
    for t in &throttled {
        for w in writes
            .iter()
            .filter(|w| w.at > t.at && resource(w) == resource(t))
        {
            let gap = w.at - t.at;
            if w.path == t.path && w.verb == t.verb && t.verb != "create" {
                min_same_retry = min_same_retry.min(gap);
            }
            if gap > Duration::from_millis(100) && gap < pause {
                early.push(format!("{} {} {gap:?} after a 429", w.verb, w.path));
            }
        }
    }
    assert!(
        early.is_empty(),
        "{} writes sent within Retry-After: {:?}",
        early.len(),
        &early[..early.len().min(5)]
    );
    assert!(
        min_same_retry >= pause,
        "a throttled write retried after {min_same_retry:?}"
    );
    // The global write limit: in any window of T seconds at most burst + qps × T writes.
    let mut rates = Vec::new();
    for secs in [1u64, 5] {
        let most = max_in_window(&writes, Duration::from_secs(secs));
        let limit = f64::from(BURST) + QPS * secs as f64;
        assert!(
            most as f64 <= limit,
            "{most} writes within {secs} s, the limit allows {limit}"
        );
        rates.push(format!("{most} in {secs} s (limit {limit})"));
    }
    // The host's metrics count what the API server answered.
    let text = status_get(h.host.status_addr(), "/metrics").await;
    let counted = metric(&text, "wasmop_api_writes_total", &["code=\"429\""]);
    assert_eq!(
        counted,
        throttled.len() as f64,
        "every 429 the server answered is counted"
    );
    // Each throttled write ended its reconcile, which waits the Retry-After (and no more backoff).
    let waits = ["plugin=\"pdb-guard\"", "reason=\"retry_after\""];
    let waited = metric(&text, "wasmop_retry_delay_seconds_count", &waits);
    let budgets_throttled = throttled
        .iter()
        .filter(|s| s.path.contains("/poddisruptionbudgets/"))
        .count();
    assert_eq!(
        waited, budgets_throttled as f64,
        "a Retry-After wait per throttled budget (events are retried by the writer)"
    );
    assert_eq!(
        metric(&text, "wasmop_retry_delay_seconds_sum", &waits),
        waited * RETRY_AFTER as f64
    );
    println!(
        "429 row: window {window:?}, {n} budgets, {} host writes ({} answered 429, {} of them events), {done_in_window} budgets within the window, converged {converged_after:?} after; busiest: {}; shortest retry of a throttled write {min_same_retry:?}",
        writes.len(),
        throttled.len(),
        throttled.len() - budgets_throttled,
        rates.join(", ")
    );
    h.stop().await;
}

/// The 99th percentile of `samples` (of few samples: the largest).
fn p99(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[(samples.len() * 99).div_ceil(100) - 1]
}

/// One round of work for the example plugins: a Deployment, a Database, and a ConfigMap to
/// replicate; returns how long its copy took to appear (the replicator's latency as a user sees
/// it, the test's own retries under the faults included).
async fn round(client: &kube::Client, i: usize) -> Duration {
    let yaml = deployment(&format!("web{i}"));
    retrying("a Deployment", || try_apply_yaml(client, &yaml)).await;
    let yaml = format!(
        "apiVersion: example.com/v1\nkind: Database\nmetadata: {{name: db{i}, namespace: default}}\nspec: {{replicas: 1, image: 'postgres:16', storage: 1Gi}}\n"
    );
    retrying("a Database", || try_apply_yaml(client, &yaml)).await;
    let yaml = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: shared{i}, namespace: default, annotations: {{wasmop.io/replicate-to: copies}}}}\ndata: {{round: '{i}'}}\n"
    );
    retrying("a ConfigMap", || try_apply_yaml(client, &yaml)).await;
    let applied = Instant::now();
    let copies: Api<ConfigMap> = Api::namespaced(client.clone(), "copies");
    let name = format!("shared{i}");
    while !matches!(copies.get_opt(&name).await, Ok(Some(_))) {
        assert!(applied.elapsed() < Duration::from_secs(60), "no copy of {name}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    applied.elapsed()
}

/// Row "500s and 200 ms latency on 30 % of requests": the example plugins converge, and their
/// retries and backoff show in the host's metrics.
#[tokio::test(flavor = "multi_thread")]
async fn errors_and_latency_on_30_percent_of_requests_converge_with_backoff_in_metrics() {
    let window = fault_window();
    let h = Host::start().await;
    let client = h.t.client.clone();
    h.apply_crds().await;
    apply_yaml(
        &client,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: copies}\n",
    )
    .await;
    for p in ["pdb-guard", "configmap-replicator", "database-operator"] {
        h.plugin(p, PluginSettings::default()).await;
    }
    let plugins = ["pdb-guard", "configmap-replicator", "database-operator"];
    // A few rounds without faults: the replicator's latency baseline.
    let mut rounds = 0;
    let mut baseline = Vec::new();
    while rounds < 5 {
        baseline.push(round(&client, rounds).await);
        rounds += 1;
    }
    h.t.server.faults().set(FaultSettings {
        internal_errors: 0.3,
        slow_requests: 0.3,
        slow_latency: Duration::from_millis(200),
        ..Default::default()
    });
    let start = Instant::now();
    // Work keeps arriving during the window.
    let mut faulted = Vec::new();
    while start.elapsed() < window {
        faulted.push(round(&client, rounds).await);
        rounds += 1;
    }
    h.t.server.faults().set(Default::default());
    let faults_off = Instant::now();

    // Converged: a budget per Deployment, a copy per ConfigMap, the children of every Database.
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let copies: Api<ConfigMap> = Api::namespaced(client.clone(), "copies");
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let services: Api<Service> = Api::namespaced(client.clone(), "default");
    let dbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &databases());
    let last = std::cell::Cell::new([0; 5]);
    eventually(60, "every plugin's children after the faults", || async {
        let lp = ListParams::default();
        let budgets = pdbs.list(&lp).await.ok()?.items.len();
        let copied = copies
            .list(&lp)
            .await
            .ok()?
            .items
            .iter()
            .filter(|c| {
                c.metadata
                    .name
                    .as_deref()
                    .is_some_and(|n| n.starts_with("shared"))
            })
            .count();
        let sets = sets.list(&lp).await.ok()?.items.len();
        let services = services
            .list(&lp)
            .await
            .ok()?
            .items
            .iter()
            .filter(|s| s.metadata.name.as_deref().is_some_and(|n| n.starts_with("db")))
            .count();
        let phased = dbs
            .list(&lp)
            .await
            .ok()?
            .items
            .iter()
            .filter(|d| d.data["status"]["phase"].is_string())
            .count();
        let counts = [budgets, copied, sets, services, phased];
        if counts != last.get() {
            println!(
                "{:?} after the faults: budgets, copies, sets, services, phases {counts:?} of {rounds}",
                faults_off.elapsed()
            );
            last.set(counts);
        }
        (counts == [rounds; 5]).then_some(())
    })
    .await;
    let converged_after = faults_off.elapsed();
    one_budget_per_deployment(&client, rounds).await;
    let set_owners = owners(
        sets.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|s| s.metadata),
    );
    let db_uids: BTreeMap<String, String> = dbs
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|d| (d.metadata.name.unwrap(), d.metadata.uid.unwrap()))
        .collect();
    assert_eq!(set_owners, db_uids, "one StatefulSet per Database, owned by it");
    let copied: HashMap<String, String> = copies
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|c| {
            let round = c.data.unwrap_or_default().remove("round").unwrap_or_default();
            (c.metadata.name.unwrap(), round)
        })
        .collect();
    for i in 0..rounds {
        assert_eq!(
            copied.get(&format!("shared{i}")),
            Some(&i.to_string()),
            "copy {i}"
        );
    }
    host_alive(&h, &plugins).await;

    // The retries and their backoff show in the metrics.
    let text = status_get(h.host.status_addr(), "/metrics").await;
    let failed_writes = metric(&text, "wasmop_api_writes_total", &["code=\"500\""]);
    let errors = metric(&text, "wasmop_reconciles_total", &["outcome=\"error\""]);
    let retries = metric(&text, "wasmop_reconcile_retries_total", &[]);
    assert!(failed_writes > 0.0, "writes answered 500 are counted");
    assert!(errors > 0.0 && retries > 0.0, "failed reconciles are retried");
    let backoffs = metric(&text, "wasmop_retry_delay_seconds_count", &["reason=\"backoff\""]);
    let backoff_secs = metric(&text, "wasmop_retry_delay_seconds_sum", &["reason=\"backoff\""]);
    assert!(backoffs > 0.0, "the 500s were retried with backoff");
    assert_eq!(
        metric(&text, "wasmop_retry_delay_seconds_count", &[]),
        retries,
        "every retry's delay is observed"
    );
    println!(
        "500/latency row: window {window:?}, {rounds} rounds, converged {converged_after:?} after; writes answered 500: {failed_writes}, failed reconciles: {errors}, retries: {retries} ({backoffs} after a backoff, {backoff_secs:.2} s in all); replicator latency p99 {:?} without faults ({} rounds), {:?} under them ({} rounds)",
        p99(baseline.clone()),
        baseline.len(),
        p99(faulted.clone()),
        faulted.len()
    );
    h.stop().await;
}

/// Rows "429" and "500s and 200 ms latency", the other plugins' latency: while the API server
/// fails and slows 30 % of the requests on one resource (ConfigMaps, configmap-replicator's: 500s,
/// 200 ms), then while it throttles half of the writes of it (429 with Retry-After),
/// pdb-guard (Deployments, PodDisruptionBudgets, Events) keeps its latency: p99 within 1.5x of the
/// baseline, measured with the same work for the replicator and no faults. A fault on every
/// request (the rows above) reaches every plugin's own requests, so no plugin can keep its
/// latency there.
#[tokio::test(flavor = "multi_thread")]
async fn another_plugin_keeps_its_latency_while_one_resource_is_throttled_or_failing() {
    let h = Host::start().await;
    let client = h.t.client.clone();
    apply_yaml(
        &client,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: copies}\n",
    )
    .await;
    for p in ["pdb-guard", "configmap-replicator"] {
        h.plugin(p, PluginSettings::default()).await;
    }
    let mut probe = Probe::start(&h.t, "default");
    let mut sources = 0;
    let mut phase = async |what: &str, faults: FaultSettings| {
        h.t.server.faults().set(faults);
        // Work for the replicator meanwhile: a ConfigMap to copy every 50 ms.
        let made = std::cell::Cell::new(0);
        let churn = || async {
            let yaml = format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {what}{}, namespace: default, annotations: {{wasmop.io/replicate-to: copies}}}}\ndata: {{v: '1'}}\n",
                made.get()
            );
            retrying("a source", || try_apply_yaml(&client, &yaml)).await;
            made.set(made.get() + 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        // At least 3 s of samples: the replicator meets the faults (its 429 pauses it for 2 s).
        let measure = async {
            let started = Instant::now();
            let mut samples = probe.measure(SAMPLES).await;
            while started.elapsed() < Duration::from_secs(3) {
                samples.extend(probe.measure(10).await);
            }
            samples
        };
        let samples = under_load(churn, measure).await;
        let made = made.get();
        sources += made;
        samples
    };
    let baseline = phase("base", FaultSettings::default()).await;
    let failing = phase(
        "failing",
        FaultSettings {
            internal_errors: 0.3,
            slow_requests: 0.3,
            slow_latency: Duration::from_millis(200),
            resources: vec!["configmaps".into()],
            ..Default::default()
        },
    )
    .await;
    let throttled = phase(
        "throttled",
        FaultSettings {
            too_many_requests: 0.5,
            retry_after_seconds: 2,
            writes_only: true,
            resources: vec!["configmaps".into()],
            ..Default::default()
        },
    )
    .await;
    h.t.server.faults().set(FaultSettings::default());

    // The faults did reach the replicator, and nothing was lost: every source has its copy.
    let text = status_get(h.host.status_addr(), "/metrics").await;
    let replicator = "plugin=\"configmap-replicator\"";
    let throttled_writes = metric(&text, "wasmop_api_writes_total", &[replicator, "code=\"429\""]);
    let failed_writes = metric(&text, "wasmop_api_writes_total", &[replicator, "code=\"500\""]);
    assert!(
        throttled_writes > 0.0,
        "some of the replicator's writes were throttled"
    );
    assert!(failed_writes > 0.0, "some of the replicator's writes failed");
    let copies: Api<ConfigMap> = Api::namespaced(client.clone(), "copies");
    eventually(60, "a copy of every source", || async {
        let n = copies.list(&ListParams::default()).await.ok()?.items.len();
        (n == sources).then_some(())
    })
    .await;
    one_budget_per_deployment(
        &client,
        [&baseline, &failing, &throttled].map(|s| s.len()).iter().sum(),
    )
    .await;
    host_alive(&h, &["pdb-guard", "configmap-replicator"]).await;
    let waits = [replicator, "reason=\"retry_after\""];
    assert!(metric(&text, "wasmop_retry_delay_seconds_count", &waits) > 0.0);
    let waits = ["plugin=\"pdb-guard\""];
    assert_eq!(
        metric(&text, "wasmop_retry_delay_seconds_count", &waits),
        0.0,
        "pdb-guard never waited for a retry"
    );
    println!(
        "{sources} sources copied; the replicator's writes: {throttled_writes} answered 429, {failed_writes} answered 500"
    );
    for (what, fault) in [
        ("429 on ConfigMaps", throttled),
        ("500/latency on ConfigMaps", failing),
    ] {
        assert_within_target(what, &baseline, &fault);
    }
    h.stop().await;
}
