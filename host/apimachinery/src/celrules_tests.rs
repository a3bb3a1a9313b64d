//! Unit tests of [`super`]: CEL `x-kubernetes-validations` as kube-apiserver v1.28 reports them.

use serde_json::{Value, json};

use super::*;

fn schema(spec_rules: Value, extra_props: Value) -> Value {
    let mut props = json!({
        "replicas": {"type": "integer"},
        "max": {"type": "integer"},
        "name": {"type": "string"},
        "price": {"type": "number"},
        "tags": {"type": "array", "items": {"type": "string"}},
    });
    if let (Some(p), Some(extra)) = (props.as_object_mut(), extra_props.as_object()) {
        p.extend(extra.clone());
    }
    json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": props, "x-kubernetes-validations": spec_rules}
        }
    })
}

fn messages(errors: &[FieldError]) -> Vec<String> {
    errors.iter().map(|e| e.to_string()).collect()
}

#[test]
fn a_false_rule_is_field_value_invalid_at_the_node_with_its_message() {
    let s = schema(
        json!([{"rule": "self.replicas <= self.max", "message": "replicas must not exceed max"}]),
        json!({}),
    );
    let ok = validate(&s, &json!({"spec": {"replicas": 1, "max": 3}}), None, &[]);
    assert!(ok.is_empty(), "{ok:?}");
    let errs = validate(&s, &json!({"spec": {"replicas": 5, "max": 3}}), None, &[]);
    assert_eq!(
        messages(&errs),
        vec![r#"spec: Invalid value: "object": replicas must not exceed max"#]
    );
    assert_eq!(errs[0].cause_reason(), "FieldValueInvalid");
    assert_eq!(
        errs[0].message(),
        r#"Invalid value: "object": replicas must not exceed max"#
    );
}

#[test]
fn without_a_message_the_rule_is_quoted() {
    let s = schema(json!([{"rule": " self.name.startsWith('w') "}]), json!({}));
    let errs = validate(&s, &json!({"spec": {"name": "x"}}), None, &[]);
    assert_eq!(
        messages(&errs),
        vec![r#"spec: Invalid value: "object": failed rule: self.name.startsWith('w')"#]
    );
}

#[test]
fn message_expression_reason_and_field_path() {
    let s = schema(
        json!([{
            "rule": "self.replicas <= self.max",
            "message": "static",
            "messageExpression": "'replicas ' + string(self.replicas) + ' > ' + string(self.max)",
            "reason": "FieldValueForbidden",
            "fieldPath": ".replicas"
        }]),
        json!({}),
    );
    let errs = validate(&s, &json!({"spec": {"replicas": 5, "max": 3}}), None, &[]);
    assert_eq!(messages(&errs), vec!["spec.replicas: Forbidden: replicas 5 > 3"]);
    assert_eq!(errs[0].cause_reason(), "FieldValueForbidden");
    // A messageExpression that gives an empty string falls back to the message.
    let s = schema(
        json!([{"rule": "false", "message": "static", "messageExpression": "''"}]),
        json!({}),
    );
    let errs = validate(&s, &json!({"spec": {}}), None, &[]);
    assert_eq!(messages(&errs), vec![r#"spec: Invalid value: "object": static"#]);
    let s = schema(
        json!([{"rule": "false", "reason": "FieldValueRequired", "fieldPath": ".tags"}]),
        json!({}),
    );
    let errs = validate(&s, &json!({"spec": {}}), None, &[]);
    assert_eq!(
        messages(&errs),
        vec!["spec.tags: Required value: failed rule: false"]
    );
}

#[test]
fn self_is_the_node_the_rule_is_declared_on() {
    let s = schema(
        json!([]),
        json!({"name": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() <= 3", "message": "too long"}]},
               "tags": {"type": "array", "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self != 'bad'"}]}},
               "labels": {"type": "object", "additionalProperties": {"type": "string", "x-kubernetes-validations": [{"rule": "self.lowerAscii() == self"}]}}}),
    );
    let errs = validate(
        &s,
        &json!({"spec": {"name": "abcd", "tags": ["ok", "bad"], "labels": {"a": "x", "b": "Y"}}}),
        None,
        &[],
    );
    assert_eq!(
        messages(&errs),
        vec![
            r#"spec.labels[b]: Invalid value: "string": failed rule: self.lowerAscii() == self"#,
            r#"spec.name: Invalid value: "string": too long"#,
            r#"spec.tags[1]: Invalid value: "string": failed rule: self != 'bad'"#,
        ]
    );
}

#[test]
fn root_rules_see_name_but_not_the_rest_of_metadata() {
    let s = json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "self.metadata.name.startsWith('w-')", "message": "name must start with w-"},
        {"rule": "!has(self.metadata.labels)"}
    ]});
    let obj = json!({"metadata": {"name": "x", "labels": {"a": "b"}}});
    assert_eq!(
        messages(&validate(&s, &obj, None, &[])),
        vec![r#"<nil>: Invalid value: "object": name must start with w-"#]
    );
}

#[test]
fn transition_rules_run_only_on_updates_with_an_old_value() {
    let s = schema(
        json!([]),
        json!({"name": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "name is immutable"}]}}),
    );
    let new = json!({"spec": {"name": "b"}});
    assert!(validate(&s, &new, None, &[]).is_empty());
    assert!(validate(&s, &new, Some(&json!({"spec": {}})), &[]).is_empty());
    assert!(validate(&s, &new, Some(&json!({"spec": {"name": "b"}})), &[]).is_empty());
    assert_eq!(
        messages(&validate(&s, &new, Some(&json!({"spec": {"name": "a"}})), &[])),
        vec![r#"spec.name: Invalid value: "string": name is immutable"#]
    );
}

#[test]
fn map_lists_correlate_items_by_key_for_old_self() {
    let s = json!({"type": "object", "properties": {"ports": {
        "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                  "x-kubernetes-validations": [{"rule": "self.port >= oldSelf.port", "message": "ports only grow"}]}
    }}});
    let old = json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 90}]});
    let new =
        json!({"ports": [{"name": "b", "port": 10}, {"name": "a", "port": 81}, {"name": "c", "port": 1}]});
    assert_eq!(
        messages(&validate(&s, &new, Some(&old), &[])),
        vec![r#"ports[0]: Invalid value: "object": ports only grow"#]
    );
}

#[test]
fn numbers_follow_the_schema_type() {
    let s = schema(json!([{"rule": "self.price * 2.0 == 6.0"}]), json!({}));
    assert!(validate(&s, &json!({"spec": {"price": 3}}), None, &[]).is_empty());
}

#[test]
fn evaluation_errors_name_the_rule() {
    let s = schema(json!([{"rule": "self.missing == 1"}]), json!({}));
    let errs = validate(&s, &json!({"spec": {}}), None, &[]);
    assert_eq!(
        messages(&errs),
        vec![r#"spec: Invalid value: "object": no such key: missing evaluating rule: self.missing == 1"#]
    );
}

#[test]
fn blocking_schema_errors_stop_the_rules_with_one_notice() {
    let s = schema(json!([{"rule": "false"}]), json!({}));
    let type_error = FieldError {
        kind: FieldErrorKind::TypeInvalid,
        field: "spec.replicas".into(),
        value: Some(json!("x")),
        detail: "spec.replicas in body must be of type integer: \"string\"".into(),
    };
    let errs = validate(&s, &json!({"spec": {"replicas": "x"}}), None, &[type_error]);
    assert_eq!(
        messages(&errs),
        vec![
            r#"<nil>: Invalid value: "null": some validation rules were not checked because the object was invalid; correct the existing errors to complete validation"#
        ]
    );
}

#[test]
fn rules_that_do_not_compile_are_reported_at_crd_write() {
    let s = schema(
        json!([{"rule": "self.replicas <="}, {"rule": "true", "messageExpression": "'a' +"}]),
        json!({}),
    );
    let errs = check_schema(&s);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert_eq!(errs[0].field, "properties[spec].x-kubernetes-validations[0].rule");
    assert!(
        errs[0].message().starts_with(
            r#"Invalid value: apiextensions.ValidationRule{Rule:"self.replicas <=", Message:"", MessageExpression:"", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:""}: compilation failed: ERROR: <input>:1:"#
        ),
        "{}",
        errs[0].message()
    );
    assert_eq!(
        errs[1].field,
        "properties[spec].x-kubernetes-validations[1].messageExpression"
    );
    assert!(check_schema(&schema(json!([{"rule": "self.replicas >= 0"}]), json!({}))).is_empty());
}

#[test]
fn kubernetes_library_functions() {
    let s = json!({"type": "object", "properties": {"l": {"type": "array", "items": {"type": "integer"}}, "s": {"type": "string"}},
    "x-kubernetes-validations": [
        {"rule": "self.l.isSorted()", "message": "sorted"},
        {"rule": "self.l.sum() == 6 && self.l.min() == 1 && self.l.max() == 3", "message": "sum"},
        {"rule": "self.s.find('[0-9]+') == '12' && self.s.findAll('[a-z]') == ['a', 'b']", "message": "regex"}
    ]});
    assert!(validate(&s, &json!({"l": [1, 2, 3], "s": "a12b"}), None, &[]).is_empty());
    let errs = validate(&s, &json!({"l": [3, 2, 1], "s": "a12b"}), None, &[]);
    assert_eq!(messages(&errs), vec![r#"<nil>: Invalid value: "object": sorted"#]);
}

#[test]
fn field_paths_parse_like_the_server() {
    assert_eq!(field_path("spec", ".a.b"), "spec.a.b");
    assert_eq!(field_path("spec", ".m['x.y']"), "spec.m.x.y");
    assert_eq!(field_path("", ".list[2]"), "list[2]");
    assert_eq!(field_path("spec", ""), "spec");
}
