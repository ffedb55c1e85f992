//! The lexer pass of an analysis: per statement, the span, normalised
//! text, fingerprint and statement text after redaction ([`Pre`]).

use crate::sql::analysis::AnalyzerConfig;
use crate::sql::fingerprint::{normalize, redact};
use crate::sql::lex::lexer::{LexOptions, Token};
use crate::sql::lex::split::{self, StmtSpan};
use crate::sql::text::StatementText;

/// Per-statement result of the lexer pass (what the cache never stores).
pub(crate) struct Pre {
    pub(crate) span: StmtSpan,
    pub(crate) normalized: String,
    pub(crate) fingerprint: u64,
    pub(crate) statement: StatementText,
}

pub(crate) fn lex_opts(cfg: &AnalyzerConfig) -> LexOptions {
    LexOptions {
        standard_strings: cfg.standard_conforming_strings,
    }
}

pub(crate) fn prelex(text: &[u8], toks: &[Token], cfg: &AnalyzerConfig) -> Vec<Pre> {
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
pub(crate) fn make_pre(
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
pub(crate) fn significant<'a>(st: &'a [Token], buf: &'a mut Vec<Token>) -> &'a [Token] {
    if st.iter().any(|t| t.kind.is_trivia()) {
        buf.clear();
        buf.extend(st.iter().copied().filter(|t| !t.kind.is_trivia()));
        buf
    } else {
        st
    }
}
