//! What both engines do when `accept` fails: which failures pause a listener, for how
//! long, and the one WARN line they log about it, rate-limited.
//!
//! Owns: [`AcceptErrors`], one per listener. Must not know: how an engine stops and
//! restarts accepting (epoll takes the listener out of its set, io_uring does not re-arm
//! the accept); it only decides *whether* to pause.
//!
//! Why pause at all: out of descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS,
//! ENOMEM), the waiting connection stays in the backlog and the listener stays readable,
//! so retrying at once only spins (100 % CPU, one WARN line per try). memcached
//! likewise stops accepting and retries later. A run of other errors in a row (a storm
//! of aborted handshakes) also pauses, so no error can keep a worker busy forever.
//!
//! Invariant: at most one WARN line per [`WARN_EVERY`] per listener; the next one says
//! how many pauses it did not report.

use std::io;
use std::time::{Duration, Instant};

/// How long a paused listener waits before accepting again.
pub const ACCEPT_PAUSE: Duration = Duration::from_secs(1);
/// Accept errors in a row (other than running out of resources) that pause a listener.
pub const ACCEPT_ERRORS_BEFORE_PAUSE: u32 = 64;
/// At most one WARN line about pausing per this long, per listener.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// One listener's recent accept failures.
#[derive(Debug, Default)]
pub struct AcceptErrors {
    in_a_row: u32,
    last_warn: Option<Instant>,
    /// Pauses since `last_warn` that were not logged.
    unreported: u64,
}

impl AcceptErrors {
    /// An accept succeeded.
    pub fn succeeded(&mut self) {
        self.in_a_row = 0;
    }

    /// An accept failed with `e` (not `EAGAIN`, not `EINTR`). True when the listener
    /// must pause for [`ACCEPT_PAUSE`] before accepting again.
    pub fn failed(&mut self, e: &io::Error, now: Instant) -> bool {
        self.in_a_row += 1;
        let starved = matches!(
            e.raw_os_error(),
            Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
        );
        if !starved && self.in_a_row < ACCEPT_ERRORS_BEFORE_PAUSE {
            tracing::debug!("accept failed: {e}");
            return false;
        }
        self.in_a_row = 0;
        match self.last_warn {
            Some(at) if now.saturating_duration_since(at) < WARN_EVERY => self.unreported += 1,
            _ => {
                let unreported = std::mem::take(&mut self.unreported);
                if unreported > 0 {
                    tracing::warn!(
                        "accept failed: {e}; pausing this listener for {}s \
                         ({unreported} more pauses in the last {}s)",
                        ACCEPT_PAUSE.as_secs(),
                        WARN_EVERY.as_secs()
                    );
                } else {
                    tracing::warn!(
                        "accept failed: {e}; pausing this listener for {}s",
                        ACCEPT_PAUSE.as_secs()
                    );
                }
                self.last_warn = Some(now);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn out_of_files_pauses_at_once() {
        let mut a = AcceptErrors::default();
        assert!(a.failed(&err(libc::EMFILE), Instant::now()));
        assert!(a.failed(&err(libc::ENFILE), Instant::now()));
    }

    #[test]
    fn other_errors_pause_only_in_a_long_run() {
        let mut a = AcceptErrors::default();
        let now = Instant::now();
        for _ in 1..ACCEPT_ERRORS_BEFORE_PAUSE {
            assert!(!a.failed(&err(libc::ECONNABORTED), now));
        }
        a.succeeded();
        for _ in 1..ACCEPT_ERRORS_BEFORE_PAUSE {
            assert!(!a.failed(&err(libc::ECONNABORTED), now));
        }
        assert!(a.failed(&err(libc::ECONNABORTED), now));
    }

    #[test]
    fn warns_once_per_period_and_counts_the_rest() {
        let mut a = AcceptErrors::default();
        let t0 = Instant::now();
        a.failed(&err(libc::EMFILE), t0);
        assert_eq!(a.last_warn, Some(t0));
        a.failed(&err(libc::EMFILE), t0 + ACCEPT_PAUSE);
        a.failed(&err(libc::EMFILE), t0 + ACCEPT_PAUSE * 2);
        assert_eq!((a.last_warn, a.unreported), (Some(t0), 2));
        a.failed(&err(libc::EMFILE), t0 + WARN_EVERY);
        assert_eq!((a.last_warn, a.unreported), (Some(t0 + WARN_EVERY), 0));
    }
}
