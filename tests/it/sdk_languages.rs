//! The example plugins written in Python (`example-plugins/python/`) and TypeScript
//! (`example-plugins/js/`), built with `wasmop build`, behave as the Rust ones: they answer the Rust
//! examples' golden files (the same files, not copies; in-process as `wasmop test` runs them, with a
//! compile cache — `tests/it/scaffold.rs` runs the `wasmop test` binary itself), and loaded from a plugin directory by a host
//! on the embedded API server they converge the scenarios of `engine_examples` — and a Python
//! plugin is replaced in place by the TypeScript one of the same name.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use serde_json::json;
use wasmop_engine::PluginSettings;

use crate::langs::{built, check_golden, root};
use crate::support::{Host, apply_yaml, eventually, settle};

async fn gone<K>(api: &Api<K>, name: &str) -> Option<()>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.unwrap().is_none().then_some(())
}

/// Builds two projects at once (each build is mostly one process).
fn built_pair(a: &'static str, b: &'static str) -> (PathBuf, PathBuf) {
    std::thread::scope(|s| {
        let a = s.spawn(|| built(a));
        let b = s.spawn(|| built(b));
        (a.join().unwrap(), b.join().unwrap())
    })
}

async fn golden(lang: &'static str, pdb: &'static str, replicator: &'static str) {
    let (pdb, replicator) = built_pair(pdb, replicator);
    let fixtures = root().join("example-plugins");
    let n = check_golden(&pdb, &fixtures.join("pdb-guard/tests")).await
        + check_golden(&replicator, &fixtures.join("configmap-replicator/tests")).await;
    assert!(n >= 9, "{lang}: only {n} golden cases");
}

#[tokio::test]
async fn python_examples_answer_the_rust_golden_files() {
    golden(
        "python",
        "example-plugins/python/pdb-guard",
        "example-plugins/python/configmap-replicator",
    )
    .await;
}

#[tokio::test]
async fn js_examples_answer_the_rust_golden_files() {
    golden(
        "js",
        "example-plugins/js/pdb-guard",
        "example-plugins/js/configmap-replicator",
    )
    .await;
}

fn deployment(replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: default}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: nginx}}]}}\n"
    )
}

/// Copies `wasm` into the host's plugin directory as `pdb-guard.wasm` (replacing what is there,
/// atomically) and waits until the host runs exactly that component.
async fn install_pdb_guard(h: &Host, wasm: &Path) {
    let dest = h.plugins.path().join("pdb-guard.wasm");
    let tmp = dest.with_extension("tmp");
    std::fs::copy(wasm, &tmp).unwrap();
    std::fs::rename(&tmp, &dest).unwrap();
    h.host.sync().await;
    let bytes = std::fs::read(wasm).unwrap();
    let hash: String = {
        use sha2::Digest;
        sha2::Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    eventually(60, "the host to run the new pdb-guard", || async {
        let status = h.host.manager().status().await;
        let s = status.iter().find(|s| s.file.ends_with("pdb-guard.wasm"))?;
        assert_ne!(s.state, wasmop::State::Failed, "{:?}", s.last_error);
        (s.state == wasmop::State::Running && hash.starts_with(s.hash.as_deref()?)).then_some(())
    })
    .await;
}

/// The Rust pdb-guard's scenario (`engine_examples::pdb_guard_follows_replicas_and_goes_quiet`):
/// a PDB for 3 replicas, no writes in steady state over resyncs, none for 1 replica; then, when
/// `replacement` is given, that plugin takes over in place and follows the next scale-up.
async fn pdb_guard_scenario(wasm: &Path, replacement: Option<&Path>) {
    let h = Host::start().await;
    let resync = Duration::from_secs(2);
    std::fs::write(
        h.plugins.path().join("pdb-guard.toml"),
        format!("resync_seconds = {}\n", resync.as_secs()),
    )
    .unwrap();
    install_pdb_guard(&h, wasm).await;
    let client = h.t.client.clone();
    apply_yaml(&client, &deployment(3)).await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let pdb = eventually(30, "the PDB", || async { pdbs.get_opt("web").await.unwrap() }).await;
    let spec = pdb.spec.unwrap();
    let selector = spec.selector.unwrap().match_labels.unwrap();
    assert_eq!(selector.get("app").map(String::as_str), Some("web"));
    assert_eq!(
        spec.max_unavailable,
        Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(1))
    );
    let owner = &pdb.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("Deployment", Some(true))
    );

    // Converged: over two resync periods nothing is written (the answer is stable).
    let before = settle(&h.t.server, Duration::from_secs(1), Duration::from_secs(30)).await;
    tokio::time::sleep(resync * 2 + Duration::from_millis(500)).await;
    assert_eq!(h.t.server.write_count(), before, "no writes in steady state");

    // Scaling below two removes the PDB.
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let scale = |replicas: u32| {
        let deploys = deploys.clone();
        async move {
            deploys
                .patch(
                    "web",
                    &PatchParams::default(),
                    &Patch::Merge(json!({"spec": {"replicas": replicas}})),
                )
                .await
                .unwrap();
        }
    };
    scale(1).await;
    eventually(30, "the PDB to go", || async { gone(&pdbs, "web").await }).await;

    if let Some(replacement) = replacement {
        install_pdb_guard(&h, replacement).await;
        scale(4).await;
        eventually(30, "the replacement's PDB", || async {
            pdbs.get_opt("web").await.unwrap()
        })
        .await;
        let status = h.host.manager().status().await;
        assert_eq!(status.len(), 1, "one plugin, replaced in place: {status:?}");
        assert_eq!(status[0].name.as_deref(), Some("pdb-guard"));
    }
    h.stop().await;
}

/// The Rust replicator's scenario (`engine_examples::configmap_replicator_syncs_and_prunes`), and
/// a namespace created after the source (the triggering lookup and `map`).
async fn replicator_scenario(wasm: &Path) {
    let h = Host::start().await;
    h.plugin_file(wasm, PluginSettings::default()).await;
    let client = h.t.client.clone();
    apply_yaml(&client, "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns-b}\n").await;
    apply_yaml(
        &client,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared, namespace: default, annotations: {wasmop.io/replicate-to: 'ns-a,ns-b,ns-c'}}\ndata: {color: blue}\n",
    )
    .await;
    let a: Api<ConfigMap> = Api::namespaced(client.clone(), "ns-a");
    let b: Api<ConfigMap> = Api::namespaced(client.clone(), "ns-b");
    let c: Api<ConfigMap> = Api::namespaced(client.clone(), "ns-c");
    for api in [&a, &b] {
        eventually(30, "a copy", || async {
            let c = api.get_opt("shared").await.unwrap()?;
            (c.data?.get("color").map(String::as_str) == Some("blue")).then_some(())
        })
        .await;
    }
    let copy = a.get("shared").await.unwrap();
    assert_eq!(
        copy.metadata
            .annotations
            .unwrap()
            .get("wasmop.io/replica-of")
            .map(String::as_str),
        Some("default/shared")
    );
    // A namespace that appears later gets its copy (map, from the Namespace lookup).
    apply_yaml(
        &client,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-c}\n",
    )
    .await;
    eventually(30, "the ns-c copy", || async {
        c.get_opt("shared").await.unwrap()
    })
    .await;
    // Kept in sync.
    let src: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    src.patch(
        "shared",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"color": "green"}})),
    )
    .await
    .unwrap();
    for api in [&a, &b, &c] {
        eventually(30, "the copy to follow", || async {
            let c = api.get_opt("shared").await.unwrap()?;
            (c.data?.get("color").map(String::as_str) == Some("green")).then_some(())
        })
        .await;
    }
    // A namespace leaving the list loses its copy.
    src.patch(
        "shared",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"wasmop.io/replicate-to": "ns-a"}}})),
    )
    .await
    .unwrap();
    eventually(30, "the ns-b and ns-c copies to go", || async {
        gone(&b, "shared").await?;
        gone(&c, "shared").await
    })
    .await;
    assert!(a.get_opt("shared").await.unwrap().is_some());
    // Deleting the source removes the copies (the finalizer), then the source goes.
    src.delete("shared", &DeleteParams::default()).await.unwrap();
    eventually(30, "the ns-a copy to go", || async { gone(&a, "shared").await }).await;
    eventually(30, "the source to go", || async { gone(&src, "shared").await }).await;
    h.stop().await;
}

#[tokio::test]
async fn python_pdb_guard_converges_like_the_rust_one() {
    let wasm = built("example-plugins/python/pdb-guard");
    pdb_guard_scenario(&wasm, None).await;
}

#[tokio::test]
async fn python_replicator_converges_like_the_rust_one() {
    let wasm = built("example-plugins/python/configmap-replicator");
    replicator_scenario(&wasm).await;
}

#[tokio::test]
async fn js_replicator_converges_like_the_rust_one() {
    let wasm = built("example-plugins/js/configmap-replicator");
    replicator_scenario(&wasm).await;
}

#[tokio::test]
async fn a_python_plugin_is_replaced_in_place_by_the_typescript_one() {
    let (python, js) = built_pair("example-plugins/python/pdb-guard", "example-plugins/js/pdb-guard");
    pdb_guard_scenario(&python, Some(&js)).await;
}

/// The figures of `docs/plugins.md` (ignored: it builds, compiles and loads each language's
/// pdb-guard several times; run with `cargo test --release -p wasmop --test it --
/// --ignored --nocapture sdk_languages::language_costs`): component size, `wasmop build` time
/// (toolchain installed), compile time, warm load from the compile cache, and one reconcile with
/// a fresh instance (median of 200, `create` fixture), with wasmtime's on-demand allocator and with
/// the default, the plugin's own instance pool (whose sizing is printed too).
#[tokio::test]
#[ignore = "measurement; its figures are in docs/plugins.md"]
async fn language_costs() {
    use std::time::Instant;
    let fixture = root().join("example-plugins/pdb-guard/tests/create.snapshot.yaml");
    let snapshot: wasmop_contract::Snapshot =
        serde_yaml::from_str(&std::fs::read_to_string(&fixture).unwrap()).unwrap();
    let mut rows = Vec::new();
    for (lang, project) in [
        ("Rust", None),
        ("Python", Some("example-plugins/python/pdb-guard")),
        ("TypeScript", Some("example-plugins/js/pdb-guard")),
    ] {
        let (wasm, build) = match project {
            None => (wasmop_example_plugins::plugin_path("pdb-guard"), None),
            Some(project) => {
                let out = tempfile::tempdir().unwrap();
                let wasm = out.path().join("p.wasm");
                let started = Instant::now();
                let status = crate::support::wasmop()
                    .arg("build")
                    .arg(root().join(project))
                    .arg("--toolchains")
                    .arg(crate::langs::toolchains())
                    .arg("-o")
                    .arg(&wasm)
                    .env("WASMOP_LOG", "warn")
                    .status()
                    .unwrap();
                assert!(status.success());
                let elapsed = started.elapsed();
                let kept = crate::langs::target().join(format!("wasmop-costs-{lang}.wasm"));
                std::fs::copy(&wasm, &kept).unwrap();
                (kept, Some(elapsed))
            }
        };
        let size = std::fs::metadata(&wasm).unwrap().len();
        let limits = wasmop_runtime::PluginLimits::default();
        let cold = wasmop_runtime::Runtime::new(wasmop_runtime::RuntimeConfig::default()).unwrap();
        let started = Instant::now();
        cold.load(&wasm, limits).unwrap();
        let compile = started.elapsed();
        let compiled = tempfile::tempdir().unwrap();
        let warm = wasmop_runtime::Runtime::new(wasmop_runtime::RuntimeConfig {
            cache_dir: Some(compiled.path().join("c")),
            instances_per_plugin: 0,
            ..Default::default()
        })
        .unwrap();
        warm.load(&wasm, limits).unwrap();
        let started = Instant::now();
        let plugin = warm.load(&wasm, limits).unwrap();
        let warm_load = started.elapsed();
        let cache = std::sync::Arc::new(wasmop_contract::SnapshotCache::new(&snapshot));
        for _ in 0..20 {
            plugin.reconcile(&snapshot, cache.clone()).await.unwrap();
        }
        let mut calls = Vec::new();
        for _ in 0..200 {
            let started = Instant::now();
            plugin.reconcile(&snapshot, cache.clone()).await.unwrap();
            calls.push(started.elapsed());
        }
        calls.sort();
        // The same with the default: the plugin's own pool.
        let pooled = wasmop_runtime::Runtime::new(wasmop_runtime::RuntimeConfig {
            cache_dir: Some(compiled.path().join("c")),
            ..Default::default()
        })
        .unwrap();
        let pooled_call = match pooled.load(&wasm, limits) {
            Ok(plugin) => {
                let pool = plugin.instance_pool().expect("pooled by default");
                let f = pool.footprint;
                println!(
                    "{lang}: {} slots of {} core instances, {} memories ({} KiB initial), {} tables ({} elements initial)",
                    pool.slots,
                    f.core_instances,
                    f.memories,
                    f.initial_memory_bytes >> 10,
                    f.tables,
                    f.initial_table_elements
                );
                let mut pooled_calls = Vec::new();
                for i in 0..220 {
                    let started = Instant::now();
                    plugin.reconcile(&snapshot, cache.clone()).await.unwrap();
                    if i >= 20 {
                        pooled_calls.push(started.elapsed());
                    }
                }
                pooled_calls.sort();
                format!(
                    "{:.2} ms",
                    pooled_calls[pooled_calls.len() / 2].as_secs_f64() * 1e3
                )
            }
            Err(e) => format!("does not load: {e}"),
        };
        rows.push(format!(
            "| {lang} | {:.1} MB | {} | {:.2} s | {:.0} ms | {:.2} ms | {pooled_call} |",
            size as f64 / 1e6,
            build.map_or("cargo".to_string(), |b| format!("{:.1} s", b.as_secs_f64())),
            compile.as_secs_f64(),
            warm_load.as_secs_f64() * 1e3,
            calls[calls.len() / 2].as_secs_f64() * 1e3,
        ));
    }
    println!(
        "| Language | Component | `wasmop build` | Compile | Warm load | Reconcile, fresh instance, on-demand allocator (median) | The same, the plugin's own pool (default) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        println!("{row}");
    }
}
