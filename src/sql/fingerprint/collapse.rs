//! List collapsing for the normalised text and fingerprint: `IN (...)`,
//! `ARRAY[...]` lists and `VALUES` rows of one shape shrink to their first
//! element, with a work budget so the pass stays linear.

use crate::sql::lex::{kw as word, Tok, Token};

#[inline]
fn is_placeholder(k: Tok) -> bool {
    matches!(k, Tok::Str | Tok::Num | Tok::Param)
}

fn same_shape(src: &[u8], a: &[Token], b: &[Token]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            (is_placeholder(x.kind) && is_placeholder(y.kind))
                || (x.kind == y.kind
                    && (if x.kind == Tok::Ident {
                        src[x.start..x.end].eq_ignore_ascii_case(&src[y.start..y.end])
                    } else {
                        src[x.start..x.end] == src[y.start..y.end]
                    }))
        })
}

/// Index of the bracket closing the one at `open`, within `toks`.
fn matching(toks: &[Token], open: usize, budget: &mut usize) -> Option<usize> {
    let mut d = 0usize;
    for (k, t) in toks.iter().enumerate().skip(open) {
        *budget = budget.checked_sub(1)?;
        match t.kind {
            Tok::LParen | Tok::LBracket => d += 1,
            Tok::RParen | Tok::RBracket => {
                d = d.saturating_sub(1);
                if d == 0 {
                    return Some(k);
                }
            }
            _ => {}
        }
    }
    None
}

/// Split `toks[a..b]` at depth-0 commas.
fn elements(toks: &[Token]) -> Vec<&[Token]> {
    let mut out = Vec::new();
    let mut d = 0usize;
    let mut s = 0;
    for (k, t) in toks.iter().enumerate() {
        match t.kind {
            Tok::LParen | Tok::LBracket => d += 1,
            Tok::RParen | Tok::RBracket => d = d.saturating_sub(1),
            Tok::Comma if d == 0 => {
                out.push(&toks[s..k]);
                s = k + 1;
            }
            _ => {}
        }
    }
    out.push(&toks[s..]);
    out
}

const MAX_COLLAPSE_DEPTH: usize = 32;

/// Copy significant tokens to `out`, collapsing `IN (...)`, `ARRAY[...]`
/// lists whose elements have one shape and contain a placeholder, and
/// `VALUES (...), (...)` rows of one shape, to their first element.
pub(super) fn collapse(
    src: &[u8],
    toks: &[Token],
    out: &mut Vec<Token>,
    depth: usize,
    budget: &mut usize,
) {
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        out.push(t);
        i += 1;
        if depth >= MAX_COLLAPSE_DEPTH {
            continue;
        }
        let next = toks.get(i).map(|t| t.kind);
        let list = (word(src, &t, "in") && next == Some(Tok::LParen))
            || (word(src, &t, "array") && next == Some(Tok::LBracket));
        let after = if list {
            collapse_list(src, toks, i, out, depth, budget)
        } else if word(src, &t, "values") && next == Some(Tok::LParen) {
            collapse_rows(src, toks, i, out, depth, budget)
        } else {
            None
        };
        if let Some(after) = after {
            i = after;
        }
    }
}

/// The elements of one shape, or all of them, comma-separated.
fn push_uniform_or_all(src: &[u8], items: &[Vec<Token>], out: &mut Vec<Token>) {
    let uniform = items[0].iter().any(|t| is_placeholder(t.kind))
        && items.iter().all(|c| same_shape(src, &items[0], c));
    if uniform {
        out.extend_from_slice(&items[0]);
        return;
    }
    for (k, c) in items.iter().enumerate() {
        if k > 0 {
            out.push(Token {
                kind: Tok::Comma,
                open: false,
                escapes: false,
                start: 0,
                end: 0,
            });
        }
        out.extend_from_slice(c);
    }
}

/// The list opening at `toks[open]` (after IN or ARRAY), collapsed into
/// `out`; the index after it, or None when it is left to the token loop.
fn collapse_list(
    src: &[u8],
    toks: &[Token],
    open: usize,
    out: &mut Vec<Token>,
    depth: usize,
    budget: &mut usize,
) -> Option<usize> {
    let close = matching(toks, open, budget)?;
    let inner = &toks[open + 1..close];
    let first_is_query = inner
        .first()
        .is_some_and(|f| word(src, f, "select") || word(src, f, "values") || word(src, f, "with"));
    let els = elements(inner);
    if els.len() < 2 || first_is_query {
        return None; // handled token by token
    }
    let mut col: Vec<Vec<Token>> = Vec::with_capacity(els.len());
    for e in &els {
        let mut v = Vec::with_capacity(e.len());
        collapse(src, e, &mut v, depth + 1, budget);
        col.push(v);
    }
    out.push(toks[open]);
    push_uniform_or_all(src, &col, out);
    out.push(toks[close]);
    Some(close + 1)
}

/// The VALUES rows from `toks[first]`, `(..) , (..) , ...`, collapsed into
/// `out`; the index after them, or None when fewer than two.
fn collapse_rows(
    src: &[u8],
    toks: &[Token],
    first: usize,
    out: &mut Vec<Token>,
    depth: usize,
    budget: &mut usize,
) -> Option<usize> {
    let mut rows: Vec<Vec<Token>> = Vec::new();
    let mut j = first;
    let mut end = first;
    while toks.get(j).is_some_and(|t| t.kind == Tok::LParen) {
        let Some(close) = matching(toks, j, budget) else {
            break;
        };
        let mut v = Vec::new();
        collapse(src, &toks[j..=close], &mut v, depth + 1, budget);
        rows.push(v);
        end = close + 1;
        if toks.get(close + 1).is_some_and(|t| t.kind == Tok::Comma)
            && toks.get(close + 2).is_some_and(|t| t.kind == Tok::LParen)
        {
            j = close + 2;
        } else {
            break;
        }
    }
    if rows.len() < 2 {
        return None;
    }
    push_uniform_or_all(src, &rows, out);
    Some(end)
}
