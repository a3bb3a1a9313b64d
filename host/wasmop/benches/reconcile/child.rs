//! The child process: one arm against one API server, driven by the parent over stdin/stdout.
//!
//! It prints `started` once its controller runs, then answers each `resync` line with `resynced N
//! MS` (N objects reconciled again, in MS milliseconds) and exits on `quit` or end of input. Its CPU
//! time and memory are the parent's measurements of the arm alone.
//!
//! The wasmop arms build the engine and the runtime as `wasmop run` does (`Host::start`: the
//! production defaults of every flag, read through the same clap arguments), except for the write
//! rate limit (`--write-qps` of the benchmark).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use tokio::io::{AsyncBufReadExt, BufReader};
use wasmop_contract::Reconciler;
use wasmop_engine::{Engine, PluginSettings, RateLimitConfig, StatsSnapshot};
use wasmop_runtime::{Runtime, RuntimeConfig};

use crate::cli::{Args, Arm, Workload};
use crate::kube_arm;

/// `wasmop run`'s host flags at their defaults (and `WASMOP_*` variables, as in production).
#[derive(Debug, Parser)]
struct Production {
    #[command(flatten)]
    host: wasmop::HostArgs,
}

/// What the protocol needs from an arm.
pub trait Resync: Send + Sync {
    /// Reconciles every object again; returns how many once all are done.
    fn resync(&self) -> futures::future::BoxFuture<'_, anyhow::Result<usize>>;

    /// The arm's own counters, one line.
    fn summary(&self) -> futures::future::BoxFuture<'_, String>;
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let arm = args.arm.context("--arm")?;
    let workload = args.workload.context("--workload")?;
    let path = args.kubeconfig.as_ref().context("--kubeconfig")?;
    let client = wasmop::client_from_kubeconfig(&std::fs::read_to_string(path)?).await?;
    let resync: Box<dyn Resync> = match arm {
        Arm::Wasm | Arm::Native => Box::new(start_engine(client, arm, workload, args.write_qps).await?),
        Arm::Kube => kube_arm::start(client, workload).await?,
    };
    println!("started");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "resync" => {
                let started = Instant::now();
                let n = resync.resync().await?;
                println!("resynced {n} {}", started.elapsed().as_millis());
            }
            "quit" => {
                // For whoever reads the run's log: what the arm did (failures, retries, skips).
                eprintln!("{}: {}", arm.label(), resync.summary().await);
                break;
            }
            other => anyhow::bail!("unknown command {other:?}"),
        }
    }
    Ok(())
}

/// The wasm or native-plugin arm: the engine with the plugin registered through `Reconciler`.
struct EngineArm {
    engine: Arc<Engine>,
    name: String,
}

fn done(s: &StatsSnapshot) -> u64 {
    s.reconciles + s.unchanged + s.parked
}

async fn start_engine(
    client: kube::Client,
    arm: Arm,
    workload: Workload,
    write_qps: f64,
) -> anyhow::Result<EngineArm> {
    let production = Production::parse_from(["wasmop"]);
    let mut config = production.host.engine.config();
    config.rate_limit = if write_qps > 0.0 {
        RateLimitConfig {
            qps: write_qps,
            burst: config.rate_limit.burst,
        }
    } else {
        RateLimitConfig {
            qps: 1e9,
            burst: u32::MAX,
        }
    };
    let engine = Arc::new(Engine::new(client, config));
    let plugin: Arc<dyn Reconciler> = match (arm, workload) {
        (Arm::Wasm, _) => {
            let runtime = Runtime::new(RuntimeConfig {
                cache_dir: production.host.cache.dir(),
                ..RuntimeConfig::default()
            })?;
            let path = wasmop_example_plugins::plugin_path(workload.plugin());
            Arc::new(runtime.load(&path, production.host.limits.limits())?)
        }
        (_, Workload::Pdb) => Arc::new(wasmop_sdk::native::Native::<pdb_guard::PdbGuard>::new()?),
        (_, Workload::Fanout) => {
            Arc::new(wasmop_sdk::native::Native::<configmap_replicator::Replicator>::new()?)
        }
    };
    let name = plugin.metadata().name.clone();
    engine.upsert_plugin(plugin, PluginSettings::default()).await?;
    engine.wait_running(&name, Duration::from_secs(120)).await;
    Ok(EngineArm { engine, name })
}

impl Resync for EngineArm {
    fn summary(&self) -> futures::future::BoxFuture<'_, String> {
        Box::pin(async move { format!("{:?}", self.engine.stats(&self.name).await) })
    }

    fn resync(&self) -> futures::future::BoxFuture<'_, anyhow::Result<usize>> {
        Box::pin(async move {
            let stats = || async { self.engine.stats(&self.name).await.context("the plugin runs") };
            let before = done(&stats().await?);
            let n = self.engine.resync(&self.name).await?;
            while done(&stats().await?) < before + n as u64 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Ok(n)
        })
    }
}
