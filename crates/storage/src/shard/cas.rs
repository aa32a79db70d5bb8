//! Explicit CAS values (meta `E<token>`): the CAS a client chose for an item, kept
//! beside the item as an alias of the CAS the shard gave it.
//!
//! Owns the shard's alias table (an item's own CAS → the client's) and the rule for
//! reading an item's CAS. Knows nothing of dialects: the operations pass the chosen
//! value as an option (`Write::new_cas`, `Delete::new_cas`, `Arith::new_cas`,
//! `Read::new_cas`).
//!
//! Why an alias, not the value in the record: the record's CAS comes from the shard's
//! counter, which only grows, so it also orders writes for `flush_all` (an item is
//! flushed when its own CAS is at most the shard's flush mark). A chosen CAS says
//! nothing of when the item was written (`E1` after a flush, `E99999` before one), so
//! it must not take part; memcached 1.6.45 flushes such items by write order too. So
//! an item written with a chosen CAS still takes the shard's next CAS as its own
//! (hidden) one, and generated CAS values stay unique and increasing (memcached skips
//! the counter instead: CAS values are opaque, nothing but their order of handing out
//! can tell). Uniqueness of chosen values is the client's business, as in memcached:
//! two items may carry the same chosen CAS, and a compare then matches either.
//!
//! Invariants:
//! - every key of the table is the own CAS of an item in this shard: the entry goes
//!   when that CAS does (the item removed, rewritten in place, or given a new CAS by an
//!   incr, decr or invalidation), so the table never outgrows the items held;
//! - an empty table costs a read path one length check, nothing else, and holds no
//!   memory;
//! - the table's allocation counts against the shard's budget (`Shard::held`): taking
//!   an alias evicts other items until it fits, as a write does; only an item that
//!   cannot fit beside its alias even alone is itself removed (memcached's out of
//!   memory, which also drops the item); a table left mostly empty by removals shrinks,
//!   so evicting items frees its room too.

use hashbrown::HashMap;

use super::Shard;
use crate::arena::Moved;

/// A shard's chosen CAS values, by the own CAS of the item that carries each.
#[derive(Debug, Default)]
pub(crate) struct GivenCas {
    by_own: HashMap<u64, u64>,
}

impl GivenCas {
    /// The CAS clients see for an item whose own CAS is `own`.
    #[inline(always)]
    pub(crate) fn visible(&self, own: u64) -> u64 {
        self.chosen(own).unwrap_or(own)
    }

    /// The CAS a client chose for the item whose own CAS is `own`, if any.
    #[inline(always)]
    pub(crate) fn chosen(&self, own: u64) -> Option<u64> {
        if self.by_own.is_empty() {
            None
        } else {
            self.by_own.get(&own).copied()
        }
    }

    /// Drops the alias of an own CAS that is going away; a table three quarters empty
    /// shrinks to twice what it holds, an empty one frees its memory.
    #[inline(always)]
    pub(crate) fn forget(&mut self, own: u64) {
        if !self.by_own.is_empty() && self.by_own.remove(&own).is_some() {
            self.shrink();
        }
    }

    #[cold]
    fn shrink(&mut self) {
        let len = self.by_own.len();
        if len == 0 {
            self.by_own = HashMap::new();
        } else if len * 4 < self.by_own.capacity() {
            self.by_own.shrink_to(len * 2);
        }
    }

    /// The bytes the table holds (counted against the shard's budget).
    #[inline(always)]
    pub(crate) fn bytes(&self) -> usize {
        self.by_own.allocation_size()
    }

    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.by_own.len()
    }

    #[cfg(test)]
    pub(crate) fn owns(&self) -> impl Iterator<Item = u64> + '_ {
        self.by_own.keys().copied()
    }
}

impl Shard {
    /// Live item `idx`'s CAS as clients see it (a chosen one, else its own).
    #[inline(always)]
    pub(crate) fn item_cas(&self, idx: u32) -> u64 {
        self.given_cas.visible(self.item(idx).cas())
    }

    /// The CAS a client chose for live item `idx`, if any.
    #[inline(always)]
    pub(crate) fn chosen_cas(&self, idx: u32) -> Option<u64> {
        if self.given_cas.len() == 0 {
            return None;
        }
        self.given_cas.chosen(self.item(idx).cas())
    }

    /// Drops live item `idx`'s chosen CAS: its own is about to change.
    #[inline(always)]
    pub(crate) fn forget_cas(&mut self, idx: u32) {
        if self.given_cas.len() != 0 {
            let own = self.item(idx).cas();
            self.given_cas.forget(own);
        }
    }

    /// Makes `cas` the CAS clients see for live item `idx` (0: its own, as generated),
    /// then evicts other items while the shard holds more than its budget (or than it
    /// held before, over a budget just lowered). Returns `idx`'s id after those
    /// evictions (a removal moves the arena's last record into the freed id), or `None`
    /// if the item itself had to go: alone in the shard, it and its alias did not fit.
    #[must_use]
    pub(crate) fn choose_cas(&mut self, mut idx: u32, cas: u64, now: u32) -> Option<u32> {
        let own = self.item(idx).cas();
        if cas == 0 || cas == own {
            self.given_cas.forget(own);
            return Some(idx);
        }
        let ceiling = self.budget.max(self.held());
        self.given_cas.by_own.insert(own, cas);
        if self.held() > ceiling {
            while self.held() > ceiling && self.table.len() > 1 {
                if let Some(Moved { from, to }) = self.evict_at_hand(idx, now) {
                    if from == idx {
                        idx = to;
                    }
                }
            }
            if self.held() > ceiling {
                self.evict(idx, now);
                return None;
            }
        }
        Some(idx)
    }
}
