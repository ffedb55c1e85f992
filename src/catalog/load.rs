//! Loading one database's catalog over a plain SQL connection as the
//! `[catalog]` role: three read-only queries of the system catalogs.

use std::collections::HashMap;

use super::model::{DbCatalog, Function, Relation};
use crate::cdc::replication::{ReplicationClient, ReplicationConfig, ReplicationError, Row};
use crate::config::{CatalogConfig, UpstreamConfig};
use crate::sql::AnalyzerConfig;

/// Where and as whom the catalog connection logs in.
#[derive(Debug, Clone)]
pub struct CatalogLogin {
    pub upstream: UpstreamConfig,
    pub role: String,
    pub password: Option<String>,
    /// The database of the URL, loaded at start.
    pub database: String,
}

/// Why `[catalog] url` was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCatalogUrl(pub &'static str);

impl std::fmt::Display for BadCatalogUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "catalog.url: {}", self.0)
    }
}

impl CatalogLogin {
    /// `postgres://role:password@host:port/database`; host and port
    /// default to the upstream's.
    pub fn from_config(
        c: &CatalogConfig,
        upstream: &UpstreamConfig,
    ) -> Result<Self, BadCatalogUrl> {
        let rest = c
            .url
            .0
            .strip_prefix("postgres://")
            .or_else(|| c.url.0.strip_prefix("postgresql://"))
            .ok_or(BadCatalogUrl("must start with postgres://"))?;
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let database = database.split('?').next().unwrap_or_default();
        let (userinfo, hostport) = authority.rsplit_once('@').ok_or(BadCatalogUrl(
            "names no role (postgres://role:password@host/db)",
        ))?;
        let (role, password) = match userinfo.split_once(':') {
            Some((r, p)) => (r, Some(percent_decoded(p)?)),
            None => (userinfo, None),
        };
        let role = percent_decoded(role)?;
        if role.is_empty() {
            return Err(BadCatalogUrl("names no role"));
        }
        let mut upstream = upstream.clone();
        if !hostport.is_empty() {
            upstream.url = format!("postgres://{hostport}");
            upstream
                .host_port()
                .map_err(|_| BadCatalogUrl("host or port not understood"))?;
        }
        Ok(CatalogLogin {
            upstream,
            role,
            password,
            database: percent_decoded(database)?,
        })
    }
}

fn percent_decoded(s: &str) -> Result<String, BadCatalogUrl> {
    let bad = BadCatalogUrl("bad percent-encoding");
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        if b != b'%' {
            out.push(b);
            continue;
        }
        let hex: Vec<u8> = bytes.by_ref().take(2).collect();
        let text = std::str::from_utf8(&hex).map_err(|_| bad.clone())?;
        out.push(u8::from_str_radix(text, 16).map_err(|_| bad.clone())?);
    }
    String::from_utf8(out).map_err(|_| bad)
}

const RELATIONS: &str = "SELECT n.nspname, c.relname, c.relkind::text, a.attname \
    FROM pg_catalog.pg_class c \
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
    LEFT JOIN pg_catalog.pg_attribute a \
      ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
      AND n.nspname <> 'information_schema' \
      AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
    ORDER BY n.nspname, c.relname, a.attnum";

const VIEW_READS: &str = "SELECT DISTINCT vn.nspname, v.relname, tn.nspname, t.relname, a.attname \
    FROM pg_catalog.pg_rewrite r \
    JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND v.relkind = 'v' \
    JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace \
    JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::regclass \
      AND d.objid = r.oid AND d.refclassid = 'pg_catalog.pg_class'::regclass \
      AND d.deptype = 'n' \
    JOIN pg_catalog.pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid \
    JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace \
    LEFT JOIN pg_catalog.pg_attribute a \
      ON a.attrelid = t.oid AND a.attnum = d.refobjsubid AND d.refobjsubid > 0 \
    WHERE vn.nspname NOT IN ('pg_catalog', 'information_schema')";

/// Function bodies; `BEGIN ATOMIC` bodies (PostgreSQL 14+) are stored
/// parsed and read back with `pg_get_function_sqlbody`.
fn functions_query(server_major: u32) -> String {
    let body = if server_major >= 14 {
        "CASE WHEN p.prosqlbody IS NOT NULL \
         THEN pg_catalog.pg_get_function_sqlbody(p.oid) ELSE p.prosrc END"
    } else {
        "p.prosrc"
    };
    format!(
        "SELECT n.nspname, p.proname, l.lanname, {body}, \
           pg_catalog.pg_get_function_arguments(p.oid), \
           pg_catalog.pg_get_function_result(p.oid) \
         FROM pg_catalog.pg_proc p \
         JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         JOIN pg_catalog.pg_language l ON l.oid = p.prolang \
         WHERE l.lanname IN ('sql', 'plpgsql') \
           AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
    )
}

/// Connects to `database` and reads its catalog.
pub async fn load(
    login: &CatalogLogin,
    database: &str,
    version: u64,
) -> Result<DbCatalog, ReplicationError> {
    let mut rc = ReplicationConfig::new(login.upstream.clone(), &login.role, database);
    rc.application_name = "pgtrail-catalog".into();
    rc.password = login.password.clone();
    rc.replication = false;
    let mut client = ReplicationClient::connect(&rc).await?;
    client
        .simple_query("SET statement_timeout = '30s'; SET default_transaction_read_only = on")
        .await?;
    let relations = client.simple_query(RELATIONS).await?;
    let views = client.simple_query(VIEW_READS).await?;
    let functions = client
        .simple_query(&functions_query(client.server_major()))
        .await?;
    let mut catalog = DbCatalog::new(database.to_string(), version);
    add_relations(&mut catalog, &relations, &views);
    add_functions(&mut catalog, &functions);
    Ok(catalog)
}

fn text(row: &Row, i: usize) -> Option<&str> {
    row.get(i)?
        .as_deref()
        .and_then(|b| std::str::from_utf8(b).ok())
}

fn add_relations(catalog: &mut DbCatalog, rows: &[Row], views: &[Row]) {
    let mut reads: HashMap<String, Vec<(String, Option<String>)>> = HashMap::new();
    for row in views {
        let (Some(vs), Some(v), Some(ts), Some(t)) =
            (text(row, 0), text(row, 1), text(row, 2), text(row, 3))
        else {
            continue;
        };
        let column = text(row, 4).map(str::to_string);
        reads
            .entry(format!("{vs}.{v}"))
            .or_default()
            .push((format!("{ts}.{t}"), column));
    }
    let mut current: Option<Relation> = None;
    for row in rows {
        let (Some(schema), Some(name), Some(kind)) = (text(row, 0), text(row, 1), text(row, 2))
        else {
            continue;
        };
        let qualified = format!("{schema}.{name}");
        if current.as_ref().is_none_or(|r| r.qualified != qualified) {
            if let Some(done) = current.take() {
                catalog.add_relation(done);
            }
            current = Some(Relation {
                view_reads: reads.remove(&qualified).unwrap_or_default(),
                qualified,
                columns: Vec::new(),
                is_view: kind == "v",
            });
        }
        if let (Some(r), Some(column)) = (current.as_mut(), text(row, 3)) {
            r.columns.push(column.to_string());
        }
    }
    if let Some(done) = current {
        catalog.add_relation(done);
    }
}

fn add_functions(catalog: &mut DbCatalog, rows: &[Row]) {
    let cfg = AnalyzerConfig {
        cache_entries: 0,
        ..AnalyzerConfig::default()
    };
    for row in rows {
        let (Some(schema), Some(name), Some(language), Some(body)) =
            (text(row, 0), text(row, 1), text(row, 2), text(row, 3))
        else {
            continue;
        };
        let qualified = format!("{schema}.{name}");
        let what = format!("function {qualified}");
        let body = match language {
            "sql" => sql_body(body),
            _ => body.to_string(),
        };
        let signature = crate::sql::columns::Signature {
            arguments: text(row, 4).unwrap_or_default(),
            result: text(row, 5).unwrap_or("void"),
        };
        let body = crate::sql::body_use(language, &body, signature, &what, &cfg);
        catalog.add_function(Function { qualified, body });
    }
}

/// A SQL function's statements: `RETURN expr` is `SELECT expr`, a `BEGIN
/// ATOMIC ... END` block its statements.
fn sql_body(body: &str) -> String {
    let trimmed = body.trim();
    let upper = trimmed.get(..12).map(str::to_ascii_uppercase);
    if upper.as_deref() == Some("BEGIN ATOMIC") {
        let inner = &trimmed[12..];
        let inner = inner
            .trim_end()
            .strip_suffix("END")
            .or_else(|| inner.trim_end().strip_suffix("end"))
            .unwrap_or(inner);
        return inner.to_string();
    }
    match trimmed.get(..7).map(str::to_ascii_uppercase).as_deref() {
        Some("RETURN ") => format!("SELECT {}", &trimmed[7..]),
        _ => body.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_gives_role_password_host_and_database() {
        let upstream = UpstreamConfig::default();
        let c = CatalogConfig {
            url: crate::config::Secret("postgres://cat%40x:p%3Aw@db.example:6543/shop".into()),
            ..Default::default()
        };
        let l = CatalogLogin::from_config(&c, &upstream).unwrap();
        assert_eq!(l.role, "cat@x");
        assert_eq!(l.password.as_deref(), Some("p:w"));
        assert_eq!(l.database, "shop");
        assert_eq!(l.upstream.host_port().unwrap(), ("db.example".into(), 6543));
        let c = CatalogConfig {
            url: crate::config::Secret("postgres://cat@/shop".into()),
            ..Default::default()
        };
        let l = CatalogLogin::from_config(&c, &upstream).unwrap();
        assert_eq!(l.upstream.url, upstream.url);
        assert_eq!(l.password, None);
        for bad in ["mysql://a@b/c", "postgres://host/db", "postgres://a%zz@h/d"] {
            let c = CatalogConfig {
                url: crate::config::Secret(bad.into()),
                ..Default::default()
            };
            assert!(CatalogLogin::from_config(&c, &upstream).is_err(), "{bad}");
        }
    }

    #[test]
    fn sql_bodies_become_statements() {
        assert_eq!(sql_body("RETURN a + 1"), "SELECT a + 1");
        assert_eq!(
            sql_body("BEGIN ATOMIC\n SELECT 1;\n SELECT 2;\nEND"),
            "\n SELECT 1;\n SELECT 2;\n"
        );
        assert_eq!(sql_body("SELECT 1"), "SELECT 1");
    }
}
