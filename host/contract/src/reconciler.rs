//! A loaded plugin as the engine sees it ([`Reconciler`]), the read-only cache it may use
//! ([`CacheReader`]), and how a call can fail ([`ReconcileFailure`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde_json::Value;

use crate::desired::Desired;
use crate::kind::{Gvk, ObjectKey};
use crate::metadata::Metadata;
use crate::snapshot::{Snapshot, SnapshotText, Trigger};

/// Why a call produced no answer. A guest trap is not an error the guest returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileFailure {
    /// The plugin asked for a retry with backoff.
    #[error("plugin error (will retry): {0}")]
    Retry(String),
    /// The plugin says only a change of the object can help.
    #[error("plugin error (permanent): {0}")]
    Permanent(String),
    /// The guest trapped (a panic, an unreachable, a bad memory access).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The guest ran past its deadline.
    #[error("plugin exceeded its deadline of {0:?}")]
    Timeout(std::time::Duration),
    /// The guest tried to grow its memory past the cap.
    #[error("plugin exceeded its memory cap of {0} bytes")]
    OutOfMemory(u64),
    /// The guest answered something the host cannot use (malformed JSON, ...).
    #[error("plugin returned an invalid answer: {0}")]
    Invalid(String),
}

impl ReconcileFailure {
    /// Whether the engine should retry with backoff (everything but a permanent error).
    pub fn retryable(&self) -> bool {
        !matches!(self, ReconcileFailure::Permanent(_))
    }
}

/// Read-only cache access the host gives a call (limited by the engine to what was declared).
pub trait CacheReader: Send + Sync {
    fn get(&self, kind: &Gvk, namespace: Option<&str>, name: &str) -> Option<Value>;
    fn list(&self, kind: &Gvk, namespace: Option<&str>, label_selector: Option<&str>) -> Vec<Value>;
}

/// A cache with nothing in it.
#[derive(Debug, Default, Clone, Copy)]
pub struct EmptyCache;

impl CacheReader for EmptyCache {
    fn get(&self, _: &Gvk, _: Option<&str>, _: &str) -> Option<Value> {
        None
    }

    fn list(&self, _: &Gvk, _: Option<&str>, _: Option<&str>) -> Vec<Value> {
        Vec::new()
    }
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A loaded plugin, as the engine sees it.
pub trait Reconciler: Send + Sync {
    fn metadata(&self) -> &Metadata;

    /// One reconcile of one object.
    fn reconcile<'a>(
        &'a self,
        snapshot: Snapshot,
        cache: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Desired, ReconcileFailure>>;

    /// Whether this reconciler takes its snapshots as JSON text ([`reconcile_text`]): the engine
    /// then hands it the text it caches instead of building JSON values.
    ///
    /// [`reconcile_text`]: Self::reconcile_text
    fn takes_text(&self) -> bool {
        false
    }

    /// [`reconcile`](Self::reconcile), given the snapshot's objects as JSON text. By default they
    /// are parsed and handed to `reconcile`.
    fn reconcile_text<'a>(
        &'a self,
        snapshot: SnapshotText,
        cache: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Desired, ReconcileFailure>> {
        Box::pin(async move {
            // The engine's text is its cache's: JSON it wrote itself.
            let snapshot = snapshot
                .parse()
                .map_err(|e| ReconcileFailure::Retry(format!("the snapshot is not JSON: {e}")))?;
            self.reconcile(snapshot, cache).await
        })
    }

    /// The primary objects a change to an object of a triggering lookup concerns. Plugins without
    /// triggering lookups are never asked.
    fn map<'a>(
        &'a self,
        trigger: Trigger,
        cache: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Vec<ObjectKey>, ReconcileFailure>> {
        let _ = (trigger, cache);
        Box::pin(async { Ok(Vec::new()) })
    }
}
