//! Children a key's reconciles applied that the cache does not show yet. The watch delivers the
//! host's own writes a moment after the API server acknowledged them, and pruning reads the cache:
//! a reconcile that follows at once — a deletion answered without the child, typically, when the
//! object was deleted right after it was created — would not prune a child it cannot see, and then
//! release the finalizer, leaving the child behind for good (a child in another namespace has no
//! owner reference for the garbage collector to follow). The churn soak found exactly that
//! (`tests/it/soak.rs`). So each key remembers the children it applied until the cache shows them,
//! and those are pruned like the ones the cache shows. An entry lasts as long as the watch lags.

use std::collections::HashMap;
use std::sync::Mutex;

use wasmop_contract::{Gvk, ObjectKey};

use crate::cache::Cache;
use crate::plan::Plan;
use crate::writer::{Write, WriteTarget};

#[derive(Debug, Default)]
pub(super) struct Unseen {
    by_key: Mutex<HashMap<ObjectKey, Vec<WriteTarget>>>,
}

/// Whether the cache shows an object at `target` (any version: the cache's own pruning covers it).
fn shown(cache: &dyn Cache, target: &WriteTarget) -> bool {
    let r = &target.resource;
    cache
        .get(&Gvk::new(r.group.clone(), r.version.clone(), r.kind.clone()))
        .is_some_and(|store| store.get(target.namespace.as_deref(), &target.name).is_some())
}

impl Unseen {
    /// The children `key` applied earlier that the cache still does not show; the key's entry is
    /// handed to this reconcile, which [`keeps`](Unseen::keep) what it leaves.
    pub(super) fn take(&self, key: &ObjectKey, cache: &dyn Cache) -> Vec<WriteTarget> {
        let mut targets = self
            .by_key
            .lock()
            .expect("unseen lock")
            .remove(key)
            .unwrap_or_default();
        targets.retain(|t| !shown(cache, t));
        targets
    }

    /// Remembers the children `key` applied that the cache does not show yet.
    pub(super) fn keep(&self, key: &ObjectKey, mut targets: Vec<WriteTarget>, cache: &dyn Cache) {
        targets.retain(|t| !shown(cache, t));
        if !targets.is_empty() {
            self.by_key
                .lock()
                .expect("unseen lock")
                .insert(key.clone(), targets);
        }
    }

    pub(super) fn forget(&self, key: &ObjectKey) {
        self.by_key.lock().expect("unseen lock").remove(key);
    }
}

/// Adds to `plan` the deletion of each `unseen` child it does not apply again, before the
/// finalizer is released (the plan's last write when it is).
pub(super) fn prune(plan: &mut Plan, unseen: &[WriteTarget]) {
    let applied = |t: &WriteTarget| {
        plan.writes
            .iter()
            .any(|w| matches!(w, Write::Apply { target, .. } if target == t))
    };
    let deletes: Vec<Write> = unseen
        .iter()
        .filter(|t| !applied(t))
        .map(|t| Write::Delete { target: t.clone() })
        .collect();
    let at = plan
        .writes
        .iter()
        .position(|w| matches!(w, Write::RemoveFinalizer { .. }))
        .unwrap_or(plan.writes.len());
    plan.writes.splice(at..at, deletes);
}

/// Follows one acknowledged write: an applied child is unseen until the cache shows it, a deleted
/// one is no longer.
pub(super) fn wrote(unseen: &mut Vec<WriteTarget>, write: &Write) {
    match write {
        Write::Apply { target, .. } if !unseen.contains(target) => unseen.push(target.clone()),
        Write::Delete { target } => unseen.retain(|t| t != target),
        _ => {}
    }
}
