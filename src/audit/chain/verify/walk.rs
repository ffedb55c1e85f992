//! The chain walk of one instance: records in, findings out. Records may
//! arrive a little out of seq order (lines moved in a file): a window of
//! `WINDOW` records puts them back in order, and each one that arrived
//! after a higher seq is reported as reordered. Memory stays bounded by the
//! window and a short memory of the seqs already walked.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

#[path = "walk_checkpoints.rs"]
mod checkpoints;

use super::findings::{Finding, InstanceReport, Kind};
use super::item::{Item, Special};
use crate::audit::chain::signing::PublicKey;
use crate::audit::chain::{next, ChainText, ChainValue, GENESIS};

/// Records held to put a moved record back in order.
const WINDOW: usize = 1024;
/// Seqs walked whose bytes are remembered, to tell a late copy of one.
const REMEMBERED: usize = 4096;

pub struct Walker<'k> {
    report: InstanceReport,
    key: Option<&'k PublicKey>,
    /// Checkpoints kept outside the trail, by seq, not yet met.
    outside: BTreeMap<u64, Item>,
    /// Gap records kept outside the trail: (seq, skipped seqs, chain).
    outside_gaps: HashSet<(u64, u64, ChainValue)>,
    /// The highest seq of a checkpoint kept outside: the outside copy
    /// covers the trail up to it.
    outside_until: Option<u64>,
    /// The chain value after the last record walked, when known.
    running: Option<ChainValue>,
    /// The value is unknown because of a finding already made (records
    /// deleted before this one): the next record resumes without another.
    resume_quietly: bool,
    /// A record with a chain value was walked: from then on, one without
    /// is an edit, not a record of a build before the chain.
    chained: bool,
    /// The last record walked had no chain value (one warning per run).
    unchained_run: bool,
    /// The seq the next record should have.
    expected: Option<u64>,
    window: BTreeMap<u64, Vec<Item>>,
    /// The highest seq that has arrived.
    highest: Option<u64>,
    walked: HashMap<u64, (ChainValue, Option<ChainValue>)>,
    walked_order: VecDeque<u64>,
    /// Checkpoint signatures seen, with their seq.
    signatures: HashMap<String, u64>,
    /// The last two records walked were a stop and its checkpoint.
    ended_cleanly: (bool, bool),
    warned_unsigned: bool,
}

impl<'k> Walker<'k> {
    pub fn new(instance_id: &str, key: Option<&'k PublicKey>, outside: Vec<Item>) -> Self {
        Walker {
            report: InstanceReport {
                instance_id: instance_id.into(),
                ..Default::default()
            },
            key,
            outside_until: outside
                .iter()
                .filter(|i| matches!(i.special, Special::Checkpoint { .. }))
                .map(|i| i.seq)
                .max(),
            outside_gaps: outside
                .iter()
                .filter_map(|i| match i.special {
                    Special::SkippedRun { skipped } => Some((i.seq, skipped, i.chain?)),
                    _ => None,
                })
                .collect(),
            outside: outside
                .into_iter()
                .filter(|i| matches!(i.special, Special::Checkpoint { .. }))
                .map(|i| (i.seq, i))
                .collect(),
            running: None,
            resume_quietly: false,
            chained: false,
            unchained_run: false,
            expected: None,
            window: BTreeMap::new(),
            highest: None,
            walked: HashMap::new(),
            walked_order: VecDeque::new(),
            signatures: HashMap::new(),
            ended_cleanly: (false, false),
            warned_unsigned: false,
        }
    }

    pub fn push(&mut self, item: Item) {
        let seq = item.seq;
        if self.expected.is_some_and(|e| seq < e) {
            self.late(item);
            return;
        }
        if self.highest.is_some_and(|h| seq < h) && !self.window.contains_key(&seq) {
            self.find(
                Kind::Reordered,
                seq,
                seq,
                Some(item.event_time),
                format!(
                    "the record arrived after seq {} (records are out of order)",
                    self.highest.unwrap_or(0)
                ),
            );
        }
        self.highest = self.highest.max(Some(seq));
        self.window.entry(seq).or_default().push(item);
        while self.window.len() > WINDOW
            || self
                .window
                .first_key_value()
                .is_some_and(|(s, _)| Some(*s) == self.expected)
                && self.window.len() > 1
        {
            self.walk_next();
        }
    }

    pub fn finish(mut self) -> InstanceReport {
        while !self.window.is_empty() {
            self.walk_next();
        }
        self.check_outside();
        let (stop, then_checkpoint) = self.ended_cleanly;
        if self.report.records > 0 && !(stop || then_checkpoint) {
            self.find(Kind::NoCleanStop, self.report.last_seq, self.report.last_seq, None,
                "the trail does not end with a stop record: pgtrail is running, stopped without a clean stop, or the tail was removed (an outside checkpoint tells which)".into());
        }
        self.report
    }

    /// A line that is no record: cut short by a crash (a warning), or an
    /// edit (an error).
    pub fn malformed(&mut self, at: &str, why: &str, torn: bool) {
        let kind = if torn { Kind::Torn } else { Kind::Malformed };
        self.find(kind, 0, 0, None, format!("{at}: {why}"));
    }

    fn find(&mut self, kind: Kind, seq: u64, to_seq: u64, time: Option<i64>, detail: String) {
        self.report
            .findings
            .push(Finding::new(kind, seq, to_seq, time, detail));
    }

    /// A record whose seq was walked already: a copy, or another record.
    fn late(&mut self, item: Item) {
        let digest = digest(&item);
        match self.walked.get(&item.seq) {
            Some(d) if *d == (digest, item.chain) => self.find(
                Kind::Duplicate,
                item.seq,
                item.seq,
                Some(item.event_time),
                "the same record again (a retried insert)".into(),
            ),
            _ => self.find(
                Kind::Inserted,
                item.seq,
                item.seq,
                Some(item.event_time),
                format!(
                    "a second, different {} record with this seq, out of order",
                    item.table
                ),
            ),
        }
    }

    fn walk_next(&mut self) {
        let Some((seq, copies)) = self.window.pop_first() else {
            return;
        };
        let Some(item) = self.one_of(seq, copies) else {
            return;
        };
        self.check_seq(&item);
        self.walk(item);
        self.resume_quietly = false;
    }

    /// The copy that links when a seq came more than once; the others are
    /// duplicates or insertions.
    fn one_of(&mut self, seq: u64, mut copies: Vec<Item>) -> Option<Item> {
        if copies.len() > 1 {
            let links = |i: &Item| {
                self.running
                    .is_some_and(|r| Some(next(&r, &i.canonical)) == i.chain)
            };
            let keep = copies.iter().position(links).unwrap_or(0);
            let kept = copies.swap_remove(keep);
            let kept_digest = (digest(&kept), kept.chain);
            for other in copies {
                if (digest(&other), other.chain) == kept_digest {
                    self.find(
                        Kind::Duplicate,
                        seq,
                        seq,
                        Some(other.event_time),
                        "the same record again (a retried insert)".into(),
                    );
                } else {
                    self.find(Kind::Inserted, seq, seq, Some(other.event_time), format!(
                        "a second, different {} record with this seq (the {} record is the one the chain holds)",
                        other.table, kept.table
                    ));
                }
            }
            return Some(kept);
        }
        copies.pop()
    }

    /// Seqs between the last record and this one, not told by a gap.
    fn check_seq(&mut self, item: &Item) {
        match self.expected {
            Some(e) if item.seq > e => {
                self.find(
                    Kind::Deleted,
                    e,
                    item.seq - 1,
                    Some(item.event_time),
                    format!(
                        "{} record(s) missing before this one, with no gap record telling them",
                        item.seq - e
                    ),
                );
                // What the chain stood at before them is lost with them.
                self.running = None;
                self.resume_quietly = true;
            }
            None if item.seq == 1 => self.running = Some(GENESIS),
            _ => {}
        }
        if self.report.records == 0 {
            self.report.first_seq = item.seq;
        }
        self.report.records += 1;
        self.report.last_seq = self.report.last_seq.max(item.seq);
    }

    fn walk(&mut self, item: Item) {
        self.remember(&item);
        self.ended_cleanly = (
            matches!(item.special, Special::Stop),
            matches!(item.special, Special::Checkpoint { .. }) && self.ended_cleanly.0,
        );
        if let Some(outside) = self.outside.remove(&item.seq) {
            self.compare_outside(&item, &outside);
        }
        if item.chain.is_none() && !matches!(item.special, Special::SkippedRun { .. }) {
            return self.unchained(item);
        }
        match &item.special {
            Special::SkippedRun { skipped } => {
                let skipped = *skipped;
                self.check_gap_outside(&item, skipped);
                // A checkpoint among the seqs a destination did not keep:
                // the outside copy has it, the gap tells why the trail not.
                let inside: Vec<u64> = self
                    .outside
                    .range(item.seq..item.seq + skipped)
                    .map(|(s, _)| *s)
                    .collect();
                for s in inside {
                    self.outside.remove(&s);
                    self.find(Kind::Gap, s, s, Some(item.event_time), format!(
                        "the outside copy has a checkpoint at seq {s}, which the gap record at seq {} says was not kept",
                        item.seq
                    ));
                }
                self.find(
                    Kind::Gap,
                    item.seq,
                    item.seq + skipped - 1,
                    Some(item.event_time),
                    format!(
                        "{skipped} seq(s) a destination did not keep (a gap record tells them)"
                    ),
                );
                self.running = item.chain;
                self.expected = Some(item.seq + skipped);
                return;
            }
            Special::Gap => self.find(
                Kind::Gap,
                item.seq,
                item.seq,
                Some(item.event_time),
                "events that were not audited (a gap record tells them)".into(),
            ),
            Special::Start { .. } => return self.walk_start(item),
            Special::Checkpoint { previous_chain, .. } => {
                // A trail read from the middle (`--from`, expired records)
                // is anchored by its first checkpoint.
                if self.running.is_none() && !self.resume_quietly && self.report.records == 1 {
                    self.running = *previous_chain;
                }
                self.check_checkpoint(&item)
            }
            Special::None | Special::Stop => {}
        }
        self.link(item);
    }

    /// Checks the record's chain value against the running one, then goes
    /// on from the record's own value.
    fn link(&mut self, item: Item) {
        let seq = item.seq;
        self.chained = true;
        // After records without a value (an upgrade) or a finding that
        // lost the value, the first record resumes without another.
        let quiet =
            std::mem::take(&mut self.resume_quietly) | std::mem::take(&mut self.unchained_run);
        match self.running {
            None if quiet => {}
            None => self.find(Kind::Unverified, seq, seq, Some(item.event_time),
                "the chain value before this record is not known here (the trail starts after seq 1, or a gap did not say where the chain goes on): the chain is checked from here on".into()),
            Some(r) if Some(next(&r, &item.canonical)) != item.chain => {
                if self.swapped_with_next(&item, &r) {
                    return;
                }
                self.find(Kind::Altered, seq, seq, Some(item.event_time), format!(
                    "the {} record's content does not give its chain value: a field was changed (or its chain value was)",
                    item.table
                ));
            }
            Some(_) => {}
        }
        self.running = item.chain;
        self.expected = Some(seq + 1);
    }

    /// A record without a chain value: written by a build before the chain
    /// (an upgrade), when no chained record came before it; else an edit.
    fn unchained(&mut self, item: Item) {
        let seq = item.seq;
        if self.chained {
            self.find(
                Kind::Altered,
                seq,
                seq,
                Some(item.event_time),
                format!(
                    "the {} record has no chain value, after records that have one",
                    item.table
                ),
            );
        } else if !self.unchained_run {
            self.find(Kind::Unverified, seq, seq, Some(item.event_time),
                "records without a chain value (written before pgtrail chained records): not verified".into());
        }
        self.unchained_run = true;
        self.running = None;
        self.expected = Some(seq + 1);
    }

    /// Whether `item` and the record after it exchanged seqs: each links
    /// at the other's place. Walks both when so.
    fn swapped_with_next(&mut self, item: &Item, running: &ChainValue) -> bool {
        let Some((&next_seq, copies)) = self.window.first_key_value() else {
            return false;
        };
        let Some(other) = copies.first() else {
            return false;
        };
        if next_seq != item.seq + 1 || copies.len() != 1 {
            return false;
        }
        let first = next(running, &other.canonical_with_seq(item.seq));
        let second = next(&first, &item.canonical_with_seq(next_seq));
        if Some(first) != other.chain || Some(second) != item.chain {
            return false;
        }
        self.find(
            Kind::Reordered,
            item.seq,
            next_seq,
            Some(item.event_time),
            "these two records exchanged their seqs".into(),
        );
        let Some((_, mut copies)) = self.window.pop_first() else {
            return false;
        };
        self.expected = Some(next_seq);
        if let Some(other) = copies.pop() {
            self.check_seq(&other);
            self.remember(&other);
        }
        self.running = item.chain;
        self.expected = Some(next_seq + 1);
        true
    }

    /// A start record links from the value it names; it says whether the
    /// run before it stopped cleanly.
    fn walk_start(&mut self, item: Item) {
        self.chained = true;
        self.unchained_run = false;
        let Special::Start {
            previous_chain,
            previous_seq,
            clean,
        } = item.special
        else {
            return;
        };
        let base = previous_chain.unwrap_or(GENESIS);
        let seq = item.seq;
        if Some(next(&base, &item.canonical)) != item.chain {
            self.find(
                Kind::Altered,
                seq,
                seq,
                Some(item.event_time),
                "the start record's content does not give its chain value".into(),
            );
        } else if !clean {
            let how = if previous_chain.is_some() && self.running == previous_chain {
                "the chain continues from its last record kept"
            } else {
                "the chain restarts here: records of that run after its last outside checkpoint cannot be checked"
            };
            self.find(
                Kind::Crash,
                seq,
                seq,
                Some(item.event_time),
                format!(
                "the run before this start (up to seq {previous_seq}) did not stop cleanly; {how}"
            ),
            );
        } else if self.running.is_some_and(|r| Some(r) != previous_chain) && previous_seq > 0 {
            self.find(Kind::BrokenRestart, seq, seq, Some(item.event_time), format!(
                "the start record says the run before it stopped cleanly at seq {previous_seq} with chain value {}, but the trail's chain there is {}",
                ChainText::of(previous_chain.as_ref()).as_str(),
                ChainText::of(self.running.as_ref()).as_str()
            ));
        }
        self.running = item.chain;
        self.expected = Some(seq + 1);
    }

    fn remember(&mut self, item: &Item) {
        self.walked.insert(item.seq, (digest(item), item.chain));
        self.walked_order.push_back(item.seq);
        if self.walked_order.len() > REMEMBERED {
            if let Some(old) = self.walked_order.pop_front() {
                self.walked.remove(&old);
            }
        }
    }
}

fn digest(item: &Item) -> ChainValue {
    next(&GENESIS, &item.canonical)
}
