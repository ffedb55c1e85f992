//! pgtrail's attribution markers as bytes on the wire: what goes before and
//! after a client frame (`tracker::internal` decides where; `cdc::marker`
//! signs what they say).

use bytes::{Bytes, BytesMut};

use crate::cdc::marker::{Marker, MarkerSigner};
use crate::protocol::build;
use crate::session::tracker::{MarkerForm, MarkerPlan, Refusal, Tracker};

/// pgtrail's own messages around a client frame: `before` it (at offset
/// `at` of the run), and `after` it (the run ends with it).
pub(super) struct Injection {
    pub(super) at: usize,
    pub(super) before: Bytes,
    pub(super) after: Bytes,
    /// The client frame itself is not sent: `before` stands in for it
    /// (a refused statement, `refusal`).
    pub(super) replace: bool,
}

/// A run's frames with pgtrail's messages in place: each injection's
/// `before` at its offset (in order), the frame it replaces left out (that
/// ends the run), and the `after` bytes at the end (only the run's last
/// frame has any).
pub(super) fn apply(frames: &[u8], injections: &[Injection]) -> BytesMut {
    let extra: usize = injections
        .iter()
        .map(|i| i.before.len() + i.after.len())
        .sum();
    let mut out = BytesMut::with_capacity(frames.len() + extra);
    let mut from = 0;
    for i in injections {
        out.extend_from_slice(&frames[from..i.at]);
        out.extend_from_slice(&i.before);
        from = if i.replace { frames.len() } else { i.at };
    }
    out.extend_from_slice(&frames[from..]);
    for i in injections {
        out.extend_from_slice(&i.after);
    }
    out
}

/// What goes to the server in place of a client message refused for want
/// of a verified end user (`tracker::verified`): a statement that fails
/// there with SQLSTATE 28000 and the refusal's message, so the server's
/// transaction fails as the client is told. A Query or function call
/// becomes a Query of it; an Execute becomes Close, Parse, Bind and
/// Execute of it as pgtrail's own statement, in the unnamed portal (the
/// error ends the client's portals' transaction anyway).
pub(super) fn refusal(tag: u8, refusal: &Refusal, at: usize) -> Injection {
    let sql = refusing_sql(&refusal.message);
    let before: Bytes = if tag == crate::protocol::tag::frontend::EXECUTE {
        let frames = [
            build::close_statement(REFUSAL_STATEMENT),
            build::parse(REFUSAL_STATEMENT, sql.as_bytes()),
            build::bind(b"", REFUSAL_STATEMENT),
            build::execute(b""),
        ];
        frames.concat().into()
    } else {
        build::query(sql.as_bytes())
    };
    Injection {
        at,
        before,
        after: Bytes::new(),
        replace: true,
    }
}

/// `DO` raising the refusal. The message may hold names a client chose
/// (its role, its claim), so everything that could end a quote or the
/// dollar-quoted body is replaced first.
fn refusing_sql(message: &str) -> String {
    let safe: String = message
        .chars()
        .map(|c| match c {
            '\'' | '$' | '\\' => '?',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    format!(
        "DO $pgtrail$BEGIN RAISE EXCEPTION USING ERRCODE = '28000', MESSAGE = '{safe}'; END$pgtrail$"
    )
}

/// pgtrail's refusing statement: a name no client gives its statements.
const REFUSAL_STATEMENT: &[u8] = b"\x01pgtrail_refusal";

/// What a marker sent now says, as `plan` has it.
fn marker_of(t: &Tracker, plan: MarkerPlan) -> Marker {
    let session = t.session();
    Marker {
        transaction_id: plan.transaction_id,
        boundary: plan.boundary,
        session_id: session.session_id.as_str().into(),
        user: session.user.as_str().into(),
        db_role: session.db_role.as_str().into(),
        client_addr: session.client_addr.to_string().into(),
        application_name: t.application_name().into(),
    }
}

/// pgtrail's attribution marker for the client frame at offset `at`, as
/// `plan` says (`tracker::internal`): the bytes that go before and after
/// the frame. The marker goes as Bind and Execute of the session's marker
/// statement (Parse first, once per session, `PREPARED_SQL`), never with a
/// Sync of its own (`MarkerForm`); a wrapped write's as a Query string in
/// its block. Also says whether it prepares the statement.
pub(super) fn injection(
    t: &mut Tracker,
    signer: &MarkerSigner,
    plan: MarkerPlan,
    at: usize,
) -> (Injection, bool) {
    let marker = marker_of(t, plan);
    let wrapped = matches!(plan.form, MarkerForm::Wrapped | MarkerForm::WrappedCopy);
    let parse = !wrapped && t.marker_parse_needed();
    let name = MARKER_STATEMENT;
    // Before a Query, in the unnamed portal, which the Query replaces:
    // nothing to close. In a batch of the client's, in a portal of
    // pgtrail's: the client's unnamed one may be bound already.
    let prepared = |portal: &[u8]| -> Bytes {
        let content = signer.sign(&marker);
        let mut frames = Vec::with_capacity(4);
        if parse {
            let sql = MarkerSigner::PREPARED_SQL.as_bytes();
            frames.push(build::parse_typed(name, sql, &[BYTEA]));
        }
        frames.push(build::bind_binary(portal, name, &[&content]));
        frames.push(build::execute(portal));
        if !portal.is_empty() {
            frames.push(build::close_portal(portal));
        }
        frames.concat().into()
    };
    let (before, after): (Bytes, Bytes) = match plan.form {
        MarkerForm::Simple => (prepared(b""), Bytes::new()),
        MarkerForm::Extended => (prepared(name), Bytes::new()),
        MarkerForm::ExtendedAfter => (Bytes::new(), prepared(name)),
        MarkerForm::Wrapped => {
            let sql = signer.statement_sql(&marker);
            let after = [build::query(sql.as_bytes()), build::query(b"COMMIT")];
            (build::query(b"BEGIN"), after.concat().into())
        }
        // The end goes after the client's CopyDone (`Tracker::set_copy_end`).
        MarkerForm::WrappedCopy => (build::query(b"BEGIN"), Bytes::new()),
    };
    let replace = false;
    (
        Injection {
            at,
            before,
            after,
            replace,
        },
        parse,
    )
}

/// The type oid of `bytea`.
const BYTEA: u32 = 17;

/// The marker and `COMMIT` that end a wrapped COPY's block.
pub(super) fn copy_end(t: &Tracker, signer: Option<&MarkerSigner>, plan: MarkerPlan) -> Bytes {
    let Some(signer) = signer else {
        return Bytes::new();
    };
    let sql = signer.statement_sql(&marker_of(t, plan));
    [build::query(sql.as_bytes()), build::query(b"COMMIT")]
        .concat()
        .into()
}

/// The statement and portal name of the extended-protocol marker: a
/// control character no client names its statements with, so it never
/// meets one of theirs.
const MARKER_STATEMENT: &[u8] = b"\x01pgtrail_marker";

#[cfg(test)]
mod tests {
    use super::*;

    fn at(at: usize, before: &'static [u8], after: &'static [u8], replace: bool) -> Injection {
        Injection {
            at,
            before: Bytes::from_static(before),
            after: Bytes::from_static(after),
            replace,
        }
    }

    #[test]
    fn injections_go_before_their_frames_and_after_the_run() {
        let frames = b"PBDES";
        assert_eq!(&apply(frames, &[])[..], b"PBDES");
        let two = [at(3, b"m1", b"", false), at(4, b"m2", b"", false)];
        assert_eq!(&apply(frames, &two)[..], b"PBDm1Em2S");
        let last = [at(0, b"<", b"", false), at(4, b"[", b"]", false)];
        assert_eq!(&apply(frames, &last)[..], b"<PBDE[S]");
        let replaced = [at(1, b"m", b"", false), at(4, b"r", b"", true)];
        assert_eq!(&apply(frames, &replaced)[..], b"PmBDEr");
    }
}
