//! The columns of a statement's record: its classification's column use
//! (or, for a SQL-level `EXECUTE`, the one its `PREPARE` had), resolved
//! with the catalog and labelled (`crate::catalog`).

use std::collections::HashMap;
use std::sync::Arc;

use super::Classification;
use crate::audit::record::ColumnAccess;
use crate::catalog::{resolve, Catalog, Labels, Lookup};
use crate::sql::columns::{extend_unique, ColumnUse};
use crate::sql::lex::{identifier, kw, tokenize, LexOptions, Token};

/// Prepared statements kept per session: PostgreSQL has no limit, this
/// bounds pgtrail's memory (an EXECUTE of one not kept says so).
const PREPARED_PER_SESSION: usize = 1000;

/// Resolutions kept (then all are dropped and the cache fills again).
const RESOLUTIONS_KEPT: usize = 4096;

/// How records get their columns: the catalog (optional) and `[labels]`.
#[derive(Clone, Default)]
pub struct ColumnPolicy {
    pub catalog: Option<Arc<Catalog>>,
    pub labels: Labels,
}

/// What a `PREPARE` named, for its `EXECUTE`s.
struct Prepared {
    objects_read: Vec<String>,
    objects_written: Vec<String>,
    functions: Vec<String>,
    columns: Arc<ColumnUse>,
}

/// A shape's resolution against one catalog snapshot.
struct Resolution {
    /// Held so that its address, the key, is not reused while kept.
    columns: Arc<ColumnUse>,
    database: String,
    /// The snapshot's version (0: no catalog configured).
    version: u64,
    access: ColumnAccess,
    objects_read: Vec<String>,
    objects_written: Vec<String>,
}

#[derive(Default)]
pub(super) struct StatementColumns {
    policy: ColumnPolicy,
    /// Session id → prepared statement name → what it reaches.
    prepared: HashMap<String, HashMap<String, Prepared>>,
    /// By the address of a shape's column use: every cache hit of a
    /// statement shares that `Arc`, so its resolution is the same until
    /// the catalog snapshot changes; resolving again would cost more than
    /// the classification hit itself.
    resolved: HashMap<usize, Resolution>,
}

impl StatementColumns {
    pub(super) fn new(policy: ColumnPolicy) -> Self {
        StatementColumns {
            policy,
            prepared: HashMap::new(),
            resolved: HashMap::new(),
        }
    }

    pub(super) fn end_session(&mut self, session_id: &str) {
        self.prepared.remove(session_id);
    }

    /// The columns of one statement's record; `c`'s objects gain what
    /// views, functions and a prepared statement reach.
    pub(super) fn record(
        &mut self,
        session_id: &str,
        database: &str,
        text: &[u8],
        success: bool,
        c: &mut Classification,
    ) -> ColumnAccess {
        let mut shared = true;
        let columns = match &*c.kind {
            "prepare" => {
                if success {
                    self.prepare(session_id, text, c);
                }
                // PREPARE reads nothing: its EXECUTEs do.
                return ColumnAccess::default();
            }
            "execute" => {
                shared = false;
                self.execute(session_id, text, c)
            }
            "deallocate" | "discard" => {
                self.deallocate(session_id, text);
                c.columns.clone()
            }
            _ => c.columns.clone(),
        };
        if success && &*c.class == "ddl" {
            if let Some(catalog) = &self.policy.catalog {
                catalog.reload(database);
            }
        }
        let untouched = columns.refs.is_empty()
            && columns.via.is_empty()
            && columns.unresolved.is_empty()
            && c.functions.is_empty();
        if untouched {
            return ColumnAccess::default();
        }
        let lookup = match &self.policy.catalog {
            Some(catalog) => catalog.lookup(database),
            None => Lookup::Off,
        };
        // Only a settled lookup is kept: a pending or failed catalog's
        // notes change with it.
        let version = match &lookup {
            Lookup::Off => Some(0),
            Lookup::Ready(cat) => Some(cat.version),
            Lookup::Pending | Lookup::Failed(_) => None,
        }
        .filter(|_| shared);
        let key = Arc::as_ptr(&columns) as usize;
        if let Some(hit) = self.resolved.get(&key).filter(|r| {
            Some(r.version) == version
                && r.database == database
                && Arc::ptr_eq(&r.columns, &columns)
        }) {
            extend_unique(&mut c.objects_read, hit.objects_read.clone());
            extend_unique(&mut c.objects_written, hit.objects_written.clone());
            return hit.access.clone();
        }
        let r = resolve(&columns, &c.functions, &lookup, &self.policy.labels);
        extend_unique(&mut c.objects_read, r.objects_read.clone());
        extend_unique(&mut c.objects_written, r.objects_written.clone());
        let access = ColumnAccess {
            columns_read: r.columns_read,
            columns_written: r.columns_written,
            labels: r.labels,
            via: r.via,
            columns_unresolved: r.unresolved,
            catalog_version: r.catalog_version,
        };
        if let Some(version) = version {
            if self.resolved.len() >= RESOLUTIONS_KEPT {
                self.resolved.clear();
            }
            let kept = Resolution {
                columns,
                database: database.to_string(),
                version,
                access: access.clone(),
                objects_read: r.objects_read,
                objects_written: r.objects_written,
            };
            self.resolved.insert(key, kept);
        }
        access
    }

    fn prepare(&mut self, session_id: &str, text: &[u8], c: &Classification) {
        let Some(name) = name_after(text, &["prepare"]) else {
            return;
        };
        let session = self.prepared.entry(session_id.to_string()).or_default();
        if session.len() >= PREPARED_PER_SESSION && !session.contains_key(&name) {
            return;
        }
        session.insert(
            name,
            Prepared {
                objects_read: c.objects_read.clone(),
                objects_written: c.objects_written.clone(),
                functions: c.functions.clone(),
                columns: c.columns.clone(),
            },
        );
    }

    fn execute(&mut self, session_id: &str, text: &[u8], c: &mut Classification) -> Arc<ColumnUse> {
        let name = name_after(text, &["execute"]).unwrap_or_default();
        let found = self.prepared.get(session_id).and_then(|s| s.get(&name));
        let mut columns = ColumnUse::default();
        match found {
            Some(p) => {
                extend_unique(&mut c.objects_read, p.objects_read.clone());
                extend_unique(&mut c.objects_written, p.objects_written.clone());
                extend_unique(&mut c.functions, p.functions.clone());
                columns.extend(&p.columns);
                columns.via.push(format!("prepared statement {name}"));
            }
            None => columns.note_unresolved(format!(
                "prepared statement {name}: its PREPARE was not seen (or not kept)"
            )),
        }
        Arc::new(columns)
    }

    /// `DEALLOCATE [PREPARE] name | ALL`, `DISCARD ALL`.
    fn deallocate(&mut self, session_id: &str, text: &[u8]) {
        let Some(session) = self.prepared.get_mut(session_id) else {
            return;
        };
        match name_after(text, &["deallocate", "prepare"])
            .or_else(|| name_after(text, &["deallocate"]))
            .or_else(|| name_after(text, &["discard"]))
        {
            Some(all) if all == "all" => session.clear(),
            Some(name) => {
                session.remove(&name);
            }
            None => {}
        }
    }
}

/// The identifier after the leading keywords `words` (`PREPARE name`).
fn name_after(text: &[u8], words: &[&str]) -> Option<String> {
    let toks: Vec<Token> = tokenize(text, LexOptions::default())
        .into_iter()
        .filter(|t| !t.kind.is_trivia())
        .take(words.len() + 1)
        .collect();
    let leading = words
        .iter()
        .enumerate()
        .all(|(i, w)| toks.get(i).is_some_and(|t| kw(text, t, w)));
    if !leading {
        return None;
    }
    let name = identifier(text, toks.get(words.len())?)?;
    String::from_utf8(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::build::Classifier;
    use crate::sql::{Analyzer, AnalyzerConfig};

    fn labels() -> ColumnPolicy {
        let mut l = crate::config::LabelsConfig::new();
        l.insert("pci".into(), vec!["cards.pan".into()]);
        ColumnPolicy {
            catalog: None,
            labels: Labels::new(&l).unwrap(),
        }
    }

    #[test]
    fn a_shape_resolved_once_answers_the_same_and_prepared_statements_follow() {
        let analyzer = Analyzer::new(AnalyzerConfig::default());
        let mut cols = StatementColumns::new(labels());
        let mut run = |db: &str, sql: &str| {
            let mut c = analyzer.classify(sql.as_bytes());
            let access = cols.record("s1", db, sql.as_bytes(), true, &mut c);
            (access, c.objects_read)
        };
        let (first, _) = run("db", "SELECT pan FROM cards WHERE id = 1");
        assert_eq!(first.columns_read, ["cards.pan", "cards.id"]);
        assert_eq!(first.labels, ["pci"]);
        // A cache hit of the shape: the kept resolution.
        let (again, _) = run("db", "SELECT pan FROM cards WHERE id = 2");
        assert_eq!(again, first);
        let (other_db, _) = run("db2", "SELECT pan FROM cards WHERE id = 3");
        assert_eq!(other_db, first);

        let (prepare, _) = run("db", "PREPARE q AS SELECT pan FROM cards");
        assert!(prepare.is_empty());
        let (exec, objects) = run("db", "EXECUTE q");
        assert_eq!(exec.columns_read, ["cards.pan"]);
        assert_eq!(exec.via, ["prepared statement q"]);
        assert_eq!(objects, ["cards"]);
        run("db", "DEALLOCATE q");
        let (gone, _) = run("db", "EXECUTE q");
        assert!(gone.columns_read.is_empty());
        assert_eq!(
            gone.columns_unresolved,
            ["prepared statement q: its PREPARE was not seen (or not kept)"]
        );
    }

    #[test]
    fn names_of_prepare_execute_and_deallocate() {
        assert_eq!(
            name_after(b"PREPARE q1 (int) AS SELECT 1", &["prepare"]).as_deref(),
            Some("q1")
        );
        assert_eq!(
            name_after(b"/* c */ EXECUTE \"Q\"(1)", &["execute"]).as_deref(),
            Some("Q")
        );
        assert_eq!(
            name_after(b"DEALLOCATE PREPARE q1", &["deallocate", "prepare"]).as_deref(),
            Some("q1")
        );
        assert_eq!(
            name_after(b"DEALLOCATE ALL", &["deallocate"]).as_deref(),
            Some("all")
        );
        assert_eq!(name_after(b"SELECT 1", &["execute"]), None);
    }
}
