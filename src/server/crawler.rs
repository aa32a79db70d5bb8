//! The LRU crawler, memcached's in spirit: a thread of its own that walks the store in
//! bounded slices, removing expired and flushed items so `curr_items`, `bytes` and the
//! reclaim counters stay true without a lookup having to meet each dead item; it also
//! brings the bytes down to a memory limit lowered by `cache_memlimit`.
//!
//! Why a thread of its own rather than the main thread's clock tick: the main thread
//! waits for signals with a one-second timeout and must stay responsive to them; the
//! crawler paces itself in microseconds (`lru_crawler sleep`), can be woken at once by
//! `lru_crawler crawl` or `cache_memlimit`, and is started and stopped by `lru_crawler
//! enable|disable` as memcached's thread is. It never blocks a worker for longer than
//! one slice: a slice holds one shard lock for at most [`SLICE_ITEMS`] items (see
//! `ringcache_storage`'s `crawler.rs`), and the thread sleeps `lru_crawler_sleep`
//! microseconds between slices.
//!
//! Schedule: with the crawler enabled, a pass over every class starts [`PASS_INTERVAL`]
//! after the last one started (or at once after `lru_crawler crawl`, over the classes
//! it names); each pass checks at most `lru_crawler_tocrawl` items per class (0: all).
//! So an item that expires or is flushed is gone from `curr_items` within a pass
//! interval plus one pass (a pass over a million items takes about 0.4 s at the default
//! sleep). Except when nothing can die: after a full periodic pass that found no dead
//! item and no live one with an expiry time, the next starts only once the store says
//! an item with an expiry time was written or a flush asked for since
//! (`Store::take_expiry_marks`, looked at every [`PASS_INTERVAL`]), or after
//! [`IDLE_PASS_INTERVAL`]. A cache of items that never expire is then not walked every
//! second (2 million of them cost 7 % of a core idle). Evicting down to a lowered limit
//! does not wait for a pass, nor for the crawler to be enabled.
//!
//! `lru_crawler_running` is 1 while a pass runs, `lru_crawler_starts` counts passes
//! begun (memcached counts its automatic crawls there too); a `crawl` asked while a
//! pass runs is refused with memcached's `BUSY`.

use super::Server;
use crate::config::CrawlerSettings;
use crate::storage::{ClassSet, CrawlPass};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Items one slice checks (or evicts) under one shard lock.
pub const SLICE_ITEMS: usize = 256;

/// How often passes start while the crawler is enabled (and some item may die).
pub const PASS_INTERVAL: Duration = Duration::from_secs(1);

/// How often passes start while nothing in the store can die: after a full periodic
/// pass that found no dead item and no live one with an expiry time, until an item with
/// one is written or a flush is asked for (`Store::take_expiry_marks`, looked at every
/// [`PASS_INTERVAL`]). memcached backs off likewise, up to an hour per class.
pub const IDLE_PASS_INTERVAL: Duration = Duration::from_secs(60);

/// Why a crawl was not started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrawlRefused {
    /// `lru_crawler disable` (or `-o no_lru_crawler`) is in force.
    Disabled,
    /// A pass is running.
    Busy,
}

#[derive(Debug, Default)]
struct State {
    /// A pass is running.
    running: bool,
    /// Classes of a crawl asked for and not begun yet.
    requested: Option<ClassSet>,
    /// Something to look at now (a request, the limit, a setting, the end).
    woken: bool,
    stop: bool,
}

/// The crawler's settings and state, shared by the connections that drive it and its
/// thread.
#[derive(Debug)]
pub struct Crawler {
    enabled: AtomicBool,
    sleep_micros: AtomicU32,
    tocrawl: AtomicU32,
    starts: AtomicU64,
    /// The memory limit was lowered and the store may be over it.
    evict_pending: AtomicBool,
    state: Mutex<State>,
    wake: Condvar,
}

impl Crawler {
    pub fn new(settings: CrawlerSettings) -> Crawler {
        Crawler {
            enabled: AtomicBool::new(settings.enabled),
            sleep_micros: AtomicU32::new(settings.sleep_micros),
            tocrawl: AtomicU32::new(settings.tocrawl),
            starts: AtomicU64::new(0),
            evict_pending: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.state().woken = true;
        self.wake.notify_all();
    }

    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// `lru_crawler enable`: false if it already was (memcached then fails to start a
    /// second thread).
    pub fn enable(&self) -> bool {
        let was = self.enabled.swap(true, Ordering::Relaxed);
        self.notify();
        !was
    }

    /// `lru_crawler disable`: a pass running stops after its slice.
    pub fn disable(&self) {
        self.enabled.store(false, Ordering::Relaxed);
        self.notify();
    }

    pub fn sleep_micros(&self) -> u32 {
        self.sleep_micros.load(Ordering::Relaxed)
    }

    pub fn set_sleep_micros(&self, micros: u32) {
        self.sleep_micros.store(micros, Ordering::Relaxed);
    }

    pub fn tocrawl(&self) -> u32 {
        self.tocrawl.load(Ordering::Relaxed)
    }

    pub fn set_tocrawl(&self, items: u32) {
        self.tocrawl.store(items, Ordering::Relaxed);
    }

    /// Whether a pass is running (`lru_crawler_running`).
    pub fn running(&self) -> bool {
        self.state().running
    }

    /// Passes begun (`lru_crawler_starts`).
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::Relaxed)
    }

    /// `stats reset`: `lru_crawler_starts` starts again from 0, as memcached's does.
    pub fn reset_stats(&self) {
        self.starts.store(0, Ordering::Relaxed);
    }

    /// `lru_crawler crawl`: a pass over `classes` as soon as the thread gets to it.
    pub fn request(&self, classes: ClassSet) -> Result<(), CrawlRefused> {
        if !self.enabled() {
            return Err(CrawlRefused::Disabled);
        }
        let mut state = self.state();
        if state.running || state.requested.is_some() {
            return Err(CrawlRefused::Busy);
        }
        state.requested = Some(classes);
        state.woken = true;
        drop(state);
        self.wake.notify_all();
        Ok(())
    }

    /// The memory limit was lowered: evict down to it now.
    pub fn limit_lowered(&self) {
        self.evict_pending.store(true, Ordering::Relaxed);
        self.notify();
    }

    /// Ends the thread (at shutdown).
    pub fn stop(&self) {
        self.state().stop = true;
        self.wake.notify_all();
    }

    /// Waits up to `timeout` or until woken; returns false once stopped.
    fn pause(&self, timeout: Duration) -> bool {
        let mut state = self.state();
        if !state.woken && !state.stop {
            state = self
                .wake
                .wait_timeout(state, timeout)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        state.woken = false;
        !state.stop
    }

    /// The pause between two slices.
    fn between_slices(&self) -> bool {
        match self.sleep_micros() {
            0 => {
                std::thread::yield_now();
                !self.state().stop
            }
            us => {
                let mut state = self.state();
                if !state.stop {
                    state = self
                        .wake
                        .wait_timeout(state, Duration::from_micros(u64::from(us)))
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                !state.stop
            }
        }
    }

    /// The next pass to run, if one is due: a crawl asked for, or the periodic one
    /// (then `true`).
    fn next_pass(&self, due: bool) -> Option<(ClassSet, bool)> {
        let mut state = self.state();
        let pass = match state.requested.take() {
            Some(classes) => Some((classes, false)),
            None => (due && self.enabled()).then(|| (ClassSet::all(), true)),
        }?;
        state.running = true;
        self.starts.fetch_add(1, Ordering::Relaxed);
        Some(pass)
    }
}

/// Starts the crawler thread of `server`.
pub fn spawn(server: Arc<Server>) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("crawler".to_string())
        .spawn(move || run(&server))
}

fn run(server: &Server) {
    let crawler = &server.crawler;
    let mut next_pass = Instant::now() + PASS_INTERVAL;
    // Since when nothing in the store can die (the last periodic pass was full and
    // found nothing that could): the periodic pass then waits for a mark.
    let mut quiet_since: Option<Instant> = None;
    loop {
        if !evict_to_limit(server) {
            return;
        }
        let now = Instant::now();
        let mut due = now >= next_pass;
        // The shards' marks were taken (and cleared) just now, for the pass about to run.
        let mut marks_taken = false;
        if let (true, Some(since)) = (due, quiet_since) {
            marks_taken = server.store.take_expiry_marks();
            if marks_taken || now >= since + IDLE_PASS_INTERVAL {
                quiet_since = None;
            } else {
                due = false;
                next_pass = now + PASS_INTERVAL;
            }
        }
        match crawler.next_pass(due) {
            Some((classes, periodic)) => {
                next_pass = now + PASS_INTERVAL;
                if periodic && !marks_taken {
                    // Cleared before the pass: what is written during it marks again.
                    server.store.take_expiry_marks();
                }
                let quiet = run_pass(server, classes);
                crawler.state().running = false;
                let Some(quiet) = quiet else {
                    return;
                };
                if periodic && quiet && crawler.tocrawl() == 0 {
                    quiet_since = Some(now);
                }
            }
            None => {
                if now >= next_pass {
                    // Disabled when a pass came due: look again a pass interval later
                    // (`enable`, `crawl` and `cache_memlimit` wake the thread sooner).
                    next_pass = now + PASS_INTERVAL;
                }
                if !crawler.pause(next_pass - now) {
                    return;
                }
            }
        }
    }
}

/// One pass over `classes`, slice by slice; `None` once stopped, else whether the
/// pass ran to its end and found nothing that could die (no dead item, no live one with
/// an expiry time).
fn run_pass(server: &Server, classes: ClassSet) -> Option<bool> {
    let (store, crawler) = (&server.store, &server.crawler);
    let mut pass = CrawlPass::new(store, classes, crawler.tocrawl());
    while crawler.enabled() && !store.crawl_slice(&mut pass, SLICE_ITEMS) {
        if !crawler.between_slices() || !evict_to_limit(server) {
            return None;
        }
    }
    tracing::trace!(
        "crawler pass: {} items checked, {} reclaimed, {} may expire",
        pass.checked(),
        pass.reclaimed(),
        pass.may_expire()
    );
    Some(pass.is_done(store) && pass.reclaimed() == 0 && pass.may_expire() == 0)
}

/// Evicts down to a lowered memory limit, slice by slice; returns false once stopped.
fn evict_to_limit(server: &Server) -> bool {
    if !server.crawler.evict_pending.swap(false, Ordering::Relaxed) {
        return true;
    }
    while !server.store.evict_slice(SLICE_ITEMS) {
        if !server.crawler.between_slices() {
            return false;
        }
    }
    true
}
