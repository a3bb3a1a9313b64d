//! Namespace deletion: a terminating namespace has everything inside it deleted (finalizers are
//! respected), then its `kubernetes` finalizer is removed and the namespace disappears.

use serde_json::json;

use super::MANAGER;
use super::gc::resource_info;
use crate::Core;
use crate::admission::{is_terminating, name_of};
use crate::objects::{self, DeleteOptions, WriteOptions};
use crate::patch::PatchType;
use crate::store::{Event, Key};

const NAMESPACES: &str = "/namespaces";

/// Whether an event may move a namespace deletion forward.
pub fn concerns(e: &Event) -> bool {
    e.key.resource == NAMESPACES || !e.key.namespace.is_empty()
}

/// Advances every terminating namespace.
pub fn reconcile(core: &Core) {
    let (_, namespaces) = core.store.list(NAMESPACES, None);
    let terminating: Vec<String> = namespaces
        .iter()
        .filter(|n| is_terminating(n))
        .map(|n| name_of(n).to_string())
        .collect();
    if terminating.is_empty() {
        return;
    }
    let all = core.store.all();
    for ns in terminating {
        let contents: Vec<&Key> = all
            .iter()
            .filter(|(k, _)| k.namespace == ns)
            .map(|(k, _)| k)
            .collect();
        if contents.is_empty() {
            finalize(core, &ns);
            continue;
        }
        for key in contents {
            let Some(obj) = core.store.get(key) else { continue };
            if is_terminating(&obj) {
                continue;
            }
            let Some(ri) = resource_info(core, &key.resource) else {
                continue;
            };
            let opts = DeleteOptions {
                propagation: Some("Background".into()),
                ..Default::default()
            };
            if let Err(e) = objects::delete(core, &ri, &key.namespace, &key.name, &opts)
                && e.code != 404
            {
                tracing::warn!(namespace = %ns, object = %key.name, error = %e, "namespace cleanup delete failed");
            }
        }
    }
}

/// Removes the `kubernetes` finalizer of an emptied namespace, which deletes it.
fn finalize(core: &Core, ns: &str) {
    let Some(ri) = core.registry.lookup("", "v1", "namespaces") else {
        return;
    };
    let body = serde_json::to_vec(&json!({"spec": {"finalizers": []}})).unwrap_or_default();
    let opts = WriteOptions {
        manager: MANAGER.into(),
        ..Default::default()
    };
    if let Err(e) = objects::patch(core, &ri, "", ns, None, PatchType::Merge, &body, &opts)
        && e.code != 404
    {
        tracing::warn!(namespace = %ns, error = %e, "finalizing namespace failed");
    }
}
