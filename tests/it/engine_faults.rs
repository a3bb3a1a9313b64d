//! The engine under faults (issue 11, the fault matrix's engine rows): an API server that stops and
//! comes back on the same data directory, watch history that expires under open watches (410
//! Gone), and a host SIGKILLed in the middle of a burst of reconciles. The host is the `wasmop run`
//! binary as its own process (a crash shows as its exit; its `/metrics` count relists), reconciling
//! with `configmap-replicator` (a finalizer on each source, two copies in other namespaces) and
//! `pdb-guard` (a PodDisruptionBudget per Deployment), whose latency is the other plugins' baseline.
//! Every test checks the end state object by object: nothing lost, no copy missing, extra or
//! stale, no finalizer left.

mod harness;

use std::path::Path;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::latency::{Probe, SAMPLES, assert_within_target, ms};
use crate::support::{TestServer, eventually};
use harness::*;

// ---------------------------------------------------------------------------------------------
// API server outages

/// One outage of `secs` seconds of the server at `port` on `dir`: changes just before it stops,
/// changes made while the host cannot see the server (by a second server on another port and the
/// same data directory, stopped again before the first returns), and changes right after its
/// return. Returns the new server and how long after its return everything was reconciled.
async fn outage(
    dir: &Path,
    port: u16,
    server: ApiChild,
    client: &kube::Client,
    expected: &mut Expected,
    round: &str,
    secs: u64,
) -> (ApiChild, Duration) {
    let mut c = Changes { client, expected };
    // In flight when it stops: the host has seen these changes, its writes may fail.
    for i in 0..3 {
        c.set(&format!("s{i}"), round).await;
    }
    server.kill();
    let stopped = Instant::now();

    // Meanwhile: another server on the same data directory takes changes the host cannot see.
    let other = ApiChild::start(dir, free_port());
    let other_client = client_from(&dir.join("kubeconfig")).await;
    {
        let mut c = Changes {
            client: &other_client,
            expected: &mut *c.expected,
        };
        for i in 3..6 {
            c.set(&format!("s{i}"), round).await;
        }
        let live: Vec<String> = c.expected.sources.keys().cloned().collect();
        c.delete(&live[live.len() - 1]).await;
        c.create(&format!("{round}-meanwhile"), round).await;
        c.deploy(&format!("{round}-meanwhile")).await;
    }
    other.kill();
    // The other server wrote its port into the kubeconfig; the host and `client` keep the
    // original port, which the restarted server takes again.
    tokio::time::sleep(Duration::from_secs(secs).saturating_sub(stopped.elapsed())).await;
    let server = ApiChild::start(dir, port);
    let returned = Instant::now();
    eprintln!(
        "{round}: the API server was away {:.1} s",
        (returned - stopped).as_secs_f64()
    );

    // Right after its return.
    let mut c = Changes { client, expected };
    c.set("s6", round).await;
    c.create(&format!("{round}-after"), round).await;
    converge(client, c.expected, 120).await;
    (server, returned.elapsed())
}

/// Starts a server child and a host on it with `n` sources reconciled; the server's port.
async fn outage_setup(
    dir: &Path,
    n: usize,
) -> (
    ApiChild,
    u16,
    kube::Client,
    HostChild,
    Expected,
    tempfile::TempDir,
) {
    let port = free_port();
    let server = ApiChild::start(dir, port);
    let client = client_from(&dir.join("kubeconfig")).await;
    namespaces(&client, &TARGETS).await;
    let plugins = plugins();
    let host = HostChild::start(&dir.join("kubeconfig"), plugins.path()).await;
    let mut expected = Expected::default();
    let mut c = Changes {
        client: &client,
        expected: &mut expected,
    };
    for i in 0..n {
        c.create(&format!("s{i}"), "0").await;
    }
    c.deploy("web").await;
    converge(&client, &expected, 60).await;
    (server, port, client, host, expected, plugins)
}

async fn outages(secs: &[u64]) {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, port, client, mut host, mut expected, _plugins) = outage_setup(dir.path(), 20).await;
    for (i, &s) in secs.iter().enumerate() {
        let round = format!("r{i}-{s}s");
        let (back, took) = outage(dir.path(), port, server, &client, &mut expected, &round, s).await;
        server = back;
        eprintln!("{round}: reconciled {} after the API server's return", ms(took));
        assert!(host.alive(), "the host crashed during {round}");
        assert!(
            took <= Duration::from_secs(30),
            "{round}: reconciled only {} after the API server's return",
            ms(took)
        );
    }
    let m = host.metrics().await;
    let restarts = by_kind(&m, "wasmop_watch_restarts_total");
    assert!(
        restarts.values().all(|n| *n >= secs.len() as f64),
        "every watch saw the outages: {restarts:?}"
    );
    eprintln!(
        "watch restarts {restarts:?}, relists {:?}",
        by_kind(&m, "wasmop_watch_relists_total")
    );
    host.kill();
    server.kill();
}

/// The API server stopped (SIGKILL) for 10 s and restarted on the same data directory and port;
/// with `WASMOP_LONG_FAULTS=1` then for 60 s as well (the row's full figures, in
/// docs/reliability.md).
#[tokio::test]
async fn api_server_away_10s_then_60s_changes_meanwhile_are_reconciled_within_30s_of_its_return() {
    if std::env::var("WASMOP_LONG_FAULTS").is_ok_and(|v| v == "1") {
        outages(&[10, 60]).await;
    } else {
        outages(&[10]).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Watch history expired

/// The store forgets its watch history and ends every open watch: the host re-watches from
/// revisions that are gone, gets 410 Gone, and must relist each kind once and miss nothing that
/// changed meanwhile (updates, creations, deletions, copies deleted by hand).
#[tokio::test(flavor = "multi_thread")]
async fn expired_watch_history_relists_each_kind_once_and_misses_no_change() {
    // No bookmarks during the test: every watch's last revision stays older than the compaction.
    let t = TestServer::start_with(|c| c.bookmark_interval = Duration::from_secs(3600)).await;
    let client = t.client.clone();
    namespaces(&client, &[TARGETS[0], TARGETS[1], PROBE_NS]).await;
    let plugins = plugins();
    let mut host = HostChild::start(t.server.kubeconfig_path(), plugins.path()).await;
    let mut expected = Expected::default();
    let mut c = Changes {
        client: &client,
        expected: &mut expected,
    };
    for i in 0..150 {
        c.create(&format!("s{i}"), "0").await;
    }
    c.deploy("web").await;
    converge(&client, &expected, 60).await;
    let mut probe = Probe::start(&t, PROBE_NS);
    // The baseline: pdb-guard's latency while the same burst of changes as under the fault (on
    // other sources) is reconciled, so that the comparison is of the fault alone.
    let ((), baseline) = tokio::join!(burst(&client, &mut expected, 40, "-base"), probe.measure(SAMPLES));
    converge(&client, &expected, 60).await;
    let before = by_kind(&host.metrics().await, "wasmop_watch_relists_total");
    assert!(
        before.len() >= 4,
        "ConfigMaps, Namespaces, Deployments, budgets: {before:?}"
    );

    // A write no plugin watches, so that every watch's last revision is older than the compaction.
    let tick: Secret = serde_json::from_value(json!({"metadata": {"name": "tick"}})).unwrap();
    Api::<Secret>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &tick)
        .await
        .unwrap();
    let core = t.server.core();
    core.store.compact();
    core.faults.close_watches();
    let fault = Instant::now();
    // Meanwhile 20 updates, 10 deletions, 10 new sources, a Deployment, 10 copies deleted by hand.
    let ((), during) = tokio::join!(burst(&client, &mut expected, 0, "-410"), probe.measure(SAMPLES));
    converge(&client, &expected, 60).await;
    eprintln!("410: converged {} after the history expired", ms(fault.elapsed()));
    eventually(30, "every kind to relist", || {
        let host = &host;
        let before = &before;
        async move {
            let now = by_kind(&host.metrics().await, "wasmop_watch_relists_total");
            before
                .iter()
                .all(|(k, n)| now.get(k).copied().unwrap_or(0.0) > *n)
                .then_some(())
        }
    })
    .await;
    // Nothing more comes.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = by_kind(&host.metrics().await, "wasmop_watch_relists_total");
    for (kind, n) in &before {
        assert_eq!(
            after[kind] - n,
            1.0,
            "{kind}: one relist, {before:?} -> {after:?}"
        );
    }
    one_budget_per_probe(&client).await;
    assert!(host.alive(), "the host crashed");
    assert_within_target("410: pdb-guard", &baseline, &during);
    host.kill();
    t.server.shutdown().await;
}

/// A burst of changes to the sources from `first` on: 20 updates, 10 deletions, 10 new sources
/// (named with `suffix`), a Deployment, and 10 copies deleted by hand.
async fn burst(client: &kube::Client, expected: &mut Expected, first: usize, suffix: &str) {
    let mut c = Changes { client, expected };
    for i in first..first + 20 {
        c.set(&format!("s{i}"), "1").await;
    }
    for i in first + 20..first + 30 {
        c.delete(&format!("s{i}")).await;
    }
    for i in 0..10 {
        c.create(&format!("new{i}{suffix}"), "1").await;
    }
    c.deploy(&format!("web{suffix}")).await;
    let copies: Api<ConfigMap> = Api::namespaced(client.clone(), TARGETS[0]);
    for i in first + 30..first + 40 {
        copies
            .delete(&format!("s{i}"), &DeleteParams::default())
            .await
            .expect("a copy deleted by hand");
    }
}

// ---------------------------------------------------------------------------------------------
// Host killed mid-burst

/// The host SIGKILLed while it works through 500 new sources, restarted; then again while it
/// works through their deletion: it converges, with exactly the copies wanted and, at the end, no
/// finalizer left and no copy.
#[tokio::test(flavor = "multi_thread")]
async fn host_sigkilled_in_a_burst_of_500_reconciles_converges_without_duplicates_or_leftover_finalizers() {
    const N: usize = 500;
    let t = TestServer::start().await;
    let client = t.client.clone();
    namespaces(&client, &[TARGETS[0], TARGETS[1], PROBE_NS]).await;
    let plugins = plugins();
    let kubeconfig = t.server.kubeconfig_path().to_path_buf();
    let mut host = HostChild::start(&kubeconfig, plugins.path()).await;
    let mut probe = Probe::start(&t, PROBE_NS);
    let mut expected = Expected::default();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    // The baseline: pdb-guard's latency while the host works through the same burst without a
    // crash (500 other sources, then deleted), so that the comparison is of the crash alone.
    let base: Vec<String> = (0..N).map(|i| format!("a{i:03}")).collect();
    let ((), baseline) = tokio::join!(create_sources(&cms, &base), probe.measure(SAMPLES));
    expected.sources = base.iter().map(|n| (n.clone(), "0".to_string())).collect();
    converge(&client, &expected, 120).await;
    delete_sources(&cms, &base).await;
    expected.deleted = std::mem::take(&mut expected.sources).into_keys().collect();
    converge(&client, &expected, 120).await;
    probe.clear().await;

    // The burst: 500 sources, 1000 copies to make.
    let names: Vec<String> = (0..N).map(|i| format!("b{i:03}")).collect();
    create_sources(&cms, &names).await;
    expected.sources = names.iter().map(|n| (n.clone(), "0".to_string())).collect();
    let at_kill = eventually(60, "the burst under way", || async {
        let n = copies(&client).await;
        (n >= 2 * N / 5).then_some(n)
    })
    .await;
    assert!(host.alive(), "the host crashed during the burst");
    host.kill();
    assert!(
        at_kill < 2 * N,
        "the burst was over before the kill ({at_kill} copies)"
    );
    let restarted = Instant::now();
    let mut host = HostChild::start(&kubeconfig, plugins.path()).await;
    // pdb-guard's latency while the restarted host works through the backlog (the test does not
    // poll the convergence meanwhile: listing 1 500 ConfigMaps would load the server it measures).
    let during = probe.measure(SAMPLES).await;
    let after_probe = copies(&client).await;
    converge(&client, &expected, 120).await;
    eprintln!(
        "SIGKILL at {at_kill} of {} copies: converged {} after the restart ({after_probe} copies when the latency probe ended)",
        2 * N,
        ms(restarted.elapsed())
    );

    // Their deletion, and a kill in the middle of it.
    delete_sources(&cms, &names).await;
    expected
        .deleted
        .extend(std::mem::take(&mut expected.sources).into_keys());
    let left_at_kill = eventually(60, "the deletions under way", || async {
        let n = copies(&client).await;
        (n <= 2 * N * 3 / 5).then_some(n)
    })
    .await;
    assert!(host.alive(), "the host crashed during the deletions");
    host.kill();
    assert!(left_at_kill > 0, "the deletions were over before the kill");
    let mut host = HostChild::start(&kubeconfig, plugins.path()).await;
    converge(&client, &expected, 120).await;
    no_wasmop_finalizer(&client).await;
    one_budget_per_probe(&client).await;
    assert!(host.alive(), "the host crashed after the restart");
    assert_within_target("SIGKILL: pdb-guard", &baseline, &during);
    host.kill();
    t.server.shutdown().await;
}

/// Creates sources with value "0", 16 at a time.
async fn create_sources(cms: &Api<ConfigMap>, names: &[String]) {
    futures::stream::iter(names)
        .for_each_concurrent(16, |name| async move {
            cms.create(&PostParams::default(), &source(name, "0"))
                .await
                .expect("a source");
        })
        .await;
}

/// Deletes sources, 16 at a time.
async fn delete_sources(cms: &Api<ConfigMap>, names: &[String]) {
    futures::stream::iter(names)
        .for_each_concurrent(16, |name| async move {
            cms.delete(name, &DeleteParams::default())
                .await
                .expect("a deletion");
        })
        .await;
}
