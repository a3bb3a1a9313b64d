//! A small local status endpoint of a running host (`--status-addr`, 127.0.0.1 by default): `GET
//! /plugins` lists the loaded plugins, `GET /metrics` serves Prometheus metrics, `GET /healthz`
//! answers ok. `wasmop plugins` reads it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::routing::get;

use super::manager::{PluginManager, PluginStatus};

async fn plugins(State(m): State<Arc<PluginManager>>) -> Json<Vec<PluginStatus>> {
    Json(m.status().await)
}

async fn metrics(
    State(m): State<Arc<PluginManager>>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    let text = crate::telemetry::render(m.engine(), &m.status().await).await;
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}

/// Serves the endpoint until `shutdown` fires; returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    manager: Arc<PluginManager>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<SocketAddr> {
    let app = axum::Router::new()
        .route("/plugins", get(plugins))
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(manager);
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

/// `wasmop plugins`: fetches and prints the plugin table of a running host.
pub async fn print(addr: SocketAddr) -> anyhow::Result<()> {
    use anyhow::Context;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to the host's status endpoint at {addr}"))?;
    stream
        .write_all(format!("GET /plugins HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await?;
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .context("malformed status response")?;
    let list: Vec<PluginStatus> = serde_json::from_str(body).context("malformed plugin list")?;
    println!(
        "{:<28} {:<24} {:<10} {:<13} {:<9} DETAIL",
        "FILE", "NAME", "VERSION", "HASH", "STATE"
    );
    for p in list {
        let file = std::path::Path::new(&p.file)
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| p.file.clone());
        // Why a plugin is still starting, and what the last load of its file failed with.
        let detail: Vec<String> = p
            .reason
            .iter()
            .cloned()
            .chain(p.last_error.iter().map(|e| format!("last error: {e}")))
            .collect();
        println!(
            "{:<28} {:<24} {:<10} {:<13} {:<9} {}",
            file,
            p.name.as_deref().unwrap_or("-"),
            p.version.as_deref().unwrap_or("-"),
            p.hash.as_deref().unwrap_or("-"),
            p.state.as_str(),
            detail.join("; ")
        );
    }
    Ok(())
}
