//! The fast path: `sqlparser` with the PostgreSQL dialect, and a custom
//! visitor that drops CTE names, reports table functions as functions and
//! records the targets of every data-modifying statement (nested ones too,
//! since sqlparser returns `WITH ... INSERT` as a query).

use crate::sql::kind::Kind;
use crate::sql::parsers::{Declined, Extract};
use ::sqlparser::ast::{
    CopySource, Expr, FromTable, Ident, ObjectName, ObjectNamePart, Query, Select, SetExpr,
    Statement, TableFactor, TableObject, Visit, Visitor,
};
use ::sqlparser::dialect::PostgreSqlDialect;
use ::sqlparser::parser::Parser;
use std::ops::ControlFlow;

/// Kinds whose extraction this path implements; everything else goes to
/// pg_query directly (its parse tree names DDL targets exactly).
pub(crate) fn eligible(kind: Kind) -> bool {
    use Kind::*;
    matches!(
        kind,
        Select
            | Insert
            | Update
            | Delete
            | Merge
            | CopyFrom
            | CopyTo
            | Truncate
            | Declare
            | Begin
            | Commit
            | Rollback
            | Savepoint
            | Release
            | RollbackToSavepoint
            | Set
            | Reset
            | Show
            | Listen
            | Notify
            | Unlisten
            | Discard
            | Prepare
            | Execute
            | Deallocate
            | Call
            | Fetch
            | Close
    )
}

/// Names sqlparser parses as function calls that PostgreSQL's grammar
/// turns into expressions (ROW(), ARRAY(), COALESCE, ...), not calls.
const SQL_SYNTAX: &[&str] = &[
    "row",
    "array",
    "nullif",
    "coalesce",
    "greatest",
    "least",
    "all",
    "any",
    "some",
    "grouping",
    "current_date",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "current_user",
    "current_role",
    "session_user",
    "user",
    "current_catalog",
    "current_schema",
    "xmlelement",
    "xmlforest",
    "xmlconcat",
    "xmlpi",
    "xmlroot",
    "xmlparse",
    "xmlserialize",
    "xmlexists",
    "normalize",
    "merge_action",
    "rollup",
    "cube",
];

/// Recursion limit handed to sqlparser (its default is 50).
const RECURSION_LIMIT: usize = 50;

/// Parse one statement and extract; Err(why) when sqlparser declines.
pub(crate) fn extract(sql: &str, kind: Kind, explain: bool) -> Result<Extract, Declined> {
    let dialect = PostgreSqlDialect {};
    let parsed = std::panic::catch_unwind(|| {
        Parser::new(&dialect)
            .with_recursion_limit(RECURSION_LIMIT)
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_statements())
    })
    .map_err(|_| Declined::Panicked("sqlparser"))?;
    let stmts = parsed.map_err(|e| Declined::Rejected(e.to_string()))?;
    if stmts.len() != 1 {
        return Err(Declined::Statements("sqlparser", stmts.len()));
    }
    let stmt = &stmts[0];
    let ok = if explain {
        matches!(stmt, Statement::Explain { .. })
    } else {
        consistent(stmt, kind)
    };
    if !ok {
        return Err(Declined::OtherType(kind));
    }
    let mut v = V::default();
    let _ = stmt.visit(&mut v);
    let mut ex = v.ex;
    for name in v.skip_once {
        if let Some(p) = ex.reads.iter().position(|r| r.1 == name) {
            ex.reads.remove(p);
        }
    }
    Ok(ex)
}

fn consistent(stmt: &Statement, kind: Kind) -> bool {
    use Kind::*;
    match kind {
        Select | Insert | Update | Delete | Merge => {
            matches!(
                stmt,
                Statement::Query(_)
                    | Statement::Insert(_)
                    | Statement::Update(_)
                    | Statement::Delete(_)
                    | Statement::Merge(_)
            )
        }
        CopyFrom | CopyTo => matches!(stmt, Statement::Copy { .. }),
        Truncate => matches!(stmt, Statement::Truncate(_)),
        _ => true,
    }
}

/// Identifier as PostgreSQL sees it: folded to lower case unless quoted.
pub(crate) fn ident(i: &Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_ascii_lowercase()
    }
}

pub(crate) fn object_name(n: &ObjectName) -> String {
    let mut out = String::new();
    for p in &n.0 {
        if !out.is_empty() {
            out.push('.');
        }
        match p {
            ObjectNamePart::Identifier(i) => out.push_str(&ident(i)),
            ObjectNamePart::Function(f) => out.push_str(&f.to_string()),
        }
    }
    out
}

#[derive(Default)]
struct V {
    ex: Extract,
    scopes: Vec<Vec<String>>,
    skip_once: Vec<String>,
    seq: i64,
}

impl V {
    fn next(&mut self) -> i64 {
        self.seq += 1;
        self.seq
    }
    fn is_cte(&self, n: &ObjectName) -> bool {
        n.0.len() == 1 && {
            let name = object_name(n);
            self.scopes.iter().any(|s| s.contains(&name))
        }
    }
    fn read(&mut self, n: &ObjectName) {
        if !self.is_cte(n) {
            let k = self.next();
            self.ex.reads.push((k, object_name(n)));
        }
    }
    fn write(&mut self, name: String, kind: Kind) {
        let k = self.next();
        self.ex.writes.push((k, name));
        self.ex.nested_kind.get_or_insert(kind);
    }
    fn func(&mut self, name: String) {
        let k = self.next();
        self.ex.functions.push((k, name));
    }
    fn set_expr_tables(&mut self, s: &SetExpr) {
        match s {
            SetExpr::Table(t) => {
                if let Some(tn) = &t.table_name {
                    let mut parts = Vec::new();
                    if let Some(sn) = &t.schema_name {
                        parts.push(ObjectNamePart::Identifier(sn.clone()));
                    }
                    parts.push(ObjectNamePart::Identifier(tn.clone()));
                    self.read(&ObjectName(parts));
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr_tables(left);
                self.set_expr_tables(right);
            }
            _ => {}
        }
    }
    fn target_factor(&mut self, tf: &TableFactor, kind: Kind) {
        if let TableFactor::Table { name, .. } = tf {
            let n = object_name(name);
            self.skip_once.push(n.clone());
            self.write(n, kind);
        }
    }
}

impl Visitor for V {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        let names = q
            .with
            .as_ref()
            .map(|w| w.cte_tables.iter().map(|c| ident(&c.alias.name)).collect())
            .unwrap_or_default();
        self.scopes.push(names);
        if !q.locks.is_empty() {
            self.ex.locking = true;
        }
        self.set_expr_tables(&q.body);
        ControlFlow::Continue(())
    }

    fn post_visit_query(&mut self, _q: &Query) -> ControlFlow<()> {
        self.scopes.pop();
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, s: &Select) -> ControlFlow<()> {
        if let Some(into) = &s.into {
            for t in &into.targets {
                let name = match t {
                    Expr::Identifier(i) => ident(i),
                    Expr::CompoundIdentifier(v) => {
                        v.iter().map(ident).collect::<Vec<_>>().join(".")
                    }
                    other => other.to_string(),
                };
                let k = self.next();
                self.ex.targets.push((k, name));
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &TableFactor) -> ControlFlow<()> {
        match tf {
            TableFactor::Table { name, args, .. } => {
                if args.is_some() {
                    self.func(object_name(name));
                } else {
                    self.read(name);
                }
            }
            TableFactor::Function { name, .. } => self.func(object_name(name)),
            TableFactor::UNNEST { .. } => self.func("unnest".to_string()),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
        if let Expr::Function(f) = e {
            let n = object_name(&f.name);
            if !SQL_SYNTAX.contains(&n.as_str()) {
                self.func(n);
            }
        }
        match e {
            Expr::Ceil { .. } => self.func("ceil".to_string()),
            Expr::Floor { .. } => self.func("floor".to_string()),
            Expr::Substring {
                shorthand: true, ..
            } => self.func("substr".to_string()),
            Expr::Substring { special: true, .. } => self.func("substring".to_string()),
            _ => {}
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, s: &Statement) -> ControlFlow<()> {
        match s {
            Statement::Insert(i) => {
                if let TableObject::TableName(n) = &i.table {
                    self.write(object_name(n), Kind::Insert);
                }
            }
            Statement::Update(u) => self.target_factor(&u.table.relation, Kind::Update),
            Statement::Delete(d) => {
                let (FromTable::WithFromKeyword(v) | FromTable::WithoutKeyword(v)) = &d.from;
                if let Some(t) = v.first() {
                    self.target_factor(&t.relation, Kind::Delete);
                }
            }
            Statement::Merge(m) => self.target_factor(&m.table, Kind::Merge),
            Statement::Copy {
                source: CopySource::Table { table_name, .. },
                to,
                ..
            } => {
                if *to {
                    let k = self.next();
                    self.ex.reads.push((k, object_name(table_name)));
                } else {
                    self.write(object_name(table_name), Kind::CopyFrom);
                }
            }
            Statement::Truncate(t) => {
                for n in &t.table_names {
                    self.write(object_name(&n.name), Kind::Truncate);
                }
            }
            Statement::Call(f) => self.func(object_name(&f.name)),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}
