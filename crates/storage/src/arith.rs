//! incr/decr (text `incr`/`decr`, binary INCREMENT/DECREMENT, meta `ma`).
//!
//! Owns the arithmetic options ([`Arith`]: direction and delta, a CAS to compare, an
//! [`Initial`] item to create on a miss) and [`ArithResult`]; `arith/number.rs` owns
//! which stored values count as numbers and how a result is written back. Knows
//! nothing of any dialect: the connection maps binary's initial value (and its "no
//! create" exptime) and meta's `N`/`J` onto [`Arith::create`].
//!
//! Invariants (on top of the store's):
//! - a CAS is compared before the value is read as a number (`Exists` before
//!   `NonNumeric`); 0 compares nothing;
//! - a result that fits the old value's length is written in place (padded with
//!   spaces) and moves the item to the head with a fresh CAS, marked as accessed; a
//!   longer one replaces the
//!   item, keeping its flags and exptime;
//! - an item created from an [`Initial`] is an ordinary item (flags 0, the value as
//!   decimal text, no delta applied), never marked as having a base64 key.

mod number;

use crate::item::NewItem;
use crate::read::ItemRef;
use crate::shard::Shard;
use crate::{Store, KEY_MAX_BYTES};

/// An incr or decr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arith {
    /// incr (wrapping at 2^64), else decr (flooring at 0).
    pub incr: bool,
    pub delta: u64,
    /// Act only on an item with this CAS (`Exists` otherwise); 0 = any.
    pub cas: u64,
    /// On a miss, create the item holding this value instead of answering `NotFound`.
    pub create: Option<Initial>,
    /// The CAS the changed (or created) item carries, chosen by the client (meta `E`);
    /// 0: the shard's next (see `shard/cas.rs`).
    pub new_cas: u64,
}

impl Arith {
    /// A classic incr (`incr` true) or decr of `delta`: no CAS, nothing created.
    #[inline]
    pub const fn new(incr: bool, delta: u64) -> Arith {
        Arith {
            incr,
            delta,
            cas: 0,
            create: None,
            new_cas: 0,
        }
    }
}

/// The item an incr/decr creates when it finds none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initial {
    pub value: u64,
    /// Expiration time of the new item, as a client sends it.
    pub exptime: i64,
}

/// Outcome of an incr/decr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithResult {
    /// The new value.
    Value(u64),
    /// A miss created the item with this value ([`Arith::create`]; no delta applied).
    Created(u64),
    NotFound,
    /// The item's CAS differs from [`Arith::cas`].
    Exists,
    /// The stored value is not a decimal number that fits in 64 bits.
    NonNumeric,
    /// Growing the value (e.g. "99" → "100"), or creating it, did not fit in memory.
    OutOfMemory,
}

impl Store {
    /// incr/decr of a decimal value as `a` says, then runs `f` with the outcome and, for
    /// `Value` and `Created`, the item under the shard lock (not bumped: an incr is a
    /// write, and moved the item to the head already).
    pub fn arith<R>(
        &self,
        key: &[u8],
        a: Arith,
        f: impl FnOnce(ArithResult, Option<&mut ItemRef<'_>>) -> R,
    ) -> R {
        if key.len() > KEY_MAX_BYTES {
            return f(ArithResult::NotFound, None);
        }
        let now = self.clock.now();
        // The item to create on a miss.
        let mut digits = itoa::Buffer::new();
        let create = a.create.map(|init| {
            let exptime = self.clock.realtime(init.exptime);
            let value = digits.format(init.value).as_bytes();
            (NewItem::new(key, value, 0, exptime), init.value)
        });
        let (hash, mut shard) = self.shard(key);
        match shard.arith(hash, key, now, &a, create) {
            Ok((result, mut idx)) => {
                let created = matches!(result, ArithResult::Created(_));
                if a.new_cas != 0 {
                    let Some(kept) = shard.choose_cas(idx, a.new_cas, now) else {
                        drop(shard);
                        return f(ArithResult::OutOfMemory, None);
                    };
                    idx = kept;
                }
                let place = shard.place(idx);
                shard.lend(key, place, now, created, false, None, |item| {
                    f(result, item)
                })
            }
            Err(refused) => f(refused, None),
        }
    }
}

impl Shard {
    /// [`Store::arith`] under the lock: the outcome and the item's index, or the
    /// refusal. `create` is the item to create on a miss, and its value.
    fn arith(
        &mut self,
        hash: u64,
        key: &[u8],
        now: u32,
        a: &Arith,
        create: Option<(NewItem<'_>, u64)>,
    ) -> Result<(ArithResult, u32), ArithResult> {
        self.advance(now);
        match self.find_live(hash, key, now) {
            None => {
                let Some((new, value)) = create else {
                    return Err(ArithResult::NotFound);
                };
                match self.put(hash, false, None, new, now) {
                    Ok(idx) => Ok((ArithResult::Created(value), idx)),
                    Err(_) => Err(ArithResult::OutOfMemory),
                }
            }
            Some(idx) if a.cas != 0 && a.cas != self.item_cas(idx) => Err(ArithResult::Exists),
            Some(idx) => self
                .arith_at(hash, idx, a.delta, a.incr, now)
                .map(|(value, idx)| (ArithResult::Value(value), idx)),
        }
    }

    /// incr/decr of live item `idx`: the new value and the item's index (a new item
    /// when the digits outgrow the old value).
    fn arith_at(
        &mut self,
        hash: u64,
        idx: u32,
        delta: u64,
        incr: bool,
        now: u32,
    ) -> Result<(u64, u32), ArithResult> {
        let item = self.item(idx);
        let Some(value) = number::parse(item.key().len(), item.value()) else {
            return Err(ArithResult::NonNumeric);
        };
        let value = number::apply(value, delta, incr);
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(value).as_bytes();
        // In place if the digits fit and the record can hold the new CAS (a narrow one
        // cannot take a CAS of 2^48 or more, see `item.rs`).
        if digits.len() <= item.value().len() && item.holds_cas(self.peek_next_cas()) {
            let cas = self.next_cas();
            self.forget_cas(idx);
            let mut item = self.item_mut(idx);
            item.with_value_mut(|v| number::write_in_place(v, digits));
            let held = item.set_cas(cas);
            debug_assert!(held);
            item.set_time(now);
            self.move_to_head(idx);
            // A write of a held key counts as an access (`shard.rs`).
            self.mark_active(idx);
            Ok((value, idx))
        } else {
            // The key is copied out: removing the old item may move records. `put`
            // decides the new record's CAS width; one over the budget is out of memory
            // and leaves the old item alone (no `remove_old`).
            let key = item.key().to_vec();
            let new = NewItem::new(&key, digits, item.flags(), item.exptime());
            self.put(hash, false, Some(idx), new, now)
                .map(|idx| (value, idx))
                .map_err(|_| ArithResult::OutOfMemory)
        }
    }
}
