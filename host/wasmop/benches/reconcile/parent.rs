//! The parent: per arm a fresh embedded API server (a copy of a data directory seeded once per
//! workload and size), the arm as a child process, and the measurements — the children's writes
//! as the parent's own watch sees them, the child's CPU time and RSS from `/proc`, and the API
//! server's write requests from its `/metrics`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use wasmop_apiserver::{ApiServer, Config};

use crate::cli::{Args, Arm, Workload};
use crate::objects::{self, FANOUT_TARGETS, NAMESPACE};
use crate::proc;

/// One workload at one size and count: what the arms reconcile.
#[derive(Debug, Clone)]
pub struct Case {
    pub workload: Workload,
    /// Bytes of JSON per primary object as sent.
    pub object_bytes: usize,
    pub size_label: &'static str,
    /// Primary objects.
    pub n: usize,
    /// Writes the initial sync must produce (budgets or copies).
    pub children: usize,
}

/// A seeded data directory, copied for every arm.
pub struct Seeded {
    pub case: Case,
    pub dir: tempfile::TempDir,
    /// Creates per second while seeding.
    pub seed_rate: f64,
}

/// What one arm measured on one case.
#[derive(Debug, Clone)]
pub struct Row {
    pub case: Case,
    pub arm: Arm,
    /// From the child's start to its first write.
    pub startup: Duration,
    /// Primary objects per second, from the first write to the last.
    pub sync_rate: f64,
    /// Child CPU over the sync window, per primary object.
    pub cpu_per_object: Duration,
    pub latency_p50: Duration,
    pub latency_p99: Duration,
    /// Changes whose write was never seen.
    pub latency_missed: usize,
    pub changes: usize,
    /// Write requests (create, update, patch, delete) the child sent in each phase.
    pub writes_sync: u64,
    pub writes_latency: u64,
    pub writes_resync: u64,
    pub rss_after_sync: u64,
    pub resync_objects: usize,
    pub resync_time: Duration,
}

fn server_config(dir: &Path) -> Config {
    let mut config = Config::new(dir);
    // Generous: a watch that falls behind would re-list, which measures the server, not the arm.
    config.history_limit = 200_000;
    config
}

async fn client(server: &ApiServer) -> anyhow::Result<kube::Client> {
    Ok(wasmop::client_from_kubeconfig(&server.kubeconfig()).await?)
}

/// Seeds `case`'s objects into a fresh data directory (once; every arm starts from a copy).
pub async fn seed(case: Case, args: &Args) -> anyhow::Result<Seeded> {
    let dir = args.tempdir()?;
    let server = ApiServer::start(server_config(dir.path())).await?;
    let client = client(&server).await?;
    let mut namespaces = vec![NAMESPACE];
    let objects = match case.workload {
        Workload::Pdb => (0..case.n)
            .map(|i| objects::deployment(i, case.object_bytes))
            .collect(),
        Workload::Fanout => {
            namespaces.extend(FANOUT_TARGETS);
            (0..case.n).map(|i| objects::source(i, 0)).collect()
        }
    };
    objects::create_namespaces(&client, &namespaces).await?;
    let seed_rate = objects::seed(&client, objects).await?;
    server.shutdown().await;
    Ok(Seeded { case, dir, seed_rate })
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// A write the latency phase waits to see.
struct Pending {
    /// When the change was acknowledged.
    ack: Option<Instant>,
    /// When the last of the writes it needs was seen.
    done: Option<Instant>,
    seen: usize,
    need: usize,
    delete: bool,
}

/// What the parent's watch of the children's writes has seen.
#[derive(Default)]
struct Seen {
    present: HashSet<String>,
    first: Option<(Instant, Option<Duration>)>,
    reached: Option<(Instant, Option<Duration>)>,
    target: usize,
    pid: Option<u32>,
    pending: HashMap<String, Pending>,
    latencies: Vec<Duration>,
}

impl Seen {
    fn record(&mut self, ns: &str, name: &str, delete: bool, at: Instant) {
        let key = format!("{ns}/{name}");
        let changed = if delete {
            self.present.remove(&key)
        } else {
            self.present.insert(key)
        };
        if changed && self.first.is_none() {
            self.first = Some((at, self.pid.and_then(proc::cpu)));
        }
        if self.reached.is_none() && self.present.len() >= self.target {
            self.reached = Some((at, self.pid.and_then(proc::cpu)));
        }
        if let Some(p) = self.pending.get_mut(name)
            && p.delete == delete
            && p.done.is_none()
        {
            p.seen += 1;
            if p.seen >= p.need {
                p.done = Some(at);
                if let Some(ack) = p.ack {
                    self.latencies.push(at.saturating_duration_since(ack));
                    self.pending.remove(name);
                }
            }
        }
    }

    fn acked(&mut self, name: &str, at: Instant) {
        if let Some(p) = self.pending.get_mut(name) {
            p.ack = Some(at);
            if let Some(done) = p.done {
                self.latencies.push(done.saturating_duration_since(at));
                self.pending.remove(name);
            }
        }
    }
}

/// Watches the kind the arm writes (budgets, or the copies) and records into `seen`.
fn watch_children(
    client: kube::Client,
    workload: Workload,
    seen: Arc<Mutex<Seen>>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> tokio::task::JoinHandle<()> {
    fn run<K>(
        api: Api<K>,
        config: watcher::Config,
        seen: Arc<Mutex<Seen>>,
        ready: tokio::sync::oneshot::Sender<()>,
    ) -> tokio::task::JoinHandle<()>
    where
        K: Resource<DynamicType = ()>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + 'static,
    {
        tokio::spawn(async move {
            let mut ready = Some(ready);
            let mut stream = std::pin::pin!(watcher(api, config));
            while let Some(event) = stream.next().await {
                let at = Instant::now();
                let (object, delete) = match event {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (o, false),
                    Ok(watcher::Event::Delete(o)) => (o, true),
                    Ok(watcher::Event::InitDone) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(());
                        }
                        continue;
                    }
                    Ok(watcher::Event::Init) => continue,
                    Err(e) => {
                        eprintln!("parent watch: {e}");
                        continue;
                    }
                };
                let ns = object.namespace().unwrap_or_default();
                seen.lock()
                    .expect("seen")
                    .record(&ns, &object.name_any(), delete, at);
            }
        })
    }
    match workload {
        Workload::Pdb => run(
            Api::<PodDisruptionBudget>::all(client),
            watcher::Config::default(),
            seen,
            ready,
        ),
        Workload::Fanout => run(
            Api::<ConfigMap>::all(client),
            watcher::Config::default().labels("wasmop.io/replica=true"),
            seen,
            ready,
        ),
    }
}

/// Write requests the API server answered so far (create, update, patch, delete), from `/metrics`.
async fn write_requests(client: &kube::Client) -> anyhow::Result<u64> {
    let req = http::Request::get("/metrics").body(Vec::new())?;
    let text = client.request_text(req).await?;
    let mut total = 0;
    for line in text.lines().filter(|l| l.starts_with("apiserver_request_total{")) {
        let write = ["create", "update", "patch", "delete", "deletecollection"]
            .iter()
            .any(|v| line.contains(&format!("verb=\"{v}\"")));
        if write && let Some(v) = line.rsplit(' ').next() {
            total += v.parse::<f64>().unwrap_or(0.0) as u64;
        }
    }
    Ok(total)
}

/// Waits until the arm is idle: no write request for half a second (trailing events, retries) and
/// the child using under 10 % of a core meanwhile (its queue drained: reconciles of its own writes
/// write nothing but still cost). Returns the write requests counted then.
async fn settle(client: &kube::Client, pid: u32, timeout: Duration) -> anyhow::Result<u64> {
    const TICK: Duration = Duration::from_millis(250);
    let deadline = Instant::now() + timeout;
    let mut last = write_requests(client).await?;
    let mut cpu = proc::cpu(pid).unwrap_or_default();
    let mut quiet = 0;
    while quiet < 2 && Instant::now() < deadline {
        tokio::time::sleep(TICK).await;
        let now = write_requests(client).await?;
        let cpu_now = proc::cpu(pid).unwrap_or_default();
        let idle = cpu_now.saturating_sub(cpu) < TICK / 10;
        quiet = if now == last && idle { quiet + 1 } else { 0 };
        (last, cpu) = (now, cpu_now);
    }
    Ok(last)
}

struct ChildArm {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl ChildArm {
    async fn spawn(arm: Arm, workload: Workload, kubeconfig: &Path, args: &Args) -> anyhow::Result<ChildArm> {
        use clap::ValueEnum;
        let name = |v: clap::builder::PossibleValue| v.get_name().to_string();
        let mut child = tokio::process::Command::new(std::env::current_exe()?)
            .arg("--arm")
            .arg(name(arm.to_possible_value().context("arm")?))
            .arg("--workload")
            .arg(name(workload.to_possible_value().context("workload")?))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--write-qps")
            .arg(args.write_qps.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?).lines();
        Ok(ChildArm { child, stdin, stdout })
    }

    async fn line(&mut self) -> anyhow::Result<String> {
        self.stdout.next_line().await?.context("the arm exited")
    }

    async fn send(&mut self, line: &str) -> anyhow::Result<()> {
        self.stdin.write_all(format!("{line}\n").as_bytes()).await?;
        Ok(self.stdin.flush().await?)
    }
}

/// Waits for `f` to hold, polling, for at most `timeout`.
async fn until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while !f() {
        anyhow::ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// Runs `arm` on a copy of `seeded`: initial sync, latency phase, resync.
pub async fn run_arm(seeded: &Seeded, arm: Arm, args: &Args, latency_seconds: u64) -> anyhow::Result<Row> {
    let case = seeded.case.clone();
    let timeout = Duration::from_secs(args.timeout_seconds);
    let data = args.tempdir()?;
    copy_dir(seeded.dir.path(), data.path())?;
    let server = ApiServer::start(server_config(data.path())).await?;
    let client = client(&server).await?;
    let kubeconfig: PathBuf = data.path().join("bench-kubeconfig");
    std::fs::write(&kubeconfig, server.kubeconfig())?;

    let seen = Arc::new(Mutex::new(Seen {
        target: case.children,
        ..Seen::default()
    }));
    let (ready, watching) = tokio::sync::oneshot::channel();
    let watch = watch_children(client.clone(), case.workload, seen.clone(), ready);
    let _ = tokio::time::timeout(timeout, watching).await?;
    let before = write_requests(&client).await?;

    // Initial sync.
    let spawned = Instant::now();
    let mut child = ChildArm::spawn(arm, case.workload, &kubeconfig, args).await?;
    seen.lock().expect("seen").pid = child.child.id();
    anyhow::ensure!(child.line().await? == "started", "the arm did not start");
    until(timeout, "the initial sync", || {
        seen.lock().expect("seen").reached.is_some()
    })
    .await?;
    let (first, cpu_first) = seen.lock().expect("seen").first.expect("a first write");
    let (reached, _) = seen.lock().expect("seen").reached.expect("reached");
    let pid = child.child.id().context("the arm runs")?;
    let after_sync = settle(&client, pid, timeout).await?;
    // CPU until the arm is idle again: the reconciles its own writes trigger are part of the sync.
    let cpu = proc::cpu(pid)
        .zip(cpu_first)
        .map(|(b, a)| b.saturating_sub(a))
        .unwrap_or_default();
    let rss_after_sync = proc::rss(pid).unwrap_or(0);
    let sync_time = reached.saturating_duration_since(first);

    // Latency: steady changes that each make the arm write.
    let changes = latency_phase(&client, &case, &seen, args.change_rate, latency_seconds).await?;
    let _ = until(Duration::from_secs(10), "the last change's write", || {
        seen.lock().expect("seen").latencies.len() >= changes
    })
    .await;
    let after_latency = settle(&client, pid, timeout).await?;
    let mut latencies = std::mem::take(&mut seen.lock().expect("seen").latencies);
    latencies.sort_unstable();

    // Full resync of unchanged objects.
    child.send("resync").await?;
    let answer = tokio::time::timeout(timeout, child.line()).await??;
    let mut words = answer.split_whitespace().skip(1);
    let resync_objects: usize = words.next().context("resync count")?.parse()?;
    let resync_ms: u64 = words.next().context("resync time")?.parse()?;
    let after_resync = settle(&client, pid, timeout).await?;

    child.send("quit").await?;
    if tokio::time::timeout(Duration::from_secs(10), child.child.wait())
        .await
        .is_err()
    {
        child.child.start_kill()?;
    }
    watch.abort();
    server.shutdown().await;
    let n = case.n;
    Ok(Row {
        case,
        arm,
        startup: first.saturating_duration_since(spawned),
        sync_rate: n as f64 / sync_time.as_secs_f64().max(1e-6),
        cpu_per_object: cpu / n as u32,
        latency_p50: percentile(&latencies, 0.50),
        latency_p99: percentile(&latencies, 0.99),
        latency_missed: changes.saturating_sub(latencies.len()),
        changes,
        writes_sync: after_sync - before,
        writes_latency: (after_latency - after_sync).saturating_sub(changes as u64),
        writes_resync: after_resync - after_latency,
        rss_after_sync,
        resync_objects,
        resync_time: Duration::from_millis(resync_ms),
    })
}

/// `rate` changes per second for `seconds`, each making the arm write: pdb-guard, Deployments
/// scaled to 1 (budget deleted) then back to 2 (budget created); the replicator, a source's data
/// changed (its three copies updated). Returns how many changes were made.
async fn latency_phase(
    client: &kube::Client,
    case: &Case,
    seen: &Arc<Mutex<Seen>>,
    rate: u32,
    seconds: u64,
) -> anyhow::Result<usize> {
    let total = (u64::from(rate) * seconds) as usize;
    let (changes, distinct) = match case.workload {
        Workload::Pdb => {
            let half = (total / 2).min(case.n);
            (half * 2, half)
        }
        Workload::Fanout => (total.min(case.n), total.min(case.n)),
    };
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
    let mut tasks = Vec::with_capacity(changes);
    for j in 0..changes {
        tick.tick().await;
        let i = j % distinct.max(1);
        let (name, need, delete, patch) = match case.workload {
            Workload::Pdb => {
                let down = j < distinct;
                let replicas = if down { 1 } else { 2 };
                (
                    objects::deployment_name(i),
                    1,
                    down,
                    serde_json::json!({"spec": {"replicas": replicas}}),
                )
            }
            Workload::Fanout => {
                let data = objects::source(i, j + 1)["data"].clone();
                (
                    objects::source_name(i),
                    FANOUT_TARGETS.len(),
                    false,
                    serde_json::json!({"data": data}),
                )
            }
        };
        seen.lock().expect("seen").pending.insert(
            name.clone(),
            Pending {
                ack: None,
                done: None,
                seen: 0,
                need,
                delete,
            },
        );
        let (client, seen, workload) = (client.clone(), seen.clone(), case.workload);
        tasks.push(tokio::spawn(async move {
            let params = PatchParams::default();
            let result = match workload {
                Workload::Pdb => Api::<Deployment>::namespaced(client, NAMESPACE)
                    .patch(&name, &params, &Patch::Merge(&patch))
                    .await
                    .map(|_| ()),
                Workload::Fanout => Api::<ConfigMap>::namespaced(client, NAMESPACE)
                    .patch(&name, &params, &Patch::Merge(&patch))
                    .await
                    .map(|_| ()),
            };
            match result {
                Ok(()) => seen.lock().expect("seen").acked(&name, Instant::now()),
                Err(e) => eprintln!("latency phase: patching {name}: {e}"),
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    Ok(changes)
}
