//! `GET /metrics` of the embedded API server: requests by verb, resource and code, the latency
//! histogram, open watches and stored objects, for the admin token only.

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams, WatchParams};

use crate::support::TestServer;

async fn scrape(client: &kube::Client) -> String {
    let req = http::Request::get("/metrics").body(Vec::new()).unwrap();
    client.request_text(req).await.expect("GET /metrics")
}

#[tokio::test]
async fn metrics_count_requests_watches_and_objects() {
    let s = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(s.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "m"}})).unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    cms.get("m").await.unwrap();
    assert!(cms.get("absent").await.is_err());
    let mut watch = cms.watch(&WatchParams::default(), "0").await.unwrap().boxed();
    let _first = watch.next().await;

    let text = scrape(&s.client).await;
    for line in [
        r#"apiserver_request_total{verb="create",group="",resource="configmaps",subresource="",code="201"} 1"#,
        r#"apiserver_request_total{verb="get",group="",resource="configmaps",subresource="",code="200"} 1"#,
        r#"apiserver_request_total{verb="get",group="",resource="configmaps",subresource="",code="404"} 1"#,
        r#"apiserver_longrunning_requests{verb="watch",group="",resource="configmaps"} 1"#,
        r#"apiserver_request_duration_seconds_count{verb="get",group="",resource="configmaps"} 2"#,
        "# TYPE apiserver_storage_objects gauge",
    ] {
        assert!(text.contains(line), "{line} missing from:\n{text}");
    }
    assert!(text.contains("apiserver_storage_objects{resource="), "{text}");

    drop(watch);
    let mut closed = false;
    for _ in 0..50 {
        let text = scrape(&s.client).await;
        if text.contains(r#"apiserver_longrunning_requests{verb="watch",group="",resource="configmaps"} 0"#) {
            closed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(closed, "the closed watch is no longer counted");
}
