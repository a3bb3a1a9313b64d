//! One kind's cache: the objects (ordered by namespace and name, so a namespace is a range), an
//! index from owner uid to the objects it owns (by owner reference or by the host's owner-uid
//! label, so children in other namespaces are found too), the change events every subscriber
//! receives, and readiness.
//!
//! It knows nothing of kube's watch machinery: [`crate::cache`] feeds it from a kube-rs `watcher`,
//! and tests fill it directly. Readiness is a `tokio::sync::watch`, which wakes every waiter (kube's
//! `Store::wait_until_ready` wakes only the last of several concurrent waiters: plugins sharing a
//! kind that started while its first list was slow waited forever).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, RwLock};

use kube::ResourceExt;
use kube::api::ApiResource;

use crate::object::{CachedObject, WatchedObject};
use serde_json::Value;
use tokio::sync::{broadcast, watch};
use wasmop_apimachinery::selector::LabelSelector;
use wasmop_contract::Gvk;

/// Label on every child: the owner's uid (children in other namespaces are found by it).
pub const OWNER_UID_LABEL: &str = "wasmop.io/owner-uid";

/// An object's place in its store: namespace (empty when cluster-scoped) and name.
pub type StoreKey = (String, String);

/// A change seen in a store.
#[derive(Debug, Clone)]
pub enum KindEvent {
    Applied(Arc<CachedObject>),
    Deleted(Arc<CachedObject>),
}

/// The cached objects and the owner index.
#[derive(Default)]
struct Data {
    objects: BTreeMap<StoreKey, Arc<CachedObject>>,
    owners: HashMap<String, HashSet<StoreKey>>,
}

impl Data {
    fn insert(&mut self, key: StoreKey, obj: Arc<CachedObject>) -> Option<Arc<CachedObject>> {
        let old = self.objects.insert(key.clone(), obj.clone());
        if let Some(old) = &old {
            self.unindex(&key, old);
        }
        for uid in owner_uids(&obj) {
            self.owners.entry(uid).or_default().insert(key.clone());
        }
        old
    }

    fn remove(&mut self, key: &StoreKey) -> Option<Arc<CachedObject>> {
        let old = self.objects.remove(key)?;
        self.unindex(key, &old);
        Some(old)
    }

    fn unindex(&mut self, key: &StoreKey, obj: &CachedObject) {
        for uid in owner_uids(obj) {
            if let Some(set) = self.owners.get_mut(&uid) {
                set.remove(key);
                if set.is_empty() {
                    self.owners.remove(&uid);
                }
            }
        }
    }
}

/// The uids an object names as owners: owner references, and the host's owner-uid label.
fn owner_uids(obj: &CachedObject) -> impl Iterator<Item = String> + '_ {
    let by_ref = obj.owner_references().iter().map(|r| r.uid.clone());
    let by_label = obj.labels().get(OWNER_UID_LABEL).cloned();
    by_ref.chain(by_label)
}

/// The store key of an object.
pub fn key_of<K: ResourceExt>(obj: &K) -> StoreKey {
    (obj.namespace().unwrap_or_default(), obj.name_any())
}

/// See the module docs.
pub struct KindStore {
    pub gvk: Gvk,
    pub resource: ApiResource,
    pub namespaced: bool,
    data: RwLock<Data>,
    /// Objects of a relist in progress (between the watcher's `Init` and `InitDone`).
    relist: std::sync::Mutex<Option<Data>>,
    events: broadcast::Sender<KindEvent>,
    ready: watch::Sender<bool>,
}

impl std::fmt::Debug for KindStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindStore")
            .field("gvk", &self.gvk)
            .field("objects", &self.len())
            .finish()
    }
}

impl KindStore {
    pub fn new(gvk: Gvk, resource: ApiResource, namespaced: bool) -> KindStore {
        KindStore {
            gvk,
            resource,
            namespaced,
            data: RwLock::default(),
            relist: std::sync::Mutex::new(None),
            events: broadcast::channel(4096).0,
            ready: watch::channel(false).0,
        }
    }

    /// A store for a kind whose plural is the lower-case kind plus `s` (tests).
    pub fn for_kind(gvk: &Gvk, namespaced: bool) -> KindStore {
        let resource = ApiResource {
            group: gvk.group.clone(),
            version: gvk.version.clone(),
            api_version: gvk.api_version(),
            kind: gvk.kind.clone(),
            plural: format!("{}s", gvk.kind.to_lowercase()),
        };
        KindStore::new(gvk.clone(), resource, namespaced)
    }

    /// Changes from now on. Lagging behind by more than the channel holds shows as `Lagged`.
    pub fn subscribe(&self) -> broadcast::Receiver<KindEvent> {
        self.events.subscribe()
    }

    pub fn len(&self) -> usize {
        self.data.read().expect("store lock").objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn scoped_key(&self, namespace: Option<&str>, name: &str) -> StoreKey {
        let ns = if self.namespaced {
            namespace.unwrap_or("")
        } else {
            ""
        };
        (ns.to_string(), name.to_string())
    }

    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<CachedObject>> {
        let key = self.scoped_key(namespace, name);
        self.data.read().expect("store lock").objects.get(&key).cloned()
    }

    /// Objects owned by `uid` (owner reference or owner-uid label): O(children).
    pub fn owned_by(&self, uid: &str) -> Vec<Arc<CachedObject>> {
        let data = self.data.read().expect("store lock");
        let Some(keys) = data.owners.get(uid) else {
            return Vec::new();
        };
        let mut out: Vec<_> = keys.iter().filter_map(|k| data.objects.get(k).cloned()).collect();
        // A stable order for plugins and golden comparisons (children are few).
        out.sort_by_key(|o| key_of(o.as_ref()));
        out
    }

    /// Objects in `namespace` (None: all) matching `selector`, in namespace and name order. A
    /// namespace is a range of the ordered map, not a scan of the kind.
    pub fn list(&self, namespace: Option<&str>, selector: Option<&LabelSelector>) -> Vec<Arc<CachedObject>> {
        let data = self.data.read().expect("store lock");
        let matches = |o: &&Arc<CachedObject>| selector.is_none_or(|s| s.matches(labels_json(o).as_ref()));
        match namespace.filter(|_| self.namespaced) {
            Some(ns) => data
                .objects
                .range((ns.to_string(), String::new())..)
                .take_while(|((n, _), _)| n == ns)
                .map(|(_, o)| o)
                .filter(matches)
                .cloned()
                .collect(),
            None => data.objects.values().filter(matches).cloned().collect(),
        }
    }

    /// Keys of every object (resync, start-up).
    pub fn keys(&self) -> Vec<StoreKey> {
        self.data
            .read()
            .expect("store lock")
            .objects
            .keys()
            .cloned()
            .collect()
    }

    /// An object was created or changed.
    pub fn apply(&self, obj: impl Into<WatchedObject>) {
        let obj = Arc::new(obj.into().into_cached(&self.resource));
        self.data
            .write()
            .expect("store lock")
            .insert(key_of(obj.as_ref()), obj.clone());
        let _ = self.events.send(KindEvent::Applied(obj));
    }

    /// An object was deleted.
    pub fn delete(&self, obj: impl Into<WatchedObject>) {
        let obj = obj.into();
        let removed = self.data.write().expect("store lock").remove(&key_of(&obj));
        let _ = self.events.send(KindEvent::Deleted(
            removed.unwrap_or_else(|| Arc::new(obj.into_cached(&self.resource))),
        ));
    }

    /// A (re)list begins: objects arrive with [`relist_apply`](Self::relist_apply) and replace the
    /// store's content at [`relist_done`](Self::relist_done).
    pub fn relist_start(&self) {
        *self.relist.lock().expect("relist lock") = Some(Data::default());
    }

    pub fn relist_apply(&self, obj: impl Into<WatchedObject>) {
        let obj = Arc::new(obj.into().into_cached(&self.resource));
        let mut relist = self.relist.lock().expect("relist lock");
        relist
            .get_or_insert_with(Data::default)
            .insert(key_of(obj.as_ref()), obj);
    }

    /// The relist is complete: the store holds exactly what it listed. Subscribers get an
    /// `Applied` for every new or changed object and a `Deleted` for every object that went while
    /// the watch was down; the store is ready from now on.
    pub fn relist_done(&self) {
        let new = self
            .relist
            .lock()
            .expect("relist lock")
            .take()
            .unwrap_or_default();
        let old = std::mem::replace(&mut *self.data.write().expect("store lock"), new);
        let data = self.data.read().expect("store lock");
        let mut events = Vec::new();
        for (key, obj) in &data.objects {
            let changed = old
                .objects
                .get(key)
                .is_none_or(|o| o.resource_version() != obj.resource_version());
            if changed {
                events.push(KindEvent::Applied(obj.clone()));
            }
        }
        for (key, obj) in &old.objects {
            if !data.objects.contains_key(key) {
                events.push(KindEvent::Deleted(obj.clone()));
            }
        }
        drop(data);
        for e in events {
            let _ = self.events.send(e);
        }
        self.ready.send_replace(true);
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until the first list has filled the store (every waiter is woken).
    pub async fn ready(&self) {
        let mut rx = self.ready.subscribe();
        let _ = rx.wait_for(|r| *r).await;
    }
}

/// Labels as the selector matcher reads them.
pub fn labels_json(o: &CachedObject) -> Option<serde_json::Map<String, Value>> {
    o.metadata.labels.as_ref().map(|l| {
        l.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn object(v: Value) -> kube::api::DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    fn cm(ns: &str, name: &str, owner: Option<&str>, rv: &str) -> kube::api::DynamicObject {
        let mut v = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": ns, "name": name, "resourceVersion": rv, "uid": format!("{ns}-{name}")}});
        if let Some(uid) = owner {
            v["metadata"]["ownerReferences"] =
                json!([{"apiVersion": "v1", "kind": "X", "name": "x", "uid": uid}]);
        }
        object(v)
    }

    fn store() -> KindStore {
        KindStore::for_kind(&Gvk::new("", "v1", "ConfigMap"), true)
    }

    #[test]
    fn children_are_found_by_owner_uid_and_follow_changes() {
        let s = store();
        s.apply(cm("a", "one", Some("u1"), "1"));
        s.apply(cm("a", "two", Some("u1"), "1"));
        s.apply(cm("b", "three", Some("u2"), "1"));
        let mut labelled = cm("c", "four", None, "1");
        labelled.labels_mut().insert(OWNER_UID_LABEL.into(), "u1".into());
        s.apply(labelled);
        let names = |uid| s.owned_by(uid).iter().map(|o| o.name_any()).collect::<Vec<_>>();
        assert_eq!(names("u1"), ["one", "two", "four"]);
        // Re-owned: the index follows.
        s.apply(cm("a", "two", Some("u2"), "2"));
        assert_eq!(names("u1"), ["one", "four"]);
        assert_eq!(names("u2"), ["two", "three"]);
        s.delete(cm("a", "one", Some("u1"), "2"));
        assert_eq!(names("u1"), ["four"]);
        assert!(names("nobody").is_empty());
    }

    #[test]
    fn a_namespace_is_a_range() {
        let s = store();
        for (ns, n) in [("a", "1"), ("ab", "2"), ("a", "3"), ("b", "4"), ("", "5")] {
            s.apply(cm(ns, n, None, "1"));
        }
        let names = |ns| s.list(ns, None).iter().map(|o| o.name_any()).collect::<Vec<_>>();
        assert_eq!(names(Some("a")), ["1", "3"]);
        assert_eq!(names(Some("ab")), ["2"]);
        assert_eq!(names(None).len(), 5);
        let sel = LabelSelector::parse("x=y").unwrap();
        assert!(s.list(None, Some(&sel)).is_empty());
    }

    #[test]
    fn only_the_hosts_own_managed_fields_are_kept() {
        let s = store();
        let mut o = cm("a", "x", None, "1");
        o.metadata.managed_fields = Some(
            [
                "kubectl-client-side-apply",
                "wasmop/pdb-guard",
                "kube-controller-manager",
            ]
            .iter()
            .map(|m| serde_json::from_value(json!({"manager": m, "operation": "Apply"})).unwrap())
            .collect(),
        );
        s.apply(o);
        let kept = s.get(Some("a"), "x").unwrap().managed_fields();
        let managers: Vec<_> = kept.iter().filter_map(|m| m.manager.as_deref()).collect();
        assert_eq!(managers, ["wasmop/pdb-guard"]);
        let mut o = cm("a", "y", None, "1");
        o.metadata.managed_fields = Some(vec![
            serde_json::from_value(json!({"manager": "kubectl", "operation": "Update"})).unwrap(),
        ]);
        s.relist_start();
        s.relist_apply(o);
        s.relist_done();
        assert!(s.get(Some("a"), "y").unwrap().managed_fields().is_empty());
    }

    #[tokio::test]
    async fn a_relist_reports_what_changed_and_wakes_every_waiter() {
        let s = Arc::new(store());
        let waiters: Vec<_> = (0..6)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.ready().await })
            })
            .collect();
        tokio::task::yield_now().await;
        s.relist_start();
        s.relist_apply(cm("a", "keep", None, "1"));
        s.relist_apply(cm("a", "gone", None, "1"));
        s.relist_done();
        for w in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(5), w)
                .await
                .expect("every waiter wakes")
                .unwrap();
        }
        let mut rx = s.subscribe();
        s.relist_start();
        s.relist_apply(cm("a", "keep", None, "1"));
        s.relist_apply(cm("a", "new", None, "1"));
        s.relist_done();
        let mut seen = Vec::new();
        while let Ok(e) = rx.try_recv() {
            seen.push(match e {
                KindEvent::Applied(o) => format!("+{}", o.name_any()),
                KindEvent::Deleted(o) => format!("-{}", o.name_any()),
            });
        }
        assert_eq!(seen, ["+new", "-gone"], "unchanged objects are not reported");
        assert_eq!(s.len(), 2);
    }
}
