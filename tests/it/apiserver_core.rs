//! Core kinds as other clients expect them from the embedded API server: defaults and initial status
//! on create (Pods Pending, Services with a unique, persisted clusterIP, the recorded Deployment
//! defaults), `default/kubernetes`, DELETE answers and `Status` bodies byte for byte against
//! kube-apiserver's recordings, and the core/aggregation kinds in discovery and through kubectl.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Endpoints, Pod, Service};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use serde_json::{Value, json};

use crate::support::TestServer;

/// `shared/k8s-reference` lies beside the repository (the manifest is `host/wasmop/Cargo.toml`).
fn reference_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/k8s-reference");
    dir.join("README.md").exists().then_some(dir)
}

/// One recorded exchange: request line, content type and body; response code and body.
pub struct Recording {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    pub request_body: Vec<u8>,
    pub code: u16,
    /// The response body as compact JSON in the server's key order.
    pub body: String,
}

/// Removes whitespace outside JSON strings: jq's indentation back to the wire's compact form.
pub fn compact(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in json.chars() {
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

pub fn load(file: &str) -> Recording {
    let dir = reference_dir().expect("shared/k8s-reference is present");
    let text = std::fs::read_to_string(dir.join(file)).unwrap();
    let request = text.split("# REQUEST\n").nth(1).unwrap();
    let (request, response) = request.split_once("# RESPONSE\n").unwrap();
    let mut lines = request.lines();
    let mut first = lines.next().unwrap().split(' ');
    let method = first.next().unwrap().to_string();
    let path = first.next().unwrap().to_string();
    let mut content_type = None;
    let mut body = String::new();
    let mut in_body = false;
    for l in lines {
        if in_body {
            body.push_str(l);
            body.push('\n');
        } else if l.is_empty() {
            in_body = true;
        } else if let Some(ct) = l.strip_prefix("Content-Type: ") {
            content_type = Some(ct.to_string());
        }
    }
    let code: u16 = response
        .lines()
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let resp_body = response
        .split_once("# [body")
        .unwrap()
        .1
        .split_once('\n')
        .unwrap()
        .1;
    Recording {
        method,
        path,
        content_type,
        request_body: body.trim().as_bytes().to_vec(),
        code,
        body: compact(resp_body),
    }
}

/// A raw request through the kube client: status code and body bytes.
pub async fn raw(
    client: &kube::Client,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (u16, Vec<u8>) {
    let mut req = http::Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    req = req.header("User-Agent", "k8s-reference-recorder/1.0");
    let resp = client
        .send(req.body(kube::client::Body::from(body)).unwrap())
        .await
        .unwrap();
    let code = resp.status().as_u16();
    let bytes = resp.into_body().collect_bytes().await.unwrap();
    (code, bytes.to_vec())
}

async fn create_ns(client: &kube::Client, name: &str) {
    let body =
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
            .unwrap();
    let (code, _) = raw(
        client,
        "POST",
        "/api/v1/namespaces",
        Some("application/json"),
        body,
    )
    .await;
    assert_eq!(code, 201);
}

#[tokio::test]
async fn status_bodies_match_the_recordings_byte_for_byte() {
    let t = TestServer::start().await;
    create_ns(&t.client, "ref").await;
    let cm = serde_json::to_vec(
        &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "meta-cm"}}),
    )
    .unwrap();
    raw(
        &t.client,
        "POST",
        "/api/v1/namespaces/ref/configmaps",
        Some("application/json"),
        cm,
    )
    .await;
    for file in [
        "05-errors/404-get-not-found.http",
        "05-errors/404-delete-nonexistent.http",
        "05-errors/404-create-in-missing-namespace.http",
        "05-errors/409-already-exists.http",
        "05-errors/409-conflict-stale-resourceversion.http",
        "05-errors/422-invalid-builtin-name.http",
        "05-errors/405-post-to-named-resource.http",
        "05-errors/400-name-mismatch.http",
    ] {
        let rec = load(file);
        let (code, body) = raw(
            &t.client,
            &rec.method,
            &rec.path,
            rec.content_type.as_deref(),
            rec.request_body.clone(),
        )
        .await;
        assert_eq!(code, rec.code, "{file}");
        let body = String::from_utf8(body).unwrap();
        assert_eq!(body, format!("{}\n", rec.body), "{file}");
    }
    t.server.shutdown().await;
}

#[tokio::test]
async fn delete_answers_like_kube_apiserver() {
    let t = TestServer::start().await;
    create_ns(&t.client, "deletion").await;
    // A ConfigMap goes at once: Status Success, in the recorded field order.
    let rec = load("07-deletion/delete-immediate-configmap.http");
    let cm =
        serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"}}))
            .unwrap();
    let (_, created) = raw(
        &t.client,
        "POST",
        "/api/v1/namespaces/deletion/configmaps",
        Some("application/json"),
        cm,
    )
    .await;
    let uid = serde_json::from_slice::<Value>(&created).unwrap()["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, body) = raw(
        &t.client,
        "DELETE",
        "/api/v1/namespaces/deletion/configmaps/plain",
        None,
        vec![],
    )
    .await;
    assert_eq!(code, 200);
    let recorded_uid = serde_json::from_str::<Value>(&rec.body).unwrap()["details"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        String::from_utf8(body).unwrap(),
        format!("{}\n", rec.body.replace(&recorded_uid, &uid))
    );
    // Pods and Services answer with the deleted object.
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), "deletion");
    pods.create(
        &PostParams::default(),
        &serde_json::from_value(
            json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
        )
        .unwrap(),
    )
    .await
    .unwrap();
    let deleted = pods.delete("p", &DeleteParams::default()).await.unwrap();
    let pod = deleted.left().expect("the deleted Pod, not a Status");
    assert_eq!(pod.metadata.name.as_deref(), Some("p"));
    let services: Api<Service> = Api::namespaced(t.client.clone(), "deletion");
    services
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]}}))
                .unwrap(),
        )
        .await
        .unwrap();
    let deleted = services.delete("s", &DeleteParams::default()).await.unwrap();
    assert!(
        deleted
            .left()
            .is_some_and(|s| s.spec.unwrap().cluster_ip.is_some())
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn pods_come_back_pending_with_their_defaults() {
    let t = TestServer::start().await;
    let pods: Api<Pod> = Api::namespaced(t.client.clone(), "default");
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"containers": [
            {"name": "app", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
             "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}},
            {"name": "side", "image": "busybox", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}
        ]}
    }))
    .unwrap();
    let created = serde_json::to_value(pods.create(&PostParams::default(), &pod).await.unwrap()).unwrap();
    assert_eq!(
        created["status"],
        json!({"phase": "Pending", "qosClass": "Guaranteed"})
    );
    let spec = &created["spec"];
    assert_eq!(spec["restartPolicy"], "Always");
    assert_eq!(spec["dnsPolicy"], "ClusterFirst");
    assert_eq!(spec["schedulerName"], "default-scheduler");
    assert_eq!(spec["terminationGracePeriodSeconds"], 30);
    assert_eq!(spec["securityContext"], json!({}));
    assert_eq!(spec["enableServiceLinks"], true);
    assert_eq!(spec["preemptionPolicy"], "PreemptLowerPriority");
    assert_eq!(spec["containers"][0]["imagePullPolicy"], "IfNotPresent");
    assert_eq!(spec["containers"][1]["imagePullPolicy"], "Always");
    assert_eq!(
        spec["containers"][0]["terminationMessagePath"],
        "/dev/termination-log"
    );
    assert_eq!(spec["containers"][0]["ports"][0]["protocol"], "TCP");
    assert_eq!(
        spec["containers"][0]["resources"]["requests"],
        json!({"cpu": "1", "memory": "1Gi"})
    );
    t.server.shutdown().await;
}

#[tokio::test]
async fn deployment_create_gets_the_recorded_defaults() {
    let t = TestServer::start().await;
    create_ns(&t.client, "patch").await;
    let rec = load("08-patch/00-create-deployment.http");
    let (code, body) = raw(
        &t.client,
        &rec.method,
        &rec.path,
        rec.content_type.as_deref(),
        rec.request_body.clone(),
    )
    .await;
    assert_eq!(code, 201);
    let ours: Value = serde_json::from_slice(&body).unwrap();
    let mut theirs: Value = serde_json::from_str(&rec.body).unwrap();
    // k8s-openapi leaves out the null template creationTimestamp a Go server prints.
    theirs["spec"]["template"]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("creationTimestamp");
    assert_eq!(ours["spec"], theirs["spec"]);
    assert_eq!(ours["status"], theirs["status"]);
    // Defaulted fields are owned by the writer, as upstream (defaulting happens at decode time).
    let fields = &ours["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"];
    for f in [
        "f:strategy",
        "f:revisionHistoryLimit",
        "f:progressDeadlineSeconds",
    ] {
        assert!(fields.get(f).is_some(), "{f} in {fields}");
    }
    assert!(fields.pointer("/f:template/f:spec/f:dnsPolicy").is_some());
    t.server.shutdown().await;
}

async fn cluster_ips(client: &kube::Client) -> Vec<String> {
    let services: Api<Service> = Api::all(client.clone());
    services
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|s| s.spec.and_then(|s| s.cluster_ip))
        .collect()
}

#[tokio::test]
async fn services_get_unique_cluster_ips_that_survive_a_restart() {
    let t = TestServer::start().await;
    let services: Api<Service> = Api::namespaced(t.client.clone(), "default");
    let kubernetes = services.get("kubernetes").await.unwrap();
    let spec = kubernetes.spec.unwrap();
    assert_eq!(spec.cluster_ip.as_deref(), Some("10.96.0.1"));
    let port = &spec.ports.unwrap()[0];
    assert_eq!((port.name.as_deref(), port.port), (Some("https"), 443));
    let eps: Api<Endpoints> = Api::namespaced(t.client.clone(), "default");
    let ep = eps.get("kubernetes").await.unwrap();
    assert_eq!(
        ep.subsets.unwrap()[0].ports.as_ref().unwrap()[0].port,
        i32::from(t.server.addr().port())
    );
    for i in 0..5 {
        let svc: Service = serde_json::from_value(json!({"metadata": {"name": format!("s{i}")}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80}]}})).unwrap();
        let created =
            serde_json::to_value(services.create(&PostParams::default(), &svc).await.unwrap()).unwrap();
        let spec = &created["spec"];
        assert_eq!(spec["type"], "ClusterIP");
        assert_eq!(spec["sessionAffinity"], "None");
        assert_eq!(spec["ipFamilies"], json!(["IPv4"]));
        assert_eq!(spec["ipFamilyPolicy"], "SingleStack");
        assert_eq!(spec["internalTrafficPolicy"], "Cluster");
        assert_eq!(
            spec["ports"][0],
            json!({"port": 80, "protocol": "TCP", "targetPort": 80})
        );
        assert_eq!(spec["clusterIPs"], json!([spec["clusterIP"]]));
        assert!(spec["clusterIP"].as_str().unwrap().starts_with("10."));
    }
    // NodePort Services get a port from 30000-32767 and the external traffic policy.
    let np: Service = serde_json::from_value(
        json!({"metadata": {"name": "np"}, "spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
    )
    .unwrap();
    let np = serde_json::to_value(services.create(&PostParams::default(), &np).await.unwrap()).unwrap();
    let node_port = np["spec"]["ports"][0]["nodePort"].as_i64().unwrap();
    assert!((30000..=32767).contains(&node_port), "{node_port}");
    assert_eq!(np["spec"]["externalTrafficPolicy"], "Cluster");
    services.delete("np", &DeleteParams::default()).await.unwrap();
    // A taken address cannot be requested again.
    let dup: Service = serde_json::from_value(
        json!({"metadata": {"name": "dup"}, "spec": {"clusterIP": "10.96.0.1", "ports": [{"port": 80}]}}),
    )
    .unwrap();
    let err = services.create(&PostParams::default(), &dup).await.unwrap_err();
    assert!(matches!(err, kube::Error::Api(ref s) if s.code == 422), "{err}");
    let before = cluster_ips(&t.client).await;
    assert_eq!(before.iter().collect::<HashSet<_>>().len(), 6);
    let t = t.restart(|_| {}).await;
    assert_eq!(cluster_ips(&t.client).await, before);
    let services: Api<Service> = Api::namespaced(t.client.clone(), "default");
    let svc: Service =
        serde_json::from_value(json!({"metadata": {"name": "after"}, "spec": {"ports": [{"port": 80}]}}))
            .unwrap();
    let ip = services
        .create(&PostParams::default(), &svc)
        .await
        .unwrap()
        .spec
        .unwrap()
        .cluster_ip
        .unwrap();
    assert!(!before.contains(&ip));
    // An update without the address keeps it.
    let mut replaced = services.get("after").await.unwrap();
    if let Some(spec) = replaced.spec.as_mut() {
        spec.cluster_ip = None;
        spec.cluster_ips = None;
    }
    let updated = services
        .replace("after", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(updated.spec.unwrap().cluster_ip, Some(ip));
    t.server.shutdown().await;
}

#[tokio::test]
async fn core_and_aggregation_kinds_are_in_discovery() {
    let t = TestServer::start().await;
    let (_, body) = raw(&t.client, "GET", "/api/v1", None, vec![]).await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let find = |name: &str| {
        doc["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in /api/v1"))
    };
    assert_eq!(find("componentstatuses")["verbs"], json!(["get", "list"]));
    assert_eq!(find("nodes")["shortNames"], json!(["no"]));
    assert_eq!(find("endpoints")["shortNames"], json!(["ep"]));
    assert_eq!(find("replicationcontrollers")["categories"], json!(["all"]));
    assert_eq!(find("replicationcontrollers/scale")["kind"], "Scale");
    assert_eq!(find("limitranges")["shortNames"], json!(["limits"]));
    assert_eq!(
        find("resourcequotas/status")["verbs"],
        json!(["get", "patch", "update"])
    );
    assert_eq!(find("pods/eviction")["group"], "policy");
    assert_eq!(find("pods/log")["verbs"], json!(["get"]));
    let (_, body) = raw(&t.client, "GET", "/apis/certificates.k8s.io/v1", None, vec![]).await;
    let doc: Value = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = doc["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names,
        [
            "certificatesigningrequests",
            "certificatesigningrequests/approval",
            "certificatesigningrequests/status"
        ]
    );
    let (code, body) = raw(
        &t.client,
        "GET",
        "/apis/apiregistration.k8s.io/v1/apiservices/v1.apps",
        None,
        vec![],
    )
    .await;
    assert_eq!(code, 200);
    let apps: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(apps["spec"]["groupPriorityMinimum"], 17800);
    assert_eq!(apps["status"]["conditions"][0]["reason"], "Local");
    let (code, _) = raw(
        &t.client,
        "GET",
        "/apis/apiregistration.k8s.io/v1/apiservices/v1.",
        None,
        vec![],
    )
    .await;
    assert_eq!(code, 200);
    let (code, body) = raw(&t.client, "GET", "/api/v1/componentstatuses", None, vec![]).await;
    assert_eq!(code, 200);
    let list: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(list["items"][0]["conditions"][0]["type"], "Healthy");
    let (code, _) = raw(
        &t.client,
        "DELETE",
        "/api/v1/componentstatuses/etcd-0",
        None,
        vec![],
    )
    .await;
    assert_eq!(code, 405);
    t.server.shutdown().await;
}

#[tokio::test]
async fn replication_controllers_scale_with_their_selector() {
    let t = TestServer::start().await;
    let rc = json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"},
        "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
    let (code, body) = raw(
        &t.client,
        "POST",
        "/api/v1/namespaces/default/replicationcontrollers",
        Some("application/json"),
        serde_json::to_vec(&rc).unwrap(),
    )
    .await;
    assert_eq!(code, 201, "{}", String::from_utf8_lossy(&body));
    let created: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(created["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(created["spec"]["replicas"], 1);
    assert_eq!(created["metadata"]["labels"], json!({"app": "web"}));
    let patch = serde_json::to_vec(&json!({"spec": {"replicas": 3}})).unwrap();
    let (code, body) = raw(
        &t.client,
        "PATCH",
        "/api/v1/namespaces/default/replicationcontrollers/rc/scale",
        Some("application/merge-patch+json"),
        patch,
    )
    .await;
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let scale: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(scale["spec"]["replicas"], 3);
    assert_eq!(scale["status"]["selector"], "app=web");
    t.server.shutdown().await;
}

#[tokio::test]
async fn a_watch_error_event_is_written_as_the_recording() {
    let t = TestServer::start_with(|c| c.history_limit = 5).await;
    let cm = |n: usize| {
        serde_json::to_vec(
            &json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{n}")}}),
        )
        .unwrap()
    };
    let (_, first) = raw(
        &t.client,
        "POST",
        "/api/v1/namespaces/default/configmaps",
        Some("application/json"),
        cm(0),
    )
    .await;
    let old_rv = serde_json::from_slice::<Value>(&first).unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 1..10 {
        raw(
            &t.client,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            Some("application/json"),
            cm(i),
        )
        .await;
    }
    let (code, body) = raw(
        &t.client,
        "GET",
        &format!(
            "/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={old_rv}&timeoutSeconds=2"
        ),
        None,
        vec![],
    )
    .await;
    assert_eq!(code, 200);
    let ours = String::from_utf8(body).unwrap();
    let ours = ours.lines().next().unwrap();
    let text = std::fs::read_to_string(
        reference_dir()
            .unwrap()
            .join("05-errors/410-watch-too-old-resourceversion.http"),
    )
    .unwrap();
    let recorded = text
        .lines()
        .find_map(|l| {
            l.split_once('\t')
                .map(|(_, e)| e)
                .filter(|e| e.contains("\"ERROR\""))
        })
        .unwrap();
    let message = |line: &str| {
        serde_json::from_str::<Value>(line).unwrap()["object"]["message"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(ours, recorded.replace(&message(recorded), &message(ours)));
    t.server.shutdown().await;
}
