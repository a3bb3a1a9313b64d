//! CRD validation as a real server: `x-kubernetes-validations` CEL rules (messages, reasons, field
//! paths, transition rules with `oldSelf`) and `pattern` enforced on create, update and patch of
//! custom resources; rules that do not compile refused with the CRD; the status of a created CRD.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use crate::support::{TestServer, eventually};

fn gadget_crd(spec_rules: Value) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "gadgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": {
                        "type": "object",
                        "x-kubernetes-validations": spec_rules,
                        "properties": {
                            "replicas": {"type": "integer"},
                            "max": {"type": "integer"},
                            "code": {"type": "string", "pattern": "^[a-z]+-[0-9]+$"},
                            "mode": {"type": "string", "x-kubernetes-validations": [
                                {"rule": "self == oldSelf", "message": "mode is immutable", "reason": "FieldValueForbidden"}
                            ]}
                        }
                    }}
                }}
            }]
        }
    })
}

fn gadgets_resource() -> ApiResource {
    ApiResource {
        group: "example.com".into(),
        version: "v1".into(),
        api_version: "example.com/v1".into(),
        kind: "Gadget".into(),
        plural: "gadgets".into(),
    }
}

fn gadget(name: &str, spec: Value) -> DynamicObject {
    serde_json::from_value(
        json!({"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": name}, "spec": spec}),
    )
    .unwrap()
}

fn api_error(r: kube::Result<DynamicObject>) -> kube::core::Status {
    match r {
        Err(kube::Error::Api(e)) => *e,
        other => panic!("expected an API error, got {other:?}"),
    }
}

async fn install(client: &kube::Client) -> Api<DynamicObject> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = gadget_crd(json!([{
        "rule": "self.replicas <= self.max",
        "messageExpression": "'replicas ' + string(self.replicas) + ' exceed max ' + string(self.max)",
        "fieldPath": ".replicas"
    }]));
    let created = crds
        .create(&PostParams::default(), &serde_json::from_value(crd).unwrap())
        .await
        .unwrap();
    // The create response of a real server: no conditions yet, empty accepted names, stored versions.
    let status = created.status.expect("status in the create response");
    assert_eq!(status.conditions, None);
    let accepted = status.accepted_names.expect("acceptedNames");
    assert_eq!((accepted.kind.as_str(), accepted.plural.as_str()), ("", ""));
    assert_eq!(status.stored_versions, Some(vec!["v1".to_string()]));
    eventually(10, "gadgets to be served", || {
        let crds = crds.clone();
        async move {
            let crd = crds.get("gadgets.example.com").await.ok()?;
            crd.status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
                .then_some(())
        }
    })
    .await;
    Api::namespaced_with(client.clone(), "default", &gadgets_resource())
}

#[tokio::test]
async fn cel_rules_and_patterns_are_enforced_on_writes() {
    let t = TestServer::start().await;
    let gadgets = install(&t.client).await;
    let pp = PostParams::default();

    gadgets
        .create(
            &pp,
            &gadget(
                "ok",
                json!({"replicas": 1, "max": 2, "code": "ab-12", "mode": "a"}),
            ),
        )
        .await
        .expect("a valid gadget");

    let e = api_error(
        gadgets
            .create(&pp, &gadget("bad", json!({"replicas": 3, "max": 2})))
            .await,
    );
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert_eq!(
        e.message,
        r#"Gadget.example.com "bad" is invalid: spec.replicas: Invalid value: "object": replicas 3 exceed max 2"#
    );

    let e = api_error(
        gadgets
            .create(
                &pp,
                &gadget("bad", json!({"replicas": 1, "max": 2, "code": "AB"})),
            )
            .await,
    );
    assert_eq!(
        e.message,
        r#"Gadget.example.com "bad" is invalid: spec.code: Invalid value: "AB": spec.code in body should match '^[a-z]+-[0-9]+$'"#
    );

    // Patches are validated like creates, transition rules see the stored object as oldSelf.
    let e = api_error(
        gadgets
            .patch(
                "ok",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": 5}})),
            )
            .await,
    );
    assert!(
        e.message
            .ends_with("spec.replicas: Invalid value: \"object\": replicas 5 exceed max 2"),
        "{}",
        e.message
    );
    let e = api_error(
        gadgets
            .patch(
                "ok",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"mode": "b"}})),
            )
            .await,
    );
    assert_eq!(
        e.message,
        r#"Gadget.example.com "ok" is invalid: spec.mode: Forbidden: mode is immutable"#
    );
    gadgets
        .patch(
            "ok",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .expect("a valid patch");

    // The 422 body carries one cause per failure, with the rule's reason.
    let req = http::Request::builder()
        .method("PATCH")
        .uri("/apis/example.com/v1/namespaces/default/gadgets/ok")
        .header("Content-Type", "application/merge-patch+json")
        .body(kube::client::Body::from(
            br#"{"spec":{"mode":"c","code":"x"}}"#.to_vec(),
        ))
        .unwrap();
    let resp = t.client.send(req).await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let body: Value = serde_json::from_slice(&resp.into_body().collect_bytes().await.unwrap()).unwrap();
    assert_eq!(
        body["details"]["causes"],
        json!([
            {"reason": "FieldValueInvalid", "message": "Invalid value: \"x\": spec.code in body should match '^[a-z]+-[0-9]+$'", "field": "spec.code"},
            {"reason": "FieldValueForbidden", "message": "Forbidden: mode is immutable", "field": "spec.mode"}
        ])
    );
}

#[tokio::test]
async fn rules_that_do_not_compile_refuse_the_crd() {
    let t = TestServer::start().await;
    let crds: Api<CustomResourceDefinition> = Api::all(t.client.clone());
    let crd = gadget_crd(json!([{"rule": "self.replicas <="}]));
    let err = crds
        .create(&PostParams::default(), &serde_json::from_value(crd).unwrap())
        .await
        .unwrap_err();
    let kube::Error::Api(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!((e.code, e.reason.as_str()), (422, "Invalid"));
    assert!(
        e.message.starts_with(
            "CustomResourceDefinition.apiextensions.k8s.io \"gadgets.example.com\" is invalid: spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{Rule:\"self.replicas <=\""
        ),
        "{}",
        e.message
    );
    assert!(
        e.message.contains("compilation failed: ERROR: <input>:1:"),
        "{}",
        e.message
    );
    assert!(crds.get_opt("gadgets.example.com").await.unwrap().is_none());
}
