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

/// An identifier token's name as PostgreSQL folds it: unquoted, ASCII
/// letters to lower case; `"a""b"` as `a"b`. `None` for other tokens and
/// for `U&"..."`, whose escapes are not decoded here.
pub(crate) fn identifier(src: &[u8], t: &Token) -> Option<Vec<u8>> {
    let b = &src[t.start..t.end];
    match t.kind {
        Tok::Ident => Some(b.to_ascii_lowercase()),
        Tok::QIdent if b.len() >= 2 && b[0] == b'"' => {
            let inner = &b[1..b.len() - 1];
            let mut out = Vec::with_capacity(inner.len());
            let mut i = 0;
            while i < inner.len() {
                out.push(inner[i]);
                // `""` stands for one `"`.
                i += if inner[i] == b'"' && inner.get(i + 1) == Some(&b'"') {
                    2
                } else {
                    1
                };
            }
            Some(out)
        }
        _ => None,
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_fold_as_postgresql_folds_them() {
        let src = br#"SaVe "A""b" U&"x" 'str'"#;
        let names: Vec<Option<Vec<u8>>> = tokenize(src, LexOptions::default())
            .iter()
            .map(|t| identifier(src, t))
            .collect();
        assert_eq!(
            names,
            [Some(b"save".to_vec()), Some(b"A\"b".to_vec()), None, None]
        );
    }
}
