//! The objects the workloads reconcile, and seeding them into an API server: Deployments padded to
//! a realistic size with labels, annotations and a pod template's environment (not one blob), and
//! the source ConfigMaps of the fan-out workload.

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};

/// Where the benchmark's objects live.
pub const NAMESPACE: &str = "bench";
/// The namespaces the fan-out sources are copied into.
pub const FANOUT_TARGETS: [&str; 3] = ["copy-a", "copy-b", "copy-c"];
/// Concurrent creates while seeding.
const SEED_CONCURRENCY: usize = 32;

pub fn deployment_name(i: usize) -> String {
    format!("app-{i:05}")
}

/// A Deployment with 2 replicas (so pdb-guard gives it a budget) of at least `bytes` bytes of JSON.
pub fn deployment(i: usize, bytes: usize) -> Value {
    let name = deployment_name(i);
    let team = ["payments", "search", "checkout", "identity"][i % 4];
    let mut d = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app": name, "team": team},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "team": team}},
                "spec": {"containers": [{"name": "app", "image": format!("registry.example.com/{team}/{name}:1.4.{}", i % 50)}]},
            },
        },
    });
    if bytes > 1024 {
        pad(&mut d, i, team);
    }
    // Pod template environment variables until the size is reached: what grows a real Deployment.
    let mut n = 0;
    while d.to_string().len() < bytes {
        let env = d["spec"]["template"]["spec"]["containers"][0]
            .as_object_mut()
            .expect("a container")
            .entry("env")
            .or_insert_with(|| json!([]));
        env.as_array_mut().expect("env is a list").push(json!({
            "name": format!("FEATURE_{n:03}_ENABLED"),
            "value": if (i + n).is_multiple_of(3) { "true" } else { "false" },
        }));
        n += 1;
    }
    d
}

/// The labels, annotations and container settings a production Deployment carries.
fn pad(d: &mut Value, i: usize, team: &str) {
    let name = d["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let labels = json!({
        "app": name, "team": team,
        "app.kubernetes.io/name": name, "app.kubernetes.io/instance": format!("{name}-prod"),
        "app.kubernetes.io/version": format!("1.4.{}", i % 50), "app.kubernetes.io/component": "backend",
        "app.kubernetes.io/part-of": format!("{team}-platform"), "app.kubernetes.io/managed-by": "helm",
        "environment": "production", "cost-center": format!("cc-{:04}", i % 97),
    });
    d["metadata"]["labels"] = labels.clone();
    d["metadata"]["annotations"] = json!({
        "deployment.kubernetes.io/revision": format!("{}", i % 12 + 1),
        "meta.helm.sh/release-name": format!("{name}-prod"),
        "meta.helm.sh/release-namespace": NAMESPACE,
        "example.com/owner": format!("{team}-oncall@example.com"),
        "example.com/git-commit": format!("{:040x}", (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c834)),
        "example.com/runbook": format!("https://runbooks.example.com/{team}/{name}"),
        "example.com/description": format!("The {name} service of the {team} team: serves the public API behind the {team} gateway, scaled by the HPA between 2 and 20 replicas."),
    });
    let template = &mut d["spec"]["template"];
    template["metadata"]["labels"] = labels;
    template["metadata"]["annotations"] = json!({
        "prometheus.io/scrape": "true", "prometheus.io/port": "9090", "prometheus.io/path": "/metrics",
        "checksum/config": format!("{:064x}", (i as u128).wrapping_mul(0x2545_f491_4f6c_dd1d)),
    });
    let container = &mut template["spec"]["containers"][0];
    container["ports"] = json!([
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]);
    container["resources"] =
        json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}});
    container["readinessProbe"] =
        json!({"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "failureThreshold": 3});
    container["livenessProbe"] = json!({"httpGet": {"path": "/livez", "port": "http"}, "initialDelaySeconds": 15, "periodSeconds": 20});
    container["env"] = json!([
        {"name": "LOG_LEVEL", "value": "info"},
        {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://otel-collector.observability:4317"},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": format!("{name}-db"), "key": "url"}}},
    ]);
}

pub fn source_name(i: usize) -> String {
    format!("config-{i:05}")
}

/// A ConfigMap configmap-replicator copies into the three [`FANOUT_TARGETS`].
pub fn source(i: usize, generation: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": source_name(i),
            "namespace": NAMESPACE,
            "annotations": {"wasmop.io/replicate-to": FANOUT_TARGETS.join(",")},
        },
        "data": {
            "settings.yaml": format!("generation: {generation}\nfeature_flags:\n  new_checkout: true\n  dark_mode: false\n"),
            "endpoint": format!("https://api.example.com/v1/tenants/{i}"),
        },
    })
}

pub async fn create_namespaces(client: &kube::Client, names: &[&str]) -> anyhow::Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    for name in names {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}}))?;
        api.create(&PostParams::default(), &ns).await?;
    }
    Ok(())
}

/// Creates `objects` concurrently; returns the creates per second.
pub async fn seed(client: &kube::Client, objects: Vec<Value>) -> anyhow::Result<f64> {
    let n = objects.len();
    let started = std::time::Instant::now();
    futures::stream::iter(objects)
        .map(|o| {
            let client = client.clone();
            async move {
                let kind = o["kind"].as_str().unwrap_or_default().to_string();
                let ns = o["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or(NAMESPACE)
                    .to_string();
                if kind == "Deployment" {
                    let api: Api<Deployment> = Api::namespaced(client, &ns);
                    api.create(&PostParams::default(), &serde_json::from_value(o)?)
                        .await?;
                } else {
                    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
                    api.create(&PostParams::default(), &serde_json::from_value(o)?)
                        .await?;
                }
                anyhow::Ok(())
            }
        })
        .buffer_unordered(SEED_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    Ok(n as f64 / started.elapsed().as_secs_f64())
}
