//! The person behind a service account: end-user claims an application
//! makes in its traffic, recorded beside the authenticated identity (which
//! a claim never replaces), verified when the application signs them.
//!
//! Claims come from a statement's sqlcommenter comment, from the
//! `pgtrail.*` settings (`SET`, `SET LOCAL`, `set_config`, startup
//! `options`), scoped as PostgreSQL scopes them, and from an
//! `application_name` convention when configured. No I/O here: the session
//! tracker feeds statements in and stamps each event with the claim in
//! force.

use serde::{Deserialize, Serialize};

/// Where a record's end user came from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// No claim.
    #[default]
    None,
    /// A sqlcommenter comment on the statement itself.
    Comment,
    /// `SET pgtrail.end_user` / `SET LOCAL` / `set_config` in the session.
    Set,
    /// `options=-c pgtrail.end_user=...` in the StartupMessage.
    Startup,
    /// The configured `application_name` convention.
    ApplicationName,
}

impl Source {
    pub const ALL: [Source; 5] = [
        Source::None,
        Source::Comment,
        Source::Set,
        Source::Startup,
        Source::ApplicationName,
    ];

    /// The name records use (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            Source::None => "none",
            Source::Comment => "comment",
            Source::Set => "set",
            Source::Startup => "startup",
            Source::ApplicationName => "application_name",
        }
    }

    /// The value of ClickHouse's `Enum8` column (none is 0, the default).
    pub fn code(self) -> i8 {
        self as i8
    }

    pub fn from_name(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.name() == name)
    }
}

/// The end user a record names, and how far pgtrail trusts it. In JSON
/// every field is left out while it holds its default.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct EndUser {
    /// Who the application says acts; empty: nobody claimed.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub end_user: String,
    #[serde(skip_serializing_if = "is_none")]
    pub end_user_source: Source,
    /// A signature from a configured key covers the claim, and it has not
    /// expired.
    #[serde(skip_serializing_if = "is_false")]
    pub end_user_verified: bool,
    /// Why a claim is not verified (`not signed`, `token expired at ...`);
    /// empty when verified or when there is no claim.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub end_user_reason: String,
    /// The application's request id (`request_id` in a comment, or
    /// `pgtrail.request_id`).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub request_id: String,
    /// The W3C trace id (32 hex digits) of a `traceparent`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub trace_id: String,
}

fn is_none(s: &Source) -> bool {
    *s == Source::None
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Now, in Unix seconds: what token expiries and comment timestamps are
/// compared with.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl EndUser {
    /// Nothing claimed: every field at its default.
    pub fn is_empty(&self) -> bool {
        *self == EndUser::default()
    }
}

mod claims;
pub mod comment;
pub mod scope;
pub mod setting;
pub mod verify;

pub use claims::{Identity, IdentityStats, SessionClaims};
