//! `require_verified_end_user`: a statement of such a role runs only with
//! a verified end user, its own (a signed comment) or the session's (a
//! verified `pgtrail.end_user_token`). Transaction control and settings
//! (`BEGIN`, `COMMIT`, `SET`, `RESET`, `SHOW`, `DISCARD`, a `SELECT` that
//! only calls `set_config`) need none: they are how a claim is made.
//!
//! The check is made when the client's Query, Execute or function call
//! arrives, so it goes by the settings the server has confirmed, plus the
//! claims set earlier in the same Query string or batch (an error there
//! skips the rest, so those count). Claims set in batches still in flight
//! do not count until their ReadyForQuery: one of them may yet fail and be
//! undone. A refused message is replaced by a statement that fails on the
//! server with SQLSTATE 28000 (`relay::inject`), so the server's
//! transaction fails exactly as the client is told it did.

use bytes::Bytes;

use super::internal::Step;
use super::queue::Expect;
use super::{words, Tracker};
use crate::audit::event::TxnStatus;
use crate::identity::scope::Settings;
use crate::identity::setting;
use crate::protocol::{frontend, tag};

/// A client message refused for want of a verified end user: the message
/// the server is made to fail with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub message: String,
}

impl Tracker {
    /// Whether this client message is refused. Called once per frame,
    /// before `client_frame`; a refused frame then goes through
    /// `refusal_sent`.
    pub fn end_user_refusal(&mut self, tag: u8, body: &[u8]) -> Option<Refusal> {
        let failed_block = self.txn_status == TxnStatus::Failed && self.expected.is_empty();
        if !self.require_verified || failed_block {
            // In a failed block the server refuses everything anyway.
            return None;
        }
        // Each statement of the message, with its bind parameters as text.
        let texts: Vec<(Bytes, Vec<Option<String>>)> = match tag {
            tag::frontend::QUERY => {
                let text = Bytes::copy_from_slice(frontend::query(body).ok()?);
                crate::sql::lex::statement_ranges(&text)
                    .into_iter()
                    .map(|r| (text.slice(r), Vec::new()))
                    .collect()
            }
            tag::frontend::EXECUTE => {
                let e = frontend::execute(body).ok()?;
                let portal = self.portals.get(e.portal)?;
                vec![(portal.shared_text(), portal.param_texts())]
            }
            tag::frontend::FUNCTION_CALL => {
                vec![(Bytes::from_static(b"fastpath function call"), Vec::new())]
            }
            _ => return None,
        };
        let mut settings = self.predicted_settings(tag == tag::frontend::EXECUTE);
        let app = self.application_name.clone();
        let now = crate::identity::unix_now();
        let session = self.session.clone();
        let claims = self.transactions.claims_mut()?;
        for (text, params) in texts {
            if exempt(&text, &params) {
                predict(&mut settings, &text, &params);
                continue;
            }
            if let Err(why) = claims.verified_under(&settings, &text, &app, now) {
                let role = &session.db_role;
                let message = format!(
                    "pgtrail: statement refused: role \"{role}\" must name a verified end user, and {why}"
                );
                claims
                    .identity()
                    .stats
                    .refused
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Some(Refusal { message });
            }
        }
        None
    }

    /// A refused Execute goes to the server as Close, Parse, Bind and
    /// Execute of pgtrail's failing statement: their first three answers
    /// are swallowed, the error answers the client's Execute.
    pub fn refusal_sent(&mut self, tag: u8) {
        if tag == tag::frontend::EXECUTE {
            for step in [Step::RefuseClose, Step::RefuseParse, Step::RefuseBind] {
                self.expected.push_back(Expect::Internal(step));
            }
        }
    }

    /// The settings a new message will run under, as far as can be
    /// counted on: the confirmed ones, or none at all when a batch in
    /// flight may change them or end a transaction; for an Execute, with
    /// the claims its own batch set before it.
    fn predicted_settings(&self, execute: bool) -> Settings {
        let Some(claims) = self.transactions.claims() else {
            return Settings::default();
        };
        let batch_start = if execute {
            self.expected
                .iter()
                .rposition(|e| {
                    matches!(
                        e,
                        Expect::Sync | Expect::Simple { .. } | Expect::FunctionCall { .. }
                    )
                })
                .map_or(0, |i| i + 1)
        } else {
            self.expected.len()
        };
        let text = |e: &Expect| match e {
            Expect::Simple { text, .. } => Some((text.clone(), Vec::new())),
            Expect::Execute { text, params, .. } => Some((
                text.clone(),
                super::queue::params_as_text(params.as_deref().map(|p| &p[..])),
            )),
            _ => None,
        };
        let risky = self
            .expected
            .iter()
            .take(batch_start)
            .filter_map(text)
            .any(|(t, _)| may_move_claims(&t));
        let mut settings = if risky {
            Settings::default()
        } else {
            claims.settings.clone()
        };
        for (t, params) in self.expected.iter().skip(batch_start).filter_map(text) {
            predict(&mut settings, &t, &params);
        }
        settings
    }
}

/// Statements that make claims or control transactions.
fn exempt(text: &[u8], params: &[Option<String>]) -> bool {
    words::is_claim_control(text) || setting::only_sets_claims(text, params)
}

/// What a statement of the batch being judged does to the settings,
/// assuming it succeeds. A transaction's end is taken as a rollback
/// unless it is a COMMIT, so no claim is counted that may be gone.
fn predict(settings: &mut Settings, text: &[u8], params: &[Option<String>]) {
    for change in setting::changes(text, params) {
        settings.apply(&change, 1);
    }
    if words::ends_transaction(text) {
        settings.end_transaction(true);
    } else if words::rolls_back(text) {
        settings.end_transaction(false);
    }
}

/// A Query string or statement in flight that may change the settings
/// before the message being judged runs.
fn may_move_claims(text: &[u8]) -> bool {
    crate::sql::lex::statement_ranges(text)
        .into_iter()
        .any(|r| {
            let t = &text[r];
            setting::mentions_claim(t) || words::may_end_or_reset(t)
        })
}
