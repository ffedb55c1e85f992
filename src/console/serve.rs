//! The console's listener: HTTP/1.1, plain or TLS, each request tagged
//! with the peer address (for access records), with a header timeout, a
//! connection lifetime and a connection limit.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;

use super::config::{ConsoleConfig, ConsoleTls};
use super::web::ClientAddr;
use super::{router, state, ConsoleError};

const MAX_CONNECTIONS: usize = 256;
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);

/// A bound console, ready to serve.
pub struct Console {
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
}

fn tls_acceptor(t: &ConsoleTls) -> Result<TlsAcceptor, ConsoleError> {
    let at = |p: &std::path::Path, e: &dyn std::fmt::Display| {
        ConsoleError::Tls(format!("{}: {e}", p.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert_file)
        .map_err(|e| at(&t.cert_file, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| at(&t.cert_file, &e))?;
    let key = PrivateKeyDer::from_pem_file(&t.key_file).map_err(|e| at(&t.key_file, &e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| ConsoleError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ConsoleError::Tls(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

impl Console {
    /// Connects to ClickHouse, loads the users, binds `config.listen`.
    pub async fn bind(
        config: &ConsoleConfig,
        clickhouse_password: Option<String>,
    ) -> Result<Console, ConsoleError> {
        let app = state(config, clickhouse_password).await?;
        let tls = config.tls.as_ref().map(tls_acceptor).transpose()?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(ConsoleError::Listen)?;
        Ok(Console {
            listener,
            router: router(app),
            tls,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// `http://` or `https://` and the bound address.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        match self.local_addr() {
            Ok(a) => format!("{scheme}://{a}"),
            Err(_) => format!("{scheme}://?"),
        }
    }

    /// Serves until `shutdown` resolves.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let mut conns = JoinSet::new();
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((socket, peer)) => match slots.clone().try_acquire_owned() {
                        Ok(slot) => {
                            let (router, tls) = (self.router.clone(), self.tls.clone());
                            conns.spawn(async move {
                                let _ = socket.set_nodelay(true);
                                match tls {
                                    None => connection(socket, peer, router).await,
                                    Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(socket)).await {
                                        Ok(Ok(stream)) => connection(stream, peer, router).await,
                                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "console TLS handshake failed"),
                                        Err(_) => tracing::debug!(%peer, "console TLS handshake timed out"),
                                    },
                                }
                                drop(slot);
                            });
                        }
                        Err(_) => tracing::debug!(%peer, "console connection refused: {MAX_CONNECTIONS} open"),
                    },
                    Err(e) => {
                        tracing::warn!(error = %e, "console accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = conns.join_next(), if !conns.is_empty() => {}
            }
        }
        conns.shutdown().await;
    }
}

async fn connection<S>(stream: S, peer: SocketAddr, router: Router)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client = ClientAddr(peer.ip().to_string());
    let service = hyper::service::service_fn(
        move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(client.clone());
            let mut router = router.clone();
            async move { Ok::<_, Infallible>(router.call(req).await.unwrap_or_else(|e| match e {})) }
        },
    );
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_LIFETIME, conn).await {
        Ok(Err(e)) => tracing::debug!(error = %e, "console connection ended with an error"),
        Ok(Ok(())) => {}
        Err(_) => {
            tracing::debug!("console connection closed: open longer than {CONNECTION_LIFETIME:?}")
        }
    }
}
