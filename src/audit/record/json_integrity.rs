//! The JSON Lines encoding of `checkpoints` and `lifecycle` records (see
//! `json`).

use super::Object;
use crate::audit::record::{CheckpointRecord, LifecycleRecord};

pub(super) fn checkpoint(r: &CheckpointRecord, out: &mut Vec<u8>) {
    let CheckpointRecord {
        header,
        previous_chain,
        records,
        key_id,
        signature,
    } = r;
    let mut o = Object::start(out, "checkpoints", header);
    o.str("previous_chain", previous_chain);
    o.u64("records", *records);
    o.str("key_id", key_id);
    o.str("signature", signature);
}

pub(super) fn lifecycle(r: &LifecycleRecord, out: &mut Vec<u8>) {
    let LifecycleRecord {
        header,
        event_type,
        version,
        config_digest,
        detail,
        previous_seq,
        previous_chain,
        clean,
    } = r;
    let mut o = Object::start(out, "lifecycle", header);
    o.str("event_type", event_type.name());
    o.str("version", version);
    o.str("config_digest", config_digest);
    o.str("detail", detail);
    o.u64("previous_seq", *previous_seq);
    o.str("previous_chain", previous_chain);
    o.bool("clean", *clean);
}
