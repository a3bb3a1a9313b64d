//! Unit tests of [`super`]: one per edge case of `evanphx/json-patch` v4.12 as kube-apiserver applies it.

use serde_json::{Value, json};

use super::*;

fn run(doc: Value, patch: Value) -> Result<Value, Error> {
    apply(&doc, &patch, true)
}

fn code(doc: Value, patch: Value) -> u16 {
    run(doc, patch).unwrap_err().status_code()
}

#[test]
fn kube_rs_finalizer_sequence_tests_a_missing_list_against_null() {
    let doc = json!({"metadata": {"name": "a"}});
    let out = run(
        doc,
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": []},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "example.com/cleanup"}
        ]),
    )
    .unwrap();
    assert_eq!(out["metadata"]["finalizers"], json!(["example.com/cleanup"]));
}

#[test]
fn test_null_also_matches_a_stored_null_and_empty_containers() {
    assert!(
        run(
            json!({"a": null}),
            json!([{"op": "test", "path": "/a", "value": null}])
        )
        .is_ok()
    );
    assert!(
        run(
            json!({"a": {}}),
            json!([{"op": "test", "path": "/a", "value": null}])
        )
        .is_ok()
    );
    assert!(
        run(
            json!({"a": []}),
            json!([{"op": "test", "path": "/a", "value": null}])
        )
        .is_ok()
    );
    assert_eq!(
        code(
            json!({"a": [1]}),
            json!([{"op": "test", "path": "/a", "value": null}])
        ),
        422
    );
    assert_eq!(
        code(
            json!({"a": 1}),
            json!([{"op": "test", "path": "/a", "value": null}])
        ),
        422
    );
}

#[test]
fn test_of_a_missing_member_with_a_value_fails_and_under_a_missing_parent_too() {
    assert_eq!(
        code(json!({}), json!([{"op": "test", "path": "/a", "value": 1}])),
        422
    );
    assert_eq!(
        code(json!({}), json!([{"op": "test", "path": "/a/b", "value": null}])),
        422
    );
}

#[test]
fn test_without_value_fails_on_a_present_member_and_panics_on_a_missing_one() {
    assert_eq!(code(json!({"a": 1}), json!([{"op": "test", "path": "/a"}])), 422);
    assert_eq!(code(json!({}), json!([{"op": "test", "path": "/a"}])), 500);
}

#[test]
fn test_compares_scalars_as_go_encodes_them() {
    let ok = |doc: Value, v: Value| run(doc, json!([{"op": "test", "path": "/n", "value": v}])).is_ok();
    assert!(ok(json!({"n": 3}), json!(3)));
    // A stored float that is a whole number is encoded `3` by Go.
    assert!(ok(json!({"n": 3.0}), json!(3)));
    assert!(!ok(json!({"n": 3}), json!(3.0)));
    assert!(ok(json!({"n": 1.5}), json!(1.5)));
    assert!(ok(json!({"n": "x"}), json!("x")));
    assert!(!ok(json!({"n": "1"}), json!(1)));
    assert!(ok(json!({"n": true}), json!(true)));
    // encoding/json escapes '<' in the stored document, the patch keeps its own text.
    assert!(!ok(json!({"n": "a<b"}), json!("a<b")));
}

#[test]
fn test_compares_the_clients_text_with_gos_encoding() {
    let doc = json!({"s": "a<b", "n": 3, "f": 2.5, "o": {"k": [1, "x"]}});
    let ok = |body: &str| apply_text(&doc, body, true).is_ok();
    // A Go client escapes '<' as encoding/json does: equal; kube-rs writes it plainly: not equal.
    assert!(ok(r#"[{"op":"test","path":"/s","value":"a\u003cb"}]"#));
    assert!(!ok(r#"[{"op":"test","path":"/s","value":"a<b"}]"#));
    assert!(ok(r#"[{"op":"test","path":"/n","value":3}]"#));
    assert!(!ok(r#"[{"op":"test","path":"/n","value":3.0}]"#));
    assert!(!ok(r#"[{"op":"test","path":"/f","value":2.50}]"#));
    assert!(ok(
        r#"[{"op":"test","path":"/o","value": { "k" : [ 1 , "x" ] } }]"#
    ));
    assert!(ok(r#"[{"op":"test","path":"/missing","value":null}]"#));
    assert_eq!(
        apply_text(&doc, r#"[{"op":"test","path":"/missing"}]"#, true)
            .unwrap_err()
            .status_code(),
        500
    );
}

#[test]
fn test_compares_objects_and_arrays_structurally() {
    let doc = json!({"o": {"a": 1, "b": [1, "x"], "c": null}});
    assert!(
        run(
            doc.clone(),
            json!([{"op": "test", "path": "/o", "value": {"c": null, "b": [1, "x"], "a": 1}}])
        )
        .is_ok()
    );
    assert_eq!(
        code(
            doc.clone(),
            json!([{"op": "test", "path": "/o", "value": {"a": 1, "b": [1, "x"]}}])
        ),
        422
    );
    assert_eq!(
        code(
            doc.clone(),
            json!([{"op": "test", "path": "/o/b", "value": ["x", 1]}])
        ),
        422
    );
    assert_eq!(
        code(
            json!({"a": [null]}),
            json!([{"op": "test", "path": "/a", "value": [null]}])
        ),
        500
    );
    assert!(run(doc.clone(), json!([{"op": "test", "path": "", "value": doc}])).is_ok());
}

#[test]
fn add_needs_the_parent_and_replaces_an_existing_member() {
    assert_eq!(
        code(
            json!({"metadata": {}}),
            json!([{"op": "add", "path": "/metadata/labels/x", "value": "1"}])
        ),
        422
    );
    let out = run(json!({"a": 1}), json!([{"op": "add", "path": "/a", "value": 2}])).unwrap();
    assert_eq!(out, json!({"a": 2}));
    // A null parent is missing too.
    assert_eq!(
        code(
            json!({"a": null}),
            json!([{"op": "add", "path": "/a/b", "value": 1}])
        ),
        422
    );
    // A scalar parent cannot hold members.
    assert_eq!(
        code(
            json!({"a": "s"}),
            json!([{"op": "add", "path": "/a/b", "value": 1}])
        ),
        422
    );
}

#[test]
fn add_without_value_adds_null() {
    let out = run(json!({}), json!([{"op": "add", "path": "/a"}])).unwrap();
    assert_eq!(out, json!({"a": null}));
}

#[test]
fn array_indices_dash_negative_and_bounds() {
    let doc = json!({"t": ["a", "b"]});
    let add = |path: &str| run(doc.clone(), json!([{"op": "add", "path": path, "value": "x"}]));
    assert_eq!(add("/t/0").unwrap()["t"], json!(["x", "a", "b"]));
    assert_eq!(add("/t/2").unwrap()["t"], json!(["a", "b", "x"]));
    assert_eq!(add("/t/-").unwrap()["t"], json!(["a", "b", "x"]));
    assert_eq!(add("/t/-1").unwrap()["t"], json!(["a", "b", "x"]));
    assert_eq!(add("/t/-3").unwrap()["t"], json!(["x", "a", "b"]));
    assert_eq!(add("/t/3").unwrap_err().status_code(), 422);
    assert_eq!(add("/t/-4").unwrap_err().status_code(), 422);
    assert_eq!(add("/t/x").unwrap_err().status_code(), 422);
    let out = run(doc.clone(), json!([{"op": "remove", "path": "/t/-1"}])).unwrap();
    assert_eq!(out["t"], json!(["a"]));
    assert_eq!(code(doc.clone(), json!([{"op": "remove", "path": "/t/2"}])), 422);
    assert_eq!(code(doc.clone(), json!([{"op": "remove", "path": "/t/-"}])), 422);
    let out = run(
        doc.clone(),
        json!([{"op": "replace", "path": "/t/-2", "value": "z"}]),
    )
    .unwrap();
    assert_eq!(out["t"], json!(["z", "b"]));
    assert_eq!(
        code(
            doc.clone(),
            json!([{"op": "replace", "path": "/t/2", "value": "z"}])
        ),
        422
    );
    assert!(run(doc, json!([{"op": "test", "path": "/t/-1", "value": "b"}])).is_ok());
}

#[test]
fn remove_of_a_missing_member_fails_and_of_a_null_member_works() {
    assert_eq!(
        code(
            json!({"metadata": {"labels": {}}}),
            json!([{"op": "remove", "path": "/metadata/labels/nope"}])
        ),
        422
    );
    assert_eq!(
        run(json!({"a": null}), json!([{"op": "remove", "path": "/a"}])).unwrap(),
        json!({})
    );
}

#[test]
fn replace_of_a_missing_member_adds_it() {
    let out = run(
        json!({"m": {}}),
        json!([{"op": "replace", "path": "/m/nope", "value": "x"}]),
    )
    .unwrap();
    assert_eq!(out, json!({"m": {"nope": "x"}}));
    assert_eq!(
        code(
            json!({}),
            json!([{"op": "replace", "path": "/m/nope", "value": "x"}])
        ),
        422
    );
}

#[test]
fn replace_of_the_whole_document() {
    assert_eq!(
        run(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": {"b": 2}}])
        )
        .unwrap(),
        json!({"b": 2})
    );
    assert_eq!(
        run(
            json!({"a": 1}),
            json!([{"op": "replace", "path": "", "value": 5}])
        )
        .unwrap(),
        json!({"a": 1})
    );
    assert_eq!(code(json!({"a": 1}), json!([{"op": "replace", "path": ""}])), 500);
}

#[test]
fn move_and_copy() {
    let doc = json!({"a": {"x": 1}, "l": [1, 2, 3]});
    let out = run(doc.clone(), json!([{"op": "move", "from": "/a/x", "path": "/b"}])).unwrap();
    assert_eq!(out, json!({"a": {}, "b": 1, "l": [1, 2, 3]}));
    let out = run(
        doc.clone(),
        json!([{"op": "move", "from": "/l/0", "path": "/l/-"}]),
    )
    .unwrap();
    assert_eq!(out["l"], json!([2, 3, 1]));
    assert_eq!(
        code(
            doc.clone(),
            json!([{"op": "move", "from": "/nope", "path": "/b"}])
        ),
        422
    );
    // Moving a member into itself removes it first, so the destination's parent is gone.
    assert_eq!(
        code(doc.clone(), json!([{"op": "move", "from": "/a", "path": "/a/y"}])),
        422
    );
    let out = run(doc.clone(), json!([{"op": "copy", "from": "/a", "path": "/c"}])).unwrap();
    assert_eq!(out["c"], json!({"x": 1}));
    assert_eq!(out["a"], json!({"x": 1}));
    // Copying a missing member adds null.
    let out = run(
        doc.clone(),
        json!([{"op": "copy", "from": "/nope", "path": "/c"}]),
    )
    .unwrap();
    assert_eq!(out["c"], Value::Null);
    assert_eq!(code(doc, json!([{"op": "copy", "path": "/c"}])), 422);
}

#[test]
fn escaped_keys_and_paths_without_a_leading_slash() {
    let out = run(
        json!({"metadata": {"annotations": {}}}),
        json!([{"op": "add", "path": "/metadata/annotations/example.com~1note", "value": "x"},
               {"op": "add", "path": "/metadata/annotations/a~0b", "value": "y"}]),
    )
    .unwrap();
    assert_eq!(
        out["metadata"]["annotations"],
        json!({"example.com/note": "x", "a~b": "y"})
    );
    // Go splits on '/' and drops the first segment: "a/b" names "b" in the root.
    assert_eq!(
        run(json!({}), json!([{"op": "add", "path": "a/b", "value": 1}])).unwrap(),
        json!({"b": 1})
    );
    assert_eq!(
        code(json!({}), json!([{"op": "add", "path": "a", "value": 1}])),
        422
    );
}

#[test]
fn unknown_ops_and_missing_paths_are_422() {
    assert_eq!(code(json!({}), json!([{"op": "frobnicate", "path": "/a"}])), 422);
    assert_eq!(code(json!({}), json!([{"path": "/a"}])), 422);
    assert_eq!(code(json!({}), json!([null])), 422);
    assert_eq!(code(json!({}), json!([{"op": "add", "value": 1}])), 422);
}

#[test]
fn all_or_nothing() {
    let doc = json!({"a": 1});
    let err = run(
        doc.clone(),
        json!([{"op": "replace", "path": "/a", "value": 2}, {"op": "test", "path": "/a", "value": 9}]),
    );
    assert!(err.is_err());
    assert_eq!(doc, json!({"a": 1}));
}

#[test]
fn unknown_members_of_operations_are_warnings() {
    let w = unknown_field_warnings(
        &json!([{"op": "add", "path": "/a", "value": 1}, {"op": "remove", "path": "/b", "extra": 1}]),
    );
    assert_eq!(w, vec![r#"json patch unknown field "[1].extra""#]);
}

#[test]
fn decode_errors_are_400_with_the_servers_messages() {
    let e = run(json!({}), json!({"op": "add"})).unwrap_err();
    assert_eq!(e.status_code(), 400);
    assert_eq!(
        e.to_string(),
        "error decoding patch: json: cannot unmarshal object into Go value of type []handlers.jsonPatchOp"
    );
    let e = apply(&json!({}), &json!({"op": "add"}), false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "json: cannot unmarshal object into Go value of type jsonpatch.Patch"
    );
    let e = run(json!({}), json!([1])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "error decoding patch: json: cannot unmarshal number into Go value of type handlers.jsonPatchOp"
    );
    let e = run(json!({}), json!([{"op": 1, "path": "/a"}])).unwrap_err();
    assert_eq!(
        e.to_string(),
        "error decoding patch: json: cannot unmarshal number into Go struct field jsonPatchOp.op of type string"
    );
    // A null patch is an empty one.
    assert_eq!(run(json!({"a": 1}), Value::Null).unwrap(), json!({"a": 1}));
    let many = Value::Array(vec![
        json!({"op": "test", "path": "/a", "value": 1});
        MAX_OPERATIONS + 1
    ]);
    assert_eq!(run(json!({"a": 1}), many).unwrap_err().status_code(), 413);
}
