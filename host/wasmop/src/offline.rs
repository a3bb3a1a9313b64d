//! Offline commands for plugin authors: `wasmop test` runs one reconcile of a plugin on a snapshot
//! read from a file and prints the desired state (for golden tests); `wasmop inspect` prints what a
//! plugin declares and the RBAC rules the host needs to run it. Neither talks to a cluster.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Serialize;
use serde_json::Value;
use wasmop_apimachinery::selector::LabelSelector;
use wasmop_contract::{CacheReader, Gvk, Metadata, PolicyRule, Snapshot};
use wasmop_runtime::{Plugin, PluginLimits, Runtime, RuntimeConfig};

/// Limits on every call of a plugin (shared by the commands that run plugins).
#[derive(Debug, Clone, Args)]
pub struct PluginLimitsArgs {
    /// Wall-clock time one reconcile may take, e.g. `2s`, `500ms`, `1m`.
    #[arg(long, env = "WASMOP_DEADLINE", default_value = "2s", value_parser = parse_duration)]
    pub deadline: Duration,
    /// Linear memory one reconcile may use, e.g. `64Mi`, `1Gi`, `100M` or bytes.
    #[arg(long, env = "WASMOP_MEMORY", default_value = "64Mi", value_parser = parse_bytes)]
    pub memory: u64,
}

impl PluginLimitsArgs {
    pub fn limits(&self) -> PluginLimits {
        PluginLimits {
            deadline: self.deadline,
            memory_bytes: self.memory,
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
    #[arg(long, env = "WASMOP_TEST_SNAPSHOT")]
    pub snapshot: PathBuf,
    #[command(flatten)]
    pub limits: PluginLimitsArgs,
}

/// `wasmop inspect`.
#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// The plugin: a `.wasm` component of the wasmop:reconciler world.
    #[arg(env = "WASMOP_INSPECT_PLUGIN")]
    pub plugin: PathBuf,
}

/// Runs one reconcile and prints the desired state as YAML on stdout; a failed reconcile is an
/// error (non-zero exit, the failure on stderr).
pub async fn test(args: TestArgs) -> anyhow::Result<()> {
    let snapshot = read_snapshot(&args.snapshot)?;
    let plugin = load(&args.plugin, args.limits.limits()).await?;
    let cache = Arc::new(SnapshotCache::new(&snapshot));
    let desired = plugin
        .reconcile(&snapshot, cache)
        .await
        .with_context(|| format!("reconciling {}", args.snapshot.display()))?;
    print!("{}", serde_yaml::to_string(&desired)?);
    Ok(())
}

/// What `inspect` prints.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Inspection<'a> {
    metadata: &'a Metadata,
    field_manager: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    finalizer_name: Option<String>,
    rbac_rules: Vec<PolicyRule>,
}

/// Prints a plugin's metadata and the RBAC rules it implies as YAML.
pub async fn inspect(args: InspectArgs) -> anyhow::Result<()> {
    let plugin = load(&args.plugin, PluginLimits::default()).await?;
    let m = plugin.metadata();
    let out = Inspection {
        metadata: m,
        field_manager: m.field_manager(),
        finalizer_name: m.finalizer.then(|| m.finalizer_name()),
        rbac_rules: m.rbac_rules(),
    };
    print!("{}", serde_yaml::to_string(&out)?);
    Ok(())
}

async fn load(path: &Path, limits: PluginLimits) -> anyhow::Result<Plugin> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        // One plugin at a time: a small pool is enough and reserves less address space.
        let runtime = Runtime::new(RuntimeConfig {
            max_instances: 4,
            ..RuntimeConfig::default()
        })?;
        anyhow::Ok(runtime.load(&path, limits)?)
    })
    .await?
}

fn read_snapshot(path: &Path) -> anyhow::Result<Snapshot> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading the snapshot {}", path.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("parsing the snapshot {}", path.display()))
}

/// A cache holding the snapshot's objects (the primary object, its children and the lookups'
/// results), as the host's cache would.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    objects: Vec<Value>,
}

impl SnapshotCache {
    pub fn new(snapshot: &Snapshot) -> SnapshotCache {
        let mut objects: Vec<Value> = Vec::new();
        let all = std::iter::once(&snapshot.object)
            .chain(&snapshot.children)
            .chain(snapshot.lookups.iter().flat_map(|l| &l.objects));
        let same = |a: &Value, b: &Value| {
            kind_of(a) == kind_of(b) && namespace(a) == namespace(b) && name(a) == name(b)
        };
        for o in all {
            if !objects.iter().any(|v| same(v, o)) {
                objects.push(o.clone());
            }
        }
        SnapshotCache { objects }
    }
}

fn kind_of(o: &Value) -> Gvk {
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    Gvk::new(group, version, o["kind"].as_str().unwrap_or_default())
}

fn is(o: &Value, kind: &Gvk) -> bool {
    o["apiVersion"].as_str() == Some(kind.api_version().as_str())
        && o["kind"].as_str() == Some(kind.kind.as_str())
}

fn namespace(o: &Value) -> Option<&str> {
    o["metadata"]["namespace"].as_str().filter(|s| !s.is_empty())
}

fn name(o: &Value) -> Option<&str> {
    o["metadata"]["name"].as_str()
}

impl CacheReader for SnapshotCache {
    fn get(&self, kind: &Gvk, ns: Option<&str>, n: &str) -> Option<Value> {
        self.objects
            .iter()
            .find(|o| is(o, kind) && namespace(o) == ns && name(o) == Some(n))
            .cloned()
    }

    fn list(&self, kind: &Gvk, ns: Option<&str>, label_selector: Option<&str>) -> Vec<Value> {
        let selector = match label_selector.map(LabelSelector::parse).transpose() {
            Ok(s) => s.unwrap_or_else(LabelSelector::everything),
            Err(e) => {
                tracing::warn!("invalid label selector {label_selector:?}: {e}");
                return Vec::new();
            }
        };
        self.objects
            .iter()
            .filter(|o| is(o, kind) && (ns.is_none() || namespace(o) == ns))
            .filter(|o| selector.matches(o["metadata"]["labels"].as_object()))
            .cloned()
            .collect()
    }
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
    use serde_json::json;

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
    fn the_snapshot_cache_answers_from_the_snapshot() {
        let snapshot: Snapshot = serde_yaml::from_str(
            r#"
object: {apiVersion: example.com/v1, kind: Widget, metadata: {name: w, namespace: demo}}
children:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: w-config, namespace: demo, labels: {app: w}}}
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: other, namespace: demo}}
lookups:
  - lookup: {kind: {group: "", version: v1, kind: Secret}}
    objects:
      - {apiVersion: v1, kind: Secret, metadata: {name: s, namespace: prod}}
reason: change
"#,
        )
        .unwrap();
        let cache = SnapshotCache::new(&snapshot);
        let cm = Gvk::new("", "v1", "ConfigMap");
        assert_eq!(
            cache.get(&cm, Some("demo"), "w-config").unwrap()["metadata"]["labels"],
            json!({"app": "w"})
        );
        assert!(cache.get(&cm, None, "w-config").is_none());
        assert!(
            cache
                .get(&Gvk::new("example.com", "v1", "Widget"), Some("demo"), "w")
                .is_some()
        );
        assert_eq!(cache.list(&cm, Some("demo"), None).len(), 2);
        assert_eq!(cache.list(&cm, None, Some("app=w")).len(), 1);
        assert_eq!(cache.list(&cm, Some("prod"), None).len(), 0);
        assert_eq!(cache.list(&Gvk::new("", "v1", "Secret"), None, None).len(), 1);
        assert!(cache.list(&cm, None, Some("app in (")).is_empty());
    }
}
