//! The ServiceAccount controller: every active namespace has a `default` ServiceAccount, created
//! when the namespace appears and again if it is deleted (as kube-controller-manager's
//! `serviceaccount` controller does).

use serde_json::json;

use crate::Core;
use crate::admission::{is_terminating, name_of};
use crate::objects::{self, WriteOptions};
use crate::store::{Event, EventType, Key};

const NAMESPACES: &str = "/namespaces";
const SERVICE_ACCOUNTS: &str = "/serviceaccounts";
const DEFAULT: &str = "default";

/// Creates `default` in `namespace` when the namespace is active and the account is missing.
pub fn ensure(core: &Core, namespace: &str) {
    let ns_key = Key {
        resource: NAMESPACES.into(),
        namespace: String::new(),
        name: namespace.into(),
    };
    match core.store.get(&ns_key) {
        Some(ns) if !is_terminating(&ns) => {}
        _ => return,
    }
    let sa_key = Key {
        resource: SERVICE_ACCOUNTS.into(),
        namespace: namespace.into(),
        name: DEFAULT.into(),
    };
    if core.store.get(&sa_key).is_some() {
        return;
    }
    let Some(ri) = core.registry.lookup("", "v1", "serviceaccounts") else {
        return;
    };
    let body = json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": DEFAULT, "namespace": namespace}});
    let opts = WriteOptions {
        manager: "kube-controller-manager".into(),
        ..Default::default()
    };
    if let Err(e) = objects::create(core, &ri, namespace, body, &opts)
        && e.code != 409
        && e.code != 403
    {
        tracing::warn!(%namespace, error = %e, "could not create the default ServiceAccount");
    }
}

/// Every namespace.
pub fn resync(core: &Core) {
    let (_, namespaces) = core.store.list(NAMESPACES, None);
    for ns in namespaces {
        ensure(core, name_of(&ns));
    }
}

/// A namespace added, or a `default` ServiceAccount deleted.
pub fn on_event(core: &Core, e: &Event) {
    if e.key.resource == NAMESPACES && e.type_ == EventType::Added {
        ensure(core, &e.key.name);
    } else if e.key.resource == SERVICE_ACCOUNTS && e.key.name == DEFAULT && e.type_ == EventType::Deleted {
        ensure(core, &e.key.namespace);
    }
}
