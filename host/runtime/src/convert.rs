//! Conversions between the `bindgen!` types and the plain-Rust contract. JSON crosses the boundary
//! as text: snapshot values are serialised here, and the guest's answer is parsed back (a malformed
//! document is `ReconcileFailure::Invalid`, naming the field).

use wasmop_contract as c;

use crate::bindings::types as w;

pub(crate) fn gvk_from_wit(g: w::Gvk) -> c::Gvk {
    c::Gvk {
        group: g.group,
        version: g.version,
        kind: g.kind,
    }
}

fn gvk_to_wit(g: &c::Gvk) -> w::Gvk {
    w::Gvk {
        group: g.group.clone(),
        version: g.version.clone(),
        kind: g.kind.clone(),
    }
}

fn lookup_from_wit(l: w::Lookup) -> c::Lookup {
    c::Lookup {
        kind: gvk_from_wit(l.kind),
        namespace: l.namespace,
        label_selector: l.label_selector,
    }
}

fn lookup_to_wit(l: &c::Lookup) -> w::Lookup {
    w::Lookup {
        kind: gvk_to_wit(&l.kind),
        namespace: l.namespace.clone(),
        label_selector: l.label_selector.clone(),
    }
}

pub(crate) fn metadata_from_wit(m: w::Metadata) -> c::Metadata {
    c::Metadata {
        name: m.name,
        version: m.version,
        primary: gvk_from_wit(m.primary),
        owns: m.owns.into_iter().map(gvk_from_wit).collect(),
        lookups: m.lookups.into_iter().map(lookup_from_wit).collect(),
        writes: m
            .writes
            .into_iter()
            .map(|w| c::WritePermission {
                kind: gvk_from_wit(w.kind),
                verbs: w
                    .verbs
                    .into_iter()
                    .map(|v| match v {
                        w::Verb::Patch => c::Verb::Patch,
                        w::Verb::Delete => c::Verb::Delete,
                    })
                    .collect(),
            })
            .collect(),
        finalizer: m.finalizer,
        namespaces: match m.namespaces {
            w::NamespaceScope::All => c::NamespaceScope::All,
            w::NamespaceScope::Only(list) => c::NamespaceScope::Only(list),
        },
        resync_seconds: m.resync_seconds,
        max_concurrent_reconciles: m.max_concurrent_reconciles,
    }
}

pub(crate) fn snapshot_to_wit(s: &c::Snapshot) -> w::Snapshot {
    let json = |v: &serde_json::Value| v.to_string();
    w::Snapshot {
        object: json(&s.object),
        children: s.children.iter().map(json).collect(),
        lookups: s
            .lookups
            .iter()
            .map(|l| w::LookupResult {
                lookup: lookup_to_wit(&l.lookup),
                objects: l.objects.iter().map(json).collect(),
            })
            .collect(),
        reason: match s.reason {
            c::Reason::Change => w::Reason::Change,
            c::Reason::ChildChange => w::Reason::ChildChange,
            c::Reason::Resync => w::Reason::Resync,
            c::Reason::Retry => w::Reason::Retry,
            c::Reason::Deletion => w::Reason::Deletion,
        },
        attempt: s.attempt,
        config: json(&s.config),
    }
}

fn parse(field: &str, text: &str) -> Result<serde_json::Value, c::ReconcileFailure> {
    serde_json::from_str(text)
        .map_err(|e| c::ReconcileFailure::Invalid(format!("{field} is not valid JSON: {e}")))
}

fn object_ref_from_wit(r: w::ObjectRef) -> c::ObjectRef {
    c::ObjectRef {
        kind: gvk_from_wit(r.kind),
        namespace: r.namespace,
        name: r.name,
    }
}

pub(crate) fn desired_from_wit(d: w::Desired) -> Result<c::Desired, c::ReconcileFailure> {
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
    let status = d.status.as_deref().map(|s| parse("status", s)).transpose()?;
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
        finalizer_done: d.finalizer_done,
    })
}

pub(crate) fn error_from_wit(e: w::ReconcileError) -> c::ReconcileFailure {
    match e {
        w::ReconcileError::Retry(m) => c::ReconcileFailure::Retry(m),
        w::ReconcileError::Permanent(m) => c::ReconcileFailure::Permanent(m),
    }
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
            finalizer_done: false,
        }
    }

    #[test]
    fn snapshot_values_cross_as_json_text() {
        let s = c::Snapshot {
            object: json!({"kind": "Widget", "metadata": {"name": "w"}}),
            children: vec![json!({"kind": "ConfigMap"})],
            lookups: vec![c::LookupResult {
                lookup: c::Lookup {
                    kind: c::Gvk::new("", "v1", "Secret"),
                    namespace: Some("ns".into()),
                    label_selector: None,
                },
                objects: vec![json!({"kind": "Secret"})],
            }],
            reason: c::Reason::ChildChange,
            attempt: 3,
            config: json!({}),
        };
        let w = snapshot_to_wit(&s);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&w.object).unwrap(),
            s.object
        );
        assert_eq!(w.children, vec![r#"{"kind":"ConfigMap"}"#]);
        assert_eq!(w.lookups[0].lookup.kind.kind, "Secret");
        assert_eq!(w.lookups[0].lookup.namespace.as_deref(), Some("ns"));
        assert_eq!(w.reason, w::Reason::ChildChange);
        assert_eq!((w.attempt, w.config.as_str()), (3, "{}"));
    }

    #[test]
    fn desired_is_parsed_and_bad_json_names_the_field() {
        let mut d = empty_desired();
        d.apply = vec![r#"{"kind":"ConfigMap"}"#.into()];
        d.status = Some(r#"{"ready":true}"#.into());
        d.requeue_after_seconds = Some(30);
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
                kind: w::Gvk {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "ConfigMap".into(),
                },
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
            primary: w::Gvk {
                group: "example.com".into(),
                version: "v1".into(),
                kind: "Widget".into(),
            },
            owns: vec![],
            lookups: vec![],
            writes: vec![w::WritePermission {
                kind: w::Gvk {
                    group: String::new(),
                    version: "v1".into(),
                    kind: "Pod".into(),
                },
                verbs: vec![w::Verb::Delete],
            }],
            finalizer: true,
            namespaces: w::NamespaceScope::Only(vec!["a".into()]),
            resync_seconds: 60,
            max_concurrent_reconciles: 2,
        });
        assert_eq!(m.primary, c::Gvk::new("example.com", "v1", "Widget"));
        assert_eq!(m.writes[0].verbs, vec![c::Verb::Delete]);
        assert_eq!(m.namespaces, c::NamespaceScope::Only(vec!["a".into()]));
        assert!(m.finalizer);
        assert_eq!((m.resync_seconds, m.max_concurrent_reconciles), (60, 2));
    }
}
