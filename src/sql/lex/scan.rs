//! The lexer's scanners for multi-byte constructs: nested block comments,
//! quoted strings (with continuation and `UESCAPE`), quoted identifiers,
//! numbers, dollar-quote tags and operators. Each takes the input and a
//! start index and returns the index after the construct (and, for
//! quoted constructs and comments, whether it is unterminated: it then
//! runs to the end of the input). The byte classes (space, identifier,
//! operator characters) come first.

/// Whitespace, as PostgreSQL's lexer sees it.
#[inline]
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}
#[inline]
pub(crate) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}
const fn ident_cont_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80;
        i += 1;
    }
    t
}
static IDENT_CONT: [bool; 256] = ident_cont_table();

#[inline]
pub(crate) fn is_ident_cont(b: u8) -> bool {
    IDENT_CONT[b as usize]
}
#[inline]
pub(crate) fn is_op_char(b: u8) -> bool {
    matches!(
        b,
        b'+' | b'-'
            | b'*'
            | b'/'
            | b'<'
            | b'>'
            | b'='
            | b'~'
            | b'!'
            | b'@'
            | b'#'
            | b'%'
            | b'^'
            | b'&'
            | b'|'
            | b'`'
            | b'?'
    )
}

/// A block comment from `s[i..]` (`/*`, nesting): its end, unterminated?
pub(super) fn skip_block_comment(s: &[u8], mut i: usize) -> (usize, bool) {
    let n = s.len();
    let mut depth = 0usize;
    while i < n {
        if s[i] == b'/' && s.get(i + 1) == Some(&b'*') {
            depth += 1;
            i += 2;
        } else if s[i] == b'*' && s.get(i + 1) == Some(&b'/') {
            depth = depth.saturating_sub(1);
            i += 2;
            if depth == 0 {
                return (i, false);
            }
        } else {
            i += 1;
        }
    }
    (n, true)
}

/// Scan a `'`-quoted string body starting after the opening quote; returns
/// the index after the closing quote (and any continuation segments),
/// whether a segment is unterminated (`'ab`, `'it''s`, `E'ab\'`), and
/// (with `backslash`) whether it has an escape whose value decides its
/// validity (`\x`, octal, `\u`, `\U`: `E'\xff'` is rejected).
pub(super) fn scan_string(s: &[u8], mut i: usize, backslash: bool) -> (usize, bool, bool) {
    let n = s.len();
    let mut escapes = false;
    loop {
        let mut closed = false;
        while i < n {
            let c = s[i];
            if backslash && c == b'\\' {
                escapes |= matches!(s.get(i + 1), Some(b'x' | b'u' | b'U' | b'0'..=b'7'));
                i += 2;
                continue;
            }
            if c == b'\'' {
                if s.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                i += 1;
                closed = true;
                break;
            }
            i += 1;
        }
        if !closed {
            return (n, true, escapes);
        }
        if i >= n {
            return (n, false, escapes);
        }
        // continuation: whitespace containing a newline, then a quote
        let mut j = i;
        let mut newline = false;
        while j < n && is_space(s[j]) {
            newline |= s[j] == b'\n' || s[j] == b'\r';
            j += 1;
        }
        if newline && s.get(j) == Some(&b'\'') {
            i = j + 1;
            continue;
        }
        return (i, false, escapes);
    }
}

/// A `"`-quoted identifier's body from after the opening quote: its end,
/// unterminated?
pub(super) fn scan_quoted_ident(s: &[u8], mut i: usize) -> (usize, bool) {
    let n = s.len();
    while i < n {
        if s[i] == b'"' {
            if s.get(i + 1) == Some(&b'"') {
                i += 2;
                continue;
            }
            return (i + 1, false);
        }
        i += 1;
    }
    (n, true)
}

/// After a U& literal: optional `UESCAPE 'c'` (its string unterminated?).
pub(super) fn skip_uescape(s: &[u8], i: usize) -> (usize, bool) {
    let n = s.len();
    let mut j = i;
    while j < n && is_space(s[j]) {
        j += 1;
    }
    if j + 7 <= n
        && s[j..j + 7].eq_ignore_ascii_case(b"uescape")
        && !s.get(j + 7).is_some_and(|&c| is_ident_cont(c))
    {
        let mut k = j + 7;
        while k < n && is_space(s[k]) {
            k += 1;
        }
        if s.get(k) == Some(&b'\'') {
            let (e, open, _) = scan_string(s, k + 1, false);
            return (e, open);
        }
    }
    (i, false)
}

fn scan_digits(s: &[u8], mut i: usize, ok: fn(u8) -> bool) -> usize {
    let n = s.len();
    while i < n && (ok(s[i]) || (s[i] == b'_' && s.get(i + 1).is_some_and(|&c| ok(c)))) {
        i += 1;
    }
    i
}

pub(super) fn scan_number(s: &[u8], mut i: usize) -> usize {
    let n = s.len();
    if s[i] == b'0' {
        let radix: Option<fn(u8) -> bool> = match s.get(i + 1).map(|c| c | 0x20) {
            Some(b'x') => Some(|c: u8| c.is_ascii_hexdigit()),
            Some(b'o') => Some(|c: u8| (b'0'..=b'7').contains(&c)),
            Some(b'b') => Some(|c: u8| c == b'0' || c == b'1'),
            _ => None,
        };
        if let Some(f) = radix {
            let j = scan_digits(s, i + 2, f);
            if j > i + 2 {
                return j;
            }
        }
    }
    let digit = |c: u8| c.is_ascii_digit();
    i = scan_digits(s, i, digit);
    if i < n && s[i] == b'.' && s.get(i + 1) != Some(&b'.') {
        i = scan_digits(s, i + 1, digit);
    }
    if i < n && (s[i] | 0x20) == b'e' {
        let mut j = i + 1;
        if j < n && (s[j] == b'+' || s[j] == b'-') {
            j += 1;
        }
        if j < n && s[j].is_ascii_digit() {
            i = scan_digits(s, j, digit);
        }
    }
    i
}

/// `$tag$ ... $tag$` starting at `i` (which is `$`): its end, unterminated?
/// None if not a valid tag.
pub(super) fn scan_dollar(s: &[u8], i: usize) -> Option<(usize, bool)> {
    let n = s.len();
    let mut j = i + 1;
    while j < n && s[j] != b'$' {
        if !(is_ident_cont(s[j]) && s[j] != b'$') {
            return None;
        }
        j += 1;
    }
    if j >= n {
        return None;
    }
    let tag = &s[i..=j];
    let body = j + 1;
    let mut k = body;
    while k < n {
        if s[k] == b'$' && s[k..].starts_with(tag) {
            return Some((k + tag.len(), false));
        }
        k += 1;
    }
    Some((n, true))
}

pub(super) fn scan_operator(s: &[u8], i: usize) -> usize {
    let n = s.len();
    let mut j = i;
    while j < n && is_op_char(s[j]) {
        if j > i
            && ((s[j] == b'-' && s.get(j + 1) == Some(&b'-'))
                || (s[j] == b'/' && s.get(j + 1) == Some(&b'*')))
        {
            break;
        }
        j += 1;
    }
    let mut len = j - i;
    if len > 1 {
        let op = &s[i..j];
        let special = op.iter().any(|c| {
            matches!(
                c,
                b'~' | b'!' | b'@' | b'#' | b'%' | b'^' | b'&' | b'|' | b'`' | b'?'
            )
        });
        if !special {
            while len > 1 && (op[len - 1] == b'+' || op[len - 1] == b'-') {
                len -= 1;
            }
        }
    }
    i + len.max(1)
}
