//! Authentication, impersonation and authorization of every request, in kube-apiserver's order:
//! the bearer token names a user (the admin token: `admin` in `system:masters`; a ServiceAccount
//! token from the TokenRequest API: `system:serviceaccount:NS:NAME`; no token: `system:anonymous`),
//! `Impersonate-*` headers switch to another user when the caller may `impersonate`, and the request
//! attributes (verb, API group, resource/subresource, namespace, name — or the non-resource path) are
//! authorized. `system:masters` may do anything. Without [`crate::Config::rbac`] every authenticated
//! user may do anything and anonymous users only what `system:public-info-viewer` grants; with it,
//! the stored Roles and bindings decide ([`rbac`]). A refusal is the 403 a real server writes.
//!
//! Submodules: [`rbac`] (rule evaluation), [`escalation`] (no granting what one does not hold),
//! [`token`] (ServiceAccount JWTs), [`bootstrap`] (the
//! roles and bindings of a fresh cluster), [`reviews`] (TokenRequest, TokenReview, the access
//! reviews).

pub mod bootstrap;
pub mod escalation;
pub mod rbac;
pub mod reviews;
pub mod token;

use std::sync::{Arc, Mutex};

use http::{HeaderMap, Method, header};
use serde_json::Value;

use crate::Core;
use crate::error::ApiError;
use crate::store::Key;

pub const MASTERS: &str = "system:masters";
pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";

/// Authentication state of a running server.
#[derive(Debug)]
pub struct Auth {
    /// Enforce RBAC (`--rbac`).
    pub rbac: bool,
    pub signer: token::Signer,
    /// The RBAC objects as of a store revision, reused until the next write.
    policy: Mutex<Option<(u64, Arc<rbac::Policy>)>>,
}

impl Auth {
    pub fn new(rbac: bool, signer: token::Signer) -> Auth {
        Auth {
            rbac,
            signer,
            policy: Mutex::new(None),
        }
    }

    /// The Roles and bindings now stored (decoded once per store revision).
    pub fn policy(&self, store: &crate::store::Store) -> Arc<rbac::Policy> {
        let revision = store.revision();
        let mut cached = self.policy.lock().expect("policy lock");
        if let Some((r, p)) = cached.as_ref()
            && *r == revision
        {
            return p.clone();
        }
        let p = Arc::new(rbac::Policy::from_store(store));
        *cached = Some((revision, p.clone()));
        p
    }
}

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn admin() -> UserInfo {
        UserInfo {
            name: "admin".into(),
            uid: String::new(),
            groups: vec![MASTERS.into(), AUTHENTICATED.into()],
        }
    }

    pub fn anonymous() -> UserInfo {
        UserInfo {
            name: ANONYMOUS.into(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED.into()],
        }
    }

    /// The user a ServiceAccount token authenticates as.
    pub fn service_account(namespace: &str, name: &str, uid: &str) -> UserInfo {
        UserInfo {
            name: format!("system:serviceaccount:{namespace}:{name}"),
            uid: uid.into(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{namespace}"),
                AUTHENTICATED.into(),
            ],
        }
    }

    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }
}

/// What a request asks for, as an authorizer sees it (`authorizer.Attributes`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub user: UserInfo,
    pub verb: String,
    pub resource_request: bool,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// The request path (non-resource requests).
    pub path: String,
}

/// `RequestInfoFactory.NewRequestInfo`: the attributes of `method path?query`.
pub fn request_attributes(
    user: UserInfo,
    method: &Method,
    path: &str,
    query: &crate::http::Query,
) -> Attributes {
    let mut a = Attributes {
        user,
        verb: method.as_str().to_ascii_lowercase(),
        path: path.to_string(),
        ..Default::default()
    };
    let parts: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let rest = match parts.as_slice() {
        ["api", _version, rest @ ..] if !rest.is_empty() => rest,
        ["apis", group, _version, rest @ ..] if !rest.is_empty() => {
            a.api_group = group.to_string();
            rest
        }
        _ => return a,
    };
    a.resource_request = true;
    let (verb_by_method, rest) = match rest {
        ["watch", rest @ ..] if !rest.is_empty() => (false, rest),
        _ => (true, rest),
    };
    a.verb = if !verb_by_method {
        "watch".into()
    } else {
        match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .into()
    };
    let mut rest = rest;
    if rest[0] == "namespaces" && rest.len() > 1 {
        a.namespace = rest[1].to_string();
        if rest.len() > 2 && !matches!(rest[2], "status" | "finalize") {
            rest = &rest[2..];
        }
    }
    a.resource = rest[0].to_string();
    if let Some(name) = rest.get(1) {
        a.name = name.to_string();
    }
    if let Some(sub) = rest.get(2) {
        a.subresource = sub.to_string();
    }
    if a.name.is_empty() && a.verb == "get" {
        a.verb = if query.flag("watch") { "watch" } else { "list" }.into();
        if let Some(name) = query.get("fieldSelector").and_then(exact_name) {
            a.name = name;
        }
    }
    if a.name.is_empty() && a.verb == "delete" {
        a.verb = "deletecollection".into();
    }
    a
}

/// `metadata.name=X` (or `==`) in a field selector, when it is a valid path segment.
fn exact_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (k, v) = term.split_once("==").or_else(|| term.split_once('='))?;
        (k.trim() == "metadata.name" && !k.ends_with('!'))
            .then(|| v.trim().to_string())
            .filter(|v| !v.is_empty() && v != "." && v != ".." && !v.contains(['/', '%']))
    })
}

/// The user a ServiceAccount token stands for, if it is valid for `audiences` and the account
/// still exists with the uid the token names.
pub fn service_account_user(core: &Core, token: &str, audiences: &[String]) -> Result<UserInfo, String> {
    let claims = core
        .auth
        .signer
        .verify(token, audiences, token::now())
        .map_err(|e| e.to_string())?;
    let k = &claims.kubernetes;
    let key = Key {
        resource: "/serviceaccounts".into(),
        namespace: k.namespace.clone(),
        name: k.serviceaccount.name.clone(),
    };
    let sa = core
        .store
        .get(&key)
        .ok_or_else(|| format!("serviceaccounts \"{}\" not found", k.serviceaccount.name))?;
    let uid = crate::admission::meta_str(&sa, "uid").unwrap_or("");
    if uid != k.serviceaccount.uid || crate::admission::is_terminating(&sa) {
        return Err("service account token has been invalidated".into());
    }
    Ok(UserInfo::service_account(
        &k.namespace,
        &k.serviceaccount.name,
        uid,
    ))
}

/// The user behind the `Authorization` header (401 for a token nobody issued).
pub fn authenticate(core: &Core, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(UserInfo::anonymous());
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(ApiError::unauthorized)?;
    if crate::http::constant_time_eq(token.as_bytes(), core.token.as_bytes()) {
        return Ok(UserInfo::admin());
    }
    service_account_user(core, token, &[token::ISSUER.to_string()]).map_err(|_| ApiError::unauthorized())
}

/// What RBAC-off allows anonymous users: `system:public-info-viewer`.
fn public_info(a: &Attributes) -> bool {
    !a.resource_request
        && a.verb == "get"
        && matches!(
            a.path.as_str(),
            "/healthz" | "/livez" | "/readyz" | "/version" | "/version/"
        )
}

/// The authorizer chain: `system:masters`, then RBAC (or, without RBAC, everyone authenticated).
pub fn authorize(core: &Core, a: &Attributes) -> rbac::Decision {
    if a.user.in_group(MASTERS) {
        return rbac::Decision::Allow(String::new());
    }
    if !core.auth.rbac {
        return if a.user.in_group(AUTHENTICATED) || public_info(a) {
            rbac::Decision::Allow(String::new())
        } else {
            rbac::Decision::Deny(String::new())
        };
    }
    core.auth.policy(&core.store).authorize(a)
}

/// `responsewriters.ForbiddenStatusError`: the 403 a real server writes for a refused request.
pub fn forbidden(a: &Attributes, reason: &str) -> ApiError {
    let sanitize = |s: String| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let mut msg = if !a.resource_request {
        format!("User {:?} cannot {} path {:?}", a.user.name, a.verb, a.path)
    } else {
        let resource = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        let scope = if a.namespace.is_empty() {
            "at the cluster scope".to_string()
        } else {
            format!("in the namespace {:?}", a.namespace)
        };
        format!(
            "User {:?} cannot {} resource {:?} in API group {:?} {scope}",
            a.user.name, a.verb, resource, a.api_group
        )
    };
    msg = sanitize(msg);
    if !reason.is_empty() {
        msg = format!("{msg}: {reason}");
    }
    let qualified = match (a.resource.as_str(), a.api_group.as_str()) {
        ("", _) => String::new(),
        (r, "") => r.to_string(),
        (r, g) => format!("{r}.{g}"),
    };
    let message = match (qualified.is_empty(), a.name.is_empty()) {
        (true, _) => format!("forbidden: {msg}"),
        (false, true) => format!("{qualified} is forbidden: {msg}"),
        (false, false) => format!("{qualified} {:?} is forbidden: {msg}", a.name),
    };
    let mut details = serde_json::Map::new();
    if !a.name.is_empty() {
        details.insert("name".into(), a.name.clone().into());
    }
    if !a.api_group.is_empty() {
        details.insert("group".into(), a.api_group.clone().into());
    }
    if !a.resource.is_empty() {
        details.insert("kind".into(), a.resource.clone().into());
    }
    ApiError::new(403, "Forbidden", message).with_details(Value::Object(details))
}

/// Authorizes `a`, or the 403.
pub fn check(core: &Core, a: &Attributes) -> Result<(), ApiError> {
    match authorize(core, a) {
        rbac::Decision::Allow(_) => Ok(()),
        rbac::Decision::Deny(reason) => Err(forbidden(a, &reason)),
    }
}

fn header_values(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// `WithImpersonation`: the user the `Impersonate-User`/`-Group`/`-Uid` headers ask for, when
/// `user` may `impersonate` each of them.
pub fn impersonate(core: &Core, user: UserInfo, headers: &HeaderMap) -> Result<UserInfo, ApiError> {
    let name = headers
        .get("impersonate-user")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let groups = header_values(headers, "impersonate-group");
    let uid = headers
        .get("impersonate-uid")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let extras: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| {
            let key = k.as_str().strip_prefix("impersonate-extra-")?;
            let key = form_urlencoded::parse(format!("k={key}").as_bytes())
                .next()
                .map(|(_, k)| k.to_ascii_lowercase())?;
            Some((key, v.to_str().ok()?.to_string()))
        })
        .collect();
    let Some(name) = name else {
        if !groups.is_empty() || uid.is_some() || !extras.is_empty() {
            return Err(ApiError::internal(format!(
                "requested {groups:?} without impersonating a user"
            )));
        }
        return Ok(user);
    };
    let ask = |resource: &str, group: &str, namespace: &str, n: &str| Attributes {
        user: user.clone(),
        verb: "impersonate".into(),
        resource_request: true,
        api_group: group.into(),
        resource: resource.into(),
        namespace: namespace.into(),
        name: n.into(),
        ..Default::default()
    };
    let mut out = UserInfo {
        name: name.clone(),
        uid: String::new(),
        groups: Vec::new(),
    };
    let sa = name
        .strip_prefix("system:serviceaccount:")
        .and_then(|r| r.split_once(':'));
    match sa {
        Some((ns, n)) => {
            check(core, &ask("serviceaccounts", "", ns, n))?;
            if groups.is_empty() {
                out.groups = vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{ns}"),
                ];
            }
        }
        None => check(core, &ask("users", "", "", &name))?,
    }
    for g in &groups {
        check(core, &ask("groups", "", "", g))?;
        out.groups.push(g.clone());
    }
    if let Some(uid) = uid {
        check(core, &ask("uids", "authentication.k8s.io", "", &uid))?;
        out.uid = uid;
    }
    // Extra fields are checked (`userextras/KEY`) but not carried: no authorizer here reads them.
    for (key, value) in &extras {
        let mut a = ask("userextras", "authentication.k8s.io", "", value);
        a.subresource = key.clone();
        check(core, &a)?;
    }
    if name == ANONYMOUS {
        if !out.in_group(UNAUTHENTICATED) {
            out.groups.push(UNAUTHENTICATED.into());
        }
    } else if !out.in_group(AUTHENTICATED) {
        out.groups.push(AUTHENTICATED.into());
    }
    Ok(out)
}

/// Everything before routing: who the caller is (after impersonation) and that they may do this.
pub fn check_request(
    core: &Core,
    method: &Method,
    path: &str,
    query: &crate::http::Query,
    headers: &HeaderMap,
) -> Result<UserInfo, ApiError> {
    let user = authenticate(core, headers)?;
    let user = impersonate(core, user, headers)?;
    let a = request_attributes(user, method, path, query);
    check(core, &a)?;
    Ok(a.user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(method: Method, path: &str, query: &str) -> Attributes {
        let q = crate::http::Query::parse(Some(query));
        request_attributes(UserInfo::admin(), &method, path, &q)
    }

    #[test]
    fn request_attributes_follow_the_request_info_factory() {
        let a = attrs(Method::GET, "/api/v1/namespaces/ref/configmaps/x", "");
        assert_eq!(
            (
                a.verb.as_str(),
                a.resource.as_str(),
                a.namespace.as_str(),
                a.name.as_str()
            ),
            ("get", "configmaps", "ref", "x")
        );
        let a = attrs(
            Method::GET,
            "/apis/apps/v1/namespaces/a/deployments",
            "watch=true",
        );
        assert_eq!((a.verb.as_str(), a.api_group.as_str()), ("watch", "apps"));
        let a = attrs(Method::GET, "/api/v1/watch/namespaces/a/pods", "");
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.namespace.as_str()),
            ("watch", "pods", "a")
        );
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/a/pods",
            "fieldSelector=metadata.name%3Dweb",
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("list", "web"));
        let a = attrs(Method::PUT, "/apis/apps/v1/namespaces/a/deployments/w/scale", "");
        assert_eq!((a.verb.as_str(), a.subresource.as_str()), ("update", "scale"));
        let a = attrs(Method::DELETE, "/api/v1/namespaces/a/configmaps", "");
        assert_eq!(a.verb, "deletecollection");
        let a = attrs(Method::GET, "/api/v1/namespaces/a", "");
        assert_eq!(
            (a.resource.as_str(), a.namespace.as_str(), a.name.as_str()),
            ("namespaces", "a", "a")
        );
        let a = attrs(Method::PUT, "/api/v1/namespaces/a/finalize", "");
        assert_eq!(
            (a.resource.as_str(), a.subresource.as_str()),
            ("namespaces", "finalize")
        );
        for p in ["/api", "/api/v1", "/apis/apps/v1", "/version", "/openapi/v2"] {
            let a = attrs(Method::GET, p, "");
            assert!(!a.resource_request, "{p}");
            assert_eq!(a.verb, "get");
        }
    }

    #[test]
    fn forbidden_bodies_match_the_recordings() {
        let jane = UserInfo {
            name: "jane".into(),
            ..Default::default()
        };
        let mut a = attrs(Method::GET, "/api/v1/namespaces/ref/configmaps/meta-cm", "");
        a.user = jane.clone();
        let e = forbidden(&a, "");
        assert_eq!(
            serde_json::to_value(e.to_status()).unwrap(),
            serde_json::json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "configmaps \"meta-cm\" is forbidden: User \"jane\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"ref\"",
                "reason": "Forbidden", "details": {"name": "meta-cm", "kind": "configmaps"}, "code": 403})
        );
        let mut a = attrs(Method::GET, "/apis/example.com/v1/namespaces/ref/widgets", "");
        a.user = jane;
        let e = forbidden(&a, "");
        assert_eq!(
            e.message,
            "widgets.example.com is forbidden: User \"jane\" cannot list resource \"widgets\" in API group \"example.com\" in the namespace \"ref\""
        );
        assert_eq!(
            e.details.unwrap(),
            serde_json::json!({"group": "example.com", "kind": "widgets"})
        );
        let mut a = attrs(Method::GET, "/apis", "");
        a.user = UserInfo::anonymous();
        assert_eq!(
            forbidden(&a, "").message,
            "forbidden: User \"system:anonymous\" cannot get path \"/apis\""
        );
    }
}
