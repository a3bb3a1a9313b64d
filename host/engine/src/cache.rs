//! Watches and caches: one kube-rs `watcher` + `reflector` per kind, shared by every plugin that needs
//! the kind, however many there are. Each watch fans its changes out on a broadcast channel that the
//! plugins' controllers subscribe to, and its reflector store answers snapshot and guest cache reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::discovery::Scope;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;
use tokio::sync::broadcast;
use wasmop_apimachinery::selector::LabelSelector;
use wasmop_contract::{CacheReader, Gvk, NamespaceScope};

use crate::EngineError;

/// A change seen by a shared watch.
#[derive(Debug, Clone)]
pub enum KindEvent {
    Applied(Arc<DynamicObject>),
    Deleted(Arc<DynamicObject>),
    /// The watch (re)listed: every object may have changed.
    Resynced,
}

/// One kind's shared watch and cache.
pub struct KindWatch {
    pub gvk: Gvk,
    pub resource: ApiResource,
    pub namespaced: bool,
    pub store: Store<DynamicObject>,
    events: broadcast::Sender<KindEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for KindWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KindWatch")
            .field("gvk", &self.gvk)
            .field("objects", &self.store.state().len())
            .finish()
    }
}

impl Drop for KindWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KindWatch {
    pub fn subscribe(&self) -> broadcast::Receiver<KindEvent> {
        self.events.subscribe()
    }

    /// The cached object as JSON (with `apiVersion`/`kind`, which list items may lack).
    pub fn to_json(&self, obj: &DynamicObject) -> Value {
        let mut v = serde_json::to_value(obj).unwrap_or(Value::Null);
        if let Some(m) = v.as_object_mut() {
            m.insert("apiVersion".into(), self.resource.api_version.clone().into());
            m.insert("kind".into(), self.resource.kind.clone().into());
        }
        v
    }

    pub fn get(&self, namespace: Option<&str>, name: &str) -> Option<Arc<DynamicObject>> {
        let ns = if self.namespaced { namespace } else { None };
        self.store
            .get(&reflector::ObjectRef::new_with(name, self.resource.clone()).within_opt(ns))
    }

    /// Cached objects in `namespace` (None: all) matching `selector`.
    pub fn list(&self, namespace: Option<&str>, selector: Option<&LabelSelector>) -> Vec<Arc<DynamicObject>> {
        let mut out: Vec<Arc<DynamicObject>> = self
            .store
            .state()
            .into_iter()
            .filter(|o| namespace.is_none_or(|ns| o.namespace().as_deref() == Some(ns)))
            .filter(|o| selector.is_none_or(|s| s.matches(labels_json(o).as_ref())))
            .collect();
        out.sort_by_key(|o| (o.namespace(), o.name_any()));
        out
    }

    /// Waits until the first list has filled the cache.
    pub async fn ready(&self) {
        let _ = self.store.wait_until_ready().await;
    }
}

trait WithinOpt {
    fn within_opt(self, ns: Option<&str>) -> Self;
}

impl WithinOpt for reflector::ObjectRef<DynamicObject> {
    fn within_opt(self, ns: Option<&str>) -> Self {
        match ns {
            Some(ns) => self.within(ns),
            None => self,
        }
    }
}

fn labels_json(o: &DynamicObject) -> Option<serde_json::Map<String, Value>> {
    o.metadata.labels.as_ref().map(|l| {
        l.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect()
    })
}

/// The shared watches, started on first use.
pub struct Caches {
    client: Client,
    kinds: Mutex<HashMap<Gvk, Arc<KindWatch>>>,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("kinds", &self.kinds.lock().map(|k| k.len()).unwrap_or(0))
            .finish()
    }
}

impl Caches {
    pub fn new(client: Client) -> Caches {
        Caches {
            client,
            kinds: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, gvk: &Gvk) -> Option<Arc<KindWatch>> {
        self.kinds.lock().expect("caches lock").get(gvk).cloned()
    }

    /// Kinds being watched.
    pub fn watched(&self) -> Vec<Gvk> {
        self.kinds.lock().expect("caches lock").keys().cloned().collect()
    }

    /// The shared watch of `gvk`, started if needed (the kind must be served: discovery resolves it).
    pub async fn watch(&self, gvk: &Gvk) -> Result<Arc<KindWatch>, EngineError> {
        if let Some(w) = self.get(gvk) {
            return Ok(w);
        }
        let (resource, caps) = kube::discovery::pinned_kind(
            &self.client,
            &GroupVersionKind::gvk(&gvk.group, &gvk.version, &gvk.kind),
        )
        .await
        .map_err(|e| EngineError::UnknownKind {
            gvk: gvk.clone(),
            reason: e.to_string(),
        })?;
        let mut kinds = self.kinds.lock().expect("caches lock");
        if let Some(w) = kinds.get(gvk) {
            return Ok(w.clone());
        }
        let (events, _) = broadcast::channel(4096);
        let writer = reflector::store::Writer::new(resource.clone());
        let store = writer.as_reader();
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &resource);
        let tx = events.clone();
        let name = gvk.to_string();
        let task = tokio::spawn(async move {
            let stream =
                reflector::reflector(writer, watcher(api, watcher::Config::default()).default_backoff());
            let mut stream = std::pin::pin!(stream);
            while let Some(item) = stream.next().await {
                let event = match item {
                    Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                        KindEvent::Applied(Arc::new(o))
                    }
                    Ok(watcher::Event::Delete(o)) => KindEvent::Deleted(Arc::new(o)),
                    Ok(watcher::Event::InitDone) => KindEvent::Resynced,
                    Ok(watcher::Event::Init) => continue,
                    Err(e) => {
                        tracing::warn!(kind = %name, error = %e, "watch error; retrying with backoff");
                        continue;
                    }
                };
                let _ = tx.send(event);
            }
        });
        let w = Arc::new(KindWatch {
            gvk: gvk.clone(),
            resource,
            namespaced: matches!(caps.scope, Scope::Namespaced),
            store,
            events,
            task,
        });
        kinds.insert(gvk.clone(), w.clone());
        Ok(w)
    }

    /// Like [`Caches::watch`], retrying until the kind is served (a CRD applied later).
    pub async fn watch_eventually(&self, gvk: &Gvk) -> Arc<KindWatch> {
        let mut logged = false;
        loop {
            match self.watch(gvk).await {
                Ok(w) => return w,
                Err(e) => {
                    if !logged {
                        tracing::info!(kind = %gvk, error = %e, "kind not served yet; waiting for it");
                        logged = true;
                    }
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    }

    /// Stops the watches of kinds nobody needs any more.
    pub fn retain(&self, needed: &[Gvk]) {
        self.kinds
            .lock()
            .expect("caches lock")
            .retain(|g, _| needed.contains(g));
    }
}

/// A plugin's read-only view of the caches: only its declared kinds and namespaces.
pub struct PluginCache {
    pub caches: Arc<Caches>,
    pub allowed: Vec<Gvk>,
    pub scope: NamespaceScope,
}

impl CacheReader for PluginCache {
    fn get(&self, kind: &Gvk, namespace: Option<&str>, name: &str) -> Option<Value> {
        if !self.allowed.contains(kind) || !self.scope.allows(namespace) {
            return None;
        }
        let w = self.caches.get(kind)?;
        w.get(namespace, name).map(|o| strip(w.to_json(&o)))
    }

    fn list(&self, kind: &Gvk, namespace: Option<&str>, label_selector: Option<&str>) -> Vec<Value> {
        if !self.allowed.contains(kind) {
            return Vec::new();
        }
        let Some(w) = self.caches.get(kind) else {
            return Vec::new();
        };
        let selector = match label_selector.map(LabelSelector::parse) {
            Some(Ok(s)) => Some(s),
            Some(Err(_)) => return Vec::new(),
            None => None,
        };
        w.list(namespace, selector.as_ref())
            .into_iter()
            .filter(|o| self.scope.allows(o.namespace().as_deref()))
            .map(|o| strip(w.to_json(&o)))
            .collect()
    }
}

/// Objects cross to plugins without `managedFields`.
pub fn strip(mut v: Value) -> Value {
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    v
}
