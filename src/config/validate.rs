//! [`Config::validate`]: everything that can be checked without
//! connecting anywhere. Messages start with the key they concern, which
//! `config_file` looks up to point into the file.

use super::audit::is_identifier;
use super::{AuthMode, ClientTlsMode, Config, ConfigError, Durability, UpstreamTlsMode};

impl Config {
    /// Checks everything that can be checked without connecting anywhere.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |s: String| Err(ConfigError(s));
        self.upstream
            .host_port()
            .map_err(|e| ConfigError(e.to_string()))?;
        if self.worker_threads == 0 {
            return err("worker_threads must be at least 1".into());
        }
        crate::catalog::Labels::new(&self.labels).map_err(|e| ConfigError(e.to_string()))?;
        if self.catalog.enabled() {
            crate::catalog::CatalogLogin::from_config(&self.catalog, &self.upstream)
                .map_err(|e| ConfigError(e.to_string()))?;
        }
        if self.max_connections == 0 {
            return err("max_connections must be at least 1".into());
        }
        if self.limits.max_message_bytes < 1024 {
            return err("limits.max_message_bytes must be at least 1024".into());
        }
        if self.audit.queue_capacity == 0 {
            return err("audit.queue_capacity must be at least 1".into());
        }
        if self.audit.clickhouse_stall_timeout_ms == 0 {
            return err("audit.clickhouse_stall_timeout_ms must be at least 1".into());
        }
        if self.audit.spool_max_bytes == 0 || self.audit.spool_segment_bytes == 0 {
            return err("audit.spool_max_bytes and spool_segment_bytes must be at least 1".into());
        }
        self.validate_durability()?;
        let ch = &self.audit.clickhouse;
        if !is_identifier(&ch.database) {
            return err(format!(
                "audit.clickhouse.database {:?} must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)",
                ch.database
            ));
        }
        if let Some(c) = ch.cluster.as_deref().filter(|c| !is_identifier(c)) {
            return err(format!(
                "audit.clickhouse.cluster {c:?} must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)"
            ));
        }
        if ch.batch_rows == 0 || ch.batch_bytes == 0 || ch.batch_ms == 0 || ch.retention_days == 0 {
            return err(
                "audit.clickhouse.batch_rows, batch_bytes, batch_ms and retention_days must be at least 1"
                    .into(),
            );
        }
        if self.auth.mode == AuthMode::Proxy && self.auth.users_file.is_none() {
            return err("auth.users_file is required when auth.mode = \"proxy\"".into());
        }
        let needs_ca = matches!(
            self.upstream.tls,
            UpstreamTlsMode::VerifyCa | UpstreamTlsMode::VerifyFull
        );
        if needs_ca && self.upstream.ca_file.is_none() {
            return err(
                "upstream.ca_file is required for upstream.tls = verify-ca or verify-full".into(),
            );
        }
        if self.tls.mode != ClientTlsMode::Disable
            && (self.tls.cert_file.is_none() || self.tls.key_file.is_none())
        {
            return err(
                "tls.cert_file and tls.key_file are required unless tls.mode = \"disable\"".into(),
            );
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return err(format!("log.level {:?}: {e}", self.log.level));
        }
        Ok(())
    }

    /// A fixed instance id needs the spool (it keeps `seq`); `before_ack`
    /// needs a destination that can make a record durable before ClickHouse
    /// has it: the spool, or the audit file.
    fn validate_durability(&self) -> Result<(), ConfigError> {
        let a = &self.audit;
        if a.instance_id.is_some() && a.clickhouse_url.is_some() && a.spool_dir.is_none() {
            // Only the spool carries the sequence across restarts; a fixed id
            // with seq restarting at 1 would make ClickHouse merge records of
            // different runs as duplicates of one another.
            return Err(ConfigError(
                "audit.instance_id with audit.clickhouse_url needs audit.spool_dir: without a spool seq starts again at 1 on every start, and ClickHouse would deduplicate different records that share (instance_id, seq); set audit.spool_dir, or leave audit.instance_id unset (a new id per start)".into(),
            ));
        }
        if self.cdc.enabled
            && self.cdc.consume
            && a.clickhouse_url.is_some()
            && a.spool_dir.is_none()
        {
            // The slot moves once the change records are durable; in memory
            // they are not, and a crash would lose changes for good.
            return Err(ConfigError(
                "cdc.enabled with audit.clickhouse_url needs audit.spool_dir: the replication slot is confirmed only once change records are on disk".into(),
            ));
        }
        if self.audit.durability != Durability::BeforeAck {
            return Ok(());
        }
        if a.clickhouse_url.is_some() && a.spool_dir.is_none() {
            return Err(ConfigError(
                "audit.durability = \"before_ack\" with audit.clickhouse_url needs audit.spool_dir (records are made durable there)".into(),
            ));
        }
        if a.clickhouse_url.is_none() && a.file.is_none() {
            return Err(ConfigError(
                "audit.durability = \"before_ack\" needs audit.file or audit.clickhouse_url with audit.spool_dir".into(),
            ));
        }
        Ok(())
    }
}
