//! Redaction of the recorded statement text: every literal (policy
//! `literals`) and, whatever the policy, credentials.

use crate::sql::fingerprint::normalize::max_param;
use crate::sql::lex::{kw as word, Tok, Token};
use std::borrow::Cow;

/// Redaction policy for the recorded statement text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Redaction {
    /// Only credentials are replaced.
    #[default]
    None,
    /// Every literal is replaced by `$n`; credentials too.
    Literals,
}

/// Replacement for credential literals.
pub(crate) const REDACTED: &str = "'<redacted>'";

const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "passphrase",
    "sslkey",
    "sslpassword",
];
const CONN_FUNCS: &[&str] = &[
    "dblink_connect",
    "dblink_connect_u",
    "dblink",
    "dblink_exec",
    "dblink_open",
    "dblink_send_query",
    "dblink_fetch",
];

fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.len() >= n.len() && hay.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
}

fn secret_name(b: &[u8]) -> bool {
    SECRET_WORDS.iter().any(|w| contains_ci(b, w))
}

/// Does this string literal look like a credential by content?
fn secret_content(b: &[u8]) -> bool {
    secret_name(b) || (contains_ci(b, "://") && b.contains(&b'@'))
}

/// Token indexes (into `toks`) of literals that are credentials.
pub(crate) fn credential_literals(src: &[u8], toks: &[Token]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut p1: Option<usize> = None; // previous significant token
    let mut p2: Option<usize> = None;
    let mut conn_depth: Option<usize> = None; // paren depth of a dblink-like call
    let mut depth = 0usize;
    for (i, t) in toks.iter().enumerate() {
        if t.kind.is_trivia() {
            continue;
        }
        match t.kind {
            Tok::LParen => {
                depth += 1;
                if conn_depth.is_none() {
                    if let Some(p) = p1 {
                        let pt = &toks[p];
                        if pt.kind == Tok::Ident
                            && CONN_FUNCS
                                .iter()
                                .any(|f| src[pt.start..pt.end].eq_ignore_ascii_case(f.as_bytes()))
                        {
                            conn_depth = Some(depth);
                        }
                    }
                }
            }
            Tok::RParen => {
                if conn_depth == Some(depth) {
                    conn_depth = None;
                }
                depth = depth.saturating_sub(1);
            }
            Tok::Str => {
                let body = &src[t.start..t.end];
                let name_is = |p: Option<usize>| {
                    p.is_some_and(|p| {
                        let pt = &toks[p];
                        matches!(pt.kind, Tok::Ident | Tok::QIdent)
                            && secret_name(&src[pt.start..pt.end])
                    })
                };
                let p1_is = |w: &str| p1.is_some_and(|p| word(src, &toks[p], w));
                let p1_eq = p1.is_some_and(|p| {
                    toks[p].kind == Tok::Op && &src[toks[p].start..toks[p].end] == b"="
                });
                let cred = name_is(p1)
                    || ((p1_eq || p1_is("to")) && name_is(p2))
                    || p1_is("connection")
                    || secret_content(body)
                    || (conn_depth.is_some() && (body.contains(&b'=') || contains_ci(body, "://")));
                if cred {
                    out.push(i);
                }
            }
            _ => {}
        }
        p2 = p1;
        p1 = Some(i);
    }
    out
}

/// The statement bytes after redaction. `toks` are the statement's tokens
/// (trivia included), `base` the byte offset where the statement starts.
pub(crate) fn redact<'a>(
    src: &'a [u8],
    toks: &[Token],
    byte_start: usize,
    byte_end: usize,
    mode: Redaction,
) -> Cow<'a, [u8]> {
    let creds = credential_literals(src, toks);
    let any_literal = mode == Redaction::Literals && toks.iter().any(|t| t.kind.is_literal());
    if creds.is_empty() && !any_literal {
        return Cow::Borrowed(&src[byte_start..byte_end]);
    }
    let mut out = Vec::with_capacity(byte_end - byte_start);
    let mut pos = byte_start;
    let mut next = max_param(src, toks) + 1;
    let mut ci = 0;
    for (i, t) in toks.iter().enumerate() {
        let is_cred = creds.get(ci) == Some(&i);
        if is_cred {
            ci += 1;
        }
        if !(is_cred || (mode == Redaction::Literals && t.kind.is_literal())) {
            continue;
        }
        out.extend_from_slice(&src[pos..t.start]);
        if mode == Redaction::Literals {
            out.push(b'$');
            out.extend_from_slice(next.to_string().as_bytes());
            next = next.saturating_add(1);
        } else {
            out.extend_from_slice(REDACTED.as_bytes());
        }
        pos = t.end;
    }
    out.extend_from_slice(&src[pos..byte_end]);
    Cow::Owned(out)
}
