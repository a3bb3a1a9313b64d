//! Unit tests of the SDK: typed access, builders, the export glue, and the native runner.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use serde_json::json;

use crate::prelude::*;

fn deployment() -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "demo", "generation": 4, "uid": "u-1",
                     "labels": {"app": "web"}},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": {}},
        "status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "Ok", "message": "",
             "lastTransitionTime": "2024-01-01T00:00:00Z"},
            {"type": "Degraded", "status": "False", "reason": "Ok", "message": "",
             "lastTransitionTime": "2024-01-02T00:00:00Z"}
        ]}
    })
}

#[test]
fn typed_access_to_the_snapshot_and_the_trigger() {
    let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "demo"}});
    let s = Snapshot::new(deployment())
        .with_child(cm)
        .with_child(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}))
        .with_config(json!({"limit": 2}));
    let d: Deployment = s.object().unwrap();
    assert_eq!(d.spec.unwrap().replicas, Some(3));
    assert_eq!(
        (s.name(), s.namespace(), s.generation(), s.uid()),
        ("web", Some("demo"), Some(4), Some("u-1"))
    );
    assert_eq!(s.label("app"), Some("web"));
    let children: Vec<ConfigMap> = s.children().unwrap();
    assert_eq!(children.len(), 1);
    assert!(s.child::<ConfigMap>("c").unwrap().is_some());
    assert!(s.child::<ConfigMap>("x").unwrap().is_none());
    #[derive(serde::Deserialize)]
    struct Config {
        limit: u32,
    }
    assert_eq!(s.config::<Config>().unwrap().limit, 2);
    let err = s.object::<ConfigMap>().unwrap_err();
    assert!(!err.is_retry(), "{err}");
    assert!(!s.is_deleting());
    assert!(s.with_reason(Reason::Deletion).is_deleting());
    let t = Trigger {
        lookup: 0,
        object: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "demo"}}),
        deleted: true,
    };
    assert_eq!((t.name(), t.namespace()), ("c", Some("demo")));
    assert!(t.object::<ConfigMap>().is_ok());
    assert!(t.object::<Deployment>().is_err());
    assert_eq!(
        ObjectRef::from_object(&t.object::<ConfigMap>().unwrap()),
        ObjectRef::of::<ConfigMap>(Some("demo"), "c")
    );
}

#[test]
fn conditions_keep_their_transition_time_while_unchanged() {
    let s = Snapshot::new(deployment());
    let new = s.update_conditions([
        Condition::new("Ready", true).reason("Ok"),
        Condition::new("Degraded", true).reason("Broken"),
        Condition::new("Fresh", ConditionStatus::Unknown),
    ]);
    assert_eq!(
        new[0].last_transition_time.as_deref(),
        Some("2024-01-01T00:00:00Z")
    );
    assert_eq!(new[1].last_transition_time, None, "status changed");
    assert_eq!(new[2].last_transition_time, None, "new condition");
    let v = serde_json::to_value(&new[2]).unwrap();
    assert_eq!(
        v,
        json!({"type": "Fresh", "status": "Unknown", "reason": "", "message": ""})
    );
}

#[test]
fn desired_fills_kinds_and_reports_bad_objects() {
    let cm = ConfigMap {
        metadata: Snapshot::new(deployment()).child_meta("settings"),
        ..Default::default()
    };
    let d = Desired::new().apply(cm).finalizer();
    assert_eq!(d.apply[0]["apiVersion"], "v1");
    assert_eq!(d.apply[0]["metadata"]["namespace"], "demo");
    assert!(d.finalizer);
    assert!(d.problems().is_empty());
}

#[cfg(feature = "testing")]
#[test]
fn an_unusable_answer_is_a_permanent_error() {
    /// Answers with an object the host cannot apply.
    struct Raw;
    impl Plugin for Raw {
        fn metadata() -> Metadata {
            Metadata::new("raw", "0.1.0", Gvk::of::<ConfigMap>())
        }
        fn reconcile(_: Snapshot) -> Result<Desired, Error> {
            Ok(Desired::new().apply_json(json!({"kind": "ConfigMap", "metadata": {}})))
        }
    }
    let e = crate::testing::reconcile::<Raw>(&Snapshot::new(deployment())).unwrap_err();
    assert_eq!(
        e,
        wasmop_contract::ReconcileFailure::Permanent(
            "invalid desired state: apply[0]: apiVersion is missing; apply[0]: metadata.name is missing"
                .into()
        )
    );
}

struct Echo;

impl Plugin for Echo {
    fn metadata() -> Metadata {
        Metadata::new("echo", "0.1.0", Gvk::of::<Deployment>()).owns(Gvk::of::<ConfigMap>())
    }

    fn reconcile(s: Snapshot) -> Result<Desired, Error> {
        if s.attempt() > 1 {
            return Err(Error::retry("again"));
        }
        let mut cm = ConfigMap {
            metadata: s.child_meta(s.name()),
            ..Default::default()
        };
        cm.data = Some([("replicas".to_string(), "3".to_string())].into());
        Ok(Desired::new()
            .apply(cm)
            .status(json!({"observedGeneration": s.generation()}))
            .event(Event::warning("Echoed", "hi").regarding(ObjectRef::of::<ConfigMap>(Some("demo"), "web"))))
    }
}

#[cfg(feature = "testing")]
#[test]
fn runs_like_the_host() {
    assert!(Echo::metadata().validate().is_ok());
    let snapshot = format!("object: {}\nreason: change\n", deployment());
    let out = crate::testing::run_yaml::<Echo>(&snapshot).unwrap();
    assert_eq!(
        out,
        "apply:\n- apiVersion: v1\n  data:\n    replicas: '3'\n  kind: ConfigMap\n  metadata:\n    name: web\n    namespace: demo\n\
status:\n  observedGeneration: 4\nevents:\n- eventType: Warning\n  reason: Echoed\n  message: hi\n  regarding:\n    apiVersion: v1\n    kind: ConfigMap\n    namespace: demo\n    name: web\n"
    );
    let retry = crate::testing::run_yaml::<Echo>(&format!("{snapshot}attempt: 2\n")).unwrap_err();
    assert_eq!(retry, "plugin error (will retry): again");
}

/// Maps a changed Namespace to the ConfigMaps in the cache that name it in their `target` label.
struct Mapper;

impl Plugin for Mapper {
    fn metadata() -> Metadata {
        Metadata::new("mapper", "0.1.0", Gvk::of::<ConfigMap>())
            .lookup(Lookup::new(Gvk::of::<k8s_openapi::api::core::v1::Namespace>()).triggers())
    }

    fn reconcile(_: Snapshot) -> Result<Desired, Error> {
        Ok(Desired::new())
    }

    fn map(trigger: Trigger) -> Result<Vec<ObjectKey>, Error> {
        let selector = format!("target={}", trigger.name());
        Ok(crate::cache::list::<ConfigMap>(None, Some(&selector))?
            .into_iter()
            .map(|cm| {
                ObjectKey::new(
                    cm.metadata.namespace.as_deref(),
                    &cm.metadata.name.unwrap_or_default(),
                )
            })
            .collect())
    }
}

#[test]
fn map_answers_nothing_by_default_and_the_native_cache_is_empty() {
    let trigger = Trigger {
        lookup: 0,
        object: json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns-a"}}),
        deleted: false,
    };
    assert_eq!(Echo::map(trigger.clone()), Ok(vec![]));
    assert_eq!(Mapper::map(trigger), Ok(vec![]), "no cache outside the runner");
}

#[cfg(feature = "testing")]
#[test]
fn the_runner_serves_cache_reads_from_the_fixture() {
    let out = crate::testing::run_map_yaml::<Mapper>(
        "lookup: 0\nobject: {apiVersion: v1, kind: Namespace, metadata: {name: ns-a}}\ncache:\n\
- {apiVersion: v1, kind: ConfigMap, metadata: {name: a, namespace: demo, labels: {target: ns-a}}}\n\
- {apiVersion: v1, kind: ConfigMap, metadata: {name: b, namespace: demo, labels: {target: ns-b}}}\n",
    )
    .unwrap();
    assert_eq!(out, "- namespace: demo\n  name: a\n");
    // In a reconcile, the cache holds the snapshot's own objects.
    struct Reader;
    impl Plugin for Reader {
        fn metadata() -> Metadata {
            Mapper::metadata()
        }
        fn reconcile(s: Snapshot) -> Result<Desired, Error> {
            let found = crate::cache::get::<ConfigMap>(s.namespace(), "c")?.is_some();
            Ok(Desired::new().status(json!({"found": found})))
        }
    }
    let s = Snapshot::new(deployment()).with_child(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "demo"}}),
    );
    let d = crate::testing::reconcile::<Reader>(&s).unwrap();
    assert_eq!(d.status, Some(json!({"found": true})));
}

#[test]
fn echo_is_exportable() {
    // Compiles the export glue natively.
    crate::export_plugin!(Echo);
}
