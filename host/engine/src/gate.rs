//! The leadership gate: whether this engine may reconcile and write. Without leader election it is
//! always open. With it ([`crate::leader`]) a standby keeps its caches warm and its plugins loaded,
//! but its workers take no keys and its writers refuse; the gate opens when the lease is won.
//!
//! Besides the flag, an open gate can carry a deadline (the last renewal plus the renew deadline):
//! past it, writes are refused even if the elector has not run yet — a leader that cannot renew
//! stops writing before its lease can expire, however late its elector task wakes.

use std::sync::Mutex;

use tokio::sync::watch;
use tokio::time::Instant;

/// See the module docs.
#[derive(Debug)]
pub struct Gate {
    open: watch::Sender<bool>,
    until: Mutex<Option<Instant>>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            open: watch::channel(true).0,
            until: Mutex::new(None),
        }
    }
}

impl Gate {
    /// Opens or closes the gate (clearing any deadline); returns whether that changed it.
    pub fn set(&self, open: bool) -> bool {
        *self.until.lock().expect("gate lock") = None;
        self.open.send_if_modified(|o| std::mem::replace(o, open) != open)
    }

    /// Opens the gate until `until` (a renewal).
    pub fn open_until(&self, until: Instant) -> bool {
        *self.until.lock().expect("gate lock") = Some(until);
        self.open.send_if_modified(|o| !std::mem::replace(o, true))
    }

    /// Whether reconciling and writing are allowed now.
    pub fn is_open(&self) -> bool {
        *self.open.borrow()
            && self
                .until
                .lock()
                .expect("gate lock")
                .is_none_or(|u| Instant::now() < u)
    }

    /// Waits until the gate is open (returns at once when it is).
    pub async fn opened(&self) {
        let mut rx = self.open.subscribe();
        let _ = rx.wait_for(|o| *o).await;
    }

    /// A receiver of the flag's changes.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.open.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn a_deadline_closes_the_gate_by_itself() {
        let g = Gate::default();
        assert!(g.is_open());
        assert!(g.set(false));
        assert!(!g.is_open());
        assert!(g.open_until(Instant::now() + Duration::from_secs(10)));
        assert!(g.is_open());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(g.is_open());
        tokio::time::advance(Duration::from_secs(1)).await;
        assert!(!g.is_open(), "past the deadline nothing is written");
        assert!(!g.set(true), "already open");
        assert!(g.is_open(), "no deadline any more");
    }
}
