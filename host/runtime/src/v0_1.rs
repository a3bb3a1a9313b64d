//! The 0.1 adapter: plugins built against `wasmop:reconciler@0.1.0` (`wit/v0.1/reconciler.wit`)
//! seen through the current contract. The records both versions share are converted by
//! [`crate::convert::common_conversions!`]; what 0.1 meant differently is mapped here:
//!
//! * `metadata.finalizer: bool` switched the finalizer on for every object; the contract's
//!   `finalizer` is a name (`None`: the default `wasmop.io/<name>`), and holding it is asked per
//!   object. So a 0.1 plugin declaring one answers every reconcile with `finalizer = true`, except a
//!   `deletion` reconcile answered with `finalizer-done`, which releases it (`false`).
//! * 0.1 lookups never trigger reconciles, 0.1 metadata has no CRDs, and a 0.1 plugin has no `map`.
//! * Reason `trigger` does not exist in 0.1: it reaches a 0.1 plugin as `change` (it cannot
//!   happen anyway, having no triggering lookups).

use serde_json::Value;
use wasmop_contract as c;

use crate::bindings::v0_1::types as w;

crate::convert::common_conversions!();

fn lookup_from_wit(l: w::Lookup) -> c::Lookup {
    c::Lookup {
        kind: gvk_from_wit(l.kind),
        namespace: l.namespace,
        label_selector: l.label_selector,
        triggers: false,
    }
}

fn lookup_to_wit(l: &c::Lookup) -> w::Lookup {
    w::Lookup {
        kind: gvk_to_wit(&l.kind),
        namespace: l.namespace.clone(),
        label_selector: l.label_selector.clone(),
    }
}

fn reason_to_wit(r: c::Reason) -> w::Reason {
    match r {
        c::Reason::Change | c::Reason::Trigger => w::Reason::Change,
        c::Reason::ChildChange => w::Reason::ChildChange,
        c::Reason::Resync => w::Reason::Resync,
        c::Reason::Retry => w::Reason::Retry,
        c::Reason::Deletion => w::Reason::Deletion,
    }
}

/// The contract metadata of a 0.1 plugin, and whether it asked for its finalizer on every object.
pub(crate) fn metadata_from_wit(m: w::Metadata) -> (c::Metadata, bool) {
    let finalizer_everywhere = m.finalizer;
    (metadata_from_wit_common(m), finalizer_everywhere)
}

/// A 0.1 answer to a reconcile with `reason`, for a plugin that did (or did not) declare its
/// finalizer for every object.
pub(crate) fn desired_from_wit(
    d: w::Desired,
    reason: c::Reason,
    finalizer_everywhere: bool,
) -> Result<c::Desired, c::ReconcileFailure> {
    let released = reason == c::Reason::Deletion && d.finalizer_done;
    Ok(c::Desired {
        finalizer: finalizer_everywhere && !released,
        ..desired_from_wit_common(d)?
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn desired(finalizer_done: bool) -> w::Desired {
        w::Desired {
            apply: vec![r#"{"kind":"ConfigMap"}"#.into()],
            patches: vec![],
            status: None,
            deletions: vec![],
            events: vec![],
            requeue_after_seconds: Some(5),
            finalizer_done,
        }
    }

    #[test]
    fn a_finalizer_for_every_object_is_held_until_deletion_is_done() {
        use c::Reason::*;
        let held = |reason, done, everywhere| {
            desired_from_wit(desired(done), reason, everywhere)
                .unwrap()
                .finalizer
        };
        assert!(held(Change, false, true));
        assert!(
            held(Change, true, true),
            "finalizer-done only counts in a deletion"
        );
        assert!(held(Deletion, false, true), "cleanup not done yet");
        assert!(!held(Deletion, true, true));
        assert!(!held(Change, false, false));
        assert!(!held(Deletion, false, false));
        let d = desired_from_wit(desired(false), Change, true).unwrap();
        assert_eq!((d.apply.len(), d.requeue_after_seconds), (1, Some(5)));
    }

    #[test]
    fn metadata_gets_the_default_finalizer_name_and_no_triggers() {
        let (m, everywhere) = metadata_from_wit(w::Metadata {
            name: "old".into(),
            version: "0.1.0".into(),
            primary: gvk_to_wit(&c::Gvk::new("", "v1", "ConfigMap")),
            owns: vec![gvk_to_wit(&c::Gvk::new("", "v1", "ConfigMap"))],
            lookups: vec![w::Lookup {
                kind: gvk_to_wit(&c::Gvk::new("", "v1", "Namespace")),
                namespace: None,
                label_selector: None,
            }],
            writes: vec![],
            finalizer: true,
            namespaces: w::NamespaceScope::All,
            resync_seconds: 300,
            max_concurrent_reconciles: 0,
        });
        assert!(everywhere);
        assert_eq!(m.finalizer, None);
        assert_eq!(m.finalizer_name(), "wasmop.io/old");
        assert!(!m.has_triggers());
        assert!(m.crds.is_empty());
        assert!(m.validate().is_ok());
    }

    #[test]
    fn a_trigger_reaches_a_0_1_plugin_as_a_change() {
        let s = c::Snapshot {
            object: json!({"kind": "ConfigMap"}),
            children: vec![],
            lookups: vec![c::LookupResult {
                lookup: c::Lookup::new(c::Gvk::new("", "v1", "Namespace")).triggers(),
                objects: vec![json!({"kind": "Namespace"})],
            }],
            reason: c::Reason::Trigger,
            attempt: 1,
            config: json!({}),
        };
        let w = snapshot_to_wit(&s);
        assert_eq!(w.reason, w::Reason::Change);
        assert_eq!(w.lookups[0].objects, vec![r#"{"kind":"Namespace"}"#]);
    }
}
