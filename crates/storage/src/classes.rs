//! Size classes as operators see them: the class ids of `stats items`, `stats slabs`,
//! `lru_crawler crawl|metadump|mgdump <ids>`, metadump's `cls=` and `stats cachedump
//! <id>`, and the per-class figures behind them.
//!
//! The arena stores records in 254 chunk sizes (2-byte steps up to 256 bytes, 4-byte
//! steps up to 512, then steps of 1/16) and the large class of one allocation per
//! record (see `item.rs`). memcached's tools address at most 63 classes (`memcdump`
//! asks `stats cachedump 0 0` … `63 0` of a 1.6 server; memcached refuses ids from 64
//! on), so a class here groups consecutive arena classes whose chunks are within 25 %
//! of the group's smallest, as memcached's own classes grow by a factor of 1.25: 32
//! paged classes (ids 1–32, chunks of 32 to 65 520 bytes) and the large class after
//! them.
//! A class's `chunk_size` is its largest chunk; its pages and chunks are the real ones
//! of its arena classes.
//!
//! Owns the grouping ([`class_of_arena`], [`arena_classes`]), the per-class counters a
//! shard keeps ([`ClassCounters`]), and the figures the store reports per class
//! ([`ClassStats`]). Knows nothing of the protocol's words for them.
//!
//! Invariants:
//! - every arena class belongs to exactly one class; a class is a contiguous range of
//!   arena classes, and ids ascend with chunk size;
//! - class ids run from 1 to [`class_count`], at most [`CLASS_ID_MAX`].

use super::arena::Arena;
use super::item::{self, NewItem, LARGE_CLASS, PAGED_CLASSES, SMALL_CLASSES};

/// The largest class id a command may name (memcached's `MAX_NUMBER_OF_SLAB_CLASSES -
/// 1`); ids past [`class_count`] name classes that never hold an item.
pub const CLASS_ID_MAX: u32 = 63;

/// Number of arena classes (paged ones and the large one).
pub(crate) const ARENA_CLASSES: usize = LARGE_CLASS + 1;

/// The chunk of paged arena class `class`, computed at compile time.
const fn paged_chunk(class: usize) -> usize {
    if class < SMALL_CLASSES {
        item::small_chunk_bytes(class)
    } else {
        item::medium_chunks().0[class - SMALL_CLASSES] as usize
    }
}

/// The class id (from 1) of every arena class, and how many classes there are.
const fn grouping() -> ([u8; ARENA_CLASSES], usize) {
    let mut ids = [0u8; ARENA_CLASSES];
    let mut id = 0;
    let mut first_chunk = 0;
    let mut class = 0;
    while class < PAGED_CLASSES {
        let chunk = paged_chunk(class);
        if id == 0 || chunk * 4 > first_chunk * 5 {
            id += 1;
            first_chunk = chunk;
        }
        ids[class] = id as u8;
        class += 1;
    }
    ids[LARGE_CLASS] = (id + 1) as u8;
    (ids, id + 1)
}

static CLASS_OF_ARENA: [u8; ARENA_CLASSES] = grouping().0;
const CLASSES: usize = grouping().1;
const _: () = assert!(
    CLASSES as u32 <= CLASS_ID_MAX,
    "class ids fit memcached's range"
);

/// Number of classes: ids `1..=class_count()`.
pub const fn class_count() -> usize {
    CLASSES
}

/// The class geometry as `stats settings` names memcached's: the factor consecutive
/// classes' chunks grow by at most (`growth_factor`), the smallest chunk
/// (`chunk_size`) and the largest paged one (`slab_chunk_max`: larger records take an
/// allocation each, as memcached chains chunks past it).
pub const GROWTH_FACTOR: f64 = 1.25;

/// The smallest chunk (class 1's).
pub const fn smallest_chunk() -> usize {
    paged_chunk(0)
}

/// The largest paged chunk.
pub const fn largest_paged_chunk() -> usize {
    paged_chunk(PAGED_CLASSES - 1)
}

/// The class id of arena class `arena_class` (the top bits of an item id).
#[inline(always)]
pub(crate) fn class_of_arena(arena_class: usize) -> usize {
    usize::from(CLASS_OF_ARENA[arena_class])
}

const _: () = assert!(
    ARENA_CLASSES <= 256,
    "an item id's top byte is its arena class"
);

/// The class id of the item with id `idx`.
#[inline(always)]
pub(crate) fn class_of_item(idx: u32) -> usize {
    class_of_arena(Arena::class_of_id(idx))
}

/// The class id an item not stored yet will have.
pub(crate) fn class_of_new(new: &NewItem<'_>) -> usize {
    class_of_arena(item::class_of(new.record_bytes()))
}

/// The class id an item with this key and value length is stored in when it has no
/// flags, no expiry and a CAS below 2^48 (what `watch` lines print as `clsid`; an item
/// with flags or an expiry may sit one class up).
pub fn class_id_of(key_len: usize, value_len: usize) -> u32 {
    let header = item::header_bytes(0, 0, false);
    class_of_arena(item::class_of(item::record_bytes(
        header, key_len, value_len,
    ))) as u32
}

/// The arena classes of class `id` (empty for an id past [`class_count`]).
pub(crate) fn arena_classes(id: usize) -> std::ops::Range<usize> {
    let start = CLASS_OF_ARENA.iter().position(|&c| usize::from(c) == id);
    match start {
        Some(start) => {
            let len = CLASS_OF_ARENA[start..]
                .iter()
                .take_while(|&&c| usize::from(c) == id)
                .count();
            start..start + len
        }
        None => 0..0,
    }
}

/// The largest chunk of paged class `id` (0 for the large class).
fn chunk_size(id: usize) -> usize {
    arena_classes(id)
        .filter(|&c| c < PAGED_CLASSES)
        .map(paged_chunk)
        .max()
        .unwrap_or(0)
}

/// A set of class ids (a bit per id, 1 to 63).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClassSet(u64);

impl ClassSet {
    /// Every class.
    pub fn all() -> ClassSet {
        ClassSet(u64::MAX)
    }

    pub fn empty() -> ClassSet {
        ClassSet(0)
    }

    /// Adds class `id` (1 to [`CLASS_ID_MAX`]; others are ignored).
    pub fn insert(&mut self, id: u32) {
        if (1..=CLASS_ID_MAX).contains(&id) {
            self.0 |= 1 << id;
        }
    }

    pub fn contains(&self, id: usize) -> bool {
        id < 64 && self.0 & (1 << id) != 0
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Whether the items of arena class `arena_class` are in the set.
    pub(crate) fn holds_arena(&self, arena_class: usize) -> bool {
        self.contains(class_of_arena(arena_class))
    }
}

/// What one shard counts per class (index: the class id; 0 is unused). Events are
/// counted where they happen, under the shard lock, off the path of a plain hit except
/// for `hits`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassCounters {
    /// Lookups that found a live item of this class (memcached's `hits_to_*`, all in
    /// the one LRU segment ringcache has).
    pub hits: u64,
    pub evicted: u64,
    /// Evicted items that had an expiry time.
    pub evicted_nonzero: u64,
    /// Seconds between the last access of the last item evicted and its eviction.
    pub evicted_time: u32,
    pub evicted_unfetched: u64,
    /// Evicted items that had been read since the eviction hand last passed them (only
    /// after the hand spared `HAND_SEARCH` in a row, or when a class runs out of ids).
    pub evicted_active: u64,
    /// Writes refused: the item could not fit in its shard's budget.
    pub outofmemory: u64,
    /// Dead items removed by a lookup or a write making room.
    pub reclaimed: u64,
    /// Dead items removed before they were read: expired, or flushed and met by a
    /// lookup or a write (memcached counts the crawler's flushed ones apart).
    pub expired_unfetched: u64,
    pub crawler_reclaimed: u64,
    pub crawler_items_checked: u64,
    /// Items read since the eviction hand last passed them, spared by it (their mark
    /// cleared, left in place; memcached counts its bumps within an LRU here).
    pub moves_within_lru: u64,
    /// Writes that had to remove items (evict or reclaim) to make room themselves.
    pub direct_reclaims: u64,
}

impl ClassCounters {
    fn add(&mut self, o: &ClassCounters) {
        self.hits += o.hits;
        self.evicted += o.evicted;
        self.evicted_nonzero += o.evicted_nonzero;
        self.evicted_time = self.evicted_time.max(o.evicted_time);
        self.evicted_unfetched += o.evicted_unfetched;
        self.evicted_active += o.evicted_active;
        self.outofmemory += o.outofmemory;
        self.reclaimed += o.reclaimed;
        self.expired_unfetched += o.expired_unfetched;
        self.crawler_reclaimed += o.crawler_reclaimed;
        self.crawler_items_checked += o.crawler_items_checked;
        self.moves_within_lru += o.moves_within_lru;
        self.direct_reclaims += o.direct_reclaims;
    }
}

/// One shard's per-class state: counters and what the crawler last saw.
#[derive(Clone, Debug)]
pub(crate) struct ShardClasses {
    pub(crate) counters: [ClassCounters; CLASSES + 1],
    /// Hits per arena class (a byte of the item id indexes it with no bounds check and
    /// no lookup: the cheapest count on the path of every hit), summed into
    /// [`ClassCounters::hits`] when reported.
    pub(crate) arena_hits: [u64; 256],
    /// The oldest access time of a live item of each class, as the crawler's last
    /// pass over this shard found it (0: none seen).
    pub(crate) oldest_time: [u32; CLASSES + 1],
}

impl Default for ShardClasses {
    fn default() -> ShardClasses {
        ShardClasses {
            counters: [ClassCounters::default(); CLASSES + 1],
            arena_hits: [0; 256],
            oldest_time: [0; CLASSES + 1],
        }
    }
}

impl ShardClasses {
    /// `stats reset`: the counters start again; what the crawler saw stays.
    pub(crate) fn reset(&mut self) {
        self.counters = [ClassCounters::default(); CLASSES + 1];
        self.arena_hits = [0; 256];
    }

    /// Counts a hit of item `idx`.
    #[inline(always)]
    pub(crate) fn count_hit(&mut self, idx: u32) {
        self.arena_hits[usize::from((idx >> 24) as u8)] += 1;
    }

    /// Hits of class `id`.
    fn hits(&self, id: usize) -> u64 {
        arena_classes(id).map(|c| self.arena_hits[c]).sum()
    }
}

/// One class's figures, summed over shards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    pub id: usize,
    /// The largest chunk of the class; for the large class, the item size limit.
    pub chunk_size: usize,
    /// How many chunks of `chunk_size` a page holds (1 for the large class).
    pub chunks_per_page: usize,
    pub total_pages: usize,
    /// Chunks the class's pages have room for, used or not.
    pub total_chunks: usize,
    /// Items held (live, or dead and not yet removed).
    pub number: u64,
    /// What those items count against the memory limit (their footprints).
    pub mem_requested: u64,
    /// Bytes the class's pages and large records take.
    pub malloced: u64,
    /// The oldest access time (relative) of a live item the crawler last saw, if any.
    pub oldest_time: Option<u32>,
    pub counters: ClassCounters,
}

/// Every class's figures, for `stats items` and `stats slabs`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClassReport {
    /// Index 0 is class 1.
    pub classes: Vec<ClassStats>,
}

impl ClassReport {
    pub(crate) fn new(max_item_bytes: usize) -> ClassReport {
        let classes = (1..=CLASSES)
            .map(|id| {
                let large = arena_classes(id).contains(&LARGE_CLASS);
                let chunk = if large {
                    max_item_bytes
                } else {
                    chunk_size(id)
                };
                ClassStats {
                    id,
                    chunk_size: chunk,
                    chunks_per_page: if large {
                        1
                    } else {
                        item::chunks_per_page(chunk)
                    },
                    ..ClassStats::default()
                }
            })
            .collect();
        ClassReport { classes }
    }

    /// Adds one shard's counters and crawler findings.
    pub(crate) fn add_shard(&mut self, shard: &ShardClasses) {
        for class in &mut self.classes {
            class.counters.add(&shard.counters[class.id]);
            class.counters.hits += shard.hits(class.id);
            let t = shard.oldest_time[class.id];
            if t != 0 {
                class.oldest_time = Some(class.oldest_time.map_or(t, |o| o.min(t)));
            }
        }
    }

    /// The figures of class `id`.
    pub(crate) fn class_mut(&mut self, id: usize) -> &mut ClassStats {
        &mut self.classes[id - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::item::chunk_bytes;

    #[test]
    fn classes_group_arena_classes_within_a_quarter() {
        assert_eq!(class_count(), 33);
        let mut seen = 0;
        for id in 1..=class_count() {
            let range = arena_classes(id);
            assert_eq!(range.start, seen, "class {id} follows the last");
            assert!(!range.is_empty());
            seen = range.end;
            if range.end <= PAGED_CLASSES {
                let first = chunk_bytes(range.start);
                for c in range.clone() {
                    assert_eq!(paged_chunk(c), chunk_bytes(c));
                    assert!(chunk_bytes(c) * 4 <= first * 5, "class {id}");
                    assert_eq!(class_of_arena(c), id);
                }
                assert_eq!(chunk_size(id), chunk_bytes(range.end - 1));
            }
        }
        assert_eq!(seen, ARENA_CLASSES);
        assert_eq!(arena_classes(class_count()), LARGE_CLASS..LARGE_CLASS + 1);
        assert!(arena_classes(class_count() + 1).is_empty());
        assert!(arena_classes(0).is_empty());
    }

    #[test]
    fn class_sets() {
        let mut set = ClassSet::empty();
        assert!(set.is_empty());
        set.insert(3);
        set.insert(0);
        set.insert(64);
        assert!(set.contains(3) && !set.contains(0) && !set.contains(2));
        assert!(set.holds_arena(arena_classes(3).start));
        assert!(!set.holds_arena(0));
        assert!(ClassSet::all().holds_arena(LARGE_CLASS));
    }
}
