//! `pgtrail keygen` and `pgtrail verify` (docs/integrity.md).

use std::path::PathBuf;
use std::process::ExitCode;

use pgtrail::audit::chain::signing::{self, PublicKey};
use pgtrail::audit::chain::verify::{self, clickhouse::Source, jsonl, VerifyOptions};

use super::error::CliError;

#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Where the private key goes (PKCS#8 PEM, created 0600).
    #[arg(long)]
    private_key: PathBuf,
    /// Where the public key goes (SubjectPublicKeyInfo PEM).
    #[arg(long)]
    public_key: PathBuf,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// Read the trail from this ClickHouse server (HTTP interface).
    #[arg(long, conflicts_with = "jsonl")]
    clickhouse_url: Option<String>,
    #[arg(long, default_value = "pgtrail")]
    database: String,
    /// ClickHouse user; the password is read from CLICKHOUSE_PASSWORD
    /// (never a flag: flags show in `ps`).
    #[arg(long)]
    user: Option<String>,
    /// Read the trail from these JSON Lines files (rotated siblings too).
    #[arg(long, num_args = 1..)]
    jsonl: Vec<PathBuf>,
    /// Only this instance (default: every instance found).
    #[arg(long)]
    instance: Option<String>,
    /// Only seqs from / to these (inclusive).
    #[arg(long)]
    from: Option<u64>,
    #[arg(long)]
    to: Option<u64>,
    /// The Ed25519 public key checkpoints are signed with.
    #[arg(long)]
    public_key: Option<PathBuf>,
    /// Copies of the checkpoints kept outside the trail (audit.checkpoint_file).
    #[arg(long)]
    checkpoints: Vec<PathBuf>,
    /// One JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn keygen(args: &KeygenArgs) -> Result<(), CliError> {
    let key_id = signing::keygen(&args.private_key, &args.public_key).map_err(CliError::Keygen)?;
    println!(
        "key {key_id}: private key {} (keep it secret; audit.signing_key_file), public key {} (for pgtrail verify --public-key)",
        args.private_key.display(),
        args.public_key.display()
    );
    Ok(())
}

/// 0: the chain checks; 1: findings that are errors; 2: the trail could
/// not be read.
pub fn verify(args: VerifyArgs) -> ExitCode {
    match run(args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("pgtrail: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(args: VerifyArgs) -> Result<bool, CliError> {
    let public_key = match &args.public_key {
        Some(p) => Some(PublicKey::load(p).map_err(CliError::Key)?),
        None => None,
    };
    let options = VerifyOptions {
        instance: args.instance.clone(),
        from: args.from,
        to: args.to,
        public_key,
        checkpoints: args.checkpoints.clone(),
    };
    let report = if let Some(url) = &args.clickhouse_url {
        let password = std::env::var("CLICKHOUSE_PASSWORD").ok();
        let source = Source::new(
            url,
            &args.database,
            args.user.as_deref(),
            password.as_deref(),
        )
        .map_err(CliError::Verify)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(CliError::Runtime)?;
        runtime
            .block_on(source.verify(&options))
            .map_err(CliError::Verify)?
    } else if !args.jsonl.is_empty() {
        let items = jsonl::read_all(&args.jsonl).map_err(CliError::Verify)?;
        verify::walk_all(items, &options).map_err(CliError::Verify)?
    } else {
        return Err(CliError::Verify(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "give --clickhouse-url or --jsonl",
        )));
    };
    if args.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print!("{}", report.human());
    }
    Ok(report.ok)
}
