//! CRUD, optimistic concurrency, selectors, pagination, discovery and authentication through kube-rs.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use serde_json::json;

use crate::support::TestServer;

fn cm(name: &str, labels: &[(&str, &str)], data: &[(&str, &str)]) -> ConfigMap {
    let mut c = ConfigMap::default();
    c.metadata.name = Some(name.into());
    c.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    c.data = Some(data.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect());
    c
}

fn api_error(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn configmap_crud_with_metadata_and_errors() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let created = cms
        .create(&PostParams::default(), &cm("a", &[], &[("k", "v")]))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert_eq!(meta.namespace.as_deref(), Some("default"));
    assert!(meta.uid.as_ref().is_some_and(|u| u.len() == 36));
    assert!(meta.creation_timestamp.is_some());
    assert!(meta.generation.is_none(), "ConfigMaps have no generation");
    let rv1: u64 = meta.resource_version.as_ref().unwrap().parse().unwrap();

    let err = api_error(
        cms.create(&PostParams::default(), &cm("a", &[], &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));

    let mut got = cms.get("a").await.unwrap();
    got.data.as_mut().unwrap().insert("k".into(), "v2".into());
    let updated = cms.replace("a", &PostParams::default(), &got).await.unwrap();
    let rv2: u64 = updated
        .metadata
        .resource_version
        .as_ref()
        .unwrap()
        .parse()
        .unwrap();
    assert!(rv2 > rv1, "resourceVersion increases");
    assert_eq!(updated.metadata.uid, created.metadata.uid);

    // A stale resourceVersion is a 409 Conflict.
    let err = api_error(cms.replace("a", &PostParams::default(), &got).await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));

    let err = api_error(cms.get("missing").await.unwrap_err());
    assert_eq!((err.code, err.reason.as_str()), (404, "NotFound"));
    assert_eq!(err.message, "configmaps \"missing\" not found");

    cms.delete("a", &DeleteParams::default()).await.unwrap();
    assert_eq!(api_error(cms.get("a").await.unwrap_err()).code, 404);

    // A namespaced write into a namespace that does not exist fails as in Kubernetes.
    let nowhere: Api<ConfigMap> = Api::namespaced(t.client.clone(), "nowhere");
    let err = api_error(
        nowhere
            .create(&PostParams::default(), &cm("x", &[], &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"nowhere\" not found");
    t.server.shutdown().await;
}

#[tokio::test]
async fn generate_name_and_invalid_names() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    let mut c = ConfigMap::default();
    c.metadata.generate_name = Some("gen-".into());
    let created = cms.create(&PostParams::default(), &c).await.unwrap();
    let name = created.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");
    let err = api_error(
        cms.create(&PostParams::default(), &cm("Bad_Name", &[], &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    assert!(
        err.message
            .starts_with("ConfigMap \"Bad_Name\" is invalid: metadata.name"),
        "{}",
        err.message
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn selectors_and_pagination() {
    let t = TestServer::start().await;
    let namespaces: Api<Namespace> = Api::all(t.client.clone());
    let mut ns = Namespace::default();
    ns.metadata.name = Some("other".into());
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    for i in 0..7 {
        let tier = if i % 2 == 0 { "front" } else { "back" };
        cms.create(
            &PostParams::default(),
            &cm(
                &format!("cm-{i}"),
                &[("tier", tier), ("idx", &i.to_string())],
                &[],
            ),
        )
        .await
        .unwrap();
    }
    let other: Api<ConfigMap> = Api::namespaced(t.client.clone(), "other");
    other
        .create(&PostParams::default(), &cm("cm-x", &[("tier", "front")], &[]))
        .await
        .unwrap();

    let names = |l: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        l.items.into_iter().map(|c| c.metadata.name.unwrap()).collect()
    };
    let front = cms
        .list(&ListParams::default().labels("tier=front"))
        .await
        .unwrap();
    assert_eq!(names(front), vec!["cm-0", "cm-2", "cm-4", "cm-6"]);
    let set = cms
        .list(&ListParams::default().labels("tier in (back),idx notin (1)"))
        .await
        .unwrap();
    assert_eq!(names(set), vec!["cm-3", "cm-5"]);
    let by_name = cms
        .list(&ListParams::default().fields("metadata.name=cm-3"))
        .await
        .unwrap();
    assert_eq!(names(by_name), vec!["cm-3"]);
    let all: Api<ConfigMap> = Api::all(t.client.clone());
    let everywhere = all
        .list(&ListParams::default().labels("tier=front"))
        .await
        .unwrap();
    assert_eq!(everywhere.items.len(), 5);
    let in_other = all
        .list(&ListParams::default().fields("metadata.namespace=other"))
        .await
        .unwrap();
    assert_eq!(names(in_other), vec!["cm-x"]);

    let bad = api_error(cms.list(&ListParams::default().labels("a=(")).await.unwrap_err());
    assert_eq!(bad.code, 400);

    // Pagination: pages of 3 keep the first page's resourceVersion and cover everything once.
    let mut seen = Vec::new();
    let mut lp = ListParams::default().limit(3);
    let page = cms.list(&lp).await.unwrap();
    let first_rv = page.metadata.resource_version.clone();
    assert_eq!(page.metadata.remaining_item_count, Some(4));
    let mut token = page.metadata.continue_.clone();
    seen.extend(names(page));
    while let Some(t) = token.filter(|t| !t.is_empty()) {
        lp = lp.continue_token(&t);
        let page = cms.list(&lp).await.unwrap();
        assert_eq!(page.metadata.resource_version, first_rv);
        token = page.metadata.continue_.clone();
        seen.extend(names(page));
    }
    assert_eq!(seen, (0..7).map(|i| format!("cm-{i}")).collect::<Vec<_>>());
    t.server.shutdown().await;
}

#[tokio::test]
async fn generation_and_status_subresource_isolation() {
    let t = TestServer::start().await;
    let deploys: Api<Deployment> = Api::namespaced(t.client.clone(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1"}]}}
        },
        "status": {"replicas": 99}
    }))
    .unwrap();
    let created = deploys.create(&PostParams::default(), &d).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));

    // Metadata-only change: generation stays.
    let p = Patch::Merge(json!({"metadata": {"labels": {"extra": "1"}}}));
    let after_meta = deploys.patch("web", &PatchParams::default(), &p).await.unwrap();
    assert_eq!(after_meta.metadata.generation, Some(1));

    // Status through /status changes only status, and not the generation.
    let p = Patch::Merge(json!({"status": {"replicas": 2, "readyReplicas": 1}, "spec": {"replicas": 50}}));
    let after_status = deploys
        .patch_status("web", &PatchParams::default(), &p)
        .await
        .unwrap();
    assert_eq!(after_status.status.as_ref().unwrap().ready_replicas, Some(1));
    assert_eq!(
        after_status.spec.as_ref().unwrap().replicas,
        Some(2),
        "a status write ignores spec"
    );
    assert_eq!(after_status.metadata.generation, Some(1));

    // Spec change bumps the generation; status sent to the main resource is ignored.
    let p = Patch::Merge(json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 7}}));
    let after_spec = deploys.patch("web", &PatchParams::default(), &p).await.unwrap();
    assert_eq!(after_spec.metadata.generation, Some(2));
    assert_eq!(
        after_spec.status.as_ref().unwrap().ready_replicas,
        Some(1),
        "a main write keeps status"
    );

    // Strategic merge patch merges containers by name.
    let p = Patch::Strategic(
        json!({"spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "busybox"}]}}}}),
    );
    let smp = deploys.patch("web", &PatchParams::default(), &p).await.unwrap();
    let containers = smp.spec.unwrap().template.spec.unwrap().containers;
    let mut names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(names, vec!["sidecar", "web"]);
    assert_eq!(
        containers
            .iter()
            .find(|c| c.name == "web")
            .unwrap()
            .image
            .as_deref(),
        Some("nginx:1")
    );

    // The scale subresource reads and writes spec.replicas.
    let scale = deploys.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(3));
    let p = Patch::Merge(json!({"spec": {"replicas": 5}}));
    deploys
        .patch_scale("web", &PatchParams::default(), &p)
        .await
        .unwrap();
    assert_eq!(deploys.get("web").await.unwrap().spec.unwrap().replicas, Some(5));
    t.server.shutdown().await;
}

#[tokio::test]
async fn concurrent_writers_never_lose_an_update() {
    let t = TestServer::start().await;
    let cms: Api<ConfigMap> = Api::namespaced(t.client.clone(), "default");
    cms.create(&PostParams::default(), &cm("counter", &[], &[("n", "0")]))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let cms = cms.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let mut c = cms.get("counter").await.unwrap();
                let data = c.data.get_or_insert_with(BTreeMap::new);
                let n: u64 = data["n"].parse().unwrap();
                data.insert("n".into(), (n + 1).to_string());
                match cms.replace("counter", &PostParams::default(), &c).await {
                    Ok(_) => return,
                    Err(kube::Error::Api(s)) if s.code == 409 => continue,
                    Err(e) => panic!("unexpected error {e}"),
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let c = cms.get("counter").await.unwrap();
    assert_eq!(c.data.unwrap()["n"], "100");
    t.server.shutdown().await;
}

#[tokio::test]
async fn discovery_lists_builtin_kinds_with_scope_and_verbs() {
    let t = TestServer::start().await;
    let discovery = Discovery::new(t.client.clone()).run().await.unwrap();
    let mut found = BTreeMap::new();
    for group in discovery.groups() {
        for (ar, caps) in group.recommended_resources() {
            found.insert(
                format!("{}/{}", ar.group, ar.plural),
                (caps.scope.clone(), caps.operations.clone()),
            );
        }
    }
    for (key, namespaced) in [
        ("/configmaps", true),
        ("/namespaces", false),
        ("apps/deployments", true),
        ("rbac.authorization.k8s.io/clusterroles", false),
        ("coordination.k8s.io/leases", true),
        ("apiextensions.k8s.io/customresourcedefinitions", false),
        ("policy/poddisruptionbudgets", true),
        ("events.k8s.io/events", true),
    ] {
        let (scope, verbs) = found.get(key).unwrap_or_else(|| panic!("{key} not discovered"));
        assert_eq!(matches!(scope, Scope::Namespaced), namespaced, "{key}");
        assert!(verbs.iter().any(|v| v == "watch"), "{key} verbs {verbs:?}");
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn requests_need_the_token() {
    let t = TestServer::start().await;
    let http = reqwest_like_get(&t, None, "/api/v1/namespaces").await;
    assert_eq!(http.0, 403);
    let http = reqwest_like_get(&t, Some("wrong"), "/api/v1/namespaces").await;
    assert_eq!(http.0, 401);
    let http = reqwest_like_get(&t, None, "/version").await;
    assert_eq!(http.0, 200);
    t.server.shutdown().await;
}

/// A raw GET through kube's HTTP client with the given bearer token (or none).
async fn reqwest_like_get(t: &TestServer, token: Option<&str>, path: &str) -> (u16, String) {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let mut kc = Kubeconfig::from_yaml(&t.server.kubeconfig()).unwrap();
    for user in &mut kc.auth_infos {
        if let Some(info) = user.auth_info.as_mut() {
            info.token = token.map(|t| t.to_string().into());
        }
    }
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let client = kube::Client::try_from(config).unwrap();
    let req = http::Request::get(path).body(Vec::new()).unwrap();
    match client.request_text(req).await {
        Ok(body) => (200, body),
        Err(kube::Error::Api(s)) => (s.code, s.message),
        Err(e) => panic!("{e}"),
    }
}
