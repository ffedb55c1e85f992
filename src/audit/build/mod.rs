//! Turns events into records: numbers them, picks each statement's own text
//! out of a multi-statement Query, applies the text policy and attaches the
//! statement's classification.

mod classify;
pub mod role;
mod transactions;

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use super::event::{
    AuditEvent, Param, SessionEvent, SessionEventType, StatementEvent, TransactionEvent,
};
use super::record::{
    micros_since_epoch, GapRecord, Label, Record, RecordHeader, SessionRecord, StatementRecord,
    TransactionRecord,
};
use crate::text::lossless;
use role::RoleTracker;

/// Classification of one statement, as it lands in the record.
#[derive(Debug, Clone, Default)]
pub struct Classification {
    pub kind: Label,
    pub class: Label,
    pub crud: Label,
    pub audit_class: Label,
    pub objects_read: Vec<String>,
    pub objects_written: Vec<String>,
    pub functions: Vec<String>,
    pub parser: Label,
    pub fingerprint: u64,
    pub normalized: String,
    /// The statement text after the redaction policy; `None` keeps it as sent.
    pub redacted: Option<String>,
    /// `redacted` escapes bytes that were not UTF-8.
    pub redacted_escaped: bool,
}

/// Classifies statement text; the SQL analyzer implements this.
pub trait Classifier: Send + Sync {
    fn classify(&self, statement: &[u8]) -> Classification;

    /// Classification cache counters, if the classifier keeps a cache.
    fn cache_stats(&self) -> Option<crate::sql::CacheStats> {
        None
    }

    /// The statement `pick` chooses by its byte range (None: all of `text`),
    /// classified, with that range. The analyzer splits `text` only once.
    fn classify_picked(
        &self,
        text: &[u8],
        pick: &dyn Fn(&[Range<usize>]) -> Option<usize>,
    ) -> (Range<usize>, Classification) {
        let parts = crate::sql::statement_ranges(text);
        let range = pick(&parts).and_then(|i| parts.get(i).cloned());
        let range = range.unwrap_or(0..text.len());
        (range.clone(), self.classify(&text[range]))
    }
}

/// Used when no analyzer is configured: every field says "unknown".
pub struct NoClassifier;

impl Classifier for NoClassifier {
    fn classify(&self, _statement: &[u8]) -> Classification {
        Classification {
            kind: "unknown".into(),
            class: "unknown".into(),
            ..Default::default()
        }
    }
}

pub struct RecordBuilder {
    instance_id: String,
    next_seq: u64,
    /// Seeds the random part of event ids: one draw from the OS at start
    /// instead of a system call per record.
    id_seed: u64,
    max_statement_bytes: usize,
    classifier: Arc<dyn Classifier>,
    last_addr: Option<(std::net::IpAddr, String)>,
    roles: RoleTracker,
    transactions: transactions::TransactionSeqs,
    /// Persists the seq high-water mark before seqs are used (with a spool).
    seq_mark: Option<crate::audit::disk::seqmark::SeqMark>,
}

impl RecordBuilder {
    pub fn new(
        instance_id: String,
        max_statement_bytes: usize,
        classifier: Arc<dyn Classifier>,
    ) -> Self {
        let id_seed = getrandom::u64().unwrap_or_else(|_| {
            // No OS randomness: the seq still makes ids unique per instance.
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64)
        });
        RecordBuilder {
            instance_id,
            next_seq: 1,
            id_seed,
            max_statement_bytes,
            classifier,
            last_addr: None,
            roles: RoleTracker::default(),
            transactions: Default::default(),
            seq_mark: None,
        }
    }

    /// Continues an existing sequence (the spool's last seq + 1), so a
    /// restarted instance never reuses a seq; seqs start at 1 by default.
    pub fn starting_at(mut self, next_seq: u64) -> Self {
        self.next_seq = next_seq.max(1);
        self
    }

    /// Hands out seqs only below a high-water mark already on disk.
    pub fn reserving(mut self, mark: crate::audit::disk::seqmark::SeqMark) -> Self {
        self.seq_mark = Some(mark);
        self
    }

    /// The writer is done: lowers the high-water mark to the last seq used.
    pub fn finish(&mut self) {
        let last = self.next_seq - 1;
        if let Some(mark) = &mut self.seq_mark {
            mark.finish(last);
        }
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    pub fn build(&mut self, event: AuditEvent) -> Record {
        match event {
            AuditEvent::Statement(s) => Record::Statement(Box::new(self.statement(*s))),
            AuditEvent::Session(s) => Record::Session(Box::new(self.session(*s))),
            AuditEvent::Transaction(t) => Record::Transaction(Box::new(self.transaction(*t))),
        }
    }

    pub fn gap(&mut self, missing_events: u64, reason: &str) -> Record {
        let header = self.header(SystemTime::now());
        Record::Gap(GapRecord {
            header,
            missing_events,
            reason: reason.into(),
        })
    }

    /// The gap record telling `missing` seqs from `first_seq` that a sink
    /// did not keep: it takes the first of them as its own seq (they are
    /// `[seq, seq + missing_events)`), so it uses no new seq.
    pub fn gap_for_run(&self, first_seq: u64, missing: u64, reason: String) -> Record {
        let at = SystemTime::now();
        Record::Gap(GapRecord {
            header: RecordHeader {
                // Not the id the skipped record had (another sink may have it).
                event_id: self.event_id(at, first_seq ^ RUN_GAP_ID_SALT),
                instance_id: self.instance_id.clone(),
                seq: first_seq,
                event_time: micros_since_epoch(at),
            },
            missing_events: missing,
            reason,
        })
    }

    fn header(&mut self, at: SystemTime) -> RecordHeader {
        let seq = self.next_seq;
        if let Some(mark) = &mut self.seq_mark {
            mark.cover(seq);
        }
        self.next_seq += 1;
        RecordHeader {
            event_id: self.event_id(at, seq),
            instance_id: self.instance_id.clone(),
            seq,
            event_time: micros_since_epoch(at),
        }
    }

    /// UUIDv7 from the event's time; the random bits are the seq mixed with
    /// the seed (SplitMix64), so ids are unique within an instance and
    /// unpredictable across instances.
    fn event_id(&self, at: SystemTime, seq: u64) -> uuid::Uuid {
        let millis = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut random = [0u8; 10];
        random[..8].copy_from_slice(&splitmix64(self.id_seed ^ seq).to_be_bytes());
        random[8..].copy_from_slice(&(seq as u16).to_be_bytes());
        uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid()
    }

    /// The client address as text; consecutive records mostly share it, and
    /// formatting an address costs more than copying the text.
    fn client_addr(&mut self, addr: std::net::IpAddr) -> String {
        if self.last_addr.as_ref().is_none_or(|(a, _)| *a != addr) {
            self.last_addr = Some((addr, addr.to_string()));
        }
        self.last_addr
            .as_ref()
            .map_or_else(String::new, |(_, text)| text.clone())
    }

    fn statement(&mut self, e: StatementEvent) -> StatementRecord {
        let header = self.header(e.started_at);
        let position = e.failure.as_ref().and_then(|f| f.position);
        let pick = |parts: &[_]| pick_statement(&e.text, parts, e.statement_index, position);
        let (range, c) = if may_hold_several(&e.text) {
            self.classifier.classify_picked(&e.text, &pick)
        } else {
            (0..e.text.len(), self.classifier.classify(&e.text))
        };
        let text = &e.text[range];
        let (statement, truncated, escaped) = match c.redacted {
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
            .statement(&s.session_id, e.transaction, header.seq, written);
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
        }
    }

    fn session(&mut self, e: SessionEvent) -> SessionRecord {
        let header = self.header(e.at);
        let s = &e.session;
        let effective_role = self.roles.effective(s);
        if matches!(
            e.event_type,
            SessionEventType::Disconnect | SessionEventType::AuthFailed
        ) {
            self.roles.end_session(&s.session_id);
            self.transactions.end_session(&s.session_id);
        }
        SessionRecord {
            header,
            event_type: e.event_type,
            session_id: s.session_id.clone(),
            backend_pid: s.backend_pid,
            user: s.user.clone(),
            db_role: s.db_role.clone(),
            effective_role,
            database: s.database.clone(),
            client_addr: self.client_addr(s.client_addr),
            client_port: s.client_port,
            application_name: s.application_name.clone(),
            tls: s.tls,
            auth_method: s.auth_method.clone(),
            reason: e.reason.unwrap_or_default(),
            bytes_in: e.bytes_in,
            bytes_out: e.bytes_out,
            statements: e.statements,
            duration_us: e.duration_us,
        }
    }
}

impl RecordBuilder {
    fn transaction(&mut self, e: TransactionEvent) -> TransactionRecord {
        let header = self.header(SystemTime::now());
        let s = &e.session;
        let seqs = self.transactions.end(&s.session_id, &e);
        TransactionRecord {
            header,
            transaction_id: e.transaction_id,
            session_id: s.session_id.clone(),
            backend_pid: s.backend_pid,
            user: s.user.clone(),
            db_role: s.db_role.clone(),
            effective_role: self.roles.effective(s),
            database: s.database.clone(),
            client_addr: self.client_addr(s.client_addr),
            client_port: s.client_port,
            application_name: e.application_name.to_string(),
            outcome: e.outcome,
            statements: u64::from(e.statements),
            first_seq: seqs.first_seq,
            last_seq: seqs.last_seq,
            started_at: micros_since_epoch(e.started_at),
            duration_us: e.duration_us,
            rows_changed: seqs.rows_changed,
            xid: None,
            undone_from_seq: seqs.undone_from_seq,
            undone_to_seq: seqs.undone_to_seq,
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
fn may_hold_several(text: &[u8]) -> bool {
    match text.iter().position(|&b| b == b';') {
        Some(p) => !text[p + 1..].iter().all(|b| b.is_ascii_whitespace()),
        None => false,
    }
}

/// Mixed into the seq of a gap record that reuses a skipped record's seq,
/// so the two ids differ.
const RUN_GAP_ID_SALT: u64 = 0x6761_7073_0000_0000;

fn splitmix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
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
