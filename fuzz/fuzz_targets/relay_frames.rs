//! What the relay does with bytes from either peer: frame them with the
//! configured limits and show every whole frame to the response tracker.
//! Neither may panic, whatever the bytes; errors end the session.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use libfuzzer_sys::fuzz_target;
use pgtrail::audit::SessionInfo;
use pgtrail::protocol::frame::{frame_len, FrameLimits};
use pgtrail::session::tracker::{SessionClock, Tracker};

fn session() -> Arc<SessionInfo> {
    Arc::new(SessionInfo {
        session_id: "fuzz".into(),
        backend_pid: 0,
        user: "u".into(),
        db_role: "u".into(),
        database: "d".into(),
        client_addr: IpAddr::V4(Ipv4Addr::LOCALHOST),
        client_port: 1,
        application_name: String::new(),
        tls: false,
        auth_method: "trust".into(),
        startup_identity: Default::default(),
    })
}

fuzz_target!(|data: &[u8]| {
    // The first byte says which side speaks each frame (bit by bit).
    let Some((&sides, mut rest)) = data.split_first() else {
        return;
    };
    let mut tracker = Tracker::new(session(), SessionClock::now(), true);
    let (client, server) = (
        FrameLimits::frontend(1 << 16),
        FrameLimits::backend(1 << 16),
    );
    let mut n = 0u32;
    loop {
        let from_client = sides.rotate_left(n) & 1 == 0;
        let limits = if from_client { &client } else { &server };
        let len = match frame_len(rest, limits) {
            Ok(Ok(len)) => len,
            _ => return,
        };
        let (tag, body) = (rest[0], &rest[5..len]);
        let outcome = if from_client {
            tracker.client_frame(tag, body, Instant::now()).map(|_| ())
        } else {
            tracker.server_frame(tag, body, Instant::now())
        };
        if outcome.is_err() {
            return;
        }
        let _ = tracker.take_finished();
        rest = &rest[len..];
        n = n.wrapping_add(1);
    }
});
