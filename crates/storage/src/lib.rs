//! The cache itself: a sharded, memory-bounded hash store with SIEVE eviction, memcached
//! expiry rules and store-wide unique CAS values.
//!
//! Knows nothing of sockets or protocol text: callers pass keys, values and numbers, and
//! read hits through [`ItemRef`] inside a closure that runs under the shard lock (so a
//! hit is encoded straight from the item, with no intermediate copy of the value).
//!
//! One API, named by operation; what a dialect adds is an option of the operation, never
//! a method of its own:
//!
//! | operation | options | outcome |
//! |---|---|---|
//! | [`Store::get`] (and [`Store::touch`]; [`Store::get_hashed`] with the key's [`KeyHash`] already taken) | [`Read`]: touch, bump or peek, vivify (with a chosen CAS) | the hit, as [`ItemRef`], to a closure |
//! | [`Store::write`] ([`Store::write_hashed`] with the key's [`KeyHash`] already taken) | [`Write`]: [`WriteMode`], CAS to compare, a chosen new CAS, invalidate, base64 key, what a refusal removes, append that vivifies | [`StoreResult`] and the new CAS |
//! | [`Store::delete`] | [`Delete`]: CAS to compare, invalidate, keep the item with an empty value, a chosen new CAS | [`DeleteResult`] |
//! | [`Store::arith`] | [`Arith`]: incr or decr, CAS to compare, an [`Initial`] item to create, a chosen new CAS | [`ArithResult`], and the item to a closure |
//! | [`Store::flush_all`] | a delay | — |
//!
//! Besides, [`Store::observe_evictions`] sets what is told of each evicted item
//! ([`Evicted`], under its shard's lock: the server's `watch evictions`); the check
//! costs nothing but on an eviction.
//!
//! The connection maps each dialect's requests onto these (e.g. a binary set with a CAS
//! is a [`WriteMode::Cas`] write; a meta set answers with the CAS a classic set ignores).
//!
//! Layout: `config.shards` rounded up to a power of two shards, each a `Shard`
//! (`shard.rs`: table, list, counters) behind its own spin lock (`ShardSlot`), halved while one shard's budget could not
//! hold the largest item the store must take (see [`shard_count`]); a key is hashed
//! once, its top bits pick the shard and the same hash finds its table slot. The hash
//! is foldhash seeded per store (randomly, or with a snapshot's seed on a restore, so
//! every restored key lands in the shard it was saved from).
//!
//! Why fewer shards rather than budgets that borrow from each other: each shard stays
//! a plain cache under its own lock with a fixed budget, so the bound stays hard and no
//! operation ever needs a second lock. The cost is lock sharing when `-I` is large next
//! to `-m`. The server asks for 8 shards per worker; with the default `-I 1m` a shard
//! needs a little over 1 MiB, so at `-t 2` (16 shards) nothing changes from `-m 32`
//! up, and `-m 8` gets 4 shards of 2 MiB. At 64 workers (512 shards asked) `-m 64`
//! gets 32 shards, two workers per lock, and all 512 need `-m` a little over 512
//! (or a smaller `-I`). `-I` at half of `-m` means one shard, one lock.
//!
//! Files, by operation: `read.rs` (get, touch), `write.rs` (set, add, replace,
//! append, prepend, cas), `delete.rs`, `arith.rs` (incr/decr; `arith/number.rs` holds
//! memcached's number rules), and `flush_all` and `stats` here. By concern: `shard.rs`
//! (one shard's table, flush state and counters; `shard/lru.rs` its list and hit
//! marks, `shard/evict.rs` how a write makes room (the SIEVE hand), `shard/cas.rs` CAS values clients
//! chose), `item.rs` (one item record;
//! `item/class.rs` size classes and what an item costs), `arena.rs` (a shard's records
//! in size-classed pages), `clock.rs` (time and memcached's expiry conversion),
//! `classes.rs` (the size classes operators see, grouped from the arena's, and their
//! per-class counters), `crawler.rs` (work in bounded slices: crawler passes, key dumps,
//! evicting down to a lowered limit; `shard/walk.rs` one shard's side of it),
//! `snapshot.rs` (restartable memory: [`Store::save`] and [`Store::restore`], the file
//! format and its checks; `shard/snapshot.rs` one shard's side). Tests:
//! `tests/` the unit tests of the public behaviour, one file per operation or concern;
//! `model_tests.rs` (+ `model_tests/model.rs`) the model-based property tests
//! (proptest) against a plain restatement of the rules.
//!
//! Invariants:
//! - the bytes a shard accounts for never exceed its budget (`limit_bytes / shards`),
//!   except after the limit was lowered at run time (`cache_memlimit`): then writes
//!   never raise them and the crawler's slices bring them down to it;
//!   a write that does not fit evicts from that shard (expired items near the tail
//!   first, then what the SIEVE hand finds unread: `shard/evict.rs`);
//!   an item larger than the whole budget is refused before anything is evicted;
//! - a shard's budget holds any one item within `max_item_bytes` and half of
//!   `limit_bytes` (memcached's bound on `-I`), so such an item is never refused
//!   (unless the limit was lowered at run time below what that needs, see
//!   `crawler.rs`);
//! - accounted bytes equal the sum of the items' footprints (live, or dead and not yet
//!   met): [`stored_footprint`] of each, at most [`item_footprint`] of its lengths;
//! - every successful write gets a CAS value never handed out before in this process,
//!   without a store-wide atomic: each shard counts its own, with its index in the low
//!   bits; a CAS handed back is the one the written item carries, read under the lock
//!   that wrote it. A client may choose the CAS clients see instead (meta `E`,
//!   memcached 1.6.45): the item keeps its own for write order (`flush_all`), and the
//!   chosen one is an alias beside it (`shard/cas.rs`), not necessarily unique;
//! - an expired or flushed item is never returned; it is removed lazily when met;
//! - a shard lock is held for one operation on one shard, never two at once;
//! - keys longer than [`KEY_MAX_BYTES`] (which the parsers refuse) are never stored: a
//!   write of one answers `NotStored`, every other operation misses.
#![forbid(unsafe_code)]

mod arena;
mod arith;
mod classes;
pub mod clock;
mod crawler;
mod delete;
mod item;
#[cfg(test)]
mod model_tests;
mod read;
mod shard;
mod snapshot;
#[cfg(test)]
mod tests;
mod write;

pub use arith::{Arith, ArithResult, Initial};
pub use classes::{
    class_count, class_id_of, largest_paged_chunk, smallest_chunk, ClassCounters, ClassReport,
    ClassSet, ClassStats, CLASS_ID_MAX, GROWTH_FACTOR,
};
pub use clock::Clock;
pub use crawler::{CrawlPass, DumpItem, Walk};
pub use delete::{Delete, DeleteResult};
pub use item::{SharedValue, MMAP_THRESHOLD_BYTES};
pub use read::{ItemRef, Read};
pub use shard::{Evicted, EvictionObserver};
pub use snapshot::{
    not_clean_header, Restored, Saved, SnapshotError, SnapshotSource, END_MAGIC, FORMAT_VERSION,
    HEADER_BYTES as SNAPSHOT_HEADER_BYTES, MAGIC as SNAPSHOT_MAGIC,
};
pub use write::{StoreResult, Write, WriteMode};

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use shard::{key_hash, KeyHasher, Shard};

/// Longest key the store holds (memcached's 250). The parsers refuse longer keys
/// before they get here; the store checks again so it never depends on them.
pub const KEY_MAX_BYTES: usize = 250;

/// The indices of the bits set in `set`, lowest first.
#[inline(always)]
fn bits(mut set: u32) -> impl Iterator<Item = usize> + Clone {
    std::iter::from_fn(move || {
        let i = set.trailing_zeros() as usize;
        set &= set.wrapping_sub(1);
        (i < 32).then_some(i)
    })
}

/// The most keys one [`Store::record_spans`] reads ahead (more are ignored): a
/// pipelined batch as deep as memtier's or rc-load's `--pipeline 16`.
pub const SPAN_BATCH: usize = 16;

/// Slots [`Store::record_spans`] sorts a batch's keys into by their shard's index (its
/// low bits): up to this many shards, one slot is one shard.
const SHARD_SLOTS: usize = 32;

/// Whether an item with this key, value and client flags is over `max_item_bytes`, by
/// memcached's arithmetic: its item header (48 bytes), CAS (8), the client flags unless
/// they are 0 (4), the key and its NUL, and the value with its `\r\n` must fit.
///
/// The parsers apply the same rule while parsing (the wire protocol's own copy); the
/// server's tests assert that the two agree.
#[inline]
pub fn item_too_large(key_len: usize, value_len: usize, flags: u32, max_item_bytes: usize) -> bool {
    let flags_len = if flags == 0 { 0 } else { 4 };
    48 + 8 + flags_len + key_len + 1 + value_len.saturating_add(2) > max_item_bytes
}

/// A key's hash in one store ([`Store::key_hash`]): taken once by a look-ahead, which
/// names the key's record with it ([`Store::record_spans_hashed`]), and handed to the
/// lookup or write that follows ([`Store::get_hashed`], [`Store::write_hashed`]). To a
/// lookup only a hint of where the key lives: one given the hash of another key
/// misses, and changes nothing; a write must be given its key's own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyHash(u64);

/// Configuration of a [`Store`].
#[derive(Clone, Debug)]
pub struct StoreConfig {
    /// Hard bound on accounted bytes, split evenly across shards (`-m`).
    pub limit_bytes: usize,
    /// Largest value accepted (`-I`).
    pub max_item_bytes: usize,
    /// Number of shards wanted; rounded up to a power of two, then halved while a
    /// shard's budget could not hold an item of `max_item_bytes` (see [`shard_count`]).
    pub shards: usize,
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
    /// Lookups that met their key flushed by `flush_all`.
    pub get_flushed: u64,
    /// Lookups that met their key expired.
    pub get_expired: u64,
    /// Dead items the crawler removed.
    pub crawler_reclaimed: u64,
    /// Items the crawler checked.
    pub crawler_items_checked: u64,
    /// Evictions of items read since the eviction hand last passed them (the hand
    /// spares at most `HAND_SEARCH` in a row, `shard/evict.rs`).
    pub evicted_active: u64,
    /// Items the eviction hand spared, clearing their read mark (they stay in place).
    pub moves_within_lru: u64,
    /// Writes that removed items themselves to make room.
    pub direct_reclaims: u64,
    /// The memory limit in force (`-m`, or the last `cache_memlimit`).
    pub limit_bytes: u64,
    /// Bytes the shards' hash tables hold.
    pub hash_bytes: u64,
    /// Id slots of the shards' hash tables together (12 to a 64-byte bucket).
    pub hash_buckets: u64,
    /// Lock acquisitions that found the shard's lock held by another thread and waited
    /// (never reset: a measure of contention since start).
    pub lock_waits: u64,
}

/// Bytes an item with this key and value counts against the memory limit at most: key
/// and value plus the real per-item overhead (item record, table slot, allocator
/// rounding) with the longest record header (flags, an expiry and a CAS of 2^48 or
/// more; see [`stored_footprint`] for the exact figure).
pub fn item_footprint(key_len: usize, value_len: usize) -> usize {
    item::footprint_bound(key_len, value_len)
}

/// Bytes an item with this key and value, client flags `flags` and an expiry or not
/// (`exptime`), stored with a CAS below 2^48, counts against the memory limit: the exact
/// figure behind [`item_footprint`]. An item whose expiry was set once and cleared again
/// keeps the field (`exptime` true).
pub fn stored_footprint(key_len: usize, value_len: usize, flags: u32, exptime: bool) -> usize {
    let header = item::header_bytes(flags, u32::from(exptime), false);
    item::footprint(header, key_len, value_len)
}

/// The number of shards a store with `config` has: `config.shards` rounded up to a
/// power of two, halved until one shard's budget (`limit_bytes / shards`) holds the
/// footprint of the largest item it must take: a record of `max_item_bytes`, or of
/// half of `limit_bytes` if that is less (`-I` above half of `-m` is refused at startup,
/// as memcached does; a store configured so anyway answers `OutOfMemory` for items over
/// half of `limit_bytes`).
pub fn shard_count(config: &StoreConfig) -> usize {
    let largest = config.max_item_bytes.min(config.limit_bytes / 2);
    let need = item::footprint_bound(0, largest);
    let mut count = config.shards.max(1).next_power_of_two();
    while count > 1 && config.limit_bytes / count < need {
        count /= 2;
    }
    count
}

/// The sharded store. Shared by every worker thread (`Arc<Store>`).
///
/// Keys longer than [`KEY_MAX_BYTES`] (which the parsers refuse) are never stored: a
/// store of one answers `NotStored`, every lookup misses.
pub struct Store {
    config: StoreConfig,
    clock: Clock,
    /// One per store, randomly seeded (or with the seed of a snapshot restored); shared
    /// (cloned) by every shard.
    hasher: KeyHasher,
    /// `hasher`'s seed, which a snapshot saves.
    hash_seed: u64,
    /// log2 of the shard count.
    shard_bits: u32,
    shards: Box<[ShardSlot]>,
    /// The memory limit in force: `config.limit_bytes` until `set_limit_bytes`.
    limit_bytes: AtomicUsize,
    /// What a restore from a snapshot put back (`snapshot.rs`), if this store was
    /// restored.
    restored: Option<Restored>,
}

/// A random 64-bit seed for the key hasher: std's randomly keyed SipHash of a constant
/// (the process's random keys, a new pair per call).
fn random_seed() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
}

/// A shard's lock: a spin lock (the `spin` crate). Its lock is the one
/// compare-and-swap `std::sync::Mutex` also takes; its unlock is a plain release
/// store where std's is a second locked instruction (a swap, to learn whether to wake
/// a sleeper), which waits for every load and store before it: at pipeline depth 16
/// the unlocks were a quarter of the look-ahead's and the gets' lock-held time (perf,
/// docs/uring-features.md, "p16 after session 9"). A lock is held for one operation
/// (or one bounded slice) on one shard, so a waiter spins a little, then yields.
type ShardLock = spin::mutex::SpinMutex<Shard>;
/// A locked shard (unlocked when dropped, a panic's unwinding included: there is no
/// poisoning, and a shard is consistent again before any caller's closure runs).
pub(crate) type ShardGuard<'a> = spin::mutex::SpinMutexGuard<'a, Shard>;

/// Failed tries of a held shard lock spent spinning before a waiter yields its CPU
/// between tries (a holder may have been preempted, or be copying a large value).
const SPINS_BEFORE_YIELD: u32 = 128;

/// A shard behind its lock, alone on its cache lines (two, against the adjacent-line
/// prefetcher): the lock word one thread swaps must not share a line with the
/// neighbouring shard's fields another thread writes under its own lock.
#[repr(align(128))]
struct ShardSlot {
    shard: ShardLock,
    /// Acquisitions that found the lock held (`StoreStats::lock_waits`).
    waits: AtomicU64,
}

impl ShardSlot {
    /// Locks the shard, counting a wait when another thread holds it.
    #[inline(always)]
    fn lock(&self) -> ShardGuard<'_> {
        match self.shard.try_lock() {
            Some(guard) => guard,
            None => self.lock_slow(),
        }
    }

    /// [`ShardSlot::lock`] when the first try failed (a wait): spins a little, then
    /// yields between tries.
    #[cold]
    #[inline(never)]
    fn lock_slow(&self) -> ShardGuard<'_> {
        self.waits.fetch_add(1, Ordering::Relaxed);
        let mut tries = 0u32;
        loop {
            if let Some(guard) = self.shard.try_lock() {
                return guard;
            }
            if tries < SPINS_BEFORE_YIELD {
                tries += 1;
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
    }
}

impl Store {
    /// A store with `config`, reading time from `clock`.
    pub fn new(config: StoreConfig, clock: Clock) -> Store {
        Store::with_seed(config, clock, random_seed())
    }

    /// [`Store::new`] with the key hasher's seed given (a restore takes the saved one).
    fn with_seed(config: StoreConfig, clock: Clock, hash_seed: u64) -> Store {
        let count = shard_count(&config);
        let shard_bits = count.trailing_zeros();
        let budget = config.limit_bytes / count;
        let hasher = KeyHasher::with_seed(hash_seed);
        let shards = (0..count)
            .map(|i| ShardSlot {
                shard: ShardLock::new(Shard::new(i, shard_bits, budget, hasher.clone())),
                waits: AtomicU64::new(0),
            })
            .collect();
        Store {
            limit_bytes: AtomicUsize::new(config.limit_bytes),
            config,
            clock,
            hasher,
            hash_seed,
            shard_bits,
            shards,
            restored: None,
        }
    }

    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// The clock this store expires items by; a ticker thread advances it.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Number of shards (a power of two).
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Bytes each shard may account for: the limit in force / `shard_count`.
    pub fn shard_budget(&self) -> usize {
        self.limit_bytes() / self.shards.len()
    }

    /// The shard of a key hash: its top `shard_bits` bits (none with one shard), as
    /// two shifts that never reach 64, with no branch.
    #[inline(always)]
    fn shard_index(&self, hash: u64) -> usize {
        ((hash >> 1) >> (63 - self.shard_bits)) as usize
    }

    /// The key's hash and its shard, locked. The shard is taken from the top bits.
    #[inline(always)]
    fn shard(&self, key: &[u8]) -> (u64, ShardGuard<'_>) {
        let hash = key_hash(&self.hasher, key);
        (hash, self.shard_at(hash))
    }

    /// The shard of key hash `hash`, locked.
    #[inline(always)]
    fn shard_at(&self, hash: u64) -> ShardGuard<'_> {
        self.shards[self.shard_index(hash)].lock()
    }

    /// The hash of `key` in this store, for [`Store::record_spans_hashed`],
    /// [`Store::get_hashed`] and [`Store::write_hashed`].
    #[inline(always)]
    pub fn key_hash(&self, key: &[u8]) -> KeyHash {
        KeyHash(key_hash(&self.hasher, key))
    }

    fn each_shard(&self) -> impl Iterator<Item = ShardGuard<'_>> {
        self.shards.iter().map(ShardSlot::lock)
    }

    /// Runs `hint` on where the item under `key` probably lives: the bytes of the first
    /// record its table slot names (not compared with `key`, which would mean reading
    /// it), under the shard lock. For a prefetch hint (name the bytes' cache lines, do
    /// not read them); `None` when no record is named.
    #[inline]
    pub fn record_span<R>(&self, key: &[u8], hint: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if key.len() > KEY_MAX_BYTES {
            return None;
        }
        let (hash, shard) = self.shard(key);
        shard.first_candidate(hash).map(hint)
    }

    /// [`Store::record_span`] for a pipelined batch: for each of the first
    /// [`SPAN_BATCH`] keys (keys over [`KEY_MAX_BYTES`] are skipped), `slot` runs on
    /// an id in the table bucket its lookup reads first (named, not read), then
    /// `record(i, bytes)` on the bytes of the record key `i`'s bucket names first, as
    /// `record_span` would (`None` there: no call here). Both under the shard lock, for
    /// prefetch hints.
    ///
    /// Why two passes: one lookup's table bucket is a cache miss, and reading it before
    /// naming the record made the batch's bucket misses come one after another (the
    /// next key's lock waits for the load before it). Here every bucket is asked for
    /// first, so their misses overlap, and read in the second pass, once they are
    /// (nearly) in. The keys are grouped by shard, so each pass takes each shard's
    /// lock once for all of its keys; one lock at a time, held for at most
    /// [`SPAN_BATCH`] probes.
    #[inline]
    pub fn record_spans(
        &self,
        keys: &[&[u8]],
        slot: impl FnMut(&u32),
        record: impl FnMut(usize, &[u8]),
    ) {
        let keys = &keys[..keys.len().min(SPAN_BATCH)];
        let mut hashes = [KeyHash(0); SPAN_BATCH];
        // Bit i: key i to read ahead.
        let mut left = 0u32;
        for (i, key) in keys.iter().enumerate() {
            if key.len() <= KEY_MAX_BYTES {
                hashes[i] = self.key_hash(key);
                left |= 1 << i;
            }
        }
        self.spans(&hashes, left, slot, record);
    }

    /// [`Store::record_spans`] of the first `count` keys of a batch already hashed
    /// ([`Store::key_hash`]): the hashes a look-ahead then hands to the lookups
    /// ([`Store::get_hashed`]), so each key is hashed once.
    #[inline]
    pub fn record_spans_hashed(
        &self,
        hashes: &[KeyHash; SPAN_BATCH],
        count: usize,
        slot: impl FnMut(&u32),
        record: impl FnMut(usize, &[u8]),
    ) {
        let left = (1u32 << count.min(SPAN_BATCH)) - 1;
        self.spans(hashes, left, slot, record);
    }

    /// [`Store::record_spans`] of the keys whose bits are set in `left`, by hash.
    #[inline(always)]
    fn spans(
        &self,
        hashes: &[KeyHash; SPAN_BATCH],
        left: u32,
        slot: impl FnMut(&u32),
        record: impl FnMut(usize, &[u8]),
    ) {
        if self.shards.len() <= SHARD_SLOTS {
            // One slot is one shard: the keys of shard s are the bits of `by_shard[s]`.
            let mut by_shard = [0u32; SHARD_SLOTS];
            let mut shards = 0u32;
            for i in bits(left) {
                let index = self.shard_index(hashes[i % SPAN_BATCH].0) % SHARD_SLOTS;
                by_shard[index] |= 1 << i;
                shards |= 1 << index;
            }
            let groups = bits(shards).map(|index| (index, by_shard[index % SHARD_SLOTS]));
            return self.span_passes(groups, hashes, slot, record);
        }
        let mut shard_of = [0usize; SPAN_BATCH];
        for i in bits(left) {
            shard_of[i % SPAN_BATCH] = self.shard_index(hashes[i % SPAN_BATCH].0);
        }
        // The batch's keys by shard: (shard, its keys as bits). They are sorted by the
        // shard index's low bits first (one pass); with more shards than
        // `SHARD_SLOTS` one slot may hold keys of several shards, told apart there.
        let mut by_slot = [0u32; SHARD_SLOTS];
        let mut slots = 0u32;
        for i in bits(left) {
            let slot = shard_of[i % SPAN_BATCH] % SHARD_SLOTS;
            by_slot[slot] |= 1 << i;
            slots |= 1 << slot;
        }
        let mut groups = [(0usize, 0u32); SPAN_BATCH];
        let mut count = 0;
        for slot in bits(slots) {
            let mut keys = by_slot[slot];
            while keys != 0 && count < SPAN_BATCH {
                let index = shard_of[keys.trailing_zeros() as usize % SPAN_BATCH];
                let group = bits(keys)
                    .filter(|&i| shard_of[i % SPAN_BATCH] == index)
                    .fold(0, |group, i| group | 1 << i);
                keys &= !group;
                groups[count] = (index, group);
                count += 1;
            }
        }
        self.span_passes(groups[..count].iter().copied(), hashes, slot, record);
    }

    /// The two passes of [`Store::record_spans`] over `groups` (a shard and its keys as
    /// bits), each taking each shard's lock once.
    #[inline(always)]
    fn span_passes(
        &self,
        groups: impl Iterator<Item = (usize, u32)> + Clone,
        hashes: &[KeyHash; SPAN_BATCH],
        mut slot: impl FnMut(&u32),
        mut record: impl FnMut(usize, &[u8]),
    ) {
        for (index, group) in groups.clone() {
            let shard = self.shards[index].lock();
            for i in bits(group) {
                if let Some(table_slot) = shard.first_slot(hashes[i % SPAN_BATCH].0) {
                    slot(table_slot);
                }
            }
        }
        for (index, group) in groups {
            let shard = self.shards[index].lock();
            for i in bits(group) {
                if let Some(bytes) = shard.first_candidate(hashes[i % SPAN_BATCH].0) {
                    record(i, bytes);
                }
            }
        }
    }

    /// Invalidates every item stored before now + `delay_secs` (0: now), memcached's
    /// `flush_all [delay]` with its rounding: a delayed flush takes effect in the second
    /// before `realtime(delay_secs)` and invalidates the items whose time is before
    /// `realtime(delay_secs)`, those written in the second it takes effect included
    /// (so `flush_all 1` is in force at once); a newer `flush_all` replaces one not yet
    /// due.
    pub fn flush_all(&self, delay_secs: i64) {
        let now = self.clock.now();
        let at = (delay_secs > 0).then(|| self.clock.realtime(delay_secs));
        for mut shard in self.each_shard() {
            shard.flush(now, at);
        }
    }

    /// Figures for `stats`, summed over shards.
    pub fn stats(&self) -> StoreStats {
        let mut stats = StoreStats {
            limit_bytes: self.limit_bytes() as u64,
            ..StoreStats::default()
        };
        for slot in self.shards.iter() {
            slot.lock().add_stats(&mut stats);
        }
        stats.lock_waits = self.lock_waits();
        stats
    }

    /// [`StoreStats::lock_waits`], read without taking any lock.
    pub fn lock_waits(&self) -> u64 {
        self.shards
            .iter()
            .map(|slot| slot.waits.load(Ordering::Relaxed))
            .sum()
    }

    /// The index of the shard that holds `key` (the model test keeps one budget and one
    /// list per shard; the store benchmark picks keys of one shard or of two).
    pub fn shard_of(&self, key: &[u8]) -> usize {
        self.shard_index(key_hash(&self.hasher, key))
    }

    /// Calls `observer` for every item evicted from now on (under the item's shard lock,
    /// so it must be quick and must not call the store).
    pub fn observe_evictions(&self, observer: EvictionObserver) {
        for mut shard in self.each_shard() {
            shard.observe_evictions(Arc::clone(&observer));
        }
    }

    /// `stats reset`: zeroes evictions, total_items, reclaimed, expired_unfetched and
    /// evicted_unfetched (not curr_items or bytes).
    pub fn reset_stats(&self) {
        for mut shard in self.each_shard() {
            shard.reset_stats();
        }
    }
}
