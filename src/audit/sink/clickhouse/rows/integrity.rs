//! The `checkpoints` and `lifecycle` rows (`audit::chain`).

use clickhouse::Row;
use serde::Serialize;
use uuid::Uuid;

use super::{chain, header};
use crate::audit::chain::ChainText;
use crate::audit::record::{CheckpointRecord, LifecycleRecord};

#[derive(Debug, Clone, Row, Serialize)]
pub struct CheckpointRow<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub instance_id: &'a str,
    pub seq: u64,
    pub event_time: i64,
    pub previous_chain: &'a str,
    pub records: u64,
    pub key_id: &'a str,
    pub signature: &'a str,
    pub chain: ChainText,
}

#[derive(Debug, Clone, Row, Serialize)]
pub struct LifecycleRow<'a> {
    #[serde(with = "clickhouse::serde::uuid")]
    pub event_id: Uuid,
    pub instance_id: &'a str,
    pub seq: u64,
    pub event_time: i64,
    pub event_type: &'a str,
    pub version: &'a str,
    pub config_digest: &'a str,
    pub detail: &'a str,
    pub previous_seq: u64,
    pub previous_chain: &'a str,
    pub clean: bool,
    pub chain: ChainText,
}

pub(super) fn checkpoint_row(r: &CheckpointRecord) -> CheckpointRow<'_> {
    let (event_id, instance_id, seq, event_time) = header(&r.header);
    CheckpointRow {
        event_id,
        instance_id,
        seq,
        event_time,
        previous_chain: &r.previous_chain,
        records: r.records,
        key_id: &r.key_id,
        signature: &r.signature,
        chain: chain(&r.header),
    }
}

pub(super) fn lifecycle_row(r: &LifecycleRecord) -> LifecycleRow<'_> {
    let (event_id, instance_id, seq, event_time) = header(&r.header);
    LifecycleRow {
        event_id,
        instance_id,
        seq,
        event_time,
        event_type: r.event_type.name(),
        version: &r.version,
        config_digest: &r.config_digest,
        detail: &r.detail,
        previous_seq: r.previous_seq,
        previous_chain: &r.previous_chain,
        clean: r.clean,
        chain: chain(&r.header),
    }
}
