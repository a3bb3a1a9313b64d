//! The schema module's unit tests: validation, pruning, defaulting and structure, against what
//! kube-apiserver v1.28 answers.

use super::*;
use serde_json::json;

#[test]
#[cfg(feature = "crd-validation")]
fn patterns_are_enforced_with_the_servers_message() {
    let s = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "x": {"type": "string", "pattern": "^[a-z]+$"},
        "y": {"type": "string", "pattern": "b", "minLength": 3}
    }}}});
    assert!(validate(&s, &json!({"spec": {"x": "abc", "y": "abc"}})).is_empty());
    let errs: Vec<String> = validate(&s, &json!({"spec": {"x": "ABC", "y": "aaa"}}))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        errs,
        vec![
            r#"spec.x: Invalid value: "ABC": spec.x in body should match '^[a-z]+$'"#,
            r#"spec.y: Invalid value: "aaa": spec.y in body should match 'b'"#,
        ]
    );
    // First failure only: a too short value is not also checked against the pattern.
    assert_eq!(validate(&s, &json!({"spec": {"y": "a"}})).len(), 1);
}

/// The Widget schema of `04-crd-status/01-crd-create-response.http`.
fn widget_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "required": ["size"],
                "properties": {
                    "color": {"type": "string"},
                    "size": {"type": "integer", "minimum": 0},
                    "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"}
                }
            },
            "status": {
                "type": "object",
                "properties": {
                    "conditions": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["type", "status"],
                            "properties": {
                                "lastTransitionTime": {"type": "string", "format": "date-time"},
                                "message": {"type": "string"},
                                "reason": {"type": "string"},
                                "status": {"type": "string"},
                                "type": {"type": "string"}
                            }
                        },
                        "x-kubernetes-list-map-keys": ["type"],
                        "x-kubernetes-list-type": "map"
                    },
                    "observedGeneration": {"type": "integer"},
                    "phase": {"type": "string"}
                }
            }
        }
    })
}

fn widget(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec})
}

/// The server's 422 message body after `is invalid: `.
fn joined(errors: &[FieldError]) -> String {
    match errors {
        [] => String::new(),
        [one] => one.to_string(),
        many => format!(
            "[{}]",
            many.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn causes(errors: &[FieldError]) -> Vec<(String, String, String)> {
    errors
        .iter()
        .map(|e| (e.cause_reason().to_string(), e.message(), e.field.clone()))
        .collect()
}

#[test]
fn bad_values_print_like_error_body() {
    assert_eq!(go_bad_value(&Value::Null), "\"null\"");
}

#[test]
fn recorded_type_invalid() {
    // 05-errors/422-invalid-crd-schema-type.http
    let errors = validate(&widget_schema(), &widget("bad1", json!({"size": "big"})));
    assert_eq!(
        joined(&errors),
        "spec.size: Invalid value: \"string\": spec.size in body must be of type integer: \"string\""
    );
    assert_eq!(
        causes(&errors),
        [(
            "FieldValueTypeInvalid".into(),
            "Invalid value: \"string\": spec.size in body must be of type integer: \"string\"".into(),
            "spec.size".into()
        )]
    );
}

#[test]
fn recorded_missing_required() {
    // 05-errors/422-invalid-crd-missing-required.http
    let errors = validate(&widget_schema(), &widget("bad2", json!({"color": "red"})));
    assert_eq!(joined(&errors), "spec.size: Required value");
    assert_eq!(
        causes(&errors),
        [(
            "FieldValueRequired".into(),
            "Required value".into(),
            "spec.size".into()
        )]
    );
}

#[test]
fn recorded_multiple_errors() {
    // 05-errors/422-invalid-crd-multiple-errors.http
    let errors = validate(
        &widget_schema(),
        &widget("bad3", json!({"size": -1, "color": 5, "tags": ["a", "a"]})),
    );
    assert_eq!(
        joined(&errors),
        "[spec.color: Invalid value: \"integer\": spec.color in body must be of type string: \"integer\", spec.size: Invalid value: -1: spec.size in body should be greater than or equal to 0, spec.tags[1]: Duplicate value: \"a\"]"
    );
    assert_eq!(
        causes(&errors),
        [
            (
                "FieldValueTypeInvalid".into(),
                "Invalid value: \"integer\": spec.color in body must be of type string: \"integer\"".into(),
                "spec.color".into()
            ),
            (
                "FieldValueInvalid".into(),
                "Invalid value: -1: spec.size in body should be greater than or equal to 0".into(),
                "spec.size".into()
            ),
            (
                "FieldValueDuplicate".into(),
                "Duplicate value: \"a\"".into(),
                "spec.tags[1]".into()
            ),
        ]
    );
}

#[test]
fn recorded_objects_that_are_valid() {
    let schema = widget_schema();
    assert!(
        validate(
            &schema,
            &widget("w", json!({"size": 0, "color": "", "tags": ["a", "b"]}))
        )
        .is_empty()
    );
    let status = json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"size": 1},
        "status": {"phase": "Ready", "observedGeneration": 2, "conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2026-11-22T07:16:02Z"},
            {"type": "Synced", "status": "False", "reason": "x", "message": "y"}
        ]}
    });
    assert!(validate(&schema, &status).is_empty());
}

#[test]
fn recorded_unknown_fields_are_pruned() {
    let schema = widget_schema();
    // 05-errors/201-default-no-field-validation-unknown-field-crd.http
    let mut warn = widget("warn2", json!({"size": 1, "bogus": 1}));
    assert_eq!(prune(&schema, &mut warn), ["spec.bogus"]);
    assert_eq!(warn, widget("warn2", json!({"size": 1})));
    // 05-errors/400-strict-field-validation-unknown-field-crd-object.http
    let mut strict = widget("strict2", json!({"size": 1, "bogus": 1}));
    strict["extra"] = json!(1);
    assert_eq!(prune(&schema, &mut strict), ["extra", "spec.bogus"]);
    assert_eq!(strict, widget("strict2", json!({"size": 1})));
}

#[test]
fn pruning_details() {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                         "properties": {"known": {"type": "object", "properties": {"k": {"type": "string"}}}}},
                "labels": {"type": "object", "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}}},
                "template": {"type": "object", "x-kubernetes-embedded-resource": true,
                             "properties": {"spec": {"type": "object"}}},
                "opt": {"type": "string"},
                "nul": {"type": "string", "nullable": true},
                "def": {"type": "string", "default": "d"}
            }}
        }
    });
    let mut obj = json!({
        "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "b"}},
        "spec": {
            "items": [{"a": "x", "b": 1}, {"c": 2}],
            "free": {"anything": {"deep": true}, "known": {"k": "v", "drop": 1}},
            "labels": {"x": {"v": "1", "w": "2"}},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"x": 1}, "status": {}},
            "opt": null, "nul": null, "def": null
        }
    });
    let pruned = prune(&schema, &mut obj);
    assert_eq!(
        pruned,
        [
            "spec.free.known.drop",
            "spec.items[0].b",
            "spec.items[1].c",
            "spec.labels.x.w",
            "spec.template.spec.x",
            "spec.template.status"
        ]
    );
    assert_eq!(
        obj,
        json!({
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "b"}},
            "spec": {
                "items": [{"a": "x"}, {}],
                "free": {"anything": {"deep": true}, "known": {"k": "v"}},
                "labels": {"x": {"v": "1"}},
                "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}},
                "nul": null, "def": null
            }
        })
    );
    apply_defaults(&schema, &mut obj);
    assert_eq!(obj["spec"]["def"], "d");
    assert_eq!(obj["spec"]["nul"], Value::Null);
}

#[test]
fn defaults_fill_missing_fields_but_never_create_parents() {
    let schema = json!({
        "type": "object",
        "properties": {
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer", "default": 1},
                "mode": {"type": "string", "default": "auto"},
                "nested": {"type": "object", "properties": {"x": {"type": "integer", "default": 5}}},
                "ports": {"type": "array", "items": {"type": "object", "properties": {
                    "protocol": {"type": "string", "default": "TCP"}}}},
                "map": {"type": "object", "additionalProperties": {"type": "object", "default": {"on": true}}}
            }}
        }
    });
    let mut obj = json!({"spec": {"mode": "manual", "ports": [{}, {"protocol": "UDP"}], "map": {"a": null}}});
    apply_defaults(&schema, &mut obj);
    assert_eq!(
        obj,
        json!({"spec": {"replicas": 1, "mode": "manual", "ports": [{"protocol": "TCP"}, {"protocol": "UDP"}],
                        "map": {"a": {"on": true}}}})
    );
    let mut none = json!({});
    apply_defaults(&schema, &mut none);
    assert_eq!(none, json!({}));
}

#[test]
fn value_validations_print_like_the_server() {
    let schema = json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "name": {"type": "string", "maxLength": 5, "minLength": 2},
            "color": {"type": "string", "enum": ["red", "green"]},
            "level": {"type": "integer", "enum": [1, 2]},
            "ratio": {"type": "number", "maximum": 1.5, "exclusiveMinimum": true, "minimum": 0},
            "step": {"type": "integer", "multipleOf": 3, "maximum": 10},
            "tags": {"type": "array", "maxItems": 2, "minItems": 1, "items": {"type": "string"}},
            "uniq": {"type": "array", "uniqueItems": true, "items": {"type": "integer"}},
            "port": {"x-kubernetes-int-or-string": true},
            "when": {"type": "string", "format": "date-time"},
            "id": {"type": "string", "format": "uuid"},
            "count": {"type": "integer", "format": "int32"},
            "opt": {"type": "string", "nullable": true},
            "labels": {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}},
            "few": {"type": "object", "minProperties": 2, "additionalProperties": {"type": "string"}}
        }}}
    });
    let check = |spec: Value| joined(&validate(&schema, &json!({"spec": spec})));
    assert_eq!(
        check(json!({"name": "abcdef"})),
        "spec.name: Too long: may not be longer than 5"
    );
    assert_eq!(
        check(json!({"name": "a"})),
        "spec.name: Invalid value: \"a\": spec.name in body should be at least 2 chars long"
    );
    assert_eq!(
        check(json!({"color": "blue"})),
        "spec.color: Unsupported value: \"blue\": supported values: \"red\", \"green\""
    );
    assert_eq!(
        check(json!({"level": 3})),
        "spec.level: Unsupported value: 3: supported values: \"1\", \"2\""
    );
    assert_eq!(check(json!({"level": 2.0})), "");
    assert_eq!(
        check(json!({"ratio": 0})),
        "spec.ratio: Invalid value: 0: spec.ratio in body should be greater than 0"
    );
    assert_eq!(
        check(json!({"ratio": 2.25})),
        "spec.ratio: Invalid value: 2.25: spec.ratio in body should be less than or equal to 1.5"
    );
    assert_eq!(
        check(json!({"step": 13})),
        "[spec.step: Invalid value: 13: spec.step in body should be a multiple of 3, spec.step: Invalid value: 13: spec.step in body should be less than or equal to 10]"
    );
    assert_eq!(
        check(json!({"tags": ["a", "b", "c"]})),
        "spec.tags: Too many: 3: must have at most 2 items"
    );
    assert_eq!(
        check(json!({"tags": []})),
        "spec.tags: Invalid value: 0: spec.tags in body should have at least 1 items"
    );
    assert_eq!(
        check(json!({"tags": ["a", 1]})),
        "spec.tags[1]: Invalid value: \"integer\": spec.tags[1] in body must be of type string: \"integer\""
    );
    assert_eq!(
        check(json!({"uniq": [1, 1]})),
        "spec.uniq: Invalid value: \"\": spec.uniq in body shouldn't contain duplicates"
    );
    assert_eq!(check(json!({"port": 80})), "");
    assert_eq!(check(json!({"port": "http"})), "");
    assert_eq!(
        check(json!({"port": true})),
        "spec.port: Invalid value: \"boolean\": spec.port in body must be of type integer,string: \"boolean\""
    );
    assert_eq!(check(json!({"when": "2026-11-22T07:16:02Z"})), "");
    assert_eq!(check(json!({"when": "2026-11-22t07:16:02.123+01:00"})), "");
    assert_eq!(
        check(json!({"when": "yesterday"})),
        "spec.when: Invalid value: \"yesterday\": spec.when in body must be of type date-time: \"yesterday\""
    );
    assert_eq!(check(json!({"id": "7cfed4e2-1de2-4279-a4ae-4c6821fd2faf"})), "");
    assert!(check(json!({"id": "nope"})).contains("must be of type uuid"));
    assert_eq!(check(json!({"count": 5})), "");
    assert_eq!(
        check(json!({"count": 1.5})),
        "spec.count: Invalid value: \"float64\": spec.count in body must be of type int32: \"float64\""
    );
    assert_eq!(check(json!({"opt": null})), "");
    assert_eq!(
        check(json!({"name": null})),
        "spec.name: Invalid value: \"null\": spec.name in body must be of type string: \"null\""
    );
    assert_eq!(
        check(json!({"labels": {"a": "1", "b": "2"}})),
        "spec.labels: Too many: 2: must have at most 1 item"
    );
    assert_eq!(
        check(json!({"labels": {"a": 1}})),
        "spec.labels.a: Invalid value: \"integer\": spec.labels.a in body must be of type string: \"integer\""
    );
    assert_eq!(
        check(json!({"few": {"a": "1"}})),
        "spec.few: Invalid value: 1: spec.few in body should have at least 2 properties"
    );
    assert_eq!(
        check(json!([])),
        "spec: Invalid value: \"array\": spec in body must be of type object: \"array\""
    );
    assert_eq!(
        joined(&validate(&schema, &json!({"spec": "x"}))),
        "spec: Invalid value: \"string\": spec in body must be of type object: \"string\""
    );
}

#[test]
fn composition_and_forbidden_properties() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
        "closed": {"type": "object", "additionalProperties": false, "properties": {"a": {"type": "string"}}},
        "not5": {"type": "integer", "not": {"enum": [5]}}
    }}}});
    let errors = validate(&schema, &json!({"spec": {"port": 1.5}}));
    assert_eq!(
        joined(&errors),
        "[spec.port: Invalid value: \"number\": spec.port in body must be of type integer,string: \"number\", <nil>: Invalid value: \"\": \"spec.port\" must validate at least one schema (anyOf), spec.port: Invalid value: \"number\": spec.port in body must be of type integer: \"number\"]"
    );
    assert!(validate(&schema, &json!({"spec": {"port": "http"}})).is_empty());
    assert_eq!(
        joined(&validate(
            &schema,
            &json!({"spec": {"closed": {"a": "x", "b": 1}}})
        )),
        "spec.closed: Invalid value: \"b\": spec.closed.b in body is a forbidden property"
    );
    assert_eq!(
        joined(&validate(&schema, &json!({"spec": {"not5": 5}}))),
        "<nil>: Invalid value: \"\": \"spec.not5\" must not validate the schema (not)"
    );
}

#[test]
fn list_types_report_duplicates() {
    let schema = widget_schema();
    let obj = json!({"spec": {"size": 1, "tags": ["a", "b", "a", "a", "b"]}, "status": {"conditions": [
        {"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}, {"status": "x"}, {"status": "y"},
        "bad"
    ]}});
    let errors = validate(&schema, &obj);
    assert_eq!(
        joined(&errors),
        "[status.conditions[2].type: Required value, status.conditions[3].type: Required value, status.conditions[4]: Invalid value: \"string\": status.conditions[4] in body must be of type object: \"string\", spec.tags[2]: Duplicate value: \"a\", spec.tags[4]: Duplicate value: \"b\", status.conditions[4]: Invalid value: \"bad\": must be an object for an array of list-type map]"
    );
    let obj = json!({"status": {"conditions": [
        {"type": "Ready", "status": "True"}, {"type": "Ready", "status": "False"}, {"status": "x"}, {"status": "y"}
    ]}});
    let dups: Vec<String> = validate(&schema, &obj)
        .iter()
        .filter(|e| e.kind == FieldErrorKind::Duplicate)
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        dups,
        [
            "status.conditions[1]: Duplicate value: map[string]interface {}{\"type\":\"Ready\"}",
            "status.conditions[3]: Duplicate value: map[string]interface {}{}"
        ]
    );
    let multi = json!({"type": "object", "properties": {"ports": {"type": "array", "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["port", "protocol"], "items": {"type": "object"}}}});
    let errors = validate(
        &multi,
        &json!({"ports": [{"port": 80, "protocol": "TCP"}, {"port": 80, "protocol": "TCP"}, {"port": 80}]}),
    );
    assert_eq!(
        joined(&errors),
        "ports[1]: Duplicate value: map[string]interface {}{\"port\":80, \"protocol\":\"TCP\"}"
    );
}

#[test]
fn embedded_resources_need_apiversion_and_kind() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "template": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}
    }}}});
    assert_eq!(
        joined(&validate(
            &schema,
            &json!({"spec": {"template": {"metadata": {}}}})
        )),
        "[spec.template.apiVersion: Required value: must not be empty, spec.template.kind: Required value: must not be empty]"
    );
    assert_eq!(
        joined(&validate(
            &schema,
            &json!({"spec": {"template": {"apiVersion": "a/b/c", "kind": 1}}})
        )),
        "[spec.template.apiVersion: Invalid value: \"a/b/c\": unexpected GroupVersion string: a/b/c, spec.template.kind: Invalid value: 1: must be a string]"
    );
    assert!(
        validate(
            &schema,
            &json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod"}}})
        )
        .is_empty()
    );
}

#[test]
fn root_meta_fields_are_left_to_the_server() {
    let schema = json!({"type": "object", "required": ["metadata", "spec"], "properties": {
        "metadata": {"type": "object", "properties": {"name": {"type": "string", "maxLength": 3}}},
        "spec": {"type": "object"}
    }});
    let obj = json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "toolong"}});
    assert_eq!(joined(&validate(&schema, &obj)), "spec: Required value");
}

#[test]
fn schema_structure_reads_list_and_map_types() {
    let schema = json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
            "plain": {"type": "array", "items": {"type": "string"}},
            "selector": {"type": "object", "x-kubernetes-map-type": "atomic"},
            "servers": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {
                    "ports": {"type": "array", "x-kubernetes-list-type": "map",
                              "x-kubernetes-list-map-keys": ["port", "protocol"], "items": {"type": "object"}}}}},
            "byName": {"type": "object", "additionalProperties": {"type": "object", "properties": {
                "hosts": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}}}},
            "matrix": {"type": "array", "items": {"type": "array", "items": {"type": "object", "properties": {
                "cells": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "integer"}}}}}}
        }},
        "status": {"type": "object", "properties": {"conditions": {"type": "array",
            "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"], "items": {"type": "object"}}}}
    }});
    let s = SchemaStructure(&schema);
    let map = |keys: &[&str]| ListType::Map(keys.iter().map(|k| k.to_string()).collect());
    assert_eq!(s.list_type(&["spec", "tags"]), ListType::Set);
    assert_eq!(s.list_type(&["spec", "plain"]), ListType::Atomic);
    assert_eq!(s.list_type(&["spec", "servers"]), map(&["name"]));
    assert_eq!(
        s.list_type(&["spec", "servers", "ports"]),
        map(&["port", "protocol"])
    );
    assert_eq!(s.list_type(&["spec", "byName", "web", "hosts"]), ListType::Set);
    assert_eq!(s.list_type(&["spec", "matrix", "cells"]), ListType::Set);
    assert_eq!(s.list_type(&["status", "conditions"]), map(&["type"]));
    assert_eq!(s.list_type(&["spec", "unknown"]), ListType::Atomic);
    assert_eq!(s.list_type(&["metadata", "finalizers"]), ListType::Set);
    assert_eq!(s.list_type(&["metadata", "ownerReferences"]), map(&["uid"]));
    assert!(s.map_is_atomic(&["spec", "selector"]));
    assert!(!s.map_is_atomic(&["spec"]));
    assert_eq!(
        SchemaStructure(&widget_schema()).list_type(&["spec", "tags"]),
        ListType::Set
    );
}

#[test]
fn malformed_input_never_panics() {
    let weird = [
        json!(null),
        json!(1),
        json!("x"),
        json!([]),
        json!({"type": 5, "properties": 1, "items": "x",
        "required": [1, "a"], "enum": [], "minimum": "x", "maxLength": -1, "additionalProperties": "y",
        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": 7, "anyOf": [1], "not": true}),
    ];
    let objects = [
        json!(null),
        json!(1.5),
        json!("s"),
        json!([null, {}, [1]]),
        json!({"a": [1, 1], "b": {"c": null}}),
    ];
    for s in &weird {
        for o in &objects {
            let _ = validate(s, o);
            let mut o2 = o.clone();
            let _ = prune(s, &mut o2);
            apply_defaults(s, &mut o2);
            let st = SchemaStructure(s);
            let _ = st.list_type(&["a", "b"]);
            let _ = st.map_is_atomic(&[]);
        }
    }
}
