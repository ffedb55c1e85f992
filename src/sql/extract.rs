//! What a parser path extracts from one statement, before the kind-based
//! rules of [`analyze`](fn@super::analyze) turn it into the record's lists.

use super::kind::Kind;

/// Raw extraction result. Each name carries a sort key (source location
/// for pg_query, visit order for sqlparser) so output follows the text.
#[derive(Debug, Default, Clone)]
pub struct Extract {
    /// Relations read (FROM, JOIN, subqueries, USING, MERGE source, ...).
    pub reads: Vec<(i64, String)>,
    /// Targets of INSERT/UPDATE/DELETE/MERGE/COPY FROM/TRUNCATE, wherever
    /// they appear (data-modifying CTEs included).
    pub writes: Vec<(i64, String)>,
    /// DDL / DCL / maintenance targets (and SELECT INTO's new table).
    pub targets: Vec<(i64, String)>,
    pub functions: Vec<(i64, String)>,
    /// FOR UPDATE/SHARE anywhere, or LOCK.
    pub locking: bool,
    /// Kind of the first data-modifying statement met (for CTEs).
    pub nested_kind: Option<Kind>,
}

impl Extract {
    /// Sort each list by its key (stable).
    pub fn finish_sorted(&mut self) {
        self.reads.sort_by_key(|e| e.0);
        self.writes.sort_by_key(|e| e.0);
        self.targets.sort_by_key(|e| e.0);
        self.functions.sort_by_key(|e| e.0);
    }
}

/// Names without duplicates, in order.
pub fn dedup(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for it in items {
        if !it.is_empty() && !out.contains(&it) {
            out.push(it);
        }
    }
    out
}
