use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::{Runtime, RuntimeConfig};

/// The smallest component: magic, version 0x0d, layer 1. Compiles in milliseconds.
const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

fn runtime(dir: &Path) -> Runtime {
    Runtime::new(RuntimeConfig {
        cache_dir: Some(dir.into()),
        ..RuntimeConfig::default()
    })
    .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Compiles (or loads) the empty component; whether it came from the cache.
fn load(rt: &Runtime) -> bool {
    rt.compile("empty.wasm", EMPTY_COMPONENT).unwrap().from_cache()
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[test]
fn a_new_cache_is_private_and_its_key_survives_reopening() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("a/b/wasmop");
    let cache = ArtifactCache::open(&dir).unwrap();
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("key")), 0o600);
    assert_eq!(std::fs::read(dir.join("key")).unwrap().len(), KEY_LEN);
    let sealed = cache.seal(&[1; 32], &[2; 32], b"payload");
    // Reopened (another process, later): the same key verifies what the first one sealed.
    let again = ArtifactCache::open(&dir).unwrap();
    assert_eq!(again.verify(&sealed[..], &[1; 32], &[2; 32]).unwrap(), Ok(7));
    // Another installation's key does not.
    let other = ArtifactCache::open(parent.path().join("other")).unwrap();
    assert_eq!(
        other.verify(&sealed[..], &[1; 32], &[2; 32]).unwrap(),
        Err(Rejection::BadMac)
    );
}

#[test]
fn a_directory_others_can_write_is_refused_naming_it() {
    for (bits, what) in [
        (0o777, "world-writable"),
        (0o770, "group-writable"),
        (0o1777, "sticky"),
    ] {
        let parent = tempfile::tempdir().unwrap();
        let dir = parent.path().join("cache");
        std::fs::create_dir(&dir).unwrap();
        chmod(&dir, bits);
        let err = ArtifactCache::open(&dir).expect_err(what);
        assert!(matches!(err, CacheError::TooOpen { .. }), "{what}: {err}");
        let msg = err.to_string();
        assert!(msg.starts_with(&format!("{}: refused", dir.display())), "{msg}");
        assert!(!dir.join("key").exists(), "{what}: nothing written there");
        // The runtime still works, compiling every time, and says why.
        let rt = runtime(&dir);
        assert!(rt.artifact_cache().is_none());
        assert!(rt.cache_error().is_some_and(|e| e.to_string() == msg));
        assert!(!load(&rt));
        assert!(!load(&rt), "{what}: nothing is cached");
    }
    // Readable (not writable) by others is fine: mkdir's usual 0755.
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("cache");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o755);
    ArtifactCache::open(&dir).unwrap();
}

#[test]
fn a_directory_owned_by_another_user_is_refused() {
    if !is_root() {
        println!("skipped: changing a directory's owner needs root");
        return;
    }
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("planted");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o700);
    // As if another user (nobody) had created it first, with a planted artifact in it.
    std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
    let err = ArtifactCache::open(&dir).unwrap_err();
    assert!(
        matches!(
            err,
            CacheError::NotOwned {
                owner: 65534,
                uid: 0,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "{}: refused as the compile cache: owned by uid 65534",
            dir.display()
        )),
        "{err}"
    );
    // A key file owned by someone else is refused too, in a directory that is ours.
    std::os::unix::fs::chown(&dir, Some(0), Some(0)).unwrap();
    ArtifactCache::open(&dir).unwrap();
    std::os::unix::fs::chown(dir.join("key"), Some(65534), Some(65534)).unwrap();
    let err = ArtifactCache::open(&dir).unwrap_err();
    assert!(matches!(err, CacheError::NotOwned { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: refused", dir.join("key").display()))
    );
}

#[test]
fn a_key_others_can_read_or_of_the_wrong_size_is_refused() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("cache");
    ArtifactCache::open(&dir).unwrap();
    let key = dir.join("key");
    chmod(&key, 0o644);
    let err = ArtifactCache::open(&dir).unwrap_err();
    assert!(matches!(err, CacheError::TooOpen { mode: 0o644, .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{}: refused", key.display()))
    );
    chmod(&key, 0o600);
    std::fs::write(&key, b"short").unwrap();
    let err = ArtifactCache::open(&dir).unwrap_err();
    assert!(matches!(err, CacheError::BadKey { len: 5, .. }), "{err}");
    // A symlink in place of the key is not followed.
    std::fs::remove_file(&key).unwrap();
    std::os::unix::fs::symlink(parent.path().join("elsewhere"), &key).unwrap();
    assert!(ArtifactCache::open(&dir).is_err());
}

#[test]
fn a_restart_loads_the_artifact_without_compiling() {
    let dir = tempfile::tempdir().unwrap();
    let cold = runtime(dir.path());
    assert!(!load(&cold), "the first load compiles");
    let path = cold.artifact_path(EMPTY_COMPONENT).unwrap();
    assert!(path.exists());
    assert_eq!(mode(&path), 0o600);
    let warm = runtime(dir.path());
    assert!(load(&warm), "the restart loads the artifact");
    assert_eq!(
        warm.artifact_cache_stats(),
        Some(CacheStats {
            hits: 1,
            ..CacheStats::default()
        })
    );
    // No temporary files are left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

/// Damages the artifact with `damage`, then checks that the next runtime rejects it for `why`,
/// counts it, compiles instead, and rewrites a good artifact that the one after loads.
fn rejected_then_rebuilt(damage: impl Fn(&Path), why: Rejection) {
    let dir = tempfile::tempdir().unwrap();
    let first = runtime(dir.path());
    load(&first);
    let path = first.artifact_path(EMPTY_COMPONENT).unwrap();
    damage(&path);
    let second = runtime(dir.path());
    let digest = sha256(EMPTY_COMPONENT);
    let cache = second.artifact_cache().unwrap();
    assert!(matches!(
        cache.lookup(second.engine(), &second.compatibility_key(), &digest),
        Lookup::Rejected(w) if w == why
    ));
    assert!(!load(&second), "{why:?}: not loaded, compiled");
    let stats = second.artifact_cache_stats().unwrap();
    assert_eq!((stats.hits, stats.misses, stats.rejected), (0, 2, 2), "{why:?}");
    let third = runtime(dir.path());
    assert!(load(&third), "{why:?}: the rewritten artifact loads");
}

#[test]
fn an_artifact_with_a_bad_mac_is_not_loaded_but_recompiled_and_counted() {
    // One bit of the native code flipped.
    rejected_then_rebuilt(
        |path| {
            let mut bytes = std::fs::read(path).unwrap();
            let mid = (bytes.len() - TRAILER_LEN - MAC_LEN) / 2;
            bytes[mid] ^= 1;
            std::fs::write(path, bytes).unwrap();
        },
        Rejection::BadMac,
    );
    // A well-formed artifact whose MAC was computed with someone else's key.
    rejected_then_rebuilt(
        |path| {
            let other = tempfile::tempdir().unwrap();
            let forger = ArtifactCache::open(other.path()).unwrap();
            let bytes = std::fs::read(path).unwrap();
            let (payload, trailer) =
                bytes[..bytes.len() - MAC_LEN].split_at(bytes.len() - MAC_LEN - TRAILER_LEN);
            let engine: Digest = trailer[12..44].try_into().unwrap();
            let component: Digest = trailer[44..76].try_into().unwrap();
            std::fs::write(path, forger.seal(&engine, &component, payload)).unwrap();
        },
        Rejection::BadMac,
    );
}

#[test]
fn a_verified_artifact_loads_mapped_or_copied() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    load(&rt);
    let path = rt.artifact_path(EMPTY_COMPONENT).unwrap();
    let cache = rt.artifact_cache().unwrap();
    let file = open_regular(&path).unwrap();
    let payload_len = cache
        .verify(&file, &rt.compatibility_key(), &sha256(EMPTY_COMPONENT))
        .unwrap()
        .unwrap();
    assert_eq!(
        payload_len,
        file.metadata().unwrap().len() - (TRAILER_LEN + MAC_LEN) as u64
    );
    // Mapped (the whole file, trailer included) and copied (the payload alone): the same code.
    let mapped = load_verified(rt.engine(), &file, payload_len)
        .unwrap()
        .serialize()
        .unwrap();
    let copied = copy_verified(rt.engine(), &file, payload_len)
        .unwrap()
        .serialize()
        .unwrap();
    assert_eq!(mapped.len(), file.metadata().unwrap().len() as usize);
    assert_eq!(mapped[..payload_len as usize], copied[..]);
}

#[test]
fn a_truncated_artifact_is_ignored() {
    for keep in [0, 20, TRAILER_LEN + 10] {
        rejected_then_rebuilt(
            |path| {
                let bytes = std::fs::read(path).unwrap();
                std::fs::write(path, &bytes[..keep]).unwrap();
            },
            Rejection::Truncated,
        );
    }
    // A payload shorter than its trailer declares.
    rejected_then_rebuilt(
        |path| {
            let bytes = std::fs::read(path).unwrap();
            let payload_end = bytes.len() - TRAILER_LEN - MAC_LEN;
            let cut = [&bytes[..payload_end - 100], &bytes[payload_end..]].concat();
            std::fs::write(path, cut).unwrap();
        },
        Rejection::Truncated,
    );
    // Cut short at its end: the trailer is gone, and what is there instead is not one.
    rejected_then_rebuilt(
        |path| {
            let bytes = std::fs::read(path).unwrap();
            std::fs::write(path, &bytes[..bytes.len() - 100]).unwrap();
        },
        Rejection::Foreign,
    );
}

#[test]
fn a_foreign_artifact_is_ignored() {
    // Another component's artifact renamed into place.
    rejected_then_rebuilt(
        |path| {
            let mut bytes = std::fs::read(path).unwrap();
            // The trailer's component digest.
            let at = bytes.len() - MAC_LEN - TRAILER_LEN + 44;
            bytes[at] ^= 0xff;
            std::fs::write(path, bytes).unwrap();
        },
        Rejection::Foreign,
    );
    // Not ours at all: wasmtime's own serialized format with no trailer.
    rejected_then_rebuilt(
        |path| {
            let bytes = std::fs::read(path).unwrap();
            std::fs::write(path, &bytes[..bytes.len() - TRAILER_LEN - MAC_LEN]).unwrap();
        },
        Rejection::Foreign,
    );
}

#[test]
fn a_symlinked_artifact_is_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    let first = runtime(dir.path());
    load(&first);
    let path = first.artifact_path(EMPTY_COMPONENT).unwrap();
    let elsewhere = dir.path().join("elsewhere");
    std::fs::rename(&path, &elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
    let second = runtime(dir.path());
    assert!(!load(&second), "compiled, not loaded through the link");
    // The rename-over replaced the link with a real file.
    assert!(std::fs::symlink_metadata(&path).unwrap().is_file());
}

#[test]
fn an_artifact_that_cannot_be_written_is_counted_and_the_plugin_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime(dir.path());
    // A directory where the artifact should go: the rename onto it fails (even for root, whom a
    // read-only directory would not stop).
    std::fs::create_dir(rt.artifact_path(EMPTY_COMPONENT).unwrap()).unwrap();
    assert!(!load(&rt));
    let stats = rt.artifact_cache_stats().unwrap();
    assert_eq!((stats.write_errors, stats.rejected), (1, 0));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temporary file left"
    );
}

#[test]
fn the_least_recently_used_artifacts_go_when_the_cache_is_over_its_size() {
    let dir = tempfile::tempdir().unwrap();
    let cache = ArtifactCache::open(dir.path()).unwrap();
    let day = std::time::Duration::from_secs(86_400);
    let now = std::time::SystemTime::now();
    // Four artifacts of 100 bytes, used 4, 3, 2 and 1 days ago; a stale and a fresh temporary file.
    let paths: Vec<PathBuf> = (0..4u8)
        .map(|i| {
            let p = cache.store(&[9; 32], &[i; 32], &[i; 10]).unwrap();
            std::fs::write(&p, [0u8; 100]).unwrap();
            let f = File::options().write(true).open(&p).unwrap();
            f.set_modified(now - day * (4 - u32::from(i))).unwrap();
            p
        })
        .collect();
    let stale = dir.path().join(".x.cwasm.1.tmp");
    let fresh = dir.path().join(".y.cwasm.2.tmp");
    std::fs::write(&stale, b"partial").unwrap();
    File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(now - day)
        .unwrap();
    std::fs::write(&fresh, b"being written").unwrap();
    // Over 300 bytes: down to 225, the oldest first, never the one just written (the oldest here).
    cache.trim(300, &paths[0]);
    let left: Vec<bool> = paths.iter().map(|p| p.exists()).collect();
    assert_eq!(left, [true, false, false, true]);
    assert!(!stale.exists() && fresh.exists());
    // Under the limit: nothing goes.
    cache.trim(300, &paths[0]);
    assert!(paths[3].exists() && paths[0].exists());
}
