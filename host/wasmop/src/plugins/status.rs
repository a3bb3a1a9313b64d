//! A small local status endpoint of a running host (`--status-addr`, 127.0.0.1 by default): `GET
//! /plugins` lists the loaded plugins, `GET /metrics` serves Prometheus metrics, `GET /readyz`
//! answers 200 once the plugin directory was read and every running plugin's watches synced (a
//! standby replica included) and 503 before, `GET /livez` (and its alias `/healthz`) fails when the
//! async runtime is stuck: a watchdog task ticks every second, and liveness is its last tick being
//! recent. `wasmop plugins` reads it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use tokio::time::Instant;

use super::manager::{PluginManager, PluginStatus};

/// How often the watchdog ticks.
const TICK: Duration = Duration::from_secs(1);

/// The runtime's heartbeat: a task records a tick every second; a stuck runtime stops ticking.
#[derive(Debug)]
pub struct Watchdog {
    last: Mutex<Instant>,
    timeout: Duration,
}

impl Watchdog {
    pub fn new(timeout: Duration) -> Watchdog {
        Watchdog {
            last: Mutex::new(Instant::now()),
            timeout,
        }
    }

    pub fn tick(&self) {
        *self.last.lock().expect("watchdog lock") = Instant::now();
    }

    /// `Err` with the age of the last tick when it is older than the timeout.
    pub fn alive(&self) -> Result<(), Duration> {
        let age = self.last.lock().expect("watchdog lock").elapsed();
        if age < self.timeout { Ok(()) } else { Err(age) }
    }

    /// Ticks every second until `shutdown` fires.
    fn spawn(self: &Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let this = self.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(TICK);
            loop {
                tokio::select! {
                    _ = interval.tick() => this.tick(),
                    _ = shutdown.changed() => return,
                }
            }
        });
    }
}

#[derive(Clone)]
struct Served {
    manager: Arc<PluginManager>,
    watchdog: Arc<Watchdog>,
}

async fn plugins(State(s): State<Served>) -> Json<Vec<PluginStatus>> {
    Json(s.manager.status().await)
}

async fn readyz(State(s): State<Served>) -> (StatusCode, String) {
    match s.manager.ready().await {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {why}\n")),
    }
}

async fn livez(State(s): State<Served>) -> (StatusCode, String) {
    match s.watchdog.alive() {
        Ok(()) => (StatusCode::OK, "ok\n".into()),
        Err(age) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the async runtime's watchdog last ticked {age:?} ago\n"),
        ),
    }
}

async fn metrics(State(s): State<Served>) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let text = crate::telemetry::render(&s.manager).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// Serves the endpoint until `shutdown` fires; returns the bound address. `/livez` fails once the
/// watchdog has not ticked for `liveness_timeout`.
pub async fn serve(
    addr: SocketAddr,
    manager: Arc<PluginManager>,
    liveness_timeout: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<SocketAddr> {
    let watchdog = Arc::new(Watchdog::new(liveness_timeout));
    watchdog.spawn(shutdown.clone());
    let app = axum::Router::new()
        .route("/plugins", get(plugins))
        .route("/metrics", get(metrics))
        .route("/readyz", get(readyz))
        .route("/livez", get(livez))
        .route("/healthz", get(livez))
        .with_state(Served { manager, watchdog });
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.changed().await;
            })
            .await;
    });
    Ok(bound)
}

/// Why the plugin list of a running host could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error("connecting to the host's status endpoint at {addr}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("reading the host's status endpoint at {addr}")]
    Read {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("malformed status response from {addr}")]
    Malformed { addr: SocketAddr },
    #[error("malformed plugin list from {addr}")]
    List {
        addr: SocketAddr,
        #[source]
        source: serde_json::Error,
    },
}

/// The plugin list of the host whose status endpoint is at `addr`.
pub async fn fetch(addr: SocketAddr) -> Result<Vec<PluginStatus>, StatusError> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|source| StatusError::Connect { addr, source })?;
    let mut raw = String::new();
    let exchange = async {
        stream
            .write_all(format!("GET /plugins HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await?;
        stream.read_to_string(&mut raw).await
    };
    exchange
        .await
        .map_err(|source| StatusError::Read { addr, source })?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or(StatusError::Malformed { addr })?;
    serde_json::from_str(body).map_err(|source| StatusError::List { addr, source })
}

/// The plugin list as a table for people: one row per file; the last column says why a plugin is
/// still starting, which of its writes the API server forbade (the permission its RBAC lacks), and
/// what the last load of its file failed with.
pub fn table(list: &[PluginStatus]) -> String {
    let mut out = format!(
        "{:<28} {:<24} {:<10} {:<13} {:<9} DETAIL\n",
        "FILE", "NAME", "VERSION", "HASH", "STATE"
    );
    for p in list {
        let file = std::path::Path::new(&p.file)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.file.clone());
        let detail: Vec<String> = p
            .reason
            .iter()
            .cloned()
            .chain(p.forbidden.iter().map(|e| format!("forbidden: {e}")))
            .chain(p.last_error.iter().map(|e| format!("last error: {e}")))
            .chain(p.last_failure.iter().map(|e| format!("last failed call: {e}")))
            .collect();
        out.push_str(&format!(
            "{:<28} {:<24} {:<10} {:<13} {:<9} {}\n",
            file,
            p.name.as_deref().unwrap_or("-"),
            p.version.as_deref().unwrap_or("-"),
            p.hash.as_deref().unwrap_or("-"),
            p.state.as_str(),
            detail.join("; ")
        ));
    }
    out
}

/// `wasmop plugins`: fetches and prints the plugin table of a running host.
pub async fn print(addr: SocketAddr) -> Result<(), StatusError> {
    print!("{}", table(&fetch(addr).await?));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugins::manager::State;

    #[tokio::test(start_paused = true)]
    async fn liveness_is_a_recent_tick() {
        let w = Watchdog::new(Duration::from_secs(10));
        assert!(w.alive().is_ok());
        tokio::time::advance(Duration::from_secs(9)).await;
        assert!(w.alive().is_ok());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(w.alive(), Err(Duration::from_secs(11)), "no tick for 11 s: stuck");
        w.tick();
        assert!(w.alive().is_ok());
        // The ticking task keeps it alive as long as the runtime runs.
        let w = Arc::new(w);
        let (_stop, rx) = tokio::sync::watch::channel(false);
        w.spawn(rx);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(w.alive().is_ok());
    }

    #[test]
    fn the_table_shows_state_reason_and_error() {
        let starting = PluginStatus {
            file: "/plugins/db.wasm".into(),
            name: Some("database-operator".into()),
            version: Some("1.0.0".into()),
            hash: Some("0123456789ab".into()),
            state: State::Starting,
            reason: Some("kind example.com/v1 Database is not served yet".into()),
            last_error: None,
            forbidden: None,
            last_failure: None,
            from_cache: false,
        };
        let failed = PluginStatus {
            file: "/plugins/bad.wasm".into(),
            name: None,
            version: None,
            hash: None,
            state: State::Failed,
            reason: None,
            last_error: Some("bad.wasm: not a WebAssembly file".into()),
            forbidden: None,
            last_failure: None,
            from_cache: false,
        };
        let refused = PluginStatus {
            file: "/plugins/pdb-guard.wasm".into(),
            name: Some("pdb-guard".into()),
            version: Some("0.1.0".into()),
            hash: Some("ba9876543210".into()),
            state: State::Running,
            reason: None,
            last_error: None,
            forbidden: Some("apply of PodDisruptionBudget demo/web (reconciling demo/web): poddisruptionbudgets.policy \"web\" is forbidden: User \"system:serviceaccount:wasmop-system:wasmop\" cannot patch resource \"poddisruptionbudgets\" in API group \"policy\" in the namespace \"demo\"".into()),
            last_failure: None,
            from_cache: false,
        };
        let text = table(&[starting, failed, refused.clone()]);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("FILE"), "{text}");
        assert!(
            lines[1].starts_with("db.wasm")
                && lines[1].contains(" starting ")
                && lines[1].ends_with("kind example.com/v1 Database is not served yet"),
            "{text}"
        );
        assert!(
            lines[2].starts_with("bad.wasm")
                && lines[2].contains(" failed ")
                && lines[2].ends_with("last error: bad.wasm: not a WebAssembly file"),
            "{text}"
        );
        assert!(
            lines[3].starts_with("pdb-guard.wasm")
                && lines[3].contains(" running ")
                && lines[3].contains("forbidden: apply of PodDisruptionBudget demo/web")
                && lines[3].ends_with("in the namespace \"demo\""),
            "{text}"
        );
        // The status JSON carries it, and a list without it (an older host) still reads.
        let json = serde_json::to_value(&refused).unwrap();
        assert!(
            json["forbidden"].as_str().unwrap().contains("cannot patch"),
            "{json}"
        );
        let mut older = json.clone();
        older.as_object_mut().unwrap().remove("forbidden");
        let read: PluginStatus = serde_json::from_value(older).unwrap();
        assert_eq!(read.forbidden, None);
        assert_eq!(read.last_failure, None);

        // A running plugin whose last call the host contained says so.
        let contained = PluginStatus {
            forbidden: None,
            last_failure: Some("plugin exceeded its deadline of 2s".into()),
            ..refused
        };
        let text = table(&[contained]);
        let line = text.lines().nth(1).unwrap();
        assert!(
            line.contains(" running ")
                && line.ends_with("last failed call: plugin exceeded its deadline of 2s"),
            "{text}"
        );
    }
}
