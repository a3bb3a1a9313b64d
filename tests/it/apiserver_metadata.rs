//! Metadata-only requests (`Accept: application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1`)
//! through kube-rs: `get_metadata`, `list_metadata`, `patch_metadata` and
//! `kube::runtime::metadata_watcher`, plus the raw bodies (kind PartialObjectMetadata, only metadata).

use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use serde_json::{Value, json};

use crate::support::{TestServer, install_widgets};

const META: &str = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";
const META_LIST: &str = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";

async fn get_raw(client: &kube::Client, path: &str, accept: &str) -> (u16, Value) {
    let req = http::Request::builder()
        .uri(path)
        .header("Accept", accept)
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = client.send(req).await.unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.unwrap();
    (code, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn cm(name: &str) -> ConfigMap {
    serde_json::from_value(
        json!({"metadata": {"name": name, "labels": {"app": "m"}}, "data": {"secret": "x"}}),
    )
    .unwrap()
}

#[tokio::test]
async fn get_list_and_patch_metadata_carry_only_metadata() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    api.create(&PostParams::default(), &cm("a")).await.unwrap();
    api.create(&PostParams::default(), &cm("b")).await.unwrap();

    let one = api.get_metadata("a").await.unwrap();
    let types = one.types.clone().expect("kind and apiVersion");
    assert_eq!(
        (types.api_version.as_str(), types.kind.as_str()),
        ("meta.k8s.io/v1", "PartialObjectMetadata")
    );
    assert_eq!(one.metadata.name.as_deref(), Some("a"));
    assert!(one.metadata.uid.is_some());

    let list = api
        .list_metadata(&ListParams::default().labels("app=m"))
        .await
        .unwrap();
    let names: Vec<_> = list
        .items
        .iter()
        .filter_map(|i| i.metadata.name.clone())
        .collect();
    assert_eq!(names, vec!["a", "b"]);
    assert!(list.metadata.resource_version.is_some());
    assert_eq!(list.types.kind, "PartialObjectMetadataList");

    let patched = api
        .patch_metadata(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"seen": "yes"}}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.types.unwrap().kind, "PartialObjectMetadata");
    assert_eq!(patched.metadata.annotations.unwrap()["seen"], "yes");
    assert_eq!(
        api.get("a").await.unwrap().data.unwrap()["secret"],
        "x",
        "only the response is trimmed"
    );

    // The raw bodies: only kind, apiVersion and metadata.
    let (code, body) = get_raw(&t.client, "/api/v1/namespaces/default/configmaps/a", META).await;
    assert_eq!(code, 200);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 3, "{body}");
    assert_eq!(body["kind"], "PartialObjectMetadata");
    let (_, body) = get_raw(&t.client, "/api/v1/namespaces/default/configmaps", META_LIST).await;
    assert_eq!(body["apiVersion"], "meta.k8s.io/v1");
    assert_eq!(body["items"][0]["kind"], "PartialObjectMetadata");
    assert!(body["items"][0].get("data").is_none());
    // v1beta1 too; and the list form of one object is 406 as upstream.
    let (_, body) = get_raw(
        &t.client,
        "/api/v1/namespaces/default/configmaps/a",
        "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1beta1",
    )
    .await;
    assert_eq!(body["apiVersion"], "meta.k8s.io/v1beta1");
    let (code, body) = get_raw(&t.client, "/api/v1/namespaces/default/configmaps/a", META_LIST).await;
    assert_eq!((code, body["reason"].as_str()), (406, Some("NotAcceptable")));
    // Custom resources too.
    let ar = install_widgets(&t.client).await;
    let widgets: Api<kube::api::DynamicObject> = Api::namespaced_with(t.client.clone(), "default", &ar);
    let w = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}})).unwrap();
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let meta = widgets.get_metadata("w").await.unwrap();
    assert_eq!(meta.types.unwrap().kind, "PartialObjectMetadata");
}

#[tokio::test]
#[allow(deprecated)] // kube 5 prefers `watcher` on `Api<PartialObjectMeta<K>>`; both send the same requests.
async fn metadata_watcher_sees_added_modified_and_deleted() {
    let t = TestServer::start().await;
    let api: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    api.create(&PostParams::default(), &cm("before")).await.unwrap();
    let mut stream = watcher::metadata_watcher(api.clone(), watcher::Config::default()).boxed();
    let mut seen: Vec<String> = Vec::new();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("an event in time")
            .expect("open")
            .expect("no error")
    };
    loop {
        match next().await {
            watcher::Event::InitApply(o) => {
                assert_eq!(o.types.as_ref().unwrap().kind, "PartialObjectMetadata");
                seen.push(format!("init {}", o.metadata.name.unwrap()));
            }
            watcher::Event::InitDone => break,
            _ => {}
        }
    }
    api.create(&PostParams::default(), &cm("c")).await.unwrap();
    api.patch(
        "c",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"x": "1"}}})),
    )
    .await
    .unwrap();
    api.delete("c", &DeleteParams::default()).await.unwrap();
    while seen.len() < 4 {
        match next().await {
            watcher::Event::Apply(o) => {
                let types = o.types.clone().unwrap();
                assert_eq!(
                    (types.api_version.as_str(), types.kind.as_str()),
                    ("meta.k8s.io/v1", "PartialObjectMetadata")
                );
                let labeled = o.metadata.labels.unwrap_or_default().contains_key("x");
                seen.push(format!("apply {} {labeled}", o.metadata.name.unwrap()));
            }
            watcher::Event::Delete(o) => seen.push(format!("delete {}", o.metadata.name.unwrap())),
            _ => {}
        }
    }
    assert_eq!(
        seen,
        vec!["init before", "apply c false", "apply c true", "delete c"]
    );

    // The raw watch events carry PartialObjectMetadata objects without data.
    let req = http::Request::builder()
        .uri("/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1")
        .header("Accept", META)
        .body(kube::client::Body::empty())
        .unwrap();
    let resp = t.client.send(req).await.unwrap();
    let bytes = resp.into_body().collect_bytes().await.unwrap();
    let first: Value = serde_json::from_slice(bytes.split(|b| *b == b'\n').next().unwrap()).unwrap();
    assert_eq!(first["type"], "ADDED");
    assert_eq!(first["object"]["kind"], "PartialObjectMetadata");
    assert!(first["object"].get("data").is_none());
}
