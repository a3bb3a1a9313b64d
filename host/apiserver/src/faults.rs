//! Fault injection for tests: answer a share of requests (or of writes alone) with 429 + Retry-After
//! or 500 (of every resource or chosen ones), add latency (to every request, a share of them, or discovery alone), record requests, refuse chosen verbs on chosen resources with 403 as an
//! RBAC-enforcing kube-apiserver would, and end every open watch — switchable at run time, off unless the server was started with it, so
//! engine tests can exercise backoff, Retry-After handling and relists against the real server.

use std::sync::Mutex;
use std::time::Duration;

use rand::Rng;

use crate::error::ApiError;

/// The faults to inject now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSettings {
    /// Share (0.0–1.0) of API requests answered 429 TooManyRequests with this Retry-After.
    pub too_many_requests: f64,
    pub retry_after_seconds: u64,
    /// Share (0.0–1.0) of API requests answered 500 InternalError.
    pub internal_errors: f64,
    /// Added to every API request.
    pub latency: Duration,
    /// Added to discovery requests only (`/api`, `/apis`, `/api/v1`, `/apis/GROUP[/VERSION]`), as
    /// a real cluster answers them in tens of milliseconds rather than one.
    pub discovery_latency: Duration,
    /// Requests answered 403 Forbidden, as kube-apiserver answers a user its RBAC does not allow.
    pub forbidden: Vec<Forbidden>,
    /// Share (0.0–1.0) of API requests delayed by `slow_latency` (on top of `latency`).
    pub slow_requests: f64,
    pub slow_latency: Duration,
    /// When set, `too_many_requests`, `internal_errors` and `slow_requests` apply to writes alone
    /// (create, update, patch, delete); reads and watches pass untouched.
    pub writes_only: bool,
    /// When not empty, `too_many_requests`, `internal_errors` and `slow_requests` apply only to
    /// requests on these resources (plural, as `configmaps`), as a server throttling or failing one
    /// resource (an APF flow schema matching it, a failing webhook) does.
    pub resources: Vec<String>,
    /// When set, every API request is recorded (see [`Faults::journal`]), so a test can check a
    /// client's pacing from the server's side.
    pub record: bool,
}

/// One API request as fault injection saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen {
    pub at: std::time::Instant,
    /// RBAC's verb (`patch`, `create`, `list`, ...).
    pub verb: &'static str,
    pub path: String,
    /// The fault injected (429 or 500), if any.
    pub injected: Option<u16>,
}

/// The journal keeps at most this many requests (a test's worth).
const JOURNAL_LIMIT: usize = 1_000_000;

/// A verb on a resource that is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forbidden {
    /// `get`, `list`, `watch`, `create`, `update`, `patch` or `delete`.
    pub verb: String,
    /// The resource (plural): `poddisruptionbudgets`.
    pub resource: String,
}

/// What a request path and method ask for, as RBAC sees it.
struct Attributes<'a> {
    group: &'a str,
    namespace: Option<&'a str>,
    resource: &'a str,
    name: Option<&'a str>,
    verb: &'static str,
}

/// `/api/v1[/namespaces/NS]/RESOURCE[/NAME[/SUB]]` or `/apis/G/V[/namespaces/NS]/RESOURCE[/NAME[/SUB]]`;
/// `None` for discovery and other non-resource paths.
fn attributes<'a>(method: &http::Method, path: &'a str, watch: bool) -> Option<Attributes<'a>> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _v, rest @ ..] => ("", rest),
        ["apis", g, _v, rest @ ..] => (*g, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(*ns), rest),
        _ => (None, rest),
    };
    let (resource, name) = match rest {
        [r] => (*r, None),
        [r, n, ..] => (*r, Some(*n)),
        _ => return None,
    };
    let verb = match *method {
        http::Method::GET if watch => "watch",
        http::Method::GET if name.is_none() => "list",
        http::Method::GET => "get",
        http::Method::POST => "create",
        http::Method::PUT => "update",
        http::Method::PATCH => "patch",
        http::Method::DELETE => "delete",
        _ => return None,
    };
    Some(Attributes {
        group,
        namespace,
        resource,
        name,
        verb,
    })
}

/// Whether a path is a discovery document.
fn is_discovery(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    matches!(
        parts.as_slice(),
        ["api"] | ["api", _] | ["apis"] | ["apis", _] | ["apis", _, _]
    )
}

/// The switchboard: settings plus a signal that ends open watches.
#[derive(Debug)]
pub struct Faults {
    enabled: bool,
    settings: Mutex<FaultSettings>,
    close_watches: tokio::sync::watch::Sender<u64>,
    journal: Mutex<Vec<Seen>>,
}

impl Faults {
    pub fn new(enabled: bool) -> Faults {
        Faults {
            enabled,
            settings: Mutex::default(),
            close_watches: tokio::sync::watch::channel(0).0,
            journal: Mutex::default(),
        }
    }

    /// The requests recorded while `record` was set, oldest first.
    pub fn journal(&self) -> Vec<Seen> {
        self.journal.lock().expect("faults lock").clone()
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Replaces the settings; ignored (returns false) when fault injection is not enabled.
    pub fn set(&self, settings: FaultSettings) -> bool {
        if self.enabled {
            *self.settings.lock().expect("faults lock") = settings;
        }
        self.enabled
    }

    pub fn settings(&self) -> FaultSettings {
        self.settings.lock().expect("faults lock").clone()
    }

    /// Ends every open watch (clients see the stream close and re-watch).
    pub fn close_watches(&self) {
        self.close_watches.send_modify(|n| *n += 1);
    }

    pub fn watch_closer(&self) -> tokio::sync::watch::Receiver<u64> {
        self.close_watches.subscribe()
    }

    /// Applies latency and maybe fails the request (`watch`: the request has `watch=true`).
    pub async fn before_request(
        &self,
        method: &http::Method,
        path: &str,
        watch: bool,
    ) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let s = self.settings();
        let attrs = attributes(method, path, watch);
        let write = attrs
            .as_ref()
            .is_some_and(|a| matches!(a.verb, "create" | "update" | "patch" | "delete"));
        let on_resource = s.resources.is_empty()
            || attrs
                .as_ref()
                .is_some_and(|a| s.resources.iter().any(|r| r == a.resource));
        let shares_apply = (write || !s.writes_only) && on_resource;
        let mut latency = if is_discovery(path) {
            s.latency + s.discovery_latency
        } else {
            s.latency
        };
        if shares_apply && s.slow_requests > 0.0 && rand::rng().random::<f64>() < s.slow_requests {
            latency += s.slow_latency;
        }
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if let Some(a) = &attrs
            && s.forbidden
                .iter()
                .any(|f| f.verb == a.verb && f.resource == a.resource)
        {
            return Err(forbidden(a));
        }
        let roll: f64 = rand::rng().random();
        let injected = if !shares_apply {
            None
        } else if roll < s.too_many_requests {
            Some(ApiError::too_many_requests(s.retry_after_seconds.max(1)))
        } else if roll < s.too_many_requests + s.internal_errors {
            Some(ApiError::internal("injected fault"))
        } else {
            None
        };
        if s.record
            && let Some(a) = &attrs
        {
            let mut journal = self.journal.lock().expect("faults lock");
            if journal.len() < JOURNAL_LIMIT {
                journal.push(Seen {
                    at: std::time::Instant::now(),
                    verb: a.verb,
                    path: path.to_string(),
                    injected: injected.as_ref().map(|e| e.code),
                });
            }
        }
        injected.map_or(Ok(()), Err)
    }
}

/// The 403 kube-apiserver's RBAC authorizer answers (`05-errors/403-forbidden-impersonated-user`).
fn forbidden(a: &Attributes<'_>) -> ApiError {
    let subject = match a.name {
        Some(n) => format!("{} \"{n}\"", qualified(a)),
        None => qualified(a),
    };
    let scope = match a.namespace {
        Some(ns) => format!(" in the namespace \"{ns}\""),
        None => " at the cluster scope".to_string(),
    };
    let message = format!(
        "{subject} is forbidden: User \"admin\" cannot {} resource \"{}\" in API group \"{}\"{scope}",
        a.verb, a.resource, a.group
    );
    let mut details = serde_json::Map::new();
    if let Some(n) = a.name {
        details.insert("name".into(), n.into());
    }
    if !a.group.is_empty() {
        details.insert("group".into(), a.group.into());
    }
    details.insert("kind".into(), a.resource.into());
    ApiError::new(403, "Forbidden", message).with_details(serde_json::Value::Object(details))
}

fn qualified(a: &Attributes<'_>) -> String {
    if a.group.is_empty() {
        a.resource.to_string()
    } else {
        format!("{}.{}", a.resource, a.group)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn disabled_faults_never_fire_and_enabled_ones_do() {
        let off = Faults::new(false);
        assert!(!off.set(FaultSettings {
            internal_errors: 1.0,
            ..Default::default()
        }));
        let get = http::Method::GET;
        assert!(off.before_request(&get, "/api/v1/pods", false).await.is_ok());
        let on = Faults::new(true);
        on.set(FaultSettings {
            too_many_requests: 1.0,
            retry_after_seconds: 3,
            ..Default::default()
        });
        let e = on.before_request(&get, "/api/v1/pods", false).await.unwrap_err();
        assert_eq!((e.code, e.retry_after), (429, Some(3)));
    }

    #[tokio::test(start_paused = true)]
    async fn writes_only_spares_reads_and_the_journal_records_what_was_injected() {
        let on = Faults::new(true);
        on.set(FaultSettings {
            too_many_requests: 1.0,
            retry_after_seconds: 2,
            slow_requests: 1.0,
            slow_latency: Duration::from_millis(200),
            writes_only: true,
            record: true,
            ..Default::default()
        });
        let path = "/api/v1/namespaces/a/configmaps/b";
        let start = tokio::time::Instant::now();
        assert!(on.before_request(&http::Method::GET, path, false).await.is_ok());
        assert!(
            on.before_request(&http::Method::GET, "/api/v1/configmaps", true)
                .await
                .is_ok()
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "reads are not slowed");
        let e = on
            .before_request(&http::Method::PATCH, path, false)
            .await
            .unwrap_err();
        assert_eq!((e.code, e.retry_after), (429, Some(2)));
        assert_eq!(start.elapsed(), Duration::from_millis(200), "writes are");
        let seen: Vec<_> = on.journal().into_iter().map(|s| (s.verb, s.injected)).collect();
        assert_eq!(seen, [("get", None), ("watch", None), ("patch", Some(429))]);
        // A share of 0 slows nothing; without writes_only reads fail too.
        on.set(FaultSettings {
            internal_errors: 1.0,
            slow_latency: Duration::from_secs(1),
            ..Default::default()
        });
        let e = on
            .before_request(&http::Method::GET, path, false)
            .await
            .unwrap_err();
        assert_eq!(e.code, 500);
        assert_eq!(start.elapsed(), Duration::from_millis(200));
        assert_eq!(on.journal().len(), 3, "recording is off again");
    }

    #[tokio::test(start_paused = true)]
    async fn faults_on_chosen_resources_spare_the_others() {
        let on = Faults::new(true);
        on.set(FaultSettings {
            internal_errors: 1.0,
            slow_requests: 1.0,
            slow_latency: Duration::from_millis(200),
            resources: vec!["configmaps".into()],
            ..Default::default()
        });
        let start = tokio::time::Instant::now();
        let pdb = "/apis/policy/v1/namespaces/a/poddisruptionbudgets/b";
        assert!(on.before_request(&http::Method::PATCH, pdb, false).await.is_ok());
        assert!(
            on.before_request(&http::Method::GET, "/api/v1", false)
                .await
                .is_ok()
        );
        assert_eq!(start.elapsed(), Duration::ZERO, "other requests are not slowed");
        let e = on
            .before_request(&http::Method::GET, "/api/v1/namespaces/a/configmaps", false)
            .await
            .unwrap_err();
        assert_eq!(e.code, 500);
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn forbidden_verbs_answer_like_rbac() {
        let on = Faults::new(true);
        on.set(FaultSettings {
            forbidden: vec![Forbidden {
                verb: "patch".into(),
                resource: "poddisruptionbudgets".into(),
            }],
            ..Default::default()
        });
        let path = "/apis/policy/v1/namespaces/demo/poddisruptionbudgets/web";
        let e = on
            .before_request(&http::Method::PATCH, path, false)
            .await
            .unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "poddisruptionbudgets.policy \"web\" is forbidden: User \"admin\" cannot patch resource \"poddisruptionbudgets\" in API group \"policy\" in the namespace \"demo\""
        );
        assert!(on.before_request(&http::Method::GET, path, false).await.is_ok());
        assert!(is_discovery("/apis/policy/v1") && is_discovery("/api") && !is_discovery(path));
    }
}
