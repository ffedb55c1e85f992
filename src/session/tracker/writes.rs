//! Which statements of the current transaction may have written rows, as
//! the client's frames go by: what a marker can say about the changes
//! decoded before it. A marker's statement index is exact only when no
//! other statement that may write ran since the previous marker.

/// The client side's view of the current transaction's writers.
#[derive(Debug, Default)]
pub(super) struct Writes {
    /// Statements that may write, forwarded in this transaction.
    count: u32,
    /// The index (within the transaction) of the last of them.
    last: Option<u32>,
    /// One of them went without a marker right after it.
    unmarked: bool,
    /// A marker followed a statement in this transaction.
    after_marked: bool,
    /// A Query string of several statements: indices are not followed.
    indices_lost: bool,
}

impl Writes {
    /// A statement that may write, at `index` (`None`: not known), and
    /// whether a marker goes right after it.
    pub fn statement(&mut self, index: Option<u32>, marked_after: bool) {
        self.count += 1;
        self.last = index;
        self.indices_lost |= index.is_none();
        if marked_after {
            self.unmarked = false;
            self.after_marked = true;
        } else {
            self.unmarked = true;
        }
    }

    /// A marker right after the statement at `index`: its index, when the
    /// changes since the previous marker can only be that statement's.
    pub fn exact_after(&self, index: u32) -> Option<u32> {
        (!self.unmarked && !self.indices_lost).then_some(index)
    }

    /// A marker at the transaction's end: the one statement that may have
    /// written, if there was exactly one.
    pub fn single_writer(&self) -> Option<u32> {
        match (self.count, self.indices_lost) {
            (1, false) => self.last,
            _ => None,
        }
    }

    /// A marker followed a statement: the end needs none.
    pub fn after_marked(&self) -> bool {
        self.after_marked
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
    fn exact_only_without_unmarked_writers_between() {
        let mut w = Writes::default();
        assert_eq!(w.exact_after(1), Some(1));
        w.statement(Some(1), true);
        assert_eq!(w.exact_after(3), Some(3));
        w.statement(Some(2), false);
        assert_eq!(w.exact_after(3), None, "statement 2 may have written");
        w.statement(Some(3), true);
        assert_eq!(w.exact_after(4), Some(4));
        assert!(w.after_marked());
        w.reset();
        w.statement(Some(0), false);
        assert_eq!(w.single_writer(), Some(0));
        w.statement(Some(1), false);
        assert_eq!(w.single_writer(), None);
        w.reset();
        w.statement(None, false);
        assert_eq!(w.single_writer(), None);
    }
}
