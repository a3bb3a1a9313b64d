//! The side-by-side reconcile benchmark (`cargo bench -p wasmop --bench reconcile`): per workload,
//! three arms in one run — wasmop with the example plugin compiled to WebAssembly (`wasm`), the
//! same engine with the same plugin source compiled natively (`native-plugin`: what the WebAssembly
//! boundary costs), and an idiomatic kube-runtime `Controller` with the same behaviour
//! (`kube-runtime`: what a Rust user writes instead).
//!
//! Each arm runs as a child process (this binary, re-executed with `--arm`) against its own
//! embedded API server in the parent, so its CPU time and memory are its own; the parent seeds the
//! objects before the arm starts and measures through its own watch: initial-sync throughput (from
//! the arm's first write to its last, so start-up is apart), CPU per object, event→write latency
//! under steady changes, write requests sent, RSS, and a full resync of unchanged objects. The
//! table goes to stdout and, with `--write-docs`, to `docs/performance.md`; `--check` runs the quick
//! mode and fails on the CI regression bounds (`.ci/bench-guard`).

#[path = "reconcile/cachemem.rs"]
mod cachemem;
#[path = "reconcile/child.rs"]
mod child;
#[path = "reconcile/cli.rs"]
mod cli;
#[path = "reconcile/kube_arm.rs"]
mod kube_arm;
#[path = "reconcile/objects.rs"]
mod objects;
#[path = "reconcile/parent.rs"]
mod parent;
#[path = "reconcile/proc.rs"]
mod proc;
#[path = "reconcile/report.rs"]
mod report;

use std::time::Instant;

use clap::Parser;

use cli::{Args, Workload};
use parent::Case;

/// Counts the bytes a cache keeps (only while `cachemem` measures).
#[global_allocator]
static ALLOCATOR: cachemem::Counting = cachemem::Counting;

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = Args::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    if args.arm.is_some() {
        return runtime.block_on(child::run(&args));
    }
    runtime.block_on(parent_main(args))
}

fn cases(args: &Args, plan: &cli::Plan, workload: Workload) -> Vec<Case> {
    match workload {
        Workload::Pdb => plan
            .sizes
            .iter()
            .flat_map(|size| {
                plan.counts.iter().map(|&n| Case {
                    workload,
                    object_bytes: objects::deployment(0, size.bytes()).to_string().len(),
                    size_label: size.label(),
                    n,
                    children: n,
                })
            })
            .collect(),
        Workload::Fanout => vec![Case {
            workload,
            object_bytes: objects::source(0, 0).to_string().len(),
            size_label: "–",
            n: args.fanout_sources,
            children: args.fanout_sources * objects::FANOUT_TARGETS.len(),
        }],
    }
}

async fn parent_main(args: Args) -> anyhow::Result<()> {
    let plan = args.plan();
    let started = Instant::now();
    let mut rows = Vec::new();
    let mut failures = Vec::new();
    for &workload in &plan.workloads {
        for case in cases(&args, &plan, workload) {
            eprintln!(
                "seeding {} × {} ({} B each)",
                case.n,
                workload.plugin(),
                case.object_bytes
            );
            let seeded = parent::seed(case, &args).await?;
            eprintln!("  seeded at {:.0} creates/s", seeded.seed_rate);
            for &arm in &plan.arms {
                match parent::run_arm(&seeded, arm, &args, plan.latency_seconds).await {
                    Ok(row) => {
                        eprint!(
                            "{}",
                            report::rows_table(std::slice::from_ref(&row))
                                .lines()
                                .last()
                                .unwrap_or_default()
                        );
                        eprintln!();
                        rows.push(row);
                    }
                    Err(e) => {
                        let msg = format!(
                            "{} on {} N={}: {e:#}",
                            arm.label(),
                            workload.plugin(),
                            seeded.case.n
                        );
                        eprintln!("FAILED: {msg}");
                        failures.push(msg);
                    }
                }
            }
        }
    }
    let mut notes = format!(
        "Wall time of the run: {:.0} s. Each arm is a child process with its own embedded API server \
         (HTTPS, its data directory on tmpfs so that its fsync per write is free); objects are seeded \
         before it starts. Initial sync: from the arm's first write seen by the parent's watch to \
         the write completing the last object; CPU: the child's user+system time from that first \
         write until the arm is idle again (no write request for 0.5 s and under 10 % of a core: the \
         reconciles its own writes trigger included) ÷ N. Latency, once the arm is idle: {} \
         changes/s for {} s (pdb-guard: \
         scale to 1, the budget is deleted, then back to 2, it is created; replicator: a source's \
         data changes, latency to its third copy), from the change's acknowledgement to the write \
         seen by the watch. Writes: create/update/patch/delete requests the API server answered \
         during the sync, the latency phase (the parent's own changes not counted) and the resync. \
         Resync: every primary object reconciled again, unchanged (wasmop: `Engine::resync`, done \
         when reconciles + unchanged + parked grew by N; kube-runtime: `reconcile_all_on`). The \
         wasmop arms use `wasmop run`'s defaults except the write rate limit: {}.",
        started.elapsed().as_secs_f64(),
        args.change_rate,
        plan.latency_seconds,
        if args.write_qps > 0.0 {
            format!("{} writes/s", args.write_qps)
        } else {
            "lifted (the production default of 50 writes/s would cap the initial sync at 50 objects/s; kube-runtime has no client-side limit)".into()
        }
    );
    if !failures.is_empty() {
        notes.push_str(&format!("\n\nFailed: {}.", failures.join("; ")));
    }
    let mut text = report::report(&rows, &notes);
    // Exact heap bytes per cached object, for each Deployment size of the run (not in the quick mode).
    if plan.workloads.contains(&Workload::Pdb) && !args.quick && !args.check {
        let mut figures = Vec::new();
        for size in &plan.sizes {
            eprintln!("cache memory: {} Deployments", size.label());
            figures.push(cachemem::measure(size.label(), 2000, size.bytes(), &args).await?);
        }
        text.push_str(&format!(
            "\n### Cache memory per object\n\nHeap bytes each cache keeps per object, counted by the \
             allocator while 2 000 listed Deployments (as the API server serves them) fill it: \
             wasmop's store (`engine/src/object.rs`: metadata parsed, the object once as JSON text, \
             no `managedFields` but the host's own), kube's `DynamicObject` (a `serde_json::Value` \
             tree, what the engine kept before) and a typed `Deployment` (what a kube-runtime \
             reflector keeps).\n\n{}",
            cachemem::table(&figures)
        ));
    }
    println!("{text}");
    if args.write_docs {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/performance.md");
        report::write_docs(&path, &text)?;
        eprintln!("wrote {}", path.display());
    }
    if args.check {
        let problems = report::check(&rows);
        anyhow::ensure!(failures.is_empty(), "arms failed: {}", failures.join("; "));
        anyhow::ensure!(
            problems.is_empty(),
            "regression bounds crossed: {}",
            problems.join("; ")
        );
        eprintln!("bench-guard: within bounds");
    }
    Ok(())
}
