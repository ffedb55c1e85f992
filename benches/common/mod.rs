//! What several benches share: the session a pgbench connection makes.

use std::sync::Arc;

use pgtrail::audit::event::SessionInfo;

/// A session as pgbench's, over TCP with SCRAM.
pub fn session() -> Arc<SessionInfo> {
    Arc::new(SessionInfo {
        session_id: "01a228da-97d5-72f5-8cad-ab22bbba3f89".into(),
        backend_pid: 0,
        user: "postgres".into(),
        db_role: "postgres".into(),
        database: "postgres".into(),
        client_addr: std::net::Ipv4Addr::LOCALHOST.into(),
        client_port: 53074,
        application_name: "pgbench".into(),
        tls: false,
        auth_method: "scram-sha-256".into(),
        startup_identity: Default::default(),
    })
}
