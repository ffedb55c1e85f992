//! The claim in force for a statement: its own comment first, then the
//! session's `pgtrail.*` settings (as scoped by `scope`), then the
//! `application_name` convention. Signed claims are verified once and the
//! verdict kept per session; only its expiry is checked again.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::comment::{self, CommentClaims};
use super::scope::{Settings, Value};
use super::setting::Slot;
use super::verify::{KeyError, Keys, Rejection, Rules, Verdict};
use super::{EndUser, Source};
use crate::audit::SessionInfo;
use crate::config::IdentityConfig;

/// What every session of a server shares: keys, rules, the roles that
/// must name a verified end user, counters.
#[derive(Debug)]
pub struct Identity {
    keys: Keys,
    rules: Rules,
    app_separator: Option<String>,
    require_verified: BTreeSet<String>,
    pub stats: IdentityStats,
}

/// Statements by the state of their claim, for `/metrics`.
#[derive(Debug, Default)]
pub struct IdentityStats {
    pub verified: AtomicU64,
    pub unsigned: AtomicU64,
    /// By [`Rejection::KINDS`].
    pub rejected: [AtomicU64; Rejection::KINDS.len()],
    /// Statements refused for want of a verified end user.
    pub refused: AtomicU64,
}

impl IdentityStats {
    fn count(&self, user: &EndUser, rejection: Option<&Rejection>) {
        let counter = match (user.end_user_source, user.end_user_verified, rejection) {
            (Source::None, ..) => return,
            (_, true, _) => &self.verified,
            (_, false, Some(r)) => {
                let i = Rejection::KINDS.iter().position(|k| *k == r.kind());
                match i.and_then(|i| self.rejected.get(i)) {
                    Some(c) => c,
                    None => return,
                }
            }
            (_, false, None) => &self.unsigned,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

impl Identity {
    /// `None` when claims are off.
    pub fn from_config(c: &IdentityConfig) -> Result<Option<Identity>, KeyError> {
        if !c.claims {
            return Ok(None);
        }
        let specs: Vec<_> = c.keys.iter().map(|k| k.spec()).collect();
        let keys = if specs.is_empty() {
            Keys::empty()
        } else {
            Keys::load(&specs)?
        };
        Ok(Some(Identity {
            keys,
            rules: Rules {
                audience: (!c.audience.is_empty()).then(|| c.audience.clone()),
                leeway_s: c.leeway_s,
                max_age_s: c.max_claim_age_s,
                subject_claim: c.subject_claim.clone(),
            },
            app_separator: (!c.application_name_separator.is_empty())
                .then(|| c.application_name_separator.clone()),
            require_verified: c
                .roles
                .iter()
                .filter(|(_, r)| r.require_verified_end_user)
                .map(|(name, _)| name.clone())
                .collect(),
            stats: IdentityStats::default(),
        }))
    }

    /// Whether this session's statements must name a verified end user:
    /// its database role or authenticated user is listed so.
    pub fn requires_verified(&self, s: &SessionInfo) -> bool {
        !self.require_verified.is_empty()
            && (self.require_verified.contains(&s.db_role)
                || self.require_verified.contains(&s.user))
    }
}

/// A verdict kept for a token or a comment signature.
struct Kept {
    key: String,
    verdict: Verdict,
}

/// How many verdicts a session keeps (a token per request would
/// otherwise grow it).
const KEPT: usize = 8;

/// One session's claims.
pub struct SessionClaims {
    verifier: Verifier,
    pub settings: Settings,
    /// The last claim built without a comment: reused while the settings
    /// and application name are the same and it has not expired.
    last: Option<Last>,
    /// The last comment's body and the claim built from it.
    last_comment: Option<(Vec<u8>, Last)>,
}

#[derive(Clone)]
struct Last {
    generation: u64,
    app: Arc<str>,
    expires_at: Option<u64>,
    user: Arc<EndUser>,
    /// Why it is not verified, for the counters of each statement that
    /// reuses it.
    rejection: Option<Rejection>,
}

impl SessionClaims {
    pub fn new(identity: Arc<Identity>, session: &SessionInfo) -> SessionClaims {
        let startup: Vec<(Slot, String)> = session
            .startup_identity
            .claims
            .iter()
            .filter_map(|(n, v)| Some((Slot::of_name(n.as_bytes())?, v.clone())))
            .collect();
        SessionClaims {
            verifier: Verifier {
                identity,
                kept: Vec::new(),
            },
            settings: Settings::with_startup(&startup),
            last: None,
            last_comment: None,
        }
    }

    pub fn identity(&self) -> &Arc<Identity> {
        &self.verifier.identity
    }

    /// The claim for a statement whose own text is `text`, run while the
    /// session's `application_name` was `app`; `now` reads the clock (Unix
    /// seconds), only when a kept claim may have expired or one is built.
    /// `may_comment`: the text holds `/*` at all (else no comment is
    /// looked for).
    pub fn claim(
        &mut self,
        text: &[u8],
        may_comment: bool,
        app: &Arc<str>,
        now: impl Fn() -> u64,
    ) -> Arc<EndUser> {
        let generation = self.settings.generation();
        let fresh = |l: &Last| {
            l.generation == generation
                && Arc::ptr_eq(&l.app, app)
                && l.expires_at.is_none_or(|e| now() <= e)
        };
        let body = if may_comment {
            comment::body(text)
        } else {
            None
        };
        let Some(body) = body else {
            if let Some(l) = self.last.as_ref().filter(|l| fresh(l)) {
                self.verifier
                    .identity
                    .stats
                    .count(&l.user, l.rejection.as_ref());
                return l.user.clone();
            }
            let last = self.build(None, app, now(), generation);
            self.last = Some(last.clone());
            return last.user;
        };
        // The same comment as the last statement's (a literal differs, the
        // claim mostly does not): its claim, without parsing it again.
        if let Some((_, l)) = self
            .last_comment
            .as_ref()
            .filter(|(b, l)| b.as_slice() == body && fresh(l))
        {
            self.verifier
                .identity
                .stats
                .count(&l.user, l.rejection.as_ref());
            return l.user.clone();
        }
        let c = comment::claims_of_body(body);
        let last = self.build(c.as_ref(), app, now(), generation);
        self.last_comment = Some((body.to_vec(), last.clone()));
        last.user
    }

    fn build(
        &mut self,
        c: Option<&CommentClaims>,
        app: &Arc<str>,
        now: u64,
        generation: u64,
    ) -> Last {
        let (mut user, expires_at, rejection) = self.verifier.end_user(&self.settings, c, app, now);
        let setting = |slot| self.settings.get(slot).map(|v: &Value| v.text.to_string());
        user.request_id = c
            .and_then(|c| c.request_id.clone())
            .or_else(|| setting(Slot::RequestId))
            .unwrap_or_default();
        user.trace_id = c
            .and_then(|c| c.traceparent.as_deref())
            .and_then(comment::trace_id)
            .or_else(|| {
                setting(Slot::Traceparent)
                    .as_deref()
                    .and_then(comment::trace_id)
            })
            .unwrap_or_default();
        self.verifier
            .identity
            .stats
            .count(&user, rejection.as_ref());
        Last {
            generation,
            app: app.clone(),
            expires_at,
            user: Arc::new(user),
            rejection,
        }
    }

    /// Whether a statement with own text `text` would run with a verified
    /// end user under `settings`; else why not. Counts nothing.
    pub fn verified_under(
        &mut self,
        settings: &Settings,
        text: &[u8],
        app: &str,
        now: u64,
    ) -> Result<(), String> {
        let c = comment::claims(text);
        let (user, _, rejection) = self.verifier.end_user(settings, c.as_ref(), app, now);
        match (user.end_user_verified, rejection) {
            (true, _) => Ok(()),
            (false, Some(r)) => Err(format!(
                "the claim of \"{}\" was rejected: {r}",
                user.end_user
            )),
            (false, None) if user.end_user.is_empty() => Err("no end user is claimed".into()),
            (false, None) => Err(format!("the claim of \"{}\" is not signed", user.end_user)),
        }
    }
}

/// The session's verdicts on signed claims, and the keys they are made
/// with: kept apart from the settings so a claim can be judged under the
/// session's settings or a prediction of them.
struct Verifier {
    identity: Arc<Identity>,
    kept: Vec<Kept>,
}

impl Verifier {
    /// Who is claimed under `settings` (the session's, or a prediction of
    /// them), from where, and the verdict: the expiry of a verified claim,
    /// the rejection of a refused one.
    fn end_user(
        &mut self,
        settings: &Settings,
        c: Option<&CommentClaims>,
        app: &str,
        now: u64,
    ) -> (EndUser, Option<u64>, Option<Rejection>) {
        let from_setting = |v: &Value| {
            if v.startup {
                Source::Startup
            } else {
                Source::Set
            }
        };
        if let Some(c) = c {
            if let Some(token) = &c.token {
                return self.verified_token(token, c.end_user.as_deref(), Source::Comment, now);
            }
            if let (Some(name), Some(sig), Some(ts)) = (&c.end_user, &c.signature, &c.timestamp) {
                let key = format!("{ts}\n{sig}\n{}\n{name}", c.key_id.as_deref().unwrap_or(""));
                let verdict = self.kept(key, |id| {
                    id.keys
                        .verify_comment(name, ts, sig, c.key_id.as_deref(), now, &id.rules)
                });
                return judged(verdict, Some(name), Source::Comment, now);
            }
            if let Some(name) = &c.end_user {
                return (unsigned(name, Source::Comment), None, None);
            }
        }
        if let Some(token) = settings.get(Slot::EndUserToken) {
            let plain = settings.get(Slot::EndUser).map(|v| v.text.to_string());
            return self.verified_token(&token.text, plain.as_deref(), from_setting(token), now);
        }
        if let Some(v) = settings.get(Slot::EndUser) {
            return (unsigned(&v.text, from_setting(v)), None, None);
        }
        if let Some(name) = self.application_name_claim(app) {
            return (unsigned(name, Source::ApplicationName), None, None);
        }
        (EndUser::default(), None, None)
    }

    fn verified_token(
        &mut self,
        token: &str,
        plain: Option<&str>,
        source: Source,
        now: u64,
    ) -> (EndUser, Option<u64>, Option<Rejection>) {
        let verdict = self.kept(token.to_string(), |id| {
            id.keys.verify_jwt(token, now, &id.rules)
        });
        judged(verdict, plain, source, now)
    }

    /// The verdict for `key`, verified once per session (bounded).
    fn kept(&mut self, key: String, verify: impl FnOnce(&Identity) -> Verdict) -> Verdict {
        if let Some(k) = self.kept.iter().find(|k| k.key == key) {
            return k.verdict.clone();
        }
        let verdict = verify(&self.identity);
        if self.kept.len() == KEPT {
            self.kept.remove(0);
        }
        self.kept.push(Kept {
            key,
            verdict: verdict.clone(),
        });
        verdict
    }

    fn application_name_claim<'a>(&self, app: &'a str) -> Option<&'a str> {
        let sep = self.identity.app_separator.as_deref()?;
        let (_, name) = app.rsplit_once(sep)?;
        (!name.is_empty()).then_some(name)
    }
}

fn unsigned(name: &str, source: Source) -> EndUser {
    EndUser {
        end_user: name.to_string(),
        end_user_source: source,
        end_user_reason: "not signed".into(),
        ..EndUser::default()
    }
}

/// A record's end user from a verdict (kept, so its expiry is checked
/// against `now` again).
fn judged(
    verdict: Verdict,
    plain: Option<&str>,
    source: Source,
    now: u64,
) -> (EndUser, Option<u64>, Option<Rejection>) {
    let rejected = |subject: Option<String>, reason: Rejection| {
        let user = EndUser {
            end_user: subject
                .or_else(|| plain.map(String::from))
                .unwrap_or_default(),
            end_user_source: source,
            end_user_reason: reason.to_string(),
            ..EndUser::default()
        };
        (user, None, Some(reason))
    };
    match verdict {
        Verdict::Verified {
            subject,
            expires_at,
            ..
        } => match expires_at.filter(|at| now > *at) {
            Some(at) => rejected(Some(subject), Rejection::Expired { at }),
            None => {
                let user = EndUser {
                    end_user: subject,
                    end_user_source: source,
                    end_user_verified: true,
                    ..EndUser::default()
                };
                (user, expires_at, None)
            }
        },
        Verdict::Rejected { subject, reason } => rejected(subject, reason),
    }
}
