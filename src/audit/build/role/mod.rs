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

use crate::audit::event::SessionInfo;

mod startup;
mod statement;

pub use startup::StartupIdentity;
pub use statement::{role_change, RoleChange};

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
mod tests;
