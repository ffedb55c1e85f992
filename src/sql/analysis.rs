//! What an analysis is: [`Analysis`] (one statement's classification, the
//! record contract's fields), [`Parser`] (which path answered) and
//! [`AnalyzerConfig`].

use crate::sql::fingerprint::redact::Redaction;
use crate::sql::kind::{AuditClass, Class, Crud, Kind};
use crate::sql::text::StatementText;

/// Analyzer settings.
#[derive(Debug, Clone)]
pub struct AnalyzerConfig {
    pub redaction: Redaction,
    /// Statements larger than this are only lexed (default 1 MiB).
    pub max_parse_bytes: usize,
    /// Cache capacity in texts (default 10,000; 0 disables the cache).
    pub cache_entries: usize,
    /// Statements with `(`/`[` nesting deeper than this are only lexed
    /// (default 200).
    pub max_nesting: usize,
    /// Texts larger than this are not cached (default 8 KiB). With
    /// `cache_entries` this bounds the cache's memory: an entry holds about
    /// three times its text (statement, normalised text, names), an
    /// exact-text entry a copy of the text and a template (texts up to 1
    /// KiB) the text and its tokens, and either may keep analyses alive
    /// that the first LRU evicted, so at most ~70 KiB x `cache_entries`
    /// (~700 MB worst case at the defaults, for adversarial 8 KiB texts; a
    /// few MB for typical application statements).
    pub cache_max_text_bytes: usize,
    /// `standard_conforming_strings` (default true).
    pub standard_conforming_strings: bool,
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        AnalyzerConfig {
            redaction: Redaction::None,
            max_parse_bytes: 1 << 20,
            cache_entries: 10_000,
            max_nesting: 200,
            cache_max_text_bytes: 8 << 10,
            standard_conforming_strings: true,
        }
    }
}

/// Which path classified the statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Parser {
    #[serde(rename = "sqlparser")]
    Sqlparser,
    #[serde(rename = "pg_query")]
    PgQuery,
    #[serde(rename = "lexer")]
    Lexer,
}

impl Parser {
    pub fn as_str(self) -> &'static str {
        match self {
            Parser::Sqlparser => "sqlparser",
            Parser::PgQuery => "pg_query",
            Parser::Lexer => "lexer",
        }
    }
}

/// Classification of one statement (the record contract's fields).
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Analysis {
    pub kind: Kind,
    pub class: Class,
    pub crud: Crud,
    pub audit_class: AuditClass,
    pub objects_read: Vec<String>,
    pub objects_written: Vec<String>,
    pub functions: Vec<String>,
    pub parser: Parser,
    /// Why earlier paths declined (None when sqlparser answered).
    pub parser_note: Option<String>,
    pub fingerprint: u64,
    pub normalized: String,
    pub statement: StatementText,
    /// SELECT ... FOR UPDATE/SHARE (anywhere) or LOCK.
    pub locking: bool,
    /// Type of the DDL/DCL/maintenance targets in `objects_written`
    /// (`table`, `index`, `function`, `schema`, `role`, ...); None for DML.
    pub object_type: Option<&'static str>,
    /// For EXPLAIN: the explained statement's kind and whether ANALYZE runs it.
    pub explain_inner: Option<Kind>,
    pub explain_analyze: bool,
    /// True when everything literal-independent (kind, objects, `parser`,
    /// `parser_note`, ...) came from [`Analyzer`](crate::sql::Analyzer)'s cache: `parser` and
    /// `parser_note` then describe the statement of the same shape (same
    /// fingerprint and normalised text) that was analyzed.
    pub cached: bool,
    /// Columns read and written as the text names them (see
    /// [`crate::sql::columns`]); shared by every hit of the shape.
    #[serde(skip)]
    pub columns: std::sync::Arc<crate::sql::columns::ColumnUse>,
}
