//! The uncached analysis of one text: lexer pass (split, normalise,
//! redact), the parser paths, and the kind-based rules that turn what a
//! path extracted into an [`Analysis`].

use crate::sql::analysis::{Analysis, AnalyzerConfig, Parser};
use crate::sql::fingerprint::normalize;
use crate::sql::fingerprint::redact;
use crate::sql::kind::classify::{self, KwClass};
use crate::sql::kind::{objtype, Kind};
use crate::sql::kind::{AuditClass, Class};
use crate::sql::lex::lexer::{self, LexOptions, Token};
use crate::sql::lex::split::{self, StmtSpan};
use crate::sql::parsers::keywords as lexobj;
use crate::sql::parsers::pg_query as pgq;
use crate::sql::parsers::sqlparser as sqlp;
use crate::sql::parsers::{dedup, Extract};
use crate::sql::text::StatementText;

/// Per-statement result of the lexer pass (what the cache never stores).
pub(super) struct Pre {
    pub(super) span: StmtSpan,
    pub(super) normalized: String,
    pub(super) fingerprint: u64,
    pub(super) statement: StatementText,
}

pub(super) fn lex_opts(cfg: &AnalyzerConfig) -> LexOptions {
    LexOptions {
        standard_strings: cfg.standard_conforming_strings,
    }
}

pub(super) fn prelex(text: &[u8], toks: &[Token], cfg: &AnalyzerConfig) -> Vec<Pre> {
    let spans = split::split(text, toks);
    let mut buf: Vec<Token> = Vec::new();
    spans
        .into_iter()
        .map(|span| {
            let st = &toks[span.tok_start..span.tok_end];
            let sig = significant(st, &mut buf);
            let (normalized, fingerprint) = normalize::normalize_sig(text, sig);
            make_pre(text, st, span, normalized, fingerprint, cfg)
        })
        .collect()
}

/// A [`Pre`] from the normalised text and fingerprint already computed
/// (`st`: the statement's tokens, trivia included).
pub(super) fn make_pre(
    text: &[u8],
    st: &[Token],
    span: StmtSpan,
    normalized: String,
    fingerprint: u64,
    cfg: &AnalyzerConfig,
) -> Pre {
    let red = redact::redact(text, st, span.byte_start, span.byte_end, cfg.redaction);
    Pre {
        span,
        normalized,
        fingerprint,
        statement: StatementText::from_bytes(&red),
    }
}

/// The non-comment tokens of `st` (borrowed when there is no comment).
pub(super) fn significant<'a>(st: &'a [Token], buf: &'a mut Vec<Token>) -> &'a [Token] {
    if st.iter().any(|t| t.kind.is_trivia()) {
        buf.clear();
        buf.extend(st.iter().copied().filter(|t| !t.kind.is_trivia()));
        buf
    } else {
        st
    }
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

pub(super) fn complete(
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
    let object_type = objtype::object_type(text, sig, kw.kind);
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
        cached: false,
    }
}
