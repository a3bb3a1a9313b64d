//! A plugin's work queue: keys (objects) waiting to be reconciled, each with the time it is due and
//! why. Events for a key are coalesced (one pending entry, the earliest due time, the strongest
//! reason); a key being reconciled is never handed out again until it is done — events that arrive
//! meanwhile are kept and run once after it. Workers take due keys with [`WorkQueue::next`], so the
//! number of workers is the plugin's concurrency.
//!
//! Finding the next due key costs O(log n): due times live in a min-heap beside the pending map, and
//! rescheduling a key earlier pushes a new heap entry instead of searching for the old one, which is
//! skipped when it reaches the top (its sequence number no longer matches the key's).
//!
//! Waking costs one worker per key. Idle workers wait on `ready`, woken one at a time
//! (`notify_one`): by an `add` that makes a key due now, and by a worker that takes a key while
//! more are pending (a hand-off, so that keys due together go out to as many workers). At most one
//! idle worker — the timer holder — also sleeps until the earliest due time; a key scheduled earlier
//! than that wakes only the holder (`rearm`), never the others. Every waiter registers
//! (`Notified::enable`) before it looks at the state, so an event between the look and the wait is
//! never lost; `close` wakes them all.

use std::cmp::Ordering;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::hash::Hash;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::Notify;
use tokio::time::Instant;
use wasmop_contract::Reason;

/// Stale heap entries beyond this many, and beyond the live ones, trigger a rebuild of the heap, so
/// that keys rescheduled or forgotten over and over cannot grow it without bound.
const COMPACT_SLACK: usize = 64;

/// How strongly a reason asks for a reconcile: when events coalesce, the strongest reason is kept.
fn strength(r: Reason) -> u8 {
    match r {
        Reason::Resync => 0,
        Reason::Retry => 1,
        Reason::ChildChange | Reason::Trigger => 2,
        Reason::Change => 3,
        Reason::Deletion => 4,
    }
}

fn stronger(a: Reason, b: Reason) -> Reason {
    if strength(b) > strength(a) { b } else { a }
}

/// What is waiting for one key.
#[derive(Debug, Clone, Copy)]
struct Pending {
    due: Instant,
    reason: Reason,
    /// Matches the key's live heap entry; 0 for dirty entries, which are not in the heap.
    seq: u64,
}

/// A heap entry: `key` is due at `due`, if `seq` is still the key's current sequence number.
#[derive(Debug)]
struct Due<K> {
    due: Instant,
    seq: u64,
    key: K,
}

/// Reversed (the earliest due, then the first scheduled, is the greatest), so that the max-heap
/// `BinaryHeap` pops the earliest. Sequence numbers are unique, so the key never takes part.
impl<K> Ord for Due<K> {
    fn cmp(&self, other: &Self) -> Ordering {
        other.due.cmp(&self.due).then_with(|| other.seq.cmp(&self.seq))
    }
}

impl<K> PartialOrd for Due<K> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<K> PartialEq for Due<K> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<K> Eq for Due<K> {}

/// Whom a change to the schedule must wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wake {
    /// Nobody: the change is not earlier than what the workers already wait for.
    Nobody,
    /// One idle worker: a key is due now, or the timer has no holder.
    Ready,
    /// The timer holder: the earliest due time moved earlier.
    Rearm,
}

#[derive(Debug)]
struct State<K> {
    /// Keys waiting, not running, each with one live entry in `heap`.
    pending: HashMap<K, Pending>,
    /// Due times of `pending`, with stale entries left behind by rescheduling and `forget`.
    heap: BinaryHeap<Due<K>>,
    /// The last sequence number given out.
    seq: u64,
    running: HashSet<K>,
    /// Events for running keys, replayed when they are done.
    dirty: HashMap<K, Pending>,
    /// Whether an idle worker sleeps until the earliest due time (see the module docs).
    timer_held: bool,
    closed: bool,
}

impl<K: Hash + Eq + Clone> State<K> {
    /// The earliest due time of a pending key, dropping stale heap entries on the way.
    fn earliest(&mut self) -> Option<Instant> {
        while let Some(top) = self.heap.peek() {
            if self.pending.get(&top.key).is_some_and(|p| p.seq == top.seq) {
                return Some(top.due);
            }
            self.heap.pop();
        }
        None
    }

    /// Takes the earliest pending key if it is due, marking it running; with how long it waited
    /// since it was due.
    fn take_due(&mut self, now: Instant) -> Option<(K, Reason, Duration)> {
        if self.earliest()? > now {
            return None;
        }
        let top = self.heap.pop()?;
        let p = self.pending.remove(&top.key)?;
        self.running.insert(top.key.clone());
        Some((top.key, p.reason, now.saturating_duration_since(p.due)))
    }

    /// Adds an event for `key`, coalescing with what is pending or dirty for it.
    fn schedule(&mut self, key: K, due: Instant, reason: Reason, now: Instant) -> Wake {
        if self.running.contains(&key) {
            let merged = match self.dirty.get(&key) {
                Some(d) => Pending {
                    due: d.due.min(due),
                    reason: stronger(d.reason, reason),
                    seq: 0,
                },
                None => Pending { due, reason, seq: 0 },
            };
            self.dirty.insert(key, merged);
            return Wake::Nobody;
        }
        let earliest = self.earliest();
        let seq = self.seq + 1;
        match self.pending.entry(key.clone()) {
            Entry::Occupied(mut e) => {
                let p = e.get_mut();
                p.reason = stronger(p.reason, reason);
                if due >= p.due {
                    // Only the reason can change: the key keeps its place.
                    return Wake::Nobody;
                }
                p.due = due;
                p.seq = seq;
            }
            Entry::Vacant(e) => {
                e.insert(Pending { due, reason, seq });
            }
        }
        self.seq = seq;
        self.heap.push(Due { due, seq, key });
        self.compact();
        if due <= now {
            Wake::Ready
        } else if earliest.is_some_and(|e| e <= due) {
            // Someone is (or will be) woken for an earlier key; this one's turn comes after it.
            Wake::Nobody
        } else if self.timer_held {
            Wake::Rearm
        } else {
            Wake::Ready
        }
    }

    /// Rebuilds the heap from `pending` once stale entries outnumber live ones (amortised O(1)).
    fn compact(&mut self) {
        if self.heap.len() <= 2 * self.pending.len() + COMPACT_SLACK {
            return;
        }
        self.heap = self
            .pending
            .iter()
            .map(|(key, p)| Due {
                due: p.due,
                seq: p.seq,
                key: key.clone(),
            })
            .collect();
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    /// Idle workers, woken one per due key (and all at `close`).
    ready: Notify,
    /// The timer holder, woken when the earliest due time moves earlier.
    rearm: Notify,
    /// Counts adds, and observes how long keys waited once due (see [`crate::metrics`]).
    metrics: Option<(Counter, Histogram)>,
    /// Times a waiting worker woke up, to test that idle workers stay asleep.
    #[cfg(test)]
    wakeups: std::sync::atomic::AtomicUsize,
}

impl<K: Hash + Eq + Clone> Default for WorkQueue<K> {
    fn default() -> Self {
        WorkQueue {
            state: Mutex::new(State {
                pending: HashMap::new(),
                heap: BinaryHeap::new(),
                seq: 0,
                running: HashSet::new(),
                dirty: HashMap::new(),
                timer_held: false,
                closed: false,
            }),
            ready: Notify::new(),
            rearm: Notify::new(),
            metrics: None,
            #[cfg(test)]
            wakeups: std::sync::atomic::AtomicUsize::new(0),
        }
    }
}

impl<K: Hash + Eq + Clone> WorkQueue<K> {
    /// A queue that counts its adds in `adds` and observes the time keys waited once due in
    /// `waited`.
    pub fn with_metrics(adds: Counter, waited: Histogram) -> Self {
        WorkQueue {
            metrics: Some((adds, waited)),
            ..Self::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<K>> {
        self.state.lock().expect("queue lock")
    }

    fn wake(&self, wake: Wake) {
        match wake {
            Wake::Nobody => {}
            Wake::Ready => self.ready.notify_one(),
            Wake::Rearm => self.rearm.notify_one(),
        }
    }

    /// Schedules `key` after `delay`, coalescing with what is already pending for it: the earliest
    /// due time and the strongest reason win.
    pub fn add(&self, key: K, reason: Reason, delay: Duration) {
        if let Some((adds, _)) = &self.metrics {
            adds.inc();
        }
        let now = Instant::now();
        let mut s = self.lock();
        if s.closed {
            return;
        }
        let wake = s.schedule(key, now + delay, reason, now);
        drop(s);
        self.wake(wake);
    }

    /// Waits for the next due key that is not being reconciled, marks it running and returns it with
    /// its reason; None once the queue is closed.
    pub async fn next(&self) -> Option<(K, Reason)> {
        loop {
            // Registered before looking, so that a wake-up sent after the look reaches this worker
            // (or another waiter) instead of being lost.
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let holding = {
                let mut s = self.lock();
                if s.closed {
                    return None;
                }
                let now = Instant::now();
                if let Some((key, reason, waited)) = s.take_due(now) {
                    // Hand-off: the next key is due too, or the timer this worker held needs a holder.
                    if s.earliest().is_some_and(|due| due <= now || !s.timer_held) {
                        self.ready.notify_one();
                    }
                    if let Some((_, histogram)) = &self.metrics {
                        histogram.observe(waited.as_secs_f64());
                    }
                    return Some((key, reason));
                }
                match s.earliest() {
                    Some(due) if !s.timer_held => {
                        s.timer_held = true;
                        Some((
                            due,
                            TimerTurn {
                                queue: self,
                                done: false,
                            },
                        ))
                    }
                    _ => None,
                }
            };
            match holding {
                Some((due, mut turn)) => {
                    // Only the holder listens to `rearm` (a permit sent before this line is kept).
                    let rearm = self.rearm.notified();
                    tokio::select! {
                        _ = &mut ready => {}
                        _ = rearm => {}
                        _ = tokio::time::sleep_until(due) => {}
                    }
                    turn.done = true;
                }
                None => ready.await,
            }
            #[cfg(test)]
            self.wakeups.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// Marks `key` done; events that arrived while it ran make it pending again.
    pub fn done(&self, key: &K) {
        let now = Instant::now();
        let mut s = self.lock();
        s.running.remove(key);
        let Some(p) = s.dirty.remove(key) else {
            return;
        };
        let wake = s.schedule(key.clone(), p.due, p.reason, now);
        let closed = s.closed;
        drop(s);
        if !closed {
            self.wake(wake);
        }
    }

    /// Drops what is pending for `key` (the object is gone). A waiting timer may wake for nothing.
    pub fn forget(&self, key: &K) {
        let mut s = self.lock();
        s.pending.remove(key);
        s.dirty.remove(key);
    }

    /// Stops handing out keys; waiting workers return None.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_waiters();
        self.rearm.notify_waiters();
    }

    /// Keys waiting (not counting running ones).
    pub fn pending(&self) -> usize {
        let s = self.lock();
        s.pending.len() + s.dirty.len()
    }

    /// Keys being reconciled now.
    pub fn running(&self) -> usize {
        self.lock().running.len()
    }

    /// Whether `key` is pending, or running (with or without events waiting for it).
    pub fn contains(&self, key: &K) -> bool {
        let s = self.lock();
        s.pending.contains_key(key) || s.running.contains(key)
    }
}

/// A worker's turn as the timer holder. Released when the wait ends; if the waiting `next` is
/// dropped instead (a cancelled worker), another idle worker is woken to take the timer over.
struct TimerTurn<'a, K: Hash + Eq + Clone> {
    queue: &'a WorkQueue<K>,
    /// The holder ran to the end of its wait and looks at the queue again itself.
    done: bool,
}

impl<K: Hash + Eq + Clone> Drop for TimerTurn<'_, K> {
    fn drop(&mut self) {
        // Never panic here: this may run while unwinding.
        let mut s = self.queue.state.lock().unwrap_or_else(PoisonError::into_inner);
        s.timer_held = false;
        if !self.done && !s.closed && s.earliest().is_some() {
            drop(s);
            self.queue.ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn events_for_one_key_coalesce_into_one_reconcile() {
        let q = WorkQueue::default();
        q.add("a", Reason::Resync, Duration::ZERO);
        q.add("a", Reason::Change, Duration::ZERO);
        q.add("a", Reason::ChildChange, Duration::ZERO);
        assert_eq!(q.pending(), 1);
        assert_eq!(
            q.next().await,
            Some(("a", Reason::Change)),
            "the strongest reason wins"
        );
        q.done(&"a");
        assert_eq!(q.pending(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_key_is_not_handed_out_twice() {
        let q = Arc::new(WorkQueue::default());
        q.add("a", Reason::Change, Duration::ZERO);
        let (k, _) = q.next().await.unwrap();
        q.add("a", Reason::ChildChange, Duration::ZERO);
        q.add("b", Reason::Change, Duration::ZERO);
        // The second worker gets b, not a again.
        assert_eq!(q.next().await, Some(("b", Reason::Change)));
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!waiting.is_finished(), "a is still running");
        q.done(&k);
        assert_eq!(
            waiting.await.unwrap(),
            Some(("a", Reason::ChildChange)),
            "the event during the run is replayed once"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_keys_come_due_in_order() {
        let q = WorkQueue::default();
        let start = Instant::now();
        q.add("late", Reason::Retry, Duration::from_secs(5));
        q.add("soon", Reason::Retry, Duration::from_secs(2));
        assert_eq!(q.next().await.unwrap().0, "soon");
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert_eq!(q.next().await.unwrap().0, "late");
        assert_eq!(start.elapsed(), Duration::from_secs(5));
        // An immediate event pulls a delayed key forward.
        q.add("x", Reason::Retry, Duration::from_secs(60));
        q.add("x", Reason::Change, Duration::ZERO);
        assert_eq!(q.next().await, Some(("x", Reason::Change)));
        assert_eq!(start.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn workers_bound_the_concurrency() {
        let q = Arc::new(WorkQueue::default());
        for i in 0..20 {
            q.add(i, Reason::Change, Duration::ZERO);
        }
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..3 {
            let (q, running, peak, done) = (q.clone(), running.clone(), peak.clone(), done.clone());
            workers.push(tokio::spawn(async move {
                while let Some((k, _)) = q.next().await {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    running.fetch_sub(1, Ordering::SeqCst);
                    q.done(&k);
                    if done.fetch_add(1, Ordering::SeqCst) + 1 == 20 {
                        q.close();
                    }
                }
            }));
        }
        for w in workers {
            w.await.unwrap();
        }
        assert_eq!(done.load(Ordering::SeqCst), 20);
        assert_eq!(peak.load(Ordering::SeqCst), 3);
    }

    /// The keys workers took, with when.
    type Taken = Arc<Mutex<Vec<(&'static str, Instant)>>>;

    /// Spawns `n` workers that each take one key and report it.
    fn spawn_takers(q: &Arc<WorkQueue<&'static str>>, n: usize) -> (Vec<tokio::task::JoinHandle<()>>, Taken) {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let handles = (0..n)
            .map(|_| {
                let (q, taken) = (q.clone(), taken.clone());
                tokio::spawn(async move {
                    if let Some((k, _)) = q.next().await {
                        taken.lock().unwrap().push((k, Instant::now()));
                    }
                })
            })
            .collect();
        (handles, taken)
    }

    fn wakeups<K>(q: &WorkQueue<K>) -> usize {
        q.wakeups.load(Ordering::SeqCst)
    }

    #[tokio::test(start_paused = true)]
    async fn one_due_key_wakes_one_of_many_idle_workers() {
        let q = Arc::new(WorkQueue::default());
        let (workers, taken) = spawn_takers(&q, 16);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(wakeups(&q), 0);

        q.add("now", Reason::Change, Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(taken.lock().unwrap().len(), 1);
        assert_eq!(wakeups(&q), 1, "only the worker that took the key woke");

        // A delayed key: one worker wakes to hold the timer, and the same one takes it when due.
        let start = Instant::now();
        q.add("later", Reason::Retry, Duration::from_secs(5));
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(
            taken.lock().unwrap()[1],
            ("later", start + Duration::from_secs(5))
        );
        assert_eq!(wakeups(&q), 3, "one wake to take the timer, one when it fired");

        assert_eq!(workers.iter().filter(|w| w.is_finished()).count(), 2);
        q.close();
        for w in workers {
            w.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keys_due_together_go_to_as_many_workers() {
        let q = Arc::new(WorkQueue::default());
        let (workers, taken) = spawn_takers(&q, 8);
        tokio::time::sleep(Duration::from_millis(1)).await;
        let start = Instant::now();
        for k in ["a", "b", "c"] {
            q.add(k, Reason::Retry, Duration::from_secs(1));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let taken = taken.lock().unwrap().clone();
        assert_eq!(taken.len(), 3);
        assert!(taken.iter().all(|(_, at)| *at == start + Duration::from_secs(1)));
        // The holder wakes twice (to take the timer, when it fires), then one hand-off per other key.
        assert_eq!(wakeups(&q), 4);
        q.close();
        for w in workers {
            w.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ten_thousand_random_delays_come_out_in_due_order() {
        let q = WorkQueue::default();
        let start = Instant::now();
        // A fixed xorshift sequence: random-looking delays, many of them equal.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut delays = HashMap::new();
        for i in 0..10_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let delay = Duration::from_millis(x % 60_000);
            delays.insert(i, delay);
            q.add(i, Reason::Retry, delay);
        }
        assert_eq!(q.pending(), 10_000);
        let mut last = Duration::ZERO;
        for _ in 0..10_000 {
            let (k, _) = q.next().await.unwrap();
            let at = start.elapsed();
            assert_eq!(at, delays[&k], "key {k} came out at its due time");
            assert!(at >= last);
            last = at;
            q.done(&k);
        }
        assert_eq!(q.pending(), 0);
        assert!(q.state.lock().unwrap().heap.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_rescheduled_earlier_comes_out_then_and_only_once() {
        let q = Arc::new(WorkQueue::default());
        let start = Instant::now();
        // A worker already holds the timer for the later time when the key is pulled forward.
        let (workers, taken) = spawn_takers(&q, 2);
        q.add("x", Reason::Retry, Duration::from_secs(60));
        tokio::time::sleep(Duration::from_secs(1)).await;
        q.add("x", Reason::Change, Duration::from_secs(9));
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(*taken.lock().unwrap(), [("x", start + Duration::from_secs(10))]);
        assert_eq!(workers.iter().filter(|w| w.is_finished()).count(), 1);
        assert_eq!(q.pending(), 0);
        // The stale entry for 60s was skipped, not handed out: a second key is the next one out.
        q.done(&"x");
        q.add("y", Reason::Change, Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert_eq!(taken.lock().unwrap().len(), 2);
        assert_eq!(taken.lock().unwrap()[1].0, "y");
        for w in workers {
            w.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn close_wakes_every_waiter() {
        let q = Arc::new(WorkQueue::default());
        let (workers, taken) = spawn_takers(&q, 8);
        // One of them holds the timer for a key far away; the others wait for work.
        q.add("far", Reason::Retry, Duration::from_secs(3600));
        tokio::time::sleep(Duration::from_secs(1)).await;
        q.close();
        for w in workers {
            tokio::time::timeout(Duration::from_secs(1), w)
                .await
                .expect("woken by close")
                .unwrap();
        }
        assert!(taken.lock().unwrap().is_empty());
        assert_eq!(q.next().await, None);
        q.add("late", Reason::Change, Duration::ZERO);
        assert_eq!(q.pending(), 1, "adds after close are ignored");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_timer_holder_hands_the_timer_over() {
        let q = Arc::new(WorkQueue::default());
        let start = Instant::now();
        q.add("a", Reason::Retry, Duration::from_secs(5));
        let holder = tokio::spawn({
            let q = q.clone();
            async move { q.next().await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (workers, taken) = spawn_takers(&q, 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        holder.abort();
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(*taken.lock().unwrap(), [("a", start + Duration::from_secs(5))]);
        for w in workers {
            w.await.unwrap();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn contains_sees_pending_running_and_dirty_keys() {
        let q = WorkQueue::default();
        assert!(!q.contains(&"a"));
        q.add("a", Reason::Change, Duration::from_secs(1));
        assert!(q.contains(&"a"));
        let (k, _) = q.next().await.unwrap();
        assert!(q.contains(&"a"), "running");
        q.add("a", Reason::Retry, Duration::ZERO);
        assert!(q.contains(&"a"), "running and dirty");
        q.forget(&"a");
        q.done(&k);
        assert!(!q.contains(&"a"), "forgotten while running: nothing replayed");
        q.add("b", Reason::Change, Duration::from_secs(1));
        q.forget(&"b");
        assert!(!q.contains(&"b"));
        assert_eq!(q.pending(), 0);
    }

    /// Real threads and the real clock: producers racing workers must never leave a key behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_key_is_lost_under_contention() {
        const KEYS: u32 = 2_000;
        let q = Arc::new(WorkQueue::default());
        let handled = Arc::new(Mutex::new(HashSet::new()));
        let workers: Vec<_> = (0..6)
            .map(|_| {
                let (q, handled) = (q.clone(), handled.clone());
                tokio::spawn(async move {
                    while let Some((k, _)) = q.next().await {
                        handled.lock().unwrap().insert(k);
                        tokio::task::yield_now().await;
                        q.done(&k);
                    }
                })
            })
            .collect();
        let producers: Vec<_> = (0..4u32)
            .map(|p| {
                let q = q.clone();
                tokio::spawn(async move {
                    for k in (p..KEYS).step_by(4) {
                        // Some keys twice (coalesced or replayed), delays from none to a few ms.
                        q.add(k, Reason::Change, Duration::from_micros(u64::from(k % 7) * 500));
                        if k % 3 == 0 {
                            q.add(k, Reason::Retry, Duration::ZERO);
                        }
                        if k % 50 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                })
            })
            .collect();
        for p in producers {
            p.await.unwrap();
        }
        let all_done = async {
            while handled.lock().unwrap().len() < KEYS as usize || q.pending() + q.running() > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), all_done)
            .await
            .expect("every key reconciled");
        q.close();
        for w in workers {
            w.await.unwrap();
        }
    }

    #[test]
    fn stale_heap_entries_are_compacted() {
        let mut s = WorkQueue::<u32>::default().state.into_inner().unwrap();
        let base = Instant::now() + Duration::from_secs(3600);
        let now = Instant::now();
        for i in 0..10_000u64 {
            // One key pulled earlier and earlier: each call leaves a stale entry behind.
            s.schedule(7, base - Duration::from_millis(i), Reason::Retry, now);
        }
        assert_eq!(s.pending.len(), 1);
        assert!(s.heap.len() <= 2 + COMPACT_SLACK, "{}", s.heap.len());
        assert_eq!(s.earliest(), Some(base - Duration::from_millis(9_999)));
    }
}
