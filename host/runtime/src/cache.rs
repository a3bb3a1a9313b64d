//! The on-disk cache of compiled plugins: a directory only the running user can write, a
//! per-installation HMAC key beside the artifacts, and artifacts that are loaded as native code only
//! once their MAC checks out.
//!
//! Why not wasmtime's own cache: it trusts whatever sits in its directory, and a compiled artifact is
//! native code the host jumps into. Here a directory (or key) someone else could write is refused,
//! and every artifact carries an HMAC-SHA256 under a key only this user can read, so a planted,
//! tampered, truncated or foreign file is rejected (and counted) before wasmtime sees a byte of it.
//!
//! Layout of the directory (mode 0700):
//! - `key`: 32 random bytes (mode 0600), created on first use;
//! - `<component sha256>-<engine key>.cwasm`: one artifact per component and engine configuration:
//!
//! ```text
//! payload | magic "WASMOPC\0" | format u32 LE | engine compatibility key [32]
//!   | component sha256 [32] | payload length u64 LE | HMAC-SHA256(key, everything before it) [32]
//! ```
//!
//! where the payload is wasmtime's serialized component. It comes first so that, once the MAC of
//! the open file checks out, wasmtime maps that same file (`/proc/self/fd/N`) instead of the host
//! reading it into memory: only the pages a plugin's code actually runs become resident, and they
//! are the page cache's, shared and reclaimable, not the host's heap (measured: the three example
//! plugins' code went from 7 MB anonymous to file-backed pages). Writes go to a temporary file
//! renamed over the artifact, so a reader sees a whole old or a whole new file, and an open file is
//! never changed under a mapping.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use wasmtime::Engine;
use wasmtime::component::Component;

use crate::error::CacheError;

const MAGIC: &[u8; 8] = b"WASMOPC\0";
/// Bumped when the layout above changes: older files then read as foreign and are rebuilt.
/// (1 had the same fields as a header before the payload.)
const FORMAT: u32 = 2;
const TRAILER_LEN: usize = 8 + 4 + 32 + 32 + 8;
const MAC_LEN: usize = 32;
const KEY_LEN: usize = 32;
const KEY_FILE: &str = "key";
/// Past this many bytes of artifacts, the least recently used ones are removed after a write (down
/// to three quarters of it), so that a long-lived host whose plugins keep changing does not fill its
/// disk (or overflow the pod's emptyDir, whose `sizeLimit` in `deploy/` is 512 MiB).
pub const DEFAULT_MAX_BYTES: u64 = 256 << 20;
/// Temporary files older than this were left by a process that died mid-write.
const STALE_TEMP: std::time::Duration = std::time::Duration::from_secs(3600);

/// A SHA-256 digest: of a component's bytes, or of the engine's compatibility hash.
pub type Digest = [u8; 32];

/// Why a cached artifact was not loaded (it is then recompiled and rewritten).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Too short to hold a trailer, or shorter than the payload length its trailer declares.
    Truncated,
    /// Another format, engine configuration or component than its name says; or no trailer at its
    /// end (a file cut short loses its trailer, so it reads as foreign).
    Foreign,
    /// The MAC does not match: written by someone without this installation's key, or altered.
    BadMac,
    /// The MAC matched but wasmtime refused the payload (a wasmtime bug or a key leak).
    Unloadable,
}

/// What an artifact lookup found.
pub(crate) enum Lookup {
    Hit(Component),
    Missing,
    // The reason is logged where it is found; tests check it here.
    Rejected(#[cfg_attr(not(test), allow(dead_code))] Rejection),
}

/// Counters of an [`ArtifactCache`], since it was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Loads served from an artifact (nothing compiled).
    pub hits: u64,
    /// Loads that compiled (no artifact, or a rejected one).
    pub misses: u64,
    /// Artifacts found but not loaded: truncated, foreign or failing their MAC.
    pub rejected: u64,
    /// Artifacts that could not be written (a read-only or full directory).
    pub write_errors: u64,
}

/// A checked cache directory and its key. See the module documentation.
pub struct ArtifactCache {
    dir: PathBuf,
    key: hmac::Key,
    hits: AtomicU64,
    misses: AtomicU64,
    rejected: AtomicU64,
    write_errors: AtomicU64,
}

impl std::fmt::Debug for ArtifactCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ArtifactCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl ArtifactCache {
    /// Creates `dir` (mode 0700) if needed, checks that only the running user can write it, and
    /// reads its key (creating it, mode 0600, from OS randomness, the first time).
    pub fn open(dir: impl Into<PathBuf>) -> Result<ArtifactCache, CacheError> {
        let dir = dir.into();
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| CacheError::Io {
                path: dir.clone(),
                what: "cannot create the directory",
                source,
            })?;
        let meta = std::fs::metadata(&dir).map_err(|source| CacheError::Io {
            path: dir.clone(),
            what: "cannot read the directory",
            source,
        })?;
        if !meta.is_dir() {
            return Err(CacheError::NotADirectory { path: dir });
        }
        check_owner(&dir, &meta, 0o022)?;
        let key = read_or_create_key(&dir)?;
        Ok(ArtifactCache {
            dir,
            key: hmac::Key::new(hmac::HMAC_SHA256, &key),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            write_errors: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            write_errors: self.write_errors.load(Ordering::Relaxed),
        }
    }

    /// Where the artifact of a component (by its sha256) for an engine (by its compatibility key)
    /// lives.
    pub fn artifact_path(&self, engine_key: &Digest, component: &Digest) -> PathBuf {
        self.dir
            .join(format!("{}-{}.cwasm", hex(component), &hex(engine_key)[..16]))
    }

    /// Loads the artifact of `component` if there is one and it verifies; counts the outcome.
    pub(crate) fn lookup(&self, engine: &Engine, engine_key: &Digest, component: &Digest) -> Lookup {
        let found = self.read(engine, engine_key, component);
        match &found {
            Lookup::Hit(_) => self.hits.fetch_add(1, Ordering::Relaxed),
            Lookup::Missing => self.misses.fetch_add(1, Ordering::Relaxed),
            Lookup::Rejected(_) => {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                self.misses.fetch_add(1, Ordering::Relaxed)
            }
        };
        found
    }

    /// The artifact another process (`wasmop compile`) just wrote for a load already counted as a
    /// miss: loaded (verified as always) without counting it as a hit.
    pub(crate) fn take_compiled(
        &self,
        engine: &Engine,
        engine_key: &Digest,
        component: &Digest,
    ) -> Option<Component> {
        match self.read(engine, engine_key, component) {
            Lookup::Hit(component) => Some(component),
            _ => None,
        }
    }

    /// Opens, verifies and deserializes an artifact; logs why one is rejected.
    fn read(&self, engine: &Engine, engine_key: &Digest, component: &Digest) -> Lookup {
        let path = self.artifact_path(engine_key, component);
        let cannot_read = |e: std::io::Error| {
            tracing::warn!(file = %path.display(), error = %e, "compile cache: cannot read the artifact; compiling");
            Lookup::Missing
        };
        let file = match open_regular(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Lookup::Missing,
            Err(e) => return cannot_read(e),
        };
        // Used now: the last to be removed when the cache is trimmed.
        let _ = file.set_modified(std::time::SystemTime::now());
        let result = match self.verify(&file, engine_key, component) {
            Err(e) => return cannot_read(e),
            Ok(verified) => verified.and_then(|payload_len| {
                load_verified(engine, &file, payload_len).map_err(|e| {
                    tracing::warn!(file = %path.display(), error = %format!("{e:#}"), "compile cache: wasmtime refused a verified artifact");
                    Rejection::Unloadable
                })
            }),
        };
        match result {
            Ok(component) => Lookup::Hit(component),
            Err(why) => {
                tracing::warn!(file = %path.display(), reason = ?why, "compile cache: artifact rejected, not loaded; recompiling and rewriting it");
                Lookup::Rejected(why)
            }
        }
    }

    /// Checks an artifact's trailer against what its name promises, then its MAC, reading `bytes`
    /// (the open file, or memory) piece by piece; the payload's length once all checks out.
    fn verify(
        &self,
        bytes: &(impl ReadAt + ?Sized),
        engine_key: &Digest,
        component: &Digest,
    ) -> std::io::Result<Result<u64, Rejection>> {
        let len = bytes.len()?;
        let Some(signed_len) = len.checked_sub((TRAILER_LEN + MAC_LEN) as u64) else {
            return Ok(Err(Rejection::Truncated));
        };
        let mut trailer = [0u8; TRAILER_LEN + MAC_LEN];
        bytes.read_exact_at(&mut trailer, signed_len)?;
        let (fields, mac) = trailer.split_at(TRAILER_LEN);
        if &fields[..8] != MAGIC
            || fields[8..12] != FORMAT.to_le_bytes()
            || fields[12..44] != engine_key[..]
            || fields[44..76] != component[..]
        {
            return Ok(Err(Rejection::Foreign));
        }
        let declared = u64::from_le_bytes(fields[76..84].try_into().expect("8 bytes"));
        if declared != signed_len {
            return Ok(Err(if declared > signed_len {
                Rejection::Truncated
            } else {
                Rejection::Foreign
            }));
        }
        let mut hmac = hmac::Context::with_key(&self.key);
        let mut chunk = vec![0u8; (256 << 10).min(len as usize)];
        let mut at = 0;
        while at < signed_len {
            let n = chunk.len().min((signed_len - at) as usize);
            bytes.read_exact_at(&mut chunk[..n], at)?;
            hmac.update(&chunk[..n]);
            at += n as u64;
        }
        hmac.update(fields);
        let tag = hmac.sign();
        if !bool::from(subtle::ConstantTimeEq::ct_eq(tag.as_ref(), mac)) {
            return Ok(Err(Rejection::BadMac));
        }
        Ok(Ok(signed_len))
    }

    /// Removes the artifact of `component`, if there is one (a loaded one stays mapped).
    pub(crate) fn remove(&self, engine_key: &Digest, component: &Digest) {
        let _ = std::fs::remove_file(self.artifact_path(engine_key, component));
    }

    /// Writes `payload` (a serialized component) as the artifact of `component`, atomically.
    pub(crate) fn store(
        &self,
        engine_key: &Digest,
        component: &Digest,
        payload: &[u8],
    ) -> Result<PathBuf, std::io::Error> {
        let path = self.artifact_path(engine_key, component);
        let result = self.write_atomically(&path, &self.seal(engine_key, component, payload));
        if result.is_err() {
            self.write_errors.fetch_add(1, Ordering::Relaxed);
        } else {
            self.trim(DEFAULT_MAX_BYTES, &path);
        }
        result.map(|()| path)
    }

    /// The artifact bytes: payload, trailer, MAC.
    fn seal(&self, engine_key: &Digest, component: &Digest, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(payload.len() + TRAILER_LEN + MAC_LEN);
        out.extend_from_slice(payload);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(engine_key);
        out.extend_from_slice(component);
        out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        let tag = hmac::sign(&self.key, &out);
        out.extend_from_slice(tag.as_ref());
        out
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> Result<(), std::io::Error> {
        let tmp = temp_name(path)?;
        let written = (|| {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(bytes)?;
            // No fsync: after a crash a short file only reads as truncated, and is rebuilt.
            drop(f);
            std::fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written
    }
}

impl ArtifactCache {
    /// Removes the least recently used artifacts (by modification time, refreshed on every hit)
    /// while they add up to more than `max_bytes`, down to three quarters of it, never `keep`; and
    /// temporary files a crashed writer left. Best effort: a file that cannot be removed stays.
    fn trim(&self, max_bytes: u64, keep: &Path) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = std::time::SystemTime::now();
        let mut artifacts = Vec::new();
        for entry in entries.flatten() {
            let (path, Ok(meta)) = (entry.path(), entry.metadata()) else {
                continue;
            };
            let modified = meta.modified().unwrap_or(now);
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') && name.ends_with(".tmp") {
                if now.duration_since(modified).unwrap_or_default() > STALE_TEMP {
                    let _ = std::fs::remove_file(&path);
                }
            } else if meta.is_file() && name.ends_with(".cwasm") {
                artifacts.push((modified, meta.len(), path));
            }
        }
        let mut total: u64 = artifacts.iter().map(|a| a.1).sum();
        if total <= max_bytes {
            return;
        }
        artifacts.sort();
        for (_, len, path) in artifacts {
            if total <= max_bytes / 4 * 3 {
                break;
            }
            if path != keep && std::fs::remove_file(&path).is_ok() {
                tracing::info!(file = %path.display(), "compile cache: removed the least recently used artifact");
                total -= len;
            }
        }
    }
}

/// What an artifact is verified from: its open file, or bytes in memory.
trait ReadAt {
    fn len(&self) -> std::io::Result<u64>;
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()>;
}

impl ReadAt for File {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.metadata()?.len())
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn len(&self) -> std::io::Result<u64> {
        Ok(<[u8]>::len(self) as u64)
    }

    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let start = usize::try_from(offset).unwrap_or(usize::MAX);
        let piece = self
            .get(start..start.saturating_add(buf.len()))
            .ok_or(ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(piece);
        Ok(())
    }
}

/// Loads the serialized component at the start of `file`, whose MAC this installation's key just
/// authenticated: wasmtime maps that same open file where `/proc/self/fd` can name it, and reads a
/// copy of the payload otherwise.
#[allow(unsafe_code)]
fn load_verified(engine: &Engine, file: &File, payload_len: u64) -> wasmtime::Result<Component> {
    let by_fd = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    if !by_fd.exists() {
        return copy_verified(engine, file, payload_len);
    }
    // SAFETY: `Component::deserialize_file` trusts the file to hold wasmtime's own output for this
    // engine (it becomes executable code). The path names the very file (inode) opened and
    // verified by the caller, not whatever the artifact's name points at now: its HMAC-SHA256,
    // under a key only the running user can read, in a directory only it can write, was just
    // checked by `ArtifactCache::verify`, so only bytes this installation itself serialized and
    // MAC'd get here. Nothing writes an artifact in place (writers rename a new file over it), so
    // the mapping does not change underneath. wasmtime ignores the trailer after its own object and
    // still checks its header and engine compatibility.
    unsafe { Component::deserialize_file(engine, &by_fd) }
}

/// [`load_verified`] from an in-memory copy of the payload.
#[allow(unsafe_code)]
fn copy_verified(engine: &Engine, file: &File, payload_len: u64) -> wasmtime::Result<Component> {
    let mut payload = vec![0u8; usize::try_from(payload_len)?];
    FileExt::read_exact_at(file, &mut payload, 0)?;
    // SAFETY: as in `load_verified`, with a copy of the verified payload (a file changed between
    // the check and this read would need the running user's own write access to it).
    unsafe { Component::deserialize(engine, &payload) }
}

/// A unique temporary name beside `path`, in the same directory (so the rename is atomic).
pub(crate) fn temp_name(path: &Path) -> Result<PathBuf, std::io::Error> {
    let mut nonce = [0u8; 8];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| std::io::Error::other("no OS randomness"))?;
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    Ok(path.with_file_name(format!(".{name}.{}.tmp", hex(&nonce))))
}

/// Refuses `path` unless the running user owns it and none of `forbidden` mode bits is set.
fn check_owner(path: &Path, meta: &std::fs::Metadata, forbidden: u32) -> Result<(), CacheError> {
    let uid = rustix::process::geteuid().as_raw();
    if meta.uid() != uid {
        return Err(CacheError::NotOwned {
            path: path.to_path_buf(),
            owner: meta.uid(),
            uid,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & forbidden != 0 {
        return Err(CacheError::TooOpen {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

/// Opens a regular file without following a symlink in its last component.
fn open_regular(path: &Path) -> Result<File, std::io::Error> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(ErrorKind::InvalidData, "not a regular file"));
    }
    Ok(f)
}

/// The installation's key: read, checked (owner, mode 0600 or stricter, length), or created.
fn read_or_create_key(dir: &Path) -> Result<[u8; KEY_LEN], CacheError> {
    let path = dir.join(KEY_FILE);
    let io = |what| {
        let path = path.clone();
        move |source| CacheError::Io { path, what, source }
    };
    let file = match open_key(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            create_key(&path).map_err(io("cannot create the key"))?;
            open_key(&path).map_err(io("cannot read the key"))?
        }
        Err(e) => return Err(io("cannot read the key")(e)),
    };
    let meta = file.metadata().map_err(io("cannot read the key"))?;
    if !meta.is_file() {
        return Err(CacheError::BadKey {
            path,
            len: meta.len(),
        });
    }
    check_owner(&path, &meta, 0o077)?;
    let mut key = Vec::new();
    (&file)
        .take(KEY_LEN as u64 + 1)
        .read_to_end(&mut key)
        .map_err(io("cannot read the key"))?;
    key.try_into().map_err(|k: Vec<u8>| CacheError::BadKey {
        path,
        len: k.len() as u64,
    })
}

fn open_key(path: &Path) -> Result<File, std::io::Error> {
    OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Writes a fresh key to a temporary file and links it into place: two processes creating it at
/// once both end up reading the one that won, and nobody ever reads a half-written key.
fn create_key(path: &Path) -> Result<(), std::io::Error> {
    let mut key = [0u8; KEY_LEN];
    SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| std::io::Error::other("no OS randomness"))?;
    let tmp = temp_name(path)?;
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&key)?;
        f.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(()),
            other => other,
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Digest {
    ring::digest::digest(&ring::digest::SHA256, bytes)
        .as_ref()
        .try_into()
        .expect("32 bytes")
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests;
