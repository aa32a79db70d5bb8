//! Deletes: delete (text and binary) and meta `md`, which may mark an item stale
//! instead of removing it.
//!
//! Owns the delete options ([`Delete`]) and [`DeleteResult`]. Knows nothing of any
//! dialect: the connection maps a binary delete's CAS (0 = any) and a meta delete's `C`
//! (compared even when 0) onto [`Delete::cas`].
//!
//! Invariants (on top of the store's): an invalidation hands out a fresh CAS, marks the
//! item stale and clears its win mark, so the next meta get may win it again.

use crate::item::{STALE, WIN_SENT};
use crate::shard::Shard;
use crate::{Store, KEY_MAX_BYTES};

/// How a delete goes. The default removes the live item, whatever its CAS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delete {
    /// Act only on an item with this CAS (`Exists` otherwise).
    pub cas: Option<u64>,
    /// Mark the item stale (with a new CAS) instead of removing it.
    pub invalidate: bool,
    /// With `invalidate`: the new client exptime.
    pub exptime: Option<i64>,
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
        if d.cas.is_some_and(|cas| cas != self.item(idx).cas()) {
            return DeleteResult::Exists;
        }
        if d.invalidate {
            self.invalidate(idx, exptime);
            return DeleteResult::Invalidated;
        }
        self.remove(hash, idx);
        DeleteResult::Deleted
    }

    /// Marks live item `idx` stale with a fresh CAS (and `exptime`, if given) and clears
    /// its win mark.
    fn invalidate(&mut self, idx: u32, exptime: Option<u32>) {
        let cas = self.next_cas();
        let mut item = self.item_mut(idx);
        if let Some(exptime) = exptime {
            item.set_exptime(exptime);
        }
        item.set(STALE, true);
        // The next meta get may win the right to recache it.
        item.set(WIN_SENT, false);
        item.set_cas(cas);
    }
}
