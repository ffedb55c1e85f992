//! The walk of pg_query's tree that finds column references, with the
//! relations each may come from.

use super::scope::{Rel, Scopes};
use super::{Access, ColumnRef, ColumnUse, Origin};
use crate::sql::parsers::pg_query::nodes::{get, rv_name, s, Fields};
use crate::sql::parsers::pg_query::tree::V;

const MAX_DEPTH: usize = 500;

/// CmdType values of a MERGE action (pg_query's protobuf enum).
const CMD_UPDATE: i64 = 3;
const CMD_INSERT: i64 = 4;
const CMD_DELETE: i64 = 5;

/// The column references of one statement's tree. `variables` are names
/// that are not columns when unqualified (PL/pgSQL variables).
pub(crate) fn of_statement(tree: &V, variables: &[String]) -> ColumnUse {
    let mut w = Walker {
        out: ColumnUse::default(),
        scopes: Scopes::default(),
        ctes: Vec::new(),
        variables,
        depth: 0,
    };
    w.statement(tree);
    w.out
}

struct Walker<'a> {
    out: ColumnUse,
    scopes: Scopes,
    /// CTE names in scope, innermost last.
    ctes: Vec<Vec<String>>,
    variables: &'a [String],
    depth: usize,
}

/// The elements of a list field (empty when unset).
fn items<'a>(f: &'a Fields, key: &str) -> &'a [V] {
    match get(f, key) {
        Some(V::Seq(a)) => a,
        _ => &[],
    }
}

fn fields(v: &V) -> Option<(&'static str, &Fields)> {
    match v {
        V::Struct(n, f) => Some((n, f.as_slice())),
        _ => None,
    }
}

/// The alias name of a node with an `alias` field.
fn alias(f: &Fields) -> Option<String> {
    get(f, "alias")
        .and_then(|a| a.get("aliasname"))
        .and_then(V::as_str)
        .map(str::to_string)
}

/// A `String` node's text.
fn sval(v: &V) -> Option<&str> {
    v.get("sval").and_then(V::as_str)
}

impl Walker<'_> {
    fn statement(&mut self, v: &V) {
        let Some((name, f)) = fields(v) else { return };
        if self.depth > MAX_DEPTH {
            return;
        }
        self.depth += 1;
        match name {
            "SelectStmt" => self.select(f),
            "InsertStmt" => self.insert(f),
            "UpdateStmt" => self.update(f),
            "DeleteStmt" => self.delete(f),
            "MergeStmt" => self.merge(f),
            "CopyStmt" => self.copy(f),
            "TruncateStmt" => {
                for r in items(f, "relations") {
                    if let V::Struct("RangeVar", rf) = r {
                        self.write(&rv_name(rf), None);
                    }
                }
            }
            "ExplainStmt" | "PrepareStmt" | "DeclareCursorStmt" | "CreateTableAsStmt" => {
                if let Some(q) = get(f, "query") {
                    self.statement(q);
                }
            }
            _ => {}
        }
        self.depth -= 1;
    }

    /// CTE names of `f`'s WITH are in scope for its queries and body.
    fn with_ctes(&mut self, f: &Fields, body: impl FnOnce(&mut Self)) {
        let ctes = get(f, "with_clause")
            .and_then(|w| w.get("ctes"))
            .map_or(&[][..], |c| match c {
                V::Seq(a) => a.as_slice(),
                _ => &[],
            });
        if ctes.is_empty() {
            return body(self);
        }
        let names = ctes
            .iter()
            .filter_map(|c| c.get("ctename").and_then(V::as_str).map(str::to_string))
            .collect();
        self.ctes.push(names);
        for c in ctes {
            if let Some(q) = c.get("ctequery") {
                self.statement(q);
            }
        }
        body(self);
        self.ctes.pop();
    }

    fn is_cte(&self, f: &Fields) -> bool {
        s(f, "schemaname").is_empty() && {
            let r = s(f, "relname");
            self.ctes.iter().any(|names| names.iter().any(|c| c == r))
        }
    }

    fn select(&mut self, f: &Fields) {
        self.with_ctes(f, |w| {
            if get(f, "larg").is_some() {
                // UNION / INTERSECT / EXCEPT: ORDER BY names output columns.
                for side in ["larg", "rarg"] {
                    if let Some(q) = get(f, side) {
                        w.statement(q);
                    }
                }
                return;
            }
            w.scopes.push();
            for item in items(f, "from_clause") {
                w.in_from(item);
            }
            let outputs: Vec<&str> = items(f, "target_list")
                .iter()
                .filter_map(|t| t.get("name").and_then(V::as_str))
                .collect();
            for (key, v) in f {
                match *key {
                    "from_clause" | "with_clause" | "into_clause" => {}
                    "group_clause" | "sort_clause" => w.expr_outputs(v, &outputs),
                    _ => w.expr(v),
                }
            }
            w.scopes.pop();
        });
    }

    /// One FROM item: its relations join the current scope; subqueries
    /// and join conditions are walked.
    fn in_from(&mut self, v: &V) {
        let Some((name, f)) = fields(v) else { return };
        match name {
            "RangeVar" => {
                let rel = if self.is_cte(f) {
                    Rel::derived(alias(f).unwrap_or_else(|| s(f, "relname").to_string()))
                } else {
                    Rel::table(rv_name(f), alias(f))
                };
                self.scopes.add(rel);
            }
            "JoinExpr" => {
                for side in ["larg", "rarg"] {
                    if let Some(x) = get(f, side) {
                        self.in_from(x);
                    }
                }
                for u in items(f, "using_clause") {
                    if let Some(c) = sval(u) {
                        self.unqualified(c.to_string(), Access::Read);
                    }
                }
                if let Some(q) = get(f, "quals") {
                    self.expr(q);
                }
            }
            "RangeSubselect" => {
                if let Some(q) = get(f, "subquery") {
                    self.statement(q);
                }
                self.scopes.add(Rel::derived(alias(f).unwrap_or_default()));
            }
            _ => {
                // Functions in FROM, XMLTABLE, JSON_TABLE, TABLESAMPLE:
                // their arguments are expressions; a RangeVar inside
                // (TABLESAMPLE's relation) is a relation.
                if let Some(r) = get(f, "relation") {
                    self.in_from(r);
                }
                for (key, x) in f {
                    if *key != "relation" && *key != "alias" {
                        self.expr(x);
                    }
                }
                if let Some(a) = alias(f) {
                    self.scopes.add(Rel::derived(a));
                }
            }
        }
    }

    /// GROUP BY / ORDER BY: a bare name that is an output column's alias
    /// names that output, not a column.
    fn expr_outputs(&mut self, v: &V, outputs: &[&str]) {
        match v {
            V::Seq(a) => a.iter().for_each(|x| self.expr_outputs(x, outputs)),
            V::Struct("ColumnRef", f) => {
                let names = items(f, "fields");
                let bare = match names {
                    [one] => sval(one),
                    _ => None,
                };
                if !bare.is_some_and(|b| outputs.contains(&b)) {
                    self.column_ref(f, Access::Read);
                }
            }
            V::Struct("SortBy", f) => {
                if let Some(n) = get(f, "node") {
                    self.expr_outputs(n, outputs);
                }
            }
            _ => self.expr(v),
        }
    }

    /// The expressions of `f`'s fields `keys` that are set.
    fn exprs_of(&mut self, f: &Fields, keys: &[&str]) {
        for key in keys {
            if let Some(x) = get(f, key) {
                self.expr(x);
            }
        }
    }

    /// Any expression: column references, and the queries inside it.
    fn expr(&mut self, v: &V) {
        if self.depth > MAX_DEPTH {
            return;
        }
        self.depth += 1;
        match v {
            V::Seq(a) => a.iter().for_each(|x| self.expr(x)),
            V::Struct(name, f) => match *name {
                "ColumnRef" => self.column_ref(f, Access::Read),
                "SelectStmt" | "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt" => {
                    self.statement(v)
                }
                _ => f.iter().for_each(|(_, x)| self.expr(x)),
            },
            _ => {}
        }
        self.depth -= 1;
    }

    fn column_ref(&mut self, f: &Fields, access: Access) {
        let names = items(f, "fields");
        let Some((last, qualifier)) = names.split_last() else {
            return;
        };
        let qualifier: Vec<&str> = qualifier.iter().filter_map(sval).collect();
        let star = last.struct_name() == Some("AStar");
        if qualifier.is_empty() {
            match (star, sval(last)) {
                (true, _) => self.star(access),
                (false, Some(c)) => self.unqualified(c.to_string(), access),
                _ => {}
            }
            return;
        }
        // `t.c`, `s.t.c`, `t.*`; a qualifier naming nothing in scope is a
        // record variable's field (PL/pgSQL) or a composite's.
        let q = qualifier.join(".");
        if let Some(Some(table)) = self.scopes.qualified(&q) {
            let column = if star {
                None
            } else {
                sval(last).map(str::to_string)
            };
            self.out.push(ColumnRef {
                access,
                origin: Origin::Table(table.to_string()),
                column,
            });
        }
    }

    /// `*`: every table of the innermost FROM.
    fn star(&mut self, access: Access) {
        let tables: Vec<String> = self
            .scopes
            .innermost()
            .iter()
            .filter_map(|r| r.table.clone())
            .collect();
        for table in tables {
            self.out.push(ColumnRef {
                access,
                origin: Origin::Table(table),
                column: None,
            });
        }
    }

    fn unqualified(&mut self, column: String, access: Access) {
        if self.variables.contains(&column) {
            return;
        }
        let candidates = self.scopes.candidates();
        if candidates.is_empty() {
            return;
        }
        self.out.push(ColumnRef {
            access,
            origin: Origin::OneOf(candidates),
            column: Some(column),
        });
    }

    fn write(&mut self, table: &str, column: Option<String>) {
        self.out.push(ColumnRef {
            access: Access::Write,
            origin: Origin::Table(table.to_string()),
            column,
        });
    }

    /// The target of INSERT/UPDATE/DELETE/MERGE joins a new scope.
    fn target(&mut self, f: &Fields) -> Option<String> {
        let Some(V::Struct(_, r)) = get(f, "relation") else {
            return None;
        };
        let name = rv_name(r);
        self.scopes.add(Rel::table(name.clone(), alias(r)));
        Some(name)
    }

    fn insert(&mut self, f: &Fields) {
        self.with_ctes(f, |w| {
            if let Some(q) = get(f, "select_stmt") {
                w.statement(q);
            }
            w.scopes.push();
            if let Some(t) = w.target(f) {
                let cols = items(f, "cols");
                if cols.is_empty() {
                    w.write(&t, None);
                }
                for c in cols {
                    let name = c.get("name").and_then(V::as_str).map(str::to_string);
                    w.write(&t, name);
                }
                if let Some(V::Struct(_, oc)) = get(f, "on_conflict_clause") {
                    w.scopes.add(Rel::derived("excluded".into()));
                    w.set_targets(&t, items(oc, "target_list"));
                    w.exprs_of(oc, &["infer", "where_clause"]);
                }
            }
            if let Some(r) = get(f, "returning_clause") {
                w.expr(r);
            }
            w.scopes.pop();
        });
    }

    /// UPDATE ... SET / ON CONFLICT DO UPDATE SET / MERGE's UPDATE SET:
    /// each target column is written, each value read.
    fn set_targets(&mut self, table: &str, targets: &[V]) {
        for t in targets {
            let name = t.get("name").and_then(V::as_str).map(str::to_string);
            if name.is_some() {
                self.write(table, name);
            }
            if let Some(v) = t.get("val") {
                self.expr(v);
            }
        }
    }

    fn update(&mut self, f: &Fields) {
        self.with_ctes(f, |w| {
            w.scopes.push();
            let target = w.target(f);
            for item in items(f, "from_clause") {
                w.in_from(item);
            }
            if let Some(t) = &target {
                w.set_targets(t, items(f, "target_list"));
            }
            w.exprs_of(f, &["where_clause", "returning_clause"]);
            w.scopes.pop();
        });
    }

    fn delete(&mut self, f: &Fields) {
        self.with_ctes(f, |w| {
            w.scopes.push();
            if let Some(t) = w.target(f) {
                w.write(&t, None);
            }
            for item in items(f, "using_clause") {
                w.in_from(item);
            }
            w.exprs_of(f, &["where_clause", "returning_clause"]);
            w.scopes.pop();
        });
    }

    fn merge(&mut self, f: &Fields) {
        self.with_ctes(f, |w| {
            w.scopes.push();
            let target = w.target(f);
            if let Some(src) = get(f, "source_relation") {
                w.in_from(src);
            }
            if let Some(c) = get(f, "join_condition") {
                w.expr(c);
            }
            for when in items(f, "merge_when_clauses") {
                if let (Some(t), Some((_, wf))) = (&target, fields(when)) {
                    w.merge_action(t, wf);
                }
            }
            if let Some(r) = get(f, "returning_clause") {
                w.expr(r);
            }
            w.scopes.pop();
        });
    }

    fn merge_action(&mut self, table: &str, f: &Fields) {
        let command = match get(f, "command_type") {
            Some(V::Int(c)) => *c,
            _ => 0,
        };
        let targets = items(f, "target_list");
        match command {
            CMD_UPDATE => self.set_targets(table, targets),
            CMD_INSERT if targets.is_empty() => self.write(table, None),
            CMD_INSERT => self.set_targets(table, targets),
            CMD_DELETE => self.write(table, None),
            _ => {}
        }
        self.exprs_of(f, &["condition", "values"]);
    }

    fn copy(&mut self, f: &Fields) {
        if let Some(q) = get(f, "query") {
            self.statement(q);
        }
        let Some(V::Struct(_, r)) = get(f, "relation") else {
            return;
        };
        let table = rv_name(r);
        let access = match get(f, "is_from") {
            Some(V::Bool(true)) => Access::Write,
            _ => Access::Read,
        };
        let cols = items(f, "attlist");
        if cols.is_empty() {
            self.out.push(ColumnRef {
                access,
                origin: Origin::Table(table.clone()),
                column: None,
            });
        }
        for c in cols {
            self.out.push(ColumnRef {
                access,
                origin: Origin::Table(table.clone()),
                column: sval(c).map(str::to_string),
            });
        }
        if let Some(w) = get(f, "where_clause") {
            self.scopes.push();
            self.scopes.add(Rel::table(table, None));
            self.expr(w);
            self.scopes.pop();
        }
    }
}
