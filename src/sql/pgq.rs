//! The exact path: libpg_query (PostgreSQL's own grammar) through the
//! `pg_query` crate. The protobuf parse tree is turned into the generic
//! [`V`] tree (see [`super::tree`]) and walked generically, so no node type
//! can be missed: every `RangeVar` is a relation (CTE references dropped,
//! with PostgreSQL's scoping), every `FuncCall` a function, `LockingClause`
//! a row lock, INSERT/UPDATE/DELETE/MERGE/COPY FROM/TRUNCATE targets are
//! writes wherever they appear (data-modifying CTEs, rule actions, SQL
//! function bodies), and DDL statements contribute their target from
//! well-known fields.

use super::extract::Extract;
use super::kind::{Class, Kind};
use super::tree::{self, V};

/// Parse one statement with pg_query and extract its objects.
pub fn extract(sql: &str, kind: Kind, standard_strings: bool) -> Result<Extract, String> {
    let opts = if standard_strings {
        pg_query::ParserOptions::DEFAULT
    } else {
        pg_query::ParserOptions::DISABLE_STANDARD_CONFORMING_STRINGS
    };
    let parsed = std::panic::catch_unwind(|| pg_query::parse(sql, opts))
        .map_err(|_| "pg_query panicked".to_string())?;
    let parsed = parsed.map_err(|e| e.to_string())?;
    let stmts = &parsed.protobuf.stmts;
    if stmts.len() != 1 {
        return Err(format!("pg_query found {} statements", stmts.len()));
    }
    let Some(stmt) = stmts.first().and_then(|s| s.stmt.as_ref()) else {
        return Err("empty statement".into());
    };
    let v = tree::build(stmt).map_err(|e| e.to_string())?;
    let mut w = Walker {
        ddl_targets: matches!(kind.class(), Class::Ddl | Class::Dcl)
            || matches!(
                kind,
                Kind::Vacuum
                    | Kind::Analyze
                    | Kind::Cluster
                    | Kind::Reindex
                    | Kind::Comment
                    | Kind::SecurityLabel
            ),
        ..Walker::default()
    };
    if let V::Struct(name, fields) = &v {
        w.top(name, fields);
    }
    w.ex.finish_sorted();
    fix_targets(&mut w.ex.targets, kind);
    Ok(w.ex)
}

/// Object names PostgreSQL qualifies differently from the DDL's target.
fn fix_targets(t: &mut Vec<(i64, String)>, kind: Kind) {
    use Kind::*;
    match kind {
        CreateCast | DropCast | CreateTransform | DropTransform => t.clear(),
        // (access method, name): keep the name
        AlterOperatorClass | DropOperatorClass | AlterOperatorFamily | DropOperatorFamily => {
            for e in t.iter_mut() {
                if let Some((_, rest)) = e.1.split_once('.') {
                    e.1 = rest.to_string();
                }
            }
        }
        // (table, name): keep the table
        DropTrigger | DropRule | DropPolicy => {
            for e in t.iter_mut() {
                if let Some((table, _)) = e.1.rsplit_once('.') {
                    e.1 = table.to_string();
                }
            }
        }
        _ => {}
    }
}

type Fields = [(&'static str, V)];

fn get<'a>(f: &'a Fields, key: &str) -> Option<&'a V> {
    f.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

fn s<'a>(f: &'a Fields, key: &str) -> &'a str {
    get(f, key).and_then(V::as_str).unwrap_or("")
}

fn loc(f: &Fields) -> i64 {
    match get(f, "location") {
        Some(V::Int(i)) => *i,
        _ => 0,
    }
}

/// `catalog.schema.rel` of a RangeVar.
fn rv_name(f: &Fields) -> String {
    let mut out = String::new();
    for k in ["catalogname", "schemaname", "relname"] {
        let p = s(f, k);
        if !p.is_empty() {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(p);
        }
    }
    out
}

/// Name of a name-ish node: String, List of Strings, RangeVar,
/// ObjectWithArgs, TypeName, RoleSpec, AccessPriv, or a plain string.
fn name_of(v: &V) -> Option<String> {
    match v {
        V::Str(x) => Some(x.clone()),
        V::Seq(_) => join_list(v),
        V::Struct(n, f) => match *n {
            "String" => get(f, "sval").and_then(V::as_str).map(str::to_string),
            "List" => get(f, "items").and_then(join_list),
            "RangeVar" => Some(rv_name(f)).filter(|x| !x.is_empty()),
            "ObjectWithArgs" => get(f, "objname").and_then(join_list),
            "TypeName" => get(f, "names").and_then(join_list),
            "RoleSpec" => get(f, "rolename").and_then(V::as_str).map(str::to_string),
            "AccessPriv" => get(f, "priv_name").and_then(V::as_str).map(str::to_string),
            _ => None,
        },
        _ => None,
    }
}

fn join_list(v: &V) -> Option<String> {
    let V::Seq(items) = v else { return name_of(v) };
    let mut out = String::new();
    for it in items {
        let p = name_of(it)?;
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(&p);
    }
    Some(out).filter(|x| !x.is_empty())
}

/// Statement nodes whose relations are data, not a DDL target.
const DML: &[&str] = &[
    "SelectStmt",
    "InsertStmt",
    "UpdateStmt",
    "DeleteStmt",
    "MergeStmt",
    "ExplainStmt",
    "PrepareStmt",
    "DeclareCursorStmt",
    "CopyStmt",
    "TruncateStmt",
    "LockStmt",
    "CallStmt",
    "DoStmt",
    "ExecuteStmt",
    "CreateTableAsStmt",
];

/// Fields naming the relation a DDL statement changes (all are taken).
const REL_FIELDS: &[&str] = &[
    "relation",
    "view",
    "table",
    "relations",
    "rels",
    "typevar",
    "sequence",
];
/// Otherwise the first of these that names something.
const NAME_FIELDS: &[&str] = &[
    "objects",
    "object",
    "schemaname",
    "dbname",
    "defnames",
    "extname",
    "domainname",
    "type_name",
    "trigname",
    "opclassname",
    "opfamilyname",
    "dictname",
    "cfgname",
    "funcname",
    "func",
    "role",
    "roles",
    "granted_roles",
    "servername",
    "fdwname",
    "plname",
    "pubname",
    "subname",
    "tablespacename",
    "policy_name",
    "conversion_name",
    "amname",
    "collname",
    "name",
];

const MAX_DEPTH: usize = 2000;

#[derive(Default)]
struct Walker {
    ex: Extract,
    scopes: Vec<Vec<String>>,
    depth: usize,
    ddl_targets: bool,
}

impl Walker {
    fn top(&mut self, name: &'static str, f: &Fields) {
        if DML.contains(&name) || !self.ddl_targets {
            self.node(name, f);
            return;
        }
        // DDL / utility: target fields first.
        let mut skip: Vec<&str> = Vec::new();
        if let Some(V::Struct(n, base)) = get(f, "base_stmt") {
            // CREATE FOREIGN TABLE wraps a CreateStmt
            self.top(n, base);
            skip.push("base_stmt");
            skip.push("servername");
        }
        let wrapped = !skip.is_empty();
        for field in REL_FIELDS.iter().filter(|_| !wrapped) {
            if let Some(v) = get(f, field) {
                if self.targets_from(v) {
                    skip.push(field);
                }
            }
        }
        if skip.is_empty() {
            for field in NAME_FIELDS {
                if let Some(v) = get(f, field) {
                    if self.targets_from(v) {
                        skip.push(field);
                        break;
                    }
                }
            }
        }
        self.with_scope(f, |w| {
            for (k, v) in f {
                if !skip.contains(k) {
                    w.walk(v);
                }
            }
        });
    }

    fn target(&mut self, n: String) {
        self.ex.targets.push((i64::MIN, n));
    }

    fn targets_from(&mut self, v: &V) -> bool {
        match v {
            V::Seq(a) if a.first().and_then(V::struct_name) == Some("String") => {
                match join_list(v) {
                    Some(n) => {
                        self.target(n);
                        true
                    }
                    None => false,
                }
            }
            V::Seq(a) => {
                let mut any = false;
                for it in a {
                    any |= self.targets_from(it);
                }
                any
            }
            V::Struct(n, f) if *n != "RangeVar" && get(f, "relation").is_some() => {
                // VacuumRelation / PartitionCmd style wrapper
                get(f, "relation").is_some_and(|r| self.targets_from(r))
            }
            _ => match name_of(v) {
                Some(n) => {
                    self.target(n);
                    true
                }
                None => false,
            },
        }
    }

    fn with_scope(&mut self, f: &Fields, body: impl FnOnce(&mut Self)) {
        let names: Vec<String> = match get(f, "with_clause").and_then(|w| w.get("ctes")) {
            Some(V::Seq(ctes)) => ctes
                .iter()
                .filter_map(|c| c.get("ctename").and_then(V::as_str).map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let pushed = !names.is_empty();
        if pushed {
            self.scopes.push(names);
        }
        body(self);
        if pushed {
            self.scopes.pop();
        }
    }

    fn is_cte(&self, f: &Fields) -> bool {
        s(f, "schemaname").is_empty() && {
            let r = s(f, "relname");
            self.scopes.iter().any(|sc| sc.iter().any(|c| c == r))
        }
    }

    fn walk(&mut self, v: &V) {
        if self.depth > MAX_DEPTH {
            return;
        }
        self.depth += 1;
        match v {
            V::Seq(a) => {
                for x in a {
                    self.walk(x);
                }
            }
            V::Struct(n, f) => self.node(n, f),
            _ => {}
        }
        self.depth -= 1;
    }

    fn walk_except(&mut self, f: &Fields, skip: &str) {
        self.with_scope(f, |w| {
            for (k, v) in f {
                if *k != skip {
                    w.walk(v);
                }
            }
        });
    }

    fn write_target(&mut self, f: &Fields, kind: Kind) {
        if let Some(V::Struct(_, r)) = get(f, "relation") {
            self.ex.writes.push((loc(r), rv_name(r)));
        }
        self.ex.nested_kind.get_or_insert(kind);
        self.walk_except(f, "relation");
    }

    fn node(&mut self, name: &str, f: &Fields) {
        match name {
            "RangeVar" => {
                if !self.is_cte(f) {
                    self.ex.reads.push((loc(f), rv_name(f)));
                }
            }
            "FuncCall" => {
                // SQL-syntax forms (EXTRACT, SUBSTRING ... FROM, AT TIME ZONE,
                // ...) are operators to the user, as in sqlparser's tree.
                let sql_syntax = matches!(get(f, "funcformat"), Some(V::Int(4)))
                    || matches!(get(f, "funcname"), Some(V::Seq(n)) if n.len() == 2
                        && n[1].get("sval").and_then(V::as_str) == Some("similar_to_escape"));
                if let Some(n) = get(f, "funcname")
                    .and_then(join_list)
                    .filter(|_| !sql_syntax)
                {
                    self.ex.functions.push((loc(f), n));
                }
                self.walk_except(f, "funcname");
            }
            // locked_rels name FROM items (aliases), not relations
            "LockingClause" => self.ex.locking = true,
            "InsertStmt" => self.write_target(f, Kind::Insert),
            "UpdateStmt" => self.write_target(f, Kind::Update),
            "DeleteStmt" => self.write_target(f, Kind::Delete),
            "MergeStmt" => self.write_target(f, Kind::Merge),
            "CopyStmt" => {
                if let Some(V::Struct(_, r)) = get(f, "relation") {
                    let e = (loc(r), rv_name(r));
                    if matches!(get(f, "is_from"), Some(V::Bool(true))) {
                        self.ex.writes.push(e);
                    } else {
                        self.ex.reads.push(e);
                    }
                }
                self.walk_except(f, "relation");
            }
            "TruncateStmt" => {
                if let Some(V::Seq(a)) = get(f, "relations") {
                    for r in a {
                        if let V::Struct("RangeVar", rf) = r {
                            self.ex.writes.push((loc(rf), rv_name(rf)));
                        }
                    }
                }
                self.walk_except(f, "relations");
            }
            "LockStmt" => {
                self.ex.locking = true;
                self.walk_except(f, "");
            }
            "IntoClause" => {
                if let Some(V::Struct(_, r)) = get(f, "rel") {
                    self.ex.targets.push((loc(r), rv_name(r)));
                }
                self.walk_except(f, "rel");
            }
            _ => self.walk_except(f, ""),
        }
    }
}
