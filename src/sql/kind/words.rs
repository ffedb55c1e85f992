//! [`Words`]: one statement's significant tokens with their source, as the
//! keyword classifier and the object-type lookup read them.

use crate::sql::lex::{Tok, Token};

/// Significant tokens of one statement plus its source.
pub(crate) struct Words<'a> {
    pub(crate) src: &'a [u8],
    pub(crate) toks: &'a [Token],
}

impl Words<'_> {
    #[inline]
    pub(crate) fn is(&self, i: usize, w: &str) -> bool {
        self.toks.get(i).is_some_and(|t| {
            t.kind == Tok::Ident && self.src[t.start..t.end].eq_ignore_ascii_case(w.as_bytes())
        })
    }
    #[inline]
    pub(crate) fn kind_at(&self, i: usize) -> Option<Tok> {
        self.toks.get(i).map(|t| t.kind)
    }
    /// Index of the first depth-0 identifier among `words`, from `from`.
    pub(crate) fn find0(&self, from: usize, words: &[&str]) -> Option<usize> {
        let mut depth = 0i64;
        for (k, t) in self.toks.iter().enumerate().skip(from) {
            match t.kind {
                Tok::LParen | Tok::LBracket => depth += 1,
                Tok::RParen | Tok::RBracket => depth -= 1,
                Tok::Ident if depth == 0 && words.iter().any(|w| self.is(k, w)) => return Some(k),
                _ => {}
            }
        }
        None
    }
}
