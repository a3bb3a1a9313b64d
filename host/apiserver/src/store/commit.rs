//! Group commit: the writes that arrive while one commit is on its way to the disk go to the disk
//! together in the next one, in one transaction and one fsync, as etcd batches its proposals.
//!
//! Writers still decide one at a time under the writer lock (compare-and-swap on the latest state,
//! the next revision), but the lock is not held across the fsync: a writer that finds no commit
//! running becomes the committer of everything pending, releases the lock while its transaction
//! commits, and then publishes the batch to memory and wakes the others. Writers that came in the
//! meantime see the pending writes as the current objects (so a write building on an unacknowledged
//! one is consistent with it) and wait for a later batch. With one writer at a time it is exactly
//! one commit per write, as before; with many, a burst of N writes costs a few fsyncs, not N, and a
//! write waits behind at most the commit in flight instead of behind every write queued ahead of it.
//!
//! A batch is acknowledged only once its commit returned. If it fails, none of it is acknowledged,
//! and neither is anything pending behind it (those writes decided on top of it): every one of
//! them gets the error, and the next write reopens the database from what the file holds.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use redb::Database;
use serde_json::Value;

use super::{EVENTS, Event, EventType, KeyRepr, META, OBJECTS, StoreError};
use crate::error::ApiError;

/// What the writer lock guards.
pub(super) struct Writer {
    /// The database; `None` after a failed commit closed it, until the next write reopens it.
    pub(super) db: Option<Arc<Database>>,
    /// Writes given a revision and not yet durable, in revision order.
    pub(super) pending: Vec<Arc<Event>>,
    /// The newest pending state of each key they touch (`None`: deleted), with its revision.
    overlay: HashMap<KeyRepr, (u64, Option<Arc<Value>>)>,
    /// The last revision handed out: the committed revision, or the last pending write's.
    pub(super) assigned: u64,
    /// Every write up to this revision is durable and published.
    pub(super) durable: u64,
    /// Whether a committer is writing a batch (with the lock released).
    pub(super) committing: bool,
    /// Counts failed commits: a pending write of an older generation was dropped with `failure`.
    pub(super) generation: u64,
    pub(super) failure: Option<ApiError>,
}

impl Writer {
    pub(super) fn new(db: Database, revision: u64) -> Writer {
        Writer {
            db: Some(Arc::new(db)),
            pending: Vec::new(),
            overlay: HashMap::new(),
            assigned: revision,
            durable: revision,
            committing: false,
            generation: 0,
            failure: None,
        }
    }

    /// The pending state of `key` and its revision, if a pending write touched it (`None` inside
    /// when it deletes it).
    pub(super) fn pending_object(&self, key: &KeyRepr) -> Option<(u64, Option<Arc<Value>>)> {
        self.overlay.get(key).cloned()
    }

    /// Queues a decided write for the next commit.
    pub(super) fn push(&mut self, event: Arc<Event>) {
        let object = (event.type_ != EventType::Deleted).then(|| event.object.clone());
        self.overlay.insert(event.key.clone(), (event.revision, object));
        self.assigned = event.revision;
        self.pending.push(event);
    }

    /// After a batch up to `revision` committed: it is durable, and its keys' pending states are
    /// current (unless a newer pending write changed them again).
    pub(super) fn committed(&mut self, revision: u64) {
        self.durable = revision;
        self.overlay.retain(|_, (rev, _)| *rev > revision);
    }

    /// After a failed commit: drops every pending write (they decided on top of the failed batch),
    /// fails their writers with `error`, and goes back to the durable revision.
    pub(super) fn failed(&mut self, error: ApiError) {
        self.pending.clear();
        self.overlay.clear();
        self.assigned = self.durable;
        self.generation += 1;
        self.failure = Some(error);
        self.db = None;
    }

    /// After the database was reopened on what the file holds.
    pub(super) fn reopened(&mut self, db: Database, revision: u64) {
        self.db = Some(Arc::new(db));
        self.assigned = revision;
        self.durable = revision;
    }
}

/// Writes a batch of events (and the objects they leave) durably, dropping the `trim` oldest events
/// of the history: one two-phase commit, so that a crash can never leave the file with a damaged
/// last commit that would have to be rolled back.
pub(super) fn commit(
    db: &Database,
    path: &Path,
    batch: &[Arc<Event>],
    trim: usize,
) -> Result<(), StoreError> {
    let write = |source: redb::Error| StoreError::Write {
        path: path.display().to_string(),
        source: Box::new(source),
    };
    let mut txn = db.begin_write().map_err(|e| write(e.into()))?;
    txn.set_two_phase_commit(true);
    {
        let mut objects = txn.open_table(OBJECTS).map_err(|e| write(e.into()))?;
        let mut events = txn.open_table(EVENTS).map_err(|e| write(e.into()))?;
        for event in batch {
            let db_key = event.key.db_key();
            if event.type_ == EventType::Deleted {
                objects.remove(db_key.as_str()).map_err(|e| write(e.into()))?;
            } else {
                let bytes = serde_json::to_vec(&*event.object).expect("a JSON value serialises");
                objects
                    .insert(db_key.as_str(), bytes.as_slice())
                    .map_err(|e| write(e.into()))?;
            }
            let bytes = serde_json::to_vec(&**event).expect("an event serialises");
            events
                .insert(event.revision, bytes.as_slice())
                .map_err(|e| write(e.into()))?;
        }
        for _ in 0..trim {
            events.pop_first().map_err(|e| write(e.into()))?;
        }
        if let Some(last) = batch.last() {
            let mut meta = txn.open_table(META).map_err(|e| write(e.into()))?;
            meta.insert("revision", last.revision)
                .map_err(|e| write(e.into()))?;
        }
    }
    txn.commit().map_err(|e| write(e.into()))
}
