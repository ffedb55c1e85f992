//! Walking the whole frames of a read: which to forward, which to refuse,
//! what the tracker learns from them, and when an error must wait for its
//! ReadyForQuery. No I/O: the relay reads and writes around these.

use std::sync::atomic::Ordering;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use std::sync::MutexGuard;

use super::inject::{self, copy_end, injection, Injection};
use super::Shared;
use crate::protocol::frame::{frame_len, Frame, FrameLimits};
use crate::protocol::tag;
use crate::session::error::SessionError;
use crate::session::refuse::{Refuser, Verdict};
use crate::session::tracker::ClientFrame;
use crate::session::tracker::Tracker;
use crate::session::tracker::{MarkerForm, Route};

/// Whole frames at the front of a buffer, and what is missing after them
/// (0 when the scan stopped early at a frame judged differently).
pub(super) struct Scan {
    pub(super) whole: usize,
    pub(super) missing: usize,
    pub(super) terminate: bool,
    /// The scan stopped because the client's messages must wait for the
    /// server's answer to a marker (`Tracker::holds_client`).
    pub(super) held: bool,
    /// The frames are refused (dropped), not forwarded.
    pub(super) refused: bool,
    /// pgtrail's messages to write among the run's frames, in order
    /// (`inject::apply`); only the last may go after its frame.
    pub(super) injections: Vec<Injection>,
    /// Server frames within `whole` that answer pgtrail's own message:
    /// `(offset, length)`, dropped, not written to the client, or replaced
    /// by a held frame.
    pub(super) cuts: Vec<Cut>,
}

/// A run of whole frames that are all forwarded, or all refused.
pub(super) fn scan_client(
    buf: &[u8],
    shared: &Shared<'_>,
    limits: &FrameLimits,
    refuser: &mut Refuser,
) -> Result<Scan, SessionError> {
    let mut off = 0;
    let mut tracker = None;
    let now = Instant::now();
    let why = shared.ctx.audit.refusal();
    // Whether this run is refused, once its first frame is judged.
    let mut run = None;
    let mut injections = Vec::new();
    loop {
        let len = match frame_len(&buf[off..], limits)? {
            Ok(len) => len,
            Err(missing) => return Ok(Scan::run(off, missing, run == Some(true), injections)),
        };
        let frame = Frame::of(&buf[off..off + len]);
        let t = tracker.get_or_insert_with(|| shared.tracker());
        if t.holds_client() {
            return Ok(Scan {
                held: true,
                ..Scan::run(off, 0, run == Some(true), injections)
            });
        }
        let refuse = refuses(frame.tag, why, t.is_idle(), shared, refuser, run);
        if *run.get_or_insert(refuse) != refuse {
            // This frame starts the next run: judge it again then.
            return Ok(Scan::run(off, 0, !refuse, injections));
        }
        let at = off;
        off += len;
        if refuse {
            count_refused(shared, frame.tag);
            continue;
        }
        if let Some(refused) = t.end_user_refusal(frame.tag, frame.body) {
            // The server gets a failing statement instead; the tracker
            // the client's frame, whose record says it was refused.
            tracing::info!(session_id = %t.session().session_id, "{}", refused.message);
            let injection = inject::refusal(frame.tag, &refused, at);
            t.refusal_sent(frame.tag);
            t.client_frame(frame.tag, frame.body, now)?;
            injections.push(injection);
            return Ok(Scan::run(off, 0, false, injections));
        }
        let signer = shared.ctx.markers.as_deref();
        let plan = signer.and_then(|_| t.marker_for(frame.tag, frame.body));
        let mut marker = t.copy_end_after(frame.tag).map(|after| Injection {
            at,
            before: Bytes::new(),
            after,
            replace: false,
        });
        let mut with_parse = false;
        if let (Some(signer), Some(plan)) = (signer, plan) {
            let (injected, parse) = injection(t, signer, plan, at);
            (marker, with_parse) = (Some(injected), parse);
            if !plan.form.after() {
                t.marker_sent(plan.form, with_parse);
            }
        }
        if let Some(text) = statement_text(frame.tag, frame.body) {
            shared.ctx.hooks.on_statement(t.session(), text);
        }
        if t.client_frame(frame.tag, frame.body, now)? == ClientFrame::Terminate {
            injections.extend(marker);
            return Ok(Scan {
                terminate: true,
                ..Scan::run(off, 0, false, injections)
            });
        }
        if let Some(plan) = plan.filter(|p| p.form.after()) {
            // Its answers come after the client frame's.
            t.marker_sent(plan.form, with_parse);
            if plan.form == MarkerForm::WrappedCopy {
                let end = copy_end(t, signer, plan);
                t.set_copy_end(end);
            }
        }
        if let Some(marker) = marker {
            injections.push(marker);
            // A marker in a batch of the client's goes with the rest of
            // it in one write (the server reads the batch at once); any
            // other ends the run with its frame.
            if plan.is_none_or(|p| p.form != MarkerForm::Extended) {
                return Ok(Scan::run(off, 0, false, injections));
            }
        }
    }
}

impl Scan {
    /// `whole` bytes of frames judged alike, then `missing` bytes of a
    /// partial frame (0 when the next frame starts another run).
    fn run(whole: usize, missing: usize, refused: bool, injections: Vec<Injection>) -> Scan {
        Scan {
            whole,
            missing,
            terminate: false,
            held: false,
            refused,
            injections,
            cuts: Vec::new(),
        }
    }
}

/// Whether the audit gate refuses a frame (`why` is the gate's reason,
/// `idle` the session's state). A refusal queues its replies; when the
/// frame would start a run of the other kind than `run`, its replies and
/// the refuser's state are taken back, because that frame is judged again
/// at the start of its own run.
fn refuses(
    tag: u8,
    why: Option<&str>,
    idle: bool,
    shared: &Shared<'_>,
    refuser: &mut Refuser,
    run: Option<bool>,
) -> bool {
    if refuser.passes_all(why) {
        return false;
    }
    let mut replies = shared.replies.lock().unwrap_or_else(|p| p.into_inner());
    let (mark, before) = (replies.len(), refuser.clone());
    let refuse = refuser.judge(tag, why, idle, &mut replies) == Verdict::Refuse;
    if run.is_some_and(|r| r != refuse) {
        replies.truncate(mark);
        *refuser = before;
    }
    refuse
}

/// Counts a refused statement: a Query, a function call or a Parse (the
/// rest of an extended-protocol batch is not counted again).
fn count_refused(shared: &Shared<'_>, tag: u8) {
    let statement = matches!(
        tag,
        tag::frontend::QUERY | tag::frontend::FUNCTION_CALL | tag::frontend::PARSE
    );
    shared
        .ctx
        .stats
        .statements_refused
        .fetch_add(u64::from(statement), Ordering::Relaxed);
}

/// The whole server frames at the front of `buf`, fed to the tracker. An
/// ErrorResponse whose ReadyForQuery is on its way (the server flushes
/// errors at once, and the ReadyForQuery in a write of its own) is held
/// back, with the rest of its batch, until that ReadyForQuery is read too,
/// so the batch's records carry its transaction status. Batches before it
/// in the same read, complete with their ReadyForQuery, go on at once.
/// `hold_errors` is off once the server's stream has ended.
pub(super) fn scan_server(
    buf: &[u8],
    shared: &Shared<'_>,
    limits: &FrameLimits,
    hold_errors: bool,
) -> Result<Scan, SessionError> {
    let mut feed = Feed {
        shared,
        limits,
        tracker: None,
        now: Instant::now(),
        cuts: Vec::new(),
    };
    let mut scan = Scan::run(0, 0, false, Vec::new());
    if hold_errors {
        if let Some(held) = error_before_ready(buf, limits)? {
            scan.whole = feed.frames(&buf[..held.batch_start], 0, Take::All)?.0;
            // A marker's answers open the batch of the Query it went
            // before: what the error belongs to is known once they are in.
            let at = scan.whole;
            scan.whole += feed.frames(&buf[at..], at, Take::MarkerAnswers)?.0;
            // Asked after the earlier batches: only a ReadyForQuery that
            // needs nothing more from the client is worth waiting for.
            if feed.tracker().ready_follows_an_error() {
                scan.missing = held.missing;
                scan.cuts = feed.cuts;
                return Ok(scan);
            }
        }
    }
    let from = scan.whole;
    let (whole, missing) = feed.frames(&buf[from..], from, Take::All)?;
    scan.whole = from + whole;
    scan.missing = missing;
    scan.cuts = feed.cuts;
    Ok(scan)
}

/// Which of the whole frames `Feed::frames` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    All,
    /// Those while a marker sent before a Query is unanswered
    /// (`Tracker::holds_client`).
    MarkerAnswers,
}

/// Server frames of one read on their way to the tracker.
struct Feed<'a, 's> {
    shared: &'a Shared<'s>,
    limits: &'a FrameLimits,
    tracker: Option<MutexGuard<'a, Tracker>>,
    now: Instant,
    /// Answers to pgtrail's own messages, by offset in the read.
    cuts: Vec<Cut>,
}

impl Feed<'_, '_> {
    fn tracker(&mut self) -> &mut Tracker {
        let shared = self.shared;
        self.tracker.get_or_insert_with(|| shared.tracker())
    }

    /// Feeds the whole frames at the front of `buf` (at `base` in the
    /// read) that `take` says: how many bytes they take, and what is
    /// missing after them.
    fn frames(
        &mut self,
        buf: &[u8],
        base: usize,
        take: Take,
    ) -> Result<(usize, usize), SessionError> {
        let mut off = 0;
        loop {
            if take == Take::MarkerAnswers && !self.tracker().holds_client() {
                return Ok((off, 0));
            }
            let len = match frame_len(&buf[off..], self.limits)? {
                Ok(len) => len,
                Err(missing) => return Ok((off, missing)),
            };
            let frame = Frame::of(&buf[off..off + len]);
            // DataRow and CopyData are most of the traffic and tell the
            // tracker nothing but a row count: skip the lock for CopyData.
            if frame.tag != tag::backend::COPY_DATA {
                let now = self.now;
                let instead = match self.tracker().server_frame(frame.tag, frame.body, now)? {
                    Route::Client => None,
                    Route::Swallow => Some(None),
                    Route::Replace(held) => Some(Some(held)),
                };
                if let Some(instead) = instead {
                    self.cuts.push(Cut {
                        at: base + off,
                        len,
                        instead,
                    });
                }
            }
            off += len;
        }
    }
}

/// A server frame the client does not get as it came.
pub(super) struct Cut {
    at: usize,
    len: usize,
    /// Written in its place.
    instead: Option<Bytes>,
}

/// `frames` with the `cuts` (in order, within `frames`) applied.
pub(super) fn without(frames: &[u8], cuts: &[Cut]) -> BytesMut {
    let mut out = BytesMut::with_capacity(frames.len());
    let mut from = 0;
    for cut in cuts {
        out.extend_from_slice(&frames[from..cut.at]);
        if let Some(instead) = &cut.instead {
            out.extend_from_slice(instead);
        }
        from = cut.at + cut.len;
    }
    out.extend_from_slice(&frames[from..]);
    out
}

/// The statement text a Query or Parse message carries; `None` for other
/// messages and for malformed ones (the tracker reports those).
fn statement_text(message: u8, body: &[u8]) -> Option<&[u8]> {
    use crate::protocol::frontend;
    match message {
        tag::frontend::QUERY => frontend::query(body).ok(),
        tag::frontend::PARSE => frontend::parse(body).ok().map(|p| p.query),
        _ => None,
    }
}

/// An ErrorResponse among the whole frames of a read that no ReadyForQuery
/// follows yet.
#[derive(Debug, PartialEq, Eq)]
struct HeldError {
    /// Where the error's batch starts: after the last ReadyForQuery before it.
    batch_start: usize,
    /// How many more bytes are needed at least.
    missing: usize,
}

/// When the whole frames in `buf` hold a non-FATAL ErrorResponse after their
/// last ReadyForQuery. Only the headers are read, and an error's severity.
fn error_before_ready(buf: &[u8], limits: &FrameLimits) -> Result<Option<HeldError>, SessionError> {
    let mut off = 0;
    let mut batch_start = 0;
    let mut waiting = false;
    loop {
        match frame_len(&buf[off..], limits)? {
            Ok(len) => {
                let frame = Frame::of(&buf[off..off + len]);
                off += len;
                match frame.tag {
                    tag::backend::ERROR_RESPONSE => {
                        let fatal = crate::protocol::backend::error_fields(frame.body)
                            .is_ok_and(|f| f.is_fatal());
                        waiting = !fatal;
                    }
                    tag::backend::READY_FOR_QUERY => {
                        waiting = false;
                        batch_start = off;
                    }
                    _ => {}
                }
            }
            Err(missing) => {
                return Ok(waiting.then_some(HeldError {
                    batch_start,
                    missing,
                }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::build::{self, Severity};

    fn frames(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn hooks_get_the_statement_text_without_nul_or_name() {
        let mut query = b"SELECT 1".to_vec();
        query.push(0);
        assert_eq!(statement_text(b'Q', &query), Some(&b"SELECT 1"[..]));
        let mut parse = b"stmt1\0SELECT $1\0".to_vec();
        parse.extend(0i16.to_be_bytes());
        assert_eq!(statement_text(b'P', &parse), Some(&b"SELECT $1"[..]));
        assert_eq!(statement_text(b'B', &parse), None);
        assert_eq!(statement_text(b'Q', b"no terminator"), None);
    }

    #[test]
    fn an_error_waits_for_its_ready_for_query_from_the_start_of_its_batch() {
        let limits = FrameLimits::backend(1 << 20);
        let error = build::error_response(Severity::Error, "22012", "division by zero");
        let fatal = build::error_response(Severity::Fatal, "57P01", "bye");
        let ready = build::ready_for_query(b'I');
        let held = |b: &[u8]| error_before_ready(b, &limits).unwrap();
        let at = |batch_start, missing| {
            Some(HeldError {
                batch_start,
                missing,
            })
        };
        assert_eq!(held(&frames(&[&error])), at(0, 5));
        assert_eq!(held(&frames(&[&error, &ready[..3]])), at(0, 2));
        assert_eq!(held(&frames(&[&error, &ready])), None);
        // An earlier batch, complete, goes on; the error's batch waits.
        assert_eq!(held(&frames(&[&ready, &error])), at(ready.len(), 5));
        assert_eq!(
            held(&frames(&[&error, &ready, &ready, &error])),
            at(error.len() + 2 * ready.len(), 5)
        );
        assert_eq!(
            held(&frames(&[&fatal])),
            None,
            "no ReadyForQuery follows a FATAL"
        );
        assert_eq!(held(&[]), None);
    }
}
