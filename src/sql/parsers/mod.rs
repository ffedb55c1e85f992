//! The three paths that extract objects and functions from one statement:
//! [`sqlparser`] (sqlparser-rs), [`pg_query`] (libpg_query, PostgreSQL's
//! own grammar) and [`keywords`] (token heuristics, for text PostgreSQL
//! rejects). Each yields an [`Extract`], which the kind-based rules of
//! [`analyze`](fn@crate::sql::analyze) turn into the record's lists.

pub(crate) mod keywords;
pub(crate) mod pg_query;
pub(crate) mod sqlparser;

use crate::sql::kind::Kind;

/// Why a parser declined a statement. `Display` gives the reason as
/// `parser_note` quotes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Declined {
    /// The parser (named) panicked; the panic was caught.
    Panicked(&'static str),
    /// The parser's own error message (a syntax error, mostly).
    Rejected(String),
    /// The parser (named) read this many statements instead of one.
    Statements(&'static str, usize),
    /// sqlparser read another statement type than the keyword classifier.
    OtherType(Kind),
    /// pg_query returned a statement without a node.
    Empty,
    /// pg_query's tree could not be converted (too deep).
    Tree(String),
}

impl std::fmt::Display for Declined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Declined::Panicked(parser) => write!(f, "{parser} panicked"),
            Declined::Rejected(msg) | Declined::Tree(msg) => f.write_str(msg),
            Declined::Statements(parser, n) => write!(f, "{parser} found {n} statements"),
            Declined::OtherType(kind) => write!(
                f,
                "sqlparser read a different statement type than {}",
                kind.as_str()
            ),
            Declined::Empty => f.write_str("empty statement"),
        }
    }
}

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
