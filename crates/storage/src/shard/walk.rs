//! Walks over one shard's items in bounded slices, for the crawler (reclaim dead
//! items), key dumps (metadump, mgdump, cachedump) and a lowered budget (evict down to
//! it); and the shard's per-class figures for `stats items`/`stats slabs`.
//!
//! A walk goes through the arena classes in order and through each class from its last
//! record down to its first. The lock is released between slices, so other
//! operations run in between: a removal moves a class's last record into the hole (see
//! `arena.rs`), and walking downwards means that record was either visited already (it
//! may be visited twice) or is the one removed; records added meanwhile go to the end,
//! behind the walk. So an item that stays put for the whole walk is visited exactly
//! once, an item that moves may be visited twice, and items written after the walk
//! passed their place are not visited.

use super::{death, Death, Shard};
use crate::arena::Arena;
use crate::classes::{class_of_arena, ClassReport, ClassSet, ARENA_CLASSES};
use crate::item::{FETCHED, KEY_BINARY, LARGE_CLASS, NIL};

/// Where a walk over one shard stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ShardCursor {
    /// The arena class being walked.
    class: usize,
    /// Records below this index are still to visit (`None`: the class is not begun).
    next: Option<usize>,
}

impl ShardCursor {
    fn next_class(&mut self) {
        self.class += 1;
        self.next = None;
    }

    pub(crate) fn is_done(&self) -> bool {
        self.class >= ARENA_CLASSES
    }
}

/// What a crawl keeps while it walks one shard.
#[derive(Clone, Debug)]
pub(crate) struct CrawlTally {
    /// Items the crawl may check per class in this shard (0: no limit).
    pub(crate) tocrawl: u32,
    /// Items checked per class in this shard so far.
    pub(crate) checked: Vec<u32>,
    /// The oldest access time of a live item per class in this shard (0: none).
    pub(crate) oldest: Vec<u32>,
    /// Dead items removed, in all shards.
    pub(crate) reclaimed: u64,
    /// Items checked, in all shards.
    pub(crate) items: u64,
    /// Live items checked that have an exptime field (so may expire), in all shards.
    pub(crate) may_expire: u64,
}

impl CrawlTally {
    pub(crate) fn new(tocrawl: u32, classes: usize) -> CrawlTally {
        CrawlTally {
            tocrawl,
            checked: vec![0; classes + 1],
            oldest: vec![0; classes + 1],
            reclaimed: 0,
            items: 0,
            may_expire: 0,
        }
    }

    /// A new shard begins: the per-shard figures start again.
    pub(crate) fn next_shard(&mut self) {
        self.checked.fill(0);
        self.oldest.fill(0);
    }
}

/// An item as a key dump shows it, read under its shard's lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DumpItem<'a> {
    pub key: &'a [u8],
    /// The key was stored base64-encoded (`ms … b`).
    pub key_binary: bool,
    /// Relative expiry time; 0 = never.
    pub exptime: u32,
    /// Relative time of the last write or access.
    pub time: u32,
    pub cas: u64,
    /// Read by a get since it was written.
    pub fetched: bool,
    /// Its class id.
    pub class: usize,
    /// What it counts against the memory limit.
    pub size: usize,
    pub value_len: usize,
}

impl Shard {
    /// Sets the budget. A lower one than the bytes held is reached by
    /// [`Shard::evict_slice`]; until then writes only keep the bytes from growing.
    pub(crate) fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    /// The next record of the walk at `cursor` among the classes in `set`, or `None`
    /// when the shard is done. Moves the cursor past it.
    fn walk_next(&self, cursor: &mut ShardCursor, set: ClassSet) -> Option<u32> {
        while !cursor.is_done() {
            if !set.holds_arena(cursor.class) {
                cursor.next_class();
                continue;
            }
            let len = self.arena.class_len(cursor.class);
            let next = cursor.next.map_or(len, |n| n.min(len));
            if next == 0 {
                cursor.next_class();
                continue;
            }
            cursor.next = Some(next - 1);
            return Some(Arena::id_of(cursor.class, next - 1));
        }
        None
    }

    /// One slice of a crawl: checks up to `max_items` items of the classes in `set`,
    /// removing the dead (expired or flushed) ones; returns true when the shard is done.
    /// At the end of the shard, records the oldest live item per class it saw.
    pub(crate) fn crawl_slice(
        &mut self,
        cursor: &mut ShardCursor,
        set: ClassSet,
        now: u32,
        max_items: usize,
        tally: &mut CrawlTally,
    ) -> bool {
        self.advance(now);
        for _ in 0..max_items {
            let Some(idx) = self.walk_next(cursor, set) else {
                return self.crawl_done(set, tally);
            };
            let class = class_of_arena(cursor.class);
            if tally.tocrawl != 0 && tally.checked[class] >= tally.tocrawl {
                cursor.next_class();
                continue;
            }
            tally.checked[class] += 1;
            tally.items += 1;
            self.classes.counters[class].crawler_items_checked += 1;
            let item = self.arena.record(idx);
            match death(item, now, self.flush_cas, self.flush_before) {
                None => {
                    tally.may_expire += u64::from(item.has_exptime_field());
                    let oldest = &mut tally.oldest[class];
                    if *oldest == 0 || item.time() < *oldest {
                        *oldest = item.time().max(1);
                    }
                }
                Some(why) => {
                    // Walking downwards, the record that fills the hole was visited.
                    let unfetched = why == Death::Expired && !item.has(FETCHED);
                    let hash = self.hash_of(idx);
                    self.remove(hash, idx);
                    tally.reclaimed += 1;
                    let c = &mut self.classes.counters[class];
                    c.crawler_reclaimed += 1;
                    c.expired_unfetched += u64::from(unfetched);
                    self.counters.expired_unfetched += u64::from(unfetched);
                }
            }
        }
        if cursor.is_done() {
            return self.crawl_done(set, tally);
        }
        false
    }

    fn crawl_done(&mut self, set: ClassSet, tally: &CrawlTally) -> bool {
        for (id, &oldest) in tally.oldest.iter().enumerate().skip(1) {
            if set.contains(id) {
                self.classes.oldest_time[id] = oldest;
            }
        }
        true
    }

    /// One slice of a key dump: hands up to `max_items` live items of the classes in
    /// `set` to `f` (dead ones are passed over, and count); returns true when the shard
    /// is done.
    pub(crate) fn dump_slice(
        &mut self,
        cursor: &mut ShardCursor,
        set: ClassSet,
        now: u32,
        max_items: usize,
        f: &mut dyn FnMut(&DumpItem<'_>),
    ) -> bool {
        self.advance(now);
        for _ in 0..max_items {
            let Some(idx) = self.walk_next(cursor, set) else {
                return true;
            };
            let item = self.arena.record(idx);
            if death(item, now, self.flush_cas, self.flush_before).is_some() {
                continue;
            }
            f(&DumpItem {
                key: item.key(),
                key_binary: item.has(KEY_BINARY),
                exptime: item.exptime(),
                time: item.time(),
                cas: item.cas(),
                fetched: item.has(FETCHED),
                class: class_of_arena(cursor.class),
                size: item.footprint(),
                value_len: item.value().len(),
            });
        }
        cursor.is_done()
    }

    /// Whether the shard holds more than its budget (a lowered one).
    pub(crate) fn over_budget(&self) -> bool {
        self.held() > self.budget
    }

    /// One slice of bringing the bytes down to a lowered budget by the hand's
    /// evictions (`evict.rs`), at most `max_items` of them; returns true when the shard
    /// is within its budget.
    pub(crate) fn evict_slice(&mut self, now: u32, max_items: usize) -> bool {
        self.advance(now);
        for _ in 0..max_items {
            if !self.over_budget() || self.tail == NIL {
                return true;
            }
            self.evict_at_hand(NIL, now);
        }
        !self.over_budget()
    }

    /// Adds this shard's per-class figures to `report`.
    pub(crate) fn add_class_stats(&self, report: &mut ClassReport) {
        for arena_class in 0..ARENA_CLASSES {
            let usage = self.arena.class_usage(arena_class);
            let len = self.arena.class_len(arena_class);
            let class = report.class_mut(class_of_arena(arena_class));
            class.total_pages += usage.pages;
            class.total_chunks += usage.chunks;
            class.malloced += usage.bytes as u64;
            class.number += len as u64;
            if len == 0 {
                continue;
            }
            let requested = if arena_class == LARGE_CLASS {
                (0..len)
                    .map(|i| self.item(Arena::id_of(arena_class, i)).footprint())
                    .sum()
            } else {
                // A paged item's footprint is its chunk's: the same for the class.
                len * self.item(Arena::id_of(arena_class, 0)).footprint()
            };
            class.mem_requested += requested as u64;
        }
        report.add_shard(&self.classes);
    }
}
