//! Splits a Query string into its statements the way PostgreSQL's lexer
//! sees semicolons: not inside quotes, dollar quotes, comments or
//! parentheses. Used to tie each CommandComplete of a multi-statement Query
//! to its own text.

use std::ops::Range;

/// Byte ranges of the non-empty statements in `text`, trimmed of white space.
pub fn split_statements(text: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut depth = 0usize;
    let mut i = 0;
    let mut has_token = false;
    while i < text.len() {
        let c = text[i];
        let next = text.get(i + 1).copied();
        let before = i;
        i = match c {
            b'\'' => {
                let escapes =
                    i > 0 && matches!(text[i - 1], b'e' | b'E') && !ident_char_before(text, i - 1);
                skip_quoted(text, i, b'\'', escapes)
            }
            b'"' => skip_quoted(text, i, b'"', false),
            b'-' if next == Some(b'-') => skip_line_comment(text, i),
            b'/' if next == Some(b'*') => skip_block_comment(text, i),
            b'$' if !ident_char_before(text, i) => skip_dollar(text, i),
            b'(' => {
                depth += 1;
                i + 1
            }
            b')' => {
                depth = depth.saturating_sub(1);
                i + 1
            }
            b';' if depth == 0 => {
                if has_token {
                    out.push(trim(text, start, i));
                }
                start = i + 1;
                has_token = false;
                i + 1
            }
            _ => i + 1,
        };
        let comment = matches!((c, next), (b'-', Some(b'-')) | (b'/', Some(b'*')));
        if !c.is_ascii_whitespace() && c != b';' && !comment {
            has_token = true;
        }
        debug_assert!(i > before);
    }
    if has_token {
        out.push(trim(text, start, text.len()));
    }
    out
}

fn ident_char_before(text: &[u8], i: usize) -> bool {
    i > 0 && (text[i - 1].is_ascii_alphanumeric() || text[i - 1] == b'_' || text[i - 1] >= 0x80)
}

/// Index just past the closing quote (doubled quotes and, for E'',
/// backslash escapes stay inside).
fn skip_quoted(text: &[u8], open: usize, quote: u8, backslash: bool) -> usize {
    let mut i = open + 1;
    while i < text.len() {
        match text[i] {
            b'\\' if backslash => i += 2,
            q if q == quote => {
                if text.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    text.len()
}

fn skip_line_comment(text: &[u8], i: usize) -> usize {
    text[i..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(text.len(), |p| i + p + 1)
}

fn skip_block_comment(text: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    let mut i = open;
    while i + 1 < text.len() {
        match (text[i], text[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    text.len()
}

/// `$tag$ ... $tag$`; a `$` that does not open a dollar quote (such as `$1`)
/// is a single character.
fn skip_dollar(text: &[u8], open: usize) -> usize {
    let tag_len = text[open + 1..]
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'_' || b >= 0x80));
    let Some(len) = tag_len else { return open + 1 };
    let close = open + 1 + len;
    let first = text.get(open + 1).copied();
    if text.get(close) != Some(&b'$') || first.is_some_and(|b| b.is_ascii_digit()) {
        return open + 1;
    }
    let delim = &text[open..=close];
    let body = close + 1;
    text[body..]
        .windows(delim.len())
        .position(|w| w == delim)
        .map_or(text.len(), |p| body + p + delim.len())
}

fn trim(text: &[u8], mut start: usize, mut end: usize) -> Range<usize> {
    while start < end && text[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && text[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(text: &str) -> Vec<&str> {
        split_statements(text.as_bytes())
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
            parts("SELECT 1 /* ; /* ; */ ; */; SELECT 2 -- ;\n"),
            ["SELECT 1 /* ; /* ; */ ; */", "SELECT 2 -- ;"]
        );
        assert_eq!(
            parts("CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2)); SELECT 1"),
            ["CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))", "SELECT 1"]
        );
    }

    #[test]
    fn never_panics_on_truncated_input() {
        for text in ["'", "\"", "$a$", "/*", "--", "$", "E'\\", "((", "))"] {
            let _ = split_statements(text.as_bytes());
        }
    }
}
