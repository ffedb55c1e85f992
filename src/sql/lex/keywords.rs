//! Keyword tests on tokens: a keyword by name, and the keywords that may
//! precede `(` without being a function name (normalisation spacing, the
//! keyword path's function heuristic).

use super::lexer::{Tok, Token};

/// Case-insensitive keyword comparison for an identifier token.
#[inline]
pub(crate) fn kw(src: &[u8], t: &Token, word: &str) -> bool {
    t.kind == Tok::Ident && src[t.start..t.end].eq_ignore_ascii_case(word.as_bytes())
}

const NOT_FUNCS: &[&str] = &[
    "in",
    "values",
    "as",
    "exists",
    "any",
    "all",
    "some",
    "over",
    "filter",
    "within",
    "using",
    "on",
    "and",
    "or",
    "not",
    "from",
    "join",
    "into",
    "table",
    "with",
    "select",
    "where",
    "when",
    "then",
    "else",
    "case",
    "lateral",
    "array",
    "row",
    "cast",
    "by",
    "set",
    "returning",
    "conflict",
    "default",
    "check",
    "key",
    "references",
    "unique",
    "include",
    "partition",
    "primary",
    "foreign",
    "options",
    "is",
    "like",
    "between",
    "window",
    "group",
    "order",
    "limit",
    "offset",
    "having",
    "union",
    "intersect",
    "except",
    "do",
    "update",
    "delete",
    "insert",
    "matched",
    "recursive",
    "cube",
    "rollup",
    "sets",
    "grouping",
    "collate",
    "distinct",
    "only",
    "if",
];

/// A keyword that may precede `(` without being a function name.
pub(crate) fn is_keyword_before_paren(word: &[u8]) -> bool {
    NOT_FUNCS
        .iter()
        .any(|w| word.eq_ignore_ascii_case(w.as_bytes()))
}
