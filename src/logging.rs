//! Logging setup: memcached's `-v` levels mapped onto `tracing` levels, to stderr.
//!
//! No `-v`: startup lines, warnings and errors (`info`); `-vv`: connections and commands
//! (`debug`); `-vvv`: protocol detail (`trace`). `RUST_LOG` overrides.
#![forbid(unsafe_code)]

use tracing_subscriber::EnvFilter;

/// The `tracing` level a memcached verbosity maps to.
pub fn level_for(verbosity: u8) -> &'static str {
    match verbosity {
        0 | 1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

/// Installs the global subscriber. Call once, first thing.
pub fn init(verbosity: u8) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("ringcache={}", level_for(verbosity))));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}
