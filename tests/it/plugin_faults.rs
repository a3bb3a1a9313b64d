//! The plugin rows of the fault matrix (docs/reliability.md): a plugin answering 10 MiB, answering
//! a document that is not JSON, or flooding the log (the test plugin `unruly`), each contained to
//! its call and reported in the status endpoint and the metrics while another plugin keeps working;
//! and compile bombs — a component over the size cap, one slower to compile than the compile
//! timeout, one needing more memory than the compile memory limit — refused with the file and the
//! limit named, never compiled in the host's process, a running plugin serving on.

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use serde_json::json;
use wasmop_contract::{EmptyCache, Snapshot};
use wasmop_engine::PluginSettings;
use wasmop_runtime::{CompileLimits, LoadError, PluginLimits, Runtime, RuntimeConfig};

use crate::latency::{Probe, SAMPLES, assert_within_target};
use crate::support::{Host, TestServer, apply_yaml, eventually, host_args, status_get};

/// A ConfigMap telling `unruly` which fault to commit.
fn fault(name: &str, fault: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: default}}\ndata: {{fault: {fault}}}\n"
    )
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: default}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: c, image: nginx}}]}}\n"
    )
}

/// The value of the series `series` (name and labels, as exposed) in a metrics text.
fn metric(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

/// A host running `unruly` and the healthy `pdb-guard`.
async fn host() -> Host {
    let h = Host::start().await;
    h.plugin("unruly", PluginSettings::default()).await;
    h.plugin("pdb-guard", PluginSettings::default()).await;
    h
}

/// The time pdb-guard takes to answer a new Deployment with its PDB: the other plugin's latency.
async fn pdb_latency(h: &Host, name: &str) -> Duration {
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(h.t.client.clone(), "default");
    let started = Instant::now();
    apply_yaml(&h.t.client, &deployment(name)).await;
    eventually(60, "pdb-guard's PDB", || async {
        pdbs.get_opt(name).await.unwrap()
    })
    .await;
    started.elapsed()
}

/// Waits for unruly's contained calls of `cause` in the metrics; the metrics text.
async fn contained(h: &Host, cause: &str) -> String {
    let series = format!("wasmop_plugin_calls_contained_total{{plugin=\"unruly\",cause=\"{cause}\"}}");
    eventually(60, &series, || async {
        let text = status_get(h.host.status_addr(), "/metrics").await;
        (metric(&text, &series).unwrap_or(0.0) >= 1.0).then_some(text)
    })
    .await
}

/// unruly's entry of `GET /plugins` (what `wasmop plugins` shows).
async fn unruly_status(h: &Host) -> serde_json::Value {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&status_get(h.host.status_addr(), "/plugins").await).unwrap();
    list.into_iter()
        .find(|p| p["name"] == "unruly")
        .expect("unruly in the status")
}

#[tokio::test]
async fn a_10_mib_answer_is_refused_at_the_answer_cap_and_reported() {
    let h = host().await;
    let baseline = pdb_latency(&h, "before").await;
    let started = Instant::now();
    apply_yaml(&h.t.client, &fault("big", "big-answer")).await;
    let metrics = contained(&h, "answer_size").await;
    let refused_after = started.elapsed();
    let during = pdb_latency(&h, "during").await;

    // Reported: the engine counts the failed reconcile, the status names the plugin and the cap.
    assert!(
        metric(
            &metrics,
            "wasmop_reconciles_total{plugin=\"unruly\",outcome=\"error\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{metrics}"
    );
    let status = unruly_status(&h).await;
    let failure = status["last_failure"].as_str().unwrap_or_default();
    assert!(
        failure.contains("the answer of plugin unruly is 10485")
            && failure.contains(&format!(
                "over its answer size cap of {} bytes",
                PluginLimits::DEFAULT_ANSWER_BYTES
            )),
        "{status}"
    );
    assert_eq!(status["state"], "running", "{status}");
    // Nothing of the answer was written.
    let cms: Api<ConfigMap> = Api::namespaced(h.t.client.clone(), "default");
    assert!(cms.get_opt("big-big").await.unwrap().is_none());
    eprintln!(
        "answer cap: refused and reported {refused_after:?} after the object was created; \
         pdb-guard answered in {baseline:?} before, {during:?} during"
    );
    h.stop().await;
}

#[tokio::test]
async fn an_invalid_json_answer_names_the_field_and_writes_nothing() {
    let h = host().await;
    apply_yaml(&h.t.client, &fault("bad", "bad-json")).await;
    let metrics = contained(&h, "invalid_answer").await;
    assert!(
        metric(
            &metrics,
            "wasmop_reconciles_total{plugin=\"unruly\",outcome=\"error\"}"
        )
        .unwrap_or(0.0)
            >= 1.0,
        "{metrics}"
    );
    let status = unruly_status(&h).await;
    let failure = status["last_failure"].as_str().unwrap_or_default();
    assert!(
        failure.starts_with("plugin returned an invalid answer: apply[1] is not valid JSON"),
        "{status}"
    );
    // The valid document before the bad one was not written either: the answer is refused whole.
    let cms: Api<ConfigMap> = Api::namespaced(h.t.client.clone(), "default");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(cms.get_opt("bad-partial").await.unwrap().is_none());
    // And the other plugin works on.
    pdb_latency(&h, "web").await;
    h.stop().await;
}

#[tokio::test]
async fn a_log_flood_is_rate_limited_counted_and_the_call_still_answers() {
    let h = host().await;
    let baseline = pdb_latency(&h, "before").await;
    let started = Instant::now();
    apply_yaml(&h.t.client, &fault("flood", "log-flood")).await;
    let cms: Api<ConfigMap> = Api::namespaced(h.t.client.clone(), "default");
    // The flooding call still answers: its child is written.
    eventually(60, "the flooding reconcile's child", || async {
        cms.get_opt("flood-flooded").await.unwrap()
    })
    .await;
    let answered_after = started.elapsed();
    // The host stays responsive meanwhile and after: its status endpoint and the other plugin.
    let live = Instant::now();
    assert_eq!(status_get(h.host.status_addr(), "/livez").await, "ok\n");
    let livez = live.elapsed();
    let during = pdb_latency(&h, "during").await;
    // 20 000 lines against a burst of 1 000 (and 100 lines/s): most are dropped, and counted.
    let series = "wasmop_plugin_log_lines_dropped_total{plugin=\"unruly\"}";
    let metrics = status_get(h.host.status_addr(), "/metrics").await;
    let dropped = metric(&metrics, series).unwrap_or(0.0);
    assert!(dropped >= 18_000.0, "{dropped} dropped: {metrics}");
    let status = unruly_status(&h).await;
    assert!(
        status["last_failure"].is_null(),
        "a flood is not a failure: {status}"
    );
    eprintln!(
        "log flood: answered {answered_after:?} after the object was created, {dropped} lines dropped; \
         /livez in {livez:?}; pdb-guard answered in {baseline:?} before, {during:?} after"
    );
    h.stop().await;
}

/// pdb-guard's latency (a new Deployment to its PDB) over 20 Deployments before and 20 while unruly
/// answers 10 MiB and invalid JSON (both retried with backoff all along) and floods the log: its
/// median and 90th percentile stay within 1.5 times the baseline's (plus 100 ms for the noise of a
/// busy 2-core machine running other tests); the worst is printed.
#[tokio::test(flavor = "multi_thread")]
async fn another_plugin_keeps_its_latency_while_one_misbehaves() {
    let h = host().await;
    let mut probe = Probe::start(&h.t, "default");
    let before = probe.measure(SAMPLES).await;
    for (name, what) in [("big", "big-answer"), ("bad", "bad-json"), ("flood", "log-flood")] {
        apply_yaml(&h.t.client, &fault(name, what)).await;
    }
    contained(&h, "answer_size").await;
    contained(&h, "invalid_answer").await;
    let during = probe.measure(SAMPLES).await;
    // Still misbehaving at the end: the bad answers kept being retried (and refused).
    let series = "wasmop_plugin_calls_contained_total{plugin=\"unruly\",cause=\"answer_size\"}";
    let refused = metric(&status_get(h.host.status_addr(), "/metrics").await, series).unwrap_or(0.0);
    eprintln!("{refused} answers over the cap refused while pdb-guard was measured");
    assert_within_target("misbehaving neighbour: pdb-guard", &before, &during);
    assert!(refused >= 2.0, "the 10 MiB answer was retried: {refused}");
    h.stop().await;
}

/// The plugins `engine_containment` runs (trap, endless loop, memory bomb): each failure shows as
/// the plugin's last failed call in the status, counted by cause in the metrics.
#[tokio::test]
async fn traps_loops_and_memory_bombs_are_counted_by_cause_and_shown_in_the_status() {
    let h = Host::start().await;
    for bad in ["trap", "spin", "hog"] {
        h.plugin(bad, PluginSettings::default()).await;
    }
    apply_yaml(
        &h.t.client,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: poke, namespace: default}\ndata: {a: b}\n",
    )
    .await;
    for (plugin, cause, says) in [
        ("trap", "trap", "plugin trapped: "),
        ("spin", "deadline", "plugin exceeded its deadline of 2s"),
        (
            "hog",
            "memory",
            "plugin exceeded its memory cap of 67108864 bytes",
        ),
    ] {
        let series = format!("wasmop_plugin_calls_contained_total{{plugin=\"{plugin}\",cause=\"{cause}\"}}");
        eventually(60, &series, || async {
            let text = status_get(h.host.status_addr(), "/metrics").await;
            (metric(&text, &series).unwrap_or(0.0) >= 1.0).then_some(())
        })
        .await;
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&status_get(h.host.status_addr(), "/plugins").await).unwrap();
        let status = list.iter().find(|p| p["name"] == plugin).expect("in the status");
        let failure = status["last_failure"].as_str().unwrap_or_default();
        assert!(failure.starts_with(says), "{plugin}: {status}");
        assert_eq!(status["state"], "running", "{status}");
    }
    h.stop().await;
}

/// A component of `functions` functions of `pairs` multiply-and-xor pairs each: cheap to write,
/// costly to compile (every function is compiled, called or not). Encoded here byte by byte: as
/// text it would take the test as long to parse as the compiler to compile.
fn compile_bomb(functions: u32, pairs: u32) -> Vec<u8> {
    fn leb(mut n: u32, out: &mut Vec<u8>) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
    fn section(id: u8, body: &[u8], out: &mut Vec<u8>) {
        out.push(id);
        leb(body.len() as u32, out);
        out.extend_from_slice(body);
    }
    // One body: no locals, `local.get 0`, then `i64.const 5, i64.mul, i64.const 3, i64.xor` pairs.
    let mut body = vec![0x00, 0x20, 0x00];
    for _ in 0..pairs {
        body.extend_from_slice(&[0x42, 0x05, 0x7e, 0x42, 0x03, 0x85]);
    }
    body.push(0x0b);
    let mut module = b"\0asm\x01\0\0\0".to_vec();
    // One type: (i64) -> i64.
    section(1, &[0x01, 0x60, 0x01, 0x7e, 0x01, 0x7e], &mut module);
    let mut funcs = Vec::new();
    leb(functions, &mut funcs);
    funcs.extend(std::iter::repeat_n(0u8, functions as usize));
    section(3, &funcs, &mut module);
    let mut code = Vec::new();
    leb(functions, &mut code);
    for _ in 0..functions {
        leb(body.len() as u32, &mut code);
        code.extend_from_slice(&body);
    }
    section(10, &code, &mut module);
    // The component: the module, and one instance of it.
    let mut component = b"\0asm\x0d\0\x01\0".to_vec();
    section(1, &module, &mut component);
    section(2, &[0x01, 0x00, 0x00, 0x00], &mut component);
    component
}

/// A runtime compiling in a `wasmop compile` child with `limits`, caching into `cache` (none: the
/// child compiles to a scratch directory).
fn runtime(cache: Option<&std::path::Path>, limits: CompileLimits) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: cache.map(Into::into),
        compiler: Some(env!("CARGO_BIN_EXE_wasmop").into()),
        compile_limits: limits,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// The compiled artifacts in a cache directory (not its key).
fn artifacts(cache: &std::path::Path) -> usize {
    std::fs::read_dir(cache)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "key")
        .count()
}

/// A plugin that was loaded before the bomb: it still reconciles.
async fn still_serves(plugin: &wasmop_runtime::Plugin) {
    let snapshot: Snapshot = serde_json::from_value(json!({
        "object": {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "x", "namespace": "default"}, "data": {"a": "1"}},
        "reason": "change",
    }))
    .unwrap();
    plugin
        .reconcile(&snapshot, std::sync::Arc::new(EmptyCache))
        .await
        .expect("the running plugin still answers");
}

#[tokio::test]
async fn a_component_over_the_size_cap_is_refused_before_compiling() {
    let cache = tempfile::tempdir().unwrap();
    let rt = runtime(
        Some(cache.path()),
        CompileLimits {
            max_component_bytes: 512 << 10,
            ..CompileLimits::default()
        },
    );
    let running = rt
        .load(
            wasmop_example_plugins::plugin_path("hello"),
            PluginLimits::default(),
        )
        .expect("hello is under 512 KiB");
    let bomb = compile_bomb(1000, 100);
    assert!(bomb.len() > 512 << 10, "{} bytes", bomb.len());
    let started = Instant::now();
    let err = rt
        .load_bytes("big.wasm", &bomb, PluginLimits::default())
        .unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, LoadError::TooLarge { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!(
            "big.wasm: the component is {} bytes, over the cap of 524288 bytes on component files; it was not compiled",
            bomb.len()
        )
    );
    assert_eq!(rt.child_compiles(), 1, "only hello was compiled");
    still_serves(&running).await;
    eprintln!("size cap: a {} byte component refused in {took:?}", bomb.len());
}

/// Loads `bomb` as `file` off the executor (compiling blocks) and checks it is refused at a compile
/// limit; the error and how long the refusal took.
async fn refused_at_a_limit(rt: &Runtime, file: &'static str, bomb: Vec<u8>) -> (LoadError, Duration) {
    let started = Instant::now();
    let rt = rt.clone();
    let err =
        tokio::task::spawn_blocking(move || rt.load_bytes(file, &bomb, PluginLimits::default()).unwrap_err())
            .await
            .unwrap();
    let took = started.elapsed();
    assert!(matches!(err, LoadError::CompileLimit { .. }), "{err}");
    (err, took)
}

/// Loads a component slow to compile (9.6 MB: 6.3 s and 270 MB to compile without limits, debug
/// `wasmop compile`, 2 cores) and checks it is refused at the compile timeout, not compiled in
/// this process instead (which would take far longer); how long the refusal took.
async fn slow_bomb_refused_at(rt: &Runtime, timeout: Duration) -> Duration {
    let (err, took) = refused_at_a_limit(rt, "slow.wasm", compile_bomb(8000, 200)).await;
    assert_eq!(
        err.to_string(),
        format!(
            "slow.wasm: compiling was stopped and the component refused: it took longer than the \
             compile timeout of {timeout:?}; the compiler process was killed"
        )
    );
    assert!(
        took >= timeout && took < timeout + Duration::from_secs(3),
        "{took:?}"
    );
    took
}

#[tokio::test]
async fn a_compile_bomb_is_killed_at_the_compile_timeout_and_not_compiled_in_process() {
    let cache = tempfile::tempdir().unwrap();
    let timeout = Duration::from_secs(1);
    let rt = runtime(
        Some(cache.path()),
        CompileLimits {
            timeout,
            ..CompileLimits::default()
        },
    );
    let running = rt
        .load(
            wasmop_example_plugins::plugin_path("hello"),
            PluginLimits::default(),
        )
        .unwrap();
    let artifacts_before = artifacts(cache.path());
    let took = slow_bomb_refused_at(&rt, timeout).await;
    // Nothing of it cached.
    assert_eq!(rt.child_compiles(), 1, "only hello");
    assert_eq!(artifacts(cache.path()), artifacts_before);
    still_serves(&running).await;
    eprintln!("compile timeout: refused after {took:?}");
}

#[tokio::test]
async fn without_a_compile_cache_compiles_still_run_in_a_child_within_the_limits() {
    // `--no-cache` (or a refused directory): the child compiles to a scratch directory.
    let timeout = Duration::from_secs(1);
    let rt = runtime(
        None,
        CompileLimits {
            timeout,
            ..CompileLimits::default()
        },
    );
    let running = rt
        .load(
            wasmop_example_plugins::plugin_path("hello"),
            PluginLimits::default(),
        )
        .unwrap();
    assert_eq!(rt.child_compiles(), 1, "hello compiled by a child");
    still_serves(&running).await;
    let took = slow_bomb_refused_at(&rt, timeout).await;
    still_serves(&running).await;
    eprintln!("no cache: compile bomb refused after {took:?}");
}

#[tokio::test]
async fn a_compile_bomb_is_stopped_at_the_compile_memory_limit() {
    let cache = tempfile::tempdir().unwrap();
    let memory = 256 << 20;
    let rt = runtime(
        Some(cache.path()),
        CompileLimits {
            memory_bytes: memory,
            timeout: Duration::from_secs(120),
            ..CompileLimits::default()
        },
    );
    let running = rt
        .load(
            wasmop_example_plugins::plugin_path("hello"),
            PluginLimits::default(),
        )
        .expect("hello compiles within 256 MiB");
    // One function of 2 million instructions (6 MB): 8.5 s and 1.4 GB to compile without limits.
    let (err, took) = refused_at_a_limit(&rt, "fat.wasm", compile_bomb(1, 1_000_000)).await;
    let message = err.to_string();
    assert!(
        message
            .starts_with("fat.wasm: compiling was stopped and the component refused: the compiler process")
            && message.contains(&format!("memory limit of {memory} bytes")),
        "{message}"
    );
    assert_eq!(rt.child_compiles(), 1, "only hello");
    still_serves(&running).await;
    eprintln!("compile memory limit: refused after {took:?}: {message}");
}

/// Hot reload: a running plugin's file replaced by a compile bomb. A host as `wasmop run` starts it
/// (compile cache, `wasmop compile` children) with `--compile-timeout 5s`: the bomb is refused with
/// the file and the limit in the plugin's status, and the running version keeps reconciling.
#[tokio::test]
async fn a_compile_bomb_replacing_a_running_plugin_is_refused_and_the_old_version_keeps_serving() {
    let t = TestServer::start().await;
    let plugins = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let mut args = host_args();
    args.cache.cache_dir = Some(cache.path().into());
    args.cache.compiler = Some(env!("CARGO_BIN_EXE_wasmop").into());
    // pdb-guard compiles in 0.6 s (debug `wasmop compile`), more while other tests run.
    args.cache.compile_timeout = Duration::from_secs(5);
    let host = wasmop::Host::start(t.client.clone(), &args, plugins.path())
        .await
        .expect("host starts");
    let file = plugins.path().join("pdb-guard.wasm");
    std::fs::copy(wasmop_example_plugins::plugin_path("pdb-guard"), &file).unwrap();
    host.sync().await;
    let loaded = host.manager().status().await;
    assert!(
        loaded.iter().all(|s| s.state != wasmop::State::Failed),
        "{loaded:?}"
    );
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(t.client.clone(), "default");
    apply_yaml(&t.client, &deployment("first")).await;
    eventually(60, "the first PDB", || async {
        pdbs.get_opt("first").await.unwrap()
    })
    .await;

    // 38 MB: four times the bomb that takes 6.3 s to compile without limits.
    std::fs::write(&file, compile_bomb(8000, 800)).unwrap();
    let started = Instant::now();
    host.sync().await;
    let took = started.elapsed();
    let status = host.manager().status().await;
    let s = status
        .iter()
        .find(|s| s.file.ends_with("pdb-guard.wasm"))
        .unwrap();
    assert_eq!(s.state, wasmop::State::Running, "{s:?}");
    assert_eq!(s.name.as_deref(), Some("pdb-guard"), "{s:?}");
    let error = s.last_error.as_deref().unwrap_or_default();
    assert!(
        error.contains("pdb-guard.wasm: compiling was stopped and the component refused: it took longer than the compile timeout of 5s"),
        "{s:?}"
    );
    // The running version still reconciles.
    apply_yaml(&t.client, &deployment("second")).await;
    eventually(60, "a PDB from the old version", || async {
        pdbs.get_opt("second").await.unwrap()
    })
    .await;
    eprintln!("hot reload with a compile bomb: refused in {took:?}, the old version kept");
    host.stop().await;
    t.server.shutdown().await;
}
