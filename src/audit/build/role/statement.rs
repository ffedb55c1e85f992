//! The role change a statement makes: `SET ROLE`, `SET SESSION
//! AUTHORIZATION`, their `RESET` forms, `DISCARD ALL`.

use crate::sql::lex::{kw, tokenize, LexOptions, Tok, Token};

/// What a statement does to the acting role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    /// `SET [SESSION|LOCAL] ROLE x`; `None` is `NONE`.
    SetRole { role: Option<String>, local: bool },
    /// `RESET ROLE`, `SET ROLE DEFAULT`: back to the startup value.
    ResetRole { local: bool },
    /// `SET [SESSION|LOCAL] SESSION AUTHORIZATION x`; `None` is `DEFAULT`.
    SetSession { user: Option<String>, local: bool },
    /// `DISCARD ALL` (and `RESET SESSION AUTHORIZATION`).
    DiscardAll,
}

/// The role change `statement` makes, if any.
pub fn role_change(statement: &[u8]) -> Option<RoleChange> {
    let toks: Vec<Token> = tokenize(statement, LexOptions::default())
        .into_iter()
        .filter(|t| !t.kind.is_trivia())
        .collect();
    let w = |i: usize, word: &str| toks.get(i).is_some_and(|t| kw(statement, t, word));
    if w(0, "discard") && w(1, "all") {
        return Some(RoleChange::DiscardAll);
    }
    if w(0, "reset") {
        return match () {
            () if w(1, "role") => Some(RoleChange::ResetRole { local: false }),
            () if w(1, "session") && w(2, "authorization") => Some(RoleChange::DiscardAll),
            () if w(1, "session_authorization") => Some(RoleChange::DiscardAll),
            () => None,
        };
    }
    if !w(0, "set") {
        return None;
    }
    let local = w(1, "local");
    let mut i = 1;
    if local || (w(1, "session") && !w(2, "authorization")) {
        i = 2;
    }
    let (is_role, mut at) = if w(i, "role") {
        (true, i + 1)
    } else if w(i, "session") && w(i + 1, "authorization") {
        (false, i + 2)
    } else if w(i, "session_authorization") {
        (false, i + 1)
    } else {
        return None;
    };
    if w(at, "to")
        || toks
            .get(at)
            .is_some_and(|t| &statement[t.start..t.end] == b"=")
    {
        at += 1;
    }
    let value = toks.get(at).and_then(|t| value_text(statement, t))?;
    let is_default = value == Value::Word("default".into());
    Some(match (is_role, is_default) {
        (true, true) => RoleChange::ResetRole { local },
        (true, false) => RoleChange::SetRole {
            role: Some(value.text()).filter(|v| v != "none"),
            local,
        },
        (false, true) => RoleChange::SetSession { user: None, local },
        (false, false) => RoleChange::SetSession {
            user: Some(value.text()),
            local,
        },
    })
}

#[derive(Debug, PartialEq, Eq)]
enum Value {
    /// Unquoted: folded to lower case.
    Word(String),
    Quoted(String),
}

impl Value {
    fn text(self) -> String {
        match self {
            Value::Word(s) | Value::Quoted(s) => s,
        }
    }
}

fn value_text(src: &[u8], t: &Token) -> Option<Value> {
    let raw = String::from_utf8_lossy(&src[t.start..t.end]);
    let quoted = match t.kind {
        Tok::Ident => return Some(Value::Word(raw.to_ascii_lowercase())),
        Tok::QIdent => unquote(&raw, '"'),
        Tok::Str => unquote(&raw, '\'')
            .or_else(|| escape_string(&raw))
            .or_else(|| dollar_quoted(&raw)),
        _ => return None,
    };
    // A form not decoded here (`U&'...'`, `U&"..."`) is kept as written:
    // the record then shows that the role changed, and to what text,
    // rather than the role before.
    Some(Value::Quoted(quoted.unwrap_or_else(|| raw.into_owned())))
}

/// `"a""b"` → `a"b`, `'a''b'` → `a'b`.
fn unquote(raw: &str, q: char) -> Option<String> {
    let inner = raw.strip_prefix(q)?.strip_suffix(q)?;
    Some(inner.replace(&format!("{q}{q}"), &q.to_string()))
}

/// `E'a\'b'` → `a'b` (a backslash keeps the character after it; octal,
/// hex and Unicode escapes are not decoded).
fn escape_string(raw: &str) -> Option<String> {
    let body = raw.strip_prefix(['E', 'e'])?;
    let inner = body.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            '\'' => {
                chars.next(); // '' is one quote
                out.push('\'');
            }
            c => out.push(c),
        }
    }
    Some(out)
}

/// `$tag$text$tag$` → `text`.
fn dollar_quoted(raw: &str) -> Option<String> {
    let rest = raw.strip_prefix('$')?;
    let end = rest.find('$')?;
    let tag = &raw[..end + 2];
    Some(raw.strip_prefix(tag)?.strip_suffix(tag)?.to_string())
}
