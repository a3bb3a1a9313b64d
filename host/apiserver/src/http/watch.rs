//! Watch streams: one JSON event per line over a chunked response, with the resourceVersion rules of
//! a real server — synthetic ADDED events for "" and "0", replay after a given revision, 410 Expired
//! (as an ERROR event) when that revision is older than the retained history, selector transitions
//! (an object leaving a label selection is DELETED), BOOKMARKs, `timeoutSeconds`, and Table events
//! for `kubectl get -w`. Open watches are counted per user ([`Limiter`]): one client cannot hold
//! the server's memory and tasks with thousands of them.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::response::Response;
use http::{HeaderValue, header};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use super::{RequestCtx, json_bytes, table};
use crate::Core;
use crate::error::{ApiError, ApiResult};
use crate::objects::{Selectors, present};
use crate::registry::ResourceInfo;
use crate::store::EventType;

/// Open watches per user, bounded: a watch beyond the limit is answered 429 with a Retry-After, as
/// kube-apiserver answers requests beyond its in-flight limits; other users keep theirs.
#[derive(Debug)]
pub struct Limiter {
    per_user: usize,
    open: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

/// One open watch, counted until dropped (when its stream ends).
#[derive(Debug)]
pub struct Permit {
    limiter: Arc<Limiter>,
    user: String,
}

impl Limiter {
    /// `per_user` open watches per user name; 0 means no limit.
    pub fn new(per_user: usize) -> Arc<Limiter> {
        Arc::new(Limiter {
            per_user,
            open: Default::default(),
        })
    }

    /// A permit for one more watch of `user`, or the 429 to answer.
    pub fn acquire(self: &Arc<Self>, user: &str) -> ApiResult<Permit> {
        let mut open = self.open.lock().expect("watch limiter lock");
        let n = open.entry(user.to_string()).or_default();
        if self.per_user > 0 && *n >= self.per_user {
            let mut e = ApiError::new(
                429,
                "TooManyRequests",
                format!(
                    "too many open watches for user \"{user}\": at most {} (--max-watches-per-client); close some and try again later",
                    self.per_user
                ),
            )
            .with_details(json!({"retryAfterSeconds": 1}));
            e.retry_after = Some(1);
            return Err(e);
        }
        *n += 1;
        Ok(Permit {
            limiter: self.clone(),
            user: user.to_string(),
        })
    }

    /// Watches open now for `user`.
    pub fn open(&self, user: &str) -> usize {
        let open = self.open.lock().expect("watch limiter lock");
        open.get(user).copied().unwrap_or(0)
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().expect("watch limiter lock");
        if let Some(n) = open.get_mut(&self.user) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

struct WatchParams {
    ri: Arc<ResourceInfo>,
    namespace: Option<String>,
    selectors: Selectors,
    resource_version: String,
    bookmarks: bool,
    timeout: Duration,
    table: bool,
    include_object: Option<String>,
    /// Metadata-only events (`as=PartialObjectMetadata`).
    meta: Option<super::metadata::Target>,
}

pub async fn serve(
    ctx: &RequestCtx,
    ri: Arc<ResourceInfo>,
    namespace: Option<String>,
) -> ApiResult<Response> {
    let q = &ctx.query;
    let permit = ctx.core.watches.acquire(&ctx.user.name)?;
    let selectors = Selectors::parse(&ri, q.get("labelSelector"), q.get("fieldSelector"))?;
    let rv = q.get("resourceVersion").unwrap_or("").to_string();
    if !rv.is_empty() && rv.parse::<u64>().is_err() {
        return Err(ApiError::bad_request(format!("invalid resource version: {rv}")));
    }
    // Without timeoutSeconds a real server picks a random timeout between 30 and 60 minutes.
    let timeout = match q.get("timeoutSeconds").and_then(|t| t.parse::<u64>().ok()) {
        Some(t) if t > 0 => Duration::from_secs(t),
        _ => Duration::from_secs(1800 + rand::rng().random_range(0..1800)),
    };
    let params = WatchParams {
        ri,
        namespace: namespace.filter(|n| !n.is_empty()),
        selectors,
        resource_version: rv,
        bookmarks: q.flag("allowWatchBookmarks"),
        timeout,
        table: ctx.format.table,
        include_object: q.get("includeObject").map(String::from),
        meta: ctx.format.meta,
    };
    let (queue, stream) = queue(QUEUE_EVENTS, QUEUE_BYTES as u32);
    let core = ctx.core.clone();
    tokio::spawn(async move {
        run(core, params, queue).await;
        drop(permit);
    });
    let body = Body::from_stream(stream);
    let mut resp = Response::new(body);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

/// How long a watch waits for a client that has stopped reading (its queue of events full) before
/// it ends the watch, as kube-apiserver ends unresponsive watchers: the client re-watches from its
/// last resourceVersion, and the server holds no more than a full queue for that long.
const SLOW_WATCHER: Duration = Duration::from_secs(60);

/// At most this many encoded events wait for one watch's client …
const QUEUE_EVENTS: usize = 256;
/// … and at most this many bytes of them (one event larger than that alone).
const QUEUE_BYTES: usize = 16 * 1024 * 1024;

/// The events encoded for one watch and not yet taken by its client: bounded in count and in bytes,
/// so a client that reads slowly makes the watch wait instead of the server buffer.
struct Queue {
    tx: mpsc::Sender<(Bytes, u32)>,
    budget: Arc<tokio::sync::Semaphore>,
    max_bytes: u32,
}

/// A queue and the response body stream that drains it (giving the bytes back as it goes).
fn queue(
    events: usize,
    bytes: u32,
) -> (
    Queue,
    impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
) {
    use tokio_stream::StreamExt;
    let (tx, rx) = mpsc::channel(events);
    let budget = Arc::new(tokio::sync::Semaphore::new(bytes as usize));
    let release = budget.clone();
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx).map(move |(line, n): (Bytes, u32)| {
        release.add_permits(n as usize);
        Ok(line)
    });
    (
        Queue {
            tx,
            budget,
            max_bytes: bytes,
        },
        stream,
    )
}

impl Queue {
    /// Queues one event line; false when the client has gone, or has not made room for it within
    /// `patience`.
    async fn send(&self, line: Bytes, patience: Duration) -> bool {
        let n = u32::try_from(line.len()).unwrap_or(u32::MAX).min(self.max_bytes);
        let queued = async {
            // Given back by the body stream when the client takes the event.
            self.budget.acquire_many(n).await.ok()?.forget();
            self.tx.send((line, n)).await.ok()
        };
        tokio::select! {
            sent = tokio::time::timeout(patience, queued) => matches!(sent, Ok(Some(()))),
            _ = self.tx.closed() => false,
        }
    }
}

struct Sender {
    queue: Queue,
    params: WatchParams,
    first_table: bool,
}

impl Sender {
    /// Sends one event; false when the client has gone.
    async fn event(&mut self, type_: &str, object: &Value) -> bool {
        let object = if self.params.table && type_ != "ERROR" && type_ != "BOOKMARK" {
            let t = table::object_table(
                &self.params.ri,
                object,
                self.params.include_object.as_deref(),
                self.first_table,
            );
            self.first_table = false;
            t
        } else if let Some(target) = self.params.meta.filter(|_| type_ != "ERROR") {
            super::metadata::transform_event(object, target)
        } else {
            object.clone()
        };
        let line = json_bytes(&json!({"type": type_, "object": object}), false);
        self.queue.send(Bytes::from(line), SLOW_WATCHER).await
    }

    async fn bookmark(&mut self, revision: u64) -> bool {
        let ri = &self.params.ri;
        let obj = json!({"kind": ri.kind, "apiVersion": ri.api_version(), "metadata": {"resourceVersion": revision.to_string(), "creationTimestamp": null}});
        self.event("BOOKMARK", &obj).await
    }

    async fn expired(&mut self, requested: u64, oldest: u64) {
        let e = ApiError::gone(format!("too old resource version: {requested} ({})", oldest + 1));
        let mut status = e.to_status();
        if let Some(m) = status.as_object_mut() {
            m.remove("details");
        }
        self.event("ERROR", &status).await;
    }

    fn in_scope(&self, namespace: &str) -> bool {
        self.params.namespace.as_deref().is_none_or(|ns| ns == namespace)
    }
}

fn with_rv(obj: &Value, revision: u64) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.insert("resourceVersion".into(), revision.to_string().into());
    }
    o
}

async fn run(core: Arc<Core>, params: WatchParams, queue: Queue) {
    let deadline = Instant::now() + params.timeout;
    let bookmarks = params.bookmarks;
    let mut s = Sender {
        queue,
        params,
        first_table: true,
    };
    let mut revisions = core.store.subscribe();
    let mut closer = core.faults.watch_closer();
    closer.mark_unchanged();
    let mut shutdown = core.shutdown.subscribe();
    let resource = s.params.ri.storage_key();
    let ri = s.params.ri.clone();

    let mut last = match s.params.resource_version.as_str() {
        "" | "0" => {
            let (rev, items) = core.store.list(&resource, s.params.namespace.as_deref());
            let matching: Vec<_> = items
                .into_iter()
                .filter(|o| s.params.selectors.matches(o))
                .collect();
            for obj in matching {
                if !s.event("ADDED", &present(&ri, &obj)).await {
                    return;
                }
            }
            rev
        }
        rv => rv.parse().unwrap_or(0),
    };
    let interval = core.bookmark_interval;
    let mut next_bookmark = Instant::now() + interval;
    loop {
        // Everything up to `upto` is in the history once the revision shows it, so after this scan the
        // watch has seen every change of its resource up to `upto` (what bookmarks report).
        let upto = core.store.revision();
        let events = match core.store.events_since(Some(&resource), last) {
            Ok(e) => e,
            Err(oldest) => {
                s.expired(last, oldest).await;
                return;
            }
        };
        for e in events {
            last = e.revision;
            if !s.in_scope(&e.key.namespace) {
                continue;
            }
            let now_matches = s.params.selectors.matches(&e.object);
            let was_matching = e.previous.as_ref().is_some_and(|p| s.params.selectors.matches(p));
            let (type_, object) = match e.type_ {
                EventType::Added if now_matches => ("ADDED", present(&ri, &e.object)),
                EventType::Modified if now_matches && was_matching => ("MODIFIED", present(&ri, &e.object)),
                EventType::Modified if now_matches => ("ADDED", present(&ri, &e.object)),
                // Leaving the selection: the old object with the new revision (reference behaviour 43).
                EventType::Modified if was_matching => (
                    "DELETED",
                    with_rv(
                        &present(&ri, e.previous.as_deref().unwrap_or(&e.object)),
                        e.revision,
                    ),
                ),
                EventType::Deleted if was_matching || now_matches => ("DELETED", present(&ri, &e.object)),
                _ => continue,
            };
            if !s.event(type_, &object).await {
                return;
            }
        }
        last = last.max(upto);
        // The last bookmark comes shortly before the timeout, as a real server sends it.
        let wake = if bookmarks {
            next_bookmark.min(deadline - Duration::from_secs(1).min(s.params.timeout / 2))
        } else {
            deadline
        };
        tokio::select! {
            changed = revisions.changed() => if changed.is_err() { return },
            _ = sleep_until(wake) => {
                if Instant::now() >= deadline {
                    return;
                }
                if bookmarks {
                    if !s.bookmark(last).await {
                        return;
                    }
                    next_bookmark = Instant::now() + interval;
                    if Instant::now() + Duration::from_secs(1) >= deadline {
                        sleep_until(deadline).await;
                        return;
                    }
                }
            }
            _ = closer.changed() => return,
            _ = async { let _ = shutdown.wait_for(|s| *s).await; } => return,
            _ = s.queue.tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;

    fn line(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[tokio::test(start_paused = true)]
    async fn a_client_that_stops_reading_is_let_go_after_the_patience() {
        let patience = Duration::from_secs(60);
        let (q, mut stream) = queue(2, 1000);
        assert!(q.send(line(1), patience).await);
        assert!(q.send(line(1), patience).await);
        // Full (in events), and nobody reads: given up after the patience, not before.
        let started = Instant::now();
        assert!(!q.send(line(1), patience).await);
        assert_eq!(started.elapsed(), patience);
        // A reader that takes one within the patience keeps the watch.
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(59)).await;
            stream.next().await.map(|_| stream)
        });
        assert!(q.send(line(1), patience).await);
        let stream = reader.await.unwrap().expect("open");
        // A client that has gone: at once.
        drop(stream);
        let started = Instant::now();
        assert!(!q.send(line(1), patience).await);
        assert_eq!(started.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_queue_is_bounded_in_bytes_and_an_oversized_event_still_passes_alone() {
        let patience = Duration::from_secs(60);
        let (q, mut stream) = queue(100, 10);
        assert!(q.send(line(6), patience).await);
        // 6 + 6 > 10 bytes: waits for the client, who takes the first after 5 s.
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(5)).await;
            let first = stream.next().await.unwrap().unwrap();
            (first.len(), stream)
        });
        let started = Instant::now();
        assert!(q.send(line(6), patience).await);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
        let (first, mut stream) = reader.await.unwrap();
        assert_eq!(first, 6);
        assert_eq!(stream.next().await.unwrap().unwrap().len(), 6);
        // Larger than the whole budget: passes once the queue is empty.
        assert!(q.send(line(25), patience).await);
        assert_eq!(stream.next().await.unwrap().unwrap().len(), 25);
        assert!(q.send(line(3), patience).await);
        // A client that has gone while the watch waits for room: let go at once.
        assert!(q.send(line(7), patience).await);
        let waiting = tokio::spawn(async move { q.send(line(5), patience).await });
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(stream);
        let started = Instant::now();
        assert!(!waiting.await.unwrap());
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
