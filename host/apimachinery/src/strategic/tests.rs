//! The strategic merge patch module's unit tests.

use super::*;
use crate::structure::BuiltinStructure;

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("test JSON parses")
}

fn smp(original: &Value, patch: &str) -> Result<Value, StrategicMergeError> {
    strategic_merge(original, &json(patch), &BuiltinStructure)
}

/// What the apiserver does between the merge and the response that this module does not: default
/// new containers, and bump resourceVersion/generation (dropped on both sides of the comparison).
fn as_stored(mut object: Value) -> Value {
    if let Some(containers) = object
        .pointer_mut("/spec/template/spec/containers")
        .and_then(Value::as_array_mut)
    {
        for container in containers.iter_mut().filter_map(Value::as_object_mut) {
            container.entry("resources").or_insert_with(|| json("{}"));
            container
                .entry("terminationMessagePath")
                .or_insert_with(|| "/dev/termination-log".into());
            container
                .entry("terminationMessagePolicy")
                .or_insert_with(|| "File".into());
            container
                .entry("imagePullPolicy")
                .or_insert_with(|| "IfNotPresent".into());
        }
    }
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("resourceVersion");
        metadata.remove("generation");
    }
    object
}

/// Replays one recorded PATCH: `before` patched with `patch` must give the recorded `after`.
fn replay(before: &Value, patch: &str, after: &str) -> Value {
    let merged = smp(before, patch).expect("recorded patch applies");
    assert_eq!(as_stored(merged.clone()), as_stored(json(after)));
    merged
}

fn has_directive(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| k.starts_with('$') || has_directive(v)),
        Value::Array(list) => list.iter().any(has_directive),
        _ => false,
    }
}

fn containers(object: &Value) -> &Vec<Value> {
    object
        .pointer("/spec/template/spec/containers")
        .and_then(Value::as_array)
        .expect("containers")
}

/// `08-patch/00-create-deployment.http` response (managedFields dropped).
const CREATED: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"793","generation":1,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web","tier":"front"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.25","ports":[{"containerPort":80,"protocol":"TCP"}],"env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"},{"name":"sidecar","image":"busybox:1.36","command":["sleep","3600"],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
/// `08-patch/01-strategic-merge-containers-by-name.http` response (managedFields dropped).
const AFTER_01: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"794","generation":2,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web","tier":"front"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.26","ports":[{"containerPort":80,"protocol":"TCP"}],"env":[{"name":"A","value":"10"},{"name":"C","value":"3"},{"name":"B","value":"2"}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"},{"name":"sidecar","image":"busybox:1.36","command":["sleep","3600"],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
/// `08-patch/01-strategic-merge-containers-by-name.http` request body.
const PATCH_01: &str = r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.26","env":[{"name":"A","value":"10"},{"name":"C","value":"3"}]}]}}}}"#;
/// `08-patch/02-strategic-merge-patch-delete-directive.http` response (managedFields dropped).
const AFTER_02: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"795","generation":3,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web","tier":"front"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.26","ports":[{"containerPort":80,"protocol":"TCP"}],"env":[{"name":"A","value":"10"},{"name":"C","value":"3"}],"resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
/// `08-patch/02-strategic-merge-patch-delete-directive.http` request body.
const PATCH_02: &str = r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"},{"name":"app","env":[{"name":"B","$patch":"delete"}]}]}}}}"#;
/// `08-patch/03-strategic-merge-patch-replace-directive.http` response (managedFields dropped).
const AFTER_03: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"796","generation":4,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web","tier":"front"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"only","image":"redis:7","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
/// `08-patch/03-strategic-merge-patch-replace-directive.http` request body.
const PATCH_03: &str = r#"{"spec":{"template":{"spec":{"containers":[{"name":"only","image":"redis:7"},{"$patch":"replace"}]}}}}"#;
/// `08-patch/04-strategic-merge-null-deletes-map-key.http` response (managedFields dropped).
const AFTER_04: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"797","generation":4,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web"}},"spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"only","image":"redis:7","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
/// `08-patch/04-strategic-merge-null-deletes-map-key.http` request body.
const PATCH_04: &str = r#"{"metadata":{"labels":{"tier":null}}}"#;
/// `08-patch/06-merge-patch-null-deletes.http` response (managedFields dropped).
const AFTER_06: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"799","generation":6,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web"},"annotations":{"keep":"yes"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"app","image":"nginx:1.27","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
/// `08-patch/07-strategic-merge-setElementOrder.http` response (managedFields dropped).
const AFTER_07: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"802","generation":7,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web"},"annotations":{"keep":"yes"}},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"side","image":"busybox:1.36","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"},{"name":"app","image":"nginx:1.27","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
/// `08-patch/07-strategic-merge-setElementOrder.http` request body.
const PATCH_07: &str = r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"side"},{"name":"app"}],"containers":[{"name":"side","image":"busybox:1.36"}]}}}}"#;
/// `08-patch/08-strategic-merge-deleteFromPrimitiveList.http` response (managedFields dropped).
const AFTER_08: &str = r#"{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"web","namespace":"patch","uid":"ee8507d9-c9cb-480c-9cfb-f1f21a7f34d1","resourceVersion":"804","generation":7,"creationTimestamp":"2026-11-22T07:23:24Z","labels":{"app":"web"},"annotations":{"keep":"yes"},"finalizers":["example.com/a","example.com/c"]},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"web"}},"template":{"metadata":{"creationTimestamp":null,"labels":{"app":"web"}},"spec":{"containers":[{"name":"side","image":"busybox:1.36","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"},{"name":"app","image":"nginx:1.27","resources":{},"terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","securityContext":{},"schedulerName":"default-scheduler"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxUnavailable":"25%","maxSurge":"25%"}},"revisionHistoryLimit":10,"progressDeadlineSeconds":600},"status":{}}"#;
/// `08-patch/08-strategic-merge-deleteFromPrimitiveList.http` request body.
const PATCH_08: &str = r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["example.com/b"]}}"#;

#[test]
fn recorded_01_containers_and_env_merge_by_name() {
    let after = replay(&json(CREATED), PATCH_01, AFTER_01);
    // The new env item follows the patch item before it, not the end of the list.
    let env = after
        .pointer("/spec/template/spec/containers/0/env")
        .expect("env");
    assert_eq!(
        env,
        &json(r#"[{"name":"A","value":"10"},{"name":"C","value":"3"},{"name":"B","value":"2"}]"#)
    );
}

#[test]
fn recorded_02_patch_delete_removes_items_by_merge_key() {
    replay(&json(AFTER_01), PATCH_02, AFTER_02);
}

#[test]
fn recorded_03_patch_replace_in_list_replaces_the_list() {
    let after = replay(&json(AFTER_02), PATCH_03, AFTER_03);
    // Exactly the patch's item (the server then defaults it).
    assert_eq!(
        Value::Array(containers(&after).clone()),
        json(r#"[{"name":"only","image":"redis:7"}]"#)
    );
}

#[test]
fn recorded_04_null_deletes_a_map_key() {
    replay(&json(AFTER_03), PATCH_04, AFTER_04);
}

#[test]
fn recorded_07_set_element_order_adds_and_orders() {
    replay(&json(AFTER_06), PATCH_07, AFTER_07);
}

#[test]
fn recorded_08_delete_from_primitive_list() {
    // The recording's unrecorded write in between (resourceVersion 803) set finalizers [a, b, c].
    let mut before = json(AFTER_07);
    before["metadata"]["finalizers"] = json(r#"["example.com/a","example.com/b","example.com/c"]"#);
    replay(&before, PATCH_08, AFTER_08);
}

#[test]
fn nested_lists_merge_by_their_own_keys() {
    let original = json(
        r#"{"spec":{"template":{"spec":{"containers":[
            {"name":"app","ports":[{"containerPort":80,"protocol":"TCP"},{"containerPort":9090,"protocol":"TCP"}],
             "env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},
            {"name":"side","env":[{"name":"A","value":"side"}]}]}}}}"#,
    );
    let patch = r#"{"spec":{"template":{"spec":{"containers":[
        {"name":"app","ports":[{"containerPort":80,"name":"http"},{"containerPort":443}],
         "env":[{"name":"B","value":null,"valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]}]}}}}"#;
    let merged = smp(&original, patch).expect("merges");
    let app = &containers(&merged)[0];
    assert_eq!(
        app["ports"],
        json(
            r#"[{"containerPort":80,"protocol":"TCP","name":"http"},{"containerPort":443},{"containerPort":9090,"protocol":"TCP"}]"#
        )
    );
    assert_eq!(
        app["env"],
        json(
            r#"[{"name":"A","value":"1"},{"name":"B","valueFrom":{"fieldRef":{"fieldPath":"metadata.name"}}}]"#
        )
    );
    // The other container's env with the same key is untouched.
    assert_eq!(
        containers(&merged)[1],
        original["spec"]["template"]["spec"]["containers"][1]
    );
}

#[test]
fn empty_and_null_patches_are_no_ops() {
    let original = json(CREATED);
    assert_eq!(smp(&original, "{}"), Ok(original.clone()));
    assert_eq!(smp(&original, "null"), Ok(original.clone()));
}

#[test]
fn null_on_a_missing_key_is_ignored() {
    let original = json(CREATED);
    assert_eq!(
        smp(
            &original,
            r#"{"spec":{"paused":null},"metadata":{"labels":{"nope":null}}}"#
        ),
        Ok(original.clone())
    );
    // Under a map that does not exist yet the null vanishes too (Go would store it).
    let merged = smp(
        &original,
        r#"{"metadata":{"annotations":{"gone":null,"kept":"1"}}}"#,
    )
    .expect("merges");
    assert_eq!(merged["metadata"]["annotations"], json(r#"{"kept":"1"}"#));
}

#[test]
fn null_replaces_stored_null_with_a_map() {
    let original = json(CREATED);
    let merged = smp(
        &original,
        r#"{"spec":{"template":{"metadata":{"creationTimestamp":{"a":1}}}}}"#,
    )
    .expect("merges");
    assert_eq!(
        merged["spec"]["template"]["metadata"]["creationTimestamp"],
        json(r#"{"a":1}"#)
    );
}

#[test]
fn map_directives() {
    let original = json(CREATED);
    let replaced = smp(
        &original,
        r#"{"spec":{"strategy":{"$patch":"replace","type":"Recreate"}}}"#,
    )
    .expect("replaces");
    assert_eq!(replaced["spec"]["strategy"], json(r#"{"type":"Recreate"}"#));
    // Go gives the map back empty rather than removing the key.
    let deleted = smp(&original, r#"{"spec":{"strategy":{"$patch":"delete"}}}"#).expect("deletes");
    assert_eq!(deleted["spec"]["strategy"], json("{}"));
    let err = smp(
        &original,
        r#"{"spec":{"strategy":{"$patch":"merge","type":"Recreate"}}}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown patch type: merge in map: map[$patch:merge type:Recreate]"
    );
    assert_eq!(err.status_code(), 500);
    let err = smp(&original, r#"{"spec":{"$patch":5}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown patch type: %!s(int64=5) in map: map[$patch:5]"
    );
}

#[test]
fn retain_keys_drops_unlisted_fields() {
    let original = json(CREATED);
    let merged = smp(
        &original,
        r#"{"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}}"#,
    )
    .expect("merges");
    assert_eq!(merged["spec"]["strategy"], json(r#"{"type":"Recreate"}"#));
    let err = smp(
        &original,
        r#"{"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{}}}}"#,
    )
    .unwrap_err();
    assert_eq!(err, StrategicMergeError::BadRetainKeysFormat);
    assert_eq!(err.status_code(), 400);
    let err = smp(&original, r#"{"spec":{"strategy":{"$retainKeys":"type"}}}"#).unwrap_err();
    assert_eq!(err, StrategicMergeError::BadRetainKeysFormat);
}

#[test]
fn primitive_merge_lists_union_in_patch_order() {
    let original = json(r#"{"metadata":{"finalizers":["x","a"]}}"#);
    let merged = smp(&original, r#"{"metadata":{"finalizers":["b","a"]}}"#).expect("merges");
    assert_eq!(merged["metadata"]["finalizers"], json(r#"["b","x","a"]"#));
    let ordered = smp(
        &original,
        r#"{"metadata":{"$setElementOrder/finalizers":["a","x"]}}"#,
    )
    .expect("reorders");
    assert_eq!(ordered["metadata"]["finalizers"], json(r#"["a","x"]"#));
    // Additions and deletions of one patch: the deletion sees the merged list.
    let both = smp(
        &original,
        r#"{"metadata":{"finalizers":["c"],"$deleteFromPrimitiveList/finalizers":["x","absent"]}}"#,
    )
    .expect("merges");
    assert_eq!(both["metadata"]["finalizers"], json(r#"["c","a"]"#));
    // Deleting from a list that is not there changes nothing.
    let none = json(r#"{"metadata":{}}"#);
    assert_eq!(
        smp(
            &none,
            r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":["x"]}}"#
        ),
        Ok(none.clone())
    );
}

#[test]
fn atomic_lists_are_replaced() {
    let original = json(r#"{"spec":{"tolerations":[{"key":"a"},{"key":"b"}],"args":["1","2"]}}"#);
    let merged = smp(
        &original,
        r#"{"spec":{"tolerations":[{"key":"c","value":null}],"args":["3"]}}"#,
    )
    .expect("merges");
    assert_eq!(
        merged,
        json(r#"{"spec":{"tolerations":[{"key":"c"}],"args":["3"]}}"#)
    );
}

#[test]
fn list_item_directives() {
    let original = json(AFTER_01);
    // Deleting an absent item is fine; replace with no items empties the list.
    let merged = smp(
        &original,
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"nope","$patch":"delete"}]}}}}"#,
    )
    .expect("merges");
    assert_eq!(merged, original);
    let emptied = smp(
        &original,
        r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"replace"}]}}}}"#,
    )
    .expect("merges");
    assert_eq!(containers(&emptied), &Vec::<Value>::new());
    let err = smp(
        &original,
        r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"merge"}]}}}}"#,
    )
    .unwrap_err();
    assert_eq!(err, StrategicMergeError::MergeDirectiveInList);
    let err = smp(
        &original,
        r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"delete"}]}}}}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "map: map[$patch:delete] does not contain declared merge key: name"
    );
    let err = smp(
        &original,
        r#"{"spec":{"template":{"spec":{"containers":[{"$patch":"zap"}]}}}}"#,
    )
    .unwrap_err();
    assert_eq!(err.to_string(), "unknown patch type: zap in map: map[$patch:zap]");
}

#[test]
fn patch_items_need_the_merge_key() {
    let err = smp(
        &json(CREATED),
        r#"{"spec":{"template":{"spec":{"containers":[{"image":"nginx"}]}}}}"#,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "map: map[image:nginx] does not contain declared merge key: name"
    );
    assert_eq!(err.status_code(), 500);
}

#[test]
fn directives_never_leak_into_new_fields() {
    let patch = r#"{"spec":{"template":{"spec":{
        "initContainers":[{"name":"gone","$patch":"delete"},{"name":"i","env":[{"name":"X","value":null}],
                          "securityContext":{"$patch":"replace","runAsUser":1},
                          "$setElementOrder/env":[{"name":"X"}]}],
        "volumes":[{"name":"v","emptyDir":{}},{"$patch":"replace"}]}}}}"#;
    let merged = smp(&json(CREATED), patch).expect("merges");
    assert!(!has_directive(&merged), "{merged}");
    assert_eq!(
        merged["spec"]["template"]["spec"]["initContainers"],
        json(r#"[{"name":"i","env":[{"name":"X"}],"securityContext":{"runAsUser":1}}]"#)
    );
    assert_eq!(
        merged["spec"]["template"]["spec"]["volumes"],
        json(r#"[{"name":"v","emptyDir":{}}]"#)
    );
}

#[test]
fn set_element_order_checks() {
    let original = json(AFTER_07);
    let err = smp(
        &original,
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"},{"name":"side"}],
            "containers":[{"name":"side","image":"x"},{"name":"app","image":"y"}]}}}}"#,
    )
    .unwrap_err();
    assert!(matches!(err, StrategicMergeError::OrderMismatch { .. }), "{err}");
    // Only the order changes when the list itself is not in the patch.
    let reordered = smp(
        &original,
        r#"{"spec":{"template":{"spec":{"$setElementOrder/containers":[{"name":"app"},{"name":"side"}]}}}}"#,
    )
    .expect("reorders");
    let names: Vec<&Value> = containers(&reordered).iter().map(|c| &c["name"]).collect();
    assert_eq!(names, [&json(r#""app""#), &json(r#""side""#)]);
    let err = smp(&original, r#"{"spec":{"$setElementOrder":[]}}"#).unwrap_err();
    assert_eq!(err, StrategicMergeError::BadSetElementOrderFormat);
    let err = smp(&original, r#"{"spec":{"$setElementOrder/x":"y"}}"#).unwrap_err();
    assert_eq!(
        err.to_string(),
        "expected a []interface {}, but received a string"
    );
    let err = smp(
        &original,
        r#"{"metadata":{"$deleteFromPrimitiveListX/finalizers":["a"]}}"#,
    )
    .unwrap_err();
    assert_eq!(err, StrategicMergeError::BadPrimitiveListFormat);
    let err = smp(
        &original,
        r#"{"metadata":{"$deleteFromPrimitiveList/finalizers":"a"}}"#,
    )
    .unwrap_err();
    assert_eq!(err, StrategicMergeError::BadPrimitiveListFormat);
}

#[test]
fn malformed_lists() {
    let original = json(r#"{"metadata":{"finalizers":["a"]}}"#);
    let err = smp(&original, r#"{"metadata":{"finalizers":[["b"]]}}"#).unwrap_err();
    assert_eq!(
        (err.to_string().as_str(), err.status_code()),
        ("lists of lists are not supported", 422)
    );
    let err = smp(&original, r#"{"metadata":{"finalizers":[1]}}"#).unwrap_err();
    assert_eq!(err.to_string(), "list element types are not identical: [[a] [1]]");
    let err = smp(&original, r#"{"metadata":{"finalizers":[{"a":1}]}}"#).unwrap_err();
    assert!(matches!(err, StrategicMergeError::MixedListElements(_)), "{err}");
    let err = smp(
        &json(CREATED),
        r#"{"spec":{"template":{"spec":{"containers":["app"]}}}}"#,
    )
    .unwrap_err();
    assert!(matches!(err, StrategicMergeError::MixedListElements(_)), "{err}");
}

#[test]
fn non_object_patches_are_rejected_like_the_apiserver() {
    let original = json(CREATED);
    for (patch, kind) in [
        ("[]", "array"),
        (r#""x""#, "string"),
        ("1", "number"),
        ("true", "bool"),
    ] {
        let err = smp(&original, patch).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("json: cannot unmarshal {kind} into Go value of type map[string]interface {{}}")
        );
        assert_eq!(err.status_code(), 400);
    }
    assert_eq!(
        strategic_merge(&json("[]"), &json("{}"), &BuiltinStructure),
        Err(StrategicMergeError::OriginalNotObject)
    );
}

#[test]
fn deep_values_error_instead_of_overflowing() {
    fn nest(depth: usize) -> Value {
        let mut value = json(r#"{"leaf":1}"#);
        for _ in 0..depth {
            let mut map = Map::new();
            map.insert("a".into(), value);
            value = Value::Object(map);
        }
        value
    }
    assert!(strategic_merge(&nest(120), &nest(120), &BuiltinStructure).is_ok());
    assert_eq!(
        strategic_merge(&json("{}"), &nest(1000), &BuiltinStructure),
        Err(StrategicMergeError::TooDeep(MAX_DEPTH))
    );
    assert_eq!(
        strategic_merge(&nest(1000), &nest(1000), &BuiltinStructure),
        Err(StrategicMergeError::TooDeep(MAX_DEPTH))
    );
}
