//! What the Relation messages said about each table, so that a decoded
//! tuple reads as (column name → value) and its key columns are known.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::pgoutput::{Column, Oid, RelationMessage, ReplicaIdentity, TupleData, Value};

/// One table as the last Relation message for it described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub oid: Oid,
    /// `public`, ...; pgoutput sends an empty name for `pg_catalog`.
    pub schema: Arc<str>,
    pub table: Arc<str>,
    pub replica_identity: ReplicaIdentity,
    pub columns: Vec<Column>,
}

/// One column's value, named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedValue<'a> {
    pub column: &'a Column,
    pub value: &'a Value,
}

impl NamedValue<'_> {
    pub fn name(&self) -> &str {
        &self.column.name
    }

    pub fn is_key(&self) -> bool {
        self.column.is_key()
    }
}

/// A tuple whose column count is not its relation's: the stream and the
/// cache disagree, so no value can be trusted to its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnCountMismatch {
    pub relation: Oid,
    pub columns: usize,
    pub values: usize,
}

impl fmt::Display for ColumnCountMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "relation {} has {} columns, the tuple {} values",
            self.relation, self.columns, self.values
        )
    }
}

impl std::error::Error for ColumnCountMismatch {}

impl Relation {
    pub fn from_message(m: RelationMessage) -> Self {
        Relation {
            oid: m.oid,
            schema: m.namespace.into(),
            table: m.name.into(),
            replica_identity: m.replica_identity,
            columns: m.columns,
        }
    }

    /// The replica identity key columns, in column order.
    pub fn key_columns(&self) -> impl Iterator<Item = &Column> {
        self.columns.iter().filter(|c| c.is_key())
    }

    /// The tuple's values paired with their columns, in column order.
    pub fn named<'a>(
        &'a self,
        tuple: &'a TupleData,
    ) -> Result<impl Iterator<Item = NamedValue<'a>> + 'a, ColumnCountMismatch> {
        self.check(tuple)?;
        Ok(self
            .columns
            .iter()
            .zip(&tuple.0)
            .map(|(column, value)| NamedValue { column, value }))
    }

    fn check(&self, tuple: &TupleData) -> Result<(), ColumnCountMismatch> {
        if tuple.0.len() == self.columns.len() {
            return Ok(());
        }
        Err(ColumnCountMismatch {
            relation: self.oid,
            columns: self.columns.len(),
            values: tuple.0.len(),
        })
    }

    /// One column's value by name; `None` when there is no such column.
    pub fn value<'a>(
        &self,
        tuple: &'a TupleData,
        name: &str,
    ) -> Result<Option<&'a Value>, ColumnCountMismatch> {
        self.check(tuple)?;
        let index = self.columns.iter().position(|c| &*c.name == name);
        Ok(index.and_then(|i| tuple.0.get(i)))
    }
}

/// Relations by oid, kept for the life of a replication connection: the
/// server sends each one once per connection (and again after a change),
/// so a reconnect starts with an empty cache.
#[derive(Debug, Default, Clone)]
pub struct RelationCache {
    relations: HashMap<Oid, Relation>,
}

impl RelationCache {
    pub fn new() -> Self {
        RelationCache::default()
    }

    /// Records (or replaces) what a Relation message says.
    pub fn update(&mut self, message: RelationMessage) -> &Relation {
        use std::collections::hash_map::Entry;
        let relation = Relation::from_message(message);
        match self.relations.entry(relation.oid) {
            Entry::Occupied(mut e) => {
                e.insert(relation);
                e.into_mut()
            }
            Entry::Vacant(e) => e.insert(relation),
        }
    }

    pub fn get(&self, oid: Oid) -> Option<&Relation> {
        self.relations.get(&oid)
    }

    pub fn len(&self) -> usize {
        self.relations.len()
    }

    pub fn is_empty(&self) -> bool {
        self.relations.is_empty()
    }
}
