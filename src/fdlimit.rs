//! The file descriptor budget: each session holds two descriptors (client
//! and upstream), so `max_connections` sessions need twice that plus a
//! reserve for listeners, admin connections, the audit file, spool
//! segments, ClickHouse and cancel connections. At start the soft
//! `RLIMIT_NOFILE` is raised to the hard limit; a limit that still cannot
//! hold the budget stops the start with an error naming both numbers,
//! because running on would refuse clients with `accept failed: Too many
//! open files` at a load the configuration promised to serve.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

use crate::config::Config;

/// Descriptors kept for everything but sessions: the admin listener's
/// connection cap, and 64 for listeners, stdio, the audit file, spool
/// segments and markers, ClickHouse and forwarded cancel requests.
pub const RESERVE: u64 = crate::admin::MAX_CONNECTIONS as u64 + 64;

/// What `max_connections` needs.
pub fn needed(config: &Config) -> u64 {
    (config.max_connections as u64)
        .saturating_mul(2)
        .saturating_add(RESERVE)
}

/// The open file limit cannot hold `max_connections` sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdLimitError {
    /// The soft limit in force, after raising it as far as allowed.
    pub limit: u64,
    /// What the configuration needs ([`needed`]).
    pub needed: u64,
    pub max_connections: usize,
}

impl std::fmt::Display for FdLimitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the open file limit is {}, but max_connections = {} needs {} (2 per session + {RESERVE} reserved): raise the hard limit (ulimit -Hn, LimitNOFILE= in systemd, --ulimit nofile= in Docker) or lower max_connections",
            self.limit, self.max_connections, self.needed
        )
    }
}

impl std::error::Error for FdLimitError {}

/// Raises the soft limit to the hard one and checks the budget; the limit
/// now in force on success.
pub fn raise_and_check(config: &Config) -> Result<u64, FdLimitError> {
    let limit = getrlimit(Resource::Nofile);
    let soft = match limit.maximum {
        // No hard limit, or one above the soft: take all of it.
        hard if hard != limit.current => {
            let raised = Rlimit {
                current: hard,
                maximum: hard,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => hard,
                Err(e) => {
                    tracing::warn!(error = %e, soft = ?limit.current, hard = ?hard, "could not raise the open file limit (RLIMIT_NOFILE) to the hard limit");
                    limit.current
                }
            }
        }
        _ => limit.current,
    };
    let Some(soft) = soft else {
        return Ok(u64::MAX);
    };
    let need = needed(config);
    if soft < need {
        return Err(FdLimitError {
            limit: soft,
            needed: need,
            max_connections: config.max_connections,
        });
    }
    tracing::info!(open_file_limit = soft, needed = need, "file descriptors");
    Ok(soft)
}
