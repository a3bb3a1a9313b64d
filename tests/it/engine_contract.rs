//! Contract 0.2 and the engine against the embedded API server, with the real compiled plugins:
//! per-object finalizers, triggering lookups, a 0.1 binary, permanent API errors, and start-up with
//! slow discovery while namespaces are being deleted.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use wasmop_contract::{BoxFuture, CacheReader, Desired, Metadata, ReconcileFailure, Reconciler, Snapshot};
use wasmop_engine::{PluginSettings, PluginState};

use crate::support::{Host, apply_yaml, eventually, settle};

const REPLICATE_TO: &str = "wasmop.io/replicate-to";

async fn namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 409 => {}
        Err(e) => panic!("creating namespace {name}: {e}"),
    }
}

async fn configmap(
    client: &kube::Client,
    ns: &str,
    name: &str,
    annotations: BTreeMap<String, String>,
) -> ConfigMap {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": name, "annotations": annotations},
        "data": {"key": "value"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm)
        .await
        .expect("configmap created")
}

fn replicate_to(namespaces: &str) -> BTreeMap<String, String> {
    [(REPLICATE_TO.to_string(), namespaces.to_string())].into()
}

async fn get_cm(client: &kube::Client, ns: &str, name: &str) -> Option<ConfigMap> {
    Api::<ConfigMap>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .unwrap()
}

/// Events about `name` with `reason`, as the API server stores them.
async fn events(client: &kube::Client, ns: &str, name: &str, reason: &str) -> Vec<Event> {
    Api::<Event>::namespaced(client.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .filter(|e| e.reason.as_deref() == Some(reason))
        .collect()
}

#[tokio::test]
async fn the_replicator_touches_only_annotated_configmaps() {
    let h = Host::start().await;
    let c = h.t.client.clone();
    for ns in ["demo", "ns-a", "kube-system"] {
        namespace(&c, ns).await;
    }
    let plain = configmap(&c, "demo", "plain", BTreeMap::new()).await;
    let system = configmap(&c, "kube-system", "cluster-info", BTreeMap::new()).await;
    h.plugin("configmap-replicator", PluginSettings::default()).await;
    configmap(&c, "demo", "source", replicate_to("ns-a")).await;
    eventually(10, "the copy in ns-a", || get_cm(&c, "ns-a", "source")).await;
    settle(&h.t.server, Duration::from_millis(500), Duration::from_secs(20)).await;

    // Untouched: no finalizer, no write at all (same resourceVersion, no field manager of ours).
    for (before, ns) in [(&plain, "demo"), (&system, "kube-system")] {
        let now = get_cm(&c, ns, &before.name_any()).await.unwrap();
        assert!(
            now.finalizers().is_empty(),
            "{ns}/{}: {:?}",
            now.name_any(),
            now.finalizers()
        );
        assert_eq!(
            now.resource_version(),
            before.resource_version(),
            "{ns}/{} was written",
            now.name_any()
        );
    }
    let source = get_cm(&c, "demo", "source").await.unwrap();
    assert_eq!(source.finalizers(), ["wasmop.io/configmap-replicator"]);

    // The annotation goes: the copy is pruned and the finalizer released.
    Api::<ConfigMap>::namespaced(c.clone(), "demo")
        .patch(
            "source",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {REPLICATE_TO: null}}})),
        )
        .await
        .unwrap();
    eventually(10, "the copy to be pruned", || async {
        get_cm(&c, "ns-a", "source").await.is_none().then_some(())
    })
    .await;
    eventually(10, "the finalizer to be released", || async {
        get_cm(&c, "demo", "source")
            .await
            .unwrap()
            .finalizers()
            .is_empty()
            .then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_late_namespace_is_filled_through_the_trigger() {
    let h = Host::start().await;
    let c = h.t.client.clone();
    namespace(&c, "demo").await;
    h.plugin("configmap-replicator", PluginSettings::default()).await;
    configmap(&c, "demo", "settings", replicate_to("late")).await;
    eventually(10, "the source to be held", || async {
        (!get_cm(&c, "demo", "settings").await?.finalizers().is_empty()).then_some(())
    })
    .await;
    settle(&h.t.server, Duration::from_millis(500), Duration::from_secs(20)).await;
    // Nothing polls for the missing namespace: no reconciles while nothing changes.
    let before = h.engine.stats("configmap-replicator").await.unwrap().reconciles;
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        h.engine.stats("configmap-replicator").await.unwrap().reconciles,
        before
    );

    let created = tokio::time::Instant::now();
    namespace(&c, "late").await;
    eventually(2, "the copy in the late namespace within 2 s", || {
        get_cm(&c, "late", "settings")
    })
    .await;
    assert!(created.elapsed() < Duration::from_secs(2));
    h.stop().await;
}

#[tokio::test]
async fn a_0_1_plugin_binary_still_reconciles() {
    let h = Host::start().await;
    let c = h.t.client.clone();
    for ns in ["demo", "ns-a"] {
        namespace(&c, ns).await;
    }
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/configmap-replicator-0.1.0.wasm");
    h.plugin_file(&fixture, PluginSettings::default()).await;
    configmap(&c, "demo", "old", replicate_to("ns-a")).await;
    eventually(10, "the 0.1 plugin's copy", || get_cm(&c, "ns-a", "old")).await;
    // 0.1 semantics: the finalizer on every object of the primary kind.
    let plain = configmap(&c, "demo", "plain", BTreeMap::new()).await;
    eventually(10, "the 0.1 finalizer on a plain ConfigMap", || async {
        let cm = get_cm(&c, "demo", &plain.name_any()).await?;
        cm.finalizers()
            .contains(&"wasmop.io/configmap-replicator".to_string())
            .then_some(())
    })
    .await;
    // Deleting the source: the 0.1 deletion protocol still runs (copy deleted, finalizer released).
    Api::<ConfigMap>::namespaced(c.clone(), "demo")
        .delete("old", &DeleteParams::default())
        .await
        .unwrap();
    eventually(10, "the source and its copy to go", || async {
        (get_cm(&c, "demo", "old").await.is_none() && get_cm(&c, "ns-a", "old").await.is_none()).then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn a_forbidden_write_is_one_warning_and_no_retries() {
    let h = Host::start().await;
    let c = h.t.client.clone();
    namespace(&c, "demo").await;
    h.t.server.faults().set(wasmop_apiserver::FaultSettings {
        forbidden: vec![wasmop_apiserver::Forbidden {
            verb: "patch".into(),
            resource: "poddisruptionbudgets".into(),
        }],
        ..Default::default()
    });
    h.plugin("pdb-guard", PluginSettings::default()).await;
    apply_yaml(
        &c,
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: demo}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: nginx}]}
"#,
    )
    .await;
    let warning = eventually(10, "a Warning event about the refused write", || async {
        events(&c, "demo", "web", "WriteFailed").await.into_iter().next()
    })
    .await;
    assert_eq!(warning.type_.as_deref(), Some("Warning"));
    let note = warning.note.unwrap_or_default();
    assert!(
        note.contains("is forbidden: User"),
        "the API server's message: {note}"
    );
    let reconciles = h.engine.stats("pdb-guard").await.unwrap().reconciles;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        h.engine.stats("pdb-guard").await.unwrap().reconciles,
        reconciles,
        "no retries"
    );
    assert_eq!(events(&c, "demo", "web", "WriteFailed").await.len(), 1);
    // The permission arrives and the object changes: it converges.
    h.t.server.faults().set(Default::default());
    Api::<Deployment>::namespaced(c.clone(), "demo")
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .unwrap();
    eventually(10, "the budget", || async {
        Api::<k8s_openapi::api::policy::v1::PodDisruptionBudget>::namespaced(c.clone(), "demo")
            .get_opt("web")
            .await
            .unwrap()
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn an_invalid_child_is_one_warning_and_no_retries() {
    let h = Host::start().await;
    let c = h.t.client.clone();
    namespace(&c, "demo").await;
    h.apply_crds().await;
    h.plugin("database-operator", PluginSettings::default()).await;
    // A valid Database name with a dot: its headless Service of the same name is not a DNS label.
    apply_yaml(
        &c,
        r#"
apiVersion: example.com/v1
kind: Database
metadata: {name: orders.v2, namespace: demo}
spec: {replicas: 1, image: "postgres:16", storage: 1Gi}
"#,
    )
    .await;
    let warning = eventually(15, "a Warning event about the invalid child", || async {
        events(&c, "demo", "orders.v2", "WriteFailed")
            .await
            .into_iter()
            .next()
    })
    .await;
    let note = warning.note.unwrap_or_default();
    assert!(note.contains("Invalid value") && note.contains("(422)"), "{note}");
    let reconciles = h.engine.stats("database-operator").await.unwrap().reconciles;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        h.engine.stats("database-operator").await.unwrap().reconciles,
        reconciles,
        "no retries"
    );
    assert_eq!(events(&c, "demo", "orders.v2", "WriteFailed").await.len(), 1);
    h.stop().await;
}

/// A real compiled plugin under another name, so that ten of them can share kinds.
struct Renamed {
    inner: wasmop_runtime::Plugin,
    meta: Metadata,
}

impl Reconciler for Renamed {
    fn metadata(&self) -> &Metadata {
        &self.meta
    }

    fn reconcile<'a>(
        &'a self,
        snapshot: Snapshot,
        cache: Arc<dyn CacheReader>,
    ) -> BoxFuture<'a, Result<Desired, ReconcileFailure>> {
        Reconciler::reconcile(&self.inner, snapshot, cache)
    }
}

#[tokio::test]
async fn ten_plugins_start_with_slow_discovery_while_namespaces_go() {
    let h = Host::start().await;
    let c = h.t.client.clone();
    h.apply_crds().await;
    // Objects in namespaces that are being deleted while the host starts, held by a finalizer.
    for i in 0..3 {
        let ns = format!("old-{i}");
        namespace(&c, &ns).await;
        for j in 0..20 {
            let api: Api<ConfigMap> = Api::namespaced(c.clone(), &ns);
            let cm: ConfigMap = serde_json::from_value(json!({
                "metadata": {"name": format!("cm-{j}"), "finalizers": ["example.com/hold"]}
            }))
            .unwrap();
            api.create(&PostParams::default(), &cm).await.unwrap();
        }
        Api::<Namespace>::all(c.clone())
            .delete(&ns, &DeleteParams::default())
            .await
            .unwrap();
    }
    h.t.server.faults().set(wasmop_apiserver::FaultSettings {
        discovery_latency: Duration::from_millis(40),
        latency: Duration::from_millis(5),
        ..Default::default()
    });
    // Six on ConfigMaps (the primary kind they share), and four more on other kinds.
    let mut names = Vec::new();
    for i in 0..6 {
        let p = h.load(&wasmop_example_plugins::plugin_path("hello"));
        let mut meta = p.metadata().clone();
        meta.name = format!("hello-{i}");
        names.push(meta.name.clone());
        h.engine
            .upsert_plugin(Arc::new(Renamed { inner: p, meta }), PluginSettings::default())
            .await
            .unwrap();
    }
    for name in ["configmap-replicator", "pdb-guard", "database-operator"] {
        h.plugin(name, PluginSettings::default()).await;
        names.push(name.to_string());
    }
    let p = h.load(&wasmop_example_plugins::plugin_path("pdb-guard"));
    let mut meta = p.metadata().clone();
    meta.name = "pdb-guard-2".into();
    names.push(meta.name.clone());
    h.engine
        .upsert_plugin(Arc::new(Renamed { inner: p, meta }), PluginSettings::default())
        .await
        .unwrap();
    for name in &names {
        let state = h.engine.wait_running(name, Duration::from_secs(20)).await;
        assert_eq!(state, Some(PluginState::Running), "{name}");
    }
    // They reconcile, too: a new ConfigMap reaches all six hello plugins.
    h.t.server.faults().set(Default::default());
    namespace(&c, "fresh").await;
    configmap(&c, "fresh", "hi", BTreeMap::new()).await;
    for name in &names[..6] {
        eventually(10, "a hello reconcile", || async {
            (h.engine.stats(name).await?.reconciles > 0).then_some(())
        })
        .await;
    }
    h.stop().await;
}
