//! The requests on core kinds that are not plain object verbs: `pods/log`, `pods/eviction`,
//! `pods/ephemeralcontainers`, `pods/binding`, `certificatesigningrequests/approval`, and the
//! read-only, synthetic `componentstatuses`. Everything else falls through to the generic handler.

use axum::body::Body;
use axum::response::Response;
use http::{Method, StatusCode};
use serde_json::Value;

use super::{RequestCtx, Target, blocking, table, with_warnings};
use crate::core_kinds;
use crate::error::{ApiError, ApiResult, Cause};
use crate::objects;
use crate::patch::PatchType;

/// Answers `t` when it is one of the special requests; None hands it to the generic handler.
pub(super) async fn handle(ctx: &RequestCtx, t: &Target) -> ApiResult<Option<Response>> {
    let ri = &t.ri;
    if !ri.is_custom() && ri.group.is_empty() && ri.plural == "componentstatuses" {
        return component_statuses(ctx, t).map(Some);
    }
    let (Some(name), Some(sub)) = (t.name.clone(), t.subresource.as_deref()) else {
        return Ok(None);
    };
    let ns = t.namespace.clone().unwrap_or_default();
    let core = ctx.core.clone();
    let ri = ri.clone();
    match (sub, &ctx.method) {
        ("log", &Method::GET) => {
            let pod = objects::get(&core, &ri, &ns, &name)?;
            check_log_container(&pod, &name, ctx.query.get("container"))?;
            // No kubelet serves logs: kube-apiserver answers an unscheduled Pod's log with no content.
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::NO_CONTENT;
            Ok(Some(resp))
        }
        ("eviction", &Method::POST) => {
            let body: Value = serde_json::from_slice(&ctx.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding Eviction: {e}")))?;
            let (code, status) =
                blocking(move || crate::eviction::evict(&core, &ri, &ns, &name, &body)).await?;
            Ok(Some(ctx.respond(code, &status)))
        }
        ("binding", &Method::POST) => {
            let body: Value = serde_json::from_slice(&ctx.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding Binding: {e}")))?;
            let opts = ctx.write_options()?;
            blocking(move || bind(&core, &ri, &ns, &name, &body, &opts)).await?;
            let status = serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201});
            Ok(Some(ctx.respond(201, &status)))
        }
        ("ephemeralcontainers", _) => only_field(ctx, t, "/spec/ephemeralContainers", None)
            .await
            .map(Some),
        ("approval", _) => only_field(ctx, t, "/status/conditions", Some("status"))
            .await
            .map(Some),
        ("log" | "eviction" | "binding", _) => Err(ApiError::method_not_allowed()),
        _ => Ok(None),
    }
}

/// `kubectl logs` picks a container; kube-apiserver's checks and messages when it cannot.
fn check_log_container(pod: &Value, name: &str, container: Option<&str>) -> ApiResult<()> {
    let names = |list: &str| -> Vec<String> {
        pod.pointer(&format!("/spec/{list}"))
            .and_then(Value::as_array)
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    let containers = names("containers");
    match container.filter(|c| !c.is_empty()) {
        None => match containers.len() {
            1 => Ok(()),
            0 => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => {
                let mut msg = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                );
                let init = names("initContainers");
                if !init.is_empty() {
                    msg.push_str(&format!(" or one of the init containers: [{}]", init.join(" ")));
                }
                Err(ApiError::bad_request(msg))
            }
        },
        Some(c) => {
            let known = containers
                .iter()
                .chain(&names("initContainers"))
                .chain(&names("ephemeralContainers"))
                .any(|n| n == c);
            if known {
                Ok(())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
    }
}

/// `pods/binding`: sets `spec.nodeName` once (409 when the Pod is already bound).
fn bind(
    core: &crate::Core,
    ri: &crate::registry::ResourceInfo,
    ns: &str,
    name: &str,
    body: &Value,
    opts: &objects::WriteOptions,
) -> ApiResult<()> {
    let node = body.pointer("/target/name").and_then(Value::as_str).unwrap_or("");
    if node.is_empty() {
        return Err(ApiError::invalid(
            "Binding",
            "",
            name,
            vec![Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value".into(),
                field: "target.name".into(),
            }],
        ));
    }
    let mut pod = objects::get(core, ri, ns, name)?;
    if let Some(current) = pod
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        return Err(ApiError::conflict_msg(
            ri.resource_ref(),
            name,
            &format!("pod {name} is already assigned to node \"{current}\""),
        ));
    }
    pod["spec"]["nodeName"] = node.into();
    objects::update(core, ri, ns, name, None, pod, opts)?;
    Ok(())
}

/// A subresource that changes only one field (`pointer`) of the object: GET answers the object,
/// PUT and PATCH take that field from the new version and keep everything else.
async fn only_field(
    ctx: &RequestCtx,
    t: &Target,
    pointer: &'static str,
    write_as: Option<&'static str>,
) -> ApiResult<Response> {
    let core = ctx.core.clone();
    let ri = t.ri.clone();
    let ns = t.namespace.clone().unwrap_or_default();
    let name = t.name.clone().unwrap_or_default();
    let current = objects::get(&core, &ri, &ns, &name)?;
    let proposed = match ctx.method {
        Method::GET => return Ok(ctx.respond(200, &current)),
        Method::PUT => ctx.json_body(&ri)?,
        Method::PATCH => {
            let patch_type = PatchType::from_content_type(ctx.header(http::header::CONTENT_TYPE))?;
            let parsed = crate::patch::parse(&ri, patch_type, &ctx.body)?;
            crate::patch::apply(&ri, patch_type, &current, &parsed)?
        }
        _ => return Err(ApiError::method_not_allowed()),
    };
    let mut next = current.clone();
    let (parent, field) = pointer.rsplit_once('/').expect("a pointer with a parent");
    match proposed.pointer(pointer) {
        Some(v) => {
            if next.pointer(parent).is_none_or(|p| !p.is_object()) {
                let key = parent.trim_start_matches('/');
                next[key] = Value::Object(Default::default());
            }
            if let Some(p) = next.pointer_mut(parent).and_then(Value::as_object_mut) {
                p.insert(field.to_string(), v.clone());
            }
        }
        None => {
            if let Some(p) = next.pointer_mut(parent).and_then(Value::as_object_mut) {
                p.remove(field);
            }
        }
    }
    if pointer == "/status/conditions" {
        check_approval(&t.ri, &next)?;
    }
    if let Some(rv) = proposed
        .pointer("/metadata/resourceVersion")
        .filter(|v| v.is_string())
    {
        next["metadata"]["resourceVersion"] = rv.clone();
    }
    let opts = ctx.write_options()?;
    let w = blocking(move || objects::update(&core, &ri, &ns, &name, write_as, next, &opts)).await?;
    Ok(with_warnings(ctx.respond(w.code, &w.object), &w.warnings))
}

/// A CertificateSigningRequest cannot be both Approved and Denied (kube-apiserver's 422).
fn check_approval(ri: &crate::registry::ResourceInfo, csr: &Value) -> ApiResult<()> {
    let types: Vec<&str> = csr
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().filter_map(|c| c["type"].as_str()).collect())
        .unwrap_or_default();
    if !(types.contains(&"Approved") && types.contains(&"Denied")) {
        return Ok(());
    }
    let i = types
        .iter()
        .rposition(|t| *t == "Approved" || *t == "Denied")
        .unwrap_or(0);
    Err(ApiError::invalid(
        &ri.kind,
        &ri.group,
        crate::admission::name_of(csr),
        vec![Cause {
            reason: "FieldValueInvalid".into(),
            message: format!(
                "Invalid value: \"{}\": Approved and Denied conditions are mutually exclusive",
                types[i]
            ),
            field: format!("status.conditions[{i}].type"),
        }],
    ))
}

/// `componentstatuses`: get and list of the healthy components, nothing else.
fn component_statuses(ctx: &RequestCtx, t: &Target) -> ApiResult<Response> {
    if ctx.method != Method::GET || t.subresource.is_some() || t.watch_path || ctx.query.flag("watch") {
        return Err(ApiError::method_not_allowed());
    }
    let warn = [core_kinds::COMPONENT_STATUS_WARNING.to_string()];
    let body = match &t.name {
        None => {
            let list = core_kinds::component_status_list();
            if ctx.format.table {
                table::list_table(&t.ri, &list, ctx.query.get("includeObject"))
            } else {
                list
            }
        }
        Some(name) => {
            let obj = core_kinds::component_status(name)
                .ok_or_else(|| ApiError::not_found(t.ri.resource_ref(), name))?;
            if ctx.format.table {
                table::one_table(&t.ri, &obj, ctx.query.get("includeObject"))
            } else {
                obj
            }
        }
    };
    Ok(with_warnings(ctx.respond(200, &body), &warn))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn approved_and_denied_exclude_each_other() {
        let reg = crate::registry::Registry::default();
        let ri = reg
            .lookup("certificates.k8s.io", "v1", "certificatesigningrequests")
            .unwrap();
        let csr = json!({"metadata": {"name": "r"}, "status": {"conditions": [{"type": "Approved"}, {"type": "Denied"}]}});
        let e = check_approval(&ri, &csr).unwrap_err();
        assert_eq!(
            e.message,
            "CertificateSigningRequest.certificates.k8s.io \"r\" is invalid: status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"
        );
        assert!(check_approval(&ri, &json!({"status": {"conditions": [{"type": "Approved"}]}})).is_ok());
    }

    #[test]
    fn log_container_messages_match_kube_apiserver() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}], "initContainers": [{"name": "i"}]}});
        let e = check_log_container(&pod, "p", None).unwrap_err();
        assert_eq!(
            e.message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [i]"
        );
        assert!(check_log_container(&pod, "p", Some("i")).is_ok());
        assert_eq!(
            check_log_container(&pod, "p", Some("z")).unwrap_err().message,
            "container z is not valid for pod p"
        );
    }
}
