//! TLS with rustls: the acceptor for clients, and the connector for the
//! upstream server in PostgreSQL's sslmode terms.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig,
    SignatureScheme,
};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::config::{
    ClientTlsConfig, ClientTlsMode, UpstreamConfig, UpstreamTlsMode, UpstreamUrlError,
};

/// A TLS setting that does not load. `Display` names the configuration key
/// and the file (`key: FILE: why`); `source()` is the PEM, rustls or URL
/// error behind it.
#[derive(Debug)]
pub enum TlsError {
    /// `tls.mode` is not `disable` but the certificate or key is not set.
    MissingCertOrKey,
    /// `upstream.tls` verifies the server but `upstream.ca_file` is not set.
    MissingCa,
    /// A certificate file (`key` names the setting) does not read as PEM.
    Certificates {
        key: &'static str,
        path: PathBuf,
        source: pem::Error,
    },
    /// A certificate file holds no certificate.
    NoCertificates { key: &'static str, path: PathBuf },
    /// A certificate cannot be a trust anchor, or the verifier from a CA
    /// file cannot be built.
    Roots {
        key: &'static str,
        path: PathBuf,
        source: rustls::Error,
    },
    Verifier {
        key: &'static str,
        path: PathBuf,
        source: rustls::server::VerifierBuilderError,
    },
    /// `tls.key_file` does not read as a PEM private key.
    Key { path: PathBuf, source: pem::Error },
    /// The key does not go with the certificate.
    KeyMismatch {
        key_file: PathBuf,
        cert_file: PathBuf,
        source: rustls::Error,
    },
    /// rustls refuses the protocol versions.
    Versions(rustls::Error),
    /// The host to verify comes from `upstream.url`, which does not parse.
    UpstreamUrl(UpstreamUrlError),
    /// `upstream.server_name` (or the URL's host) is no DNS name or address.
    ServerName {
        host: String,
        source: rustls::pki_types::InvalidDnsNameError,
    },
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::MissingCertOrKey => {
                f.write_str("tls.cert_file and tls.key_file are required")
            }
            TlsError::MissingCa => f.write_str("upstream.ca_file is required"),
            TlsError::Certificates { key, path, source } => {
                write!(f, "{key}: {}: {source}", path.display())
            }
            TlsError::NoCertificates { key, path } => {
                write!(f, "{key}: {}: no certificates found", path.display())
            }
            TlsError::Roots { key, path, source } => {
                write!(f, "{key}: {}: {source}", path.display())
            }
            TlsError::Verifier { key, path, source } => {
                write!(f, "{key}: {}: {source}", path.display())
            }
            TlsError::Key { path, source } => {
                write!(f, "tls.key_file: {}: {source}", path.display())
            }
            TlsError::KeyMismatch {
                key_file,
                cert_file,
                source,
            } => write!(
                f,
                "tls.key_file: {} with tls.cert_file {}: {source}",
                key_file.display(),
                cert_file.display()
            ),
            TlsError::Versions(e) => e.fmt(f),
            TlsError::UpstreamUrl(e) => e.fmt(f),
            TlsError::ServerName { host, source } => {
                write!(f, "upstream server name {host:?}: {source}")
            }
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::MissingCertOrKey | TlsError::MissingCa | TlsError::NoCertificates { .. } => {
                None
            }
            TlsError::Certificates { source, .. } | TlsError::Key { source, .. } => Some(source),
            TlsError::Roots { source, .. }
            | TlsError::KeyMismatch { source, .. }
            | TlsError::Versions(source) => Some(source),
            TlsError::Verifier { source, .. } => Some(source),
            TlsError::UpstreamUrl(e) => Some(e),
            TlsError::ServerName { source, .. } => Some(source),
        }
    }
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Errors name the configuration key and the file: `key: FILE: why`.
fn load_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|source| TlsError::Certificates {
            key,
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificates {
            key,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn load_roots(key: &'static str, path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(key, path)? {
        roots.add(cert).map_err(|source| TlsError::Roots {
            key,
            path: path.to_path_buf(),
            source,
        })?;
    }
    Ok(roots)
}

/// The verifier's builder failed for the CA file of `key`.
fn verifier_error<'a>(
    key: &'static str,
    path: &'a Path,
) -> impl FnOnce(rustls::server::VerifierBuilderError) -> TlsError + 'a {
    move |source| TlsError::Verifier {
        key,
        path: path.to_path_buf(),
        source,
    }
}

/// The client-facing acceptor, or `None` when TLS is disabled.
pub fn acceptor(cfg: &ClientTlsConfig) -> Result<Option<TlsAcceptor>, TlsError> {
    if cfg.mode == ClientTlsMode::Disable {
        return Ok(None);
    }
    let (Some(cert_file), Some(key_file)) = (&cfg.cert_file, &cfg.key_file) else {
        return Err(TlsError::MissingCertOrKey);
    };
    let certs = load_certs("tls.cert_file", cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|source| TlsError::Key {
        path: key_file.clone(),
        source,
    })?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(TlsError::Versions)?;
    let builder = match &cfg.client_ca_file {
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(
                Arc::new(load_roots("tls.client_ca_file", ca)?),
                provider(),
            )
            .build()
            .map_err(verifier_error("tls.client_ca_file", ca))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config =
        builder
            .with_single_cert(certs, key)
            .map_err(|source| TlsError::KeyMismatch {
                key_file: key_file.clone(),
                cert_file: cert_file.clone(),
                source,
            })?;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// The upstream connector and the name to present, or `None` for `disable`.
pub fn connector(
    cfg: &UpstreamConfig,
) -> Result<Option<(TlsConnector, ServerName<'static>)>, TlsError> {
    let verifier: Arc<dyn ServerCertVerifier> = match cfg.tls {
        UpstreamTlsMode::Disable => return Ok(None),
        UpstreamTlsMode::Prefer | UpstreamTlsMode::Require => Arc::new(AnyCertificate(provider())),
        UpstreamTlsMode::VerifyCa | UpstreamTlsMode::VerifyFull => {
            let ca = cfg.ca_file.as_ref().ok_or(TlsError::MissingCa)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(
                Arc::new(load_roots("upstream.ca_file", ca)?),
                provider(),
            )
            .build()
            .map_err(verifier_error("upstream.ca_file", ca))?;
            if cfg.tls == UpstreamTlsMode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        }
    };
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(TlsError::Versions)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let host = match &cfg.server_name {
        Some(n) => n.clone(),
        None => cfg.host_port().map_err(TlsError::UpstreamUrl)?.0,
    };
    let name = ServerName::try_from(host.clone())
        .map_err(|source| TlsError::ServerName { host, source })?;
    Ok(Some((TlsConnector::from(Arc::new(config)), name)))
}

/// `require`/`prefer`: encryption without authentication of the server, as
/// libpq does; signatures are still checked so the handshake is sound.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: the chain must lead to the CA; the host name is not checked.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}
