//! The glue between the generated bindings and the SDK's types.

use std::marker::PhantomData;

use serde_json::Value;

use crate::__bindings::wasmop::reconciler::types as wit;
use crate::{
    Desired, Error, EventType, Gvk, Lookup, LookupResult, Metadata, NamespaceScope, ObjectRef, PatchType,
    Plugin, Reason, Snapshot, Verb,
};

/// Implements the generated `Guest` trait for a [`Plugin`]; named by [`crate::export_plugin!`].
pub struct Exporter<P>(PhantomData<P>);

impl<P: Plugin> crate::__bindings::Guest for Exporter<P> {
    fn metadata() -> wit::Metadata {
        metadata_to_wit(P::metadata())
    }

    fn reconcile(snapshot: wit::Snapshot) -> Result<wit::Desired, wit::ReconcileError> {
        reconcile::<P>(snapshot).map_err(error_to_wit)
    }
}

pub(crate) fn reconcile<P: Plugin>(snapshot: wit::Snapshot) -> Result<wit::Desired, Error> {
    let snapshot = snapshot_from_wit(snapshot)?;
    let desired = P::reconcile(snapshot)?;
    desired_to_wit(desired)
}

pub(crate) fn error_to_wit(e: Error) -> wit::ReconcileError {
    match e {
        Error::Retry(m) => wit::ReconcileError::Retry(m),
        Error::Permanent(m) => wit::ReconcileError::Permanent(m),
    }
}

fn gvk_to_wit(g: Gvk) -> wit::Gvk {
    wit::Gvk {
        group: g.group,
        version: g.version,
        kind: g.kind,
    }
}

fn gvk_from_wit(g: wit::Gvk) -> Gvk {
    Gvk {
        group: g.group,
        version: g.version,
        kind: g.kind,
    }
}

fn lookup_to_wit(l: Lookup) -> wit::Lookup {
    wit::Lookup {
        kind: gvk_to_wit(l.kind),
        namespace: l.namespace,
        label_selector: l.label_selector,
    }
}

fn lookup_from_wit(l: wit::Lookup) -> Lookup {
    Lookup {
        kind: gvk_from_wit(l.kind),
        namespace: l.namespace,
        label_selector: l.label_selector,
    }
}

pub(crate) fn metadata_to_wit(m: Metadata) -> wit::Metadata {
    wit::Metadata {
        name: m.name,
        version: m.version,
        primary: gvk_to_wit(m.primary),
        owns: m.owns.into_iter().map(gvk_to_wit).collect(),
        lookups: m.lookups.into_iter().map(lookup_to_wit).collect(),
        writes: m
            .writes
            .into_iter()
            .map(|w| wit::WritePermission {
                kind: gvk_to_wit(w.kind),
                verbs: w
                    .verbs
                    .into_iter()
                    .map(|v| match v {
                        Verb::Patch => wit::Verb::Patch,
                        Verb::Delete => wit::Verb::Delete,
                    })
                    .collect(),
            })
            .collect(),
        finalizer: m.finalizer,
        namespaces: match m.namespaces {
            NamespaceScope::All => wit::NamespaceScope::All,
            NamespaceScope::Only(list) => wit::NamespaceScope::Only(list),
        },
        resync_seconds: m.resync_seconds,
        max_concurrent_reconciles: m.max_concurrent_reconciles,
    }
}

fn parse(text: &str, what: &str) -> Result<Value, Error> {
    serde_json::from_str(text)
        .map_err(|e| Error::retry(format!("the host sent invalid JSON for {what}: {e}")))
}

pub(crate) fn snapshot_from_wit(s: wit::Snapshot) -> Result<Snapshot, Error> {
    let object = parse(&s.object, "the object")?;
    let children = s
        .children
        .iter()
        .map(|c| parse(c, "a child"))
        .collect::<Result<_, _>>()?;
    let lookups = s
        .lookups
        .into_iter()
        .map(|l| {
            Ok(LookupResult {
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
        wit::Reason::Change => Reason::Change,
        wit::Reason::ChildChange => Reason::ChildChange,
        wit::Reason::Resync => Reason::Resync,
        wit::Reason::Retry => Reason::Retry,
        wit::Reason::Deletion => Reason::Deletion,
    };
    let config = if s.config.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        parse(&s.config, "the configuration")?
    };
    Ok(Snapshot::from_parts(
        object, children, lookups, reason, s.attempt, config,
    ))
}

fn ref_to_wit(r: ObjectRef) -> wit::ObjectRef {
    wit::ObjectRef {
        kind: gvk_to_wit(r.kind),
        namespace: r.namespace,
        name: r.name,
    }
}

pub(crate) fn desired_to_wit(d: Desired) -> Result<wit::Desired, Error> {
    d.validate()?;
    Ok(wit::Desired {
        apply: d.apply.iter().map(Value::to_string).collect(),
        patches: d
            .patches
            .into_iter()
            .map(|p| wit::Patch {
                target: ref_to_wit(p.target),
                patch_type: match p.patch_type {
                    PatchType::Merge => wit::PatchType::Merge,
                    PatchType::Json => wit::PatchType::Json,
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
                    EventType::Normal => wit::EventType::Normal,
                    EventType::Warning => wit::EventType::Warning,
                },
                reason: e.reason,
                message: e.message,
                regarding: e.regarding.map(ref_to_wit),
            })
            .collect(),
        requeue_after_seconds: d.requeue_after_seconds,
        finalizer_done: d.finalizer_done,
    })
}
