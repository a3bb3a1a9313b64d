//! The example plugins, compiled to WebAssembly, reconciling against the embedded API server.

use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::json;
use wasmop_engine::PluginSettings;

use crate::support::{Host, apply_yaml, databases, eventually, settle, try_apply_yaml};

async fn gone<K>(api: &Api<K>, name: &str) -> Option<()>
where
    K: Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    api.get_opt(name).await.unwrap().is_none().then_some(())
}

#[tokio::test]
async fn database_lifecycle() {
    let h = Host::start().await;
    h.apply_crds().await;
    h.plugin("database-operator", PluginSettings::default()).await;
    let client = h.t.client.clone();
    let dbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &databases());
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
    let svcs: Api<Service> = Api::namespaced(client.clone(), "default");
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    apply_yaml(&client, "apiVersion: example.com/v1\nkind: Database\nmetadata: {name: orders, namespace: default}\nspec: {replicas: 2, image: 'postgres:16', storage: 1Gi}\n").await;

    // Children appear, with the Database as controller owner, and the status says Provisioning.
    let set = eventually(30, "the StatefulSet", || async {
        sts.get_opt("orders").await.unwrap()
    })
    .await;
    assert_eq!(set.spec.as_ref().unwrap().replicas, Some(2));
    let owner = &set.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.controller), ("Database", Some(true)));
    eventually(30, "the Service", || async {
        svcs.get_opt("orders").await.unwrap()
    })
    .await;
    eventually(30, "the ConfigMap", || async {
        cms.get_opt("orders").await.unwrap()
    })
    .await;
    eventually(30, "phase Provisioning", || async {
        let db = dbs.get("orders").await.unwrap();
        (db.data["status"]["phase"] == "Provisioning").then_some(())
    })
    .await;

    // The StatefulSet becomes ready (no kubelet here: the test plays its part) → Ready.
    sts.patch_status(
        "orders",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"replicas": 2, "readyReplicas": 2}})),
    )
    .await
    .unwrap();
    eventually(30, "phase Ready", || async {
        let db = dbs.get("orders").await.unwrap();
        (db.data["status"]["phase"] == "Ready" && db.data["status"]["observedGeneration"] == 1).then_some(())
    })
    .await;

    // A spec change reaches the children and the new generation is observed.
    dbs.patch(
        "orders",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 3}})),
    )
    .await
    .unwrap();
    eventually(30, "3 replicas and generation 2 observed", || async {
        let set = sts.get("orders").await.unwrap();
        let db = dbs.get("orders").await.unwrap();
        (set.spec.unwrap().replicas == Some(3) && db.data["status"]["observedGeneration"] == 2).then_some(())
    })
    .await;

    // A child deleted by hand is recreated.
    let old_uid = svcs.get("orders").await.unwrap().metadata.uid;
    svcs.delete("orders", &DeleteParams::default()).await.unwrap();
    eventually(30, "the Service to be recreated", || async {
        let svc = svcs.get_opt("orders").await.unwrap()?;
        (svc.metadata.uid != old_uid).then_some(())
    })
    .await;

    // Deleting the Database runs the plugin's cleanup (the backup ConfigMap) before it goes.
    eventually(30, "the backup ConfigMap", || async {
        cms.get_opt("orders-backup").await.unwrap()
    })
    .await;
    dbs.delete("orders", &DeleteParams::default()).await.unwrap();
    eventually(30, "the Database to be gone", || async {
        gone(&dbs, "orders").await
    })
    .await;
    eventually(30, "the backup ConfigMap to be gone", || async {
        gone(&cms, "orders-backup").await
    })
    .await;
    eventually(30, "the children to be gone", || async {
        (gone(&sts, "orders").await.is_some()
            && gone(&svcs, "orders").await.is_some()
            && gone(&cms, "orders").await.is_some())
        .then_some(())
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn configmap_replicator_syncs_and_prunes() {
    let h = Host::start().await;
    h.plugin("configmap-replicator", PluginSettings::default()).await;
    let client = h.t.client.clone();
    apply_yaml(&client, "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-a}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: ns-b}\n").await;
    apply_yaml(
        &client,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shared, namespace: default, annotations: {wasmop.io/replicate-to: 'ns-a,ns-b'}}\ndata: {color: blue}\n",
    )
    .await;
    let a: Api<ConfigMap> = Api::namespaced(client.clone(), "ns-a");
    let b: Api<ConfigMap> = Api::namespaced(client.clone(), "ns-b");
    for api in [&a, &b] {
        eventually(30, "a copy", || async {
            let c = api.get_opt("shared").await.unwrap()?;
            (c.data?.get("color").map(String::as_str) == Some("blue")).then_some(())
        })
        .await;
    }
    // Kept in sync.
    let src: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    src.patch(
        "shared",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"color": "green"}})),
    )
    .await
    .unwrap();
    for api in [&a, &b] {
        eventually(30, "the copy to follow", || async {
            let c = api.get_opt("shared").await.unwrap()?;
            (c.data?.get("color").map(String::as_str) == Some("green")).then_some(())
        })
        .await;
    }
    // A namespace leaving the list loses its copy.
    src.patch(
        "shared",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"wasmop.io/replicate-to": "ns-a"}}})),
    )
    .await
    .unwrap();
    eventually(30, "the ns-b copy to go", || async { gone(&b, "shared").await }).await;
    assert!(a.get_opt("shared").await.unwrap().is_some());
    // Deleting the source removes the copies.
    src.delete("shared", &DeleteParams::default()).await.unwrap();
    eventually(30, "the ns-a copy to go", || async { gone(&a, "shared").await }).await;
    eventually(30, "the source to go", || async { gone(&src, "shared").await }).await;
    h.stop().await;
}

/// A source deleted right after it is created, over and over: whichever moment the deletion lands
/// (before the first reconcile, while its finalizer is added, after it), no copy is left behind in
/// another namespace, where nothing else would clean it up. (The soak found copies left when the
/// finalizer's write met an object already gone and the copies were applied all the same.)
#[tokio::test]
async fn sources_deleted_as_soon_as_created_leave_no_copies() {
    let h = Host::start().await;
    h.plugin("configmap-replicator", PluginSettings::default()).await;
    let client = h.t.client.clone();
    apply_yaml(
        &client,
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: ns-a}\n",
    )
    .await;
    let src: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let copies: Api<ConfigMap> = Api::namespaced(client.clone(), "ns-a");
    for i in 0..150 {
        let name = format!("brief-{i}");
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": name, "annotations": {"wasmop.io/replicate-to": "ns-a"}},
            "data": {"i": i.to_string()},
        }))
        .unwrap();
        src.create(&Default::default(), &cm).await.unwrap();
        // Every few, give the host a moment, so the deletion lands at every stage of the reconcile.
        if i % 3 == 1 {
            tokio::time::sleep(Duration::from_millis((i % 7) as u64)).await;
        }
        src.delete(&name, &DeleteParams::default()).await.unwrap();
    }
    eventually(60, "every source gone, its finalizer released", || async {
        src.list(&Default::default())
            .await
            .unwrap()
            .items
            .iter()
            .all(|c| !c.metadata.name.as_deref().unwrap_or("").starts_with("brief-"))
            .then_some(())
    })
    .await;
    // The host is idle once every key has been handled; whatever copy is left now stays.
    settle(&h.t.server, Duration::from_secs(2), Duration::from_secs(60)).await;
    let left: Vec<String> = copies
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .collect();
    assert!(left.is_empty(), "copies of deleted sources left behind: {left:?}");
    h.stop().await;
}

#[tokio::test]
async fn pdb_guard_follows_replicas_and_goes_quiet() {
    let h = Host::start().await;
    let resync = Duration::from_secs(2);
    h.plugin(
        "pdb-guard",
        PluginSettings {
            resync: Some(resync),
            ..Default::default()
        },
    )
    .await;
    let client = h.t.client.clone();
    let deploy = |replicas: u32| {
        format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web, namespace: default}}\nspec:\n  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: nginx}}]}}\n"
        )
    };
    apply_yaml(&client, &deploy(3)).await;
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    let pdb = eventually(30, "the PDB", || async { pdbs.get_opt("web").await.unwrap() }).await;
    let selector = pdb.spec.unwrap().selector.unwrap().match_labels.unwrap();
    assert_eq!(selector.get("app").map(String::as_str), Some("web"));

    // Converged: over a resync period nothing is written, and the resyncs of an unchanged
    // Deployment are answered by the result cache, without calling the plugin.
    let before = settle(&h.t.server, Duration::from_secs(1), Duration::from_secs(30)).await;
    let stats = h.engine.stats("pdb-guard").await.unwrap();
    tokio::time::sleep(resync * 2 + Duration::from_millis(500)).await;
    let after = h.engine.stats("pdb-guard").await.unwrap();
    assert!(
        after.unchanged >= stats.unchanged + 2,
        "resyncs ran: {stats:?} then {after:?}"
    );
    assert_eq!(
        after.reconciles, stats.reconciles,
        "the plugin was not called again"
    );
    assert_eq!(h.t.server.write_count(), before, "no writes in steady state");

    // Scaling below two removes the PDB.
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    eventually(30, "the PDB to go", || async { gone(&pdbs, "web").await }).await;
    h.stop().await;
}

#[tokio::test]
async fn writes_survive_throttling_and_server_errors() {
    let h = Host::start().await;
    h.plugin("pdb-guard", PluginSettings::default()).await;
    let client = h.t.client.clone();
    // Half of all requests fail: 429 with Retry-After, or 500.
    h.t.server.faults().set(wasmop_apiserver::FaultSettings {
        too_many_requests: 0.2,
        retry_after_seconds: 1,
        internal_errors: 0.3,
        ..Default::default()
    });
    const N: usize = 20;
    for i in 0..N {
        let yaml = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web{i}, namespace: default}}\nspec:\n  replicas: 2\n  selector: {{matchLabels: {{app: web{i}}}}}\n  template:\n    metadata: {{labels: {{app: web{i}}}}}\n    spec: {{containers: [{{name: web, image: nginx}}]}}\n"
        );
        // The test's own writes meet the faults too, and retry.
        eventually(30, "the Deployment to be applied", || async {
            try_apply_yaml(&client, &yaml).await.ok()
        })
        .await;
    }
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    eventually(90, "every PDB despite the faults", || async {
        let list = pdbs.list(&Default::default()).await.ok()?;
        (list.items.len() == N).then_some(())
    })
    .await;
    h.t.server.faults().set(Default::default());
    // A 500 reaches the engine (the host's client does not retry by itself). With 30% answered 500,
    // 20 PDB writes that all succeed at the first try would be a 1-in-1000 event.
    assert!(
        h.engine.stats("pdb-guard").await.unwrap().failures > 0,
        "some writes failed and were retried"
    );
    h.stop().await;
}
