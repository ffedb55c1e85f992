//! Who made a decoded transaction's changes: the `pgtrail` messages inside
//! it, checked with the marker key. A verified marker attributes every
//! change of the transaction to its session; a message that fails the
//! check marks the changes `forged_marker` and attributes nothing.

use crate::audit::event::{Attribution, ChangeEvent};
use crate::cdc::marker::{self, Forged, Marker, MarkerSigner};

/// What the transaction's messages said so far.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Markers {
    /// The first verified marker.
    pub verified: Option<Marker>,
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
    /// Takes one transactional message of the transaction into account.
    pub fn message(&mut self, signer: &MarkerSigner, prefix: &str, content: &[u8]) -> Seen {
        if prefix != marker::PREFIX {
            return Seen::Foreign;
        }
        match signer.verify(content) {
            Ok(m) => {
                // Sessions leave one per transaction; a second (a client
                // replaying a captured marker) cannot change the first.
                self.verified.get_or_insert(m);
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
        match &self.verified {
            Some(m) => {
                change.attribution = Attribution::Transaction;
                change.transaction_id = Some(m.transaction_id);
                change.session_id.clone_from(&m.session_id);
                change.user.clone_from(&m.user);
                change.db_role.clone_from(&m.db_role);
                change.client_addr.clone_from(&m.client_addr);
                change.application_name.clone_from(&m.application_name);
            }
            None => change.attribution = Attribution::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::consumer::buffer::tests::change;
    use crate::cdc::marker::MarkerKey;

    fn marker(user: &str) -> Marker {
        Marker {
            transaction_id: uuid::Uuid::from_u128(77),
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
        assert_eq!(m.message(&s, "other", b"x"), Seen::Foreign);
        assert_eq!(
            m.message(&s, "pgtrail", &s.sign(&marker("alice"))),
            Seen::Verified
        );
        // A later marker does not replace the first.
        m.message(&s, "pgtrail", &s.sign(&marker("mallory")));
        let mut c = change(0);
        m.apply(&mut c);
        assert_eq!(c.attribution, Attribution::Transaction);
        assert_eq!(c.transaction_id, Some(uuid::Uuid::from_u128(77)));
        assert_eq!(
            (c.user.as_str(), c.db_role.as_str(), c.session_id.as_str()),
            ("alice", "app", "s1")
        );
        assert_eq!(
            (c.client_addr.as_str(), c.application_name.as_str()),
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
            m.message(&s, "pgtrail", &other_key),
            Seen::Forged(Forged::BadSignature)
        );
        assert_eq!(
            m.message(&s, "pgtrail", b"alice did it"),
            Seen::Forged(Forged::Malformed)
        );
        let mut c = change(0);
        m.apply(&mut c);
        assert_eq!(c.attribution, Attribution::None);
        assert!(c.forged_marker && c.user.is_empty());
        // With a genuine one beside it, the genuine one attributes and
        // the flag stays.
        m.message(&s, "pgtrail", &s.sign(&marker("alice")));
        let mut c = change(0);
        m.apply(&mut c);
        assert_eq!(c.attribution, Attribution::Transaction);
        assert!(c.forged_marker);
    }
}
