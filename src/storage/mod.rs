//! The cache itself: a sharded, memory-bounded hash store with LRU eviction, memcached
//! expiry rules and store-wide unique CAS values.
//!
//! Knows nothing of sockets or protocol text: callers pass keys, values and numbers, and
//! read hits through [`ItemRef`] inside a closure that runs under the shard lock (so a
//! hit is encoded without copying the value out first).
//!
//! Invariants:
//! - the bytes a shard accounts for never exceed its budget (`limit_bytes / shards`);
//!   a write that does not fit evicts from that shard's LRU tail, expired items first;
//! - accounted bytes equal the sum over live items of [`item_footprint`];
//! - every successful write gets a CAS value never handed out before in this process;
//! - an expired or flushed item is never returned; it is removed lazily when met.
#![forbid(unsafe_code)]

pub mod clock;
mod item;
mod shard;

pub use clock::Clock;

use crate::protocol::StoreMode;

/// Configuration of a [`Store`].
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Hard bound on accounted bytes, split evenly across shards (`-m`).
    pub limit_bytes: usize,
    /// Largest value accepted (`-I`).
    pub max_item_bytes: usize,
    /// Number of shards; rounded up to a power of two.
    pub shards: usize,
}

/// A live item, borrowed under its shard's lock.
#[derive(Clone, Copy, Debug)]
pub struct ItemRef<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    pub cas: u64,
}

/// Outcome of a store command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreResult {
    Stored,
    /// add on a live key, replace/append/prepend on a missing one.
    NotStored,
    /// cas with a stale CAS value.
    Exists,
    /// cas on a missing key.
    NotFound,
    /// The value is larger than the item size limit.
    TooLarge,
    /// The item cannot fit in its shard's budget even after evicting everything else.
    OutOfMemory,
}

/// Outcome of incr/decr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithResult {
    /// The new value.
    Value(u64),
    NotFound,
    /// The stored value is not a decimal number that fits in 64 bits.
    NonNumeric,
    /// Growing the value (e.g. "99" → "100") did not fit in memory.
    OutOfMemory,
}

/// Store-wide figures for `stats`, summed over shards on demand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoreStats {
    pub curr_items: u64,
    pub total_items: u64,
    /// Accounted bytes held.
    pub bytes: u64,
    pub evictions: u64,
    /// Items evicted that were never fetched.
    pub evicted_unfetched: u64,
    /// Expired items reclaimed (on access or while evicting).
    pub reclaimed: u64,
    /// Expired items reclaimed that were never fetched.
    pub expired_unfetched: u64,
    pub limit_bytes: u64,
}

/// Bytes an item with this key and value counts against the memory limit: key and value
/// plus the real per-item overhead (item record, table slot, allocator rounding).
pub fn item_footprint(key_len: usize, value_len: usize) -> usize {
    item::footprint(key_len, value_len)
}

/// The sharded store. Shared by every worker thread (`Arc<Store>`).
pub struct Store {
    config: StoreConfig,
    clock: Clock,
}

impl Store {
    /// A store with `config`, reading time from `clock`.
    pub fn new(config: StoreConfig, clock: Clock) -> Store {
        let _ = &config.limit_bytes;
        Store { config, clock }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The clock this store expires items by; a ticker thread advances it.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Looks `key` up; on a hit, bumps it in the LRU and, if `touch` is given, sets its
    /// expiration time first (gat). Runs `f` under the shard lock with the live item.
    pub fn get<R>(
        &self,
        key: &[u8],
        touch: Option<i64>,
        f: impl FnOnce(Option<ItemRef<'_>>) -> R,
    ) -> R {
        let _ = (key, touch);
        f(None)
    }

    /// set/add/replace/append/prepend/cas. `cas` is only read for [`StoreMode::Cas`].
    /// append/prepend keep the item's flags and expiration time.
    pub fn store(
        &self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: i64,
        cas: u64,
        value: &[u8],
    ) -> StoreResult {
        let _ = (mode, key, flags, exptime, cas, value);
        todo!("storage")
    }

    /// Removes `key`; false if it was not there (or had expired).
    pub fn delete(&self, key: &[u8]) -> bool {
        let _ = key;
        todo!("storage")
    }

    /// incr (wrapping at 2^64) or decr (flooring at 0) of a decimal value.
    pub fn arith(&self, key: &[u8], delta: u64, incr: bool) -> ArithResult {
        let _ = (key, delta, incr);
        todo!("storage")
    }

    /// Sets a live item's expiration time; false if it is not there.
    pub fn touch(&self, key: &[u8], exptime: i64) -> bool {
        let _ = (key, exptime);
        todo!("storage")
    }

    /// Invalidates every item stored before now + `delay_secs` (0: now), memcached's
    /// `flush_all [delay]`.
    pub fn flush_all(&self, delay_secs: i64) {
        let _ = delay_secs;
        todo!("storage")
    }

    /// Zeroes the resettable counters (`stats reset`).
    pub fn reset_stats(&self) {}

    /// Figures for `stats`, summed over shards.
    pub fn stats(&self) -> StoreStats {
        todo!("storage")
    }
}
