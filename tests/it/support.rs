//! Test support: an embedded API server in a temporary data directory and a kube-rs client for it; a
//! host started in-process with the `wasmop` library; the `wasmop` binary for CLI tests.

use std::time::Duration;

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
    wasmop::client_from_kubeconfig(&server.kubeconfig())
        .await
        .expect("a client for the kubeconfig")
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

/// Host settings for tests: quick backoff, generous rate limit, the default plugin limits, the
/// shared compile cache, a status endpoint on a free port.
pub fn host_args() -> wasmop::HostArgs {
    let limits = wasmop_runtime::PluginLimits::default();
    wasmop::HostArgs {
        engine: wasmop::cli::EngineArgs {
            write_qps: 500.0,
            write_burst: 500,
            backoff_base: Duration::from_millis(50),
            backoff_cap: Duration::from_secs(2),
            concurrency: 4,
        },
        limits: wasmop::cli::PluginLimitsArgs {
            deadline: limits.deadline,
            memory: limits.memory_bytes,
            max_answer: limits.answer_bytes,
        },
        cache: wasmop::cli::CacheArgs {
            cache_dir: None,
            no_cache: false,
            instance_pool: 0,
            compiler: None,
            max_plugin_size: wasmop_runtime::CompileLimits::DEFAULT_MAX_COMPONENT_BYTES,
            compile_timeout: wasmop_runtime::CompileLimits::DEFAULT_TIMEOUT,
            compile_memory: wasmop_runtime::CompileLimits::DEFAULT_MEMORY_BYTES,
        },
        status: wasmop::cli::StatusArgs {
            status_addr: "127.0.0.1:0".parse().expect("address"),
            liveness_timeout: Duration::from_secs(10),
        },
    }
}

/// The host under test, in-process as `wasmop run` starts it: the embedded API server, and a
/// [`wasmop::Host`] loading the plugins of a directory of its own.
pub struct Host {
    pub t: TestServer,
    pub host: wasmop::Host,
    /// The host's engine, for tests that look into it or hand it plugins themselves.
    pub engine: std::sync::Arc<wasmop_engine::Engine>,
    pub plugins: tempfile::TempDir,
}

impl Host {
    pub async fn start() -> Host {
        Host::start_with_args(&host_args()).await
    }

    /// The same with these host arguments.
    pub async fn start_with_args(args: &wasmop::HostArgs) -> Host {
        let t = TestServer::start().await;
        let plugins = tempfile::tempdir().expect("tempdir");
        let host = wasmop::Host::start(t.client.clone(), args, plugins.path())
            .await
            .expect("host starts");
        let engine = host.engine().clone();
        Host {
            t,
            host,
            engine,
            plugins,
        }
    }

    /// Puts an example (or test) plugin by name into the plugin directory, with `settings`, and
    /// loads it as the host does (see [`Host::plugin_file`]).
    pub async fn plugin(&self, name: &str, settings: wasmop_engine::PluginSettings) {
        self.plugin_file(&wasmop_example_plugins::plugin_path(name), settings)
            .await;
    }

    /// Copies a plugin file into the plugin directory, writes `settings` beside it as
    /// `<stem>.toml`, and has the host read the directory; panics unless the plugin loaded.
    pub async fn plugin_file(&self, path: &std::path::Path, settings: wasmop_engine::PluginSettings) {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a plugin file name");
        let dir = self.plugins.path();
        if let Some(toml) = settings_toml(&settings) {
            std::fs::write(dir.join(format!("{stem}.toml")), toml).expect("settings written");
        }
        std::fs::copy(path, dir.join(format!("{stem}.wasm"))).expect("plugin copied");
        self.host.sync().await;
        let file = format!("{stem}.wasm");
        let status = self.host.manager().status().await;
        let s = status
            .iter()
            .find(|s| s.file.ends_with(&file))
            .unwrap_or_else(|| panic!("{file} not loaded: {status:?}"));
        assert_ne!(s.state, wasmop::State::Failed, "{file}: {:?}", s.last_error);
    }

    /// A plugin loaded with the shared runtime and the default limits, for a test to hand to the
    /// engine itself.
    pub fn load(&self, path: &std::path::Path) -> wasmop_runtime::Plugin {
        wasmop_runtime::Runtime::shared()
            .expect("runtime")
            .load(path, wasmop_runtime::PluginLimits::default())
            .expect("plugin loads")
    }

    /// Applies the example plugins' CRDs.
    pub async fn apply_crds(&self) {
        wasmop::apply_manifests(&self.t.client, &wasmop_example_plugins::crds_dir(), "test")
            .await
            .expect("CRDs applied");
    }

    pub async fn stop(self) {
        self.host.stop().await;
        self.t.server.shutdown().await;
    }
}

/// The settings file (`<stem>.toml`) that gives a plugin `settings`; `None` for the defaults.
fn settings_toml(settings: &wasmop_engine::PluginSettings) -> Option<String> {
    let mut table = toml::Table::new();
    if let Some(n) = settings.max_concurrent_reconciles {
        table.insert("max_concurrent_reconciles".into(), (n as i64).into());
    }
    if let Some(resync) = settings.resync {
        assert_eq!(resync.subsec_nanos(), 0, "resync is set in whole seconds");
        table.insert("resync_seconds".into(), (resync.as_secs() as i64).into());
    }
    if settings.config.as_object().is_some_and(|c| !c.is_empty()) {
        table.insert(
            "config".into(),
            toml::Value::try_from(&settings.config).expect("config as TOML"),
        );
    }
    (!table.is_empty()).then(|| toml::to_string(&table).expect("TOML"))
}

/// The body of `GET path` on a host's status endpoint.
pub async fn status_get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("status endpoint");
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    raw.split_once("\r\n\r\n")
        .expect("an HTTP response")
        .1
        .to_string()
}

/// `GET path` on a status endpoint: the status code and body; `None` if nobody answers (in 5 s).
pub async fn status_request(addr: std::net::SocketAddr, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut raw = String::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut raw))
        .await
        .ok()?
        .ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    Some((head.split_whitespace().nth(1)?.parse().ok()?, body.to_string()))
}

/// The sum of the samples of metric `name` (every label set) whose labels contain `labels`, in a
/// Prometheus text exposition.
pub fn metric_sum(metrics: &str, name: &str, labels: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, ""));
            (n == name && rest.contains(labels)).then(|| value.parse::<f64>().ok())?
        })
        .sum()
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

/// The example database-operator's `Database` kind.
pub fn databases() -> kube::api::ApiResource {
    kube::api::ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Database".into(),
        plural: "databases".into(),
    }
}
