//! One database's catalog as pgtrail holds it: relations with their
//! columns, what each view reads, and what each SQL or PL/pgSQL function's
//! static statements reach.

use std::collections::HashMap;
use std::sync::Arc;

use crate::sql::BodyUse;

/// A table, view, materialized view, foreign or partitioned table.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    /// `schema.name`.
    pub qualified: String,
    pub columns: Vec<String>,
    /// For a view: the relations and columns its definition reads
    /// (`pg_depend` of its rewrite rule), `None` for a whole-relation
    /// dependency. Empty for other relations.
    pub view_reads: Vec<(String, Option<String>)>,
    pub is_view: bool,
}

impl Relation {
    pub fn has_column(&self, column: &str) -> bool {
        self.columns.iter().any(|c| c == column)
    }
}

/// A function whose body pgtrail could read.
#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    /// `schema.name`.
    pub qualified: String,
    pub body: BodyUse,
}

/// One database's catalog, immutable once loaded.
#[derive(Debug, Default)]
pub struct DbCatalog {
    pub database: String,
    /// Distinct for every load of any database by this pgtrail process.
    pub version: u64,
    relations: HashMap<String, Relation>,
    /// Unqualified name → the schemas holding it, in lookup order.
    by_name: HashMap<String, Vec<String>>,
    /// Unqualified and qualified name → overloads.
    functions: HashMap<String, Vec<Arc<Function>>>,
    function_count: usize,
}

/// Schemas searched for unqualified names, in order: PostgreSQL always
/// searches `pg_catalog` first, and `public` is in the default
/// `search_path`. A name in no such schema resolves when exactly one
/// other schema holds it.
const SEARCHED: [&str; 2] = ["pg_catalog", "public"];

impl DbCatalog {
    pub fn new(database: String, version: u64) -> Self {
        DbCatalog {
            database,
            version,
            ..Default::default()
        }
    }

    pub fn add_relation(&mut self, r: Relation) {
        if let Some((schema, name)) = r.qualified.split_once('.') {
            let schemas = self.by_name.entry(name.to_string()).or_default();
            schemas.push(schema.to_string());
            schemas.sort_by_key(|s| SEARCHED.iter().position(|x| x == s).unwrap_or(9));
        }
        self.relations.insert(r.qualified.clone(), r);
    }

    pub fn add_function(&mut self, f: Function) {
        self.function_count += 1;
        let f = Arc::new(f);
        let short = f.qualified.split_once('.').map(|(_, n)| n.to_string());
        for key in [Some(f.qualified.clone()), short].into_iter().flatten() {
            self.functions.entry(key).or_default().push(f.clone());
        }
    }

    pub fn relation_count(&self) -> usize {
        self.relations.len()
    }

    pub fn function_count(&self) -> usize {
        self.function_count
    }

    /// The relation a name as written (`t`, `s.t`, `db.s.t`) means.
    pub fn relation(&self, written: &str) -> Option<&Relation> {
        let parts: Vec<&str> = written.split('.').collect();
        match parts.as_slice() {
            [name] => {
                let schemas = self.by_name.get(*name)?;
                let schema = schemas.iter().find(|s| SEARCHED.contains(&s.as_str())).or(
                    match schemas.as_slice() {
                        [only] => Some(only),
                        _ => None,
                    },
                )?;
                self.relations.get(&format!("{schema}.{name}"))
            }
            [.., schema, name] => self.relations.get(&format!("{schema}.{name}")),
            [] => None,
        }
    }

    /// The functions a call as written may run (every overload).
    pub fn functions(&self, written: &str) -> &[Arc<Function>] {
        let key = match written.split('.').collect::<Vec<_>>().as_slice() {
            [.., schema, name] => format!("{schema}.{name}"),
            _ => written.to_string(),
        };
        self.functions.get(&key).map_or(&[], Vec::as_slice)
    }
}
