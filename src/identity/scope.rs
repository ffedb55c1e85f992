//! The `pgtrail.*` settings of one session, scoped as PostgreSQL scopes a
//! setting (its `guc.c` stack, per setting): a change made inside a
//! (sub)transaction remembers the value before it; committing a savepoint
//! merges that memory into the enclosing level; aborting one restores it;
//! at the end of the transaction a `SET` stays, a `SET LOCAL` goes, and a
//! rollback undoes both. Every statement runs in a transaction (implicit
//! ones too), at level 1 plus the savepoints open.

use std::sync::Arc;

use super::setting::{Change, Slot, SLOTS};

/// A setting's value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    pub text: Arc<str>,
    /// Set by the StartupMessage (`options=-c ...`), not by a statement.
    pub startup: bool,
}

type Val = Option<Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Set,
    Local,
    /// A `SET LOCAL` over a `SET` of the same level: `masked` is the SET's.
    SetLocal,
}

#[derive(Debug, Clone)]
struct Frame {
    level: u32,
    state: State,
    prior: Val,
    masked: Val,
}

/// The claim settings of a session.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: [Val; SLOTS],
    /// What `RESET` returns to: the startup values.
    reset: [Val; SLOTS],
    stacks: [Vec<Frame>; SLOTS],
    /// Moves on every change, so a caller can keep what it derived.
    generation: u64,
}

impl Settings {
    /// A session whose StartupMessage set these (`options=-c pgtrail.x=v`).
    pub fn with_startup(values: &[(Slot, String)]) -> Settings {
        let mut s = Settings::default();
        for (slot, text) in values {
            let v = Some(Value {
                text: Arc::from(text.as_str()),
                startup: true,
            });
            s.values[*slot as usize] = v.clone();
            s.reset[*slot as usize] = v;
        }
        s
    }

    pub fn get(&self, slot: Slot) -> Option<&Value> {
        self.values[slot as usize].as_ref()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Applies a successful statement's change, made at `level` (1 plus
    /// the savepoints open).
    pub fn apply(&mut self, change: &Change, level: u32) {
        match change {
            Change::Set { slot, value, local } => {
                let v = match value {
                    Some(text) => Some(Value {
                        text: Arc::from(text.as_str()),
                        startup: false,
                    }),
                    None => self.reset[*slot as usize].clone(),
                };
                self.set(*slot, v, *local, level);
            }
            Change::ResetAll => {
                for slot in Slot::ALL {
                    let v = self.reset[slot as usize].clone();
                    self.set(slot, v, false, level);
                }
            }
        }
        self.generation += 1;
    }

    fn set(&mut self, slot: Slot, v: Val, local: bool, level: u32) {
        let i = slot as usize;
        let current = self.values[i].clone();
        match self.stacks[i].last_mut() {
            Some(top) if top.level >= level => match (local, top.state) {
                (false, _) => {
                    top.state = State::Set;
                    top.masked = None;
                }
                (true, State::Set) => {
                    top.masked = current;
                    top.state = State::SetLocal;
                }
                (true, _) => {}
            },
            _ => self.stacks[i].push(Frame {
                level,
                state: if local { State::Local } else { State::Set },
                prior: current,
                masked: None,
            }),
        }
        self.values[i] = v;
    }

    /// `RELEASE`: savepoint levels above `level` commit into it.
    pub fn release_to(&mut self, level: u32) {
        self.end_levels_above(level, true);
    }

    /// `ROLLBACK TO`: savepoint levels above `level` are undone.
    pub fn rollback_to(&mut self, level: u32) {
        self.end_levels_above(level, false);
    }

    /// The transaction ended: committed (or prepared) or not.
    pub fn end_transaction(&mut self, committed: bool) {
        self.end_levels_above(0, committed);
    }

    /// Ends each level above `to`, innermost first, as `AtEOXact_GUC` does.
    fn end_levels_above(&mut self, to: u32, commit: bool) {
        let deepest = self
            .stacks
            .iter()
            .filter_map(|s| s.last().map(|f| f.level))
            .max()
            .unwrap_or(0);
        if deepest <= to {
            return;
        }
        for level in (to + 1..=deepest).rev() {
            for i in 0..SLOTS {
                self.end_level(i, level, commit);
            }
        }
        self.generation += 1;
    }

    fn end_level(&mut self, i: usize, level: u32, commit: bool) {
        let stack = &mut self.stacks[i];
        let Some(top) = stack.last() else { return };
        if top.level < level {
            return;
        }
        let Some(mut f) = stack.pop() else { return };
        let restore = match (commit, level) {
            (false, _) => Some(f.prior),
            (true, 1) => match f.state {
                State::Set => None,
                State::Local => Some(f.prior),
                State::SetLocal => Some(f.masked),
            },
            (true, _) => {
                match stack.last_mut() {
                    Some(prev) if prev.level == level - 1 => match f.state {
                        State::Set => {
                            prev.state = State::Set;
                            prev.masked = None;
                        }
                        State::Local => {
                            if prev.state == State::Set {
                                prev.masked = f.prior;
                                prev.state = State::SetLocal;
                            }
                        }
                        State::SetLocal => {
                            prev.masked = f.masked;
                            prev.state = State::SetLocal;
                        }
                    },
                    _ => {
                        f.level = level - 1;
                        stack.push(f);
                    }
                }
                None
            }
        };
        if let Some(v) = restore {
            self.values[i] = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &mut Settings, v: &str, local: bool, level: u32) {
        let change = Change::Set {
            slot: Slot::EndUser,
            value: Some(v.into()),
            local,
        };
        s.apply(&change, level);
    }

    fn now(s: &Settings) -> Option<&str> {
        s.get(Slot::EndUser).map(|v| &*v.text)
    }

    #[test]
    fn set_stays_after_commit_and_goes_after_rollback() {
        let mut s = Settings::default();
        set(&mut s, "alice", false, 1);
        s.end_transaction(true);
        assert_eq!(now(&s), Some("alice"));
        set(&mut s, "bob", false, 1);
        s.end_transaction(false);
        assert_eq!(now(&s), Some("alice"));
    }

    #[test]
    fn set_local_lasts_to_the_end_of_the_transaction() {
        let mut s = Settings::default();
        set(&mut s, "alice", false, 1);
        s.end_transaction(true);
        set(&mut s, "bob", true, 1);
        assert_eq!(now(&s), Some("bob"));
        s.end_transaction(true);
        assert_eq!(now(&s), Some("alice"));
    }

    #[test]
    fn set_then_set_local_then_commit_keeps_the_set() {
        let mut s = Settings::default();
        set(&mut s, "alice", false, 1);
        set(&mut s, "bob", true, 1);
        s.end_transaction(true);
        assert_eq!(now(&s), Some("alice"));
        // SET LOCAL then SET: the SET wins.
        set(&mut s, "carol", true, 1);
        set(&mut s, "dave", false, 1);
        s.end_transaction(true);
        assert_eq!(now(&s), Some("dave"));
    }

    #[test]
    fn savepoints() {
        let mut s = Settings::default();
        set(&mut s, "alice", false, 1);
        // SAVEPOINT a; SET bob; ROLLBACK TO a: alice again.
        set(&mut s, "bob", false, 2);
        s.rollback_to(1);
        assert_eq!(now(&s), Some("alice"));
        // SAVEPOINT a; SET carol; RELEASE a; COMMIT: carol.
        set(&mut s, "carol", false, 2);
        s.release_to(1);
        assert_eq!(now(&s), Some("carol"));
        s.end_transaction(true);
        assert_eq!(now(&s), Some("carol"));
        // SET LOCAL inside a released savepoint lasts to the end of the
        // outer transaction, then goes.
        set(&mut s, "erin", true, 2);
        s.release_to(1);
        assert_eq!(now(&s), Some("erin"));
        s.end_transaction(true);
        assert_eq!(now(&s), Some("carol"));
        // A savepoint's SET over a SET of the outer level, both undone by
        // the rollback of the whole transaction.
        set(&mut s, "frank", false, 1);
        set(&mut s, "gina", false, 3);
        s.release_to(1);
        s.end_transaction(false);
        assert_eq!(now(&s), Some("carol"));
    }

    #[test]
    fn reset_returns_to_the_startup_value() {
        let mut s = Settings::with_startup(&[(Slot::EndUser, "svc".into())]);
        assert!(s.get(Slot::EndUser).is_some_and(|v| v.startup));
        set(&mut s, "alice", false, 1);
        s.end_transaction(true);
        assert!(s.get(Slot::EndUser).is_some_and(|v| !v.startup));
        s.apply(&Change::ResetAll, 1);
        s.end_transaction(true);
        assert_eq!(now(&s), Some("svc"));
        assert!(s.get(Slot::EndUser).is_some_and(|v| v.startup));
    }
}
