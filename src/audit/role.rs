//! The acting role of a session (`effective_role` on records): what
//! `current_user` is in PostgreSQL after roles set at startup (`options`
//! `-c role=...` / `-c session_authorization=...`, or the same names as
//! startup parameters) and by `SET ROLE`, `SET SESSION AUTHORIZATION`,
//! their `RESET` forms and `DISCARD ALL` during the session.
//!
//! Followed from statement text and outcome, on the audit writer thread:
//! only successful statements change the role; a change inside a
//! transaction block (after `BEGIN`) counts from then on, becomes the
//! session's at `COMMIT` and is dropped at `ROLLBACK`; `SET LOCAL` lasts
//! to the end of the block. Not followed (see docs/operations.md):
//! `ROLLBACK TO SAVEPOINT`, `set_config('role', ...)`, a SET undone
//! because a later statement of the same implicit transaction failed.

use std::collections::HashMap;

use super::event::SessionInfo;
use crate::sql::lex::{kw, tokenize, LexOptions, Tok, Token};

/// Roles a StartupMessage sets, as PostgreSQL applies them: `options`
/// first, then the other parameters, the last assignment winning.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartupIdentity {
    pub session_authorization: Option<String>,
    pub role: Option<String>,
}

impl StartupIdentity {
    /// From the startup parameters (name, value), in the order sent.
    pub fn from_params<'a>(params: impl Iterator<Item = (&'a str, &'a str)> + Clone) -> Self {
        let mut id = StartupIdentity::default();
        let options = params.clone().filter(|(k, _)| *k == "options");
        for (_, text) in options {
            for (name, value) in option_settings(text) {
                id.apply(&name, &value);
            }
        }
        for (name, value) in params.filter(|(k, _)| *k != "options") {
            id.apply(&name.to_ascii_lowercase(), value);
        }
        id
    }

    fn apply(&mut self, name: &str, value: &str) {
        match name {
            "role" => self.role = (value != "none").then(|| value.to_string()),
            "session_authorization" => {
                // SET SESSION AUTHORIZATION makes the role inactive.
                self.session_authorization = Some(value.to_string());
                self.role = None;
            }
            _ => {}
        }
    }
}

/// `name=value` settings of an `options` string: words split at
/// whitespace with `\` escaping the next character (PostgreSQL's
/// `pg_split_opts`), read as `-c name=value`, `-cname=value` or
/// `--name=value` (`-` in the name read as `_`).
fn option_settings(text: &str) -> Vec<(String, String)> {
    let words = split_opts(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        let setting = if w == "-c" {
            i += 1;
            words.get(i).map(String::as_str)
        } else {
            w.strip_prefix("--").or_else(|| w.strip_prefix("-c"))
        };
        if let Some((name, value)) = setting.and_then(|s| s.split_once('=')) {
            out.push((name.replace('-', "_").to_ascii_lowercase(), value.into()));
        }
        i += 1;
    }
    out
}

fn split_opts(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_ascii_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return words;
        }
        let mut word = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_ascii_whitespace()) {
            match c {
                '\\' => word.extend(chars.next()),
                c => word.push(c),
            }
        }
        words.push(word);
    }
}

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

/// Session user and role: `current_user` is the role when one is set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Roles {
    session: String,
    role: Option<String>,
}

impl Roles {
    fn effective(&self) -> &str {
        self.role.as_deref().unwrap_or(&self.session)
    }
}

/// One session's roles after changes; kept only once a change happened.
#[derive(Debug, Clone)]
struct SessionRoles {
    /// What `RESET` returns to: the roles as the session started.
    start: Roles,
    /// Outside any transaction block, or as of its start.
    committed: Roles,
    /// Changes made in the open transaction block.
    pending: Option<Roles>,
    /// `SET LOCAL` in the open block.
    local: Option<Roles>,
    in_block: bool,
}

/// The roles of every session that changed its role, keyed by session id;
/// an entry goes with the session's disconnect record.
#[derive(Debug, Default)]
pub struct RoleTracker {
    sessions: HashMap<String, SessionRoles>,
}

fn start_roles(s: &SessionInfo) -> Roles {
    let id = &s.startup_identity;
    Roles {
        session: id
            .session_authorization
            .clone()
            .unwrap_or_else(|| s.db_role.clone()),
        role: id.role.clone(),
    }
}

impl RoleTracker {
    /// The acting role of `session` now.
    pub fn effective(&self, session: &SessionInfo) -> String {
        match self.sessions.get(&session.session_id) {
            Some(r) => r
                .local
                .as_ref()
                .or(r.pending.as_ref())
                .unwrap_or(&r.committed)
                .effective()
                .to_string(),
            None => start_roles(session).effective().to_string(),
        }
    }

    /// Follows a statement that ran (after its record took `effective`).
    pub fn after_statement(&mut self, session: &SessionInfo, text: &[u8], tag: &str) {
        let block = block_effect(tag);
        let change = role_change(text);
        if change.is_none() && block.is_none() && !self.sessions.contains_key(&session.session_id) {
            return;
        }
        let entry = self
            .sessions
            .entry(session.session_id.clone())
            .or_insert_with(|| {
                let start = start_roles(session);
                SessionRoles {
                    committed: start.clone(),
                    start,
                    pending: None,
                    local: None,
                    in_block: false,
                }
            });
        if let Some(change) = change {
            entry.apply(change);
        }
        if let Some(b) = block {
            entry.end_or_begin(b);
        }
    }

    /// Forgets a session (its disconnect record was built).
    pub fn end_session(&mut self, session_id: &str) {
        self.sessions.remove(session_id);
    }
}

#[derive(Clone, Copy)]
enum Block {
    Begin,
    Commit,
    Rollback,
}

/// Transaction-block effect of a successful statement, from its tag (a
/// COMMIT of a failed block answers `ROLLBACK`).
fn block_effect(tag: &str) -> Option<Block> {
    match tag {
        "BEGIN" | "START TRANSACTION" => Some(Block::Begin),
        "COMMIT" | "PREPARE TRANSACTION" => Some(Block::Commit),
        "ROLLBACK" => Some(Block::Rollback),
        _ => None,
    }
}

impl SessionRoles {
    fn apply(&mut self, change: RoleChange) {
        let local = matches!(
            change,
            RoleChange::SetRole { local: true, .. }
                | RoleChange::ResetRole { local: true }
                | RoleChange::SetSession { local: true, .. }
        );
        if local && !self.in_block {
            return; // PostgreSQL ignores SET LOCAL outside a block.
        }
        let mut roles = self
            .local
            .clone()
            .or_else(|| self.pending.clone())
            .unwrap_or_else(|| self.committed.clone());
        match change {
            RoleChange::SetRole { role, .. } => roles.role = role,
            RoleChange::ResetRole { .. } => roles.role = self.start.role.clone(),
            RoleChange::SetSession { user, .. } => {
                roles.session = user.unwrap_or_else(|| self.start.session.clone());
                roles.role = None;
            }
            RoleChange::DiscardAll => {
                roles.session = self.start.session.clone();
                roles.role = None;
            }
        }
        match (local, self.in_block) {
            (true, _) => self.local = Some(roles),
            (false, true) => {
                self.pending = Some(roles);
                self.local = None;
            }
            (false, false) => self.committed = roles,
        }
    }

    fn end_or_begin(&mut self, b: Block) {
        match b {
            Block::Begin => self.in_block = true,
            Block::Commit => {
                if let Some(p) = self.pending.take() {
                    self.committed = p;
                }
            }
            Block::Rollback => self.pending = None,
        }
        if !matches!(b, Block::Begin) {
            self.in_block = false;
            self.local = None;
        }
    }
}

#[cfg(test)]
#[path = "role_tests.rs"]
mod tests;
