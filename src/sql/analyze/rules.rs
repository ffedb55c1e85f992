//! The kind-based rules that turn what a parser path extracted into an
//! [`Analysis`]: EXPLAIN (without ANALYZE) and PREPARE only read, a SELECT
//! whose CTE modifies data is a write, DDL targets are written.

use crate::sql::analysis::{Analysis, Parser};
use crate::sql::analyze::pre::Pre;
use crate::sql::kind::classify::KwClass;
use crate::sql::kind::{AuditClass, Class, Kind};
use crate::sql::parsers::Extract;

/// Statements whose nested DML is not executed now.
fn non_executing(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Prepare | Kind::CreateRule | Kind::CreateFunction | Kind::CreateProcedure
    )
}

fn names(v: Vec<(i64, String)>) -> impl Iterator<Item = String> {
    v.into_iter().map(|e| e.1)
}

pub(super) fn build(
    kw: KwClass,
    parser: Parser,
    note: Option<String>,
    ex: Extract,
    p: Pre,
) -> Analysis {
    let kind = kw.kind;
    let mut class = kind.class();
    let mut crud = kind.crud();
    let mut audit = kind.audit_class();
    let has_writes = !ex.writes.is_empty();
    let locking = ex.locking || kind == Kind::Lock;
    let (objects_read, objects_written);
    if kind == Kind::Explain && !kw.explain_analyze {
        objects_read = dedup(
            names(ex.reads)
                .chain(names(ex.writes))
                .chain(names(ex.targets)),
        );
        objects_written = Vec::new();
    } else if non_executing(kind) {
        objects_read = dedup(names(ex.reads).chain(names(ex.writes)));
        objects_written = dedup(names(ex.targets));
    } else {
        let eff = if kind == Kind::Explain {
            kw.inner
        } else {
            kind
        };
        if kind == Kind::Explain {
            class = eff.class();
            crud = eff.crud();
            audit = eff.audit_class();
        }
        if eff == Kind::Select && has_writes {
            let nk = ex.nested_kind.unwrap_or(Kind::Insert);
            class = Class::Write;
            crud = nk.crud();
            audit = AuditClass::Write;
        }
        objects_read = dedup(names(ex.reads));
        objects_written = dedup(names(ex.targets).chain(names(ex.writes)));
    }
    Analysis {
        kind,
        class,
        crud,
        audit_class: audit,
        objects_read,
        objects_written,
        functions: dedup(names(ex.functions)),
        parser,
        parser_note: note,
        fingerprint: p.fingerprint,
        normalized: p.normalized,
        statement: p.statement,
        locking,
        object_type: None,
        explain_inner: (kind == Kind::Explain).then_some(kw.inner),
        explain_analyze: kw.explain_analyze,
        cached: false,
        columns: Default::default(),
    }
}

/// Names without duplicates, in order.
fn dedup(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for it in items {
        if !it.is_empty() && !out.contains(&it) {
            out.push(it);
        }
    }
    out
}
