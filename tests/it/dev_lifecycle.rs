//! `wasmop dev` shows whole lifecycles: the real binary (embedded API server with its workload
//! simulator, the host with the example plugins, the sample objects) takes the sample Database from
//! Pending through Provisioning to Ready with nobody patching a status, follows a scale, and a
//! StatefulSet marked to fail drives its Database to Failed (and back once the mark goes).

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

use crate::support::{apply_yaml, databases, eventually, spawn_wasmop, wasmop};

/// `wasmop dev` as a user starts it, stopped when dropped. Pods take 2 s to become ready: long
/// enough that the operator sees its StatefulSet before it is ready even on a loaded machine.
struct Dev {
    child: std::process::Child,
    client: kube::Client,
    _dir: tempfile::TempDir,
}

impl Dev {
    async fn start() -> Dev {
        let dir = tempfile::tempdir().unwrap();
        let mut command = wasmop();
        command
            .args([
                "dev",
                "--port",
                "0",
                "--status-addr",
                "127.0.0.1:0",
                "--simulate-delay",
                "2s",
            ])
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("WASMOP_LOG", "warn");
        let (child, kubeconfig) = spawn_wasmop(&mut command, "kubeconfig: ");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = wasmop::client_from_kubeconfig(&std::fs::read_to_string(&kubeconfig).unwrap())
            .await
            .expect("a client for wasmop dev's kubeconfig");
        Dev {
            child,
            client,
            _dir: dir,
        }
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn phase(db: &Value) -> Option<&str> {
    db.pointer("/status/phase").and_then(Value::as_str)
}

fn ready_condition(db: &Value) -> Value {
    db.pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready").cloned())
        .unwrap_or(Value::Null)
}

/// The phases a Database went through, from the start of the server's history (consecutive
/// repeats folded), until `last` or the time is up.
async fn phases_until(api: &Api<DynamicObject>, name: &str, last: &str, secs: u64) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let params = WatchParams::default().fields(&format!("metadata.name={name}"));
    let mut stream = api.watch(&params, "1").await.expect("watch").boxed();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while seen.last().map(String::as_str) != Some(last) {
        let next = tokio::time::timeout_at(deadline, stream.try_next()).await;
        let Ok(Ok(Some(event))) = next else {
            panic!("{name} did not reach {last} in {secs}s; phases seen: {seen:?}");
        };
        if let WatchEvent::Added(db) | WatchEvent::Modified(db) = event
            && let Some(p) = phase(&db.data)
            && seen.last().map(String::as_str) != Some(p)
        {
            seen.push(p.to_string());
        }
    }
    seen
}

#[tokio::test]
async fn the_sample_database_becomes_ready_and_a_failing_workload_fails_it() {
    let dev = Dev::start().await;
    let client = dev.client.clone();
    let dbs: Api<DynamicObject> = Api::namespaced_with(client.clone(), "demo", &databases());
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), "demo");

    // The sample, applied by `wasmop dev` itself: every phase, in order, as a watch saw them.
    let phases = phases_until(&dbs, "orders", "Ready", 60).await;
    assert_eq!(phases, ["Pending", "Provisioning", "Ready"]);
    let db = dbs.get("orders").await.unwrap().data;
    assert_eq!(ready_condition(&db)["reason"], "AllReplicasReady");
    let set = sts.get("orders").await.unwrap();
    let status = set.status.unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (3, Some(3)));
    assert_eq!(status.observed_generation, set.metadata.generation);

    // A scale goes through the StatefulSet and comes back as a new generation, ready.
    dbs.patch(
        "orders",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    )
    .await
    .unwrap();
    eventually(30, "orders Ready with 5 replicas at generation 2", || async {
        let db = dbs.get("orders").await.unwrap().data;
        let message = ready_condition(&db)["message"].clone();
        (phase(&db) == Some("Ready")
            && db["status"]["observedGeneration"] == 2
            && message == "5/5 replicas ready")
            .then_some(())
    })
    .await;

    // A Database whose StatefulSet is marked to fail goes to Failed, with the reason.
    apply_yaml(
        &client,
        "apiVersion: example.com/v1\nkind: Database\nmetadata: {name: broken, namespace: demo}\nspec: {replicas: 2, image: 'postgres:16', storage: 1Gi}\n",
    )
    .await;
    eventually(30, "the StatefulSet of broken", || async {
        sts.get_opt("broken").await.unwrap()
    })
    .await;
    let mark = json!({"metadata": {"annotations": {"simulate.wasmop.io/fail": "image postgres:16 cannot be pulled"}}});
    sts.patch("broken", &PatchParams::default(), &Patch::Merge(&mark))
        .await
        .unwrap();
    let phases = phases_until(&dbs, "broken", "Failed", 30).await;
    assert_eq!(phases.first().map(String::as_str), Some("Pending"), "{phases:?}");
    let db = dbs.get("broken").await.unwrap().data;
    let ready = ready_condition(&db);
    assert_eq!(
        (&ready["status"], &ready["reason"]),
        (&json!("False"), &json!("WorkloadFailed"))
    );
    assert_eq!(
        ready["message"],
        "StatefulSet broken: image postgres:16 cannot be pulled"
    );
    let failed = sts.get("broken").await.unwrap().status.unwrap();
    assert_eq!(failed.ready_replicas.unwrap_or(0), 0);
    let events: Api<Event> = Api::namespaced(client.clone(), "demo");
    eventually(30, "a WorkloadFailed event on broken", || async {
        let list = events.list(&ListParams::default()).await.unwrap();
        list.items
            .iter()
            .any(|e| {
                e.reason.as_deref() == Some("WorkloadFailed")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some("broken")
            })
            .then_some(())
    })
    .await;

    // Without the mark the pods come up and the Database is Ready again.
    let unmark = json!({"metadata": {"annotations": {"simulate.wasmop.io/fail": null}}});
    sts.patch("broken", &PatchParams::default(), &Patch::Merge(&unmark))
        .await
        .unwrap();
    eventually(30, "broken Ready again", || async {
        let db = dbs.get("broken").await.unwrap().data;
        (phase(&db) == Some("Ready")).then_some(())
    })
    .await;
    drop(dev);
}
