//! One replication connection's life: decode, hold each transaction until
//! its Commit, hand its changes to the audit writer, and confirm its end
//! to the slot only once the writer says they are durable.
//!
//! Transactions are pipelined: the consumer goes on decoding while the
//! writer's durable acknowledgements come back, in order, and each one
//! moves the position file and then the slot.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use tokio::sync::watch;

use super::attribution::{Markers, Seen};
use super::buffer::TxnBuffer;
use super::position::PositionFile;
use super::shape::{Position, Rows};
use super::{ConsumerError, Shared};
use crate::audit::event::{Attribution, AuditEvent};
use crate::audit::DurableAck;
use crate::cdc::pgoutput::{Begin, Commit, LogicalMessage, Message};
use crate::cdc::replication::{ReplicationStream, StreamEvent};
use crate::cdc::{Lsn, RelationCache};

/// A decoded transaction, from Begin to Commit.
struct OpenTxn {
    begin: Begin,
    /// Written before a restart: decoded again, not recorded again.
    replayed: bool,
    /// Its changes up to this index are in the trail already.
    written_through: Option<u32>,
    buffer: TxnBuffer,
    markers: Markers,
    next_index: u32,
}

/// A committed transaction handed to the writer, not yet confirmed.
struct Pending {
    end_lsn: Lsn,
    commit_time: i64,
    /// `None` when it had nothing to write.
    ack: Option<DurableAck>,
}

pub(super) struct Connection<'a> {
    pub shared: &'a Shared,
    pub position: Option<&'a mut PositionFile>,
    pub stream: ReplicationStream,
}

impl Connection<'_> {
    /// Runs until the connection fails or `stop` flips; then confirms what
    /// became durable and ends the stream cleanly.
    pub async fn run(mut self, stop: &mut watch::Receiver<bool>) -> Result<(), ConsumerError> {
        let mut relations = RelationCache::new();
        let mut open: Option<OpenTxn> = None;
        let mut pending: VecDeque<Pending> = VecDeque::new();
        loop {
            if let Some(p) = pending.front_mut().filter(|p| p.ack.is_none()) {
                let (end, at) = (p.end_lsn, p.commit_time);
                pending.pop_front();
                self.confirm(end, at)?;
                continue;
            }
            tokio::select! {
                _ = stop.changed() => break,
                durable = front_ack(&mut pending), if !pending.is_empty() => {
                    let done = pending.pop_front().ok_or(ConsumerError::Internal("no pending"))?;
                    if !durable && self.shared.audit.policy().needs_the_record() {
                        return Err(ConsumerError::NotDurable);
                    }
                    self.confirm(done.end_lsn, done.commit_time)?;
                }
                event = self.stream.next() => {
                    let event = event.map_err(ConsumerError::Replication)?;
                    self.event(event, &mut relations, &mut open, &mut pending).await?;
                }
            }
        }
        self.finish(pending).await
    }

    /// At stop: the acknowledgements already asked for (a few seconds at
    /// most), then a last status update. An open transaction is dropped:
    /// unconfirmed, it is decoded again at the next start.
    async fn finish(mut self, mut pending: VecDeque<Pending>) -> Result<(), ConsumerError> {
        let wait = async {
            while let Some(p) = pending.pop_front() {
                let durable = match p.ack {
                    Some(ack) => ack.await == Ok(true),
                    None => true,
                };
                if !durable {
                    break;
                }
                if self.confirm(p.end_lsn, p.commit_time).is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(STOP_WAIT, wait).await;
        if let Some(position) = self.position.as_deref_mut() {
            position.flush().map_err(ConsumerError::Position)?;
        }
        tokio::time::timeout(STOP_WAIT, self.stream.stop())
            .await
            .map_err(|_| ConsumerError::Internal("stop timed out"))?
            .map_err(ConsumerError::Replication)
    }

    /// The transaction ending at `end` is durable (its records are): the
    /// slot may move past it. The position file follows within
    /// `PositionFile::note`'s interval; it only keeps a restart from
    /// recording again what the slot had not confirmed.
    fn confirm(&mut self, end: Lsn, commit_time: i64) -> Result<(), ConsumerError> {
        if let Some(position) = self.position.as_deref_mut() {
            position.note(end).map_err(ConsumerError::Position)?;
        }
        self.stream.confirm(end);
        let stats = &self.shared.stats;
        stats.confirmed_lsn.fetch_max(end.0, Ordering::Relaxed);
        stats
            .confirmed_commit_time
            .store(commit_time, Ordering::Relaxed);
        Ok(())
    }

    async fn event(
        &mut self,
        event: StreamEvent,
        relations: &mut RelationCache,
        open: &mut Option<OpenTxn>,
        pending: &mut VecDeque<Pending>,
    ) -> Result<(), ConsumerError> {
        let stats = &self.shared.stats;
        let (wal_end, message) = match event {
            StreamEvent::Keepalive { wal_end, .. } => {
                stats.server_lsn.fetch_max(wal_end.0, Ordering::Relaxed);
                // Nothing of ours is waiting: let the slot follow the
                // server, so an idle stream holds no WAL back.
                if open.is_none() && pending.is_empty() {
                    if let Some(position) = self.position.as_deref_mut() {
                        position.flush().map_err(ConsumerError::Position)?;
                    }
                    self.stream.confirm(wal_end);
                    stats.confirmed_lsn.fetch_max(wal_end.0, Ordering::Relaxed);
                }
                return Ok(());
            }
            StreamEvent::Message {
                wal_end,
                wal_start,
                message,
                ..
            } => ((wal_end, wal_start), message),
        };
        stats.server_lsn.fetch_max(wal_end.0 .0, Ordering::Relaxed);
        let lsn = wal_end.1;
        match message {
            LogicalMessage::Begin(begin) => {
                if open.is_some() {
                    return Err(ConsumerError::Protocol("Begin inside a transaction"));
                }
                let position = self.position.as_deref();
                let replayed = position.is_some_and(|p| p.written(begin.final_lsn));
                let written_through = position.and_then(|p| p.written_through(begin.final_lsn));
                *open = Some(OpenTxn {
                    begin,
                    replayed,
                    written_through,
                    buffer: TxnBuffer::new(self.shared.limits, self.shared.spill_dir.clone()),
                    markers: Markers::default(),
                    next_index: 0,
                });
            }
            LogicalMessage::Relation(r) => {
                relations.update(r);
            }
            LogicalMessage::Insert(m) => {
                self.row(relations, open, lsn, m.relation, Rows::Insert(&m.new))?
            }
            LogicalMessage::Update(m) => self.row(
                relations,
                open,
                lsn,
                m.relation,
                Rows::Update(m.old.as_ref(), &m.new),
            )?,
            LogicalMessage::Delete(m) => {
                self.row(relations, open, lsn, m.relation, Rows::Delete(&m.old))?
            }
            LogicalMessage::Truncate(m) => {
                for oid in &m.relations {
                    self.row(relations, open, lsn, *oid, Rows::Truncate)?;
                }
            }
            LogicalMessage::Message(m) => self.message(open, m),
            LogicalMessage::Commit(commit) => {
                let txn = open
                    .take()
                    .ok_or(ConsumerError::Protocol("Commit outside a transaction"))?;
                let p = self.commit(txn, &commit).await?;
                pending.push_back(p);
            }
            LogicalMessage::Origin(_) | LogicalMessage::Type(_) => {}
            LogicalMessage::StreamStart(_)
            | LogicalMessage::StreamStop
            | LogicalMessage::StreamCommit(_)
            | LogicalMessage::StreamAbort(_) => {
                return Err(ConsumerError::Protocol(
                    "streamed transaction (not asked for)",
                ))
            }
        }
        Ok(())
    }

    fn row(
        &self,
        relations: &RelationCache,
        open: &mut Option<OpenTxn>,
        lsn: Lsn,
        oid: u32,
        rows: Rows<'_>,
    ) -> Result<(), ConsumerError> {
        let txn = open
            .as_mut()
            .ok_or(ConsumerError::Protocol("a change outside a transaction"))?;
        if txn.replayed {
            return Ok(());
        }
        let rel = relations
            .get(oid)
            .ok_or(ConsumerError::Protocol("a change of an unknown relation"))?;
        let at = Position {
            commit_lsn: txn.begin.final_lsn.0,
            lsn: lsn.0,
            change_index: txn.next_index,
            xid: txn.begin.xid,
            commit_time: txn.begin.commit_time.unix_micros(),
        };
        let change = self
            .shared
            .shaper
            .change(rel, at, rows)
            .map_err(ConsumerError::Shape)?;
        txn.next_index += 1;
        let was_spilled = txn.buffer.spilled();
        txn.buffer.push(change).map_err(ConsumerError::Spill)?;
        if !was_spilled && txn.buffer.spilled() {
            self.shared
                .stats
                .spilled_transactions
                .fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    fn message(&self, open: &mut Option<OpenTxn>, m: Message) {
        let stats = &self.shared.stats;
        let txn = match open.as_mut() {
            Some(txn) if m.transactional => txn,
            _ => {
                stats
                    .untransactional_messages
                    .fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        if txn.replayed {
            return;
        }
        let seen = txn
            .markers
            .message(&self.shared.signer, &m.prefix, &m.content, txn.next_index);
        if let Seen::Forged(why) = seen {
            stats.forged_markers.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(xid = txn.begin.xid, lsn = %m.lsn, ?why, "a pgtrail message that does not verify: its transaction's changes are marked forged_marker and not attributed by it");
        }
    }

    /// Sends the transaction's changes to the writer, attributed; the last
    /// one asks for the durable acknowledgement (the writer flushes in
    /// order, so it covers the others).
    async fn commit(&self, txn: OpenTxn, commit: &Commit) -> Result<Pending, ConsumerError> {
        let stats = &self.shared.stats;
        let commit_time = commit.commit_time.unix_micros();
        let mut pending = Pending {
            end_lsn: commit.end_lsn,
            commit_time,
            ack: None,
        };
        if txn.replayed {
            stats.replayed_transactions.fetch_add(1, Ordering::Relaxed);
            return Ok(pending);
        }
        let total = txn.buffer.len();
        let markers = txn.markers;
        for (i, change) in txn
            .buffer
            .drain()
            .map_err(ConsumerError::Spill)?
            .enumerate()
        {
            let mut change = change.map_err(ConsumerError::Spill)?;
            if txn
                .written_through
                .is_some_and(|w| change.change_index <= w)
            {
                // In the trail already (a crash came after its record was
                // durable and before the position moved); the changes kept
                // are a prefix, so the last one, which asks for the
                // acknowledgement, is never skipped unless all are.
                continue;
            }
            markers.apply(&mut change);
            change.commit_time = commit_time;
            stats.count_change(change.op, change.attribution != Attribution::None);
            let event = AuditEvent::Change(Box::new(change));
            if i + 1 == total {
                pending.ack = Some(self.shared.audit.send_durable(event).await);
            } else {
                self.shared.audit.send(event).await;
            }
        }
        Ok(pending)
    }
}

/// How long a stop waits for acknowledgements, and for the server.
const STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Whether the oldest pending transaction's records became durable.
/// Cancel-safe: the receiver stays in the queue until it answers.
async fn front_ack(pending: &mut VecDeque<Pending>) -> bool {
    match pending.front_mut().and_then(|p| p.ack.as_mut()) {
        Some(ack) => ack.await == Ok(true),
        None => true,
    }
}
