//! Object types named by DDL/DCL keywords (`table`, `function`, `role`,
//! ...): the word after CREATE/ALTER/DROP, and the `object_type` of a
//! classified statement's targets.

use crate::sql::kind::words::Words;
use crate::sql::kind::Kind;
use crate::sql::lex::Token;

const OBJECT_WORDS: &[(&str, &str)] = &[
    ("table", "table"),
    ("index", "index"),
    ("sequence", "sequence"),
    ("view", "view"),
    ("schema", "schema"),
    ("database", "database"),
    ("function", "function"),
    ("procedure", "procedure"),
    ("routine", "routine"),
    ("aggregate", "aggregate"),
    ("type", "type"),
    ("domain", "domain"),
    ("collation", "collation"),
    ("conversion", "conversion"),
    ("extension", "extension"),
    ("server", "server"),
    ("role", "role"),
    ("group", "role"),
    ("language", "language"),
    ("policy", "policy"),
    ("publication", "publication"),
    ("subscription", "subscription"),
    ("rule", "rule"),
    ("trigger", "trigger"),
    ("tablespace", "tablespace"),
    ("cast", "cast"),
    ("transform", "transform"),
    ("statistics", "statistics"),
];

/// Object type named at `i` (after CREATE/ALTER/DROP and modifiers).
pub(super) fn object_at(w: &Words, i: usize) -> Option<&'static str> {
    if w.is(i, "materialized") {
        return Some("materialized_view");
    }
    if w.is(i, "foreign") {
        return Some(if w.is(i + 1, "table") {
            "foreign_table"
        } else {
            "foreign_data_wrapper"
        });
    }
    if w.is(i, "user") {
        return Some(if w.is(i + 1, "mapping") {
            "user_mapping"
        } else {
            "role"
        });
    }
    if w.is(i, "operator") {
        return Some(if w.is(i + 1, "class") {
            "operator_class"
        } else if w.is(i + 1, "family") {
            "operator_family"
        } else {
            "operator"
        });
    }
    if w.is(i, "event") {
        return Some("event_trigger");
    }
    if w.is(i, "access") {
        return Some("access_method");
    }
    if w.is(i, "large") {
        return Some("large_object");
    }
    if w.is(i, "text") {
        for (word, obj) in [
            ("parser", "text_search_parser"),
            ("dictionary", "text_search_dictionary"),
            ("template", "text_search_template"),
            ("configuration", "text_search_configuration"),
        ] {
            if w.is(i + 2, word) {
                return Some(obj);
            }
        }
        return None;
    }
    OBJECT_WORDS
        .iter()
        .find(|(word, _)| w.is(i, word))
        .map(|(_, o)| *o)
}

/// Object type of a DDL/DCL/maintenance statement's targets (`table`,
/// `function`, `schema`, `role`, ...), from its kind and keywords.
pub(crate) fn object_type(src: &[u8], toks: &[Token], kind: Kind) -> Option<&'static str> {
    let w = Words { src, toks };
    let name = kind.as_str();
    for verb in ["create_", "alter_", "drop_"] {
        if let Some(obj) = name.strip_prefix(verb) {
            return match kind {
                Kind::CreateTableAs => Some("table"),
                Kind::AlterDefaultPrivileges | Kind::AlterSystem => None,
                _ => Some(obj),
            };
        }
    }
    match kind {
        Kind::Grant | Kind::Revoke | Kind::Comment | Kind::SecurityLabel => {
            let on = w.find0(1, &["on"])?;
            let i = on + 1;
            if w.is(i, "all") {
                return Some("schema"); // ALL TABLES IN SCHEMA s: the schemas are named
            }
            for (word, obj) in [
                ("column", "column"),
                ("constraint", "constraint"),
                ("parameter", "parameter"),
                ("server", "server"),
                ("foreign", "foreign_data_wrapper"),
            ] {
                if w.is(i, word) && !(word == "foreign" && w.is(i + 1, "table")) {
                    return Some(if word == "foreign" && w.is(i + 1, "server") {
                        "server"
                    } else {
                        obj
                    });
                }
            }
            Some(object_at(&w, i).unwrap_or("table"))
        }
        Kind::GrantRole | Kind::RevokeRole | Kind::ReassignOwned | Kind::DropOwned => Some("role"),
        Kind::Reindex => Some(object_at(&w, 1).unwrap_or(if w.is(1, "system") {
            "database"
        } else {
            "table"
        })),
        Kind::Vacuum | Kind::Analyze | Kind::Cluster | Kind::Truncate | Kind::Lock => Some("table"),
        Kind::RefreshMaterializedView => Some("materialized_view"),
        Kind::ImportForeignSchema => Some("schema"),
        _ => None,
    }
}
