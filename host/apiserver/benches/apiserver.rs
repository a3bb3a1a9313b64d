//! Embedded API server benchmark: durable writes per second and watch-event latency with 10 watchers,
//! through kube-rs over HTTPS. Prints figures; `cargo bench -p wasmop-apiserver`.
//!
//! Writes are acknowledged only after an fsync, so writes/s is bounded by the disk's sync latency; the
//! run also reports reads/s measured the same way, as a ratio that shows what durability costs on the
//! machine at hand.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use tokio::sync::Mutex;
use wasmop_apiserver::{ApiServer, Config};

const WRITES: usize = 2000;
const CONCURRENCY: usize = 16;
const WATCHERS: usize = 10;
const WATCHED_WRITES: usize = 300;

fn cm(name: String, sent_at: u128) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name);
    c.data = Some(BTreeMap::from([("sent".to_string(), sent_at.to_string())]));
    c
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run<F, Fut>(total: usize, concurrency: usize, op: F) -> f64
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (op, next) = (op.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    break;
                }
                op(i).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    total as f64 / start.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let server = ApiServer::start(Config::new(dir.path())).await.unwrap();
    let kc = Kubeconfig::from_yaml(&server.kubeconfig()).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");

    let api = cms.clone();
    let writes = run(WRITES, CONCURRENCY, move |i| {
        let api = api.clone();
        async move {
            api.create(&PostParams::default(), &cm(format!("bench-{i}"), 0))
                .await
                .unwrap();
        }
    })
    .await;
    let api = cms.clone();
    let reads = run(WRITES, CONCURRENCY, move |i| {
        let api = api.clone();
        async move {
            api.get(&format!("bench-{i}")).await.unwrap();
        }
    })
    .await;
    println!("durable creates: {writes:.0} writes/s ({WRITES} ConfigMaps, {CONCURRENCY} concurrent clients)");
    println!(
        "gets:            {reads:.0} reads/s (same clients; reads/writes ratio {:.1})",
        reads / writes
    );

    // Watch latency: 10 watchers, one writer, time from before the create to each watcher's event.
    let epoch = Instant::now();
    let rv = cms
        .list(&Default::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let mut watchers = Vec::new();
    for _ in 0..WATCHERS {
        let (api, rv, latencies) = (cms.clone(), rv.clone(), latencies.clone());
        watchers.push(tokio::spawn(async move {
            let mut stream = api.watch(&WatchParams::default(), &rv).await.unwrap().boxed();
            let mut seen = 0;
            while seen < WATCHED_WRITES {
                if let Some(Ok(WatchEvent::Added(c))) = stream.next().await {
                    let sent: u128 = c.data.unwrap()["sent"].parse().unwrap();
                    let now = epoch.elapsed().as_micros();
                    latencies
                        .lock()
                        .await
                        .push(Duration::from_micros((now - sent) as u64));
                    seen += 1;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..WATCHED_WRITES {
        cms.create(
            &PostParams::default(),
            &cm(format!("watched-{i}"), epoch.elapsed().as_micros()),
        )
        .await
        .unwrap();
    }
    for w in watchers {
        w.await.unwrap();
    }
    let mut l = latencies.lock().await.clone();
    l.sort();
    println!(
        "watch latency ({WATCHERS} watchers, {WATCHED_WRITES} writes, {} events): p50 {:.2} ms, p99 {:.2} ms",
        l.len(),
        percentile(&l, 0.5).as_secs_f64() * 1e3,
        percentile(&l, 0.99).as_secs_f64() * 1e3
    );
    server.shutdown().await;
}
