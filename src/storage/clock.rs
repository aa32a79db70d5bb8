//! The coarse server clock and memcached's expiry arithmetic.
//!
//! Time is kept as whole seconds since the process started ("relative time", as
//! memcached's `current_time`), advanced by `tick`, so reading it on the request path is
//! one relaxed atomic load.

/// The coarse server clock. Stub: the storage work replaces it.
#[derive(Debug, Default)]
pub struct Clock {}

impl Clock {
    /// A clock that follows the system time; call [`Clock::tick`] about once a second.
    pub fn new() -> Clock {
        Clock {}
    }

    /// Re-reads the system time.
    pub fn tick(&self) {}

    /// Seconds since process start.
    pub fn now(&self) -> u32 {
        0
    }

    /// Unix time of process start.
    pub fn started_unix(&self) -> u64 {
        0
    }
}
