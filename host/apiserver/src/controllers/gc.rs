//! Garbage collection by ownerReferences, as the kube-controller-manager's garbage collector does it:
//! dependents whose owners are all gone are deleted (Background); an owner held by the `orphan`
//! finalizer has its dependents' references removed, then the finalizer; an owner held by
//! `foregroundDeletion` has its dependents deleted first and is released when none is left.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::Core;
use crate::admission::{finalizers, is_terminating, meta, meta_str};
use crate::objects::{self, DeleteOptions, WriteOptions};
use crate::patch::PatchType;
use crate::registry::ResourceInfo;
use crate::store::{Event, EventType, Key};

const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// The ownership graph, kept current from the event stream.
#[derive(Debug, Default)]
pub struct GarbageCollector {
    /// uid → where the object with that uid lives.
    uids: HashMap<String, Key>,
    /// owner uid → its dependents.
    dependents: HashMap<String, HashSet<Key>>,
    /// dependent → the owner uids it references.
    owners: HashMap<Key, Vec<String>>,
}

fn owner_uids(obj: &Value) -> Vec<String> {
    meta(obj)
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
        .map(|refs| {
            refs.iter()
                .filter_map(|r| r.get("uid").and_then(Value::as_str).map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn resource_info(core: &Core, resource: &str) -> Option<Arc<ResourceInfo>> {
    let (group, plural) = resource.split_once('/')?;
    core.registry.lookup_any_version(group, plural)
}

fn controller_opts() -> WriteOptions {
    WriteOptions {
        manager: "garbage-collector".into(),
        ..Default::default()
    }
}

/// Merge-patches `metadata` of the object at `key`, guarded by its resourceVersion.
fn patch_metadata(core: &Core, key: &Key, obj: &Value, metadata: Value) {
    let Some(ri) = resource_info(core, &key.resource) else {
        return;
    };
    let mut metadata = metadata;
    metadata["resourceVersion"] = json!(meta_str(obj, "resourceVersion").unwrap_or(""));
    let body = serde_json::to_vec(&json!({"metadata": metadata})).unwrap_or_default();
    if let Err(e) = objects::patch(
        core,
        &ri,
        &key.namespace,
        &key.name,
        None,
        PatchType::Merge,
        &body,
        &controller_opts(),
    ) && e.code != 404
        && e.code != 409
    {
        tracing::warn!(object = %key.name, error = %e, "garbage collector update failed");
    }
}

fn delete(core: &Core, key: &Key) {
    let Some(ri) = resource_info(core, &key.resource) else {
        return;
    };
    let opts = DeleteOptions {
        propagation: Some("Background".into()),
        ..Default::default()
    };
    if let Err(e) = objects::delete(core, &ri, &key.namespace, &key.name, &opts)
        && e.code != 404
    {
        tracing::warn!(object = %key.name, error = %e, "garbage collector delete failed");
    }
}

impl GarbageCollector {
    fn index(&mut self, key: &Key, obj: &Value) {
        self.unindex(key);
        if let Some(uid) = meta_str(obj, "uid") {
            self.uids.insert(uid.to_string(), key.clone());
        }
        let owners = owner_uids(obj);
        for o in &owners {
            self.dependents.entry(o.clone()).or_default().insert(key.clone());
        }
        if !owners.is_empty() {
            self.owners.insert(key.clone(), owners);
        }
    }

    fn unindex(&mut self, key: &Key) {
        if let Some(owners) = self.owners.remove(key) {
            for o in owners {
                if let Some(set) = self.dependents.get_mut(&o) {
                    set.remove(key);
                    if set.is_empty() {
                        self.dependents.remove(&o);
                    }
                }
            }
        }
    }

    fn alive(&self, core: &Core, uid: &str) -> bool {
        self.uids
            .get(uid)
            .and_then(|k| core.store.get(k))
            .is_some_and(|o| meta_str(&o, "uid") == Some(uid))
    }

    pub fn resync(&mut self, core: &Core, all: &[(Key, Arc<Value>)]) {
        *self = GarbageCollector::default();
        for (k, o) in all {
            self.index(k, o);
        }
        for (k, o) in all {
            if !owner_uids(o).is_empty() {
                self.check_dependent(core, k);
            }
            if is_terminating(o) {
                self.check_owner(core, k);
            }
        }
    }

    pub fn on_event(&mut self, core: &Core, e: &Event) {
        let key = Key {
            resource: e.key.resource.clone(),
            namespace: e.key.namespace.clone(),
            name: e.key.name.clone(),
        };
        match e.type_ {
            EventType::Deleted => {
                let uid = meta_str(&e.object, "uid").unwrap_or("").to_string();
                let owners = self.owners.get(&key).cloned().unwrap_or_default();
                self.unindex(&key);
                if self.uids.get(&uid) == Some(&key) {
                    self.uids.remove(&uid);
                }
                for dep in self.dependents.get(&uid).cloned().unwrap_or_default() {
                    self.check_dependent(core, &dep);
                }
                // An owner in foreground deletion may have been waiting for this dependent.
                for o in owners {
                    if let Some(owner_key) = self.uids.get(&o).cloned() {
                        self.check_owner(core, &owner_key);
                    }
                }
            }
            EventType::Added | EventType::Modified => {
                self.index(&key, &e.object);
                if e.type_ == EventType::Added && !owner_uids(&e.object).is_empty() {
                    self.check_dependent(core, &key);
                }
                if is_terminating(&e.object) {
                    self.check_owner(core, &key);
                }
            }
        }
    }

    /// Deletes a dependent whose owners are all gone; drops references to owners that are gone.
    fn check_dependent(&self, core: &Core, key: &Key) {
        let Some(obj) = core.store.get(key) else { return };
        let refs = meta(&obj)
            .and_then(|m| m.get("ownerReferences"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if refs.is_empty() {
            return;
        }
        let (alive, dangling): (Vec<&Value>, Vec<&Value>) = refs.iter().partition(|r| {
            r.get("uid")
                .and_then(Value::as_str)
                .is_some_and(|u| self.alive(core, u))
        });
        if alive.is_empty() {
            if !is_terminating(&obj) {
                delete(core, key);
            }
        } else if !dangling.is_empty() {
            patch_metadata(core, key, &obj, json!({"ownerReferences": alive}));
        }
    }

    /// Handles the `orphan` and `foregroundDeletion` finalizers of an owner being deleted.
    fn check_owner(&self, core: &Core, key: &Key) {
        let Some(owner) = core.store.get(key) else { return };
        let fins = finalizers(&owner);
        let uid = meta_str(&owner, "uid").unwrap_or("").to_string();
        let deps: Vec<Key> = self
            .dependents
            .get(&uid)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if fins.iter().any(|f| f == ORPHAN) {
            for dep in &deps {
                if let Some(obj) = core.store.get(dep) {
                    let kept: Vec<Value> = meta(&obj)
                        .and_then(|m| m.get("ownerReferences"))
                        .and_then(Value::as_array)
                        .map(|refs| {
                            refs.iter()
                                .filter(|r| r.get("uid").and_then(Value::as_str) != Some(&uid))
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    let refs = if kept.is_empty() {
                        Value::Null
                    } else {
                        Value::Array(kept)
                    };
                    patch_metadata(core, dep, &obj, json!({"ownerReferences": refs}));
                }
            }
            let rest: Vec<&String> = fins.iter().filter(|f| *f != ORPHAN).collect();
            patch_metadata(core, key, &owner, json!({"finalizers": rest}));
            return;
        }
        if fins.iter().any(|f| f == FOREGROUND) {
            let remaining: Vec<&Key> = deps.iter().filter(|d| core.store.get(d).is_some()).collect();
            for dep in &remaining {
                if core.store.get(dep).is_some_and(|o| !is_terminating(&o)) {
                    delete(core, dep);
                }
            }
            if remaining.iter().all(|d| core.store.get(d).is_none()) {
                let rest: Vec<&String> = fins.iter().filter(|f| *f != FOREGROUND).collect();
                patch_metadata(core, key, &owner, json!({"finalizers": rest}));
            }
        }
    }
}
