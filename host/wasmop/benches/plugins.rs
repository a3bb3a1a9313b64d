//! Plugin start-up figures, printed side by side from one run (`cargo bench -p wasmop --bench
//! plugins`):
//! - per example plugin: component size, cold load (compile) and warm load (compile cache) times,
//!   and compile throughput in MB/s;
//! - end to end with `wasmop run` against the embedded API server: the time from a plugin file put in
//!   the watched directory to its first reconcile's write, cold (compiling) and warm (cached).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kube::api::{Api, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use wasmop_runtime::{PluginLimits, Runtime, RuntimeConfig};

fn runtime(cache: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        max_instances: 4,
        cache_dir: Some(cache.into()),
        ..Default::default()
    })
    .unwrap()
}

fn load_times() {
    println!(
        "{:<22} {:>9} {:>11} {:>11} {:>8} {:>10}",
        "plugin", "size KB", "cold ms", "warm ms", "ratio", "MB/s cold"
    );
    for name in wasmop_example_plugins::EXAMPLES {
        let path = wasmop_example_plugins::plugin_path(name);
        let size = std::fs::metadata(&path).unwrap().len() as f64;
        let cache = tempfile::tempdir().unwrap();
        let start = Instant::now();
        runtime(cache.path())
            .load(&path, PluginLimits::default())
            .unwrap();
        let cold = start.elapsed();
        let start = Instant::now();
        runtime(cache.path())
            .load(&path, PluginLimits::default())
            .unwrap();
        let warm = start.elapsed();
        println!(
            "{:<22} {:>9.0} {:>11.1} {:>11.1} {:>7.1}x {:>10.2}",
            name,
            size / 1024.0,
            cold.as_secs_f64() * 1e3,
            warm.as_secs_f64() * 1e3,
            cold.as_secs_f64() / warm.as_secs_f64(),
            size / 1e6 / cold.as_secs_f64()
        );
    }
}

/// Starts `wasmop run` on `dir` and returns it once it serves its status.
fn host(kubeconfig: &Path, dir: &Path, cache: &Path) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_wasmop"))
        .args(["run", "--status-addr", "127.0.0.1:0", "--plugins"])
        .arg(dir)
        .arg("--cache-dir")
        .arg(cache)
        .env("KUBECONFIG", kubeconfig)
        .env("WASMOP_LOG", "warn")
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
