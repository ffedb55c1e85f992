//! The exact path: libpg_query (PostgreSQL's own grammar) through the
//! `pg_query` crate. The protobuf parse tree is turned into the generic
//! [`V`] tree (see [`crate::sql::parsers::pg_query::tree`]) and walked generically, so no node type
//! can be missed: every `RangeVar` is a relation (CTE references dropped,
//! with PostgreSQL's scoping), every `FuncCall` a function, `LockingClause`
//! a row lock, INSERT/UPDATE/DELETE/MERGE/COPY FROM/TRUNCATE targets are
//! writes wherever they appear (data-modifying CTEs, rule actions, SQL
//! function bodies), and DDL statements contribute their target from
//! well-known fields.

pub(crate) mod nodes;
pub(crate) mod tree;
mod walk;

use crate::sql::kind::{Class, Kind};
use crate::sql::parsers::{Declined, Extract};
use tree::V;
use walk::Walker;

/// Parse one statement with pg_query into the generic tree.
pub(crate) fn tree(sql: &str, standard_strings: bool) -> Result<V, Declined> {
    let opts = if standard_strings {
        ::pg_query::ParserOptions::DEFAULT
    } else {
        ::pg_query::ParserOptions::DISABLE_STANDARD_CONFORMING_STRINGS
    };
    let parsed = std::panic::catch_unwind(|| ::pg_query::parse(sql, opts))
        .map_err(|_| Declined::Panicked("pg_query"))?;
    let parsed = parsed.map_err(|e| Declined::Rejected(e.to_string()))?;
    let stmts = &parsed.protobuf.stmts;
    if stmts.len() != 1 {
        return Err(Declined::Statements("pg_query", stmts.len()));
    }
    let Some(stmt) = stmts.first().and_then(|s| s.stmt.as_ref()) else {
        return Err(Declined::Empty);
    };
    tree::build(stmt).map_err(|e| Declined::Tree(e.to_string()))
}

/// Extract the objects of one statement's tree (see [`tree`]).
pub(crate) fn extract(v: &V, kind: Kind) -> Extract {
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
    w.ex
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
