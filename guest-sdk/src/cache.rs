//! Read-only access to the host's cache.
//!
//! Only kinds the plugin declared (primary, `owns`, `lookups`, and their namespaces) are visible;
//! anything else reads as absent. Prefer declared [`crate::Lookup`]s, which arrive in the
//! [`crate::Snapshot`], for what every reconcile needs; use the cache for reads that depend on the
//! object (`get` a Secret it names, `list` Pods matching its selector).
//!
//! In a native build (unit tests) the cache is empty, except while the `testing` module runs a
//! fixture: then it holds the fixture's objects, as in `wasmop test`.

use k8s_openapi::Resource;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::snapshot::from_json;
use crate::{Error, Gvk, GvkExt};

/// One object of kind `K`, or `None` when it is not in the cache (or its kind is not declared).
///
/// ```no_run
/// use wasmop_sdk::k8s_openapi::api::core::v1::Secret;
/// # fn f() -> Result<(), wasmop_sdk::Error> {
/// let secret = wasmop_sdk::cache::get::<Secret>(Some("default"), "db-password")?;
/// # Ok(()) }
/// ```
pub fn get<K: Resource + DeserializeOwned>(namespace: Option<&str>, name: &str) -> Result<Option<K>, Error> {
    get_as(&Gvk::of::<K>(), namespace, name)
}

/// Objects of kind `K`, optionally in one namespace and matching a label selector (`app=web`).
pub fn list<K: Resource + DeserializeOwned>(
    namespace: Option<&str>,
    label_selector: Option<&str>,
) -> Result<Vec<K>, Error> {
    list_as(&Gvk::of::<K>(), namespace, label_selector)
}

/// One object of any kind, deserialised as `T` (`serde_json::Value` for raw JSON).
pub fn get_as<T: DeserializeOwned>(
    kind: &Gvk,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<T>, Error> {
    match raw_get(kind, namespace, name) {
        None => Ok(None),
        Some(text) => {
            let value: Value = serde_json::from_str(&text)
                .map_err(|e| Error::retry(format!("the host's cache returned invalid JSON: {e}")))?;
            from_json(&value, &kind.kind).map(Some)
        }
    }
}

/// Objects of any kind, deserialised as `T`.
pub fn list_as<T: DeserializeOwned>(
    kind: &Gvk,
    namespace: Option<&str>,
    label_selector: Option<&str>,
) -> Result<Vec<T>, Error> {
    raw_list(kind, namespace, label_selector)
        .iter()
        .map(|text| {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| Error::retry(format!("the host's cache returned invalid JSON: {e}")))?;
            from_json(&value, &kind.kind)
        })
        .collect()
}

#[cfg(target_arch = "wasm32")]
fn raw_get(kind: &Gvk, namespace: Option<&str>, name: &str) -> Option<String> {
    crate::__bindings::wasmop::reconciler::cache::get(&crate::export::gvk_to_wit(kind), namespace, name)
}

#[cfg(target_arch = "wasm32")]
fn raw_list(kind: &Gvk, namespace: Option<&str>, label_selector: Option<&str>) -> Vec<String> {
    crate::__bindings::wasmop::reconciler::cache::list(
        &crate::export::gvk_to_wit(kind),
        namespace,
        label_selector,
    )
}

/// The native stand-in for the host's cache: empty, or what [`native::with_cache`] installed for
/// the current thread.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod native {
    use std::cell::RefCell;
    use std::sync::Arc;

    use wasmop_contract::CacheReader;

    thread_local! {
        static CACHE: RefCell<Option<Arc<dyn CacheReader>>> = const { RefCell::new(None) };
    }

    /// Runs `f` with `cache` answering this thread's cache reads (restored afterwards, even when
    /// `f` panics).
    #[cfg_attr(not(any(feature = "testing", feature = "native")), allow(dead_code))]
    pub(crate) fn with_cache<R>(cache: Arc<dyn CacheReader>, f: impl FnOnce() -> R) -> R {
        struct Restore(Option<Arc<dyn CacheReader>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let previous = self.0.take();
                CACHE.with(|c| *c.borrow_mut() = previous);
            }
        }
        let _restore = Restore(CACHE.with(|c| c.borrow_mut().replace(cache)));
        f()
    }

    pub(crate) fn current() -> Option<Arc<dyn CacheReader>> {
        CACHE.with(|c| c.borrow().clone())
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn raw_get(kind: &Gvk, namespace: Option<&str>, name: &str) -> Option<String> {
    native::current()?
        .get(kind, namespace, name)
        .map(|v| v.to_string())
}

#[cfg(not(target_arch = "wasm32"))]
fn raw_list(kind: &Gvk, namespace: Option<&str>, label_selector: Option<&str>) -> Vec<String> {
    native::current()
        .map(|c| c.list(kind, namespace, label_selector))
        .unwrap_or_default()
        .iter()
        .map(Value::to_string)
        .collect()
}
