//! Running a plugin natively on YAML fixtures, the way `wasmop test PLUGIN.wasm --snapshot FILE`
//! runs the component (feature `testing`).
//!
//! A fixture is a pair of files in one directory: `<case>.snapshot.yaml`, a
//! `wasmop_contract::Snapshot` (object, children, lookups, reason, attempt, config), and
//! `<case>.expected.yaml`, the `wasmop_contract::Desired` the plugin should answer, as serde_yaml
//! prints it. The snapshot goes through the same conversions as in the component (JSON text in,
//! JSON text out). One difference: the cache is empty here, while `wasmop test` serves the
//! snapshot's own objects from it, so a plugin that reads the cache may answer differently.
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

use wasmop_contract as contract;

use crate::__bindings::wasmop::reconciler::types as wit;
use crate::{Error, Plugin, export};

/// The plugin's metadata in the host's form.
pub fn metadata<P: Plugin>() -> contract::Metadata {
    let m = export::metadata_to_wit(P::metadata());
    contract::Metadata {
        name: m.name,
        version: m.version,
        primary: gvk(m.primary),
        owns: m.owns.into_iter().map(gvk).collect(),
        lookups: m.lookups.into_iter().map(lookup).collect(),
        writes: m
            .writes
            .into_iter()
            .map(|w| contract::WritePermission {
                kind: gvk(w.kind),
                verbs: w
                    .verbs
                    .into_iter()
                    .map(|v| match v {
                        wit::Verb::Patch => contract::Verb::Patch,
                        wit::Verb::Delete => contract::Verb::Delete,
                    })
                    .collect(),
            })
            .collect(),
        finalizer: m.finalizer,
        namespaces: match m.namespaces {
            wit::NamespaceScope::All => contract::NamespaceScope::All,
            wit::NamespaceScope::Only(l) => contract::NamespaceScope::Only(l),
        },
        resync_seconds: m.resync_seconds,
        max_concurrent_reconciles: m.max_concurrent_reconciles,
    }
}

fn gvk(g: wit::Gvk) -> contract::Gvk {
    contract::Gvk {
        group: g.group,
        version: g.version,
        kind: g.kind,
    }
}

fn gvk_to_wit(g: &contract::Gvk) -> wit::Gvk {
    wit::Gvk {
        group: g.group.clone(),
        version: g.version.clone(),
        kind: g.kind.clone(),
    }
}

fn lookup(l: wit::Lookup) -> contract::Lookup {
    contract::Lookup {
        kind: gvk(l.kind),
        namespace: l.namespace,
        label_selector: l.label_selector,
    }
}

fn object_ref(r: wit::ObjectRef) -> contract::ObjectRef {
    contract::ObjectRef {
        kind: gvk(r.kind),
        namespace: r.namespace,
        name: r.name,
    }
}

fn parse(text: &str) -> Result<serde_json::Value, contract::ReconcileFailure> {
    serde_json::from_str(text).map_err(|e| contract::ReconcileFailure::Invalid(e.to_string()))
}

/// One reconcile of a host-form snapshot, answered in the host's form.
pub fn reconcile<P: Plugin>(
    snapshot: &contract::Snapshot,
) -> Result<contract::Desired, contract::ReconcileFailure> {
    let s = wit::Snapshot {
        object: snapshot.object.to_string(),
        children: snapshot.children.iter().map(|c| c.to_string()).collect(),
        lookups: snapshot
            .lookups
            .iter()
            .map(|l| wit::LookupResult {
                lookup: wit::Lookup {
                    kind: gvk_to_wit(&l.lookup.kind),
                    namespace: l.lookup.namespace.clone(),
                    label_selector: l.lookup.label_selector.clone(),
                },
                objects: l.objects.iter().map(|o| o.to_string()).collect(),
            })
            .collect(),
        reason: match snapshot.reason {
            contract::Reason::Change => wit::Reason::Change,
            contract::Reason::ChildChange => wit::Reason::ChildChange,
            contract::Reason::Resync => wit::Reason::Resync,
            contract::Reason::Retry => wit::Reason::Retry,
            contract::Reason::Deletion => wit::Reason::Deletion,
        },
        attempt: snapshot.attempt,
        config: snapshot.config.to_string(),
    };
    let d = export::reconcile::<P>(s).map_err(|e| match e {
        Error::Retry(m) => contract::ReconcileFailure::Retry(m),
        Error::Permanent(m) => contract::ReconcileFailure::Permanent(m),
    })?;
    Ok(contract::Desired {
        apply: d.apply.iter().map(|a| parse(a)).collect::<Result<_, _>>()?,
        patches: d
            .patches
            .into_iter()
            .map(|p| {
                Ok(contract::Patch {
                    target: object_ref(p.target),
                    patch_type: match p.patch_type {
                        wit::PatchType::Merge => contract::PatchType::Merge,
                        wit::PatchType::Json => contract::PatchType::Json,
                    },
                    body: parse(&p.body)?,
                })
            })
            .collect::<Result<_, _>>()?,
        status: d.status.as_deref().map(parse).transpose()?,
        deletions: d.deletions.into_iter().map(object_ref).collect(),
        events: d
            .events
            .into_iter()
            .map(|e| contract::Event {
                event_type: match e.event_type {
                    wit::EventType::Normal => contract::EventType::Normal,
                    wit::EventType::Warning => contract::EventType::Warning,
                },
                reason: e.reason,
                message: e.message,
                regarding: e.regarding.map(object_ref),
            })
            .collect(),
        requeue_after_seconds: d.requeue_after_seconds,
        finalizer_done: d.finalizer_done,
    })
}

/// Runs one `<case>.snapshot.yaml` text and prints the answer as `<case>.expected.yaml` holds it.
pub fn run_yaml<P: Plugin>(snapshot_yaml: &str) -> Result<String, String> {
    let snapshot: contract::Snapshot =
        serde_yaml::from_str(snapshot_yaml).map_err(|e| format!("invalid snapshot: {e}"))?;
    let desired = reconcile::<P>(&snapshot).map_err(|e| e.to_string())?;
    serde_yaml::to_string(&desired).map_err(|e| e.to_string())
}

/// Checks every `<case>.snapshot.yaml` in `dir` against its `<case>.expected.yaml` (compared as
/// data, not text), and panics listing every mismatch. With `WASMOP_BLESS=1` in the environment it
/// writes the expected files instead.
pub fn check_fixtures<P: Plugin>(dir: impl AsRef<Path>) {
    let dir = dir.as_ref();
    let bless = std::env::var_os("WASMOP_BLESS").is_some_and(|v| v == "1");
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".snapshot.yaml"))
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "no *.snapshot.yaml in {}", dir.display());
    let mut failures = Vec::new();
    for snapshot_path in entries {
        let name = snapshot_path.file_name().unwrap().to_string_lossy().to_string();
        let case = name.trim_end_matches(".snapshot.yaml");
        let expected_path = dir.join(format!("{case}.expected.yaml"));
        let text = std::fs::read_to_string(&snapshot_path).expect("read snapshot");
        let got = match run_yaml::<P>(&text) {
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
