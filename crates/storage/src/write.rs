//! Writes: set, add, replace, append, prepend and cas, in every dialect.
//!
//! Owns [`WriteMode`] (how a write treats an existing item), the write options
//! [`Write`], [`StoreResult`], and the conditions a write checks under the shard lock:
//! the CAS a `Cas` write (or a guarded append/prepend) compares, the stale store of an
//! invalidating cas, the joined value of an append or prepend. Knows nothing of any
//! dialect: the connection maps each store command onto a mode and options (a binary
//! set with a CAS, or a meta set with `C`, is a [`WriteMode::Cas`] write).
//!
//! Invariants (on top of the store's):
//! - a write hands back the CAS its item carries, read under the lock that wrote it,
//!   and 0 when it stored nothing;
//! - append and prepend keep the item's flags and exptime and drop its state bits (an
//!   appended key is no longer marked base64, as in memcached); with
//!   [`Write::vivify`] one that finds no item stores the value as a set would, with
//!   the vivify exptime (memcached 1.6.45's `ms … MA N<ttl>`);
//! - a stale store (an invalidating cas with a CAS below the item's) keeps the old
//!   item's exptime and win mark, as memcached does;
//! - a refused write changes nothing, except that a set (or any write with
//!   [`Write::refusal_removes`]) refused as too large or out of memory removes the key,
//!   and an add that finds the item marks it active when [`Write::add_is_access`].

use crate::delete::Delete;
use crate::item::{NewItem, KEY_BINARY, STALE, WIN_SENT};
use crate::shard::{key_hash, Shard};
use crate::{item_too_large, KeyHash, Store, KEY_MAX_BYTES};

/// How a write treats an existing item. The store's own word for it: the connection
/// maps each dialect's store command onto one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    /// Store only if the item's CAS value equals [`Write::cas`].
    Cas,
}

/// Outcome of a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreResult {
    Stored,
    /// add on a live key, replace/append/prepend on a missing one; append/prepend
    /// whose joined value would be over the item size limit (memcached's answer).
    NotStored,
    /// cas (or a guarded append/prepend) with a stale CAS value.
    Exists,
    /// cas on a missing key.
    NotFound,
    /// The value is larger than the item size limit.
    TooLarge,
    /// The item cannot fit in its shard's budget even after evicting everything else.
    OutOfMemory,
}

/// A write: its mode, the new item's metadata, and the conditions and marks the
/// dialects add. [`Write::new`] is a classic write (no CAS, no marks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Write {
    pub mode: WriteMode,
    /// Client flags of the new item (append/prepend keep the old item's).
    pub flags: u32,
    /// A client exptime (see `Clock::realtime`; append/prepend keep the old item's).
    pub exptime: i64,
    /// The CAS to compare: a `Cas` write stores only over an item whose CAS equals it
    /// (a missing item is `NotFound`, another CAS `Exists`); an append or prepend with
    /// a non-zero one stores only over an item whose CAS equals it (`Exists`
    /// otherwise; a missing item is `NotStored`). Other modes ignore it.
    pub cas: u64,
    /// `Cas` only: a non-zero CAS below the item's stores anyway, marking the new value
    /// stale (meta `I`).
    pub invalidate: bool,
    /// The key was sent base64-encoded (meta `b`): the item remembers it.
    pub key_binary: bool,
    /// A write refused as too large or out of memory removes the key whatever its mode
    /// (meta set: no stale value left behind); otherwise only a `Set` does.
    pub refusal_removes: bool,
    /// An `Add` that finds the item counts as an access and marks it active (meta
    /// set, as memcached's `do_item_update`); otherwise it leaves the item alone.
    pub add_is_access: bool,
    /// The CAS the stored item carries, chosen by the client (meta `E`); 0: the
    /// shard's next (see `shard/cas.rs`).
    pub new_cas: u64,
    /// An `Append` or `Prepend` that finds no item stores the value as a new item
    /// with this client exptime (meta `N`, memcached 1.6.45) instead of `NotStored`.
    pub vivify: Option<i64>,
}

impl Write {
    /// A classic write in `mode`: flags 0, no expiry, no CAS, no marks.
    #[inline]
    pub const fn new(mode: WriteMode) -> Write {
        Write {
            mode,
            flags: 0,
            exptime: 0,
            cas: 0,
            invalidate: false,
            key_binary: false,
            refusal_removes: false,
            add_is_access: false,
            new_cas: 0,
            vivify: None,
        }
    }

    /// Whether a refused write removes the key (see [`Write::refusal_removes`]).
    #[inline(always)]
    fn removes_on_refusal(&self) -> bool {
        self.mode == WriteMode::Set || self.refusal_removes
    }
}

impl Store {
    /// Writes `value` under `key` as `w` says; returns the outcome and the new item's CAS
    /// (0 unless `Stored`).
    ///
    /// A value over the item size limit is `TooLarge` (and a set of one removes the
    /// key, as memcached does). An append/prepend whose joined value would be over the
    /// limit is `NotStored`, memcached's answer.
    #[inline]
    pub fn write(&self, key: &[u8], value: &[u8], w: &Write) -> (StoreResult, u64) {
        self.write_at(key, key_hash(&self.hasher, key), value, w)
    }

    /// [`Store::write`] of `key` with its hash already taken ([`Store::key_hash`], by
    /// a look-ahead that named its record, [`Store::record_spans_hashed`]), so the
    /// write does not hash it again. Unlike [`Store::get_hashed`]'s, the hash must be
    /// `key`'s own in this store: an item stored under another hash would lie where
    /// no lookup of its key looks.
    #[inline]
    pub fn write_hashed(
        &self,
        key: &[u8],
        hash: KeyHash,
        value: &[u8],
        w: &Write,
    ) -> (StoreResult, u64) {
        debug_assert_eq!(hash.0, key_hash(&self.hasher, key), "the key's own hash");
        self.write_at(key, hash.0, value, w)
    }

    /// [`Store::write`] of `key`, whose hash is `hash`. Out of line, as `write` was
    /// before it had this twin: inlined into the connection, it left `Shard::write`
    /// out of line and cost 9 instructions per request at text p16.
    fn write_at(&self, key: &[u8], hash: u64, value: &[u8], w: &Write) -> (StoreResult, u64) {
        if key.len() > KEY_MAX_BYTES {
            return (StoreResult::NotStored, 0);
        }
        let max_item_bytes = self.config.max_item_bytes;
        if item_too_large(key.len(), value.len(), w.flags, max_item_bytes) {
            if w.removes_on_refusal() {
                self.delete(key, Delete::default());
            }
            return (StoreResult::TooLarge, 0);
        }
        let now = self.clock.now();
        let exptime = match (w.mode, w.vivify) {
            (WriteMode::Append | WriteMode::Prepend, Some(vivify)) => vivify,
            _ => w.exptime,
        };
        let exptime = self.clock.realtime(exptime);
        // Copied into the shard's arena under the lock: no allocation per item.
        let mut new = NewItem::new(key, value, w.flags, exptime);
        new.set(KEY_BINARY, w.key_binary);
        let mut shard = self.shard_at(hash);
        match shard.write(hash, new, w, now, max_item_bytes) {
            Ok(idx) => {
                if w.new_cas != 0 {
                    return match shard.choose_cas(idx, w.new_cas, now) {
                        Some(_) => (StoreResult::Stored, w.new_cas),
                        None => (StoreResult::OutOfMemory, 0),
                    };
                }
                (StoreResult::Stored, shard.last_cas())
            }
            Err(refused) => (refused, 0),
        }
    }
}

impl Shard {
    /// set/add/replace/cas store `new`; append/prepend add `new`'s value to the live
    /// item's, keeping its flags and exptime. `max_item_bytes` bounds the joined value.
    /// The stored item's index, or why nothing was stored.
    #[inline]
    fn write(
        &mut self,
        hash: u64,
        new: NewItem<'_>,
        w: &Write,
        now: u32,
        max_item_bytes: usize,
    ) -> Result<u32, StoreResult> {
        use WriteMode::*;
        self.advance(now);
        let old = self.find_live(hash, new.key, now);
        let joined;
        let new = match (w.mode, old) {
            (Add, Some(idx)) => {
                if w.add_is_access {
                    // memcached counts an add that finds the item as an access
                    // (do_item_update): here, it is marked active.
                    self.mark_active(idx);
                }
                return Err(StoreResult::NotStored);
            }
            (Append | Prepend, None) if w.vivify.is_some() => new,
            (Replace | Append | Prepend, None) => return Err(StoreResult::NotStored),
            (Cas, None) => return Err(StoreResult::NotFound),
            (Cas, Some(idx)) => match self.compare_cas(idx, new, w) {
                Some(new) => new,
                None => return Err(StoreResult::Exists),
            },
            (Append | Prepend, Some(idx)) => {
                if w.cas != 0 && w.cas != self.item_cas(idx) {
                    return Err(StoreResult::Exists);
                }
                match self.joined(idx, w.mode, &new, max_item_bytes) {
                    Some(value) => {
                        joined = value;
                        self.joined_item(idx, new, &joined)
                    }
                    None => return Err(StoreResult::NotStored),
                }
            }
            (Set | Add, _) | (Replace, Some(_)) => new,
        };
        self.put(hash, w.removes_on_refusal(), old, new, now)
    }

    /// A `Cas` write of `new` over live item `idx`: `new` if the CAS matches; with
    /// [`Write::invalidate`], a non-zero CAS below the item's gives `new` marked stale
    /// with the item's exptime and win mark; otherwise `None` (`Exists`).
    #[inline]
    fn compare_cas<'a>(&self, idx: u32, new: NewItem<'a>, w: &Write) -> Option<NewItem<'a>> {
        let current = self.item_cas(idx);
        if current == w.cas {
            Some(new)
        } else if w.invalidate && w.cas != 0 && w.cas < current {
            Some(self.stale_item(idx, new))
        } else {
            None
        }
    }

    /// `new` as a stale store over live item `idx`: marked stale, with the item's
    /// exptime and win mark.
    #[cold]
    fn stale_item<'a>(&self, idx: u32, mut new: NewItem<'a>) -> NewItem<'a> {
        let current = self.item(idx);
        new.exptime = current.exptime();
        new.set(STALE, true);
        new.set(WIN_SENT, current.has(WIN_SENT));
        new
    }

    /// The value an append (or prepend) of `new`'s value to live item `idx` makes;
    /// `None` when it would be over the item size limit (memcached answers NOT_STORED
    /// then). Copied out, since storing it removes the old item first.
    fn joined(
        &self,
        idx: u32,
        mode: WriteMode,
        new: &NewItem<'_>,
        max_item_bytes: usize,
    ) -> Option<Vec<u8>> {
        let old = self.item(idx);
        let (first, second) = if mode == WriteMode::Append {
            (old.value(), new.value)
        } else {
            (new.value, old.value())
        };
        let len = first.len() + second.len();
        if item_too_large(old.key().len(), len, old.flags(), max_item_bytes) {
            return None;
        }
        let mut value = Vec::with_capacity(len);
        value.extend_from_slice(first);
        value.extend_from_slice(second);
        Some(value)
    }

    /// `new` with value `joined` and live item `idx`'s flags and exptime, and no state
    /// bits (an appended key is no longer marked base64, as in memcached).
    fn joined_item<'a>(&self, idx: u32, new: NewItem<'a>, joined: &'a [u8]) -> NewItem<'a> {
        let old = self.item(idx);
        NewItem {
            value: joined,
            flags: old.flags(),
            exptime: old.exptime(),
            bits: 0,
            ..new
        }
    }
}
