//! Size classes, and what one item costs in memory.
//!
//! Owns the chunk sizes records are stored in (small: 2-byte steps from
//! [`SMALL_MIN_BYTES`] to [`SMALL_FINE_MAX_BYTES`], then 4-byte steps up to
//! [`SMALL_MAX_BYTES`]; medium: about 1/16 apart up to [`PAGED_MAX_BYTES`]; large: an
//! allocation of its own, at least [`MMAP_THRESHOLD_BYTES`]), the padding after a
//! record in its chunk, and [`footprint`], the bytes an item counts against the memory
//! limit. Knows nothing of a record's fields beyond the lengths of its header, key and
//! value.
//!
//! Invariants: [`footprint`] is a function of header, key and value length, and never
//! under-counts the real cost (see `item.rs`); [`footprint_bound`], of key and value
//! length alone, is [`footprint`] with the longest header, never less; every chunk holds
//! at least [`VIEW_BYTES`](super::VIEW_BYTES).

#[cfg(test)]
use super::ZEROS_BYTES;
use super::{record_bytes, HEADER_MAX_BYTES, TRAILER_BYTES, VIEW_BYTES};

/// Records up to this size live in chunks of a small size class (rewritten in place by
/// a write of the same class).
pub(crate) const SMALL_MAX_BYTES: usize = 512;
/// The smallest chunk (the view every record is read through, see `item.rs`).
pub(crate) const SMALL_MIN_BYTES: usize = 32;
const _: () = assert!(SMALL_MIN_BYTES >= VIEW_BYTES && VIEW_BYTES >= HEADER_MAX_BYTES);
/// Small chunk sizes step by 2 bytes up to this one (where a byte is a larger share of
/// a record), by 4 beyond.
pub(crate) const SMALL_FINE_MAX_BYTES: usize = 256;
/// Small classes of 2-byte steps.
const FINE_CLASSES: usize = (SMALL_FINE_MAX_BYTES - SMALL_MIN_BYTES) / 2 + 1;
/// Number of small size classes; the medium ones come after them.
pub(crate) const SMALL_CLASSES: usize = FINE_CLASSES + (SMALL_MAX_BYTES - SMALL_FINE_MAX_BYTES) / 4;
/// The largest medium chunk (a multiple of 16 that fits a u16, see `arena.rs`);
/// records with their trailer up to this size are paged.
pub(crate) const PAGED_MAX_BYTES: usize = 65_520;
/// Number of medium size classes.
const MEDIUM_CLASSES: usize = medium_chunks().1;
/// Number of paged (small and medium) classes; the large class comes after them.
pub(crate) const PAGED_CLASSES: usize = SMALL_CLASSES + MEDIUM_CLASSES;
/// The class of records of more than [`PAGED_MAX_BYTES`] with their trailer.
pub(crate) const LARGE_CLASS: usize = PAGED_CLASSES;
/// The medium chunk sizes, ascending.
static MEDIUM_CHUNKS: [u32; MEDIUM_CLASSES] = {
    let (all, n) = medium_chunks();
    let mut out = [0; MEDIUM_CLASSES];
    let mut i = 0;
    while i < n {
        out[i] = all[i];
        i += 1;
    }
    out
};

/// Medium chunk sizes: from [`SMALL_MAX_BYTES`] + 16 up, each 1/16 more than the last
/// rounded up to 16 bytes, the last [`PAGED_MAX_BYTES`]; and how many there are.
pub(crate) const fn medium_chunks() -> ([u32; 128], usize) {
    let mut out = [0u32; 128];
    let mut n = 0;
    let mut chunk = SMALL_MAX_BYTES;
    while chunk < PAGED_MAX_BYTES {
        chunk = (chunk + chunk / 16).next_multiple_of(16);
        if chunk > PAGED_MAX_BYTES {
            chunk = PAGED_MAX_BYTES;
        }
        out[n] = chunk as u32;
        n += 1;
    }
    (out, n)
}

/// Requests at or above this are served by `mmap`, once the server has fixed glibc's
/// threshold here: above the largest page a paged class allocates ([`PAGE_MAX_BYTES`], see
/// `arena.rs`), so pages stay in the heap and every large record is mapped.
pub const MMAP_THRESHOLD_BYTES: usize = 68 * 1024;

/// The size class of a record of `len` bytes.
#[inline]
pub(crate) fn class_of(len: usize) -> usize {
    if len <= SMALL_FINE_MAX_BYTES {
        (len.max(SMALL_MIN_BYTES) - SMALL_MIN_BYTES).div_ceil(2)
    } else if len <= SMALL_MAX_BYTES {
        FINE_CLASSES - 1 + (len - SMALL_FINE_MAX_BYTES).div_ceil(4)
    } else {
        medium_class_of(len + TRAILER_BYTES)
    }
}

/// The chunk size of small class `class`.
pub(crate) const fn small_chunk_bytes(class: usize) -> usize {
    if class < FINE_CLASSES {
        SMALL_MIN_BYTES + class * 2
    } else {
        SMALL_FINE_MAX_BYTES + (class + 1 - FINE_CLASSES) * 4
    }
}

#[inline(never)]
fn medium_class_of(len: usize) -> usize {
    SMALL_CLASSES + MEDIUM_CHUNKS.partition_point(|&c| (c as usize) < len)
}

/// The chunk size of paged class `class`.
pub(crate) fn chunk_bytes(class: usize) -> usize {
    debug_assert!(class < PAGED_CLASSES);
    if class < SMALL_CLASSES {
        small_chunk_bytes(class)
    } else {
        MEDIUM_CHUNKS[class - SMALL_CLASSES] as usize
    }
}

/// The allocation of a large record of `len` bytes: with its trailer, and at least the
/// mmap threshold.
pub(crate) fn large_alloc_bytes(len: usize) -> usize {
    (len + TRAILER_BYTES).max(MMAP_THRESHOLD_BYTES)
}

/// The padding after a record of `len` bytes in `alloc` bytes (a chunk or a large
/// allocation): zeroes, then the trailer if it is long (4 bytes or more: every record
/// over the small sizes, and a record of under 29 bytes in the smallest chunk). `zeros`
/// must hold enough zeroes (the largest gap, about 4 KiB).
pub(crate) fn padding<'z>(
    len: usize,
    alloc: usize,
    zeros: &'z [u8],
    trailer: &'z mut [u8; TRAILER_BYTES],
) -> [&'z [u8]; 2] {
    let pad = alloc - len;
    if pad < TRAILER_BYTES {
        [&zeros[..pad], &[]]
    } else {
        *trailer = (pad as u32).to_le_bytes();
        [&zeros[..pad - TRAILER_BYTES], &trailer[..]]
    }
}

/// One table slot: a 64-byte bucket holds 12 ids, at least 7/10 full once past its first
/// few buckets (it grows by 5/4 at 7/8, see `shard/table.rs`): 64 / (12 × 0.7) = 7.6,
/// rounded up.
const TABLE_SLOT_BYTES: usize = 8;

/// What one page costs beyond its chunks: its `Vec` header (24 bytes, twice that while
/// the page list has spare capacity) and a malloc header and rounding (up to 24 bytes).
const PAGE_OVERHEAD_BYTES: usize = 72;

/// Page bookkeeping per small item, at least: a small class's page holds at least 32
/// chunks, so at most 72 / 32 bytes per chunk (rounded up by [`page_share_bytes`]).
const PAGE_SHARE_BYTES: usize = 2;

/// A page's share per chunk of class `chunk` bytes (see [`chunks_per_page`]).
fn page_share_bytes(chunk: usize) -> usize {
    PAGE_OVERHEAD_BYTES
        .div_ceil(chunks_per_page(chunk))
        .max(PAGE_SHARE_BYTES)
}

/// A full page of a medium class is at most this big.
pub(crate) const PAGE_MAX_BYTES: usize = 64 * 1024;

/// A full page of a small class is at most this big. Smaller than a medium class's page
/// so that a class reaches the size at which the arena allocates its pages whole (32
/// full pages, see `arena.rs`) at 512 KiB rather than 2 MiB: below it a class's last
/// page grows by `realloc`, and the blocks that moves leave behind are heap holes no
/// whole page fits in. With 64 KiB pages grown by 1/64 (whole from 4 MiB) those holes
/// were 2.5 B per item at 1,000,000 items of 64-byte records in 8 shards (the heap's
/// growth beyond the pages; 0.6 B with every page allocated whole, 0.5 B now).
pub(crate) const SMALL_PAGE_BYTES: usize = 16 * 1024;

/// Chunks in a full page of class `chunk` bytes: the largest power of two of them that
/// fits in its page ([`SMALL_PAGE_BYTES`] for a small class, [`PAGE_MAX_BYTES`] for a
/// medium one), at least one.
pub(crate) const fn chunks_per_page(chunk: usize) -> usize {
    let page = if chunk <= SMALL_MAX_BYTES {
        SMALL_PAGE_BYTES
    } else {
        PAGE_MAX_BYTES
    };
    let fit = page / chunk;
    1 << (if fit > 1 { fit } else { 1 }).ilog2()
}

/// A large item's own slot in its class's list (`arena.rs`, `LargeRecord`: its
/// header, 32 bytes, and the `Bytes` of its record, 32): 64 bytes, and the arena keeps
/// that list's capacity at most twice its length.
const LARGE_SLOT_BYTES: usize = 128;

/// The `bytes` crate's reference count of a large record, allocated the first time a
/// get shares it (three words, a 32-byte malloc chunk); counted from the start.
const LARGE_SHARED_BYTES: usize = 32;

/// What a large record of `alloc` bytes (its whole allocation, trailer included) keeps
/// allocated, wherever it is held (the store, or a send that shares it): its mapping
/// and its reference count.
pub(crate) fn large_pinned_bytes(alloc: usize) -> usize {
    malloc_chunk_bytes(alloc) + LARGE_SHARED_BYTES
}

/// The chunk glibc malloc hands out for a request of `len` bytes: an 8-byte size header,
/// 16-byte alignment, 32 bytes at least; whole pages (plus a 16-byte header) for large
/// requests.
pub(crate) fn malloc_chunk_bytes(len: usize) -> usize {
    if len == 0 {
        0
    } else if len + 8 >= MMAP_THRESHOLD_BYTES {
        (len + 16).next_multiple_of(4096)
    } else {
        (len + 8).next_multiple_of(16).max(32)
    }
}

/// Bytes an item with a header of `header` bytes (see `item.rs`), this key and value
/// counts against the memory limit.
///
/// Paged (small or medium): its chunk, the unused chunk capacity the arena may hold (at
/// most 1/32 of the class's chunks, see `arena.rs`), page bookkeeping, the table slot.
/// Large: its allocation (mapped, whole pages) and reference count, its slot in the
/// large list, the table slot.
pub(crate) fn footprint(header: usize, key_len: usize, value_len: usize) -> usize {
    let len = record_bytes(header, key_len, value_len);
    let class = class_of(len);
    if class < PAGED_CLASSES {
        let chunk = chunk_bytes(class);
        chunk + chunk.div_ceil(32) + page_share_bytes(chunk) + TABLE_SLOT_BYTES
    } else {
        large_pinned_bytes(large_alloc_bytes(len)) + LARGE_SLOT_BYTES + TABLE_SLOT_BYTES
    }
}

/// An upper bound of [`footprint`] from key and value length alone: the footprint with
/// the longest header (flags, an expiry and a wide CAS), for callers that know no more.
pub(crate) fn footprint_bound(key_len: usize, value_len: usize) -> usize {
    footprint(HEADER_MAX_BYTES, key_len, value_len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes() {
        assert_eq!(SMALL_CLASSES, 177);
        assert_eq!(class_of(22), 0);
        assert_eq!(class_of(32), 0);
        assert_eq!(class_of(33), 1);
        assert_eq!(class_of(34), 1);
        assert_eq!(chunk_bytes(class_of(63)), 64);
        assert_eq!(chunk_bytes(class_of(64)), 64);
        assert_eq!(chunk_bytes(class_of(65)), 66);
        assert_eq!(chunk_bytes(class_of(256)), 256);
        assert_eq!(chunk_bytes(class_of(257)), 260);
        assert_eq!(chunk_bytes(class_of(512)), 512);
        assert_eq!(class_of(512), SMALL_CLASSES - 1);
        assert_eq!(class_of(513), SMALL_CLASSES);
        assert_eq!(chunk_bytes(class_of(513)), 544);
        assert_eq!(chunk_bytes(class_of(PAGED_MAX_BYTES - 4)), PAGED_MAX_BYTES);
        assert_eq!(class_of(PAGED_MAX_BYTES - 3), LARGE_CLASS);
        const { assert!(PAGED_CLASSES < 255, "class ids fit the id's class bits") };
        for len in super::super::FIXED_BYTES + 1..=SMALL_MAX_BYTES {
            let chunk = chunk_bytes(class_of(len));
            let step = if len <= SMALL_FINE_MAX_BYTES { 2 } else { 4 };
            assert!(chunk >= len.max(SMALL_MIN_BYTES), "{len}");
            assert!(chunk - len.max(SMALL_MIN_BYTES) < step, "{len}");
            assert!(chunk >= VIEW_BYTES);
        }
        for class in 1..SMALL_CLASSES {
            assert!(chunk_bytes(class) > chunk_bytes(class - 1));
            assert_eq!(class_of(chunk_bytes(class)), class);
        }
        // Medium: room for the trailer, at most 1/16 (and 16 bytes) wasted.
        let zeros = [0u8; ZEROS_BYTES];
        for len in SMALL_MAX_BYTES + 1..=PAGED_MAX_BYTES - 4 {
            let chunk = chunk_bytes(class_of(len));
            assert!(chunk >= len + 4, "{len}");
            assert!(chunk - len - 4 <= len / 16 + 16, "{len} in {chunk}");
            assert!(chunk - len - 4 <= zeros.len(), "{len} in {chunk}");
            assert!(chunk <= usize::from(u16::MAX) && chunk.is_multiple_of(16));
        }
        for class in SMALL_CLASSES + 1..PAGED_CLASSES {
            assert!(chunk_bytes(class) > chunk_bytes(class - 1));
        }
    }

    #[test]
    fn footprint_of_a_small_item() {
        // 21 + 11 + 32 = 64 bytes → a 64-byte chunk; 2 capacity, 2 pages, 8 table.
        assert_eq!(footprint(21, 11, 32), 64 + 2 + 2 + 8);
        // With flags and an expiry, 72 bytes.
        assert_eq!(footprint(29, 11, 32), 72 + 3 + 2 + 8);
        // The bound: a 31-byte header, 74 bytes.
        assert_eq!(footprint_bound(11, 32), 74 + 3 + 2 + 8);
        // 21 + 1 + 5000 + 4 → a 5152-byte chunk (paged 8 to a page); 161 capacity,
        // 9 pages, 8 table.
        assert_eq!(chunk_bytes(class_of(5022)), 5152);
        assert_eq!(footprint(21, 1, 5000), 5152 + 161 + 9 + 8);
        // 21 + 1 + 100 000 + 4 → mapped, 102 400 bytes (25 pages); 32 reference
        // count, 128 slot, 8 table.
        assert_eq!(footprint(21, 1, 100_000), 102_400 + 32 + 128 + 8);
        // Just over the paged classes: a whole mapping at the threshold.
        let len = PAGED_MAX_BYTES - 3;
        assert_eq!(
            footprint(21, 1, len - 22),
            MMAP_THRESHOLD_BYTES + 4096 + 32 + 128 + 8
        );
        // Monotonic in the record's length, so the bound is one.
        let mut last = 0;
        for len in 22..70_000 {
            let f = footprint(0, 0, len);
            assert!(f >= last, "{len}");
            last = f;
        }
    }

    #[test]
    fn malloc_rounding() {
        assert_eq!(malloc_chunk_bytes(0), 0);
        assert_eq!(malloc_chunk_bytes(1), 32);
        assert_eq!(malloc_chunk_bytes(24), 32);
        assert_eq!(malloc_chunk_bytes(25), 48);
        assert_eq!(malloc_chunk_bytes(40), 48);
        assert_eq!(malloc_chunk_bytes(41), 64);
        assert_eq!(malloc_chunk_bytes(1 << 20), (1 << 20) + 4096);
        for len in 1..5000 {
            let chunk = malloc_chunk_bytes(len);
            assert!(
                chunk >= len + 8 && chunk.is_multiple_of(16),
                "{len} → {chunk}"
            );
        }
    }
}
