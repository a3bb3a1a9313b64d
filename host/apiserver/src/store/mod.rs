//! The durable object store: every object of every resource, the cluster-wide revision counter and the
//! recent event history, in one embedded redb database, mirrored in memory for reads and watches.
//!
//! All writes go through [`Store::mutate`], which serialises writers' decisions, gives each write
//! the next revision (the `resourceVersion`), commits it to disk (fsync) *before* the caller
//! acknowledges it, then publishes it to the in-memory history that watches read. A
//! compare-and-swap inside the one writer lock means concurrent writers never lose an update;
//! writes that arrive while a commit is on its way share the next commit ([`commit`]: group
//! commit). After a restart the objects, the revision and the retained history are loaded back, so
//! watches resume from a resourceVersion.
//!
//! Failure rules (docs/reliability.md, "Embedded API server data"): every commit is a two-phase
//! commit, so a crash at any point leaves the last acknowledged write intact, and the file is checked
//! (every page checksum) when it is opened, so a damaged file is refused with its path rather than
//! silently rolled back to an older commit. A commit that fails (a full disk) is not acknowledged
//! and leaves memory untouched; the database is then closed and reopened by the next write, which
//! succeeds once space returns. Reads are served from memory throughout.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

mod commit;
use commit::Writer;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// The database file inside the data directory.
pub const FILE_NAME: &str = "store.redb";

/// Errors opening or writing the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening the store {path}: {source}")]
    Open {
        path: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The file failed its integrity check (truncated, overwritten, a checksum mismatch).
    #[error(
        "the store {path} is damaged and was not opened ({source}); nothing was changed in it. Restore it from a backup or move it aside to start empty (docs/reliability.md, \"Embedded API server data\")"
    )]
    Damaged { path: String, source: Box<redb::Error> },
    #[error("writing the store {path}: {source}")]
    Write { path: String, source: Box<redb::Error> },
    #[error("reading the store {path}: {source}")]
    Read { path: String, source: Box<redb::Error> },
    #[error(
        "corrupt store entry {key} in {path}: {source}; the server will not start on it (docs/reliability.md, \"Embedded API server data\")"
    )]
    Corrupt {
        path: String,
        key: String,
        source: serde_json::Error,
    },
    /// The file on disk is older than what this process acknowledged (something replaced it).
    #[error("the store {path} went back from revision {memory} to {disk} while the server ran")]
    WentBack { path: String, memory: u64, disk: u64 },
}

impl StoreError {
    /// Whether the disk (or the filesystem's quota) is full.
    pub fn is_storage_full(&self) -> bool {
        let source = match self {
            StoreError::Write { source, .. } | StoreError::Read { source, .. } => source,
            _ => return false,
        };
        let full = |io: &std::io::Error| {
            matches!(
                io.kind(),
                std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
            )
        };
        if let redb::Error::Io(io) = &**source {
            return full(io);
        }
        let mut err: Option<&(dyn std::error::Error + 'static)> = Some(&**source);
        while let Some(e) = err {
            if let Some(io) = e.downcast_ref::<std::io::Error>()
                && full(io)
            {
                return true;
            }
            err = e.source();
        }
        false
    }
}

impl From<StoreError> for ApiError {
    /// A failed commit answers as kube-apiserver answers an etcd error it has no reason for (an
    /// etcd over its space quota, say): 500 with the message and no `reason`.
    fn from(e: StoreError) -> Self {
        if e.is_storage_full() {
            return ApiError::new(
                500,
                "",
                "storage is full: the write was not stored (no space left on the data directory's filesystem)",
            );
        }
        match e {
            StoreError::Write { source, .. } => ApiError::new(
                500,
                "",
                format!("storage error: the write was not stored: {source}"),
            ),
            other => ApiError::new(500, "", format!("storage error: {other}")),
        }
    }
}

/// Where one object lives: `resource` is `group/plural` (shared by all versions), `namespace` is empty
/// for cluster-scoped objects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl Key {
    /// The inverse of [`KeyRepr::db_key`].
    fn parse(s: &str) -> Option<Key> {
        let mut it = s.splitn(4, '/');
        let group = it.next()?;
        let plural = it.next()?;
        Some(Key {
            resource: format!("{group}/{plural}"),
            namespace: it.next()?.into(),
            name: it.next()?.into(),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "ADDED")]
    Added,
    #[serde(rename = "MODIFIED")]
    Modified,
    #[serde(rename = "DELETED")]
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One committed change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub revision: u64,
    pub key: KeyRepr,
    #[serde(rename = "type")]
    pub type_: EventType,
    pub object: Arc<Value>,
    /// The object before the change, so selector watches can tell an object leaving their selection.
    pub previous: Option<Arc<Value>>,
}

/// [`Key`] in its serialised form inside [`Event`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyRepr {
    pub resource: String,
    pub namespace: String,
    pub name: String,
}

impl KeyRepr {
    /// The key of the object's row in the database: `group/plural/namespace/name`.
    fn db_key(&self) -> String {
        format!("{}/{}/{}", self.resource, self.namespace, self.name)
    }
}

impl From<&Key> for KeyRepr {
    fn from(k: &Key) -> Self {
        KeyRepr {
            resource: k.resource.clone(),
            namespace: k.namespace.clone(),
            name: k.name.clone(),
        }
    }
}

/// What a write decided to do with the current object.
#[derive(Debug)]
pub enum Mutation {
    /// Store this object; the store sets `metadata.resourceVersion`.
    Put(Value),
    /// Remove the object; the DELETED event carries this last state with the deletion's revision.
    Delete(Value),
    /// Nothing changes (a no-op write: no revision, no event).
    Unchanged,
}

/// What a write did.
#[derive(Debug, Clone)]
pub enum Outcome {
    Created(Arc<Value>),
    Updated(Arc<Value>),
    Deleted(Arc<Value>),
    Unchanged(Option<Arc<Value>>),
}

#[derive(Default)]
struct State {
    revision: u64,
    objects: HashMap<String, BTreeMap<(String, String), Arc<Value>>>,
    history: VecDeque<Arc<Event>>,
    /// Every event after this revision is in `history`; a watch from an older revision gets 410.
    compacted: u64,
}

/// The store (see the module docs).
pub struct Store {
    path: PathBuf,
    state: RwLock<State>,
    /// The writer lock: the database and the writes waiting for the next commit.
    writer: Mutex<Writer>,
    /// Signalled when a commit ends (acknowledged or failed).
    committed: Condvar,
    revision_tx: tokio::sync::watch::Sender<u64>,
    history_limit: usize,
    writes: AtomicU64,
    commits: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .field("revision", &self.revision())
            .finish()
    }
}

/// Opens the database file, verifying every page (a damaged file is refused, never repaired by
/// falling back to an older commit), and makes sure every table exists.
fn open_db(path: &Path) -> Result<Database, StoreError> {
    let shown = path.display().to_string();
    let db = redb::Builder::new()
        .set_check_integrity_on_open(true)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::Storage(redb::StorageError::Io(io)) => StoreError::Open {
                path: shown.clone(),
                source: Box::new(io),
            },
            redb::DatabaseError::Storage(_) | redb::DatabaseError::UpgradeRequired(_) => {
                StoreError::Damaged {
                    path: shown.clone(),
                    source: Box::new(e.into()),
                }
            }
            other => StoreError::Open {
                path: shown.clone(),
                source: Box::new(other),
            },
        })?;
    let write = |source: redb::Error| StoreError::Write {
        path: shown.clone(),
        source: Box::new(source),
    };
    // Make sure every table exists so read transactions can open them.
    let txn = db.begin_write().map_err(|e| write(e.into()))?;
    txn.open_table(OBJECTS).map_err(|e| write(e.into()))?;
    txn.open_table(META).map_err(|e| write(e.into()))?;
    txn.open_table(EVENTS).map_err(|e| write(e.into()))?;
    txn.commit().map_err(|e| write(e.into()))?;
    Ok(db)
}

/// Everything the file holds: the objects, the revision and the retained history.
fn load(db: &Database, path: &Path) -> Result<State, StoreError> {
    let shown = || path.display().to_string();
    let read = |source: redb::Error| StoreError::Read {
        path: shown(),
        source: Box::new(source),
    };
    let corrupt = |key: String, source| StoreError::Corrupt {
        path: shown(),
        key,
        source,
    };
    let mut state = State::default();
    let txn = db.begin_read().map_err(|e| read(e.into()))?;
    let meta = txn.open_table(META).map_err(|e| read(e.into()))?;
    state.revision = meta
        .get("revision")
        .map_err(|e| read(e.into()))?
        .map(|v| v.value())
        .unwrap_or(1);
    let objects = txn.open_table(OBJECTS).map_err(|e| read(e.into()))?;
    for entry in objects.iter().map_err(|e| read(e.into()))? {
        let (k, v) = entry.map_err(|e| read(e.into()))?;
        let key_str = k.value().to_string();
        let value: Value = from_stored(v.value()).map_err(|e| corrupt(key_str.clone(), e))?;
        if let Some(key) = Key::parse(&key_str) {
            state
                .objects
                .entry(key.resource)
                .or_default()
                .insert((key.namespace, key.name), Arc::new(value));
        }
    }
    let events = txn.open_table(EVENTS).map_err(|e| read(e.into()))?;
    for entry in events.iter().map_err(|e| read(e.into()))? {
        let (k, v) = entry.map_err(|e| read(e.into()))?;
        let event: Event = from_stored(v.value()).map_err(|e| corrupt(format!("event {}", k.value()), e))?;
        state.history.push_back(Arc::new(event));
    }
    state.compacted = state
        .history
        .front()
        .map(|e| e.revision - 1)
        .unwrap_or(state.revision);
    Ok(state)
}

/// Parses what this store wrote. Without serde_json's nesting limit: a request body is parsed with
/// it (128 levels), but what the server stores around an accepted object (managedFields, the event
/// record) nests a few levels deeper, and refusing to load it would keep the server from starting.
fn from_stored<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.disable_recursion_limit();
    let value = T::deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

impl Store {
    /// Opens (or creates) the store in `dir`, loading every object, the revision and the history.
    pub fn open(dir: &Path, history_limit: usize) -> Result<Store, StoreError> {
        let path = dir.join(FILE_NAME);
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        let db = open_db(&path)?;
        let state = load(&db, &path)?;
        let (revision_tx, _) = tokio::sync::watch::channel(state.revision);
        let writer = Writer::new(db, state.revision);
        Ok(Store {
            path,
            state: RwLock::new(state),
            writer: Mutex::new(writer),
            committed: Condvar::new(),
            revision_tx,
            history_limit: history_limit.max(1),
            writes: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reopens the database after a failed commit closed it, and takes what the file holds as the
    /// truth: a commit that reported an error may still have reached the disk (the data written,
    /// the final sync failing), and memory must then show it too.
    fn reopen(&self) -> Result<(Database, u64), StoreError> {
        let db = open_db(&self.path)?;
        let loaded = load(&db, &self.path)?;
        let mut state = self.state.write().expect("store lock");
        if loaded.revision < state.revision {
            return Err(StoreError::WentBack {
                path: self.path.display().to_string(),
                memory: state.revision,
                disk: loaded.revision,
            });
        }
        let moved = loaded.revision != state.revision;
        *state = loaded;
        let revision = state.revision;
        drop(state);
        tracing::info!(path = %self.path.display(), revision, "store reopened after a failed write");
        if moved {
            self.revision_tx.send_replace(revision);
        }
        Ok((db, revision))
    }

    /// The current cluster-wide revision.
    pub fn revision(&self) -> u64 {
        self.state.read().expect("store lock").revision
    }

    /// Writes committed since start (for tests and benchmarks that count API writes).
    pub fn write_count(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
    }

    /// Commits (fsyncs) since start: fewer than [`write_count`](Self::write_count) when concurrent
    /// writes shared commits.
    pub fn commit_count(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Wakes whenever the revision moves.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.revision_tx.subscribe()
    }

    pub fn get(&self, key: &Key) -> Option<Arc<Value>> {
        let state = self.state.read().expect("store lock");
        state
            .objects
            .get(&key.resource)?
            .get(&(key.namespace.clone(), key.name.clone()))
            .cloned()
    }

    /// Every object of a resource (in one namespace, or all when `namespace` is None), sorted by
    /// namespace and name, with the revision they are consistent with.
    pub fn list(&self, resource: &str, namespace: Option<&str>) -> (u64, Vec<Arc<Value>>) {
        let state = self.state.read().expect("store lock");
        let items = match state.objects.get(resource) {
            None => Vec::new(),
            Some(m) => match namespace {
                None => m.values().cloned().collect(),
                Some(ns) => m
                    .range((ns.to_string(), String::new())..)
                    .take_while(|((n, _), _)| n == ns)
                    .map(|(_, v)| v.clone())
                    .collect(),
            },
        };
        (state.revision, items)
    }

    /// Every stored object with its key (for the garbage collector and namespace cleanup).
    pub fn all(&self) -> Vec<(Key, Arc<Value>)> {
        let state = self.state.read().expect("store lock");
        let mut out = Vec::new();
        for (resource, m) in &state.objects {
            for ((ns, name), v) in m {
                out.push((
                    Key {
                        resource: resource.clone(),
                        namespace: ns.clone(),
                        name: name.clone(),
                    },
                    v.clone(),
                ));
            }
        }
        out
    }

    /// Events of `resource` after `since`, or `Err(compacted)` when `since` is older than the history.
    pub fn events_since(&self, resource: Option<&str>, since: u64) -> Result<Vec<Arc<Event>>, u64> {
        let state = self.state.read().expect("store lock");
        if since < state.compacted {
            return Err(state.compacted);
        }
        let start = state.history.partition_point(|e| e.revision <= since);
        Ok(state
            .history
            .range(start..)
            .filter(|e| resource.is_none_or(|r| e.key.resource == r))
            .cloned()
            .collect())
    }

    /// The oldest revision a watch may start from.
    pub fn compacted_revision(&self) -> u64 {
        self.state.read().expect("store lock").compacted
    }

    /// Forgets the watch history up to the current revision, as an etcd compaction does: a watch
    /// from any earlier revision gets 410 Gone, and its client must relist. Open watches that have
    /// seen everything go on. Only the in-memory history goes (the data file keeps its events, so a
    /// restart can serve them again); fault tests use it to expire clients' watches at will.
    pub fn compact(&self) -> u64 {
        let mut state = self.state.write().expect("store lock");
        state.history.clear();
        state.compacted = state.revision;
        state.compacted
    }

    /// Atomically reads the object at `key`, lets `f` decide, and commits the result durably.
    ///
    /// `f` receives the current object and the revision this write will get. It runs under the writer
    /// lock, so what it read is still current when the write lands (compare-and-swap); the current
    /// object includes writes decided but not yet committed, which this one then builds on (and
    /// fails with, should their commit fail). Returns once the write is durable.
    pub fn mutate<F>(&self, key: &Key, f: F) -> ApiResult<Outcome>
    where
        F: FnOnce(Option<Arc<Value>>, u64) -> ApiResult<Mutation>,
    {
        let mut writer = self.writer.lock().expect("writer lock");
        if writer.db.is_none() {
            let (db, revision) = self.reopen().map_err(|e| {
                tracing::error!(error = %e, "the store is still not writable");
                ApiError::from(e)
            })?;
            writer.reopened(db, revision);
        }
        let repr = KeyRepr::from(key);
        // The object as the last write decided it, committed or not (then the revision to wait for
        // before answering from it).
        let (current, pending) = match writer.pending_object(&repr) {
            Some((revision, object)) => (object, Some(revision)),
            None => (self.get(key), None),
        };
        let revision = writer.assigned + 1;
        let mutation = f(current.clone(), revision)?;
        let (type_, object) = match mutation {
            Mutation::Unchanged => {
                self.wait_durable(writer, pending)?;
                return Ok(Outcome::Unchanged(current));
            }
            Mutation::Put(mut obj) => {
                set_resource_version(&mut obj, revision);
                (
                    if current.is_some() {
                        EventType::Modified
                    } else {
                        EventType::Added
                    },
                    obj,
                )
            }
            Mutation::Delete(mut obj) => {
                if current.is_none() {
                    self.wait_durable(writer, pending)?;
                    return Ok(Outcome::Unchanged(None));
                }
                set_resource_version(&mut obj, revision);
                (EventType::Deleted, obj)
            }
        };
        let object = Arc::new(object);
        writer.push(Arc::new(Event {
            revision,
            key: repr,
            type_,
            object: object.clone(),
            previous: current,
        }));
        self.wait_durable(writer, Some(revision))?;
        Ok(match type_ {
            EventType::Added => Outcome::Created(object),
            EventType::Modified => Outcome::Updated(object),
            EventType::Deleted => Outcome::Deleted(object),
        })
    }

    /// Returns once the write of `revision` (if any) is durable: commits the pending writes itself
    /// when no commit is running, else waits for the running one. The error of a failed commit
    /// when that write was in it or decided on top of it.
    fn wait_durable<'a>(
        &'a self,
        mut writer: MutexGuard<'a, Writer>,
        revision: Option<u64>,
    ) -> ApiResult<()> {
        let Some(revision) = revision else {
            return Ok(());
        };
        let generation = writer.generation;
        loop {
            if writer.generation != generation {
                return Err(writer.failure.clone().expect("set with the generation"));
            }
            if writer.durable >= revision {
                return Ok(());
            }
            if writer.committing {
                writer = self.committed.wait(writer).expect("writer lock");
                continue;
            }
            writer = self.commit_pending(writer);
            self.committed.notify_all();
        }
    }

    /// Commits every pending write as one batch, with the writer lock released while the commit
    /// runs, then publishes the batch to memory (or fails it and everything queued behind it).
    fn commit_pending<'a>(&'a self, mut writer: MutexGuard<'a, Writer>) -> MutexGuard<'a, Writer> {
        let batch = std::mem::take(&mut writer.pending);
        let last = batch.last().expect("this writer's own write is pending").revision;
        let db = writer.db.clone().expect("opened by this writer");
        let trim = {
            let state = self.state.read().expect("store lock");
            (state.history.len() + batch.len()).saturating_sub(self.history_limit)
        };
        writer.committing = true;
        drop(writer);
        let result = commit::commit(&db, &self.path, &batch, trim);
        let mut writer = self.writer.lock().expect("writer lock");
        writer.committing = false;
        if let Err(e) = result {
            // Not acknowledged and not in memory. The database may be unusable after an I/O error
            // (redb then answers every call with PreviousIo), so close it; the next write reopens it.
            tracing::error!(error = %e, revision = last, writes = batch.len(), "a commit failed; the store is reopened by the next write");
            writer.failed(e.into());
            return writer;
        }
        {
            let mut state = self.state.write().expect("store lock");
            for event in &batch {
                let map = state.objects.entry(event.key.resource.clone()).or_default();
                let id = (event.key.namespace.clone(), event.key.name.clone());
                if event.type_ == EventType::Deleted {
                    map.remove(&id);
                } else {
                    map.insert(id, event.object.clone());
                }
                state.history.push_back(event.clone());
            }
            for _ in 0..trim {
                if let Some(old) = state.history.pop_front() {
                    state.compacted = old.revision;
                }
            }
            state.revision = last;
        }
        writer.committed(last);
        self.writes.fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.revision_tx.send_replace(last);
        writer
    }
}

fn set_resource_version(obj: &mut Value, revision: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
    }
}

#[cfg(test)]
mod tests;
