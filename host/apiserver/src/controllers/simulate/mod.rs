//! The workload simulator, in the spirit of kwok (Kubernetes WithOut Kubelet): with no kubelet and
//! no kube-controller-manager behind the embedded server, nothing would ever set the status of a
//! Deployment, ReplicaSet, StatefulSet, DaemonSet or Job, and an operator waiting for its workload
//! to become ready would wait forever. With [`Settings`] in the server's config (on in `wasmop
//! dev`, `wasmop apiserver --simulate-workloads`), this task plays their part:
//!
//! - a created or changed workload (new generation, new fail annotation, DaemonSets also when the
//!   number of Nodes changes) at once gets the status of pods created but not ready
//!   ([`Stage::Started`]), and after [`Settings::delay`] the status of every pod ready, a Job
//!   complete ([`Stage::Settled`]), as [`status`] computes them;
//! - a workload annotated `simulate.wasmop.io/fail: "<message>"` never becomes ready: a Deployment
//!   reports `Progressing=False ProgressDeadlineExceeded`, a Job `Failed` with
//!   `BackoffLimitExceeded`, a ReplicaSet, StatefulSet or DaemonSet a `ReplicaFailure` condition
//!   with reason `SimulatedFailure`; the message ends each condition's message.
//!
//! Statuses are written like the kube-controller-manager writes them: PUT on the `status`
//! subresource, guarded by the resourceVersion it read, as field manager [`MANAGER`] — so they
//! get a new resourceVersion, a watch event and managedFields. A write that loses a race (409) is
//! not forced: the change that won produces an event and the simulator looks again (a settling
//! write keeps its place and is retried at that pass, without another delay). DaemonSets run one pod per Node, or on one node when there is no
//! Node object (the embedded server is itself a single node). No Pods or ReplicaSets are created.

pub mod status;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;
use wasmop_apimachinery::time;

pub use status::{FAIL_ANNOTATION, Stage, Workload};

use crate::Core;
use crate::admission::meta_str;
use crate::objects::{self, WriteOptions};
use crate::store::{EventType, Key};

/// The field manager of the simulated status writes (the real writer of these statuses).
pub const MANAGER: &str = "kube-controller-manager";

const NODES: &str = "/nodes";

/// How the simulator behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long after a change the workload reports every pod ready (or its failure).
    pub delay: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            delay: Duration::from_secs(1),
        }
    }
}

/// What a settled status was computed from: when any of it changes, the workload starts over.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint {
    uid: String,
    generation: i64,
    failure: Option<String>,
    nodes: u64,
}

/// The simulator's state: the workloads waiting for their delay to pass.
#[derive(Debug)]
pub struct Simulator {
    settings: Settings,
    pending: HashMap<Key, (Instant, Fingerprint)>,
    /// The last revision whose events were handled.
    last: u64,
}

impl Simulator {
    pub fn new(settings: Settings) -> Simulator {
        Simulator {
            settings,
            pending: HashMap::new(),
            last: 0,
        }
    }

    /// When the next pending workload is due.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.values().map(|(due, _)| *due).min()
    }

    /// How many workloads wait for their delay.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Looks at every workload (at start, and when the event history it needs was trimmed).
    pub fn resync(&mut self, core: &Core, now: Instant) {
        self.last = core.store.revision();
        let nodes = node_count(core);
        for kind in Workload::ALL {
            for obj in core.store.list(kind.resource(), None).1 {
                let key = super::key_of(kind.resource(), &obj);
                self.observe(core, kind, &key, &obj, nodes, now);
            }
        }
    }

    /// Handles the events since the last pass; false when they were trimmed (resync instead).
    pub fn on_events(&mut self, core: &Core, now: Instant) -> bool {
        let Ok(events) = core.store.events_since(None, self.last) else {
            return false;
        };
        let Some(last) = events.last() else {
            return true;
        };
        self.last = last.revision;
        let nodes = node_count(core);
        let mut nodes_changed = false;
        for e in &events {
            if e.key.resource == NODES {
                nodes_changed |= e.type_ != EventType::Modified;
                continue;
            }
            let Some(kind) = Workload::of_resource(&e.key.resource) else {
                continue;
            };
            let key = Key {
                resource: e.key.resource.clone(),
                namespace: e.key.namespace.clone(),
                name: e.key.name.clone(),
            };
            // Act on the object as it is now, not as the (possibly older) event shows it.
            match core.store.get(&key) {
                Some(obj) => self.observe(core, kind, &key, &obj, nodes, now),
                None => {
                    self.pending.remove(&key);
                }
            }
        }
        if nodes_changed {
            for obj in core.store.list(Workload::DaemonSet.resource(), None).1 {
                let key = super::key_of(Workload::DaemonSet.resource(), &obj);
                self.observe(core, Workload::DaemonSet, &key, &obj, nodes, now);
            }
        }
        true
    }

    /// Settles every workload whose delay has passed, if it is still what it was when it started.
    pub fn fire(&mut self, core: &Core, now: Instant) {
        let due: Vec<Key> = self
            .pending
            .iter()
            .filter(|(_, (at, _))| *at <= now)
            .map(|(k, _)| k.clone())
            .collect();
        let nodes = node_count(core);
        for key in due {
            let Some((due, fingerprint)) = self.pending.remove(&key) else {
                continue;
            };
            let (Some(kind), Some(obj)) = (Workload::of_resource(&key.resource), core.store.get(&key)) else {
                continue;
            };
            if fingerprint != Fingerprint::of(&obj, nodes) || skipped(kind, &obj) {
                continue;
            }
            let target = status::status(kind, &obj, Stage::Settled, nodes, &time::now());
            if write_status(core, &key, &obj, target) == Written::Conflict {
                // Someone wrote in between: settle at the next pass, which that write wakes.
                self.pending.insert(key, (due, fingerprint));
            }
        }
    }

    /// Brings one workload's status to the started stage and schedules its settling, unless it is
    /// settled already.
    fn observe(&mut self, core: &Core, kind: Workload, key: &Key, obj: &Value, nodes: u64, now: Instant) {
        if obj.pointer("/metadata/deletionTimestamp").is_some() || skipped(kind, obj) {
            self.pending.remove(key);
            return;
        }
        let current = obj.get("status").cloned().unwrap_or(Value::Null);
        let stamp = time::now();
        if status::status(kind, obj, Stage::Settled, nodes, &stamp) == current {
            self.pending.remove(key);
            return;
        }
        let fingerprint = Fingerprint::of(obj, nodes);
        match self.pending.get(key) {
            Some((_, f)) if *f == fingerprint => {}
            _ => {
                self.pending
                    .insert(key.clone(), (now + self.settings.delay, fingerprint));
            }
        }
        let started = status::status(kind, obj, Stage::Started, nodes, &stamp);
        if started != current {
            write_status(core, key, obj, started);
        }
    }
}

impl Fingerprint {
    fn of(obj: &Value, nodes: u64) -> Fingerprint {
        Fingerprint {
            uid: meta_str(obj, "uid").unwrap_or("").to_string(),
            generation: obj
                .pointer("/metadata/generation")
                .and_then(Value::as_i64)
                .unwrap_or(0),
            failure: status::failure(obj).map(String::from),
            nodes,
        }
    }
}

/// Jobs that finished or are suspended are left as they are.
fn skipped(kind: Workload, obj: &Value) -> bool {
    kind == Workload::Job && (status::job_finished(obj) || status::job_suspended(obj))
}

/// How many nodes DaemonSets run on: the Node objects, or the one node this server is.
fn node_count(core: &Core) -> u64 {
    let n = core.store.list(NODES, None).1.len() as u64;
    n.max(1)
}

/// What became of a status write.
#[derive(Debug, PartialEq, Eq)]
enum Written {
    Done,
    /// A newer write won the race (409).
    Conflict,
    /// The object is gone, or the write failed (logged).
    Dropped,
}

/// PUT on the status subresource, guarded by the resourceVersion `obj` was read at.
fn write_status(core: &Core, key: &Key, obj: &Value, status: Value) -> Written {
    let Some(ri) = super::gc::resource_info(core, &key.resource) else {
        return Written::Dropped;
    };
    let mut body = obj.clone();
    body["status"] = status;
    let opts = WriteOptions {
        manager: MANAGER.into(),
        ..Default::default()
    };
    match objects::update(core, &ri, &key.namespace, &key.name, Some("status"), body, &opts) {
        Ok(_) => Written::Done,
        // Lost a race (a newer write, or the object went): its event brings the simulator back.
        Err(e) if e.code == 409 => Written::Conflict,
        Err(e) if e.code == 404 => Written::Dropped,
        Err(e) => {
            tracing::warn!(
                resource = %key.resource, namespace = %key.namespace, name = %key.name, error = %e,
                "simulated workload status not written"
            );
            Written::Dropped
        }
    }
}

/// Starts the simulator's task: it wakes on every new revision and when a delay is up.
pub fn spawn(core: Arc<Core>, settings: Settings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut revisions = core.store.subscribe();
        let mut shutdown = core.shutdown.subscribe();
        let mut sim = Some(Simulator::new(settings));
        let mut needs_resync = true;
        tracing::info!(delay = ?settings.delay, "workload simulator on");
        loop {
            let (c, mut s, resync) = (core.clone(), sim.take().expect("simulator state"), needs_resync);
            let now = Instant::now();
            // Writes commit to disk: off the async threads, as the other controllers.
            let pass = tokio::task::spawn_blocking(move || {
                if resync {
                    s.resync(&c, now);
                }
                let ok = s.on_events(&c, now);
                if ok {
                    s.fire(&c, now);
                }
                (s, !ok)
            })
            .await;
            match pass {
                Ok((s, r)) => {
                    sim = Some(s);
                    needs_resync = r;
                }
                Err(e) => {
                    tracing::error!(error = %e, "workload simulator pass panicked; resyncing");
                    sim = Some(Simulator::new(settings));
                    needs_resync = true;
                }
            }
            if needs_resync {
                continue;
            }
            let state = sim.as_ref().expect("simulator state");
            if core.store.revision() > state.last {
                continue;
            }
            let due = state.next_due();
            tokio::select! {
                changed = revisions.changed() => if changed.is_err() { return },
                _ = async {
                    match due {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {}
                _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
            }
        }
    })
}

#[cfg(test)]
mod tests;
