// TEMPORARY: exercises the runtime against /tmp scratch guests; removed before handing over.
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmop_contract::*;
use wasmop_runtime::*;

fn snap(mode: &str) -> Snapshot {
    serde_json::from_value(
        serde_json::json!({"object": {"kind": "ConfigMap"}, "reason": "change", "config": {"mode": mode}}),
    )
    .unwrap()
}

struct OneSecret;
impl CacheReader for OneSecret {
    fn get(&self, k: &Gvk, ns: Option<&str>, n: &str) -> Option<serde_json::Value> {
        (k.kind == "Secret" && ns == Some("ns") && n == "s").then(|| serde_json::json!({"kind": "Secret"}))
    }
    fn list(&self, _: &Gvk, _: Option<&str>, _: Option<&str>) -> Vec<serde_json::Value> {
        vec![]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scratch() {
    let t = Instant::now();
    let rt = Runtime::shared().unwrap();
    let p = rt
        .load(
            "/tmp/scratch-guest/target/wasm32-wasip2/release/scratch_guest.wasm",
            PluginLimits {
                deadline: Duration::from_millis(500),
                memory_bytes: 32 << 20,
            },
        )
        .unwrap();
    eprintln!("load {:?}", t.elapsed());
    let c: Arc<dyn CacheReader> = Arc::new(OneSecret);
    for mode in [
        "ok", "trap", "ok", "spin", "hog", "sleep", "badjson", "retry", "cache", "state", "state", "clock",
    ] {
        let t = Instant::now();
        let r = p.reconcile(&snap(mode), c.clone()).await;
        eprintln!("{mode}: {:?} -> {r:?}", t.elapsed());
    }
    let e = rt
        .load(
            "/tmp/scratch-cmd/target/wasm32-wasip2/release/scratch-cmd.wasm",
            PluginLimits::default(),
        )
        .unwrap_err();
    eprintln!("{e}");
}
