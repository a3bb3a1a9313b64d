//! Decoding of Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`) into the JSON
//! form the server works with, for every built-in kind: kubectl's typed clients send protobuf for
//! built-in kinds (`kubectl create deployment|job|service|secret|role|...`).
//!
//! The envelope is the `k8s\0` magic followed by a `runtime.Unknown` whose `raw` bytes are the object.
//! Both are decoded by the messages of kube-rs' `k8s-pb` crate (Kubernetes 1.33, [`kinds`] picks the
//! message by apiVersion and kind); the decoded message is read back as a tree ([`debug`]) and
//! written as JSON with the names and formats of the kind's OpenAPI v3 component schemas ([`json`]).
//! No field table is written by hand: a kind k8s-pb has a message for decodes as soon as it is served.

mod debug;
mod json;
mod kinds;

use prost::Message;
use serde_json::Value;

pub use json::{Schemas, root_schema, root_schema_name};

const MAGIC: &[u8] = b"k8s\x00";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtobufError {
    #[error("the body is not a Kubernetes protobuf envelope (missing the k8s\\0 prefix)")]
    NoMagic,
    #[error("malformed protobuf: {0}")]
    Malformed(#[source] prost::DecodeError),
    #[error("protobuf bodies of kind {kind} ({api_version}) are not supported; send JSON")]
    UnsupportedKind { api_version: String, kind: String },
    #[error("reading the decoded {kind} message")]
    Internal {
        kind: String,
        #[source]
        source: debug::ParseError,
    },
}

/// Whether protobuf bodies of this kind can be decoded (k8s-pb has a message for it).
pub fn supports(api_version: &str, kind: &str) -> bool {
    kinds::decode_to_debug(api_version, kind, &[]).is_some()
}

/// Decodes a protobuf request body into the object's JSON form (with `apiVersion` and `kind`).
///
/// `schemas` are OpenAPI v3 component schemas (see [`crate::openapi`]); the kind's root is the one
/// whose `x-kubernetes-group-version-kind` names it. Without one, field names are camelCased.
pub fn decode(body: &[u8], schemas: &Schemas) -> Result<Value, ProtobufError> {
    let envelope = body.strip_prefix(MAGIC).ok_or(ProtobufError::NoMagic)?;
    let unknown =
        k8s_pb::apimachinery::pkg::runtime::Unknown::decode(envelope).map_err(ProtobufError::Malformed)?;
    let type_meta = unknown.type_meta.unwrap_or_default();
    let api_version = type_meta.api_version.unwrap_or_default();
    let kind = type_meta.kind.unwrap_or_default();
    let raw = unknown.raw.unwrap_or_default();
    let text = kinds::decode_to_debug(&api_version, &kind, &raw)
        .ok_or_else(|| ProtobufError::UnsupportedKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?
        .map_err(ProtobufError::Malformed)?;
    let tree = debug::parse(&text).map_err(|source| ProtobufError::Internal {
        kind: kind.clone(),
        source,
    })?;
    let root = root_schema(schemas, &api_version, &kind);
    let mut obj = json::to_json(&tree, root, schemas).unwrap_or_else(|| Value::Object(Default::default()));
    if let Value::Object(m) = &mut obj {
        m.insert("apiVersion".into(), Value::String(api_version));
        m.insert("kind".into(), Value::String(kind));
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openapi::Components;
    use k8s_pb::api::{apps, batch, core, rbac};
    use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
    use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
    use serde_json::json;

    fn schemas() -> Schemas {
        let mut c = Components::default();
        c.add::<k8s_openapi::api::core::v1::Namespace>("", "v1", "Namespace");
        c.add::<k8s_openapi::api::core::v1::Secret>("", "v1", "Secret");
        c.add::<k8s_openapi::api::core::v1::Service>("", "v1", "Service");
        c.add::<k8s_openapi::api::apps::v1::Deployment>("apps", "v1", "Deployment");
        c.add::<k8s_openapi::api::batch::v1::Job>("batch", "v1", "Job");
        c.add::<k8s_openapi::api::rbac::v1::Role>("rbac.authorization.k8s.io", "v1", "Role");
        c.finish()
    }

    /// What a typed client sends: the magic, then a runtime.Unknown around the encoded object.
    fn envelope<M: Message>(api_version: &str, kind: &str, object: &M) -> Vec<u8> {
        let unknown = Unknown {
            type_meta: Some(TypeMeta {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
            }),
            raw: Some(object.encode_to_vec()),
            content_encoding: Some(String::new()),
            content_type: Some(String::new()),
        };
        let mut body = MAGIC.to_vec();
        body.extend(unknown.encode_to_vec());
        body
    }

    fn varint(mut v: u64, out: &mut Vec<u8>) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn bytes_field(tag: u64, b: &[u8], out: &mut Vec<u8>) {
        varint(tag << 3 | 2, out);
        varint(b.len() as u64, out);
        out.extend_from_slice(b);
    }

    #[test]
    fn decodes_a_namespace_as_kubectl_create_sends_it() {
        // Encoded by hand, field by field, as the recorded kubectl body is.
        let mut meta = Vec::new();
        bytes_field(1, b"demo", &mut meta);
        bytes_field(2, b"", &mut meta);
        let mut label = Vec::new();
        bytes_field(1, b"team", &mut label);
        bytes_field(2, b"a", &mut label);
        bytes_field(11, &label, &mut meta);
        let mut ts = Vec::new();
        varint(1 << 3, &mut ts);
        varint(1_795_000_000, &mut ts);
        bytes_field(8, &ts, &mut meta);
        let mut ns = Vec::new();
        bytes_field(1, &meta, &mut ns);
        let mut type_meta = Vec::new();
        bytes_field(1, b"v1", &mut type_meta);
        bytes_field(2, b"Namespace", &mut type_meta);
        let mut unknown = Vec::new();
        bytes_field(1, &type_meta, &mut unknown);
        bytes_field(2, &ns, &mut unknown);
        let mut body = MAGIC.to_vec();
        body.extend(unknown);
        assert_eq!(
            decode(&body, &schemas()).unwrap(),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo", "labels": {"team": "a"}, "creationTimestamp": "2026-11-18T11:06:40Z"}})
        );
    }

    fn meta(name: &str) -> Option<meta::ObjectMeta> {
        Some(meta::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(String::new()),
            // Go's zero time, which a typed client always sends.
            creation_timestamp: Some(meta::Time {
                seconds: Some(-62_135_596_800),
                nanos: Some(0),
            }),
            labels: [("app".to_string(), name.to_string())].into(),
            ..Default::default()
        })
    }

    fn pod_template(name: &str) -> Option<core::v1::PodTemplateSpec> {
        Some(core::v1::PodTemplateSpec {
            metadata: meta(name),
            spec: Some(core::v1::PodSpec {
                containers: vec![core::v1::Container {
                    name: Some("nginx".into()),
                    image: Some("nginx".into()),
                    resources: Some(Default::default()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
        })
    }

    #[test]
    fn decodes_a_deployment_as_kubectl_create_deployment_sends_it() {
        let d = apps::v1::Deployment {
            metadata: meta("web"),
            spec: Some(apps::v1::DeploymentSpec {
                replicas: Some(0),
                selector: Some(meta::LabelSelector {
                    match_labels: [("app".to_string(), "web".to_string())].into(),
                    ..Default::default()
                }),
                template: pod_template("web"),
                strategy: Some(apps::v1::DeploymentStrategy {
                    rolling_update: Some(apps::v1::RollingUpdateDeployment {
                        max_surge: Some(k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
                            r#type: Some(1),
                            int_val: Some(0),
                            str_val: Some("25%".into()),
                        }),
                        max_unavailable: Some(k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
                            r#type: Some(0),
                            int_val: Some(1),
                            str_val: Some(String::new()),
                        }),
                    }),
                    r#type: Some("RollingUpdate".into()),
                }),
                ..Default::default()
            }),
            status: Some(Default::default()),
        };
        let got = decode(&envelope("apps/v1", "Deployment", &d), &schemas()).unwrap();
        assert_eq!(
            got,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 0,
                    "selector": {"matchLabels": {"app": "web"}},
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                    "template": {
                        "metadata": {"name": "web", "labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "nginx", "image": "nginx", "resources": {}}]}
                    }
                },
                "status": {}
            })
        );
    }

    #[test]
    fn decodes_a_job_a_service_a_role_and_a_secret() {
        let schemas = schemas();
        let job = batch::v1::Job {
            metadata: meta("once"),
            spec: Some(batch::v1::JobSpec {
                template: pod_template("once"),
                backoff_limit: Some(6),
                ..Default::default()
            }),
            status: None,
        };
        let got = decode(&envelope("batch/v1", "Job", &job), &schemas).unwrap();
        assert_eq!(got["spec"]["backoffLimit"], 6);
        assert_eq!(got["spec"]["template"]["spec"]["containers"][0]["image"], "nginx");

        let svc = core::v1::Service {
            metadata: meta("web"),
            spec: Some(core::v1::ServiceSpec {
                ports: vec![core::v1::ServicePort {
                    name: Some("80-8080".into()),
                    protocol: Some("TCP".into()),
                    port: Some(80),
                    target_port: Some(k8s_pb::apimachinery::pkg::util::intstr::IntOrString {
                        r#type: Some(0),
                        int_val: Some(8080),
                        str_val: Some(String::new()),
                    }),
                    ..Default::default()
                }],
                r#type: Some("ClusterIP".into()),
                cluster_ip: Some("None".into()),
                cluster_ips: vec!["None".into()],
                ..Default::default()
            }),
            status: None,
        };
        let got = decode(&envelope("v1", "Service", &svc), &schemas).unwrap();
        assert_eq!(
            got["spec"],
            json!({"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}], "type": "ClusterIP", "clusterIP": "None", "clusterIPs": ["None"]})
        );

        let role = rbac::v1::Role {
            metadata: meta("reader"),
            rules: vec![rbac::v1::PolicyRule {
                verbs: vec!["get".into(), "list".into()],
                api_groups: vec![String::new()],
                resources: vec!["pods".into()],
                ..Default::default()
            }],
        };
        let got = decode(&envelope("rbac.authorization.k8s.io/v1", "Role", &role), &schemas).unwrap();
        assert_eq!(
            got["rules"],
            json!([{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}])
        );

        let secret = core::v1::Secret {
            metadata: meta("s"),
            data: [("k".to_string(), b"hi\0".to_vec())].into(),
            r#type: Some("Opaque".into()),
            ..Default::default()
        };
        let got = decode(&envelope("v1", "Secret", &secret), &schemas).unwrap();
        assert_eq!(got["data"], json!({"k": "aGkA"}));
        assert_eq!(got["type"], "Opaque");
    }

    #[test]
    fn a_kind_without_a_schema_still_decodes_with_camel_case_names() {
        let cm = core::v1::ConfigMap {
            metadata: meta("c"),
            data: [("empty".to_string(), String::new())].into(),
            ..Default::default()
        };
        let got = decode(&envelope("v1", "ConfigMap", &cm), &Schemas::new()).unwrap();
        assert_eq!(got["data"], json!({"empty": ""}));
        assert_eq!(got["metadata"]["name"], "c");
    }

    #[test]
    fn unknown_kinds_and_garbage_are_errors_not_panics() {
        let schemas = schemas();
        assert_eq!(decode(b"{}", &schemas), Err(ProtobufError::NoMagic));
        let mut body = MAGIC.to_vec();
        body.extend([0x0a, 0xff]);
        assert!(matches!(
            decode(&body, &schemas),
            Err(ProtobufError::Malformed(_))
        ));
        let mut type_meta = Vec::new();
        bytes_field(1, b"example.com/v1", &mut type_meta);
        bytes_field(2, b"Widget", &mut type_meta);
        let mut body = MAGIC.to_vec();
        bytes_field(1, &type_meta, &mut body);
        assert!(matches!(
            decode(&body, &schemas),
            Err(ProtobufError::UnsupportedKind { .. })
        ));
        // A Deployment whose raw bytes are not a Deployment.
        let mut type_meta = Vec::new();
        bytes_field(1, b"apps/v1", &mut type_meta);
        bytes_field(2, b"Deployment", &mut type_meta);
        let mut body = MAGIC.to_vec();
        bytes_field(1, &type_meta, &mut body);
        bytes_field(2, &[0x0a, 0x05, 0x01], &mut body);
        assert!(matches!(
            decode(&body, &schemas),
            Err(ProtobufError::Malformed(_))
        ));
    }
}
