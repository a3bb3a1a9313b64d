//! The simulator against a real store, on tokio's paused clock: when statuses are written, through
//! which write path, and what a change or a failure does.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

use super::*;
use crate::Core;
use crate::objects::{self, WriteOptions};
use crate::patch::PatchType;

struct Fixture {
    core: Arc<Core>,
    sim: Simulator,
    _server: crate::ApiServer,
    _dir: tempfile::TempDir,
}

impl Fixture {
    /// A server without its own simulator; the test drives one pass at a time.
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::new(dir.path());
        config.insecure_http = true;
        let server = crate::ApiServer::start(config).await.unwrap();
        let core = server.core().clone();
        let mut sim = Simulator::new(Settings {
            delay: Duration::from_secs(1),
        });
        sim.resync(&core, Instant::now());
        Fixture {
            core,
            sim,
            _server: server,
            _dir: dir,
        }
    }

    /// One pass of the task: events, then whatever is due.
    fn pass(&mut self) {
        let now = Instant::now();
        assert!(self.sim.on_events(&self.core, now));
        self.sim.fire(&self.core, now);
    }

    fn ri(&self, group: &str, version: &str, plural: &str) -> Arc<crate::registry::ResourceInfo> {
        self.core.registry.lookup(group, version, plural).unwrap()
    }

    fn create(&self, group: &str, version: &str, plural: &str, body: Value) {
        let ri = self.ri(group, version, plural);
        let ns = if ri.namespaced { "default" } else { "" };
        let opts = WriteOptions {
            manager: "test".into(),
            ..Default::default()
        };
        objects::create(&self.core, &ri, ns, body, &opts).unwrap();
    }

    fn patch(&self, group: &str, plural: &str, name: &str, patch: Value) {
        let ri = self.ri(group, "v1", plural);
        let opts = WriteOptions {
            manager: "test".into(),
            ..Default::default()
        };
        let bytes = serde_json::to_vec(&patch).unwrap();
        objects::patch(
            &self.core,
            &ri,
            "default",
            name,
            None,
            PatchType::Merge,
            &bytes,
            &opts,
        )
        .unwrap();
    }

    fn get(&self, group: &str, plural: &str, name: &str) -> Value {
        let ri = self.ri(group, "v1", plural);
        objects::get(&self.core, &ri, "default", name).unwrap()
    }
}

fn deployment(name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}})
}

fn condition<'a>(obj: &'a Value, t: &str) -> &'a Value {
    obj["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == t))
        .unwrap_or_else(|| panic!("no condition {t}: {}", obj["status"]))
}

#[tokio::test(start_paused = true)]
async fn a_deployment_is_available_after_the_delay_and_follows_a_scale() {
    let mut f = Fixture::new().await;
    f.create("apps", "v1", "deployments", deployment("web", 3));
    f.pass();
    let d = f.get("apps", "deployments", "web");
    assert_eq!(d["status"]["observedGeneration"], 1);
    assert_eq!(d["status"]["unavailableReplicas"], 3);
    assert_eq!(condition(&d, "Available")["status"], "False");
    assert_eq!(f.sim.pending(), 1);

    // Nothing settles before the delay is up, and a pass without news writes nothing.
    tokio::time::advance(Duration::from_millis(999)).await;
    let rv = f.get("apps", "deployments", "web")["metadata"]["resourceVersion"].clone();
    f.pass();
    f.pass();
    assert_eq!(
        f.get("apps", "deployments", "web")["metadata"]["resourceVersion"],
        rv
    );
    assert_eq!(f.sim.next_due(), Some(Instant::now() + Duration::from_millis(1)));

    tokio::time::advance(Duration::from_millis(1)).await;
    f.pass();
    let d = f.get("apps", "deployments", "web");
    assert_eq!(d["status"]["readyReplicas"], 3);
    assert_eq!(d["status"]["availableReplicas"], 3);
    assert_eq!(condition(&d, "Available")["reason"], "MinimumReplicasAvailable");
    assert_eq!(condition(&d, "Progressing")["reason"], "NewReplicaSetAvailable");
    // Written as the controller manager writes it: through the status subresource.
    let entry = d["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["manager"] == MANAGER)
        .expect("a managedFields entry of the simulator");
    assert_eq!(entry["subresource"], "status");
    assert_eq!(entry["operation"], "Update");

    // Settled: the event of its own write changes nothing.
    let rv = d["metadata"]["resourceVersion"].clone();
    f.pass();
    assert_eq!(
        f.get("apps", "deployments", "web")["metadata"]["resourceVersion"],
        rv
    );
    assert_eq!(f.sim.pending(), 0);

    // Scaling is a new generation: observed at once, ready after the delay.
    f.patch("apps", "deployments", "web", json!({"spec": {"replicas": 5}}));
    f.pass();
    let d = f.get("apps", "deployments", "web");
    assert_eq!(
        (
            d["status"]["observedGeneration"].clone(),
            d["status"]["readyReplicas"].clone()
        ),
        (json!(2), json!(3))
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    f.pass();
    assert_eq!(f.get("apps", "deployments", "web")["status"]["readyReplicas"], 5);
}

#[tokio::test(start_paused = true)]
async fn the_fail_annotation_makes_a_workload_fail_and_removing_it_heals_it() {
    let mut f = Fixture::new().await;
    f.create("apps", "v1", "deployments", deployment("web", 2));
    f.pass();
    tokio::time::advance(Duration::from_secs(1)).await;
    f.pass();
    f.patch(
        "apps",
        "deployments",
        "web",
        json!({"metadata": {"annotations": {FAIL_ANNOTATION: "ImagePullBackOff"}}}),
    );
    f.pass();
    tokio::time::advance(Duration::from_secs(1)).await;
    f.pass();
    let d = f.get("apps", "deployments", "web");
    let p = condition(&d, "Progressing");
    assert_eq!(
        (&p["status"], &p["reason"]),
        (&json!("False"), &json!("ProgressDeadlineExceeded"))
    );
    assert!(d["status"].get("readyReplicas").is_none(), "{}", d["status"]);

    f.patch(
        "apps",
        "deployments",
        "web",
        json!({"metadata": {"annotations": {FAIL_ANNOTATION: null}}}),
    );
    f.pass();
    tokio::time::advance(Duration::from_secs(1)).await;
    f.pass();
    let d = f.get("apps", "deployments", "web");
    assert_eq!(condition(&d, "Progressing")["reason"], "NewReplicaSetAvailable");
    assert_eq!(d["status"]["readyReplicas"], 2);
}

#[tokio::test(start_paused = true)]
async fn a_statefulset_marked_to_fail_reports_replica_failure() {
    let mut f = Fixture::new().await;
    f.create(
        "apps",
        "v1",
        "statefulsets",
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "db", "annotations": {FAIL_ANNOTATION: "disk full"}},
               "spec": {"replicas": 2, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}},
                        "template": {"metadata": {"labels": {"app": "db"}},
                                     "spec": {"containers": [{"name": "c", "image": "postgres"}]}}}}),
    );
    f.pass();
    tokio::time::advance(Duration::from_secs(1)).await;
    f.pass();
    let s = f.get("apps", "statefulsets", "db");
    assert_eq!(s["status"]["replicas"], 2);
    assert!(s["status"].get("readyReplicas").is_none());
    let c = condition(&s, "ReplicaFailure");
    assert_eq!(
        (&c["reason"], &c["message"]),
        (&json!("SimulatedFailure"), &json!("disk full"))
    );
}

#[tokio::test(start_paused = true)]
async fn a_job_completes_once_and_stays_complete() {
    let mut f = Fixture::new().await;
    f.create(
        "batch",
        "v1",
        "jobs",
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
               "spec": {"completions": 2, "template": {"spec": {"restartPolicy": "Never",
                        "containers": [{"name": "c", "image": "busybox"}]}}}}),
    );
    f.pass();
    let j = f.get("batch", "jobs", "migrate");
    assert_eq!(j["status"]["active"], 1);
    assert!(j["status"]["startTime"].is_string());
    tokio::time::advance(Duration::from_secs(1)).await;
    f.pass();
    let j = f.get("batch", "jobs", "migrate");
    assert_eq!(j["status"]["succeeded"], 2);
    assert!(j["status"]["completionTime"].is_string());
    assert_eq!(condition(&j, "Complete")["status"], "True");
    // A finished Job is final: a later fail annotation does not touch it.
    f.patch(
        "batch",
        "jobs",
        "migrate",
        json!({"metadata": {"annotations": {FAIL_ANNOTATION: "too late"}}}),
    );
    f.pass();
    tokio::time::advance(Duration::from_secs(1)).await;
    f.pass();
    assert_eq!(f.get("batch", "jobs", "migrate")["status"], j["status"]);
}

#[tokio::test(start_paused = true)]
async fn a_daemonset_follows_the_nodes() {
    let mut f = Fixture::new().await;
    f.create(
        "apps",
        "v1",
        "daemonsets",
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
               "spec": {"selector": {"matchLabels": {"app": "agent"}},
                        "template": {"metadata": {"labels": {"app": "agent"}},
                                     "spec": {"containers": [{"name": "c", "image": "agent"}]}}}}),
    );
    f.pass();
    tokio::time::advance(Duration::from_secs(1)).await;
    f.pass();
    assert_eq!(
        f.get("apps", "daemonsets", "agent")["status"]["numberReady"],
        1,
        "no Nodes: one node"
    );
    for n in ["n1", "n2", "n3"] {
        f.create(
            "",
            "v1",
            "nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": n}}),
        );
    }
    f.pass();
    let ds = f.get("apps", "daemonsets", "agent");
    assert_eq!(
        (
            ds["status"]["desiredNumberScheduled"].clone(),
            ds["status"]["numberReady"].clone()
        ),
        (json!(3), json!(1))
    );
    tokio::time::advance(Duration::from_secs(1)).await;
    f.pass();
    assert_eq!(f.get("apps", "daemonsets", "agent")["status"]["numberReady"], 3);
}

#[tokio::test(start_paused = true)]
async fn a_workload_deleted_before_its_delay_is_forgotten() {
    let mut f = Fixture::new().await;
    f.create("apps", "v1", "deployments", deployment("web", 1));
    f.pass();
    assert_eq!(f.sim.pending(), 1);
    let ri = f.ri("apps", "v1", "deployments");
    objects::delete(&f.core, &ri, "default", "web", &Default::default()).unwrap();
    f.pass();
    assert_eq!(f.sim.pending(), 0);
    assert_eq!(f.sim.next_due(), None);
}

#[tokio::test(start_paused = true)]
async fn existing_workloads_are_picked_up_at_start() {
    let mut f = Fixture::new().await;
    f.create("apps", "v1", "deployments", deployment("web", 2));
    // A fresh simulator (a restarted server) finds it by its resync.
    let mut sim = Simulator::new(Settings::default());
    sim.resync(&f.core, Instant::now());
    assert_eq!(sim.pending(), 1);
    tokio::time::advance(Settings::default().delay).await;
    sim.fire(&f.core, Instant::now());
    assert_eq!(f.get("apps", "deployments", "web")["status"]["readyReplicas"], 2);
    f.pass();
}

#[tokio::test(start_paused = true)]
async fn a_status_write_from_a_stale_read_is_a_conflict() {
    let f = Fixture::new().await;
    f.create("apps", "v1", "deployments", deployment("web", 1));
    let stale = f.get("apps", "deployments", "web");
    f.patch(
        "apps",
        "deployments",
        "web",
        json!({"metadata": {"labels": {"x": "y"}}}),
    );
    let key = super::super::key_of("apps/deployments", &stale);
    assert_eq!(
        write_status(&f.core, &key, &stale, json!({"replicas": 1})),
        Written::Conflict
    );
    let fresh = f.get("apps", "deployments", "web");
    assert_eq!(
        write_status(&f.core, &key, &fresh, json!({"replicas": 1})),
        Written::Done
    );
    assert_eq!(f.get("apps", "deployments", "web")["status"]["replicas"], 1);
}
