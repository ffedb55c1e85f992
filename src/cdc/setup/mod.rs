//! `pgtrail cdc setup`: what the server needs before row changes can be
//! decoded, checked over the replication connection of `[cdc]`, each
//! missing piece with the SQL that adds it or, where a person must act
//! (a restart, a superuser's grant), a precise message.
//!
//! Order matters on apply: the publication and replica identities come
//! before the slot, so the slot's first decoded transaction already sees
//! them. A slot that exists but was invalidated is never recreated here:
//! the changes it lost are gone, and a person must decide (the consumer,
//! when it is built, records that loss as a gap).

use super::replication::error::ServerErrorKind;
use super::replication::wire::{quote_ident, quote_literal};
use super::replication::{ReplicationClient, ReplicationConfig, ReplicationError, Row};
use crate::config::Config;

mod plan;
pub use plan::{Finding, Fix, Plan, SetupError};

/// Logs in as `[cdc] user` over a replication connection.
pub async fn connect(config: &Config) -> Result<ReplicationClient, SetupError> {
    let cdc = &config.cdc;
    let mut rc = ReplicationConfig::new(config.upstream.clone(), &cdc.user, &cdc.database);
    rc.application_name = "pgtrail-cdc-setup".into();
    if !cdc.password.0.is_empty() {
        rc.password = Some(cdc.password.0.clone());
    }
    ReplicationClient::connect(&rc).await.map_err(|source| {
        let hint = match &source {
            ReplicationError::Server(e) => match e.kind() {
                ServerErrorKind::InsufficientPrivilege => Some(format!(
                    "role {} may not replicate: a superuser runs ALTER ROLE {} REPLICATION",
                    quote_ident(&cdc.user),
                    quote_ident(&cdc.user)
                )),
                ServerErrorKind::LoginRefused => Some(
                    "check [cdc] user and password, and a `host ... replication` or database line for it in pg_hba.conf".into(),
                ),
                _ => None,
            },
            _ => None,
        };
        SetupError::Connect { source, hint }
    })
}

/// Checks everything `[cdc]` needs.
pub async fn check(
    client: &mut ReplicationClient,
    cdc: &crate::config::CdcConfig,
) -> Result<Plan, SetupError> {
    let mut plan = Plan::default();
    plan.findings.push(wal_level(client).await?);
    plan.findings.extend(publication(client, cdc).await?);
    for table in &cdc.replica_identity_full {
        plan.findings.push(replica_identity(client, table).await?);
    }
    plan.findings.push(slot(client, cdc).await?);
    plan.findings.push(wal_keep(client).await?);
    Ok(plan)
}

/// Runs the plan's SQL, then checks again.
pub async fn apply(
    client: &mut ReplicationClient,
    cdc: &crate::config::CdcConfig,
    plan: &Plan,
) -> Result<Plan, SetupError> {
    for sql in plan.sql() {
        query(client, sql).await?;
    }
    let after = check(client, cdc).await?;
    match after.is_ready() {
        true => Ok(after),
        false => Err(SetupError::Incomplete(after)),
    }
}

async fn query(client: &mut ReplicationClient, sql: &str) -> Result<Vec<Row>, SetupError> {
    client.simple_query(sql).await.map_err(SetupError::Query)
}

/// The first column of the first row, as text.
async fn value(client: &mut ReplicationClient, sql: &str) -> Result<Option<String>, SetupError> {
    let rows = query(client, sql).await?;
    Ok(rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .map(|b| String::from_utf8_lossy(&b).into_owned()))
}

async fn wal_level(client: &mut ReplicationClient) -> Result<Finding, SetupError> {
    let level = value(client, "SHOW wal_level").await?.unwrap_or_default();
    let fix = match level.as_str() {
        "logical" => Fix::Ready,
        other => Fix::Manual(format!(
            "wal_level is '{other}': set wal_level = logical (ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL"
        )),
    };
    Ok(Finding {
        what: "wal_level = logical".into(),
        fix,
    })
}

async fn publication(
    client: &mut ReplicationClient,
    cdc: &crate::config::CdcConfig,
) -> Result<Vec<Finding>, SetupError> {
    let name = quote_ident(&cdc.publication);
    let sql = format!(
        "SELECT puballtables FROM pg_publication WHERE pubname = {}",
        quote_literal(&cdc.publication)
    );
    let what = format!("publication {name}");
    let Some(all) = value(client, &sql).await? else {
        let target = match cdc.tables.is_empty() {
            true => "ALL TABLES".to_string(),
            false => format!("TABLE {}", table_list(&cdc.tables)),
        };
        let fix = Fix::Apply(format!("CREATE PUBLICATION {name} FOR {target}"));
        return Ok(vec![Finding { what, fix }]);
    };
    let mut out = vec![Finding {
        what,
        fix: Fix::Ready,
    }];
    if all != "t" {
        for table in &cdc.tables {
            out.push(published(client, cdc, table).await?);
        }
    }
    Ok(out)
}

/// One configured table in an existing publication of listed tables.
async fn published(
    client: &mut ReplicationClient,
    cdc: &crate::config::CdcConfig,
    table: &str,
) -> Result<Finding, SetupError> {
    let sql = format!(
        "SELECT count(*) FROM pg_publication_rel r JOIN pg_publication p ON p.oid = r.prpubid WHERE p.pubname = {} AND r.prrelid = to_regclass({})",
        quote_literal(&cdc.publication),
        quote_literal(&qualified(table))
    );
    let fix = match value(client, &sql).await?.as_deref() {
        Some("0") | None => Fix::Apply(format!(
            "ALTER PUBLICATION {} ADD TABLE {}",
            quote_ident(&cdc.publication),
            qualified(table)
        )),
        Some(_) => Fix::Ready,
    };
    Ok(Finding {
        what: format!(
            "{} in publication {}",
            qualified(table),
            quote_ident(&cdc.publication)
        ),
        fix,
    })
}

async fn replica_identity(
    client: &mut ReplicationClient,
    table: &str,
) -> Result<Finding, SetupError> {
    let name = qualified(table);
    let sql = format!(
        "SELECT relreplident FROM pg_class WHERE oid = to_regclass({})",
        quote_literal(&name)
    );
    let fix = match value(client, &sql).await?.as_deref() {
        None => Fix::Manual(format!("table {name} does not exist")),
        Some("f") => Fix::Ready,
        Some(_) => Fix::Apply(format!("ALTER TABLE {name} REPLICA IDENTITY FULL")),
    };
    Ok(Finding {
        what: format!("REPLICA IDENTITY FULL on {name}"),
        fix,
    })
}

async fn slot(
    client: &mut ReplicationClient,
    cdc: &crate::config::CdcConfig,
) -> Result<Finding, SetupError> {
    let what = format!("logical replication slot {}", quote_ident(&cdc.slot));
    let sql = format!(
        "SELECT plugin, database, coalesce(wal_status, '') FROM pg_replication_slots WHERE slot_name = {}",
        quote_literal(&cdc.slot)
    );
    let rows = query(client, &sql).await?;
    let text = |row: &Row, i: usize| {
        row.get(i)
            .cloned()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let fix = match rows.first() {
        Some(row) => existing_slot(cdc, &text(row, 0), &text(row, 1), &text(row, 2)),
        None => new_slot(client, cdc).await?,
    };
    Ok(Finding { what, fix })
}

/// What an existing slot of that name is fit for.
fn existing_slot(cdc: &crate::config::CdcConfig, plugin: &str, database: &str, wal: &str) -> Fix {
    let name = quote_ident(&cdc.slot);
    if plugin != "pgoutput" {
        return Fix::Manual(format!("slot {name} exists with plugin '{plugin}', not pgoutput: choose another [cdc] slot, or drop it if nothing uses it"));
    }
    if database != cdc.database {
        return Fix::Manual(format!(
            "slot {name} decodes database '{database}', not '{}': choose another [cdc] slot",
            cdc.database
        ));
    }
    if wal == "lost" {
        return Fix::Manual(format!("slot {name} was invalidated (the WAL it needed was removed, so changes were lost): pgtrail never recreates it by itself; once the loss is recorded, drop it (SELECT pg_drop_replication_slot({})) and run setup again", quote_literal(&cdc.slot)));
    }
    Fix::Ready
}

async fn new_slot(
    client: &mut ReplicationClient,
    cdc: &crate::config::CdcConfig,
) -> Result<Fix, SetupError> {
    let free = value(
        client,
        "SELECT current_setting('max_replication_slots')::int - (SELECT count(*) FROM pg_replication_slots)",
    )
    .await?;
    Ok(match free.as_deref().map(str::parse::<i64>) {
        Some(Ok(n)) if n > 0 => Fix::Apply(format!(
            "SELECT pg_create_logical_replication_slot({}, 'pgoutput')",
            quote_literal(&cdc.slot)
        )),
        _ => Fix::Manual(
            "every replication slot is in use (max_replication_slots): raise it and restart PostgreSQL, or drop a slot nothing uses".into(),
        ),
    })
}

async fn wal_keep(client: &mut ReplicationClient) -> Result<Finding, SetupError> {
    let keep = value(client, "SHOW max_slot_wal_keep_size").await?;
    let fix = match keep.as_deref() {
        Some("-1") => Fix::Advice("max_slot_wal_keep_size = -1: a stalled slot makes PostgreSQL keep WAL without limit and can fill its disk; set a bound (e.g. ALTER SYSTEM SET max_slot_wal_keep_size = '10GB'; SELECT pg_reload_conf()) and alert on slot lag".into()),
        _ => Fix::Ready,
    };
    Ok(Finding {
        what: "max_slot_wal_keep_size".into(),
        fix,
    })
}

/// `schema.table` (or `table`) with each part quoted.
fn qualified(table: &str) -> String {
    match table.split_once('.') {
        Some((schema, name)) => format!("{}.{}", quote_ident(schema), quote_ident(name)),
        None => quote_ident(table),
    }
}

fn table_list(tables: &[String]) -> String {
    tables
        .iter()
        .map(|t| qualified(t))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CdcConfig;

    #[test]
    fn names_are_quoted_and_the_script_says_what_is_missing() {
        assert_eq!(qualified("public.Cards"), "\"public\".\"Cards\"");
        assert_eq!(qualified("a\"b"), "\"a\"\"b\"");
        let cdc = CdcConfig::default();
        let plan = Plan {
            findings: vec![
                Finding {
                    what: "wal_level = logical".into(),
                    fix: Fix::Ready,
                },
                Finding {
                    what: "publication \"pgtrail\"".into(),
                    fix: Fix::Apply("CREATE PUBLICATION \"pgtrail\" FOR ALL TABLES".into()),
                },
            ],
        };
        assert!(!plan.is_ready() && !plan.needs_a_person());
        let script = plan.script(&cdc);
        assert!(script.contains("-- ok: wal_level = logical\n"));
        assert!(script.contains("CREATE PUBLICATION \"pgtrail\" FOR ALL TABLES;\n"));
        assert_eq!(
            existing_slot(&cdc, "test_decoding", "postgres", ""),
            Fix::Manual("slot \"pgtrail\" exists with plugin 'test_decoding', not pgoutput: choose another [cdc] slot, or drop it if nothing uses it".into())
        );
        assert!(matches!(
            existing_slot(&cdc, "pgoutput", "postgres", "lost"),
            Fix::Manual(m) if m.contains("never recreates")
        ));
        assert_eq!(
            existing_slot(&cdc, "pgoutput", "postgres", "reserved"),
            Fix::Ready
        );
    }
}
