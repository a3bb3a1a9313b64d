//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's semantics
//! (`k8s.io/client-go/tools/leaderelection`), so that wasmop replicas and client-go controllers
//! read one another's leases the same way:
//!
//! * **acquire** when the lease does not exist (create it), has no holder, or has not changed for
//!   its `leaseDurationSeconds` as measured on *this* host's clock since this host last saw it
//!   change (no comparison of clocks across hosts); `acquireTime` is set and `leaseTransitions`
//!   incremented when the holder changes;
//! * **renew** every retry period (`renewTime`, keeping `acquireTime` and `leaseTransitions`); a
//!   leader first updates the object it last wrote, and reads the lease again only if that fails;
//! * every update is a replace carrying the `resourceVersion` last read: a concurrent writer makes
//!   it fail with 409 (optimistic concurrency), and nobody overwrites a lease it did not see;
//! * a leader that has not renewed for `renew_deadline` (shorter than the lease duration) gives up
//!   leadership; the [`Gate`] it opens carries that deadline, so writes stop by then even if this
//!   task is late, *before* another host can consider the lease expired;
//! * on shutdown the lease is **released** (client-go's `ReleaseOnCancel`): holder cleared,
//!   `leaseDurationSeconds` 1, so a standby takes over at its next retry.
//!
//! The API is reached through [`Leases`] ([`KubeLeases`] in production), so that all of it is
//! unit-tested on tokio's paused clock with an in-memory lease.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use tokio::time::Instant;
use wasmop_contract::BoxFuture;

use crate::gate::Gate;

/// Where the lease is and how it is held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderConfig {
    pub name: String,
    pub namespace: String,
    /// This host's identity, unique among the replicas (`holderIdentity`).
    pub identity: String,
    /// How long a lease is valid after it last changed (`leaseDurationSeconds`).
    pub lease_duration: Duration,
    /// How long a leader keeps leading without a successful renewal.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

/// Why a lease operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error("{action} the lease {lease}")]
    Api {
        action: &'static str,
        lease: String,
        #[source]
        source: kube::Error,
    },
    #[error("invalid leader election settings: {0}")]
    Config(String),
}

impl LeaderConfig {
    /// Checks client-go's constraints: lease duration > renew deadline > retry period (× 1.2).
    pub fn validate(&self) -> Result<(), LeaseError> {
        if self.lease_duration <= self.renew_deadline {
            return Err(LeaseError::Config(
                "the lease duration must be longer than the renew deadline".into(),
            ));
        }
        if self.renew_deadline.as_secs_f64() <= 1.2 * self.retry_period.as_secs_f64() {
            return Err(LeaseError::Config(
                "the renew deadline must be longer than 1.2 × the retry period".into(),
            ));
        }
        if self.lease_duration < Duration::from_secs(1) || self.retry_period.is_zero() {
            return Err(LeaseError::Config(
                "the lease duration must be at least 1 s and the retry period above 0".into(),
            ));
        }
        if self.identity.is_empty() {
            return Err(LeaseError::Config("the identity must not be empty".into()));
        }
        Ok(())
    }

    fn lease(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }
}

/// Reads and writes the one lease.
pub trait Leases: Send + Sync + 'static {
    /// The lease, `None` if it does not exist.
    fn get(&self) -> BoxFuture<'_, Result<Option<Lease>, kube::Error>>;
    fn create<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<Lease, kube::Error>>;
    /// Replaces the lease; fails with 409 unless `lease`'s resourceVersion is the current one.
    fn replace<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<Lease, kube::Error>>;
}

/// [`Leases`] through the kube client.
pub struct KubeLeases {
    api: Api<Lease>,
    name: String,
}

impl KubeLeases {
    pub fn new(client: kube::Client, config: &LeaderConfig) -> KubeLeases {
        KubeLeases {
            api: Api::namespaced(client, &config.namespace),
            name: config.name.clone(),
        }
    }
}

impl Leases for KubeLeases {
    fn get(&self) -> BoxFuture<'_, Result<Option<Lease>, kube::Error>> {
        Box::pin(self.api.get_opt(&self.name))
    }

    fn create<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<Lease, kube::Error>> {
        Box::pin(async move { self.api.create(&PostParams::default(), lease).await })
    }

    fn replace<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<Lease, kube::Error>> {
        Box::pin(async move { self.api.replace(&self.name, &PostParams::default(), lease).await })
    }
}

/// One host's view of the lease, and what it does about it (see the module docs).
pub struct Elector<L> {
    leases: L,
    config: LeaderConfig,
    /// The lease as last read or written (its spec and resourceVersion), and when, on this host's
    /// clock, its spec was last seen to change.
    observed: Option<Lease>,
    observed_at: Instant,
    /// The holder last logged, to log each holder once.
    logged_holder: Option<String>,
}

impl<L> std::fmt::Debug for Elector<L> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector").field("config", &self.config).finish()
    }
}

fn spec(lease: &Lease) -> LeaseSpec {
    lease.spec.clone().unwrap_or_default()
}

fn holder(spec: &LeaseSpec) -> &str {
    spec.holder_identity.as_deref().unwrap_or("")
}

impl<L: Leases> Elector<L> {
    pub fn new(leases: L, config: LeaderConfig) -> Elector<L> {
        Elector {
            leases,
            config,
            observed: None,
            observed_at: Instant::now(),
            logged_holder: None,
        }
    }

    pub fn config(&self) -> &LeaderConfig {
        &self.config
    }

    fn api_error(&self, action: &'static str) -> impl FnOnce(kube::Error) -> LeaseError {
        let lease = self.config.lease();
        move |source| LeaseError::Api {
            action,
            lease,
            source,
        }
    }

    /// Whether this host holds the lease as last observed.
    pub fn is_leader(&self) -> bool {
        self.observed
            .as_ref()
            .is_some_and(|l| holder(&spec(l)) == self.config.identity)
    }

    /// Whether the observed lease is still valid at `now` (its duration since it last changed).
    fn valid(&self, now: Instant) -> bool {
        let secs = self
            .observed
            .as_ref()
            .and_then(|l| spec(l).lease_duration_seconds)
            .unwrap_or(0);
        self.observed_at + Duration::from_secs(u64::try_from(secs).unwrap_or(0)) > now
    }

    fn set_observed(&mut self, lease: Lease, now: Instant) {
        self.observed = Some(lease);
        self.observed_at = now;
    }

    /// The record this host writes to hold the lease now.
    fn record(&self) -> LeaseSpec {
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(
                self.config
                    .lease_duration
                    .as_secs()
                    .try_into()
                    .unwrap_or(i32::MAX),
            ),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: Some(0),
            ..LeaseSpec::default()
        }
    }

    /// One round of client-go's `tryAcquireOrRenew`: `Ok(true)` when this host holds the lease
    /// now, `Ok(false)` when another valid holder has it or an update lost a race.
    pub async fn try_acquire_or_renew(&mut self) -> Result<bool, LeaseError> {
        let now = Instant::now();
        let mut record = self.record();
        // The fast path: a valid leader updates the object it last wrote.
        if self.is_leader() && self.valid(now) {
            let mut lease = self.observed.clone().expect("a leader observed the lease");
            let old = spec(&lease);
            lease.spec = Some(LeaseSpec {
                acquire_time: old.acquire_time,
                lease_transitions: old.lease_transitions,
                ..record.clone()
            });
            match self.leases.replace(&lease).await {
                Ok(written) => {
                    self.set_observed(written, now);
                    return Ok(true);
                }
                Err(e) => {
                    tracing::debug!(lease = %self.config.lease(), error = %e, "renewing the lease optimistically failed; reading it");
                }
            }
        }
        let Some(mut lease) = self.leases.get().await.map_err(self.api_error("reading"))? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(record),
            };
            return match self.leases.create(&lease).await {
                Ok(created) => {
                    self.set_observed(created, now);
                    Ok(true)
                }
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(self.api_error("creating")(e)),
            };
        };
        let old = spec(&lease);
        if self.observed.as_ref().map(spec) != Some(old.clone()) {
            self.set_observed(lease.clone(), now);
        } else {
            // Same record: keep when it was first seen, take the newer resourceVersion.
            self.observed = Some(lease.clone());
        }
        let held_by = holder(&old).to_string();
        if !held_by.is_empty() && held_by != self.config.identity && self.valid(now) {
            if self.logged_holder.as_deref() != Some(held_by.as_str()) {
                tracing::info!(lease = %self.config.lease(), holder = %held_by, "the lease is held by another host; standing by");
                self.logged_holder = Some(held_by);
            }
            return Ok(false);
        }
        if self.is_leader() {
            record.acquire_time = old.acquire_time;
            record.lease_transitions = old.lease_transitions;
        } else {
            record.lease_transitions = Some(old.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(record);
        match self.leases.replace(&lease).await {
            Ok(written) => {
                self.set_observed(written, now);
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(self.api_error("updating")(e)),
        }
    }

    /// Gives the lease up if this host holds it (client-go's `release`): no holder, a duration of
    /// one second, so the next try of a standby takes it.
    pub async fn release(&mut self) -> Result<(), LeaseError> {
        if !self.is_leader() {
            return Ok(());
        }
        let mut lease = self.observed.clone().expect("a leader observed the lease");
        let now = MicroTime(k8s_openapi::jiff::Timestamp::now());
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(String::new()),
            lease_duration_seconds: Some(1),
            acquire_time: Some(now.clone()),
            renew_time: Some(now),
            lease_transitions: spec(&lease).lease_transitions,
            ..LeaseSpec::default()
        });
        let written = self
            .leases
            .replace(&lease)
            .await
            .map_err(self.api_error("releasing"))?;
        self.set_observed(written, Instant::now());
        Ok(())
    }

    /// The retry period with client-go's jitter (up to 1.2 × more).
    fn jittered(&self) -> Duration {
        self.config
            .retry_period
            .mul_f64(1.0 + 1.2 * rand::random::<f64>())
    }

    /// Tries until this host holds the lease; `false` if `stop` fired first.
    async fn acquire(&mut self, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
        loop {
            let attempt = tokio::time::timeout(self.config.renew_deadline, self.try_acquire_or_renew());
            match attempt.await {
                Ok(Ok(true)) => return true,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "leader election: acquiring failed"),
                Err(_) => {
                    tracing::warn!(lease = %self.config.lease(), "leader election: acquiring timed out")
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(self.jittered()) => {}
                _ = stop.wait_for(|s| *s) => return false,
            }
        }
    }

    /// Renews every retry period until a renewal has not succeeded for the renew deadline
    /// (returns `true`: leadership lost) or `stop` fires (`false`). Keeps `gate` open until the
    /// last successful renewal plus the renew deadline.
    async fn renew(&mut self, gate: &Gate, stop: &mut tokio::sync::watch::Receiver<bool>) -> bool {
        let mut deadline = self.observed_at + self.config.renew_deadline;
        gate.open_until(deadline);
        loop {
            let wake = (Instant::now() + self.config.retry_period).min(deadline);
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                _ = stop.wait_for(|s| *s) => return false,
            }
            if Instant::now() >= deadline {
                return true;
            }
            let started = Instant::now();
            match tokio::time::timeout_at(deadline, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => {
                    deadline = started + self.config.renew_deadline;
                    gate.open_until(deadline);
                }
                Ok(Ok(false)) => {
                    if !self.is_leader() {
                        // Someone else holds it: nothing left to renew.
                        return true;
                    }
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "leader election: renewing failed"),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                return true;
            }
        }
    }

    /// Runs the election until `stop` fires: opens `gate` while this host leads and closes it when
    /// leadership is lost (then tries to acquire again); on stop, closes the gate and releases the
    /// lease.
    pub async fn run(mut self, gate: Arc<Gate>, mut stop: tokio::sync::watch::Receiver<bool>) {
        gate.set(false);
        loop {
            if !self.acquire(&mut stop).await {
                break;
            }
            tracing::info!(lease = %self.config.lease(), identity = %self.config.identity, "became the leader");
            self.logged_holder = None;
            let lost = self.renew(&gate, &mut stop).await;
            gate.set(false);
            if !lost {
                break;
            }
            tracing::warn!(lease = %self.config.lease(), "lost the lease: not renewed within the renew deadline; standing by");
        }
        gate.set(false);
        let leader = self.is_leader();
        match tokio::time::timeout(self.config.renew_deadline, self.release()).await {
            Ok(Ok(())) => {
                if leader {
                    tracing::info!(lease = %self.config.lease(), "lease released");
                }
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the lease failed"),
            Err(_) => tracing::warn!(lease = %self.config.lease(), "releasing the lease timed out"),
        }
    }
}

#[cfg(test)]
#[path = "leader_tests.rs"]
mod tests;
