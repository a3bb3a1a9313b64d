//! Conversions between the `bindgen!` types of `wasmop:reconciler@0.2.0` and the plain-Rust
//! contract. JSON crosses the boundary as text: snapshot values are serialised here (or the engine's
//! cached text is handed on as it is, [`c::SnapshotText`]), and the guest's answer is parsed back (a
//! malformed document is `ReconcileFailure::Invalid`, naming the field), after its size is measured
//! against the answer cap (`desired_size`, `keys_size`).
//!
//! What both contract versions share (kinds, references, write permissions, patches, events,
//! errors, and the common parts of metadata, snapshots and desired states) is written once, in
//! [`common_conversions!`], and instantiated for each world: here for 0.2, in `v0_1.rs` for the 0.1
//! adapter.

use serde_json::Value;
use wasmop_contract as c;

use crate::bindings::v0_2::types as w;

/// The conversions of the records every contract version has with the same fields. The invoking
/// module names its world's types `w` (`use crate::bindings::v0_2::types as w`), the contract `c`,
/// imports `serde_json::Value`, and provides the version-specific `lookup_from_wit`,
/// `lookup_to_wit` and `reason_to_wit`.
macro_rules! common_conversions {
    () => {
        pub(crate) fn gvk_from_wit(g: w::Gvk) -> c::Gvk {
            c::Gvk::new(g.group, g.version, g.kind)
        }

        pub(crate) fn gvk_to_wit(g: &c::Gvk) -> w::Gvk {
            w::Gvk {
                group: g.group.clone(),
                version: g.version.clone(),
                kind: g.kind.clone(),
            }
        }

        fn object_ref_from_wit(r: w::ObjectRef) -> c::ObjectRef {
            c::ObjectRef {
                kind: gvk_from_wit(r.kind),
                namespace: r.namespace,
                name: r.name,
            }
        }

        pub(crate) fn error_from_wit(e: w::ReconcileError) -> c::ReconcileFailure {
            match e {
                w::ReconcileError::Retry(m) => c::ReconcileFailure::Retry(m),
                w::ReconcileError::Permanent(m) => c::ReconcileFailure::Permanent(m),
            }
        }

        /// Metadata without what differs between versions: no finalizer name, no CRDs.
        fn metadata_from_wit_common(m: w::Metadata) -> c::Metadata {
            c::Metadata {
                name: m.name,
                version: m.version,
                primary: gvk_from_wit(m.primary),
                owns: m.owns.into_iter().map(gvk_from_wit).collect(),
                lookups: m.lookups.into_iter().map(lookup_from_wit).collect(),
                writes: m
                    .writes
                    .into_iter()
                    .map(|p| c::WritePermission {
                        kind: gvk_from_wit(p.kind),
                        verbs: p
                            .verbs
                            .into_iter()
                            .map(|v| match v {
                                w::Verb::Patch => c::Verb::Patch,
                                w::Verb::Delete => c::Verb::Delete,
                            })
                            .collect(),
                    })
                    .collect(),
                finalizer: None,
                namespaces: match m.namespaces {
                    w::NamespaceScope::All => c::NamespaceScope::All,
                    w::NamespaceScope::Only(list) => c::NamespaceScope::Only(list),
                },
                resync_seconds: m.resync_seconds,
                max_concurrent_reconciles: m.max_concurrent_reconciles,
                crds: Vec::new(),
            }
        }

        pub(crate) fn snapshot_to_wit(s: &c::Snapshot) -> w::Snapshot {
            w::Snapshot {
                object: s.object.to_string(),
                children: s.children.iter().map(Value::to_string).collect(),
                lookups: s
                    .lookups
                    .iter()
                    .map(|l| w::LookupResult {
                        lookup: lookup_to_wit(&l.lookup),
                        objects: l.objects.iter().map(Value::to_string).collect(),
                    })
                    .collect(),
                reason: reason_to_wit(s.reason),
                attempt: s.attempt,
                config: s.config.to_string(),
            }
        }

        /// The same from a snapshot whose objects are already text: moved, not serialised.
        pub(crate) fn snapshot_text_to_wit(s: c::SnapshotText) -> w::Snapshot {
            w::Snapshot {
                object: s.object,
                children: s.children,
                lookups: s
                    .lookups
                    .into_iter()
                    .map(|(lookup, objects)| w::LookupResult {
                        lookup: lookup_to_wit(&lookup),
                        objects,
                    })
                    .collect(),
                reason: reason_to_wit(s.reason),
                attempt: s.attempt,
                config: s.config,
            }
        }

        /// The size of an answer as the answer cap counts it: the bytes of all its strings.
        pub(crate) fn desired_size(d: &w::Desired) -> usize {
            let object_ref = |r: &w::ObjectRef| {
                r.kind.group.len()
                    + r.kind.version.len()
                    + r.kind.kind.len()
                    + r.namespace.as_ref().map_or(0, String::len)
                    + r.name.len()
            };
            d.apply.iter().map(String::len).sum::<usize>()
                + d.patches
                    .iter()
                    .map(|p| p.body.len() + object_ref(&p.target))
                    .sum::<usize>()
                + d.status.as_ref().map_or(0, String::len)
                + d.deletions.iter().map(object_ref).sum::<usize>()
                + d.events
                    .iter()
                    .map(|e| e.reason.len() + e.message.len() + e.regarding.as_ref().map_or(0, object_ref))
                    .sum::<usize>()
        }

        /// A desired state without the finalizer (`false`), which each version answers its way.
        fn desired_from_wit_common(d: w::Desired) -> Result<c::Desired, c::ReconcileFailure> {
            use $crate::convert::parse;
            let apply = d
                .apply
                .iter()
                .enumerate()
                .map(|(i, text)| {
                    let v = parse(&format!("apply[{i}]"), text)?;
                    if !v.is_object() {
                        return Err(c::ReconcileFailure::Invalid(format!(
                            "apply[{i}] is not a JSON object"
                        )));
                    }
                    Ok(v)
                })
                .collect::<Result<Vec<_>, _>>()?;
            let patches = d
                .patches
                .into_iter()
                .enumerate()
                .map(|(i, p)| {
                    Ok(c::Patch {
                        body: parse(&format!("patches[{i}].body"), &p.body)?,
                        target: object_ref_from_wit(p.target),
                        patch_type: match p.patch_type {
                            w::PatchType::Merge => c::PatchType::Merge,
                            w::PatchType::Json => c::PatchType::Json,
                        },
                    })
                })
                .collect::<Result<Vec<_>, c::ReconcileFailure>>()?;
            let status = d
                .status
                .as_deref()
                .map(|s| parse("status", s))
                .transpose()?;
            Ok(c::Desired {
                apply,
                patches,
                status,
                deletions: d.deletions.into_iter().map(object_ref_from_wit).collect(),
                events: d
                    .events
                    .into_iter()
                    .map(|e| c::Event {
                        event_type: match e.event_type {
                            w::EventType::Normal => c::EventType::Normal,
                            w::EventType::Warning => c::EventType::Warning,
                        },
                        reason: e.reason,
                        message: e.message,
                        regarding: e.regarding.map(object_ref_from_wit),
                    })
                    .collect(),
                requeue_after_seconds: d.requeue_after_seconds,
                finalizer: false,
                errors: Vec::new(),
            })
        }
    };
}

pub(crate) use common_conversions;

common_conversions!();

/// A JSON document the guest sent, or `Invalid` naming the field.
pub(crate) fn parse(field: &str, text: &str) -> Result<Value, c::ReconcileFailure> {
    serde_json::from_str(text)
        .map_err(|e| c::ReconcileFailure::Invalid(format!("{field} is not valid JSON: {e}")))
}

fn lookup_from_wit(l: w::Lookup) -> c::Lookup {
    c::Lookup {
        kind: gvk_from_wit(l.kind),
        namespace: l.namespace,
        label_selector: l.label_selector,
        triggers: l.triggers,
    }
}

fn lookup_to_wit(l: &c::Lookup) -> w::Lookup {
    w::Lookup {
        kind: gvk_to_wit(&l.kind),
        namespace: l.namespace.clone(),
        label_selector: l.label_selector.clone(),
        triggers: l.triggers,
    }
}

fn reason_to_wit(r: c::Reason) -> w::Reason {
    match r {
        c::Reason::Change => w::Reason::Change,
        c::Reason::ChildChange => w::Reason::ChildChange,
        c::Reason::Resync => w::Reason::Resync,
        c::Reason::Retry => w::Reason::Retry,
        c::Reason::Deletion => w::Reason::Deletion,
        c::Reason::Trigger => w::Reason::Trigger,
    }
}

pub(crate) fn metadata_from_wit(m: w::Metadata) -> c::Metadata {
    let (finalizer, crds) = (m.finalizer.clone(), m.crds.clone());
    c::Metadata {
        finalizer,
        crds,
        ..metadata_from_wit_common(m)
    }
}

pub(crate) fn desired_from_wit(d: w::Desired) -> Result<c::Desired, c::ReconcileFailure> {
    let finalizer = d.finalizer;
    Ok(c::Desired {
        finalizer,
        ..desired_from_wit_common(d)?
    })
}

pub(crate) fn trigger_to_wit(t: &c::Trigger) -> w::Trigger {
    w::Trigger {
        lookup: t.lookup,
        object: t.object.to_string(),
        deleted: t.deleted,
    }
}

/// The size of a `map` answer as the answer cap counts it: the bytes of its names and namespaces.
pub(crate) fn keys_size(keys: &[w::ObjectKey]) -> usize {
    keys.iter()
        .map(|k| k.name.len() + k.namespace.as_ref().map_or(0, String::len))
        .sum()
}

pub(crate) fn keys_from_wit(keys: Vec<w::ObjectKey>) -> Vec<c::ObjectKey> {
    keys.into_iter()
        .map(|k| c::ObjectKey::new(k.namespace.as_deref(), &k.name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn empty_desired() -> w::Desired {
        w::Desired {
            apply: vec![],
            patches: vec![],
            status: None,
            deletions: vec![],
            events: vec![],
            requeue_after_seconds: None,
            finalizer: false,
        }
    }

    #[test]
    fn snapshot_values_cross_as_json_text() {
        let s = c::Snapshot {
            object: json!({"kind": "Widget", "metadata": {"name": "w"}}),
            children: vec![json!({"kind": "ConfigMap"})],
            lookups: vec![c::LookupResult {
                lookup: c::Lookup::new(c::Gvk::new("", "v1", "Secret"))
                    .namespace("ns")
                    .triggers(),
                objects: vec![json!({"kind": "Secret"})],
            }],
            reason: c::Reason::Trigger,
            attempt: 3,
            config: json!({}),
        };
        let w = snapshot_to_wit(&s);
        assert_eq!(serde_json::from_str::<Value>(&w.object).unwrap(), s.object);
        assert_eq!(w.children, vec![r#"{"kind":"ConfigMap"}"#]);
        assert_eq!(w.lookups[0].lookup.kind.kind, "Secret");
        assert_eq!(w.lookups[0].lookup.namespace.as_deref(), Some("ns"));
        assert!(w.lookups[0].lookup.triggers);
        assert_eq!(w.reason, w::Reason::Trigger);
        assert_eq!((w.attempt, w.config.as_str()), (3, "{}"));
    }

    #[test]
    fn desired_is_parsed_and_bad_json_names_the_field() {
        let mut d = empty_desired();
        d.apply = vec![r#"{"kind":"ConfigMap"}"#.into()];
        d.status = Some(r#"{"ready":true}"#.into());
        d.requeue_after_seconds = Some(30);
        d.finalizer = true;
        d.events.push(w::Event {
            event_type: w::EventType::Warning,
            reason: "Oops".into(),
            message: "m".into(),
            regarding: None,
        });
        let out = desired_from_wit(d.clone()).unwrap();
        assert_eq!(out.apply, vec![json!({"kind": "ConfigMap"})]);
        assert_eq!(out.status, Some(json!({"ready": true})));
        assert_eq!(out.requeue_after_seconds, Some(30));
        assert_eq!(out.events[0].event_type, c::EventType::Warning);
        assert!(out.finalizer);

        let mut bad = d.clone();
        bad.apply.push("{nope".into());
        let err = desired_from_wit(bad).unwrap_err();
        assert!(
            matches!(&err, c::ReconcileFailure::Invalid(m) if m.starts_with("apply[1] is not valid JSON")),
            "{err:?}"
        );

        let mut bad = d.clone();
        bad.apply = vec!["[1]".into()];
        assert!(matches!(
            desired_from_wit(bad),
            Err(c::ReconcileFailure::Invalid(m)) if m == "apply[0] is not a JSON object"
        ));

        let mut bad = d;
        bad.patches.push(w::Patch {
            target: w::ObjectRef {
                kind: gvk_to_wit(&c::Gvk::new("", "v1", "ConfigMap")),
                namespace: None,
                name: "x".into(),
            },
            patch_type: w::PatchType::Merge,
            body: "".into(),
        });
        assert!(matches!(
            desired_from_wit(bad),
            Err(c::ReconcileFailure::Invalid(m)) if m.starts_with("patches[0].body")
        ));
    }

    #[test]
    fn the_answer_size_counts_every_string() {
        let mut d = empty_desired();
        assert_eq!(desired_size(&d), 0);
        d.apply = vec!["x".repeat(1000), "y".repeat(24)];
        d.status = Some("{}".into());
        let target = w::ObjectRef {
            kind: gvk_to_wit(&c::Gvk::new("apps", "v1", "Deployment")),
            namespace: Some("demo".into()),
            name: "web".into(),
        };
        d.patches.push(w::Patch {
            target: target.clone(),
            patch_type: w::PatchType::Merge,
            body: "z".repeat(100),
        });
        d.deletions.push(target.clone());
        d.events.push(w::Event {
            event_type: w::EventType::Normal,
            reason: "Made".into(),
            message: "m".repeat(50),
            regarding: None,
        });
        let target_len = "apps".len() + "v1".len() + "Deployment".len() + "demo".len() + "web".len();
        assert_eq!(
            desired_size(&d),
            1024 + 2 + (100 + target_len) + target_len + (4 + 50)
        );
        let keys = vec![w::ObjectKey {
            namespace: Some("demo".into()),
            name: "a".repeat(10),
        }];
        assert_eq!(keys_size(&keys), 14);
    }

    #[test]
    fn guest_errors_map_to_failures() {
        assert_eq!(
            error_from_wit(w::ReconcileError::Retry("later".into())),
            c::ReconcileFailure::Retry("later".into())
        );
        assert_eq!(
            error_from_wit(w::ReconcileError::Permanent("never".into())),
            c::ReconcileFailure::Permanent("never".into())
        );
    }

    #[test]
    fn metadata_converts_every_field() {
        let m = metadata_from_wit(w::Metadata {
            name: "p".into(),
            version: "1.0.0".into(),
            primary: gvk_to_wit(&c::Gvk::new("example.com", "v1", "Widget")),
            owns: vec![],
            lookups: vec![w::Lookup {
                kind: gvk_to_wit(&c::Gvk::new("", "v1", "Namespace")),
                namespace: None,
                label_selector: Some("a=b".into()),
                triggers: true,
            }],
            writes: vec![w::WritePermission {
                kind: gvk_to_wit(&c::Gvk::new("", "v1", "Pod")),
                verbs: vec![w::Verb::Delete],
            }],
            finalizer: Some("example.com/cleanup".into()),
            namespaces: w::NamespaceScope::Only(vec!["a".into()]),
            resync_seconds: 60,
            max_concurrent_reconciles: 2,
            crds: vec!["kind: CustomResourceDefinition".into()],
        });
        assert_eq!(m.primary, c::Gvk::new("example.com", "v1", "Widget"));
        assert!(m.lookups[0].triggers);
        assert_eq!(m.lookups[0].label_selector.as_deref(), Some("a=b"));
        assert_eq!(m.writes[0].verbs, vec![c::Verb::Delete]);
        assert_eq!(m.namespaces, c::NamespaceScope::Only(vec!["a".into()]));
        assert_eq!(m.finalizer_name(), "example.com/cleanup");
        assert_eq!(m.crds.len(), 1);
        assert_eq!((m.resync_seconds, m.max_concurrent_reconciles), (60, 2));
    }

    #[test]
    fn triggers_and_keys_cross() {
        let t = trigger_to_wit(&c::Trigger {
            lookup: 1,
            object: json!({"kind": "Namespace"}),
            deleted: true,
        });
        assert_eq!(
            (t.lookup, t.object.as_str(), t.deleted),
            (1, r#"{"kind":"Namespace"}"#, true)
        );
        let keys = keys_from_wit(vec![
            w::ObjectKey {
                namespace: Some("demo".into()),
                name: "a".into(),
            },
            w::ObjectKey {
                namespace: Some(String::new()),
                name: "b".into(),
            },
        ]);
        assert_eq!(
            keys,
            vec![c::ObjectKey::new(Some("demo"), "a"), c::ObjectKey::new(None, "b")]
        );
    }
}
