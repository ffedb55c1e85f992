//! TLS on both sides of pgtrail: clients (tls.mode) and the server (upstream.tls).

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
    Command::new(bin)
        .args(["-X", "-A", "-t", "-c", sql])
        .arg(format!(
            "host=127.0.0.1 port={port} user=postgres dbname={db} sslmode={sslmode}"
        ))
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
    let result =
        tokio_postgres::connect(&proxy.conn_string(&c.pg, &db), tokio_postgres::NoTls).await;
    let err = result
        .err()
        .expect("a server signed by an unknown CA was trusted");
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
    let result =
        tokio_postgres::connect(&proxy.conn_string(&c.pg, &db), tokio_postgres::NoTls).await;
    let err = result
        .err()
        .expect("a certificate for another name was accepted under verify-full");
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
    let result =
        tokio_postgres::connect(&proxy.conn_string(&c.pg, &db), tokio_postgres::NoTls).await;
    assert_eq!(
        result
            .err()
            .and_then(|e| e.code().cloned())
            .map(|c| c.code().to_string())
            .as_deref(),
        Some("08006")
    );
}

#[tokio::test]
async fn upstream_tls_required_by_server() {
    // The cluster accepts TLS only: upstream.tls = disable is refused by the server.
    let (c, db) = private_db("tls_plain").await;
    let proxy = Proxy::start(&c.pg).await;
    let result =
        tokio_postgres::connect(&proxy.conn_string(&c.pg, &db), tokio_postgres::NoTls).await;
    let err = result.err().expect("plain login to a hostssl-only server");
    assert_eq!(err.code().map(|c| c.code()), Some("28000"), "{err}");
}
