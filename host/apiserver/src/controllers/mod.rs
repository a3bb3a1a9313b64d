//! The few controllers a real control plane runs that clients depend on: garbage collection by
//! ownerReferences ([`gc`]), namespace deletion ([`namespace`]), the CRD lifecycle ([`crd`]) and the
//! `default` ServiceAccount of every namespace ([`serviceaccount`]), ClusterRole aggregation
//! ([`aggregation`]); and, when asked for, the statuses kubelets and the controller manager would
//! give workloads ([`simulate`], its own task since it also wakes on timers).
//!
//! They share one loop: wake on every new revision, read the events since the last pass, and act
//! through [`crate::objects`] exactly as an API client would (same validation, events and revisions).
//! When the history they need has been trimmed they resynchronise from a full scan.

pub mod aggregation;
pub mod apiservices;
pub mod crd;
pub mod gc;
pub mod kubernetes_service;
pub mod namespace;
pub mod serviceaccount;
pub mod simulate;

use std::sync::Arc;

use serde_json::json;

use crate::Core;
use crate::objects::{self, WriteOptions};
use crate::store::{Event, Key};

/// The manager name controller writes are recorded under (as the real control plane's).
pub const MANAGER: &str = "kube-apiserver";

/// Namespaces every cluster has.
const BOOTSTRAP_NAMESPACES: &[&str] = &["default", "kube-system", "kube-public", "kube-node-lease"];

/// Creates the namespaces every cluster has, when missing.
pub fn bootstrap(core: &Core) {
    let Some(ri) = core.registry.lookup("", "v1", "namespaces") else {
        return;
    };
    for ns in BOOTSTRAP_NAMESPACES {
        if core.store.get(&objects::key(&ri, "", ns)).is_none() {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let opts = WriteOptions {
                manager: MANAGER.into(),
                ..Default::default()
            };
            if let Err(e) = objects::create(core, &ri, "", body, &opts) {
                tracing::warn!(namespace = ns, error = %e, "could not create namespace");
            }
        }
    }
    crate::auth::bootstrap::ensure(core);
    apiservices::ensure(core);
}

/// State of the three controllers, advanced together one batch of events at a time.
struct Controllers {
    gc: gc::GarbageCollector,
}

impl Controllers {
    fn resync(&mut self, core: &Core) {
        let all = core.store.all();
        crd::resync(core, &all);
        self.gc.resync(core, &all);
        namespace::reconcile(core);
        serviceaccount::resync(core);
        aggregation::reconcile(core);
    }

    fn on_events(&mut self, core: &Core, events: &[Arc<Event>]) {
        let mut namespaces_dirty = false;
        let mut roles_dirty = false;
        for e in events {
            crd::on_event(core, e);
            self.gc.on_event(core, e);
            namespaces_dirty |= namespace::concerns(e);
            serviceaccount::on_event(core, e);
            roles_dirty |= aggregation::concerns(e);
        }
        if namespaces_dirty {
            namespace::reconcile(core);
        }
        if roles_dirty {
            aggregation::reconcile(core);
        }
    }
}

/// Starts the controller loop.
pub fn spawn_all(core: Arc<Core>) -> Vec<tokio::task::JoinHandle<()>> {
    let handle = tokio::spawn(async move {
        let mut revisions = core.store.subscribe();
        let mut shutdown = core.shutdown.subscribe();
        let mut state = Controllers {
            gc: gc::GarbageCollector::default(),
        };
        let mut last = core.store.revision();
        let mut needs_resync = true;
        loop {
            let c = core.clone();
            let resync = needs_resync;
            let (s, l, r) = match tokio::task::spawn_blocking(move || {
                let mut state = state;
                let mut last = last;
                if resync {
                    last = c.store.revision();
                    state.resync(&c);
                }
                let needs_resync = match c.store.events_since(None, last) {
                    Ok(events) => {
                        if let Some(e) = events.last() {
                            last = e.revision;
                        }
                        state.on_events(&c, &events);
                        false
                    }
                    Err(_) => true,
                };
                (state, last, needs_resync)
            })
            .await
            {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(error = %e, "controller pass panicked; restarting from a full resync");
                    (
                        Controllers {
                            gc: gc::GarbageCollector::default(),
                        },
                        core.store.revision(),
                        true,
                    )
                }
            };
            state = s;
            last = l;
            needs_resync = r;
            if needs_resync {
                continue;
            }
            if core.store.revision() > last {
                continue;
            }
            tokio::select! {
                changed = revisions.changed() => if changed.is_err() { return },
                _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
            }
        }
    });
    vec![handle]
}

/// The key of an object as stored, from its resource and metadata.
pub fn key_of(resource: &str, obj: &serde_json::Value) -> Key {
    Key {
        resource: resource.to_string(),
        namespace: crate::admission::meta_str(obj, "namespace")
            .unwrap_or("")
            .to_string(),
        name: crate::admission::name_of(obj).to_string(),
    }
}
