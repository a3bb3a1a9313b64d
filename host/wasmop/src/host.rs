//! `wasmop run` and `wasmop dev`: the host proper — a kube client, the reconcile engine, and the
//! plugins loaded into the WebAssembly runtime. `dev` also starts the embedded API server and fills
//! it with the example CRDs, plugins and sample objects.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::discovery::Scope;
use wasmop_engine::Engine;
use wasmop_runtime::{Runtime, RuntimeConfig};

use crate::cli::{CacheArgs, DevArgs, EngineArgs, PluginLimitsArgs, RunArgs, StatusArgs};
use crate::plugins::manager::PluginManager;
use crate::plugins::status;

/// The engine, the runtime and the plugin directory manager with its status endpoint, running until
/// Ctrl-C or SIGTERM.
struct Host {
    engine: Arc<Engine>,
    manager: Arc<PluginManager>,
    stop: tokio::sync::watch::Sender<bool>,
    watcher: Option<tokio::task::JoinHandle<()>>,
    status_addr: std::net::SocketAddr,
}

impl Host {
    async fn start(
        client: kube::Client,
        engine: &EngineArgs,
        limits: &PluginLimitsArgs,
        cache: &CacheArgs,
        status: &StatusArgs,
        dir: PathBuf,
    ) -> anyhow::Result<Host> {
        if !dir.is_dir() {
            bail!("the plugin directory {} does not exist", dir.display());
        }
        let engine = Arc::new(Engine::new(client, engine.config()));
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: cache.dir(),
            ..RuntimeConfig::default()
        })
        .context("starting the WebAssembly runtime")?;
        let manager = Arc::new(PluginManager::new(runtime, engine.clone(), dir, limits.limits()));
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let status_addr = status::serve(status.status_addr, manager.clone(), stop_rx)
            .await
            .with_context(|| format!("serving the status endpoint on {}", status.status_addr))?;
        Ok(Host {
            engine,
            manager,
            stop,
            watcher: None,
            status_addr,
        })
    }

    /// Loads what the directory holds now, then follows its changes.
    async fn watch(&mut self) {
        self.manager.sync().await;
        self.watcher = Some(tokio::spawn(self.manager.clone().watch(self.stop.subscribe())));
    }

    async fn stop(self) {
        self.stop.send_replace(true);
        if let Some(w) = self.watcher {
            let _ = w.await;
        }
        self.engine.shutdown().await;
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("connecting to the cluster (kubeconfig or in-cluster)")?;
    let mut host = Host::start(
        client,
        &args.engine,
        &args.limits,
        &args.cache,
        &args.status,
        args.plugins.clone(),
    )
    .await?;
    host.watch().await;
    println!("wasmop host running with plugins from {}", args.plugins.display());
    println!("plugin status: wasmop plugins --status-addr {}", host.status_addr);
    crate::shutdown_signal().await;
    host.stop().await;
    Ok(())
}

/// A kube client for a kubeconfig document.
pub async fn client_from_kubeconfig(yaml: &str) -> anyhow::Result<kube::Client> {
    let kc = Kubeconfig::from_yaml(yaml)?;
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

/// Server-side applies every object of the YAML files in `dir` (multi-document files allowed).
pub async fn apply_manifests(client: &kube::Client, dir: &Path, manager: &str) -> anyhow::Result<usize> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    let mut applied = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        // Parse the whole file first: the YAML parser must not be held across an await.
        let docs = serde_yaml::Deserializer::from_str(&text)
            .map(|doc| {
                serde::Deserialize::deserialize(doc).with_context(|| format!("parsing {}", file.display()))
            })
            .collect::<anyhow::Result<Vec<serde_json::Value>>>()?;
        for value in docs.into_iter().filter(|v| !v.is_null()) {
            let obj: DynamicObject = serde_json::from_value(value.clone())
                .with_context(|| format!("an object in {}", file.display()))?;
            let types = obj
                .types
                .clone()
                .with_context(|| format!("an object without apiVersion/kind in {}", file.display()))?;
            let (group, version) = types
                .api_version
                .split_once('/')
                .unwrap_or(("", &types.api_version));
            let gvk = GroupVersionKind::gvk(group, version, &types.kind);
            let (ar, caps) = wait_for_kind(client, &gvk).await?;
            let name = obj
                .metadata
                .name
                .clone()
                .with_context(|| format!("an object without a name in {}", file.display()))?;
            let api: Api<DynamicObject> = match (&caps.scope, obj.metadata.namespace.as_deref()) {
                (Scope::Namespaced, ns) => Api::namespaced_with(client.clone(), ns.unwrap_or("default"), &ar),
                (Scope::Cluster, _) => Api::all_with(client.clone(), &ar),
            };
            api.patch(&name, &PatchParams::apply(manager).force(), &Patch::Apply(&value))
                .await
                .with_context(|| format!("applying {} {name} from {}", types.kind, file.display()))?;
            applied += 1;
        }
    }
    Ok(applied)
}

/// Resolves a kind, waiting a little for CRDs that were just created.
async fn wait_for_kind(
    client: &kube::Client,
    gvk: &GroupVersionKind,
) -> anyhow::Result<(kube::api::ApiResource, kube::discovery::ApiCapabilities)> {
    let mut last = None;
    for _ in 0..50 {
        match kube::discovery::pinned_kind(client, gvk).await {
            Ok(found) => return Ok(found),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    bail!(
        "kind {}/{} {} is not served: {}",
        gvk.group,
        gvk.version,
        gvk.kind,
        last.map(|e| e.to_string()).unwrap_or_default()
    )
}

pub async fn dev(args: DevArgs) -> anyhow::Result<()> {
    let server = wasmop_apiserver::ApiServer::start(args.apiserver.config())
        .await
        .with_context(|| {
            format!(
                "starting the embedded API server in {}",
                args.apiserver.data_dir.display()
            )
        })?;
    let client = client_from_kubeconfig(&server.kubeconfig()).await?;
    let crds = apply_manifests(&client, &wasmop_example_plugins::crds_dir(), "wasmop-dev").await?;
    let dir = args
        .plugins
        .clone()
        .unwrap_or_else(wasmop_example_plugins::plugins_dir);
    let mut host = Host::start(
        client.clone(),
        &args.engine,
        &args.limits,
        &args.cache,
        &args.status,
        dir.clone(),
    )
    .await?;
    host.watch().await;
    let plugins = host.manager.status().await.len();
    let samples = apply_manifests(&client, &wasmop_example_plugins::samples_dir(), "wasmop-dev").await?;
    let kubeconfig =
        std::path::absolute(server.kubeconfig_path()).unwrap_or_else(|_| server.kubeconfig_path().into());
    println!(
        "wasmop dev: API server {} with {crds} CRD(s), {plugins} plugins from {}, {samples} sample objects",
        server.url(),
        dir.display()
    );
    println!("kubeconfig: {}", kubeconfig.display());
    println!("point kubectl at it:  export KUBECONFIG={}", kubeconfig.display());
    println!("then try:             kubectl get databases,statefulsets,services,configmaps,pdb -A");
    println!(
        "plugin status:        wasmop plugins --status-addr {}",
        host.status_addr
    );
    crate::shutdown_signal().await;
    host.stop().await;
    server.shutdown().await;
    Ok(())
}
