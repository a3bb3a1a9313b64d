//! Running a plugin natively on YAML fixtures, the way `wasmop test PLUGIN.wasm` runs the component
//! (feature `testing`).
//!
//! A fixture is a pair of files in one directory:
//!
//! * a reconcile: `<case>.snapshot.yaml`, a [`Snapshot`] (object, children, lookups, reason,
//!   attempt, config), and `<case>.expected.yaml`, the [`Desired`] the plugin should answer;
//! * a map: `<case>.trigger.yaml`, a [`MapFixture`] (the trigger's `lookup`, `object` and `deleted`,
//!   and the `cache` the plugin reads), and `<case>.expected.yaml`, the list of [`ObjectKey`]s.
//!
//! The expected files are written as `wasmop test` prints its answer (camelCase YAML). While the
//! plugin runs, its [`cache`](crate::cache) reads are answered as in `wasmop test`: from the
//! snapshot's own objects ([`SnapshotCache`]), or a map fixture's `cache`.
//!
//! ```ignore
//! #[test]
//! fn golden() {
//!     wasmop_sdk::testing::check_fixtures::<MyPlugin>(concat!(env!("CARGO_MANIFEST_DIR"), "/tests"));
//! }
//! ```
//!
//! Set `WASMOP_BLESS=1` to (re)write the expected files from what the plugin answers.

use std::path::Path;
use std::sync::Arc;

use wasmop_contract::{CacheReader, ReconcileFailure};
pub use wasmop_contract::{MapFixture, SnapshotCache};

use crate::cache::native;
use crate::{Desired, ObjectKey, Plugin, Snapshot, export};

/// Runs `f` with `cache` answering the plugin's [`cache`](crate::cache) reads on this thread: for
/// unit tests of code that reads the cache.
pub fn with_cache<R>(cache: impl CacheReader + 'static, f: impl FnOnce() -> R) -> R {
    native::with_cache(Arc::new(cache), f)
}

/// One reconcile, as the host would get it, with the snapshot's objects in the cache.
pub fn reconcile<P: Plugin>(snapshot: &Snapshot) -> Result<Desired, ReconcileFailure> {
    with_cache(SnapshotCache::new(snapshot), || {
        export::reconcile::<P>(snapshot.clone())
    })
    .map_err(ReconcileFailure::from)
}

/// One `map` call, as the host would get it, with the fixture's cache.
pub fn map<P: Plugin>(fixture: &MapFixture) -> Result<Vec<ObjectKey>, ReconcileFailure> {
    with_cache(fixture.cache(), || P::map(fixture.trigger.clone())).map_err(ReconcileFailure::from)
}

/// Runs one `<case>.snapshot.yaml` text and prints the answer as `<case>.expected.yaml` holds it.
pub fn run_yaml<P: Plugin>(snapshot_yaml: &str) -> Result<String, String> {
    let snapshot: Snapshot =
        serde_yaml::from_str(snapshot_yaml).map_err(|e| format!("invalid snapshot: {e}"))?;
    let desired = reconcile::<P>(&snapshot).map_err(|e| e.to_string())?;
    serde_yaml::to_string(&desired).map_err(|e| e.to_string())
}

/// Runs one `<case>.trigger.yaml` text and prints the keys as `<case>.expected.yaml` holds them.
pub fn run_map_yaml<P: Plugin>(trigger_yaml: &str) -> Result<String, String> {
    let fixture: MapFixture =
        serde_yaml::from_str(trigger_yaml).map_err(|e| format!("invalid trigger: {e}"))?;
    let keys = map::<P>(&fixture).map_err(|e| e.to_string())?;
    serde_yaml::to_string(&keys).map_err(|e| e.to_string())
}

/// Runs one fixture's text and prints the answer.
type Runner = fn(&str) -> Result<String, String>;

/// Checks every `<case>.snapshot.yaml` and `<case>.trigger.yaml` in `dir` against its
/// `<case>.expected.yaml` (compared as data, not text), and panics listing every mismatch. With
/// `WASMOP_BLESS=1` in the environment it writes the expected files instead.
pub fn check_fixtures<P: Plugin>(dir: impl AsRef<Path>) {
    let dir = dir.as_ref();
    let bless = std::env::var_os("WASMOP_BLESS").is_some_and(|v| v == "1");
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let name = p.file_name()?.to_string_lossy().into_owned();
            let (case, run): (_, Runner) = if let Some(case) = name.strip_suffix(".snapshot.yaml") {
                (case.to_string(), run_yaml::<P>)
            } else if let Some(case) = name.strip_suffix(".trigger.yaml") {
                (case.to_string(), run_map_yaml::<P>)
            } else {
                return None;
            };
            Some((p, case, run))
        })
        .collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(
        !entries.is_empty(),
        "no *.snapshot.yaml or *.trigger.yaml in {}",
        dir.display()
    );
    let mut failures = Vec::new();
    for (input, case, run) in entries {
        let expected_path = dir.join(format!("{case}.expected.yaml"));
        let text = std::fs::read_to_string(&input).expect("read the fixture");
        let got = match run(&text) {
            Ok(got) => got,
            Err(e) => {
                failures.push(format!("{case}: {e}"));
                continue;
            }
        };
        if bless {
            std::fs::write(&expected_path, &got).expect("write expected");
            continue;
        }
        let Ok(want) = std::fs::read_to_string(&expected_path) else {
            failures.push(format!(
                "{case}: {} is missing; it would be:\n{got}",
                expected_path.display()
            ));
            continue;
        };
        let want_value: serde_yaml::Value = serde_yaml::from_str(&want).expect("parse expected");
        let got_value: serde_yaml::Value = serde_yaml::from_str(&got).expect("parse answer");
        if want_value != got_value {
            failures.push(format!(
                "{case}: the answer differs from {}:\n{got}",
                expected_path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
