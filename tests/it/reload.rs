//! Drop-in plugins: a host watching a plugin directory while files are copied in, replaced,
//! corrupted, swapped ConfigMap-style and removed — against the embedded API server. The host runs
//! in-process (the `wasmop` library); one test runs the `wasmop run` and `wasmop plugins` binary.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use wasmop::{PluginStatus, State};

use crate::support::{
    TestServer, apply_yaml, eventually, host_args, settle, spawn_wasmop, status_get, wasmop,
};

/// A host started in-process on a test server, as `wasmop run` starts it, watching `plugins` with
/// its compile cache in `cache`.
struct RunningHost {
    host: wasmop::Host,
}

impl RunningHost {
    async fn start(t: &TestServer, plugins: &Path, cache: &Path) -> RunningHost {
        let mut args = host_args();
        args.cache.cache_dir = Some(cache.to_path_buf());
        let mut host = wasmop::Host::start(t.client.clone(), &args, plugins)
            .await
            .expect("host starts");
        host.watch().await;
        RunningHost { host }
    }

    /// The plugin table, as `GET /plugins` serves it.
    async fn plugins(&self) -> Vec<PluginStatus> {
        self.host.manager().status().await
    }

    async fn stop(self) {
        self.host.stop().await;
    }
}

fn stamp(version: u32) -> PathBuf {
    wasmop_example_plugins::plugin_path(&format!("stamp-v{version}"))
}

/// Replaces `dest` atomically, as deploy tools do (write aside, then rename).
fn install(src: &Path, dest: &Path) {
    let tmp = dest.with_extension("tmp");
    std::fs::copy(src, &tmp).unwrap();
    std::fs::rename(&tmp, dest).unwrap();
}

async fn stamped(cms: &Api<ConfigMap>, names: &[String], version: &str) -> Option<()> {
    for n in names {
        let c = cms.get_opt(n).await.ok()??;
        if c.metadata
            .annotations?
            .get("stamp.wasmop.io/version")
            .map(String::as_str)
            != Some(version)
        {
            return None;
        }
    }
    Some(())
}

async fn labelled(t: &TestServer, name: &str) {
    apply_yaml(&t.client, &format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: default, labels: {{stamp: 'yes'}}}}\n")).await;
}

#[tokio::test]
async fn plugins_come_swap_survive_bad_files_and_go() {
    let t = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let host = RunningHost::start(&t, dir.path(), cache.path()).await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let names: Vec<String> = (0..5).map(|i| format!("s{i}")).collect();
    for n in &names {
        labelled(&t, n).await;
    }

    // Copy a plugin in: its objects are reconciled.
    install(&stamp(1), &dir.path().join("stamp.wasm"));
    eventually(60, "every object stamped v1", || stamped(&cms, &names, "v1")).await;
    let listed = host.plugins().await;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].name.as_deref(),
            listed[0].version.as_deref(),
            listed[0].state
        ),
        (Some("stamp"), Some("1.0.0"), State::Running)
    );

    // The status endpoint serves the same list, and Prometheus metrics count what the plugin did.
    let addr = host.host.status_addr();
    let served: Vec<PluginStatus> =
        serde_json::from_str(&status_get(addr, "/plugins").await).expect("plugin list");
    assert_eq!(served, host.plugins().await);
    let metrics = status_get(addr, "/metrics").await;
    assert!(
        metrics.contains("wasmop_plugin_up{plugin=\"stamp\",version=\"1.0.0\"} 1"),
        "{metrics}"
    );
    let reconciles = metrics
        .lines()
        .find_map(|l| l.strip_prefix("wasmop_reconciles_total{plugin=\"stamp\",outcome=\"success\"} "))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("{metrics}"));
    assert!(reconciles >= names.len() as u64, "{metrics}");

    // Replace it with a version that behaves differently: every object converges, each reconciled
    // exactly once by the new version (one patch each, no more, no fewer).
    let before = settle(&t.server, Duration::from_millis(500), Duration::from_secs(30)).await;
    install(&stamp(2), &dir.path().join("stamp.wasm"));
    eventually(60, "every object stamped v2", || stamped(&cms, &names, "v2")).await;
    let after = settle(&t.server, Duration::from_millis(800), Duration::from_secs(30)).await;
    assert_eq!(
        after - before,
        names.len() as u64,
        "one write per object by the new version"
    );
    eventually(10, "the status to show 2.0.0", || async {
        let l = host.plugins().await;
        (l[0].version.as_deref() == Some("2.0.0")).then_some(())
    })
    .await;

    // A corrupt file over the good one: reported, and the running version keeps reconciling.
    std::fs::write(dir.path().join("stamp.wasm"), b"\0asm garbage, not a component").unwrap();
    let failed = eventually(30, "the error in the status", || async {
        host.plugins().await[0].last_error.clone()
    })
    .await;
    assert!(
        failed.contains("stamp.wasm"),
        "the error names the file: {failed}"
    );
    assert_eq!(host.plugins().await[0].state, State::Running);
    labelled(&t, "late").await;
    let late = vec!["late".to_string()];
    eventually(30, "the old version still reconciling", || {
        stamped(&cms, &late, "v2")
    })
    .await;

    // Delete the file: the plugin stops.
    std::fs::remove_file(dir.path().join("stamp.wasm")).unwrap();
    eventually(30, "the plugin to be gone", || async {
        host.plugins().await.is_empty().then_some(())
    })
    .await;
    assert!(host.host.engine().plugins().await.is_empty());
    labelled(&t, "after-removal").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let c = cms.get("after-removal").await.unwrap();
    let annotations = c.metadata.annotations.unwrap_or_default();
    assert!(
        !annotations.contains_key("stamp.wasmop.io/version"),
        "nothing reconciles any more"
    );
    host.stop().await;
    t.server.shutdown().await;
}

/// The binary: `wasmop run` against a cluster's kubeconfig loads the directory, and `wasmop
/// plugins` prints its table.
#[tokio::test]
async fn wasmop_run_and_wasmop_plugins() {
    let t = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    install(&stamp(1), &dir.path().join("stamp.wasm"));
    let mut command = wasmop();
    command
        .args([
            "run",
            "--status-addr",
            "127.0.0.1:0",
            "--backoff-base",
            "50ms",
            "--plugins",
        ])
        .arg(dir.path())
        .arg("--cache-dir")
        .arg(cache.path())
        .env("KUBECONFIG", t.server.kubeconfig_path())
        .env("WASMOP_LOG", "info");
    let (mut child, status) = spawn_wasmop(&mut command, "plugin status: wasmop plugins --status-addr ");
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    labelled(&t, "by-the-binary").await;
    let names = vec!["by-the-binary".to_string()];
    eventually(60, "stamped by the binary's host", || stamped(&cms, &names, "v1")).await;
    let row = eventually(30, "a running row in `wasmop plugins`", || async {
        let out = wasmop()
            .args(["plugins", "--status-addr", &status])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let table = String::from_utf8(out.stdout).unwrap();
        assert!(table.starts_with("FILE "), "{table}");
        table
            .lines()
            .find(|l| l.starts_with("stamp.wasm") && l.contains(" running "))
            .map(String::from)
    })
    .await;
    assert!(row.contains("stamp") && row.contains("1.0.0"), "{row}");
    let _ = child.kill();
    let _ = child.wait();
    t.server.shutdown().await;
}

/// A plugin whose primary kind is not served yet (its CRD comes later) is `starting`, with the
/// reason, until the CRD is in; then it runs and reconciles.
#[tokio::test]
async fn a_plugin_is_starting_until_its_kinds_are_served() {
    let t = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    install(
        &wasmop_example_plugins::plugin_path("database-operator"),
        &dir.path().join("database-operator.wasm"),
    );
    let host = RunningHost::start(&t, dir.path(), cache.path()).await;
    // (Its other kinds' caches may be syncing first; the missing kind is what it then waits for.)
    let listed = eventually(30, "starting, waiting for the Database kind", || async {
        let l = host.plugins().await;
        (l.len() == 1
            && l[0].state == State::Starting
            && l[0].reason.as_deref().is_some_and(|r| r.contains("Database")))
        .then_some(l)
    })
    .await;
    let reason = listed[0].reason.clone().unwrap_or_default();
    let table = wasmop::plugins::status::table(&listed);
    assert!(table.contains(" starting ") && table.contains(&reason), "{table}");

    wasmop::apply_manifests(&t.client, &wasmop_example_plugins::crds_dir(), "test")
        .await
        .unwrap();
    eventually(30, "the plugin running", || async {
        let l = host.plugins().await;
        (l[0].state == State::Running && l[0].reason.is_none()).then_some(())
    })
    .await;
    apply_yaml(&t.client, "apiVersion: example.com/v1\nkind: Database\nmetadata: {name: late, namespace: default}\nspec: {replicas: 1, image: 'postgres:16', storage: 1Gi}\n").await;
    let sts: Api<k8s_openapi::api::apps::v1::StatefulSet> = Api::namespaced(t.client.clone(), "default");
    eventually(30, "the StatefulSet", || async {
        sts.get_opt("late").await.unwrap()
    })
    .await;
    host.stop().await;
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_configmap_style_symlink_swap_reloads() {
    let t = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The layout kubelet gives a mounted ConfigMap: files are links through `..data`.
    std::fs::create_dir(d.join("..v1")).unwrap();
    std::fs::copy(stamp(1), d.join("..v1/stamp.wasm")).unwrap();
    std::os::unix::fs::symlink("..v1", d.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/stamp.wasm", d.join("stamp.wasm")).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let host = RunningHost::start(&t, d, cache.path()).await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let names = vec!["mounted".to_string()];
    labelled(&t, "mounted").await;
    eventually(60, "stamped by v1", || stamped(&cms, &names, "v1")).await;
    // kubelet's update: a new directory, a new `..data` link renamed over the old one.
    std::fs::create_dir(d.join("..v2")).unwrap();
    std::fs::copy(stamp(2), d.join("..v2/stamp.wasm")).unwrap();
    std::os::unix::fs::symlink("..v2", d.join("..data_tmp")).unwrap();
    std::fs::rename(d.join("..data_tmp"), d.join("..data")).unwrap();
    eventually(60, "stamped by v2 after the swap", || stamped(&cms, &names, "v2")).await;
    host.stop().await;
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_restart_with_a_warm_cache_does_not_compile() {
    let t = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    install(&stamp(1), &dir.path().join("stamp.wasm"));
    let first = RunningHost::start(&t, dir.path(), cache.path()).await;
    let cold = eventually(60, "the plugin running", || async {
        let l = first.plugins().await;
        (l.first()?.state == State::Running).then(|| l[0].clone())
    })
    .await;
    assert!(!cold.from_cache, "the first start compiles");
    first.stop().await;
    let second = RunningHost::start(&t, dir.path(), cache.path()).await;
    let warm = eventually(60, "the plugin running again", || async {
        let l = second.plugins().await;
        (l.first()?.state == State::Running).then(|| l[0].clone())
    })
    .await;
    assert!(warm.from_cache, "the restart loads the compiled artifact");
    // Idle, the directory is not read again: reading the plugin files is not a change of it.
    let syncs = second.host.manager().syncs();
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(
        second.host.manager().syncs(),
        syncs,
        "an idle host keeps reading its directory"
    );
    second.stop().await;
    t.server.shutdown().await;
}

#[tokio::test]
async fn changing_settings_reloads_that_plugin_with_its_config() {
    let t = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let cache = tempfile::tempdir().unwrap();
    install(&stamp(1), &dir.path().join("stamp.wasm"));
    let host = RunningHost::start(&t, dir.path(), cache.path()).await;
    eventually(60, "the plugin running", || async {
        let l = host.plugins().await;
        (l.first()?.state == State::Running).then_some(())
    })
    .await;
    // A bad settings file is reported and changes nothing.
    std::fs::write(dir.path().join("stamp.toml"), "no_such_setting = 1\n").unwrap();
    let error = eventually(30, "the settings error", || async {
        host.plugins().await[0].last_error.clone()
    })
    .await;
    assert!(
        error.contains("stamp.toml") && error.contains("no_such_setting"),
        "{error}"
    );
    assert_eq!(host.plugins().await[0].state, State::Running);
    // A good one reloads the plugin (same version, new settings) and clears the error.
    std::fs::write(
        dir.path().join("stamp.toml"),
        "deadline_ms = 1500\nmax_concurrent_reconciles = 2\n[config]\ngreeting = 'hi'\n",
    )
    .unwrap();
    eventually(30, "the reload with the new settings", || async {
        let l = host.plugins().await;
        (l[0].state == State::Running && l[0].last_error.is_none()).then_some(())
    })
    .await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    labelled(&t, "with-settings").await;
    let names = vec!["with-settings".to_string()];
    eventually(30, "still reconciling", || stamped(&cms, &names, "v1")).await;
    host.stop().await;
    t.server.shutdown().await;
}
