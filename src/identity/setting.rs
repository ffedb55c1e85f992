//! Which `pgtrail.*` settings a statement changes: `SET [SESSION | LOCAL]
//! pgtrail.end_user {TO | =} value | DEFAULT`, `RESET pgtrail.end_user`,
//! `RESET ALL`, `DISCARD ALL` and `set_config('pgtrail.end_user', value,
//! is_local)` calls with constant arguments (or `$n` parameters, given
//! their values). PostgreSQL accepts dotted names it does not know as
//! placeholder settings, so these reach it unchanged.

use crate::sql::lex::{identifier, tokenize, LexOptions, Tok, Token};

/// The settings pgtrail reads claims from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    EndUser = 0,
    EndUserToken = 1,
    RequestId = 2,
    Traceparent = 3,
}

pub const SLOTS: usize = 4;

impl Slot {
    pub const ALL: [Slot; SLOTS] = [
        Slot::EndUser,
        Slot::EndUserToken,
        Slot::RequestId,
        Slot::Traceparent,
    ];

    /// The setting's name, lower case as PostgreSQL compares it.
    pub fn name(self) -> &'static str {
        match self {
            Slot::EndUser => "pgtrail.end_user",
            Slot::EndUserToken => "pgtrail.end_user_token",
            Slot::RequestId => "pgtrail.request_id",
            Slot::Traceparent => "pgtrail.traceparent",
        }
    }

    pub fn of_name(name: &[u8]) -> Option<Slot> {
        Slot::ALL
            .into_iter()
            .find(|s| s.name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// One change a statement makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `value: None` is `DEFAULT` (`RESET`).
    Set {
        slot: Slot,
        value: Option<String>,
        local: bool,
    },
    /// `RESET ALL`, `DISCARD ALL`.
    ResetAll,
}

/// Whether a statement with this command tag may change a claim setting,
/// and so is worth lexing (`SELECT` for `set_config`).
pub fn may_change(tag: &str, text: &[u8]) -> bool {
    match tag {
        "SET" | "RESET" | "DISCARD ALL" => true,
        t if t.starts_with("SELECT") => mentions_set_config(text),
        _ => false,
    }
}

/// Whether a text names a `pgtrail.` setting at all (any case).
pub fn mentions_claim(text: &[u8]) -> bool {
    memchr::memmem::find_iter(text, b".")
        .any(|at| at >= 7 && text[at - 7..at].eq_ignore_ascii_case(b"pgtrail"))
}

fn mentions_set_config(text: &[u8]) -> bool {
    memchr::memmem::find_iter(text, b"_").any(|at| {
        at >= 3
            && text[at - 3..].len() >= 10
            && text[at - 3..at + 7].eq_ignore_ascii_case(b"set_config")
    })
}

/// The changes a successful statement made; `params` are its bind
/// parameters as text, for `set_config('pgtrail.x', $1, ...)`.
pub fn changes(text: &[u8], params: &[Option<String>]) -> Vec<Change> {
    let toks = tokenize(text, LexOptions::default());
    let toks: Vec<Token> = toks
        .into_iter()
        .filter(|t| t.kind != Tok::Comment)
        .collect();
    let word = |i: usize| toks.get(i).and_then(|t| identifier(text, t));
    match word(0).as_deref() {
        Some(b"set") => set(text, &toks[1..]).into_iter().collect(),
        Some(b"reset") => reset(text, &toks[1..]).into_iter().collect(),
        Some(b"discard") if word(1).as_deref() == Some(b"all") => vec![Change::ResetAll],
        _ => set_configs(text, &toks, params),
    }
}

/// `SET [SESSION | LOCAL] name {TO | =} value[, ...] | DEFAULT`.
fn set(text: &[u8], toks: &[Token]) -> Option<Change> {
    let mut i = 0;
    let mut local = false;
    match toks.first().and_then(|t| identifier(text, t)).as_deref() {
        Some(b"local") => (local, i) = (true, 1),
        Some(b"session") => i = 1,
        _ => {}
    }
    let (slot, next) = dotted_name(text, toks, i)?;
    let sep = toks.get(next)?;
    let is_sep = identifier(text, sep).as_deref() == Some(b"to")
        || (sep.kind == Tok::Op && &text[sep.start..sep.end] == b"=");
    if !is_sep {
        return None;
    }
    let rest = &toks[next + 1..];
    let value = match rest {
        [t] if identifier(text, t).as_deref() == Some(b"default") => None,
        _ => Some(list_value(text, rest)?),
    };
    Some(Change::Set { slot, value, local })
}

/// `RESET name`, `RESET ALL`.
fn reset(text: &[u8], toks: &[Token]) -> Option<Change> {
    if let [t] = toks {
        if identifier(text, t).as_deref() == Some(b"all") {
            return Some(Change::ResetAll);
        }
    }
    let (slot, next) = dotted_name(text, toks, 0)?;
    (next == toks.len()).then_some(Change::Set {
        slot,
        value: None,
        local: false,
    })
}

/// `pgtrail.end_user` (two words and a dot, or one quoted name): the slot
/// and the index after it.
fn dotted_name(text: &[u8], toks: &[Token], i: usize) -> Option<(Slot, usize)> {
    let first = identifier(text, toks.get(i)?)?;
    if toks.get(i + 1).is_some_and(|t| t.kind == Tok::Dot) {
        let second = identifier(text, toks.get(i + 2)?)?;
        let name = [&first[..], b".", &second[..]].concat();
        return Some((Slot::of_name(&name)?, i + 3));
    }
    Some((Slot::of_name(&first)?, i + 1))
}

/// A SET value list: constants and words, joined with `, ` as PostgreSQL
/// joins a placeholder's list.
fn list_value(text: &[u8], toks: &[Token]) -> Option<String> {
    let mut parts = Vec::new();
    for (n, t) in toks.iter().enumerate() {
        if n % 2 == 1 {
            if t.kind != Tok::Comma {
                return None;
            }
            continue;
        }
        let part = match t.kind {
            Tok::Str => string_value(&text[t.start..t.end])?,
            Tok::Num => String::from_utf8(text[t.start..t.end].to_vec()).ok()?,
            Tok::Ident | Tok::QIdent => String::from_utf8(identifier(text, t)?).ok()?,
            _ => return None,
        };
        parts.push(part);
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// A string constant's value: `'...'` with `''`, `E'...'` with backslash
/// escapes of quotes and backslashes; other forms (`U&`, dollar quotes
/// with escapes) are taken only when they need no decoding.
fn string_value(raw: &[u8]) -> Option<String> {
    let (escapes, body) = match raw {
        [b'e' | b'E', b'\'', .., b'\''] => (true, &raw[2..raw.len() - 1]),
        [b'\'', .., b'\''] if raw.len() >= 2 => (false, &raw[1..raw.len() - 1]),
        [b'$', ..] => {
            let open = raw.iter().skip(1).position(|&b| b == b'$')? + 2;
            let close = raw.len().checked_sub(open)?;
            (false, raw.get(open..close)?)
        }
        _ => return None,
    };
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let b = body[i];
        // `''` is one quote; with escapes, `\x` is `x` (enough for quotes
        // and backslashes, the only escapes a claim needs).
        let doubled = b == b'\'' && body.get(i + 1) == Some(&b'\'');
        let escaped = escapes && b == b'\\' && i + 1 < body.len();
        if doubled || escaped {
            i += 1;
        }
        out.push(body[i]);
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// A `SELECT` that does nothing but call `set_config` on claim settings
/// with constants or parameters (no `FROM`, no other call): it reads no
/// data, so `require_verified_end_user` lets it make a claim.
pub fn only_sets_claims(text: &[u8], params: &[Option<String>]) -> bool {
    let toks: Vec<Token> = tokenize(text, LexOptions::default())
        .into_iter()
        .filter(|t| t.kind != Tok::Comment)
        .collect();
    let word = |t: &Token| identifier(text, t);
    if toks.first().and_then(word).as_deref() != Some(b"select")
        || toks.iter().any(|t| word(t).as_deref() == Some(b"from"))
    {
        return false;
    }
    let calls = toks.iter().filter(|t| t.kind == Tok::LParen).count();
    let changes = set_configs(text, &toks, params).len();
    changes > 0 && changes == calls
}

/// Every `[pg_catalog.]set_config(name, value, is_local)` of a claim
/// setting with constant (or parameter) arguments.
fn set_configs(text: &[u8], toks: &[Token], params: &[Option<String>]) -> Vec<Change> {
    let mut out = Vec::new();
    for i in 0..toks.len() {
        if identifier(text, &toks[i]).as_deref() != Some(b"set_config") {
            continue;
        }
        let args = &toks[i + 1..];
        let [open, name, c1, value, c2, local, close, ..] = args else {
            continue;
        };
        let shape = open.kind == Tok::LParen
            && c1.kind == Tok::Comma
            && c2.kind == Tok::Comma
            && close.kind == Tok::RParen;
        if !shape {
            continue;
        }
        let arg = |t: &Token| -> Option<String> {
            match t.kind {
                Tok::Param => {
                    let n: usize = std::str::from_utf8(&text[t.start + 1..t.end])
                        .ok()?
                        .parse()
                        .ok()?;
                    params.get(n.checked_sub(1)?)?.clone()
                }
                Tok::Str => string_value(&text[t.start..t.end]),
                Tok::Ident => String::from_utf8(identifier(text, t)?).ok(),
                _ => None,
            }
        };
        let (Some(name), Some(value), Some(local)) = (arg(name), arg(value), arg(local)) else {
            continue;
        };
        let Some(slot) = Slot::of_name(name.as_bytes()) else {
            continue;
        };
        let local = matches!(
            local.to_ascii_lowercase().as_str(),
            "true" | "t" | "on" | "yes" | "1"
        );
        out.push(Change::Set {
            slot,
            value: Some(value),
            local,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(slot: Slot, value: Option<&str>, local: bool) -> Change {
        Change::Set {
            slot,
            value: value.map(String::from),
            local,
        }
    }

    #[test]
    fn set_forms() {
        let cases: &[(&str, Change)] = &[
            (
                "SET pgtrail.end_user = 'alice'",
                set(Slot::EndUser, Some("alice"), false),
            ),
            (
                "set session PGTRAIL.End_User to bob",
                set(Slot::EndUser, Some("bob"), false),
            ),
            (
                "SET LOCAL pgtrail.request_id = 'r-1'",
                set(Slot::RequestId, Some("r-1"), true),
            ),
            (
                "SET \"pgtrail.end_user\" = 'o''brien'",
                set(Slot::EndUser, Some("o'brien"), false),
            ),
            (
                "SET pgtrail.end_user = E'a\\'b'",
                set(Slot::EndUser, Some("a'b"), false),
            ),
            (
                "SET pgtrail.end_user TO DEFAULT",
                set(Slot::EndUser, None, false),
            ),
            (
                "RESET pgtrail.end_user_token",
                set(Slot::EndUserToken, None, false),
            ),
            (
                "SET pgtrail.end_user = 'a', 'b'",
                set(Slot::EndUser, Some("a, b"), false),
            ),
            (
                "SET pgtrail.end_user = $$x$$",
                set(Slot::EndUser, Some("x"), false),
            ),
            (
                "SET /* c */ pgtrail.end_user = 42",
                set(Slot::EndUser, Some("42"), false),
            ),
            ("RESET ALL", Change::ResetAll),
            ("DISCARD ALL", Change::ResetAll),
        ];
        for (sql, want) in cases {
            assert_eq!(changes(sql.as_bytes(), &[]), vec![want.clone()], "{sql}");
        }
    }

    #[test]
    fn set_config_calls() {
        let sql = b"SELECT pg_catalog.set_config('pgtrail.end_user', 'alice', false), set_config('pgtrail.traceparent', $1, true)";
        let params = [Some("00-abc".to_string())];
        assert_eq!(
            changes(sql, &params),
            vec![
                set(Slot::EndUser, Some("alice"), false),
                set(Slot::Traceparent, Some("00-abc"), true)
            ]
        );
        assert!(may_change("SELECT 1", sql));
        assert!(!may_change("SELECT 1", b"SELECT config_x FROM set_y"));
    }

    #[test]
    fn other_settings_and_statements_change_nothing() {
        for sql in [
            "SET search_path = public",
            "SET pgtrail.other = 'x'",
            "SET application_name = 'pgtrail.end_user'",
            "RESET search_path",
            "DISCARD PLANS",
            "SELECT set_config('search_path', 'x', false)",
            "SELECT set_config('pgtrail.end_user', now()::text, false)",
            "SET pgtrail.end_user = now()",
        ] {
            assert_eq!(changes(sql.as_bytes(), &[]), vec![], "{sql}");
        }
    }
}
