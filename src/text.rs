//! Lossless text for audit records: bytes that are valid UTF-8 are kept as
//! they are, anything else is escaped so no byte is lost or invented.

use std::borrow::Cow;

/// Returns the text and whether any byte had to be escaped.
///
/// Invalid bytes become `\xNN`, and a literal backslash is doubled only when
/// escaping happened, so valid UTF-8 (the overwhelming case) is copied as is
/// and an escaped text can be decoded back to the original bytes.
pub fn lossless(bytes: &[u8]) -> (Cow<'_, str>, bool) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Cow::Borrowed(s), false),
        Err(_) => (Cow::Owned(escape(bytes)), true),
    }
}

fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02X}"));
        }
    }
    out
}

/// Decodes the output of [`lossless`] for an escaped text back to bytes.
pub fn unescape(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') && i + 4 <= b.len() {
            let hex = std::str::from_utf8(&b[i + 2..i + 4]).ok();
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                Some(v) => {
                    out.push(v);
                    i += 4;
                }
                None => {
                    out.push(b[i]);
                    i += 1;
                }
            }
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_utf8_is_borrowed() {
        let (s, escaped) = lossless("héllo \\ world".as_bytes());
        assert!(matches!(s, Cow::Borrowed(_)));
        assert!(!escaped);
    }

    #[test]
    fn invalid_bytes_round_trip() {
        let raw = b"caf\xe9 \\x41 \xff\xfe end";
        let (s, escaped) = lossless(raw);
        assert!(escaped);
        assert_eq!(s, "caf\\xE9 \\\\x41 \\xFF\\xFE end");
        assert_eq!(unescape(&s), raw.to_vec());
    }
}
