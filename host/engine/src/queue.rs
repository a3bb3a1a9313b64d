//! A plugin's work queue: keys (objects) waiting to be reconciled, each with the time it is due and
//! why. Events for a key are coalesced (one pending entry, the earliest due time, the strongest
//! reason); a key being reconciled is never handed out again until it is done — events that arrive
//! meanwhile are kept and run once after it. Workers take due keys with [`WorkQueue::next`], so the
//! number of workers is the plugin's concurrency.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use wasmop_contract::Reason;

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

#[derive(Debug, Clone, Copy)]
struct Pending {
    due: Instant,
    reason: Reason,
}

impl Pending {
    fn merge(self, other: Pending) -> Pending {
        Pending {
            due: self.due.min(other.due),
            reason: if strength(other.reason) > strength(self.reason) {
                other.reason
            } else {
                self.reason
            },
        }
    }
}

#[derive(Debug)]
struct State<K> {
    pending: HashMap<K, Pending>,
    running: HashSet<K>,
    /// Events for running keys, replayed when they are done.
    dirty: HashMap<K, Pending>,
    closed: bool,
}

/// See the module docs.
#[derive(Debug)]
pub struct WorkQueue<K> {
    state: Mutex<State<K>>,
    notify: Notify,
}

impl<K: Hash + Eq + Clone> Default for WorkQueue<K> {
    fn default() -> Self {
        WorkQueue {
            state: Mutex::new(State {
                pending: HashMap::new(),
                running: HashSet::new(),
                dirty: HashMap::new(),
                closed: false,
            }),
            notify: Notify::new(),
        }
    }
}

impl<K: Hash + Eq + Clone> WorkQueue<K> {
    /// Schedules `key` after `delay`, coalescing with what is already pending for it.
    pub fn add(&self, key: K, reason: Reason, delay: Duration) {
        let entry = Pending {
            due: Instant::now() + delay,
            reason,
        };
        let mut s = self.state.lock().expect("queue lock");
        if s.closed {
            return;
        }
        let target = if s.running.contains(&key) {
            &mut s.dirty
        } else {
            &mut s.pending
        };
        let merged = match target.get(&key) {
            Some(existing) => existing.merge(entry),
            None => entry,
        };
        target.insert(key, merged);
        drop(s);
        self.notify.notify_waiters();
    }

    /// Waits for the next due key that is not being reconciled, marks it running and returns it with
    /// its reason; None once the queue is closed.
    pub async fn next(&self) -> Option<(K, Reason)> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let wake = {
                let mut s = self.state.lock().expect("queue lock");
                if s.closed {
                    return None;
                }
                let now = Instant::now();
                let earliest = s
                    .pending
                    .iter()
                    .min_by_key(|(_, p)| p.due)
                    .map(|(k, p)| (k.clone(), *p));
                match earliest {
                    Some((key, p)) if p.due <= now => {
                        s.pending.remove(&key);
                        s.running.insert(key.clone());
                        return Some((key, p.reason));
                    }
                    Some((_, p)) => Some(p.due),
                    None => None,
                }
            };
            match wake {
                Some(due) => {
                    tokio::select! {
                        _ = &mut notified => {}
                        _ = tokio::time::sleep_until(due) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Marks `key` done; events that arrived while it ran make it pending again.
    pub fn done(&self, key: &K) {
        let mut s = self.state.lock().expect("queue lock");
        s.running.remove(key);
        if let Some(p) = s.dirty.remove(key) {
            let merged = match s.pending.get(key) {
                Some(existing) => existing.merge(p),
                None => p,
            };
            s.pending.insert(key.clone(), merged);
        }
        drop(s);
        self.notify.notify_waiters();
    }

    /// Drops what is pending for `key` (the object is gone).
    pub fn forget(&self, key: &K) {
        let mut s = self.state.lock().expect("queue lock");
        s.pending.remove(key);
        s.dirty.remove(key);
    }

    /// Stops handing out keys; waiting workers return None.
    pub fn close(&self) {
        self.state.lock().expect("queue lock").closed = true;
        self.notify.notify_waiters();
    }

    /// Keys waiting (not counting running ones).
    pub fn pending(&self) -> usize {
        let s = self.state.lock().expect("queue lock");
        s.pending.len() + s.dirty.len()
    }

    /// Keys being reconciled now.
    pub fn running(&self) -> usize {
        self.state.lock().expect("queue lock").running.len()
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
}
