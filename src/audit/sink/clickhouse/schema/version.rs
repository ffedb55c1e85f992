//! The ClickHouse server version, and what each version has that the DDL
//! and the INSERT settings depend on.

/// A ClickHouse server version, from `SELECT version()` (e.g. `18.16.1`,
/// `24.8.4.13`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    /// The oldest version the modern schema needs (DateTime64, codecs, TTL,
    /// skip indexes without experimental settings).
    pub const MODERN: ServerVersion = ServerVersion {
        major: 20,
        minor: 1,
    };
    /// The version whose DDL `pgtrail schema` prints by default.
    pub const DEFAULT: ServerVersion = ServerVersion {
        major: 24,
        minor: 8,
    };

    /// `major.minor[.anything]`.
    pub fn parse(s: &str) -> Option<ServerVersion> {
        let mut parts = s.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
        Some(ServerVersion { major, minor })
    }

    pub fn is_modern(self) -> bool {
        self >= Self::MODERN
    }

    /// `Bool` exists from 21.12; before that booleans are `UInt8` (same bytes).
    pub(super) fn has_bool(self) -> bool {
        self >= ServerVersion {
            major: 21,
            minor: 12,
        }
    }

    /// The `async_insert` setting exists from 21.11; pgtrail sets it to 0
    /// there (it batches itself and wants the insert acknowledged when stored).
    pub fn has_async_insert(self) -> bool {
        self >= ServerVersion {
            major: 21,
            minor: 11,
        }
    }

    /// The `insert_deduplication_token` setting exists from 22.2.
    pub fn has_dedup_token(self) -> bool {
        self >= ServerVersion {
            major: 22,
            minor: 2,
        }
    }

    /// `non_replicated_deduplication_window` (a MergeTree setting) exists
    /// from 20.10; replicated tables always have a window.
    pub(super) fn has_dedup_window(self) -> bool {
        self >= ServerVersion {
            major: 20,
            minor: 10,
        }
    }
}

impl std::fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            ServerVersion::parse("18.16.1"),
            Some(ServerVersion {
                major: 18,
                minor: 16
            })
        );
        assert!(ServerVersion::parse("24.8.4.13").unwrap().is_modern());
        assert!(!ServerVersion::parse("19.17").unwrap().is_modern());
        assert!(ServerVersion::parse("20.1").unwrap().is_modern());
        assert_eq!(ServerVersion::parse("x"), None);
    }
}
