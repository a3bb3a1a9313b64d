//! What a failed reconcile means for its key. Transient failures (a guest trap or timeout, a 500, a
//! lost connection) are retried with per-key exponential backoff; a 429 waits for the API server's
//! Retry-After (the writer has already paused every plugin's writes of its resource); a conflict
//! retries soon with the fresh cached object; a permanent failure (the plugin says so, or the API
//! server answered 400, 403, 404 or 422, or the plugin asked for undeclared writes) is reported once
//! as a Warning event on the object and parked: not retried until the object or the plugin changes.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::object::CachedObject;
use kube::ResourceExt;
use wasmop_contract::{EventType, ObjectKey, Reason, ReconcileFailure};

use super::{Controller, Forbidden};
use crate::metrics;
use crate::writer::{ErrorClass, WriteError};

/// How soon a write that lost an optimistic-concurrency race is tried again (the watch delivers
/// the newer object meanwhile).
const CONFLICT_RETRY: Duration = Duration::from_millis(50);

/// The longest a key waits after a write the API server never answered (unreachable, or no
/// answer in time): its backoff would otherwise have grown to a minute or more while the server
/// was away, and a change the host saw before the outage would wait that long after the server's
/// return. Capped like a kind's watch retry (`cache.rs`, 10 s), every key that failed meanwhile
/// is tried again within about 10 s of the return.
const NO_ANSWER_CAP: Duration = Duration::from_secs(10);

/// Whether a failed write got no answer from the API server at all.
fn no_answer(error: &WriteError) -> bool {
    matches!(
        error,
        WriteError::Api {
            source: kube::Error::HyperError(_) | kube::Error::Service(_),
            ..
        }
    )
}

/// `delay` kept within `cap`: past it, between half the cap and the cap (jittered, so the keys
/// that failed together do not all retry in the same instant).
fn capped(delay: Duration, cap: Duration) -> Duration {
    if delay <= cap {
        return delay;
    }
    let half = cap / 2;
    half + rand::Rng::random_range(&mut rand::rng(), Duration::ZERO..=half)
}

impl Controller {
    /// Whether `key` is parked at the object's current version (skip it); a changed object
    /// un-parks it.
    pub(super) fn is_parked(&self, key: &ObjectKey, object: &CachedObject) -> bool {
        let mut parked = self.parked.lock().expect("parked lock");
        match parked.get(key) {
            Some(rv) if *rv == object.resource_version() => true,
            Some(_) => {
                parked.remove(key);
                false
            }
            None => false,
        }
    }

    pub(super) fn forget(&self, key: &ObjectKey) {
        self.backoff.lock().expect("backoff lock").reset(key);
        self.parked.lock().expect("parked lock").remove(key);
        self.memo.forget(key);
        self.unseen.forget(key);
    }

    /// A write of the plugin went through: whatever was forbidden before is no longer the news.
    pub(super) fn wrote(&self) {
        self.stats.writes.fetch_add(1, Ordering::Relaxed);
        let mut forbidden = self.forbidden.lock().expect("forbidden lock");
        if let Some(f) = forbidden.take() {
            tracing::info!(plugin = %self.meta.name, previously = %f, "the plugin's writes go through again");
        }
    }

    pub(super) fn succeeded(&self, key: &ObjectKey, requeue_after: Option<u32>) {
        self.backoff.lock().expect("backoff lock").reset(key);
        if let Some(secs) = requeue_after {
            self.queue
                .add(key.clone(), Reason::Retry, Duration::from_secs(u64::from(secs)));
        }
    }

    pub(super) async fn reconcile_failed(
        &self,
        key: &ObjectKey,
        object: &CachedObject,
        failure: ReconcileFailure,
    ) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        if failure.retryable() {
            self.back_off(key, &failure.to_string(), None);
        } else {
            self.park(key, object, "ReconcileFailed", &failure.to_string())
                .await;
        }
    }

    pub(super) async fn write_failed(&self, key: &ObjectKey, object: &CachedObject, error: WriteError) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        if let WriteError::Api {
            what,
            source: kube::Error::Api(status),
        } = &error
            && status.code == 403
        {
            self.stats.forbidden.fetch_add(1, Ordering::Relaxed);
            *self.forbidden.lock().expect("forbidden lock") = Some(Forbidden {
                object: key.to_string(),
                write: what.clone(),
                message: status.message.clone(),
            });
        }
        match error.class() {
            ErrorClass::RetryAfter(delay) => {
                tracing::info!(plugin = %self.meta.name, object = %key, retry_in = ?delay, "the API server asked to slow down");
                self.retry(key, delay, "retry_after");
            }
            ErrorClass::Conflict => {
                tracing::debug!(plugin = %self.meta.name, object = %key, error = %error, "write conflict; retrying with the fresh object");
                self.retry(key, CONFLICT_RETRY, "conflict");
            }
            ErrorClass::Transient => {
                let cap = no_answer(&error).then_some(NO_ANSWER_CAP);
                self.back_off(key, &error.to_string(), cap)
            }
            ErrorClass::Permanent(message) => {
                let reason = match error {
                    WriteError::Refused(_) => {
                        self.stats.refused.fetch_add(1, Ordering::Relaxed);
                        self.config
                            .metrics
                            .refused
                            .get_or_create(&metrics::plugin(&self.meta.name))
                            .inc();
                        "WriteRefused"
                    }
                    _ => "WriteFailed",
                };
                let message = format!("wasmop plugin {}: {message}", self.meta.name);
                self.park(key, object, reason, &message).await;
            }
        }
    }

    /// Schedules `key` after its next backoff delay, kept within `cap` if given.
    fn back_off(&self, key: &ObjectKey, error: &str, cap: Option<Duration>) {
        let delay = self.backoff.lock().expect("backoff lock").failure(key);
        let delay = cap.map_or(delay, |cap| capped(delay, cap));
        tracing::warn!(plugin = %self.meta.name, object = %key, %error, retry_in = ?delay, "reconcile failed; retrying");
        self.retry(key, delay, "backoff");
    }

    /// Schedules `key` again after `delay`; `why` labels the delay in the metrics.
    fn retry(&self, key: &ObjectKey, delay: Duration, why: &'static str) {
        self.config
            .metrics
            .retries
            .get_or_create(&metrics::plugin(&self.meta.name))
            .inc();
        self.config
            .metrics
            .retry_delay
            .get_or_create(&[("plugin", self.meta.name.clone()), ("reason", why.to_string())])
            .observe(delay.as_secs_f64());
        self.queue.add(key.clone(), Reason::Retry, delay);
    }

    async fn park(&self, key: &ObjectKey, object: &CachedObject, reason: &str, message: &str) {
        tracing::warn!(plugin = %self.meta.name, object = %key, error = %message,
            "reconcile failed permanently; not retried until the object or the plugin changes");
        self.backoff.lock().expect("backoff lock").reset(key);
        self.parked
            .lock()
            .expect("parked lock")
            .insert(key.clone(), object.resource_version());
        self.publish(object, EventType::Warning, reason, message).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_nobody_answered_retries_within_the_cap_and_others_keep_their_backoff() {
        let refused = WriteError::Api {
            what: "apply of ConfigMap a/b".into(),
            source: kube::Error::Service(Box::new(std::io::Error::new(
                std::io::ErrorKind::ConnectionRefused,
                "connection refused",
            ))),
        };
        assert!(no_answer(&refused));
        assert_eq!(refused.class(), ErrorClass::Transient);
        let answered = WriteError::Api {
            what: "apply of ConfigMap a/b".into(),
            source: kube::Error::Api(Box::new(
                kube::core::Status::failure("boom", "InternalError").with_code(500),
            )),
        };
        assert!(!no_answer(&answered));
        // A minute of backoff becomes 5-10 s; a shorter delay is kept as it is.
        for _ in 0..100 {
            let d = capped(Duration::from_secs(60), NO_ANSWER_CAP);
            assert!(d >= NO_ANSWER_CAP / 2 && d <= NO_ANSWER_CAP, "{d:?}");
        }
        assert_eq!(
            capped(Duration::from_secs(3), NO_ANSWER_CAP),
            Duration::from_secs(3)
        );
    }
}
