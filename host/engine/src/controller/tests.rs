//! The controller without a server: in-memory stores, a writer that records (and fails on demand),
//! a plugin made of closures, all on tokio's paused clock.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::api::DynamicObject;
use serde_json::{Value, json};
use wasmop_contract::{
    BoxFuture, CacheReader, Desired, Gvk, Lookup, Metadata, ObjectKey, Reason, ReconcileFailure, Reconciler,
    Snapshot, SnapshotText, Trigger,
};

use super::{Controller, ControllerConfig};
use crate::backoff::BackoffConfig;
use crate::cache::MemoryCache;
use crate::store::KindStore;
use crate::writer::{Write, WriteError, Writer};
use crate::{PluginSettings, PluginState};

type ReconcileFn = dyn Fn(&Snapshot) -> Result<Desired, ReconcileFailure> + Send + Sync;
type MapFn = dyn Fn(&Trigger, &dyn CacheReader) -> Vec<ObjectKey> + Send + Sync;

/// A plugin made of closures, recording every call.
struct FakePlugin {
    meta: Metadata,
    reconcile: Box<ReconcileFn>,
    map: Box<MapFn>,
    /// How long a reconcile takes.
    takes: Duration,
    calls: Mutex<Vec<(String, Reason, u32)>>,
    /// Takes its snapshots as text, as a WebAssembly plugin does.
    text: bool,
    /// Every snapshot it was given (parsed, when given as text).
    snapshots: Mutex<Vec<Snapshot>>,
}

impl FakePlugin {
    fn new(
        meta: Metadata,
        reconcile: impl Fn(&Snapshot) -> Result<Desired, ReconcileFailure> + Send + Sync + 'static,
    ) -> FakePlugin {
        FakePlugin {
            meta,
            reconcile: Box::new(reconcile),
            map: Box::new(|_, _| Vec::new()),
            takes: Duration::ZERO,
            calls: Mutex::new(Vec::new()),
            text: false,
            snapshots: Mutex::new(Vec::new()),
        }
    }

    fn calls(&self) -> Vec<(String, Reason, u32)> {
        self.calls.lock().unwrap().clone()
    }

    fn reasons(&self) -> Vec<Reason> {
        self.calls().into_iter().map(|c| c.1).collect()
    }
}

impl Reconciler for FakePlugin {
    fn metadata(&self) -> &Metadata {
        &self.meta
    }

    fn reconcile<'a>(
        &'a self,
        snapshot: Snapshot,
        _: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Desired, ReconcileFailure>> {
        Box::pin(async move {
            self.snapshots.lock().unwrap().push(snapshot.clone());
            let name = snapshot.object["metadata"]["name"]
                .as_str()
                .unwrap_or("")
                .to_string();
            self.calls
                .lock()
                .unwrap()
                .push((name, snapshot.reason, snapshot.attempt));
            tokio::time::sleep(self.takes).await;
            (self.reconcile)(&snapshot)
        })
    }

    fn takes_text(&self) -> bool {
        self.text
    }

    fn reconcile_text<'a>(
        &'a self,
        snapshot: SnapshotText,
        cache: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Desired, ReconcileFailure>> {
        assert!(self.text, "text only for a plugin that takes it");
        self.reconcile(snapshot.parse().expect("the cache's text is JSON"), cache)
    }

    fn map<'a>(
        &'a self,
        trigger: Trigger,
        cache: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Vec<ObjectKey>, ReconcileFailure>> {
        Box::pin(async move { Ok((self.map)(&trigger, &*cache)) })
    }
}

/// Records writes; fails the ones a test asks to fail.
#[derive(Default)]
struct RecordingWriter {
    writes: Mutex<Vec<Write>>,
    /// Status codes to answer, in order, for writes that are not events.
    failures: Mutex<VecDeque<u16>>,
}

impl RecordingWriter {
    fn writes(&self) -> Vec<Write> {
        self.writes.lock().unwrap().clone()
    }

    fn events(&self) -> Vec<(String, String)> {
        self.writes()
            .into_iter()
            .filter_map(|w| match w {
                Write::Event { reason, message, .. } => Some((reason, message)),
                _ => None,
            })
            .collect()
    }

    fn fail_with(&self, codes: &[u16]) {
        self.failures.lock().unwrap().extend(codes);
    }
}

impl Writer for RecordingWriter {
    fn write<'a>(&'a self, write: &'a Write) -> BoxFuture<'a, Result<(), WriteError>> {
        Box::pin(async move {
            self.writes.lock().unwrap().push(write.clone());
            if matches!(write, Write::Event { .. }) {
                return Ok(());
            }
            match self.failures.lock().unwrap().pop_front() {
                None => Ok(()),
                // As the kube writer answers a 404 to adding the finalizer.
                Some(404) if matches!(write, Write::AddFinalizer { .. }) => Err(WriteError::Gone {
                    what: write.describe(),
                }),
                Some(code) => Err(WriteError::Api {
                    what: write.describe(),
                    source: kube::Error::Api(Box::new(kube::core::Status {
                        code,
                        message: format!("answered {code}"),
                        ..Default::default()
                    })),
                }),
            }
        })
    }
}

fn cm_gvk() -> Gvk {
    Gvk::new("", "v1", "ConfigMap")
}

fn cm(ns: &str, name: &str, rv: u32) -> DynamicObject {
    object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": ns, "name": name, "uid": format!("uid-{name}"), "resourceVersion": rv.to_string()}}))
}

fn object(v: Value) -> DynamicObject {
    serde_json::from_value(v).unwrap()
}

struct Setup {
    cache: Arc<MemoryCache>,
    store: Arc<KindStore>,
    writer: Arc<RecordingWriter>,
    gate: Arc<crate::gate::Gate>,
}

impl Setup {
    fn new() -> Setup {
        let cache = Arc::new(MemoryCache::default());
        let store = Arc::new(KindStore::for_kind(&cm_gvk(), true));
        cache.add(store.clone());
        Setup {
            cache,
            store,
            writer: Arc::new(RecordingWriter::default()),
            gate: Default::default(),
        }
    }

    fn synced(self, objects: Vec<DynamicObject>) -> Setup {
        self.store.relist_start();
        for o in objects {
            self.store.relist_apply(o);
        }
        self.store.relist_done();
        self
    }

    fn controller(&self, plugin: Arc<FakePlugin>) -> Arc<Controller> {
        let c = Controller::new(
            plugin,
            PluginSettings::default(),
            self.cache.clone(),
            self.writer.clone(),
            ControllerConfig {
                backoff: BackoffConfig {
                    base: Duration::from_secs(1),
                    cap: Duration::from_secs(60),
                },
                default_concurrency: 2,
                kind_retry: Duration::from_secs(2),
                gate: self.gate.clone(),
                metrics: Default::default(),
            },
        );
        c.start();
        c
    }
}

/// Lets every task run that can, at this instant of the paused clock.
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

async fn advance(d: Duration) {
    tokio::time::sleep(d).await;
    settle().await;
}

#[tokio::test(start_paused = true)]
async fn events_for_one_object_coalesce_while_it_reconciles() {
    let s = Setup::new().synced(vec![cm("a", "x", 1)]);
    let mut plugin = FakePlugin::new(Metadata::new("p", "1", cm_gvk()), |_| Ok(Desired::default()));
    plugin.takes = Duration::from_secs(1);
    let plugin = Arc::new(plugin);
    let c = s.controller(plugin.clone());
    c.running().await;
    settle().await;
    // Five changes while the first reconcile runs: one more reconcile, not five.
    for rv in 2..7 {
        s.store.apply(cm("a", "x", rv));
        settle().await;
    }
    advance(Duration::from_secs(5)).await;
    assert_eq!(plugin.reasons(), [Reason::Change, Reason::Change]);
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_and_a_success_resets_the_count() {
    let s = Setup::new().synced(vec![cm("a", "x", 1)]);
    let failures = Arc::new(Mutex::new(3));
    let left = failures.clone();
    let plugin = Arc::new(FakePlugin::new(Metadata::new("p", "1", cm_gvk()), move |_| {
        let mut left = left.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return Err(ReconcileFailure::Retry("not yet".into()));
        }
        Ok(Desired::default())
    }));
    let c = s.controller(plugin.clone());
    let start = tokio::time::Instant::now();
    advance(Duration::from_millis(400)).await;
    assert_eq!(plugin.calls().len(), 1, "the first retry waits at least base/2");
    // 1 s, 2 s, 4 s ceilings with equal jitter: all four attempts within 0.5 + 1 + 2 s.. 7 s.
    advance(Duration::from_secs(8)).await;
    let attempts: Vec<u32> = plugin.calls().iter().map(|c| c.2).collect();
    assert_eq!(attempts, [1, 2, 3, 4]);
    assert!(plugin.reasons()[1..].iter().all(|r| *r == Reason::Retry));
    // After the success, a new failure starts from attempt 1 again.
    *failures.lock().unwrap() = 1;
    s.store.apply(cm("a", "x", 2));
    advance(Duration::from_secs(5)).await;
    let attempts: Vec<u32> = plugin.calls().iter().map(|c| c.2).collect();
    assert_eq!(&attempts[4..], [1, 2], "{attempts:?} after {:?}", start.elapsed());
    assert_eq!(c.stats().failures, 4);
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn the_finalizer_protocol() {
    let s = Setup::new().synced(vec![cm("a", "x", 1)]);
    let child =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "copy", "namespace": "b"}});
    let meta = Metadata::new("p", "1", cm_gvk()).owns(cm_gvk());
    let plugin = Arc::new(FakePlugin::new(meta, move |snap| {
        Ok(if snap.reason == Reason::Deletion {
            Desired::default() // cleanup done: no children, finalizer released
        } else {
            Desired {
                apply: vec![child.clone()],
                finalizer: true,
                ..Default::default()
            }
        })
    }));
    let c = s.controller(plugin.clone());
    advance(Duration::from_millis(10)).await;
    let writes = s.writer.writes();
    assert!(matches!(&writes[0], Write::AddFinalizer { finalizers, .. } if finalizers == &["wasmop.io/p"]));
    assert!(matches!(&writes[1], Write::Apply { target, .. } if target.name == "copy"));
    // The API server's answer: the finalizer is there, the copy exists, then deletion starts.
    let mut held = cm("a", "x", 2);
    held.metadata.finalizers = Some(vec!["wasmop.io/p".into()]);
    s.store.apply(held.clone());
    s.store.apply(object(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "namespace": "b", "name": "copy", "resourceVersion": "3",
        "labels": {"wasmop.io/plugin": "p", "wasmop.io/owner-uid": "uid-x"},
        "annotations": {"wasmop.io/owner": "a/x"}}}),
    ));
    advance(Duration::from_millis(10)).await;
    let before = s.writer.writes().len();
    held.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    ));
    held.metadata.resource_version = Some("4".into());
    s.store.apply(held);
    advance(Duration::from_millis(10)).await;
    assert_eq!(plugin.reasons().last(), Some(&Reason::Deletion));
    let writes = &s.writer.writes()[before..];
    assert!(
        matches!(&writes[0], Write::Delete { target } if target.name == "copy"),
        "{writes:?}"
    );
    assert!(matches!(&writes[1], Write::RemoveFinalizer { name, index: 0, .. } if name == "wasmop.io/p"));
    // Deleting without our finalizer: the plugin is not asked.
    let calls = plugin.calls().len();
    let mut other = cm("a", "y", 5);
    other.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    ));
    other.metadata.finalizers = Some(vec!["someone.else/f".into()]);
    s.store.apply(other);
    advance(Duration::from_millis(10)).await;
    assert_eq!(plugin.calls().len(), calls);
    c.stop().await;
}

/// Deleted right after it was created: the deletion is answered before the watch shows the copy the
/// first reconcile applied. The copy is pruned all the same, before the finalizer is released (the
/// churn soak left such copies behind in another namespace, where no garbage collector finds them).
#[tokio::test(start_paused = true)]
async fn a_child_the_cache_does_not_show_yet_is_pruned_before_the_finalizer_goes() {
    let s = Setup::new().synced(vec![cm("a", "x", 1)]);
    let child =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "copy", "namespace": "b"}});
    let meta = Metadata::new("p", "1", cm_gvk()).owns(cm_gvk());
    let plugin = Arc::new(FakePlugin::new(meta, move |snap| {
        Ok(if snap.reason == Reason::Deletion {
            Desired::default()
        } else {
            Desired {
                apply: vec![child.clone()],
                finalizer: true,
                ..Default::default()
            }
        })
    }));
    let c = s.controller(plugin.clone());
    advance(Duration::from_millis(10)).await;
    assert!(matches!(&s.writer.writes()[1], Write::Apply { target, .. } if target.name == "copy"));
    // The watch shows the finalizer and the deletion, not the copy (yet).
    let before = s.writer.writes().len();
    let mut held = cm("a", "x", 4);
    held.metadata.finalizers = Some(vec!["wasmop.io/p".into()]);
    held.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
    ));
    s.store.apply(held);
    advance(Duration::from_millis(10)).await;
    assert_eq!(plugin.reasons().last(), Some(&Reason::Deletion));
    let writes = &s.writer.writes()[before..];
    assert!(
        matches!(&writes[0], Write::Delete { target } if target.name == "copy" && target.namespace.as_deref() == Some("b")),
        "{writes:?}"
    );
    assert!(matches!(&writes[1], Write::RemoveFinalizer { .. }), "{writes:?}");
    // A child the cache shows is pruned from the cache as before, once: the object is gone now.
    assert_eq!(writes.len(), 2, "{writes:?}");
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn nothing_more_is_written_for_an_object_deleted_before_its_finalizer_was_added() {
    let s = Setup::new().synced(vec![cm("a", "x", 1)]);
    let child =
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "copy", "namespace": "b"}});
    let meta = Metadata::new("p", "1", cm_gvk()).owns(cm_gvk());
    let plugin = Arc::new(FakePlugin::new(meta, move |_| {
        Ok(Desired {
            apply: vec![child.clone()],
            finalizer: true,
            ..Default::default()
        })
    }));
    // The API server deleted the object before the finalizer could be added.
    s.writer.fail_with(&[404]);
    let c = s.controller(plugin.clone());
    advance(Duration::from_millis(10)).await;
    s.store.delete(cm("a", "x", 2));
    advance(Duration::from_secs(120)).await;
    let writes = s.writer.writes();
    assert_eq!(
        writes.len(),
        1,
        "only the finalizer was tried, no copy made: {writes:?}"
    );
    assert!(matches!(&writes[0], Write::AddFinalizer { .. }), "{writes:?}");
    assert_eq!(
        plugin.calls().len(),
        1,
        "the object is gone: not reconciled again"
    );
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_permanent_answer_warns_once_and_waits_for_a_change() {
    let s = Setup::new().synced(vec![cm("a", "x", 1)]);
    let child = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "copy"}});
    let meta = Metadata::new("p", "1", cm_gvk())
        .owns(cm_gvk())
        .resync_seconds(60);
    let plugin = Arc::new(FakePlugin::new(meta, move |_| {
        Ok(Desired {
            apply: vec![child.clone()],
            ..Default::default()
        })
    }));
    s.writer.fail_with(&[403]);
    let c = s.controller(plugin.clone());
    // Ten minutes, ten resyncs: no retry, one Warning event with the API server's message.
    advance(Duration::from_secs(600)).await;
    assert_eq!(plugin.calls().len(), 1);
    let events = s.writer.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, "WriteFailed");
    assert!(events[0].1.contains("answered 403"), "{}", events[0].1);
    assert!(c.stats().parked >= 9);
    // The object changes: reconciled again (and succeeds).
    s.store.apply(cm("a", "x", 2));
    advance(Duration::from_millis(10)).await;
    assert_eq!(plugin.calls().len(), 2);
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_forbidden_write_is_kept_for_the_status_until_a_write_succeeds() {
    let s = Setup::new().synced(vec![cm("a", "x", 1), cm("a", "y", 1)]);
    let meta = Metadata::new("p", "1", cm_gvk())
        .owns(cm_gvk())
        .max_concurrent_reconciles(1)
        .resync_seconds(60);
    // y writes only while `y_writes` says so.
    let y_writes = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let y = y_writes.clone();
    let plugin = Arc::new(FakePlugin::new(meta, move |snap| {
        let name = snap.object["metadata"]["name"].as_str().unwrap();
        let child =
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("{name}-copy")}});
        let writes = name == "x" || y.load(std::sync::atomic::Ordering::SeqCst);
        Ok(Desired {
            apply: if writes { vec![child] } else { Vec::new() },
            ..Default::default()
        })
    }));
    // x's write is forbidden, y's goes through (keys come out in order: x first).
    s.writer.fail_with(&[403]);
    let c = s.controller(plugin.clone());
    advance(Duration::from_millis(10)).await;
    assert_eq!(plugin.calls().len(), 2);
    // y's later write cleared x's record: what is shown is the state now, not history.
    assert_eq!(c.forbidden(), None);
    assert_eq!(c.stats().forbidden, 1);

    // A forbidden write with nothing succeeding after it stays, through resyncs (the object is
    // parked) and the Warning event's own successful write, which is not the plugin's.
    y_writes.store(false, std::sync::atomic::Ordering::SeqCst);
    s.writer.fail_with(&[403]);
    s.store.apply(cm("a", "x", 2));
    advance(Duration::from_secs(300)).await;
    let forbidden = c.forbidden().expect("the forbidden write is recorded");
    assert_eq!(forbidden.object, "a/x");
    assert!(forbidden.write.contains("x-copy"), "{forbidden:?}");
    assert_eq!(forbidden.message, "answered 403");
    assert_eq!(c.stats().forbidden, 2);
    // The same refusal is reported once (the Warning of the first one, not again).
    let events = s.writer.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].0 == "WriteFailed" && events[0].1.contains("answered 403"));

    // The permission is granted; the object changes; the write succeeds and the record is gone.
    s.store.apply(cm("a", "x", 3));
    advance(Duration::from_millis(10)).await;
    assert_eq!(c.forbidden(), None);
    assert_eq!(s.writer.events().len(), 1);
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_transient_answer_is_retried_with_backoff() {
    let s = Setup::new().synced(vec![cm("a", "x", 1)]);
    let child = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "copy"}});
    let meta = Metadata::new("p", "1", cm_gvk()).owns(cm_gvk());
    let plugin = Arc::new(FakePlugin::new(meta, move |_| {
        Ok(Desired {
            apply: vec![child.clone()],
            ..Default::default()
        })
    }));
    s.writer.fail_with(&[500, 500]);
    let c = s.controller(plugin.clone());
    advance(Duration::from_secs(10)).await;
    let attempts: Vec<u32> = plugin.calls().iter().map(|c| c.2).collect();
    assert_eq!(attempts, [1, 2, 3], "two 500s, then the write goes through");
    assert!(s.writer.events().is_empty(), "transient errors are not events");
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_plugin_says_permanent() {
    let s = Setup::new().synced(vec![cm("a", "x", 1)]);
    let plugin = Arc::new(FakePlugin::new(
        Metadata::new("p", "1", cm_gvk()).resync_seconds(10),
        |_| Err(ReconcileFailure::Permanent("spec.size must be positive".into())),
    ));
    let c = s.controller(plugin.clone());
    advance(Duration::from_secs(100)).await;
    assert_eq!(plugin.calls().len(), 1);
    assert_eq!(s.writer.events()[0].0, "ReconcileFailed");
    // A new version of the plugin gets to try again.
    c.swap(plugin.clone());
    advance(Duration::from_millis(10)).await;
    assert_eq!(plugin.calls().len(), 2);
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn requeue_after_comes_back_at_that_time() {
    let s = Setup::new().synced(vec![cm("a", "x", 1)]);
    let plugin = Arc::new(FakePlugin::new(Metadata::new("p", "1", cm_gvk()), |_| {
        Ok(Desired {
            requeue_after_seconds: Some(30),
            ..Default::default()
        })
    }));
    let c = s.controller(plugin.clone());
    advance(Duration::from_secs(29)).await;
    assert_eq!(plugin.calls().len(), 1);
    advance(Duration::from_secs(2)).await;
    assert_eq!(plugin.reasons(), [Reason::Change, Reason::Retry]);
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_triggering_lookup_reconciles_what_map_names() {
    let s = Setup::new().synced(vec![cm("a", "src", 1), cm("a", "other", 1)]);
    let ns_gvk = Gvk::new("", "v1", "Namespace");
    let namespaces = Arc::new(KindStore::for_kind(&ns_gvk, false));
    namespaces.relist_start();
    for ns in ["a", "b", "c"] {
        namespaces.relist_apply(object(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        ));
    }
    s.cache.add(namespaces.clone());
    let meta = Metadata::new("p", "1", cm_gvk()).lookup(Lookup::new(ns_gvk).triggers());
    let mut plugin = FakePlugin::new(meta, |_| Ok(Desired::default()));
    let maps = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = maps.clone();
    plugin.map = Box::new(move |trigger, cache| {
        counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(trigger.lookup, 0);
        // The map reads the cache: every ConfigMap named "src".
        cache
            .list(&cm_gvk(), None, None)
            .iter()
            .filter(|o| o["metadata"]["name"] == "src")
            .map(|o| ObjectKey::new(o["metadata"]["namespace"].as_str(), "src"))
            .collect()
    });
    let plugin = Arc::new(plugin);
    let c = s.controller(plugin.clone());
    settle().await;
    // The namespaces' first list arrives while the plugin starts: not mapped, one by one.
    namespaces.relist_done();
    advance(Duration::from_millis(10)).await;
    assert_eq!(plugin.calls().len(), 2, "start-up reconciles both");
    assert_eq!(
        maps.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the first list is not mapped"
    );
    namespaces.apply(object(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "late"}}),
    ));
    advance(Duration::from_millis(10)).await;
    let calls = plugin.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!((calls[2].0.as_str(), calls[2].1), ("src", Reason::Trigger));
    assert_eq!(maps.load(std::sync::atomic::Ordering::SeqCst), 1);
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn start_up_says_what_it_waits_for_and_every_plugin_starts() {
    let s = Setup::new();
    let crd = Gvk::new("example.com", "v1", "Widget");
    // Ten plugins: five on ConfigMaps, five on a kind not served yet that also read ConfigMaps.
    let mut controllers = Vec::new();
    for i in 0..10 {
        let meta = if i % 2 == 0 {
            Metadata::new(format!("cm-{i}"), "1", cm_gvk())
        } else {
            Metadata::new(format!("widget-{i}"), "1", crd.clone()).lookup(Lookup::new(cm_gvk()))
        };
        let plugin = Arc::new(FakePlugin::new(meta, |_| Ok(Desired::default())));
        controllers.push(s.controller(plugin));
    }
    settle().await;
    assert_eq!(
        controllers[0].state(),
        PluginState::Starting {
            reason: "waiting for the cache of /v1/ConfigMap to sync".replace("/v1", "v1")
        }
    );
    let PluginState::Starting { reason } = controllers[1].state() else {
        panic!()
    };
    assert!(
        reason.starts_with("waiting for kind example.com/v1/Widget to be served"),
        "{reason}"
    );
    // The first list arrives late, while all of them wait on it.
    advance(Duration::from_secs(1)).await;
    s.store.relist_start();
    s.store.relist_apply(cm("a", "x", 1));
    s.store.relist_done();
    settle().await;
    for c in controllers.iter().step_by(2) {
        assert_eq!(c.state(), PluginState::Running, "{c:?}");
    }
    // The CRD is applied: the other five start at their next try.
    let widgets = Arc::new(KindStore::for_kind(&crd, true));
    widgets.relist_start();
    widgets.relist_done();
    s.cache.add(widgets);
    advance(Duration::from_secs(2)).await;
    for c in &controllers {
        assert_eq!(c.state(), PluginState::Running, "{c:?}");
        c.stop().await;
    }
}

#[tokio::test(start_paused = true)]
async fn stop_ends_every_task_even_while_waiting_for_a_kind() {
    let s = Setup::new();
    let meta = Metadata::new("p", "1", Gvk::new("example.com", "v1", "Never"));
    let plugin = Arc::new(FakePlugin::new(meta, |_| Ok(Desired::default())));
    let c = s.controller(plugin);
    advance(Duration::from_secs(5)).await;
    assert!(matches!(c.state(), PluginState::Starting { .. }));
    c.stop().await;
    settle().await;
    assert_eq!(Arc::strong_count(&c), 1, "no task holds the controller any more");
}

#[tokio::test(start_paused = true)]
async fn a_standby_reconciles_nothing_and_a_new_leader_everything_once() {
    let s = Setup::new().synced(vec![cm("a", "x", 1), cm("a", "y", 1)]);
    s.gate.set(false);
    let plugin = Arc::new(FakePlugin::new(Metadata::new("p", "1", cm_gvk()), |_| {
        Ok(Desired::default())
    }));
    let c = s.controller(plugin.clone());
    c.running().await;
    settle().await;
    s.store.apply(cm("a", "x", 2));
    advance(Duration::from_secs(5)).await;
    assert!(plugin.calls().is_empty(), "a standby does not reconcile");
    s.gate.set(true);
    advance(Duration::from_secs(1)).await;
    assert_eq!(plugin.calls().len(), 2, "every object once when the lease is won");
    // Lost again: changes wait for the next win.
    s.gate.set(false);
    settle().await;
    s.store.apply(cm("a", "y", 2));
    advance(Duration::from_secs(5)).await;
    assert_eq!(plugin.calls().len(), 2);
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_resync_of_unchanged_objects_calls_nothing_and_a_change_calls_again() {
    let s = Setup::new().synced(vec![cm("a", "x", 1), cm("a", "y", 1)]);
    let plugin = Arc::new(FakePlugin::new(Metadata::new("p", "1", cm_gvk()), |_| {
        Ok(Desired::default())
    }));
    let c = s.controller(plugin.clone());
    advance(Duration::from_secs(1)).await;
    assert_eq!(plugin.calls().len(), 2);

    assert_eq!(c.resync(), 2);
    advance(Duration::from_secs(1)).await;
    assert_eq!(
        plugin.calls().len(),
        2,
        "the same snapshots: answered from the result cache"
    );
    assert_eq!(c.stats().unchanged, 2);
    assert!(s.writer.writes().is_empty());

    // A new version of one object is a new snapshot.
    s.store.apply(cm("a", "x", 2));
    advance(Duration::from_secs(1)).await;
    c.resync();
    advance(Duration::from_secs(1)).await;
    let called: Vec<_> = plugin.calls().into_iter().map(|(n, r, _)| (n, r)).collect();
    assert_eq!(called[2..], [("x".to_string(), Reason::Change)]);
    assert_eq!(c.stats().unchanged, 4);
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn answers_the_snapshot_does_not_show_are_not_cached() {
    let s = Setup::new().synced(vec![cm("a", "x", 1)]);
    let secrets = Arc::new(KindStore::for_kind(&Gvk::new("", "v1", "Secret"), true));
    secrets.relist_start();
    secrets.relist_done();
    s.cache.add(secrets);
    // Deleting another object: whether it came back is not in the snapshot.
    let plugin = Arc::new(FakePlugin::new(
        Metadata::new("p", "1", cm_gvk())
            .writes(Gvk::new("", "v1", "Secret"), &[wasmop_contract::Verb::Delete]),
        |_| {
            let mut d = Desired::default();
            d.deletions.push(wasmop_contract::ObjectRef::new(
                Gvk::new("", "v1", "Secret"),
                Some("a"),
                "old",
            ));
            Ok(d)
        },
    ));
    let c = s.controller(plugin.clone());
    advance(Duration::from_secs(1)).await;
    c.resync();
    advance(Duration::from_secs(1)).await;
    assert_eq!(plugin.reasons(), [Reason::Change, Reason::Resync]);
    assert_eq!(c.stats().unchanged, 0);
    c.stop().await;

    // A plugin whose settings turn the result cache off is always called.
    let plugin = Arc::new(FakePlugin::new(Metadata::new("p", "1", cm_gvk()), |_| {
        Ok(Desired::default())
    }));
    let c = Controller::new(
        plugin.clone(),
        PluginSettings {
            cache_results: Some(false),
            ..Default::default()
        },
        s.cache.clone(),
        s.writer.clone(),
        ControllerConfig {
            backoff: BackoffConfig::default(),
            default_concurrency: 1,
            kind_retry: Duration::from_secs(2),
            gate: s.gate.clone(),
            metrics: Default::default(),
        },
    );
    c.start();
    advance(Duration::from_secs(1)).await;
    c.resync();
    advance(Duration::from_secs(1)).await;
    assert_eq!(plugin.reasons(), [Reason::Change, Reason::Resync]);
    c.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_plugin_taking_text_sees_the_snapshot_a_plugin_taking_values_sees() {
    let s = Setup::new().synced(vec![cm("a", "one", 1), cm("b", "two", 1)]);
    let ns_gvk = Gvk::new("", "v1", "Namespace");
    let namespaces = Arc::new(KindStore::for_kind(&ns_gvk, false));
    namespaces.relist_start();
    for ns in ["a", "b"] {
        namespaces.relist_apply(object(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns, "labels": {"team": ns}, "managedFields": [{"manager": "kubectl"}]}})));
    }
    namespaces.relist_done();
    s.cache.add(namespaces);
    let mut seen = Vec::new();
    for text in [false, true] {
        let meta = Metadata::new("p", "1", cm_gvk()).lookup(Lookup::new(ns_gvk.clone()));
        let mut plugin = FakePlugin::new(meta, |_| Ok(Desired::default()));
        plugin.text = text;
        let plugin = Arc::new(plugin);
        let c = s.controller(plugin.clone());
        advance(Duration::from_millis(10)).await;
        c.stop().await;
        let mut snapshots = plugin.snapshots.lock().unwrap().clone();
        snapshots.sort_by_key(|s| s.object["metadata"]["name"].as_str().map(String::from));
        seen.push(snapshots);
    }
    assert_eq!(seen[0].len(), 2);
    assert_eq!(seen[0], seen[1]);
    let lookup = &seen[1][0].lookups[0].objects;
    assert_eq!(lookup.len(), 2);
    assert_eq!(lookup[0]["metadata"]["labels"]["team"], "a");
    assert!(lookup[0]["metadata"].get("managedFields").is_none(), "{lookup:?}");
}
