//! Durability: after a restart every object, the revision counter, served CRDs and watch history
//! are back.

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, PostParams, WatchEvent, WatchParams};
use serde_json::json;

use crate::support::{TestServer, install_widgets};

#[tokio::test]
async fn everything_is_back_after_a_restart() {
    let t = TestServer::start().await;
    let ar = install_widgets(&t.client).await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let mut last_rv = String::new();
    for i in 0..20 {
        let c: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": format!("p{i}")}, "data": {"i": i.to_string()}}),
        )
        .unwrap();
        last_rv = cms
            .create(&PostParams::default(), &c)
            .await
            .unwrap()
            .metadata
            .resource_version
            .unwrap();
    }
    let widgets: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}})).unwrap();
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let writes_before = t.server.write_count();
    assert!(writes_before >= 21);

    let t = t.restart(|_| {}).await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let list = cms.list(&Default::default()).await.unwrap();
    assert_eq!(
        list.items
            .iter()
            .filter(|c| c.metadata.name.as_deref().unwrap().starts_with('p'))
            .count(),
        20
    );
    assert_eq!(cms.get("p7").await.unwrap().data.unwrap()["i"], "7");
    let widgets: Api<DynamicObject> = Api::namespaced_with(t.client.clone(), "default", &ar);
    assert_eq!(
        widgets.get("w").await.unwrap().data["spec"]["size"],
        1,
        "the CRD is served again"
    );

    // The revision counter continues, and a watch resumes from a revision before the restart.
    let mut stream = cms
        .watch(&WatchParams::default(), &last_rv)
        .await
        .unwrap()
        .boxed();
    let c: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "after"}})).unwrap();
    let after = cms.create(&PostParams::default(), &c).await.unwrap();
    assert!(
        after.metadata.resource_version.unwrap().parse::<u64>().unwrap() > last_rv.parse::<u64>().unwrap()
    );
    let first = tokio::time::timeout(std::time::Duration::from_secs(10), stream.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match first {
        WatchEvent::Added(c) => assert_eq!(c.metadata.name.as_deref(), Some("after")),
        other => panic!("unexpected {other:?}"),
    }
    t.server.shutdown().await;
}
