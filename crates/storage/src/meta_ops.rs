//! The store operations of the meta commands (`mg`, `ms`, `md`, `ma`, `me`).
//!
//! Owns what meta adds to the classic operations: a compare-CAS on every store mode,
//! stale items and the "win" token of stale-while-revalidate, items created on a miss
//! (vivify), and a view of an item's metadata ([`MetaItem`]) that a caller reads and
//! changes under the shard lock, in the order its request lists its flags. Knows
//! nothing of the meta syntax or its answers: callers pass plain options and times.
//!
//! Invariants (on top of the store's):
//! - a [`MetaItem`] lives only inside the caller's closure, under its shard's lock, and
//!   can change only the exptime and the win bit; every other change goes through the
//!   shard, so the LRU list and the byte count stay exact;
//! - an item made by vivify or by `ma`'s auto-create is an ordinary item (flags 0,
//!   accounted, evictable), never marked as having a base64 key (memcached's neither);
//! - a stale store (`ms` with `I` and a CAS below the item's) keeps the old item's
//!   exptime and win bit, as memcached does;
//! - every write and every invalidation hands out a fresh CAS value.

use super::item::{self, NewItem, RecordMut, KEY_BINARY, STALE, WIN_SENT};
use super::shard::Shard;
use super::{ArithResult, Store, StoreResult};
use crate::{item_too_large, WriteMode, KEY_MAX_BYTES};

/// A live item under its shard's lock, as a meta command reads and changes it.
#[derive(Debug)]
pub struct MetaItem<'a> {
    item: RecordMut<'a>,
    now: u32,
    created: bool,
    /// Whether the store bumps the item (active, fetched, access time) after the caller.
    bump: &'a mut bool,
}

impl MetaItem<'_> {
    pub fn key(&self) -> &[u8] {
        self.item.get().key()
    }

    pub fn value(&self) -> &[u8] {
        self.item.get().value()
    }

    /// Client flags.
    pub fn flags(&self) -> u32 {
        self.item.get().flags()
    }

    pub fn cas(&self) -> u64 {
        self.item.get().cas()
    }

    /// Relative expiry time (see `Clock::realtime`); 0 = never.
    pub fn exptime(&self) -> u32 {
        self.item.get().exptime()
    }

    /// Sets the relative expiry time (from `Clock::realtime`).
    pub fn set_exptime(&mut self, exptime: u32) {
        self.item.set_exptime(exptime);
    }

    /// The relative time this operation runs at.
    pub fn now(&self) -> u32 {
        self.now
    }

    /// Relative time of the item's last write or access before this operation.
    pub fn last_access(&self) -> u32 {
        self.item.get().time()
    }

    /// Whether a get read the item before this operation.
    pub fn fetched(&self) -> bool {
        self.item.get().has(item::FETCHED)
    }

    pub fn is_stale(&self) -> bool {
        self.item.get().has(STALE)
    }

    /// Whether some request was already told it won the right to recache this item.
    pub fn win_sent(&self) -> bool {
        self.item.get().has(WIN_SENT)
    }

    /// Records that this request won the right to recache the item.
    pub fn mark_win_sent(&mut self) {
        self.item.set(WIN_SENT, true);
    }

    /// Whether the key was stored base64-encoded (`ms … b`).
    pub fn key_is_binary(&self) -> bool {
        self.item.get().has(KEY_BINARY)
    }

    /// Whether this operation created the item (vivify on a miss).
    pub fn created(&self) -> bool {
        self.created
    }

    /// Leaves the item unbumped: not marked active or fetched, its access
    /// time kept (memcached skips the bump when a meta get fails half-way).
    pub fn skip_bump(&mut self) {
        *self.bump = false;
    }
}

/// Options of a meta get (`mg`, and `me` with no bump).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaGet {
    /// Bump the item after the caller has read it (not `u`).
    pub bump: bool,
    /// On a miss, create an empty item (flags 0, exptime 0) and return it (`N`).
    pub vivify: bool,
}

/// Options of a meta set (`ms`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaSet {
    /// Set, Add, Replace, Append or Prepend (Cas is taken as Set).
    pub mode: WriteMode,
    pub flags: u32,
    /// A client exptime (see `Clock::realtime`).
    pub exptime: i64,
    /// `C`: with Set and Replace, store only over an item with this CAS (a missing item
    /// is `NotFound`, another CAS `Exists`); with Append and Prepend, a CAS other than
    /// 0 that differs is `Exists`; Add ignores it.
    pub compare_cas: Option<u64>,
    /// `I`: with a compare CAS lower than the item's, store anyway but mark the new
    /// value stale.
    pub invalidate: bool,
    /// The key was sent base64-encoded.
    pub key_binary: bool,
}

/// Options of a meta delete (`md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetaDelete {
    /// Act only on an item with this CAS (`Exists` otherwise).
    pub compare_cas: Option<u64>,
    /// Mark the item stale (with a new CAS) instead of removing it.
    pub invalidate: bool,
    /// With `invalidate`: the new client exptime.
    pub exptime: Option<i64>,
}

/// Outcome of a meta delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaDeleteResult {
    Deleted,
    /// Marked stale.
    Invalidated,
    NotFound,
    /// The compare CAS differs.
    Exists,
}

/// Options of a meta arithmetic (`ma`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaArith {
    pub incr: bool,
    pub delta: u64,
    /// Act only on an item with this CAS; 0 = no check (memcached's rule for `ma`).
    pub compare_cas: u64,
    /// On a miss, create the item with this value (flags 0, exptime 0).
    pub vivify: Option<u64>,
}

/// Outcome of a meta arithmetic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaArithResult {
    /// The new value after the delta.
    Value(u64),
    /// A miss created the item with this value (no delta applied).
    Created(u64),
    NotFound,
    /// The compare CAS differs.
    Exists,
    NonNumeric,
    OutOfMemory,
}

impl Store {
    /// Looks `key` up (creating an empty item on a miss with `vivify`) and runs `f` with
    /// it under the shard lock; then bumps the item unless `opts.bump` is false or `f`
    /// called [`MetaItem::skip_bump`]. `f` sees the metadata as it was before this
    /// operation's bump.
    pub fn meta_get<R>(
        &self,
        key: &[u8],
        opts: MetaGet,
        f: impl FnOnce(Option<MetaItem<'_>>) -> R,
    ) -> R {
        if key.len() > KEY_MAX_BYTES {
            return f(None);
        }
        let now = self.clock.now();
        let (hash, mut shard) = self.shard(key);
        shard.meta_get(hash, key, now, opts, f)
    }

    /// `ms`: stores `value` under `key`; returns the outcome and the new CAS (0 unless
    /// stored). A value over the item size limit is `TooLarge` and removes the key
    /// whatever the mode, as memcached's meta set does.
    pub fn meta_set(&self, key: &[u8], value: &[u8], opts: &MetaSet) -> (StoreResult, u64) {
        if key.len() > KEY_MAX_BYTES {
            return (StoreResult::NotStored, 0);
        }
        if item_too_large(
            key.len(),
            value.len(),
            opts.flags,
            self.config.max_item_bytes,
        ) {
            self.delete(key);
            return (StoreResult::TooLarge, 0);
        }
        let now = self.clock.now();
        let exptime = self.clock.realtime(opts.exptime);
        let new = NewItem::new(key, value, opts.flags, exptime);
        let (hash, mut shard) = self.shard(key);
        shard.meta_set(hash, new, opts, now, self.config.max_item_bytes)
    }

    /// `md`: removes `key`, or marks it stale.
    pub fn meta_delete(&self, key: &[u8], opts: &MetaDelete) -> MetaDeleteResult {
        if key.len() > KEY_MAX_BYTES {
            return MetaDeleteResult::NotFound;
        }
        let now = self.clock.now();
        let exptime = opts.exptime.map(|e| self.clock.realtime(e));
        let (hash, mut shard) = self.shard(key);
        shard.meta_delete(hash, key, now, opts, exptime)
    }

    /// `ma`: incr/decr (or create on a miss), then runs `f` with the outcome and, for
    /// `Value` and `Created`, the item under the shard lock.
    pub fn meta_arith<R>(
        &self,
        key: &[u8],
        opts: MetaArith,
        f: impl FnOnce(MetaArithResult, Option<MetaItem<'_>>) -> R,
    ) -> R {
        if key.len() > KEY_MAX_BYTES {
            return f(MetaArithResult::NotFound, None);
        }
        let now = self.clock.now();
        let (hash, mut shard) = self.shard(key);
        shard.meta_arith(hash, key, now, opts, f)
    }
}

impl Shard {
    fn meta_get<R>(
        &mut self,
        hash: u64,
        key: &[u8],
        now: u32,
        opts: MetaGet,
        f: impl FnOnce(Option<MetaItem<'_>>) -> R,
    ) -> R {
        self.advance(now);
        let (idx, created) = match self.find_live(hash, key, now) {
            Some(idx) => (idx, false),
            None if opts.vivify => {
                let empty = NewItem::new(key, b"", 0, 0);
                match self.put(hash, WriteMode::Add, None, empty, now) {
                    Ok(idx) => (idx, true),
                    Err(_) => return f(None),
                }
            }
            None => return f(None),
        };
        let mut bump = opts.bump;
        let result = f(Some(MetaItem {
            item: self.item_mut(idx),
            now,
            created,
            bump: &mut bump,
        }));
        if bump {
            self.hit(idx, now);
        }
        result
    }

    fn meta_set(
        &mut self,
        hash: u64,
        mut new: NewItem<'_>,
        opts: &MetaSet,
        now: u32,
        max_item_bytes: usize,
    ) -> (StoreResult, u64) {
        use WriteMode::*;
        self.advance(now);
        let old = self.find_live(hash, new.key, now);
        let compare = opts.compare_cas.unwrap_or(0);
        let cas_mode = opts.compare_cas.is_some() && matches!(opts.mode, Set | Replace | Cas);
        new.set(KEY_BINARY, opts.key_binary);
        let joined;
        let new = match old {
            None if cas_mode => return (StoreResult::NotFound, 0),
            None if matches!(opts.mode, Set | Add | Cas) => new,
            None => return (StoreResult::NotStored, 0),
            Some(idx) => {
                let current = self.item(idx);
                if cas_mode {
                    if compare != 0 && compare == current.cas() {
                        new
                    } else if opts.invalidate && compare != 0 && compare < current.cas() {
                        new.exptime = current.exptime();
                        new.set(STALE, true);
                        new.set(WIN_SENT, current.has(WIN_SENT));
                        new
                    } else {
                        return (StoreResult::Exists, 0);
                    }
                } else {
                    match opts.mode {
                        Add => {
                            // memcached counts an add that finds the item as an
                            // access (do_item_update): here, it is marked active.
                            self.mark_active(idx);
                            return (StoreResult::NotStored, 0);
                        }
                        Append | Prepend if compare != 0 && compare != current.cas() => {
                            return (StoreResult::Exists, 0);
                        }
                        Append | Prepend => match self.joined(idx, opts.mode, &new, max_item_bytes)
                        {
                            Some(value) => {
                                joined = value;
                                self.joined_item(idx, new, &joined)
                            }
                            None => return (StoreResult::NotStored, 0),
                        },
                        _ => new,
                    }
                }
            }
        };
        // memcached's meta set leaves no old value behind when it cannot store.
        match self.put(hash, Set, old, new, now) {
            Ok(idx) => (StoreResult::Stored, self.item(idx).cas()),
            Err(refused) => (refused, 0),
        }
    }

    fn meta_delete(
        &mut self,
        hash: u64,
        key: &[u8],
        now: u32,
        opts: &MetaDelete,
        exptime: Option<u32>,
    ) -> MetaDeleteResult {
        self.advance(now);
        let Some(idx) = self.find_live(hash, key, now) else {
            return MetaDeleteResult::NotFound;
        };
        if opts
            .compare_cas
            .is_some_and(|cas| cas != self.item(idx).cas())
        {
            return MetaDeleteResult::Exists;
        }
        if !opts.invalidate {
            self.remove(hash, idx);
            return MetaDeleteResult::Deleted;
        }
        let cas = self.next_cas();
        let mut item = self.item_mut(idx);
        if let Some(exptime) = exptime {
            item.set_exptime(exptime);
        }
        item.set(STALE, true);
        // The next meta get may win the right to recache it.
        item.set(WIN_SENT, false);
        item.set_cas(cas);
        MetaDeleteResult::Invalidated
    }

    fn meta_arith<R>(
        &mut self,
        hash: u64,
        key: &[u8],
        now: u32,
        opts: MetaArith,
        f: impl FnOnce(MetaArithResult, Option<MetaItem<'_>>) -> R,
    ) -> R {
        self.advance(now);
        let (outcome, idx) = match self.find_live(hash, key, now) {
            None => match opts.vivify {
                None => return f(MetaArithResult::NotFound, None),
                Some(initial) => {
                    let mut digits = itoa::Buffer::new();
                    let value = digits.format(initial).as_bytes();
                    let new = NewItem::new(key, value, 0, 0);
                    match self.put(hash, WriteMode::Add, None, new, now) {
                        Ok(idx) => (MetaArithResult::Created(initial), idx),
                        Err(_) => return f(MetaArithResult::OutOfMemory, None),
                    }
                }
            },
            Some(idx) if opts.compare_cas != 0 && opts.compare_cas != self.item(idx).cas() => {
                return f(MetaArithResult::Exists, None);
            }
            Some(idx) => match self.arith_at(hash, idx, opts.delta, opts.incr, now) {
                Ok((value, idx)) => (MetaArithResult::Value(value), idx),
                Err(ArithResult::NonNumeric) => return f(MetaArithResult::NonNumeric, None),
                Err(_) => return f(MetaArithResult::OutOfMemory, None),
            },
        };
        let created = matches!(outcome, MetaArithResult::Created(_));
        let mut bump = false;
        f(
            outcome,
            Some(MetaItem {
                item: self.item_mut(idx),
                now,
                created,
                bump: &mut bump,
            }),
        )
    }
}

#[cfg(test)]
mod tests;
