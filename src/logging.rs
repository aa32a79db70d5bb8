//! Logging setup: memcached's `-v` levels mapped onto `tracing` levels, to stderr.
//!
//! No `-v` or `-v`: startup lines, warnings and errors (`info`); `-vv`: connections
//! and commands (`debug`); `-vvv`: protocol detail (`trace`). `RUST_LOG` overrides at
//! startup; the `verbosity` command changes the level at runtime through
//! [`set_verbosity`].
#![forbid(unsafe_code)]

use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The `tracing` level a memcached verbosity maps to.
pub fn level_for(verbosity: u8) -> &'static str {
    match verbosity {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

fn filter_for(verbosity: u8) -> EnvFilter {
    EnvFilter::new(format!("ringcache={}", level_for(verbosity)))
}

/// Installs the global subscriber. Call once, first thing.
pub fn init(verbosity: u8) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter_for(verbosity));
    let (filter, handle) = reload::Layer::new(filter);
    let layer = fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if Registry::default()
        .with(filter)
        .with(layer)
        .try_init()
        .is_ok()
    {
        let _ = FILTER.set(handle);
    }
}

/// Changes the log level at runtime (the `verbosity` command).
pub fn set_verbosity(verbosity: u8) {
    if let Some(handle) = FILTER.get() {
        let _ = handle.reload(filter_for(verbosity));
    }
}
