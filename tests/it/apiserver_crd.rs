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

#[tokio::test]
async fn several_versions_share_objects_and_scale_works_for_crds() {
    let t = TestServer::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(t.client.clone());
    let version = |name: &str, storage: bool| {
        json!({
            "name": name, "served": true, "storage": storage,
            "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}}},
                "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}
            }}}
        })
    };
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "pools.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "pools", "singular": "pool", "kind": "Pool"},
            "versions": [version("v1beta1", false), version("v1", true)]
        }
    }))
    .unwrap();
    crds.create(&Default::default(), &crd).await.unwrap();
    let ar = |v: &str| kube::api::ApiResource {
        group: "example.com".into(),
        version: v.into(),
        api_version: format!("example.com/{v}"),
        kind: "Pool".into(),
        plural: "pools".into(),
    };
    let v1: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), "default", &ar("v1"));
    let beta: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), "default", &ar("v1beta1"));
    let obj: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Pool", "metadata": {"name": "p"}, "spec": {"replicas": 2}})).unwrap();
    eventually(10, "the CRD to be served", || async {
        v1.create(&PostParams::default(), &obj).await.ok()
    })
    .await;
    // The same object through the other version.
    let seen = beta.get("p").await.unwrap();
    assert_eq!(seen.types.unwrap().api_version, "example.com/v1beta1");
    assert_eq!(seen.data["spec"]["replicas"], 2);
    // Discovery prefers the GA version.
    let discovery = Discovery::new(t.client.clone()).run().await.unwrap();
    let group = discovery.get("example.com").unwrap();
    assert_eq!(group.preferred_version_or_latest(), "v1");
    // The scale subresource reads and writes spec.replicas.
    let scale = v1.get_scale("p").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(2));
    v1.patch_scale(
        "p",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    assert_eq!(v1.get("p").await.unwrap().data["spec"]["replicas"], 4);
    t.server.shutdown().await;
}

#[tokio::test]
async fn wrong_methods_and_bodies_get_the_real_errors() {
    let t = TestServer::start().await;
    let send = |method: &str, path: &str, content_type: &str, body: &str| {
        let req = http::Request::builder()
            .method(method)
            .uri(path)
            .header("Content-Type", content_type)
            .body(body.as_bytes().to_vec())
            .unwrap();
        let client = t.client.clone();
        async move {
            match client.request_text(req).await {
                Ok(_) => (200, String::new()),
                Err(kube::Error::Api(s)) => (s.code, s.reason),
                Err(e) => panic!("{e}"),
            }
        }
    };
    let cm = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}"#;
    assert_eq!(
        send(
            "POST",
            "/api/v1/namespaces/default/configmaps/x",
            "application/json",
            cm
        )
        .await,
        (405, "MethodNotAllowed".into())
    );
    assert_eq!(
        send(
            "PUT",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            cm
        )
        .await,
        (405, "MethodNotAllowed".into())
    );
    assert_eq!(
        send(
            "POST",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            "{\"apiVersion\":"
        )
        .await,
        (400, "BadRequest".into())
    );
    assert_eq!(
        send("POST", "/api/v1/namespaces/default/configmaps", "text/plain", cm).await,
        (415, "UnsupportedMediaType".into())
    );
    assert_eq!(
        send(
            "PATCH",
            "/api/v1/namespaces/default/configmaps/x",
            "application/json",
            "{}"
        )
        .await,
        (415, "UnsupportedMediaType".into())
    );
    // A 429 carries Retry-After. (kube's client retries 429s by itself, honouring Retry-After: this
    // one does not, to see the answer.)
    t.server.faults().set(wasmop_apiserver::FaultSettings {
        too_many_requests: 1.0,
        retry_after_seconds: 3,
        ..Default::default()
    });
    let kc = kube::config::Kubeconfig::from_yaml(&t.server.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    config.default_retry = false;
    let no_retry = kube::Client::try_from(config).unwrap();
    let req = http::Request::get("/api/v1/namespaces").body(Vec::new()).unwrap();
    match no_retry.request_text(req).await {
        Err(kube::Error::Api(s)) => {
            assert_eq!(s.code, 429);
            assert_eq!(s.details.unwrap().retry_after_seconds, 3);
        }
        other => panic!("expected 429, got {other:?}"),
    }
    t.server.faults().set(Default::default());
    t.server.shutdown().await;
}
