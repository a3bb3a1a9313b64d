//! Golden tests of the example plugins as built components, through the real `wasmop test` binary:
//! for every `example-plugins/<plugin>/tests/<case>.snapshot.yaml`, the desired state it prints
//! must equal `<case>.expected.yaml`, and for every `<case>.trigger.yaml` (a `map` call), the keys
//! it prints (compared as data, not text). With `WASMOP_BLESS=1` the expected files are rewritten
//! instead. Also: `wasmop test` failing, `wasmop inspect` and `wasmop crd`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example_plugins() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../example-plugins")
}

fn wasmop(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmop"))
        .args(args)
        .env("WASMOP_LOG", "warn")
        // `wasmop test` keeps compiled plugins in a cache; this binary's own, not the user's.
        .env("WASMOP_CACHE_DIR", compile_cache())
        .output()
        .expect("wasmop runs")
}

/// The compile cache of this test binary's `wasmop test` runs (one per process).
fn compile_cache() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// `(plugin, snapshot or trigger file)` for every fixture, sorted.
fn fixtures() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut plugins: Vec<PathBuf> = std::fs::read_dir(example_plugins())
        .expect("example-plugins/ is readable")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("tests").is_dir() && p.join("Cargo.toml").is_file())
        .collect();
    plugins.sort();
    for dir in plugins {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut snapshots: Vec<PathBuf> = std::fs::read_dir(dir.join("tests"))
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                let p = p.to_string_lossy();
                p.ends_with(".snapshot.yaml") || p.ends_with(".trigger.yaml")
            })
            .collect();
        snapshots.sort();
        out.extend(snapshots.into_iter().map(|s| (name.clone(), s)));
    }
    out
}

/// Runs one fixture (a reconcile, or a `map` call for a `.trigger.yaml`); `Err` describes a
/// mismatch or a failure.
fn check_case(plugin: &str, input: &Path, bless: bool) -> Result<(), String> {
    let file = input.file_name().unwrap().to_string_lossy();
    let (case, flag) = match file.strip_suffix(".trigger.yaml") {
        Some(case) => (case, "--trigger"),
        None => (file.trim_end_matches(".snapshot.yaml"), "--snapshot"),
    };
    let expected_path = input.with_file_name(format!("{case}.expected.yaml"));
    let wasm = wasmop_example_plugins::plugin_path(plugin);
    let out = wasmop(&[
        "test".as_ref(),
        wasm.as_os_str(),
        flag.as_ref(),
        input.as_os_str(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "{plugin}/{case}: wasmop test failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    if bless {
        std::fs::write(&expected_path, stdout.as_bytes()).expect("write the expected file");
        return Ok(());
    }
    let Ok(want) = std::fs::read_to_string(&expected_path) else {
        return Err(format!(
            "{plugin}/{case}: {} is missing; it would be:\n{stdout}",
            expected_path.display()
        ));
    };
    let want: serde_yaml::Value =
        serde_yaml::from_str(&want).map_err(|e| format!("{} is not YAML: {e}", expected_path.display()))?;
    let got: serde_yaml::Value = serde_yaml::from_str(&stdout)
        .map_err(|e| format!("{plugin}/{case}: wasmop test printed no YAML: {e}"))?;
    if want != got {
        return Err(format!(
            "{plugin}/{case}: the answer differs from {}:\n{stdout}",
            expected_path.display()
        ));
    }
    Ok(())
}

#[test]
fn example_plugins_answer_their_golden_files() {
    let bless = std::env::var_os("WASMOP_BLESS").is_some_and(|v| v == "1");
    let fixtures = fixtures();
    assert!(!fixtures.is_empty(), "no example-plugins/*/tests/*.snapshot.yaml");
    assert!(
        fixtures
            .iter()
            .any(|(_, f)| f.to_string_lossy().ends_with(".trigger.yaml")),
        "no map fixture"
    );
    // Each case is one `wasmop test` process (compiling its plugin): run a few at once.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(4);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some((plugin, input)) =
                    fixtures.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
                {
                    if let Err(e) = check_case(plugin, input, bless) {
                        failures.lock().unwrap().push(e);
                    }
                }
            });
        }
    });
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} golden cases failed (WASMOP_BLESS=1 rewrites the expected files):\n\n{}",
        failures.len(),
        fixtures.len(),
        failures.join("\n\n")
    );
}

/// A snapshot of one ConfigMap, in a temporary file.
fn configmap_snapshot(dir: &Path) -> PathBuf {
    let path = dir.join("cm.snapshot.yaml");
    std::fs::write(
        &path,
        "object:\n  apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: demo, namespace: default, generation: 1}\n  data: {a: b}\nreason: change\n",
    )
    .unwrap();
    path
}

#[test]
fn a_failing_reconcile_exits_non_zero_with_the_failure_on_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = configmap_snapshot(dir.path());
    let wasm = wasmop_example_plugins::plugin_path("trap");
    let out = wasmop(&[
        "test".as_ref(),
        wasm.as_os_str(),
        "--snapshot".as_ref(),
        snapshot.as_os_str(),
    ]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("plugin trapped"), "{stderr}");

    let out = wasmop(&[
        "test".as_ref(),
        wasmop_example_plugins::plugin_path("spin").as_os_str(),
        "--snapshot".as_ref(),
        snapshot.as_os_str(),
        "--deadline".as_ref(),
        "300ms".as_ref(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exceeded its deadline of 300ms"), "{stderr}");

    // Not a plugin: the error names the file.
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, "hello").unwrap();
    let out = wasmop(&[
        "test".as_ref(),
        garbage.as_os_str(),
        "--snapshot".as_ref(),
        snapshot.as_os_str(),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: not a WebAssembly file", garbage.display())),
        "{stderr}"
    );
}

#[test]
fn wasmop_test_keeps_compiled_plugins_in_its_cache() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = configmap_snapshot(dir.path());
    let cache = dir.path().join("cache");
    let wasm = wasmop_example_plugins::plugin_path("hello");
    let run = |extra: &[&std::ffi::OsStr]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "test".as_ref(),
            wasm.as_os_str(),
            "--snapshot".as_ref(),
            snapshot.as_os_str(),
        ];
        args.extend_from_slice(extra);
        let out = wasmop(&args);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        out.stdout
    };
    let artifacts = || {
        std::fs::read_dir(&cache)
            .map(|d| {
                d.filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .path()
                        .extension()
                        .is_some_and(|x| x == "cwasm")
                })
                .count()
            })
            .unwrap_or(0)
    };
    let no_cache = run(&["--cache-dir".as_ref(), cache.as_os_str(), "--no-cache".as_ref()]);
    assert_eq!(artifacts(), 0, "--no-cache writes nothing");
    let first = run(&["--cache-dir".as_ref(), cache.as_os_str()]);
    assert_eq!(artifacts(), 1, "the compiled plugin is kept");
    let key = std::fs::read_dir(&cache).unwrap().count();
    let second = run(&["--cache-dir".as_ref(), cache.as_os_str()]);
    assert_eq!(
        (artifacts(), std::fs::read_dir(&cache).unwrap().count()),
        (1, key)
    );
    assert_eq!(first, no_cache);
    assert_eq!(second, first);
}

#[test]
fn inspect_prints_metadata_and_rbac_rules() {
    let wasm = wasmop_example_plugins::plugin_path("hello");
    let out = wasmop(&["inspect".as_ref(), wasm.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).expect("YAML");
    assert_eq!(doc["metadata"]["name"].as_str(), Some("hello"));
    assert_eq!(doc["metadata"]["primary"]["kind"].as_str(), Some("ConfigMap"));
    assert_eq!(doc["contractVersion"].as_str(), Some("0.2.0"));
    assert_eq!(doc["fieldManager"].as_str(), Some("wasmop/hello"));
    assert_eq!(doc["finalizerName"].as_str(), Some("wasmop.io/hello"));
    let rules = doc["rbacRules"].as_sequence().expect("rbacRules");
    assert!(
        rules.iter().any(|r| r["kinds"][0].as_str() == Some("ConfigMap")
            && r["verbs"]
                .as_sequence()
                .unwrap()
                .iter()
                .any(|v| v.as_str() == Some("watch"))),
        "{rules:?}"
    );
}

#[test]
fn inspect_tells_a_0_1_plugin_by_its_contract_version() {
    let old =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/configmap-replicator-0.1.0.wasm");
    let out = wasmop(&["inspect".as_ref(), old.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: serde_yaml::Value = serde_yaml::from_slice(&out.stdout).expect("YAML");
    assert_eq!(doc["contractVersion"].as_str(), Some("0.1.0"));
    assert_eq!(
        doc["finalizerName"].as_str(),
        Some("wasmop.io/configmap-replicator")
    );
}

#[test]
fn crd_prints_the_declared_crds_and_names_a_plugin_without_any() {
    let db = wasmop_example_plugins::plugin_path("database-operator");
    let out = wasmop(&["crd".as_ref(), db.as_os_str()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("---\n"), "{stdout}");
    let printed: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&stdout)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .collect();
    let crd_yaml = example_plugins().join("database-operator/crd.yaml");
    let on_disk: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(crd_yaml).unwrap()).unwrap();
    assert_eq!(printed, vec![on_disk], "wasmop crd prints crd.yaml");

    let hello = wasmop_example_plugins::plugin_path("hello");
    let out = wasmop(&["crd".as_ref(), db.as_os_str(), hello.as_os_str()]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "nothing printed on error");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: the plugin hello declares no CRDs", hello.display())),
        "{stderr}"
    );
}
