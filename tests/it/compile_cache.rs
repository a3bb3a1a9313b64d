//! The compile cache as a user meets it: `wasmop compile` fills a cache directory that a host then
//! loads from without compiling; a tampered artifact is rejected, recompiled and counted in the
//! host's metrics; a cache directory someone else could write is refused (by `wasmop compile` with an
//! error naming it; by a host, which runs on compiling every plugin). Real plugins, the real binary,
//! the embedded API server.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use wasmop::{PluginStatus, State};

use crate::support::{TestServer, eventually, host_args, status_get, wasmop};

fn stamp() -> PathBuf {
    wasmop_example_plugins::plugin_path("stamp-v1")
}

/// `wasmop compile -o cache PLUGINS...`: (success, stdout, stderr).
fn compile(cache: &Path, plugins: &[&Path]) -> (bool, String, String) {
    let out = wasmop()
        .arg("compile")
        .arg("-o")
        .arg(cache)
        .args(plugins)
        .env_remove("WASMOP_CACHE_DIR")
        .output()
        .expect("wasmop runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The artifacts (`*.cwasm`) in a cache directory.
fn artifacts(cache: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect()
}

/// A host (in-process, as `wasmop run` starts it) with `stamp.wasm` in its plugin directory and
/// `cache` as its compile cache: the plugin's status once it runs, and the host's metrics then.
async fn host_with(t: &TestServer, cache: &Path) -> (PluginStatus, String) {
    let plugins = tempfile::tempdir().unwrap();
    std::fs::copy(stamp(), plugins.path().join("stamp.wasm")).unwrap();
    let mut args = host_args();
    args.cache.cache_dir = Some(cache.to_path_buf());
    let mut host = wasmop::Host::start(t.client.clone(), &args, plugins.path())
        .await
        .expect("host starts");
    host.watch().await;
    let status = eventually(60, "the plugin running", || async {
        let l = host.manager().status().await;
        (l.first()?.state == State::Running).then(|| l[0].clone())
    })
    .await;
    let metrics = status_get(host.status_addr(), "/metrics").await;
    host.stop().await;
    (status, metrics)
}

/// The value of a metric without labels, if present.
fn metric(metrics: &str, name: &str) -> Option<u64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test]
async fn wasmop_compile_output_loads_without_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let (ok, out, err) = compile(&cache, &[&stamp()]);
    assert!(ok, "{out}\n{err}");
    assert!(out.contains("stamp 1.0.0: compiled in "), "{out}");
    let made = artifacts(&cache);
    assert_eq!(made.len(), 1, "one artifact: {out}");
    assert!(out.contains(&made[0].display().to_string()), "{out}");
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o700
    );
    assert_eq!(
        std::fs::metadata(cache.join("key")).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Again: nothing to do.
    let (ok, out, _) = compile(&cache, &[&stamp()]);
    assert!(ok && out.contains("stamp 1.0.0: already in the cache"), "{out}");

    let t = TestServer::start().await;
    let (status, metrics) = host_with(&t, &cache).await;
    assert!(status.from_cache, "the host loaded the precompiled artifact");
    assert_eq!(
        metric(&metrics, "wasmop_plugin_compile_cache_hits_total"),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "wasmop_plugin_compile_cache_misses_total"),
        Some(0),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "wasmop_plugin_compile_cache_rejected_total"),
        Some(0),
        "{metrics}"
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_tampered_artifact_is_not_loaded_but_recompiled_rewritten_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    assert!(compile(&cache, &[&stamp()]).0);
    let artifact = artifacts(&cache).remove(0);
    let good = std::fs::read(&artifact).unwrap();
    // One byte of the native code changed, as an attacker patching a jump would.
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    std::fs::write(&artifact, &bad).unwrap();

    let t = TestServer::start().await;
    let (status, metrics) = host_with(&t, &cache).await;
    assert!(!status.from_cache, "the tampered artifact was not loaded");
    assert_eq!(
        metric(&metrics, "wasmop_plugin_compile_cache_rejected_total"),
        Some(1),
        "{metrics}"
    );
    assert_eq!(
        metric(&metrics, "wasmop_plugin_compile_cache_hits_total"),
        Some(0),
        "{metrics}"
    );
    let rewritten = std::fs::read(&artifact).unwrap();
    assert_ne!(rewritten, bad, "the artifact was rewritten");
    // A truncated artifact is ignored the same way; the next host loads the rewritten one.
    std::fs::write(&artifact, &rewritten[..rewritten.len() / 3]).unwrap();
    let (status, metrics) = host_with(&t, &cache).await;
    assert!(!status.from_cache);
    assert_eq!(
        metric(&metrics, "wasmop_plugin_compile_cache_rejected_total"),
        Some(1),
        "{metrics}"
    );
    let (status, _) = host_with(&t, &cache).await;
    assert!(status.from_cache, "the rewritten artifact loads");
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_cache_directory_others_can_write_is_refused_and_the_host_compiles_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("shared");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    let (ok, out, err) = compile(&cache, &[&stamp()]);
    assert!(!ok, "{out}");
    assert!(
        err.contains(&format!(
            "{}: refused as the compile cache: mode 0777",
            cache.display()
        )),
        "{err}"
    );

    let t = TestServer::start().await;
    let (status, metrics) = host_with(&t, &cache).await;
    assert_eq!(status.state, State::Running, "the host runs without the cache");
    assert!(!status.from_cache);
    assert_eq!(
        std::fs::read_dir(&cache).unwrap().count(),
        0,
        "nothing read from or written to the refused directory"
    );
    assert!(
        !metrics.contains("compile_cache"),
        "no cache, no cache metrics: {metrics}"
    );
    t.server.shutdown().await;

    // Owned by another user (as if they had created it first): refused too.
    if !is_root() {
        println!("skipped the owned-by-another-user case: changing a directory's owner needs root");
        return;
    }
    let planted = dir.path().join("planted");
    std::fs::create_dir(&planted).unwrap();
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&planted, Some(65534), Some(65534)).unwrap();
    let (ok, _, err) = compile(&planted, &[&stamp()]);
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "{}: refused as the compile cache: owned by uid 65534",
            planted.display()
        )),
        "{err}"
    );
}

fn is_root() -> bool {
    // The tests run as root in CI; the owner of a file we create says who we are.
    let probe = tempfile::NamedTempFile::new().unwrap();
    std::os::unix::fs::MetadataExt::uid(&probe.as_file().metadata().unwrap()) == 0
}

#[test]
fn a_host_compiles_only_in_a_child_process_and_refuses_when_it_cannot() {
    let cache = tempfile::tempdir().unwrap();
    let runtime = |compiler: &str| {
        wasmop_runtime::Runtime::new(wasmop_runtime::RuntimeConfig {
            cache_dir: Some(cache.path().into()),
            compiler: Some(compiler.into()),
            ..Default::default()
        })
        .unwrap()
    };
    let limits = wasmop_runtime::PluginLimits::default;
    // `wasmop run` compiles with `wasmop compile`: the artifact it writes is loaded, and the load
    // counts as compiled, not as a cache hit.
    let rt = runtime(env!("CARGO_BIN_EXE_wasmop"));
    let plugin = rt.load(stamp(), limits()).unwrap();
    assert_eq!(plugin.metadata().name, "stamp");
    assert_eq!(rt.child_compiles(), 1);
    assert_eq!(rt.cache_stats(), Some((0, 1)));
    assert_eq!(artifacts(cache.path()).len(), 1);
    let names: Vec<_> = std::fs::read_dir(cache.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "the key and the artifact, no copy of the plugin left: {names:?}"
    );
    // A component that does not compile: the child's error, as compiling here would give it.
    let broken = tempfile::tempdir().unwrap();
    let bad = broken.path().join("bad.wasm");
    // The component header, then nothing a component may hold.
    std::fs::write(&bad, b"\0asm\x0d\0\x01\0\xff\xff").unwrap();
    let err = rt.load(&bad, limits()).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("{}: the component does not compile: ", bad.display())),
        "{err}"
    );
    // A compiler that fails or is missing: the plugin is refused, saying so; it is not compiled
    // in this process, where nothing would bound the compile.
    for (compiler, says) in [
        (
            "/bin/false",
            "the compiler process /bin/false failed (exit status: 1)",
        ),
        (
            "/nonexistent/wasmop",
            "cannot run the compiler process /nonexistent/wasmop: ",
        ),
    ] {
        let other = tempfile::tempdir().unwrap();
        let rt = wasmop_runtime::Runtime::new(wasmop_runtime::RuntimeConfig {
            cache_dir: Some(other.path().into()),
            compiler: Some(compiler.into()),
            ..Default::default()
        })
        .unwrap();
        let err = rt.load(stamp(), limits()).unwrap_err().to_string();
        assert!(
            err.starts_with(&format!(
                "{}: not compiled (the host compiles only in a child process, within limits): ",
                stamp().display()
            )) && err.contains(says),
            "{compiler}: {err}"
        );
        assert_eq!(rt.child_compiles(), 0, "{compiler}");
        assert!(artifacts(other.path()).is_empty(), "{compiler}: nothing compiled");
    }
}
