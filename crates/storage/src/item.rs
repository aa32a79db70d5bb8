//! Item layout and what one item costs in memory.
//!
//! Owns the byte layout of one item record (a packed header, then the key, then the
//! value), [`NewItem`] (an item not yet stored, borrowing its bytes), and the views
//! [`Record`] and [`RecordMut`] over a stored record; `item/class.rs` owns the size
//! classes records are stored in and [`footprint`], the bytes an item counts against
//! the memory limit. Knows nothing of tables, eviction policy or time beyond comparing
//! relative seconds.
//!
//! Record layout (little-endian): `prev` u32, `next` u32, `cas` u64, `exptime` u32,
//! `time` u32, `flags` u32, key length u8, state byte u8 (the five state bits, in bits
//! 5–6 the padding at the end of a small record, and in bit 7 [`LONG_PAD`]), then the
//! key, the value and the padding: [`HEADER_BYTES`] = 30 bytes of header per item.
//!
//! Invariants:
//! - a record of at most [`SMALL_MAX_BYTES`] lives in a chunk of its small size class
//!   (multiples of 4 bytes, at least 32), the padding (0–3 bytes) recorded in the state
//!   byte;
//! - a larger record ends in a 4-byte trailer: the padding's length, trailer included
//!   (so at least 4), as a u32, with [`LONG_PAD`] set. Up to [`PAGED_MAX_BYTES`](class::PAGED_MAX_BYTES) with
//!   its trailer it lives in a chunk of a medium size class (512 to 65 520 bytes, each
//!   about 1/16 larger than the last, multiples of 16), paged like the small ones;
//!   beyond, it is its own allocation of at least [`MMAP_THRESHOLD_BYTES`] (the large
//!   class), which glibc serves with `mmap` once the server has fixed its threshold
//!   there (`io::sys::fix_mmap_threshold`), so freeing it returns it to the system and
//!   no record is ever a heap hole of its own size;
//! - `prev`/`next` are item ids of the neighbours in the shard's list, or [`NIL`];
//! - [`footprint`] is a function of key and value length only, so a shard can account
//!   for an item from its lengths alone, and it never under-counts the real cost: the
//!   chunk (or the allocation as glibc rounds it), the share of unused chunk capacity
//!   the arena may hold (see `arena.rs`), page bookkeeping, and the table slot with an
//!   allowance for a table that grows by doubling.

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

const PREV: usize = 0;
const NEXT: usize = 4;
const CAS: usize = 8;
const EXPTIME: usize = 16;
const TIME: usize = 20;
const FLAGS: usize = 24;
const KEY_LEN: usize = 28;
const BITS: usize = 29;
/// Bytes of a record before its key.
pub(crate) const HEADER_BYTES: usize = 30;

mod class;

pub use class::MMAP_THRESHOLD_BYTES;
pub(crate) use class::{
    chunk_bytes, class_of, footprint, large_alloc_bytes, medium_chunks, padding, LARGE_CLASS,
    PAGED_CLASSES, PAGE_MAX_BYTES, SMALL_CLASSES, SMALL_MAX_BYTES, SMALL_MIN_BYTES,
    SMALL_STEP_BYTES,
};

/// The record length of an item.
pub(crate) fn record_bytes(key_len: usize, value_len: usize) -> usize {
    HEADER_BYTES + key_len + value_len
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

    pub(crate) fn record_bytes(&self) -> usize {
        record_bytes(self.key.len(), self.value.len())
    }

    pub(crate) fn footprint(&self) -> usize {
        footprint(self.key.len(), self.value.len())
    }

    /// The header of this item's record, stored with `cas` and `time`, unlinked, with
    /// `pad` bytes of padding after the value.
    /// A `pad` of 4 or more is long (see [`LONG_PAD`]): the caller writes the trailer.
    pub(crate) fn header(&self, cas: u64, time: u32, pad: usize) -> [u8; HEADER_BYTES] {
        let mut h = [0u8; HEADER_BYTES];
        h[PREV..PREV + 4].copy_from_slice(&NIL.to_le_bytes());
        h[NEXT..NEXT + 4].copy_from_slice(&NIL.to_le_bytes());
        h[CAS..CAS + 8].copy_from_slice(&cas.to_le_bytes());
        h[EXPTIME..EXPTIME + 4].copy_from_slice(&self.exptime.to_le_bytes());
        h[TIME..TIME + 4].copy_from_slice(&time.to_le_bytes());
        h[FLAGS..FLAGS + 4].copy_from_slice(&self.flags.to_le_bytes());
        h[KEY_LEN] = self.key.len() as u8;
        h[BITS] = (self.bits & STATE_MASK)
            | if pad < TRAILER_BYTES {
                (pad as u8) << PAD_SHIFT
            } else {
                LONG_PAD
            };
        h
    }
}

/// The `u32` at `at` of a header: a fixed-size array, so no bounds check at run time.
#[inline(always)]
fn u32_in(h: &[u8; HEADER_BYTES], at: usize) -> u32 {
    u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]])
}

#[inline(always)]
fn put_u32(h: &mut [u8; HEADER_BYTES], at: usize, v: u32) {
    let [a, b, c, d] = v.to_le_bytes();
    (h[at], h[at + 1], h[at + 2], h[at + 3]) = (a, b, c, d);
}

/// The pad bytes after the value of a record with header `h` and `body`: in the state
/// byte, or (long) in the body's last four bytes.
#[inline(always)]
fn pad_of(h: &[u8; HEADER_BYTES], body: &[u8]) -> usize {
    if h[BITS] & LONG_PAD == 0 {
        usize::from((h[BITS] >> PAD_SHIFT) & SHORT_PAD_MASK)
    } else {
        long_pad(body)
    }
}

#[cold]
#[inline(never)]
fn long_pad(body: &[u8]) -> usize {
    body.last_chunk::<TRAILER_BYTES>()
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

/// A stored item, read-only: its header as a fixed-size array (each field read is a
/// load, with no bounds check), and the key, value and padding after it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record<'a> {
    head: &'a [u8; HEADER_BYTES],
    body: &'a [u8],
}

impl<'a> Record<'a> {
    /// The record in `bytes` (a whole chunk or large allocation).
    #[inline(always)]
    pub(crate) fn new(bytes: &'a [u8]) -> Record<'a> {
        let (head, body) = bytes
            .split_first_chunk::<HEADER_BYTES>()
            .expect("a record holds its header");
        Record { head, body }
    }

    #[inline(always)]
    fn key_len(&self) -> usize {
        usize::from(self.head[KEY_LEN])
    }

    #[inline(always)]
    pub(crate) fn key(&self) -> &'a [u8] {
        &self.body[..self.key_len()]
    }

    /// Whether this record's key is `key` (lengths compared first).
    #[inline(always)]
    pub(crate) fn key_is(&self, key: &[u8]) -> bool {
        let len = self.key_len();
        len == key.len() && self.body.get(..len).is_some_and(|k| same_bytes(k, key))
    }

    #[inline(always)]
    pub(crate) fn value(&self) -> &'a [u8] {
        &self.body[self.key_len()..self.body.len() - pad_of(self.head, self.body)]
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
        u64::from_le_bytes([
            h[CAS],
            h[CAS + 1],
            h[CAS + 2],
            h[CAS + 3],
            h[CAS + 4],
            h[CAS + 5],
            h[CAS + 6],
            h[CAS + 7],
        ])
    }

    #[inline(always)]
    pub(crate) fn exptime(&self) -> u32 {
        u32_in(self.head, EXPTIME)
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
        u32_in(self.head, FLAGS)
    }

    /// Whether state bit `bit` is set.
    #[inline(always)]
    pub(crate) fn has(&self, bit: u8) -> bool {
        self.head[BITS] & bit != 0
    }

    /// The state bits.
    #[cfg(test)]
    pub(crate) fn bits(&self) -> u8 {
        self.head[BITS] & STATE_MASK
    }

    #[inline(always)]
    pub(crate) fn is_expired(&self, now: u32) -> bool {
        super::clock::is_expired(self.exptime(), now)
    }

    /// What this item counts against the memory limit.
    pub(crate) fn footprint(&self) -> usize {
        footprint(self.key_len(), self.value().len())
    }
}

/// A stored item under its shard's lock, to change in place.
#[derive(Debug)]
pub(crate) struct RecordMut<'a> {
    head: &'a mut [u8; HEADER_BYTES],
    body: &'a mut [u8],
}

impl<'a> RecordMut<'a> {
    /// The record in `bytes` (a whole chunk or large allocation).
    #[inline(always)]
    pub(crate) fn new(bytes: &'a mut [u8]) -> RecordMut<'a> {
        let (head, body) = bytes
            .split_first_chunk_mut::<HEADER_BYTES>()
            .expect("a record holds its header");
        RecordMut { head, body }
    }

    #[inline(always)]
    pub(crate) fn get(&self) -> Record<'_> {
        Record {
            head: self.head,
            body: self.body,
        }
    }

    #[inline(always)]
    pub(crate) fn set_prev(&mut self, id: u32) {
        put_u32(self.head, PREV, id);
    }

    #[inline(always)]
    pub(crate) fn set_next(&mut self, id: u32) {
        put_u32(self.head, NEXT, id);
    }

    #[inline(always)]
    pub(crate) fn set_cas(&mut self, cas: u64) {
        let [a, b, c, d, e, f, g, h] = cas.to_le_bytes();
        let head = &mut *self.head;
        (head[CAS], head[CAS + 1], head[CAS + 2], head[CAS + 3]) = (a, b, c, d);
        (head[CAS + 4], head[CAS + 5], head[CAS + 6], head[CAS + 7]) = (e, f, g, h);
    }

    #[inline(always)]
    pub(crate) fn set_exptime(&mut self, exptime: u32) {
        put_u32(self.head, EXPTIME, exptime);
    }

    #[inline(always)]
    pub(crate) fn set_time(&mut self, time: u32) {
        put_u32(self.head, TIME, time);
    }

    /// Sets (`on`) or clears state bit `bit`.
    #[inline(always)]
    pub(crate) fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.head[BITS] |= bit;
        } else {
            self.head[BITS] &= !bit;
        }
    }

    /// Overwrites this record with `new`, stored with `cas` and `time` and linked
    /// between `prev` and `next`, in place. The record must be of `new`'s small size
    /// class (its padding, the rest of the chunk, is under 4 bytes), or a medium or
    /// large record of exactly `new`'s length (its padding and trailer then stay), and
    /// already hold `new`'s key (a write over the item under the same key), which is
    /// therefore not copied again.
    #[inline(always)]
    pub(crate) fn overwrite(&mut self, new: &NewItem<'_>, cas: u64, time: u32, links: (u32, u32)) {
        let value_start = new.key.len();
        let value_end = value_start + new.value.len();
        let pad = self.body.len() - value_end;
        debug_assert_eq!(self.get().key(), new.key);
        *self.head = new.header(cas, time, pad);
        self.set_prev(links.0);
        self.set_next(links.1);
        if pad >= TRAILER_BYTES {
            // A record over the small sizes, rewritten by one of exactly its length:
            // its padding and trailer stay as they are.
            debug_assert_eq!(self.get().value().len(), new.value.len());
            copy_bytes(&mut self.body[value_start..value_end], new.value);
            return;
        }
        debug_assert!(HEADER_BYTES + self.body.len() <= SMALL_MAX_BYTES);
        // Zero the padding, the last `pad` (at most 3) bytes: as the last three bytes
        // before the value is copied, when they are all value or padding.
        match self.body.last_chunk_mut::<3>() {
            Some(tail) if new.value.len() + pad >= 3 => *tail = [0; 3],
            _ => self.body[value_end..].fill(0),
        }
        copy_bytes(&mut self.body[value_start..value_end], new.value);
    }

    pub(crate) fn value_mut(&mut self) -> &mut [u8] {
        let key_len = usize::from(self.head[KEY_LEN]);
        let end = self.body.len() - pad_of(self.head, self.body);
        &mut self.body[key_len..end]
    }
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

    #[test]
    fn overwrite_in_place_keeps_the_key_and_zeroes_the_padding() {
        // Every key and value length of two records in one class, over records whose
        // padding held garbage.
        for key_len in 1..=12usize {
            for len in [0usize, 1, 2, 3, 5, 8, 17, 40] {
                let key = vec![b'k'; key_len];
                let old_value = vec![b'o'; len];
                let old = NewItem::new(&key, &old_value, 1, 2);
                let chunk = chunk_bytes(class_of(old.record_bytes()));
                for new_len in 0..=len + 4 {
                    let new_value = vec![b'n'; new_len];
                    let new = NewItem::new(&key, &new_value, 3, 4);
                    if class_of(new.record_bytes()) != class_of(old.record_bytes()) {
                        continue;
                    }
                    let pad = chunk - old.record_bytes();
                    let mut buf = old.header(5, 6, pad).to_vec();
                    buf.extend_from_slice(&key);
                    buf.extend_from_slice(&old_value);
                    buf.resize(chunk, 0xff);
                    let mut rec = RecordMut::new(&mut buf);
                    rec.overwrite(&new, 7, 8, (9, 10));
                    let r = rec.get();
                    assert_eq!(r.key(), &key[..]);
                    assert_eq!(r.value(), &new_value[..]);
                    assert_eq!((r.flags(), r.exptime(), r.cas(), r.time()), (3, 4, 7, 8));
                    assert_eq!((r.prev(), r.next()), (9, 10));
                    let new_pad = chunk - new.record_bytes();
                    let mut want = new.header(7, 8, new_pad).to_vec();
                    want[PREV..PREV + 4].copy_from_slice(&9u32.to_le_bytes());
                    want[NEXT..NEXT + 4].copy_from_slice(&10u32.to_le_bytes());
                    want.extend_from_slice(&key);
                    want.extend_from_slice(&new_value);
                    want.resize(chunk, 0);
                    assert_eq!(buf, want, "key {key_len}, value {len} → {new_len}");
                }
            }
        }
    }

    #[test]
    fn record_round_trip() {
        let mut new = NewItem::new(b"key", b"value", 7, 10);
        new.set(KEY_BINARY, true);
        let mut buf = new.header(42, 5, 2).to_vec();
        buf.extend_from_slice(b"keyvalue\0\0");
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
        rec.set_cas(u64::MAX);
        rec.value_mut().copy_from_slice(b"VALUE");
        let r = rec.get();
        assert_eq!((r.prev(), r.next(), r.cas()), (3, 4, u64::MAX));
        assert_eq!(r.value(), b"VALUE");
        assert_eq!(r.bits(), FETCHED | KEY_BINARY);
        assert_eq!(r.footprint(), footprint(3, 5));
    }
}
