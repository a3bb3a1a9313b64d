//! Deletion: finalizers, propagation policies, owner garbage collection and namespace deletion.

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::support::{TestServer, eventually};

async fn create(api: &Api<ConfigMap>, value: serde_json::Value) -> ConfigMap {
    api.create(&PostParams::default(), &serde_json::from_value(value).unwrap())
        .await
        .unwrap()
}

fn owned_by(name: &str, owner: &ConfigMap) -> serde_json::Value {
    json!({"metadata": {"name": name, "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": owner.metadata.name, "uid": owner.metadata.uid,
        "controller": true, "blockOwnerDeletion": true
    }]}})
}

#[tokio::test]
async fn finalizers_hold_an_object_until_removed() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    create(
        &cms,
        json!({"metadata": {"name": "held", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    let deleting = cms.delete("held", &DeleteParams::default()).await.unwrap();
    let obj = deleting
        .left()
        .expect("the object is returned while finalizers hold it");
    assert!(obj.metadata.deletion_timestamp.is_some());
    // Still there, updates still work, new finalizers are refused.
    let still = cms.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    let err = cms
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"finalizers": ["example.com/hold", "example.com/more"]}})),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 422), "{err:?}");
    // Removing the last finalizer deletes it.
    cms.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(cms.get_opt("held").await.unwrap().is_none());
    t.server.shutdown().await;
}

#[tokio::test]
async fn owners_garbage_collect_their_dependents() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");

    // Background (default): the owner goes at once, the collector deletes the dependent.
    let owner = create(&cms, json!({"metadata": {"name": "bg-owner"}})).await;
    create(&cms, owned_by("bg-dep", &owner)).await;
    cms.delete("bg-owner", &DeleteParams::background()).await.unwrap();
    eventually(10, "the background dependent to be collected", || async {
        cms.get_opt("bg-dep").await.unwrap().is_none().then_some(())
    })
    .await;

    // Foreground: the owner waits (foregroundDeletion) until its dependents are gone.
    let owner = create(&cms, json!({"metadata": {"name": "fg-owner"}})).await;
    create(&cms, {
        let mut d = owned_by("fg-dep", &owner);
        d["metadata"]["finalizers"] = json!(["example.com/slow"]);
        d
    })
    .await;
    cms.delete("fg-owner", &DeleteParams::foreground()).await.unwrap();
    let waiting = eventually(10, "the dependent to be terminating", || async {
        let dep = cms.get_opt("fg-dep").await.unwrap()?;
        dep.metadata.deletion_timestamp.is_some().then_some(())
    });
    waiting.await;
    let owner_now = cms.get("fg-owner").await.unwrap();
    assert!(
        owner_now
            .metadata
            .finalizers
            .unwrap()
            .contains(&"foregroundDeletion".to_string())
    );
    cms.patch(
        "fg-dep",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually(10, "the foreground owner to go", || async {
        cms.get_opt("fg-owner").await.unwrap().is_none().then_some(())
    })
    .await;

    // Orphan: the dependent stays, without its owner reference.
    let owner = create(&cms, json!({"metadata": {"name": "or-owner"}})).await;
    create(&cms, owned_by("or-dep", &owner)).await;
    cms.delete("or-owner", &DeleteParams::orphan()).await.unwrap();
    eventually(10, "the orphaned owner to go", || async {
        cms.get_opt("or-owner").await.unwrap().is_none().then_some(())
    })
    .await;
    let dep = cms.get("or-dep").await.unwrap();
    assert!(dep.metadata.owner_references.unwrap_or_default().is_empty());
    t.server.shutdown().await;
}

#[tokio::test]
async fn deleting_a_namespace_removes_what_it_holds() {
    let t = TestServer::start().await;
    let namespaces: Api<Namespace> = Api::all(t.client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "doomed"}})).unwrap(),
        )
        .await
        .unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "doomed");
    create(&cms, json!({"metadata": {"name": "a"}})).await;
    create(
        &cms,
        json!({"metadata": {"name": "b", "finalizers": ["example.com/hold"]}}),
    )
    .await;
    namespaces
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let ns = namespaces.get("doomed").await.unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    // Creating inside a terminating namespace is forbidden.
    let err = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "late"}})).unwrap(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 403), "{err:?}");
    eventually(10, "a to be deleted", || async {
        cms.get_opt("a").await.unwrap().is_none().then_some(())
    })
    .await;
    assert!(
        namespaces.get_opt("doomed").await.unwrap().is_some(),
        "b's finalizer holds the namespace"
    );
    cms.patch(
        "b",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    eventually(10, "the namespace to go", || async {
        namespaces
            .get_opt("doomed")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    t.server.shutdown().await;
}
