//! Who made a decoded transaction's changes: the `pgtrail` messages inside
//! it, checked with the marker key. A marker speaks for the changes decoded
//! between the previous marker and itself: for one statement when its
//! boundary names it (`attribution = statement`), else for the transaction.
//! Changes after the last marker are the statement a `Before` marker names
//! for them, which the writer still checks against the transaction's end
//! (`statement_claimed`), else the transaction's. A message that fails the
//! check, or verified markers naming different transactions (a captured
//! marker replayed), mark the changes `forged_marker` and attribute
//! nothing.

use crate::audit::event::{Attribution, ChangeEvent};
use crate::cdc::marker::{self, Forged, Marker, MarkerSigner};

/// What the transaction's messages said so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Markers {
    /// The markers that verified, each with the number of changes decoded
    /// before it.
    verified: Vec<(u32, Marker)>,
    /// Messages with pgtrail's prefix that did not verify.
    pub forged: u32,
}

/// What one transactional message was to attribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// Another prefix: not pgtrail's business.
    Foreign,
    Verified,
    Forged(Forged),
}

impl Markers {
    /// Takes one transactional message of the transaction into account;
    /// `changes_before` changes of it were decoded before the message.
    pub fn message(
        &mut self,
        signer: &MarkerSigner,
        prefix: &str,
        content: &[u8],
        changes_before: u32,
    ) -> Seen {
        if prefix != marker::PREFIX {
            return Seen::Foreign;
        }
        match signer.verify(content) {
            Ok(m) => {
                let same_txn = self
                    .verified
                    .first()
                    .is_none_or(|(_, first)| first.transaction_id == m.transaction_id);
                if !same_txn {
                    self.forged += 1;
                    return Seen::Forged(Forged::Replayed);
                }
                self.verified.push((changes_before, m));
                Seen::Verified
            }
            Err(f) => {
                self.forged += 1;
                Seen::Forged(f)
            }
        }
    }

    /// Fills in `change`'s attribution fields.
    pub fn apply(&self, change: &mut ChangeEvent) {
        change.forged_marker = self.forged > 0;
        let Some((_, first)) = self.verified.first() else {
            change.attribution = Attribution::None;
            return;
        };
        if self
            .verified
            .iter()
            .any(|(_, m)| m.transaction_id != first.transaction_id)
        {
            change.attribution = Attribution::None;
            return;
        }
        // The first marker decoded after the change speaks for it; after
        // the last one, that marker's claim on what follows it.
        let speaker = self
            .verified
            .iter()
            .find(|(before, _)| *before > change.change_index)
            .map(|(_, m)| m);
        let m = speaker.unwrap_or(first);
        (change.statement_index, change.statement_claimed) = match speaker {
            Some(m) => (m.boundary.statement(), false),
            None => {
                let next = self.verified.last().and_then(|(_, m)| m.boundary.next());
                (next, next.is_some())
            }
        };
        change.attribution = match change.statement_index {
            Some(_) => Attribution::Statement,
            None => Attribution::Transaction,
        };
        change.transaction_id = Some(m.transaction_id);
        change.session_id = m.session_id.clone();
        change.user = m.user.clone();
        change.db_role = m.db_role.clone();
        change.client_addr = m.client_addr.clone();
        change.application_name = m.application_name.clone();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::consumer::buffer::tests::change;
    use crate::cdc::marker::{Boundary, MarkerKey};

    fn marker(user: &str) -> Marker {
        Marker {
            transaction_id: uuid::Uuid::from_u128(77),
            boundary: Boundary::End(None),
            session_id: "s1".into(),
            user: user.into(),
            db_role: "app".into(),
            client_addr: "10.0.0.7".into(),
            application_name: "billing".into(),
        }
    }

    fn signer(k: u8) -> MarkerSigner {
        MarkerSigner::new(MarkerKey::from_bytes([k; 32]))
    }

    #[test]
    fn no_message_attributes_nothing() {
        let mut c = change(0);
        Markers::default().apply(&mut c);
        assert_eq!(c.attribution, Attribution::None);
        assert!(!c.forged_marker && c.transaction_id.is_none() && c.user.is_empty());
    }

    #[test]
    fn a_verified_marker_names_the_session() {
        let s = signer(1);
        let mut m = Markers::default();
        assert_eq!(m.message(&s, "other", b"x", 0), Seen::Foreign);
        assert_eq!(
            m.message(&s, "pgtrail", &s.sign(&marker("alice")), 1),
            Seen::Verified
        );
        // A later marker of the same transaction speaks for the changes
        // after the first's, not for change 0.
        m.message(&s, "pgtrail", &s.sign(&marker("mallory")), 2);
        let mut c = change(0);
        m.apply(&mut c);
        assert_eq!(c.attribution, Attribution::Transaction);
        assert_eq!(c.transaction_id, Some(uuid::Uuid::from_u128(77)));
        assert_eq!(
            (&*c.user, &*c.db_role, &*c.session_id),
            ("alice", "app", "s1")
        );
        assert_eq!(
            (&*c.client_addr, &*c.application_name),
            ("10.0.0.7", "billing")
        );
        assert!(!c.forged_marker);
    }

    #[test]
    fn a_forged_marker_is_flagged_and_never_attributes() {
        let s = signer(1);
        let mut m = Markers::default();
        let other_key = signer(2).sign(&marker("mallory"));
        assert_eq!(
            m.message(&s, "pgtrail", &other_key, 0),
            Seen::Forged(Forged::BadSignature)
        );
        assert_eq!(
            m.message(&s, "pgtrail", b"alice did it", 0),
            Seen::Forged(Forged::Malformed)
        );
        let mut c = change(0);
        m.apply(&mut c);
        assert_eq!(c.attribution, Attribution::None);
        assert!(c.forged_marker && c.user.is_empty());
        // With a genuine one beside it, the genuine one attributes and
        // the flag stays.
        m.message(&s, "pgtrail", &s.sign(&marker("alice")), 0);
        let mut c = change(0);
        m.apply(&mut c);
        assert_eq!(c.attribution, Attribution::Transaction);
        assert!(c.forged_marker);
    }

    #[test]
    fn each_marker_speaks_for_the_changes_before_it() {
        let s = signer(1);
        let mut m = Markers::default();
        let at = |user: &str, boundary| Marker {
            boundary,
            ..marker(user)
        };
        // Changes 0 and 1, then statement 1's marker; change 2, then an
        // inexact one; change 3, then the end naming nothing; change 4
        // after every marker.
        m.message(
            &s,
            "pgtrail",
            &s.sign(&at("a", Boundary::After(Some(1)))),
            2,
        );
        m.message(&s, "pgtrail", &s.sign(&at("a", Boundary::After(None))), 3);
        m.message(&s, "pgtrail", &s.sign(&at("a", Boundary::End(Some(5)))), 4);
        let got: Vec<_> = (0..6)
            .map(|i| {
                let mut c = change(i);
                m.apply(&mut c);
                (c.attribution, c.statement_index)
            })
            .collect();
        use Attribution::{Statement, Transaction};
        assert_eq!(
            got,
            [
                (Statement, Some(1)),
                (Statement, Some(1)),
                (Transaction, None),
                (Statement, Some(5)),
                (Transaction, None),
                (Transaction, None)
            ]
        );
    }

    #[test]
    fn a_before_marker_ends_the_writes_before_it_and_claims_those_after() {
        let s = signer(1);
        let mut m = Markers::default();
        let before = Boundary::Before {
            done: Some(1),
            next: Some(3),
        };
        m.message(
            &s,
            "pgtrail",
            &s.sign(&Marker {
                boundary: before,
                ..marker("a")
            }),
            1,
        );
        let got: Vec<_> = (0..3)
            .map(|i| {
                let mut c = change(i);
                m.apply(&mut c);
                (c.attribution, c.statement_index, c.statement_claimed)
            })
            .collect();
        assert_eq!(
            got,
            [
                (Attribution::Statement, Some(1), false),
                (Attribution::Statement, Some(3), true),
                (Attribution::Statement, Some(3), true),
            ]
        );
    }

    #[test]
    fn markers_of_another_transaction_are_a_replay() {
        let s = signer(1);
        let mut m = Markers::default();
        m.message(&s, "pgtrail", &s.sign(&marker("alice")), 0);
        let other = Marker {
            transaction_id: uuid::Uuid::from_u128(78),
            ..marker("alice")
        };
        assert_eq!(
            m.message(&s, "pgtrail", &s.sign(&other), 0),
            Seen::Forged(Forged::Replayed)
        );
        let mut c = change(0);
        m.apply(&mut c);
        assert!(c.forged_marker);
    }
}
