//! The runtime against the real test plugins (built by `wasmop-example-plugins`): a reconcile that
//! works, and every way a guest can fail — trap, endless loop, unbounded allocation — contained
//! and reported, with the plugin still usable afterwards; files that are not plugins; and the
//! on-disk compile cache.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use wasmop_contract::{
    CacheReader, EmptyCache, EventType, Gvk, ObjectKey, ReconcileFailure, Reconciler, Snapshot,
    SnapshotCache, Trigger,
};
use wasmop_example_plugins::plugin_path;
use wasmop_runtime::{LoadError, Plugin, PluginLimits, Runtime};

fn load(name: &str, limits: PluginLimits) -> Plugin {
    Runtime::shared()
        .expect("runtime")
        .load(plugin_path(name), limits)
        .unwrap_or_else(|e| panic!("{name} loads: {e}"))
}

fn configmap(name: &str) -> Snapshot {
    serde_json::from_value(json!({
        "object": {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "default", "generation": 1},
            "data": {"a": "1", "b": "2"},
        },
        "reason": "change",
    }))
    .unwrap()
}

fn empty() -> Arc<dyn CacheReader> {
    Arc::new(EmptyCache)
}

#[tokio::test]
async fn hello_reconciles() {
    let hello = load("hello", PluginLimits::default());
    assert_eq!(hello.metadata().name, "hello");
    assert_eq!(hello.metadata().primary, Gvk::new("", "v1", "ConfigMap"));
    // Through the engine's trait object, as the engine calls it.
    let plugin: Arc<dyn Reconciler> = Arc::new(hello);
    let desired = plugin.reconcile(configmap("demo"), empty()).await.unwrap();
    assert_eq!(desired.events.len(), 1);
    assert_eq!(desired.events[0].event_type, EventType::Normal);
    assert_eq!(desired.events[0].reason, "Greeted");
    assert_eq!(desired.events[0].message, "Hello, demo! You hold 2 keys.");
}

#[tokio::test]
async fn a_trap_is_a_failure_and_the_plugin_stays_usable() {
    let trap = load("trap", PluginLimits::default());
    for _ in 0..3 {
        match trap.reconcile(&configmap("boom"), empty()).await {
            Err(ReconcileFailure::Trap(message)) => {
                // The guest's panic message travels with the trap.
                assert!(
                    message.contains("deliberate panic while reconciling boom"),
                    "{message}"
                );
            }
            other => panic!("expected a trap, got {other:?}"),
        }
    }
    // A malformed snapshot object is the guest's problem too, not the host's.
    let hello = load("hello", PluginLimits::default());
    let mut odd = configmap("odd");
    odd.object = json!("not an object");
    assert!(hello.reconcile(&odd, empty()).await.is_err());
    assert!(hello.reconcile(&configmap("fine"), empty()).await.is_ok());
}

#[tokio::test]
async fn an_endless_loop_times_out_near_the_deadline() {
    let deadline = Duration::from_millis(300);
    let spin = load(
        "spin",
        PluginLimits {
            deadline,
            ..PluginLimits::default()
        },
    );
    let start = Instant::now();
    let result = spin.reconcile(&configmap("x"), empty()).await;
    let took = start.elapsed();
    assert_eq!(result.unwrap_err(), ReconcileFailure::Timeout(deadline));
    assert!(took >= deadline, "{took:?}");
    assert!(took < deadline + Duration::from_millis(700), "{took:?}");
    // And again: every reconcile gets a fresh deadline.
    let result = spin.reconcile(&configmap("x"), empty()).await;
    assert_eq!(result.unwrap_err(), ReconcileFailure::Timeout(deadline));
}

/// A spinning guest yields to the executor at every epoch tick, so it never holds a worker:
/// on a single-threaded runtime another plugin's reconcile still completes meanwhile.
#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_does_not_block_the_executor() {
    let spin = load(
        "spin",
        PluginLimits {
            deadline: Duration::from_secs(2),
            ..PluginLimits::default()
        },
    );
    let hello = load("hello", PluginLimits::default());
    let snapshot = configmap("x");
    let start = Instant::now();
    let spinning = spin.reconcile(&snapshot, empty());
    let quick = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let r = hello.reconcile(&configmap("y"), empty()).await;
        (r, start.elapsed())
    };
    let (spun, (greeted, greeted_at)) = tokio::join!(spinning, quick);
    assert!(matches!(spun, Err(ReconcileFailure::Timeout(_))));
    assert!(greeted.is_ok());
    assert!(
        greeted_at < Duration::from_secs(1),
        "hello finished after {greeted_at:?}"
    );
}

#[tokio::test]
async fn unbounded_allocation_hits_the_memory_cap() {
    let cap = 32 << 20;
    let hog = load(
        "hog",
        PluginLimits {
            memory_bytes: cap,
            ..PluginLimits::default()
        },
    );
    assert_eq!(hog.memory_high_water(), 0);
    for _ in 0..2 {
        assert_eq!(
            hog.reconcile(&configmap("x"), empty()).await.unwrap_err(),
            ReconcileFailure::OutOfMemory(cap)
        );
    }
    // Its high-water mark: up against the cap (1 MiB blocks), never past it.
    let high = hog.memory_high_water();
    assert!(
        high > cap - (4 << 20) && high <= cap,
        "high-water mark {high} with a cap of {cap}"
    );
    // The same compiled plugin with a cap too small even to instantiate.
    let tiny = hog.clone().with_limits(PluginLimits {
        memory_bytes: 64 << 10,
        ..PluginLimits::default()
    });
    assert_eq!(
        tiny.reconcile(&configmap("x"), empty()).await.unwrap_err(),
        ReconcileFailure::OutOfMemory(64 << 10)
    );
    assert_eq!(tiny.memory_high_water(), high, "clones share the mark");
}

#[tokio::test]
async fn reconciles_run_concurrently_in_separate_instances() {
    let hello = Arc::new(load("hello", PluginLimits::default()));
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let hello = hello.clone();
            tokio::spawn(async move { hello.reconcile(&configmap(&format!("cm-{i}")), empty()).await })
        })
        .collect();
    for (i, t) in tasks.into_iter().enumerate() {
        let desired = t.await.unwrap().unwrap();
        assert_eq!(
            desired.events[0].message,
            format!("Hello, cm-{i}! You hold 2 keys.")
        );
    }
}

/// A 0.2 plugin's `map`, through the engine's trait object: the replicator names the sources (read
/// from the cache) whose annotation lists the namespace that changed; its reconcile asks for the
/// finalizer on annotated ConfigMaps only.
#[tokio::test]
async fn a_0_2_plugin_maps_triggers_and_asks_for_its_finalizer_per_object() {
    let replicator = load("configmap-replicator", PluginLimits::default());
    assert_eq!(replicator.contract_version(), "0.2.0");
    assert!(replicator.metadata().has_triggers());
    let source = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "demo",
                     "annotations": {"wasmop.io/replicate-to": "ns-a"}},
    });
    let plain =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain", "namespace": "demo"}});
    let cache: Arc<dyn CacheReader> = Arc::new(SnapshotCache::from_objects([source.clone(), plain.clone()]));
    let plugin: Arc<dyn Reconciler> = Arc::new(replicator.clone());
    let namespace = |name: &str| Trigger {
        lookup: 0,
        object: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}),
        deleted: false,
    };
    let keys = plugin.map(namespace("ns-a"), cache.clone()).await.unwrap();
    assert_eq!(keys, vec![ObjectKey::new(Some("demo"), "settings")]);
    let keys = plugin.map(namespace("ns-b"), cache.clone()).await.unwrap();
    assert!(keys.is_empty());

    let snapshot =
        |object: serde_json::Value| Snapshot::new(object).with_reason(wasmop_contract::Reason::Trigger);
    let desired = replicator.reconcile(&snapshot(source), empty()).await.unwrap();
    assert!(desired.finalizer);
    let desired = replicator.reconcile(&snapshot(plain), empty()).await.unwrap();
    assert!(!desired.finalizer);
    assert_eq!(desired, wasmop_contract::Desired::new());
}

fn load_err(path: &Path) -> LoadError {
    Runtime::shared()
        .unwrap()
        .load(path, PluginLimits::default())
        .expect_err("not a plugin")
}

#[test]
fn files_that_are_not_plugins_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.wasm");
    std::fs::write(&garbage, b"#!/bin/sh\necho hello\n").unwrap();
    let err = load_err(&garbage);
    assert!(matches!(err, LoadError::NotWasm { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: not a WebAssembly file", garbage.display()))
    );

    let core = dir.path().join("core.wasm");
    std::fs::write(
        &core,
        wat::parse_str("(module (func (export \"reconcile\")))").unwrap(),
    )
    .unwrap();
    let err = load_err(&core);
    assert!(matches!(err, LoadError::NotComponent { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: a core WebAssembly module", core.display()))
    );

    let other = dir.path().join("other-world.wasm");
    let command = wat::parse_str(
        r#"(component
            (core module $m (func (export "run") (result i32) i32.const 0))
            (core instance $i (instantiate $m))
            (func (export "run") (result u32) (canon lift (core func $i "run"))))"#,
    )
    .unwrap();
    std::fs::write(&other, command).unwrap();
    let err = load_err(&other);
    assert!(matches!(err, LoadError::WrongWorld { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "{}: not a wasmop:reconciler@0.2.0 or @0.1.0 plugin",
            other.display()
        )),
        "{err}"
    );
}

#[test]
fn every_example_and_test_plugin_loads_with_valid_metadata() {
    for name in wasmop_example_plugins::EXAMPLES
        .iter()
        .chain(wasmop_example_plugins::TEST_PLUGINS)
    {
        let plugin = load(name, PluginLimits::default());
        plugin.metadata().validate().unwrap();
        assert_eq!(plugin.file(), plugin_path(name).display().to_string());
    }
}

#[test]
fn compiled_plugins_are_cached_on_disk_and_bad_entries_rebuilt() {
    use wasmop_runtime::RuntimeConfig;
    let dir = tempfile::tempdir().unwrap();
    let runtime = || {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().into()),
            ..Default::default()
        })
        .unwrap()
    };
    let cold = runtime();
    cold.load(plugin_path("hello"), PluginLimits::default()).unwrap();
    assert_eq!(cold.cache_stats(), Some((0, 1)), "the first load compiles");
    // A restart: a new engine with the same configuration finds the artifact.
    let warm = runtime();
    warm.load(plugin_path("hello"), PluginLimits::default()).unwrap();
    assert_eq!(
        warm.cache_stats(),
        Some((1, 0)),
        "the second load does not compile"
    );
    // Corrupt every artifact (not the key): loading still works, by compiling again.
    let mut corrupted = 0;
    for entry in walk(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
    {
        std::fs::write(&entry, b"not a compiled artifact").unwrap();
        corrupted += 1;
    }
    assert!(corrupted > 0, "the cache wrote files");
    let rebuilt = runtime();
    let plugin = rebuilt
        .load(plugin_path("hello"), PluginLimits::default())
        .unwrap();
    assert_eq!(plugin.metadata().name, "hello");
    assert_eq!(
        rebuilt.cache_stats().map(|(_, misses)| misses),
        Some(1),
        "the bad entry was ignored"
    );
    assert_eq!(
        rebuilt.artifact_cache_stats().map(|s| s.rejected),
        Some(1),
        "and counted"
    );
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if !p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        {
            out.push(p);
        }
    }
    out
}
