//! Misbehaving plugins are contained: a trap, an endless loop or unbounded allocation fails that
//! reconcile only, and an undeclared write is refused before it is sent — while a healthy plugin in
//! the same host keeps reconciling.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::Api;
use wasmop_engine::PluginSettings;

use crate::support::{Host, apply_yaml, eventually};

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, namespace: default}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: web, image: nginx}]}\n";

#[tokio::test]
async fn misbehaving_plugins_fail_alone() {
    let h = Host::start().await;
    for bad in ["trap", "spin", "hog"] {
        h.plugin(bad, PluginSettings::default()).await;
    }
    h.plugin("pdb-guard", PluginSettings::default()).await;
    let client = h.t.client.clone();
    apply_yaml(
        &client,
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: poke, namespace: default}\ndata: {a: b}\n",
    )
    .await;
    apply_yaml(&client, DEPLOYMENT).await;

    // The healthy plugin does its job.
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), "default");
    eventually(60, "pdb-guard's PDB", || async {
        pdbs.get_opt("web").await.unwrap()
    })
    .await;

    // Each bad plugin failed (and is retried with backoff), without taking anything down.
    for bad in ["trap", "spin", "hog"] {
        eventually(60, "a contained failure", || async {
            let s = h.engine.stats(bad).await?;
            (s.failures > 0).then_some(())
        })
        .await;
    }
    // The host still answers and still reconciles after the failures.
    apply_yaml(
        &client,
        &DEPLOYMENT
            .replace("name: web,", "name: api,")
            .replace("app: web", "app: api"),
    )
    .await;
    eventually(60, "a PDB for the second Deployment", || async {
        pdbs.get_opt("api").await.unwrap()
    })
    .await;
    h.stop().await;
}

#[tokio::test]
async fn undeclared_writes_are_refused_and_reported() {
    let h = Host::start().await;
    h.plugin("sneaky", PluginSettings::default()).await;
    let client = h.t.client.clone();
    apply_yaml(
        &client,
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: poke, namespace: default}\n",
    )
    .await;
    eventually(60, "the refusal", || async {
        let s = h.engine.stats("sneaky").await?;
        (s.refused > 0).then_some(())
    })
    .await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "default");
    assert!(
        secrets.list(&Default::default()).await.unwrap().items.is_empty(),
        "the Secret was never sent"
    );
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client.clone(), "default");
    assert!(
        cms.get_opt("poke-allowed").await.unwrap().is_none(),
        "nothing of a refused answer is sent"
    );
    // The refusal is reported as a Warning event on the object.
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "default");
    eventually(30, "a WriteRefused event", || async {
        let list = events.list(&Default::default()).await.ok()?;
        list.items
            .iter()
            .any(|e| e.reason.as_deref() == Some("WriteRefused"))
            .then_some(())
    })
    .await;
    h.stop().await;
}
