//! The generic walk of pg_query's tree ([`crate::sql::parsers::pg_query::tree::V`]): scopes of CTE
//! names, relations read and written, functions, row locks and DDL
//! targets, collected into an [`Extract`].

use super::nodes::{get, join_list, loc, name_of, rv_name, s, Fields};
use super::tree::V;
use crate::sql::kind::Kind;
use crate::sql::parsers::Extract;

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
pub(super) struct Walker {
    pub(super) ex: Extract,
    scopes: Vec<Vec<String>>,
    depth: usize,
    pub(super) ddl_targets: bool,
}

impl Walker {
    pub(super) fn new(ddl_targets: bool) -> Self {
        Walker {
            ddl_targets,
            ..Walker::default()
        }
    }

    pub(super) fn top(&mut self, name: &'static str, f: &Fields) {
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
