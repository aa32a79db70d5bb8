//! The budget every connection's buffers share (`-o conn_buffer_limit_mb=N`).
//!
//! Each connection bounds its own buffers (its output by a high-water mark, see
//! [`super::connection`]), but thousands of connections that each stay within their
//! bound could still hold gigabytes. This counts, across all workers, what connections
//! hold beyond a small per-connection allowance ([`CONN_ALLOWANCE_BYTES`], which `-c`
//! bounds): pending output, output an engine is sending, and received input not yet
//! executed. Past the limit, connections work under pressure: each one's output mark
//! drops from [`super::connection::OUTPUT_HIGH_WATER`] to
//! [`super::connection::OUTPUT_PRESSURE_MARK`] (they pause until their client reads),
//! one holding more than [`INPUT_PRESSURE_BYTES`] of an unfinished request (a
//! half-sent value) is closed, and a get whose hit is a big value that no longer fits
//! under the limit is answered as memcached answers a get it has no memory for
//! (`SERVER_ERROR out of memory writing get response`; binary: status 0x82).
//!
//! Owns one shared counter; knows nothing of sockets or protocols. Connections report
//! changes of their own holding ([`ConnBuffers::charge`]) once per batch of requests
//! and once per send completion, not per byte, and a connection within its allowance
//! never touches the shared counter.
//!
//! Invariant: `used` is the sum over open connections of what each last reported;
//! a connection's report is withdrawn when it is dropped.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes a connection holds without charging the shared budget: its output buffer's
/// first allocation (16 KiB) and room for a few pipelined requests.
pub const CONN_ALLOWANCE_BYTES: usize = 32 * 1024;

/// Under pressure, a connection whose unfinished request has grown past this is closed
/// (memcached would fail to allocate the item and refuse it).
pub const INPUT_PRESSURE_BYTES: usize = 64 * 1024;

/// Default `-o conn_buffer_limit_mb`.
pub const DEFAULT_LIMIT_MB: usize = 64;

#[derive(Debug)]
pub struct ConnBuffers {
    used: AtomicUsize,
    limit_bytes: usize,
}

impl ConnBuffers {
    pub fn new(limit_bytes: usize) -> ConnBuffers {
        ConnBuffers {
            used: AtomicUsize::new(0),
            limit_bytes,
        }
    }

    /// What connections hold beyond their allowances, in bytes.
    pub fn used_bytes(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes
    }

    /// All connections together hold more than the limit.
    #[inline]
    pub fn under_pressure(&self) -> bool {
        self.used_bytes() > self.limit_bytes
    }

    /// Whether `bytes` more still fit under the limit: a big value may be copied into
    /// an output.
    #[inline]
    pub fn has_room(&self, bytes: usize) -> bool {
        self.used_bytes().saturating_add(bytes) <= self.limit_bytes
    }

    /// A connection now holds `held_bytes`; `reported` is what it last charged (updated
    /// here). Touches the shared counter only when the charge changed.
    #[inline]
    pub fn charge(&self, reported: &mut usize, held_bytes: usize) {
        let now = held_bytes.saturating_sub(CONN_ALLOWANCE_BYTES);
        if now > *reported {
            self.used.fetch_add(now - *reported, Ordering::Relaxed);
        } else if now < *reported {
            self.used.fetch_sub(*reported - now, Ordering::Relaxed);
        }
        *reported = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bytes_past_the_allowance_are_charged_and_withdrawn() {
        let b = ConnBuffers::new(100_000);
        let (mut one, mut two) = (0, 0);
        b.charge(&mut one, CONN_ALLOWANCE_BYTES);
        assert_eq!(b.used_bytes(), 0);
        b.charge(&mut one, CONN_ALLOWANCE_BYTES + 60_000);
        b.charge(&mut two, CONN_ALLOWANCE_BYTES + 50_000);
        assert_eq!(b.used_bytes(), 110_000);
        assert!(b.under_pressure());
        b.charge(&mut one, 10);
        assert_eq!((one, b.used_bytes()), (0, 50_000));
        assert!(!b.under_pressure());
        b.charge(&mut two, 0);
        assert_eq!(b.used_bytes(), 0);
    }
}
