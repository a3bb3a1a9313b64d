//! The guest side of the boundary: the one converter between the generated bindings of
//! `wasmop:reconciler@0.2.0` and the contract's types, and the generated `Guest` trait implemented
//! for a [`Plugin`]. JSON crosses as text.

use std::marker::PhantomData;

use serde_json::Value;
use wasmop_contract as c;

use crate::__bindings::wasmop::reconciler::types as wit;
use crate::{Error, Plugin};

/// Implements the generated `Guest` trait for a [`Plugin`]; named by [`crate::export_plugin!`].
pub struct Exporter<P>(PhantomData<P>);

impl<P: Plugin> crate::__bindings::Guest for Exporter<P> {
    fn metadata() -> wit::Metadata {
        metadata_to_wit(P::metadata())
    }

    fn reconcile(snapshot: wit::Snapshot) -> Result<wit::Desired, wit::ReconcileError> {
        snapshot_from_wit(snapshot)
            .and_then(reconcile::<P>)
            .map(desired_to_wit)
            .map_err(error_to_wit)
    }

    fn map(trigger: wit::Trigger) -> Result<Vec<wit::ObjectKey>, wit::ReconcileError> {
        trigger_from_wit(trigger)
            .and_then(P::map)
            .map(|keys| keys.into_iter().map(key_to_wit).collect())
            .map_err(error_to_wit)
    }
}

/// One reconcile in the contract's terms, as the host gets it: the plugin's answer, or a permanent
/// error instead when the host could not use it ([`c::Desired::problems`]).
pub(crate) fn reconcile<P: Plugin>(snapshot: c::Snapshot) -> Result<c::Desired, Error> {
    let desired = P::reconcile(snapshot)?;
    let problems = desired.problems();
    if !problems.is_empty() {
        return Err(Error::permanent(format!(
            "invalid desired state: {}",
            problems.join("; ")
        )));
    }
    Ok(desired)
}

fn error_to_wit(e: Error) -> wit::ReconcileError {
    match e {
        Error::Retry(m) => wit::ReconcileError::Retry(m),
        Error::Permanent(m) => wit::ReconcileError::Permanent(m),
    }
}

pub(crate) fn gvk_to_wit(g: &c::Gvk) -> wit::Gvk {
    wit::Gvk {
        group: g.group.clone(),
        version: g.version.clone(),
        kind: g.kind.clone(),
    }
}

fn gvk_from_wit(g: wit::Gvk) -> c::Gvk {
    c::Gvk::new(g.group, g.version, g.kind)
}

fn lookup_to_wit(l: c::Lookup) -> wit::Lookup {
    wit::Lookup {
        kind: gvk_to_wit(&l.kind),
        namespace: l.namespace,
        label_selector: l.label_selector,
        triggers: l.triggers,
    }
}

fn lookup_from_wit(l: wit::Lookup) -> c::Lookup {
    c::Lookup {
        kind: gvk_from_wit(l.kind),
        namespace: l.namespace,
        label_selector: l.label_selector,
        triggers: l.triggers,
    }
}

fn metadata_to_wit(m: c::Metadata) -> wit::Metadata {
    wit::Metadata {
        name: m.name,
        version: m.version,
        primary: gvk_to_wit(&m.primary),
        owns: m.owns.iter().map(gvk_to_wit).collect(),
        lookups: m.lookups.into_iter().map(lookup_to_wit).collect(),
        writes: m
            .writes
            .into_iter()
            .map(|w| wit::WritePermission {
                kind: gvk_to_wit(&w.kind),
                verbs: w
                    .verbs
                    .into_iter()
                    .map(|v| match v {
                        c::Verb::Patch => wit::Verb::Patch,
                        c::Verb::Delete => wit::Verb::Delete,
                    })
                    .collect(),
            })
            .collect(),
        finalizer: m.finalizer,
        namespaces: match m.namespaces {
            c::NamespaceScope::All => wit::NamespaceScope::All,
            c::NamespaceScope::Only(list) => wit::NamespaceScope::Only(list),
        },
        resync_seconds: m.resync_seconds,
        max_concurrent_reconciles: m.max_concurrent_reconciles,
        crds: m.crds,
    }
}

fn parse(text: &str, what: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::retry(format!("the host sent invalid JSON for {what}: {e}")))
}

fn snapshot_from_wit(s: wit::Snapshot) -> Result<c::Snapshot, Error> {
    let object = parse(&s.object, "the object")?;
    let children = s
        .children
        .iter()
        .map(|child| parse(child, "a child"))
        .collect::<Result<_, _>>()?;
    let lookups = s
        .lookups
        .into_iter()
        .map(|l| {
            Ok(c::LookupResult {
                lookup: lookup_from_wit(l.lookup),
                objects: l
                    .objects
                    .iter()
                    .map(|o| parse(o, "a lookup result"))
                    .collect::<Result<_, Error>>()?,
            })
        })
        .collect::<Result<_, Error>>()?;
    let reason = match s.reason {
        wit::Reason::Change => c::Reason::Change,
        wit::Reason::ChildChange => c::Reason::ChildChange,
        wit::Reason::Resync => c::Reason::Resync,
        wit::Reason::Retry => c::Reason::Retry,
        wit::Reason::Deletion => c::Reason::Deletion,
        wit::Reason::Trigger => c::Reason::Trigger,
    };
    let config = if s.config.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        parse(&s.config, "the configuration")?
    };
    Ok(c::Snapshot {
        object,
        children,
        lookups,
        reason,
        attempt: s.attempt,
        config,
    })
}

fn trigger_from_wit(t: wit::Trigger) -> Result<c::Trigger, Error> {
    Ok(c::Trigger {
        lookup: t.lookup,
        object: parse(&t.object, "the trigger object")?,
        deleted: t.deleted,
    })
}

fn key_to_wit(k: c::ObjectKey) -> wit::ObjectKey {
    wit::ObjectKey {
        namespace: k.namespace,
        name: k.name,
    }
}

fn ref_to_wit(r: c::ObjectRef) -> wit::ObjectRef {
    wit::ObjectRef {
        kind: gvk_to_wit(&r.kind),
        namespace: r.namespace,
        name: r.name,
    }
}

fn desired_to_wit(d: c::Desired) -> wit::Desired {
    wit::Desired {
        apply: d.apply.iter().map(Value::to_string).collect(),
        patches: d
            .patches
            .into_iter()
            .map(|p| wit::Patch {
                target: ref_to_wit(p.target),
                patch_type: match p.patch_type {
                    c::PatchType::Merge => wit::PatchType::Merge,
                    c::PatchType::Json => wit::PatchType::Json,
                },
                body: p.body.to_string(),
            })
            .collect(),
        status: d.status.as_ref().map(Value::to_string),
        deletions: d.deletions.into_iter().map(ref_to_wit).collect(),
        events: d
            .events
            .into_iter()
            .map(|e| wit::Event {
                event_type: match e.event_type {
                    c::EventType::Normal => wit::EventType::Normal,
                    c::EventType::Warning => wit::EventType::Warning,
                },
                reason: e.reason,
                message: e.message,
                regarding: e.regarding.map(ref_to_wit),
            })
            .collect(),
        requeue_after_seconds: d.requeue_after_seconds,
        finalizer: d.finalizer,
    }
}
