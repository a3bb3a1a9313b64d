//! Running in production: replicas of `wasmop run --leader-elect` (the binary) sharing a Lease on
//! the embedded API server — one writes, a killed leader is replaced, a terminated one releases the
//! lease for an immediate successor, never two leaders at once — and the health and metrics
//! endpoints of a host (`/readyz`, `/livez`, `/healthz`, `/metrics`).

use std::net::SocketAddr;
use std::path::Path;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;

use crate::support::{
    TestServer, apply_yaml, eventually, host_args, metric_sum, settle, spawn_wasmop, status_request, wasmop,
};

/// One replica: `wasmop run --leader-elect` as its own process.
struct Replica {
    id: &'static str,
    child: Child,
    status: SocketAddr,
}

impl Replica {
    fn start(t: &TestServer, plugins: &Path, id: &'static str, lease: &[&str]) -> Replica {
        let mut command = wasmop();
        command
            .args(["run", "--status-addr", "127.0.0.1:0", "--backoff-base", "50ms"])
            .args([
                "--leader-elect",
                "--lease-namespace",
                "default",
                "--leader-identity",
                id,
            ])
            .args(lease)
            .arg("--plugins")
            .arg(plugins)
            .env("KUBECONFIG", t.server.kubeconfig_path())
            .env("WASMOP_LOG", "info");
        let (child, status) = spawn_wasmop(&mut command, "plugin status: wasmop plugins --status-addr ");
        Replica {
            id,
            child,
            status: status.parse().expect("a status address"),
        }
    }

    async fn metrics(&self) -> Option<String> {
        status_request(self.status, "/metrics")
            .await
            .map(|(_, body)| body)
    }

    async fn leading(&self) -> Option<bool> {
        Some(metric_sum(&self.metrics().await?, "wasmop_leader", "") == 1.0)
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls two replicas' metrics until dropped and counts the rounds in which both led: A, then B,
/// then A again — both leading only if A led on both sides of B's answer.
struct Monitor {
    both: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl Monitor {
    fn start(a: SocketAddr, b: SocketAddr) -> Monitor {
        let both = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (both2, done2) = (both.clone(), done.clone());
        let task = tokio::spawn(async move {
            let leading = |addr| async move {
                status_request(addr, "/metrics")
                    .await
                    .is_some_and(|(_, m)| metric_sum(&m, "wasmop_leader", "") == 1.0)
            };
            while !done2.load(Ordering::SeqCst) {
                if leading(a).await && leading(b).await && leading(a).await {
                    both2.fetch_add(1, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Monitor { both, done, task }
    }

    async fn finish(self) -> usize {
        self.done.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        self.both.load(Ordering::SeqCst)
    }
}

async fn labelled(t: &TestServer, name: &str) {
    apply_yaml(&t.client, &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: default, labels: {{stamp: 'yes'}}}}\n")).await;
}

async fn stamped(cms: &Api<ConfigMap>, name: &str) -> Option<()> {
    let c = cms.get_opt(name).await.ok()??;
    (c.metadata.annotations?.get("stamp.wasmop.io/version")?.as_str() == "v1").then_some(())
}

/// Two replicas on a stamp plugin, both running; returns them with the leader first.
async fn two_replicas(t: &TestServer, plugins: &Path, lease: &[&str]) -> (Replica, Replica) {
    std::fs::copy(
        wasmop_example_plugins::plugin_path("stamp-v1"),
        plugins.join("stamp.wasm"),
    )
    .unwrap();
    let a = Replica::start(t, plugins, "replica-a", lease);
    let b = Replica::start(t, plugins, "replica-b", lease);
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    for n in ["p0", "p1", "p2"] {
        labelled(t, n).await;
    }
    for n in ["p0", "p1", "p2"] {
        eventually(60, "stamped by the leader", || stamped(&cms, n)).await;
    }
    // Both sync their caches and are ready, the standby too.
    for r in [&a, &b] {
        eventually(60, "every replica ready", || async {
            (status_request(r.status, "/readyz").await?.0 == 200).then_some(())
        })
        .await;
    }
    let a_leads = eventually(30, "exactly one leader", || async {
        let (la, lb) = (a.leading().await?, b.leading().await?);
        (la != lb).then_some(la)
    })
    .await;
    if a_leads { (a, b) } else { (b, a) }
}

async fn holder(t: &TestServer) -> (String, i32) {
    let leases: Api<Lease> = Api::namespaced(t.client.clone(), "default");
    let spec = leases
        .get("wasmop")
        .await
        .expect("the lease")
        .spec
        .unwrap_or_default();
    (
        spec.holder_identity.unwrap_or_default(),
        spec.lease_transitions.unwrap_or_default(),
    )
}

#[tokio::test]
async fn only_the_leader_writes_and_a_killed_one_is_replaced() {
    let t = TestServer::start().await;
    let plugins = tempfile::tempdir().unwrap();
    let lease = [
        "--lease-duration",
        "6s",
        "--renew-deadline",
        "4s",
        "--leader-retry-period",
        "1s",
    ];
    let (leader, standby) = two_replicas(&t, plugins.path(), &lease).await;
    let monitor = Monitor::start(leader.status, standby.status);
    assert_eq!(holder(&t).await.0, leader.id);
    settle(&t.server, Duration::from_millis(500), Duration::from_secs(30)).await;
    let (lm, sm) = (leader.metrics().await.unwrap(), standby.metrics().await.unwrap());
    assert!(
        metric_sum(&lm, "wasmop_api_writes_total", "plugin=\"stamp\"") >= 3.0,
        "{lm}"
    );
    assert!(
        metric_sum(&lm, "wasmop_reconciles_total", "outcome=\"success\"") >= 3.0,
        "{lm}"
    );
    assert_eq!(
        metric_sum(&sm, "wasmop_api_writes_total", ""),
        0.0,
        "the standby writes nothing: {sm}"
    );
    assert_eq!(metric_sum(&sm, "wasmop_reconciles_total", ""), 0.0, "{sm}");
    assert!(
        metric_sum(&sm, "wasmop_cached_objects", "") >= 3.0,
        "the standby's cache is warm: {sm}"
    );

    // The leader dies without a word: the standby takes over once the lease expires.
    let standby_id = standby.id;
    leader.stop();
    let killed = tokio::time::Instant::now();
    labelled(&t, "after-kill").await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    eventually(20, "the new object reconciled by the successor", || {
        stamped(&cms, "after-kill")
    })
    .await;
    assert!(killed.elapsed() < Duration::from_secs(20));
    assert_eq!(standby.leading().await, Some(true));
    let (holder_id, transitions) = holder(&t).await;
    assert_eq!((holder_id.as_str(), transitions), (standby_id, 1));
    let m = standby.metrics().await.unwrap();
    assert!(
        metric_sum(&m, "wasmop_api_writes_total", "plugin=\"stamp\"") >= 1.0,
        "{m}"
    );
    assert_eq!(monitor.finish().await, 0, "never two leaders at once");
    standby.stop();
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_terminated_leader_finishes_releases_the_lease_and_is_succeeded_at_once() {
    let t = TestServer::start().await;
    let plugins = tempfile::tempdir().unwrap();
    // The default lease (15 s) and renew deadline: only a released lease is taken within seconds.
    let (mut leader, standby) = two_replicas(&t, plugins.path(), &["--leader-retry-period", "1s"]).await;
    let monitor = Monitor::start(leader.status, standby.status);
    let term = std::process::Command::new("kill")
        .args(["-TERM", &leader.child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let signalled = std::time::Instant::now();
    let status = loop {
        if let Some(s) = leader.child.try_wait().unwrap() {
            break s;
        }
        assert!(signalled.elapsed() < Duration::from_secs(30), "exits within 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let exited = tokio::time::Instant::now();
    assert!(status.success(), "a graceful exit: {status:?}");
    let (holder_id, _) = holder(&t).await;
    assert_ne!(holder_id, leader.id, "the lease was released");
    eventually(3, "the standby leading", || async {
        standby.leading().await?.then_some(())
    })
    .await;
    assert!(exited.elapsed() < Duration::from_secs(3));
    labelled(&t, "after-term").await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    eventually(20, "reconciled by the successor", || stamped(&cms, "after-term")).await;
    let (holder_id, transitions) = holder(&t).await;
    assert_eq!((holder_id.as_str(), transitions), (standby.id, 1));
    assert_eq!(monitor.finish().await, 0, "never two leaders at once");
    standby.stop();
    t.server.shutdown().await;
}

#[tokio::test]
async fn readiness_follows_the_plugins_and_metrics_parse() {
    let t = TestServer::start().await;
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(
        wasmop_example_plugins::plugin_path("database-operator"),
        plugins.path().join("database-operator.wasm"),
    )
    .unwrap();
    let mut host = wasmop::Host::start(t.client.clone(), &host_args(), plugins.path())
        .await
        .expect("host starts");
    let addr = host.status_addr();
    let (code, body) = status_request(addr, "/readyz").await.unwrap();
    assert_eq!(code, 503, "the directory is not read yet: {body}");
    assert_eq!(status_request(addr, "/livez").await.unwrap().0, 200);
    assert_eq!(status_request(addr, "/healthz").await.unwrap().0, 200);
    host.watch().await;
    // Its Database kind is not served yet: starting, not ready.
    let body = eventually(30, "not ready, waiting for the Database kind", || async {
        let (code, body) = status_request(addr, "/readyz").await?;
        (code == 503 && body.contains("Database")).then_some(body)
    })
    .await;
    assert!(body.contains("database-operator"), "{body}");
    wasmop::apply_manifests(&t.client, &wasmop_example_plugins::crds_dir(), "test")
        .await
        .unwrap();
    eventually(30, "ready once its watches synced", || async {
        (status_request(addr, "/readyz").await?.0 == 200).then_some(())
    })
    .await;
    apply_yaml(&t.client, "apiVersion: example.com/v1\nkind: Database\nmetadata: {name: m, namespace: default}\nspec: {replicas: 1, image: 'postgres:16', storage: 1Gi}\n").await;
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(t.client.clone(), "default");
    eventually(30, "the StatefulSet", || async {
        sts.get_opt("m").await.unwrap()
    })
    .await;
    settle(&t.server, Duration::from_millis(500), Duration::from_secs(30)).await;

    let (code, metrics) = status_request(addr, "/metrics").await.unwrap();
    assert_eq!(code, 200);
    assert!(metrics.trim_end().ends_with("# EOF"), "{metrics}");
    // Every sample line is `name{labels} value`, the value a number.
    for line in metrics.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(series.starts_with("wasmop_"), "{line}");
        value.parse::<f64>().unwrap_or_else(|_| panic!("{line}"));
    }
    for histogram in [
        "wasmop_reconcile_duration_seconds",
        "wasmop_queue_duration_seconds",
        "wasmop_plugin_load_duration_seconds",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {histogram} histogram")),
            "{histogram}: {metrics}"
        );
        assert!(
            metric_sum(&metrics, &format!("{histogram}_count"), "") >= 1.0,
            "{histogram}: {metrics}"
        );
        assert!(
            metric_sum(&metrics, &format!("{histogram}_bucket"), "le=\"+Inf\"") >= 1.0,
            "{histogram}: {metrics}"
        );
        let buckets = metrics
            .lines()
            .filter(|l| l.starts_with(&format!("{histogram}_bucket{{")))
            .count();
        assert!(buckets > 5, "{histogram} has buckets: {metrics}");
    }
    let plugin = "plugin=\"database-operator\"";
    assert!(
        metric_sum(&metrics, "wasmop_reconciles_total", plugin) >= 1.0,
        "{metrics}"
    );
    assert!(
        metric_sum(
            &metrics,
            "wasmop_api_writes_total",
            &format!("{plugin},verb=\"apply\",code=\"200\"")
        ) >= 1.0,
        "{metrics}"
    );
    assert!(
        metric_sum(&metrics, "wasmop_queue_adds_total", plugin) >= 1.0,
        "{metrics}"
    );
    for series in [
        "# TYPE wasmop_write_limiter_wait_seconds counter",
        "# TYPE wasmop_queue_depth gauge",
        "# TYPE wasmop_watch_relists counter",
        "# TYPE wasmop_plugin_compile_cache_hits counter",
        "wasmop_cached_objects{kind=\"example.com/v1/Database\"} 1",
        "wasmop_leader 1",
        "wasmop_plugin_up{plugin=\"database-operator\"",
        "# TYPE wasmop_guest_memory_high_water_bytes gauge",
    ] {
        assert!(metrics.contains(series), "{series}: {metrics}");
    }
    // It reconciled: its peak linear memory is known, within the default cap.
    let high_water = metric_sum(&metrics, "wasmop_guest_memory_high_water_bytes", plugin);
    assert!(high_water > 0.0 && high_water <= (64 << 20) as f64, "{metrics}");
    assert!(
        metric_sum(&metrics, "wasmop_watch_relists_total", "") >= 1.0,
        "{metrics}"
    );
    host.stop().await;
    t.server.shutdown().await;
}

/// `wasmop run` on a plugin whose reconciles run until their deadline (5 s), one at a time.
fn busy_host(t: &TestServer, plugins: &Path) -> (Child, SocketAddr) {
    std::fs::copy(
        wasmop_example_plugins::plugin_path("spin"),
        plugins.join("spin.wasm"),
    )
    .unwrap();
    let mut command = wasmop();
    command
        .args([
            "run",
            "--status-addr",
            "127.0.0.1:0",
            "--deadline",
            "5s",
            "--concurrency",
            "1",
        ])
        .arg("--plugins")
        .arg(plugins)
        .env("KUBECONFIG", t.server.kubeconfig_path())
        .env("WASMOP_LOG", "info");
    let (child, status) = spawn_wasmop(&mut command, "plugin status: wasmop plugins --status-addr ");
    (child, status.parse().expect("a status address"))
}

async fn reconciling(addr: SocketAddr) {
    eventually(60, "a reconcile in flight", || async {
        let (_, m) = status_request(addr, "/metrics").await?;
        (metric_sum(&m, "wasmop_running_reconciles", "plugin=\"spin\"") >= 1.0).then_some(())
    })
    .await;
}

fn signal(child: &Child, name: &str) {
    let sent = std::process::Command::new("kill")
        .args([name, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

async fn exit_within(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = std::time::Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        assert!(start.elapsed() < limit, "exits within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn shutdown_waits_for_reconciles_in_flight_and_a_second_signal_exits_at_once() {
    let t = TestServer::start().await;
    apply_yaml(
        &t.client,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: busy, namespace: default}\n",
    )
    .await;
    let plugins = tempfile::tempdir().unwrap();

    // SIGTERM: the reconcile in flight runs to its deadline, then the host exits 0.
    let (mut child, addr) = busy_host(&t, plugins.path());
    reconciling(addr).await;
    signal(&child, "-TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "still finishing the reconcile in flight"
    );
    let status = exit_within(&mut child, Duration::from_secs(10)).await;
    assert!(status.success(), "{status:?}");

    // A second signal does not wait.
    let (mut child, addr) = busy_host(&t, plugins.path());
    reconciling(addr).await;
    signal(&child, "-TERM");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(child.try_wait().unwrap().is_none());
    signal(&child, "-INT");
    let status = exit_within(&mut child, Duration::from_secs(2)).await;
    assert_eq!(status.code(), Some(130));
    t.server.shutdown().await;
}
