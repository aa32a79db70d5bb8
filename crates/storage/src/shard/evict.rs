//! How a write makes room in a full shard: dead items near the tail first, then second
//! chances and evictions from the tail.
//!
//! Owns the eviction policy (memcached's LRU with `ITEM_ACTIVE` second chances), its
//! counters' updates (`evictions`, `reclaimed`, and their never-fetched shares, store-
//! wide and per class) and the report of each eviction to the store's observer, if one
//! is set ([`Evicted`]: the server's `watch evictions`). Knows nothing of the operation
//! that needs the room.
//!
//! Invariants (see `shard.rs`): only the walk here reorders the list besides writes; an
//! item read since it last reached the tail survives one more trip through the list;
//! a write's moves are bounded in total, not each: every move spends an [`ACTIVE`]
//! mark that a hit set.

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
}

/// What the store calls for every item it evicts (see [`crate::Store::observe_evictions`]).
pub type EvictionObserver = Arc<dyn Fn(&Evicted<'_>) + Send + Sync>;

/// How many items at the LRU tail a write that does not fit inspects for dead ones
/// before it evicts live items.
pub(crate) const RECLAIM_SEARCH: usize = 50;

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

    /// Gives tail item `idx` its second chance if it is live and [`ACTIVE`]: clears the
    /// bit and moves it to the head. Returns whether it did.
    pub(super) fn second_chance(&mut self, idx: u32, now: u32) -> bool {
        let (flush_cas, flush_before) = (self.flush_cas, self.flush_before);
        let mut item = self.arena.record_mut(idx);
        if !item.get().has(ACTIVE) || death(item.get(), now, flush_cas, flush_before).is_some() {
            return false;
        }
        item.set(ACTIVE, false);
        self.move_to_head(idx);
        self.classes.counters[class_of_item(idx)].moves_within_lru += 1;
        true
    }

    /// Removes the least recently used item (reclaimed if dead, else evicted); returns
    /// the record that moved into its id.
    pub(super) fn evict_tail(&mut self, now: u32) -> Option<Moved> {
        // Never NIL: callers only evict from a shard that holds items.
        let idx = self.tail;
        let hash = self.hash_of(idx);
        if self.is_dead_at(idx, now) {
            self.reclaim(hash, idx)
        } else {
            if let Some(observe) = &self.on_evict {
                let item = self.arena.record(idx);
                observe(&Evicted {
                    key: item.key(),
                    value_len: item.value().len(),
                    fetched: item.has(FETCHED),
                    exptime: item.exptime(),
                    last_access: item.time(),
                    now,
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
    }

    /// Frees room for `need` more bytes (at most the budget): dead items near the tail
    /// first, then from the tail: second chances for [`ACTIVE`] items, evictions of the
    /// others. The second chances are not bounded per write but in total: each spends
    /// one [`ACTIVE`] mark, which only a hit sets, so they number at most the hits.
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
            let idx = self.tail;
            if !self.second_chance(idx, now) {
                self.evict_tail(now);
            }
        }
    }
}
