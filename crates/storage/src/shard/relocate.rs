//! Storing a held item anew when a change in place needs a header field its record
//! lacks (see `item.rs`: the format byte never changes in place): an expiry given to a
//! record written without one (touch, gat, meta `T`, `md … I T`), or a CAS of 2^48 or
//! more given to a record with a narrow CAS (an incr/decr or invalidation in place).
//!
//! Built from the steps every write uses (`Shard::remove`, `make_room`, `link_new`):
//! the item keeps its key, value, flags, CAS (unless a new one is given), access time,
//! state bits and the CAS a client chose for it (meta `E`, `shard/cas.rs`); its new
//! record is linked at the head of the list, as a write's is, and accounts for its new
//! footprint. Knows nothing of the table's layout.
//!
//! Invariant: the item is removed before room is made, so the evictions that make room
//! never meet it; it is kept unless it no longer fits the budget at all (then it is gone,
//! as a set too large for the budget leaves nothing behind), or cannot keep its chosen
//! CAS beside itself (as `Shard::choose_cas` drops it).

use super::Shard;
use crate::item::{NewItem, WIDE_CAS_MIN};

impl Shard {
    /// Gives live item `idx` (whose key hashes to `hash`) expiry `exptime` (if given)
    /// and CAS `cas` (if given), storing it anew (see the module header). Returns its
    /// new id, or `None` if it could not be kept.
    #[cold]
    #[inline(never)]
    pub(crate) fn relocate(
        &mut self,
        hash: u64,
        idx: u32,
        exptime: Option<u32>,
        cas: Option<u64>,
        now: u32,
    ) -> Option<u32> {
        let item = self.item(idx);
        // Copied out: removing the old record may move others.
        let (key, value) = (item.key().to_vec(), item.value().to_vec());
        let cas = cas.unwrap_or(item.cas());
        let time = item.time();
        let chosen = self.chosen_cas(idx);
        let mut new = NewItem::new(
            &key,
            &value,
            item.flags(),
            exptime.unwrap_or(item.exptime()),
        );
        new.bits = item.bits();
        new.cas_wide = cas >= WIDE_CAS_MIN;
        new.keep_exptime = item.has_exptime_field();
        let footprint = new.footprint();
        self.remove(hash, idx);
        if footprint > self.budget {
            self.count_out_of_memory(&new);
            return None;
        }
        self.make_room(footprint, now);
        while !self.arena.has_room(&new) {
            // Its size class is out of ids (see `Shard::put_new`).
            self.evict(self.tail, now);
        }
        let idx = self.link_new(hash, &new, cas, time);
        match chosen {
            Some(chosen) => self.choose_cas(idx, chosen, now),
            None => Some(idx),
        }
    }

    /// The CAS the next write will have (see `Shard::next_cas`).
    pub(crate) fn peek_next_cas(&self) -> u64 {
        ((self.cas_counter + 1) << self.shard_bits) | self.index
    }

    /// Whether the next write's CAS needs a wide record.
    #[inline(always)]
    pub(crate) fn next_cas_wide(&self) -> bool {
        self.peek_next_cas() >= WIDE_CAS_MIN
    }

    /// Sets the CAS counter (tests: a shard near the wide CAS values).
    #[cfg(test)]
    pub(crate) fn set_cas_counter(&mut self, counter: u64) {
        self.cas_counter = counter;
    }
}
