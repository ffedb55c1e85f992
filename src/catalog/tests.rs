//! Resolution against a catalog built by hand: unqualified columns placed,
//! `*` expanded, views and functions followed, labels applied, and what
//! cannot be resolved said.

use std::sync::Arc;

use super::model::{DbCatalog, Function, Relation};
use super::{resolve, Labels, Lookup};
use crate::config::LabelsConfig;
use crate::sql::{analyze, body_use, columns::Signature, AnalyzerConfig};

fn table(q: &str, cols: &[&str]) -> Relation {
    Relation {
        qualified: q.into(),
        columns: cols.iter().map(|c| c.to_string()).collect(),
        view_reads: Vec::new(),
        is_view: false,
    }
}

fn view(q: &str, cols: &[&str], reads: &[(&str, Option<&str>)]) -> Relation {
    Relation {
        view_reads: reads
            .iter()
            .map(|(t, c)| (t.to_string(), c.map(str::to_string)))
            .collect(),
        is_view: true,
        ..table(q, cols)
    }
}

fn catalog() -> Lookup {
    let mut c = DbCatalog::new("shop".into(), 7);
    c.add_relation(table("public.customers", &["id", "name", "card_number"]));
    c.add_relation(table("public.orders", &["id", "customer_id", "total"]));
    c.add_relation(table("billing.cards", &["id", "number"]));
    c.add_relation(view(
        "public.customer_cards",
        &["id", "card_number"],
        &[
            ("public.customers", Some("id")),
            ("public.customers", Some("card_number")),
        ],
    ));
    c.add_relation(view(
        "public.cards_again",
        &["id", "card_number"],
        &[
            ("public.customer_cards", Some("id")),
            ("public.customer_cards", Some("card_number")),
        ],
    ));
    let cfg = AnalyzerConfig::default();
    let signature = Signature {
        arguments: "p integer",
        result: "text",
    };
    let body = "DECLARE v text; BEGIN SELECT card_number INTO v FROM customers WHERE id = p; \
                EXECUTE 'SELECT 1'; RETURN v; END";
    c.add_function(Function {
        qualified: "public.card_of".into(),
        body: body_use("plpgsql", body, signature, "function public.card_of", &cfg),
    });
    Lookup::Ready(Arc::new(c))
}

fn labels() -> Labels {
    let mut l = LabelsConfig::new();
    l.insert(
        "pci".into(),
        vec![
            "public.customers.card_number".into(),
            "*.cards.number".into(),
        ],
    );
    Labels::new(&l).unwrap()
}

fn resolved(sql: &str, lookup: &Lookup) -> super::Resolved {
    let a = &analyze(sql.as_bytes(), &AnalyzerConfig::default())[0];
    resolve(&a.columns, &a.functions, lookup, &labels())
}

#[test]
fn unqualified_columns_go_to_the_relation_that_has_them() {
    let r = resolved(
        "SELECT name, total FROM customers c JOIN orders o ON o.customer_id = c.id",
        &catalog(),
    );
    assert_eq!(
        r.columns_read,
        [
            "public.orders.customer_id",
            "public.customers.id",
            "public.customers.name",
            "public.orders.total"
        ]
    );
    assert!(r.labels.is_empty());
    assert_eq!(r.catalog_version, 7);
    assert!(r.unresolved.is_empty(), "{:?}", r.unresolved);
}

#[test]
fn stars_views_and_functions_reach_the_base_columns() {
    let r = resolved("SELECT * FROM customers", &catalog());
    assert_eq!(
        r.columns_read,
        [
            "public.customers.id",
            "public.customers.name",
            "public.customers.card_number"
        ]
    );
    assert_eq!(r.labels, ["pci"]);

    let r = resolved("SELECT card_number FROM cards_again", &catalog());
    assert_eq!(
        r.columns_read,
        ["public.customers.id", "public.customers.card_number"]
    );
    assert_eq!(
        r.via,
        ["view public.cards_again", "view public.customer_cards"]
    );
    assert_eq!(r.objects_read, ["public.customers"]);
    assert_eq!(r.labels, ["pci"]);

    let r = resolved("SELECT card_of(1)", &catalog());
    assert_eq!(
        r.columns_read,
        ["public.customers.card_number", "public.customers.id"]
    );
    assert_eq!(r.via, ["function public.card_of"]);
    assert_eq!(r.unresolved, ["dynamic SQL in function public.card_of"]);
    assert_eq!(r.objects_read, ["public.customers"]);

    let r = resolved("SELECT number FROM billing.cards", &catalog());
    assert_eq!(r.columns_read, ["billing.cards.number"]);
    assert_eq!(r.labels, ["pci"]);
}

#[test]
fn names_no_relation_has_are_dropped_unless_a_relation_was_unknown() {
    // An output alias in ORDER BY is handled by the walk; a subquery's
    // column is not a relation's.
    let r = resolved(
        "SELECT s.x FROM (SELECT id AS x FROM customers) s",
        &catalog(),
    );
    assert_eq!(r.columns_read, ["public.customers.id"]);
    let r = resolved("SELECT nope FROM customers, temp_t", &catalog());
    assert_eq!(r.columns_read, ["?.nope"]);
    assert_eq!(
        r.unresolved,
        ["nope: in no relation of the catalog"],
        "{:?}",
        r.unresolved
    );
}

#[test]
fn without_a_loaded_catalog_names_stay_as_written_and_say_why() {
    for (lookup, note) in [
        (Lookup::Off, None),
        (Lookup::Pending, Some("catalog not loaded yet")),
        (
            Lookup::Failed("catalog of database shop not loaded: refused".into()),
            Some("catalog of database shop not loaded: refused"),
        ),
    ] {
        let r = resolved(
            "SELECT * FROM customers c JOIN orders o ON o.id = c.id WHERE name = 'x'",
            &lookup,
        );
        assert_eq!(
            r.columns_read,
            [
                "orders.id",
                "customers.id",
                "customers.*",
                "orders.*",
                "?.name"
            ]
        );
        let mut want = Vec::new();
        want.extend(note.map(str::to_string));
        want.extend([
            "customers.*: columns need the catalog".to_string(),
            "orders.*: columns need the catalog".to_string(),
            "name: which relation needs the catalog".to_string(),
        ]);
        assert_eq!(r.unresolved, want);
        assert_eq!(r.labels, ["pci"]);
        assert_eq!(r.catalog_version, 0);
    }
}
