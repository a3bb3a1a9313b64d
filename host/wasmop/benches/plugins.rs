//! Plugin start-up figures, printed side by side from one run (`cargo bench -p wasmop --bench
//! plugins`):
//! - per example plugin: component size, cold load (compile) time and the CPU it used (above 1x
//!   wall time when compilation runs on several cores), warm load from the compile cache (median of
//!   5: read, MAC check, deserialize, link, metadata) and just the artifact read, and compile
//!   throughput in MB/s;
//! - the cost of one reconcile call (fresh instance, call, drop) with wasmtime's on-demand
//!   allocator and with the plugin's own instance pool (the default);
//! - idle memory of `wasmop run` with the three example plugins: resident (VmRSS) and reserved
//!   address space (VmSize), compiled in-process (cold) and from the compile cache (warm), with the
//!   on-demand allocator and with a pool of 4 per plugin (the default);
//! - end to end with `wasmop run` against the embedded API server: the time from a plugin file put in
//!   the watched directory to its first reconcile's write, cold (compiling) and warm (cached).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use wasmop_contract::{EmptyCache, Snapshot};
use wasmop_runtime::{PluginLimits, Runtime, RuntimeConfig};

fn runtime(cache: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.into()),
        ..Default::default()
    })
    .unwrap()
}

/// This process's CPU time (user + system), from /proc (clock ticks of 10 ms).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn load_times() {
    println!(
        "{:<22} {:>8} {:>9} {:>9} {:>9} {:>10} {:>9}",
        "plugin", "size KB", "cold ms", "cold CPU", "warm ms", "read ms", "MB/s cold"
    );
    for name in wasmop_example_plugins::EXAMPLES {
        let path = wasmop_example_plugins::plugin_path(name);
        let bytes = std::fs::read(&path).unwrap();
        let size = bytes.len() as f64;
        let cache = tempfile::tempdir().unwrap();
        let (start, cpu) = (Instant::now(), cpu_time());
        runtime(cache.path())
            .load(&path, PluginLimits::default())
            .unwrap();
        let (cold, cold_cpu) = (start.elapsed(), cpu_time() - cpu);
        let (mut warm, mut read) = (Vec::new(), Vec::new());
        for _ in 0..5 {
            let rt = runtime(cache.path());
            let start = Instant::now();
            rt.load(&path, PluginLimits::default()).unwrap();
            warm.push(start.elapsed());
            let start = Instant::now();
            assert!(rt.compile(name, &bytes).unwrap().from_cache());
            read.push(start.elapsed());
            assert_eq!(rt.cache_stats(), Some((2, 0)), "served by the cache");
        }
        println!(
            "{:<22} {:>8.0} {:>9.1} {:>8.1}x {:>9.2} {:>10.2} {:>9.2}",
            name,
            size / 1024.0,
            cold.as_secs_f64() * 1e3,
            cold_cpu.as_secs_f64() / cold.as_secs_f64(),
            median(warm).as_secs_f64() * 1e3,
            median(read).as_secs_f64() * 1e3,
            size / 1e6 / cold.as_secs_f64()
        );
    }
    println!(
        "(cold CPU: process CPU time over wall time while compiling; warm: median of 5 loads from the compile cache, of which read = artifact read, MAC check and deserialize)"
    );
}

/// One reconcile (fresh instance, call, drop) of the `hello` test plugin, by allocator.
async fn call_cost() {
    let path = wasmop_example_plugins::plugin_path("hello");
    let snapshot: Snapshot = serde_json::from_value(serde_json::json!({
        "object": {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "c", "namespace": "default", "generation": 1}, "data": {"a": "1"}},
        "reason": "change",
    }))
    .unwrap();
    let cache = tempfile::tempdir().unwrap();
    for (label, instances_per_plugin) in [("on-demand", 0), ("the plugin's pool, 4 slots (default)", 4)] {
        let rt = Runtime::new(RuntimeConfig {
            instances_per_plugin,
            cache_dir: Some(cache.path().into()),
            ..Default::default()
        })
        .unwrap();
        let plugin = rt.load(&path, PluginLimits::default()).unwrap();
        let n = 2000;
        for _ in 0..100 {
            plugin.reconcile(&snapshot, Arc::new(EmptyCache)).await.unwrap();
        }
        let start = Instant::now();
        for _ in 0..n {
            plugin.reconcile(&snapshot, Arc::new(EmptyCache)).await.unwrap();
        }
        println!(
            "reconcile call (hello, instantiate + call + drop), {label}: {:.1} us",
            start.elapsed().as_secs_f64() * 1e6 / n as f64
        );
    }
}

/// `VmRSS` and `VmSize` of a process, in MB.
fn memory_of(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb = |key: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .unwrap()
    };
    (kb("VmRSS:") / 1024.0, kb("VmSize:") / 1024.0)
}

/// Idle memory of `wasmop run` with the three example plugins loaded, by allocator and cache state.
async fn idle_memory(kubeconfig: &Path) {
    let dir = tempfile::tempdir().unwrap();
    for name in ["database-operator", "configmap-replicator", "pdb-guard"] {
        std::fs::copy(
            wasmop_example_plugins::plugin_path(name),
            dir.path().join(format!("{name}.wasm")),
        )
        .unwrap();
    }
    for (label, pool) in [("on-demand", "0"), ("a pool of 4 per plugin (default)", "4")] {
        let cache = tempfile::tempdir().unwrap();
        for state in ["cold", "warm"] {
            let mut child = host_with(
                kubeconfig,
                dir.path(),
                cache.path(),
                &[("WASMOP_INSTANCE_POOL", pool)],
            );
            // Loaded: three artifacts in the cache (written or read), then quiet.
            while std::fs::read_dir(cache.path())
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "cwasm")
                })
                .count()
                < 3
            {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
            let (rss, vsz) = memory_of(child.id());
            println!(
                "idle wasmop run, 3 example plugins, {label}, {state} cache: RSS {rss:.1} MB, address space {:.1} GB",
                vsz / 1024.0
            );
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `wasmop run` on `dir` and returns it once it serves its status.
fn host(kubeconfig: &Path, dir: &Path, cache: &Path) -> std::process::Child {
    host_with(kubeconfig, dir, cache, &[])
}

fn host_with(kubeconfig: &Path, dir: &Path, cache: &Path, env: &[(&str, &str)]) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmop"))
        .args(["run", "--status-addr", "127.0.0.1:0", "--plugins"])
        .arg(dir)
        .arg("--cache-dir")
        .arg(cache)
        .env("KUBECONFIG", kubeconfig)
        .env("WASMOP_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let mut lines = BufReader::new(out).lines();
    while let Some(Ok(line)) = lines.next() {
        if line.starts_with("plugin status:") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    child
}

/// From `stamp.wasm` appearing in the directory to the annotation its first reconcile writes.
async fn file_to_first_write(
    client: &kube::Client,
    dir: &Path,
    cache: &Path,
    kubeconfig: &Path,
    object: &str,
) -> Duration {
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": object, "labels": {"stamp": "yes"}}});
    cms.patch(object, &PatchParams::apply("bench"), &Patch::Apply(&cm))
        .await
        .unwrap();
    let _ = std::fs::remove_file(dir.join("stamp.wasm"));
    let mut child = host(kubeconfig, dir, cache);
    // Let the host go idle, so the file arrives as a change, not during start-up.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tmp = dir.join("stamp.tmp");
    std::fs::copy(wasmop_example_plugins::plugin_path("stamp-v1"), &tmp).unwrap();
    let start = Instant::now();
    std::fs::rename(&tmp, dir.join("stamp.wasm")).unwrap();
    loop {
        let c = cms.get(object).await.unwrap();
        if c.metadata
            .annotations
            .unwrap_or_default()
            .contains_key("stamp.wasmop.io/version")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = start.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    elapsed
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    load_times();
    call_cost().await;

    let data = tempfile::tempdir().unwrap();
    let server = wasmop_apiserver::ApiServer::start(wasmop_apiserver::Config::new(data.path()))
        .await
        .unwrap();
    let kc = Kubeconfig::from_yaml(&server.kubeconfig()).unwrap();
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap(),
    )
    .unwrap();
    idle_memory(server.kubeconfig_path()).await;
    let dir = tempfile::tempdir().unwrap();
    let warm_cache = tempfile::tempdir().unwrap();
    runtime(warm_cache.path())
        .load(
            wasmop_example_plugins::plugin_path("stamp-v1"),
            PluginLimits::default(),
        )
        .unwrap();
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for i in 0..5 {
        let fresh = tempfile::tempdir().unwrap();
        cold.push(
            file_to_first_write(
                &client,
                dir.path(),
                fresh.path(),
                server.kubeconfig_path(),
                &format!("cold{i}"),
            )
            .await,
        );
        warm.push(
            file_to_first_write(
                &client,
                dir.path(),
                warm_cache.path(),
                server.kubeconfig_path(),
                &format!("warm{i}"),
            )
            .await,
        );
    }
    cold.sort();
    warm.sort();
    println!(
        "file in place -> first reconcile's write (stamp, wasmop run, median of 5): cold {:.0} ms, warm {:.0} ms ({:.1}x)",
        cold[2].as_secs_f64() * 1e3,
        warm[2].as_secs_f64() * 1e3,
        cold[2].as_secs_f64() / warm[2].as_secs_f64()
    );
    println!("(both include the directory watcher's debounce and stability check, about 450 ms)");
    server.shutdown().await;
}
