//! A cache hit's answer: the cached analyses, or copies of them with the
//! statement texts (after redaction) and fingerprints of the text sent.

use crate::sql::analysis::Analysis;
use crate::sql::analyzer::scratch::Scratch;
use crate::sql::fingerprint::redact::{self, Redaction};
use crate::sql::lex::{StmtSpan, Token};
use crate::sql::text::StatementText;
use std::sync::Arc;

/// Is `st` what [`StatementText::from_bytes`] makes of `red`? (Without
/// building it: an unescaped text is exactly its bytes.)
fn same_text(st: &StatementText, red: &[u8]) -> bool {
    if st.escaped {
        StatementText::from_bytes(red) == *st
    } else {
        st.text.as_bytes() == red
    }
}

/// The result of a hit, if the cached entry has the same normalised
/// statements (so a fingerprint collision is never a hit). The entry
/// itself when the statement texts (after redaction) are the same too;
/// otherwise copies with this text's statement text and fingerprints.
pub(super) fn answer_from(
    redaction: Redaction,
    text: &[u8],
    s: &Scratch,
    cached: &Arc<[Analysis]>,
) -> Option<Arc<[Analysis]>> {
    if cached.len() != s.stmts.len() {
        return None;
    }
    let mut from = 0;
    for (a, &(end, _)) in cached.iter().zip(&s.stmts) {
        if a.normalized.as_bytes() != &s.norm.as_bytes()[from..end] {
            return None;
        }
        from = end;
    }
    let fps = s.stmts.iter().map(|&(_, fp)| fp);
    Some(with_texts(redaction, text, &s.toks, &s.spans, fps, cached))
}

/// `cached` with this text's statement texts (after redaction) and
/// fingerprints `fps`: `cached` itself when they are all the same.
/// `spans` index `toks`; their byte ranges are taken from `toks`.
pub(super) fn with_texts(
    redaction: Redaction,
    text: &[u8],
    toks: &[Token],
    spans: &[StmtSpan],
    fps: impl Iterator<Item = u64> + Clone,
    cached: &Arc<[Analysis]>,
) -> Arc<[Analysis]> {
    let redacted = |span: &StmtSpan| {
        let st = &toks[span.tok_start..span.tok_end];
        let start = st.first().map_or(span.byte_start, |t| t.start);
        let end = st.last().map_or(span.byte_end, |t| t.end);
        redact::redact(text, st, start, end, redaction)
    };
    // the first statement whose text (or fingerprint) differs
    let mut diverge = None;
    for (i, ((a, span), fp)) in cached.iter().zip(spans).zip(fps.clone()).enumerate() {
        let red = redacted(span);
        if !(a.fingerprint == fp && same_text(&a.statement, &red)) {
            diverge = Some((i, red));
            break;
        }
    }
    let Some((first, red)) = diverge else {
        return cached.clone();
    };
    let mut first_red = Some(red);
    cached
        .iter()
        .zip(spans)
        .zip(fps)
        .enumerate()
        .map(|(i, ((a, span), fp))| {
            if i < first {
                return a.clone();
            }
            let red = match first_red.take() {
                Some(r) => r,
                None => redacted(span),
            };
            Analysis {
                kind: a.kind,
                class: a.class,
                crud: a.crud,
                audit_class: a.audit_class,
                objects_read: a.objects_read.clone(),
                objects_written: a.objects_written.clone(),
                functions: a.functions.clone(),
                parser: a.parser,
                parser_note: a.parser_note.clone(),
                fingerprint: fp,
                normalized: a.normalized.clone(),
                statement: StatementText::from_bytes(&red),
                locking: a.locking,
                object_type: a.object_type,
                explain_inner: a.explain_inner,
                explain_analyze: a.explain_analyze,
                cached: true,
                columns: a.columns.clone(),
            }
        })
        .collect()
}
