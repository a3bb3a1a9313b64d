//! The selector module's unit tests: parse errors and matching as kube-apiserver v1.28 answers.

use super::*;
use serde_json::json;

fn labels(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn err(s: &str) -> String {
    LabelSelector::parse(s)
        .map(|_| String::new())
        .unwrap_or_else(|e| e.to_string())
}

#[test]
fn recorded_invalid_label_selector_message() {
    // 05-errors/400-invalid-label-selector.http: labelSelector=a===b
    assert_eq!(
        err("a===b"),
        "unable to parse requirement: found '=', expected: identifier"
    );
}

#[test]
fn recorded_invalid_field_selector_message() {
    // 05-errors/400-invalid-field-selector.http: fieldSelector=data.a=1 on configmaps
    let sel = FieldSelector::parse("data.a=1").unwrap();
    assert_eq!(
        sel.check_fields(None).unwrap_err().to_string(),
        "\"data.a\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
    assert!(
        FieldSelector::parse("metadata.name=x,metadata.namespace!=y")
            .unwrap()
            .check_fields(None)
            .is_ok()
    );
    assert_eq!(
        FieldSelector::parse("spec.foo=x")
            .unwrap()
            .check_fields(Some(&["metadata.name", "spec.nodeName"])),
        Err(SelectorError::UnsupportedField("spec.foo".into()))
    );
    assert_eq!(
        SelectorError::UnsupportedField("spec.foo".into()).to_string(),
        "field label not supported: spec.foo"
    );
}

#[test]
fn label_parse_errors_match_the_server() {
    let name_regex = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    assert_eq!(
        err("app:monolith"),
        format!("unable to parse requirement: <nil>: Invalid value: \"app:monolith\": {name_regex}")
    );
    assert_eq!(
        err("*bar"),
        format!("unable to parse requirement: <nil>: Invalid value: \"*bar\": {name_regex}")
    );
    assert_eq!(
        err("a/b/c ?=? def"),
        "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    );
    assert_eq!(
        err("app.kubernetes_io/name=x"),
        "unable to parse requirement: <nil>: Invalid value: \"app.kubernetes_io/name\": prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    assert_eq!(
        err("a=b$"),
        "unable to parse requirement: values[0][a]: Invalid value: \"b$\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
    );
    assert_eq!(
        err("a b"),
        "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(err("a=b c"), "found 'c', expected: ',' or 'end of string'");
    assert_eq!(err("a,"), "found '', expected: identifier after ','");
    assert_eq!(
        err(",a"),
        "found ',', expected: !, identifier, or 'end of string'"
    );
    assert_eq!(
        err("a in b"),
        "unable to parse requirement: found 'b' expected: '('"
    );
    assert_eq!(
        err("a in (b"),
        "unable to parse requirement: found '', expected: ',' or ')'"
    );
    assert_eq!(
        err("a in ("),
        "unable to parse requirement: found '', expected: ',', ')' or identifier"
    );
    assert_eq!(
        err("a in (b c)"),
        "unable to parse requirement: found 'c', expected: ',' or ')'"
    );
    assert_eq!(
        err("a (b)"),
        "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt"
    );
    assert_eq!(
        err("!"),
        "unable to parse requirement: found '', expected: identifier"
    );
    assert_eq!(
        err("a>b"),
        "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer"
    );
    assert!(err(&format!("{}=x", "a".repeat(64))).contains("name part must be no more than 63 characters"));
}

#[test]
fn label_grammar_and_truth_table() {
    let l = labels(json!({"app": "web", "tier": "front", "n": "5", "empty": ""}));
    let cases: &[(&str, bool)] = &[
        ("", true),
        ("app=web", true),
        ("app==web", true),
        ("app = web", true),
        ("app!=web", false),
        ("app!=db", true),
        ("missing!=x", true),
        ("missing=x", false),
        ("app in (web,db)", true),
        ("app in(db)", false),
        ("app notin (db)", true),
        ("app notin (web, db)", false),
        ("missing notin (x)", true),
        ("missing in (x)", false),
        ("app", true),
        ("missing", false),
        ("!missing", true),
        ("!app", false),
        ("app=web,tier=front", true),
        ("app=web,tier=back", false),
        (" app = web , !missing ", true),
        ("n>4", true),
        ("n>5", false),
        ("n<6", true),
        ("app>1", false),
        ("empty=", true),
        ("empty in ()", true),
        ("app in (,web)", true),
        ("in=x", false),
        ("notin", false),
        ("in in (in)", false),
    ];
    for (sel, want) in cases {
        let parsed = LabelSelector::parse(sel).unwrap_or_else(|e| panic!("{sel}: {e}"));
        assert_eq!(parsed.matches(Some(&l)), *want, "{sel}");
    }
    assert!(LabelSelector::parse("app").unwrap().matches(Some(&l)));
    assert!(!LabelSelector::parse("app").unwrap().matches(None));
    assert!(LabelSelector::parse("!app").unwrap().matches(None));
    assert!(LabelSelector::parse("").unwrap().matches(None));
}

#[test]
fn label_selector_prints_canonically() {
    let s = LabelSelector::parse("z in (b, a),!y, x==1 ,w").unwrap();
    assert_eq!(s.to_string(), "w,x==1,!y,z in (a,b)");
    assert!(LabelSelector::parse("").unwrap().is_empty());
}

#[test]
fn metav1_label_selector() {
    let l = labels(json!({"app": "web", "tier": "front"}));
    let sel = LabelSelector::from_json(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "back"]},
            {"key": "canary", "operator": "DoesNotExist"}
        ]
    }))
    .unwrap();
    assert!(sel.matches(Some(&l)));
    assert!(!sel.matches(None));
    assert!(LabelSelector::from_json(&json!({})).unwrap().matches(None));
    assert!(!LabelSelector::from_json(&Value::Null).unwrap().matches(Some(&l)));
    assert!(
        !LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]})
        )
        .unwrap()
        .matches(Some(&l))
    );
    assert_eq!(
        LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]})
        )
        .unwrap_err()
        .to_string(),
        "\"Gt\" is not a valid label selector operator"
    );
    assert_eq!(
        LabelSelector::from_json(&json!({"matchExpressions": [{"key": "a", "operator": "In"}]}))
            .unwrap_err()
            .to_string(),
        "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty"
    );
    assert_eq!(
        LabelSelector::from_json(
            &json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]})
        )
        .unwrap_err()
        .to_string(),
        "values: Invalid value: []string{\"x\"}: values set must be empty for exists and does not exist"
    );
    assert!(
        LabelSelector::from_json(&json!({"matchLabels": {"-bad": "x"}}))
            .unwrap_err()
            .to_string()
            .starts_with("key: Invalid value: \"-bad\": name part must consist")
    );
    assert!(LabelSelector::from_json(&json!({"matchLabels": {"a": 1}})).is_err());
    assert!(LabelSelector::from_json(&json!([1])).is_err());
}

#[test]
fn field_selector_grammar_and_errors() {
    let e = |s: &str| FieldSelector::parse(s).unwrap_err().to_string();
    assert_eq!(
        e("metadata.name"),
        "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
    );
    assert_eq!(e("b=1,a"), "invalid selector: 'b=1,a'; can't understand 'a'");
    assert_eq!(
        e("a=b\\x"),
        "invalid field selector: invalid escape sequence: \\x"
    );
    assert_eq!(e("a=b\\"), "invalid field selector: invalid escape sequence: \\");
    assert_eq!(
        e("a=b=c"),
        "invalid field selector: unescaped character in value: 61"
    );
    let s = FieldSelector::parse("b==2,a!=1,,c=x\\,y\\=z\\\\").unwrap();
    assert_eq!(s.fields().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(s.to_string(), "a!=1,b=2,c=x\\,y\\=z\\\\");
    assert!(FieldSelector::parse("").unwrap().is_empty());
}

#[test]
fn field_selector_truth_table() {
    let pod = json!({
        "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "n1", "replicas": 3, "paused": false},
        "status": {"phase": "Running"},
        "type": "Warning",
        "involvedObject": {"name": "p"}
    });
    let cases: &[(&str, bool)] = &[
        ("", true),
        ("metadata.name=p", true),
        ("metadata.name==p", true),
        ("metadata.name!=p", false),
        ("metadata.namespace=ns,status.phase=Running", true),
        ("metadata.namespace=ns,status.phase!=Running", false),
        ("spec.nodeName=", false),
        ("spec.missing=", true),
        ("spec.missing!=x", true),
        ("spec.replicas=3", true),
        ("spec.paused=false", true),
        ("involvedObject.name=p,type=Warning", true),
        ("spec=", true),
        // An unset Go bool reads `false`.
        ("spec.unschedulable=false", true),
        ("spec.unschedulable=true", false),
        ("spec.hostNetwork!=true", true),
    ];
    for (sel, want) in cases {
        assert_eq!(FieldSelector::parse(sel).unwrap().matches(&pod), *want, "{sel}");
    }
    let cluster_scoped = json!({"metadata": {"name": "n"}});
    assert!(
        FieldSelector::parse("metadata.namespace=")
            .unwrap()
            .matches(&cluster_scoped)
    );
}

#[test]
fn go_quote_escapes_like_strconv() {
    assert_eq!(
        go_quote("a\"b\\c\n\u{1}\u{a0}é"),
        "\"a\\\"b\\\\c\\n\\x01\\u00a0é\""
    );
}
