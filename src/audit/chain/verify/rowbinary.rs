//! A ClickHouse RowBinary row of one of the trail's tables made straight
//! into its canonical bytes (`chain::canonical`), column by column from the
//! schema's column types: no `Record` is built, which keeps `verify` at the
//! speed of hashing.

use super::item::{seq_offset, Item, Special};
use crate::audit::chain::parse_hex;
use crate::audit::sink::clickhouse::schema::Ty;

/// More bytes are needed for a whole row.
pub struct Short;

/// One RowBinary row of `table` made an `Item`, with the bytes it used.
pub fn decode_row(
    table: &'static str,
    columns: &[(&'static str, Ty)],
    bytes: &[u8],
) -> Result<(Item, usize), Short> {
    let mut r = Reader { bytes, at: 0 };
    let mut canonical = Vec::with_capacity(bytes.len().min(4096) + 16);
    text(&mut canonical, table.as_bytes());
    let mut f = Fields::default();
    // Where each optional tail begins (listed in table order; at most two
    // per table so far).
    let mut tail_columns = crate::audit::chain::canonical::OPTIONAL_TAIL
        .iter()
        .filter(|(t, _)| *t == table)
        .map(|(_, c)| *c);
    let mut next_tail = tail_columns.next();
    let mut tails = [0usize; 4];
    let mut n_tails = 0;
    for (name, ty) in columns {
        if Some(*name) == next_tail && n_tails < tails.len() {
            tails[n_tails] = canonical.len();
            n_tails += 1;
            next_tail = tail_columns.next();
        }
        if *name == "chain" {
            f.chain = parse_hex(&String::from_utf8_lossy(r.string()?));
            continue;
        }
        let start = canonical.len();
        transcode(*ty, &mut r, &mut canonical)?;
        f.capture(name, &canonical[start..]);
    }
    crate::audit::chain::canonical::drop_default_tails(&mut canonical, &tails[..n_tails]);
    let special = f.special(table);
    let item = Item {
        table,
        seq_at: seq_offset(table, &f.instance_id),
        instance_id: f.instance_id,
        seq: f.seq,
        event_time: f.event_time,
        chain: f.chain,
        canonical,
        special,
        position: 0,
    };
    Ok((item, r.at))
}

/// The columns the walk reads besides the canonical bytes.
#[derive(Default)]
struct Fields {
    instance_id: String,
    seq: u64,
    event_time: i64,
    chain: Option<crate::audit::chain::ChainValue>,
    skipped_seqs: u64,
    event_type: String,
    previous_chain: String,
    previous_seq: u64,
    clean: bool,
    key_id: String,
    signature: String,
}

impl Fields {
    /// `value` is the column's canonical encoding.
    fn capture(&mut self, name: &str, value: &[u8]) {
        let text = || String::from_utf8_lossy(value.get(4..).unwrap_or_default()).into_owned();
        let int = || {
            value
                .get(..8)
                .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
        };
        match name {
            "instance_id" => self.instance_id = text(),
            "seq" => self.seq = int(),
            "event_time" => self.event_time = int() as i64,
            "skipped_seqs" => self.skipped_seqs = int(),
            "event_type" => self.event_type = text(),
            "previous_chain" => self.previous_chain = text(),
            "previous_seq" => self.previous_seq = int(),
            "clean" => self.clean = value.first() == Some(&1),
            "key_id" => self.key_id = text(),
            "signature" => self.signature = text(),
            _ => {}
        }
    }

    fn special(&self, table: &str) -> Special {
        match (table, self.event_type.as_str()) {
            ("gaps", _) if self.skipped_seqs > 0 => Special::SkippedRun {
                skipped: self.skipped_seqs,
            },
            ("gaps", _) => Special::Gap,
            ("checkpoints", _) => Special::Checkpoint {
                previous_chain: parse_hex(&self.previous_chain),
                key_id: self.key_id.clone(),
                signature: self.signature.clone(),
            },
            ("lifecycle", "start") => Special::Start {
                previous_chain: parse_hex(&self.previous_chain),
                previous_seq: self.previous_seq,
                clean: self.clean,
            },
            ("lifecycle", "stop") => Special::Stop,
            _ => Special::None,
        }
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let out = self
            .bytes
            .get(self.at..self.at.checked_add(n).ok_or(Short)?)
            .ok_or(Short)?;
        self.at += n;
        Ok(out)
    }

    fn leb128(&mut self) -> Result<usize, Short> {
        let mut value = 0u64;
        for i in 0..10 {
            let b = self.take(1)?[0];
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return usize::try_from(value).map_err(|_| Short);
            }
        }
        Err(Short)
    }

    fn string(&mut self) -> Result<&'a [u8], Short> {
        let n = self.leb128()?;
        self.take(n)
    }
}

fn text(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(s);
}

fn count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// ClickHouse's UUID (two little-endian halves) in RFC 4122 byte order.
fn uuid(r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Short> {
    let b = r.take(16)?;
    out.extend(b[..8].iter().rev());
    out.extend(b[8..].iter().rev());
    Ok(())
}

/// RowBinary's `Nullable` flag is 1 for NULL; canonical bytes' is 0.
fn nullable(
    r: &mut Reader<'_>,
    out: &mut Vec<u8>,
    value: impl FnOnce(&mut Reader<'_>, &mut Vec<u8>) -> Result<(), Short>,
) -> Result<(), Short> {
    if r.take(1)?[0] == 1 {
        out.push(0);
        Ok(())
    } else {
        out.push(1);
        value(r, out)
    }
}

/// One column from RowBinary to its canonical encoding.
fn transcode(ty: Ty, r: &mut Reader<'_>, out: &mut Vec<u8>) -> Result<(), Short> {
    match ty {
        Ty::Uuid => uuid(r, out)?,
        Ty::OptUuid => nullable(r, out, uuid)?,
        Ty::Label | Ty::Text | Ty::Id | Ty::Chain => text(out, r.string()?),
        Ty::Seq | Ty::Time | Ty::Count | Ty::Hash | Ty::Lsn => out.extend_from_slice(r.take(8)?),
        Ty::U16 => out.extend_from_slice(r.take(2)?),
        Ty::Pid | Ty::U32 => out.extend_from_slice(r.take(4)?),
        // Enum8: its value, one byte, in both encodings.
        Ty::Bool | Ty::EndUserSource => out.extend_from_slice(r.take(1)?),
        Ty::OptCount => nullable(r, out, |r, out| {
            out.extend_from_slice(r.take(8)?);
            Ok(())
        })?,
        Ty::Labels | Ty::Names => {
            let n = r.leb128()?;
            count(out, n);
            for _ in 0..n {
                text(out, r.string()?);
            }
        }
        Ty::Params | Ty::Values => {
            let n = r.leb128()?;
            count(out, n);
            for _ in 0..n {
                nullable(r, out, |r, out| {
                    text(out, r.string()?);
                    Ok(())
                })?;
            }
        }
        Ty::Seqs => {
            let n = r.leb128()?;
            count(out, n);
            out.extend_from_slice(r.take(n.checked_mul(8).ok_or(Short)?)?);
        }
    }
    Ok(())
}
