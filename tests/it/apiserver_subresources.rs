//! Subresources and kinds clients call even where nothing runs Pods: `pods/eviction` against
//! PodDisruptionBudgets, `pods/log`, `pods/ephemeralcontainers`, `pods/binding`, and through the real
//! kubectl: `get` of every core/aggregation kind, `cordon`, `drain`, `certificate approve`, `logs`.

use std::process::Command;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::Api;
use kube::api::{EvictParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::apiserver_core::raw;
use crate::support::TestServer;

fn pod(name: &str, labels: Value) -> Pod {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]}}))
    .unwrap()
}

/// Marks a Pod Running and Ready through `pods/status`, as a kubelet would.
async fn run(pods: &Api<Pod>, name: &str) {
    let status = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// A client that does not retry 429 answers (kube-rs retries them 15 times by default).
async fn no_retry_client(t: &TestServer) -> kube::Client {
    let kc = kube::config::Kubeconfig::from_yaml(&t.server.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kc, &Default::default())
        .await
        .unwrap();
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

#[tokio::test]
async fn eviction_honours_pod_disruption_budgets() {
    let t = TestServer::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let no_retry = no_retry_client(&t).await;
    for name in ["a", "b", "c"] {
        pods.create(&PostParams::default(), &pod(name, json!({"app": "web"})))
            .await
            .unwrap();
        run(&pods, name).await;
    }
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(t.client.clone(), "default");
    let pdb: PodDisruptionBudget = serde_json::from_value(json!({"metadata": {"name": "web"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}}))
    .unwrap();
    pdbs.create(&PostParams::default(), &pdb).await.unwrap();
    // 3 healthy, 2 needed: one eviction is allowed.
    let status = pods.evict("a", &EvictParams::default()).await.unwrap();
    assert_eq!(status.status, Some(kube::core::response::StatusSummary::Success));
    assert!(pods.get_opt("a").await.unwrap().is_none());
    // 2 healthy, 2 needed: refused with kube-apiserver's 429.
    let err = Api::<Pod>::namespaced(no_retry.clone(), "default")
        .evict("b", &EvictParams::default())
        .await
        .unwrap_err();
    let kube::Error::Api(s) = err else { panic!("{err}") };
    assert_eq!(s.code, 429);
    assert_eq!(s.reason, "TooManyRequests");
    assert_eq!(
        s.message,
        "Cannot evict pod as it would violate the pod's disruption budget."
    );
    let (code, body) = raw(
        &no_retry,
        "POST",
        "/api/v1/namespaces/default/pods/b/eviction",
        Some("application/json"),
        serde_json::to_vec(&json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "b", "namespace": "default"}})).unwrap(),
    )
    .await;
    assert_eq!(code, 429);
    assert_eq!(
        String::from_utf8(body).unwrap(),
        "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":\"Cannot evict pod as it would violate the pod's disruption budget.\",\"reason\":\"TooManyRequests\",\"details\":{\"causes\":[{\"reason\":\"DisruptionBudget\",\"message\":\"The disruption budget web needs 2 healthy pods and has 2 currently\"}]},\"code\":429}\n"
    );
    assert!(pods.get_opt("b").await.unwrap().is_some());
    // A percentage budget: maxUnavailable 50% of 2 rounds up to 1.
    pdbs.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"minAvailable": null, "maxUnavailable": "50%"}})),
    )
    .await
    .unwrap();
    pods.evict("b", &EvictParams::default()).await.unwrap();
    // A Pending Pod is evicted whatever the budget says.
    pods.create(&PostParams::default(), &pod("d", json!({"app": "web"})))
        .await
        .unwrap();
    pods.evict("d", &EvictParams::default()).await.unwrap();
    assert!(pods.get_opt("d").await.unwrap().is_none());
    t.server.shutdown().await;
}

#[tokio::test]
async fn pod_log_ephemeral_containers_and_binding() {
    let t = TestServer::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    // An unscheduled Pod's log is empty (204 No Content, as kube-apiserver answers).
    let (code, body) = raw(
        &t.client,
        "GET",
        "/api/v1/namespaces/default/pods/p/log",
        None,
        vec![],
    )
    .await;
    assert_eq!((code, body.len()), (204, 0));
    assert_eq!(pods.logs("p", &LogParams::default()).await.unwrap(), "");
    let err = pods
        .logs(
            "p",
            &LogParams {
                container: Some("nope".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 400 && s.message == "container nope is not valid for pod p"),
        "{err}"
    );
    // ephemeralcontainers changes only spec.ephemeralContainers.
    let patch = json!({"metadata": {"labels": {"ignored": "yes"}},
        "spec": {"ephemeralContainers": [{"name": "debug", "image": "busybox:1.36"}]}});
    let (code, body) = raw(
        &t.client,
        "PATCH",
        "/api/v1/namespaces/default/pods/p/ephemeralcontainers",
        Some("application/strategic-merge-patch+json"),
        serde_json::to_vec(&patch).unwrap(),
    )
    .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let got: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(got["spec"]["ephemeralContainers"][0]["name"], "debug");
    assert_eq!(
        got["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"],
        "File"
    );
    assert!(got["metadata"]["labels"].get("ignored").is_none());
    // binding sets the node once.
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"}, "target": {"kind": "Node", "name": "n1"}});
    let (code, _) = raw(
        &t.client,
        "POST",
        "/api/v1/namespaces/default/pods/p/binding",
        Some("application/json"),
        serde_json::to_vec(&binding).unwrap(),
    )
    .await;
    assert_eq!(code, 201);
    assert_eq!(
        pods.get("p").await.unwrap().spec.unwrap().node_name.as_deref(),
        Some("n1")
    );
    let (code, _) = raw(
        &t.client,
        "POST",
        "/api/v1/namespaces/default/pods/p/binding",
        Some("application/json"),
        serde_json::to_vec(&binding).unwrap(),
    )
    .await;
    assert_eq!(code, 409);
    t.server.shutdown().await;
}

fn kubectl(kubeconfig: &std::path::Path, cache: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .env("KUBECONFIG", kubeconfig)
        .arg("--cache-dir")
        .arg(cache)
        .args(args)
        .output()
        .expect("kubectl runs");
    assert!(
        out.status.success(),
        "kubectl {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_gets_core_kinds_cordons_approves_and_reads_logs() {
    let t = TestServer::start().await;
    let nodes: Api<Node> = Api::all(t.client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "n1"}})).unwrap(),
        )
        .await
        .unwrap();
    let csr = json!({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
        "metadata": {"name": "req"},
        "spec": {"request": "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURSBSRVFVRVNULS0tLS0K", "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"]}});
    let (code, body) = raw(
        &t.client,
        "POST",
        "/apis/certificates.k8s.io/v1/certificatesigningrequests",
        Some("application/json"),
        serde_json::to_vec(&csr).unwrap(),
    )
    .await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    pods.create(&PostParams::default(), &pod("p", json!({})))
        .await
        .unwrap();
    // A Pod on the node, for `kubectl drain` to evict.
    let mut on_node = pod("q", json!({}));
    on_node.spec.as_mut().unwrap().node_name = Some("n1".into());
    pods.create(&PostParams::default(), &on_node).await.unwrap();
    let kubeconfig = t.server.kubeconfig_path().to_path_buf();
    let cache = t.dir.path().join("kube-cache");
    let out = tokio::task::spawn_blocking(move || {
        let k = |args: &[&str]| kubectl(&kubeconfig, &cache, args);
        let got = k(&["get", "nodes,endpoints,rc,limits,quota,apiservices,csr,cs", "-A"]);
        k(&["cordon", "n1"]);
        k(&["drain", "n1", "--force", "--timeout=30s"]);
        k(&["certificate", "approve", "req"]);
        let logs = k(&["logs", "p"]);
        (got, logs)
    })
    .await
    .unwrap();
    assert!(out.0.contains("n1"), "{}", out.0);
    assert!(out.0.contains("kubernetes"), "{}", out.0);
    assert!(out.0.contains("etcd-0"), "{}", out.0);
    assert_eq!(out.1, "");
    assert!(pods.get_opt("q").await.unwrap().is_none(), "drain evicted q");
    assert!(pods.get_opt("p").await.unwrap().is_some(), "p is on no node");
    let node = nodes.get("n1").await.unwrap();
    assert_eq!(node.spec.unwrap().unschedulable, Some(true));
    let (_, body) = raw(
        &t.client,
        "GET",
        "/apis/certificates.k8s.io/v1/certificatesigningrequests/req",
        None,
        vec![],
    )
    .await;
    let csr: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(csr["status"]["conditions"][0]["type"], "Approved");
    assert_eq!(csr["status"]["conditions"][0]["reason"], "KubectlApprove");
    t.server.shutdown().await;
}
