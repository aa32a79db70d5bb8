//! How a write makes room in a full shard: dead items near the tail first, then the
//! SIEVE hand (Zhang et al., "SIEVE is simpler than LRU", NSDI '24) evicts.
//!
//! Owns the eviction policy, its counters' updates (`evictions`, `reclaimed`, and their
//! never-fetched shares, store-wide and per class; per class `moves_within_lru`, the
//! [`ACTIVE`] marks the hand spent, and `evicted_active`, items it evicted marked) and
//! the report of each eviction to the store's observer, if one is set ([`Evicted`]: the
//! server's `watch evictions`). Knows nothing of the operation that needs the room.
//!
//! The policy: the shard's list is a FIFO queue (writes link at the head; hits only
//! mark). The hand (`Shard::hand`, [`NIL`]: at the tail) walks from the tail towards
//! the head, wrapping around: an item marked [`ACTIVE`] loses its mark and stays where
//! it is, the first unmarked one is evicted (a dead one reclaimed) and the hand stops on
//! its neighbour towards the head. New items thus leave soon unless read, while items
//! read once per lap of the hand stay, without ever moving.
//!
//! Invariants (see `shard.rs`): the hand is [`NIL`] or an item of the list; an item
//! marked when the hand reaches it survives that pass; one eviction looks at no more
//! than [`HAND_SEARCH`] + 1 items (after [`HAND_SEARCH`] marked ones in a row the hand
//! evicts the next item marked or not, counted in `evicted_active`), and the marks it
//! spends number at most the hits, so eviction costs O(1) amortised.

use super::{death, Shard};
use crate::arena::Moved;
use crate::classes::class_of_item;
use crate::item::{ACTIVE, FETCHED, NIL};
use std::sync::Arc;

/// An item being evicted, as the eviction observer sees it (under the shard's lock:
/// the observer must not call the store).
#[derive(Clone, Copy, Debug)]
pub struct Evicted<'a> {
    pub key: &'a [u8],
    pub value_len: usize,
    /// Whether a get read it since it was written.
    pub fetched: bool,
    /// Relative expiry time (0: never).
    pub exptime: u32,
    /// Relative time of its last write or access.
    pub last_access: u32,
    /// The relative time of the eviction.
    pub now: u32,
    /// The class id it was stored in (see `classes.rs`).
    pub class: u32,
}

/// What the store calls for every item it evicts (see [`crate::Store::observe_evictions`]).
pub type EvictionObserver = Arc<dyn Fn(&Evicted<'_>) + Send + Sync>;

/// How many items at the tail a write that does not fit inspects for dead ones before
/// the hand evicts live items.
pub(crate) const RECLAIM_SEARCH: usize = 50;

/// How many [`ACTIVE`] items in a row the hand spares in one eviction; the next one
/// goes, marked or not.
pub(crate) const HAND_SEARCH: usize = 256;

impl Shard {
    /// Removes a dead (expired or flushed) item.
    pub(super) fn reclaim(&mut self, hash: u64, idx: u32) -> Option<Moved> {
        let class = class_of_item(idx);
        let (fetched, moved) = self.remove(hash, idx);
        self.counters.reclaimed += 1;
        self.counters.expired_unfetched += u64::from(!fetched);
        let c = &mut self.classes.counters[class];
        c.reclaimed += 1;
        c.expired_unfetched += u64::from(!fetched);
        moved
    }

    /// Removes item `idx` (reclaimed if dead, else evicted); returns the record that
    /// moved into its id.
    pub(super) fn evict(&mut self, idx: u32, now: u32) -> Option<Moved> {
        let hash = self.hash_of(idx);
        if self.is_dead_at(idx, now) {
            return self.reclaim(hash, idx);
        }
        if let Some(observe) = &self.on_evict {
            let item = self.arena.record(idx);
            observe(&Evicted {
                key: item.key(),
                value_len: item.value().len(),
                fetched: item.has(FETCHED),
                exptime: item.exptime(),
                last_access: item.time(),
                now,
                class: class_of_item(idx) as u32,
            });
        }
        let (class, item) = (class_of_item(idx), self.item(idx));
        let (exptime, idle, active) = (
            item.exptime(),
            now.saturating_sub(item.time()),
            item.has(ACTIVE),
        );
        let (fetched, moved) = self.remove(hash, idx);
        self.counters.evictions += 1;
        self.counters.evicted_unfetched += u64::from(!fetched);
        let c = &mut self.classes.counters[class];
        c.evicted += 1;
        c.evicted_nonzero += u64::from(exptime != 0);
        c.evicted_time = idle;
        c.evicted_unfetched += u64::from(!fetched);
        c.evicted_active += u64::from(active);
        moved
    }

    /// One step of the hand: removes the first item from the hand on that is dead or
    /// not [`ACTIVE`] (or the one after [`HAND_SEARCH`] active ones), sparing `keep` (an
    /// item id, or [`NIL`]), and leaves the hand on its neighbour towards the head.
    /// Returns the record that moved into the removed item's id. The shard holds an
    /// item other than `keep`.
    pub(super) fn evict_at_hand(&mut self, keep: u32, now: u32) -> Option<Moved> {
        let (flush_cas, flush_before) = (self.flush_cas, self.flush_before);
        let mut idx = if self.hand == NIL {
            self.tail
        } else {
            self.hand
        };
        let mut spared = 0;
        loop {
            let mut item = self.arena.record_mut(idx);
            let prev = item.get().prev();
            let pass = idx == keep
                || (spared < HAND_SEARCH
                    && item.get().has(ACTIVE)
                    && death(item.get(), now, flush_cas, flush_before).is_none());
            if !pass {
                // `remove` moves the hand on to `prev` (see `unlink`).
                self.hand = idx;
                return self.evict(idx, now);
            }
            if idx != keep {
                item.set(ACTIVE, false);
                self.classes.counters[class_of_item(idx)].moves_within_lru += 1;
                spared += 1;
            }
            idx = if prev == NIL { self.tail } else { prev };
        }
    }

    /// Frees room for `need` more bytes (at most the budget): dead items among the
    /// [`RECLAIM_SEARCH`] nearest the tail first, then the hand's evictions.
    pub(super) fn make_room(&mut self, need: usize, now: u32) {
        debug_assert!(need <= self.budget);
        // Over a budget just lowered (`cache_memlimit`), a write only keeps the bytes
        // from growing: the crawler's slices bring them down to the budget.
        let ceiling = self.budget.max(self.held());
        let mut idx = self.tail;
        let mut looked = 0;
        while self.held() + need > ceiling && idx != NIL && looked < RECLAIM_SEARCH {
            let mut prev = self.arena.record(idx).prev();
            if self.is_dead_at(idx, now) {
                if let Some(Moved { from, to }) = self.reclaim(self.hash_of(idx), idx) {
                    if prev == from {
                        prev = to;
                    }
                }
            }
            idx = prev;
            looked += 1;
        }
        while self.held() + need > ceiling {
            // An empty shard holds 0 bytes (no item, so no alias) and `need` fits the
            // budget.
            self.evict_at_hand(NIL, now);
        }
    }
}
