//! The plugin directory: which `.wasm` files (and their optional `<stem>.toml` settings) it holds, by
//! content hash. Symlinks are followed, so a ConfigMap-mounted directory — whose files point through a
//! `..data` symlink that Kubernetes swaps on update — reads like a plain one, and a swap shows up as
//! changed hashes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Settings from `<stem>.toml` beside a plugin.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSettings {
    /// Passed to every reconcile as `snapshot.config`.
    #[serde(default)]
    pub config: Option<toml::Table>,
    /// Overrides the reconcile deadline (milliseconds).
    pub deadline_ms: Option<u64>,
    /// Overrides the memory cap (MiB).
    pub memory_mib: Option<u64>,
    pub max_concurrent_reconciles: Option<usize>,
    pub resync_seconds: Option<u64>,
    /// `false` calls the plugin even for a snapshot it already answered (see the engine's result
    /// cache); only for a plugin whose answer depends on more than its snapshot.
    pub cache_results: Option<bool>,
}

impl FileSettings {
    pub fn config_json(&self) -> serde_json::Value {
        match &self.config {
            Some(t) => serde_json::to_value(t).unwrap_or_default(),
            None => serde_json::json!({}),
        }
    }
}

/// One plugin file as found.
#[derive(Debug, Clone)]
pub struct Found {
    pub stem: String,
    pub wasm: PathBuf,
    pub bytes: Arc<Vec<u8>>,
    /// sha256 of the component, hex.
    pub hash: String,
    /// The settings file, parsed (or why it could not be).
    pub settings: Result<FileSettings, String>,
    /// sha256 of the settings file, when there is one.
    pub settings_hash: Option<String>,
}

impl Found {
    /// What identifies this version: the component and its settings.
    pub fn fingerprint(&self) -> (String, Option<String>) {
        (self.hash.clone(), self.settings_hash.clone())
    }
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads every `*.wasm` in `dir` (not hidden files, not the `..data` machinery itself).
pub fn scan(dir: &Path) -> std::io::Result<BTreeMap<String, Found>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(file_name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if file_name.starts_with('.') || !file_name.ends_with(".wasm") {
            continue;
        }
        // `metadata` follows symlinks: a dangling link mid-swap is skipped and seen on the next scan.
        if !std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else { continue };
        let stem = file_name.trim_end_matches(".wasm").to_string();
        let settings_path = dir.join(format!("{stem}.toml"));
        let (settings, settings_hash) = match std::fs::read(&settings_path) {
            Ok(raw) => {
                let hash = sha256_hex(&raw);
                let parsed = std::str::from_utf8(&raw)
                    .map_err(|e| e.to_string())
                    .and_then(|text| toml::from_str::<FileSettings>(text).map_err(|e| e.to_string()))
                    .map_err(|e| format!("{}: {e}", settings_path.display()));
                (parsed, Some(hash))
            }
            Err(_) => (Ok(FileSettings::default()), None),
        };
        out.insert(
            stem.clone(),
            Found {
                hash: sha256_hex(&bytes),
                bytes: Arc::new(bytes),
                stem,
                wasm: path,
                settings,
                settings_hash,
            },
        );
    }
    Ok(out)
}

/// Scans until two scans `settle` apart agree on a file, so a file still being written is not
/// loaded half-way. Files still changing are left out (the next change event brings them back).
pub async fn stable_scan(dir: &Path, settle: Duration) -> std::io::Result<BTreeMap<String, Found>> {
    let first = scan(dir)?;
    tokio::time::sleep(settle).await;
    let second = scan(dir)?;
    Ok(second
        .into_iter()
        .filter(|(stem, f)| {
            first
                .get(stem)
                .is_some_and(|g| g.fingerprint() == f.fingerprint())
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_reads_plugins_settings_and_follows_configmap_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        // The layout of a mounted ConfigMap: files are links through `..data`.
        let v1 = dir.path().join("..2026_11_23_v1");
        std::fs::create_dir(&v1).unwrap();
        std::fs::write(v1.join("a.wasm"), b"one").unwrap();
        std::fs::write(v1.join("a.toml"), "resync_seconds = 5\n[config]\nx = 1\n").unwrap();
        std::os::unix::fs::symlink("..2026_11_23_v1", dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/a.wasm", dir.path().join("a.wasm")).unwrap();
        std::os::unix::fs::symlink("..data/a.toml", dir.path().join("a.toml")).unwrap();
        std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let found = scan(dir.path()).unwrap();
        assert_eq!(found.keys().collect::<Vec<_>>(), vec!["a"]);
        let a = &found["a"];
        assert_eq!(a.hash, sha256_hex(b"one"));
        let settings = a.settings.clone().unwrap();
        assert_eq!(settings.resync_seconds, Some(5));
        assert_eq!(settings.config_json(), serde_json::json!({"x": 1}));

        // Kubernetes' update: a new timestamped directory, then `..data` swapped to it.
        let v2 = dir.path().join("..2026_11_23_v2");
        std::fs::create_dir(&v2).unwrap();
        std::fs::write(v2.join("a.wasm"), b"two").unwrap();
        std::fs::write(v2.join("a.toml"), "resync_seconds = 5\n[config]\nx = 1\n").unwrap();
        std::os::unix::fs::symlink("..2026_11_23_v2", dir.path().join("..data_tmp")).unwrap();
        std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
        let found = scan(dir.path()).unwrap();
        assert_eq!(found["a"].hash, sha256_hex(b"two"));
    }

    #[test]
    fn bad_settings_name_the_file_and_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.wasm"), b"x").unwrap();
        std::fs::write(dir.path().join("a.toml"), "deadline = 5\n").unwrap();
        let err = scan(dir.path()).unwrap()["a"].settings.clone().unwrap_err();
        assert!(err.contains("a.toml") && err.contains("deadline"), "{err}");
    }

    #[tokio::test]
    async fn files_still_being_written_are_left_for_later() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("done.wasm"), b"complete").unwrap();
        std::fs::write(dir.path().join("partial.wasm"), b"par").unwrap();
        let path = dir.path().join("partial.wasm");
        let writer = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            std::fs::write(path, b"partial but longer").unwrap();
        });
        let found = stable_scan(dir.path(), Duration::from_millis(200)).await.unwrap();
        writer.await.unwrap();
        assert_eq!(found.keys().collect::<Vec<_>>(), vec!["done"]);
    }
}
