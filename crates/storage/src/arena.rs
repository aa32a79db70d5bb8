//! One shard's item memory: records packed into size-classed chunk pages, with no
//! allocation per item up to 64 KiB.
//!
//! Owns where records live and their ids; knows nothing of keys' meaning, the table or
//! the LRU order. An item id is a `u32`: the size class in the top [`CLASS_BITS`] bits,
//! the record's index within its class below.
//!
//! Why pages up to 64 KiB records: a record per malloc fragments glibc's heap under
//! churn of mixed sizes (300k keys rewritten with 1–600-byte values held 158 MiB at
//! `-m 64` when records over 512 bytes were single allocations). Pages of one chunk
//! size are reused whole; a record over the largest chunk is its own allocation of at
//! least the mmap threshold, which the server fixes (`io::sys::fix_mmap_threshold`),
//! so it is mapped and unmapped, never a heap hole. Small classes use 16 KiB pages,
//! medium ones 64 KiB ([`chunks_per_page`] says why).
//!
//! What the arena holds beyond the items' footprints is a constant per paged class and
//! shard: the class record (under 64 bytes, for each of the 254 paged classes, used or not)
//! and the last page's bookkeeping; what the heap may hold beyond that is its
//! fragmentation among pages of at most 64 KiB, bounded in practice by the page
//! sizes' reuse (a few MiB, measured by `tests/hostile_store.rs`).
//!
//! Invariants:
//! - each class is dense: its records have indices `0..len`. Removing a record moves the
//!   class's last record into the hole ([`Arena::remove`] says which id moved where, so
//!   the shard can repoint its table and LRU links); ids are stable otherwise;
//! - a paged class keeps its records in pages of [`chunks_per_page`] chunks; only the
//!   last page is partly filled, and only it grows or shrinks. Its unused capacity is at
//!   most 1/32 of the class's chunks (rounded down): it grows by 1/32 of them at a time
//!   (so from 32 full pages on a page is allocated whole) and shrinks to 1/64 unused
//!   when more than 1/32 are, so a steady mix of writes and removals does not
//!   reallocate on every step;
//! - the large class holds one allocation per record (the record and its trailer, at
//!   least [`MMAP_THRESHOLD_BYTES`]), in a list whose capacity stays at most twice its
//!   length (plus a few slots). Beside it, each keeps its header apart, where its
//!   fields (links, state bits, times, CAS) are written in place; the allocation itself
//!   is a `Bytes` that a get may share with a send ([`RecordMut::shared_value`]): its
//!   key and value are written only when the store holds the only reference, else a
//!   copy is made first (`RecordMut::write_large`), so a pending send's bytes never
//!   change. A shared record outlives its removal by as long as the send holds it:
//!   then the store no longer counts it, the connection does (the `pinned_bytes` it
//!   was handed, within its output mark and the connections' shared budget).

#[cfg(doc)]
use super::item::MMAP_THRESHOLD_BYTES;
use super::item::{
    chunk_bytes, chunks_per_page, class_of, large_alloc_bytes, padding, NewItem, Record, RecordMut,
    LARGE_CLASS, NIL, PAGED_CLASSES, SMALL_CLASSES, VIEW_BYTES, WIDE_CAS_MIN, ZEROS_BYTES,
};
use bytes::Bytes;

/// Bits of an id that name the class (8: up to 256 classes).
const CLASS_BITS: u32 = 8;
const INDEX_BITS: u32 = 32 - CLASS_BITS;
const INDEX_MASK: u32 = (1 << INDEX_BITS) - 1;
/// Most records one class can hold (the all-ones id is [`NIL`]).
const CLASS_MAX_RECORDS: usize = INDEX_MASK as usize;
/// Zeroes to pad records with.
static ZEROS: [u8; ZEROS_BYTES] = [0; ZEROS_BYTES];

fn id(class: usize, index: usize) -> u32 {
    ((class as u32) << INDEX_BITS) | index as u32
}

#[inline(always)]
fn split(id: u32) -> (usize, usize) {
    ((id >> INDEX_BITS) as usize, (id & INDEX_MASK) as usize)
}

/// One paged size class: records of exactly `chunk` bytes.
struct PagedClass {
    chunk: usize,
    /// log2 of the chunks in a full page.
    shift: u32,
    /// `(1 << shift) - 1`: a record's slot in its page is `index & slot_mask`.
    slot_mask: usize,
    pages: Vec<Vec<u8>>,
    len: usize,
}

impl PagedClass {
    fn new(chunk: usize) -> PagedClass {
        let shift = chunks_per_page(chunk).ilog2();
        // `locate` narrows slots and chunk sizes to u16.
        debug_assert!(chunk <= usize::from(u16::MAX) && shift <= 16);
        PagedClass {
            chunk,
            shift,
            slot_mask: (1 << shift) - 1,
            pages: Vec::new(),
            len: 0,
        }
    }

    fn page_bytes(&self) -> usize {
        self.chunk << self.shift
    }

    /// Page, byte offset and length of record `index`. Slot and chunk size are
    /// narrowed to u16 (both fit, see `new`), so the compiler sees that the record's
    /// end cannot overflow and checks only that it is within the page.
    #[inline(always)]
    fn locate(&self, index: usize) -> (usize, usize, usize) {
        let page = index >> self.shift;
        let chunk = usize::from(self.chunk as u16);
        let offset = usize::from((index & self.slot_mask) as u16) * chunk;
        (page, offset, chunk)
    }

    /// The bytes of the record at `place` (one of this class's, located by
    /// [`PagedClass::locate`]).
    #[inline(always)]
    fn record_at(&self, place: Place) -> &[u8] {
        let offset = place.offset as usize;
        &self.pages[place.page][offset..offset + usize::from(place.chunk)]
    }

    #[inline(always)]
    fn record_mut_at(&mut self, place: Place) -> &mut [u8] {
        let offset = place.offset as usize;
        &mut self.pages[place.page][offset..offset + usize::from(place.chunk)]
    }

    /// Appends `parts` (a whole record, `chunk` bytes in all); returns its index.
    fn push(&mut self, parts: [&[u8]; 5]) -> usize {
        let page_bytes = self.page_bytes();
        if self.pages.last().is_none_or(|p| p.len() == page_bytes) {
            self.pages.push(Vec::new());
        }
        let chunk = self.chunk;
        // Grow by 1/32 of the class's chunks (at least one), never past a full page: so
        // from 32 full pages on, each page is allocated whole, never moved by a realloc.
        let step = ((self.len + 1) / 32).max(1) * chunk;
        let page = self.pages.last_mut().expect("a page was just ensured");
        if page.len() == page.capacity() {
            page.reserve_exact(step.min(page_bytes - page.len()));
        }
        for part in parts {
            page.extend_from_slice(part);
        }
        debug_assert_eq!(page.len() % chunk, 0);
        self.len += 1;
        self.len - 1
    }

    /// Moves the last record into `index` (unless it is the last) and drops the last
    /// chunk; returns the index that moved, if any.
    fn swap_remove(&mut self, index: usize) -> Option<usize> {
        let last = self.len - 1;
        let chunk = self.chunk;
        if index != last {
            let (to_page, to_off, _) = self.locate(index);
            let (from_page, from_off, _) = self.locate(last);
            if to_page == from_page {
                self.pages[to_page].copy_within(from_off..from_off + chunk, to_off);
            } else {
                let (head, tail) = self.pages.split_at_mut(from_page);
                head[to_page][to_off..to_off + chunk]
                    .copy_from_slice(&tail[0][from_off..from_off + chunk]);
            }
        }
        self.len = last;
        let page = self.pages.last_mut().expect("a record was there");
        page.truncate(page.len() - chunk);
        if page.is_empty() {
            self.pages.pop();
        } else {
            let spare_chunks = (page.capacity() - page.len()) / chunk;
            if spare_chunks > self.len / 32 {
                page.shrink_to(page.len() + self.len / 64 * chunk);
            }
        }
        (index != last).then_some(last)
    }

    /// Bytes held beyond `len` chunks (tests).
    #[cfg(test)]
    fn spare_bytes(&self) -> usize {
        self.pages.iter().map(|p| p.capacity()).sum::<usize>() - self.len * self.chunk
    }
}

/// A record of the large class: its header, apart, and its whole allocation (see the
/// module header).
struct LargeRecord {
    head: [u8; VIEW_BYTES],
    body: Bytes,
}

/// Large records are rare: kept off the inlined lookup path.
#[inline(never)]
fn large_record(large: &[LargeRecord], index: usize) -> Record<'_> {
    let rec = &large[index];
    Record::split(&rec.head, &rec.body)
}

#[inline(never)]
fn large_record_mut(large: &mut [LargeRecord], index: usize) -> RecordMut<'_> {
    let rec = &mut large[index];
    RecordMut::large(&mut rec.head, &mut rec.body)
}

/// Where record `id` lies ([`Arena::place`]): worked out once by a lookup that
/// compares the record's key and then reads and changes it ([`Arena::record_at`],
/// [`Arena::record_mut_at`]), which index the page with it and need not split the id,
/// find its class or multiply out its slot again. Valid while no record is added or
/// removed.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Place {
    pub(crate) id: u32,
    class: usize,
    /// A paged record's page; a large record's index.
    page: usize,
    /// A paged record's byte offset in its page and its length (both fit: see
    /// `PagedClass::locate`, so their sum is not checked for overflow).
    offset: u32,
    chunk: u16,
}

/// A shard's records.
pub(crate) struct Arena {
    paged: Box<[PagedClass; PAGED_CLASSES]>,
    large: Vec<LargeRecord>,
}

/// One class's memory, see [`Arena::class_usage`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ClassUsage {
    pub(crate) pages: usize,
    pub(crate) chunks: usize,
    pub(crate) bytes: usize,
}

/// Where [`Arena::remove`] moved a record to fill the hole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Moved {
    pub(crate) from: u32,
    pub(crate) to: u32,
}

impl Arena {
    pub(crate) fn new() -> Arena {
        Arena {
            paged: Box::new(std::array::from_fn(|c| PagedClass::new(chunk_bytes(c)))),
            large: Vec::new(),
        }
    }

    // A record is reached by id through its place, so one piece of code does the
    // page and slot arithmetic. `place`, `record_at` and `record_mut_at` are on every
    // lookup's path (several times per request): always inlined, the large class out
    // of line; `paged` is an array, so the class test is its bounds check.

    /// Record `id`'s bytes, uninterpreted (for prefetch hints: a large record's header
    /// there is not kept up to date).
    #[inline(always)]
    pub(crate) fn record_bytes(&self, id: u32) -> &[u8] {
        let place = self.place(id);
        match self.paged.get(place.class) {
            Some(paged) => paged.record_at(place),
            None => &self.large[place.page].body,
        }
    }

    /// Where record `id` lies, for [`Arena::record_at`] and [`Arena::record_mut_at`].
    #[inline(always)]
    pub(crate) fn place(&self, id: u32) -> Place {
        let (class, index) = split(id);
        let (page, offset, chunk) = match self.paged.get(class) {
            Some(paged) => paged.locate(index),
            None => (index, 0, 0),
        };
        Place {
            id,
            class,
            page,
            offset: offset as u32,
            chunk: chunk as u16,
        }
    }

    /// The record at `place`.
    #[inline(always)]
    pub(crate) fn record_at(&self, place: Place) -> Record<'_> {
        match self.paged.get(place.class) {
            Some(paged) => Record::new(paged.record_at(place)),
            None => large_record(&self.large, place.page),
        }
    }

    /// The record at `place`, to change.
    #[inline(always)]
    pub(crate) fn record_mut_at(&mut self, place: Place) -> RecordMut<'_> {
        match self.paged.get_mut(place.class) {
            Some(paged) => RecordMut::new(paged.record_mut_at(place)),
            None => large_record_mut(&mut self.large, place.page),
        }
    }

    /// Record `id`, found by its place.
    #[inline(always)]
    pub(crate) fn record(&self, id: u32) -> Record<'_> {
        self.record_at(self.place(id))
    }

    /// Record `id`, to change, found by its place.
    #[inline(always)]
    pub(crate) fn record_mut(&mut self, id: u32) -> RecordMut<'_> {
        self.record_mut_at(self.place(id))
    }

    /// Records held in class `class` (their indices are `0..class_len`).
    pub(crate) fn class_len(&self, class: usize) -> usize {
        if class == LARGE_CLASS {
            self.large.len()
        } else {
            self.paged[class].len
        }
    }

    /// The class of item id `id`.
    #[inline(always)]
    pub(crate) fn class_of_id(id: u32) -> usize {
        split(id).0
    }

    /// The id of record `index` of class `class`.
    pub(crate) fn id_of(class: usize, index: usize) -> u32 {
        id(class, index)
    }

    /// What class `class` holds in memory, for `stats slabs`: its pages (a large
    /// record is its own), the chunks those pages have room for (allocated capacity,
    /// used or not), and the bytes they take.
    pub(crate) fn class_usage(&self, class: usize) -> ClassUsage {
        if class == LARGE_CLASS {
            return ClassUsage {
                pages: self.large.len(),
                chunks: self.large.len(),
                bytes: self.large.iter().map(|r| r.body.len()).sum(),
            };
        }
        let paged = &self.paged[class];
        let bytes: usize = paged.pages.iter().map(|p| p.capacity()).sum();
        ClassUsage {
            pages: paged.pages.len(),
            chunks: bytes / paged.chunk,
            bytes,
        }
    }

    /// Whether a record for `new` has an id left in its class.
    pub(crate) fn has_room(&self, new: &NewItem<'_>) -> bool {
        self.class_len(class_of(new.record_bytes())) < CLASS_MAX_RECORDS
    }

    /// Stores `new` with `cas` and `time`, unlinked; returns its id. The caller checked
    /// [`Arena::has_room`] and set `new.cas_wide` for `cas`, as it did before it
    /// counted `new`'s footprint against the budget (`Shard::put`, `Shard::relocate`, a
    /// restore).
    pub(crate) fn insert(&mut self, new: &NewItem<'_>, cas: u64, time: u32) -> u32 {
        debug_assert_eq!(
            new.cas_wide,
            cas >= WIDE_CAS_MIN,
            "CAS width decided for {cas}"
        );
        let len = new.record_bytes();
        let head = new.header_bytes();
        let class = class_of(len);
        let mut trailer = [0; 4];
        if class == LARGE_CLASS {
            let alloc = large_alloc_bytes(len);
            let header = new.header(cas, time, alloc - len);
            let mut rec = Vec::with_capacity(alloc);
            rec.extend_from_slice(&header[..head]);
            rec.extend_from_slice(new.key);
            rec.extend_from_slice(new.value);
            // The padding may be longer than the zeroes at hand.
            rec.resize(alloc - trailer.len(), 0);
            rec.extend_from_slice(&((alloc - len) as u32).to_le_bytes());
            let head = *rec.first_chunk().expect("a record holds its header");
            // At its exact capacity: `Bytes` takes the allocation over as it is.
            let body = Bytes::from(rec);
            self.large.push(LargeRecord { head, body });
            return id(class, self.large.len() - 1);
        }
        let chunk = chunk_bytes(class);
        let header = new.header(cas, time, chunk - len);
        let [zeros, trailer] = padding(len, chunk, &ZEROS, &mut trailer);
        let index = self.paged[class].push([&header[..head], new.key, new.value, zeros, trailer]);
        debug_assert!(index < CLASS_MAX_RECORDS && id(class, index) != NIL);
        id(class, index)
    }

    /// Whether [`RecordMut::overwrite`] can replace record `id` with `new` (its
    /// `cas_wide` set for the CAS it will have) in place: a small record by any of its
    /// small class, a larger one (medium or large class) by one of exactly its length
    /// (header, key and value), whose padding and trailer are then the same. The
    /// latter spares a rewrite of a large value of the same size its allocation: at
    /// 64 KiB values each one was a fresh mapping, about 16 page faults.
    #[inline(always)]
    pub(crate) fn fits_in_place(&self, id: u32, new: &NewItem<'_>) -> bool {
        let (class, _) = split(id);
        if class < SMALL_CLASSES {
            class_of(new.record_bytes()) == class
        } else {
            self.same_length(id, new)
        }
    }

    #[inline(never)]
    fn same_length(&self, id: u32, new: &NewItem<'_>) -> bool {
        let old = self.record(id);
        old.header_bytes() + old.key().len() + old.value().len() == new.record_bytes()
    }

    /// Drops record `id`; the class's last record may move into its place.
    pub(crate) fn remove(&mut self, id_: u32) -> Option<Moved> {
        let (class, index) = split(id_);
        let from = if class == LARGE_CLASS {
            self.large.swap_remove(index);
            if self.large.capacity() > 2 * self.large.len() + 8 {
                self.large
                    .shrink_to(self.large.len() + self.large.len() / 2);
            }
            let last = self.large.len();
            (index != last).then_some(last)
        } else {
            self.paged[class].swap_remove(index)
        };
        from.map(|from| Moved {
            from: id(class, from),
            to: id_,
        })
    }

    /// Every id held, class by class (tests).
    #[cfg(test)]
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        (0..=LARGE_CLASS).flat_map(move |c| (0..self.class_len(c)).map(move |i| id(c, i)))
    }

    /// Asserts the capacity bound of the module header (tests).
    #[cfg(test)]
    pub(crate) fn check(&self) {
        for class in self.paged.iter() {
            assert!(
                class.spare_bytes() <= class.len / 32 * class.chunk,
                "chunk {}: {} spare bytes for {} records",
                class.chunk,
                class.spare_bytes(),
                class.len
            );
            for page in &class.pages[..class.pages.len().saturating_sub(1)] {
                assert_eq!(page.len(), class.page_bytes());
            }
        }
        assert!(self.large.capacity() <= 2 * self.large.len() + 8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::FIXED_BYTES;

    fn new_item(key: &[u8], value: &[u8]) -> NewItem<'static> {
        let key: &'static [u8] = key.to_vec().leak();
        let value: &'static [u8] = value.to_vec().leak();
        NewItem::new(key, value, 0, 0)
    }

    #[test]
    fn removal_moves_the_last_record_and_keeps_capacity_bounded() {
        let mut arena = Arena::new();
        let mut ids = Vec::new();
        for i in 0..5000u32 {
            let key = format!("key:{i:07}");
            let value = if i % 10 == 0 {
                vec![b'x'; 600]
            } else {
                vec![b'v'; 32]
            };
            let new = new_item(key.as_bytes(), &value);
            ids.push((arena.insert(&new, u64::from(i), 0), key));
            arena.check();
        }
        // Remove every other key, following the moves.
        let mut by_key: std::collections::HashMap<String, u32> =
            ids.iter().map(|(id, k)| (k.clone(), *id)).collect();
        let mut by_id: std::collections::HashMap<u32, String> = ids.into_iter().collect();
        for i in (0..5000u32).step_by(2) {
            let key = format!("key:{i:07}");
            let id = by_key.remove(&key).expect("key held");
            assert_eq!(arena.record(id).key(), key.as_bytes());
            by_id.remove(&id);
            if let Some(Moved { from, to }) = arena.remove(id) {
                assert_eq!(to, id);
                let moved = by_id.remove(&from).expect("moved record was held");
                assert_eq!(arena.record(to).key(), moved.as_bytes());
                by_key.insert(moved.clone(), to);
                by_id.insert(to, moved);
            }
            arena.check();
        }
        for (id, key) in &by_id {
            assert_eq!(arena.record(*id).key(), key.as_bytes());
        }
        let held = by_id;
        let all: Vec<u32> = arena.ids().collect();
        assert_eq!(all.len(), held.len());
    }

    #[test]
    fn values_of_every_kind_of_record_read_back_whole() {
        let mut arena = Arena::new();
        let mut held = Vec::new();
        for len in [
            0, 1, 480, 481, 482, 600, 5000, 65_000, 65_487, 65_488, 70_000, 300_000,
        ] {
            let value: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let key = format!("k{len}");
            let new = new_item(key.as_bytes(), &value);
            let id = arena.insert(&new, 1, 2);
            held.push((id, key, value));
        }
        for (id, key, value) in &held {
            let rec = arena.record(*id);
            assert_eq!(rec.key(), key.as_bytes());
            assert!(rec.value() == &value[..], "{} bytes", value.len());
            assert_eq!(
                rec.footprint(),
                super::super::item::footprint(FIXED_BYTES, key.len(), value.len())
            );
            arena.record_mut(*id).with_value_mut(|v| v.fill(7));
            assert!(arena.record(*id).value().iter().all(|&b| b == 7));
        }
        arena.check();
    }

    /// A large record shared with a send, then changed every way the store changes a
    /// record in place: the shared bytes never change; the header's fields are written
    /// without a copy, the key and value only after one.
    #[test]
    fn a_shared_large_record_is_copied_before_its_value_changes() {
        let mut arena = Arena::new();
        let old: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let id = arena.insert(&new_item(b"big", &old), 1, 2);
        assert!(arena.record_mut(id).shared_value().is_some());
        let mut small = arena.insert(&new_item(b"small", b"v"), 3, 4);
        assert!(arena.record_mut(small).shared_value().is_none());

        let sent = arena.record_mut(id).shared_value().expect("large");
        assert_eq!(&sent.value[..], &old[..]);
        // The record (header, key, value, trailer) and glibc's header, whole pages.
        let record = FIXED_BYTES + 3 + old.len() + 4;
        assert!(sent.pinned_bytes >= record + 16);
        assert!(sent.pinned_bytes <= arena.record(id).footprint());
        // Header writes: in place, the shared bytes kept (no copy).
        let before = arena.record(id).value().as_ptr();
        {
            let mut rec = arena.record_mut(id);
            rec.set_prev(7);
            rec.set_next(8);
            rec.set_time(9);
            rec.set(crate::item::FETCHED, true);
            assert!(rec.set_cas(10));
        }
        let rec = arena.record(id);
        assert_eq!(rec.value().as_ptr(), before, "header writes do not copy");
        assert_eq!(
            (rec.prev(), rec.next(), rec.time(), rec.cas()),
            (7, 8, 9, 10)
        );
        assert!(rec.has(crate::item::FETCHED));
        assert_eq!(rec.value(), &old[..]);

        // An overwrite in place (same length) while shared: copied, the send's intact.
        let new: Vec<u8> = vec![b'n'; old.len()];
        arena
            .record_mut(id)
            .overwrite(&new_item(b"big", &new), 11, 12, (13, 14));
        let rec = arena.record(id);
        assert_ne!(rec.value().as_ptr(), before);
        assert_eq!(rec.value(), &new[..]);
        assert_eq!(
            (rec.prev(), rec.next(), rec.time(), rec.cas()),
            (13, 14, 12, 11)
        );
        assert_eq!(rec.key(), b"big");
        assert_eq!(&sent.value[..], &old[..], "the pending send's bytes");

        // Not shared now: the next overwrite is in place.
        let unshared = rec.value().as_ptr();
        let newer = vec![b'm'; old.len()];
        arena
            .record_mut(id)
            .overwrite(&new_item(b"big", &newer), 15, 16, (NIL, NIL));
        assert_eq!(arena.record(id).value().as_ptr(), unshared, "no copy");
        assert_eq!(arena.record(id).value(), &newer[..]);

        // A value write (incr/decr) while shared: copied.
        let second = arena.record_mut(id).shared_value().expect("large");
        arena
            .record_mut(id)
            .with_value_mut(|v| v[..3].copy_from_slice(b"123"));
        assert_eq!(&arena.record(id).value()[..4], b"123m");
        assert_eq!(&second.value[..], &newer[..]);
        assert_eq!(arena.record(id).cas(), 15, "the header survives the copy");

        // Removed while shared: the send still holds every byte.
        let third = arena.record_mut(id).shared_value().expect("large");
        if let Some(Moved { from, to }) = arena.remove(id) {
            assert_eq!(from, small);
            small = to;
        }
        assert_eq!(&third.value[..3], b"123");
        assert_eq!(third.value.len(), old.len());
        assert_eq!(arena.record(small).value(), b"v");
        drop((sent, second));
        arena.check();
    }
}
