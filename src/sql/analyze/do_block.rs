//! Function-like bodies (DO blocks here, function bodies for the catalog):
//! their static statements analyzed, their objects and columns merged.

use crate::sql::analysis::AnalyzerConfig;
use crate::sql::columns::{
    extend_unique, plpgsql_statements, ColumnUse, Origin, Signature, DO_BLOCK,
};
use crate::sql::parsers::pg_query::tree::V;
use crate::sql::parsers::Extract;

/// What the static statements of a body reach.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BodyUse {
    pub objects_read: Vec<String>,
    pub objects_written: Vec<String>,
    pub functions: Vec<String>,
    pub columns: ColumnUse,
}

/// Analyzes a body in `language` (`plpgsql` or `sql`; others are noted
/// as unresolved) of a function with `signature`. `what` names it in
/// notes (`DO block`, `function f`).
pub fn body_use(
    language: &str,
    body: &str,
    signature: Signature<'_>,
    what: &str,
    cfg: &AnalyzerConfig,
) -> BodyUse {
    let mut out = BodyUse::default();
    let (statements, variables) = match language {
        "sql" => (vec![body.to_string()], Vec::new()),
        "plpgsql" => match plpgsql_statements(body, signature) {
            Ok(b) => {
                if b.dynamic > 0 {
                    out.columns
                        .note_unresolved(format!("dynamic SQL in {what}"));
                }
                (b.statements, b.variables)
            }
            Err(e) => {
                out.columns
                    .note_unresolved(format!("{what} not parsed: {e}"));
                return out;
            }
        },
        other => {
            out.columns
                .note_unresolved(format!("{what} in language {other}"));
            return out;
        }
    };
    for sql in &statements {
        for a in crate::sql::analyze::analyze(sql.as_bytes(), cfg) {
            extend_unique(&mut out.objects_read, a.objects_read.iter().cloned());
            extend_unique(&mut out.objects_written, a.objects_written.iter().cloned());
            extend_unique(&mut out.functions, a.functions.iter().cloned());
            let mut inner = (*a.columns).clone();
            inner.refs.retain(|r| {
                !(matches!(r.origin, Origin::OneOf(_))
                    && r.column.as_ref().is_some_and(|c| variables.contains(c)))
            });
            out.columns.extend(&inner);
        }
    }
    out
}

/// A DO statement's tree: its body's objects join `ex`, its columns are
/// returned, marked as reached through the block.
pub(super) fn merge(tree: &V, ex: &mut Extract, cfg: &AnalyzerConfig) -> ColumnUse {
    let mut body = None;
    let mut language = "plpgsql";
    if let Some(V::Seq(args)) = tree.get("args") {
        for arg in args {
            let value = arg
                .get("arg")
                .and_then(|a| a.get("sval"))
                .and_then(V::as_str);
            match (arg.get("defname").and_then(V::as_str), value) {
                (Some("as"), Some(v)) => body = Some(v),
                (Some("language"), Some(v)) => language = v,
                _ => {}
            }
        }
    }
    let mut columns = ColumnUse::default();
    columns.via.push("DO block".into());
    let Some(body) = body else {
        columns.note_unresolved("DO block without a body");
        return columns;
    };
    let used = body_use(language, body, DO_BLOCK, "DO block", cfg);
    let at = |names: Vec<String>| names.into_iter().map(|n| (i64::MAX, n));
    ex.reads.extend(at(used.objects_read));
    ex.writes.extend(at(used.objects_written));
    ex.functions.extend(at(used.functions));
    columns.extend(&used.columns);
    columns
}
