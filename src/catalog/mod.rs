//! The catalog: what pgtrail knows of each database's tables, columns,
//! views and functions, so that the columns a statement names can be
//! resolved (`*` expanded, unqualified names placed, views and functions
//! followed to the base tables) and labelled.
//!
//! - `model`: one database's catalog ([`DbCatalog`]), immutable once loaded.
//! - `load`: reading it over a plain SQL connection as `[catalog]`'s role.
//! - `resolve`: a statement's [`ColumnUse`](crate::sql::columns::ColumnUse)
//!   resolved against it ([`Resolved`]).
//! - `labels`: `[labels]` patterns and the labels of resolved columns.
//!
//! The catalog is optional and never on a session's path: sessions'
//! records are resolved on the audit writer's thread from the snapshot
//! loaded last ([`Catalog::lookup`]); a database is loaded at start or when
//! first used, again on DDL seen through pgtrail and every
//! `refresh_interval_s`, by [`Catalog::run`] on the runtime. A failing
//! connection keeps the last snapshot (or none): records then say what was
//! not resolved and why, traffic is not affected.

pub mod labels;
pub mod load;
pub mod model;
pub mod resolve;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub use labels::Labels;
pub use load::{BadCatalogUrl, CatalogLogin};
pub use model::DbCatalog;
pub use resolve::{resolve, Resolved};

/// How soon a failed load is tried again.
const RETRY: Duration = Duration::from_secs(5);

/// The state of one database's catalog.
#[derive(Debug, Clone)]
enum Entry {
    Loading,
    Ready(Arc<DbCatalog>),
    /// The last load failed (and no snapshot was loaded before).
    Failed(String),
}

/// What [`Catalog::lookup`] found for a database.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// No `[catalog]` configured.
    Off,
    Ready(Arc<DbCatalog>),
    /// Not loaded yet (asked for now).
    Pending,
    Failed(String),
}

/// Every database's catalog, shared by the audit writer and the loader.
pub struct Catalog {
    login: CatalogLogin,
    refresh: Duration,
    entries: RwLock<HashMap<String, Entry>>,
    wanted: Mutex<BTreeSet<String>>,
    wake: tokio::sync::Notify,
    versions: AtomicU64,
    loads: AtomicU64,
    failures: AtomicU64,
}

impl Catalog {
    pub fn new(login: CatalogLogin, refresh: Duration, databases: &[String]) -> Self {
        let catalog = Catalog {
            refresh,
            entries: RwLock::default(),
            wanted: Mutex::default(),
            wake: tokio::sync::Notify::new(),
            versions: AtomicU64::new(0),
            loads: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            login,
        };
        let first = catalog.login.database.clone();
        for db in std::iter::once(&first)
            .chain(databases)
            .filter(|d| !d.is_empty())
        {
            catalog.reload(db);
        }
        catalog
    }

    /// The snapshot for `database`; asks for a load when there is none.
    pub fn lookup(&self, database: &str) -> Lookup {
        let known = match self.entries.read() {
            Ok(entries) => entries.get(database).cloned(),
            Err(_) => return Lookup::Failed("catalog lock poisoned".into()),
        };
        match known {
            Some(Entry::Ready(c)) => Lookup::Ready(c),
            Some(Entry::Loading) => Lookup::Pending,
            Some(Entry::Failed(why)) => Lookup::Failed(why),
            None => {
                self.reload(database);
                Lookup::Pending
            }
        }
    }

    /// Asks for `database` to be loaded again (DDL was seen).
    pub fn reload(&self, database: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries
                .entry(database.to_string())
                .or_insert(Entry::Loading);
        }
        if let Ok(mut wanted) = self.wanted.lock() {
            wanted.insert(database.to_string());
        }
        self.wake.notify_one();
    }

    /// Loads counted so far: (successful, failed).
    pub fn load_counts(&self) -> (u64, u64) {
        (
            self.loads.load(Ordering::Relaxed),
            self.failures.load(Ordering::Relaxed),
        )
    }

    /// Databases whose loads fail with no snapshot to fall back on.
    pub fn failing_databases(&self) -> usize {
        self.entries.read().map_or(0, |e| {
            e.values().filter(|v| matches!(v, Entry::Failed(_))).count()
        })
    }

    /// Loads what is asked for, and every known database each
    /// `refresh_interval_s`, until `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut last_refresh = Instant::now();
        let mut last_retry = Instant::now();
        loop {
            if last_retry.elapsed() >= RETRY {
                last_retry = Instant::now();
                self.retry_failed();
            }
            let wanted: Vec<String> = match self.wanted.lock() {
                Ok(mut w) => std::mem::take(&mut *w).into_iter().collect(),
                Err(_) => return,
            };
            for db in wanted {
                self.load_one(&db).await;
            }
            if last_refresh.elapsed() >= self.refresh {
                last_refresh = Instant::now();
                let known: Vec<String> = match self.entries.read() {
                    Ok(e) => e.keys().cloned().collect(),
                    Err(_) => return,
                };
                for db in known {
                    self.load_one(&db).await;
                }
            }
            let until_refresh = self.refresh.saturating_sub(last_refresh.elapsed());
            let until = until_refresh.min(RETRY.saturating_sub(last_retry.elapsed()));
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(until.max(Duration::from_millis(100))) => {}
            }
        }
    }

    async fn load_one(&self, database: &str) {
        let version = self.versions.fetch_add(1, Ordering::Relaxed) + 1;
        let started = Instant::now();
        match load::load(&self.login, database, version).await {
            Ok(c) => {
                self.loads.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    target: "pgtrail::catalog",
                    database,
                    version,
                    relations = c.relation_count(),
                    functions = c.function_count(),
                    ms = started.elapsed().as_millis() as u64,
                    "catalog loaded"
                );
                self.set(database, Entry::Ready(Arc::new(c)));
            }
            Err(e) => {
                self.failures.fetch_add(1, Ordering::Relaxed);
                let why = format!("catalog of database {database} not loaded: {e}");
                let before = self.current(database);
                // Retried every 5 s: warn when it starts failing, not each time.
                if matches!(before, Some(Entry::Failed(_))) {
                    tracing::debug!(target: "pgtrail::catalog", database, error = %e, "catalog still not loaded");
                } else {
                    tracing::warn!(target: "pgtrail::catalog", database, error = %e, "catalog not loaded; the last one loaded (if any) stays in use, retried every 5 s");
                }
                if !matches!(before, Some(Entry::Ready(_))) {
                    self.set(database, Entry::Failed(why));
                }
            }
        }
    }

    /// Databases whose last load failed with no snapshot to fall back
    /// on are tried again sooner than the refresh.
    fn retry_failed(&self) {
        let failed: Vec<String> = match self.entries.read() {
            Ok(e) => e
                .iter()
                .filter(|(_, v)| matches!(v, Entry::Failed(_)))
                .map(|(k, _)| k.clone())
                .collect(),
            Err(_) => return,
        };
        if let Ok(mut wanted) = self.wanted.lock() {
            wanted.extend(failed);
        }
    }

    fn current(&self, database: &str) -> Option<Entry> {
        self.entries.read().ok()?.get(database).cloned()
    }

    fn set(&self, database: &str, entry: Entry) {
        if let Ok(mut entries) = self.entries.write() {
            entries.insert(database.to_string(), entry);
        }
    }
}
