//! The host as deployed, against an API server that enforces RBAC: it runs as the deploy
//! ServiceAccount (`wasmop-system/wasmop`, a token from the TokenRequest API) with exactly the
//! generated `deploy/rbac.yaml`, and every example plugin converges. When a permission is taken
//! away, the plugin that needs it reports the 403 once — one Warning event on the object, naming
//! what is missing, and the same in `wasmop plugins` — while the other plugins keep working.

use std::path::{Path, PathBuf};
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{Value, json};

use crate::support::{TestServer, apply_yaml, databases, eventually, host_args, status_get, wasmop};

const PLUGINS: [&str; 3] = ["database-operator", "configmap-replicator", "pdb-guard"];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy_file(name: &str) -> String {
    std::fs::read_to_string(repo().join("deploy").join(name)).expect("a deploy/ file")
}

/// A client for the server that authenticates with `token` instead of the admin's.
async fn client_with_token(t: &TestServer, token: &str) -> kube::Client {
    let mut kc = Kubeconfig::from_yaml(&t.server.kubeconfig()).expect("kubeconfig");
    for u in &mut kc.auth_infos {
        if let Some(info) = u.auth_info.as_mut() {
            info.token = Some(token.to_string().into());
        }
    }
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("client config");
    kube::Client::try_from(config).expect("client")
}

fn database(name: &str) -> String {
    format!(
        "apiVersion: example.com/v1\nkind: Database\nmetadata: {{name: {name}, namespace: demo}}\nspec: {{replicas: 1, image: 'postgres:16', storage: 1Gi}}\n"
    )
}

fn replicated(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: {name}, namespace: demo, annotations: {{wasmop.io/replicate-to: copies}}}}\ndata: {{color: blue}}\n"
    )
}

fn deployment(name: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: demo}}\nspec:\n  replicas: 3\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec: {{containers: [{{name: web, image: nginx}}]}}\n"
    )
}

/// The database-operator's answer to a Database: its StatefulSet, Service and ConfigMap, and a
/// status.
async fn database_converges(client: &kube::Client, name: &str) {
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "demo");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "demo");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "demo");
    let dbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "demo", &databases());
    eventually(60, &format!("Database {name} to converge"), || async {
        sts.get_opt(name).await.unwrap()?;
        svcs.get_opt(name).await.unwrap()?;
        cms.get_opt(name).await.unwrap()?;
        let db = dbs.get(name).await.unwrap();
        db.data["status"]["phase"].as_str().map(|_| ())
    })
    .await;
}

/// The configmap-replicator's answer: a copy in namespace `copies`.
async fn copy_converges(client: &kube::Client, name: &str) {
    let copies: Api<ConfigMap> = Api::namespaced(client.clone(), "copies");
    eventually(60, &format!("a copy of ConfigMap {name}"), || async {
        let c = copies.get_opt(name).await.unwrap()?;
        (c.data?.get("color").map(String::as_str) == Some("blue")).then_some(())
    })
    .await;
}

/// The Warning events about Deployment `name` in `demo`.
async fn warnings_about(client: &kube::Client, name: &str) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), "demo");
    tokio::time::timeout(Duration::from_secs(10), events.list(&Default::default()))
        .await
        .expect("the events within 10s")
        .unwrap()
        .items
        .into_iter()
        .filter(|e| {
            e.type_.as_deref() == Some("Warning")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name)
                && e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("Deployment")
        })
        .collect()
}

/// The status JSON of plugin `name` from the host's status endpoint.
async fn plugin_status(addr: std::net::SocketAddr, name: &str) -> Value {
    let list: Vec<Value> = serde_json::from_str(&status_get(addr, "/plugins").await).expect("status JSON");
    list.into_iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("{name} in the plugin status"))
}

#[tokio::test]
async fn the_host_runs_as_its_service_account_and_names_a_missing_permission() {
    let t = TestServer::start_with(|c| c.rbac = true).await;
    let admin = t.client.clone();

    // As deploy/ installs it: the namespace, the ServiceAccount and the generated RBAC; the example
    // plugins' CRDs (an administrator's job, not the host's).
    for file in ["namespace.yaml", "serviceaccount.yaml", "rbac.yaml"] {
        apply_yaml(&admin, &deploy_file(file)).await;
    }
    wasmop::apply_manifests(&admin, &wasmop_example_plugins::crds_dir(), "test")
        .await
        .expect("CRDs applied");
    apply_yaml(
        &admin,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: demo}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: copies}\n",
    )
    .await;

    // The host's identity: a token for wasmop-system/wasmop from the TokenRequest API.
    let sas: Api<ServiceAccount> = Api::namespaced(admin.clone(), "wasmop-system");
    let tr = TokenRequest {
        spec: TokenRequestSpec {
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = sas
        .create_token_request("wasmop", &PostParams::default(), &tr)
        .await
        .expect("a token for the deploy ServiceAccount")
        .status
        .expect("a TokenRequest status")
        .token;
    let client = client_with_token(&t, &token).await;
    // It is not the admin: what the generated RBAC does not grant is forbidden.
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client.clone(), "demo");
    match secrets.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{s:?}"),
        other => panic!("the ServiceAccount listed Secrets: {other:?}"),
    }

    // The host with the example plugins; pdb-guard resyncs every second, so that a parked 403 has
    // every chance to be reported again (it must not be).
    let plugins = tempfile::tempdir().expect("tempdir");
    for name in PLUGINS {
        std::fs::copy(
            wasmop_example_plugins::plugin_path(name),
            plugins.path().join(format!("{name}.wasm")),
        )
        .expect("plugin copied");
    }
    std::fs::write(plugins.path().join("pdb-guard.toml"), "resync_seconds = 1\n").unwrap();
    let host = wasmop::Host::start(client.clone(), &host_args(), plugins.path())
        .await
        .expect("host starts");
    host.sync().await;
    for name in PLUGINS {
        let state = host.engine().wait_running(name, Duration::from_secs(60)).await;
        assert_eq!(state, Some(wasmop_engine::PluginState::Running), "{name}");
    }

    // Every example plugin converges with the generated RBAC.
    apply_yaml(&admin, &database("orders")).await;
    apply_yaml(&admin, &replicated("shared")).await;
    apply_yaml(&admin, &deployment("web")).await;
    database_converges(&admin, "orders").await;
    copy_converges(&admin, "shared").await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(admin.clone(), "demo");
    eventually(60, "the PDB of web", || async {
        pdbs.get_opt("web").await.unwrap()
    })
    .await;
    for name in PLUGINS {
        assert_eq!(host.engine().forbidden(name).await, None, "{name}");
        assert_eq!(
            plugin_status(host.status_addr(), name).await.get("forbidden"),
            None
        );
    }

    // The ClusterRole loses poddisruptionbudgets.
    let roles: Api<ClusterRole> = Api::all(admin.clone());
    let role = roles.get("wasmop").await.unwrap();
    let rules: Vec<_> = role
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            !r.resources
                .iter()
                .flatten()
                .any(|res| res == "poddisruptionbudgets")
        })
        .collect();
    roles
        .patch(
            "wasmop",
            &PatchParams::default(),
            &Patch::Merge(json!({"rules": rules})),
        )
        .await
        .unwrap();

    // A new Deployment: pdb-guard's write is forbidden, reported once, and shown in its status.
    apply_yaml(&admin, &deployment("api")).await;
    let warning = eventually(60, "a Warning event on Deployment api", || async {
        warnings_about(&admin, "api").await.into_iter().next()
    })
    .await;
    let note = warning.note.clone().unwrap_or_default();
    assert_eq!(warning.reason.as_deref(), Some("WriteFailed"), "{note}");
    for part in [
        "wasmop plugin pdb-guard",
        "system:serviceaccount:wasmop-system:wasmop",
        "cannot patch resource \"poddisruptionbudgets\" in API group \"policy\" in the namespace \"demo\"",
    ] {
        assert!(note.contains(part), "{part:?} not in {note:?}");
    }
    let forbidden = host
        .engine()
        .forbidden("pdb-guard")
        .await
        .expect("pdb-guard's forbidden write");
    assert_eq!(forbidden.object, "demo/api");
    assert!(
        forbidden
            .message
            .contains("cannot patch resource \"poddisruptionbudgets\" in API group \"policy\""),
        "{forbidden:?}"
    );
    let status = plugin_status(host.status_addr(), "pdb-guard").await;
    assert_eq!(status["state"], "running");
    let shown = status["forbidden"]
        .as_str()
        .expect("forbidden in the status JSON");
    assert!(
        shown.contains("PodDisruptionBudget demo/api") && shown.contains(&forbidden.message),
        "{shown}"
    );
    // `wasmop plugins` shows it on pdb-guard's row.
    // (Off the test's runtime thread, which serves the status endpoint.)
    let mut command = wasmop();
    command.args(["plugins", "--status-addr", &host.status_addr().to_string()]);
    let out = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with("pdb-guard.wasm"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("forbidden: ") && row.contains("cannot patch resource \"poddisruptionbudgets\""),
        "{table}"
    );

    // The other plugins keep working meanwhile.
    apply_yaml(&admin, &database("invoices")).await;
    apply_yaml(&admin, &replicated("more")).await;
    database_converges(&admin, "invoices").await;
    copy_converges(&admin, "more").await;
    for name in ["database-operator", "configmap-replicator"] {
        assert_eq!(host.engine().forbidden(name).await, None, "{name}");
    }

    // Several resyncs later the 403 is still parked: reported once, not retried.
    let parked = host.engine().stats("pdb-guard").await.unwrap().parked;
    eventually(30, "resyncs of the parked Deployment", || async {
        let now = host.engine().stats("pdb-guard").await.unwrap().parked;
        (now >= parked + 3).then_some(())
    })
    .await;
    let warnings = warnings_about(&admin, "api").await;
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].series.is_none() && warnings[0].deprecated_count.unwrap_or(1) <= 1,
        "{warnings:?}"
    );
    assert!(host.engine().stats("pdb-guard").await.unwrap().forbidden >= 1);
    assert!(pdbs.get_opt("api").await.unwrap().is_none());

    host.stop().await;
    t.server.shutdown().await;
}
