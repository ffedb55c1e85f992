//! Splitting a text into statements.

use super::keywords::kw as word;
use super::lexer::{Tok, Token};

/// One statement inside a text: token index range and byte range, from its
/// first non-whitespace token (comments before it belong to it) to its last
/// (comments before the terminating `;` included, the `;` excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StmtSpan {
    pub(crate) tok_start: usize,
    pub(crate) tok_end: usize,
    pub(crate) byte_start: usize,
    pub(crate) byte_end: usize,
    /// Deepest nesting of `(`/`[`.
    pub(crate) max_depth: usize,
}

/// Split a token stream into statements at top-level `;`, as PostgreSQL
/// and psql do (parentheses and `BEGIN ATOMIC ... END` bodies protect
/// semicolons). Empty statements are dropped.
pub(crate) fn split(src: &[u8], toks: &[Token]) -> Vec<StmtSpan> {
    let mut out = Vec::new();
    split_into(src, toks, &mut out);
    out
}

/// [`split`] into a reused buffer (cleared first).
pub(crate) fn split_into(src: &[u8], toks: &[Token], out: &mut Vec<StmtSpan>) {
    out.clear();
    let mut start: Option<usize> = None; // first significant token
    let mut lead: Option<usize> = None; // first comment or significant token
    let mut last = 0usize; // last comment or significant token
    let mut depth = 0usize;
    let mut max_depth = 0usize;
    let mut atomic = 0usize;
    let mut nsig = 0usize; // significant tokens seen in the current statement
    let mut routine = false; // CREATE [OR REPLACE] FUNCTION|PROCEDURE
    let mut pending_begin = false;
    for (i, t) in toks.iter().enumerate() {
        if t.kind == Tok::Space {
            continue;
        }
        if t.kind == Tok::Comment {
            lead.get_or_insert(i);
            last = i;
            continue;
        }
        if t.kind == Tok::Semi && depth == 0 && atomic == 0 {
            if let Some(s) = start.take() {
                out.push(span(toks, lead.unwrap_or(s), last + 1, max_depth));
            }
            lead = None;
            nsig = 0;
            max_depth = 0;
            routine = false;
            pending_begin = false;
            continue;
        }
        if start.is_none() {
            start = Some(i);
        }
        lead.get_or_insert(i);
        last = i;
        nsig += 1;
        match t.kind {
            Tok::LParen | Tok::LBracket => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            Tok::RParen | Tok::RBracket => depth = depth.saturating_sub(1),
            Tok::Ident => {
                if nsig <= 4 && (word(src, t, "function") || word(src, t, "procedure")) {
                    if let Some(s) = start {
                        routine = word(src, &toks[s], "create");
                    }
                }
                if routine {
                    let opens = if atomic > 0 {
                        word(src, t, "case") || word(src, t, "begin")
                    } else {
                        pending_begin && word(src, t, "atomic")
                    };
                    if opens {
                        atomic += 1;
                    } else if atomic > 0 && word(src, t, "end") {
                        atomic -= 1;
                    }
                    pending_begin = atomic == 0 && word(src, t, "begin");
                }
            }
            _ => pending_begin = false,
        }
    }
    if let Some(s) = start {
        out.push(span(toks, lead.unwrap_or(s), last + 1, max_depth));
    }
}

fn span(toks: &[Token], s: usize, e: usize, max_depth: usize) -> StmtSpan {
    StmtSpan {
        tok_start: s,
        tok_end: e,
        byte_start: toks[s].start,
        byte_end: toks[e - 1].end,
        max_depth,
    }
}

#[cfg(test)]
mod tests {
    use crate::sql::lex::statement_ranges;

    fn parts(text: &str) -> Vec<&str> {
        statement_ranges(text.as_bytes())
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn splits_on_top_level_semicolons() {
        assert_eq!(
            parts("SELECT 1; DELETE FROM t"),
            ["SELECT 1", "DELETE FROM t"]
        );
        assert_eq!(parts("SELECT 1;;  ; SELECT 2;"), ["SELECT 1", "SELECT 2"]);
        assert_eq!(parts("  "), Vec::<&str>::new());
        assert_eq!(parts("-- only a comment"), Vec::<&str>::new());
        assert_eq!(
            parts("SELECT 1; -- note\nSELECT 2 -- ;\n"),
            ["SELECT 1", "-- note\nSELECT 2 -- ;"]
        );
    }

    #[test]
    fn ignores_semicolons_in_quotes_comments_and_parens() {
        assert_eq!(
            parts("SELECT ';', \"a;b\"; SELECT 2"),
            ["SELECT ';', \"a;b\"", "SELECT 2"]
        );
        assert_eq!(
            parts("SELECT E'\\';'; SELECT 2"),
            ["SELECT E'\\';'", "SELECT 2"]
        );
        assert_eq!(
            parts("SELECT $$;$$, $x$ ; $x$; SELECT $1"),
            ["SELECT $$;$$, $x$ ; $x$", "SELECT $1"]
        );
        assert_eq!(
            parts("SELECT 1 /* ; /* ; */ ; */; SELECT 2"),
            ["SELECT 1 /* ; /* ; */ ; */", "SELECT 2"]
        );
        assert_eq!(
            parts("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 1"),
            ["CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))", "SELECT 1"]
        );
    }

    #[test]
    fn never_panics_on_truncated_input() {
        for text in ["'", "\"", "$a$", "/*", "--", "$", "E'\\", "((", "))"] {
            let _ = statement_ranges(text.as_bytes());
        }
    }
}
