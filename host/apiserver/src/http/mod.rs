//! HTTP front end: authentication, fault injection, routing of Kubernetes REST paths to the verbs in
//! [`crate::objects`], and the wire format of a real API server (compact JSON plus newline, pretty for
//! curl, `Status` errors, `Warning` headers, Table output for kubectl).

pub mod builtin_schemas;
pub mod discovery;
pub mod metadata;
pub mod metrics;
pub mod openapi;
pub mod subresources;
pub mod table;
pub mod watch;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use serde_json::Value;

use crate::Core;
use crate::admission::FieldValidation;
use crate::error::{ApiError, ApiResult};
use crate::objects::{self, DeleteOptions, ListOptions, WriteOptions};
use crate::patch::PatchType;
use crate::registry::ResourceInfo;

/// Request bodies larger than this are refused with 413, as kube-apiserver's `MaxRequestBodyBytes`
/// (3 MiB, etcd's recommended request size) refuses them.
pub const MAX_BODY: usize = 3 * 1024 * 1024;

/// kube-apiserver's answer to a body over the limit (`errors.NewRequestEntityTooLargeError`).
fn too_large() -> ApiError {
    ApiError::new(
        413,
        "RequestEntityTooLarge",
        format!("Request entity too large: limit is {MAX_BODY}"),
    )
}

pub fn router(core: Arc<Core>) -> axum::Router {
    metrics::layer(
        axum::Router::new().fallback(handle).with_state(core.clone()),
        core,
    )
}

/// Query parameters, last value wins.
#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub(crate) fn parse(q: Option<&str>) -> Query {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .into_owned()
                .collect(),
        )
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    pub fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// How to render a response body.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    pretty: bool,
    table: bool,
    /// `as=PartialObjectMetadata[List]`: answer with metadata only.
    meta: Option<metadata::Target>,
}

impl Format {
    fn from_request(headers: &HeaderMap, query: &Query) -> Format {
        let ua = headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let pretty =
            query.flag("pretty") || ["curl", "Wget", "Mozilla/5.0"].iter().any(|p| ua.starts_with(p));
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let table = accept
            .split(',')
            .next()
            .is_some_and(|first| first.contains("as=Table"));
        let meta = metadata::from_accept(accept);
        Format { pretty, table, meta }
    }
}

pub fn json_bytes(value: &Value, pretty: bool) -> Vec<u8> {
    if let Some(mut v) = crate::status::to_vec(value, pretty) {
        if !pretty {
            v.push(b'\n');
        }
        return v;
    }
    if pretty {
        serde_json::to_vec_pretty(value).unwrap_or_default()
    } else {
        let mut v = serde_json::to_vec(value).unwrap_or_default();
        v.push(b'\n');
        v
    }
}

pub(crate) fn json_response(code: u16, value: &Value, pretty: bool) -> Response {
    let mut resp = Response::new(Body::from(json_bytes(value, pretty)));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    resp
}

pub fn error_response(e: &ApiError, pretty: bool) -> Response {
    let mut resp = json_response(e.code, &e.to_status(), pretty);
    if let Some(secs) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn text_response(code: StatusCode, body: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn with_warnings(mut resp: Response, warnings: &[String]) -> Response {
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - {}", Value::String(w.clone()))) {
            resp.headers_mut().append("Warning", v);
        }
    }
    resp
}

/// Compares a presented secret (a bearer token) with the expected one in time that depends on
/// neither: both are hashed first (so not even the length is compared early), then the digests are
/// compared in constant time.
pub(crate) fn constant_time_eq(presented: &[u8], expected: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    let a = ring::digest::digest(&ring::digest::SHA256, presented);
    let b = ring::digest::digest(&ring::digest::SHA256, expected);
    a.as_ref().ct_eq(b.as_ref()).into()
}

async fn handle(State(core): State<Arc<Core>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let query = Query::parse(parts.uri.query());
    let format = Format::from_request(&parts.headers, &query);
    let path = parts.uri.path().trim_end_matches('/').to_string();
    let public = matches!(path.as_str(), "/version" | "/healthz" | "/livez" | "/readyz");
    // Authentication, impersonation and authorization (`crate::auth`).
    let user =
        match crate::auth::check_request(&core, &parts.method, parts.uri.path(), &query, &parts.headers) {
            Ok(user) => user,
            Err(e) => return error_response(&e, format.pretty),
        };
    let watch = query.get("watch").is_some_and(|w| w == "true" || w == "1");
    if !public && let Err(e) = core.faults.before_request(&parts.method, &path, watch).await {
        return error_response(&e, format.pretty);
    }
    // A declared length over the limit is refused before reading anything.
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return error_response(&too_large(), format.pretty);
    }
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return error_response(&too_large(), format.pretty),
    };
    let ctx = RequestCtx {
        core,
        method: parts.method,
        headers: parts.headers,
        query,
        format,
        body,
        user,
    };
    match route(&ctx, &path).await {
        Ok(resp) => resp,
        Err(e) => error_response(&e, format.pretty),
    }
}

/// Everything a handler needs about the request.
pub struct RequestCtx {
    pub core: Arc<Core>,
    pub method: Method,
    pub headers: HeaderMap,
    pub query: Query,
    pub format: Format,
    pub body: Bytes,
    /// Who is asking (after impersonation).
    pub user: crate::auth::UserInfo,
}

impl RequestCtx {
    fn header(&self, name: header::HeaderName) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    fn write_options(&self) -> ApiResult<WriteOptions> {
        let explicit = self.query.get("fieldManager").filter(|m| !m.is_empty());
        // Without ?fieldManager the manager is the User-Agent's product name (reference behaviour 17).
        let manager = match explicit {
            Some(m) => m.to_string(),
            None => self
                .header(header::USER_AGENT)
                .split('/')
                .next()
                .unwrap_or("")
                .to_string(),
        };
        if manager.len() > 128 {
            return Err(ApiError::bad_request(
                "fieldManager must be at most 128 characters",
            ));
        }
        Ok(WriteOptions {
            manager: if manager.is_empty() {
                "unknown".into()
            } else {
                manager
            },
            manager_explicit: explicit.is_some(),
            dry_run: self.query.get("dryRun").is_some_and(|v| v == "All"),
            validation: FieldValidation::parse(self.query.get("fieldValidation"))?,
            force: self.query.flag("force"),
        })
    }

    fn list_options(&self) -> ListOptions {
        let q = |k: &str| self.query.get(k).map(String::from);
        ListOptions {
            label_selector: q("labelSelector"),
            field_selector: q("fieldSelector"),
            limit: self.query.get("limit").and_then(|l| l.parse().ok()),
            continue_token: q("continue"),
            resource_version: q("resourceVersion"),
            resource_version_match: q("resourceVersionMatch"),
        }
    }

    fn delete_options(&self) -> ApiResult<DeleteOptions> {
        let mut opts = DeleteOptions {
            propagation: self.query.get("propagationPolicy").map(String::from),
            orphan_dependents: self.query.get("orphanDependents").map(|v| v == "true"),
            precondition_uid: None,
            precondition_rv: None,
            dry_run: self.query.get("dryRun").is_some_and(|v| v == "All"),
        };
        if !self.body.is_empty() {
            let body: Value = serde_json::from_slice(&self.body)
                .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?;
            opts.merge_body(&body);
        }
        Ok(opts)
    }

    /// The request body as JSON (JSON, YAML or protobuf on the wire).
    pub(crate) fn json_body(&self, ri: &ResourceInfo) -> ApiResult<Value> {
        let ct = self.header(header::CONTENT_TYPE);
        let media = ct.split(';').next().unwrap_or("").trim();
        let parsed = match media {
            "" | "application/json" | "*/*" => {
                serde_json::from_slice::<Value>(&self.body).map_err(|e| e.to_string())
            }
            "application/yaml" => serde_yaml::from_slice::<Value>(&self.body).map_err(|e| e.to_string()),
            "application/vnd.kubernetes.protobuf" => {
                return wasmop_apimachinery::protobuf::decode(&self.body, builtin_schemas::all()).map_err(
                    |e| match e {
                        wasmop_apimachinery::protobuf::ProtobufError::UnsupportedKind { .. } => {
                            ApiError::unsupported_media_type(e.to_string())
                        }
                        _ => ApiError::bad_request(e.to_string()),
                    },
                );
            }
            _ => {
                return Err(ApiError::unsupported_media_type(
                    "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf",
                ));
            }
        };
        parsed.map_err(|e| {
            let snippet: String = String::from_utf8_lossy(&self.body).chars().take(30).collect();
            ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): couldn't get version/kind; json parse error: {e} ({snippet} ...)",
                ri.kind
            ))
        })
    }

    fn respond(&self, code: u16, value: &Value) -> Response {
        if let Some(target) = self.format.meta {
            return match metadata::transform(value, target) {
                Ok(v) => json_response(code, &v, self.format.pretty),
                Err(e) => error_response(&e, self.format.pretty),
            };
        }
        json_response(code, value, self.format.pretty)
    }
}

/// Runs a blocking verb (it may wait on the store's fsync) off the async workers.
async fn blocking<T, F>(f: F) -> ApiResult<T>
where
    F: FnOnce() -> ApiResult<T> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
}

/// A parsed resource URL.
#[derive(Debug, Clone)]
struct Target {
    ri: Arc<ResourceInfo>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    watch_path: bool,
}

async fn route(ctx: &RequestCtx, path: &str) -> ApiResult<Response> {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let registry = &ctx.core.registry;
    match segs.as_slice() {
        ["version"] => return Ok(json_response(200, &discovery::version(), true)),
        ["healthz"] | ["livez"] | ["readyz"] => return Ok(text_response(StatusCode::OK, "ok")),
        ["openapi", rest @ ..] => return openapi::serve(ctx, rest),
        ["api"] => return discovery_response(ctx, true),
        ["apis"] => return discovery_response(ctx, false),
        ["api", "v1"] => {
            return Ok(ctx.respond(
                200,
                &discovery::resource_list(registry, "", "v1").unwrap_or_default(),
            ));
        }
        ["apis", group] => {
            return match discovery::group(registry, group) {
                Some(doc) => Ok(ctx.respond(200, &doc)),
                None => Ok(text_response(StatusCode::NOT_FOUND, "404 page not found")),
            };
        }
        ["apis", group, version] => {
            return match discovery::resource_list(registry, group, version) {
                Some(doc) => Ok(ctx.respond(200, &doc)),
                None => Ok(text_response(StatusCode::NOT_FOUND, "404 page not found")),
            };
        }
        _ => {}
    }
    let (group, version, rest) = match segs.as_slice() {
        ["api", "v1", rest @ ..] => ("", "v1", rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return Ok(text_response(StatusCode::NOT_FOUND, "404 page not found")),
    };
    if registry
        .groups()
        .iter()
        .all(|(g, vs)| g != group || vs.iter().all(|(v, _)| v != version))
    {
        return Ok(text_response(StatusCode::NOT_FOUND, "404 page not found"));
    }
    crate::auth::escalation::check(ctx, group, version, rest)?;
    if let Some(r) = crate::auth::reviews::serve(ctx, group, version, rest) {
        return r;
    }
    let (watch_path, rest) = match rest {
        ["watch", rest @ ..] => (true, rest),
        _ => (false, rest),
    };
    let lookup = |plural: &str| {
        registry
            .lookup(group, version, plural)
            .ok_or_else(ApiError::resource_not_found)
    };
    let is_ns_sub = |s: &str| group.is_empty() && matches!(s, "status" | "finalize");
    let target = match rest {
        [res] => Target {
            ri: lookup(res)?,
            namespace: None,
            name: None,
            subresource: None,
            watch_path,
        },
        ["namespaces", name, sub] if is_ns_sub(sub) => Target {
            ri: lookup("namespaces")?,
            namespace: None,
            name: Some(name.to_string()),
            subresource: Some(sub.to_string()),
            watch_path,
        },
        ["namespaces", ns, res] => Target {
            ri: lookup(res)?,
            namespace: Some(ns.to_string()),
            name: None,
            subresource: None,
            watch_path,
        },
        ["namespaces", ns, res, name] => Target {
            ri: lookup(res)?,
            namespace: Some(ns.to_string()),
            name: Some(name.to_string()),
            subresource: None,
            watch_path,
        },
        ["namespaces", ns, res, name, sub] => Target {
            ri: lookup(res)?,
            namespace: Some(ns.to_string()),
            name: Some(name.to_string()),
            subresource: Some(sub.to_string()),
            watch_path,
        },
        [res, name] => Target {
            ri: lookup(res)?,
            namespace: None,
            name: Some(name.to_string()),
            subresource: None,
            watch_path,
        },
        [res, name, sub] => Target {
            ri: lookup(res)?,
            namespace: None,
            name: Some(name.to_string()),
            subresource: Some(sub.to_string()),
            watch_path,
        },
        _ => return Err(ApiError::resource_not_found()),
    };
    // A namespaced resource addressed without a namespace is only valid for list/watch across all.
    if target.ri.namespaced && target.namespace.is_none() && target.name.is_some() {
        return Err(ApiError::resource_not_found());
    }
    if !target.ri.namespaced && target.namespace.is_some() {
        return Err(ApiError::resource_not_found());
    }
    if let Some(sub) = target.subresource.as_deref()
        && !crate::core_kinds::routed(&target.ri, sub)
    {
        return Err(ApiError::resource_not_found());
    }
    if let Some(resp) = subresources::handle(ctx, &target).await? {
        return Ok(resp);
    }
    resource(ctx, target).await
}

fn discovery_response(ctx: &RequestCtx, core_group: bool) -> ApiResult<Response> {
    let accept = ctx.header(header::ACCEPT);
    let registry = &ctx.core.registry;
    let Some(version) = discovery::aggregated_version(accept) else {
        let doc = if core_group {
            discovery::core_versions(ctx.header(header::HOST))
        } else {
            discovery::group_list(registry)
        };
        return Ok(ctx.respond(200, &doc));
    };
    let doc = discovery::aggregated(registry, core_group, version);
    let bytes = json_bytes(&doc, ctx.format.pretty);
    let etag = format!("\"{:016X}\"", fnv1a(&bytes));
    let content_type = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    let mut resp = if ctx.header(header::IF_NONE_MATCH) == etag {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        Response::new(Body::from(bytes))
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).expect("valid header"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public"));
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("valid header"));
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    Ok(resp)
}

/// A stable content hash for ETags.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

async fn resource(ctx: &RequestCtx, t: Target) -> ApiResult<Response> {
    let core = ctx.core.clone();
    let ri = t.ri.clone();
    let ns = t.namespace.clone().unwrap_or_default();
    let sub = t.subresource.clone();
    match (&ctx.method, t.name.clone()) {
        (&Method::GET, None) => {
            if t.watch_path || ctx.query.flag("watch") {
                return watch::serve(ctx, ri, t.namespace.clone()).await;
            }
            let opts = ctx.list_options();
            if opts
                .resource_version
                .as_deref()
                .is_some_and(|rv| rv != "0" && !rv.is_empty())
            {
                wait_for_revision(&core, opts.resource_version.as_deref().unwrap_or("")).await;
            }
            let list = objects::list(&core, &ri, t.namespace.as_deref(), &opts)?;
            if ctx.format.table {
                return Ok(ctx.respond(
                    200,
                    &table::list_table(&ri, &list, ctx.query.get("includeObject")),
                ));
            }
            Ok(ctx.respond(200, &list))
        }
        (&Method::GET, Some(name)) => {
            let obj = objects::get(&core, &ri, &ns, &name)?;
            if sub.as_deref() == Some("scale") {
                return Ok(ctx.respond(200, &table::scale_of(&ri, &obj)));
            }
            if ctx.format.table {
                return Ok(ctx.respond(200, &table::one_table(&ri, &obj, ctx.query.get("includeObject"))));
            }
            Ok(ctx.respond(200, &obj))
        }
        (&Method::POST, None) => {
            let body = ctx.json_body(&ri)?;
            let opts = ctx.write_options()?;
            let w = blocking(move || objects::create(&core, &ri, &ns, body, &opts)).await?;
            Ok(with_warnings(ctx.respond(w.code, &w.object), &w.warnings))
        }
        (&Method::PUT, Some(name)) => {
            let opts = ctx.write_options()?;
            let mut body = ctx.json_body(&ri)?;
            if sub.as_deref() == Some("scale") {
                let current = objects::get(&core, &ri, &ns, &name)?;
                body = table::apply_scale(&ri, current, &body)?;
                let w = blocking(move || objects::update(&core, &ri, &ns, &name, None, body, &opts)).await?;
                return Ok(ctx.respond(w.code, &table::scale_of(&t.ri, &w.object)));
            }
            let w = blocking(move || objects::update(&core, &ri, &ns, &name, sub.as_deref(), body, &opts))
                .await?;
            Ok(with_warnings(ctx.respond(w.code, &w.object), &w.warnings))
        }
        (&Method::PATCH, Some(name)) => {
            let patch_type = PatchType::from_content_type(ctx.header(header::CONTENT_TYPE))?;
            let opts = ctx.write_options()?;
            let body = ctx.body.clone();
            if sub.as_deref() == Some("scale") {
                let current = objects::get(&core, &ri, &ns, &name)?;
                let scale = table::scale_of(&ri, &current);
                let parsed = crate::patch::parse(&ri, patch_type, &body)?;
                let patched = crate::patch::apply(&ri, patch_type, &scale, &parsed)?;
                let new = table::apply_scale(&ri, current, &patched)?;
                let w = blocking(move || objects::update(&core, &ri, &ns, &name, None, new, &opts)).await?;
                return Ok(ctx.respond(w.code, &table::scale_of(&t.ri, &w.object)));
            }
            let w = blocking(move || {
                objects::patch(&core, &ri, &ns, &name, sub.as_deref(), patch_type, &body, &opts)
            })
            .await?;
            Ok(with_warnings(ctx.respond(w.code, &w.object), &w.warnings))
        }
        (&Method::DELETE, Some(name)) => {
            if sub.is_some() {
                return Err(ApiError::method_not_allowed());
            }
            let opts = ctx.delete_options()?;
            let d = blocking(move || objects::delete(&core, &ri, &ns, &name, &opts)).await?;
            Ok(ctx.respond(d.code, &d.body))
        }
        (&Method::DELETE, None) => {
            let opts = ctx.delete_options()?;
            let list_opts = ctx.list_options();
            let namespace = t.namespace.clone();
            let list = blocking(move || {
                objects::delete_collection(&core, &ri, namespace.as_deref(), &list_opts, &opts)
            })
            .await?;
            Ok(ctx.respond(200, &list))
        }
        (&Method::POST, Some(_)) | (&Method::PUT, None) | (&Method::PATCH, None) => {
            Err(ApiError::method_not_allowed())
        }
        _ => Err(ApiError::method_not_allowed()),
    }
}

/// A list at a resourceVersion newer than the store waits up to 3 s for it (then 504 Timeout).
async fn wait_for_revision(core: &Core, rv: &str) {
    let Ok(wanted) = rv.parse::<u64>() else { return };
    let mut rx = core.store.subscribe();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(3), rx.wait_for(|r| *r >= wanted)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_equal_whatever_their_length() {
        let token = b"0123456789abcdef0123456789abcdef";
        assert!(constant_time_eq(token, token));
        assert!(!constant_time_eq(b"0123456789abcdef0123456789abcdeX", token));
        assert!(!constant_time_eq(b"0123456789abcdef", token));
        assert!(!constant_time_eq(b"", token));
        assert!(!constant_time_eq(&[token.as_slice(), b"x"].concat(), token));
    }

    #[tokio::test]
    async fn the_servers_debug_print_leaves_the_token_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::new(dir.path());
        config.insecure_http = true;
        config.token = Some("a-token-that-must-not-be-printed".into());
        let server = crate::ApiServer::start(config).await.unwrap();
        let printed = format!("{server:?} {:?}", server.core());
        assert!(!printed.contains("a-token-that-must-not-be-printed"), "{printed}");
        server.shutdown().await;
    }
}
