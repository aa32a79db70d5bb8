//! Per-worker counters, summed on demand for `stats`.
//!
//! Each worker thread owns one [`WorkerStats`] and is its only writer, so a counter
//! bump is a plain load and store (no locked read-modify-write, no shared cache line
//! between workers). `stats` reads every worker's counters with relaxed loads; `stats
//! reset` records a baseline that later reports subtract, so no thread ever writes
//! another worker's counters. A connection counts its plain gets itself ([`GetCounts`])
//! and adds them to its worker's counters once per read of requests, and before it
//! answers `stats`: a report never misses a get whose answer a client has.
//!
//! Gauges ([`Stat::is_gauge`], e.g. sends in flight) go up and down and are never
//! reset. The engines report their own figures (ENOBUFS, sends, paused listeners and
//! the time they were paused, connections that yielded their turn)
//! through [`crate::io::Service::engine_event`], into the same per-worker counters.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Declares [`Stat`] from one list: each counter's variant and memcached's name for it,
/// in the order `stats` prints them. The enum, [`Stat::ALL`] and [`Stat::name`] all come
/// from this list, so a counter is named in one place.
macro_rules! counters {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// The counters, in the order `stats` prints them (`stats_report` prints runs of
        /// them with [`Stat::span`]).
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(usize)]
        pub enum Stat {
            $($(#[$doc])* $variant,)*
        }

        impl Stat {
            /// Every counter, in declaration order.
            pub const ALL: [Stat; Stat::COUNT] = [$(Stat::$variant,)*];

            /// memcached's names, in declaration order.
            const NAMES: [&'static str; Stat::COUNT] = [$($name,)*];
        }
    };
}

counters! {
    TotalConnections = "total_connections",
    RejectedConnections = "rejected_connections",
    CmdGet = "cmd_get",
    CmdSet = "cmd_set",
    CmdFlush = "cmd_flush",
    CmdTouch = "cmd_touch",
    /// `me` commands (memcached 1.6.18 counts only those in `cmd_meta`).
    CmdMeta = "cmd_meta",
    GetHits = "get_hits",
    GetMisses = "get_misses",
    DeleteMisses = "delete_misses",
    DeleteHits = "delete_hits",
    IncrMisses = "incr_misses",
    IncrHits = "incr_hits",
    DecrMisses = "decr_misses",
    DecrHits = "decr_hits",
    CasMisses = "cas_misses",
    CasHits = "cas_hits",
    CasBadval = "cas_badval",
    TouchHits = "touch_hits",
    TouchMisses = "touch_misses",
    StoreTooLarge = "store_too_large",
    StoreNoMemory = "store_no_memory",
    /// `-Y` authentication attempts and `-S` SASL outcomes, and the failed ones.
    AuthCmds = "auth_cmds",
    AuthErrors = "auth_errors",
    BytesRead = "bytes_read",
    BytesWritten = "bytes_written",
    /// Times a listener stopped accepting for a while (out of descriptors, errors).
    ListenDisabledNum = "listen_disabled_num",
    /// Microseconds listeners spent paused, counted when each pause ends.
    TimeInListenDisabledUs = "time_in_listen_disabled_us",
    /// Times a connection stopped being served with input possibly left so the others
    /// got their turn (the epoll engine's read budget; io_uring's batches never do).
    ConnYields = "conn_yields",
    /// Listeners paused now (a gauge): `accepting_conns` is 0 while any is.
    PausedListeners = "ringcache_paused_listeners",
    /// Multishot receives ended by ENOBUFS: the provided-buffer ring ran dry.
    RecvNoBufs = "ringcache_recv_enobufs",
    /// UDP sockets' multishot recvmsg ended by ENOBUFS: the socket's buffer ring ran
    /// dry (datagrams wait in the socket until the receive is re-armed).
    UdpRecvNoBufs = "ringcache_udp_recv_enobufs",
    /// Sends submitted and not completed yet (a gauge).
    SendsInFlight = "ringcache_sends_in_flight",
    /// Times a connection paused at the lower output mark: connection buffers were over
    /// their shared budget.
    ConnBufferPauses = "ringcache_conn_buffer_pauses",
    /// Connections closed for an unfinished request while connection buffers were over
    /// their shared budget.
    ConnBufferCloses = "ringcache_conn_buffer_closes",
    /// Gets of a big value answered with an out-of-memory error: connection buffers had
    /// no room left for it.
    ConnBufferRefusals = "ringcache_conn_buffer_refusals",
}

impl Stat {
    pub const COUNT: usize = Stat::ConnBufferRefusals as usize + 1;

    /// memcached's name for it.
    pub fn name(self) -> &'static str {
        Stat::NAMES[self as usize]
    }

    /// The counters from `first` to `last` (both included), in print order.
    pub fn span(first: Stat, last: Stat) -> &'static [Stat] {
        &Stat::ALL[first as usize..=last as usize]
    }

    /// A level that goes up and down (not a count of events): `stats reset` leaves it.
    pub fn is_gauge(self) -> bool {
        matches!(self, Stat::SendsInFlight | Stat::PausedListeners)
    }
}

/// A connection's plain gets (`get`/`gets` keys) not yet added to its worker's
/// counters: counted in the connection while it runs a read's requests, added at once
/// when it is done with them ([`WorkerStats::add_gets`]) and before it answers `stats`,
/// so no report, and no client that has its answers, sees them missing. Three plain
/// additions per get instead of three counter lookups and atomic stores.
#[derive(Clone, Copy, Debug, Default)]
pub struct GetCounts {
    pub gets: u64,
    pub hits: u64,
    pub misses: u64,
}

/// One worker's counters. Written only by that worker's thread; aligned to two cache
/// lines so that no line holds two workers' counters (the workers' stats sit side by
/// side in one slice).
#[derive(Debug)]
#[repr(align(128))]
pub struct WorkerStats {
    counters: [AtomicU64; Stat::COUNT],
}

impl Default for WorkerStats {
    fn default() -> WorkerStats {
        WorkerStats {
            counters: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl WorkerStats {
    /// Adds `n` to a counter. Only the owning worker thread may call this.
    #[inline]
    pub fn add(&self, stat: Stat, n: u64) {
        let c = &self.counters[stat as usize];
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    #[inline]
    pub fn incr(&self, stat: Stat) {
        self.add(stat, 1);
    }

    /// Adds the gets a connection counted (and zeroes them). Only the owning worker
    /// thread may call this.
    #[inline]
    pub fn add_gets(&self, counts: &mut GetCounts) {
        if counts.gets != 0 {
            let c = std::mem::take(counts);
            self.add(Stat::CmdGet, c.gets);
            self.add(Stat::GetHits, c.hits);
            self.add(Stat::GetMisses, c.misses);
        }
    }

    /// Takes one off a gauge. Only the owning worker thread may call this.
    #[inline]
    pub fn decr(&self, stat: Stat) {
        self.add(stat, u64::MAX);
    }

    fn get(&self, stat: Stat) -> u64 {
        self.counters[stat as usize].load(Ordering::Relaxed)
    }
}

/// Sums of every worker's counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Totals([u64; Stat::COUNT]);

impl Default for Totals {
    fn default() -> Totals {
        Totals([0; Stat::COUNT])
    }
}

impl Totals {
    pub fn get(&self, stat: Stat) -> u64 {
        self.0[stat as usize]
    }
}

/// All workers' counters plus the `stats reset` baseline.
#[derive(Debug)]
pub struct StatsRegistry {
    workers: Box<[WorkerStats]>,
    baseline: Mutex<Totals>,
}

impl StatsRegistry {
    pub fn new(workers: usize) -> StatsRegistry {
        StatsRegistry {
            workers: (0..workers).map(|_| WorkerStats::default()).collect(),
            baseline: Mutex::new(Totals::default()),
        }
    }

    /// Worker `index`'s counters.
    pub fn worker(&self, index: usize) -> &WorkerStats {
        &self.workers[index]
    }

    fn raw(&self) -> Totals {
        let mut t = Totals::default();
        for w in self.workers.iter() {
            for s in Stat::ALL {
                t.0[s as usize] = t.0[s as usize].wrapping_add(w.get(s));
            }
        }
        t
    }

    /// Current sums since start or the last reset.
    pub fn totals(&self) -> Totals {
        let mut t = self.raw();
        let base = self.baseline.lock().unwrap_or_else(|e| e.into_inner());
        for (v, b) in t.0.iter_mut().zip(base.0.iter()) {
            *v = v.wrapping_sub(*b);
        }
        t
    }

    /// `stats reset`: later reports count from now (gauges are left alone).
    pub fn reset(&self) {
        let mut now = self.raw();
        for s in Stat::ALL.into_iter().filter(|s| s.is_gauge()) {
            now.0[s as usize] = 0;
        }
        *self.baseline.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_workers_and_resets_by_baseline() {
        let reg = StatsRegistry::new(2);
        reg.worker(0).add(Stat::CmdGet, 3);
        reg.worker(1).incr(Stat::CmdGet);
        reg.worker(1).incr(Stat::BytesRead);
        assert_eq!(reg.totals().get(Stat::CmdGet), 4);
        reg.reset();
        assert_eq!(reg.totals().get(Stat::CmdGet), 0);
        reg.worker(0).incr(Stat::CmdGet);
        assert_eq!(reg.totals().get(Stat::CmdGet), 1);
        assert_eq!(reg.totals().get(Stat::BytesRead), 0);
    }

    #[test]
    fn gauges_survive_reset_and_go_down() {
        let reg = StatsRegistry::new(2);
        reg.worker(0).incr(Stat::SendsInFlight);
        reg.worker(0).incr(Stat::SendsInFlight);
        reg.worker(1).incr(Stat::SendsInFlight);
        reg.reset();
        reg.worker(0).decr(Stat::SendsInFlight);
        assert_eq!(reg.totals().get(Stat::SendsInFlight), 2);
    }

    #[test]
    fn names_are_in_order_and_unique() {
        for (i, s) in Stat::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
        let mut names: Vec<_> = Stat::ALL.iter().map(|s| s.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Stat::COUNT);
        assert_eq!(Stat::CmdMeta.name(), "cmd_meta");
        assert_eq!(
            Stat::span(Stat::BytesRead, Stat::ListenDisabledNum),
            [Stat::BytesRead, Stat::BytesWritten, Stat::ListenDisabledNum]
        );
    }
}
