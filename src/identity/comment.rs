//! sqlcommenter comments: `/*key='value',key2='value2'*/` at the end of a
//! statement (before a final `;`) or at its start, as Google's sqlcommenter
//! libraries write them for Django, Rails, Spring, Hibernate, Node and Go:
//! keys and values URL-encoded, values in single quotes with `\'` inside.
//!
//! Only the keys pgtrail uses are kept; a comment that is not of this form
//! (free text, a nested comment) claims nothing.

/// What a statement's comment claims, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommentClaims {
    pub end_user: Option<String>,
    pub request_id: Option<String>,
    pub traceparent: Option<String>,
    /// A compact JWT (`end_user_token`).
    pub token: Option<String>,
    /// The HMAC of `end_user` and `pgtrail_ts` (`pgtrail_sig`), its key id.
    pub signature: Option<String>,
    pub timestamp: Option<String>,
    pub key_id: Option<String>,
}

impl CommentClaims {
    pub fn is_empty(&self) -> bool {
        *self == CommentClaims::default()
    }
}

/// The longest comment read: sqlcommenter comments are a few hundred
/// bytes; a JWT a few kilobytes.
const MAX_COMMENT: usize = 16 * 1024;

/// The sqlcommenter comment of `text`, if it has one with keys pgtrail
/// uses. Cheap when there is none: a look at both ends of the text.
pub fn claims(text: &[u8]) -> Option<CommentClaims> {
    claims_of_body(body(text)?)
}

/// The body of the comment that ends (or else starts) `text`: what a
/// caller compares to tell a comment seen before without parsing it.
pub fn body(text: &[u8]) -> Option<&[u8]> {
    trailing(text).or_else(|| leading(text))
}

/// The claims of a comment body [`body`] found.
pub fn claims_of_body(body: &[u8]) -> Option<CommentClaims> {
    let claims = parse(body)?;
    (!claims.is_empty()).then_some(claims)
}

/// The body of a comment that ends the statement (after trailing blanks
/// and one `;`).
fn trailing(text: &[u8]) -> Option<&[u8]> {
    let mut end = trim_end(text);
    if end > 0 && text[end - 1] == b';' {
        end = trim_end(&text[..end - 1]);
    }
    let t = &text[..end];
    if !t.ends_with(b"*/") {
        return None;
    }
    let window = &t[t.len().saturating_sub(MAX_COMMENT)..];
    let open = window.windows(2).rposition(|w| w == b"/*")?;
    let body = &window[open + 2..window.len() - 2];
    Some(body)
}

/// The body of a comment that starts the statement.
fn leading(text: &[u8]) -> Option<&[u8]> {
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let t = &text[start..];
    if !t.starts_with(b"/*") {
        return None;
    }
    let window = &t[..t.len().min(MAX_COMMENT)];
    let close = window.windows(2).position(|w| w == b"*/")?;
    Some(&window[2..close])
}

fn trim_end(t: &[u8]) -> usize {
    t.iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1)
}

/// `key='value'` pairs separated by commas; `None` when the body is not
/// of that form (so a free-text comment claims nothing).
fn parse(body: &[u8]) -> Option<CommentClaims> {
    // A comment inside the comment: not sqlcommenter's, and PostgreSQL
    // nests them, so the ends found may not be this comment's.
    if body.windows(2).any(|w| w == b"/*" || w == b"*/") {
        return None;
    }
    let mut out = CommentClaims::default();
    let mut rest = trim(body);
    while !rest.is_empty() {
        let eq = rest.iter().position(|&b| b == b'=')?;
        let key = url_decode(trim(&rest[..eq]))?;
        let after = trim_start(&rest[eq + 1..]);
        let (raw, tail) = quoted(after)?;
        let value = url_decode(&raw)?;
        keep(&mut out, &key, value);
        rest = trim_start(tail);
        match rest.first() {
            Some(b',') => rest = trim_start(&rest[1..]),
            None => break,
            Some(_) => return None,
        }
    }
    Some(out)
}

fn keep(out: &mut CommentClaims, key: &str, value: String) {
    let slot = match key {
        "end_user" => &mut out.end_user,
        "request_id" => &mut out.request_id,
        "traceparent" => &mut out.traceparent,
        "end_user_token" => &mut out.token,
        "pgtrail_sig" => &mut out.signature,
        "pgtrail_ts" => &mut out.timestamp,
        "pgtrail_kid" => &mut out.key_id,
        _ => return,
    };
    *slot = Some(value);
}

/// A `'...'` value with `\'` and `\\` escapes: the raw bytes inside, and
/// what follows the closing quote.
fn quoted(s: &[u8]) -> Option<(Vec<u8>, &[u8])> {
    if s.first() != Some(&b'\'') {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 1;
    while i < s.len() {
        match s[i] {
            b'\\' if i + 1 < s.len() => {
                out.push(s[i + 1]);
                i += 2;
            }
            b'\'' => return Some((out, &s[i + 1..])),
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    None
}

/// Percent-decoding (sqlcommenter encodes keys and values); the result
/// must be UTF-8.
fn url_decode(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn trim(s: &[u8]) -> &[u8] {
    trim_start(&s[..trim_end(s)])
}

fn trim_start(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(s.len());
    &s[start..]
}

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`),
/// lower case; `None` when malformed or all zero (invalid per the spec).
pub fn trace_id(traceparent: &str) -> Option<String> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && hex(span, 16)
        && hex(flags, 2)
        && trace.bytes().any(|b| b != b'0');
    // Version 00 has exactly four fields; later ones may add more.
    let extra = parts.next().is_some();
    (valid && !(version == "00" && extra)).then(|| trace.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trailing_comment_as_sqlcommenter_writes_it() {
        let sql = b"SELECT * FROM orders WHERE id = $1 /*application='shop',end_user='alice%40example.com',traceparent='00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'*/";
        let c = claims(sql).unwrap();
        assert_eq!(c.end_user.as_deref(), Some("alice@example.com"));
        assert_eq!(
            trace_id(c.traceparent.as_deref().unwrap()).as_deref(),
            Some("0af7651916cd43dd8448eb211c80319c")
        );
    }

    #[test]
    fn before_a_final_semicolon_and_at_the_start() {
        let c = claims(b"UPDATE t SET a = 1 /*end_user='bob'*/ ;\n").unwrap();
        assert_eq!(c.end_user.as_deref(), Some("bob"));
        let c = claims(b"  /*request_id='r-1', end_user='carol'*/ SELECT 1").unwrap();
        assert_eq!(c.end_user.as_deref(), Some("carol"));
        assert_eq!(c.request_id.as_deref(), Some("r-1"));
    }

    #[test]
    fn escapes_and_encoding() {
        let c = claims(br"SELECT 1 /*end_user='o\'brien%2C%20jr'*/").unwrap();
        assert_eq!(c.end_user.as_deref(), Some("o'brien, jr"));
    }

    #[test]
    fn signed_claim_keys() {
        let c =
            claims(b"SELECT 1 /*end_user='alice',pgtrail_ts='1796000000',pgtrail_sig='abc',pgtrail_kid='k1'*/")
                .unwrap();
        assert_eq!(c.signature.as_deref(), Some("abc"));
        assert_eq!(c.timestamp.as_deref(), Some("1796000000"));
        assert_eq!(c.key_id.as_deref(), Some("k1"));
    }

    #[test]
    fn no_claim() {
        for sql in [
            &b"SELECT 1"[..],
            b"SELECT 1 /* a free text comment */",
            b"SELECT 1 /*application='shop'*/",
            b"SELECT 1 /* a /* nested */ end_user='x' */",
            b"SELECT '/*end_user=''x''*/'",
            b"SELECT 1 /*end_user='unterminated*/",
            b"SELECT 1 /*end_user='bad%zz'*/",
            b"SELECT 1 /*end_user='a' junk*/",
            b"*/",
            b"",
        ] {
            assert_eq!(claims(sql), None, "{}", String::from_utf8_lossy(sql));
        }
    }

    #[test]
    fn traceparent_rules() {
        assert_eq!(
            trace_id("00-00000000000000000000000000000000-b7ad6b7169203331-01"),
            None
        );
        assert_eq!(
            trace_id("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331"),
            None
        );
        assert_eq!(trace_id("xx"), None);
        assert!(
            trace_id("01-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01-extra").is_some()
        );
    }
}
