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
use super::pgq_walk::Walker;
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
    let ddl_targets = matches!(kind.class(), Class::Ddl | Class::Dcl)
        || matches!(
            kind,
            Kind::Vacuum
                | Kind::Analyze
                | Kind::Cluster
                | Kind::Reindex
                | Kind::Comment
                | Kind::SecurityLabel
        );
    let mut w = Walker::new(ddl_targets);
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

pub(super) type Fields = [(&'static str, V)];

pub(super) fn get<'a>(f: &'a Fields, key: &str) -> Option<&'a V> {
    f.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

pub(super) fn s<'a>(f: &'a Fields, key: &str) -> &'a str {
    get(f, key).and_then(V::as_str).unwrap_or("")
}

pub(super) fn loc(f: &Fields) -> i64 {
    match get(f, "location") {
        Some(V::Int(i)) => *i,
        _ => 0,
    }
}

/// `catalog.schema.rel` of a RangeVar.
pub(super) fn rv_name(f: &Fields) -> String {
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
pub(super) fn name_of(v: &V) -> Option<String> {
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

pub(super) fn join_list(v: &V) -> Option<String> {
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
