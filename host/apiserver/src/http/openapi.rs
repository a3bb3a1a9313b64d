//! OpenAPI endpoints kubectl needs before `create`, `apply` and `explain`: `/openapi/v2` (a minimal
//! protobuf document, which kubectl accepts when `/openapi/v3` works — see
//! `shared/k8s-reference/02-kubectl/openapi-requirement-experiments.md`) and `/openapi/v3` with one
//! document per group-version, carrying the schemas of its built-in kinds (`builtin_schemas`, from
//! k8s-openapi) and of custom resources.

use axum::body::Body;
use axum::response::Response;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};

use super::{RequestCtx, fnv1a, json_bytes};
use crate::error::ApiResult;
use crate::registry::{Registry, ResourceInfo, Schema};

/// A gnostic `Document` holding only `swagger: "2.0"`.
const MINIMAL_V2_PROTOBUF: &[u8] = &[0x0a, 0x03, b'2', b'.', b'0'];

fn group_versions(registry: &Registry) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for (g, vs) in registry.groups() {
        for (v, _) in vs {
            let path = if g.is_empty() {
                format!("api/{v}")
            } else {
                format!("apis/{g}/{v}")
            };
            out.push((path, g.clone(), v));
        }
    }
    out
}

/// The read path of a resource with a `get` operation naming its kind: `kubectl explain` finds a
/// resource's kind through the `x-kubernetes-group-version-kind` of its operations, then the schema.
fn read_path(r: &ResourceInfo, schema_name: &str) -> (String, Value) {
    let prefix = if r.group.is_empty() {
        format!("/api/{}", r.version)
    } else {
        format!("/apis/{}/{}", r.group, r.version)
    };
    let path = if r.namespaced {
        format!("{prefix}/namespaces/{{namespace}}/{}/{{name}}", r.plural)
    } else {
        format!("{prefix}/{}/{{name}}", r.plural)
    };
    let op = json!({
        "description": format!("read the specified {}", r.kind),
        "x-kubernetes-action": "get",
        "x-kubernetes-group-version-kind": {"group": r.group, "version": r.version, "kind": r.kind},
        "responses": {"200": {"description": "OK", "content": {"application/json": {
            "schema": {"$ref": format!("#/components/schemas/{schema_name}")}
        }}}},
    });
    (path, json!({"get": op}))
}

fn gv_document(registry: &Registry, group: &str, version: &str) -> Value {
    let mut schemas = super::builtin_schemas::for_group_version(group, version);
    let mut paths = Map::new();
    for (g, vs) in registry.groups() {
        if g != group {
            continue;
        }
        for (v, resources) in vs {
            if v != version {
                continue;
            }
            for r in resources {
                if let Schema::Builtin { .. } = &r.schema {
                    let api_version = r.api_version();
                    let name =
                        wasmop_apimachinery::protobuf::root_schema_name(&schemas, &api_version, &r.kind);
                    if let Some(name) = name {
                        let (path, item) = read_path(r.as_ref(), &name);
                        paths.insert(path, item);
                    }
                }
                if let Schema::Custom { openapi } = &r.schema {
                    let reversed: Vec<&str> = r.group.split('.').rev().collect();
                    let name = format!("{}.{}.{}", reversed.join("."), r.version, r.kind);
                    let mut schema = (**openapi).clone();
                    if let Some(m) = schema.as_object_mut() {
                        m.insert(
                            "x-kubernetes-group-version-kind".into(),
                            json!([{"group": r.group, "version": r.version, "kind": r.kind}]),
                        );
                    }
                    let (path, item) = read_path(r.as_ref(), &name);
                    paths.insert(path, item);
                    schemas.insert(name, schema);
                }
            }
        }
    }
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0-wasmop"},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

pub fn serve(ctx: &RequestCtx, rest: &[&str]) -> ApiResult<Response> {
    let registry = &ctx.core.registry;
    let mut resp = match rest {
        ["v2"] => {
            let accept = ctx
                .headers
                .get(header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            if accept.contains("protobuf") {
                let mut r = Response::new(Body::from(MINIMAL_V2_PROTOBUF));
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/com.github.proto-openapi.spec.v2.v1.0+protobuf"),
                );
                r
            } else {
                let doc = json!({"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.33.0-wasmop"}, "paths": {}, "definitions": {}});
                json_with_type(&doc, "application/json")
            }
        }
        ["v3"] => {
            let mut paths = Map::new();
            for (path, g, v) in group_versions(registry) {
                let hash = format!(
                    "{:016X}",
                    fnv1a(&json_bytes(&gv_document(registry, &g, &v), false))
                );
                paths.insert(
                    path.clone(),
                    json!({"serverRelativeURL": format!("/openapi/v3/{path}?hash={hash}")}),
                );
            }
            json_with_type(&json!({"paths": paths}), "text/plain; charset=utf-8")
        }
        ["v3", rest @ ..] => {
            let (group, version) = match rest {
                ["api", v] => ("", *v),
                ["apis", g, v] => (*g, *v),
                _ => return Ok(not_found()),
            };
            if !group_versions(registry)
                .iter()
                .any(|(_, g, v)| g == group && v == version)
            {
                return Ok(not_found());
            }
            let doc = gv_document(registry, group, version);
            let hash = format!("{:016X}", fnv1a(&json_bytes(&doc, false)));
            let mut r = json_with_type(&doc, "application/json");
            if ctx.query.get("hash") == Some(hash.as_str()) {
                r.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, immutable"),
                );
            }
            r
        }
        _ => return Ok(not_found()),
    };
    resp.headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-cache, private"));
    Ok(resp)
}

fn json_with_type(doc: &Value, content_type: &'static str) -> Response {
    let mut r = Response::new(Body::from(json_bytes(doc, false)));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn not_found() -> Response {
    let mut r = Response::new(Body::from("404 page not found"));
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
}
