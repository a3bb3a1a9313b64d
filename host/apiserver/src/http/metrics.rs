//! Prometheus metrics of the embedded API server, `GET /metrics` (admin bearer token required, as a
//! real API server requires authorization): requests by verb, group, resource, subresource and code
//! (`apiserver_request_total`), request latency up to the response head
//! (`apiserver_request_duration_seconds`, a histogram by verb and resource), open watches
//! (`apiserver_longrunning_requests{verb="watch"}`) and the store (`apiserver_storage_objects` by
//! resource, `apiserver_storage_revision`, `apiserver_storage_writes_total`). Names follow
//! kube-apiserver's where they exist.
//!
//! A layer around the whole router ([`layer`]), so the routing code stays unaware of it; the text
//! format is rendered by hand (no dependency).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use futures::StreamExt as _;
use http::{HeaderValue, Method, StatusCode, header};

use super::constant_time_eq;
use crate::Core;

/// Upper bounds of the latency histogram's buckets, in seconds.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// What a request was about: verb, group, resource, subresource.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RequestLabels {
    verb: String,
    group: String,
    resource: String,
    subresource: String,
}

#[derive(Debug, Default)]
struct Histogram {
    /// Cumulative counts per bucket of [`BUCKETS`], then the count of all.
    counts: Vec<u64>,
    sum: f64,
}

#[derive(Debug, Default)]
struct Inner {
    requests: BTreeMap<(RequestLabels, u16), u64>,
    latency: BTreeMap<(String, String, String), Histogram>,
    watches: BTreeMap<(String, String), i64>,
}

/// The counters of one server.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

struct LayerState {
    core: Arc<Core>,
    metrics: Arc<Metrics>,
}

/// Wraps the API server's router: counts every request and serves `GET /metrics`.
pub fn layer(router: axum::Router, core: Arc<Core>) -> axum::Router {
    let state = Arc::new(LayerState {
        core,
        metrics: Arc::new(Metrics::default()),
    });
    router.layer(axum::middleware::from_fn_with_state(state, track))
}

async fn track(State(state): State<Arc<LayerState>>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/metrics" {
        return serve(&state, &req);
    }
    let labels = classify(req.method(), req.uri().path(), req.uri().query());
    let started = Instant::now();
    let resp = next.run(req).await;
    let code = resp.status().as_u16();
    state
        .metrics
        .observe(&labels, code, started.elapsed().as_secs_f64());
    if labels.verb == "watch" && resp.status().is_success() {
        let guard = WatchGuard::open(state.metrics.clone(), &labels);
        let (parts, body) = resp.into_parts();
        // The guard lives as long as the body stream: the watch is open until the stream ends or
        // the client goes away.
        let stream = body.into_data_stream().map(move |chunk| {
            let _open = &guard;
            chunk
        });
        return Response::from_parts(parts, Body::from_stream(stream));
    }
    resp
}

fn serve(state: &LayerState, req: &Request) -> Response {
    let authorized = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| constant_time_eq(t.trim().as_bytes(), state.core.token.as_bytes()));
    let (code, body) = if !authorized {
        (
            StatusCode::FORBIDDEN,
            "forbidden: /metrics needs the admin token\n".to_string(),
        )
    } else if req.method() != Method::GET {
        (StatusCode::METHOD_NOT_ALLOWED, "only GET\n".to_string())
    } else {
        (StatusCode::OK, state.metrics.render(&state.core))
    };
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = code;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}

/// Verb (Kubernetes' request verbs), group, resource and subresource of a request path.
fn classify(method: &Method, path: &str, query: Option<&str>) -> RequestLabels {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, rest) = match segs.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => {
            return RequestLabels {
                verb: method.as_str().to_lowercase(),
                group: String::new(),
                resource: String::new(),
                subresource: String::new(),
            };
        }
    };
    // `namespaces/NS/RESOURCE/...`, except a namespace's own subresources (`namespaces/NS/status`).
    let rest = match rest {
        ["namespaces", _ns, resource, more @ ..]
            if !matches!(*resource, "status" | "finalize") || !more.is_empty() =>
        {
            &rest[2..]
        }
        _ => rest,
    };
    let resource = rest.first().copied().unwrap_or("");
    let named = rest.len() >= 2;
    let subresource = rest.get(2).copied().unwrap_or("");
    let watch = query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "watch" && (v == "true" || v == "1"))
    });
    let verb = match *method {
        Method::GET | Method::HEAD if watch => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "other",
    };
    RequestLabels {
        verb: verb.to_string(),
        group: group.to_string(),
        resource: resource.to_string(),
        subresource: subresource.to_string(),
    }
}

/// Counts one open watch while it lives.
struct WatchGuard {
    metrics: Arc<Metrics>,
    key: (String, String),
}

impl WatchGuard {
    fn open(metrics: Arc<Metrics>, labels: &RequestLabels) -> WatchGuard {
        let key = (labels.group.clone(), labels.resource.clone());
        *metrics.lock().watches.entry(key.clone()).or_default() += 1;
        WatchGuard { metrics, key }
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        *self.metrics.lock().watches.entry(self.key.clone()).or_default() -= 1;
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn observe(&self, labels: &RequestLabels, code: u16, seconds: f64) {
        let mut inner = self.lock();
        *inner.requests.entry((labels.clone(), code)).or_default() += 1;
        let h = inner
            .latency
            .entry((labels.verb.clone(), labels.group.clone(), labels.resource.clone()))
            .or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len() + 1];
        }
        for (i, bound) in BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                h.counts[i] += 1;
            }
        }
        h.counts[BUCKETS.len()] += 1;
        h.sum += seconds;
    }

    /// The metrics in Prometheus' text format.
    fn render(&self, core: &Core) -> String {
        let mut out = String::new();
        {
            let inner = self.lock();
            header(
                &mut out,
                "apiserver_request_total",
                "counter",
                "Requests by verb, group, resource, subresource and HTTP code.",
            );
            for ((l, code), n) in &inner.requests {
                let _ = writeln!(
                    out,
                    "apiserver_request_total{{verb=\"{}\",group=\"{}\",resource=\"{}\",subresource=\"{}\",code=\"{code}\"}} {n}",
                    esc(&l.verb),
                    esc(&l.group),
                    esc(&l.resource),
                    esc(&l.subresource)
                );
            }
            header(
                &mut out,
                "apiserver_request_duration_seconds",
                "histogram",
                "Time to the response head by verb, group and resource (for a watch, until it starts).",
            );
            for ((verb, group, resource), h) in &inner.latency {
                let labels = format!(
                    "verb=\"{}\",group=\"{}\",resource=\"{}\"",
                    esc(verb),
                    esc(group),
                    esc(resource)
                );
                for (bound, n) in BUCKETS.iter().zip(&h.counts) {
                    let _ = writeln!(
                        out,
                        "apiserver_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                    );
                }
                let all = h.counts[BUCKETS.len()];
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {all}"
                );
                let _ = writeln!(
                    out,
                    "apiserver_request_duration_seconds_sum{{{labels}}} {}",
                    h.sum
                );
                let _ = writeln!(out, "apiserver_request_duration_seconds_count{{{labels}}} {all}");
            }
            header(
                &mut out,
                "apiserver_longrunning_requests",
                "gauge",
                "Open watches by group and resource.",
            );
            for ((group, resource), n) in &inner.watches {
                let _ = writeln!(
                    out,
                    "apiserver_longrunning_requests{{verb=\"watch\",group=\"{}\",resource=\"{}\"}} {n}",
                    esc(group),
                    esc(resource)
                );
            }
        }
        let mut objects: BTreeMap<String, u64> = BTreeMap::new();
        for (key, _) in core.store.all() {
            *objects.entry(key.resource).or_default() += 1;
        }
        header(
            &mut out,
            "apiserver_storage_objects",
            "gauge",
            "Stored objects by resource.",
        );
        for (resource, n) in &objects {
            let _ = writeln!(
                out,
                "apiserver_storage_objects{{resource=\"{}\"}} {n}",
                esc(resource)
            );
        }
        header(
            &mut out,
            "apiserver_storage_revision",
            "gauge",
            "The store's current revision (the latest resourceVersion).",
        );
        let _ = writeln!(out, "apiserver_storage_revision {}", core.store.revision());
        header(
            &mut out,
            "apiserver_storage_writes_total",
            "counter",
            "Writes committed to the store since the server started.",
        );
        let _ = writeln!(out, "apiserver_storage_writes_total {}", core.store.write_count());
        out
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// Escapes a label value.
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(method: Method, path: &str, query: Option<&str>) -> (String, String, String, String) {
        let l = classify(&method, path, query);
        (l.verb, l.group, l.resource, l.subresource)
    }

    fn t(v: &str, g: &str, r: &str, s: &str) -> (String, String, String, String) {
        (v.into(), g.into(), r.into(), s.into())
    }

    #[test]
    fn paths_classify_like_kubernetes_request_info() {
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces", None),
            t("list", "", "namespaces", "")
        );
        assert_eq!(
            c(Method::GET, "/api/v1/namespaces/demo", None),
            t("get", "", "namespaces", "")
        );
        assert_eq!(
            c(Method::PUT, "/api/v1/namespaces/demo/finalize", None),
            t("update", "", "namespaces", "finalize")
        );
        assert_eq!(
            c(
                Method::GET,
                "/api/v1/namespaces/demo/pods",
                Some("watch=true&rv=1")
            ),
            t("watch", "", "pods", "")
        );
        assert_eq!(
            c(
                Method::PATCH,
                "/apis/apps/v1/namespaces/demo/deployments/web/status",
                None
            ),
            t("patch", "apps", "deployments", "status")
        );
        assert_eq!(
            c(Method::DELETE, "/apis/example.com/v1/widgets", None),
            t("deletecollection", "example.com", "widgets", "")
        );
        assert_eq!(c(Method::GET, "/version", None), t("get", "", "", ""));
    }

    #[test]
    fn the_histogram_is_cumulative() {
        let m = Metrics::default();
        let l = classify(&Method::GET, "/api/v1/pods", None);
        m.observe(&l, 200, 0.003);
        m.observe(&l, 200, 0.2);
        m.observe(&l, 500, 100.0);
        let inner = m.lock();
        let h = &inner.latency[&("list".to_string(), String::new(), "pods".to_string())];
        assert_eq!(h.counts[0], 1);
        assert_eq!(h.counts[5], 2, "le=0.25");
        assert_eq!(h.counts[BUCKETS.len() - 1], 2, "le=60");
        assert_eq!(h.counts[BUCKETS.len()], 3, "+Inf");
        assert_eq!(inner.requests.len(), 2);
    }
}
