//! Reads: `get` (get, gets, gat, gats, meta `mg` and `me`) and `touch`.
//!
//! Owns the read options ([`Read`]: touch first, bump or peek, create on a miss) and
//! [`ItemRef`], the view of a live item that a caller reads, and changes where the
//! protocol lets it, under the shard lock: its exptime and its win mark, never anything
//! that would move it in the list or change what it accounts for (the shard does that,
//! so the list and the byte count stay exact): an expiry its record has no field for is
//! kept aside (the caller sees it) and given after the caller ran, by storing the item
//! anew (`shard/relocate.rs`). Knows nothing of any dialect's syntax or
//! answers: a meta get walks its flags inside the closure, in request order.
//!
//! Invariants (on top of the store's):
//! - an [`ItemRef`] lives only inside the caller's closure, under its shard's lock;
//! - the caller sees the item's metadata as it was before this read's bump (`h`, `l`
//!   show the state before the access); the bump (active, fetched, access time, see
//!   `shard/lru.rs`) comes after the closure unless it was a peek or the caller
//!   skipped it;
//! - an item made by vivify is an ordinary item (flags 0, no expiry, accounted,
//!   evictable), never marked as having a base64 key (memcached's neither).

use crate::arena::Place;
use crate::item::{NewItem, RecordMut, SharedValue, FETCHED, KEY_BINARY, STALE, WIN_SENT};
use crate::shard::{key_hash, mark_hit, Shard};
use crate::{KeyHash, Store, KEY_MAX_BYTES};

/// How a read treats the item it finds (or does not).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Read {
    /// Set the item's expiration time (a client exptime) before the caller sees it:
    /// gat, gats, touch.
    pub touch: Option<i64>,
    /// Count the read after the caller ran (marked active and fetched, access time,
    /// see `shard/lru.rs`); false is a peek (meta `u`, `me`).
    pub bump: bool,
    /// On a miss, create an empty item (flags 0, no expiry) and hand it over, marked
    /// [`ItemRef::created`] (meta `N`).
    pub vivify: bool,
    /// The CAS an item made by vivify carries, chosen by the client (meta `E`); 0: the
    /// shard's next. A hit keeps its CAS.
    pub new_cas: u64,
}

impl Read {
    /// A plain read: get, gets, mg.
    pub const GET: Read = Read {
        touch: None,
        bump: true,
        vivify: false,
        new_cas: 0,
    };

    /// A read that leaves no mark: `me`, `mg … u`.
    pub const PEEK: Read = Read {
        touch: None,
        bump: false,
        vivify: false,
        new_cas: 0,
    };

    /// A read that sets the expiration time first: gat, gats, touch.
    #[inline]
    pub const fn touch(exptime: i64) -> Read {
        Read {
            touch: Some(exptime),
            ..Read::GET
        }
    }
}

/// A live item, borrowed under its shard's lock (see the module header).
#[derive(Debug)]
pub struct ItemRef<'a> {
    /// The key looked up, which the stored key equals.
    key: &'a [u8],
    item: RecordMut<'a>,
    now: u32,
    created: bool,
    /// Whether the store bumps the item after the caller.
    bump: bool,
    /// The CAS a client chose for the item (meta `E`, see `shard/cas.rs`).
    chosen_cas: Option<u64>,
    /// An expiry set that the record has no field for: given after the caller ran.
    pending_exptime: Option<u32>,
}

impl ItemRef<'_> {
    #[inline]
    pub fn key(&self) -> &[u8] {
        self.key
    }

    #[inline]
    pub fn value(&self) -> &[u8] {
        self.item.get().value()
    }

    /// The value shared without a copy, if the item is in the large class (a record
    /// over 64 KiB, see `arena.rs`); `None` for a smaller one, which the caller copies.
    /// It stays intact whatever later happens to the item.
    #[inline(always)]
    pub fn shared_value(&self) -> Option<SharedValue> {
        self.item.shared_value()
    }

    /// Client flags.
    #[inline]
    pub fn flags(&self) -> u32 {
        self.item.get().flags()
    }

    /// The size class the item is stored in, as `stats slabs` numbers it (memcached's
    /// `clsid`): exact, since it follows the record's own header (flags, expiry and CAS
    /// width included).
    pub fn class_id(&self) -> u32 {
        let record = self.item.get();
        let len = crate::item::record_bytes(
            record.header_bytes(),
            record.key().len(),
            record.value().len(),
        );
        crate::classes::class_of_arena(crate::item::class_of(len)) as u32
    }

    #[inline]
    pub fn cas(&self) -> u64 {
        match self.chosen_cas {
            Some(cas) => cas,
            None => self.item.get().cas(),
        }
    }

    /// Relative expiry time (see `Clock::realtime`); 0 = never.
    #[inline]
    pub fn exptime(&self) -> u32 {
        match self.pending_exptime {
            Some(exptime) => exptime,
            None => self.item.get().exptime(),
        }
    }

    /// Sets the relative expiry time (from `Clock::realtime`): in place if the record
    /// has the field for it, else once the caller is done (see the module header).
    #[inline]
    pub fn set_exptime(&mut self, exptime: u32) {
        self.pending_exptime = if self.item.set_exptime(exptime) {
            None
        } else {
            Some(exptime)
        };
    }

    /// The relative time this operation runs at.
    #[inline]
    pub fn now(&self) -> u32 {
        self.now
    }

    /// Relative time of the item's last write or access before this operation.
    #[inline]
    pub fn last_access(&self) -> u32 {
        self.item.get().time()
    }

    /// Whether a get read the item before this operation.
    #[inline]
    pub fn fetched(&self) -> bool {
        self.item.get().has(FETCHED)
    }

    #[inline]
    pub fn is_stale(&self) -> bool {
        self.item.get().has(STALE)
    }

    /// Whether some request was already told it won the right to recache this item.
    #[inline]
    pub fn win_sent(&self) -> bool {
        self.item.get().has(WIN_SENT)
    }

    /// Records that this request won the right to recache the item.
    #[inline]
    pub fn mark_win_sent(&mut self) {
        self.item.set(WIN_SENT, true);
    }

    /// Whether the key was stored base64-encoded (`ms … b`).
    #[inline]
    pub fn key_is_binary(&self) -> bool {
        self.item.get().has(KEY_BINARY)
    }

    /// Whether this operation created the item (vivify on a miss, or an incr/decr's
    /// initial value).
    #[inline]
    pub fn created(&self) -> bool {
        self.created
    }

    /// Leaves the item unbumped: not marked active or fetched, its access time kept
    /// (memcached skips the bump when a meta get fails half-way).
    #[inline]
    pub fn skip_bump(&mut self) {
        self.bump = false;
    }
}

impl Store {
    /// Looks `key` up (creating an empty item on a miss with `read.vivify`) and runs `f`
    /// under the shard lock with the live item, its exptime already set by
    /// `read.touch`; then bumps the item unless `read.bump` is false or `f` called
    /// [`ItemRef::skip_bump`]. On a miss `f` runs with `None`, after the lock is
    /// released.
    #[inline]
    pub fn get<R>(
        &self,
        key: &[u8],
        read: Read,
        f: impl FnOnce(Option<&mut ItemRef<'_>>) -> R,
    ) -> R {
        if key.len() > KEY_MAX_BYTES {
            return f(None);
        }
        self.get_at(key, key_hash(&self.hasher, key), read, f)
    }

    /// [`Store::get`] of `key` with its hash already taken ([`Store::key_hash`], e.g. by
    /// a look-ahead that named its record, [`Store::record_spans_hashed`]), so the
    /// lookup does not hash it again. The hash only says where to look: with the hash
    /// of another key (or another store) the lookup misses, and nothing else changes.
    /// A read that may store (`read.vivify`) or touch hashes the key itself.
    #[inline]
    pub fn get_hashed<R>(
        &self,
        key: &[u8],
        hash: KeyHash,
        read: Read,
        f: impl FnOnce(Option<&mut ItemRef<'_>>) -> R,
    ) -> R {
        if read.vivify || read.touch.is_some() {
            return self.get(key, read, f);
        }
        if key.len() > KEY_MAX_BYTES {
            return f(None);
        }
        self.get_at(key, hash.0, read, f)
    }

    /// [`Store::get`] of `key` in the shard and table place `hash` names; `hash` is the
    /// key's own unless `read` neither vivifies nor touches (see
    /// [`Store::get_hashed`]).
    #[inline(always)]
    fn get_at<R>(
        &self,
        key: &[u8],
        hash: u64,
        read: Read,
        f: impl FnOnce(Option<&mut ItemRef<'_>>) -> R,
    ) -> R {
        let now = self.clock.now();
        let touch = read.touch.map(|exptime| self.clock.realtime(exptime));
        let mut shard = self.shard_at(hash);
        let Some((mut place, created)) = shard.find_to_read(hash, key, now, read.vivify) else {
            drop(shard);
            return f(None);
        };
        if created && read.new_cas != 0 {
            // Its evictions may move the item: its place is worked out again.
            let Some(kept) = shard.choose_cas(place.id, read.new_cas, now) else {
                drop(shard);
                return f(None);
            };
            place = shard.place(kept);
        }
        if !created {
            shard.count_hit(place.id);
        }
        shard.lend(key, place, now, created, read.bump, touch, f)
    }

    /// Sets a live item's expiration time (counted as a read, as memcached's touch
    /// is); false if it is not there.
    pub fn touch(&self, key: &[u8], exptime: i64) -> bool {
        self.get(key, Read::touch(exptime), |hit| hit.is_some())
    }
}

impl Shard {
    /// Runs `f` with live item `place` (under `key`, found or `created` by this
    /// operation at `now`) as an [`ItemRef`], carrying the CAS a client chose for it
    /// and its exptime set to `touch` first (if given); then bumps it if `bump`
    /// (unless `f` skipped the bump), and gives it an expiry that its record has no
    /// field for, by storing it anew (`shard/relocate.rs`). The step a read and an
    /// incr/decr share. (`f` is the caller's own closure, not one wrapped around it
    /// here: a read's, wrapped, was no longer inlined.)
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    pub(crate) fn lend<R>(
        &mut self,
        key: &[u8],
        place: Place,
        now: u32,
        created: bool,
        bump: bool,
        touch: Option<u32>,
        f: impl FnOnce(Option<&mut ItemRef<'_>>) -> R,
    ) -> R {
        let mut item = ItemRef {
            key,
            chosen_cas: self.chosen_cas(place.id),
            item: self.item_mut_at(place),
            now,
            created,
            bump,
            pending_exptime: None,
        };
        if let Some(exptime) = touch {
            item.set_exptime(exptime);
        }
        let result = f(Some(&mut item));
        if item.bump {
            mark_hit(&mut item.item, now);
        }
        if let Some(exptime) = item.pending_exptime {
            // Under the hash of the item's own key (a read's may be another's, see
            // `Store::get_hashed`).
            let _ = self.relocate(self.hash_of(place.id), place.id, Some(exptime), None, now);
        }
        result
    }

    /// The live item under `key` (where it lies: see [`Shard::find_live_at`]) and
    /// whether this read created it: with `vivify`, a miss creates an empty item
    /// (`None` only if it cannot be stored).
    #[inline(always)]
    fn find_to_read(
        &mut self,
        hash: u64,
        key: &[u8],
        now: u32,
        vivify: bool,
    ) -> Option<(Place, bool)> {
        self.advance(now);
        match self.find_live_at(hash, key, now) {
            Some(place) => Some((place, false)),
            None if vivify => self
                .vivify(hash, key, now)
                .map(|idx| (self.place(idx), true)),
            None => None,
        }
    }

    /// Creates the empty item a vivifying read hands over on a miss.
    #[cold]
    fn vivify(&mut self, hash: u64, key: &[u8], now: u32) -> Option<u32> {
        let empty = NewItem::new(key, b"", 0, 0);
        self.put(hash, false, None, empty, now).ok()
    }
}
