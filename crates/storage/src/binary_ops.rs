//! Store operations the binary protocol needs beyond the common API, each atomic under
//! one shard lock: a store that reports the new CAS and checks a CAS in every mode, a
//! delete that checks a CAS, and incr/decr that checks a CAS and creates a missing
//! item from an initial value.
//!
//! Knows nothing of the wire: the binary rule "a non-zero CAS in the request header
//! means compare-and-swap" is the caller's to apply (for set/add/replace it asks for
//! [`WriteMode::Cas`]); here a CAS of 0 means "any" for append/prepend, delete and
//! arithmetic.
//!
//! Invariants: the same as the store's (see `mod.rs`); a CAS handed back is the one
//! the written item carries, read under the lock that wrote it.

use super::item::NewItem;
use super::{ArithResult, Store, StoreResult};
use crate::{item_too_large, WriteMode, KEY_MAX_BYTES};

/// Outcome of [`Store::delete_cas`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteResult {
    Deleted,
    NotFound,
    /// The item's CAS differs from the one given.
    Exists,
}

/// Outcome of [`Store::arith_cas`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The item held a number: its new value and CAS.
    Updated {
        value: u64,
        cas: u64,
    },
    /// The item was missing and was created holding the initial value.
    Created {
        value: u64,
        cas: u64,
    },
    /// Missing, and no initial value was given.
    NotFound,
    NonNumeric,
    /// The item's CAS differs from the one given.
    Exists,
    OutOfMemory,
}

/// An item to create when incr/decr finds none: memcached's binary incr/decr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initial {
    pub value: u64,
    /// Expiration time of the new item, as a client sends it.
    pub exptime: i64,
}

impl Store {
    /// [`Store::store`], which also hands back the new item's CAS (0 unless `Stored`)
    /// and, for append/prepend with a non-zero `cas`, stores only when the item's CAS
    /// equals it (`Exists` when it differs; a missing item is `NotStored`, as
    /// memcached answers).
    pub fn store_cas(
        &self,
        mode: WriteMode,
        key: &[u8],
        flags: u32,
        exptime: i64,
        cas: u64,
        value: &[u8],
    ) -> (StoreResult, u64) {
        if key.len() > KEY_MAX_BYTES {
            return (StoreResult::NotStored, 0);
        }
        let max_item_bytes = self.config.max_item_bytes;
        if item_too_large(key.len(), value.len(), flags, max_item_bytes) {
            if mode == WriteMode::Set {
                self.delete(key);
            }
            return (StoreResult::TooLarge, 0);
        }
        let now = self.clock.now();
        let exptime = self.clock.realtime(exptime);
        let new = NewItem::new(key, value, flags, exptime);
        let (hash, mut shard) = self.shard(key);
        if cas != 0 && matches!(mode, WriteMode::Append | WriteMode::Prepend) {
            match shard.peek_cas(hash, key, now) {
                None => return (StoreResult::NotStored, 0),
                Some(have) if have != cas => return (StoreResult::Exists, 0),
                Some(_) => {}
            }
        }
        let result = shard.store(hash, mode, new, cas, now, max_item_bytes);
        let new_cas = if result == StoreResult::Stored {
            shard.last_cas()
        } else {
            0
        };
        (result, new_cas)
    }

    /// Removes `key` if it is live and, when `cas` is non-zero, its CAS equals `cas`.
    pub fn delete_cas(&self, key: &[u8], cas: u64) -> DeleteResult {
        if key.len() > KEY_MAX_BYTES {
            return DeleteResult::NotFound;
        }
        let now = self.clock.now();
        let (hash, mut shard) = self.shard(key);
        match shard.peek_cas(hash, key, now) {
            None => DeleteResult::NotFound,
            Some(have) if cas != 0 && have != cas => DeleteResult::Exists,
            Some(_) => {
                shard.delete(hash, key, now);
                DeleteResult::Deleted
            }
        }
    }

    /// incr/decr as [`Store::arith`], refused with `Exists` when `cas` is non-zero and
    /// differs from the item's (checked before the value is read as a number). A
    /// missing item is created from `initial` if given (flags 0, the initial value as
    /// decimal text; the delta is not applied), else `NotFound`.
    pub fn arith_cas(
        &self,
        key: &[u8],
        delta: u64,
        incr: bool,
        cas: u64,
        initial: Option<Initial>,
    ) -> ArithOutcome {
        if key.len() > KEY_MAX_BYTES {
            return ArithOutcome::NotFound;
        }
        let now = self.clock.now();
        // The item to create on a miss.
        let mut digits = itoa::Buffer::new();
        let created = initial.map(|init| {
            let exptime = self.clock.realtime(init.exptime);
            let value = digits.format(init.value).as_bytes();
            (NewItem::new(key, value, 0, exptime), init.value)
        });
        let (hash, mut shard) = self.shard(key);
        match shard.peek_cas(hash, key, now) {
            Some(have) if cas != 0 && have != cas => ArithOutcome::Exists,
            Some(_) => match shard.arith(hash, key, delta, incr, now) {
                ArithResult::Value(value) => ArithOutcome::Updated {
                    value,
                    cas: shard.last_cas(),
                },
                ArithResult::NotFound => ArithOutcome::NotFound,
                ArithResult::NonNumeric => ArithOutcome::NonNumeric,
                ArithResult::OutOfMemory => ArithOutcome::OutOfMemory,
            },
            None => {
                let Some((item, value)) = created else {
                    return ArithOutcome::NotFound;
                };
                let max_item_bytes = self.config.max_item_bytes;
                match shard.store(hash, WriteMode::Add, item, 0, now, max_item_bytes) {
                    StoreResult::Stored => ArithOutcome::Created {
                        value,
                        cas: shard.last_cas(),
                    },
                    StoreResult::OutOfMemory => ArithOutcome::OutOfMemory,
                    _ => ArithOutcome::NotFound,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::{check, store, store_with, MB};

    fn cas_of(s: &Store, key: &[u8]) -> Option<u64> {
        s.get(key, None, |hit| hit.map(|i| i.cas))
    }

    fn value_of(s: &Store, key: &[u8]) -> Option<Vec<u8>> {
        s.get(key, None, |hit| hit.map(|i| i.value.to_vec()))
    }

    #[test]
    fn store_hands_back_the_cas_the_item_carries() {
        let s = store();
        let (result, cas) = s.store_cas(WriteMode::Set, b"k", 3, 0, 0, b"v");
        assert_eq!(result, StoreResult::Stored);
        assert_eq!(cas_of(&s, b"k"), Some(cas));
        let (result, again) = s.store_cas(WriteMode::Append, b"k", 0, 0, 0, b"w");
        assert_eq!(result, StoreResult::Stored);
        assert!(again > cas);
        assert_eq!(cas_of(&s, b"k"), Some(again));
        assert_eq!(value_of(&s, b"k").unwrap(), b"vw");
        check(&s);
    }

    #[test]
    fn refused_stores_hand_back_no_cas() {
        let s = store();
        assert_eq!(
            s.store_cas(WriteMode::Replace, b"k", 0, 0, 0, b"v"),
            (StoreResult::NotStored, 0)
        );
        s.store_cas(WriteMode::Set, b"k", 0, 0, 0, b"v");
        assert_eq!(
            s.store_cas(WriteMode::Add, b"k", 0, 0, 0, b"v"),
            (StoreResult::NotStored, 0)
        );
        assert_eq!(
            s.store_cas(WriteMode::Cas, b"k", 0, 0, 1, b"v"),
            (StoreResult::Exists, 0)
        );
    }

    #[test]
    fn append_with_a_cas_compares_it() {
        let s = store();
        let (_, cas) = s.store_cas(WriteMode::Set, b"k", 0, 0, 0, b"a");
        assert_eq!(
            s.store_cas(WriteMode::Append, b"k", 0, 0, cas + 1, b"b").0,
            StoreResult::Exists
        );
        assert_eq!(
            s.store_cas(WriteMode::Prepend, b"missing", 0, 0, cas, b"b")
                .0,
            StoreResult::NotStored
        );
        assert_eq!(
            s.store_cas(WriteMode::Prepend, b"k", 0, 0, cas, b"b").0,
            StoreResult::Stored
        );
        assert_eq!(value_of(&s, b"k").unwrap(), b"ba");
    }

    #[test]
    fn a_too_large_set_removes_the_old_value() {
        let s = store();
        s.store_cas(WriteMode::Set, b"k", 0, 0, 0, b"old");
        let big = vec![0u8; MB];
        assert_eq!(
            s.store_cas(WriteMode::Set, b"k", 0, 0, 0, &big),
            (StoreResult::TooLarge, 0)
        );
        assert_eq!(value_of(&s, b"k"), None);
    }

    #[test]
    fn peeking_a_cas_does_not_count_as_a_fetch() {
        // memcached looks items up with DONT_UPDATE for cas checks: an item only
        // deleted is still "never fetched" when it is evicted.
        let s = store_with(64 * MB, 1);
        let (_, cas) = s.store_cas(WriteMode::Set, b"k", 0, 0, 0, b"v");
        assert_eq!(
            s.store_cas(WriteMode::Append, b"k", 0, 0, cas + 1, b"w").0,
            StoreResult::Exists
        );
        s.flush_all(0);
        assert_eq!(value_of(&s, b"k"), None);
        assert_eq!(s.stats().expired_unfetched, 1);
    }

    #[test]
    fn delete_compares_a_non_zero_cas() {
        let s = store();
        assert_eq!(s.delete_cas(b"k", 0), DeleteResult::NotFound);
        assert_eq!(s.delete_cas(b"k", 5), DeleteResult::NotFound);
        let (_, cas) = s.store_cas(WriteMode::Set, b"k", 0, 0, 0, b"v");
        assert_eq!(s.delete_cas(b"k", cas + 1), DeleteResult::Exists);
        assert_eq!(value_of(&s, b"k").unwrap(), b"v");
        assert_eq!(s.delete_cas(b"k", cas), DeleteResult::Deleted);
        assert_eq!(value_of(&s, b"k"), None);
        s.store_cas(WriteMode::Set, b"k", 0, 0, 0, b"v");
        assert_eq!(s.delete_cas(b"k", 0), DeleteResult::Deleted);
        check(&s);
    }

    #[test]
    fn arith_creates_from_the_initial_value_without_the_delta() {
        let s = store();
        let init = Some(Initial {
            value: 10,
            exptime: 0,
        });
        let ArithOutcome::Created { value: 10, cas } = s.arith_cas(b"n", 5, true, 0, init) else {
            panic!("not created");
        };
        assert_eq!(cas_of(&s, b"n"), Some(cas));
        assert_eq!(value_of(&s, b"n").unwrap(), b"10");
        let ArithOutcome::Updated { value: 15, cas } = s.arith_cas(b"n", 5, true, 0, init) else {
            panic!("not updated");
        };
        assert_eq!(cas_of(&s, b"n"), Some(cas));
        assert_eq!(
            s.arith_cas(b"n", 100, false, 0, None),
            ArithOutcome::Updated {
                value: 0,
                cas: cas_of(&s, b"n").unwrap()
            }
        );
        assert_eq!(value_of(&s, b"n").unwrap(), b"0 ");
        check(&s);
    }

    #[test]
    fn arith_without_initial_misses() {
        let s = store();
        assert_eq!(s.arith_cas(b"n", 1, true, 0, None), ArithOutcome::NotFound);
        assert_eq!(value_of(&s, b"n"), None);
    }

    #[test]
    fn arith_checks_the_cas_before_the_number() {
        let s = store();
        let (_, cas) = s.store_cas(WriteMode::Set, b"t", 0, 0, 0, b"text");
        assert_eq!(
            s.arith_cas(b"t", 1, true, cas + 1, None),
            ArithOutcome::Exists
        );
        assert_eq!(
            s.arith_cas(b"t", 1, true, cas, None),
            ArithOutcome::NonNumeric
        );
        let (_, cas) = s.store_cas(WriteMode::Set, b"n", 7, 0, 0, b"99");
        assert_eq!(
            s.arith_cas(b"n", 1, true, cas + 1, None),
            ArithOutcome::Exists
        );
        let ArithOutcome::Updated { value: 100, .. } = s.arith_cas(b"n", 1, true, cas, None) else {
            panic!("not updated");
        };
        // A grown value keeps the flags.
        assert_eq!(s.get(b"n", None, |i| i.map(|i| i.flags)), Some(7));
        // A CAS is ignored when the item is created.
        let init = Some(Initial {
            value: 3,
            exptime: 0,
        });
        assert!(matches!(
            s.arith_cas(b"m", 1, true, 12345, init),
            ArithOutcome::Created { value: 3, .. }
        ));
    }

    #[test]
    fn a_created_item_expires_as_asked() {
        let s = store();
        let init = Some(Initial {
            value: 1,
            exptime: 2,
        });
        s.arith_cas(b"n", 1, true, 0, init);
        assert!(value_of(&s, b"n").is_some());
        s.clock().advance(3);
        assert_eq!(value_of(&s, b"n"), None);
    }
}
