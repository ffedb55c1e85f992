//! Which statements of the current transaction may have written rows, as
//! the client's frames go by: where a marker is needed and what it can say
//! about the changes decoded before and after it. A marker's statement
//! index is exact only when no other statement that may write ran since
//! the previous marker.
//!
//! Markers go only where they tell statements apart: the first statement
//! of a block that may write needs none before it; each later one gets a
//! `Before` marker (ending the earlier one's changes and naming itself for
//! the changes after it); the end needs one only if the transaction has
//! none yet (the consumer learns the session from it). So a block with one
//! or two statements that may write costs one marker.

use crate::cdc::marker::Boundary;

/// The client side's view of the current transaction's writers.
#[derive(Debug, Default)]
pub(super) struct Writes {
    /// Statements that may write since the previous marker (or the start).
    since: u32,
    /// The index (within the transaction) of the last of them, if known.
    last: Option<u32>,
    /// One of them has no known index (a Query string of several
    /// statements, a function call).
    lost: bool,
    /// A marker went in this transaction.
    marked: bool,
    /// The statement the last `Before` marker named for the changes after
    /// it, while it is still the only one that may write since.
    claim: Option<u32>,
    /// A statement that may write came before a `SAVEPOINT` without a
    /// marker between them: a marker after the savepoint may be undone
    /// with it (`ROLLBACK TO`), leaving those changes to the next marker,
    /// so no marker of this transaction names a statement any more.
    unbounded: bool,
}

impl Writes {
    /// A statement that may write, at `index` (`None`: not known), sent
    /// without a marker right before it.
    pub fn statement(&mut self, index: Option<u32>) {
        self.claim = None;
        self.since += 1;
        self.last = index;
        self.lost |= index.is_none();
    }

    /// A statement that may write (at `index`) is about to go, where a
    /// marker can go right before it: the marker's boundary when others
    /// may have written since the previous marker (else none is needed).
    /// The statement is counted either way.
    pub fn before(&mut self, index: Option<u32>) -> Option<Boundary> {
        if self.since == 0 {
            self.statement(index);
            return None;
        }
        let boundary = Boundary::Before {
            done: self.single(),
            next: index,
        };
        self.marked_here();
        self.statement(index);
        self.claim = index.filter(|_| !self.unbounded);
        Some(boundary)
    }

    /// A `SAVEPOINT` is about to go, where a marker can go right before it
    /// or not (`can_mark`): the marker's boundary when statements that may
    /// write came since the previous one, so that their changes are told
    /// apart at the outer level, whatever the savepoint's fate.
    pub fn savepoint(&mut self, can_mark: bool) -> Option<Boundary> {
        if self.since == 0 {
            return None;
        }
        if !can_mark {
            self.unbounded = true;
            self.claim = None;
            return None;
        }
        let boundary = Boundary::Before {
            done: self.single(),
            next: None,
        };
        self.marked_here();
        Some(boundary)
    }

    /// `ROLLBACK TO SAVEPOINT`: what may have written since the previous
    /// marker came after that savepoint (a marker went before it
    /// otherwise, or `unbounded` is set), so it is undone, markers
    /// included. Whether any marker of the transaction survives is not
    /// known here, so its end sends one again.
    pub fn rolled_back_to_savepoint(&mut self) {
        self.since = 0;
        self.last = None;
        self.lost = false;
        self.claim = None;
        self.marked = false;
    }

    /// A marker went: nothing may have written since.
    fn marked_here(&mut self) {
        *self = Writes {
            marked: true,
            unbounded: self.unbounded,
            ..Writes::default()
        };
    }

    /// The boundary of the marker the transaction's end needs: one when
    /// it has no marker yet (a read may still have written, through a
    /// function; the marker emits nothing unless the transaction has an
    /// xid), or when it can name the one statement that may have written
    /// since the last marker, which did not name it. Otherwise what
    /// follows the last marker is claimed by it (checked with `claim`) or
    /// is the transaction's.
    pub fn end(&self) -> Option<Boundary> {
        let named = self.claim.is_some() || self.single().is_none();
        (!self.marked || !named).then(|| Boundary::End(self.single()))
    }

    /// The one statement that may have written since the previous marker.
    pub fn single(&self) -> Option<u32> {
        let one = self.since == 1 && !self.lost && !self.unbounded;
        one.then_some(self.last).flatten()
    }

    /// The statement the last marker claimed the changes after it for, if
    /// no other statement that may write came after it.
    pub fn claim(&self) -> Option<u32> {
        self.claim
    }

    /// The transaction ended.
    pub fn reset(&mut self) {
        *self = Writes::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_marker_between_two_writers_and_none_at_the_end() {
        let mut w = Writes::default();
        assert_eq!(
            w.end(),
            Some(Boundary::End(None)),
            "nothing may have written"
        );
        assert_eq!(w.before(Some(1)), None, "the first writer needs none");
        assert_eq!(w.end(), Some(Boundary::End(Some(1))));
        let b = w.before(Some(3));
        assert_eq!(
            b,
            Some(Boundary::Before {
                done: Some(1),
                next: Some(3)
            })
        );
        assert_eq!((w.end(), w.claim()), (None, Some(3)));
    }

    #[test]
    fn a_writer_without_a_marker_breaks_the_claim() {
        let mut w = Writes::default();
        w.before(Some(1));
        w.before(Some(2));
        w.statement(Some(3));
        assert_eq!(w.claim(), None);
        assert_eq!(
            w.before(Some(4)),
            Some(Boundary::Before {
                done: None,
                next: Some(4)
            }),
            "statements 2 and 3 may both have written"
        );
        w.statement(None);
        assert_eq!(w.claim(), None);
    }

    #[test]
    fn savepoints_get_a_marker_before_them_when_writes_are_pending() {
        let mut w = Writes::default();
        w.before(Some(1));
        assert_eq!(
            w.savepoint(true),
            Some(Boundary::Before {
                done: Some(1),
                next: None
            })
        );
        w.before(Some(3));
        w.rolled_back_to_savepoint();
        assert_eq!(w.end(), Some(Boundary::End(None)), "markers may be undone");
        w.before(Some(5));
        assert_eq!(w.end(), Some(Boundary::End(Some(5))), "named by no marker");
        // A savepoint that could not be marked with writes pending: none
        // of the transaction's markers names a statement any more.
        let mut w = Writes::default();
        w.before(Some(1));
        assert_eq!(w.savepoint(false), None);
        assert_eq!(
            w.before(Some(3)),
            Some(Boundary::Before {
                done: None,
                next: Some(3)
            })
        );
        assert_eq!(w.claim(), None);
        w.rolled_back_to_savepoint();
        w.before(Some(5));
        assert_eq!(w.end(), Some(Boundary::End(None)), "inexact, but a marker");
    }

    #[test]
    fn the_end_names_the_one_writer_no_marker_named() {
        let mut w = Writes::default();
        w.statement(Some(1));
        w.savepoint(true);
        w.statement(Some(2));
        assert_eq!(
            w.end(),
            Some(Boundary::End(Some(2))),
            "it can name statement 2"
        );
        w.statement(Some(3));
        assert_eq!(w.end(), None, "a marker went, and the end names no one");
        w.reset();
        w.statement(None);
        assert_eq!(w.end(), Some(Boundary::End(None)));
        w.reset();
        w.statement(Some(0));
        w.statement(Some(1));
        assert_eq!(w.end(), Some(Boundary::End(None)));
    }
}
