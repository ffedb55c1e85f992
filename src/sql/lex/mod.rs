//! Bytes to tokens to statements: the one-pass lexer ([`lexer`]) and its
//! scanners ([`scan`]), keyword tests on tokens ([`keywords`]), and the
//! split into statements ([`split`]).

pub(crate) mod keywords;
pub(crate) mod lexer;
mod scan;
pub(crate) mod split;

pub(crate) use keywords::{is_keyword_before_paren, kw};
pub(crate) use lexer::{tokenize, LexOptions, Tok, Token};
pub(crate) use split::StmtSpan;

/// Byte ranges of the statements in a Query string, split as PostgreSQL
/// does (quotes, comments, parentheses and `BEGIN ATOMIC` bodies protect
/// semicolons; empty statements dropped; comments before a statement
/// belong to it).
pub fn statement_ranges(text: &[u8]) -> Vec<std::ops::Range<usize>> {
    let toks = tokenize(text, LexOptions::default());
    split::split(text, &toks)
        .into_iter()
        .map(|s| s.byte_start..s.byte_end)
        .collect()
}
