//! The churn soak (issue 11's last fault row): `wasmop run` as its own process — so the memory,
//! threads and open files measured are the host's alone — with three example plugins (pdb-guard,
//! configmap-replicator, database-operator) against the embedded API server in this process. For
//! `WASMOP_SOAK_SECONDS` (default 60) it creates, updates and deletes `WASMOP_SOAK_RATE` (default
//! 50) objects a second spread over the three plugins' kinds; every `WASMOP_SOAK_SAMPLE_SECONDS`
//! (default 10) it samples the host's RSS, live tasks (`wasmop_host_tasks`), threads and open
//! files. At the end, after a settle window, every object's effect is compared with its last
//! change (a lost reconcile is one whose effect never caught up), and the verdict checks that RSS
//! stayed flat after the warm-up and the task count did not grow.
//!
//! Ignored by default (it runs for minutes):
//! `WASMOP_SOAK_SECONDS=1800 cargo test --release -p wasmop --test it soak:: -- --ignored --nocapture`;
//! docs/reliability.md ("Soak") has the figures of the 30-minute run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::{TestServer, metric_sum, spawn_wasmop, status_get, wasmop};

/// Where the churned objects live.
const NS: &str = "soak";
/// The namespaces every source ConfigMap is copied into.
const TARGETS: [&str; 2] = ["soak-a", "soak-b"];
/// How many objects of each kind exist at most at once (a slot holds one, renamed after a delete).
const DEPLOYMENTS: usize = 100;
const SOURCES: usize = 100;
const DATABASES: usize = 50;
/// Churn runs in lanes, each owning a share of the slots, so that one slot's changes stay in order
/// while a slow answer to one does not stall the whole rate.
const LANES: usize = 10;
/// RSS may grow this much from the end of the warm-up to the end of the churn.
const RSS_GROWTH_BOUND: f64 = 0.20;
/// How long the host may take after the churn stops to catch up with the last changes.
const SETTLE: Duration = Duration::from_secs(90);

fn env_secs(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name}={v}: not a number")))
        .unwrap_or(default)
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    Deployment,
    Source,
    Database,
}

impl Kind {
    fn prefix(self) -> &'static str {
        match self {
            Kind::Deployment => "d",
            Kind::Source => "c",
            Kind::Database => "db",
        }
    }

    /// The value a create or an update writes: replicas (1–3 for a Deployment, so that pdb-guard's
    /// budget comes and goes; 1–5 for a Database), or a ConfigMap's data counter.
    fn value(self, rng: &mut Rng) -> u64 {
        match self {
            Kind::Deployment => 1 + rng.below(3),
            Kind::Source => rng.next(),
            Kind::Database => 1 + rng.below(5),
        }
    }

    fn object(self, name: &str, v: u64) -> Value {
        match self {
            Kind::Deployment => json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": name, "namespace": NS},
                "spec": {
                    "replicas": v,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {
                        "metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                    },
                },
            }),
            Kind::Source => json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": NS,
                             "annotations": {"wasmop.io/replicate-to": TARGETS.join(",")}},
                "data": {"v": v.to_string()},
            }),
            Kind::Database => json!({
                "apiVersion": "example.com/v1", "kind": "Database",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"replicas": v, "image": "postgres:16", "storage": "1Gi"},
            }),
        }
    }

    fn update(self, v: u64) -> Value {
        match self {
            Kind::Deployment | Kind::Database => json!({"spec": {"replicas": v}}),
            Kind::Source => json!({"data": {"v": v.to_string()}}),
        }
    }

    /// The value an object as stored carries.
    fn read(self, o: &DynamicObject) -> Option<u64> {
        match self {
            Kind::Deployment | Kind::Database => o.data["spec"]["replicas"].as_u64(),
            Kind::Source => o.data["data"]["v"].as_str()?.parse().ok(),
        }
    }
}

/// xorshift64*: a reproducible choice of slot and change without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One slot: the object it holds now (its generation in the name) and the value last written.
struct Slot {
    kind: Kind,
    index: usize,
    generation: u32,
    value: Option<u64>,
}

impl Slot {
    fn name(&self) -> String {
        format!("{}-{}-{}", self.kind.prefix(), self.index, self.generation)
    }
}

/// The clients of the three kinds.
#[derive(Clone)]
struct Apis {
    deployments: Api<DynamicObject>,
    configmaps: Api<DynamicObject>,
    databases: Api<DynamicObject>,
    client: kube::Client,
}

impl Apis {
    fn new(client: &kube::Client) -> Apis {
        let ns = |ar: &ApiResource| Api::namespaced_with(client.clone(), NS, ar);
        Apis {
            deployments: ns(&ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&())),
            configmaps: ns(&ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&())),
            databases: ns(&database_resource()),
            client: client.clone(),
        }
    }

    fn of(&self, kind: Kind) -> &Api<DynamicObject> {
        match kind {
            Kind::Deployment => &self.deployments,
            Kind::Source => &self.configmaps,
            Kind::Database => &self.databases,
        }
    }

    fn in_namespace(&self, ar: &ApiResource, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), ns, ar)
    }
}

fn database_resource() -> ApiResource {
    ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Database".into(),
        plural: "databases".into(),
    }
}

/// What the churn did, counted as it went.
#[derive(Default)]
struct Counts {
    creates: AtomicU64,
    updates: AtomicU64,
    deletes: AtomicU64,
    /// Requests that failed; the slot then reads back what the server holds.
    errors: AtomicU64,
}

impl Counts {
    fn ops(&self) -> u64 {
        self.creates.load(Ordering::Relaxed)
            + self.updates.load(Ordering::Relaxed)
            + self.deletes.load(Ordering::Relaxed)
    }
}

/// One change to a slot: a create when it is empty, else an update (3 in 4) or a delete. A delete
/// moves the slot to a new name, so a Database still finishing its finalizer is never recreated.
async fn churn_one(apis: &Apis, slot: &mut Slot, rng: &mut Rng, counts: &Counts) {
    let api = apis.of(slot.kind);
    let name = slot.name();
    let value = slot.kind.value(rng);
    let result = match slot.value {
        None => {
            let object: DynamicObject =
                serde_json::from_value(slot.kind.object(&name, value)).expect("an object");
            let r = api.create(&PostParams::default(), &object).await.map(|_| ());
            counts.creates.fetch_add(1, Ordering::Relaxed);
            r.map(|()| slot.value = Some(value))
        }
        Some(_) if rng.below(4) > 0 => {
            let patch = Patch::Merge(slot.kind.update(value));
            let r = api
                .patch(&name, &PatchParams::default(), &patch)
                .await
                .map(|_| ());
            counts.updates.fetch_add(1, Ordering::Relaxed);
            r.map(|()| slot.value = Some(value))
        }
        Some(_) => {
            let r = api.delete(&name, &DeleteParams::default()).await.map(|_| ());
            counts.deletes.fetch_add(1, Ordering::Relaxed);
            r.map(|()| {
                slot.value = None;
                slot.generation += 1;
            })
        }
    };
    if let Err(e) = result {
        counts.errors.fetch_add(1, Ordering::Relaxed);
        eprintln!("soak: {name}: {e}");
        // Whatever happened, the expectation follows what the server holds.
        match api.get_opt(&name).await {
            Ok(Some(o)) if o.metadata.deletion_timestamp.is_none() => slot.value = slot.kind.read(&o),
            Ok(Some(_)) => {
                slot.value = None;
                slot.generation += 1;
            }
            Ok(None) => slot.value = None,
            Err(e) => panic!("soak: reading {name} back: {e}"),
        }
    }
}

/// Runs one lane's slots at `rate` changes a second until `until`; answers the slots.
async fn lane(
    apis: Apis,
    mut slots: Vec<Slot>,
    seed: u64,
    rate: f64,
    until: Instant,
    counts: Arc<Counts>,
) -> Vec<Slot> {
    let mut rng = Rng(seed);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < until {
        tick.tick().await;
        let i = rng.below(slots.len() as u64) as usize;
        churn_one(&apis, &mut slots[i], &mut rng, &counts).await;
    }
    slots
}

/// A `/proc/PID/status` field's first number (`VmRSS` in KiB, `Threads`).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the host runs");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
}

#[derive(Clone, Debug)]
struct Sample {
    at: Duration,
    ops: u64,
    rss_kib: u64,
    tasks: u64,
    threads: u64,
    fds: u64,
    reconciles: u64,
    errors: u64,
    queued: u64,
}

async fn sample(pid: u32, status: std::net::SocketAddr, at: Duration, ops: u64) -> Sample {
    let metrics = status_get(status, "/metrics").await;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("the host's fds")
        .count() as u64;
    Sample {
        at,
        ops,
        rss_kib: proc_status(pid, "VmRSS"),
        tasks: metric_sum(&metrics, "wasmop_host_tasks", "") as u64,
        threads: proc_status(pid, "Threads"),
        fds,
        reconciles: metric_sum(&metrics, "wasmop_reconciles_total", "") as u64,
        errors: metric_sum(&metrics, "wasmop_reconciles_total", "outcome=\"error\"") as u64,
        queued: metric_sum(&metrics, "wasmop_queue_depth", "") as u64,
    }
}

fn table(samples: &[Sample]) -> String {
    let mut out = String::from(
        "| t (s) | changes | RSS (MiB) | tasks | threads | fds | reconciles | errors | queued |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for s in samples {
        out += &format!(
            "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} |\n",
            s.at.as_secs(),
            s.ops,
            s.rss_kib as f64 / 1024.0,
            s.tasks,
            s.threads,
            s.fds,
            s.reconciles,
            s.errors,
            s.queued
        );
    }
    out
}

/// The objects of `ar` in `ns` whose name starts with `prefix-`, by name.
async fn list(apis: &Apis, ar: &ApiResource, ns: &str, prefix: &str) -> BTreeMap<String, DynamicObject> {
    let items = apis
        .in_namespace(ar, ns)
        .list(&ListParams::default())
        .await
        .expect("list")
        .items;
    items
        .into_iter()
        .filter_map(|o| {
            let name = o.metadata.name.clone()?;
            name.starts_with(&format!("{prefix}-")).then_some((name, o))
        })
        .collect()
}

/// Every slot's effect compared with its last change; each mismatch named (a lost reconcile, or a
/// child left behind by a deletion).
async fn mismatches(apis: &Apis, slots: &[Slot]) -> Vec<String> {
    use k8s_openapi::api::{
        apps::v1::StatefulSet, core::v1::ConfigMap, core::v1::Service, policy::v1::PodDisruptionBudget,
    };
    let cm = ApiResource::erase::<ConfigMap>(&());
    let pdbs = list(apis, &ApiResource::erase::<PodDisruptionBudget>(&()), NS, "d").await;
    let sources = list(apis, &cm, NS, "c").await;
    let copies: Vec<_> = futures::future::join_all(TARGETS.map(|t| list(apis, &cm, t, "c"))).await;
    let databases = list(apis, &database_resource(), NS, "db").await;
    let db_configmaps = list(apis, &cm, NS, "db").await;
    let statefulsets = list(apis, &ApiResource::erase::<StatefulSet>(&()), NS, "db").await;
    let services = list(apis, &ApiResource::erase::<Service>(&()), NS, "db").await;

    let mut wrong = Vec::new();
    let live = |kind: Kind| -> BTreeMap<String, u64> {
        slots
            .iter()
            .filter(|s| s.kind == kind)
            .filter_map(|s| Some((s.name(), s.value?)))
            .collect()
    };
    // pdb-guard: a budget exactly for the Deployments with 2 replicas or more.
    let deployments = live(Kind::Deployment);
    for (name, &replicas) in &deployments {
        if (replicas >= 2) != pdbs.contains_key(name) {
            wrong.push(format!(
                "Deployment {name} ({replicas} replicas): budget present = {}",
                pdbs.contains_key(name)
            ));
        }
    }
    for name in pdbs.keys().filter(|n| !deployments.contains_key(*n)) {
        wrong.push(format!("PodDisruptionBudget {name}: its Deployment is gone"));
    }
    // configmap-replicator: each source's copies carry its last data; a deleted source is released
    // (its finalizer removed) and its copies are gone.
    let live_sources = live(Kind::Source);
    for name in sources.keys().filter(|n| !live_sources.contains_key(*n)) {
        wrong.push(format!(
            "source ConfigMap {name}: deleted but still there (finalizer)"
        ));
    }
    for (target, copies) in TARGETS.iter().zip(&copies) {
        for (name, &v) in &live_sources {
            let got = copies.get(name).and_then(|o| Kind::Source.read(o));
            if got != Some(v) {
                wrong.push(format!("copy {target}/{name}: {got:?}, want {v}"));
            }
        }
        for name in copies.keys().filter(|n| !live_sources.contains_key(*n)) {
            wrong.push(format!("copy {target}/{name}: its source is gone"));
        }
    }
    // database-operator: status for the last generation, the StatefulSet and the connection
    // ConfigMap with the last replicas, a Service; a deleted Database released and its children gone.
    let live_databases = live(Kind::Database);
    for (name, &replicas) in &live_databases {
        let Some(db) = databases.get(name) else {
            wrong.push(format!("Database {name}: missing"));
            continue;
        };
        let observed = db.data["status"]["observedGeneration"].as_i64();
        if observed != db.metadata.generation {
            wrong.push(format!(
                "Database {name}: observedGeneration {observed:?}, generation {:?}",
                db.metadata.generation
            ));
        }
        let sts = statefulsets
            .get(name)
            .and_then(|o| o.data["spec"]["replicas"].as_u64());
        if sts != Some(replicas) {
            wrong.push(format!("StatefulSet {name}: replicas {sts:?}, want {replicas}"));
        }
        let cm = db_configmaps
            .get(name)
            .and_then(|o| o.data["data"]["replicas"].as_str()?.parse::<u64>().ok());
        if cm != Some(replicas) {
            wrong.push(format!("ConfigMap {name}: replicas {cm:?}, want {replicas}"));
        }
        if !services.contains_key(name) {
            wrong.push(format!("Service {name}: missing"));
        }
    }
    for name in databases.keys().filter(|n| !live_databases.contains_key(*n)) {
        wrong.push(format!("Database {name}: deleted but still there (finalizer)"));
    }
    for (what, children) in [
        ("StatefulSet", &statefulsets),
        ("ConfigMap", &db_configmaps),
        ("Service", &services),
    ] {
        for name in children.keys().filter(|n| !live_databases.contains_key(*n)) {
            wrong.push(format!("{what} {name}: its Database is gone"));
        }
    }
    wrong
}

/// The host's process, killed when the test ends however it ends (a panic included), so that a
/// failed soak leaves no `wasmop run` behind.
struct HostProcess(std::process::Child);

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The host as `wasmop run`: its process and status endpoint.
fn start_host(t: &TestServer, plugins: &std::path::Path) -> (HostProcess, std::net::SocketAddr) {
    let mut command = wasmop();
    command
        .args([
            "run",
            "--status-addr",
            "127.0.0.1:0",
            "--write-qps",
            "500",
            "--write-burst",
            "500",
        ])
        .arg("--plugins")
        .arg(plugins)
        .env("KUBECONFIG", t.server.kubeconfig_path())
        .env("WASMOP_LOG", "warn");
    let (child, status) = spawn_wasmop(&mut command, "plugin status: wasmop plugins --status-addr ");
    (HostProcess(child), status.parse().expect("a status address"))
}

/// Waits until the host's reconciles stop changing for 3 s; answers the time it took.
async fn idle(status: std::net::SocketAddr, max: Duration) -> Duration {
    let started = Instant::now();
    let mut last = ((f64::NAN, f64::NAN), Instant::now());
    loop {
        let m = status_get(status, "/metrics").await;
        let now = (
            metric_sum(&m, "wasmop_reconciles_total", ""),
            metric_sum(&m, "wasmop_queue_depth", "") + metric_sum(&m, "wasmop_running_reconciles", ""),
        );
        if now != last.0 {
            last = (now, Instant::now());
        } else if last.1.elapsed() >= Duration::from_secs(3) {
            return started.elapsed();
        }
        assert!(started.elapsed() < max, "the host did not go idle within {max:?}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a soak of a minute or more: WASMOP_SOAK_SECONDS=1800 cargo test --release -p wasmop --test it soak:: -- --ignored --nocapture"]
async fn churn_soak_keeps_memory_and_tasks_flat_and_loses_no_reconcile() {
    let seconds = env_secs("WASMOP_SOAK_SECONDS", 60);
    let rate = env_secs("WASMOP_SOAK_RATE", 50) as f64;
    let every = Duration::from_secs(env_secs("WASMOP_SOAK_SAMPLE_SECONDS", 10));
    // The warm-up: minute 5 of a long run, the first third of a short one.
    let warm_up = Duration::from_secs((seconds / 3).min(300));

    let t = TestServer::start().await;
    let apis = Apis::new(&t.client);
    wasmop::apply_manifests(&t.client, &wasmop_example_plugins::crds_dir(), "test")
        .await
        .expect("CRDs applied");
    let namespaces: Api<DynamicObject> = Api::all_with(
        t.client.clone(),
        &ApiResource::erase::<k8s_openapi::api::core::v1::Namespace>(&()),
    );
    for ns in std::iter::once(NS).chain(TARGETS) {
        let o = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        )
        .unwrap();
        namespaces
            .create(&PostParams::default(), &o)
            .await
            .expect("namespace");
    }
    let plugins = tempfile::tempdir().expect("tempdir");
    for name in ["pdb-guard", "configmap-replicator", "database-operator"] {
        std::fs::copy(
            wasmop_example_plugins::plugin_path(name),
            plugins.path().join(format!("{name}.wasm")),
        )
        .expect("plugin copied");
    }
    let (host, status) = start_host(&t, plugins.path());
    let pid = host.0.id();
    crate::support::eventually(120, "the host to be ready", || async move {
        let m = status_get(status, "/metrics").await;
        (metric_sum(&m, "wasmop_plugin_up", "") == 3.0).then_some(())
    })
    .await;
    idle(status, Duration::from_secs(60)).await;
    let before = sample(pid, status, Duration::ZERO, 0).await;

    // The churn, sampled as it goes.
    let counts = Arc::new(Counts::default());
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let mut all: Vec<Slot> = [
        (Kind::Deployment, DEPLOYMENTS),
        (Kind::Source, SOURCES),
        (Kind::Database, DATABASES),
    ]
    .into_iter()
    .flat_map(|(kind, n)| {
        (0..n).map(move |index| Slot {
            kind,
            index,
            generation: 0,
            value: None,
        })
    })
    .collect();
    let mut lanes: Vec<Vec<Slot>> = (0..LANES).map(|_| Vec::new()).collect();
    for (i, slot) in all.drain(..).enumerate() {
        lanes[i % LANES].push(slot);
    }
    let handles: Vec<_> = lanes
        .into_iter()
        .enumerate()
        .map(|(i, slots)| {
            tokio::spawn(lane(
                apis.clone(),
                slots,
                0x9e37_79b9 + i as u64,
                rate / LANES as f64,
                until,
                counts.clone(),
            ))
        })
        .collect();
    let mut samples = Vec::new();
    let mut next = started + every;
    while Instant::now() < until {
        tokio::time::sleep_until(next.min(until).into()).await;
        next += every;
        let s = sample(pid, status, started.elapsed(), counts.ops()).await;
        eprintln!(
            "soak: {}",
            table(std::slice::from_ref(&s)).lines().last().unwrap_or_default()
        );
        samples.push(s);
    }
    let mut slots = Vec::new();
    for h in handles {
        slots.extend(h.await.expect("a churn lane"));
    }
    let churned = started.elapsed();

    // The settle window: the host catches up with the last changes; whatever still differs after
    // it is a lost reconcile.
    let settle_started = Instant::now();
    let mut wrong = mismatches(&apis, &slots).await;
    while !wrong.is_empty() && settle_started.elapsed() < SETTLE {
        tokio::time::sleep(Duration::from_secs(2)).await;
        wrong = mismatches(&apis, &slots).await;
    }
    let caught_up = settle_started.elapsed();
    idle(status, Duration::from_secs(120)).await;
    // Connections opened under load stay in the clients' pools until they have been idle for
    // 90 s; give them that long to close, so that the idle counts compare like with like.
    let idle_started = Instant::now();
    let mut after = sample(pid, status, started.elapsed(), counts.ops()).await;
    while after.tasks > before.tasks && idle_started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        after = sample(pid, status, started.elapsed(), counts.ops()).await;
    }

    let live = slots.iter().filter(|s| s.value.is_some()).count();
    let warm = samples
        .iter()
        .find(|s| s.at >= warm_up)
        .or(samples.first())
        .expect("samples")
        .clone();
    let last = samples.last().expect("samples").clone();
    let growth = last.rss_kib as f64 / warm.rss_kib as f64 - 1.0;
    let task_peak_warm = samples
        .iter()
        .filter(|s| s.at <= warm.at)
        .map(|s| s.tasks)
        .max()
        .unwrap_or(0);
    let task_peak_late = samples
        .iter()
        .filter(|s| s.at > warm.at)
        .map(|s| s.tasks)
        .max()
        .unwrap_or(0);
    println!("{}", table(&samples));
    println!(
        "churn: {:.0} s, {} changes ({:.1}/s: {} creates, {} updates, {} deletes; {} failed requests), {} objects live at the end",
        churned.as_secs_f64(),
        counts.ops(),
        counts.ops() as f64 / churned.as_secs_f64(),
        counts.creates.load(Ordering::Relaxed),
        counts.updates.load(Ordering::Relaxed),
        counts.deletes.load(Ordering::Relaxed),
        counts.errors.load(Ordering::Relaxed),
        live,
    );
    println!(
        "idle before the churn: RSS {:.1} MiB, {} tasks, {} threads, {} fds; after it and the settle: RSS {:.1} MiB, {} tasks, {} threads, {} fds",
        before.rss_kib as f64 / 1024.0,
        before.tasks,
        before.threads,
        before.fds,
        after.rss_kib as f64 / 1024.0,
        after.tasks,
        after.threads,
        after.fds,
    );
    println!(
        "RSS at the warm-up ({} s) {:.1} MiB, at the end {:.1} MiB: {:+.1} % (bound {:+.0} %); tasks at the warm-up {}, at the end {} (peak up to the warm-up {}, after it {})",
        warm.at.as_secs(),
        warm.rss_kib as f64 / 1024.0,
        last.rss_kib as f64 / 1024.0,
        growth * 100.0,
        RSS_GROWTH_BOUND * 100.0,
        warm.tasks,
        last.tasks,
        task_peak_warm,
        task_peak_late,
    );
    println!(
        "lost reconciles: {} (every effect caught up {:.1} s after the churn stopped){}",
        wrong.len(),
        caught_up.as_secs_f64(),
        wrong
            .iter()
            .take(20)
            .map(|w| format!("\n  {w}"))
            .collect::<String>(),
    );

    drop(host);
    t.server.shutdown().await;

    assert!(wrong.is_empty(), "{} lost reconciles: {wrong:#?}", wrong.len());
    assert!(
        counts.ops() as f64 >= 0.8 * rate * seconds as f64,
        "the churn reached only {} changes of {}",
        counts.ops(),
        rate * seconds as f64
    );
    assert!(
        growth <= RSS_GROWTH_BOUND,
        "RSS grew {:.1} % after the warm-up",
        growth * 100.0
    );
    // Tasks and open files follow the load (reconciles, requests and pooled connections): the
    // warm-up and the end compare like with like, and a leak of one task per hundred changes
    // would be hundreds.
    let slack = |n: u64| n + (n / 10).max(5);
    assert!(
        last.tasks <= slack(warm.tasks),
        "tasks grew from {} at the warm-up to {} at the end",
        warm.tasks,
        last.tasks
    );
    assert!(
        last.fds <= slack(warm.fds),
        "open files grew from {} at the warm-up to {} at the end",
        warm.fds,
        last.fds
    );
}
