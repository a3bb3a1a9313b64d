//! CustomResourceDefinitions: served at once, schema validation and pruning, status subresource,
//! deletion removing instances and stopping service.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::Discovery;
use serde_json::json;

use crate::support::{TestServer, eventually, install_widgets};

fn widget(name: &str, spec: serde_json::Value) -> DynamicObject {
    serde_json::from_value(
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}),
    )
    .unwrap()
}

#[tokio::test]
async fn crds_are_served_validated_and_pruned() {
    let t = TestServer::start().await;
    let ar = install_widgets(&t.client).await;
    let discovery = Discovery::new(t.client.clone()).run().await.unwrap();
    let (found, caps) = discovery
        .resolve_gvk(&kube::api::GroupVersionKind::gvk("example.com", "v1", "Widget"))
        .expect("discovered");
    assert_eq!(found.plural, "widgets");
    assert!(
        caps.subresources
            .iter()
            .any(|(s, _)| s.plural == "widgets/status" || s.plural == "status")
    );

    let widgets: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), "default", &ar);
    let created = widgets
        .create(
            &PostParams::default(),
            &widget(
                "w",
                json!({"size": 2, "bogus": true, "extra": {"anything": [1, 2]}}),
            ),
        )
        .await
        .unwrap();
    assert_eq!(created.data["spec"]["size"], 2);
    assert!(
        created.data["spec"].get("bogus").is_none(),
        "unknown fields are pruned"
    );
    assert_eq!(
        created.data["spec"]["extra"]["anything"],
        json!([1, 2]),
        "preserve-unknown-fields keeps them"
    );
    assert_eq!(created.metadata.generation, Some(1));

    // Schema violations are 422 Invalid naming the fields.
    let err = match widgets
        .create(
            &PostParams::default(),
            &widget("bad", json!({"size": "big", "color": "pink"})),
        )
        .await
    {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected 422, got {other:?}"),
    };
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(err.message.contains("spec.size"), "{}", err.message);
    assert!(err.message.contains("spec.color"), "{}", err.message);
    let err = match widgets
        .create(&PostParams::default(), &widget("bad2", json!({"color": "red"})))
        .await
    {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected 422, got {other:?}"),
    };
    assert!(
        err.message.contains("spec.size: Required value"),
        "{}",
        err.message
    );

    // Status only through /status; spec changes bump the generation.
    let st = widgets
        .patch_status(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Ready"}})),
        )
        .await
        .unwrap();
    assert_eq!(st.data["status"]["phase"], "Ready");
    assert_eq!(st.metadata.generation, Some(1));
    let sp = widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"size": 3}, "status": {"phase": "Other"}})),
        )
        .await
        .unwrap();
    assert_eq!(
        (sp.metadata.generation, sp.data["status"]["phase"].clone()),
        (Some(2), json!("Ready"))
    );

    // Strategic merge patch is not for custom resources.
    match widgets
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"size": 4}})),
        )
        .await
    {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 415),
        other => panic!("expected 415, got {other:?}"),
    }

    // Deleting the CRD removes its objects and stops serving it.
    let crds: Api<CustomResourceDefinition> = Api::all(t.client.clone());
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    eventually(10, "the CRD to be gone", || async {
        crds.get_opt("widgets.example.com")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    match widgets.list(&Default::default()).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 404),
        Err(other) => panic!("expected 404, got {other:?}"),
        Ok(l) => panic!("still served: {} items", l.items.len()),
    }
    // Re-creating it finds no leftover objects.
    let ar = install_widgets(&t.client).await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), "default", &ar);
    assert!(widgets.list(&Default::default()).await.unwrap().items.is_empty());
    t.server.shutdown().await;
}
