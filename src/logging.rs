//! Logging setup: memcached's `-v` levels mapped onto `tracing` levels, to stderr, and
//! the per-connection lines memcached prints at `-vv` and `-vvv`.
//!
//! No `-v`: warnings and errors (`warn`), and the one startup line (engine and its
//! features, workers, addresses: target [`STARTUP`], always at `info`); `-v`: also
//! signals and shutdown (`info`); `-vv`: connections and commands (`debug`: `<fd new auto-negotiating client
//! connection`, `<fd get foo`, `<fd connection closed.`, as memcached words them);
//! `-vvv`: protocol detail (`trace`: `<fd read N bytes`, `>fd queued N bytes`). `RUST_LOG`
//! overrides at startup; the `verbosity` command changes the level at runtime through
//! [`set_verbosity`].
//!
//! The per-connection helpers sit on the request path: each is an inlined
//! `tracing::enabled!` check (a static level compare and one relaxed load) in front of
//! an out-of-line formatter, so with the level off they cost a branch.
#![forbid(unsafe_code)]

use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

/// The target of the startup line, which every verbosity shows.
pub const STARTUP: &str = "ringcache::startup";

static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The `tracing` level a memcached verbosity maps to.
pub fn level_for(verbosity: u8) -> &'static str {
    match verbosity {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    }
}

fn filter_for(verbosity: u8) -> EnvFilter {
    EnvFilter::new(format!("ringcache={},{STARTUP}=info", level_for(verbosity)))
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

/// `-vv`: a connection was accepted on socket `fd`.
#[inline]
pub fn accepted(fd: i32) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!("<{fd} new auto-negotiating client connection");
    }
}

/// `-vv`: the connection on socket `fd` closed.
#[inline]
pub fn closed(fd: i32) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        tracing::debug!("<{fd} connection closed.");
    }
}

/// `-vv`: one line per executed command: its command line (text), or its opcode and
/// key (binary); `request` is the bytes the command used.
#[inline]
pub fn command(fd: i32, request: &[u8]) {
    if tracing::enabled!(tracing::Level::DEBUG) {
        log_command(fd, request);
    }
}

#[cold]
#[inline(never)]
fn log_command(fd: i32, request: &[u8]) {
    tracing::debug!("<{fd} {}", describe(request));
}

/// A command's line as memcached's `-vv` prints it: the text command line (without its
/// data block), or `binary <opcode> <key>`; non-printable bytes escaped, long lines cut.
pub fn describe(request: &[u8]) -> String {
    const MAX: usize = 256;
    let (line, prefix) = match request.first() {
        Some(&0x80) if request.len() >= 24 => {
            let key_len = usize::from(u16::from_be_bytes([request[2], request[3]]));
            let extras = usize::from(request[4]);
            let start = 24 + extras;
            let key = request.get(start..start + key_len).unwrap_or_default();
            (key, format!("binary 0x{:02x} ", request[1]))
        }
        _ => {
            let end = memchr::memchr(b'\n', request).unwrap_or(request.len());
            let line = &request[..end];
            (line.strip_suffix(b"\r").unwrap_or(line), String::new())
        }
    };
    let mut out = prefix;
    for &b in line.iter().take(MAX) {
        out.extend(std::ascii::escape_default(b).map(char::from));
    }
    if line.len() > MAX {
        out.push_str("...");
    }
    out
}

/// `-vvv`: `n` bytes arrived on socket `fd`.
#[inline]
pub fn bytes_in(fd: i32, n: usize) {
    if tracing::enabled!(tracing::Level::TRACE) {
        tracing::trace!("<{fd} read {n} bytes");
    }
}

/// `-vvv`: `n` bytes of answers were queued for socket `fd`.
#[inline]
pub fn bytes_out(fd: i32, n: usize) {
    if n > 0 && tracing::enabled!(tracing::Level::TRACE) {
        tracing::trace!(">{fd} queued {n} bytes");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_memcached_verbosity() {
        assert_eq!(level_for(0), "warn");
        assert_eq!(level_for(1), "info");
        assert_eq!(level_for(2), "debug");
        assert_eq!(level_for(3), "trace");
        assert_eq!(level_for(9), "trace");
    }

    #[test]
    fn commands_are_described_by_their_line() {
        assert_eq!(describe(b"set a 0 0 1\r\nA\r\n"), "set a 0 0 1");
        assert_eq!(describe(b"get \x01x\r\n"), "get \\x01x");
        let mut bin = vec![0x80, 0x00, 0, 3, 0, 0, 0, 0];
        bin.extend([0; 16]);
        bin.extend(b"foo");
        assert_eq!(describe(&bin), "binary 0x00 foo");
        let long = vec![b'g'; 300];
        assert!(describe(&long).ends_with("..."));
        assert_eq!(describe(b""), "");
    }
}
