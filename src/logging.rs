//! Log output with tracing: human-readable by default, JSON when configured.
//! The level filter sits behind a reload layer so SIGHUP can change
//! `log.level` without a restart (`crate::reload`).

use std::io::IsTerminal;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{reload, EnvFilter, Registry};

use crate::config::{LogConfig, LogFormat};

/// Changes the level filter of the subscriber [`init`] installed.
#[derive(Clone)]
pub struct LogHandle(reload::Handle<EnvFilter, Registry>);

impl std::fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogHandle")
    }
}

impl LogHandle {
    /// Replaces the filter; `level` is a tracing filter such as `info` or
    /// `pgtrail=debug`.
    pub fn set_level(&self, level: &str) -> Result<(), LevelError> {
        let filter = EnvFilter::try_new(level).map_err(|source| LevelError::Filter {
            level: level.to_string(),
            source,
        })?;
        self.0.reload(filter).map_err(|source| LevelError::Reload {
            level: level.to_string(),
            source,
        })
    }
}

/// `log.level` could not be put in force: `log.level "LEVEL": why`.
#[derive(Debug)]
pub enum LevelError {
    /// Not a tracing filter.
    Filter {
        level: String,
        source: tracing_subscriber::filter::ParseError,
    },
    /// The subscriber is gone.
    Reload {
        level: String,
        source: reload::Error,
    },
}

impl std::fmt::Display for LevelError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LevelError::Filter { level, source } => write!(f, "log.level {level:?}: {source}"),
            LevelError::Reload { level, source } => write!(f, "log.level {level:?}: {source}"),
        }
    }
}

impl std::error::Error for LevelError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LevelError::Filter { source, .. } => Some(source),
            LevelError::Reload { source, .. } => Some(source),
        }
    }
}

/// Whether text logs are coloured: only on a terminal, so a file or a pipe
/// gets no escape codes; `NO_COLOR` (no-color.org) turns colour off there
/// too.
fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Installs the global subscriber. A second call (tests) installs nothing
/// and returns `None`: only the first subscriber's level can be reloaded.
pub fn init(cfg: &LogConfig) -> Option<LogHandle> {
    let filter = EnvFilter::try_new(&cfg.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match cfg.format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_ansi(colour(std::io::stderr().is_terminal()))
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
    installed.ok().map(|()| LogHandle(handle))
}
