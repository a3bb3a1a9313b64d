//! Unit tests of the lease logic on tokio's paused clock, against an in-memory lease.

use std::collections::HashSet;
use std::sync::Mutex;

use super::*;

/// The lease "on the server": replaced only with the current resourceVersion.
#[derive(Default)]
struct Memory {
    lease: Mutex<Option<Lease>>,
    rv: Mutex<u64>,
    /// Identities whose requests fail (a partitioned host).
    broken: Mutex<HashSet<&'static str>>,
    /// A write by someone else that lands just before the next replace.
    interleave: Mutex<Option<LeaseSpec>>,
}

fn status(code: u16) -> kube::Error {
    kube::Error::Api(Box::new(kube::core::Status {
        code,
        message: format!("answered {code}"),
        ..Default::default()
    }))
}

impl Memory {
    fn store(&self, mut lease: Lease) -> Lease {
        let mut rv = self.rv.lock().unwrap();
        *rv += 1;
        lease.metadata.resource_version = Some(rv.to_string());
        *self.lease.lock().unwrap() = Some(lease.clone());
        lease
    }

    fn spec(&self) -> LeaseSpec {
        spec(self.lease.lock().unwrap().as_ref().expect("a lease"))
    }
}

/// One host's connection to the lease.
struct Handle {
    memory: Arc<Memory>,
    who: &'static str,
}

impl Handle {
    fn check(&self) -> Result<(), kube::Error> {
        if self.memory.broken.lock().unwrap().contains(self.who) {
            return Err(status(503));
        }
        Ok(())
    }
}

impl Leases for Handle {
    fn get(&self) -> BoxFuture<'_, Result<Option<Lease>, kube::Error>> {
        Box::pin(async move {
            self.check()?;
            Ok(self.memory.lease.lock().unwrap().clone())
        })
    }

    fn create<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<Lease, kube::Error>> {
        Box::pin(async move {
            self.check()?;
            if self.memory.lease.lock().unwrap().is_some() {
                return Err(status(409));
            }
            Ok(self.memory.store(lease.clone()))
        })
    }

    fn replace<'a>(&'a self, lease: &'a Lease) -> BoxFuture<'a, Result<Lease, kube::Error>> {
        Box::pin(async move {
            self.check()?;
            if let Some(other) = self.memory.interleave.lock().unwrap().take() {
                let mut current = self.memory.lease.lock().unwrap().clone().unwrap();
                current.spec = Some(other);
                self.memory.store(current);
            }
            let current = self.memory.lease.lock().unwrap().clone();
            let current_rv = current.and_then(|l| l.metadata.resource_version);
            if current_rv != lease.metadata.resource_version {
                return Err(status(409));
            }
            Ok(self.memory.store(lease.clone()))
        })
    }
}

fn config(identity: &str) -> LeaderConfig {
    LeaderConfig {
        name: "wasmop".into(),
        namespace: "default".into(),
        identity: identity.into(),
        lease_duration: Duration::from_secs(15),
        renew_deadline: Duration::from_secs(10),
        retry_period: Duration::from_secs(2),
    }
}

fn elector(memory: &Arc<Memory>, who: &'static str) -> Elector<Handle> {
    Elector::new(
        Handle {
            memory: memory.clone(),
            who,
        },
        config(who),
    )
}

async fn advance(d: Duration) {
    tokio::time::advance(d).await;
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

#[test]
fn settings_follow_client_go_constraints() {
    assert!(config("a").validate().is_ok());
    let mut c = config("a");
    c.renew_deadline = c.lease_duration;
    assert!(c.validate().is_err());
    let mut c = config("a");
    c.retry_period = Duration::from_secs(9);
    assert!(c.validate().is_err());
}

#[tokio::test(start_paused = true)]
async fn a_free_lease_is_taken_and_a_held_one_waits_for_its_duration() {
    let memory = Arc::new(Memory::default());
    let (mut a, mut b) = (elector(&memory, "a"), elector(&memory, "b"));
    assert!(a.try_acquire_or_renew().await.unwrap(), "created");
    let first = memory.spec();
    assert_eq!(first.holder_identity.as_deref(), Some("a"));
    assert_eq!(first.lease_duration_seconds, Some(15));
    assert_eq!(first.lease_transitions, Some(0));
    assert!(!b.try_acquire_or_renew().await.unwrap(), "held by a");
    advance(Duration::from_secs(14)).await;
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "still valid on b's clock"
    );
    advance(Duration::from_secs(1)).await;
    assert!(b.try_acquire_or_renew().await.unwrap(), "expired: b takes it");
    let taken = memory.spec();
    assert_eq!(taken.holder_identity.as_deref(), Some("b"));
    assert_eq!(taken.lease_transitions, Some(1));
    assert_ne!(taken.acquire_time, first.acquire_time);
    // a comes back: its optimistic renewal fails, and it sees b's fresh record.
    assert!(!a.try_acquire_or_renew().await.unwrap());
    assert!(!a.is_leader());
}

#[tokio::test(start_paused = true)]
async fn renewals_keep_acquire_time_and_transitions_and_keep_others_out() {
    let memory = Arc::new(Memory::default());
    let (mut a, mut b) = (elector(&memory, "a"), elector(&memory, "b"));
    assert!(a.try_acquire_or_renew().await.unwrap());
    let first = memory.spec();
    assert!(!b.try_acquire_or_renew().await.unwrap());
    for _ in 0..10 {
        advance(Duration::from_secs(10)).await;
        assert!(a.try_acquire_or_renew().await.unwrap(), "renewed");
        assert!(
            !b.try_acquire_or_renew().await.unwrap(),
            "each renewal restarts b's clock"
        );
    }
    let renewed = memory.spec();
    assert_eq!(renewed.acquire_time, first.acquire_time);
    assert_eq!(renewed.lease_transitions, Some(0));
    assert_ne!(renewed.renew_time, first.renew_time);
}

#[tokio::test(start_paused = true)]
async fn an_update_that_lost_a_race_does_not_take_the_lease() {
    let memory = Arc::new(Memory::default());
    let (mut a, mut b) = (elector(&memory, "a"), elector(&memory, "b"));
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert!(!b.try_acquire_or_renew().await.unwrap());
    advance(Duration::from_secs(16)).await;
    // c writes between b's read and b's update: b's resourceVersion is stale.
    let mut c = memory.spec();
    c.holder_identity = Some("c".into());
    *memory.interleave.lock().unwrap() = Some(c);
    assert!(!b.try_acquire_or_renew().await.unwrap(), "409: not taken");
    assert_eq!(memory.spec().holder_identity.as_deref(), Some("c"));
    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "c's record is fresh on b's clock"
    );
}

#[tokio::test(start_paused = true)]
async fn a_leader_that_cannot_renew_stops_writing_before_anyone_takes_over() {
    let memory = Arc::new(Memory::default());
    let (gate_a, gate_b) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
    let (_stop_a, stop_rx_a) = tokio::sync::watch::channel(false);
    let (_stop_b, stop_rx_b) = tokio::sync::watch::channel(false);
    tokio::spawn(elector(&memory, "a").run(gate_a.clone(), stop_rx_a));
    advance(Duration::from_millis(10)).await;
    assert!(gate_a.is_open(), "a leads");
    tokio::spawn(elector(&memory, "b").run(gate_b.clone(), stop_rx_b));
    advance(Duration::from_secs(30)).await;
    assert!(gate_a.is_open() && !gate_b.is_open(), "renewals keep b out");
    // a is cut off from the API server.
    memory.broken.lock().unwrap().insert("a");
    let cut = Instant::now();
    let (mut a_closed, mut b_opened) = (None, None);
    while b_opened.is_none() {
        advance(Duration::from_millis(100)).await;
        assert!(!(gate_a.is_open() && gate_b.is_open()), "never two leaders");
        if a_closed.is_none() && !gate_a.is_open() {
            a_closed = Some(Instant::now());
        }
        if gate_b.is_open() {
            b_opened = Some(Instant::now());
        }
        assert!(Instant::now() < cut + Duration::from_secs(60), "b took over");
    }
    let (a_closed, b_opened) = (a_closed.unwrap(), b_opened.unwrap());
    // a's last renewal was at most a retry period before the cut; b's clock for the lease starts
    // when it saw that renewal.
    assert!(a_closed <= cut + Duration::from_secs(10) + Duration::from_millis(100));
    assert!(b_opened >= cut - Duration::from_secs(2) + Duration::from_secs(15));
    assert!(
        b_opened >= a_closed + Duration::from_secs(2),
        "a stopped well before"
    );
    assert_eq!(memory.spec().lease_transitions, Some(1));
}

#[tokio::test(start_paused = true)]
async fn a_released_lease_is_taken_at_the_next_try() {
    let memory = Arc::new(Memory::default());
    let (gate_a, gate_b) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
    let (stop_a, stop_rx_a) = tokio::sync::watch::channel(false);
    let (_stop_b, stop_rx_b) = tokio::sync::watch::channel(false);
    let a = tokio::spawn(elector(&memory, "a").run(gate_a.clone(), stop_rx_a));
    advance(Duration::from_millis(10)).await;
    tokio::spawn(elector(&memory, "b").run(gate_b.clone(), stop_rx_b));
    advance(Duration::from_secs(20)).await;
    assert!(gate_a.is_open() && !gate_b.is_open());
    stop_a.send_replace(true);
    advance(Duration::from_millis(10)).await;
    assert!(a.is_finished(), "the elector ends on stop");
    assert!(!gate_a.is_open());
    let released = memory.spec();
    assert_eq!(released.holder_identity.as_deref(), Some(""));
    assert_eq!(released.lease_duration_seconds, Some(1));
    let stopped = Instant::now();
    while !gate_b.is_open() {
        advance(Duration::from_millis(100)).await;
    }
    assert!(
        Instant::now() <= stopped + Duration::from_millis(4500),
        "within one jittered retry period"
    );
    assert_eq!(memory.spec().holder_identity.as_deref(), Some("b"));
    assert_eq!(memory.spec().lease_transitions, Some(1));
}
