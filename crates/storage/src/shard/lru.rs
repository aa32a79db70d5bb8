//! One shard's list, and the marks a read leaves on an item.
//!
//! Owns the list's links (`head`, `tail`, each record's `prev`/`next`), keeps the
//! eviction hand (`hand`) off items that leave their place, and sets the [`ACTIVE`] /
//! [`FETCHED`] marks of a hit. Knows nothing of the table, budgets or eviction
//! (`evict.rs` moves the hand).
//!
//! Invariants (see `shard.rs` for the whole list): every item is in the list exactly
//! once, from `head` (last written) to `tail` (written longest ago); a write links its
//! item at the head; a hit only sets marks and never moves the item, so it writes one
//! record and touches no neighbour; an item that leaves its place (removed, or moved to
//! the head by a write) while the hand is on it hands the hand to its neighbour towards
//! the head ([`NIL`]: back to the tail), where the hand would have gone next.

use super::Shard;
use crate::item::{RecordMut, ACTIVE, FETCHED, NIL};

/// Counts a read of a live item: marks it [`ACTIVE`] and [`FETCHED`], and from the
/// second read on records the access `time` (memcached's segmented LRU leaves the time
/// alone on the first fetch after a write and refreshes it on later ones).
#[inline]
pub(crate) fn mark_hit(item: &mut RecordMut<'_>, time: u32) {
    if item.get().has(FETCHED) {
        item.set_time(time);
    }
    item.set(FETCHED | ACTIVE, true);
}

impl Shard {
    pub(super) fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let item = self.arena.record(idx);
            (item.prev(), item.next())
        };
        if self.hand == idx {
            self.hand = prev;
        }
        if prev == NIL {
            self.head = next;
        } else {
            self.arena.record_mut(prev).set_next(next);
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.arena.record_mut(next).set_prev(prev);
        }
    }

    pub(super) fn link_head(&mut self, idx: u32) {
        let old_head = self.head;
        let mut item = self.arena.record_mut(idx);
        item.set_prev(NIL);
        item.set_next(old_head);
        if old_head == NIL {
            self.tail = idx;
        } else {
            self.arena.record_mut(old_head).set_prev(idx);
        }
        self.head = idx;
    }

    /// Moves item `idx` to the head (a write; reads only mark items [`ACTIVE`]).
    pub(crate) fn move_to_head(&mut self, idx: u32) {
        let old_head = self.head;
        if old_head == idx {
            return;
        }
        let links = {
            let mut item = self.arena.record_mut(idx);
            let links = (item.get().prev(), item.get().next());
            item.set_prev(NIL);
            item.set_next(old_head);
            links
        };
        self.relink_to_head(idx, old_head, links);
    }

    /// Item `idx`, until now between `prev` and `next` and not the head, already links
    /// to [`NIL`] and `old_head`: joins its old neighbours and makes it the head. The
    /// item's own record is written by the caller, so a write over it in place and its
    /// move to the head locate it once.
    #[inline(always)]
    pub(super) fn relink_to_head(&mut self, idx: u32, old_head: u32, (prev, next): (u32, u32)) {
        // Not the head: it has a predecessor, and the list has a head.
        debug_assert!(prev != NIL && old_head != NIL && old_head != idx);
        if self.hand == idx {
            self.hand = prev;
        }
        self.arena.record_mut(prev).set_next(next);
        if next == NIL {
            self.tail = prev;
        } else {
            self.arena.record_mut(next).set_prev(prev);
        }
        self.arena.record_mut(old_head).set_prev(idx);
        self.head = idx;
    }

    /// Counts an access that is not a read (a meta add that finds the item, a write of a
    /// held key): marks it [`ACTIVE`] only.
    pub(crate) fn mark_active(&mut self, idx: u32) {
        self.arena.record_mut(idx).set(ACTIVE, true);
    }

    /// The key the hand is on (`None`: the hand is back at the tail) (tests).
    #[cfg(test)]
    pub(crate) fn hand_key(&self) -> Option<Vec<u8>> {
        (self.hand != NIL).then(|| self.item(self.hand).key().to_vec())
    }

    /// Keys whose [`ACTIVE`] bit is set, in list order (tests).
    #[cfg(test)]
    pub(crate) fn active_keys(&self) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        let mut idx = self.head;
        while idx != NIL {
            let item = self.item(idx);
            if item.has(ACTIVE) {
                keys.push(item.key().to_vec());
            }
            idx = item.next();
        }
        keys
    }

    /// Keys in list order, head (last written) to tail (tests).
    #[cfg(test)]
    pub(crate) fn lru_keys(&self) -> Vec<Vec<u8>> {
        let mut keys = Vec::new();
        let mut idx = self.head;
        while idx != NIL {
            let item = self.item(idx);
            keys.push(item.key().to_vec());
            idx = item.next();
        }
        keys
    }
}
