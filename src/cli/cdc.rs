//! `pgtrail cdc setup`: check (and with `--apply`, add) what PostgreSQL
//! needs for row changes: `wal_level`, a free replication slot, the
//! publication, REPLICA IDENTITY FULL on the configured tables, the slot.

use std::path::PathBuf;

use pgtrail::cdc::setup;

use super::error::CliError;

#[derive(clap::Subcommand)]
pub enum CdcAction {
    /// Check the server against `[cdc]` and print the SQL that is missing
    /// (exit 1 when a piece needs a person); `--apply` runs that SQL.
    Setup {
        #[arg(long)]
        config: PathBuf,
        /// Print the plan without changing anything (the default).
        #[arg(long, conflicts_with = "apply")]
        print: bool,
        /// Run the missing SQL, then check again.
        #[arg(long)]
        apply: bool,
    },
}

pub fn cdc(action: CdcAction) -> Result<(), CliError> {
    let CdcAction::Setup { config, apply, .. } = action;
    let config = pgtrail::config_file::parse(&config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)?;
    runtime.block_on(async {
        let mut client = setup::connect(&config).await?;
        let plan = setup::check(&mut client, &config.cdc).await?;
        print!("{}", plan.script(&config.cdc));
        if plan.needs_a_person() {
            return Err(CliError::CdcNeedsAPerson);
        }
        if apply && !plan.is_ready() {
            let after = setup::apply(&mut client, &config.cdc, &plan).await?;
            println!("-- applied; checked again:");
            print!("{}", after.script(&config.cdc));
        }
        Ok(())
    })
}
