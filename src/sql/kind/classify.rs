//! The leading-keyword classifier shared by all three paths: PostgreSQL's
//! grammar starts every statement with keywords that name its kind.

use crate::sql::kind::objtype::object_at;
use crate::sql::kind::words::Words;
use crate::sql::kind::Kind;
use crate::sql::lex::{Tok, Token};

/// Result of the leading-keyword classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct KwClass {
    pub(crate) kind: Kind,
    /// For EXPLAIN: whether ANALYZE runs the statement, and the inner kind.
    pub(crate) explain_analyze: bool,
    pub(crate) inner: Kind,
}

fn verb_object(verb: &str, obj: &str) -> Kind {
    let mut name = String::with_capacity(verb.len() + obj.len() + 1);
    name.push_str(verb);
    name.push('_');
    name.push_str(obj);
    Kind::from_name(&name).unwrap_or(Kind::Unknown)
}

/// Classify a statement from its leading keywords. `toks` holds the
/// significant (non-trivia) tokens of one statement.
pub(crate) fn classify(src: &[u8], toks: &[Token]) -> KwClass {
    classify_depth(&Words { src, toks }, 0)
}

fn simple(kind: Kind) -> KwClass {
    KwClass {
        kind,
        explain_analyze: false,
        inner: kind,
    }
}

/// Leading keywords that alone give the kind.
const ONE_WORD: &[(&str, Kind)] = &[
    ("values", Kind::Select),
    ("table", Kind::Select),
    ("insert", Kind::Insert),
    ("update", Kind::Update),
    ("delete", Kind::Delete),
    ("merge", Kind::Merge),
    ("truncate", Kind::Truncate),
    ("begin", Kind::Begin),
    ("start", Kind::Begin),
    ("savepoint", Kind::Savepoint),
    ("release", Kind::Release),
    ("reset", Kind::Reset),
    ("show", Kind::Show),
    ("discard", Kind::Discard),
    ("call", Kind::Call),
    ("do", Kind::Do),
    ("vacuum", Kind::Vacuum),
    ("analyze", Kind::Analyze),
    ("analyse", Kind::Analyze),
    ("cluster", Kind::Cluster),
    ("reindex", Kind::Reindex),
    ("lock", Kind::Lock),
    ("listen", Kind::Listen),
    ("notify", Kind::Notify),
    ("unlisten", Kind::Unlisten),
    ("execute", Kind::Execute),
    ("deallocate", Kind::Deallocate),
    ("declare", Kind::Declare),
    ("fetch", Kind::Fetch),
    ("move", Kind::Move),
    ("close", Kind::Close),
    ("refresh", Kind::RefreshMaterializedView),
    ("comment", Kind::Comment),
    ("security", Kind::SecurityLabel),
    ("checkpoint", Kind::Checkpoint),
    ("load", Kind::Load),
    ("import", Kind::ImportForeignSchema),
    ("reassign", Kind::ReassignOwned),
];

fn classify_depth(w: &Words, depth: u32) -> KwClass {
    if depth > 8 {
        return simple(Kind::Unknown);
    }
    match w.kind_at(0) {
        Some(Tok::LParen) => simple(select_like(w)),
        Some(Tok::Ident) if w.is(0, "with") => with(w, depth),
        Some(Tok::Ident) if w.is(0, "explain") => explain(w, depth),
        Some(Tok::Ident) => simple(leading_word(w)),
        _ => simple(Kind::Unknown),
    }
}

/// WITH ...: the kind of the statement after the CTEs.
fn with(w: &Words, depth: u32) -> KwClass {
    let main = &[
        "select", "insert", "update", "delete", "merge", "values", "table",
    ];
    match w.find0(1, main) {
        Some(i) => classify_depth(
            &Words {
                src: w.src,
                toks: &w.toks[i..],
            },
            depth + 1,
        ),
        None => simple(Kind::Unknown),
    }
}

/// The kind a leading identifier (not WITH or EXPLAIN) gives.
fn leading_word(w: &Words) -> Kind {
    if let Some(&(_, k)) = ONE_WORD.iter().find(|(word, _)| w.is(0, word)) {
        return k;
    }
    let is = |s: &str| w.is(0, s);
    if is("select") {
        select_like(w)
    } else if is("copy") {
        match w.find0(1, &["from", "to"]) {
            Some(i) if w.is(i, "from") => Kind::CopyFrom,
            Some(_) => Kind::CopyTo,
            None => Kind::Unknown,
        }
    } else if is("create") {
        create(w)
    } else if is("alter") {
        alter(w)
    } else if is("drop") {
        if w.is(1, "owned") {
            Kind::DropOwned
        } else {
            object_at(w, 1).map_or(Kind::Unknown, |o| verb_object("drop", o))
        }
    } else if is("grant") || is("revoke") {
        let on = w.find0(1, &["on"]).is_some();
        match (is("grant"), on) {
            (true, true) => Kind::Grant,
            (true, false) => Kind::GrantRole,
            (false, true) => Kind::Revoke,
            (false, false) => Kind::RevokeRole,
        }
    } else {
        transaction_or_session(w)
    }
}

/// COMMIT/END, ROLLBACK/ABORT, PREPARE and SET, whose next words decide.
fn transaction_or_session(w: &Words) -> Kind {
    let is = |s: &str| w.is(0, s);
    if is("commit") || is("end") {
        if w.is(1, "prepared") {
            Kind::CommitPrepared
        } else {
            Kind::Commit
        }
    } else if is("rollback") || is("abort") {
        if w.is(1, "prepared") {
            Kind::RollbackPrepared
        } else if w.find0(1, &["to"]).is_some() {
            Kind::RollbackToSavepoint
        } else {
            Kind::Rollback
        }
    } else if is("prepare") {
        if w.is(1, "transaction") {
            Kind::PrepareTransaction
        } else {
            Kind::Prepare
        }
    } else if is("set") {
        if w.is(1, "transaction") || (w.is(1, "session") && w.is(2, "characteristics")) {
            Kind::SetTransaction
        } else if w.is(1, "constraints") {
            Kind::SetConstraints
        } else {
            Kind::Set
        }
    } else {
        Kind::Unknown
    }
}

fn select_like(w: &Words) -> Kind {
    if w.find0(0, &["into"]).is_some() {
        Kind::CreateTableAs
    } else {
        Kind::Select
    }
}

fn create(w: &Words) -> Kind {
    let mut i = 1;
    if w.is(i, "or") && w.is(i + 1, "replace") {
        i += 2;
    }
    while [
        "temp",
        "temporary",
        "local",
        "global",
        "unlogged",
        "unique",
        "default",
        "trusted",
        "procedural",
        "constraint",
        "recursive",
    ]
    .iter()
    .any(|m| w.is(i, m))
    {
        i += 1;
    }
    match object_at(w, i) {
        Some("table") => {
            if w.find0(i + 1, &["as"]).is_some() {
                Kind::CreateTableAs
            } else {
                Kind::CreateTable
            }
        }
        Some(o) => verb_object("create", o),
        None => Kind::Unknown,
    }
}

fn alter(w: &Words) -> Kind {
    if w.is(1, "system") {
        return Kind::AlterSystem;
    }
    if w.is(1, "default") && w.is(2, "privileges") {
        return Kind::AlterDefaultPrivileges;
    }
    object_at(w, 1).map_or(Kind::Unknown, |o| verb_object("alter", o))
}

fn explain(w: &Words, depth: u32) -> KwClass {
    let mut i = 1;
    let mut analyze = false;
    if w.kind_at(1) == Some(Tok::LParen) {
        let mut d = 0i64;
        let mut j = 1;
        while j < w.toks.len() {
            match w.toks[j].kind {
                Tok::LParen => d += 1,
                Tok::RParen => {
                    d -= 1;
                    if d == 0 {
                        break;
                    }
                }
                Tok::Ident if d == 1 && (w.is(j, "analyze") || w.is(j, "analyse")) => {
                    let off = w.is(j + 1, "false")
                        || w.is(j + 1, "off")
                        || w.toks
                            .get(j + 1)
                            .is_some_and(|t| t.kind == Tok::Num && &w.src[t.start..t.end] == b"0");
                    analyze = !off;
                }
                _ => {}
            }
            j += 1;
        }
        i = j + 1;
    } else {
        while w.is(i, "analyze") || w.is(i, "analyse") || w.is(i, "verbose") {
            if !w.is(i, "verbose") {
                analyze = true;
            }
            i += 1;
        }
    }
    let inner = match w.toks.get(i..) {
        Some(rest) if !rest.is_empty() => {
            classify_depth(
                &Words {
                    src: w.src,
                    toks: rest,
                },
                depth + 1,
            )
            .kind
        }
        _ => Kind::Unknown,
    };
    KwClass {
        kind: Kind::Explain,
        explain_analyze: analyze,
        inner,
    }
}
