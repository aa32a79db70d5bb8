//! Item layout and what one item costs in memory.
//!
//! Owns the byte layout of one item record (a packed header of variable length, then
//! the key, then the value), [`NewItem`] (an item not yet stored, borrowing its bytes),
//! and the views [`Record`] and [`RecordMut`] over a stored record; `item/class.rs` owns
//! the size classes records are stored in and [`footprint`], the bytes an item counts
//! against the memory limit. Knows nothing of tables, eviction policy or time beyond
//! comparing relative seconds.
//!
//! Record layout (little-endian): a fixed part of [`FIXED_BYTES`] = 21 bytes, `prev`
//! u32, `next` u32, `time` u32, the CAS's low 48 bits, key length u8, the state byte
//! (the five state bits, in bits 5–6 the padding at the end of a small record, and in
//! bit 7 [`LONG_PAD`]) and the format byte; then the optional fields the format byte
//! names, in this order: `exptime` u32 ([`HAS_EXPTIME`], only for an item written or
//! touched with an expiry), client `flags` u32 ([`HAS_FLAGS`], only when non-zero), the
//! CAS's high 16 bits ([`WIDE_CAS`], only for a CAS of 2^48 or more); then the key, the
//! value and the padding. A header is 21 to 31 bytes: 21 for the usual item with no
//! flags and no expiry. The format byte holds the header's length too (its top five
//! bits). A field that is absent reads as 0. Reads are branch-free: each field is
//! loaded from the first [`VIEW_BYTES`] of the record (every chunk holds that many) at
//! an offset the format byte gives, and masked off when absent.
//!
//! Invariants:
//! - a record of at most [`SMALL_MAX_BYTES`] lives in a chunk of its small size class
//!   (2-byte steps from 32 to 256 bytes, then 4-byte steps), the padding (0–3 bytes)
//!   recorded in the state byte, except a record of under 29 bytes (a short key, a
//!   shorter value), whose padding in the smallest chunk is 4 to 10 bytes: it ends in a
//!   trailer as a larger record does;
//! - a larger record ends in a 4-byte trailer: the padding's length, trailer included
//!   (so at least 4), as a u32, with [`LONG_PAD`] set. Up to
//!   [`PAGED_MAX_BYTES`](class::PAGED_MAX_BYTES) with its trailer it lives in a chunk of
//!   a medium size class (512 to 65 520 bytes, each about 1/16 larger than the last,
//!   multiples of 16), paged like the small ones; beyond, it is its own allocation of
//!   at least [`MMAP_THRESHOLD_BYTES`] (the large class), which glibc serves with `mmap`
//!   once the server has fixed its threshold there (`io::sys::fix_mmap_threshold`), so
//!   freeing it returns it to the system and no record is ever a heap hole of its own
//!   size. A large record's header is kept apart from its bytes ([`RecordMut::large`]):
//!   its fields change there, and its bytes, which a send may share
//!   ([`SharedValue`]), are copied before its key or value changes in place while
//!   shared;
//! - the format byte never changes in place: a field is written in place only if the
//!   record has it ([`RecordMut::set_exptime`], [`RecordMut::set_cas`] say when it has
//!   not), so a record that needs one more field is stored anew (`shard/relocate.rs`);
//!   a field may hold 0 (an expiry cleared again), and stays;
//! - `prev`/`next` are item ids of the neighbours in the shard's list, or [`NIL`];
//! - [`footprint`] is a function of the header, key and value lengths (so of key and
//!   value length, the presence of flags and expiry and the CAS width), and it never
//!   under-counts the real cost: the chunk (or the allocation as glibc rounds it), the
//!   share of unused chunk capacity the arena may hold (see `arena.rs`), page
//!   bookkeeping, and the table slot at the table's lowest fill after it grows (see
//!   `shard/table.rs`). [`footprint_bound`] of key and value length alone (the largest
//!   header) is never below it. A large record shared with a send counts in the store
//!   while it holds the item; once removed, in the connection that still sends it
//!   ([`SharedValue::pinned_bytes`], within the connection's output mark).

use bytes::{Bytes, BytesMut};

/// Zero bytes enough for any padding (see [`padding`]).
pub(crate) const ZEROS_BYTES: usize = 4096;

/// "No item" in the list links.
pub(crate) const NIL: u32 = u32::MAX;

/// State bit: read by a get since it was written (memcached's `ITEM_FETCHED`).
pub(crate) const FETCHED: u8 = 1;
/// State bit: marked stale by `md … I` or a stale `ms … C I` (memcached's `ITEM_STALE`).
pub(crate) const STALE: u8 = 1 << 1;
/// State bit: a meta get was already told it won the right to recache (`ITEM_TOKEN_SENT`).
pub(crate) const WIN_SENT: u8 = 1 << 2;
/// State bit: the key was sent base64-encoded (`ms … b`), so meta answers encode it
/// again (`ITEM_KEY_BINARY`).
pub(crate) const KEY_BINARY: u8 = 1 << 3;
/// State bit: read (or written over) since the eviction hand last passed it (memcached's
/// `ITEM_ACTIVE`, SIEVE's visited bit): the hand spares it, clearing the bit.
/// A hit only sets this bit; it never moves the item in the list (see `shard.rs`).
pub(crate) const ACTIVE: u8 = 1 << 4;
const STATE_MASK: u8 = 0x1f;
const PAD_SHIFT: u32 = 5;
const SHORT_PAD_MASK: u8 = 0x3;
/// State byte bit: the padding's length is in the record's last 4 bytes (every record
/// over [`SMALL_MAX_BYTES`]).
pub(crate) const LONG_PAD: u8 = 1 << 7;
/// The trailer of a record with [`LONG_PAD`].
const TRAILER_BYTES: usize = 4;

/// Format bit: the CAS has its high 16 bits after the fixed part (a CAS of 2^48 or more).
pub(crate) const WIDE_CAS: u8 = 1;
/// Format bit: the record has an `exptime` field.
pub(crate) const HAS_EXPTIME: u8 = 1 << 1;
/// Format bit: the record has a client `flags` field.
pub(crate) const HAS_FLAGS: u8 = 1 << 2;
const FORMAT_MASK: u8 = 0x7;
/// The format byte's bits below the header length it also holds.
const FORMAT_BITS: u32 = 3;
/// The smallest CAS that needs [`WIDE_CAS`].
pub(crate) const WIDE_CAS_MIN: u64 = 1 << 48;

const PREV: usize = 0;
const NEXT: usize = 4;
const TIME: usize = 8;
const CAS: usize = 12;
const KEY_LEN: usize = 18;
const BITS: usize = 19;
const FORMAT: usize = 20;
/// Bytes of the fixed part of a header.
pub(crate) const FIXED_BYTES: usize = 21;
/// Bytes of the longest header (every optional field).
pub(crate) const HEADER_MAX_BYTES: usize = FIXED_BYTES + 2 + 4 + 4;
/// Bytes at the start of every record read as a fixed-size array: the longest header
/// and more (the smallest chunk).
pub(crate) const VIEW_BYTES: usize = 32;

/// Header length by format byte.
const HEADER_LEN: [u8; 8] = header_lens();
const fn header_lens() -> [u8; 8] {
    let mut lens = [0u8; 8];
    let mut f = 0;
    while f < 8 {
        lens[f] = (FIXED_BYTES + 2 * (f & 1) + 4 * ((f >> 1) & 1) + 4 * ((f >> 2) & 1)) as u8;
        f += 1;
    }
    lens
}

/// The header length of format byte `format`.
#[inline(always)]
fn header_len(format: u8) -> usize {
    usize::from(HEADER_LEN[usize::from(format & FORMAT_MASK)])
}

/// The format byte of an item with these fields.
#[inline(always)]
fn format_of(flags: u32, exptime: u32, cas_wide: bool) -> u8 {
    u8::from(cas_wide) | (u8::from(exptime != 0) << 1) | (u8::from(flags != 0) << 2)
}

mod class;

pub use class::MMAP_THRESHOLD_BYTES;
pub(crate) use class::{
    chunk_bytes, chunks_per_page, class_of, footprint, footprint_bound, large_alloc_bytes,
    medium_chunks, padding, small_chunk_bytes, LARGE_CLASS, PAGED_CLASSES, SMALL_CLASSES,
    SMALL_MAX_BYTES,
};

/// The record length of an item with a header of `header` bytes.
pub(crate) fn record_bytes(header: usize, key_len: usize, value_len: usize) -> usize {
    header + key_len + value_len
}

/// The header length of an item with these fields.
pub(crate) fn header_bytes(flags: u32, exptime: u32, cas_wide: bool) -> usize {
    header_len(format_of(flags, exptime, cas_wide))
}

/// An item about to be stored: its bytes are borrowed until they are copied into the
/// shard's arena under the lock.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NewItem<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) value: &'a [u8],
    pub(crate) flags: u32,
    /// Relative expiry time; 0 = never (see `Clock::realtime`).
    pub(crate) exptime: u32,
    /// State bits to start with ([`STALE`], [`WIN_SENT`], [`KEY_BINARY`]).
    pub(crate) bits: u8,
    /// Whether the CAS it will be stored with is [`WIDE_CAS_MIN`] or more: set by the
    /// shard, which knows its next CAS (`Shard::put`), before lengths are asked.
    pub(crate) cas_wide: bool,
    /// Whether to give it an `exptime` field even when its expiry is 0 (a record that
    /// had one, stored anew).
    pub(crate) keep_exptime: bool,
}

impl<'a> NewItem<'a> {
    pub(crate) fn new(key: &'a [u8], value: &'a [u8], flags: u32, exptime: u32) -> Self {
        debug_assert!(key.len() <= usize::from(u8::MAX));
        NewItem {
            key,
            value,
            flags,
            exptime,
            bits: 0,
            cas_wide: false,
            keep_exptime: false,
        }
    }

    /// Sets (`on`) or clears state bit `bit`.
    pub(crate) fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.bits |= bit;
        } else {
            self.bits &= !bit;
        }
    }

    #[inline(always)]
    fn format(&self) -> u8 {
        format_of(self.flags, self.exptime, self.cas_wide) | (u8::from(self.keep_exptime) << 1)
    }

    /// Its record will have an exptime field (so it may expire): what the crawler's
    /// schedule watches for (`Shard::take_expiry_mark`).
    #[inline(always)]
    pub(crate) fn has_exptime_field(&self) -> bool {
        self.format() & HAS_EXPTIME != 0
    }

    #[inline(always)]
    pub(crate) fn header_bytes(&self) -> usize {
        header_len(self.format())
    }

    #[inline(always)]
    pub(crate) fn record_bytes(&self) -> usize {
        record_bytes(self.header_bytes(), self.key.len(), self.value.len())
    }

    pub(crate) fn footprint(&self) -> usize {
        footprint(self.header_bytes(), self.key.len(), self.value.len())
    }

    /// The header of this item's record (its first [`NewItem::header_bytes`] bytes),
    /// stored with `cas` and `time`, unlinked, with `pad` bytes of padding after the
    /// value. A `pad` of 4 or more is long (see [`LONG_PAD`]): the caller writes the
    /// trailer. `cas` must be below [`WIDE_CAS_MIN`] unless the item is `cas_wide`.
    #[inline(always)]
    pub(crate) fn header(&self, cas: u64, time: u32, pad: usize) -> [u8; HEADER_MAX_BYTES] {
        debug_assert!(self.cas_wide || cas < WIDE_CAS_MIN);
        let format = self.format();
        let mut h = [0u8; HEADER_MAX_BYTES];
        h[PREV..PREV + 4].copy_from_slice(&NIL.to_le_bytes());
        h[NEXT..NEXT + 4].copy_from_slice(&NIL.to_le_bytes());
        h[TIME..TIME + 4].copy_from_slice(&time.to_le_bytes());
        let cas = cas.to_le_bytes();
        h[CAS..CAS + 6].copy_from_slice(&cas[..6]);
        h[KEY_LEN] = self.key.len() as u8;
        h[BITS] = (self.bits & STATE_MASK)
            | if pad < TRAILER_BYTES {
                (pad as u8) << PAD_SHIFT
            } else {
                LONG_PAD
            };
        // The header's length in the top five bits (21 to 31): where the key starts, read
        // with one shift.
        h[FORMAT] = format | (self.header_bytes() as u8) << FORMAT_BITS;
        let mut at = FIXED_BYTES;
        if format & HAS_EXPTIME != 0 {
            h[at..at + 4].copy_from_slice(&self.exptime.to_le_bytes());
            at += 4;
        }
        if format & HAS_FLAGS != 0 {
            h[at..at + 4].copy_from_slice(&self.flags.to_le_bytes());
            at += 4;
        }
        if format & WIDE_CAS != 0 {
            h[at..at + 2].copy_from_slice(&cas[6..]);
        }
        h
    }
}

/// The `u32` at `at` of a record's view; `at` must leave room for it (the callers'
/// offsets are at most 25, which the compiler sees, so no bounds check is left).
#[inline(always)]
fn u32_in(h: &[u8; VIEW_BYTES], at: usize) -> u32 {
    u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
}

#[inline(always)]
fn put_u32(h: &mut [u8; VIEW_BYTES], at: usize, v: u32) {
    let [a, b, c, d] = v.to_le_bytes();
    (h[at], h[at + 1], h[at + 2], h[at + 3]) = (a, b, c, d);
}

/// All ones if format bit `bit` is set in `format`, else 0.
#[inline(always)]
fn mask_of(format: u8, bit: u8) -> u32 {
    0u32.wrapping_sub(u32::from(format & bit != 0))
}

/// The offset of the `flags` field (where it would be) in a record of `format`: after
/// the `exptime` field, if any.
#[inline(always)]
fn flags_at(format: u8) -> usize {
    FIXED_BYTES + 2 * usize::from(format & HAS_EXPTIME)
}

/// The pad bytes after the value of a record with view `h` and bytes `all`: in the
/// state byte, or (long) in the record's last four bytes.
#[inline(always)]
fn pad_of(h: &[u8; VIEW_BYTES], all: &[u8]) -> usize {
    if h[BITS] & LONG_PAD == 0 {
        usize::from((h[BITS] >> PAD_SHIFT) & SHORT_PAD_MASK)
    } else {
        long_pad(all)
    }
}

#[cold]
#[inline(never)]
fn long_pad(all: &[u8]) -> usize {
    all.last_chunk::<TRAILER_BYTES>()
        .map_or(0, |t| u32::from_le_bytes(*t) as usize)
}

/// Whether two byte strings are equal: lengths first, then short ones (the usual
/// memcached key) as one or two overlapping words, with no call to `memcmp`.
#[inline(always)]
pub(crate) fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n > 16 {
        return a == b;
    }
    if let (Some(a0), Some(b0), Some(a1), Some(b1)) = (
        a.first_chunk::<8>(),
        b.first_chunk::<8>(),
        a.last_chunk::<8>(),
        b.last_chunk::<8>(),
    ) {
        // 8..=16 bytes: the first and the last eight (overlapping when under 16).
        return (u64::from_le_bytes(*a0) ^ u64::from_le_bytes(*b0))
            | (u64::from_le_bytes(*a1) ^ u64::from_le_bytes(*b1))
            == 0;
    }
    if let (Some(a0), Some(b0), Some(a1), Some(b1)) = (
        a.first_chunk::<4>(),
        b.first_chunk::<4>(),
        a.last_chunk::<4>(),
        b.last_chunk::<4>(),
    ) {
        return (u32::from_le_bytes(*a0) ^ u32::from_le_bytes(*b0))
            | (u32::from_le_bytes(*a1) ^ u32::from_le_bytes(*b1))
            == 0;
    }
    // 0..=3 bytes: the first, middle and last cover them all.
    n == 0 || (a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1])
}

/// Copies `src` into `dst` (of the same length); up to 32 bytes as overlapping fixed-size
/// moves, with no call to `memcpy`.
#[inline(always)]
fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    debug_assert_eq!(dst.len(), n);
    if n > 32 || dst.len() != n {
        dst.copy_from_slice(src);
    } else if n >= 16 {
        copy_ends::<16>(dst, src);
    } else if n >= 8 {
        copy_ends::<8>(dst, src);
    } else if n >= 4 {
        copy_ends::<4>(dst, src);
    } else if n > 0 {
        (dst[0], dst[n / 2], dst[n - 1]) = (src[0], src[n / 2], src[n - 1]);
    }
}

/// `copy_bytes` of `N..=2N` bytes: the first and the last `N`.
#[inline(always)]
fn copy_ends<const N: usize>(dst: &mut [u8], src: &[u8]) {
    if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
        *d = *s;
    }
    if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
        *d = *s;
    }
}

/// A stored item, read-only: the first [`VIEW_BYTES`] as a fixed-size array (each
/// header field read is a load, with no bounds check), and the whole record.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record<'a> {
    head: &'a [u8; VIEW_BYTES],
    all: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record in `bytes` (a whole chunk).
    #[inline(always)]
    pub(crate) fn new(bytes: &'a [u8]) -> Record<'a> {
        let head = bytes
            .first_chunk::<VIEW_BYTES>()
            .expect("a record holds its header");
        Record { head, all: bytes }
    }

    /// A large record: its header `head`, kept apart, and its bytes `all`, whose own
    /// first bytes are a header no longer read (see [`RecordMut::large`]).
    #[inline(always)]
    pub(crate) fn split(head: &'a [u8; VIEW_BYTES], all: &'a [u8]) -> Record<'a> {
        Record { head, all }
    }

    #[inline(always)]
    fn format(&self) -> u8 {
        self.head[FORMAT]
    }

    #[inline(always)]
    fn key_len(&self) -> usize {
        usize::from(self.head[KEY_LEN])
    }

    /// The header's length: where the key starts.
    #[inline(always)]
    pub(crate) fn header_bytes(&self) -> usize {
        usize::from(self.format() >> FORMAT_BITS)
    }

    #[inline(always)]
    pub(crate) fn key(&self) -> &'a [u8] {
        let start = self.header_bytes();
        &self.all[start..start + self.key_len()]
    }

    /// Whether this record's key is `key` (lengths compared first).
    #[inline(always)]
    pub(crate) fn key_is(&self, key: &[u8]) -> bool {
        let len = self.key_len();
        let start = self.header_bytes();
        len == key.len()
            && self
                .all
                .get(start..start + len)
                .is_some_and(|k| same_bytes(k, key))
    }

    #[inline(always)]
    pub(crate) fn value(&self) -> &'a [u8] {
        let start = self.header_bytes() + self.key_len();
        &self.all[start..self.all.len() - pad_of(self.head, self.all)]
    }

    #[inline(always)]
    pub(crate) fn prev(&self) -> u32 {
        u32_in(self.head, PREV)
    }

    #[inline(always)]
    pub(crate) fn next(&self) -> u32 {
        u32_in(self.head, NEXT)
    }

    #[inline(always)]
    pub(crate) fn cas(&self) -> u64 {
        let h = self.head;
        // The low 48 bits and the two bytes after them (key length and state byte).
        let low = u64::from_le_bytes([
            h[CAS],
            h[CAS + 1],
            h[CAS + 2],
            h[CAS + 3],
            h[CAS + 4],
            h[CAS + 5],
            h[CAS + 6],
            h[CAS + 7],
        ]) & (WIDE_CAS_MIN - 1);
        // The high bits end the header, when there.
        let at = (self.header_bytes() - 2).min(VIEW_BYTES - 2);
        let high = u64::from(u16::from_le_bytes([h[at], h[at + 1]]))
            & u64::from(mask_of(self.format(), WIDE_CAS));
        low | high << 48
    }

    /// Whether the record can take `cas` in place ([`RecordMut::set_cas`]).
    #[inline(always)]
    pub(crate) fn holds_cas(&self, cas: u64) -> bool {
        cas < WIDE_CAS_MIN || self.format() & WIDE_CAS != 0
    }

    #[inline(always)]
    pub(crate) fn exptime(&self) -> u32 {
        let format = self.format();
        u32_in(self.head, FIXED_BYTES) & mask_of(format, HAS_EXPTIME)
    }

    /// Whether the record has an `exptime` field (set in place by
    /// [`RecordMut::set_exptime`]).
    #[inline(always)]
    pub(crate) fn has_exptime_field(&self) -> bool {
        self.format() & HAS_EXPTIME != 0
    }

    /// Relative time of the last write or access (memcached's `time`; the first read
    /// after a write does not count, see `shard::mark_hit`): meta's "seconds since last
    /// access", and the barrier of a delayed `flush_all`, which kills items with `time`
    /// before its due time.
    #[inline(always)]
    pub(crate) fn time(&self) -> u32 {
        u32_in(self.head, TIME)
    }

    #[inline(always)]
    pub(crate) fn flags(&self) -> u32 {
        let format = self.format();
        u32_in(self.head, flags_at(format)) & mask_of(format, HAS_FLAGS)
    }

    /// Whether state bit `bit` is set.
    #[inline(always)]
    pub(crate) fn has(&self, bit: u8) -> bool {
        self.head[BITS] & bit != 0
    }

    /// The state bits.
    pub(crate) fn bits(&self) -> u8 {
        self.head[BITS] & STATE_MASK
    }

    #[inline(always)]
    pub(crate) fn is_expired(&self, now: u32) -> bool {
        super::clock::is_expired(self.exptime(), now)
    }

    /// What this item counts against the memory limit.
    pub(crate) fn footprint(&self) -> usize {
        footprint(self.header_bytes(), self.key_len(), self.value().len())
    }
}

/// A stored item under its shard's lock, to change in place.
#[derive(Debug)]
pub(crate) struct RecordMut<'a> {
    /// The whole record (a chunk), or a large record's header.
    all: &'a mut [u8],
    /// A large record's bytes, which a send may share: written only when this holds
    /// the only reference, else copied first (see [`RecordMut::large`]).
    body: Option<&'a mut Bytes>,
}

impl<'a> RecordMut<'a> {
    /// The record in `bytes` (a whole chunk).
    #[inline(always)]
    pub(crate) fn new(bytes: &'a mut [u8]) -> RecordMut<'a> {
        debug_assert!(bytes.len() >= VIEW_BYTES, "a record holds its header");
        RecordMut {
            all: bytes,
            body: None,
        }
    }

    /// A large record: its header `head`, which every field write changes in place, and
    /// its bytes `body` (header, key, value, padding, trailer), which a get may share
    /// with a send in flight ([`RecordMut::shared_value`]). The header in `body` is
    /// not read (`head` is); a write of the key or value (an overwrite in place,
    /// incr/decr) copies `body` first unless it is the only reference, so a pending
    /// send never sees its bytes change.
    #[inline(always)]
    pub(crate) fn large(head: &'a mut [u8; VIEW_BYTES], body: &'a mut Bytes) -> RecordMut<'a> {
        debug_assert!(body.len() >= VIEW_BYTES, "a record holds its header");
        RecordMut {
            all: head,
            body: Some(body),
        }
    }

    /// The record to read. The header is `all`'s start either way, so a read of a
    /// header field never looks at `body`.
    #[inline(always)]
    pub(crate) fn get(&self) -> Record<'_> {
        let head = self
            .all
            .first_chunk::<VIEW_BYTES>()
            .expect("a record holds its header");
        let all: &[u8] = match &self.body {
            None => self.all,
            Some(body) => body,
        };
        Record::split(head, all)
    }

    /// The value, shared without a copy, if this is a large record: what the
    /// connection queues for its send, and the bytes that pins until the send is done
    /// (the whole allocation, which outlives the item if it is removed meanwhile).
    ///
    /// Inlined down to the test of `body`, so that a caller whose hit is small keeps this
    /// view in registers (an out-of-line call taking `&self` made the get path's
    /// `ItemRef` live in memory: 25 instructions a get).
    #[inline(always)]
    pub(crate) fn shared_value(&self) -> Option<SharedValue> {
        let body = self.body.as_deref()?;
        Some(share(body, self.get().value()))
    }

    /// Runs `f` on this large record as one whole record (its bytes, the header
    /// copied in), copied first if a send shares them; keeps the header it leaves.
    #[cold]
    #[inline(never)]
    fn write_large<R>(&mut self, f: impl FnOnce(&mut RecordMut<'_>) -> R) -> R {
        let body = self.body.as_deref_mut().expect("a large record");
        let mut bytes = match std::mem::take(body).try_into_mut() {
            Ok(unique) => unique,
            Err(shared) => BytesMut::from(&shared[..]),
        };
        bytes[..VIEW_BYTES].copy_from_slice(self.all);
        let result = f(&mut RecordMut::new(&mut bytes));
        self.all.copy_from_slice(&bytes[..VIEW_BYTES]);
        *body = bytes.freeze();
        result
    }

    #[inline(always)]
    fn head(&mut self) -> &mut [u8; VIEW_BYTES] {
        self.all
            .first_chunk_mut::<VIEW_BYTES>()
            .expect("a record holds its header")
    }

    #[inline(always)]
    pub(crate) fn set_prev(&mut self, id: u32) {
        put_u32(self.head(), PREV, id);
    }

    #[inline(always)]
    pub(crate) fn set_next(&mut self, id: u32) {
        put_u32(self.head(), NEXT, id);
    }

    /// Sets the CAS, if the record can hold it ([`Record::holds_cas`]): false (and
    /// nothing changed) for a CAS of [`WIDE_CAS_MIN`] or more in a narrow record.
    #[inline(always)]
    #[must_use]
    pub(crate) fn set_cas(&mut self, cas: u64) -> bool {
        if !self.get().holds_cas(cas) {
            return false;
        }
        let [a, b, c, d, e, f, g, h] = cas.to_le_bytes();
        let rec = self.get();
        let (wide, at) = (rec.format() & WIDE_CAS != 0, rec.header_bytes() - 2);
        let head = self.head();
        (head[CAS], head[CAS + 1], head[CAS + 2]) = (a, b, c);
        (head[CAS + 3], head[CAS + 4], head[CAS + 5]) = (d, e, f);
        if wide {
            (head[at], head[at + 1]) = (g, h);
        }
        true
    }

    /// Sets the expiry time, if the record has an `exptime` field or `exptime` is 0
    /// (then nothing is written): false (and nothing changed) otherwise.
    #[inline(always)]
    #[must_use]
    pub(crate) fn set_exptime(&mut self, exptime: u32) -> bool {
        let format = self.get().format();
        if format & HAS_EXPTIME != 0 {
            put_u32(self.head(), FIXED_BYTES, exptime);
            true
        } else {
            exptime == 0
        }
    }

    #[inline(always)]
    pub(crate) fn set_time(&mut self, time: u32) {
        put_u32(self.head(), TIME, time);
    }

    /// Sets (`on`) or clears state bit `bit`.
    #[inline(always)]
    pub(crate) fn set(&mut self, bit: u8, on: bool) {
        let head = self.head();
        if on {
            head[BITS] |= bit;
        } else {
            head[BITS] &= !bit;
        }
    }

    /// Overwrites this record with `new`, stored with `cas` and `time` and linked
    /// between `prev` and `next`, in place. The record must be of `new`'s small size
    /// class (its padding, the rest of the chunk, is under 4 bytes), or a medium or
    /// large record of exactly `new`'s length (its padding and trailer then stay), and
    /// already hold `new`'s key (a write over the item under the same key), which is
    /// therefore copied only if the header's length changes.
    #[inline(always)]
    pub(crate) fn overwrite(&mut self, new: &NewItem<'_>, cas: u64, time: u32, links: (u32, u32)) {
        if self.body.is_some() {
            return self.write_large(|rec| rec.overwrite(new, cas, time, links));
        }
        let old_header = self.get().header_bytes();
        let header = new.header_bytes();
        let key_end = header + new.key.len();
        let value_end = key_end + new.value.len();
        let pad = self.all.len() - value_end;
        debug_assert_eq!(self.get().key(), new.key);
        let bytes = new.header(cas, time, pad);
        copy_bytes(&mut self.all[..header], &bytes[..header]);
        if header != old_header {
            copy_bytes(&mut self.all[header..key_end], new.key);
        }
        self.set_prev(links.0);
        self.set_next(links.1);
        if pad >= TRAILER_BYTES {
            copy_bytes(&mut self.all[key_end..value_end], new.value);
            if self.all.len() <= SMALL_MAX_BYTES {
                // A tiny record in the smallest chunk: its padding (under 10 bytes)
                // and trailer written anew.
                let end = self.all.len() - TRAILER_BYTES;
                self.all[value_end..end].fill(0);
                self.all[end..].copy_from_slice(&(pad as u32).to_le_bytes());
            }
            // Else a record over the small sizes, rewritten by one of exactly its
            // length: its padding and trailer stay as they are.
            debug_assert_eq!(self.get().value().len(), new.value.len());
            return;
        }
        debug_assert!(self.all.len() <= SMALL_MAX_BYTES);
        // Zero the padding, the last `pad` (at most 3) bytes: as the last three bytes
        // before the value is copied, when they are all value or padding.
        match self.all.last_chunk_mut::<3>() {
            Some(tail) if new.value.len() + pad >= 3 => *tail = [0; 3],
            _ => self.all[value_end..].fill(0),
        }
        copy_bytes(&mut self.all[key_end..value_end], new.value);
    }

    /// Runs `f` on the value, to change in place (a large record's copied first if a
    /// send shares it).
    pub(crate) fn with_value_mut<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> R {
        if self.body.is_some() {
            return self.write_large(|rec| rec.with_value_mut(f));
        }
        let rec = self.get();
        let start = rec.header_bytes() + rec.key_len();
        let end = self.all.len() - pad_of(rec.head, rec.all);
        f(&mut self.all[start..end])
    }
}

/// `value` (within `body`) shared, see [`RecordMut::shared_value`].
#[cold]
#[inline(never)]
fn share(body: &Bytes, value: &[u8]) -> SharedValue {
    SharedValue {
        value: body.slice_ref(value),
        pinned_bytes: class::large_pinned_bytes(body.len()),
    }
}

/// A large item's value shared with the store (see [`RecordMut::shared_value`]).
#[derive(Clone, Debug)]
pub struct SharedValue {
    /// The value's bytes, with no copy.
    pub value: Bytes,
    /// What holding `value` keeps allocated: its record's whole allocation.
    pub pinned_bytes: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_comparison_and_copy_of_every_short_length() {
        for len in 0..=40usize {
            let a: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37) ^ 0x5a).collect();
            assert!(same_bytes(&a, &a.clone()), "{len}");
            assert!(!same_bytes(&a, &a[..len.saturating_sub(1)]) || len == 0);
            for at in 0..len {
                let mut b = a.clone();
                b[at] ^= 0x80;
                assert!(!same_bytes(&a, &b), "{len} differing at {at}");
                assert!(!same_bytes(&b, &a), "{len} differing at {at}");
            }
            let mut dst = vec![0xee; len];
            copy_bytes(&mut dst, &a);
            assert_eq!(dst, a, "{len}");
        }
    }

    /// `new`'s record as the arena stores it with `cas` and `time`, in a chunk of its
    /// class whose padding holds `garbage`.
    fn stored(new: &NewItem<'_>, cas: u64, time: u32, garbage: u8) -> Vec<u8> {
        let new = NewItem {
            cas_wide: cas >= WIDE_CAS_MIN,
            ..*new
        };
        let len = new.record_bytes();
        let chunk = chunk_bytes(class_of(len));
        let head = new.header(cas, time, chunk - len);
        let mut buf = head[..new.header_bytes()].to_vec();
        buf.extend_from_slice(new.key);
        buf.extend_from_slice(new.value);
        let zeros = vec![0; ZEROS_BYTES];
        let mut trailer = [0; TRAILER_BYTES];
        let [gap, trailer] = padding(len, chunk, &zeros, &mut trailer);
        buf.extend(gap.iter().map(|_| garbage));
        buf.extend_from_slice(trailer);
        assert_eq!(buf.len(), chunk);
        buf
    }

    #[test]
    fn overwrite_in_place_keeps_the_key_and_zeroes_the_padding() {
        // Every key and value length of two records in one class, with and without
        // flags and an expiry, over records whose padding held garbage.
        for key_len in 1..=12usize {
            for len in [0usize, 1, 2, 3, 5, 8, 17, 40, 300] {
                for (old_fields, new_fields) in
                    [((0, 0), (0, 0)), ((1, 2), (0, 0)), ((0, 0), (3, 4))]
                {
                    let key = vec![b'k'; key_len];
                    let old_value = vec![b'o'; len];
                    let old = NewItem::new(&key, &old_value, old_fields.0, old_fields.1);
                    let chunk = chunk_bytes(class_of(old.record_bytes()));
                    for new_len in 0..=len + 12 {
                        let new_value = vec![b'n'; new_len];
                        let new = NewItem::new(&key, &new_value, new_fields.0, new_fields.1);
                        if class_of(new.record_bytes()) != class_of(old.record_bytes()) {
                            continue;
                        }
                        let mut buf = stored(&old, 5, 6, 0xff);
                        let mut rec = RecordMut::new(&mut buf);
                        rec.overwrite(&new, 7, 8, (9, 10));
                        let r = rec.get();
                        assert_eq!(r.key(), &key[..]);
                        assert_eq!(r.value(), &new_value[..]);
                        assert_eq!(
                            (r.flags(), r.exptime(), r.cas(), r.time()),
                            (new_fields.0, new_fields.1, 7, 8)
                        );
                        assert_eq!((r.prev(), r.next()), (9, 10));
                        let mut want = stored(&new, 7, 8, 0);
                        want[PREV..PREV + 4].copy_from_slice(&9u32.to_le_bytes());
                        want[NEXT..NEXT + 4].copy_from_slice(&10u32.to_le_bytes());
                        assert_eq!(want.len(), chunk);
                        assert_eq!(buf, want, "key {key_len}, value {len} → {new_len}");
                    }
                }
            }
        }
    }

    #[test]
    fn header_lengths_by_format() {
        assert_eq!(header_bytes(0, 0, false), 21);
        assert_eq!(header_bytes(1, 0, false), 25);
        assert_eq!(header_bytes(0, 1, false), 25);
        assert_eq!(header_bytes(1, 1, false), 29);
        assert_eq!(header_bytes(0, 0, true), 23);
        assert_eq!(header_bytes(1, 1, true), HEADER_MAX_BYTES);
        for format in 0..8u8 {
            let len = header_len(format);
            assert!(
                len <= HEADER_MAX_BYTES,
                "the format byte's top bits hold it"
            );
            assert_eq!(usize::from((len as u8) << FORMAT_BITS >> FORMAT_BITS), len);
            assert!(flags_at(format) + 4 <= len || format & HAS_FLAGS == 0);
            assert!(flags_at(format) + 4 <= VIEW_BYTES);
        }
    }

    #[test]
    fn every_layout_reads_back_its_fields() {
        let key_long = vec![b'K'; 250];
        let cases = [
            0u64,
            1,
            WIDE_CAS_MIN - 1,
            WIDE_CAS_MIN,
            WIDE_CAS_MIN + 0x1234_5678,
            u64::MAX,
        ];
        for key in [&b"k"[..], b"key:0000001", &key_long] {
            for value_len in (0..=600).chain([601, 4000, 70_000]) {
                let value: Vec<u8> = (0..value_len).map(|i| (i % 251) as u8).collect();
                for (flags, exptime) in [(0, 0), (0xdead_beef, 0), (0, 77), (u32::MAX, u32::MAX)] {
                    for cas in cases {
                        let mut new = NewItem::new(key, &value, flags, exptime);
                        new.set(KEY_BINARY | FETCHED, true);
                        new.cas_wide = cas >= WIDE_CAS_MIN;
                        let len = new.record_bytes();
                        let mut buf = if class_of(len) < LARGE_CLASS {
                            stored(&new, cas, 9, 0)
                        } else {
                            let alloc = large_alloc_bytes(len);
                            let mut buf =
                                new.header(cas, 9, alloc - len)[..new.header_bytes()].to_vec();
                            buf.extend_from_slice(key);
                            buf.extend_from_slice(&value);
                            buf.resize(alloc - 4, 0);
                            buf.extend_from_slice(&((alloc - len) as u32).to_le_bytes());
                            buf
                        };
                        let r = Record::new(&buf);
                        let what = (key.len(), value_len, flags, exptime, cas);
                        assert_eq!(r.key(), key, "{what:?}");
                        assert!(r.key_is(key));
                        assert!(r.value() == &value[..], "{what:?}");
                        assert_eq!(
                            (r.flags(), r.exptime(), r.cas(), r.time()),
                            (flags, exptime, cas, 9),
                            "{what:?}"
                        );
                        assert_eq!((r.prev(), r.next()), (NIL, NIL));
                        assert_eq!(r.bits(), KEY_BINARY | FETCHED);
                        assert_eq!(r.has_exptime_field(), exptime != 0);
                        assert_eq!(
                            r.header_bytes(),
                            header_bytes(flags, exptime, cas >= WIDE_CAS_MIN)
                        );
                        // What it accounts for: at least its chunk or allocation, never
                        // more than the bound of its lengths.
                        assert!(r.footprint() >= buf.len(), "{what:?}");
                        assert_eq!(r.footprint(), new.footprint());
                        assert!(r.footprint() <= footprint_bound(key.len(), value_len));
                        // In place: the fields it has.
                        let mut rec = RecordMut::new(&mut buf);
                        assert_eq!(rec.set_exptime(5), exptime != 0);
                        assert!(rec.set_exptime(0));
                        assert_eq!(rec.set_cas(WIDE_CAS_MIN + 3), cas >= WIDE_CAS_MIN);
                        assert!(rec.set_cas(42));
                        rec.set_time(11);
                        let r = rec.get();
                        assert_eq!((r.flags(), r.exptime(), r.cas()), (flags, 0, 42));
                        assert!(r.value() == &value[..] && r.key() == key);
                        assert_eq!(r.time(), 11);
                    }
                }
            }
        }
    }

    #[test]
    fn record_round_trip() {
        let mut new = NewItem::new(b"key", b"value", 7, 10);
        new.set(KEY_BINARY, true);
        let mut buf = stored(&new, 42, 5, 0);
        let mut rec = RecordMut::new(&mut buf);
        assert_eq!(rec.get().key(), b"key");
        assert_eq!(rec.get().value(), b"value");
        assert_eq!((rec.get().flags(), rec.get().cas()), (7, 42));
        assert_eq!((rec.get().exptime(), rec.get().time()), (10, 5));
        assert_eq!((rec.get().prev(), rec.get().next()), (NIL, NIL));
        assert!(rec.get().has(KEY_BINARY) && !rec.get().has(FETCHED));
        assert!(!rec.get().is_expired(9) && rec.get().is_expired(10));
        rec.set(FETCHED, true);
        rec.set_prev(3);
        rec.set_next(4);
        assert!(rec.set_cas(WIDE_CAS_MIN - 1));
        rec.with_value_mut(|v| v.copy_from_slice(b"VALUE"));
        let r = rec.get();
        assert_eq!((r.prev(), r.next(), r.cas()), (3, 4, WIDE_CAS_MIN - 1));
        assert_eq!(r.value(), b"VALUE");
        assert_eq!(r.bits(), FETCHED | KEY_BINARY);
        assert_eq!(r.footprint(), footprint(29, 3, 5));
    }
}
