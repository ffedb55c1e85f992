//! # SQL classification
//!
//! `analyze(text)` returns one [`Analysis`] per statement in a query text
//! (split at top-level `;` like PostgreSQL and psql, `BEGIN ATOMIC` bodies
//! kept whole): kind, class, CRUD letter, pgAudit class, relations read and
//! written, functions called, fingerprint, normalised text and the
//! statement text after redaction.
//!
//! ## Three paths
//! Every statement first goes through the token-level lexer (`lex/`: one pass,
//! never fails, works on bytes). It gives the kind from the leading
//! keywords (`kind/classify`), the normalised text and fingerprint, and
//! the redacted text (`fingerprint/`). Then, unless the statement is larger than
//! `max_parse_bytes`, nested deeper than `max_nesting` or not valid UTF-8:
//! 1. **sqlparser** (PostgreSqlDialect) for DML, queries, COPY, TRUNCATE,
//!    transaction control and session statements, with a custom visitor
//!    (CTE names are not tables, table functions are functions, nested
//!    INSERT/UPDATE/DELETE/MERGE are writes, SELECT INTO creates a table).
//!    Other kinds skip it (`parser_note` says so).
//! 2. **pg_query** (libpg_query, PostgreSQL 18's own grammar) for whatever
//!    sqlparser rejects or does not handle: its protobuf tree is turned into
//!    a compact generic tree through `serde` (`parsers/pg_query/tree`) and
//!    walked generically (`parsers/pg_query/walk`), so MERGE sources, RETURNING and FILTER
//!    subqueries are never missed, and DDL targets come from known fields.
//! 3. **lexer**: text PostgreSQL itself rejects (and the oversized,
//!    too-deep or non-UTF-8 cases) keeps the keyword kind and gets objects
//!    from a token heuristic (`parsers/keywords`); `parser_note` tells why the parsers declined.
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
//! whether each statement is valid UTF-8, within `max_parse_bytes` and
//! ends in an unterminated string, dollar quote, quoted identifier or
//! block comment, and of the bytes of literals whose escapes decide their
//! validity (`U&'...'`; `\x`, octal, `\u`, `\U` escapes): the lexer marks
//! such tokens as it scans them. Those decide whether a parser accepts a
//! statement (`PASSWORD 'x'` but not `PASSWORD 1`; `SELECT 'x'` but not
//! `SELECT 'x` nor `SELECT E'\xff'`), so texts differing there never share
//! an entry (nor a template).
//!
//! ## Cache
//! [`Analyzer`] keeps a bounded, sharded LRU (`cache_entries`, 16 mutexed
//! shards) keyed by the whole text's cache key (above), holding the analyses of
//! texts up to `cache_max_text_bytes`. In front of it, a second LRU of the
//! same capacity maps exact texts (seeded hash of the bytes, confirmed by
//! comparing them) to the analyses they got, so a text sent again (every
//! Execute of a prepared statement) costs one hash, no lexing; a text is
//! put there when it was analyzed or when its shape's entry was returned
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
//! and `parser_note`: they describe the first text of that shape analyzed
//! (`parser_note` may quote that text's literal in a parser's error),
//! and `Analysis::cached` is set on every hit. A hit allocates only what
//! the caller owns (the result's `Vec`s and `String`s when the text differs
//! from the cached one; nothing but a refcount when it is the same text):
//! tokens, spans and normalised texts go to per-thread buffers that are
//! reused, and the statement text is compared before it is copied.
//!
//! [`Analyzer::analyze_picked`] serves the audit path: it splits a Query
//! string once, lets the caller pick a statement by its byte range and
//! analyses that statement from the tokens already lexed, through the same
//! lookups as the statement's text alone.
//!
//! ## Modules
//! The sub-modules depend on each other in this order, never back:
//! `lex` < `fingerprint`, `kind` < `parsers`, `analysis` (with `text`) <
//! `analyze` < `analyzer`.
//! - `lex/`: bytes to tokens to statements
//!   - `lexer`: token kinds and the one-pass byte lexer
//!   - `scan`: the lexer's byte classes and scanners (strings, numbers,
//!     dollar quotes, ...)
//!   - `keywords`: keyword tests on tokens (`kw`, keywords before `(`)
//!   - `split`: splitting a text into statements (`StmtSpan`)
//! - `fingerprint/`: the texts computed from tokens alone
//!   - `normalize`: normalised text, fingerprint (FNV-1a 64)
//!   - `collapse`: IN/ARRAY/VALUES list collapsing for normalisation
//!   - `redact`: redaction of literals and credentials
//! - `kind/`: `Kind`, `Class`, `Crud`, `AuditClass`, and the keywords
//!   that give them
//!   - `words`: one statement's significant tokens, read word by word
//!   - `classify`: leading-keyword classifier (kind, EXPLAIN inner kind)
//!   - `objtype`: object types named by DDL/DCL keywords (`object_type`)
//! - `parsers/`: what a parser path extracts (`Extract`) and why one
//!   declines (`Declined`)
//!   - `sqlparser`: the sqlparser path and its visitor
//!   - `pg_query/`: the pg_query path (parse, target fix-ups); `tree`:
//!     protobuf to a compact generic tree; `nodes`: reading its nodes;
//!     `walk`: the generic walk
//!   - `keywords`: objects by token heuristics (lexer path, DO bodies)
//! - `analysis`: `Analysis`, `Parser`, `AnalyzerConfig`
//! - `columns/`: the columns a statement names and where each may come
//!   from (pg_query's tree, PostgreSQL's scoping), per shape, before the
//!   catalog resolves them (`crate::catalog`); `plpgsql`: the static
//!   statements of a PL/pgSQL body
//! - `text`: `StatementText` (lossless recorded text)
//! - `analyze/`: one uncached analysis (the parser paths); `pre`: the
//!   lexer pass (split, normalise, redact); `rules`: the kind rules that
//!   turn an `Extract` into an `Analysis`; `do_block`: a DO block's or a
//!   function's body analyzed, its objects and columns merged
//! - `analyzer/`: [`Analyzer`], the thread-safe analyzer with the cache
//!   - `cache`: bounded, sharded LRU (`u64` keys), seeded hashes
//!   - `template`: the cache's template entries (same tokens up to
//!     literals)
//!   - `answer`: a hit's answer (this text's statement texts)
//!   - `scratch`: the per-thread buffers
//! - `tests/` (tests): the statement table (`cases`, `cases_ddl`), table,
//!   kinds, paths and cache (`analyze`), properties over statement
//!   templates (`props`), robustness and the pg_query corpus oracle
//!   (`robust`), one statement of a Query string (`picked`), texts ending
//!   unterminated against valid ones of the same shape (`unterminated`)
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

pub(crate) mod analysis;
pub(crate) mod analyze;
pub(crate) mod analyzer;
pub mod columns;
pub(crate) mod fingerprint;
pub(crate) mod kind;
pub(crate) mod lex;
pub(crate) mod parsers;
pub(crate) mod text;

#[cfg(test)]
mod tests;

pub use analysis::{Analysis, AnalyzerConfig, Parser};
pub use analyze::do_block::{body_use, BodyUse};
pub use analyze::{analyze, analyze_pg_query_only};
pub use analyzer::cache::CacheStats;
pub use analyzer::Analyzer;
pub use fingerprint::redact::Redaction;
pub use kind::{AuditClass, Class, Crud, Kind};
pub use lex::statement_ranges;
pub use text::StatementText;
