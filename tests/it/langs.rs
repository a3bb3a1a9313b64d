//! Plugins written in other languages than Rust (Python, JavaScript/TypeScript), built with the
//! real `wasmop build` once per test run and cached by the hash of their inputs under
//! `target/wasmop-lang-plugins/`, with the toolchains in `target/wasmop-toolchains/` (what CI
//! caches): a warm run does not build at all. Also the golden check of a component on the fixture
//! files of a directory, in-process with a compile cache (`wasmop test` does the same per file).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use sha2::{Digest, Sha256};

/// The checkout's root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The shared target directory.
pub fn target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Where `wasmop build` installs toolchains during tests.
pub fn toolchains() -> PathBuf {
    target().join("wasmop-toolchains")
}

/// What a build depends on besides the project: the SDK of its language and the contract.
fn sdk_of(project: &Path) -> Vec<PathBuf> {
    let root = root();
    let mut out = vec![root.join("wit/reconciler.wit")];
    if project.join("pyproject.toml").is_file() {
        out.push(root.join("guest-sdk/python/wasmop_sdk"));
        out.push(root.join("host/wasmop/src/scaffold/python.rs"));
    } else if project.join("package.json").is_file() {
        out.push(root.join("guest-sdk/js"));
        out.push(root.join("host/wasmop/src/scaffold/js.rs"));
    }
    out
}

/// Files that are build outputs or installed dependencies, not inputs.
fn skipped(name: &str) -> bool {
    matches!(
        name,
        "node_modules" | ".wasmop-build" | "__pycache__" | "target" | "dist" | "tests" | ".git"
    ) || name.ends_with(".wasm")
}

fn hash_tree(hash: &mut Sha256, path: &Path) {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !skipped(&p.file_name().unwrap_or_default().to_string_lossy()))
            .collect();
        entries.sort();
        for entry in entries {
            hash_tree(hash, &entry);
        }
    } else if path.is_file() {
        hash.update(path.to_string_lossy().as_bytes());
        hash.update([0]);
        hash.update(std::fs::read(path).unwrap_or_default());
        hash.update([0]);
    }
}

/// The hash of a project's build inputs (its files, its language's SDK, the contract).
pub fn input_hash(project: &Path) -> String {
    let mut hash = Sha256::new();
    hash_tree(&mut hash, project);
    for sdk in sdk_of(project) {
        hash_tree(&mut hash, &sdk);
    }
    hash.finalize()
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The built component of the project in `example-plugins/<lang>/<name>` (or any directory given
/// relative to the checkout), built with `wasmop build` unless a build of the same inputs exists.
/// One build per project at a time in this process; across processes the last rename wins.
pub fn built(project: &str) -> PathBuf {
    static LOCKS: OnceLock<Mutex<std::collections::HashMap<String, Arc<Mutex<()>>>>> = OnceLock::new();
    let lock = LOCKS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(project.to_string())
        .or_default()
        .clone();
    let _guard = lock.lock().unwrap_or_else(|e| e.into_inner());
    let dir = root().join(project);
    let name = project.replace('/', "-");
    let out_dir = target().join("wasmop-lang-plugins");
    let out = out_dir.join(format!("{name}-{}.wasm", input_hash(&dir)));
    if out.is_file() {
        return out;
    }
    std::fs::create_dir_all(&out_dir).unwrap();
    let partial = out_dir.join(format!("{name}.{}.partial.wasm", std::process::id()));
    let started = std::time::Instant::now();
    let result = crate::support::wasmop()
        .args(["build", "--toolchains"])
        .arg(toolchains())
        .arg(&dir)
        .arg("-o")
        .arg(&partial)
        .env("WASMOP_LOG", "warn")
        .output()
        .expect("wasmop build runs");
    assert!(
        result.status.success(),
        "wasmop build {project} failed:\n{}{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
    eprintln!("built {project} in {:?}", started.elapsed());
    std::fs::rename(&partial, &out).unwrap();
    // Older builds of this project are stale: keep target/ from growing with each change.
    for entry in std::fs::read_dir(&out_dir).unwrap().filter_map(Result::ok) {
        let file = entry.file_name().to_string_lossy().into_owned();
        let stale = file
            .strip_prefix(&format!("{name}-"))
            .is_some_and(|rest| rest.len() == "0123456789abcdef.wasm".len());
        if stale && entry.path() != out {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    out
}

/// A runtime whose compiled plugins persist in `target/` across runs (a component built by
/// componentize-py takes seconds to compile).
pub fn runtime() -> wasmop_runtime::Runtime {
    static RT: OnceLock<wasmop_runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        let cache = target().join("wasmop-lang-compiled");
        std::fs::create_dir_all(&cache).unwrap();
        wasmop_runtime::Runtime::new(wasmop_runtime::RuntimeConfig {
            cache_dir: Some(cache),
            ..Default::default()
        })
        .expect("runtime")
    })
    .clone()
}

/// Runs every `<case>.snapshot.yaml` (a reconcile) and `<case>.trigger.yaml` (a `map` call) of
/// `fixtures` through the component, as `wasmop test` does, and compares the answer with
/// `<case>.expected.yaml` as data. Returns the number of cases; panics listing every mismatch.
pub async fn check_golden(wasm: &Path, fixtures: &Path) -> usize {
    let runtime = runtime();
    let path = wasm.to_path_buf();
    let plugin =
        tokio::task::spawn_blocking(move || runtime.load(&path, wasmop_runtime::PluginLimits::default()))
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("{} loads: {e}", wasm.display()));
    let mut inputs: Vec<PathBuf> = std::fs::read_dir(fixtures)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let p = p.to_string_lossy();
            p.ends_with(".snapshot.yaml") || p.ends_with(".trigger.yaml")
        })
        .collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "no fixtures in {}", fixtures.display());
    let mut failures = Vec::new();
    for input in &inputs {
        let file = input.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(input).unwrap();
        let (case, got) = if let Some(case) = file.strip_suffix(".trigger.yaml") {
            let fixture: wasmop_contract::MapFixture = serde_yaml::from_str(&text).unwrap();
            let keys = plugin.map(&fixture.trigger, Arc::new(fixture.cache())).await;
            (case, keys.map(|k| serde_yaml::to_value(k).unwrap()))
        } else {
            let case = file.trim_end_matches(".snapshot.yaml");
            let snapshot: wasmop_contract::Snapshot = serde_yaml::from_str(&text).unwrap();
            let cache = Arc::new(wasmop_contract::SnapshotCache::new(&snapshot));
            let desired = plugin.reconcile(&snapshot, cache).await;
            (case, desired.map(|d| serde_yaml::to_value(d).unwrap()))
        };
        let expected = input.with_file_name(format!("{case}.expected.yaml"));
        let want: serde_yaml::Value =
            serde_yaml::from_str(&std::fs::read_to_string(&expected).unwrap()).unwrap();
        match got {
            Ok(got) if got == want => {}
            Ok(got) => failures.push(format!(
                "{case}: differs from {}:\n{}",
                expected.display(),
                serde_yaml::to_string(&got).unwrap()
            )),
            Err(e) => failures.push(format!("{case}: failed: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} golden cases of {} failed:\n\n{}",
        failures.len(),
        inputs.len(),
        wasm.display(),
        failures.join("\n\n")
    );
    inputs.len()
}
