//! A statement event's record: its own text out of a Query string, the
//! text policy (redaction, length limit, lossless text), classification,
//! the acting role and its transaction's bookkeeping.

use std::ops::Range;

use super::{transactions, RecordBuilder};
use crate::audit::event::{Param, StatementEvent, TxnStatus};
use crate::audit::record::{Label, StatementRecord};
use crate::session::tracker::may_write;
use crate::text::lossless;

impl RecordBuilder {
    pub(super) fn statement(&mut self, e: StatementEvent) -> StatementRecord {
        let header = self.header(e.started_at);
        let position = e.failure.as_ref().and_then(|f| f.position);
        let pick = |parts: &[_]| pick_statement(&e.text, parts, e.statement_index, position);
        let (range, mut c) = if may_hold_several(&e.text) {
            self.classifier.classify_picked(&e.text, &pick)
        } else {
            (0..e.text.len(), self.classifier.classify(&e.text))
        };
        let text = &e.text[range];
        let (statement, truncated, escaped) = match c.redacted.take() {
            Some(r) => {
                let (s, cut) = truncate(r, self.max_statement_bytes);
                (s, cut, c.redacted_escaped)
            }
            None => {
                let (s, escaped) = lossless(text);
                let (s, cut) = truncate(s.into_owned(), self.max_statement_bytes);
                (s, cut, escaped)
            }
        };
        let s = &e.session;
        let columns = self.columns.record(
            &s.session_id,
            &s.database,
            text,
            e.failure.is_none(),
            &mut c,
        );
        let (sqlstate, error_message) = match &e.failure {
            Some(f) => (f.sqlstate.clone(), f.message.clone()),
            None => (String::new(), String::new()),
        };
        let effective_role = self.roles.effective(s);
        let command_tag = e.command_tag.unwrap_or_default();
        let rows = e.rows.unwrap_or(0);
        let written = match e.failure {
            None => transactions::rows_written(&command_tag, rows, !c.objects_written.is_empty()),
            Some(_) => 0,
        };
        self.transactions
            .statement(e.transaction, header.seq, written);
        // Markers name only statements that may write, and a read in
        // autocommit is a transaction of its own that changes nothing: its
        // seq is not kept for changes (pgbench -S's reads).
        let named_by_changes = || e.txn_status != TxnStatus::Idle || may_write(text);
        if let Some(recent) = self.recent.as_mut().filter(|_| named_by_changes()) {
            recent.insert(
                e.transaction.id,
                e.transaction.index,
                header.seq,
                &e.end_user,
            );
        }
        if e.failure.is_none() {
            // Only SET, RESET and DISCARD change roles: other statements
            // are not lexed again (the classifier already read them).
            let may_change = matches!(&*c.kind, "set" | "reset" | "discard" | "unknown" | "");
            let text = if may_change { text } else { &[] };
            self.roles.after_statement(s, text, &command_tag);
        }
        StatementRecord {
            header,
            duration_us: e.duration_us,
            session_id: s.session_id.clone(),
            backend_pid: s.backend_pid,
            user: s.user.clone(),
            db_role: s.db_role.clone(),
            effective_role,
            database: s.database.clone(),
            client_addr: self.client_addr(s.client_addr),
            client_port: s.client_port,
            application_name: e.application_name.to_string(),
            protocol: e.protocol,
            statement,
            statement_truncated: truncated,
            statement_escaped: escaped,
            fingerprint: c.fingerprint,
            normalized: c.normalized,
            kind: c.kind,
            class: c.class,
            crud: c.crud,
            audit_class: c.audit_class,
            objects_read: c.objects_read,
            objects_written: c.objects_written,
            functions: c.functions,
            parser: c.parser,
            command_tag,
            rows,
            success: e.failure.is_none(),
            sqlstate,
            error_message,
            txn_status: Label::Borrowed(e.txn_status.label()),
            transaction_id: e.transaction.id,
            params: e.params.map(|p| p.iter().map(render_param).collect()),
            columns,
            end_user: e.end_user,
        }
    }
}

/// The text of the statement a result belongs to. An error position (1-based,
/// in characters) wins over the index, because PostgreSQL rejects a whole
/// Query string for a syntax error in any one of its statements.
pub fn own_statement(text: &[u8], index: u32, error_position: Option<u32>) -> &[u8] {
    if !may_hold_several(text) {
        return text;
    }
    let parts = crate::sql::statement_ranges(text);
    pick_statement(text, &parts, index, error_position).map_or(text, |i| &text[parts[i].clone()])
}

/// The statement (of `parts`) [`own_statement`] picks; None: the whole text.
fn pick_statement(
    text: &[u8],
    parts: &[Range<usize>],
    index: u32,
    error_position: Option<u32>,
) -> Option<usize> {
    if parts.len() <= 1 {
        return None;
    }
    let by_position = error_position.and_then(|p| {
        let s = std::str::from_utf8(text).ok()?;
        let offset = s
            .char_indices()
            .nth(p.checked_sub(1)? as usize)
            .map_or(s.len(), |(i, _)| i);
        parts.iter().position(|r| offset < r.end)
    });
    by_position.or_else(|| Some(index as usize).filter(|&i| i < parts.len()))
}

/// Most Query strings hold one statement, at most followed by `;`: those
/// need no lexing here (the analyzer lexes them anyway).
pub fn may_hold_several(text: &[u8]) -> bool {
    match text.iter().position(|&b| b == b';') {
        Some(p) => !text[p + 1..].iter().all(|b| b.is_ascii_whitespace()),
        None => false,
    }
}

fn truncate(mut s: String, max: usize) -> (String, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    (s, true)
}

/// Text parameters as text (escaped if not UTF-8); binary ones in bytea hex form.
fn render_param(p: &Param) -> Option<String> {
    let v = p.value.as_ref()?;
    if p.binary {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(2 + v.len() * 2);
        s.push_str("\\x");
        for b in v.iter() {
            s.push(char::from(HEX[usize::from(b >> 4)]));
            s.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        Some(s)
    } else {
        Some(lossless(v).0.into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_statement_by_index_or_error_position() {
        let text = b"SELECT 1; SELEC 2; SELECT 3";
        assert_eq!(own_statement(text, 0, None), b"SELECT 1");
        assert_eq!(own_statement(text, 2, None), b"SELECT 3");
        assert_eq!(own_statement(text, 0, Some(11)), b"SELEC 2");
        assert_eq!(own_statement(b"SELECT 1", 0, None), b"SELECT 1");
        assert_eq!(own_statement(text, 9, None), &text[..]);
    }

    #[test]
    fn renders_binary_params_as_bytea_hex_and_text_params_losslessly() {
        let param = |value: Option<&'static [u8]>, binary| Param {
            value: value.map(bytes::Bytes::from_static),
            binary,
        };
        let binary = param(Some(&[0x00, 0x0f, 0xab, 0xff]), true);
        assert_eq!(render_param(&binary).as_deref(), Some("\\x000fabff"));
        let latin1 = param(Some(b"caf\xe9"), false);
        assert_eq!(render_param(&latin1).as_deref(), Some("caf\\xE9"));
        assert_eq!(render_param(&param(None, true)), None);
    }

    #[test]
    fn truncates_at_char_boundary() {
        assert_eq!(truncate("héllo".into(), 2), ("h".into(), true));
        assert_eq!(truncate("abc".into(), 3), ("abc".into(), false));
    }
}
