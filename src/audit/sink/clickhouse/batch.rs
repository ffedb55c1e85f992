//! A batch: each table's share held as RowBinary bytes (`TableBatch`),
//! per table and column layout (`Batch`), and the INSERTs that send it.
//!
//! Rows arrive encoded (from the spool, or encoded once by the sender in
//! memory mode), so a batch is a byte buffer plus row boundaries, and
//! sending it copies bytes rather than serializing rows.

use std::marker::PhantomData;
use std::time::Duration;

use clickhouse::{Client, Row};

use super::errors::SendError;
use super::rowbinary::{row_header, RawRow, Table};
use super::rows::{
    Before, ChangeRow, CheckpointRow, GapRow, LifecycleRow, SessionRow, SessionRowV1, StatementRow,
    StatementRowV1, StatementRowV2, TransactionRow,
};
use super::schema::ServerVersion;

const SEND_TIMEOUT: Duration = Duration::from_secs(30);
const END_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct TableBatch {
    bytes: Vec<u8>,
    /// Where each row ends in `bytes`.
    ends: Vec<usize>,
}

impl TableBatch {
    pub fn push(&mut self, row: &[u8]) {
        self.bytes.extend_from_slice(row);
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    fn rows(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts
            .zip(self.ends.iter().copied())
            .map(|(a, b)| &self.bytes[a..b])
    }

    /// Same rows, same token: `<instance>:<table>:<first seq>-<last seq>:<rows>`.
    fn dedup_token(&self, table: &str) -> String {
        let first = self.rows().next().and_then(row_header);
        let last = self.rows().last().and_then(row_header);
        let instance = first.map_or(&[][..], |h| h.0);
        format!(
            "{}:{table}:{}-{}:{}",
            crate::text::lossless(instance).0,
            first.map_or(0, |h| h.1),
            last.map_or(0, |h| h.1),
            self.len()
        )
    }

    /// Sends the rows in one INSERT into `table`, whose columns are those
    /// of `T`; clears the batch once ClickHouse has acknowledged them.
    pub async fn insert<T: Row>(
        &mut self,
        client: &Client,
        version: ServerVersion,
        table: &str,
    ) -> Result<(), SendError> {
        if self.ends.is_empty() {
            return Ok(());
        }
        let context = format!("INSERT INTO {table}");
        let fail = |e: clickhouse::error::Error| SendError::new(&context, &e);
        let mut insert = client
            .insert::<RawRow<'_, T>>(table)
            .map_err(fail)?
            .with_timeouts(Some(SEND_TIMEOUT), Some(END_TIMEOUT));
        if version.has_async_insert() {
            insert = insert.with_option("async_insert", "0");
        }
        if version.has_dedup_token() {
            insert = insert.with_option("insert_deduplication_token", self.dedup_token(table));
        }
        for bytes in self.rows() {
            let row = RawRow {
                bytes,
                table: PhantomData,
            };
            insert.write(&row).await.map_err(fail)?;
        }
        insert.end().await.map_err(fail)?;
        self.clear();
        Ok(())
    }
}

/// The rows of one batch, per table and column layout (`Table`), up to
/// `max_rows` rows or `max_bytes` bytes.
#[derive(Debug)]
pub(super) struct Batch {
    /// One per `Table::ALL`, in its order.
    tables: [TableBatch; Table::ALL.len()],
    /// RowBinary bytes of the batch.
    bytes: usize,
    max_rows: usize,
    max_bytes: usize,
}

impl Batch {
    pub fn new(max_rows: usize, max_bytes: usize) -> Batch {
        Batch {
            tables: Default::default(),
            bytes: 0,
            max_rows,
            max_bytes,
        }
    }

    pub fn max_rows(&self) -> usize {
        self.max_rows
    }

    pub fn push(&mut self, table: Table, row: &[u8]) {
        self.bytes += row.len();
        if let Some(i) = Table::ALL.iter().position(|t| *t == table) {
            self.tables[i].push(row);
        }
    }

    pub fn len(&self) -> usize {
        self.tables.iter().map(|t| t.len()).sum()
    }

    pub fn is_full(&self) -> bool {
        self.len() >= self.max_rows || self.bytes >= self.max_bytes
    }

    pub fn clear(&mut self) {
        self.tables.iter_mut().for_each(TableBatch::clear);
        self.bytes = 0;
    }

    /// One attempt: each table's rows in one INSERT, older layouts first
    /// and gaps last; a table that succeeded is not sent again if a later
    /// one fails. Empty once all succeeded.
    pub async fn insert(
        &mut self,
        client: &Client,
        version: ServerVersion,
    ) -> Result<(), SendError> {
        for (table, rows) in Table::ALL.into_iter().zip(self.tables.iter_mut()) {
            insert_as(table, rows, client, version).await?;
        }
        self.bytes = 0;
        Ok(())
    }
}

/// `insert_as` (and, for tests, `column_names_of`) from one list of each
/// layout's row type.
macro_rules! layouts {
    ($($table:ident => $row:ty,)*) => {
        /// Inserts `rows` under `table`'s column layout.
        async fn insert_as(
            table: Table,
            rows: &mut TableBatch,
            client: &Client,
            version: ServerVersion,
        ) -> Result<(), SendError> {
            let name = table.name();
            match table {
                $(Table::$table => rows.insert::<$row>(client, version, name).await,)*
            }
        }

        /// The columns rows of `table`'s layout are inserted under.
        #[cfg(test)]
        fn column_names_of(table: Table) -> &'static [&'static str] {
            match table {
                $(Table::$table => <$row as Row>::COLUMN_NAMES,)*
            }
        }
    };
}

layouts! {
    StatementsV1 => StatementRowV1,
    SessionsV1 => SessionRowV1,
    StatementsV2 => StatementRowV2,
    GapsV1 => Before<GapRow<'static>, 2>,
    SessionsV2 => Before<SessionRow<'static>, 1>,
    // Before `chain` and the 12 columns after it (schema versions 7, 8, 9).
    StatementsV3 => Before<StatementRow<'static>, 13>,
    StatementsV4 => Before<StatementRow<'static>, 12>,
    // Before the 6 end-user columns (schema version 9).
    StatementsV5 => Before<StatementRow<'static>, 6>,
    // Before `chain` and the 6 end-user columns (schema versions 7, 9).
    TransactionsV1 => Before<TransactionRow<'static>, 7>,
    ChangesV1 => Before<ChangeRow<'static>, 7>,
    TransactionsV2 => Before<TransactionRow<'static>, 6>,
    ChangesV2 => Before<ChangeRow<'static>, 6>,
    Statements => StatementRow<'static>,
    Sessions => SessionRow<'static>,
    Gaps => GapRow<'static>,
    Transactions => TransactionRow<'static>,
    Changes => ChangeRow<'static>,
    Checkpoints => CheckpointRow<'static>,
    Lifecycle => LifecycleRow<'static>,
}

#[cfg(test)]
mod tests {
    use super::super::rowbinary::encode_row;
    use super::super::rows::{AnyRow, GapRow};
    use super::*;

    #[test]
    fn each_layout_is_its_table_without_the_columns_added_since() {
        use super::super::schema::column_names;
        for table in Table::ALL {
            let got = column_names_of(table);
            let all = column_names(table.name());
            match table.columns_after() {
                Some(n) => assert_eq!(got, &all[..all.len() - n], "{table:?}"),
                // Layouts before schema version 7 lack columns in between.
                None => assert!(got.len() < all.len(), "{table:?}"),
            }
        }
    }

    #[test]
    fn rows_keep_their_bounds_and_name_the_seq_range() {
        let mut batch = TableBatch::default();
        for seq in 7..=9 {
            let mut row = Vec::new();
            let reason = "x".repeat(seq as usize);
            let gap = GapRow {
                instance_id: "pgtrail-1",
                seq,
                reason: &reason,
                ..GapRow::default()
            };
            encode_row(&AnyRow::Gap(gap), &mut row).unwrap();
            batch.push(&row);
        }
        assert_eq!(batch.len(), 3);
        let seqs: Vec<u64> = batch.rows().filter_map(row_header).map(|h| h.1).collect();
        assert_eq!(seqs, [7, 8, 9]);
        assert_eq!(batch.dedup_token("gaps"), "pgtrail-1:gaps:7-9:3");
        batch.clear();
        assert_eq!(batch.len(), 0);
    }
}
