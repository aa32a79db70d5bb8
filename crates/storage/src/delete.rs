//! Deletes: delete (text and binary) and meta `md`, which may mark an item stale
//! instead of removing it, or (`md … x`, memcached 1.6.45) empty its value and keep it.
//!
//! Owns the delete options ([`Delete`]) and [`DeleteResult`]. Knows nothing of any
//! dialect: the connection maps a binary delete's CAS (0 = any) and a meta delete's `C`
//! (compared even when 0) onto [`Delete::cas`].
//!
//! Invariants (on top of the store's): an invalidation hands out a fresh CAS (or the one
//! the client chose), marks the item stale and clears its win mark, so the next meta get
//! may win it again. Removing the value (memcached 1.6.45's `md … x`) replaces the item
//! with an empty one under the same key: client flags 0, the given exptime or none, not
//! stale unless it also invalidates, no longer marked as having a base64 key, and the old item's CAS kept unless it invalidates
//! or the client chose one.

use crate::item::{NewItem, STALE, WIN_SENT};

use crate::shard::Shard;
use crate::{Store, KEY_MAX_BYTES};

/// How a delete goes. The default removes the live item, whatever its CAS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delete {
    /// Act only on an item with this CAS (`Exists` otherwise).
    pub cas: Option<u64>,
    /// Mark the item stale (with a new CAS) instead of removing it.
    pub invalidate: bool,
    /// With `invalidate` or `remove_value`: the new client exptime (with
    /// `remove_value`, none means no expiry).
    pub exptime: Option<i64>,
    /// Keep the item with an empty value instead of removing it (meta `md … x`).
    pub remove_value: bool,
    /// With `invalidate` or `remove_value`: the CAS the item carries after, chosen by
    /// the client (meta `E`); 0: as the invariants above say.
    pub new_cas: u64,
}

/// Outcome of a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteResult {
    Deleted,
    /// Marked stale ([`Delete::invalidate`]).
    Invalidated,
    NotFound,
    /// The item's CAS differs from [`Delete::cas`].
    Exists,
}

impl Store {
    /// Removes `key`, or marks it stale, as `d` says.
    pub fn delete(&self, key: &[u8], d: Delete) -> DeleteResult {
        if key.len() > KEY_MAX_BYTES {
            return DeleteResult::NotFound;
        }
        let now = self.clock.now();
        let exptime = d.exptime.map(|e| self.clock.realtime(e));
        let (hash, mut shard) = self.shard(key);
        shard.delete(hash, key, now, &d, exptime)
    }
}

impl Shard {
    /// [`Store::delete`] under the lock; `exptime` is `d.exptime` made relative.
    fn delete(
        &mut self,
        hash: u64,
        key: &[u8],
        now: u32,
        d: &Delete,
        exptime: Option<u32>,
    ) -> DeleteResult {
        self.advance(now);
        let Some(idx) = self.find_live(hash, key, now) else {
            return DeleteResult::NotFound;
        };
        if d.cas.is_some_and(|cas| cas != self.item_cas(idx)) {
            return DeleteResult::Exists;
        }
        if d.remove_value {
            return self.remove_value(hash, key, idx, d, exptime, now);
        }
        if d.invalidate {
            let Some(idx) = self.invalidate(hash, idx, exptime, now) else {
                // No longer fits the budget once given its expiry.
                return DeleteResult::Deleted;
            };
            // An item that cannot keep its chosen CAS is gone: deleted, not invalidated.
            return match self.choose_cas(idx, d.new_cas, now) {
                Some(_) => DeleteResult::Invalidated,
                None => DeleteResult::Deleted,
            };
        }
        self.remove(hash, idx);
        DeleteResult::Deleted
    }

    /// Marks live item `idx` (whose key hashes to `hash`) stale with a fresh CAS (and
    /// `exptime`, if given) and clears its win mark; returns its id, which changes if
    /// its record had no field for the expiry or the CAS (`shard/relocate.rs`), or
    /// `None` if it could not be kept then.
    fn invalidate(&mut self, hash: u64, idx: u32, exptime: Option<u32>, now: u32) -> Option<u32> {
        let cas = self.next_cas();
        self.forget_cas(idx);
        let mut item = self.item_mut(idx);
        item.set(STALE, true);
        // The next meta get may win the right to recache it.
        item.set(WIN_SENT, false);
        let in_place = exptime.is_none_or(|exptime| item.set_exptime(exptime));
        if in_place && item.set_cas(cas) {
            return Some(idx);
        }
        self.relocate(hash, idx, exptime, Some(cas), now)
    }
}

impl Shard {
    /// `md … x`: live item `idx` under `key` becomes an empty item (see the module
    /// header); invalidated too with `d.invalidate`.
    #[cold]
    fn remove_value(
        &mut self,
        hash: u64,
        key: &[u8],
        idx: u32,
        d: &Delete,
        exptime: Option<u32>,
        now: u32,
    ) -> DeleteResult {
        let old_cas = self.item_cas(idx);
        // Not marked base64 (memcached 1.6.45's new item is not).
        let mut empty = NewItem::new(key, b"", 0, exptime.unwrap_or(0));
        empty.set(STALE, d.invalidate);
        // An empty item is smaller than any budget: `put` cannot refuse it.
        let Ok(idx) = self.put(hash, false, Some(idx), empty, now) else {
            return DeleteResult::NotFound;
        };
        let cas = match (d.new_cas, d.invalidate) {
            (0, true) => 0,
            (0, false) => old_cas,
            (chosen, _) => chosen,
        };
        if self.choose_cas(idx, cas, now).is_none() {
            return DeleteResult::Deleted;
        }
        if d.invalidate {
            DeleteResult::Invalidated
        } else {
            DeleteResult::Deleted
        }
    }
}
