//! Server-side apply through kube-rs: field ownership, removal of fields a manager stops applying,
//! conflicts between managers, force, list-map merging by key, and managedFields.

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;

use crate::support::{TestServer, install_widgets};

fn apply(data: serde_json::Value) -> Patch<serde_json::Value> {
    Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ssa"}, "data": data}))
}

fn managers(cm: &ConfigMap) -> Vec<(String, String)> {
    cm.metadata
        .managed_fields
        .iter()
        .flatten()
        .map(|m| {
            (
                m.manager.clone().unwrap_or_default(),
                m.operation.clone().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn apply_owns_removes_and_conflicts() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let one = PatchParams::apply("applier-one");
    let two = PatchParams::apply("applier-two");

    let created = cms
        .patch("ssa", &one, &apply(json!({"a": "1", "b": "2"})))
        .await
        .unwrap();
    assert_eq!(created.data.as_ref().unwrap().len(), 2);
    assert_eq!(managers(&created), vec![("applier-one".into(), "Apply".into())]);

    // A second manager applies its own field and co-owns an equal value without conflict.
    let both = cms
        .patch("ssa", &two, &apply(json!({"a": "1", "c": "3"})))
        .await
        .unwrap();
    assert_eq!(both.data.as_ref().unwrap().len(), 3);
    assert_eq!(managers(&both).len(), 2);

    // applier-one stops applying b: nobody else owns it, so it is removed. `a` stays (co-owned).
    let dropped = cms.patch("ssa", &one, &apply(json!({"a": "1"}))).await.unwrap();
    let data = dropped.data.unwrap();
    assert!(!data.contains_key("b"), "b was removed: {data:?}");
    assert_eq!(data.get("a").map(String::as_str), Some("1"));
    assert_eq!(data.get("c").map(String::as_str), Some("3"));

    // A different value for a field another manager owns is a conflict...
    let err = match cms
        .patch("ssa", &two, &apply(json!({"a": "changed", "c": "3"})))
        .await
    {
        Err(kube::Error::Api(s)) => s,
        other => panic!("expected a conflict, got {other:?}"),
    };
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("conflict with \"applier-one\""),
        "{}",
        err.message
    );
    assert!(err.message.contains(".data.a"), "{}", err.message);

    // ...unless forced, which moves ownership.
    let forced = cms
        .patch(
            "ssa",
            &two.clone().force(),
            &apply(json!({"a": "changed", "c": "3"})),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.as_ref().unwrap()["a"], "changed");

    // Re-applying the same configuration is a no-op: same resourceVersion.
    let again = cms
        .patch(
            "ssa",
            &two.clone().force(),
            &apply(json!({"a": "changed", "c": "3"})),
        )
        .await
        .unwrap();
    assert_eq!(again.metadata.resource_version, forced.metadata.resource_version);

    // An Update (merge patch) takes ownership of what it changes.
    let updated = cms
        .patch(
            "ssa",
            &PatchParams {
                field_manager: Some("editor".into()),
                ..Default::default()
            },
            &Patch::Merge(json!({"data": {"c": "9"}})),
        )
        .await
        .unwrap();
    assert!(managers(&updated).contains(&("editor".into(), "Update".into())));
    t.server.shutdown().await;
}

#[tokio::test]
async fn apply_without_field_manager_is_invalid() {
    let t = TestServer::start().await;
    let req = http::Request::patch("/api/v1/namespaces/default/configmaps/x")
        .header("Content-Type", "application/apply-patch+yaml")
        .body(
            serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}))
                .unwrap(),
        )
        .unwrap();
    match t.client.request_text(req).await {
        Err(kube::Error::Api(s)) => assert_eq!(s.code, 422),
        other => panic!("expected 422, got {other:?}"),
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn list_map_items_merge_by_key_between_managers() {
    let t = TestServer::start().await;
    let ar = install_widgets(&t.client).await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), "default", &ar);
    let w = |ports: serde_json::Value| {
        Patch::Apply(
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1, "ports": ports}}),
        )
    };
    widgets
        .patch(
            "w",
            &PatchParams::apply("one"),
            &w(json!([{"name": "http", "port": 80}])),
        )
        .await
        .unwrap();
    let merged = widgets
        .patch(
            "w",
            &PatchParams::apply("two"),
            &w(json!([{"name": "https", "port": 443}])),
        )
        .await
        .unwrap();
    let ports = merged.data["spec"]["ports"].as_array().unwrap();
    assert_eq!(ports.len(), 2, "items merged by key: {ports:?}");
    let dropped = widgets
        .patch("w", &PatchParams::apply("one"), &w(json!([])))
        .await
        .unwrap();
    let ports = dropped.data["spec"]["ports"].as_array().unwrap();
    assert_eq!(
        ports
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["https"]
    );
    let fields = serde_json::to_value(&dropped.metadata.managed_fields).unwrap();
    assert!(
        fields.to_string().contains("k:{\\\"name\\\":\\\"https\\\"}"),
        "{fields}"
    );
    t.server.shutdown().await;
}
