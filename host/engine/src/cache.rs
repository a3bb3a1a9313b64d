//! Where controllers get their [`KindStore`]s ([`Cache`]): in production the shared watches
//! ([`Caches`]: one kube-rs `watcher` per kind for every plugin that needs it, started on first use
//! after discovery resolves the kind), in tests an in-memory [`MemoryCache`]. Also here: the
//! read-only view a plugin's guest gets ([`PluginCache`]), limited to exactly what it declared.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use kube::api::GroupVersionKind;
use kube::discovery::Scope;
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::Value;
use wasmop_apimachinery::selector::LabelSelector;
use wasmop_contract::{BoxFuture, CacheReader, Gvk, Metadata};

use crate::metrics::{self, Metrics};
use crate::object::{CachedObject, WatchedObject};
use crate::store::{KindStore, labels_json};

/// Where a controller's stores come from.
pub trait Cache: Send + Sync + 'static {
    /// The store of `gvk`, its watch started if needed; `Err` with the reason while the kind is not
    /// served (a CRD not applied yet).
    fn store<'a>(&'a self, gvk: &'a Gvk) -> BoxFuture<'a, Result<Arc<KindStore>, String>>;

    /// The store of `gvk` if it is already there.
    fn get(&self, gvk: &Gvk) -> Option<Arc<KindStore>>;
}

/// A watch and its store.
struct Watched {
    store: Arc<KindStore>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The shared watches of the engine (see the module docs).
pub struct Caches {
    client: Client,
    kinds: Mutex<HashMap<Gvk, Watched>>,
    metrics: Metrics,
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches")
            .field("kinds", &self.kinds.lock().map(|k| k.len()).unwrap_or(0))
            .finish()
    }
}

impl Caches {
    /// Watches through `client`, counting restarts and relists in `metrics`.
    pub fn new(client: Client, metrics: Metrics) -> Caches {
        Caches {
            client,
            kinds: Mutex::new(HashMap::new()),
            metrics,
        }
    }

    /// Objects cached per watched kind.
    pub fn sizes(&self) -> Vec<(Gvk, usize)> {
        self.kinds
            .lock()
            .expect("caches lock")
            .iter()
            .map(|(g, w)| (g.clone(), w.store.len()))
            .collect()
    }

    /// Kinds being watched.
    pub fn watched(&self) -> Vec<Gvk> {
        self.kinds.lock().expect("caches lock").keys().cloned().collect()
    }

    /// Stops the watches of kinds nobody needs any more.
    pub fn retain(&self, needed: &[Gvk]) {
        self.kinds
            .lock()
            .expect("caches lock")
            .retain(|g, _| needed.contains(g));
    }

    async fn start(&self, gvk: &Gvk) -> Result<Arc<KindStore>, String> {
        if let Some(s) = self.get(gvk) {
            return Ok(s);
        }
        let (resource, caps) = kube::discovery::pinned_kind(
            &self.client,
            &GroupVersionKind::gvk(&gvk.group, &gvk.version, &gvk.kind),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut kinds = self.kinds.lock().expect("caches lock");
        if let Some(w) = kinds.get(gvk) {
            return Ok(w.store.clone());
        }
        let store = Arc::new(KindStore::new(
            gvk.clone(),
            resource.clone(),
            matches!(caps.scope, Scope::Namespaced),
        ));
        let api: Api<WatchedObject> = Api::all_with(self.client.clone(), &resource);
        let task = tokio::spawn(feed(store.clone(), api, self.metrics.clone()));
        kinds.insert(
            gvk.clone(),
            Watched {
                store: store.clone(),
                task,
            },
        );
        Ok(store)
    }
}

/// Feeds a store from a kube-rs watcher (which resumes from its last resourceVersion after a
/// failed watch and relists after 410 Gone), waiting [`WatchRetry`]'s delay after each error.
async fn feed(store: Arc<KindStore>, api: Api<WatchedObject>, metrics: Metrics) {
    let labels = metrics::kind(&store.gvk);
    let stream = watcher(api, watcher::Config::default());
    let mut stream = std::pin::pin!(stream);
    let mut retry = WatchRetry::default();
    while let Some(item) = stream.next().await {
        match item {
            Ok(watcher::Event::Apply(o)) => store.apply(o),
            Ok(watcher::Event::Delete(o)) => store.delete(o),
            Ok(watcher::Event::Init) => {
                metrics.watch_relists.get_or_create(&labels).inc();
                store.relist_start()
            }
            Ok(watcher::Event::InitApply(o)) => store.relist_apply(o),
            Ok(watcher::Event::InitDone) => store.relist_done(),
            Err(e) => {
                metrics.watch_restarts.get_or_create(&labels).inc();
                let gone = matches!(&e, watcher::Error::WatchError(s) if s.code == 410);
                let delay = retry.delay(gone, tokio::time::Instant::now());
                tracing::warn!(kind = %store.gvk, error = %e, ?delay, "watch error; retrying");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// How long a kind's watch waits after an error: client-go's reflector backoff (800 ms, doubling,
/// "equal jitter" so that kinds do not retry in step), but capped at 10 s rather than 30 s (with
/// full jitter, up to 60 s), so that an API server that comes back is seen within about 10 s and
/// changes made meanwhile are reconciled within 30 s of its return; a few kinds' watches every
/// 10 s cost an absent server nothing. A 410 Gone (the history moved past the watch's revision)
/// relists at once: waiting would only delay every plugin of the kind, and the relist is what
/// the server asked for. Only the first 410 of a run of errors is free, so a history that keeps
/// expiring backs off like any other error. Errors more than [`WatchRetry::RESET`] apart start
/// from the base again.
#[derive(Debug, Default)]
struct WatchRetry {
    /// Consecutive errors (no more than RESET apart).
    errors: u32,
    last: Option<tokio::time::Instant>,
}

impl WatchRetry {
    const BASE: std::time::Duration = std::time::Duration::from_millis(800);
    const CAP: std::time::Duration = std::time::Duration::from_secs(10);
    const RESET: std::time::Duration = std::time::Duration::from_secs(60);

    fn delay(&mut self, gone: bool, now: tokio::time::Instant) -> std::time::Duration {
        if self.last.is_some_and(|t| now.duration_since(t) > Self::RESET) {
            self.errors = 0;
        }
        self.last = Some(now);
        self.errors = self.errors.saturating_add(1);
        if gone && self.errors == 1 {
            return std::time::Duration::ZERO;
        }
        let factor = 2u32.saturating_pow(self.errors.saturating_sub(1).min(16));
        let ceiling = Self::BASE.saturating_mul(factor).min(Self::CAP);
        let half = ceiling / 2;
        half + rand::Rng::random_range(&mut rand::rng(), std::time::Duration::ZERO..=half)
    }
}

impl Cache for Caches {
    fn store<'a>(&'a self, gvk: &'a Gvk) -> BoxFuture<'a, Result<Arc<KindStore>, String>> {
        Box::pin(self.start(gvk))
    }

    fn get(&self, gvk: &Gvk) -> Option<Arc<KindStore>> {
        self.kinds
            .lock()
            .expect("caches lock")
            .get(gvk)
            .map(|w| w.store.clone())
    }
}

/// Stores filled by hand: the engine's unit tests, and offline runs.
#[derive(Debug, Default)]
pub struct MemoryCache {
    stores: Mutex<HashMap<Gvk, Arc<KindStore>>>,
}

impl MemoryCache {
    /// Serves `store` (replacing any store of its kind).
    pub fn add(&self, store: Arc<KindStore>) {
        self.stores
            .lock()
            .expect("memory cache lock")
            .insert(store.gvk.clone(), store);
    }
}

impl Cache for MemoryCache {
    fn store<'a>(&'a self, gvk: &'a Gvk) -> BoxFuture<'a, Result<Arc<KindStore>, String>> {
        let found = self.get(gvk).ok_or_else(|| format!("kind {gvk} is not served"));
        Box::pin(async move { found })
    }

    fn get(&self, gvk: &Gvk) -> Option<Arc<KindStore>> {
        self.stores.lock().expect("memory cache lock").get(gvk).cloned()
    }
}

/// A plugin's read-only view of the caches: its primary and owned kinds in its namespaces, and each
/// lookup's kind within that lookup's namespace and label selector; nothing else (not even the
/// kinds it may only write).
pub struct PluginCache {
    cache: Arc<dyn Cache>,
    meta: Arc<Metadata>,
    /// The lookups' selectors, parsed once (`None`: everything).
    selectors: Vec<Option<LabelSelector>>,
    /// Whether the guest read anything (what it read is not part of its snapshot, so its answer is
    /// not one the result cache may keep).
    read: AtomicBool,
}

impl PluginCache {
    pub fn new(cache: Arc<dyn Cache>, meta: Arc<Metadata>) -> PluginCache {
        let selectors = meta
            .lookups
            .iter()
            .map(|l| {
                l.label_selector
                    .as_deref()
                    .map(|s| LabelSelector::parse(s).unwrap_or_else(|_| LabelSelector::nothing()))
            })
            .collect();
        PluginCache {
            cache,
            meta,
            selectors,
            read: AtomicBool::new(false),
        }
    }

    /// Whether the guest read the cache through this view.
    pub fn was_read(&self) -> bool {
        self.read.load(Ordering::Relaxed)
    }

    fn whole_kind(&self, kind: &Gvk) -> bool {
        *kind == self.meta.primary || self.meta.owns.contains(kind)
    }

    /// Whether the declaration lets the plugin see `obj` of `kind`.
    pub fn visible(&self, kind: &Gvk, obj: &CachedObject) -> bool {
        let ns = obj.namespace();
        if !self.meta.namespaces.allows(ns.as_deref()) {
            return false;
        }
        if self.whole_kind(kind) {
            return true;
        }
        self.meta
            .lookups
            .iter()
            .zip(&self.selectors)
            .any(|(l, sel)| &l.kind == kind && lookup_matches(l.namespace.as_deref(), sel.as_ref(), obj))
    }
}

/// Whether `obj` is in a lookup's namespace and matches its selector.
pub fn lookup_matches(namespace: Option<&str>, selector: Option<&LabelSelector>, obj: &CachedObject) -> bool {
    namespace.is_none_or(|ns| obj.namespace().as_deref() == Some(ns))
        && selector.is_none_or(|s| s.matches(labels_json(obj).as_ref()))
}

impl CacheReader for PluginCache {
    fn get(&self, kind: &Gvk, namespace: Option<&str>, name: &str) -> Option<Value> {
        self.read.store(true, Ordering::Relaxed);
        let store = self.cache.get(kind)?;
        let obj = store.get(namespace, name)?;
        self.visible(kind, &obj).then(|| obj.to_value())
    }

    fn list(&self, kind: &Gvk, namespace: Option<&str>, label_selector: Option<&str>) -> Vec<Value> {
        self.read.store(true, Ordering::Relaxed);
        let Some(store) = self.cache.get(kind) else {
            return Vec::new();
        };
        let selector = match label_selector.map(LabelSelector::parse) {
            Some(Ok(s)) => Some(s),
            Some(Err(_)) => return Vec::new(),
            None => None,
        };
        store
            .list(namespace, selector.as_ref())
            .into_iter()
            .filter(|o| self.visible(kind, o))
            .map(|o| o.to_value())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use wasmop_contract::{Lookup, NamespaceScope, Verb};

    fn obj(kind: &str, ns: &str, name: &str, labels: Value) -> kube::api::DynamicObject {
        serde_json::from_value(json!({"apiVersion": "v1", "kind": kind,
            "metadata": {"namespace": ns, "name": name, "labels": labels}}))
        .unwrap()
    }

    #[test]
    fn a_plugin_reads_exactly_what_it_declared() {
        let cm = Gvk::new("", "v1", "ConfigMap");
        let secret = Gvk::new("", "v1", "Secret");
        let pod = Gvk::new("", "v1", "Pod");
        let cache = Arc::new(MemoryCache::default());
        for g in [&cm, &secret, &pod] {
            let s = Arc::new(KindStore::for_kind(g, true));
            for ns in ["a", "b", "c"] {
                s.apply(obj(&g.kind, ns, "x", json!({"app": "web"})));
                s.apply(obj(&g.kind, ns, "y", json!({"app": "db"})));
            }
            cache.add(s);
        }
        let meta = Metadata::new("p", "1", cm.clone())
            .lookup(
                Lookup::new(secret.clone())
                    .namespace("a")
                    .label_selector("app=web"),
            )
            .writes(pod.clone(), &[Verb::Delete])
            .namespaces(NamespaceScope::Only(vec!["a".into(), "b".into()]));
        let reader = PluginCache::new(cache, Arc::new(meta));
        // The primary kind: every object in the plugin's namespaces.
        assert_eq!(reader.list(&cm, None, None).len(), 4);
        assert!(
            reader.get(&cm, Some("c"), "x").is_none(),
            "outside the namespaces"
        );
        // A lookup: only its namespace and selector, whatever the guest asks.
        assert_eq!(reader.list(&secret, None, None).len(), 1);
        assert!(reader.get(&secret, Some("a"), "x").is_some());
        assert!(reader.get(&secret, Some("a"), "y").is_none(), "selector");
        assert!(reader.get(&secret, Some("b"), "x").is_none(), "namespace");
        assert!(reader.list(&secret, Some("a"), Some("app=db")).is_empty());
        // A kind it may only write is not readable.
        assert!(reader.list(&pod, None, None).is_empty());
        assert!(reader.get(&pod, Some("a"), "x").is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn watch_retries_back_off_to_10s_a_first_410_relists_at_once_and_quiet_resets() {
        use std::time::Duration;
        use tokio::time::Instant;
        let mut r = WatchRetry::default();
        // An absent server: 0.4–0.8 s, then doubling, never above 10 s.
        let mut total = Duration::ZERO;
        for n in 1..=12u32 {
            let d = r.delay(false, Instant::now());
            let ceiling = (WatchRetry::BASE * 2u32.pow(n - 1)).min(WatchRetry::CAP);
            assert!(d >= ceiling / 2 && d <= ceiling, "error {n}: {d:?}");
            tokio::time::sleep(d).await;
            total += d;
        }
        assert!(
            total > Duration::from_secs(60),
            "12 errors span a minute: {total:?}"
        );
        // Back after a quiet minute: a 410 relists at once, a second one in a row waits.
        tokio::time::advance(WatchRetry::RESET + Duration::from_secs(1)).await;
        assert_eq!(r.delay(true, Instant::now()), Duration::ZERO);
        let second = r.delay(true, Instant::now());
        assert!(second >= WatchRetry::BASE, "{second:?}");
        // A 410 in the middle of an outage waits like any error.
        let mut r = WatchRetry::default();
        r.delay(false, Instant::now());
        assert!(r.delay(true, Instant::now()) >= WatchRetry::BASE);
    }
}
