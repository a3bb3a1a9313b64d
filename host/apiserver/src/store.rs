//! The durable object store: every object of every resource, the cluster-wide revision counter and the
//! recent event history, in one embedded redb database, mirrored in memory for reads and watches.
//!
//! All writes go through [`Store::mutate`], which serialises writers, gives each write the next
//! revision (the `resourceVersion`), commits it to disk (fsync) *before* the caller acknowledges it,
//! then publishes it to the in-memory history that watches read. A compare-and-swap inside the one
//! writer lock means concurrent writers never lose an update. After a restart the objects, the
//! revision and the retained history are loaded back, so watches resume from a resourceVersion.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// Errors opening or writing the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("opening the store {path}: {source}")]
    Open {
        path: String,
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("store I/O: {0}")]
    Io(String),
    #[error("corrupt store entry {key}: {source}")]
    Corrupt { key: String, source: serde_json::Error },
}

fn io<E: std::fmt::Display>(e: E) -> StoreError {
    StoreError::Io(e.to_string())
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::internal(e.to_string())
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
    db: Database,
    state: RwLock<State>,
    writer: Mutex<()>,
    revision_tx: tokio::sync::watch::Sender<u64>,
    history_limit: usize,
    writes: AtomicU64,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("revision", &self.revision())
            .finish()
    }
}

impl Store {
    /// Opens (or creates) the store in `dir`, loading every object, the revision and the history.
    pub fn open(dir: &Path, history_limit: usize) -> Result<Store, StoreError> {
        let path = dir.join("store.redb");
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        let db = Database::create(&path).map_err(|e| StoreError::Open {
            path: path.display().to_string(),
            source: Box::new(e),
        })?;
        {
            // Make sure every table exists so read transactions can open them.
            let txn = db.begin_write().map_err(io)?;
            txn.open_table(OBJECTS).map_err(io)?;
            txn.open_table(META).map_err(io)?;
            txn.open_table(EVENTS).map_err(io)?;
            txn.commit().map_err(io)?;
        }
        let mut state = State::default();
        {
            let txn = db.begin_read().map_err(io)?;
            let meta = txn.open_table(META).map_err(io)?;
            state.revision = meta.get("revision").map_err(io)?.map(|v| v.value()).unwrap_or(1);
            let objects = txn.open_table(OBJECTS).map_err(io)?;
            for entry in objects.iter().map_err(io)? {
                let (k, v) = entry.map_err(io)?;
                let key_str = k.value().to_string();
                let value: Value =
                    serde_json::from_slice(v.value()).map_err(|source| StoreError::Corrupt {
                        key: key_str.clone(),
                        source,
                    })?;
                if let Some(key) = Key::parse(&key_str) {
                    state
                        .objects
                        .entry(key.resource)
                        .or_default()
                        .insert((key.namespace, key.name), Arc::new(value));
                }
            }
            let events = txn.open_table(EVENTS).map_err(io)?;
            for entry in events.iter().map_err(io)? {
                let (k, v) = entry.map_err(io)?;
                let event: Event =
                    serde_json::from_slice(v.value()).map_err(|source| StoreError::Corrupt {
                        key: format!("event {}", k.value()),
                        source,
                    })?;
                state.history.push_back(Arc::new(event));
            }
            state.compacted = state
                .history
                .front()
                .map(|e| e.revision - 1)
                .unwrap_or(state.revision);
        }
        let (revision_tx, _) = tokio::sync::watch::channel(state.revision);
        Ok(Store {
            db,
            state: RwLock::new(state),
            writer: Mutex::new(()),
            revision_tx,
            history_limit: history_limit.max(1),
            writes: AtomicU64::new(0),
        })
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

    /// Atomically reads the object at `key`, lets `f` decide, and commits the result durably.
    ///
    /// `f` receives the current object and the revision this write will get. It runs under the writer
    /// lock, so what it read is still current when the write lands (compare-and-swap).
    pub fn mutate<F>(&self, key: &Key, f: F) -> ApiResult<Outcome>
    where
        F: FnOnce(Option<Arc<Value>>, u64) -> ApiResult<Mutation>,
    {
        let _writer = self.writer.lock().expect("writer lock");
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
        self.commit(key, &event, trimmed)?;
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

    fn commit(&self, key: &Key, event: &Event, trim_oldest: bool) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(io)?;
        {
            let mut objects = txn.open_table(OBJECTS).map_err(io)?;
            let db_key = key.db_key();
            if event.type_ == EventType::Deleted {
                objects.remove(db_key.as_str()).map_err(io)?;
            } else {
                let bytes = serde_json::to_vec(&*event.object).map_err(io)?;
                objects.insert(db_key.as_str(), bytes.as_slice()).map_err(io)?;
            }
            let mut meta = txn.open_table(META).map_err(io)?;
            meta.insert("revision", event.revision).map_err(io)?;
            let mut events = txn.open_table(EVENTS).map_err(io)?;
            let bytes = serde_json::to_vec(event).map_err(io)?;
            events.insert(event.revision, bytes.as_slice()).map_err(io)?;
            if trim_oldest {
                events.pop_first().map_err(io)?;
            }
        }
        txn.commit().map_err(io)
    }
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
}
