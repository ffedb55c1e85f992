//! The replication connection over TLS, negotiated as sessions negotiate
//! it (`upstream.tls`), against a cluster that only accepts `hostssl`.

use pgtrail::cdc::replication::{ReplicationClient, ReplicationError, ServerErrorKind};
use pgtrail::config::{UpstreamConfig, UpstreamTlsMode};

use crate::harness::postgres::{PgCluster, PgOptions, PgSsl};

#[tokio::test]
async fn replication_connection_uses_upstream_tls() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_file, key_file) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&cert_file, cert.cert.pem()).unwrap();
    std::fs::write(&key_file, cert.key_pair.serialize_pem()).unwrap();
    let pg = PgCluster::start_with(PgOptions {
        ssl: Some(PgSsl {
            cert_file,
            key_file,
            require: true,
        }),
        ..Default::default()
    });
    let upstream = |tls| UpstreamConfig {
        url: format!("postgres://127.0.0.1:{}", pg.port()),
        tls,
        ..UpstreamConfig::default()
    };
    let mut cfg = pgtrail::cdc::replication::ReplicationConfig::new(
        upstream(UpstreamTlsMode::Require),
        pg.superuser(),
        "postgres",
    );
    cfg.password = Some(pg.password().to_string());
    let mut repl = ReplicationClient::connect(&cfg).await.unwrap();
    let system = repl.identify_system().await.unwrap();
    assert!(system.xlogpos.is_valid());

    // Without TLS the server's hostssl-only pg_hba.conf refuses the login.
    cfg.upstream = upstream(UpstreamTlsMode::Disable);
    match ReplicationClient::connect(&cfg).await {
        Err(ReplicationError::Server(e)) => {
            assert_eq!(e.kind(), ServerErrorKind::LoginRefused, "{e:?}");
            assert!(e.message.contains("pg_hba.conf"), "{e:?}");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("plain login accepted"),
    }
}
