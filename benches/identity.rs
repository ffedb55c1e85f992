//! Criterion benches: what end-user claims add to the relay's tracker per
//! statement (issue 18's budget: under 0.5 µs for an unsigned comment on
//! the cached path). One `pgbench -S`-shaped round (Query, RowDescription,
//! DataRow, CommandComplete, ReadyForQuery, events taken) through a
//! `Tracker` without claims, with claims and no comment, with the same
//! unsigned sqlcommenter comment each time (a new literal each call), with
//! a comment whose request id changes each call, and with a signed one.

use std::sync::Arc;
use std::time::Instant;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use pgtrail::config::{IdentityConfig, IdentityKey, Secret};
use pgtrail::identity::{Identity, SessionClaims};
use pgtrail::session::tracker::{SessionClock, Tracker};

mod common;
use common::session;

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SECRET: &str = "a bench secret of at least thirty-two bytes";

fn tracker(claims: bool) -> Tracker {
    let t = Tracker::new(session(), SessionClock::now(), false);
    if !claims {
        return t;
    }
    let mut config = IdentityConfig::default();
    config.keys.push(IdentityKey {
        hmac_secret: Some(Secret(SECRET.into())),
        ..Default::default()
    });
    let id = Arc::new(Identity::from_config(&config).unwrap().unwrap());
    let claims = SessionClaims::new(id, t.session());
    t.with_claims(Some(claims))
}

fn cstr(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// One statement's round through the tracker.
fn round(t: &mut Tracker, query: &[u8], now: Instant) {
    t.client_frame(b'Q', query, now).unwrap();
    t.server_frame(b'T', b"", now).unwrap();
    t.server_frame(b'D', b"", now).unwrap();
    t.server_frame(b'C', b"SELECT 1\0", now).unwrap();
    t.server_frame(b'Z', b"I", now).unwrap();
    black_box(t.take_finished());
}

fn bench(c: &mut Criterion) {
    let now = Instant::now();
    let plain = |i: u32| {
        cstr(&format!(
            "SELECT abalance FROM pgbench_accounts WHERE aid = {i};"
        ))
    };
    let comment = "application='bench',end_user='alice%40example.com',traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'";
    let commented = |i: u32, extra: &str| {
        cstr(&format!(
            "SELECT abalance FROM pgbench_accounts WHERE aid = {i} /*{comment}{extra}*/;"
        ))
    };
    let mut g = c.benchmark_group("tracker_round");
    for (name, claims) in [("claims_off", false), ("claims_on", true)] {
        let mut t = tracker(claims);
        let mut i = 0u32;
        g.bench_function(format!("{name}/no_comment"), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                round(&mut t, &plain(i % 100_000), now)
            })
        });
        let mut t = tracker(claims);
        g.bench_function(format!("{name}/comment"), |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                round(&mut t, &commented(i % 100_000, ""), now)
            })
        });
    }
    let mut t = tracker(true);
    let mut i = 0u32;
    g.bench_function("claims_on/comment_new_request_id", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            let extra = format!(",request_id='r-{i}'");
            round(&mut t, &commented(i % 100_000, &extra), now)
        })
    });
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    let sig = pgtrail::identity::verify::sign_comment(SECRET.as_bytes(), "alice@example.com", &ts);
    let signed = format!(",pgtrail_ts='{ts}',pgtrail_sig='{sig}'");
    let mut t = tracker(true);
    g.bench_function("claims_on/signed_comment", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            round(&mut t, &commented(i % 100_000, &signed), now)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
