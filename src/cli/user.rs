//! `pgtrail user add/remove/list`: the users file of proxy mode.

use std::io::BufRead;
use std::path::PathBuf;

use pgtrail::auth::users::{self, Method, Missing, UserEntry};

use super::error::CliError;

#[derive(clap::Subcommand)]
pub enum UserAction {
    /// Add or replace a person; the password is read from the first line of stdin.
    Add {
        name: String,
        #[arg(long, default_value = "users.toml")]
        users: PathBuf,
        /// Upstream role this person logs in as.
        #[arg(long)]
        db_role: Option<String>,
        /// Databases this person may use (repeatable); all when absent.
        #[arg(long = "database")]
        databases: Vec<String>,
        /// scram-sha-256 (default), md5 or password.
        #[arg(long, default_value = "scram-sha-256")]
        method: String,
    },
    /// Remove a person.
    Remove {
        name: String,
        #[arg(long, default_value = "users.toml")]
        users: PathBuf,
    },
    /// List the people in the users file (names and roles, never secrets).
    List {
        #[arg(long, default_value = "users.toml")]
        users: PathBuf,
    },
}

pub fn user(action: UserAction) -> Result<(), CliError> {
    match action {
        UserAction::Add {
            name,
            users: path,
            db_role,
            databases,
            method,
        } => {
            let method: Method = method.parse()?;
            let password = read_password()?;
            let secret = match method {
                Method::Md5 => postgres_protocol::password::md5(password.as_bytes(), &name),
                _ => postgres_protocol::password::scram_sha_256(password.as_bytes()),
            };
            users::upsert(
                &path,
                UserEntry {
                    name: name.clone(),
                    secret,
                    method,
                    db_role,
                    databases,
                },
            )?;
            println!("{name}: written to {}", path.display());
            Ok(())
        }
        UserAction::Remove { name, users: path } => {
            if users::remove(&path, &name)? {
                println!("{name}: removed from {}", path.display());
                Ok(())
            } else {
                Err(CliError::NotInFile { name, path })
            }
        }
        UserAction::List { users: path } => {
            let file = users::read_file(&path, Missing::Error)?;
            for u in file.users {
                let role = u.db_role.as_deref().unwrap_or("(default)");
                let dbs = if u.databases.is_empty() {
                    "all".to_string()
                } else {
                    u.databases.join(",")
                };
                println!(
                    "{}\trole={role}\tdatabases={dbs}\tmethod={}",
                    u.name,
                    u.method.name()
                );
            }
            Ok(())
        }
    }
}

/// A password from one line of standard input (never an argument: it
/// would show in `ps` and the shell history).
pub(super) fn read_password() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(CliError::ReadPassword)?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        return Err(CliError::EmptyPassword);
    }
    Ok(password)
}
