//! One shard: a hash table of item ids, an arena of item records, and a list in write
//! order that the SIEVE hand walks to evict (a hit only marks an item [`ACTIVE`]).
//!
//! Owns everything one shard lock protects: the items, their order, the bytes they
//! account for, the shard's CAS counter, its flush barriers and its counters. Knows
//! nothing of other shards, locks or the clock: callers pass the key's hash and the
//! current relative time.
//!
//! This file holds the steps every operation is made of (find a live item, put a new
//! one in place of an old one, remove one), the CAS counter, flush and stats;
//! `shard/table.rs` the hash table of ids (64-byte buckets of 12 ids and their tags,
//! grown by 5/4); `shard/lru.rs` the list and a hit's marks; `shard/evict.rs` how a write
//! makes room (the SIEVE hand); `shard/cas.rs` the CAS values clients chose (meta `E`), kept as aliases
//! of items' own CAS values, which alone take part in the invariants below. The
//! operations themselves (`read.rs`, `write.rs`, `delete.rs`, `arith.rs`) add their own
//! `impl Shard` blocks out of these steps, `shard/snapshot.rs` a snapshot's read-out
//! and restore of the items (through `link_new`, the step writes use), and
//! `shard/walk.rs` the walks in slices
//! (crawler, dumps, a lowered budget) and the per-class figures.
//!
//! Invariants:
//! - every item in the arena is in the table exactly once (under the hash of its key
//!   rotated left by the shard bits, see [`Shard::slot_hash`]; the table's own
//!   invariants are in `shard/table.rs`) and in the list exactly
//!   once; the list runs from `head` (last written) to `tail` (written longest ago);
//!   `hand` is [`NIL`] (at the tail) or an item of the list;
//! - removing an item may move another record of its size class to a new id (see
//!   `arena.rs`): [`Shard::remove`] repoints that record's table slot, list
//!   neighbours and the hand, and says so, so that a caller walking ids can follow the move;
//! - `bytes` is the sum of the items' footprints and never exceeds `budget`;
//! - CAS values are `(counter << shard_bits) | shard_index`, with a counter that only
//!   grows, so they are unique across shards and increase within one;
//! - an item is dead when expired, when its CAS is at most `flush_cas` (`flush_all`
//!   now), or when its `time` (last write or access) is before `flush_before` (a
//!   delayed `flush_all` that has come due); a dead item is never returned and is
//!   removed when met. As in memcached, `flush_all <delay>` comes due in the second
//!   before `realtime(delay)` and flushes every item whose time is before
//!   `realtime(delay)`, so items written in the second it comes due count as older
//!   (memcached's `oldest_live = realtime(delay) - 1`, `time <= oldest_live`): `flush_all
//!   1` is in force at once, and flushes the rest of its second's writes too;
//! - every write links its item at the head (an in-place incr/decr moves it there), and
//!   a write of a key held live counts as an access of it: the new item starts
//!   [`ACTIVE`]. A hit (and a touch, and a meta add that finds the item) only sets the
//!   item's [`ACTIVE`] bit and never moves it, so a hit writes one record and touches no
//!   neighbour; except that a change whose record lacks the field for it (an expiry
//!   given to an item stored without one) stores the item anew at the head
//!   (`shard/relocate.rs`);
//! - a write that needs room reclaims dead items among the [`RECLAIM_SEARCH`](evict::RECLAIM_SEARCH)
//!   nearest the tail first; then the hand (`evict.rs`) walks from where it stopped
//!   towards the head, wrapping to the tail: an [`ACTIVE`] item loses the bit and stays
//!   in place, the first other item is evicted. Nothing but writes reorders the list.
//!   So an item read (or written) since the hand last passed it survives the hand's next
//!   pass, unless the hand meets more than [`HAND_SEARCH`](evict::HAND_SEARCH) marked
//!   items in a row (what `rc-soak`'s guarded keys rely on: read every round, they are
//!   never evicted while the hand takes more than a round to go once round the shard).
//!   One eviction looks at [`HAND_SEARCH`](evict::HAND_SEARCH) + 1 items at most; every
//!   item spared spends an [`ACTIVE`] mark that a hit or write set.

use std::hash::{BuildHasher, Hasher};

/// The key hasher: foldhash with a per-store seed, kept so a restart from a snapshot
/// (`snapshot.rs`) puts every key in the shard it was saved from.
pub(crate) type KeyHasher = foldhash::fast::FixedState;

mod cas;
mod evict;
mod lru;
mod relocate;
mod snapshot;
mod table;
pub(crate) mod walk;

#[cfg(test)]
pub(crate) use evict::HAND_SEARCH;
pub use evict::{Evicted, EvictionObserver};

pub(crate) use lru::mark_hit;
pub(crate) use snapshot::{Restore, SavedItem, ShardState};

use super::arena::{Arena, Moved, Place};
use super::classes::{class_of_new, ShardClasses};
use super::item::{NewItem, Record, RecordMut, ACTIVE, FETCHED, NIL};
use super::{StoreResult, StoreStats};
use cas::GivenCas;
use table::Table;

/// Why an item is dead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Death {
    Expired,
    /// By `flush_all` (now, or delayed and come due).
    Flushed,
}

/// Whether `item` is dead at `now` given a shard's flush state, and why (flushed
/// before expired, as memcached counts them). The CAS is read only after a
/// `flush_all` (every CAS is at least 1).
#[inline]
fn death(item: Record<'_>, now: u32, flush_cas: u64, flush_before: u32) -> Option<Death> {
    if (flush_cas != 0 && item.cas() <= flush_cas) || item.time() < flush_before {
        Some(Death::Flushed)
    } else if item.is_expired(now) {
        Some(Death::Expired)
    } else {
        None
    }
}

/// The hash of a key, from which both the shard and the table slot are taken: the key's
/// bytes alone, without the length prefix `Hash for [u8]` would add (foldhash mixes
/// the length into its seed itself), which saves a multiply per key.
#[inline]
pub(crate) fn key_hash(hasher: &KeyHasher, key: &[u8]) -> u64 {
    let mut h = hasher.build_hasher();
    h.write(key);
    h.finish()
}

/// The resettable counters of one shard.
#[derive(Clone, Debug, Default)]
struct Counters {
    total_items: u64,
    evictions: u64,
    evicted_unfetched: u64,
    reclaimed: u64,
    expired_unfetched: u64,
    /// Lookups that met their key flushed / expired (memcached's `get_flushed`,
    /// `get_expired`: counted by every command that looks an item up).
    get_flushed: u64,
    get_expired: u64,
}

pub(crate) struct Shard {
    table: Table,
    arena: Arena,
    /// Last written item, or [`NIL`].
    head: u32,
    /// Item written longest ago, or [`NIL`].
    tail: u32,
    /// The item the eviction hand looks at next, or [`NIL`]: the tail (`evict.rs`).
    hand: u32,
    bytes: usize,
    budget: usize,
    /// The store's hasher (same seed), to rehash keys when the table grows.
    hasher: KeyHasher,
    /// log2 of the shard count: the key hash bits that chose this shard.
    shard_bits: u32,
    /// This shard's index: the low bits of its CAS values.
    index: u64,
    /// The counter part of the last CAS handed out (0: none yet).
    cas_counter: u64,
    /// Items with a CAS at or below this were flushed (0: none).
    flush_cas: u64,
    /// Items whose time is before this relative time were flushed (0: none).
    flush_before: u32,
    /// A delayed flush not yet due: becomes `flush_before` in the second before this
    /// one (0: none).
    flush_pending: u32,
    /// A record with an exptime field was written, or a flush asked for, since the
    /// crawler last took this mark ([`Shard::take_expiry_mark`]).
    expiry_mark: bool,
    /// CAS values clients chose (meta `E`), by the own CAS of the item (`shard/cas.rs`).
    given_cas: GivenCas,
    counters: Counters,
    /// Told of every eviction (`evict.rs`), if set.
    on_evict: Option<evict::EvictionObserver>,
    /// Per-class counters and what the crawler last saw (`classes.rs`).
    classes: Box<ShardClasses>,
}

impl Shard {
    pub(crate) fn new(index: usize, shard_bits: u32, budget: usize, hasher: KeyHasher) -> Shard {
        Shard {
            table: Table::new(),
            arena: Arena::new(),
            head: NIL,
            tail: NIL,
            hand: NIL,
            bytes: 0,
            budget,
            hasher,
            shard_bits,
            index: index as u64,
            cas_counter: 0,
            flush_cas: 0,
            flush_before: 0,
            flush_pending: 0,
            expiry_mark: false,
            given_cas: GivenCas::default(),
            counters: Counters::default(),
            on_evict: None,
            classes: Box::default(),
        }
    }

    /// Sets what is told of every eviction.
    pub(crate) fn observe_evictions(&mut self, observer: evict::EvictionObserver) {
        self.on_evict = Some(observer);
    }

    /// The table's hash for a key hash. The shard was chosen by the top bits, which are
    /// therefore the same for every key here; rotating them away gives the table's
    /// tags (the top 8 bits) and home buckets (bits 24..56) their full entropy.
    fn slot_hash(&self, hash: u64) -> u64 {
        hash.rotate_left(self.shard_bits)
    }

    /// The hash of item `idx`'s key.
    pub(crate) fn hash_of(&self, idx: u32) -> u64 {
        key_hash(&self.hasher, self.arena.record(idx).key())
    }

    pub(crate) fn next_cas(&mut self) -> u64 {
        self.cas_counter += 1;
        (self.cas_counter << self.shard_bits) | self.index
    }

    /// The CAS of this shard's latest write (0: none yet): right after a write under
    /// the same lock, the written item's CAS.
    pub(crate) fn last_cas(&self) -> u64 {
        if self.cas_counter == 0 {
            0
        } else {
            (self.cas_counter << self.shard_bits) | self.index
        }
    }

    /// Brings a delayed flush that has come due (in the second before its
    /// `flush_pending`) into force. Every operation calls this first.
    #[inline(always)]
    pub(crate) fn advance(&mut self, now: u32) {
        // `now + 1 >= flush_pending`, tested first as `now >= flush_pending - 1` (the
        // usual no flush pending, 0, wraps to u32::MAX: one compare on every lookup;
        // the rest out of line, where the two tests inline were computed together,
        // 8 instructions).
        if now >= self.flush_pending.wrapping_sub(1) {
            self.flush_due();
        }
    }

    /// [`Shard::advance`] past its first test: a delayed flush is due, or none is
    /// pending (0).
    #[cold]
    #[inline(never)]
    fn flush_due(&mut self) {
        if self.flush_pending != 0 {
            self.flush_before = self.flush_pending;
            self.flush_pending = 0;
        }
    }

    /// Live or dead item `idx` (an id `find_live` or `insert` returned).
    pub(crate) fn item(&self, idx: u32) -> Record<'_> {
        self.arena.record(idx)
    }

    #[inline(always)]
    pub(crate) fn item_mut(&mut self, idx: u32) -> RecordMut<'_> {
        self.arena.record_mut(idx)
    }

    /// [`Shard::item_mut`] of the item at `place` ([`Shard::find_live_at`], with no
    /// item added or removed since).
    #[inline(always)]
    pub(crate) fn item_mut_at(&mut self, place: Place) -> RecordMut<'_> {
        self.arena.record_mut_at(place)
    }

    /// Where item `idx` lies in the arena.
    #[inline(always)]
    pub(crate) fn place(&self, idx: u32) -> Place {
        self.arena.place(idx)
    }

    #[inline]
    fn death_at(&self, idx: u32, now: u32) -> Option<Death> {
        death(
            self.arena.record(idx),
            now,
            self.flush_cas,
            self.flush_before,
        )
    }

    fn is_dead_at(&self, idx: u32, now: u32) -> bool {
        self.death_at(idx, now).is_some()
    }

    /// The bytes of the first record in `hash`'s home bucket whose tag matches (see
    /// `Store::record_span`): no key comparison, so the record itself is not read; a key
    /// that overflowed its home bucket is not looked for (a hint).
    #[inline]
    pub(crate) fn first_candidate(&self, hash: u64) -> Option<&[u8]> {
        let idx = self.table.first_at_home(self.slot_hash(hash))?;
        Some(self.arena.record_bytes(idx))
    }

    /// An id in the table bucket `first_candidate` reads (see `Store::record_spans`):
    /// found from the hash alone, so the bucket itself is not read.
    #[inline]
    pub(crate) fn first_slot(&self, hash: u64) -> Option<&u32> {
        self.table.home_line(self.slot_hash(hash))
    }

    /// The live item under `key`, removing a dead one met on the way. The record is
    /// located once: whether it is dead is read where its key was compared. `hash`
    /// only says where to look (a lookup with the hash of another key misses, see
    /// `Store::get_hashed`): a dead item met is removed under its own.
    #[inline(always)]
    pub(crate) fn find_live(&mut self, hash: u64, key: &[u8], now: u32) -> Option<u32> {
        self.find_live_at(hash, key, now).map(|place| place.id)
    }

    /// [`Shard::find_live`], and where the item lies in the arena: a read then reaches
    /// its record without working that out again ([`Shard::item_mut_at`]).
    #[inline(always)]
    pub(crate) fn find_live_at(&mut self, hash: u64, key: &[u8], now: u32) -> Option<Place> {
        let mut found = None;
        for i in self.table.candidates(self.slot_hash(hash)) {
            let place = self.arena.place(i);
            let item = self.arena.record_at(place);
            if item.key_is(key) {
                found = Some((place, death(item, now, self.flush_cas, self.flush_before)));
                break;
            }
        }
        let (place, dead) = found?;
        if let Some(death) = dead {
            self.met_dead(place.id, death);
            return None;
        }
        Some(place)
    }

    /// A lookup met dead item `idx`: counts it (memcached's `get_flushed` /
    /// `get_expired`) and reclaims it, under the hash of its own key.
    #[cold]
    #[inline(never)]
    fn met_dead(&mut self, idx: u32, death: Death) {
        match death {
            Death::Flushed => self.counters.get_flushed += 1,
            Death::Expired => self.counters.get_expired += 1,
        }
        self.reclaim(self.hash_of(idx), idx);
    }

    /// Links `item` in at the head with a fresh CAS. The caller made room for it.
    fn insert(&mut self, hash: u64, item: &NewItem<'_>, now: u32) -> u32 {
        let cas = self.next_cas();
        // Not raised to `flush_before`: a write in the second a delayed flush comes due
        // counts as older (memcached), as does one whose `now` was read a moment before
        // another thread brought that flush into force.
        let idx = self.link_new(hash, item, cas, now);
        self.counters.total_items += 1;
        idx
    }

    /// Stores `item` with `cas` and `time` and links it in at the head: the step a write
    /// and a restored item (`shard/snapshot.rs`) share. The caller made room for it.
    fn link_new(&mut self, hash: u64, item: &NewItem<'_>, cas: u64, time: u32) -> u32 {
        let idx = self.arena.insert(item, cas, time);
        debug_assert_eq!(self.arena.record(idx).footprint(), item.footprint());
        self.expiry_mark |= item.has_exptime_field();
        let (arena, hasher, bits) = (&self.arena, &self.hasher, self.shard_bits);
        self.table.insert_unique(self.slot_hash(hash), idx, |i| {
            key_hash(hasher, arena.record(i).key()).rotate_left(bits)
        });
        self.link_head(idx);
        self.bytes += item.footprint();
        idx
    }

    /// Takes item `idx` (whose key hashes to `hash`) out of the table, list and arena;
    /// returns whether it had been fetched, and the record that moved into its id.
    pub(crate) fn remove(&mut self, hash: u64, idx: u32) -> (bool, Option<Moved>) {
        if !self.table.remove(self.slot_hash(hash), idx) {
            unreachable!("every arena item is in the table");
        }
        self.unlink(idx);
        self.forget_cas(idx);
        let (fetched, footprint) = {
            let item = self.arena.record(idx);
            (item.has(FETCHED), item.footprint())
        };
        self.bytes -= footprint;
        let moved = self.arena.remove(idx);
        if let Some(Moved { from, to }) = moved {
            self.repoint(from, to);
        }
        (fetched, moved)
    }

    /// The record of id `from` now sits at `to`: repoints its table slot, its list
    /// neighbours (its own links moved with it) and the hand.
    fn repoint(&mut self, from: u32, to: u32) {
        let hash = self.slot_hash(self.hash_of(to));
        if !self.table.repoint(hash, from, to) {
            unreachable!("every arena item is in the table");
        }
        let (prev, next) = {
            let item = self.arena.record(to);
            (item.prev(), item.next())
        };
        if self.hand == from {
            self.hand = to;
        }
        if prev == NIL {
            self.head = to;
        } else {
            self.arena.record_mut(prev).set_next(to);
        }
        if next == NIL {
            self.tail = to;
        } else {
            self.arena.record_mut(next).set_prev(to);
        }
    }

    /// Stores `new` in place of live item `old` (if any), making room for it; returns
    /// its index. A record of `old`'s small size class, or of exactly `old`'s length
    /// when that is over the small sizes, is rewritten in place (same id, same
    /// footprint, moved to the head with a fresh CAS) instead of removed and inserted.
    /// Either way the new item starts [`ACTIVE`] if `old` is given (a write of a held
    /// key counts as an access). A `new` larger than the whole budget is `OutOfMemory`,
    /// and then, with `remove_old` (a set: memcached leaves no stale value behind),
    /// `old` is removed.
    #[inline]
    pub(crate) fn put(
        &mut self,
        hash: u64,
        remove_old: bool,
        old: Option<u32>,
        mut new: NewItem<'_>,
        now: u32,
    ) -> Result<u32, StoreResult> {
        new.cas_wide = self.next_cas_wide();
        match old {
            Some(idx) if self.arena.fits_in_place(idx, &new) => {
                // Same chunk or allocation, same footprint (a small item's footprint
                // is its class's, a larger one's its length's), which `old` already
                // accounts for within the budget, so never `OutOfMemory`.
                self.rewrite(idx, &new, now);
                Ok(idx)
            }
            _ => self.put_new(hash, remove_old, old, new, now),
        }
    }

    /// Rewrites live item `idx` in place with `new` that fits it (`Arena::fits_in_place`):
    /// nothing to evict, no table or arena change; only the record (marked [`ACTIVE`]),
    /// its place in the list and the counters. The record is located once for its
    /// rewrite and its own links.
    #[inline(always)]
    fn rewrite(&mut self, idx: u32, new: &NewItem<'_>, now: u32) {
        let cas = self.next_cas();
        self.forget_cas(idx);
        self.expiry_mark |= new.has_exptime_field();
        let old_head = self.head;
        let mut item = self.arena.record_mut(idx);
        let links = (item.get().prev(), item.get().next());
        if old_head == idx {
            item.overwrite(new, cas, now, links);
            item.set(ACTIVE, true);
        } else {
            item.overwrite(new, cas, now, (NIL, old_head));
            item.set(ACTIVE, true);
            self.relink_to_head(idx, old_head, links);
        }
        self.counters.total_items += 1;
    }

    /// [`Shard::put`] of a new record: `old`, if any, is removed first.
    #[inline(never)]
    fn put_new(
        &mut self,
        hash: u64,
        remove_old: bool,
        old: Option<u32>,
        new: NewItem<'_>,
        now: u32,
    ) -> Result<u32, StoreResult> {
        let footprint = new.footprint();
        if footprint > self.budget {
            if let (true, Some(idx)) = (remove_old, old) {
                self.remove(hash, idx);
            }
            self.count_out_of_memory(&new);
            return Err(StoreResult::OutOfMemory);
        }
        if let Some(idx) = old {
            self.remove(hash, idx);
        }
        let held = old.is_some();
        if self.held() + footprint > self.budget {
            self.classes.counters[class_of_new(&new)].direct_reclaims += 1;
        }
        // Over a budget just lowered (`cache_memlimit`) the write may not grow what is
        // held (see `make_room`), else it fits the budget.
        let ceiling = self.budget.max(self.held());
        self.make_room(footprint, now);
        debug_assert!(self.held() + footprint <= ceiling);
        while !self.arena.has_room(&new) {
            // Its size class is out of ids (2^24 - 1 records in one shard): evicting
            // from the tail reaches a record of that class eventually.
            self.evict(self.tail, now);
        }
        let idx = self.insert(hash, &new, now);
        if held {
            self.mark_active(idx);
        }
        Ok(idx)
    }

    /// `flush_all`, memcached's rule: `at` is `realtime(delay)` (`None` for no delay or
    /// 0). Items whose time is before `at` die in the second before `at` (replacing an
    /// earlier delayed flush not yet due); if that second is now or past, at once: then
    /// every item now held dies too, and so do items written later in this second
    /// (`flush_all 1`). With no delay every item now held dies and later writes live;
    /// a pending delayed flush is dropped either way, as memcached does.
    pub(crate) fn flush(&mut self, now: u32, at: Option<u32>) {
        self.advance(now);
        self.expiry_mark = true;
        match at {
            Some(at) if at > now.saturating_add(1) => self.flush_pending = at,
            _ => {
                self.flush_pending = 0;
                self.flush_cas = self.last_cas();
                // Everything older is dead by CAS; memcached's `oldest_live` is now
                // `now - 1` with no delay (later writes live) and `now` with delay 1.
                self.flush_before = at.map_or(0, |at| at.min(now.saturating_add(1)));
            }
        }
    }

    /// Whether an item here may have died or may die since the last call: a record with
    /// an exptime field was written, a flush was asked for, or a delayed flush is still
    /// to come. Clears the mark. A record is born with or without its exptime field and
    /// an in-place touch only changes an existing field, so every item that can expire
    /// was either written since the last call or seen by the crawl after it
    /// ([`CrawlPass::may_expire`](crate::CrawlPass::may_expire)).
    pub(crate) fn take_expiry_mark(&mut self) -> bool {
        std::mem::take(&mut self.expiry_mark) || self.flush_pending != 0
    }

    /// Adds this shard's figures to `stats`.
    pub(crate) fn add_stats(&self, stats: &mut StoreStats) {
        let c = &self.counters;
        stats.curr_items += self.table.len() as u64;
        stats.bytes += self.bytes as u64;
        stats.total_items += c.total_items;
        stats.evictions += c.evictions;
        stats.evicted_unfetched += c.evicted_unfetched;
        stats.reclaimed += c.reclaimed;
        stats.expired_unfetched += c.expired_unfetched;
        stats.get_flushed += c.get_flushed;
        stats.get_expired += c.get_expired;
        stats.hash_bytes += self.table.allocation_bytes() as u64;
        stats.hash_buckets += self.table.slots() as u64;
        for class in self.classes.counters.iter() {
            stats.crawler_reclaimed += class.crawler_reclaimed;
            stats.crawler_items_checked += class.crawler_items_checked;
            stats.evicted_active += class.evicted_active;
            stats.moves_within_lru += class.moves_within_lru;
            stats.direct_reclaims += class.direct_reclaims;
        }
    }

    pub(crate) fn reset_stats(&mut self) {
        self.counters = Counters::default();
        self.classes.reset();
    }

    /// Counts a write refused for want of room (`outofmemory` of its class).
    pub(crate) fn count_out_of_memory(&mut self, new: &NewItem<'_>) {
        self.classes.counters[class_of_new(new)].outofmemory += 1;
    }

    /// The bytes the shard holds against its budget: its items' and its alias table's.
    #[inline(always)]
    pub(crate) fn held(&self) -> usize {
        self.bytes + self.given_cas.bytes()
    }

    /// Counts a lookup that found live item `idx` (`hits_to_cold` of its class).
    #[inline(always)]
    pub(crate) fn count_hit(&mut self, idx: u32) {
        self.classes.count_hit(idx);
    }

    /// Asserts the invariants in the module header (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        assert!(
            self.held() <= self.budget,
            "{} > {}",
            self.held(),
            self.budget
        );
        let sum: usize = self.arena.ids().map(|i| self.item(i).footprint()).sum();
        assert_eq!(self.bytes, sum);
        let held = self.arena.ids().count();
        assert_eq!(self.table.len(), held);
        self.table.check(|i| self.slot_hash(self.hash_of(i)));
        self.arena.check();
        let (mut idx, mut prev, mut count) = (self.head, NIL, 0);
        while idx != NIL {
            let item = self.item(idx);
            assert_eq!(item.prev(), prev);
            let arena = &self.arena;
            let hash = self.slot_hash(self.hash_of(idx));
            let found = self
                .table
                .find(hash, |i| arena.record(i).key() == item.key());
            assert_eq!(found, Some(idx));
            assert_eq!(item.cas() & ((1 << self.shard_bits) - 1), self.index);
            (prev, idx, count) = (idx, item.next(), count + 1);
        }
        assert_eq!(self.tail, prev);
        assert_eq!(count, held);
        if self.hand != NIL {
            let (mut idx, mut found) = (self.head, false);
            while idx != NIL && !found {
                found = idx == self.hand;
                idx = self.item(idx).next();
            }
            assert!(found, "the hand is off the list");
        }
        assert!(self.given_cas.len() <= held);
        for own in self.given_cas.owns() {
            let owner = self.arena.ids().find(|&i| self.item(i).cas() == own);
            assert!(owner.is_some(), "chosen CAS of a gone item {own}");
        }
    }
}
