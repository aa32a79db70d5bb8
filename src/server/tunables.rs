//! The settings operators change at run time that ringcache only records: memcached's
//! `slabs automove` level and ratio and `lru tune`'s segment sizes and age factors
//! (ringcache has no slab mover and no segmented LRU: memcached started with
//! `-o no_slab_reassign,no_lru_maintainer` stores them the same way and uses them just
//! as little), and the time of the last `flush_all` (`stats settings`' `oldest`).
//! `stats settings` prints them.
//!
//! Defaults are memcached 1.6.18's. Written by any worker, read by `stats settings`;
//! each value is its own relaxed atomic (a decimal as its bits).

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[derive(Debug)]
pub struct Tunables {
    slab_automove: AtomicU32,
    slab_automove_ratio: AtomicU64,
    hot_lru_pct: AtomicU32,
    warm_lru_pct: AtomicU32,
    hot_max_factor: AtomicU64,
    warm_max_factor: AtomicU64,
    /// memcached's `oldest_live`: the relative time before which items are flushed
    /// (0: no `flush_all` yet).
    oldest_live: AtomicU32,
}

/// `lru tune`'s four values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LruTuning {
    pub hot_pct: u32,
    pub warm_pct: u32,
    pub hot_max_factor: f64,
    pub warm_max_factor: f64,
}

impl Default for Tunables {
    fn default() -> Tunables {
        let bits = |v: f64| AtomicU64::new(v.to_bits());
        Tunables {
            slab_automove: AtomicU32::new(1),
            slab_automove_ratio: bits(0.8),
            hot_lru_pct: AtomicU32::new(20),
            warm_lru_pct: AtomicU32::new(40),
            hot_max_factor: bits(0.2),
            warm_max_factor: bits(2.0),
            oldest_live: AtomicU32::new(0),
        }
    }
}

fn load_f64(v: &AtomicU64) -> f64 {
    f64::from_bits(v.load(Ordering::Relaxed))
}

fn store_f64(v: &AtomicU64, value: f64) {
    v.store(value.to_bits(), Ordering::Relaxed);
}

impl Tunables {
    pub fn slab_automove(&self) -> u32 {
        self.slab_automove.load(Ordering::Relaxed)
    }

    pub fn set_slab_automove(&self, level: u32) {
        self.slab_automove.store(level, Ordering::Relaxed);
    }

    pub fn slab_automove_ratio(&self) -> f64 {
        load_f64(&self.slab_automove_ratio)
    }

    pub fn set_slab_automove_ratio(&self, ratio: f64) {
        store_f64(&self.slab_automove_ratio, ratio);
    }

    pub fn lru(&self) -> LruTuning {
        LruTuning {
            hot_pct: self.hot_lru_pct.load(Ordering::Relaxed),
            warm_pct: self.warm_lru_pct.load(Ordering::Relaxed),
            hot_max_factor: load_f64(&self.hot_max_factor),
            warm_max_factor: load_f64(&self.warm_max_factor),
        }
    }

    pub fn set_lru(&self, tuning: LruTuning) {
        self.hot_lru_pct.store(tuning.hot_pct, Ordering::Relaxed);
        self.warm_lru_pct.store(tuning.warm_pct, Ordering::Relaxed);
        store_f64(&self.hot_max_factor, tuning.hot_max_factor);
        store_f64(&self.warm_max_factor, tuning.warm_max_factor);
    }

    pub fn oldest_live(&self) -> u32 {
        self.oldest_live.load(Ordering::Relaxed)
    }

    /// Records a `flush_all` run at relative time `now`, due at `at` if delayed, as
    /// memcached sets `oldest_live`: the time it takes effect, less a second with CAS
    /// on (`realtime(delay) - 1` or `current_time - 1`).
    pub fn flushed(&self, now: u32, at: Option<u32>, cas_enabled: bool) {
        let at = at.unwrap_or(now);
        let oldest = if cas_enabled {
            at.saturating_sub(1)
        } else {
            at
        };
        self.oldest_live.store(oldest, Ordering::Relaxed);
    }
}
