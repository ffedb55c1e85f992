//! The leading words of a statement, enough to tell a transaction's end,
//! statements that only read, and Query strings worth wrapping
//! (`internal.rs`, `wrap.rs`).

/// [`Lead::ends_transaction`] of `text`.
pub fn ends_transaction(text: &[u8]) -> bool {
    Lead::of(text).ends_transaction()
}

/// One statement (semicolons inside quotes and bodies do not count). A
/// text with no semicolon but a final one (pgbench's `...;`) is at most
/// one statement, whatever its quotes and comments: no lexing.
pub fn single_statement(text: &[u8]) -> bool {
    let body = text.trim_ascii_end();
    let body = body.strip_suffix(b";").unwrap_or(body);
    !body.contains(&b';') || crate::sql::lex::statement_ranges(text).len() == 1
}

/// One `INSERT`, `UPDATE`, `DELETE` or `MERGE` (or a `WITH` naming one
/// of them).
fn is_dml(text: &[u8]) -> bool {
    let (first, _) = leading_words(text);
    DML.iter().any(|w| eq(first, w)) || eq(first, b"with") && names_dml(text)
}

const DML: &[&[u8]] = &[b"insert", b"update", b"delete", b"merge"];

/// A DML keyword appears as a word anywhere in `text` (in a string or a
/// comment too: a cheap test before lexing).
fn names_dml(text: &[u8]) -> bool {
    text.split(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .any(|w| DML.iter().any(|d| eq(w, d)))
}

/// A Query string worth wrapping in a transaction (`wrap.rs`): DML
/// statements, and reads beside them, at least one DML. Nothing that
/// cannot run in a block or behaves otherwise there (`VACUUM`, `CALL` of
/// a procedure that commits, transaction control, `COPY` and its copy
/// mode) qualifies. `Some` with the index of the one statement that may
/// write, if there is one.
pub fn wrappable(text: &[u8]) -> Option<Option<u32>> {
    const READS: &[&[u8]] = &[b"select", b"values", b"table"];
    if !names_dml(text) {
        // Reads only (pgbench -S's `SELECT ...;`): no lexing.
        return None;
    }
    if single_statement(text) {
        return is_dml(text).then_some(Some(0));
    }
    let mut writers = Vec::new();
    for (i, range) in crate::sql::lex::statement_ranges(text)
        .into_iter()
        .enumerate()
    {
        let s = &text[range];
        if is_dml(s) || READS.iter().any(|r| eq(leading_words(s).0, r)) {
            if may_write(s) {
                writers.push(i as u32);
            }
        } else {
            return None;
        }
    }
    let dml = !writers.is_empty();
    dml.then(|| (writers.len() == 1).then(|| writers[0]))
}

/// [`Lead::is_copy_from`] of `text`.
pub fn is_copy_from(text: &[u8]) -> bool {
    Lead::of(text).is_copy_from()
}

/// [`Lead::begins_block`] of `text`.
pub fn begins_block(text: &[u8]) -> bool {
    Lead::of(text).begins_block()
}

/// [`Lead::is_copy`] of `text`.
pub fn is_copy(text: &[u8]) -> bool {
    Lead::of(text).is_copy()
}

/// [`Lead::may_write`] of `text`.
pub fn may_write(text: &[u8]) -> bool {
    Lead::of(text).may_write()
}

/// [`Lead::is_claim_control`] of `text`.
pub fn is_claim_control(text: &[u8]) -> bool {
    Lead::of(text).is_claim_control()
}

/// [`Lead::may_end_or_reset`] of `text`.
pub fn may_end_or_reset(text: &[u8]) -> bool {
    Lead::of(text).may_end_or_reset()
}

/// [`Lead::rolls_back`] of `text`.
pub fn rolls_back(text: &[u8]) -> bool {
    Lead::of(text).rolls_back()
}

/// A statement's first two words, found once and asked several questions
/// (the tracker asks up to five of each statement it sees).
#[derive(Debug, Clone, Copy)]
pub struct Lead<'a> {
    text: &'a [u8],
    first: &'a [u8],
    second: &'a [u8],
}

impl<'a> Lead<'a> {
    pub fn of(text: &'a [u8]) -> Self {
        let (first, second) = leading_words(text);
        Lead {
            text,
            first,
            second,
        }
    }

    /// `COMMIT`, `END`, `PREPARE TRANSACTION` (not `PREPARE name AS`).
    pub fn ends_transaction(&self) -> bool {
        eq(self.first, b"commit")
            || eq(self.first, b"end")
            || eq(self.first, b"prepare") && eq(self.second, b"transaction")
    }

    /// One `COPY ... FROM` statement (from the client or a server file).
    pub fn is_copy_from(&self) -> bool {
        self.is_copy()
            && single_statement(self.text)
            && self
                .text
                .split(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                .any(|w| eq(w, b"from"))
            && !self
                .text
                .split(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
                .any(|w| eq(w, b"to"))
    }

    /// `BEGIN` or `START TRANSACTION`.
    pub fn begins_block(&self) -> bool {
        eq(self.first, b"begin") || eq(self.first, b"start")
    }

    /// `COPY`, whose Execute may start COPY IN.
    pub fn is_copy(&self) -> bool {
        eq(self.first, b"copy")
    }

    /// Anything but the statements that cannot change a table's rows. A
    /// `SELECT` (`VALUES`, `TABLE`) can only through a function: it counts
    /// as a read when its text calls none (no parenthesis). A view whose
    /// definition calls a function that writes is the case this misses.
    pub fn may_write(&self) -> bool {
        const NEVER: &[&[u8]] = &[
            b"show",
            b"begin",
            b"start",
            b"set",
            b"reset",
            b"savepoint",
            b"release",
            b"rollback",
            b"abort",
            b"commit",
            b"end",
            b"listen",
            b"unlisten",
            b"deallocate",
            b"discard",
            b"close",
            b"prepare",
        ];
        const UNLESS_CALLING: &[&[u8]] = &[b"select", b"values", b"table"];
        if self.first.is_empty() || NEVER.iter().any(|r| eq(self.first, r)) {
            return false;
        }
        !UNLESS_CALLING.iter().any(|r| eq(self.first, r)) || self.text.contains(&b'(')
    }

    /// Transaction control and settings: what needs no end user under
    /// `require_verified_end_user` (`verified.rs`).
    pub fn is_claim_control(&self) -> bool {
        const CONTROL: &[&[u8]] = &[
            b"begin",
            b"start",
            b"commit",
            b"end",
            b"rollback",
            b"abort",
            b"savepoint",
            b"release",
            b"set",
            b"reset",
            b"show",
            b"discard",
        ];
        CONTROL.iter().any(|w| eq(self.first, w))
            || eq(self.first, b"prepare") && eq(self.second, b"transaction")
    }

    /// Statements that may end a transaction or reset settings.
    pub fn may_end_or_reset(&self) -> bool {
        const WORDS: &[&[u8]] = &[
            b"commit",
            b"end",
            b"rollback",
            b"abort",
            b"release",
            b"reset",
            b"discard",
            b"prepare",
        ];
        WORDS.iter().any(|w| eq(self.first, w))
    }

    /// `SAVEPOINT x`.
    pub fn is_savepoint(&self) -> bool {
        eq(self.first, b"savepoint")
    }

    /// `ROLLBACK TO [SAVEPOINT] x` (or `ABORT`, with `WORK`/`TRANSACTION`).
    pub fn rolls_back_to_savepoint(&self) -> bool {
        self.rolls_back() && super::txn::rollback_to_name(self.text).is_some()
    }

    /// `ROLLBACK` or `ABORT` (including `ROLLBACK TO`).
    pub fn rolls_back(&self) -> bool {
        eq(self.first, b"rollback") || eq(self.first, b"abort")
    }
}

fn eq(word: &[u8], lower: &[u8]) -> bool {
    word.eq_ignore_ascii_case(lower)
}

/// The first two words, after spaces, comments and opening parentheses.
fn leading_words(text: &[u8]) -> (&[u8], &[u8]) {
    let (first, rest) = word(text);
    (first, word(rest).0)
}

fn word(text: &[u8]) -> (&[u8], &[u8]) {
    let start = skip_noise(text);
    let t = &text[start..];
    let len = t
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b'_'))
        .unwrap_or(t.len());
    (&t[..len], &t[len..])
}

fn skip_noise(t: &[u8]) -> usize {
    let mut i = 0;
    loop {
        match t.get(i..) {
            Some([b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'(', ..]) => i += 1,
            Some([b'-', b'-', ..]) => {
                i += t[i..]
                    .iter()
                    .position(|b| *b == b'\n')
                    .unwrap_or(t.len() - i)
            }
            Some([b'/', b'*', ..]) => i += block_comment(&t[i..]),
            _ => return i,
        }
    }
}

/// The length of a (nested) block comment at the start of `t`.
fn block_comment(t: &[u8]) -> usize {
    let (mut depth, mut i) = (0usize, 0);
    while i + 1 < t.len() {
        match &t[i..i + 2] {
            b"/*" => (depth, i) = (depth + 1, i + 2),
            b"*/" => {
                (depth, i) = (depth - 1, i + 2);
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    t.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_ends() {
        for t in [
            "COMMIT",
            " commit;",
            "END",
            "/* x /* y */ */ COMMIT",
            "-- c\nEND WORK",
            "PREPARE TRANSACTION 'a'",
        ] {
            assert!(ends_transaction(t.as_bytes()), "{t}");
        }
        for t in [
            "COMMITTED",
            "PREPARE q AS SELECT 1",
            "ROLLBACK",
            "",
            "/* COMMIT",
        ] {
            assert!(!ends_transaction(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn single_statements() {
        for t in [
            "SELECT 1",
            "UPDATE t SET a = 1 WHERE b = 2;",
            "INSERT INTO t VALUES ('a;b');",
            "SELECT 1; \n",
            "SELECT 1; -- and a comment",
            "DO $$ BEGIN PERFORM 1; END $$",
        ] {
            assert!(single_statement(t.as_bytes()), "{t}");
        }
        for t in [
            "SELECT 1; SELECT 2",
            "SELECT 1;SELECT 2;",
            "SELECT ';'; SELECT 2",
        ] {
            assert!(!single_statement(t.as_bytes()), "{t}");
        }
    }

    #[test]
    fn writes() {
        for t in [
            "INSERT INTO t VALUES (1)",
            "(  update t set a = 1)",
            "WITH d AS (DELETE FROM t) SELECT 1",
            "COPY t FROM STDIN",
            "CALL p()",
            "MERGE INTO t",
            "SELECT f(1)",
            "FETCH 10 FROM c",
        ] {
            assert!(may_write(t.as_bytes()), "{t}");
        }
        for t in [
            "SELECT 1",
            " select * from t",
            "SHOW x",
            "BEGIN",
            "",
            "-- only a comment",
            "SELECT abalance FROM a WHERE aid = 3",
        ] {
            assert!(!may_write(t.as_bytes()), "{t}");
        }
    }
}
