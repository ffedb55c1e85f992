//! The uncached analysis of one text: the lexer pass ([`pre`]: split,
//! normalise, redact), the parser paths (here), and the kind-based rules
//! ([`rules`]) that turn what a path extracted into an [`Analysis`].

pub(crate) mod do_block;
pub(crate) mod pre;
mod rules;

use crate::sql::analysis::{Analysis, AnalyzerConfig, Parser};
use crate::sql::columns::{self, ColumnUse};
use crate::sql::kind::classify::{self, KwClass};
use crate::sql::kind::{objtype, Kind};
use crate::sql::lex::lexer::{self, Token};
use crate::sql::lex::split::StmtSpan;
use crate::sql::parsers::keywords as lexobj;
use crate::sql::parsers::pg_query as pgq;
use crate::sql::parsers::pg_query::tree::V;
use crate::sql::parsers::sqlparser as sqlp;
use crate::sql::parsers::Extract;
use pre::{lex_opts, prelex, significant, Pre};

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

/// The analysis of the statement `p` (its span indexes `toks`, the
/// tokens of `text`): keyword kind, a parser path, the kind rules.
pub(crate) fn complete(
    text: &[u8],
    toks: &[Token],
    p: Pre,
    cfg: &AnalyzerConfig,
    use_sqlparser: bool,
) -> Analysis {
    let span = p.span;
    let mut buf = Vec::new();
    let sig = significant(&toks[span.tok_start..span.tok_end], &mut buf);
    let kw = classify::classify(text, sig);
    let object_type = objtype::object_type(text, sig, kw.kind);
    let (parser, note, mut ex, tree) = match parse(text, span, kw, cfg, use_sqlparser) {
        Ok(parsed) => parsed,
        Err(note) => (
            Parser::Lexer,
            Some(note),
            lexobj::extract(text, sig, kw),
            None,
        ),
    };
    if kw.kind == Kind::Do {
        // Calls in the body by tokens (also when the body is not PL/pgSQL).
        for f in lexobj::body_functions(text, sig, 0) {
            ex.functions.push((i64::MAX, f));
        }
    }
    let mut columns = ColumnUse::default();
    // A column needs a relation: without one (`SELECT 1`, `SELECT now()`)
    // there is nothing to find, and no second parse to pay for.
    let names_relations = !(ex.reads.is_empty() && ex.writes.is_empty() && ex.targets.is_empty());
    if kw.kind == Kind::Do || (columns::wanted(kw) && names_relations) {
        let tree = tree.or_else(|| {
            let sql = std::str::from_utf8(&text[span.byte_start..span.byte_end]).ok()?;
            let parsed = parser != Parser::Lexer;
            parsed.then(|| pgq::tree(sql, cfg.standard_conforming_strings).ok())?
        });
        match tree {
            Some(tree) if kw.kind == Kind::Do => columns = do_block::merge(&tree, &mut ex, cfg),
            Some(tree) => columns = columns::of_statement(&tree, &[]),
            None => columns.note_unresolved("statement not parsed"),
        }
    }
    let mut a = rules::build(kw, parser, note, ex, p);
    a.object_type = object_type;
    a.columns = std::sync::Arc::new(columns);
    a
}

/// What a parser path gave: which one answered, why the ones before it
/// declined, what it extracted, and pg_query's tree when it answered.
type Parsed = (Parser, Option<String>, Extract, Option<V>);

/// The parser paths, sqlparser then pg_query; Err(why) when the
/// statement goes to the keyword path.
fn parse(
    text: &[u8],
    span: StmtSpan,
    kw: KwClass,
    cfg: &AnalyzerConfig,
    use_sqlparser: bool,
) -> Result<Parsed, String> {
    let bytes = &text[span.byte_start..span.byte_end];
    if bytes.len() > cfg.max_parse_bytes {
        return Err(format!(
            "statement of {} bytes exceeds max_parse_bytes ({})",
            bytes.len(),
            cfg.max_parse_bytes
        ));
    }
    if span.max_depth > cfg.max_nesting {
        return Err(format!(
            "nesting depth {} exceeds max_nesting ({})",
            span.max_depth, cfg.max_nesting
        ));
    }
    let sql = std::str::from_utf8(bytes).map_err(|_| "invalid UTF-8".to_string())?;
    let explain = kw.kind == Kind::Explain;
    let parse_kind = if explain { kw.inner } else { kw.kind };
    let first =
        if use_sqlparser && sqlp::eligible(parse_kind) && !(explain && kw.inner == Kind::Explain) {
            sqlp::extract(sql, parse_kind, explain).map_err(|e| format!("sqlparser: {e}"))
        } else {
            Err(format!(
                "sqlparser path not used for {}",
                parse_kind.as_str()
            ))
        };
    let n1 = match first {
        Ok(ex) => return Ok((Parser::Sqlparser, None, ex, None)),
        Err(n1) => n1,
    };
    match pgq::tree(sql, cfg.standard_conforming_strings) {
        Ok(tree) => {
            let ex = pgq::extract(&tree, kw.kind);
            Ok((Parser::PgQuery, Some(n1), ex, Some(tree)))
        }
        Err(n2) => Err(format!("{n1}; pg_query: {n2}")),
    }
}
