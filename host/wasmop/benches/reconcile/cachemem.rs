//! What one cached object costs, exactly: the heap bytes a cache keeps per object (counted by the
//! allocator while it is filled), not an RSS difference, which allocator arenas and the objects in
//! flight blur. Measured on the objects as the embedded API server serves them (with their
//! `managedFields`), for wasmop's store and for what a controller holding `serde_json::Value` trees
//! (kube's `DynamicObject`) or typed objects (a kube-runtime reflector of `Deployment`s) keeps.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{ApiResource, DynamicObject};
use wasmop_apiserver::ApiServer;
use wasmop_contract::Gvk;
use wasmop_engine::object::WatchedObject;
use wasmop_engine::store::KindStore;

use crate::objects;

/// The system allocator, counting the bytes held while [`COUNTING`] is on (off, it costs one
/// relaxed load per call, so the arms' figures are not disturbed).
pub struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static HELD: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed unchanged to the system allocator; only a counter is updated.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            HELD.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            HELD.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            HELD.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The bytes `fill` leaves allocated (what it returns is kept until they are counted).
fn held_by<T>(fill: impl FnOnce() -> T) -> (T, usize) {
    HELD.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let kept = fill();
    COUNTING.store(false, Ordering::SeqCst);
    (kept, HELD.load(Ordering::SeqCst).max(0) as usize)
}

/// One size's figures.
pub struct Figures {
    pub label: &'static str,
    pub n: usize,
    /// Mean JSON size of an object as served.
    pub json: usize,
    pub wasmop: usize,
    pub value_tree: usize,
    pub typed: usize,
}

/// Seeds `n` Deployments of about `bytes` into a fresh embedded API server, lists them as a client
/// does, and fills each kind of cache with the listed objects.
pub async fn measure(
    label: &'static str,
    n: usize,
    bytes: usize,
    args: &crate::cli::Args,
) -> anyhow::Result<Figures> {
    let dir = args.tempdir()?;
    let server = ApiServer::start(wasmop_apiserver::Config::new(dir.path())).await?;
    let client = wasmop::client_from_kubeconfig(&server.kubeconfig()).await?;
    objects::create_namespaces(&client, &[objects::NAMESPACE]).await?;
    objects::seed(&client, (0..n).map(|i| objects::deployment(i, bytes)).collect()).await?;
    let request = http::Request::get(format!(
        "/apis/apps/v1/namespaces/{}/deployments",
        objects::NAMESPACE
    ))
    .body(Vec::new())?;
    let list: serde_json::Value = serde_json::from_str(&client.request_text(request).await?)?;
    server.shutdown().await;
    let items: Vec<String> = list["items"]
        .as_array()
        .map(|items| items.iter().map(|i| i.to_string()).collect())
        .unwrap_or_default();
    anyhow::ensure!(items.len() == n, "listed {} of {n} Deployments", items.len());
    let json = items.iter().map(String::len).sum::<usize>() / n;

    let resource = ApiResource::erase::<Deployment>(&());
    let gvk = Gvk::new("apps", "v1", "Deployment");
    let (store, wasmop) = held_by(|| {
        let store = KindStore::new(gvk, resource.clone(), true);
        for text in &items {
            let obj: WatchedObject = serde_json::from_str(text).expect("a listed Deployment");
            store.apply(obj);
        }
        store
    });
    anyhow::ensure!(store.len() == n, "cached {} of {n}", store.len());
    drop(store);
    let (trees, value_tree) = held_by(|| {
        items
            .iter()
            .map(|t| serde_json::from_str::<DynamicObject>(t).expect("a listed Deployment"))
            .collect::<Vec<_>>()
    });
    drop(trees);
    let (typed_objects, typed) = held_by(|| {
        items
            .iter()
            .map(|t| serde_json::from_str::<Deployment>(t).expect("a listed Deployment"))
            .collect::<Vec<_>>()
    });
    drop(typed_objects);
    Ok(Figures {
        label,
        n,
        json,
        wasmop: wasmop / n,
        value_tree: value_tree / n,
        typed: typed / n,
    })
}

/// The table of [`Figures`].
pub fn table(rows: &[Figures]) -> String {
    let mut s = String::from(
        "| Deployments | N | JSON as served (with managedFields) | wasmop store | ÷ JSON | `DynamicObject` (Value tree) | ÷ JSON | typed `Deployment` (kube-runtime reflector) | ÷ JSON |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let ratio = |b: usize| b as f64 / r.json as f64;
        s.push_str(&format!(
            "| {} | {} | {} B | {} B | {:.2} | {} B | {:.2} | {} B | {:.2} |\n",
            r.label,
            r.n,
            r.json,
            r.wasmop,
            ratio(r.wasmop),
            r.value_tree,
            ratio(r.value_tree),
            r.typed,
            ratio(r.typed)
        ));
    }
    s
}
