//! JSON patch as kube-apiserver applies it (evanphx/json-patch v4 semantics and the server's status
//! codes), and kube-runtime's real `finalizer()` helper, whose first patch tests a missing
//! `/metadata/finalizers` against `null`, driving a ConfigMap through add, reconcile, cleanup and
//! removal.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event, finalizer};
use serde_json::{Value, json};

use crate::support::TestServer;

const FINALIZER: &str = "example.com/cleanup";

async fn json_patch(client: &kube::Client, path: &str, ops: &Value) -> (u16, Value) {
    let req = http::Request::builder()
        .method("PATCH")
        .uri(path)
        .header("Content-Type", "application/json-patch+json")
        .body(kube::client::Body::from(serde_json::to_vec(ops).unwrap()))
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.unwrap();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn create_cm(api: &Api<ConfigMap>, name: &str, extra: Value) {
    let mut body = json!({"metadata": {"name": name}, "data": {"a": "1"}});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    api.create(&PostParams::default(), &serde_json::from_value(body).unwrap())
        .await
        .unwrap();
}

#[tokio::test]
async fn kube_runtime_finalizer_adds_reconciles_cleans_up_and_removes() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    create_cm(&api, "f", json!({})).await;
    let applied = Arc::new(AtomicUsize::new(0));
    let cleaned = Arc::new(AtomicUsize::new(0));
    let run = |obj: ConfigMap| {
        let (applied, cleaned, api) = (applied.clone(), cleaned.clone(), api.clone());
        async move {
            finalizer(&api, FINALIZER, Arc::new(obj), |event| async move {
                match event {
                    Event::Apply(_) => applied.fetch_add(1, Ordering::SeqCst),
                    Event::Cleanup(_) => cleaned.fetch_add(1, Ordering::SeqCst),
                };
                Ok::<_, std::io::Error>(Action::await_change())
            })
            .await
        }
    };

    // First pass: the finalizer is added (test /metadata/finalizers == null, add the list).
    run(api.get("f").await.unwrap()).await.expect("finalizer added");
    let cm = api.get("f").await.unwrap();
    assert_eq!(cm.metadata.finalizers, Some(vec![FINALIZER.to_string()]));
    assert_eq!(applied.load(Ordering::SeqCst), 0);

    // Second pass: the reconcile runs.
    run(cm).await.expect("reconciled");
    assert_eq!(applied.load(Ordering::SeqCst), 1);

    // Deletion waits for the finalizer; the helper runs cleanup and removes it (test + remove by index).
    api.delete("f", &DeleteParams::default()).await.unwrap();
    let terminating = api.get("f").await.unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());
    run(terminating).await.expect("cleaned up");
    assert_eq!(cleaned.load(Ordering::SeqCst), 1);
    assert!(
        api.get_opt("f").await.unwrap().is_none(),
        "gone once the finalizer is removed"
    );
}

#[tokio::test]
async fn finalizer_helper_appends_to_existing_finalizers() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    create_cm(
        &api,
        "g",
        json!({"metadata": {"name": "g", "finalizers": ["other.io/x"]}}),
    )
    .await;
    let obj = api.get("g").await.unwrap();
    finalizer(&api, FINALIZER, Arc::new(obj), |_| async {
        Ok::<_, std::io::Error>(Action::await_change())
    })
    .await
    .unwrap();
    let cm = api.get("g").await.unwrap();
    assert_eq!(
        cm.metadata.finalizers,
        Some(vec!["other.io/x".to_string(), FINALIZER.to_string()])
    );
}

#[tokio::test]
async fn json_patch_edge_cases_answer_like_kube_apiserver() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    create_cm(
        &api,
        "p",
        json!({"metadata": {"name": "p", "annotations": {"keep": "1"}}}),
    )
    .await;
    let path = "/api/v1/namespaces/default/configmaps/p";
    let generic = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "the server rejected our request due to an error in our request",
        "reason": "Invalid", "details": {}, "code": 422
    });

    // test of a missing member against null, replace of a missing key, '-' and negative indices.
    let (code, body) = json_patch(
        &t.client,
        path,
        &json!([
            {"op": "test", "path": "/metadata/labels", "value": null},
            {"op": "replace", "path": "/metadata/annotations/new", "value": "x"},
            {"op": "add", "path": "/metadata/finalizers", "value": ["a.io/one"]},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "a.io/three"},
            {"op": "add", "path": "/metadata/finalizers/-1", "value": "a.io/four"},
            {"op": "add", "path": "/metadata/finalizers/1", "value": "a.io/two"},
            {"op": "copy", "from": "/data/a", "path": "/data/b"},
            {"op": "move", "from": "/metadata/annotations/keep", "path": "/metadata/annotations/moved"},
            {"op": "test", "path": "/data/b", "value": "1"}
        ]),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["metadata"]["annotations"], json!({"moved": "1", "new": "x"}));
    assert_eq!(body["data"], json!({"a": "1", "b": "1"}));
    assert_eq!(
        body["metadata"]["finalizers"],
        json!(["a.io/one", "a.io/two", "a.io/three", "a.io/four"])
    );

    // Failures are the generic 422 and change nothing.
    for ops in [
        json!([{"op": "test", "path": "/data/a", "value": "2"}]),
        json!([{"op": "remove", "path": "/metadata/labels/nope"}]),
        json!([{"op": "add", "path": "/metadata/labels/x", "value": "1"}]),
        json!([{"op": "remove", "path": "/metadata/finalizers/9"}]),
        json!([{"op": "frobnicate", "path": "/data/a"}]),
        json!([{"op": "add", "path": "/data/z", "value": "1"}, {"op": "test", "path": "/data/a", "value": 1}]),
    ] {
        let (code, body) = json_patch(&t.client, path, &ops).await;
        assert_eq!((code, &body), (422, &generic), "{ops}");
    }
    assert!(!api.get("p").await.unwrap().data.unwrap().contains_key("z"));

    // A body that is not a patch is 400, with the server's decoding message.
    let (code, body) = json_patch(&t.client, path, &json!({"op": "add"})).await;
    assert_eq!(code, 400);
    assert_eq!(
        body["message"],
        "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
    );
    // Where the Go code panics, the server answers 500.
    let (code, _) = json_patch(
        &t.client,
        path,
        &json!([{"op": "test", "path": "/metadata/labels"}]),
    )
    .await;
    assert_eq!(code, 500);
    // Unknown members of operations are Warnings (fieldValidation=Warn, the default).
    let req = http::Request::builder()
        .method("PATCH")
        .uri(path)
        .header("Content-Type", "application/json-patch+json")
        .body(kube::client::Body::from(
            br#"[{"op":"add","path":"/data/w","value":"1","note":"x"}]"#.to_vec(),
        ))
        .unwrap();
    let resp = t.client.send(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let warnings: Vec<&str> = resp
        .headers()
        .get_all("Warning")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert_eq!(warnings, vec![r#"299 - "json patch unknown field \"[0].note\"""#]);
    // A missing object is 404 before the patch is looked at.
    let (code, _) = json_patch(
        &t.client,
        "/api/v1/namespaces/default/configmaps/nope",
        &json!({}),
    )
    .await;
    assert_eq!(code, 404);
}
