//! TLS for the API server: a self-signed certificate for `localhost`/`127.0.0.1` (kept in the data
//! directory so the kubeconfig stays valid across restarts) and an axum listener that does the TLS
//! handshake off the accept loop, advertising HTTP/2 and HTTP/1.1 over ALPN like a real API server.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A certificate and its key, PEM-encoded.
#[derive(Clone)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertPair { .. }")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("generating the self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("reading or writing {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("loading the certificate: {0}")]
    Load(String),
}

/// Loads the certificate from `dir`, or generates and stores a new one.
pub fn load_or_generate(dir: &Path) -> Result<CertPair, TlsError> {
    let cert_path = dir.join("tls.crt");
    let key_path = dir.join("tls.key");
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| TlsError::Io { path, source }
    };
    if cert_path.exists() && key_path.exists() {
        return Ok(CertPair {
            cert_pem: std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?,
            key_pem: std::fs::read_to_string(&key_path).map_err(io(&key_path))?,
        });
    }
    let names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    let certified = rcgen::generate_simple_self_signed(names)?;
    let pair = CertPair {
        cert_pem: certified.cert.pem(),
        key_pem: certified.signing_key.serialize_pem(),
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::write(&cert_path, &pair.cert_pem).map_err(io(&cert_path))?;
    crate::write_private(&key_path, pair.key_pem.as_bytes()).map_err(io(&key_path))?;
    Ok(pair)
}

fn acceptor(pair: &CertPair) -> Result<TlsAcceptor, TlsError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(pair.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::Load(e.to_string()))?;
    let key =
        PrivateKeyDer::from_pem_slice(pair.key_pem.as_bytes()).map_err(|e| TlsError::Load(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Load(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| TlsError::Load(e.to_string()))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// An axum listener that yields TLS streams; handshakes run in their own tasks so a slow or broken
/// client never holds up the others.
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, pair: &CertPair) -> Result<TlsListener, TlsError> {
        let acceptor = acceptor(pair)?;
        let local = tcp.local_addr().map_err(|source| TlsError::Io {
            path: "listener".into(),
            source,
        })?;
        let (tx, rx) = mpsc::channel(64);
        tokio::spawn(async move {
            loop {
                let (stream, addr) = match tcp.accept().await {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // No Nagle delay for watch events (see the plain-HTTP listener in lib.rs).
                let _ = stream.set_nodelay(true);
                let acceptor = acceptor.clone();
                let conn_tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => {
                            let _ = conn_tx.send((tls, addr)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%addr, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
                    }
                });
                if tx.is_closed() {
                    break;
                }
            }
        });
        Ok(TlsListener { rx, local })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The acceptor task only ends when the listener is dropped; wait for shutdown.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
