//! Offline commands for plugin authors: `wasmop test` runs one reconcile of a plugin on a snapshot
//! read from a file and prints the desired state, or one `map` call on a trigger file and prints the
//! keys (for golden tests); `wasmop inspect` prints what a plugin declares, the contract version it
//! implements and the RBAC rules the host needs to run it; `wasmop crd` prints the CRDs plugins
//! declare. None talks to a cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasmop_contract::ReconcileFailure;
use wasmop_contract::{MapFixture, Metadata, PolicyRule, Snapshot, SnapshotCache};
use wasmop_runtime::{LoadError, Plugin, PluginLimits, Runtime, RuntimeConfig, RuntimeError};

/// Why an offline command failed; every message names the file it is about.
#[derive(Debug, thiserror::Error)]
pub enum OfflineError {
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("loading the plugin panicked")]
    Panicked(#[source] tokio::task::JoinError),
    #[error("reading the {what} {file}")]
    Read {
        what: &'static str,
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing the {what} {file}")]
    Parse {
        what: String,
        file: String,
        #[source]
        source: serde_yaml::Error,
    },
    #[error("{verb} {file}")]
    Call {
        verb: &'static str,
        file: String,
        #[source]
        source: ReconcileFailure,
    },
    #[error("{file}: {reason}")]
    Crd { file: String, reason: String },
    #[error("writing YAML")]
    Yaml(#[from] serde_yaml::Error),
}

/// Limits on every call of a plugin (shared by the commands that run plugins).
#[derive(Debug, Clone, Args)]
pub struct PluginLimitsArgs {
    /// Wall-clock time one reconcile may take, e.g. `2s`, `500ms`, `1m`.
    #[arg(long, env = "WASMOP_DEADLINE", default_value = "2s", value_parser = parse_duration)]
    pub deadline: Duration,
    /// Linear memory one reconcile may use, e.g. `64Mi`, `1Gi`, `100M` or bytes.
    #[arg(long, env = "WASMOP_MEMORY", default_value = "64Mi", value_parser = parse_bytes)]
    pub memory: u64,
    /// The size one answer of a plugin may have (its JSON documents and other strings together),
    /// e.g. `8Mi`; a larger answer fails that reconcile, and nothing of it is written.
    #[arg(long, env = "WASMOP_MAX_ANSWER", default_value = "8Mi", value_parser = parse_bytes)]
    pub max_answer: u64,
}

impl PluginLimitsArgs {
    pub fn limits(&self) -> PluginLimits {
        PluginLimits {
            deadline: self.deadline,
            memory_bytes: self.memory,
            answer_bytes: self.max_answer,
        }
    }
}

/// `wasmop test`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// The plugin: a `.wasm` component of the wasmop:reconciler world.
    #[arg(env = "WASMOP_TEST_PLUGIN")]
    pub plugin: PathBuf,
    /// The snapshot to reconcile, in YAML (or JSON): `object`, and optionally `children`,
    /// `lookups`, `reason` (default `change`), `attempt` and `config`. The cache the plugin reads
    /// holds exactly the snapshot's objects.
    #[arg(long, env = "WASMOP_TEST_SNAPSHOT", required_unless_present = "trigger")]
    pub snapshot: Option<PathBuf>,
    /// Instead of a reconcile, one `map` call on this trigger, in YAML (or JSON): `lookup` (the
    /// index of a triggering lookup), `object`, optionally `deleted`, and `cache`, the objects the
    /// plugin's cache holds. Prints the keys of the objects to reconcile.
    #[arg(long, env = "WASMOP_TEST_TRIGGER", conflicts_with = "snapshot")]
    pub trigger: Option<PathBuf>,
    #[command(flatten)]
    pub limits: PluginLimitsArgs,
    /// The compile cache, as a host uses it: a plugin tested again (one run per fixture) is not
    /// compiled again (a Python or JavaScript component takes seconds).
    #[command(flatten)]
    pub cache: crate::cli::CacheArgs,
}

/// `wasmop inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The plugin: a `.wasm` component of the wasmop:reconciler world.
    #[arg(env = "WASMOP_INSPECT_PLUGIN")]
    pub plugin: PathBuf,
}

/// `wasmop crd`.
#[derive(Debug, Clone, Args)]
pub struct CrdArgs {
    /// The plugins: `.wasm` components of the wasmop:reconciler world (with the variable,
    /// comma-separated).
    #[arg(env = "WASMOP_CRD_PLUGINS", required = true, num_args = 1.., value_delimiter = ',')]
    pub plugins: Vec<PathBuf>,
}

/// Runs one reconcile (or one `map` call) and prints the desired state (or the keys) as YAML on
/// stdout; a failed call is an error (non-zero exit, the failure on stderr).
pub async fn test(args: TestArgs) -> Result<(), OfflineError> {
    let runtime = Runtime::new(args.cache.compiling_in_child().runtime_config())?;
    let plugin = load(&runtime, &args.plugin, args.limits.limits()).await?;
    if let Some(path) = &args.trigger {
        let fixture: MapFixture = read_yaml(path, "trigger")?;
        let keys = plugin
            .map(&fixture.trigger, Arc::new(fixture.cache()))
            .await
            .map_err(|source| OfflineError::Call {
                verb: "mapping",
                file: path.display().to_string(),
                source,
            })?;
        print!("{}", serde_yaml::to_string(&keys)?);
        return Ok(());
    }
    // clap requires one of --snapshot and --trigger.
    let path = args.snapshot.as_deref().expect("--snapshot or --trigger");
    let snapshot: Snapshot = read_yaml(path, "snapshot")?;
    let cache = Arc::new(SnapshotCache::new(&snapshot));
    let desired = plugin
        .reconcile(&snapshot, cache)
        .await
        .map_err(|source| OfflineError::Call {
            verb: "reconciling",
            file: path.display().to_string(),
            source,
        })?;
    print!("{}", serde_yaml::to_string(&desired)?);
    Ok(())
}

/// What `inspect` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inspection<'a> {
    /// `0.2.0`, or `0.1.0` for a plugin built against the first contract.
    contract_version: &'static str,
    metadata: &'a Metadata,
    field_manager: String,
    /// The finalizer put on objects whose desired state asks for one.
    finalizer_name: String,
    rbac_rules: Vec<PolicyRule>,
}

/// Prints a plugin's contract version, metadata, names and the RBAC rules it implies as YAML.
pub async fn inspect(args: InspectArgs) -> Result<(), OfflineError> {
    let plugin = load(&runtime()?, &args.plugin, PluginLimits::default()).await?;
    let m = plugin.metadata();
    let out = Inspection {
        contract_version: plugin.contract_version(),
        metadata: m,
        field_manager: m.field_manager(),
        finalizer_name: m.finalizer_name(),
        rbac_rules: m.rbac_rules(),
    };
    print!("{}", serde_yaml::to_string(&out)?);
    Ok(())
}

/// Prints the CRDs the plugins declare (`metadata.crds`) as one YAML stream, each document after a
/// `---`. A plugin that declares none, or a CRD that is not YAML, is an error naming the file.
pub async fn crd(args: CrdArgs) -> Result<(), OfflineError> {
    let runtime = runtime()?;
    let mut out = String::new();
    for path in &args.plugins {
        let plugin = load(&runtime, path, PluginLimits::default()).await?;
        out.push_str(&crd_stream(path, plugin.metadata())?);
    }
    print!("{out}");
    Ok(())
}

/// One plugin's CRDs as YAML documents, each after a `---`.
fn crd_stream(path: &Path, metadata: &Metadata) -> Result<String, OfflineError> {
    let file = path.display().to_string();
    if metadata.crds.is_empty() {
        return Err(OfflineError::Crd {
            file,
            reason: format!(
                "the plugin {} declares no CRDs (metadata.crds is empty)",
                metadata.name
            ),
        });
    }
    let mut out = String::new();
    for (i, text) in metadata.crds.iter().enumerate() {
        let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|source| OfflineError::Parse {
            what: format!("metadata.crds[{i}] (a YAML or JSON document) of"),
            file: file.clone(),
            source,
        })?;
        if doc.get("kind").and_then(serde_yaml::Value::as_str) != Some("CustomResourceDefinition") {
            return Err(OfflineError::Crd {
                file,
                reason: format!("metadata.crds[{i}] is not a CustomResourceDefinition"),
            });
        }
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&doc)?);
    }
    Ok(out)
}

/// A runtime for the offline commands that load plugins once (no compile cache).
pub(crate) fn runtime() -> Result<Runtime, OfflineError> {
    Ok(Runtime::new(RuntimeConfig::default())?)
}

pub(crate) async fn load(
    runtime: &Runtime,
    path: &Path,
    limits: PluginLimits,
) -> Result<Plugin, OfflineError> {
    let (runtime, path) = (runtime.clone(), path.to_path_buf());
    let loaded = tokio::task::spawn_blocking(move || runtime.load(&path, limits))
        .await
        .map_err(OfflineError::Panicked)?;
    Ok(loaded?)
}

fn read_yaml<T: DeserializeOwned>(path: &Path, what: &'static str) -> Result<T, OfflineError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| OfflineError::Read {
        what,
        file: file.clone(),
        source,
    })?;
    serde_yaml::from_str(&text).map_err(|source| OfflineError::Parse {
        what: what.to_string(),
        file,
        source,
    })
}

/// `500ms`, `2s`, `1.5s`, `1m`, or a number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 2s, 500ms, 1m)"))?;
    let seconds = match unit.trim() {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        other => return Err(format!("unknown duration unit {other:?} (use ms, s or m)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{s:?}: {e}"))
}

/// `64Mi`, `1Gi`, `512Ki`, `100M`, `1G`, or a number of bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 64Mi, 1Gi, or bytes)"))?;
    let factor: u64 = match unit.trim().trim_end_matches('B') {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "k" | "K" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        other => return Err(format!("unknown size unit {other:?} (use Ki, Mi, Gi, K, M or G)")),
    };
    n.checked_mul(factor).ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_parse() {
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("fast").is_err());
        assert_eq!(parse_bytes("64Mi"), Ok(64 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("100M"), Ok(100_000_000));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("64Xi").is_err());
        assert!(parse_bytes("99999999999999Gi").is_err());
    }

    #[test]
    fn crds_print_as_a_yaml_stream_and_errors_name_the_file() {
        use wasmop_contract::Gvk;
        let path = Path::new("plugins/db.wasm");
        let m = Metadata::new("db", "1.0.0", Gvk::new("example.com", "v1", "Database"));
        let err = crd_stream(path, &m).unwrap_err().to_string();
        assert_eq!(
            err,
            "plugins/db.wasm: the plugin db declares no CRDs (metadata.crds is empty)"
        );
        let m = m
            .crd(r#"{"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "a.example.com"}}"#)
            .crd("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: b.example.com}\n");
        let out = crd_stream(path, &m).unwrap();
        assert_eq!(out.matches("---\n").count(), 2, "{out}");
        assert!(
            out.starts_with("---\napiVersion: apiextensions.k8s.io/v1\n"),
            "{out}"
        );
        assert!(out.contains("name: b.example.com"), "{out}");
        let bad = Metadata::new("db", "1.0.0", Gvk::new("", "v1", "ConfigMap")).crd("kind: ConfigMap");
        assert_eq!(
            crd_stream(path, &bad).unwrap_err().to_string(),
            "plugins/db.wasm: metadata.crds[0] is not a CustomResourceDefinition"
        );
    }
}
