//! A plugin compiled natively and registered with the host through the same
//! [`Reconciler`](wasmop_contract::Reconciler) trait as a WebAssembly component (feature `native`):
//! the engine cannot tell the two apart, which is what the side-by-side benchmark needs to isolate
//! the cost of the WebAssembly boundary from the cost of the engine.
//!
//! Calls run the plugin's functions exactly as the component's exports do: the host's cache is
//! installed for the call (the thread-local the `testing` module uses too), errors become
//! [`ReconcileFailure::Retry`]/[`ReconcileFailure::Permanent`], and an answer the host could not
//! use is refused as a permanent error, as `export.rs` refuses it in the guest.
//!
//! Two natively linked plugins can live in one binary: [`crate::export_plugin!`] emits the
//! component exports only on WebAssembly targets.

use std::marker::PhantomData;
use std::sync::Arc;

use wasmop_contract::{BoxFuture, CacheReader, MetadataError, ReconcileFailure, Reconciler};

use crate::cache::native::with_cache;
use crate::{Desired, Metadata, ObjectKey, Plugin, Snapshot, Trigger, export};

/// A [`Plugin`] as a [`Reconciler`]: `Arc::new(Native::<MyPlugin>::new()?)` is what the engine's
/// `upsert_plugin` takes.
pub struct Native<P> {
    metadata: Metadata,
    /// `fn() -> P`: the plugin type is only named, never held, so `Native` is `Send + Sync`
    /// whatever `P` is.
    plugin: PhantomData<fn() -> P>,
}

impl<P> std::fmt::Debug for Native<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Native")
            .field("plugin", &self.metadata.name)
            .finish_non_exhaustive()
    }
}

impl<P: Plugin> Native<P> {
    /// Reads the plugin's metadata once and validates it, as the host does when it loads a
    /// component.
    pub fn new() -> Result<Self, MetadataError> {
        let metadata = P::metadata();
        metadata.validate()?;
        Ok(Native {
            metadata,
            plugin: PhantomData,
        })
    }
}

impl<P: Plugin> Reconciler for Native<P> {
    fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    fn reconcile<'a>(
        &'a self,
        snapshot: Snapshot,
        cache: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Desired, ReconcileFailure>> {
        // Computed before the future is returned: the call is synchronous, like the guest's, and
        // the thread-local cache must not be held across an await.
        let answer = with_cache(cache, || export::reconcile::<P>(snapshot)).map_err(ReconcileFailure::from);
        Box::pin(std::future::ready(answer))
    }

    fn map<'a>(
        &'a self,
        trigger: Trigger,
        cache: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Vec<ObjectKey>, ReconcileFailure>> {
        let answer = with_cache(cache, || P::map(trigger)).map_err(ReconcileFailure::from);
        Box::pin(std::future::ready(answer))
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};

    use serde_json::{Value, json};
    use wasmop_contract::{CacheReader, Gvk, ObjectKey, ReconcileFailure, Reconciler};

    use super::Native;
    use crate::prelude::*;

    /// Copies the `data.greeting` of the ConfigMap `greeting` it reads from the cache into an
    /// event; answers an object without a name when asked to (`data.broken`), and fails as told.
    struct Reader;

    impl Plugin for Reader {
        fn metadata() -> Metadata {
            Metadata::new("reader", "0.1.0", Gvk::new("", "v1", "ConfigMap"))
        }

        fn reconcile(s: Snapshot) -> Result<Desired, Error> {
            match s.object.pointer("/data/mode").and_then(Value::as_str) {
                Some("retry") => return Err(Error::retry("later")),
                Some("permanent") => return Err(Error::permanent("never")),
                Some("broken") => return Ok(Desired::new().apply_json(json!({"kind": "ConfigMap"}))),
                _ => {}
            }
            let greeting: Option<serde_json::Value> =
                crate::cache::get_as(&Gvk::new("", "v1", "ConfigMap"), Some("demo"), "greeting")?;
            let text = greeting
                .and_then(|g| g.pointer("/data/text").and_then(Value::as_str).map(String::from))
                .unwrap_or_else(|| "none".into());
            Ok(Desired::new().event(Event::normal("Read", text)))
        }

        fn map(t: Trigger) -> Result<Vec<ObjectKey>, Error> {
            let n = crate::cache::list_as::<Value>(&Gvk::new("", "v1", "ConfigMap"), None, None)?.len();
            Ok(vec![ObjectKey::new(Some("demo"), &format!("{}-{n}", t.name()))])
        }
    }

    fn now<T>(f: impl Future<Output = T>) -> T {
        let mut f = std::pin::pin!(f);
        match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(v) => v,
            Poll::Pending => panic!("a native call is synchronous"),
        }
    }

    fn cm(name: &str, data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": "demo"}, "data": data})
    }

    /// Two ConfigMaps in `demo`, `x` and `greeting`.
    struct Greeting;

    impl CacheReader for Greeting {
        fn get(&self, kind: &Gvk, namespace: Option<&str>, name: &str) -> Option<Value> {
            (kind.kind == "ConfigMap" && namespace == Some("demo") && name == "greeting")
                .then(|| cm("greeting", json!({"text": "hi"})))
        }

        fn list(&self, _: &Gvk, _: Option<&str>, _: Option<&str>) -> Vec<Value> {
            vec![cm("x", json!({})), cm("greeting", json!({"text": "hi"}))]
        }
    }

    fn cache_with_greeting() -> std::sync::Arc<Greeting> {
        std::sync::Arc::new(Greeting)
    }

    #[test]
    fn reconcile_reads_the_cache_given_for_the_call() {
        let native = Native::<Reader>::new().unwrap();
        assert_eq!(native.metadata().name, "reader");
        let d = now(native.reconcile(Snapshot::new(cm("x", json!({}))), cache_with_greeting())).unwrap();
        assert_eq!(d.events[0].message, "hi");
        // The cache was only installed for that call.
        let empty = std::sync::Arc::new(wasmop_contract::EmptyCache);
        let d = now(native.reconcile(Snapshot::new(cm("x", json!({}))), empty)).unwrap();
        assert_eq!(d.events[0].message, "none");
    }

    #[test]
    fn errors_and_unusable_answers_are_failures() {
        let native = Native::<Reader>::new().unwrap();
        let run = |mode: &str| {
            now(native.reconcile(
                Snapshot::new(cm("x", json!({"mode": mode}))),
                std::sync::Arc::new(wasmop_contract::EmptyCache),
            ))
        };
        assert_eq!(run("retry"), Err(ReconcileFailure::Retry("later".into())));
        assert_eq!(run("permanent"), Err(ReconcileFailure::Permanent("never".into())));
        match run("broken") {
            Err(ReconcileFailure::Permanent(m)) => assert!(m.contains("metadata.name is missing"), "{m}"),
            other => panic!("an object without a name is refused, got {other:?}"),
        }
    }

    #[test]
    fn map_reads_the_cache_given_for_the_call() {
        let native = Native::<Reader>::new().unwrap();
        let trigger = Trigger {
            lookup: 0,
            object: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}),
            deleted: false,
        };
        let keys = now(native.map(trigger, cache_with_greeting())).unwrap();
        assert_eq!(keys, vec![ObjectKey::new(Some("demo"), "ns-2")]);
    }
}
