//! Normalisation and fingerprinting from the token stream of
//! [`crate::sql::lex`].

use crate::sql::fingerprint::collapse::collapse;
use crate::sql::lex::{kw as word, Tok, Token};
use std::borrow::Cow;

/// FNV-1a 64-bit.
#[derive(Clone, Copy)]
pub(crate) struct Fnv(pub u64);
impl Fnv {
    pub(crate) const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    pub(crate) fn new() -> Self {
        Fnv(Self::OFFSET)
    }
    #[inline]
    pub(crate) fn byte(&mut self, b: u8) {
        self.0 ^= b as u64;
        self.0 = self.0.wrapping_mul(Self::PRIME);
    }
    #[inline]
    pub(crate) fn bytes(&mut self, bs: &[u8]) {
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

fn param_number(s: &[u8]) -> u64 {
    let mut n: u64 = 0;
    for &b in s.iter().skip(1) {
        n = n.saturating_mul(10).saturating_add((b - b'0') as u64);
    }
    n
}

/// Highest `$n` in the statement (0 if none).
pub(crate) fn max_param(src: &[u8], toks: &[Token]) -> u64 {
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
pub(crate) fn push_lossless(out: &mut String, bytes: &[u8]) -> bool {
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

/// Normalised text and fingerprint of one statement (significant
/// tokens only). Literals become `$n` (numbered after the highest `$n` already
/// present), IN/ARRAY/VALUES lists of one shape collapse to one element,
/// unquoted identifiers and keywords are lower-cased, comments dropped and
/// spacing canonical. The fingerprint is FNV-1a 64 over the collapsed token
/// stream: per token a tag byte, then (for non-placeholders) the token bytes
/// (lower-cased for unquoted identifiers), then 0xFF.
pub(crate) fn normalize_sig(src: &[u8], sig: &[Token]) -> (String, u64) {
    let mut out = String::new();
    let fp = normalize_sig_into(src, sig, &mut out);
    (out, fp)
}

/// [`normalize_sig`] appending the normalised text to `out` (a reused
/// buffer); returns the fingerprint.
pub(crate) fn normalize_sig_into(src: &[u8], sig: &[Token], out: &mut String) -> u64 {
    normalize_sig_kinds(src, sig, out).0
}

/// [`normalize_sig_into`], also returning a signature of the kinds (string
/// or number) of the literals the placeholders stand for: the grammar
/// accepts `PASSWORD 'x'` but not `PASSWORD 1`, so the cache must not
/// answer one with the other's analysis although they share a shape.
pub(crate) fn normalize_sig_kinds(src: &[u8], sig: &[Token], out: &mut String) -> (u64, u64) {
    let mut kinds = Fnv::new();
    let folded = fold_negative(src, sig);
    let sig: &[Token] = folded.as_deref().unwrap_or(sig);
    let col = collapsed(src, sig);
    let mut next = max_param(src, sig) + 1;
    let base = sig.first().map_or(0, |t| t.start);
    let end = sig.last().map_or(0, |t| t.end);
    // validated once; token boundaries are char boundaries in valid UTF-8
    let text: Option<&str> = std::str::from_utf8(&src[base..end.max(base)]).ok();
    let tok_str = |t: &Token| text.and_then(|x| x.get(t.start - base..t.end - base));
    out.reserve(end.saturating_sub(base) + 16);
    let mut h = Fnv::new();
    let mut prev: Option<Token> = None;
    for t in col.iter() {
        let k = t.kind;
        if prev.is_some_and(|pt| spaced(src, &pt, k)) {
            out.push(' ');
        }
        prev = Some(*t);
        match k {
            Tok::Str | Tok::Num => {
                out.push('$');
                push_u64(out, next);
                next = next.saturating_add(1);
                h.byte(b'P');
                kinds.byte(literal_class(&src[t.start..t.end], k));
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
                    push_lossless(out, &low);
                }
            }
            _ => {
                let b = &src[t.start..t.end];
                h.byte(tag(k));
                h.bytes(b);
                match tok_str(t) {
                    Some(x) => out.push_str(x),
                    None => {
                        push_lossless(out, b);
                    }
                }
            }
        }
        h.byte(0xff);
    }
    (h.0, kinds.0)
}

/// `sig` with IN/ARRAY/VALUES lists collapsed (borrowed when it has none
/// of those words).
fn collapsed<'a>(src: &[u8], sig: &'a [Token]) -> Cow<'a, [Token]> {
    let listy = sig.iter().any(|t| {
        t.kind == Tok::Ident
            && (word(src, t, "in") || word(src, t, "array") || word(src, t, "values"))
    });
    if !listy {
        return Cow::Borrowed(sig);
    }
    let mut col = Vec::with_capacity(sig.len());
    // bounded work: at most 8 scans' worth of tokens (no quadratic blow-up)
    let mut budget = sig.len().saturating_mul(8);
    collapse(src, sig, &mut col, 0, &mut budget);
    Cow::Owned(col)
}

/// Whether the normalised text has a space between token `pt` and the
/// next token, of kind `k`.
#[inline]
fn spaced(src: &[u8], pt: &Token, k: Tok) -> bool {
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
                && !crate::sql::lex::is_keyword_before_paren(&src[pt.start..pt.end]))));
    let tight_after = matches!(p, Tok::LParen | Tok::LBracket | Tok::Dot | Tok::DColon);
    !tight_before && !tight_after
}

/// The grammar's class of a literal: string (`'..'`, `E'..'`, `U&'..'`,
/// dollar-quoted), national (`N'..'`), bit (`B'..'`), hex (`X'..'`),
/// integer that fits `int4` (ICONST) or any other number (FCONST). A
/// placeholder of one class can stand where another cannot.
pub(crate) fn literal_class(b: &[u8], kind: Tok) -> u8 {
    if kind == Tok::Str {
        return match b.first().map(u8::to_ascii_lowercase) {
            Some(b'n') => b'n',
            Some(b'b') => b'b',
            Some(b'x') => b'x',
            _ => b's',
        };
    }
    let radix = match b {
        [b'0', p, ..] if p.eq_ignore_ascii_case(&b'x') => 16,
        [b'0', p, ..] if p.eq_ignore_ascii_case(&b'o') => 8,
        [b'0', p, ..] if p.eq_ignore_ascii_case(&b'b') => 2,
        _ if b.iter().any(|&c| c == b'.' || c == b'e' || c == b'E') => return b'f',
        _ => 10,
    };
    let digits = if radix == 10 { b } else { &b[2..] };
    let mut v: u64 = 0;
    for &c in digits {
        if c == b'_' {
            continue;
        }
        let d = match (c as char).to_digit(radix) {
            Some(d) => u64::from(d),
            None => return b'f',
        };
        v = v.saturating_mul(u64::from(radix)).saturating_add(d);
    }
    if v <= i32::MAX as u64 {
        b'i'
    } else {
        b'f'
    }
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
