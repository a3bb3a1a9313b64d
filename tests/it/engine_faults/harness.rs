//! What the engine fault tests share: the `wasmop apiserver` and `wasmop run` processes, the
//! objects a test makes and the end state the host must bring about ([`Expected`], [`check`]),
//! (the latency probe is `crate::latency`'s).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::latency::deployment;
use crate::support::{eventually, spawn_wasmop, status_request, wasmop};

pub(super) const REPLICATE_TO: &str = "wasmop.io/replicate-to";
pub(super) const FINALIZER: &str = "wasmop.io/configmap-replicator";
/// The namespaces every source is copied into.
pub(super) const TARGETS: [&str; 2] = ["ns-a", "ns-b"];
/// Where the latency probe's Deployments live.
pub(super) const PROBE_NS: &str = "probe";

// ---------------------------------------------------------------------------------------------
// Processes

/// A free TCP port on the loopback interface (free when asked; the server binds it right after).
pub(super) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .unwrap()
        .port()
}

/// Ends a child process (SIGKILL) and reaps it; a failing test leaves no process behind.
pub(super) fn end(process: &mut std::process::Child) {
    let _ = process.kill();
    let _ = process.wait();
}

/// `wasmop apiserver` as its own process on a data directory, plain HTTP.
pub(super) struct ApiChild {
    process: std::process::Child,
}

impl Drop for ApiChild {
    fn drop(&mut self) {
        end(&mut self.process);
    }
}

impl ApiChild {
    pub(super) fn start(dir: &Path, port: u16) -> ApiChild {
        let mut cmd = wasmop();
        cmd.args([
            "apiserver",
            "--insecure-http",
            "--port",
            &port.to_string(),
            "--data-dir",
        ])
        .arg(dir)
        .env("WASMOP_LOG", "error");
        let (process, _url) = spawn_wasmop(&mut cmd, "wasmop API server listening on ");
        ApiChild { process }
    }

    /// SIGKILL.
    pub(super) fn kill(self) {}
}

/// A kube-rs client from the kubeconfig a server wrote (its token stays in the data directory, so
/// it stays valid across restarts).
pub(super) async fn client_from(kubeconfig: &Path) -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let text = std::fs::read_to_string(kubeconfig).expect("the kubeconfig");
    wasmop::client_from_kubeconfig(&text).await.expect("a client")
}

/// `wasmop run` as its own process, with the example plugins named.
pub(super) struct HostChild {
    process: std::process::Child,
    status: SocketAddr,
}

impl HostChild {
    pub(super) async fn start(kubeconfig: &Path, plugins: &Path) -> HostChild {
        let mut cmd = wasmop();
        // The production backoff (200 ms doubling to 5 m); writes fast enough that the 500-object
        // burst is bound by reconciling, not by the token bucket.
        cmd.args(["run", "--status-addr", "127.0.0.1:0"])
            .args(["--write-qps", "500", "--write-burst", "500"])
            .arg("--plugins")
            .arg(plugins)
            .env("KUBECONFIG", kubeconfig)
            .env("WASMOP_LOG", "error");
        let (process, status) = spawn_wasmop(&mut cmd, "plugin status: wasmop plugins --status-addr ");
        let host = HostChild {
            process,
            status: status.parse().expect("a status address"),
        };
        eventually(60, "the host to be ready", || async {
            (status_request(host.status, "/readyz").await?.0 == 200).then_some(())
        })
        .await;
        host
    }

    /// Still running (a crash would have ended it).
    pub(super) fn alive(&mut self) -> bool {
        self.process.try_wait().expect("the host's status").is_none()
    }

    pub(super) async fn metrics(&self) -> String {
        status_request(self.status, "/metrics")
            .await
            .expect("the host's metrics")
            .1
    }

    /// SIGKILL.
    pub(super) fn kill(self) {}
}

impl Drop for HostChild {
    fn drop(&mut self) {
        end(&mut self.process);
    }
}

/// A plugin directory holding the replicator and pdb-guard.
pub(super) fn plugins() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["configmap-replicator", "pdb-guard"] {
        std::fs::copy(
            wasmop_example_plugins::plugin_path(name),
            dir.path().join(format!("{name}.wasm")),
        )
        .expect("plugin copied");
    }
    dir
}

/// The samples of the counter `name` by their `kind` label.
pub(super) fn by_kind(metrics: &str, name: &str) -> BTreeMap<String, f64> {
    metrics
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?.strip_prefix("{")?;
            let (labels, value) = rest.rsplit_once(' ')?;
            let kind = labels.split("kind=\"").nth(1)?.split('"').next()?;
            Some((kind.to_string(), value.parse().ok()?))
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// What the host must bring about

/// The objects the test made and what the host must have made of them.
#[derive(Debug, Default, Clone)]
pub(super) struct Expected {
    /// Live sources (in `default`) and the value of their `v` key.
    pub(super) sources: BTreeMap<String, String>,
    /// Sources deleted: gone once the host released them, with their copies.
    pub(super) deleted: BTreeSet<String>,
    /// Deployments in `default`, each with a PodDisruptionBudget.
    pub(super) deployments: BTreeSet<String>,
}

pub(super) fn source(name: &str, v: &str) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "default", "annotations": {REPLICATE_TO: TARGETS.join(",")}},
        "data": {"v": v},
    }))
    .unwrap()
}

/// Applies changes to sources through `client` and records them in `expected`.
pub(super) struct Changes<'a> {
    pub(super) client: &'a kube::Client,
    pub(super) expected: &'a mut Expected,
}

impl Changes<'_> {
    pub(super) fn cms(&self) -> Api<ConfigMap> {
        Api::namespaced(self.client.clone(), "default")
    }

    pub(super) async fn create(&mut self, name: &str, v: &str) {
        self.cms()
            .create(&PostParams::default(), &source(name, v))
            .await
            .unwrap_or_else(|e| panic!("create {name}: {e}"));
        self.expected.sources.insert(name.into(), v.into());
    }

    pub(super) async fn set(&mut self, name: &str, v: &str) {
        self.cms()
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"data": {"v": v}})),
            )
            .await
            .unwrap_or_else(|e| panic!("update {name}: {e}"));
        self.expected.sources.insert(name.into(), v.into());
    }

    pub(super) async fn delete(&mut self, name: &str) {
        self.cms()
            .delete(name, &DeleteParams::default())
            .await
            .unwrap_or_else(|e| panic!("delete {name}: {e}"));
        self.expected.sources.remove(name);
        self.expected.deleted.insert(name.into());
    }

    pub(super) async fn deploy(&mut self, name: &str) {
        Api::<Deployment>::namespaced(self.client.clone(), "default")
            .create(&PostParams::default(), &deployment(name))
            .await
            .unwrap_or_else(|e| panic!("create deployment {name}: {e}"));
        self.expected.deployments.insert(name.into());
    }
}

/// Every ConfigMap of every namespace, by (namespace, name).
pub(super) async fn all_config_maps(
    client: &kube::Client,
) -> Result<BTreeMap<(String, String), ConfigMap>, String> {
    let list = Api::<ConfigMap>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| e.to_string())?;
    Ok(list
        .items
        .into_iter()
        .map(|c| {
            let key = (
                c.metadata.namespace.clone().unwrap_or_default(),
                c.metadata.name.clone().unwrap_or_default(),
            );
            (key, c)
        })
        .collect())
}

pub(super) fn value(c: &ConfigMap) -> Option<&str> {
    c.data.as_ref()?.get("v").map(String::as_str)
}

/// `Ok` when the cluster shows exactly what the host must have made of `expected`; else what
/// differs (the first few).
pub(super) async fn check(client: &kube::Client, expected: &Expected) -> Result<(), String> {
    let cms = all_config_maps(client).await?;
    let mut wrong = Vec::new();
    for (name, v) in &expected.sources {
        match cms.get(&("default".into(), name.clone())) {
            None => wrong.push(format!("source {name} lost")),
            Some(c) if value(c) != Some(v) => wrong.push(format!("source {name} changed")),
            Some(c) if !c.metadata.finalizers.iter().flatten().any(|f| f == FINALIZER) => {
                wrong.push(format!("source {name} without the finalizer"))
            }
            Some(_) => {}
        }
        for ns in TARGETS {
            match cms.get(&(ns.into(), name.clone())).map(value) {
                None => wrong.push(format!("no copy {ns}/{name}")),
                Some(got) if got != Some(v) => wrong.push(format!("copy {ns}/{name} has {got:?}, not {v}")),
                Some(_) => {}
            }
        }
    }
    for name in &expected.deleted {
        if cms.contains_key(&("default".into(), name.clone())) {
            wrong.push(format!(
                "deleted source {name} still there (finalizer not released)"
            ));
        }
    }
    // Copies of nothing, or duplicates under another name, or a copy in the wrong place.
    let copies = cms.iter().filter(|(_, c)| {
        c.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key("wasmop.io/replica"))
    });
    let mut count = 0;
    for ((ns, name), _) in copies {
        count += 1;
        if !TARGETS.contains(&ns.as_str()) || !expected.sources.contains_key(name) {
            wrong.push(format!("stray copy {ns}/{name}"));
        }
    }
    if count != TARGETS.len() * expected.sources.len() {
        wrong.push(format!(
            "{count} copies, not {}",
            TARGETS.len() * expected.sources.len()
        ));
    }
    if !expected.deployments.is_empty() {
        let pdbs: BTreeSet<String> = Api::<PodDisruptionBudget>::namespaced(client.clone(), "default")
            .list(&ListParams::default())
            .await
            .map_err(|e| e.to_string())?
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        if pdbs != expected.deployments {
            wrong.push(format!(
                "budgets {pdbs:?}, deployments {:?}",
                expected.deployments
            ));
        }
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        let n = wrong.len();
        wrong.truncate(5);
        Err(format!("{n} differences, e.g. {wrong:?}"))
    }
}

/// Waits until [`check`] passes; returns how long that took, or panics with the differences.
pub(super) async fn converge(client: &kube::Client, expected: &Expected, secs: u64) -> Duration {
    let started = Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(secs) {
        match check(client, expected).await {
            Ok(()) => return started.elapsed(),
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("not converged within {secs} s: {last}");
}

pub(super) async fn namespaces(client: &kube::Client, names: &[&str]) {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in names {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns).await.expect("namespace");
    }
}

/// No object of the kinds the plugins touch keeps a wasmop finalizer.
pub(super) async fn no_wasmop_finalizer(client: &kube::Client) {
    let cms = all_config_maps(client).await.expect("a list");
    let held: Vec<_> = cms
        .iter()
        .filter(|(_, c)| {
            c.metadata
                .finalizers
                .iter()
                .flatten()
                .any(|f| f.starts_with("wasmop.io/"))
        })
        .map(|(k, _)| k.clone())
        .collect();
    assert!(held.is_empty(), "finalizers left behind on {held:?}");
    let deps = Api::<Deployment>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        deps.items.iter().all(|d| d
            .metadata
            .finalizers
            .iter()
            .flatten()
            .all(|f| !f.starts_with("wasmop.io/"))),
        "a Deployment keeps a wasmop finalizer"
    );
}

/// The names of the objects of `api`.
pub(super) async fn names<K>(api: &Api<K>) -> BTreeSet<String>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.list(&ListParams::default())
        .await
        .expect("a list")
        .items
        .iter()
        .map(|o| o.meta().name.clone().unwrap_or_default())
        .collect()
}

/// pdb-guard made exactly one budget per probe Deployment.
pub(super) async fn one_budget_per_probe(client: &kube::Client) {
    let deps = names(&Api::<Deployment>::namespaced(client.clone(), PROBE_NS)).await;
    let pdbs = names(&Api::<PodDisruptionBudget>::namespaced(client.clone(), PROBE_NS)).await;
    assert_eq!(pdbs, deps, "one budget per Deployment");
}

/// Replicas (copies) there are now.
pub(super) async fn copies(client: &kube::Client) -> usize {
    Api::<ConfigMap>::all(client.clone())
        .list_metadata(&ListParams::default().labels("wasmop.io/replica"))
        .await
        .map(|l| l.items.len())
        .unwrap_or(0)
}
