//! TLS on both sides of pgtrail: clients (tls.mode) and the server (upstream.tls).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use pgtrail::config::{ClientTlsMode, UpstreamTlsMode};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

use crate::harness::postgres::{PgCluster, PgOptions, PgSsl};
use crate::harness::proxy::{connect, fresh_db, sessions, Proxy};

/// A CA and a server certificate it signed, as PEM files in a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new(server_names: &[&str]) -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "pgtrail test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = server_names.iter().map(|s| s.to_string()).collect();
        let mut server = CertificateParams::new(names).unwrap();
        server
            .distinguished_name
            .push(DnType::CommonName, server_names[0]);
        server.is_ca = IsCa::NoCa;
        server.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let cert = server.signed_by(&key, &ca_cert, &ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.pem()).unwrap();
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).unwrap();
        // A client certificate, for tls.client_ca_file.
        let client_key = KeyPair::generate().unwrap();
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client
            .distinguished_name
            .push(DnType::CommonName, "postgres");
        client.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client.signed_by(&client_key, &ca_cert, &ca_key).unwrap();
        std::fs::write(dir.path().join("client.pem"), client_cert.pem()).unwrap();
        std::fs::write(dir.path().join("client.key"), client_key.serialize_pem()).unwrap();
        std::fs::set_permissions(
            dir.path().join("client.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        Pki { dir }
    }
    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
    fn cert(&self) -> PathBuf {
        self.dir.path().join("server.pem")
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }
}

fn psql(bin: &Path, port: u16, db: &str, password: &str, sslmode: &str, sql: &str) -> Output {
    let conn = format!("host=127.0.0.1 port={port} user=postgres dbname={db} sslmode={sslmode}");
    psql_conn(bin, &conn, password, sql)
}

fn psql_conn(bin: &Path, conn: &str, password: &str, sql: &str) -> Output {
    Command::new(bin)
        .args(["-X", "-A", "-t", "-c", sql])
        .arg(conn)
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "10")
        .env("PGGSSENCMODE", "disable")
        .env_remove("PGSERVICE")
        .env_remove("PGSSLMODE")
        .output()
        .expect("run psql")
}

#[tokio::test]
async fn client_tls_required() {
    let (pg, db) = fresh_db("tls_client");
    let pki = Pki::new(&["localhost", "127.0.0.1"]);
    let (cert, key) = (pki.cert(), pki.key());
    let proxy = Proxy::start_with(pg, |c| {
        c.tls.mode = ClientTlsMode::Require;
        c.tls.cert_file = Some(cert);
        c.tls.key_file = Some(key);
    })
    .await;
    let (bin, port, db2, pw) = (pg.bin("psql"), proxy.port(), db.clone(), pg.password());
    let (ok, ssl, refused) = tokio::task::spawn_blocking(move || {
        (
            psql(&bin, port, &db2, pw, "require", "SELECT 1"),
            psql(
                &bin,
                port,
                &db2,
                pw,
                "require",
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            ),
            psql(&bin, port, &db2, pw, "disable", "SELECT 1"),
        )
    })
    .await
    .unwrap();
    assert!(
        ok.status.success(),
        "psql sslmode=require: {}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "1");
    // TLS ends at pgtrail: the hop to the server is plain here.
    assert_eq!(String::from_utf8_lossy(&ssl.stdout).trim(), "f");
    assert!(!refused.status.success(), "plain connection accepted");
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("encrypted"), "{err}");
    let records = proxy.stop().await;
    let s = sessions(&records);
    assert!(
        s.iter()
            .any(|r| r["event_type"] == "auth_ok" && r["tls"] == true),
        "{s:#?}"
    );
    assert!(
        s.iter().all(|r| r["tls"] == true),
        "a plain session got past startup: {s:#?}"
    );
}

/// One TLS-only private cluster for the whole file, with a certificate for
/// "localhost" signed by `Pki::ca`.
struct TlsCluster {
    pg: PgCluster,
    pki: Pki,
    other_ca: Pki,
}

fn tls_cluster() -> &'static TlsCluster {
    static CLUSTER: OnceLock<TlsCluster> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        let pki = Pki::new(&["localhost"]);
        let ssl = PgSsl {
            cert_file: pki.cert(),
            key_file: pki.key(),
            require: true,
        };
        let pg = PgCluster::start_with(PgOptions {
            ssl: Some(ssl),
            ..Default::default()
        });
        TlsCluster {
            pg,
            pki,
            other_ca: Pki::new(&["localhost"]),
        }
    })
}

async fn private_db(prefix: &str) -> (&'static TlsCluster, String) {
    let prefix = prefix.to_string();
    tokio::task::spawn_blocking(move || {
        let c = tls_cluster();
        let db = PgCluster::unique_db_name(&prefix);
        c.pg.create_database(&db);
        (c, db)
    })
    .await
    .unwrap()
}

async fn upstream_proxy(
    c: &TlsCluster,
    mode: UpstreamTlsMode,
    ca: PathBuf,
    server_name: &str,
) -> Proxy {
    let name = server_name.to_string();
    Proxy::start_with(&c.pg, move |cfg| {
        cfg.upstream.tls = mode;
        cfg.upstream.ca_file = Some(ca);
        cfg.upstream.server_name = Some(name);
    })
    .await
}

#[tokio::test]
async fn upstream_verify_full() {
    let (c, db) = private_db("tls_full").await;
    let proxy = upstream_proxy(c, UpstreamTlsMode::VerifyFull, c.pki.ca(), "localhost").await;
    let client = proxy.connect(&c.pg, &db).await;
    let ssl: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(ssl);
    drop(client);
    proxy.stop().await;
    // Also by the URL host.
    let port = c.pg.port();
    let ca = c.pki.ca();
    let proxy = Proxy::start_with(&c.pg, move |cfg| {
        cfg.upstream.url = format!("postgres://localhost:{port}");
        cfg.upstream.tls = UpstreamTlsMode::VerifyFull;
        cfg.upstream.ca_file = Some(ca);
    })
    .await;
    let client = connect(&proxy.conn_string(&c.pg, &db)).await;
    client.simple_query("SELECT 1").await.unwrap();
}

#[tokio::test]
async fn upstream_verify_full_unknown_ca_fails() {
    let (c, db) = private_db("tls_badca").await;
    let proxy = upstream_proxy(c, UpstreamTlsMode::VerifyFull, c.other_ca.ca(), "localhost").await;
    let err = connect_error(
        &proxy.conn_string(&c.pg, &db),
        "a server signed by an unknown CA was trusted",
    )
    .await;
    assert_eq!(err.code().map(|c| c.code()), Some("08006"), "{err}");
    let records = proxy.stop().await;
    assert!(
        sessions(&records)
            .iter()
            .any(|r| r["event_type"] == "auth_failed"),
        "{records:#?}"
    );
}

#[tokio::test]
async fn upstream_verify_full_wrong_name_fails_verify_ca_passes() {
    let (c, db) = private_db("tls_name").await;
    let proxy = upstream_proxy(c, UpstreamTlsMode::VerifyFull, c.pki.ca(), "db.example.net").await;
    let err = connect_error(
        &proxy.conn_string(&c.pg, &db),
        "a certificate for another name was accepted under verify-full",
    )
    .await;
    assert_eq!(err.code().map(|c| c.code()), Some("08006"), "{err}");
    proxy.stop().await;
    // verify-ca checks the chain only.
    let proxy = upstream_proxy(c, UpstreamTlsMode::VerifyCa, c.pki.ca(), "db.example.net").await;
    let client = proxy.connect(&c.pg, &db).await;
    client.simple_query("SELECT 1").await.unwrap();
    drop(client);
    proxy.stop().await;
    // ... but still the chain.
    let proxy = upstream_proxy(c, UpstreamTlsMode::VerifyCa, c.other_ca.ca(), "localhost").await;
    let err = connect_error(
        &proxy.conn_string(&c.pg, &db),
        "an unknown CA passed verify-ca",
    )
    .await;
    assert_eq!(err.code().map(|c| c.code()), Some("08006"), "{err}");
}

#[tokio::test]
async fn upstream_tls_required_by_server() {
    // The cluster accepts TLS only: upstream.tls = disable is refused by the server.
    let (c, db) = private_db("tls_plain").await;
    let proxy = Proxy::start(&c.pg).await;
    let err = connect_error(
        &proxy.conn_string(&c.pg, &db),
        "plain login to a hostssl-only server",
    )
    .await;
    assert_eq!(err.code().map(|c| c.code()), Some("28000"), "{err}");
}

#[tokio::test]
async fn client_certificates() {
    let (pg, db) = fresh_db("tls_client_cert");
    let pki = Pki::new(&["localhost"]);
    let stranger = Pki::new(&["localhost"]);
    for mode in [ClientTlsMode::Require, ClientTlsMode::Allow] {
        let (cert, key, ca) = (pki.cert(), pki.key(), pki.ca());
        let proxy = Proxy::start_with(pg, move |c| {
            c.tls.mode = mode;
            c.tls.cert_file = Some(cert);
            c.tls.key_file = Some(key);
            c.tls.client_ca_file = Some(ca);
        })
        .await;
        let base = format!(
            "host=127.0.0.1 port={} user=postgres dbname={db}",
            proxy.port()
        );
        let own = format!(
            "{base} sslmode=require sslcert={} sslkey={}",
            pki.dir.path().join("client.pem").display(),
            pki.dir.path().join("client.key").display()
        );
        let foreign = format!(
            "{base} sslmode=require sslcert={} sslkey={}",
            stranger.dir.path().join("client.pem").display(),
            stranger.dir.path().join("client.key").display()
        );
        let (bin, pw) = (pg.bin("psql"), pg.password());
        let outs = tokio::task::spawn_blocking(move || {
            [
                own,
                foreign,
                format!("{base} sslmode=require"),
                format!("{base} sslmode=disable"),
            ]
            .map(|conn| psql_conn(&bin, &conn, pw, "SELECT 1"))
        })
        .await
        .unwrap();
        let [own, foreign, no_cert, plain] = outs;
        assert!(
            own.status.success(),
            "{mode:?}: client certificate refused: {}",
            String::from_utf8_lossy(&own.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&own.stdout).trim(), "1");
        assert!(
            !foreign.status.success(),
            "{mode:?}: certificate of an unknown CA accepted"
        );
        assert!(
            !no_cert.status.success(),
            "{mode:?}: TLS without a client certificate accepted"
        );
        // Without TLS there is no certificate either.
        assert!(
            !plain.status.success(),
            "{mode:?}: plain connection accepted although client certificates are required"
        );
        proxy.stop().await;
    }
}

#[tokio::test]
async fn unencrypted_data_after_ssl_request_is_refused() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (pg, db) = fresh_db("tls_cve");
    let pki = Pki::new(&["localhost"]);
    let (cert, key) = (pki.cert(), pki.key());
    let proxy = Proxy::start_with(pg, |c| {
        c.tls.mode = ClientTlsMode::Allow;
        c.tls.cert_file = Some(cert);
        c.tls.key_file = Some(key);
    })
    .await;
    // SSLRequest and a StartupMessage in one write (CVE-2021-23214).
    let mut packet = 8i32.to_be_bytes().to_vec();
    packet.extend(80_877_103i32.to_be_bytes());
    packet.extend(crate::harness::raw::startup(&[
        ("user", pg.superuser()),
        ("database", db.as_str()),
    ]));
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    s.write_all(&packet).await.unwrap();
    let mut rest = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "pgtrail neither answered nor closed");
    // 'S', then the connection closes (or an ErrorResponse): never an authentication request.
    assert_eq!(rest.first(), Some(&b'S'), "{rest:?}");
    let mut at = 1;
    while at + 5 <= rest.len() {
        assert_ne!(
            rest[at], b'R',
            "startup went on after unencrypted data: {rest:?}"
        );
        at += 1 + u32::from_be_bytes([rest[at + 1], rest[at + 2], rest[at + 3], rest[at + 4]])
            as usize;
    }
    // GSSENCRequest is declined, and the session goes on in plain text.
    let mut s = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
    let mut gss = 8i32.to_be_bytes().to_vec();
    gss.extend(80_877_104i32.to_be_bytes());
    s.write_all(&gss).await.unwrap();
    let mut answer = [0u8; 1];
    s.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"N");
    let records = proxy.stop().await;
    assert!(
        sessions(&records)
            .iter()
            .all(|r| r["event_type"] != "auth_ok"),
        "{records:#?}"
    );
}

/// The error of a login expected to fail.
async fn connect_error(conn: &str, unexpected: &str) -> tokio_postgres::Error {
    match tokio_postgres::connect(conn, tokio_postgres::NoTls).await {
        Ok(_) => panic!("{unexpected}"),
        Err(e) => e,
    }
}
