//! Column references of labeled statements, before any catalog.

use super::{Access, ColumnUse, Origin};
use crate::sql::{analyze, AnalyzerConfig};

/// `r customers.id` for a known relation, `r [c|o@1].id` for an
/// unqualified column (candidates, `@level` beyond the innermost, `()` a
/// subquery/CTE), `.*` for all columns.
fn render(u: &ColumnUse) -> Vec<String> {
    u.refs
        .iter()
        .map(|r| {
            let access = match r.access {
                Access::Read => "r",
                Access::Write => "w",
            };
            let origin = match &r.origin {
                Origin::Table(t) => t.clone(),
                Origin::OneOf(c) => {
                    let names: Vec<String> = c
                        .iter()
                        .map(|c| {
                            let t = c.table.clone().unwrap_or_else(|| "()".into());
                            match c.level {
                                0 => t,
                                l => format!("{t}@{l}"),
                            }
                        })
                        .collect();
                    format!("[{}]", names.join("|"))
                }
            };
            let column = r.column.as_deref().unwrap_or("*");
            format!("{access} {origin}.{column}")
        })
        .collect()
}

fn use_of(sql: &str) -> ColumnUse {
    let a = analyze(sql.as_bytes(), &AnalyzerConfig::default());
    assert_eq!(a.len(), 1, "{sql}");
    (*a[0].columns).clone()
}

/// Sorted: the walk visits FROM (join conditions) before the select list.
fn refs(sql: &str) -> Vec<String> {
    let mut r = render(&use_of(sql));
    r.sort();
    r
}

fn check(cases: &[(&str, &[&str])]) {
    for (sql, want) in cases {
        let mut want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(refs(sql), want, "{sql}");
    }
}

#[test]
fn select_lists_filters_joins_and_stars() {
    let cases: &[(&str, &[&str])] = &[
        (
            "SELECT id, name FROM customers",
            &["r [customers].id", "r [customers].name"],
        ),
        (
            "SELECT c.card_number FROM customers c WHERE c.id = $1",
            &["r customers.card_number", "r customers.id"],
        ),
        ("SELECT * FROM customers", &["r customers.*"]),
        ("SELECT count(*) FROM customers", &[]),
        (
            "SELECT o.total, c.* FROM orders o JOIN customers c ON c.id = o.customer_id",
            &[
                "r orders.total",
                "r customers.*",
                "r customers.id",
                "r orders.customer_id",
            ],
        ),
        (
            "SELECT name AS n FROM customers GROUP BY n ORDER BY n",
            &["r [customers].name"],
        ),
        (
            "SELECT customers.card_number, public.customers.id FROM public.customers",
            &["r public.customers.card_number", "r public.customers.id"],
        ),
        (
            "SELECT x.card_number FROM customers AS x, orders",
            &["r customers.card_number"],
        ),
        (
            "SELECT id FROM customers JOIN orders USING (id)",
            &["r [customers|orders].id"],
        ),
    ];
    check(cases);
}

#[test]
fn subqueries_ctes_and_set_operations_scope_like_postgres() {
    let cases: &[(&str, &[&str])] = &[
        (
            "WITH x AS (SELECT card_number FROM customers) SELECT * FROM x",
            &["r [customers].card_number"],
        ),
        (
            "SELECT (SELECT max(card_number) FROM customers c2 WHERE c2.id = c.id) FROM customers c",
            &[
                "r [customers|customers@1].card_number",
                "r customers.id",
            ],
        ),
        (
            "SELECT s.n FROM (SELECT card_number AS n FROM customers) s",
            &["r [customers].card_number"],
        ),
        (
            "SELECT card_number FROM customers UNION SELECT note FROM orders ORDER BY 1",
            &["r [customers].card_number", "r [orders].note"],
        ),
        (
            "SELECT id FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE card_number LIKE '4%')",
            &[
                "r [orders].id",
                "r [orders].customer_id",
                "r [customers|orders@1].id",
                "r [customers|orders@1].card_number",
            ],
        ),
    ];
    check(cases);
}

#[test]
fn writes_name_their_target_columns() {
    let cases: &[(&str, &[&str])] = &[
        (
            "UPDATE customers SET name = 'x' WHERE id = 1 RETURNING card_number",
            &[
                "w customers.name",
                "r [customers].id",
                "r [customers].card_number",
            ],
        ),
        (
            "INSERT INTO customers (id, name) VALUES (1, 'a')",
            &["w customers.id", "w customers.name"],
        ),
        (
            "INSERT INTO customers SELECT * FROM staging",
            &["r staging.*", "w customers.*"],
        ),
        (
            "DELETE FROM customers WHERE id = 1",
            &["w customers.*", "r [customers].id"],
        ),
        ("TRUNCATE customers, orders", &["w customers.*", "w orders.*"]),
        (
            "UPDATE customers c SET name = s.name FROM staging s WHERE s.id = c.id",
            &[
                "w customers.name",
                "r staging.name",
                "r staging.id",
                "r customers.id",
            ],
        ),
        (
            "INSERT INTO customers (id, name) VALUES (1, 'a') ON CONFLICT (id) DO UPDATE SET name = excluded.name",
            &["w customers.id", "w customers.name"],
        ),
        (
            "MERGE INTO customers t USING staging s ON t.id = s.id \
             WHEN MATCHED THEN UPDATE SET name = s.name \
             WHEN NOT MATCHED THEN INSERT (id, name) VALUES (s.id, s.name)",
            &[
                "r customers.id",
                "r staging.id",
                "w customers.name",
                "r staging.name",
                "w customers.id",
            ],
        ),
        (
            "WITH gone AS (DELETE FROM customers WHERE id = 1 RETURNING card_number) SELECT * FROM gone",
            &[
                "w customers.*",
                "r [customers].id",
                "r [customers].card_number",
            ],
        ),
    ];
    check(cases);
}

#[test]
fn copy_explain_and_prepare() {
    let cases: &[(&str, &[&str])] = &[
        (
            "COPY customers (id, card_number) TO STDOUT",
            &["r customers.id", "r customers.card_number"],
        ),
        ("COPY customers TO STDOUT", &["r customers.*"]),
        ("COPY customers FROM STDIN", &["w customers.*"]),
        (
            "COPY (SELECT card_number FROM customers) TO STDOUT",
            &["r [customers].card_number"],
        ),
        ("EXPLAIN SELECT card_number FROM customers", &[]),
        (
            "EXPLAIN ANALYZE SELECT card_number FROM customers",
            &["r [customers].card_number"],
        ),
        (
            "PREPARE q (int) AS SELECT card_number FROM customers WHERE id = $1",
            &["r [customers].card_number", "r [customers].id"],
        ),
        ("CREATE VIEW v AS SELECT card_number FROM customers", &[]),
    ];
    check(cases);
}

#[test]
fn do_blocks_contribute_static_statements_and_flag_dynamic_sql() {
    let sql = "DO $$ DECLARE v text; BEGIN \
               SELECT card_number INTO v FROM customers WHERE id = 1; \
               UPDATE orders SET note = v WHERE customer_id = 1; \
               EXECUTE format('SELECT * FROM %I', 'x'); END $$";
    let a = &analyze(sql.as_bytes(), &AnalyzerConfig::default())[0];
    assert_eq!(
        render(&a.columns),
        [
            "r [customers].card_number",
            "r [customers].id",
            "w orders.note",
            "r [orders].customer_id",
        ]
    );
    assert_eq!(a.columns.via, ["DO block"]);
    assert_eq!(a.columns.unresolved, ["dynamic SQL in DO block"]);
    assert_eq!(a.objects_read, ["customers"]);
    assert_eq!(a.objects_written, ["orders"]);
    let other = use_of("DO LANGUAGE plperl $$ print 1 $$");
    assert_eq!(other.unresolved, ["DO block in language plperl"]);
}

#[test]
fn statements_no_parser_reads_say_so() {
    let u = use_of("SELECT card_number FROM customers WHERE");
    assert!(u.refs.is_empty());
    assert_eq!(u.unresolved, ["statement not parsed"]);
}

/// Over the labeled statement table: every relation a column is placed
/// in (or may come from) is one of the statement's objects.
#[test]
fn column_relations_are_the_statements_objects() {
    let cfg = AnalyzerConfig::default();
    for case in crate::sql::tests::cases::DML_CASES {
        let sql = case.0;
        for a in analyze(sql.as_bytes(), &cfg) {
            let objects: Vec<&String> = a.objects_read.iter().chain(&a.objects_written).collect();
            for r in &a.columns.refs {
                let tables: Vec<&String> = match &r.origin {
                    Origin::Table(t) => vec![t],
                    Origin::OneOf(c) => c.iter().filter_map(|c| c.table.as_ref()).collect(),
                };
                for t in tables {
                    assert!(objects.contains(&t), "{sql}: {t} not in {objects:?}");
                }
            }
        }
    }
}
