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
//! The fingerprint of a whole text (the cache key) is FNV-1a 64 over the
//! little-endian bytes of its statements' fingerprints.
//!
//! ## Cache
//! [`Analyzer`] keeps a bounded, sharded LRU (`cache_entries`, 16 mutexed
//! shards) keyed by the whole text's fingerprint, holding the analyses of
//! texts up to `cache_max_text_bytes`. A lookup costs one lexer pass; a hit
//! is confirmed by comparing normalised texts (so a fingerprint collision
//! cannot return another statement's analysis) and the per-call parts
//! (statement text after redaction) are always recomputed from the text
//! actually sent. Hit/miss counters are `AtomicU64`. No global state.
//! Everything literal-independent comes from the entry, including `parser`
//! and `parser_note`: they describe the first text of that shape analysed.
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

pub mod cache;
pub mod classify;
pub mod extract;
pub mod kind;
pub mod lexer;
pub mod lexobj;
pub mod normalize;
pub mod pgq;
pub mod redact;
pub mod split;
pub mod sqlp;
pub mod text;
pub mod tree;

#[cfg(test)]
mod cases;
#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;

pub use cache::CacheStats;
pub use classify::KwClass;
pub use kind::{AuditClass, Class, Crud, Kind};
pub use redact::Redaction;
pub use text::StatementText;

use extract::{dedup, Extract};
use lexer::{LexOptions, Tok, Token};
use normalize::Fnv;
use split::StmtSpan;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
    /// three times its text (statement, normalised text, names), so at most
    /// ~25 KiB x `cache_entries` (~250 MB worst case at the defaults; a few
    /// MB for typical application statements).
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
}

/// Per-statement result of the lexer pass (what the cache never stores).
struct Pre {
    span: StmtSpan,
    normalized: String,
    fingerprint: u64,
    statement: StatementText,
}

fn lex_opts(cfg: &AnalyzerConfig) -> LexOptions {
    LexOptions {
        standard_strings: cfg.standard_conforming_strings,
    }
}

fn prelex(text: &[u8], toks: &[Token], cfg: &AnalyzerConfig) -> Vec<Pre> {
    let spans = split::split(text, toks);
    let mut buf: Vec<Token> = Vec::new();
    spans
        .into_iter()
        .map(|span| {
            let st = &toks[span.tok_start..span.tok_end];
            let sig = significant(st, &mut buf);
            let (normalized, fingerprint) = normalize::normalize_sig(text, sig);
            let red = redact::redact(text, st, span.byte_start, span.byte_end, cfg.redaction);
            Pre {
                span,
                normalized,
                fingerprint,
                statement: StatementText::from_bytes(&red),
            }
        })
        .collect()
}

/// The non-comment tokens of `st` (borrowed when there is no comment).
fn significant<'a>(st: &'a [Token], buf: &'a mut Vec<Token>) -> &'a [Token] {
    if st.iter().any(|t| t.kind.is_trivia()) {
        buf.clear();
        buf.extend(st.iter().copied().filter(|t| !t.kind.is_trivia()));
        buf
    } else {
        st
    }
}

fn text_fingerprint(pre: &[Pre]) -> u64 {
    let mut h = Fnv::new();
    for p in pre {
        h.bytes(&p.fingerprint.to_le_bytes());
    }
    h.0
}

/// Uncached analysis of a query text: one entry per statement, in order.
pub fn analyze(text: &[u8], cfg: &AnalyzerConfig) -> Vec<Analysis> {
    let toks = lexer::tokenize(text, lex_opts(cfg));
    let pre = prelex(text, &toks, cfg);
    pre.into_iter()
        .map(|p| complete(text, &toks, p, cfg, true))
        .collect()
}

/// Like [`analyze`] but never uses sqlparser (the pg_query oracle).
pub fn analyze_pg_query_only(text: &[u8], cfg: &AnalyzerConfig) -> Vec<Analysis> {
    let toks = lexer::tokenize(text, lex_opts(cfg));
    let pre = prelex(text, &toks, cfg);
    pre.into_iter()
        .map(|p| complete(text, &toks, p, cfg, false))
        .collect()
}

fn complete(
    text: &[u8],
    toks: &[Token],
    p: Pre,
    cfg: &AnalyzerConfig,
    use_sqlparser: bool,
) -> Analysis {
    let span = p.span;
    let bytes = &text[span.byte_start..span.byte_end];
    let mut buf = Vec::new();
    let sig = significant(&toks[span.tok_start..span.tok_end], &mut buf);
    let kw = classify::classify(text, sig);
    let object_type = classify::object_type(text, sig, kw.kind);
    let parse_kind = if kw.kind == Kind::Explain {
        kw.inner
    } else {
        kw.kind
    };
    let sqlp_ok = use_sqlparser
        && sqlp::eligible(parse_kind)
        && !(kw.kind == Kind::Explain && kw.inner == Kind::Explain);
    let (parser, note, ex) = if bytes.len() > cfg.max_parse_bytes {
        let n = format!(
            "statement of {} bytes exceeds max_parse_bytes ({})",
            bytes.len(),
            cfg.max_parse_bytes
        );
        (Parser::Lexer, Some(n), lexobj::extract(text, sig, kw))
    } else if span.max_depth > cfg.max_nesting {
        let n = format!(
            "nesting depth {} exceeds max_nesting ({})",
            span.max_depth, cfg.max_nesting
        );
        (Parser::Lexer, Some(n), lexobj::extract(text, sig, kw))
    } else {
        match std::str::from_utf8(bytes) {
            Err(_) => (
                Parser::Lexer,
                Some("invalid UTF-8".to_string()),
                lexobj::extract(text, sig, kw),
            ),
            Ok(sql) => {
                let first = if sqlp_ok {
                    sqlp::extract(sql, parse_kind, kw.kind == Kind::Explain)
                        .map_err(|e| format!("sqlparser: {e}"))
                } else {
                    Err(format!(
                        "sqlparser path not used for {}",
                        parse_kind.as_str()
                    ))
                };
                match first {
                    Ok(ex) => (Parser::Sqlparser, None, ex),
                    Err(n1) => match pgq::extract(sql, kw.kind, cfg.standard_conforming_strings) {
                        Ok(ex) => (Parser::PgQuery, Some(n1), ex),
                        Err(n2) => (
                            Parser::Lexer,
                            Some(format!("{n1}; pg_query: {n2}")),
                            lexobj::extract(text, sig, kw),
                        ),
                    },
                }
            }
        }
    };
    let mut ex = ex;
    if kw.kind == Kind::Do {
        // PL/pgSQL is not parsed: find calls in the body by tokens
        for f in lexobj::body_functions(text, sig, 0) {
            ex.functions.push((i64::MAX, f));
        }
    }
    let mut a = build(kw, parser, note, ex, p);
    a.object_type = object_type;
    a
}

/// Statements whose nested DML is not executed now.
fn non_executing(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Prepare | Kind::CreateRule | Kind::CreateFunction | Kind::CreateProcedure
    )
}

fn names(v: Vec<(i64, String)>) -> impl Iterator<Item = String> {
    v.into_iter().map(|e| e.1)
}

fn build(kw: KwClass, parser: Parser, note: Option<String>, ex: Extract, p: Pre) -> Analysis {
    let kind = kw.kind;
    let mut class = kind.class();
    let mut crud = kind.crud();
    let mut audit = kind.audit_class();
    let has_writes = !ex.writes.is_empty();
    let locking = ex.locking || kind == Kind::Lock;
    let (objects_read, objects_written);
    if kind == Kind::Explain && !kw.explain_analyze {
        objects_read = dedup(
            names(ex.reads)
                .chain(names(ex.writes))
                .chain(names(ex.targets)),
        );
        objects_written = Vec::new();
    } else if non_executing(kind) {
        objects_read = dedup(names(ex.reads).chain(names(ex.writes)));
        objects_written = dedup(names(ex.targets));
    } else {
        let eff = if kind == Kind::Explain {
            kw.inner
        } else {
            kind
        };
        if kind == Kind::Explain {
            class = eff.class();
            crud = eff.crud();
            audit = eff.audit_class();
        }
        if eff == Kind::Select && has_writes {
            let nk = ex.nested_kind.unwrap_or(Kind::Insert);
            class = Class::Write;
            crud = nk.crud();
            audit = AuditClass::Write;
        }
        objects_read = dedup(names(ex.reads));
        objects_written = dedup(names(ex.targets).chain(names(ex.writes)));
    }
    Analysis {
        kind,
        class,
        crud,
        audit_class: audit,
        objects_read,
        objects_written,
        functions: dedup(names(ex.functions)),
        parser,
        parser_note: note,
        fingerprint: p.fingerprint,
        normalized: p.normalized,
        statement: p.statement,
        locking,
        object_type: None,
        explain_inner: (kind == Kind::Explain).then_some(kw.inner),
        explain_analyze: kw.explain_analyze,
    }
}

/// What the cache stores for one text.
#[derive(Clone)]
struct Entry {
    analyses: Arc<[Analysis]>,
}

/// Thread-safe analyser with a bounded cache (`Send + Sync`).
pub struct Analyzer {
    cfg: AnalyzerConfig,
    cache: cache::Cache<Entry>,
    /// Statements parsed by pg_query and by the lexer path (`/metrics`).
    fallback_pg_query: AtomicU64,
    fallback_lexer: AtomicU64,
}

impl Analyzer {
    pub fn new(cfg: AnalyzerConfig) -> Self {
        let cache = cache::Cache::new(cfg.cache_entries);
        Analyzer {
            cfg,
            cache,
            fallback_pg_query: AtomicU64::new(0),
            fallback_lexer: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &AnalyzerConfig {
        &self.cfg
    }

    /// Analyse a text, using the cache keyed by the fingerprint of the
    /// whole text (one lexer pass per call).
    pub fn analyze(&self, text: &[u8]) -> Arc<[Analysis]> {
        let toks = lexer::tokenize(text, lex_opts(&self.cfg));
        let pre = prelex(text, &toks, &self.cfg);
        let cacheable = self.cfg.cache_entries > 0 && text.len() <= self.cfg.cache_max_text_bytes;
        let key = text_fingerprint(&pre);
        if cacheable {
            if let Some(e) = self.cache.get(key) {
                let same = e.analyses.len() == pre.len()
                    && e.analyses
                        .iter()
                        .zip(&pre)
                        .all(|(a, p)| a.normalized == p.normalized);
                if same {
                    self.cache.hit();
                    if e.analyses
                        .iter()
                        .zip(&pre)
                        .all(|(a, p)| a.statement == p.statement)
                    {
                        return e.analyses;
                    }
                    return e
                        .analyses
                        .iter()
                        .zip(pre)
                        .map(|(a, p)| Analysis {
                            kind: a.kind,
                            class: a.class,
                            crud: a.crud,
                            audit_class: a.audit_class,
                            objects_read: a.objects_read.clone(),
                            objects_written: a.objects_written.clone(),
                            functions: a.functions.clone(),
                            parser: a.parser,
                            parser_note: a.parser_note.clone(),
                            fingerprint: p.fingerprint,
                            normalized: p.normalized,
                            statement: p.statement,
                            locking: a.locking,
                            object_type: a.object_type,
                            explain_inner: a.explain_inner,
                            explain_analyze: a.explain_analyze,
                        })
                        .collect();
                }
            }
            self.cache.miss();
        }
        let out: Arc<[Analysis]> = pre
            .into_iter()
            .map(|p| complete(text, &toks, p, &self.cfg, true))
            .collect();
        for a in out.iter() {
            match a.parser {
                Parser::Sqlparser => {}
                Parser::PgQuery => _ = self.fallback_pg_query.fetch_add(1, Ordering::Relaxed),
                Parser::Lexer => _ = self.fallback_lexer.fetch_add(1, Ordering::Relaxed),
            }
        }
        if cacheable {
            self.cache.put(
                key,
                Entry {
                    analyses: out.clone(),
                },
            );
        }
        out
    }

    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            fallback_pg_query: self.fallback_pg_query.load(Ordering::Relaxed),
            fallback_lexer: self.fallback_lexer.load(Ordering::Relaxed),
            ..self.cache.stats()
        }
    }
}

/// Significant tokens of a text (helper for tests and tools).
pub fn significant_tokens(text: &[u8]) -> Vec<Token> {
    lexer::tokenize(text, LexOptions::default())
        .into_iter()
        .filter(|t| !t.kind.is_trivia())
        .collect()
}

/// True if the lexer sees any literal in `text` (used by redaction tests).
pub fn has_literal(text: &[u8]) -> bool {
    lexer::tokenize(text, LexOptions::default())
        .iter()
        .any(|t| t.kind == Tok::Str || t.kind == Tok::Num)
}

/// Byte ranges of the statements in a Query string, split as PostgreSQL
/// does (quotes, comments, parentheses and `BEGIN ATOMIC` bodies protect
/// semicolons; empty statements dropped; comments before a statement
/// belong to it).
pub fn statement_ranges(text: &[u8]) -> Vec<std::ops::Range<usize>> {
    let toks = lexer::tokenize(text, LexOptions::default());
    split::split(text, &toks)
        .into_iter()
        .map(|s| s.byte_start..s.byte_end)
        .collect()
}
