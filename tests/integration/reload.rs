//! Live reload (`pgtrail::reload::reload`, what SIGHUP runs): a new
//! certificate reaches new connections while an open TLS session goes on;
//! a broken file changes nothing and says why.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use crate::harness::postgres::PgCluster;
use crate::harness::proxy::{fresh_db, Proxy};

/// A self-signed certificate for `localhost` as PEM files; returns the paths
/// and the certificate's DER to compare with what the proxy presents.
fn write_cert(dir: &Path, name: &str) -> (PathBuf, PathBuf, Vec<u8>) {
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("self-signed");
    let (cert_path, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (cert_path, key_path, cert.der().to_vec())
}

/// The proxy's configuration file: TLS allowed, the given files and level.
fn config_text(pg: &PgCluster, dir: &Path, cert: &Path, key: &Path, extra: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\n{extra}\n\
         [upstream]\nurl = \"postgres://127.0.0.1:{}\"\n\
         [tls]\nmode = \"allow\"\ncert_file = {:?}\nkey_file = {:?}\n\
         [limits]\nshutdown_timeout_ms = 2000\n\
         [audit]\nfile = {:?}\n",
        pg.port(),
        cert.display().to_string(),
        key.display().to_string(),
        dir.join("audit.jsonl").display().to_string(),
    )
}

/// Accepts any server certificate: the test only looks at which one it is.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// SSLRequest, then a TLS handshake; returns the stream and the
/// certificate the proxy presented.
async fn tls_connect(proxy: &Proxy) -> (TlsStream<TcpStream>, Vec<u8>) {
    let mut tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .expect("SSLRequest");
    let mut answer = [0u8; 1];
    tcp.read_exact(&mut answer)
        .await
        .expect("SSLRequest answer");
    assert_eq!(answer[0], b'S', "TLS offered");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").expect("name");
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .expect("TLS handshake");
    let cert = tls.get_ref().1.peer_certificates().expect("certificate")[0].to_vec();
    (tls, cert)
}

/// A tokio-postgres session over an established TLS stream.
async fn login(proxy: &Proxy, pg: &PgCluster, db: &str) -> (tokio_postgres::Client, Vec<u8>) {
    let (tls, cert) = tls_connect(proxy).await;
    let mut config: tokio_postgres::Config = proxy.conn_string(pg, db).parse().expect("config");
    config.ssl_mode(tokio_postgres::config::SslMode::Disable);
    let (client, connection) = config
        .connect_raw(tls, tokio_postgres::NoTls)
        .await
        .expect("login over TLS");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    (client, cert)
}

#[tokio::test]
async fn reload_swaps_certificate_and_level_and_rejects_broken_files() {
    let (pg, db) = fresh_db("reload");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pgtrail.toml");
    let (cert1, key1, der1) = write_cert(dir.path(), "one");
    let (cert2, key2, der2) = write_cert(dir.path(), "two");
    std::fs::write(&file, config_text(pg, dir.path(), &cert1, &key1, "")).expect("write");
    let loaded = pgtrail::config_file::load(&file).expect("valid config");
    let proxy = Proxy::start_with(pg, |c| *c = loaded).await;

    let (old, cert) = login(&proxy, pg, &db).await;
    assert_eq!(cert, der1);

    // New certificate, new level, audit settings, and one key only a
    // restart applies. ([audit] is the last table: appended keys land there.)
    let extra = "max_connections = 50\n[log]\nlevel = \"debug\"";
    let text = config_text(pg, dir.path(), &cert2, &key2, extra)
        + "failure_policy = \"fail_open\"\nlog_parameters = true\n";
    std::fs::write(&file, text).expect("write");
    let summary = pgtrail::reload::reload(&proxy.ctx, &file).expect("reload");
    assert_eq!(
        summary.applied,
        [
            "audit.failure_policy",
            "audit.log_parameters",
            "log.level",
            "tls.cert_file",
            "tls.key_file"
        ]
    );
    assert_eq!(
        proxy.ctx.audit.policy(),
        pgtrail::config::FailurePolicy::FailOpen
    );
    assert!(proxy.ctx.live().log_parameters);
    assert_eq!(summary.needs_restart, ["max_connections"]);
    assert_eq!(summary.log_level, Some(("info".into(), "debug".into())));
    assert!(summary.tls_reloaded);

    let (new, cert) = login(&proxy, pg, &db).await;
    assert_eq!(cert, der2, "new connections see the new certificate");
    new.simple_query("SELECT 1").await.expect("new session");
    old.simple_query("SELECT 2")
        .await
        .expect("the session opened before the reload goes on");

    // A certificate that does not exist: rejected, nothing changes.
    let missing = dir.path().join("missing.pem");
    std::fs::write(&file, config_text(pg, dir.path(), &missing, &key2, "")).expect("write");
    let err = pgtrail::reload::reload(&proxy.ctx, &file).expect_err("missing cert");
    assert!(
        matches!(err, pgtrail::reload::ReloadError::Tls { .. }),
        "{err:?}"
    );
    let err = err.to_string();
    for part in [
        file.display().to_string(),
        "tls.cert_file".into(),
        missing.display().to_string(),
        "No such file".into(),
    ] {
        assert!(err.contains(&part), "{part:?} not in {err}");
    }
    assert_eq!(proxy.ctx.live().log_level, "debug", "no partial apply");

    // A file that does not parse: the error has the key and position.
    std::fs::write(&file, "[tls]\nmode = 3\n").expect("write");
    let err = pgtrail::reload::reload(&proxy.ctx, &file)
        .expect_err("bad type")
        .to_string();
    assert!(err.contains(":2:8: tls.mode: "), "{err}");

    let (_third, cert) = login(&proxy, pg, &db).await;
    assert_eq!(
        cert, der2,
        "a rejected reload keeps the certificate in force"
    );
    old.simple_query("SELECT 3").await.expect("old session");
    drop((old, new));
    proxy.stop().await;
}

/// Proxy mode: a reload whose users file is broken is rejected as a whole,
/// even though its new certificate loads.
#[tokio::test]
async fn broken_users_file_rejects_the_whole_reload() {
    use pgtrail::auth::users::{self, Method, UserEntry};
    let (pg, _db) = fresh_db("reload_users");
    let dir = tempfile::tempdir().expect("tempdir");
    let (file, users_file) = (
        dir.path().join("pgtrail.toml"),
        dir.path().join("users.toml"),
    );
    let person = |name: &str| UserEntry {
        name: name.into(),
        secret: postgres_protocol::password::scram_sha_256(b"pw"),
        method: Method::ScramSha256,
        db_role: None,
        databases: Vec::new(),
    };
    users::upsert(&users_file, person("alice")).expect("users file");
    let (cert1, key1, der1) = write_cert(dir.path(), "one");
    let (cert2, key2, der2) = write_cert(dir.path(), "two");
    let auth = format!(
        "[auth]\nmode = \"proxy\"\nusers_file = {:?}",
        users_file.display().to_string()
    );
    std::fs::write(&file, config_text(pg, dir.path(), &cert1, &key1, &auth)).expect("write");
    let loaded = pgtrail::config_file::load(&file).expect("valid config");
    let proxy = Proxy::start_with(pg, |c| *c = loaded).await;

    std::fs::write(&file, config_text(pg, dir.path(), &cert2, &key2, &auth)).expect("write");
    std::fs::write(&users_file, "[[user]]\nname = \"dave\"\n").expect("break users file");
    let err = pgtrail::reload::reload(&proxy.ctx, &file).expect_err("broken users file");
    assert!(
        matches!(err, pgtrail::reload::ReloadError::Users { .. }),
        "{err:?}"
    );
    let err = err.to_string();
    assert!(err.contains("auth.users_file"), "{err}");
    assert!(err.contains(&users_file.display().to_string()), "{err}");
    assert_eq!(tls_connect(&proxy).await.1, der1, "certificate unchanged");
    assert_eq!(proxy.ctx.users().len(), 1);

    std::fs::remove_file(&users_file).expect("remove");
    users::upsert(&users_file, person("bob")).expect("users file");
    users::upsert(&users_file, person("carol")).expect("users file");
    let summary = pgtrail::reload::reload(&proxy.ctx, &file).expect("reload");
    assert_eq!(summary.users, Some(2));
    assert_eq!(summary.applied, ["tls.cert_file", "tls.key_file"]);
    assert_eq!(tls_connect(&proxy).await.1, der2);
    proxy.stop().await;
}
