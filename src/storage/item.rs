//! Item layout and what one item costs in memory.
//!
//! Owns the [`Item`] record a shard keeps in its slab, and [`footprint`], the bytes an
//! item counts against the memory limit. Knows nothing of tables, LRU policy or time
//! beyond comparing relative seconds.
//!
//! Invariants:
//! - one heap allocation per item, holding the key and then the value;
//! - `key_len` is the length of the key prefix of `data` (keys are at most 255 bytes);
//! - [`footprint`] is a function of key and value length only, so a shard can account
//!   for an item from its lengths alone, and it never under-counts the real cost: the
//!   allocation as glibc rounds it, the slab entry, the table slot, and an allowance for
//!   slab and table capacity that grows by doubling;
//! - `prev`/`next` are slab indices of the neighbours in the shard's LRU list, or [`NIL`];
//! - the state bits ([`FETCHED`], [`STALE`], [`WIN_SENT`], [`KEY_BINARY`]) live in one
//!   byte that fits the record's padding: meta commands cost no byte per item.

use std::mem::size_of;

/// "No item" in the LRU links.
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

/// One cached item, as stored in a shard's slab.
///
/// Fields are listed largest first; the compiler packs them into 48 bytes
/// (see `slab_entry_is_48_bytes`).
#[derive(Debug)]
pub(crate) struct Item {
    /// The key, then the value: the item's only heap allocation.
    data: Box<[u8]>,
    pub(crate) cas: u64,
    /// Relative expiry time; 0 = never (see `Clock::realtime`).
    pub(crate) exptime: u32,
    pub(crate) flags: u32,
    /// Relative time of the last write or access (memcached's `time`; the first read
    /// after a write does not count, see `Shard::hit`): meta's "seconds since last
    /// access", and the barrier of a delayed `flush_all`, which kills items
    /// with `time` before its due time. An access never moves an item past that barrier:
    /// accesses before the due time leave `time` before it, and once it is due an item
    /// written before it is dead before it can be accessed.
    pub(crate) time: u32,
    /// Neighbour towards the LRU head (more recent), or [`NIL`].
    pub(crate) prev: u32,
    /// Neighbour towards the LRU tail (less recent), or [`NIL`].
    pub(crate) next: u32,
    key_len: u8,
    /// [`FETCHED`], [`STALE`], [`WIN_SENT`], [`KEY_BINARY`].
    bits: u8,
}

impl Item {
    /// An unlinked item over `data` (from [`pack`]) whose first `key_len` bytes are the key.
    pub(crate) fn new(data: Box<[u8]>, key_len: usize, flags: u32, exptime: u32) -> Item {
        debug_assert!(key_len <= data.len() && key_len <= usize::from(u8::MAX));
        Item {
            data,
            cas: 0,
            exptime,
            flags,
            time: 0,
            prev: NIL,
            next: NIL,
            key_len: key_len as u8,
            bits: 0,
        }
    }

    /// Whether state bit `bit` is set.
    pub(crate) fn has(&self, bit: u8) -> bool {
        self.bits & bit != 0
    }

    /// Sets (`on`) or clears state bit `bit`.
    pub(crate) fn set(&mut self, bit: u8, on: bool) {
        if on {
            self.bits |= bit;
        } else {
            self.bits &= !bit;
        }
    }

    pub(crate) fn key(&self) -> &[u8] {
        &self.data[..usize::from(self.key_len)]
    }

    pub(crate) fn value(&self) -> &[u8] {
        &self.data[usize::from(self.key_len)..]
    }

    pub(crate) fn value_mut(&mut self) -> &mut [u8] {
        &mut self.data[usize::from(self.key_len)..]
    }

    /// What this item counts against the memory limit.
    pub(crate) fn footprint(&self) -> usize {
        footprint(
            usize::from(self.key_len),
            self.data.len() - usize::from(self.key_len),
        )
    }

    pub(crate) fn is_expired(&self, now: u32) -> bool {
        super::clock::is_expired(self.exptime, now)
    }
}

/// The one allocation of an item: `parts` concatenated (the key first), sized exactly.
pub(crate) fn pack(parts: &[&[u8]]) -> Box<[u8]> {
    let len = parts.iter().map(|p| p.len()).sum();
    let mut data = Vec::with_capacity(len);
    for part in parts {
        data.extend_from_slice(part);
    }
    data.into_boxed_slice()
}

/// The shape of `slab::Entry<Item>` (private to the slab crate): what one slab slot costs.
#[allow(dead_code)]
enum SlabEntryShape {
    Vacant(usize),
    Occupied(Item),
}

/// Bytes of one slab slot.
pub(crate) const SLAB_ENTRY_BYTES: usize = size_of::<SlabEntryShape>();

/// Slab slots stay allocated when the item count falls (the slab reuses them but does
/// not shrink): allow a quarter slot per item for that.
const SLAB_SLACK_BYTES: usize = SLAB_ENTRY_BYTES / 4;

/// One table slot: a `u32` slab index and a control byte, at most 7/8 full, and right
/// after the table doubles only half that: (4 + 1) × 8/7 × 2 = 11.4, rounded up.
const TABLE_SLOT_BYTES: usize = 12;

/// Requests at or above this are served by `mmap` and rounded to whole pages (glibc's
/// initial `M_MMAP_THRESHOLD`).
const MMAP_THRESHOLD_BYTES: usize = 128 * 1024;

/// The chunk glibc malloc hands out for a request of `len` bytes: an 8-byte size header,
/// 16-byte alignment, 32 bytes at least; whole pages (plus a 16-byte header) for large
/// requests. An empty allocation costs nothing (`Box<[u8]>` does not allocate).
fn malloc_chunk_bytes(len: usize) -> usize {
    if len == 0 {
        0
    } else if len + 8 >= MMAP_THRESHOLD_BYTES {
        (len + 16).next_multiple_of(4096)
    } else {
        (len + 8).next_multiple_of(16).max(32)
    }
}

/// Bytes an item with this key and value counts against the memory limit.
pub(crate) fn footprint(key_len: usize, value_len: usize) -> usize {
    malloc_chunk_bytes(key_len + value_len) + SLAB_ENTRY_BYTES + SLAB_SLACK_BYTES + TABLE_SLOT_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_entry_is_48_bytes() {
        // Box<[u8]> (16) + cas (8) + exptime, flags, time (12) + links (8) + key_len and
        // state bits (2) = 46, padded to 48; the slab's Vacant variant needs no extra tag.
        assert_eq!(size_of::<Item>(), 48);
        assert_eq!(SLAB_ENTRY_BYTES, 48);
    }

    #[test]
    fn footprint_of_a_small_item() {
        // 43 bytes of key and value → a 64-byte malloc chunk; 48 slab + 12 slack + 12 table.
        assert_eq!(malloc_chunk_bytes(43), 64);
        assert_eq!(footprint(11, 32), 64 + 48 + 12 + 12);
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

    #[test]
    fn pack_puts_key_first() {
        let item = Item::new(pack(&[b"key", b"val", b"ue"]), 3, 7, 0);
        assert_eq!(item.key(), b"key");
        assert_eq!(item.value(), b"value");
        assert_eq!(item.footprint(), footprint(3, 5));
        assert!(!item.is_expired(100));
        let item = Item::new(pack(&[b"k"]), 1, 0, 10);
        assert_eq!(item.value(), b"");
        assert!(!item.is_expired(9));
        assert!(item.is_expired(10));
    }
}
