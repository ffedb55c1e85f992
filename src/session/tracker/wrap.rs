//! A write sent as a simple Query outside a transaction runs in an
//! implicit transaction that ends with the Query: nothing of pgtrail's can
//! join it. With markers on, such a Query (`INSERT`, `UPDATE`, `DELETE` or
//! `MERGE` statements, with reads beside them) is wrapped: `BEGIN` goes before it, the marker and
//! `COMMIT` (two Query messages, so that `COMMIT` runs even when the
//! statement or the marker failed) right after it, in the same write.
//!
//! What the client sees is what the implicit transaction would have
//! given, and only after the `COMMIT` is done: the statements' rows as
//! they come; the last CommandComplete or ErrorResponse held until `COMMIT`
//! answers, then released, or replaced by `COMMIT`'s error (a deferred
//! constraint fails at commit, and PostgreSQL then reports only the error);
//! the `COMMIT`'s ReadyForQuery `I` as the Query's. Everything else of
//! pgtrail's is swallowed.
//!
//! A `COPY ... FROM` Query is wrapped too, but its marker and `COMMIT` can
//! only follow the client's CopyDone or CopyFail (the server is in COPY mode
//! until then): they go right after that frame, or, when the COPY failed
//! before it started (no CopyInResponse, so no CopyDone will come), from
//! the server side once the statement's ReadyForQuery is read
//! (`take_upstream`). The tracker is fed exactly the frames the client
//! gets, so records read as without the wrap.

use bytes::{BufMut, Bytes, BytesMut};
use std::time::Instant;

use super::internal::Route;
use super::Tracker;
use crate::protocol::{tag, Malformed};

/// Where a wrapped Query stands, by the answers read so far.
#[derive(Debug)]
pub(super) struct Wrap {
    phase: Phase,
    /// The statement's CommandComplete or ErrorResponse, held back.
    held: Option<Bytes>,
    /// A wrapped COPY: the marker and `COMMIT` still to send.
    copy: Option<CopyEnd>,
}

/// The end of a wrapped COPY's block.
#[derive(Debug)]
struct CopyEnd {
    /// The marker and `COMMIT`, once `set_copy_end` gave them.
    bytes: Bytes,
    /// The server answered CopyInResponse: the client's CopyDone or
    /// CopyFail will come.
    started: bool,
    sent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// pgtrail's `BEGIN`.
    Begin,
    /// The client's statement.
    Client,
    /// pgtrail's marker.
    Marker,
    /// pgtrail's `COMMIT` (answered `ROLLBACK` when the block failed).
    Commit,
}

impl Wrap {
    pub(super) fn new() -> Self {
        Wrap {
            phase: Phase::Begin,
            held: None,
            copy: None,
        }
    }

    pub(super) fn copy() -> Self {
        Wrap {
            copy: Some(CopyEnd {
                bytes: Bytes::new(),
                started: false,
                sent: false,
            }),
            ..Wrap::new()
        }
    }
}

impl Tracker {
    /// A server frame while a wrapped Query is answered: `None` to process
    /// and forward it as usual.
    pub(super) fn wrap_frame(
        &mut self,
        tag: u8,
        body: &[u8],
        now: Instant,
    ) -> Result<Option<Route>, Malformed> {
        use tag::backend as b;
        let Some(wrap) = self.wrap.as_mut() else {
            return Ok(None);
        };
        if matches!(tag, b::NOTIFICATION_RESPONSE | b::PARAMETER_STATUS) {
            return Ok(None);
        }
        let route = match (wrap.phase, tag) {
            // The last result is held; one before it (a Query string of
            // several statements) goes on when the next arrives.
            (Phase::Client, b::COMMAND_COMPLETE | b::ERROR_RESPONSE) => {
                match wrap.held.replace(frame(tag, body)) {
                    Some(earlier) => {
                        self.plain_frame(earlier[0], &earlier[5..], now)?;
                        Route::Replace(earlier)
                    }
                    None => Route::Swallow,
                }
            }
            (Phase::Client, b::READY_FOR_QUERY) => {
                wrap.phase = Phase::Marker;
                // A COPY that never started: no CopyDone will carry the
                // block's end, so it goes from here.
                let end = wrap.copy.as_mut().filter(|c| !c.sent).map(|end| {
                    end.sent = true;
                    end.bytes.clone()
                });
                if let Some(bytes) = end {
                    self.queue_upstream(bytes);
                }
                Route::Swallow
            }
            (Phase::Client, b::COPY_IN_RESPONSE) => {
                if let Some(end) = wrap.copy.as_mut() {
                    end.started = true;
                }
                return Ok(None);
            }
            // Anything else of the statements' (the next one's rows, a
            // notice) goes after the result held before it.
            (Phase::Client, _) => match wrap.held.take() {
                Some(earlier) => {
                    self.plain_frame(earlier[0], &earlier[5..], now)?;
                    self.plain_frame(tag, body, now)?;
                    let mut both = BytesMut::from(&earlier[..]);
                    both.extend_from_slice(&frame(tag, body));
                    Route::Replace(both.freeze())
                }
                None => return Ok(None),
            },
            (Phase::Begin, b::READY_FOR_QUERY) => {
                wrap.phase = Phase::Client;
                Route::Swallow
            }
            (Phase::Marker, b::READY_FOR_QUERY) => {
                wrap.phase = Phase::Commit;
                Route::Swallow
            }
            (Phase::Begin | Phase::Marker, _) => Route::Swallow,
            (Phase::Commit, b::COMMAND_COMPLETE) => match wrap.held.take() {
                Some(held) => {
                    self.plain_frame(held[0], &held[5..], now)?;
                    Route::Replace(held)
                }
                None => Route::Swallow,
            },
            // The commit failed (a deferred constraint): its error is the
            // statement's, in place of the held CommandComplete.
            (Phase::Commit, b::ERROR_RESPONSE) => {
                wrap.held = None;
                return Ok(None);
            }
            (Phase::Commit, b::READY_FOR_QUERY) => {
                self.wrap = None;
                return Ok(None);
            }
            (Phase::Commit, _) => Route::Swallow,
        };
        Ok(Some(route))
    }
}

impl Tracker {
    /// Gives a wrapped COPY the marker and `COMMIT` that end its block.
    pub fn set_copy_end(&mut self, bytes: Bytes) {
        if let Some(end) = self.wrap.as_mut().and_then(|w| w.copy.as_mut()) {
            end.bytes = bytes;
        }
    }

    /// The client's CopyDone or CopyFail of a wrapped COPY: the block's end
    /// goes right after it.
    pub fn copy_end_after(&mut self, tag: u8) -> Option<Bytes> {
        use tag::frontend as f;
        if !matches!(tag, f::COPY_DONE | f::COPY_FAIL) {
            return None;
        }
        let end = self.wrap.as_mut()?.copy.as_mut()?;
        (end.started && !end.sent).then(|| {
            end.sent = true;
            end.bytes.clone()
        })
    }

    /// Bytes of pgtrail's that the server side asks to be sent upstream.
    pub fn take_upstream(&mut self) -> Option<Bytes> {
        self.upstream.take()
    }

    /// Queues bytes of pgtrail's for the server, after any queued before.
    pub(super) fn queue_upstream(&mut self, bytes: Bytes) {
        self.upstream = Some(match self.upstream.take() {
            Some(before) => [before, bytes].concat().into(),
            None => bytes,
        });
    }
}

/// A whole frame from its tag and body.
fn frame(tag: u8, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + 5);
    out.put_u8(tag);
    out.put_u32(body.len() as u32 + 4);
    out.put_slice(body);
    out.freeze()
}
