//! The benchmark's command line: what to run (arms, workloads, sizes, object counts), how long the
//! latency phase lasts, whether to write `docs/performance.md` or check the CI bounds; and, for the
//! child processes the benchmark starts, which arm to run against which API server.

use clap::{Parser, ValueEnum};

/// One way of running the reconciler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Arm {
    /// The wasmop engine with the plugin compiled to WebAssembly.
    Wasm,
    /// The wasmop engine with the same plugin source compiled natively (`wasmop_sdk::native`).
    Native,
    /// An idiomatic kube-runtime `Controller` with the same behaviour.
    Kube,
}

impl Arm {
    pub fn label(self) -> &'static str {
        match self {
            Arm::Wasm => "wasm",
            Arm::Native => "native-plugin",
            Arm::Kube => "kube-runtime",
        }
    }
}

/// What the arm reconciles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Workload {
    /// pdb-guard on Deployments (every size and object count), with its latency phase and a
    /// full resync.
    Pdb,
    /// configmap-replicator: every source ConfigMap copied into 3 namespaces.
    Fanout,
}

impl Workload {
    pub fn plugin(self) -> &'static str {
        match self {
            Workload::Pdb => "pdb-guard",
            Workload::Fanout => "configmap-replicator",
        }
    }
}

/// Object sizes of the pdb-guard workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ValueEnum)]
pub enum Size {
    /// About 0.5 KB of JSON per Deployment.
    Small,
    /// About 4 KB of JSON per Deployment.
    Large,
}

impl Size {
    pub fn bytes(self) -> usize {
        match self {
            Size::Small => 512,
            Size::Large => 4096,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Size::Small => "0.5 KB",
            Size::Large => "4 KB",
        }
    }
}

/// Side-by-side reconcile benchmark: wasmop with a WebAssembly plugin, with the same plugin compiled
/// natively, and an idiomatic kube-runtime Controller, each as its own process against its own
/// embedded API server (`cargo bench -p wasmop --bench reconcile`).
#[derive(Debug, Clone, Parser)]
#[command(name = "reconcile")]
pub struct Args {
    /// Small and short: N = 1 000 and 5 000 at 0.5 KB, wasm and native-plugin arms, pdb-guard only,
    /// a 2-second latency phase (for CI).
    #[arg(long, env = "WASMOP_BENCH_QUICK")]
    pub quick: bool,
    /// Run the quick mode and fail when a regression bound is crossed: wasm ÷ native-plugin
    /// initial-sync throughput below 0.5, or wasm CPU per object at 5 000 objects above twice that
    /// at 1 000.
    #[arg(long, env = "WASMOP_BENCH_CHECK")]
    pub check: bool,
    /// Arms to run (default: all three; quick: wasm and native).
    #[arg(long, env = "WASMOP_BENCH_ARMS", value_delimiter = ',')]
    pub arms: Vec<Arm>,
    /// Workloads to run (default: pdb and fanout; quick: pdb).
    #[arg(long, env = "WASMOP_BENCH_WORKLOADS", value_delimiter = ',')]
    pub workloads: Vec<Workload>,
    /// Deployment sizes of the pdb workload (default: small and large; quick: small).
    #[arg(long, env = "WASMOP_BENCH_SIZES", value_delimiter = ',')]
    pub sizes: Vec<Size>,
    /// Object counts of the pdb workload (default: 1000,5000,10000; quick: 1000,5000).
    #[arg(long, env = "WASMOP_BENCH_COUNTS", value_delimiter = ',')]
    pub counts: Vec<usize>,
    /// Source ConfigMaps of the fan-out workload (each copied into 3 namespaces).
    #[arg(long, env = "WASMOP_BENCH_FANOUT_SOURCES", default_value_t = 1000)]
    pub fanout_sources: usize,
    /// Changes per second of the latency phase.
    #[arg(long, env = "WASMOP_BENCH_CHANGE_RATE", default_value_t = 200)]
    pub change_rate: u32,
    /// Seconds of the latency phase (default 5; quick: 2).
    #[arg(long, env = "WASMOP_BENCH_LATENCY_SECONDS")]
    pub latency_seconds: Option<u64>,
    /// The wasmop arms' global write rate limit (writes/s; 0: unlimited). The production default
    /// (`--write-qps` of `wasmop run`) would cap the initial sync at that rate, and a kube-runtime
    /// controller has no client-side limit: unlimited measures the engine itself.
    #[arg(long, env = "WASMOP_BENCH_WRITE_QPS", default_value_t = 0.0)]
    pub write_qps: f64,
    /// Where the API servers' data directories go (default: /dev/shm when present, so that the
    /// servers' fsync per write costs nothing and the arms, not the disk, are measured).
    #[arg(long, env = "WASMOP_BENCH_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Give up on a phase after this many seconds.
    #[arg(long, env = "WASMOP_BENCH_TIMEOUT_SECONDS", default_value_t = 300)]
    pub timeout_seconds: u64,
    /// Write the table into docs/performance.md (between its generated-section markers).
    #[arg(long, env = "WASMOP_BENCH_WRITE_DOCS")]
    pub write_docs: bool,

    /// Child mode: run this arm against `--kubeconfig` and answer the parent on stdin/stdout.
    #[arg(long, hide = true)]
    pub arm: Option<Arm>,
    /// Child mode: the workload's plugin.
    #[arg(long, hide = true)]
    pub workload: Option<Workload>,
    /// Child mode: the kubeconfig of the arm's API server.
    #[arg(long, hide = true)]
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Passed by `cargo bench` to every bench binary; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

/// What one run of the parent measures, after the defaults of `--quick` are applied.
#[derive(Debug, Clone)]
pub struct Plan {
    pub arms: Vec<Arm>,
    pub workloads: Vec<Workload>,
    pub sizes: Vec<Size>,
    pub counts: Vec<usize>,
    pub latency_seconds: u64,
}

impl Args {
    pub fn plan(&self) -> Plan {
        let quick = self.quick || self.check;
        fn or<T: Clone>(quick: bool, given: &[T], quick_default: Vec<T>, full: Vec<T>) -> Vec<T> {
            if !given.is_empty() {
                given.to_vec()
            } else if quick {
                quick_default
            } else {
                full
            }
        }
        let mut counts = if !self.counts.is_empty() {
            self.counts.clone()
        } else if quick {
            vec![1000, 5000]
        } else {
            vec![1000, 5000, 10_000]
        };
        counts.sort_unstable();
        counts.dedup();
        let mut arms = or(
            quick,
            &self.arms,
            vec![Arm::Wasm, Arm::Native],
            vec![Arm::Wasm, Arm::Native, Arm::Kube],
        );
        arms.sort_unstable();
        arms.dedup();
        Plan {
            arms,
            workloads: or(
                quick,
                &self.workloads,
                vec![Workload::Pdb],
                vec![Workload::Pdb, Workload::Fanout],
            ),
            sizes: or(
                quick,
                &self.sizes,
                vec![Size::Small],
                vec![Size::Small, Size::Large],
            ),
            counts,
            latency_seconds: self.latency_seconds.unwrap_or(if quick { 2 } else { 5 }),
        }
    }
}

impl Args {
    /// A fresh directory for one API server's data.
    pub fn tempdir(&self) -> std::io::Result<tempfile::TempDir> {
        let shm = std::path::Path::new("/dev/shm");
        let base = match &self.data_dir {
            Some(d) => d.clone(),
            None if shm.is_dir() => shm.into(),
            None => std::env::temp_dir(),
        };
        tempfile::Builder::new().prefix("wasmop-bench-").tempdir_in(base)
    }
}
