//! The three paths that extract objects and functions from one statement:
//! [`sqlparser`] (sqlparser-rs), [`pg_query`] (libpg_query, PostgreSQL's
//! own grammar) and [`keywords`] (token heuristics, for text PostgreSQL
//! rejects). Each yields an [`Extract`], which the kind-based rules of
//! [`analyze`](fn@crate::sql::analyze) turn into the record's lists.

pub(crate) mod keywords;
pub(crate) mod pg_query;
pub(crate) mod sqlparser;

use crate::sql::kind::Kind;

/// Raw extraction result. Each name carries a sort key (source location
/// for pg_query, visit order for sqlparser) so output follows the text.
#[derive(Debug, Default, Clone)]
pub(crate) struct Extract {
    /// Relations read (FROM, JOIN, subqueries, USING, MERGE source, ...).
    pub(crate) reads: Vec<(i64, String)>,
    /// Targets of INSERT/UPDATE/DELETE/MERGE/COPY FROM/TRUNCATE, wherever
    /// they appear (data-modifying CTEs included).
    pub(crate) writes: Vec<(i64, String)>,
    /// DDL / DCL / maintenance targets (and SELECT INTO's new table).
    pub(crate) targets: Vec<(i64, String)>,
    pub(crate) functions: Vec<(i64, String)>,
    /// FOR UPDATE/SHARE anywhere, or LOCK.
    pub(crate) locking: bool,
    /// Kind of the first data-modifying statement met (for CTEs).
    pub(crate) nested_kind: Option<Kind>,
}

impl Extract {
    /// Sort each list by its key (stable).
    pub(crate) fn finish_sorted(&mut self) {
        self.reads.sort_by_key(|e| e.0);
        self.writes.sort_by_key(|e| e.0);
        self.targets.sort_by_key(|e| e.0);
        self.functions.sort_by_key(|e| e.0);
    }
}

/// Names without duplicates, in order.
pub(crate) fn dedup(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for it in items {
        if !it.is_empty() && !out.contains(&it) {
            out.push(it);
        }
    }
    out
}
