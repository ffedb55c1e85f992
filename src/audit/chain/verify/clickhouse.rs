//! Reading a trail from ClickHouse for `verify`: per instance, in chunks of
//! seqs, every table's rows `ORDER BY seq` as RowBinary, merged by seq. A
//! row becomes its canonical bytes directly, column by column, from the
//! column types of the schema (`schema::table_columns`): no `Record` is
//! built, which keeps the walk at the speed of hashing.

use std::collections::BTreeSet;
use std::io;

use bytes::{Buf, BytesMut};
use clickhouse::{Client, Compression};

use super::item::{seq_offset, Item, Special};
use super::walk::Walker;
use super::{InstanceReport, Report, VerifyOptions};
use crate::audit::chain::parse_hex;
use crate::audit::sink::clickhouse::schema::{table_columns, table_names, Ty};

/// Seqs per query: a sort of this many rows per table is cheap for the
/// server, and the seq filter skips most granules of a time-sorted table.
const CHUNK: u64 = 1_000_000;

pub struct Source {
    client: Client,
    database: String,
}

impl Source {
    /// `database` must be a plain identifier (it is quoted into queries).
    pub fn new(
        url: &str,
        database: &str,
        user: Option<&str>,
        password: Option<&str>,
    ) -> io::Result<Source> {
        let plain = database
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit()));
        if database.is_empty() || !plain {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("--database {database:?} is not a plain identifier"),
            ));
        }
        // Answers are not compressed: 18.16 sends an empty body for
        // compressed RowBinary results.
        let mut client = Client::default()
            .with_url(url)
            .with_compression(Compression::None);
        if let Some(u) = user {
            client = client.with_user(u);
        }
        if let Some(p) = password {
            client = client.with_password(p);
        }
        Ok(Source {
            client,
            database: database.into(),
        })
    }

    pub async fn verify(&self, options: &VerifyOptions) -> io::Result<Report> {
        let mut outside = options.outside()?;
        let mut instances: BTreeSet<String> = match &options.instance {
            Some(i) => [i.clone()].into(),
            None => self.instances().await?,
        };
        instances.extend(outside.keys().cloned());
        let mut reports = Vec::new();
        for instance in instances {
            let cps = outside.remove(&instance).unwrap_or_default();
            reports.push(self.instance(&instance, cps, options).await?);
        }
        Ok(Report::new(reports))
    }

    async fn instances(&self) -> io::Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for table in table_names() {
            let q = format!(
                "SELECT DISTINCT instance_id FROM `{}`.`{table}`",
                self.database
            );
            let ids: Vec<String> = self.client.query(&q).fetch_all().await.map_err(ch_error)?;
            out.extend(ids);
        }
        Ok(out)
    }

    async fn bounds(&self, instance: &str) -> io::Result<Option<(u64, u64)>> {
        let mut bounds: Option<(u64, u64)> = None;
        for table in table_names() {
            let q = format!(
                "SELECT min(seq), max(seq), count() FROM `{}`.`{table}` WHERE instance_id = ?",
                self.database
            );
            let (lo, hi, n): (u64, u64, u64) = self
                .client
                .query(&q)
                .bind(instance)
                .fetch_one()
                .await
                .map_err(ch_error)?;
            if n > 0 {
                bounds = Some(bounds.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
            }
        }
        Ok(bounds)
    }

    async fn instance(
        &self,
        instance: &str,
        outside: Vec<Item>,
        options: &VerifyOptions,
    ) -> io::Result<InstanceReport> {
        let mut walker = Walker::new(instance, options.public_key.as_ref(), outside);
        if let Some((lo, hi)) = self.bounds(instance).await? {
            let lo = options.from.map_or(lo, |f| f.max(lo));
            let hi = options.to.map_or(hi, |t| t.min(hi));
            let mut start = lo;
            while start <= hi {
                let end = start.saturating_add(CHUNK - 1).min(hi);
                self.chunk(instance, start, end, &mut walker).await?;
                start = match end.checked_add(1) {
                    Some(s) => s,
                    None => break,
                };
            }
        }
        Ok(walker.finish())
    }

    /// Seqs `[from, to]` of every table, merged by seq, into the walker.
    async fn chunk(
        &self,
        instance: &str,
        from: u64,
        to: u64,
        walker: &mut Walker<'_>,
    ) -> io::Result<()> {
        let mut streams = Vec::new();
        for table in table_names() {
            let Some(columns) = table_columns(table) else {
                continue;
            };
            let list: Vec<String> = columns.iter().map(|(n, _)| format!("`{n}`")).collect();
            let q = format!(
                "SELECT {} FROM `{}`.`{table}` WHERE instance_id = ? AND seq >= ? AND seq <= ? ORDER BY seq",
                list.join(", "),
                self.database
            );
            let cursor = self
                .client
                .query(&q)
                .bind(instance)
                .bind(from)
                .bind(to)
                .fetch_bytes("RowBinary")
                .map_err(ch_error)?;
            let mut s = TableStream {
                table,
                columns,
                cursor,
                buf: BytesMut::new(),
                done: false,
                head: None,
            };
            s.advance().await?;
            streams.push(s);
        }
        loop {
            let next = streams
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.head.as_ref().map(|h| (h.seq, i)))
                .min();
            let Some((_, i)) = next else { return Ok(()) };
            if let Some(item) = streams[i].head.take() {
                walker.push(item);
            }
            streams[i].advance().await?;
        }
    }
}

/// One table's rows of a chunk, decoded one ahead.
struct TableStream {
    table: &'static str,
    columns: &'static [(&'static str, Ty)],
    cursor: clickhouse::query::BytesCursor,
    buf: BytesMut,
    done: bool,
    head: Option<Item>,
}

impl TableStream {
    async fn advance(&mut self) -> io::Result<()> {
        loop {
            match decode_row(self.table, self.columns, &self.buf) {
                Ok((item, used)) => {
                    self.buf.advance(used);
                    self.head = Some(item);
                    return Ok(());
                }
                Err(Short) if self.done => {
                    if !self.buf.is_empty() {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("{}: the server's answer ends inside a row", self.table),
                        ));
                    }
                    self.head = None;
                    return Ok(());
                }
                Err(Short) => match self.cursor.next().await.map_err(ch_error)? {
                    Some(chunk) => self.buf.extend_from_slice(&chunk),
                    None => self.done = true,
                },
            }
        }
    }
}

/// More bytes are needed for a whole row.
pub(crate) struct Short;

/// One RowBinary row of `table` made an `Item`, with the bytes it used.
pub(crate) fn decode_row(
    table: &'static str,
    columns: &[(&'static str, Ty)],
    bytes: &[u8],
) -> Result<(Item, usize), Short> {
    let mut r = Reader { bytes, at: 0 };
    let mut canonical = Vec::with_capacity(bytes.len().min(4096) + 16);
    text(&mut canonical, table.as_bytes());
    let mut f = Fields::default();
    for (name, ty) in columns {
        if *name == "chain" {
            f.chain = parse_hex(&String::from_utf8_lossy(r.string()?));
            continue;
        }
        let start = canonical.len();
        transcode(*ty, &mut r, &mut canonical)?;
        f.capture(name, &canonical[start..]);
    }
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
        Ty::Bool => out.extend_from_slice(r.take(1)?),
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

fn ch_error(e: clickhouse::error::Error) -> io::Error {
    io::Error::other(format!("ClickHouse: {e}"))
}
