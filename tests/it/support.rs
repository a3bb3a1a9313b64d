//! Test support: an embedded API server in a temporary data directory and a kube-rs client for it.

use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig};
use wasmop_apiserver::{ApiServer, Config};

pub struct TestServer {
    pub server: ApiServer,
    pub client: kube::Client,
    pub dir: tempfile::TempDir,
}

fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub async fn client_for(server: &ApiServer) -> kube::Client {
    install_crypto();
    let kc = Kubeconfig::from_yaml(&server.kubeconfig()).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("config");
    kube::Client::try_from(config).expect("client")
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::new(dir.path());
        config.faults = true;
        tweak(&mut config);
        let server = ApiServer::start(config).await.expect("server starts");
        let client = client_for(&server).await;
        TestServer { server, client, dir }
    }

    /// Stops the server and starts a new one on the same data directory.
    pub async fn restart(self, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let TestServer { server, dir, .. } = self;
        server.shutdown().await;
        let mut config = Config::new(dir.path());
        config.faults = true;
        tweak(&mut config);
        let server = ApiServer::start(config).await.expect("server restarts");
        let client = client_for(&server).await;
        TestServer { server, client, dir }
    }
}

/// Polls `f` until it returns Some, or panics after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A CRD for `widgets.example.com` (v1, namespaced, status subresource, a schema with required fields).
pub fn widget_crd() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList", "shortNames": ["wd"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": [{"name": "Size", "type": "integer", "jsonPath": ".spec.size"}],
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["size"],
                            "properties": {
                                "size": {"type": "integer", "minimum": 0},
                                "color": {"type": "string", "enum": ["red", "green", "blue"]},
                                "tags": {"type": "array", "items": {"type": "string"}},
                                "ports": {
                                    "type": "array",
                                    "x-kubernetes-list-type": "map",
                                    "x-kubernetes-list-map-keys": ["name"],
                                    "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}
                                },
                                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                            }
                        },
                        "status": {
                            "type": "object",
                            "properties": {
                                "phase": {"type": "string"},
                                "conditions": {
                                    "type": "array",
                                    "x-kubernetes-list-type": "map",
                                    "x-kubernetes-list-map-keys": ["type"],
                                    "items": {"type": "object", "properties": {"type": {"type": "string"}, "status": {"type": "string"}}}
                                }
                            }
                        }
                    }
                }}
            }]
        }
    })
}

/// Creates the Widget CRD and waits until it is served; returns the `ApiResource` for widgets.
pub async fn install_widgets(client: &kube::Client) -> kube::api::ApiResource {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    let crd: CustomResourceDefinition = serde_json::from_value(widget_crd()).unwrap();
    crds.create(&Default::default(), &crd).await.expect("CRD created");
    eventually(10, "the Widget CRD to be Established", || {
        let crds = crds.clone();
        async move {
            let crd = crds.get("widgets.example.com").await.ok()?;
            let established = crd
                .status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        }
    })
    .await;
    kube::api::ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Widget".into(),
        plural: "widgets".into(),
    }
}

/// The host under test: the embedded API server, the engine and the WebAssembly runtime.
pub struct Host {
    pub t: TestServer,
    pub engine: wasmop_engine::Engine,
    pub runtime: wasmop_runtime::Runtime,
}

/// Engine settings for tests: quick backoff, generous rate limit.
pub fn engine_config() -> wasmop_engine::EngineConfig {
    wasmop_engine::EngineConfig {
        backoff: wasmop_engine::BackoffConfig {
            base: Duration::from_millis(50),
            cap: Duration::from_secs(2),
        },
        rate_limit: wasmop_engine::RateLimitConfig {
            qps: 500.0,
            burst: 500,
        },
        default_concurrency: 4,
    }
}

impl Host {
    pub async fn start() -> Host {
        let t = TestServer::start().await;
        let engine = wasmop_engine::Engine::new(t.client.clone(), engine_config());
        let runtime = wasmop_runtime::Runtime::shared().expect("runtime");
        Host { t, engine, runtime }
    }

    /// Loads an example plugin by name and starts it with `settings`.
    pub async fn plugin(&self, name: &str, settings: wasmop_engine::PluginSettings) {
        let path = wasmop_example_plugins::plugin_path(name);
        let runtime = self.runtime.clone();
        let plugin =
            tokio::task::spawn_blocking(move || runtime.load(&path, wasmop_runtime::PluginLimits::default()))
                .await
                .unwrap()
                .expect("plugin loads");
        self.engine
            .add_plugin(std::sync::Arc::new(plugin), settings)
            .await
            .expect("plugin starts");
    }

    /// Applies the YAML manifests of a file (multi-document) with server-side apply.
    pub async fn apply_file(&self, path: &std::path::Path) {
        apply_yaml(
            &self.t.client,
            &std::fs::read_to_string(path).expect("manifest readable"),
        )
        .await;
    }

    pub async fn stop(self) {
        self.engine.shutdown().await;
        self.t.server.shutdown().await;
    }
}

/// Server-side applies every document of a YAML text as `test`.
pub async fn apply_yaml(client: &kube::Client, yaml: &str) {
    try_apply_yaml(client, yaml).await.expect("apply");
}

/// Like [`apply_yaml`], returning the API error instead of panicking.
pub async fn try_apply_yaml(client: &kube::Client, yaml: &str) -> Result<(), kube::Error> {
    use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
    let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(yaml)
        .map(|doc| serde::Deserialize::deserialize(doc).expect("YAML"))
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect();
    for value in docs {
        let api_version = value["apiVersion"].as_str().expect("apiVersion").to_string();
        let kind = value["kind"].as_str().expect("kind").to_string();
        let (g, v) = api_version.split_once('/').unwrap_or(("", &api_version));
        let gvk = GroupVersionKind::gvk(g, v, &kind);
        let (ar, caps) = eventually(10, "the kind to be served", || {
            let gvk = gvk.clone();
            async move { kube::discovery::pinned_kind(client, &gvk).await.ok() }
        })
        .await;
        let name = value["metadata"]["name"].as_str().expect("name").to_string();
        let api: Api<DynamicObject> = match caps.scope {
            kube::discovery::Scope::Namespaced => Api::namespaced_with(
                client.clone(),
                value["metadata"]["namespace"].as_str().unwrap_or("default"),
                &ar,
            ),
            kube::discovery::Scope::Cluster => Api::all_with(client.clone(), &ar),
        };
        api.patch(&name, &PatchParams::apply("test").force(), &Patch::Apply(&value))
            .await?;
    }
    Ok(())
}

/// Waits until the number of writes the API server committed stops changing for `quiet`.
pub async fn settle(server: &wasmop_apiserver::ApiServer, quiet: Duration, max: Duration) -> u64 {
    let deadline = tokio::time::Instant::now() + max;
    let mut last = server.write_count();
    let mut since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = server.write_count();
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= quiet {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the host did not settle within {max:?}"
        );
    }
}

/// Runs the `wasmop` binary, keeps draining its stdout (so it never writes into a closed pipe), and
/// returns it with the rest of the first stdout line that starts with `prefix`.
pub fn spawn_wasmop(
    command: &mut std::process::Command,
    prefix: &'static str,
) -> (std::process::Child, String) {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("wasmop runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(prefix) {
                let _ = tx.send(rest.trim().to_string());
            }
        }
    });
    let found = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("wasmop prints {prefix:?}"));
    (child, found)
}

/// The `wasmop` binary under test.
pub fn wasmop() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_wasmop"))
}
