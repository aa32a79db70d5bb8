//! One shard's side of a snapshot (`snapshot.rs`): its live items read out in list
//! order, tail to head, and put back in that order with the CAS, times and state bits
//! they had; its CAS counter and pending flush read out and set again.
//!
//! Knows nothing of the file format, the clock or other shards: times here are the
//! shard's relative seconds, converted by the caller.
//!
//! Invariants:
//! - items are read tail to head and restored by linking each at the head, so the list
//!   comes back in the same order; the [`ACTIVE`](crate::item::ACTIVE) bits come back
//!   with the items, the hand starts at the tail;
//! - a restored item keeps its own CAS (and a chosen one as its alias): the caller
//!   checks that it belongs to this shard and is not above the counter it restores,
//!   so CAS values handed out later stay unique and above every restored one;
//! - a restore never holds more than the budget: it makes room as a write does
//!   (possible only if the footprint rules changed between the builds).

use super::Shard;
use crate::item::{NewItem, ACTIVE, FETCHED, KEY_BINARY, NIL, STALE, WIN_SENT};

/// The state bits a snapshot keeps (the record's own, below bit 5).
const SAVED_BITS: [u8; 5] = [FETCHED, STALE, WIN_SENT, KEY_BINARY, ACTIVE];

/// A live item as a snapshot saves it, read under its shard's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SavedItem<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
    pub(crate) flags: u32,
    /// The item's own CAS.
    pub(crate) cas: u64,
    /// The CAS a client chose for it (meta `E`), if any.
    pub(crate) chosen_cas: Option<u64>,
    /// Relative expiry time; 0 = never.
    pub(crate) exptime: u32,
    /// Relative time of the last write or access.
    pub(crate) time: u32,
    /// The state bits ([`FETCHED`], [`STALE`], [`WIN_SENT`], [`KEY_BINARY`], [`ACTIVE`]).
    pub(crate) bits: u8,
}

/// What a shard keeps besides its items: its CAS counter and a delayed flush not yet
/// due (relative time; 0: none).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ShardState {
    pub(crate) cas_counter: u64,
    pub(crate) flush_pending: u32,
}

/// What putting one item back did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Restore {
    Restored,
    /// The key is held already: the snapshot is not one this store wrote.
    Duplicate,
    /// Larger than the shard's whole budget (the footprint rules changed): skipped.
    TooLarge,
}

impl Shard {
    /// This shard's CAS counter and pending flush.
    pub(crate) fn state(&self) -> ShardState {
        ShardState {
            cas_counter: self.cas_counter,
            flush_pending: self.flush_pending,
        }
    }

    /// Items held, live or dead: at least what [`Shard::save_items`] will find.
    pub(crate) fn held_items(&self) -> usize {
        self.table.len()
    }

    /// Makes the table room for `items` more, so a restore does not rehash it as it
    /// grows.
    pub(crate) fn reserve(&mut self, items: usize) {
        let (arena, hasher, bits) = (&self.arena, &self.hasher, self.shard_bits);
        self.table.reserve(items, |i| {
            super::key_hash(hasher, arena.record(i).key()).rotate_left(bits)
        });
    }

    /// Calls `each` with every item live at `now`, tail (written longest ago) to head.
    pub(crate) fn save_items(&mut self, now: u32, mut each: impl FnMut(&SavedItem<'_>)) {
        self.advance(now);
        let mut idx = self.tail;
        while idx != NIL {
            let item = self.item(idx);
            let prev = item.prev();
            if !self.is_dead_at(idx, now) {
                let bits = SAVED_BITS
                    .iter()
                    .filter(|&&bit| item.has(bit))
                    .fold(0, |bits, bit| bits | bit);
                each(&SavedItem {
                    key: item.key(),
                    value: item.value(),
                    flags: item.flags(),
                    cas: item.cas(),
                    chosen_cas: self.chosen_cas(idx),
                    exptime: item.exptime(),
                    time: item.time(),
                    bits,
                });
            }
            idx = prev;
        }
    }

    /// Links `saved` in at the head (whose key hashes to `hash`), as it was: the next
    /// item of a restore walking a saved list from its tail. `now` is for the evictions
    /// making room would need.
    pub(crate) fn restore_item(&mut self, hash: u64, saved: &SavedItem<'_>, now: u32) -> Restore {
        let mut item = NewItem::new(saved.key, saved.value, saved.flags, saved.exptime);
        for bit in SAVED_BITS {
            item.set(bit, saved.bits & bit != 0);
        }
        item.cas_wide = saved.cas >= crate::item::WIDE_CAS_MIN;
        let footprint = item.footprint();
        if footprint > self.budget {
            return Restore::TooLarge;
        }
        let slot = self.slot_hash(hash);
        let arena = &self.arena;
        if self
            .table
            .find(slot, |i| arena.record(i).key_is(saved.key))
            .is_some()
        {
            return Restore::Duplicate;
        }
        if self.held() + footprint > self.budget {
            self.make_room(footprint, now);
        }
        let idx = self.link_new(hash, &item, saved.cas, saved.time);
        if let Some(chosen) = saved.chosen_cas {
            // The alias counts against the budget; an item that cannot keep it beside
            // itself is dropped, as when a client chose it.
            let _ = self.choose_cas(idx, chosen, now);
        }
        Restore::Restored
    }

    /// Sets the pending flush of a restored shard, and raises its CAS counter to
    /// `cas_counter` (the highest of all shards': later CAS values are above every
    /// restored one, store-wide).
    pub(crate) fn set_state(&mut self, state: ShardState) {
        self.cas_counter = self.cas_counter.max(state.cas_counter);
        self.flush_pending = state.flush_pending;
    }
}
