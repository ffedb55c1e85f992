//! Reading a trail from ClickHouse for `verify`: per instance, in chunks of
//! seqs, every table's rows `ORDER BY seq` as RowBinary, merged by seq. A
//! row becomes its canonical bytes directly, column by column, from the
//! column types of the schema (`schema::table_columns`): no `Record` is
//! built, which keeps the walk at the speed of hashing.

use std::collections::BTreeSet;
use std::io;

use bytes::{Buf, BytesMut};
use clickhouse::{Client, Compression};

use super::item::Item;
use super::rowbinary::{decode_row, Short};
use super::walk::Walker;
use super::{InstanceReport, Report, VerifyOptions};
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

fn ch_error(e: clickhouse::error::Error) -> io::Error {
    io::Error::other(format!("ClickHouse: {e}"))
}
