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
fn concurrent_writers_share_commits_and_lose_no_update() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), 10_000).unwrap());
    let start = store.revision();
    let (threads, each) = (16, 40);
    std::thread::scope(|scope| {
        for t in 0..threads {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0..each {
                    // A shared counter (compare-and-swap on the latest, possibly pending, value)
                    // and an object of this thread's own.
                    store
                        .mutate(&key("counter"), |current, _| {
                            let n = current.map_or(0, |c| c["data"]["n"].as_u64().unwrap());
                            Ok(Mutation::Put(
                                json!({"metadata": {"name": "counter"}, "data": {"n": n + 1}}),
                            ))
                        })
                        .unwrap();
                    put(&store, &format!("t{t}"), &i.to_string());
                }
            });
        }
    });
    let writes = (threads * each * 2) as u64;
    let counter = store.get(&key("counter")).unwrap();
    assert_eq!(counter["data"]["n"], threads * each, "no increment lost");
    assert_eq!(store.revision(), start + writes);
    assert_eq!(store.write_count(), writes);
    assert!(
        store.commit_count() < writes,
        "{} commits for {writes} concurrent writes",
        store.commit_count()
    );
    // Every revision once, in order, each object's resourceVersion its event's.
    let events = store.events_since(None, start).unwrap();
    let revisions: Vec<u64> = events.iter().map(|e| e.revision).collect();
    assert_eq!(revisions, (start + 1..=start + writes).collect::<Vec<_>>());
    for e in &events {
        assert_eq!(e.object["metadata"]["resourceVersion"], e.revision.to_string());
    }
    // All of it durable.
    drop(events);
    let store = Arc::into_inner(store).unwrap();
    drop(store);
    let store = Store::open(dir.path(), 10_000).unwrap();
    assert_eq!(store.revision(), start + writes);
    assert_eq!(store.get(&key("counter")).unwrap()["data"]["n"], threads * each);
    for t in 0..threads {
        assert_eq!(
            store.get(&key(&format!("t{t}"))).unwrap()["data"]["v"],
            (each - 1).to_string()
        );
    }
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
