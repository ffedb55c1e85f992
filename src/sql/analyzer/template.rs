//! Template entries of [`crate::sql::Analyzer`]'s cache: a text with its tokens
//! and statement spans, matched by another text with the same tokens up to
//! literal values (of the same grammar class; the same bytes for literals
//! whose escapes decide their validity) and comments.

use crate::sql::analysis::Analysis;
use crate::sql::analyzer::cache;
use crate::sql::fingerprint::normalize::literal_class;
use crate::sql::lex::StmtSpan;
use crate::sql::lex::Token;
use std::sync::Arc;

/// Texts up to this size and token count also get a template entry (text
/// and tokens, at most ~7 KiB).
pub(super) const TEMPLATE_MAX_BYTES: usize = 1 << 10;
pub(super) const TEMPLATE_MAX_TOKENS: usize = 256;

/// A text analyzed (or answered by its shape's entry) with its tokens and
/// statement spans: another text with the same tokens but for the values
/// of its string and number literals has the same normalised statements
/// and fingerprints, so it takes the analyses without normalising again.
pub(super) struct Template {
    pub(super) text: Box<[u8]>,
    pub(super) toks: Box<[Token]>,
    pub(super) spans: Box<[StmtSpan]>,
    /// `Analyzer::span_flags` of each statement.
    pub(super) flags: Box<[u8]>,
    pub(super) analyses: Arc<[Analysis]>,
}

impl Template {
    /// Same tokens as `toks` of `text`, up to literal values and comments?
    pub(super) fn matches(&self, text: &[u8], toks: &[Token]) -> bool {
        self.toks.len() == toks.len()
            && self.toks.iter().zip(toks).all(|(r, t)| {
                let (rb, tb) = (&self.text[r.start..r.end], &text[t.start..t.end]);
                r.kind == t.kind
                    && if r.kind.is_literal() {
                        literal_class(rb, r.kind) == literal_class(tb, t.kind)
                            && r.escapes == t.escapes
                            && (!r.escapes || rb == tb)
                    } else {
                        r.kind.is_trivia() || rb == tb
                    }
            })
    }
}

/// Key of a text's template: its token kinds and the bytes of every token
/// but literals and comments, laid out in `buf`, through the seeded
/// [`cache::text_hash`] (collisions only cost a failed [`Template::matches`]).
pub(super) fn template_key(seed: u64, text: &[u8], toks: &[Token], buf: &mut Vec<u8>) -> u64 {
    buf.clear();
    for t in toks {
        buf.push(t.kind as u8);
        if !(t.kind.is_literal() || t.kind.is_trivia()) {
            buf.extend_from_slice(text.get(t.start..t.end).unwrap_or_default());
        }
    }
    cache::text_hash(seed, buf)
}
