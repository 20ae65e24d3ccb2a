//! One logging set-up for every binary: `tracing` events, filtered `RUST_LOG`-style, written to
//! standard error as JSON lines (for log shippers) or in a human format.
//!
//! Library code logs with `tracing` macros and puts ids and masked NHS numbers in fields, never a
//! name or a full NHS number.

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object a line: the default for services.
    #[default]
    Json,
    /// Aligned, readable lines for a person at a terminal.
    Human,
}

/// The logging options every binary shares.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// How log lines are written (standard error).
    #[arg(
        long,
        env = "SCREENING_LOG_FORMAT",
        value_enum,
        default_value_t,
        global = true
    )]
    pub log_format: LogFormat,
    /// Which events to log, as `RUST_LOG` does (`info`, `screening_gateway=debug,warn`, ...).
    #[arg(long, env = "RUST_LOG", default_value = "info", global = true)]
    pub log: String,
}

/// An invalid `--log`/`RUST_LOG` filter.
#[derive(Debug, thiserror::Error)]
#[error("the log filter {filter:?} is not valid: {reason}")]
pub struct LogFilterError {
    /// The filter as given.
    pub filter: String,
    /// What is wrong with it.
    pub reason: String,
}

impl LogArgs {
    /// Installs the global subscriber. Call once, at the start of `main`.
    pub fn init(&self) -> Result<(), LogFilterError> {
        let filter = EnvFilter::try_new(&self.log).map_err(|e| LogFilterError {
            filter: self.log.clone(),
            reason: e.to_string(),
        })?;
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        // A second init (tests calling main twice) keeps the first subscriber.
        let _ = match self.log_format {
            LogFormat::Json => builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .try_init(),
            LogFormat::Human => builder.with_ansi(false).try_init(),
        };
        Ok(())
    }
}
