//! Why a login was refused, typed: the audit record's reason text and the
//! `reason` label of `pgtrail_auth_failures_total` both come from it, so no
//! message text (PostgreSQL's is localised) is ever parsed back.

use std::fmt;

pub use crate::auth::PersonRefusal;
use crate::context::AuthFailureReason;

/// A refused login; the client has been told already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginRefused {
    /// pgtrail refused the person (proxy mode).
    Person(PersonRefusal),
    /// PostgreSQL refused the client's own login (passthrough).
    Server { sqlstate: String, message: String },
    /// PostgreSQL refused the role pgtrail logs in as for a person (proxy
    /// mode): a configuration matter, not the person's password.
    Role {
        role: String,
        sqlstate: String,
        message: String,
    },
}

impl LoginRefused {
    /// The metric label, from PostgreSQL's SQLSTATE where it refused.
    pub fn reason(&self) -> AuthFailureReason {
        match self {
            LoginRefused::Person(PersonRefusal::WrongPassword { .. }) => {
                AuthFailureReason::WrongPassword
            }
            LoginRefused::Person(PersonRefusal::UnknownUser) => AuthFailureReason::UnknownUser,
            LoginRefused::Person(PersonRefusal::DatabaseNotAllowed { .. }) => {
                AuthFailureReason::DatabaseNotAllowed
            }
            // 28P01 invalid_password; PostgreSQL also answers it for an
            // unknown role under password authentication.
            LoginRefused::Server { sqlstate, .. } if sqlstate == "28P01" => {
                AuthFailureReason::WrongPassword
            }
            LoginRefused::Server { .. } => AuthFailureReason::Other,
            LoginRefused::Role { .. } => AuthFailureReason::Upstream,
        }
    }
}

/// The `reason` of the audit record.
impl fmt::Display for LoginRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoginRefused::Person(PersonRefusal::WrongPassword { method }) => {
                write!(f, "wrong password ({method})")
            }
            LoginRefused::Person(PersonRefusal::UnknownUser) => f.write_str("unknown user"),
            LoginRefused::Person(PersonRefusal::DatabaseNotAllowed { database }) => {
                write!(f, "database \"{database}\" not allowed for this user")
            }
            LoginRefused::Server { message, .. } => f.write_str(message),
            LoginRefused::Role { role, message, .. } => {
                write!(f, "upstream refused role \"{role}\": {message}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_the_variant_and_the_sqlstate_not_the_text() {
        let server = |code: &str, message: &str| LoginRefused::Server {
            sqlstate: code.into(),
            message: message.into(),
        };
        // A localised message still counts as a wrong password.
        let german = server(
            "28P01",
            "Passwort-Authentifizierung für Benutzer fehlgeschlagen",
        );
        assert_eq!(german.reason(), AuthFailureReason::WrongPassword);
        assert_eq!(
            german.to_string(),
            "Passwort-Authentifizierung für Benutzer fehlgeschlagen"
        );
        assert_eq!(
            server("28000", "no pg_hba.conf entry").reason(),
            AuthFailureReason::Other
        );
        let person = LoginRefused::Person(PersonRefusal::WrongPassword { method: "md5" });
        assert_eq!(person.to_string(), "wrong password (md5)");
        assert_eq!(person.reason().label(), "wrong_password");
        let role = LoginRefused::Role {
            role: "app".into(),
            sqlstate: "28P01".into(),
            message: "password authentication failed for user \"app\"".into(),
        };
        assert_eq!(role.reason(), AuthFailureReason::Upstream);
        assert!(role
            .to_string()
            .starts_with("upstream refused role \"app\""));
    }
}
