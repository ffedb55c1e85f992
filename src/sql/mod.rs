//! # SQL classification
//!
//! `analyze(text)` returns one [`Analysis`] per statement in a query text
//! (split at top-level `;` like PostgreSQL and psql, `BEGIN ATOMIC` bodies
//! kept whole): kind, class, CRUD letter, pgAudit class, relations read and
//! written, functions called, fingerprint, normalised text and the
//! statement text after redaction.
//!
//! ## Three paths
//! Every statement first goes through the token-level [`lexer`] (one pass,
//! never fails, works on bytes). It gives the kind from the leading
//! keywords (`classify::classify`), the normalised text and fingerprint, and
//! the redacted text. Then, unless the statement is larger than
//! `max_parse_bytes`, nested deeper than `max_nesting` or not valid UTF-8:
//! 1. **sqlparser** (PostgreSqlDialect) for DML, queries, COPY, TRUNCATE,
//!    transaction control and session statements, with a custom visitor
//!    (CTE names are not tables, table functions are functions, nested
//!    INSERT/UPDATE/DELETE/MERGE are writes, SELECT INTO creates a table).
//!    Other kinds skip it (`parser_note` says so).
//! 2. **pg_query** (libpg_query, PostgreSQL 18's own grammar) for whatever
//!    sqlparser rejects or does not handle: its protobuf tree is turned into
//!    a compact generic tree through `serde` ([`tree`]) and walked
//!    generically ([`pgq`]), so MERGE sources, RETURNING and FILTER
//!    subqueries are never missed, and DDL targets come from known fields.
//! 3. **lexer**: text PostgreSQL itself rejects (and the oversized,
//!    too-deep or non-UTF-8 cases) keeps the keyword kind and gets objects
//!    from a token heuristic; `parser_note` tells why the parsers declined.
//!
//! The kind always comes from the keyword classifier, so all paths agree on
//! it; EXPLAIN ANALYZE of DML takes the class of the DML, plain EXPLAIN and
//! PREPARE report the inner statement's relations as read only; a SELECT
//! whose CTE modifies data is a write.
//!
//! Objects are names as written (unquoted parts folded to lower case,
//! quoted ones verbatim, without the quotes), deduplicated, in text order:
//! relations for DML; for DDL/DCL the target (the table for indexes,
//! triggers, rules, policies and statistics; the object's own name
//! otherwise, e.g. function, schema, role). `functions` lists calls as
//! written (`pg_catalog.pg_read_file` stays qualified); SQL-syntax forms that
//! PostgreSQL's grammar turns into expressions (COALESCE, ROW(), EXTRACT,
//! ...) are not calls; DO blocks' PL/pgSQL bodies, and SQL strings inside
//! them, are scanned for calls by tokens.
//!
//! ## Fingerprint
//! FNV-1a 64 (offset 0xcbf29ce484222325, prime 0x100000001b3) over the
//! normalised token stream: comments and whitespace dropped, literals and
//! `$n` parameters become one placeholder tag, IN/ARRAY lists and VALUES
//! rows of one shape collapse to their first element, unquoted identifiers
//! and keywords are ASCII-lower-cased; each token contributes a tag byte,
//! its bytes (none for placeholders) and 0xFF. No keys, no randomness: the
//! value is stable across runs, machines and versions of this crate unless
//! this algorithm is changed (which would be a record-contract migration).
//! The cache key of a whole text is FNV-1a 64 over the little-endian bytes
//! of its statements' fingerprints, then of a signature of its literals'
//! grammar classes (string, bit, hex, national, int4, other number) and of
//! whether each statement is valid UTF-8 and within `max_parse_bytes`:
//! those decide whether a parser accepts a statement (`PASSWORD 'x'` but
//! not `PASSWORD 1`), so texts differing there never share an entry.
//!
//! ## Cache
//! [`Analyzer`] keeps a bounded, sharded LRU (`cache_entries`, 16 mutexed
//! shards) keyed by the whole text's cache key (above), holding the analyses of
//! texts up to `cache_max_text_bytes`. In front of it, a second LRU of the
//! same capacity maps exact texts (seeded hash of the bytes, confirmed by
//! comparing them) to the analyses they got, so a text sent again (every
//! Execute of a prepared statement) costs one hash, no lexing; a text is
//! put there when it was analysed or when its shape's entry was returned
//! as is. A third LRU holds templates (texts up to 1 KiB with their tokens):
//! a text whose tokens equal a template's but for the values of literals
//! of the same classes and comments takes its analyses after one lexer
//! pass, without splitting or normalising. Otherwise a lookup costs one
//! lexer pass and normalisation; a hit
//! is confirmed by comparing normalised texts (so a fingerprint collision
//! cannot return another statement's analysis) and the per-call parts
//! (statement text after redaction) are always recomputed from the text
//! actually sent. Hit/miss counters are `AtomicU64`. No global state.
//! Everything literal-independent comes from the entry, including `parser`
//! and `parser_note`: they describe the first text of that shape analysed
//! (`parser_note` may quote that text's literal in a parser's error),
//! and `Analysis::cached` is set on every hit. A hit allocates only what
//! the caller owns (the result's `Vec`s and `String`s when the text differs
//! from the cached one; nothing but a refcount when it is the same text):
//! tokens, spans and normalised texts go to per-thread buffers that are
//! reused, and the statement text is compared before it is copied.
//!
//! ## Modules
//! - `analyze`: the uncached analysis (lexer pass, parser paths, kind rules)
//! - `analyzer`: [`Analyzer`], the thread-safe analyser with the cache
//! - `cache`: bounded, sharded LRU (`u64` keys), seeded hashes
//! - `classify`: leading-keyword classifier (kind, EXPLAIN inner kind)
//! - `collapse`: IN/ARRAY/VALUES list collapsing for normalisation
//! - `extract`: what a parser path extracts (`Extract`), `dedup`
//! - `kind`: `Kind`, `Class`, `Crud`, `AuditClass`
//! - `lexer`: token kinds and the one-pass byte lexer
//! - `lexscan`: the lexer's scanners (strings, numbers, dollar quotes, ...)
//! - `lexobj`: objects by token heuristics (lexer path, DO bodies)
//! - `normalize`: normalised text, fingerprint (FNV-1a 64)
//! - `objtype`: object types named by DDL/DCL keywords (`object_type`)
//! - `pgq`: the pg_query path (parse, tree helpers, target fix-ups)
//! - `pgq_walk`: the generic walk of pg_query's tree
//! - `redact`: redaction of literals and credentials
//! - `split`: splitting a text into statements
//! - `sqlp`: the sqlparser path and its visitor
//! - `template`: the cache's template entries (same tokens up to literals)
//! - `text`: `StatementText` (lossless recorded text)
//! - `tree`: pg_query protobuf to a compact generic tree
//! - `cases`, `cases_ddl` (tests): the statement table, DML and DDL halves
//! - `tests` (tests): table, kinds, paths and cache tests
//! - `robust_tests` (tests): robustness and the pg_query corpus oracle
//! - `props` (tests): property tests over statement templates
//!
//! ## Robustness
//! No `unwrap` on input-derived data, parsers run under `catch_unwind`,
//! sqlparser's recursion limit is 50 and its `recursive-protection`
//! feature grows the stack when needed (debug builds on 2 MiB threads),
//! pg_query's protobuf decoding stops at depth 100 (such trees go to the
//! lexer path), and statements nested deeper than `max_nesting` or larger
//! than `max_parse_bytes` never reach a parser. Lexer, splitter and
//! normaliser are linear (list collapsing has a work budget).
//! Recorded text is lossless: valid UTF-8 is kept as is, otherwise every
//! backslash is doubled and each invalid byte written `\xNN`, with
//! `StatementText::escaped` set.

pub mod analyze;
pub mod analyzer;
pub mod cache;
pub mod classify;
mod collapse;
pub mod extract;
pub mod kind;
pub(crate) mod lex;
pub mod lexobj;
pub mod normalize;
pub mod objtype;
pub mod pgq;
mod pgq_walk;
pub mod redact;
pub mod sqlp;
mod template;
pub mod text;
pub mod tree;

#[cfg(test)]
mod cases;
#[cfg(test)]
mod cases_ddl;
#[cfg(test)]
mod props;
#[cfg(test)]
mod robust_tests;
#[cfg(test)]
mod tests;

pub use analyze::{analyze, analyze_pg_query_only};
pub use analyzer::Analyzer;
pub use cache::CacheStats;
pub use classify::KwClass;
pub use kind::{AuditClass, Class, Crud, Kind};
pub use lex::statement_ranges;
pub use redact::Redaction;
pub use text::StatementText;

/// Analyser settings.
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
    /// `parser_note`, ...) came from [`Analyzer`]'s cache: `parser` and
    /// `parser_note` then describe the statement of the same shape (same
    /// fingerprint and normalised text) that was analysed.
    pub cached: bool,
}
