//! The chain check from the console: `pgtrail verify`'s ClickHouse walk
//! over each instance's most recent records, run when a person asks (it
//! reads every table), its last result kept for the overview.

use std::path::PathBuf;

use crate::audit::chain::signing::PublicKey;
use crate::audit::chain::verify::{clickhouse::Source, Report, VerifyOptions};

/// Records checked per instance, counted back from its newest checkpoint
/// or lifecycle record.
pub const VERIFY_WINDOW: u64 = 200_000;

/// Where the check reads from.
pub struct VerifySource {
    pub url: String,
    pub database: String,
    pub user: Option<String>,
    pub password: Option<String>,
    pub public_key: Option<PathBuf>,
}

/// The last check's result.
#[derive(Debug, Clone)]
pub struct LastVerify {
    pub time: i64,
    pub by: String,
    pub ok: bool,
    pub summary: String,
}

impl VerifySource {
    /// Checks each instance from `newest - VERIFY_WINDOW` to its end.
    pub async fn run(&self, instances: &[(String, u64)]) -> Result<Report, String> {
        let source = Source::new(
            &self.url,
            &self.database,
            self.user.as_deref(),
            self.password.as_deref(),
        )
        .map_err(|e| e.to_string())?;
        let mut reports = Vec::new();
        for (instance, newest) in instances {
            let public_key = match &self.public_key {
                Some(p) => Some(PublicKey::load(p).map_err(|e| e.to_string())?),
                None => None,
            };
            let options = VerifyOptions {
                instance: Some(instance.clone()),
                from: Some(newest.saturating_sub(VERIFY_WINDOW).max(1)),
                to: None,
                public_key,
                checkpoints: Vec::new(),
            };
            let report = source.verify(&options).await.map_err(|e| e.to_string())?;
            reports.extend(report.instances);
        }
        Ok(Report::new(reports))
    }
}
