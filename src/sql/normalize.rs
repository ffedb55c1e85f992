//! Normalisation and fingerprinting from the token stream of
//! [`super::lexer`].

use super::lexer::{Tok, Token};
use std::borrow::Cow;

fn word(src: &[u8], t: &Token, w: &str) -> bool {
    t.kind == Tok::Ident && src[t.start..t.end].eq_ignore_ascii_case(w.as_bytes())
}

/// FNV-1a 64-bit.
#[derive(Clone, Copy)]
pub struct Fnv(pub u64);
impl Fnv {
    pub const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    pub fn new() -> Self {
        Fnv(Self::OFFSET)
    }
    #[inline]
    pub fn byte(&mut self, b: u8) {
        self.0 ^= b as u64;
        self.0 = self.0.wrapping_mul(Self::PRIME);
    }
    #[inline]
    pub fn bytes(&mut self, bs: &[u8]) {
        for &b in bs {
            self.byte(b);
        }
    }
}
impl Default for Fnv {
    fn default() -> Self {
        Self::new()
    }
}

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
fn collapse(src: &[u8], toks: &[Token], out: &mut Vec<Token>, depth: usize, budget: &mut usize) {
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
        if list {
            let Some(close) = matching(toks, i, budget) else {
                continue;
            };
            let inner = &toks[i + 1..close];
            let first_is_query = inner.first().is_some_and(|f| {
                word(src, f, "select") || word(src, f, "values") || word(src, f, "with")
            });
            let els = elements(inner);
            if els.len() < 2 || first_is_query {
                continue; // handled token by token
            }
            let mut col: Vec<Vec<Token>> = Vec::with_capacity(els.len());
            for e in &els {
                let mut v = Vec::with_capacity(e.len());
                collapse(src, e, &mut v, depth + 1, budget);
                col.push(v);
            }
            let uniform = col[0].iter().any(|t| is_placeholder(t.kind))
                && col.iter().all(|c| same_shape(src, &col[0], c));
            out.push(toks[i]);
            if uniform {
                out.extend_from_slice(&col[0]);
            } else {
                for (k, c) in col.iter().enumerate() {
                    if k > 0 {
                        out.push(Token {
                            kind: Tok::Comma,
                            start: 0,
                            end: 0,
                        });
                    }
                    out.extend_from_slice(c);
                }
            }
            out.push(toks[close]);
            i = close + 1;
        } else if word(src, &t, "values") && next == Some(Tok::LParen) {
            // rows: (..) , (..) , ...
            let mut rows: Vec<Vec<Token>> = Vec::new();
            let mut j = i;
            let mut end = i;
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
                continue;
            }
            let uniform = rows[0].iter().any(|t| is_placeholder(t.kind))
                && rows.iter().all(|r| same_shape(src, &rows[0], r));
            if uniform {
                out.extend_from_slice(&rows[0]);
            } else {
                for (k, r) in rows.iter().enumerate() {
                    if k > 0 {
                        out.push(Token {
                            kind: Tok::Comma,
                            start: 0,
                            end: 0,
                        });
                    }
                    out.extend_from_slice(r);
                }
            }
            i = end;
        }
    }
}

fn param_number(s: &[u8]) -> u64 {
    let mut n: u64 = 0;
    for &b in s.iter().skip(1) {
        n = n.saturating_mul(10).saturating_add((b - b'0') as u64);
    }
    n
}

/// Highest `$n` in the statement (0 if none).
pub fn max_param(src: &[u8], toks: &[Token]) -> u64 {
    toks.iter()
        .filter(|t| t.kind == Tok::Param)
        .map(|t| param_number(&src[t.start..t.end]))
        .max()
        .unwrap_or(0)
}

fn push_u64(out: &mut String, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        out.push(char::from(d));
    }
}

/// Append bytes to a String losslessly: valid UTF-8 as is, invalid bytes
/// as `\xNN` (returns true if any byte was escaped).
pub fn push_lossless(out: &mut String, bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(s) => {
            out.push_str(s);
            false
        }
        Err(_) => {
            for chunk in bytes.utf8_chunks() {
                out.push_str(chunk.valid());
                for b in chunk.invalid() {
                    out.push_str("\\x");
                    out.push(char::from(b"0123456789abcdef"[(b >> 4) as usize]));
                    out.push(char::from(b"0123456789abcdef"[(b & 15) as usize]));
                }
            }
            true
        }
    }
}

/// Normalised text and fingerprint of one statement (`toks` may include
/// trivia). Literals become `$n` (numbered after the highest `$n` already
/// present), IN/ARRAY/VALUES lists of one shape collapse to one element,
/// unquoted identifiers and keywords are lower-cased, comments dropped and
/// spacing canonical. The fingerprint is FNV-1a 64 over the collapsed token
/// stream: per token a tag byte, then (for non-placeholders) the token bytes
/// (lower-cased for unquoted identifiers), then 0xFF.
pub fn normalize(src: &[u8], toks: &[Token]) -> (String, u64) {
    let sig: Vec<Token> = toks
        .iter()
        .copied()
        .filter(|t| !t.kind.is_trivia())
        .collect();
    normalize_sig(src, &sig)
}

/// Keywords after which `-` is a sign, not a subtraction.
const SIGN_AFTER: &[&str] = &[
    "select",
    "where",
    "and",
    "or",
    "not",
    "when",
    "then",
    "else",
    "case",
    "limit",
    "offset",
    "by",
    "returning",
    "set",
    "values",
    "in",
    "between",
    "like",
    "ilike",
    "is",
    "any",
    "all",
    "some",
    "array",
    "on",
    "return",
    "default",
    "to",
    "from",
    "having",
    "distinct",
    "interval",
];

/// Drop a unary `-` in front of a literal (`x = -1` and `x = 1` share a
/// shape, like PostgreSQL folding the sign into the constant). None when
/// nothing is folded.
fn fold_negative(src: &[u8], sig: &[Token]) -> Option<Vec<Token>> {
    let is_sign = |i: usize| -> bool {
        let t = &sig[i];
        if t.kind != Tok::Op || &src[t.start..t.end] != b"-" {
            return false;
        }
        if !sig.get(i + 1).is_some_and(|n| n.kind.is_literal()) {
            return false;
        }
        match i.checked_sub(1).map(|p| &sig[p]) {
            None => true,
            Some(p) => match p.kind {
                Tok::Op | Tok::LParen | Tok::LBracket | Tok::Comma => true,
                Tok::Ident => {
                    let w = &src[p.start..p.end];
                    SIGN_AFTER
                        .iter()
                        .any(|k| w.eq_ignore_ascii_case(k.as_bytes()))
                }
                _ => false,
            },
        }
    };
    let first = (0..sig.len()).find(|&i| is_sign(i))?;
    let mut out = Vec::with_capacity(sig.len());
    out.extend_from_slice(&sig[..first]);
    out.extend((first..sig.len()).filter(|&i| !is_sign(i)).map(|i| sig[i]));
    Some(out)
}

/// [`normalize`] over significant tokens only.
pub fn normalize_sig(src: &[u8], sig: &[Token]) -> (String, u64) {
    let folded = fold_negative(src, sig);
    let sig: &[Token] = folded.as_deref().unwrap_or(sig);
    let listy = sig.iter().any(|t| {
        t.kind == Tok::Ident
            && (word(src, t, "in") || word(src, t, "array") || word(src, t, "values"))
    });
    let col: Cow<[Token]> = if listy {
        let mut col = Vec::with_capacity(sig.len());
        // bounded work: at most 8 scans' worth of tokens (no quadratic blow-up)
        let mut budget = sig.len().saturating_mul(8);
        collapse(src, sig, &mut col, 0, &mut budget);
        Cow::Owned(col)
    } else {
        Cow::Borrowed(sig)
    };
    let mut next = max_param(src, sig) + 1;
    let base = sig.first().map_or(0, |t| t.start);
    let end = sig.last().map_or(0, |t| t.end);
    // validated once; token boundaries are char boundaries in valid UTF-8
    let text: Option<&str> = std::str::from_utf8(&src[base..end.max(base)]).ok();
    let tok_str = |t: &Token| text.and_then(|x| x.get(t.start - base..t.end - base));
    let mut out = String::with_capacity(end.saturating_sub(base) + 16);
    let mut h = Fnv::new();
    let mut prev: Option<Token> = None;
    for t in col.iter() {
        let k = t.kind;
        if let Some(pt) = prev {
            let p = pt.kind;
            let tight_before = matches!(
                k,
                Tok::RParen
                    | Tok::RBracket
                    | Tok::Comma
                    | Tok::Dot
                    | Tok::DColon
                    | Tok::LBracket
                    | Tok::Semi
            ) || (k == Tok::LParen
                && (p == Tok::QIdent
                    || (p == Tok::Ident
                        && !super::lexobj::is_keyword_before_paren(&src[pt.start..pt.end]))));
            let tight_after = matches!(p, Tok::LParen | Tok::LBracket | Tok::Dot | Tok::DColon);
            if !tight_before && !tight_after {
                out.push(' ');
            }
        }
        prev = Some(*t);
        match k {
            Tok::Str | Tok::Num => {
                out.push('$');
                push_u64(&mut out, next);
                next = next.saturating_add(1);
                h.byte(b'P');
            }
            Tok::Param => {
                out.push_str(tok_str(t).unwrap_or("$"));
                h.byte(b'P');
            }
            Tok::Comma if t.end == 0 => {
                // synthetic comma from list re-emission: same as a real one
                out.push(',');
                h.byte(tag(Tok::Comma));
                h.byte(b',');
            }
            Tok::Ident => {
                let b = &src[t.start..t.end];
                h.byte(b'I');
                if let Some(st) = tok_str(t) {
                    let at = out.len();
                    out.push_str(st);
                    if let Some(tail) = out.get_mut(at..) {
                        tail.make_ascii_lowercase();
                        h.bytes(tail.as_bytes());
                    }
                } else {
                    let low = b.to_ascii_lowercase();
                    h.bytes(&low);
                    push_lossless(&mut out, &low);
                }
            }
            _ => {
                let b = &src[t.start..t.end];
                h.byte(tag(k));
                h.bytes(b);
                match tok_str(t) {
                    Some(x) => out.push_str(x),
                    None => {
                        push_lossless(&mut out, b);
                    }
                }
            }
        }
        h.byte(0xff);
    }
    (out, h.0)
}

fn tag(k: Tok) -> u8 {
    match k {
        Tok::QIdent => b'Q',
        Tok::Op => b'O',
        Tok::PsqlVar => b'V',
        Tok::Other => b'X',
        _ => b'S',
    }
}
