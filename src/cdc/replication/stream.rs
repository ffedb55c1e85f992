//! The COPY BOTH phase of `START_REPLICATION`: decoded pgoutput messages
//! and keepalives in, Standby status updates out. The slot moves only to
//! what the caller [`confirm`](ReplicationStream::confirm)s.

use bytes::Bytes;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::time::Instant;

use super::wire::{self, CopyMessage, StandbyStatus};
use super::{server_error, unexpected, ReplicationError};
use crate::cdc::pgoutput::{Decoder, LogicalMessage, PgTimestamp};
use crate::cdc::Lsn;
use crate::protocol::{build, tag, Frame};
use crate::session::error::SessionError;
use crate::session::stream::Framed;

/// What [`ReplicationStream::next`] yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEvent {
    /// One pgoutput message and its XLogData header.
    Message {
        wal_start: Lsn,
        wal_end: Lsn,
        server_time: PgTimestamp,
        message: LogicalMessage,
    },
    /// The server is alive. `wal_end` is how far it has decoded: a caller
    /// with nothing unconfirmed may confirm it, so that an idle stream
    /// (changes only in other databases or unpublished tables) does not
    /// hold WAL back forever.
    Keepalive {
        wal_end: Lsn,
        server_time: PgTimestamp,
        reply_requested: bool,
    },
}

pub struct ReplicationStream {
    conn: Framed,
    decoder: Decoder,
    /// The highest position the server told us about.
    received: Lsn,
    /// The highest position the caller said is durable.
    confirmed: Lsn,
    status_interval: Duration,
    server_timeout: Duration,
    next_status: Instant,
    last_heard: Instant,
    /// A frame on its way out and how much of it was written: kept across
    /// calls so that a `next()` cancelled in the middle of a write
    /// finishes that frame before anything else is sent.
    out: Option<Bytes>,
    out_pos: usize,
    /// The last read was short of `TRICKLE_READ`: pause before the next.
    trickle: bool,
}

/// A read shorter than this means the stream trickles.
const TRICKLE_READ: u64 = 8 * 1024;
/// How long a trickling stream is left to gather before the next read.
const TRICKLE_PAUSE: Duration = Duration::from_millis(2);

impl ReplicationStream {
    pub(super) fn new(
        conn: Framed,
        start: Lsn,
        status_interval: Duration,
        server_timeout: Duration,
    ) -> Self {
        let now = Instant::now();
        ReplicationStream {
            conn,
            decoder: Decoder::new(),
            received: start,
            confirmed: Lsn::INVALID,
            status_interval,
            server_timeout,
            next_status: now + status_interval,
            last_heard: now,
            out: None,
            out_pos: 0,
            trickle: false,
        }
    }

    /// The next message or keepalive. Sends the periodic status update
    /// while it waits (asking for a reply once the server has been quiet
    /// for half of `server_timeout`), answers keepalives that ask for one,
    /// and gives up after `server_timeout` of silence. Cancel-safe: a frame
    /// is only taken from the buffer whole, and a status update cut off
    /// by a cancel is finished by the next call.
    pub async fn next(&mut self) -> Result<StreamEvent, ReplicationError> {
        self.finish_write().await?;
        loop {
            // A frame read already (one read of a busy stream holds many):
            // taken without arming the timers below for it, or reading the
            // clock: it was heard at its read (`last_heard`), which also
            // says whether the status update is due. The status update
            // first: a cancel during its write loses no frame.
            if self.conn.frame_buffered() && self.last_heard >= self.next_status {
                self.send_status(false).await?;
            }
            if let Some(frame) = self.conn.buffered_frame()? {
                if let Some(event) = self.handle(frame).await? {
                    return Ok(event);
                }
                continue;
            }
            if self.trickle {
                // The walsender sends each pgoutput message on its own, so
                // a lightly loaded stream would wake this thread for every
                // one. After a short read, let them gather: a moment's
                // sleep of this thread, whose runtime serves the consumer
                // alone (an async sleep would still wake for each arrival).
                std::thread::sleep(TRICKLE_PAUSE);
            }
            let read_before = self.conn.bytes_read;
            let status_due = self.next_status;
            let silent_at = self.last_heard + self.server_timeout;
            let frame = tokio::select! {
                frame = self.conn.read_frame() => frame?,
                () = tokio::time::sleep_until(status_due) => {
                    // A caught-up walsender that hears from us sends
                    // nothing (PostgreSQL 15 pings only after half its own
                    // timeout without replies); ask it to answer, as
                    // walreceiver does, once half our timeout passed.
                    let ping = self.last_heard.elapsed() >= self.server_timeout / 2;
                    self.send_status(ping).await?;
                    continue;
                }
                () = tokio::time::sleep_until(silent_at) => {
                    return Err(ReplicationError::ServerSilent(self.server_timeout));
                }
            };
            self.trickle = self.conn.bytes_read - read_before < TRICKLE_READ;
            self.last_heard = Instant::now();
            if let Some(event) = self.handle(frame).await? {
                return Ok(event);
            }
        }
    }

    async fn handle(&mut self, frame: Bytes) -> Result<Option<StreamEvent>, ReplicationError> {
        let view = Frame::of(&frame);
        match view.tag {
            tag::backend::COPY_DATA => {}
            tag::backend::ERROR_RESPONSE => {
                return Err(ReplicationError::Server(server_error(view.body)))
            }
            tag::backend::NOTICE_RESPONSE => return Ok(None),
            wire::tag::COPY_DONE => return Err(ReplicationError::StreamEnded),
            other => return Err(unexpected(other, "replication")),
        }
        match wire::copy_message(frame.slice(5..))? {
            CopyMessage::XLogData {
                wal_start,
                wal_end,
                server_time,
                data,
            } => {
                self.received = self.received.max(wal_end);
                let message = self.decoder.decode(data)?;
                Ok(Some(StreamEvent::Message {
                    wal_start,
                    wal_end,
                    server_time,
                    message,
                }))
            }
            CopyMessage::Keepalive {
                wal_end,
                server_time,
                reply_requested,
            } => {
                self.received = self.received.max(wal_end);
                if reply_requested {
                    self.send_status(false).await?;
                }
                Ok(Some(StreamEvent::Keepalive {
                    wal_end,
                    server_time,
                    reply_requested,
                }))
            }
        }
    }

    /// The caller's records up to `lsn` are durable: the next status
    /// update lets the slot move there. Never moves backwards.
    pub fn confirm(&mut self, lsn: Lsn) {
        self.confirmed = self.confirmed.max(lsn);
    }

    pub fn confirmed(&self) -> Lsn {
        self.confirmed
    }

    pub fn received(&self) -> Lsn {
        self.received
    }

    /// Whether a streamed transaction's block is open (its messages carry
    /// its xid).
    pub fn in_stream_block(&self) -> bool {
        self.decoder.in_stream()
    }

    /// Sends a Standby status update now; with `reply_requested` the
    /// server answers with a keepalive.
    pub async fn send_status(&mut self, reply_requested: bool) -> Result<(), ReplicationError> {
        let now_micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX));
        let status = wire::standby_status(&StandbyStatus {
            written: self.received.max(self.confirmed),
            flushed: self.confirmed,
            applied: self.confirmed,
            client_time: PgTimestamp::from_unix_micros(now_micros),
            reply_requested,
        });
        self.write(&status).await?;
        self.next_status = Instant::now() + self.status_interval;
        Ok(())
    }

    /// Sends `frame` after whatever is still on its way out.
    async fn write(&mut self, frame: &[u8]) -> Result<(), ReplicationError> {
        self.finish_write().await?;
        self.out = Some(Bytes::copy_from_slice(frame));
        self.out_pos = 0;
        self.finish_write().await
    }

    /// Writes the rest of the frame on its way out, if any. Each write's
    /// count is recorded before the next await, so a cancel loses nothing;
    /// a server that stops reading for `server_timeout` is as dead as a
    /// silent one.
    async fn finish_write(&mut self) -> Result<(), ReplicationError> {
        let timeout = self.server_timeout;
        let write_out = async {
            while let Some(out) = self.out.clone() {
                let n = self.conn.stream.write(&out[self.out_pos..]).await;
                let n = n.map_err(SessionError::from)?;
                if n == 0 {
                    return Err(ReplicationError::Connection(SessionError::Closed));
                }
                self.out_pos += n;
                if self.out_pos >= out.len() {
                    self.out = None;
                    self.out_pos = 0;
                }
            }
            self.conn.stream.flush().await.map_err(SessionError::from)?;
            Ok(())
        };
        tokio::time::timeout(timeout, write_out)
            .await
            .map_err(|_| ReplicationError::ServerSilent(timeout))?
    }

    /// Ends the stream cleanly: a last status update with the confirmed
    /// position, CopyDone, the server's remaining messages read and
    /// dropped up to ReadyForQuery, then Terminate.
    pub async fn stop(mut self) -> Result<(), ReplicationError> {
        self.send_status(false).await?;
        self.write(&wire::copy_done()).await?;
        let timeout = self.server_timeout;
        let drain = async {
            loop {
                let frame = self.conn.read_frame().await?;
                match Frame::of(&frame).tag {
                    tag::backend::READY_FOR_QUERY => return Ok(()),
                    tag::backend::ERROR_RESPONSE => {
                        return Err(ReplicationError::Server(server_error(
                            Frame::of(&frame).body,
                        )))
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(timeout, drain)
            .await
            .map_err(|_| ReplicationError::ServerSilent(timeout))??;
        self.write(&build::terminate()).await
    }
}
