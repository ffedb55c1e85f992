//! Who a record names: repeated startup parameters, roles set at startup
//! and during the session (issue 11, item 5).

use crate::harness::proxy::{fresh_db, sessions, Proxy};
use crate::harness::raw;

#[tokio::test]
async fn repeated_startup_parameter_is_refused_before_upstream() {
    let (pg, db) = fresh_db("identity_repeat");
    let proxy = Proxy::start(pg).await;
    let params = [
        ("user", "victim"),
        ("database", db.as_str()),
        ("user", pg.superuser()),
    ];
    let mut s = raw::open(proxy.addr, &params).await;
    let msgs = raw::read_until(&mut s, b'E').await;
    assert_eq!(raw::sqlstate(&msgs).as_deref(), Some("08P01"), "{msgs:?}");
    assert!(
        !msgs.iter().any(|(t, _)| *t == b'R'),
        "no authentication exchange: {msgs:?}"
    );
    let records = proxy.stop().await;
    assert!(
        sessions(&records).is_empty(),
        "refused before any session or upstream connection: {records:?}"
    );
}
