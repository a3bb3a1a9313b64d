//! The durable object store: every object of every resource, the cluster-wide revision counter and the
//! recent event history, in one embedded redb database, mirrored in memory for reads and watches.
//!
//! All writes go through [`Store::mutate`], which serialises writers, gives each write the next
//! revision (the `resourceVersion`), commits it to disk (fsync) *before* the caller acknowledges it,
//! then publishes it to the in-memory history that watches read. A compare-and-swap inside the one
//! writer lock means concurrent writers never lose an update. After a restart the objects, the
//! revision and the retained history are loaded back, so watches resume from a resourceVersion.
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
use std::sync::{Arc, Mutex, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
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
    fn db_key(&self) -> String {
        format!("{}/{}/{}", self.resource, self.namespace, self.name)
    }

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRepr {
    pub resource: String,
    pub namespace: String,
    pub name: String,
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
    /// The writer lock, holding the database; `None` after a failed commit closed it, until the
    /// next write reopens it.
    writer: Mutex<Option<Database>>,
    revision_tx: tokio::sync::watch::Sender<u64>,
    history_limit: usize,
    writes: AtomicU64,
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
        Ok(Store {
            path,
            state: RwLock::new(state),
            writer: Mutex::new(Some(db)),
            revision_tx,
            history_limit: history_limit.max(1),
            writes: AtomicU64::new(0),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reopens the database after a failed commit closed it, and takes what the file holds as the
    /// truth: a commit that reported an error may still have reached the disk (the data written,
    /// the final sync failing), and memory must then show it too.
    fn reopen(&self) -> Result<Database, StoreError> {
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
        Ok(db)
    }

    /// The current cluster-wide revision.
    pub fn revision(&self) -> u64 {
        self.state.read().expect("store lock").revision
    }

    /// Writes committed since start (for tests and benchmarks that count API writes).
    pub fn write_count(&self) -> u64 {
        self.writes.load(Ordering::Relaxed)
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
    /// lock, so what it read is still current when the write lands (compare-and-swap).
    pub fn mutate<F>(&self, key: &Key, f: F) -> ApiResult<Outcome>
    where
        F: FnOnce(Option<Arc<Value>>, u64) -> ApiResult<Mutation>,
    {
        let mut writer = self.writer.lock().expect("writer lock");
        if writer.is_none() {
            *writer = Some(self.reopen().map_err(|e| {
                tracing::error!(error = %e, "the store is still not writable");
                ApiError::from(e)
            })?);
        }
        let current = self.get(key);
        let revision = self.revision() + 1;
        let mutation = f(current.clone(), revision)?;
        let (type_, object) = match mutation {
            Mutation::Unchanged => return Ok(Outcome::Unchanged(current)),
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
                    return Ok(Outcome::Unchanged(None));
                }
                set_resource_version(&mut obj, revision);
                (EventType::Deleted, obj)
            }
        };
        let object = Arc::new(object);
        let event = Arc::new(Event {
            revision,
            key: key.into(),
            type_,
            object: object.clone(),
            previous: current.clone(),
        });
        let trimmed = {
            let state = self.state.read().expect("store lock");
            state.history.len() + 1 > self.history_limit
        };
        let db = writer.as_ref().expect("opened above");
        if let Err(e) = commit(db, &self.path, key, &event, trimmed) {
            // Not acknowledged and not in memory. The database may be unusable after an I/O error
            // (redb then answers every call with PreviousIo), so close it; the next write reopens it.
            tracing::error!(error = %e, revision, "a write failed; the store is reopened by the next write");
            *writer = None;
            return Err(e.into());
        }
        {
            let mut state = self.state.write().expect("store lock");
            state.revision = revision;
            let map = state.objects.entry(key.resource.clone()).or_default();
            let id = (key.namespace.clone(), key.name.clone());
            if type_ == EventType::Deleted {
                map.remove(&id);
            } else {
                map.insert(id, object.clone());
            }
            state.history.push_back(event);
            if trimmed && let Some(old) = state.history.pop_front() {
                state.compacted = old.revision;
            }
        }
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.revision_tx.send_replace(revision);
        Ok(match type_ {
            EventType::Added => Outcome::Created(object),
            EventType::Modified => Outcome::Updated(object),
            EventType::Deleted => Outcome::Deleted(object),
        })
    }
}

/// Writes one event (and the object it leaves) durably: a two-phase commit, so that a crash can
/// never leave the file with a damaged last commit that would have to be rolled back.
fn commit(db: &Database, path: &Path, key: &Key, event: &Event, trim_oldest: bool) -> Result<(), StoreError> {
    let write = |source: redb::Error| StoreError::Write {
        path: path.display().to_string(),
        source: Box::new(source),
    };
    let mut txn = db.begin_write().map_err(|e| write(e.into()))?;
    txn.set_two_phase_commit(true);
    {
        let mut objects = txn.open_table(OBJECTS).map_err(|e| write(e.into()))?;
        let db_key = key.db_key();
        if event.type_ == EventType::Deleted {
            objects.remove(db_key.as_str()).map_err(|e| write(e.into()))?;
        } else {
            let bytes = serde_json::to_vec(&*event.object).expect("a JSON value serialises");
            objects
                .insert(db_key.as_str(), bytes.as_slice())
                .map_err(|e| write(e.into()))?;
        }
        let mut meta = txn.open_table(META).map_err(|e| write(e.into()))?;
        meta.insert("revision", event.revision)
            .map_err(|e| write(e.into()))?;
        let mut events = txn.open_table(EVENTS).map_err(|e| write(e.into()))?;
        let bytes = serde_json::to_vec(event).expect("an event serialises");
        events
            .insert(event.revision, bytes.as_slice())
            .map_err(|e| write(e.into()))?;
        if trim_oldest {
            events.pop_first().map_err(|e| write(e.into()))?;
        }
    }
    txn.commit().map_err(|e| write(e.into()))
}

fn set_resource_version(obj: &mut Value, revision: u64) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.insert("resourceVersion".into(), Value::String(revision.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> Key {
        Key {
            resource: "/configmaps".into(),
            namespace: "default".into(),
            name: name.into(),
        }
    }

    fn put(store: &Store, name: &str, v: &str) -> Outcome {
        store
            .mutate(&key(name), |_, _| {
                Ok(Mutation::Put(
                    json!({"metadata": {"name": name}, "data": {"v": v}}),
                ))
            })
            .unwrap()
    }

    #[test]
    fn revisions_increase_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 100).unwrap();
            put(&store, "a", "1");
            put(&store, "b", "1");
            put(&store, "a", "2");
            assert_eq!(store.revision(), 4);
            assert_eq!(store.get(&key("a")).unwrap()["metadata"]["resourceVersion"], "4");
        }
        let store = Store::open(dir.path(), 100).unwrap();
        assert_eq!(store.revision(), 4);
        assert_eq!(store.get(&key("a")).unwrap()["data"]["v"], "2");
        let events = store.events_since(Some("/configmaps"), 2).unwrap();
        assert_eq!(events.iter().map(|e| e.revision).collect::<Vec<_>>(), vec![3, 4]);
        put(&store, "c", "1");
        assert_eq!(store.revision(), 5);
    }

    #[test]
    fn history_is_trimmed_and_old_revisions_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 2).unwrap();
        for i in 0..5 {
            put(&store, "a", &i.to_string());
        }
        assert_eq!(store.events_since(None, 1).err(), Some(4));
        assert_eq!(store.events_since(None, 4).unwrap().len(), 2);
    }

    #[test]
    fn a_compaction_expires_every_earlier_revision_and_later_events_replay() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 100).unwrap();
        put(&store, "a", "1");
        put(&store, "b", "1");
        let now = store.revision();
        assert_eq!(store.compact(), now);
        assert_eq!(store.events_since(None, now - 1).err(), Some(now));
        assert!(store.events_since(None, now).unwrap().is_empty());
        put(&store, "a", "2");
        let events = store.events_since(Some("/configmaps"), now).unwrap();
        assert_eq!(
            events.iter().map(|e| e.revision).collect::<Vec<_>>(),
            vec![now + 1]
        );
        assert_eq!(store.compacted_revision(), now);
    }

    #[test]
    fn unchanged_writes_take_no_revision() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 10).unwrap();
        put(&store, "a", "1");
        let out = store.mutate(&key("a"), |_, _| Ok(Mutation::Unchanged)).unwrap();
        assert!(matches!(out, Outcome::Unchanged(Some(_))));
        assert_eq!(store.revision(), 2);
        assert_eq!(store.write_count(), 1);
    }

    #[test]
    fn deletes_carry_the_deletion_revision() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), 10).unwrap();
        put(&store, "a", "1");
        let out = store
            .mutate(&key("a"), |cur, _| Ok(Mutation::Delete((*cur.unwrap()).clone())))
            .unwrap();
        let Outcome::Deleted(obj) = out else { panic!() };
        assert_eq!(obj["metadata"]["resourceVersion"], "3");
        assert!(store.get(&key("a")).is_none());
        assert_eq!(store.list("/configmaps", Some("default")).1.len(), 0);
    }

    /// Writes `n` objects, closes the store, damages the file with `damage`, and returns what
    /// opening it again answers.
    fn damaged(n: usize, damage: impl FnOnce(&Path)) -> Result<Store, StoreError> {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path(), 100).unwrap();
            for i in 0..n {
                put(&store, &format!("o{i}"), &format!("<{i:05}>").repeat(30));
            }
        }
        damage(&dir.path().join(FILE_NAME));
        Store::open(dir.path(), 100)
    }

    fn assert_refused(result: Result<Store, StoreError>) {
        let e = match result {
            Ok(store) => panic!("a damaged file was opened at revision {}", store.revision()),
            Err(e) => e,
        };
        let message = e.to_string();
        assert!(message.contains(FILE_NAME), "the error names the file: {message}");
    }

    #[test]
    fn a_truncated_file_is_refused_with_its_name() {
        for keep in [0.5, 0.9, 0.99] {
            assert_refused(damaged(200, |path| {
                let len = std::fs::metadata(path).unwrap().len();
                let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                f.set_len((len as f64 * keep) as u64).unwrap();
            }));
        }
    }

    #[test]
    fn overwritten_pages_are_refused_with_the_files_name() {
        use std::io::{Seek, SeekFrom, Write};
        let overwrite = |path: &Path, at: u64, bytes: &[u8]| {
            let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            f.seek(SeekFrom::Start(at)).unwrap();
            f.write_all(bytes).unwrap();
        };
        // Garbage over the file's header.
        assert_refused(damaged(200, |path| overwrite(path, 0, &[0xA5; 64])));
        // One byte changed inside a stored object, in every copy of it in the file (the live page
        // among them): a page checksum mismatch, not a JSON error, as the byte stays a digit.
        for object in [0, 100, 199] {
            assert_refused(damaged(200, |path| {
                let bytes = std::fs::read(path).unwrap();
                let marker = format!("<{object:05}><{object:05}>");
                let found: Vec<usize> = bytes
                    .windows(marker.len())
                    .enumerate()
                    .filter(|(_, w)| *w == marker.as_bytes())
                    .map(|(at, _)| at)
                    .collect();
                assert!(!found.is_empty(), "object {object} is in the file");
                for at in found {
                    overwrite(path, at as u64 + 3, b"9");
                }
            }));
        }
    }

    #[test]
    fn objects_nested_past_the_request_limit_load_back() {
        // 126 levels pass the request parser; stored with managedFields around them they nest deeper.
        let dir = tempfile::tempdir().unwrap();
        let mut deep = json!("leaf");
        for _ in 0..126 {
            deep = json!({"a": deep});
        }
        {
            let store = Store::open(dir.path(), 100).unwrap();
            store
                .mutate(&key("deep"), |_, _| {
                    Ok(Mutation::Put(json!({"metadata": {"name": "deep", "managedFields": [{"fieldsV1": deep.clone()}]}, "spec": deep.clone()})))
                })
                .unwrap();
        }
        let store = Store::open(dir.path(), 100).unwrap();
        assert_eq!(store.get(&key("deep")).unwrap()["spec"], deep);
    }
}
