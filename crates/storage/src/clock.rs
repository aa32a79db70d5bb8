//! The coarse server clock and memcached's expiry arithmetic.
//!
//! Owns "relative time", as memcached's `current_time`: whole seconds since the process
//! started, kept in an atomic and advanced by [`Clock::tick`] (a thread calls it about
//! once a second), so reading it on the request path is one relaxed load. Also owns the
//! conversion of a client's exptime into relative time ([`Clock::realtime`]).
//!
//! Invariants:
//! - relative time starts at 2 (the process start is taken as two seconds before
//!   creation, as memcached does), so 1 always means "already expired" and 0 "never";
//! - relative time never goes backwards: a real clock follows the monotonic clock, so a
//!   change of the system date does not move it; only the unix time of the start is read
//!   from the system date, once;
//! - unix time = [`Clock::started_unix`] + [`Clock::now`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Longest exptime read as relative seconds (30 days); larger ones are unix times.
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// Relative time at creation.
const START: u32 = 2;

/// The coarse server clock.
#[derive(Debug)]
pub struct Clock {
    /// Seconds since `started_unix`.
    now: AtomicU32,
    /// Unix time of relative second 0.
    started_unix: u64,
    /// The monotonic instant of relative second [`START`]; `None` for a manual clock.
    base: Option<Instant>,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::new()
    }
}

fn unix_time_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Clock {
    /// A clock that follows real time; call [`Clock::tick`] about once a second.
    pub fn new() -> Clock {
        Clock {
            now: AtomicU32::new(START),
            started_unix: unix_time_now().saturating_sub(u64::from(START)),
            base: Some(Instant::now()),
        }
    }

    /// A clock that moves only by [`Clock::advance`] (tests). Its process start is the
    /// real unix time now minus two seconds, like [`Clock::new`].
    pub fn manual() -> Clock {
        Clock {
            base: None,
            ..Clock::new()
        }
    }

    /// Re-reads the monotonic clock (a no-op on a manual clock).
    pub fn tick(&self) {
        if let Some(base) = self.base {
            let secs = u32::try_from(base.elapsed().as_secs()).unwrap_or(u32::MAX - START);
            self.now.store(START + secs, Ordering::Relaxed);
        }
    }

    /// Moves the clock `secs` seconds forward (meant for manual clocks).
    pub fn advance(&self, secs: u32) {
        self.now.fetch_add(secs, Ordering::Relaxed);
    }

    /// Seconds since process start (relative time).
    pub fn now(&self) -> u32 {
        self.now.load(Ordering::Relaxed)
    }

    /// Unix time of process start (relative second 0).
    pub fn started_unix(&self) -> u64 {
        self.started_unix
    }

    /// Unix time now, as this clock sees it.
    pub fn unix_now(&self) -> u64 {
        self.started_unix + u64::from(self.now())
    }

    /// memcached's `realtime()`: a client exptime as relative time. 0 → 0 (never
    /// expires); negative → 1 (already expired); up to 30 days → seconds from now;
    /// larger → a unix time, 1 if it is at or before the process start.
    pub fn realtime(&self, exptime: i64) -> u32 {
        if exptime == 0 {
            0
        } else if exptime < 0 {
            1
        } else if exptime > REALTIME_MAXDELTA {
            let started = self.started_unix as i64;
            if exptime <= started {
                1
            } else {
                u32::try_from(exptime - started).unwrap_or(u32::MAX)
            }
        } else {
            // exptime ≤ 30 days, so it fits in a u32.
            self.now().saturating_add(exptime as u32)
        }
    }
}

/// memcached's rule: an item with a relative expiry time is gone once that second comes.
pub fn is_expired(exptime: u32, now: u32) -> bool {
    exptime != 0 && exptime <= now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_two_and_advances() {
        let clock = Clock::manual();
        assert_eq!(clock.now(), 2);
        clock.advance(5);
        assert_eq!(clock.now(), 7);
        clock.tick();
        assert_eq!(clock.now(), 7, "tick leaves a manual clock alone");
        assert_eq!(clock.unix_now(), clock.started_unix() + 7);
        let unix = unix_time_now();
        assert!(clock.started_unix() + 2 <= unix && unix <= clock.started_unix() + 3);
    }

    #[test]
    fn real_clock_ticks_from_two() {
        let clock = Clock::new();
        clock.tick();
        assert!((2..4).contains(&clock.now()));
        assert_eq!(Clock::default().now(), 2);
    }

    #[test]
    fn zero_never_negative_already() {
        let clock = Clock::manual();
        assert_eq!(clock.realtime(0), 0);
        assert_eq!(clock.realtime(-1), 1);
        assert_eq!(clock.realtime(i64::MIN), 1);
        assert!(!is_expired(clock.realtime(0), u32::MAX));
        assert!(is_expired(clock.realtime(-1), clock.now()));
    }

    #[test]
    fn relative_up_to_thirty_days() {
        let clock = Clock::manual();
        clock.advance(98); // now = 100
        assert_eq!(clock.realtime(1), 101);
        assert_eq!(clock.realtime(REALTIME_MAXDELTA), 100 + 2_592_000);
        let t = clock.realtime(10);
        assert!(!is_expired(t, 109));
        assert!(is_expired(t, 110));
    }

    #[test]
    fn absolute_beyond_thirty_days() {
        let clock = Clock::manual();
        let start = clock.started_unix() as i64;
        // One past the boundary is an absolute time long before the process started.
        assert_eq!(clock.realtime(REALTIME_MAXDELTA + 1), 1);
        assert_eq!(clock.realtime(start), 1);
        assert_eq!(clock.realtime(start + 1), 1);
        assert_eq!(clock.realtime(start + 50), 50);
        // An absolute time that has already passed is expired at once.
        clock.advance(98);
        assert!(is_expired(clock.realtime(start + 60), clock.now()));
        assert!(!is_expired(clock.realtime(start + 101), clock.now()));
        assert_eq!(clock.realtime(i64::MAX), u32::MAX);
    }
}
