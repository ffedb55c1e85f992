//! Token-level lexer for PostgreSQL's lexical syntax, working on raw bytes.
//!
//! Handles whitespace, `--` and nested `/* */` comments, unquoted identifiers
//! and keywords (bytes >= 0x80 count as identifier characters, so invalid
//! UTF-8 never stops it), quoted and `U&"..."` identifiers, `'...'`, `E'...'`,
//! `N'...'`, `U&'...'`, `B'...'`, `X'...'` strings (with the newline
//! continuation rule), dollar quoting with tags, numbers (decimal, real,
//! `0x`/`0o`/`0b`, `_` separators), positional parameters `$n`, operators
//! (with PostgreSQL's trailing `+`/`-` rule), `::`, punctuation and psql
//! variables (`:name`, `:'name'`, `:"name"`, `:{?name}`), which stay text.
//! It never fails: unterminated constructs run to the end of the input
//! (their token is marked [`Token::open`]). String constants whose escapes
//! PostgreSQL may reject are marked [`Token::escapes`].

use super::scan::{
    is_ident_cont, is_ident_start, is_op_char, is_space, scan_dollar, scan_number, scan_operator,
    scan_quoted_ident, scan_string, skip_block_comment, skip_uescape,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// Whitespace (never emitted by [`tokenize`]; kept for callers that
    /// build token lists themselves).
    Space,
    Comment,
    /// Unquoted identifier or keyword.
    Ident,
    /// `"..."` or `U&"..."`.
    QIdent,
    /// Any string constant, including bit/hex strings and dollar-quoted ones.
    Str,
    Num,
    /// `$1`
    Param,
    Op,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Semi,
    Colon,
    DColon,
    Dot,
    PsqlVar,
    Other,
}

impl Tok {
    /// A constant whose value the normaliser replaces.
    pub(crate) fn is_literal(self) -> bool {
        matches!(self, Tok::Str | Tok::Num)
    }
    pub(crate) fn is_trivia(self) -> bool {
        matches!(self, Tok::Space | Tok::Comment)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: Tok,
    /// An unterminated string, dollar quote, quoted identifier or block
    /// comment (it runs to the end of the input, so only a text's last
    /// token can be open). PostgreSQL rejects such a text, so it decides
    /// the cache key like the literal classes do.
    pub(crate) open: bool,
    /// A string constant whose validity depends on its escapes' values
    /// (`U&'...'`, and `\x`, octal, `\u`, `\U` escapes where backslashes
    /// escape): PostgreSQL rejects `U&'\zzzz'` or `E'\xff'`, so the cache
    /// keys such a literal by its bytes, not its class alone.
    pub(crate) escapes: bool,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

// the flags live in the padding after `kind`
const _: () = assert!(std::mem::size_of::<Token>() == 2 * std::mem::size_of::<usize>() + 8);

/// Lexer options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LexOptions {
    /// `standard_conforming_strings`: when false, backslash escapes apply in
    /// plain `'...'` strings too.
    pub(crate) standard_strings: bool,
}

impl Default for LexOptions {
    fn default() -> Self {
        LexOptions {
            standard_strings: true,
        }
    }
}

/// Tokenize `s` completely. Never panics, never fails.
pub(crate) fn tokenize(s: &[u8], opts: LexOptions) -> Vec<Token> {
    let mut out = Vec::with_capacity(s.len() / 3 + 4);
    tokenize_into(s, opts, &mut out);
    out
}

/// [`tokenize`] appending to `out` (a reused buffer); whether any token
/// is marked [`Token::escapes`].
pub(crate) fn tokenize_into(s: &[u8], opts: LexOptions, out: &mut Vec<Token>) -> bool {
    let n = s.len();
    let mut i = 0usize;
    let mut any_escapes = false;
    while i < n {
        let start = i;
        let b = s[i];
        let mut open = false;
        let mut escapes = false;
        let kind = if is_space(b) {
            // whitespace is not kept as a token (token offsets keep the
            // bytes between tokens recoverable)
            while i < n && is_space(s[i]) {
                i += 1;
            }
            continue;
        } else if b == b'-' && s.get(i + 1) == Some(&b'-') {
            while i < n && s[i] != b'\n' && s[i] != b'\r' {
                i += 1;
            }
            Tok::Comment
        } else if b == b'/' && s.get(i + 1) == Some(&b'*') {
            (i, open) = skip_block_comment(s, i);
            Tok::Comment
        } else if b == b'\'' {
            (i, open, escapes) = scan_string(s, i + 1, !opts.standard_strings);
            Tok::Str
        } else if b == b'"' {
            (i, open) = scan_quoted_ident(s, i + 1);
            Tok::QIdent
        } else if is_ident_start(b) {
            let kind;
            (i, kind, open, escapes) = scan_word(s, i, opts);
            kind
        } else if b.is_ascii_digit()
            || (b == b'.' && s.get(i + 1).is_some_and(|c| c.is_ascii_digit()))
        {
            i = scan_number(s, i);
            Tok::Num
        } else if b == b'$' {
            let kind;
            (i, kind, open) = scan_dollar_token(s, i);
            kind
        } else if b == b':' {
            let (e, kind) = scan_colon(s, i);
            i = e;
            kind
        } else if is_op_char(b) {
            i = scan_operator(s, i);
            Tok::Op
        } else {
            i += 1;
            match b {
                b'(' => Tok::LParen,
                b')' => Tok::RParen,
                b'[' => Tok::LBracket,
                b']' => Tok::RBracket,
                b',' => Tok::Comma,
                b';' => Tok::Semi,
                b'.' => Tok::Dot,
                _ => Tok::Other,
            }
        };
        debug_assert!(i > start);
        any_escapes |= escapes;
        out.push(Token {
            kind,
            open,
            escapes,
            start,
            end: i,
        });
    }
    any_escapes
}

/// A word from `s[i]` (an identifier start): an identifier, or a string
/// or quoted identifier with its `E`, `N`, `B`, `X` or `U&` prefix (end,
/// kind, unterminated?, [`Token::escapes`]).
#[inline]
fn scan_word(s: &[u8], mut i: usize, opts: LexOptions) -> (usize, Tok, bool, bool) {
    let n = s.len();
    let b = s[i];
    let mut open = false;
    let mut escapes = false;
    // string / identifier prefixes
    let b1 = s.get(i + 1).copied();
    let kind = match (b | 0x20, b1) {
        (b'e', Some(b'\'')) => {
            (i, open, escapes) = scan_string(s, i + 2, true);
            Tok::Str
        }
        (b'n' | b'b' | b'x', Some(b'\'')) if b < 0x80 => {
            (i, open, escapes) =
                scan_string(s, i + 2, !opts.standard_strings && (b | 0x20) == b'n');
            Tok::Str
        }
        (b'u', Some(b'&')) if s.get(i + 2) == Some(&b'\'') => {
            (i, open, _) = scan_string(s, i + 3, false);
            if !open {
                (i, open) = skip_uescape(s, i);
            }
            escapes = true;
            Tok::Str
        }
        (b'u', Some(b'&')) if s.get(i + 2) == Some(&b'"') => {
            (i, open) = scan_quoted_ident(s, i + 3);
            if !open {
                (i, open) = skip_uescape(s, i);
            }
            Tok::QIdent
        }
        _ => {
            i += 1;
            while i < n && is_ident_cont(s[i]) {
                i += 1;
            }
            Tok::Ident
        }
    };
    (i, kind, open, escapes)
}

/// A token from `s[i] == '$'`: a parameter, a dollar-quoted string or a
/// lone `$` (end, kind, unterminated?).
#[inline]
fn scan_dollar_token(s: &[u8], mut i: usize) -> (usize, Tok, bool) {
    let n = s.len();
    let mut open = false;
    let kind = match s.get(i + 1).copied() {
        Some(c) if c.is_ascii_digit() => {
            i += 1;
            while i < n && s[i].is_ascii_digit() {
                i += 1;
            }
            Tok::Param
        }
        Some(c) if c == b'$' || (is_ident_start(c)) => match scan_dollar(s, i) {
            Some(e) => {
                (i, open) = e;
                Tok::Str
            }
            None => {
                i += 1;
                Tok::Other
            }
        },
        _ => {
            i += 1;
            Tok::Other
        }
    };
    (i, kind, open)
}

/// A token from `s[i] == ':'`: `::`, `:=`, a psql variable or a colon.
#[inline]
fn scan_colon(s: &[u8], mut i: usize) -> (usize, Tok) {
    let n = s.len();
    let kind = match s.get(i + 1).copied() {
        Some(b':') => {
            i += 2;
            Tok::DColon
        }
        Some(b'=') => {
            i += 2;
            Tok::Op
        }
        Some(c) if is_ident_start(c) => {
            i += 1;
            while i < n && is_ident_cont(s[i]) {
                i += 1;
            }
            Tok::PsqlVar
        }
        Some(q @ (b'\'' | b'"')) => {
            // :'var' or :"var"
            let mut j = i + 2;
            while j < n && is_ident_cont(s[j]) {
                j += 1;
            }
            if j > i + 2 && s.get(j) == Some(&q) {
                i = j + 1;
                Tok::PsqlVar
            } else {
                i += 1;
                Tok::Colon
            }
        }
        Some(b'{') if s.get(i + 2) == Some(&b'?') => {
            let mut j = i + 3;
            while j < n && is_ident_cont(s[j]) {
                j += 1;
            }
            if s.get(j) == Some(&b'}') {
                i = j + 1;
                Tok::PsqlVar
            } else {
                i += 1;
                Tok::Colon
            }
        }
        _ => {
            i += 1;
            Tok::Colon
        }
    };
    (i, kind)
}
