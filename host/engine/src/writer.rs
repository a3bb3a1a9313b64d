//! The writes a reconcile sends ([`Write`]), how they fail ([`WriteError`], keeping the API
//! server's answer as the source) and who sends them ([`Writer`]): [`KubeWriter`] in production —
//! one per plugin, with its field manager, every write paced by the engine's global token bucket and
//! refused while the engine does not lead ([`crate::gate`]) — and a recording writer in tests.
//!
//! An Event that fails for a reason that may pass (a 429, a 500, no answer) is tried again in the
//! background, as client-go's event recorder does: the reconcile that asked for it has moved on and
//! will not ask again (the engine records an identical event once in ten minutes).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Client;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use wasmop_contract::{BoxFuture, EventType, PatchType};

use crate::backoff::{Backoff, BackoffConfig};
use crate::gate::Gate;
use crate::metrics::{self, Metrics};
use crate::ratelimit::TokenBucket;

/// How often a failed Event is tried again (client-go's recorder: 12 tries).
const EVENT_RETRIES: u32 = 12;
/// The delays between those tries: from half a second, doubling, at most 10 s (client-go waits
/// 10 s each time), jittered.
const EVENT_BACKOFF: BackoffConfig = BackoffConfig {
    base: Duration::from_millis(500),
    cap: Duration::from_secs(10),
};
/// Events being retried at once, per plugin; beyond it a failed event is dropped (and logged), so
/// a long outage cannot pile up tasks.
const MAX_PENDING_EVENTS: usize = 1000;

/// The object a write is about.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteTarget {
    pub resource: ApiResource,
    pub namespace: Option<String>,
    pub name: String,
}

impl std::fmt::Display for WriteTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.resource.kind, self.name),
            None => write!(f, "{} {}", self.resource.kind, self.name),
        }
    }
}

/// One write.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Server-side apply of a child (forced: the plugin's intent wins for its own fields).
    Apply { target: WriteTarget, body: Value },
    /// Deletion (a 404 counts as done).
    Delete { target: WriteTarget },
    /// A merge or JSON patch.
    Patch {
        target: WriteTarget,
        patch_type: PatchType,
        body: Value,
    },
    /// Server-side apply of the primary object's status subresource.
    Status { target: WriteTarget, body: Value },
    /// Adds the plugin's finalizer: the primary object's new finalizer list, guarded by the
    /// resourceVersion it was computed from (a 404 is [`WriteError::Gone`]: the writes planned
    /// after it are for an object that no longer exists).
    AddFinalizer {
        target: WriteTarget,
        finalizers: Vec<String>,
        resource_version: Option<String>,
    },
    /// Removes the plugin's finalizer at `index`, guarded by a JSON-patch `test` that it is still
    /// there (other writes of the same reconcile may have changed the resourceVersion; a 404
    /// counts as done).
    RemoveFinalizer {
        target: WriteTarget,
        index: usize,
        name: String,
    },
    /// A Kubernetes Event about an object.
    Event {
        regarding: ObjectReference,
        event_type: EventType,
        reason: String,
        message: String,
    },
}

impl Write {
    /// The write's verb, for metrics.
    pub fn verb(&self) -> &'static str {
        match self {
            Write::Apply { .. } => "apply",
            Write::Delete { .. } => "delete",
            Write::Patch { .. } => "patch",
            Write::Status { .. } => "apply_status",
            Write::AddFinalizer { .. } => "add_finalizer",
            Write::RemoveFinalizer { .. } => "remove_finalizer",
            Write::Event { .. } => "create_event",
        }
    }

    /// The resource written (`group/plural`, `/plural` for the core group): what a 429 pauses.
    pub fn resource(&self) -> String {
        match self {
            Write::Apply { target, .. }
            | Write::Delete { target }
            | Write::Patch { target, .. }
            | Write::Status { target, .. }
            | Write::AddFinalizer { target, .. }
            | Write::RemoveFinalizer { target, .. } => {
                format!("{}/{}", target.resource.group, target.resource.plural)
            }
            Write::Event { .. } => "events.k8s.io/events".to_string(),
        }
    }

    /// What the write does, for logs and messages.
    pub fn describe(&self) -> String {
        match self {
            Write::Apply { target, .. } => format!("apply of {target}"),
            Write::Delete { target } => format!("deletion of {target}"),
            Write::Patch { target, .. } => format!("patch of {target}"),
            Write::Status { target, .. } => format!("status of {target}"),
            Write::AddFinalizer { target, .. } => format!("adding the finalizer to {target}"),
            Write::RemoveFinalizer { target, .. } => format!("removing the finalizer from {target}"),
            Write::Event { reason, .. } => format!("event {reason}"),
        }
    }
}

/// How a write failed, and what that means for retrying.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The plugin asked for writes it did not declare; nothing was sent.
    #[error("refused undeclared writes: {}", .0.join("; "))]
    Refused(Vec<String>),
    /// The API server (or the way to it) failed the write.
    #[error("{what} failed: {source}")]
    Api {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// A write guarded by a precondition (a JSON-patch `test`) found the object changed since the
    /// cache saw it: like a 409, retried with the fresh object.
    #[error("{what}: the object changed meanwhile: {source}")]
    Stale {
        what: String,
        #[source]
        source: kube::Error,
    },
    /// The write could not even be formed (an invalid JSON patch from the plugin).
    #[error("{what}: {reason}")]
    Invalid { what: String, reason: String },
    /// This host does not hold the leader lease (any more): nothing was sent.
    #[error("{what}: not sent, this host is not the leader")]
    NotLeading { what: String },
    /// The primary object was deleted before the plugin's finalizer could be added: what the
    /// reconcile planned after it (children in other namespaces, which nothing would clean up) is
    /// not sent. Retried with backoff, when the cache no longer shows the object.
    #[error("{what}: the object is gone")]
    Gone { what: String },
}

/// What the engine does about a failed write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// 429: wait this long (the API server's Retry-After).
    RetryAfter(Duration),
    /// 409: optimistic concurrency lost; retry soon with the fresh cached object.
    Conflict,
    /// 400, 403, 404 (the kind is not served), 422, or a refused or invalid answer: only a change
    /// of the object or the plugin can help. The message is the API server's.
    Permanent(String),
    /// Anything else (500s, timeouts, connection errors): retry with backoff.
    Transient,
}

impl WriteError {
    pub fn class(&self) -> ErrorClass {
        match self {
            WriteError::Refused(reasons) => {
                ErrorClass::Permanent(format!("refused undeclared writes: {}", reasons.join("; ")))
            }
            WriteError::Invalid { .. } => ErrorClass::Permanent(self.to_string()),
            WriteError::Stale { .. } => ErrorClass::Conflict,
            WriteError::NotLeading { .. } | WriteError::Gone { .. } => ErrorClass::Transient,
            WriteError::Api { what, source } => match source {
                kube::Error::Api(s) if s.code == 429 => {
                    let secs = s
                        .details
                        .as_ref()
                        .map(|d| d.retry_after_seconds)
                        .filter(|s| *s > 0)
                        .unwrap_or(1);
                    ErrorClass::RetryAfter(Duration::from_secs(u64::from(secs)))
                }
                kube::Error::Api(s) if s.code == 409 => ErrorClass::Conflict,
                kube::Error::Api(s) if matches!(s.code, 400 | 403 | 404 | 422) => {
                    ErrorClass::Permanent(format!("{what}: {} ({})", s.message, s.code))
                }
                _ => ErrorClass::Transient,
            },
        }
    }
}

/// Sends writes.
pub trait Writer: Send + Sync + 'static {
    fn write<'a>(&'a self, write: &'a Write) -> BoxFuture<'a, Result<(), WriteError>>;
}

/// Writes through the kube client as one plugin's field manager (see the module docs). Cloning
/// shares the client, the bucket and the count of events being retried.
#[derive(Clone)]
pub struct KubeWriter {
    client: Client,
    limiter: Arc<TokenBucket>,
    manager: String,
    gate: Arc<Gate>,
    metrics: Metrics,
    plugin: String,
    pending_events: Arc<AtomicUsize>,
}

impl KubeWriter {
    /// A writer for `plugin`, as field manager `manager`.
    pub fn new(
        client: Client,
        limiter: Arc<TokenBucket>,
        manager: String,
        gate: Arc<Gate>,
        metrics: Metrics,
        plugin: String,
    ) -> KubeWriter {
        KubeWriter {
            client,
            limiter,
            manager,
            gate,
            metrics,
            plugin,
            pending_events: Arc::default(),
        }
    }

    /// Events being retried in the background now.
    pub fn pending_events(&self) -> usize {
        self.pending_events.load(Ordering::Relaxed)
    }

    fn not_leading(&self, write: &Write) -> Result<(), WriteError> {
        if self.gate.is_open() {
            Ok(())
        } else {
            Err(WriteError::NotLeading {
                what: write.describe(),
            })
        }
    }

    fn api(&self, t: &WriteTarget) -> Api<DynamicObject> {
        match &t.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &t.resource),
            None => Api::all_with(self.client.clone(), &t.resource),
        }
    }

    async fn send(&self, write: &Write) -> Result<(), kube::Error> {
        let apply = PatchParams::apply(&self.manager).force();
        let params = PatchParams {
            field_manager: Some(self.manager.clone()),
            ..Default::default()
        };
        match write {
            Write::Apply { target, body } => self
                .api(target)
                .patch(&target.name, &apply, &Patch::Apply(body))
                .await
                .map(drop),
            Write::Delete { target } => self
                .api(target)
                .delete(&target.name, &DeleteParams::background())
                .await
                .map(drop),
            Write::Patch {
                target,
                patch_type,
                body,
            } => {
                let api = self.api(target);
                match patch_type {
                    PatchType::Merge => api.patch(&target.name, &params, &Patch::Merge(body)).await,
                    PatchType::Json => {
                        let ops: json_patch::Patch =
                            serde_json::from_value(body.clone()).map_err(kube::Error::SerdeError)?;
                        api.patch(&target.name, &params, &Patch::<()>::Json(ops)).await
                    }
                }
                .map(drop)
            }
            Write::Status { target, body } => self
                .api(target)
                .patch_status(&target.name, &apply, &Patch::Apply(body))
                .await
                .map(drop),
            Write::AddFinalizer {
                target,
                finalizers,
                resource_version,
            } => {
                let patch =
                    json!({"metadata": {"finalizers": finalizers, "resourceVersion": resource_version}});
                self.api(target)
                    .patch(&target.name, &params, &Patch::Merge(&patch))
                    .await
                    .map(drop)
            }
            Write::RemoveFinalizer { target, index, name } => {
                let path = format!("/metadata/finalizers/{index}");
                let ops: json_patch::Patch = serde_json::from_value(json!([
                    {"op": "test", "path": path, "value": name},
                    {"op": "remove", "path": path},
                ]))
                .map_err(kube::Error::SerdeError)?;
                self.api(target)
                    .patch(&target.name, &params, &Patch::<()>::Json(ops))
                    .await
                    .map(drop)
            }
            Write::Event {
                regarding,
                event_type,
                reason,
                message,
            } => {
                let event = event_object(regarding, *event_type, reason, message);
                let ns = regarding.namespace.as_deref().unwrap_or("default");
                Api::<events::v1::Event>::namespaced(self.client.clone(), ns)
                    .create(&PostParams::default(), &event)
                    .await
                    .map(drop)
            }
        }
    }
}

/// An `events.k8s.io/v1` Event about `regarding`, as kube-runtime's `Recorder` writes a new one.
///
/// The engine does not use the `Recorder` itself: it keeps every event it published for six
/// minutes (to count repeats as a series) and scans them all on every publish, which costs memory
/// and time per event at thousands of objects; the engine already records an identical event about
/// the same object only once in ten minutes.
fn event_object(
    regarding: &ObjectReference,
    event_type: EventType,
    reason: &str,
    note: &str,
) -> events::v1::Event {
    let now = k8s_openapi::jiff::Timestamp::now();
    events::v1::Event {
        metadata: ObjectMeta {
            namespace: regarding.namespace.clone(),
            name: Some(format!(
                "{}.{:x}",
                regarding.name.as_deref().unwrap_or(REPORTER),
                now.as_nanosecond()
            )),
            ..Default::default()
        },
        action: Some(reason.to_string()),
        reason: Some(reason.to_string()),
        note: Some(note.to_string()),
        event_time: Some(MicroTime(now)),
        regarding: Some(regarding.clone()),
        reporting_controller: Some(REPORTER.to_string()),
        reporting_instance: Some(REPORTER.to_string()),
        type_: Some(
            match event_type {
                EventType::Normal => "Normal",
                EventType::Warning => "Warning",
            }
            .to_string(),
        ),
        ..Default::default()
    }
}

/// What a 404 answer means for `write`, when it is not a failure like any other: deleting an object
/// that is gone, or taking its finalizer off, is done; adding the finalizer to it means the object
/// is gone ([`WriteError::Gone`]).
fn not_found(write: &Write) -> Option<Result<(), WriteError>> {
    match write {
        Write::Delete { .. } | Write::RemoveFinalizer { .. } => Some(Ok(())),
        Write::AddFinalizer { .. } => Some(Err(WriteError::Gone {
            what: write.describe(),
        })),
        _ => None,
    }
}

/// The `reportingController` of the host's events.
const REPORTER: &str = "wasmop";

impl KubeWriter {
    /// One attempt: a token of the global bucket, the write, its count; a 429 pauses every
    /// plugin's writes of the resource for its Retry-After.
    async fn attempt(&self, write: &Write) -> Result<(), WriteError> {
        self.not_leading(write)?;
        let waiting = tokio::time::Instant::now();
        let resource = write.resource();
        self.limiter.acquire(&resource).await;
        self.metrics
            .limiter_wait
            .get_or_create(&metrics::plugin(&self.plugin))
            .inc_by(waiting.elapsed().as_secs_f64());
        // The wait may have been long: the lease may have been lost meanwhile.
        self.not_leading(write)?;
        let result = self.send(write).await;
        let code = match &result {
            Ok(()) => "200".to_string(),
            Err(kube::Error::Api(s)) => s.code.to_string(),
            Err(_) => "error".to_string(),
        };
        self.metrics
            .writes
            .get_or_create(&[
                ("plugin", self.plugin.clone()),
                ("verb", write.verb().to_string()),
                ("code", code),
            ])
            .inc();
        if let Err(kube::Error::Api(s)) = &result
            && s.code == 404
            && let Some(settled) = not_found(write)
        {
            return settled;
        }
        if let Err(kube::Error::Api(s)) = &result
            && s.code == 429
        {
            // Every plugin's writes of the resource wait: the API server throttles them, not
            // this object.
            let secs = s.details.as_ref().map_or(1, |d| d.retry_after_seconds.max(1));
            self.limiter
                .pause_for(&resource, Duration::from_secs(u64::from(secs)))
                .await;
        }
        result.map_err(|source| match (&source, write) {
            // A failed `test` is answered 422: the finalizer list changed under us.
            (kube::Error::Api(s), Write::RemoveFinalizer { .. }) if s.code == 422 => WriteError::Stale {
                what: write.describe(),
                source,
            },
            _ => WriteError::Api {
                what: write.describe(),
                source,
            },
        })
    }

    /// Tries a failed event again in the background (see the module docs), each try through the
    /// bucket (a Retry-After pause included), until it is written, fails for good, or this host
    /// stops leading.
    fn retry_event(&self, write: &Write) {
        if self.pending_events.fetch_add(1, Ordering::Relaxed) >= MAX_PENDING_EVENTS {
            self.pending_events.fetch_sub(1, Ordering::Relaxed);
            tracing::warn!(plugin = %self.plugin, event = %write.describe(), "too many events being retried; this one is dropped");
            return;
        }
        let (writer, write) = (self.clone(), write.clone());
        tokio::spawn(async move {
            let mut backoff = Backoff::new(EVENT_BACKOFF);
            for _ in 0..EVENT_RETRIES {
                tokio::time::sleep(backoff.failure(&())).await;
                match writer.attempt(&write).await {
                    Ok(()) => break,
                    Err(e) if retryable_event(&e) => {
                        tracing::debug!(plugin = %writer.plugin, error = %e, "an event failed again");
                    }
                    Err(e) => {
                        tracing::warn!(plugin = %writer.plugin, error = %e, "recording an event failed");
                        break;
                    }
                }
            }
            writer.pending_events.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

/// Whether a failed event is worth trying again: a 429 or a transient failure, while leading.
fn retryable_event(e: &WriteError) -> bool {
    !matches!(e, WriteError::NotLeading { .. })
        && matches!(e.class(), ErrorClass::RetryAfter(_) | ErrorClass::Transient)
}

impl Writer for KubeWriter {
    fn write<'a>(&'a self, write: &'a Write) -> BoxFuture<'a, Result<(), WriteError>> {
        Box::pin(async move {
            let result = self.attempt(write).await;
            if let (Err(e), Write::Event { .. }) = (&result, write)
                && retryable_event(e)
            {
                self.retry_event(write);
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Box::new(kube::core::Status {
            code,
            message: message.into(),
            details: Some(serde_json::from_value(json!({"retryAfterSeconds": 7})).unwrap()),
            ..Default::default()
        }))
    }

    #[tokio::test]
    async fn a_host_that_does_not_lead_sends_nothing() {
        // Nothing listens there: a write that was sent would fail with a connection error.
        let client = Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let gate = Arc::new(Gate::default());
        gate.set(false);
        let metrics = Metrics::default();
        let writer = KubeWriter::new(
            client.clone(),
            Arc::new(TokenBucket::new(crate::RateLimitConfig::default())),
            "wasmop/p".into(),
            gate,
            metrics.clone(),
            "p".into(),
        );
        let target = WriteTarget {
            resource: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
            namespace: Some("a".into()),
            name: "b".into(),
        };
        let err = writer.write(&Write::Delete { target }).await.unwrap_err();
        assert!(matches!(err, WriteError::NotLeading { .. }), "{err}");
        assert_eq!(err.class(), ErrorClass::Transient);
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            !text.contains("api_writes_total{"),
            "nothing counted as sent: {text}"
        );
    }

    fn event() -> Write {
        Write::Event {
            regarding: ObjectReference {
                namespace: Some("a".into()),
                name: Some("b".into()),
                ..Default::default()
            },
            event_type: EventType::Normal,
            reason: "Greeted".into(),
            message: "hello".into(),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_event_is_tried_again_in_the_background_then_given_up() {
        // Nothing listens there: every try fails without an answer, a transient failure.
        let client = Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
        let metrics = Metrics::default();
        let gate = Arc::new(Gate::default());
        let writer = KubeWriter::new(
            client,
            Arc::new(TokenBucket::new(crate::RateLimitConfig::default())),
            "wasmop/p".into(),
            gate.clone(),
            metrics.clone(),
            "p".into(),
        );
        let tries = || {
            metrics
                .writes
                .get_or_create(&[
                    ("plugin", "p".to_string()),
                    ("verb", "create_event".to_string()),
                    ("code", "error".to_string()),
                ])
                .get()
        };
        let start = tokio::time::Instant::now();
        let err = writer.write(&event()).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::Transient);
        assert_eq!(
            (tries(), writer.pending_events()),
            (1, 1),
            "one try, one retry pending"
        );
        while writer.pending_events() > 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(tries(), 1 + u64::from(EVENT_RETRIES), "then given up");
        // The tries were spaced by the backoff: each delay at least half its ceiling.
        let b = Backoff::<()>::new(EVENT_BACKOFF);
        let least: Duration = (1..=EVENT_RETRIES).map(|n| b.ceiling(n) / 2).sum();
        assert!(start.elapsed() >= least, "{:?} < {least:?}", start.elapsed());
        // A host that stops leading does not retry (nor send) its events.
        gate.set(false);
        let err = writer.write(&event()).await.unwrap_err();
        assert!(matches!(err, WriteError::NotLeading { .. }), "{err}");
        assert_eq!(
            (tries(), writer.pending_events()),
            (1 + u64::from(EVENT_RETRIES), 0)
        );
    }

    #[test]
    fn api_answers_are_classified_and_keep_their_source() {
        let err = |code| WriteError::Api {
            what: "apply of ConfigMap a/b".into(),
            source: api_error(code, "nope"),
        };
        assert_eq!(err(429).class(), ErrorClass::RetryAfter(Duration::from_secs(7)));
        assert_eq!(err(409).class(), ErrorClass::Conflict);
        for code in [400, 403, 404, 422] {
            assert_eq!(
                err(code).class(),
                ErrorClass::Permanent(format!("apply of ConfigMap a/b: nope ({code})"))
            );
        }
        assert_eq!(err(500).class(), ErrorClass::Transient);
        assert_eq!(err(503).class(), ErrorClass::Transient);
        let e = err(403);
        let source = std::error::Error::source(&e).expect("the kube error is kept");
        assert!(source.to_string().contains("nope"));
    }

    #[test]
    fn a_404_is_done_for_a_deletion_and_means_gone_for_the_finalizer_to_add() {
        let target = WriteTarget {
            resource: ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
            namespace: Some("a".into()),
            name: "b".into(),
        };
        assert!(matches!(
            not_found(&Write::Delete {
                target: target.clone()
            }),
            Some(Ok(()))
        ));
        let remove = Write::RemoveFinalizer {
            target: target.clone(),
            index: 0,
            name: "wasmop.io/p".into(),
        };
        assert!(matches!(not_found(&remove), Some(Ok(()))));
        let add = Write::AddFinalizer {
            target: target.clone(),
            finalizers: vec!["wasmop.io/p".into()],
            resource_version: Some("1".into()),
        };
        let gone = not_found(&add).expect("settled").unwrap_err();
        assert_eq!(
            gone.to_string(),
            "adding the finalizer to ConfigMap a/b: the object is gone"
        );
        assert_eq!(gone.class(), ErrorClass::Transient);
        // Other writes keep the 404 as an error (the kind is not served).
        let apply = Write::Apply {
            target,
            body: serde_json::json!({}),
        };
        assert!(not_found(&apply).is_none());
    }
}
