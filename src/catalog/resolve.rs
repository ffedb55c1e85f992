//! A statement's columns resolved against its database's catalog: `*`
//! expanded, unqualified names placed in the innermost relation that has
//! them, views and functions followed to the tables they read, labels
//! applied. What cannot be resolved is said, never dropped.

use super::labels::Labels;
use super::model::{DbCatalog, Relation};
use super::Lookup;
use crate::sql::columns::{push_unique, Access, Candidate, ColumnRef, ColumnUse, Origin};

/// Views on views and functions calling functions are followed this deep.
const MAX_DEPTH: usize = 8;

/// What a statement's record says of its columns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resolved {
    /// `schema.table.column` when resolved; as written otherwise
    /// (`table.column`, `table.*`, `?.column` when the relation is unknown).
    pub columns_read: Vec<String>,
    pub columns_written: Vec<String>,
    /// Tables reached through views and functions (`schema.table`).
    pub objects_read: Vec<String>,
    pub objects_written: Vec<String>,
    /// What they were reached through: `view s.v`, `function s.f`, `DO
    /// block`, `prepared statement p`.
    pub via: Vec<String>,
    /// Why the columns may be incomplete.
    pub unresolved: Vec<String>,
    pub labels: Vec<String>,
    /// The catalog version the columns were resolved with (0: none).
    pub catalog_version: u64,
}

/// Resolves `columns` and the bodies of `functions` (names as written).
pub fn resolve(
    columns: &ColumnUse,
    functions: &[String],
    lookup: &Lookup,
    labels: &Labels,
) -> Resolved {
    let cat = match lookup {
        Lookup::Ready(c) => Some(c.as_ref()),
        _ => None,
    };
    let mut r = Resolver {
        cat,
        out: Resolved::default(),
        visited: Vec::new(),
    };
    r.out.catalog_version = cat.map_or(0, |c| c.version);
    let touches = !columns.refs.is_empty() || !functions.is_empty();
    match lookup {
        Lookup::Pending if touches => r.note("catalog not loaded yet".into()),
        Lookup::Failed(why) if touches => r.note(why.clone()),
        _ => {}
    }
    r.column_use(columns, 0);
    r.functions(functions, 0);
    let mut out = r.out;
    out.labels = labels.of(out.columns_read.iter().chain(&out.columns_written));
    out
}

struct Resolver<'a> {
    cat: Option<&'a DbCatalog>,
    out: Resolved,
    /// Functions already followed (recursion).
    visited: Vec<String>,
}

impl<'a> Resolver<'a> {
    fn note(&mut self, why: String) {
        push_unique(&mut self.out.unresolved, why);
    }

    fn emit(&mut self, access: Access, column: String) {
        match access {
            Access::Read => push_unique(&mut self.out.columns_read, column),
            Access::Write => push_unique(&mut self.out.columns_written, column),
        }
    }

    fn column_use(&mut self, u: &ColumnUse, depth: usize) {
        for v in &u.via {
            push_unique(&mut self.out.via, v.clone());
        }
        for why in &u.unresolved {
            self.note(why.clone());
        }
        for r in &u.refs {
            self.column_ref(r, depth);
        }
    }

    fn column_ref(&mut self, r: &ColumnRef, depth: usize) {
        let column = r.column.as_deref();
        match &r.origin {
            Origin::Table(t) => self.named(r.access, t, column, depth),
            Origin::OneOf(candidates) => {
                if let Some(c) = column {
                    self.unqualified(r.access, candidates, c, depth);
                }
            }
        }
    }

    /// A column of a relation named as written.
    fn named(&mut self, access: Access, written: &str, column: Option<&str>, depth: usize) {
        let Some(cat) = self.cat else {
            if column.is_none() {
                self.note(format!("{written}.*: columns need the catalog"));
            }
            self.emit(access, format!("{written}.{}", column.unwrap_or("*")));
            return;
        };
        match cat.relation(written) {
            Some(rel) => self.of_relation(access, rel, column, depth),
            None => {
                self.note(format!("{written}: not in the catalog"));
                self.emit(access, format!("{written}.{}", column.unwrap_or("*")));
            }
        }
    }

    /// A column (`None`: every column) of a known relation; a view's are
    /// the columns its definition reads.
    fn of_relation(&mut self, access: Access, rel: &Relation, column: Option<&str>, depth: usize) {
        if !rel.is_view {
            match column {
                Some(c) => self.emit(access, format!("{}.{c}", rel.qualified)),
                None => {
                    for c in &rel.columns {
                        self.emit(access, format!("{}.{c}", rel.qualified));
                    }
                }
            }
            return;
        }
        push_unique(&mut self.out.via, format!("view {}", rel.qualified));
        let Some(cat) = self.cat.filter(|_| depth < MAX_DEPTH) else {
            self.note(format!("view {}: nested too deep", rel.qualified));
            return;
        };
        for (base, base_column) in &rel.view_reads {
            let Some(b) = cat.relation(base) else {
                continue;
            };
            if b.is_view {
                self.of_relation(access, b, base_column.as_deref(), depth + 1);
                continue;
            }
            let objects = match access {
                Access::Read => &mut self.out.objects_read,
                Access::Write => &mut self.out.objects_written,
            };
            push_unique(objects, b.qualified.clone());
            if let Some(c) = base_column {
                self.emit(access, format!("{}.{c}", b.qualified));
            }
        }
    }

    /// An unqualified column: the innermost scope holding a relation that
    /// has it (several there: all, PostgreSQL would have refused the
    /// statement as ambiguous unless they are USING columns).
    fn unqualified(
        &mut self,
        access: Access,
        candidates: &[Candidate],
        column: &str,
        depth: usize,
    ) {
        let Some(cat) = self.cat else {
            let innermost: Vec<&Candidate> = candidates.iter().filter(|c| c.level == 0).collect();
            match innermost.as_slice() {
                [Candidate { table: Some(t), .. }] => self.emit(access, format!("{t}.{column}")),
                _ => {
                    self.note(format!("{column}: which relation needs the catalog"));
                    self.emit(access, format!("?.{column}"));
                }
            }
            return;
        };
        let mut all_known = true;
        let levels = candidates.iter().map(|c| c.level).max().unwrap_or(0);
        for level in 0..=levels {
            let mut found = Vec::new();
            for c in candidates.iter().filter(|c| c.level == level) {
                let Some(t) = &c.table else { continue };
                match cat.relation(t) {
                    Some(rel) if rel.has_column(column) => found.push(rel),
                    Some(_) => {}
                    None => all_known = false,
                }
            }
            if !found.is_empty() {
                for rel in found {
                    self.of_relation(access, rel, Some(column), depth);
                }
                return;
            }
        }
        // No relation in scope has it: an output alias, a subquery's or
        // function's column (recorded through what they read), or a
        // variable; unless a relation was unknown.
        if !all_known {
            self.note(format!("{column}: in no relation of the catalog"));
            self.emit(access, format!("?.{column}"));
        }
    }

    /// The bodies of called functions, followed.
    fn functions(&mut self, names: &[String], depth: usize) {
        let Some(cat) = self.cat.filter(|_| depth < MAX_DEPTH) else {
            return;
        };
        for name in names {
            for f in cat.functions(name) {
                if self.visited.contains(&f.qualified) {
                    continue;
                }
                self.visited.push(f.qualified.clone());
                push_unique(&mut self.out.via, format!("function {}", f.qualified));
                for (objects, write) in [
                    (&f.body.objects_read, false),
                    (&f.body.objects_written, true),
                ] {
                    for o in objects {
                        let q = cat
                            .relation(o)
                            .map_or_else(|| o.clone(), |r| r.qualified.clone());
                        let list = if write {
                            &mut self.out.objects_written
                        } else {
                            &mut self.out.objects_read
                        };
                        push_unique(list, q);
                    }
                }
                self.column_use(&f.body.columns, depth + 1);
                self.functions(&f.body.functions, depth + 1);
            }
        }
    }
}
