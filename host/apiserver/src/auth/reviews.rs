//! The create-only authentication and authorization APIs: TokenRequest
//! (`POST .../serviceaccounts/NAME/token`, what `kubectl create token` calls), TokenReview and
//! SelfSubjectReview (`authentication.k8s.io/v1`), SelfSubjectAccessReview, SubjectAccessReview,
//! LocalSubjectAccessReview and SelfSubjectRulesReview (`authorization.k8s.io/v1`, what
//! `kubectl auth can-i` calls). Nothing is stored: each answers with the request plus a `status`.

use axum::response::Response;
use http::Method;
use k8s_openapi::api::rbac::v1::PolicyRule;
use serde_json::{Value, json};

use super::{Attributes, UserInfo, rbac, token};
use crate::error::{ApiError, ApiResult, Cause, ResourceRef};
use crate::http::RequestCtx;
use crate::store::Key;

const AUTHN: &str = "authentication.k8s.io";
const AUTHZ: &str = "authorization.k8s.io";

/// The verbs discovery lists for a resource of these APIs (None: not one of them).
pub fn verbs(group: &str, plural: &str) -> Option<&'static [&'static str]> {
    match (group, plural) {
        (AUTHN, "tokenreviews" | "selfsubjectreviews")
        | (
            AUTHZ,
            "selfsubjectaccessreviews"
            | "subjectaccessreviews"
            | "localsubjectaccessreviews"
            | "selfsubjectrulesreviews",
        ) => Some(&["create"]),
        _ => None,
    }
}

/// The request body, decoded as the server decodes any body (`plural` names the resource whose
/// entry describes it in errors).
fn body(ctx: &RequestCtx, group: &str, plural: &str) -> ApiResult<Value> {
    let ri = ctx
        .core
        .registry
        .lookup(group, "v1", plural)
        .ok_or_else(ApiError::resource_not_found)?;
    ctx.json_body(&ri)
}

/// The answer: the request's `spec` with `status`, as a real server writes it.
fn answer(group: &str, kind: &str, metadata: Value, spec: &Value, status: Value) -> Response {
    let mut out = json!({"kind": kind, "apiVersion": format!("{group}/v1"), "metadata": metadata});
    if !spec.is_null() {
        out["spec"] = spec.clone();
    }
    out["status"] = status;
    crate::http::json_response(201, &out, false)
}

fn user_json(u: &UserInfo) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("username".into(), u.name.clone().into());
    if !u.uid.is_empty() {
        m.insert("uid".into(), u.uid.clone().into());
    }
    m.insert("groups".into(), u.groups.clone().into());
    Value::Object(m)
}

/// Answers the requests of these APIs; None for every other path.
pub fn serve(ctx: &RequestCtx, group: &str, version: &str, rest: &[&str]) -> Option<ApiResult<Response>> {
    let handler: fn(&RequestCtx, &[&str]) -> ApiResult<Response> = match (group, version, rest) {
        ("", "v1", ["namespaces", _, "serviceaccounts", _, "token"]) => token_request,
        (AUTHN, "v1", ["tokenreviews"]) => token_review,
        (AUTHN, "v1", ["selfsubjectreviews"]) => self_subject_review,
        (AUTHZ, "v1", ["selfsubjectaccessreviews"]) => self_access_review,
        (AUTHZ, "v1", ["subjectaccessreviews"]) => subject_access_review,
        (AUTHZ, "v1", ["namespaces", _, "localsubjectaccessreviews"]) => subject_access_review,
        (AUTHZ, "v1", ["selfsubjectrulesreviews"]) => self_rules_review,
        _ => return None,
    };
    if ctx.method != Method::POST {
        return Some(Err(ApiError::method_not_allowed()));
    }
    Some(handler(ctx, rest))
}

fn invalid(kind: &str, group: &str, name: &str, field: &str, reason: &str, message: String) -> ApiError {
    ApiError::invalid(
        kind,
        group,
        name,
        vec![Cause {
            reason: reason.into(),
            message,
            field: field.into(),
        }],
    )
}

fn token_request(ctx: &RequestCtx, rest: &[&str]) -> ApiResult<Response> {
    let (ns, name) = (rest[1], rest[3]);
    let req = body(ctx, "", "serviceaccounts")?;
    let key = Key {
        resource: "/serviceaccounts".into(),
        namespace: ns.into(),
        name: name.into(),
    };
    let sa = ctx.core.store.get(&key).ok_or_else(|| {
        ApiError::not_found(
            ResourceRef {
                group: "",
                plural: "serviceaccounts",
            },
            name,
        )
    })?;
    let uid = crate::admission::meta_str(&sa, "uid").unwrap_or("").to_string();
    let spec = &req["spec"];
    let seconds = spec["expirationSeconds"].as_i64().unwrap_or(3600);
    if seconds < 600 {
        return Err(invalid(
            "TokenRequest",
            AUTHN,
            name,
            "spec.expirationSeconds",
            "FieldValueInvalid",
            format!("Invalid value: {seconds}: may not specify a duration less than 10 minutes"),
        ));
    }
    if seconds > 1 << 32 {
        return Err(invalid(
            "TokenRequest",
            AUTHN,
            name,
            "spec.expirationSeconds",
            "FieldValueInvalid",
            format!("Invalid value: {seconds}: may not specify a duration larger than 2^32 seconds"),
        ));
    }
    let mut audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if audiences.is_empty() {
        audiences.push(token::ISSUER.into());
    }
    let now = token::now();
    let claims = token::Claims::new(ns, name, &uid, audiences.clone(), now, seconds);
    let jwt = ctx.core.auth.signer.issue(&claims);
    let expires = jiff::Timestamp::from_second(claims.exp).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let out_spec = json!({"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": spec.get("boundObjectRef").cloned().unwrap_or(Value::Null)});
    Ok(answer(
        AUTHN,
        "TokenRequest",
        json!({"name": name, "namespace": ns, "creationTimestamp": null}),
        &out_spec,
        json!({"token": jwt, "expirationTimestamp": wasmop_apimachinery::time::format(expires)}),
    ))
}

fn token_review(ctx: &RequestCtx, _: &[&str]) -> ApiResult<Response> {
    let req = body(ctx, AUTHN, "tokenreviews")?;
    let spec = &req["spec"];
    let token = spec["token"].as_str().unwrap_or("");
    let wanted: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec![token::ISSUER.to_string()]);
    let status = if token.is_empty() {
        return Err(invalid(
            "TokenReview",
            AUTHN,
            "",
            "spec.token",
            "FieldValueRequired",
            "Required value: token must not be empty".into(),
        ));
    } else if crate::http::constant_time_eq(token.as_bytes(), ctx.core.token.as_bytes()) {
        json!({"authenticated": true, "user": user_json(&UserInfo::admin()), "audiences": wanted})
    } else {
        match super::service_account_user(&ctx.core, token, &wanted) {
            Ok(user) => {
                let claims = ctx.core.auth.signer.verify(token, &wanted, token::now());
                let aud: Vec<String> = claims
                    .map(|c| c.aud.into_iter().filter(|a| wanted.contains(a)).collect())
                    .unwrap_or_default();
                json!({"authenticated": true, "user": user_json(&user), "audiences": aud})
            }
            Err(e) => json!({"user": {}, "error": format!("[invalid bearer token, {e}]")}),
        }
    };
    Ok(answer(
        AUTHN,
        "TokenReview",
        json!({"creationTimestamp": null}),
        spec,
        status,
    ))
}

fn self_subject_review(ctx: &RequestCtx, _: &[&str]) -> ApiResult<Response> {
    Ok(answer(
        AUTHN,
        "SelfSubjectReview",
        json!({"creationTimestamp": null}),
        &Value::Null,
        json!({"userInfo": user_json(&ctx.user)}),
    ))
}

/// The attributes a review's `spec` asks about, for `user`.
fn review_attributes(kind: &str, user: UserInfo, spec: &Value) -> ApiResult<Attributes> {
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or("").to_string();
    if let Some(r) = spec.get("resourceAttributes").filter(|v| v.is_object()) {
        return Ok(Attributes {
            user,
            verb: s(r, "verb"),
            resource_request: true,
            api_group: s(r, "group"),
            resource: s(r, "resource"),
            subresource: s(r, "subresource"),
            namespace: s(r, "namespace"),
            name: s(r, "name"),
            path: String::new(),
        });
    }
    if let Some(n) = spec.get("nonResourceAttributes").filter(|v| v.is_object()) {
        return Ok(Attributes {
            user,
            verb: s(n, "verb"),
            path: s(n, "path"),
            ..Default::default()
        });
    }
    Err(invalid(
        kind,
        AUTHZ,
        "",
        "spec.resourceAttributes",
        "FieldValueRequired",
        "Required value: exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
    ))
}

fn access_status(ctx: &RequestCtx, a: &Attributes) -> Value {
    match super::authorize(&ctx.core, a) {
        rbac::Decision::Allow(reason) if reason.is_empty() => json!({"allowed": true}),
        rbac::Decision::Allow(reason) => json!({"allowed": true, "reason": reason}),
        rbac::Decision::Deny(reason) if reason.is_empty() => json!({"allowed": false}),
        rbac::Decision::Deny(reason) => json!({"allowed": false, "reason": reason}),
    }
}

fn self_access_review(ctx: &RequestCtx, _: &[&str]) -> ApiResult<Response> {
    let req = body(ctx, AUTHZ, "selfsubjectaccessreviews")?;
    let spec = &req["spec"];
    let a = review_attributes("SelfSubjectAccessReview", ctx.user.clone(), spec)?;
    let status = access_status(ctx, &a);
    Ok(answer(
        AUTHZ,
        "SelfSubjectAccessReview",
        json!({"creationTimestamp": null}),
        spec,
        status,
    ))
}

fn subject_access_review(ctx: &RequestCtx, rest: &[&str]) -> ApiResult<Response> {
    let local = rest.len() == 3;
    let kind = if local {
        "LocalSubjectAccessReview"
    } else {
        "SubjectAccessReview"
    };
    let req = body(
        ctx,
        AUTHZ,
        if local {
            "localsubjectaccessreviews"
        } else {
            "subjectaccessreviews"
        },
    )?;
    let mut spec = req["spec"].clone();
    let user = UserInfo {
        name: spec["user"].as_str().unwrap_or("").into(),
        uid: spec["uid"].as_str().unwrap_or("").into(),
        groups: spec["groups"]
            .as_array()
            .map(|g| g.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default(),
    };
    if user.name.is_empty() && user.groups.is_empty() {
        return Err(invalid(
            kind,
            AUTHZ,
            "",
            "spec.user",
            "FieldValueInvalid",
            "Invalid value: \"\": at least one of user or group must be specified".into(),
        ));
    }
    if local {
        let ns = rest[1];
        let given = spec["resourceAttributes"]["namespace"].as_str().unwrap_or("");
        if spec["resourceAttributes"].is_object() && given.is_empty() {
            spec["resourceAttributes"]["namespace"] = ns.into();
        } else if given != ns {
            return Err(invalid(
                kind,
                AUTHZ,
                "",
                "spec.resourceAttributes.namespace",
                "FieldValueInvalid",
                format!("Invalid value: {given:?}: must match metadata.namespace"),
            ));
        }
    }
    let a = review_attributes(kind, user, &spec)?;
    let status = access_status(ctx, &a);
    let metadata = if local {
        json!({"namespace": rest[1], "creationTimestamp": null})
    } else {
        json!({"creationTimestamp": null})
    };
    Ok(answer(AUTHZ, kind, metadata, &spec, status))
}

fn rules_json(rules: &[PolicyRule]) -> (Vec<Value>, Vec<Value>) {
    let mut resource = Vec::new();
    let mut non_resource = Vec::new();
    for r in rules {
        if let Some(urls) = r.non_resource_urls.as_ref().filter(|u| !u.is_empty()) {
            non_resource.push(json!({"verbs": r.verbs, "nonResourceURLs": urls}));
        }
        if r.resources.as_ref().is_some_and(|x| !x.is_empty()) {
            let mut m = json!({"verbs": r.verbs, "apiGroups": r.api_groups.clone().unwrap_or_default(), "resources": r.resources});
            if let Some(names) = r.resource_names.as_ref().filter(|n| !n.is_empty()) {
                m["resourceNames"] = json!(names);
            }
            resource.push(m);
        }
    }
    (resource, non_resource)
}

fn self_rules_review(ctx: &RequestCtx, _: &[&str]) -> ApiResult<Response> {
    let req = body(ctx, AUTHZ, "selfsubjectrulesreviews")?;
    let spec = &req["spec"];
    let ns = spec["namespace"].as_str().unwrap_or("");
    let user = &ctx.user;
    let everything =
        user.in_group(super::MASTERS) || (!ctx.core.auth.rbac && user.in_group(super::AUTHENTICATED));
    let (mut rules, errors) = if ctx.core.auth.rbac {
        ctx.core.auth.policy(&ctx.core.store).rules_for(user, ns)
    } else {
        (Vec::new(), Vec::new())
    };
    if everything {
        let star: PolicyRule =
            serde_json::from_value(json!({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}))
                .unwrap_or_default();
        let urls: PolicyRule =
            serde_json::from_value(json!({"verbs": ["*"], "nonResourceURLs": ["*"]})).unwrap_or_default();
        rules.insert(0, star);
        rules.insert(1, urls);
    }
    let (resource, non_resource) = rules_json(&rules);
    let mut status = json!({"resourceRules": resource, "nonResourceRules": non_resource, "incomplete": !errors.is_empty()});
    if !errors.is_empty() {
        status["evaluationError"] = errors.join(", ").into();
    }
    Ok(answer(
        AUTHZ,
        "SelfSubjectRulesReview",
        json!({"creationTimestamp": null}),
        spec,
        status,
    ))
}
