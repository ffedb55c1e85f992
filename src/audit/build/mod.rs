//! Turns events into records: numbers them, picks each statement's own text
//! out of a multi-statement Query, applies the text policy and attaches the
//! statement's classification.

mod classify;
mod columns;
mod recent;
pub mod role;
mod session;
mod statement;
mod transactions;

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use super::chain::{ChainText, ChainValue};
use super::event::AuditEvent;
use super::record::{
    micros_since_epoch, ChangeRecord, CheckpointRecord, GapRecord, Label, LifecycleEvent,
    LifecycleRecord, Record, RecordHeader,
};
pub use columns::ColumnPolicy;
use role::RoleTracker;
pub use statement::{may_hold_several, own_statement};

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
    /// The columns as the text names them, before the catalog.
    pub columns: Arc<crate::sql::columns::ColumnUse>,
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
    /// Statement seqs by transaction and index, for changes' markers
    /// (`with_statement_seqs`, when the decoding consumer runs).
    recent: Option<recent::RecentStatements>,
    /// Persists the seq high-water mark before seqs are used (with a spool).
    seq_mark: Option<crate::audit::disk::seqmark::SeqMark>,
    columns: columns::StatementColumns,
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
            recent: None,
            seq_mark: None,
            columns: Default::default(),
        }
    }

    /// Resolves statements' columns with `policy`'s catalog and labels.
    pub fn with_columns(mut self, policy: ColumnPolicy) -> Self {
        self.columns = columns::StatementColumns::new(policy);
        self
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

    /// The seq the next record gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    pub fn instance_id(&self) -> &str {
        &self.instance_id
    }

    pub fn build(&mut self, event: AuditEvent) -> Record {
        match event {
            AuditEvent::Statement(s) => Record::Statement(Box::new(self.statement(*s))),
            AuditEvent::Session(s) => Record::Session(Box::new(self.session(*s))),
            AuditEvent::Transaction(t) => Record::Transaction(Box::new(self.transaction(*t))),
            AuditEvent::Change(c) => Record::Change(Box::new(self.change(*c))),
            AuditEvent::Gap {
                missing_events,
                reason,
            } => self.gap(missing_events, &reason),
            AuditEvent::Lifecycle {
                event_type,
                config_digest,
                detail,
            } => self.lifecycle(event_type, config_digest, detail),
        }
    }

    /// A lifecycle record (`previous_*` and `clean` are the start's).
    pub fn lifecycle(
        &mut self,
        event_type: LifecycleEvent,
        config_digest: String,
        detail: String,
    ) -> Record {
        let header = self.header(SystemTime::now());
        Record::Lifecycle(Box::new(LifecycleRecord {
            previous_seq: header.seq - 1,
            header,
            event_type,
            version: env!("CARGO_PKG_VERSION").into(),
            config_digest,
            detail,
            previous_chain: String::new(),
            clean: false,
        }))
    }

    /// An unsigned checkpoint after `previous_chain`.
    pub fn checkpoint(&mut self, previous_chain: &ChainValue, records: u64) -> CheckpointRecord {
        CheckpointRecord {
            header: self.header(SystemTime::now()),
            previous_chain: ChainText::of(Some(previous_chain)).as_str().into(),
            records,
            key_id: String::new(),
            signature: String::new(),
        }
    }

    pub fn gap(&mut self, missing_events: u64, reason: &str) -> Record {
        let header = self.header(SystemTime::now());
        Record::Gap(GapRecord {
            header,
            missing_events,
            reason: reason.into(),
            skipped_seqs: 0,
        })
    }

    /// The gap record telling `missing` seqs from `first_seq` that a sink
    /// did not keep: it takes the first of them as its own seq (they are
    /// `[seq, seq + missing_events)`), so it uses no new seq, and is no
    /// link of the chain: its `chain` is `end_chain`, the value after the
    /// last of them, where the chain goes on.
    pub fn gap_for_run(
        &self,
        first_seq: u64,
        missing: u64,
        end_chain: Option<ChainValue>,
        reason: String,
    ) -> Record {
        let at = SystemTime::now();
        Record::Gap(GapRecord {
            header: RecordHeader {
                // Not the id the skipped record had (another sink may have it).
                event_id: self.event_id(at, first_seq ^ RUN_GAP_ID_SALT),
                instance_id: self.instance_id.clone(),
                seq: first_seq,
                event_time: micros_since_epoch(at),
                chain: end_chain,
            },
            missing_events: missing,
            reason,
            skipped_seqs: missing,
        })
    }

    /// Keeps the seqs of the last `capacity` statement records by
    /// transaction and index, so a change whose marker names its statement
    /// gets that statement's seq.
    pub fn with_statement_seqs(mut self, capacity: usize) -> Self {
        self.recent = Some(recent::RecentStatements::new(capacity));
        self
    }

    /// Whether a change can be numbered now with its statement: the
    /// statement its marker names has its record already (or it names
    /// none, or no statement seqs are kept). The session's record of the
    /// statement may come after the decoded change: the writer waits a
    /// little for it (`writer::thread`). A change a marker claimed for the
    /// statement after it also waits for its transaction's end, which says
    /// whether the claim held.
    pub fn change_ready(&self, change: &crate::audit::event::ChangeEvent) -> bool {
        match (&self.recent, change.transaction_id, change.statement_index) {
            (Some(recent), Some(txn), Some(index)) => {
                recent.statement(txn, index).is_some()
                    && (!change.statement_claimed || recent.claim_held(txn).is_some())
            }
            _ => true,
        }
    }

    /// A change's record: numbered now, timed at its commit; the seq of the
    /// statement its marker names, when that record is still known (else
    /// the change is the transaction's).
    fn change(&mut self, mut change: crate::audit::event::ChangeEvent) -> ChangeRecord {
        let mut end_user = None;
        if let (true, Some(txn)) = (change.statement_claimed, change.transaction_id) {
            // Kept only if no other statement that may write followed the
            // one claimed (else, or not known by now: the transaction's).
            let held = self.recent.as_ref().and_then(|r| r.claim_held(txn));
            if held != Some(change.statement_index) {
                change.statement_index = None;
                change.attribution = crate::audit::event::Attribution::Transaction;
            }
        }
        if let (Some(txn), Some(index)) = (change.transaction_id, change.statement_index) {
            let statement = self.recent.as_ref().and_then(|r| r.statement(txn, index));
            change.statement_seq = statement.as_ref().map(|s| s.0);
            end_user = statement.map(|s| s.1);
            if change.statement_seq.is_none() {
                change.attribution = crate::audit::event::Attribution::Transaction;
            }
        }
        if let (None, Some(txn)) = (&end_user, change.transaction_id) {
            end_user = self
                .recent
                .as_ref()
                .and_then(|r| r.transaction_end_user(txn));
        }
        let mut header = self.header(SystemTime::now());
        header.event_time = change.commit_time;
        ChangeRecord {
            header,
            change,
            end_user: end_user.unwrap_or_default(),
        }
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
            chain: None,
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
