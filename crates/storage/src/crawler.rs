//! Work over the whole store in bounded slices: the crawler's passes (remove dead
//! items, so `curr_items` and `bytes` stay true without a lookup meeting them), key
//! dumps (metadump, mgdump, cachedump), bringing the bytes down to a lowered memory
//! limit (`cache_memlimit`), and the per-class figures of `stats items`/`stats slabs`.
//!
//! Owns the walks' state ([`Walk`], [`CrawlPass`]) and the store's slice operations.
//! Knows nothing of threads, pacing or the protocol: the server decides who runs the
//! slices and when (see `src/server/crawler.rs`), and how a dump is written.
//!
//! Invariants:
//! - one slice holds one shard lock, for at most the number of items it is given;
//!   between slices no lock is held, so a walk never blocks other operations for longer
//!   than one slice;
//! - a walk keeps no reference into the store between slices, only a position (see
//!   `shard/walk.rs` for what a walk sees of items that move meanwhile);
//! - the memory limit can change at run time; the shard count does not, so a limit
//!   lowered below what [`crate::shard_count`] needed at start refuses the items
//!   larger than one shard's share.

use std::sync::atomic::Ordering;

use super::classes::{class_count, ClassReport, ClassSet};
use super::shard::walk::{CrawlTally, ShardCursor};
use super::Store;

pub use super::shard::walk::DumpItem;

/// A walk over every shard, through the items of some classes.
#[derive(Clone, Debug)]
pub struct Walk {
    set: ClassSet,
    shard: usize,
    cursor: ShardCursor,
}

impl Walk {
    /// A walk through the items of the classes in `set`, from the first shard.
    pub fn new(set: ClassSet) -> Walk {
        Walk {
            set,
            shard: 0,
            cursor: ShardCursor::default(),
        }
    }

    /// The classes it walks.
    pub fn classes(&self) -> ClassSet {
        self.set
    }

    /// Whether every shard was walked (in `store`).
    pub fn is_done(&self, store: &Store) -> bool {
        self.shard >= store.shard_count()
    }

    fn next_shard(&mut self) {
        self.shard += 1;
        self.cursor = ShardCursor::default();
    }
}

/// One pass of the crawler over the store (memcached's `lru_crawler crawl`).
#[derive(Clone, Debug)]
pub struct CrawlPass {
    walk: Walk,
    tally: CrawlTally,
}

impl CrawlPass {
    /// A pass over the classes in `set` of `store`, checking at most `tocrawl` items
    /// per class (0: all), spread evenly over the shards.
    pub fn new(store: &Store, set: ClassSet, tocrawl: u32) -> CrawlPass {
        let shards = store.shard_count() as u32;
        CrawlPass {
            walk: Walk::new(set),
            tally: CrawlTally::new(tocrawl.div_ceil(shards), class_count()),
        }
    }

    /// Dead items this pass removed so far.
    pub fn reclaimed(&self) -> u64 {
        self.tally.reclaimed
    }

    /// Items this pass checked so far.
    pub fn checked(&self) -> u64 {
        self.tally.items
    }

    /// Live items this pass checked so far that have an expiry time field, so may
    /// expire later (an item written with exptime 0 never does).
    pub fn may_expire(&self) -> u64 {
        self.tally.may_expire
    }

    pub fn is_done(&self, store: &Store) -> bool {
        self.walk.is_done(store)
    }
}

impl Store {
    /// Whether some item may have died, or may die, since the last call (see
    /// `Shard::take_expiry_mark`), clearing the marks: the crawler's schedule skips the
    /// periodic pass after a full pass that found nothing that could die, until this is
    /// true. Takes each shard's lock once, briefly.
    pub fn take_expiry_marks(&self) -> bool {
        let mut marked = false;
        for index in 0..self.shard_count() {
            marked |= self.lock_shard(index).take_expiry_mark();
        }
        marked
    }

    /// Runs one slice of `pass`: checks up to `max_items` items of one shard under its
    /// lock, removing the dead ones. Returns true when the pass is done.
    pub fn crawl_slice(&self, pass: &mut CrawlPass, max_items: usize) -> bool {
        let now = self.clock.now();
        let walk = &mut pass.walk;
        if walk.is_done(self) {
            return true;
        }
        let done = {
            let mut shard = self.lock_shard(walk.shard);
            shard.crawl_slice(&mut walk.cursor, walk.set, now, max_items, &mut pass.tally)
        };
        if done {
            // The next shard in the next slice, even after a short one: the caller paces.
            walk.next_shard();
            pass.tally.next_shard();
        }
        walk.is_done(self)
    }

    /// Runs one slice of a key dump: hands up to `max_items` live items of one shard to
    /// `f`, under the shard's lock (dead items are passed over and count). Returns true
    /// when the walk is done.
    pub fn dump_slice(
        &self,
        walk: &mut Walk,
        max_items: usize,
        mut f: impl FnMut(&DumpItem<'_>),
    ) -> bool {
        if walk.is_done(self) {
            return true;
        }
        let now = self.clock.now();
        let done = {
            let mut shard = self.lock_shard(walk.shard);
            shard.dump_slice(&mut walk.cursor, walk.set, now, max_items, &mut f)
        };
        if done {
            walk.next_shard();
        }
        walk.is_done(self)
    }

    /// The memory limit in force (`-m`, or the last `cache_memlimit`).
    pub fn limit_bytes(&self) -> usize {
        self.limit_bytes.load(Ordering::Relaxed)
    }

    /// Changes the memory limit at run time. A higher one takes effect at once; a
    /// lower one at once for writes (they no longer make the store grow), and the bytes
    /// come down to it as [`Store::evict_slice`] runs. The shard count stays: below
    /// what lets a shard hold an item of the item size limit (see
    /// [`crate::shard_count`]), items larger than one shard's share are refused with
    /// `OutOfMemory`.
    pub fn set_limit_bytes(&self, limit_bytes: usize) {
        let shards = self.shards.len();
        self.limit_bytes.store(limit_bytes, Ordering::Relaxed);
        for mut shard in self.each_shard() {
            shard.set_budget(limit_bytes / shards);
        }
    }

    /// Whether some shard holds more than its budget (after the limit was lowered).
    pub fn over_budget(&self) -> bool {
        self.each_shard().any(|s| s.over_budget())
    }

    /// Runs one slice of bringing the bytes down to a lowered limit: up to `max_items`
    /// removals in the first shard over its budget. Returns true when no shard is over.
    pub fn evict_slice(&self, max_items: usize) -> bool {
        let now = self.clock.now();
        for i in 0..self.shards.len() {
            let mut shard = self.lock_shard(i);
            if shard.over_budget() {
                shard.evict_slice(now, max_items);
                drop(shard);
                return !self.over_budget();
            }
        }
        true
    }

    /// Every class's figures, summed over shards (one shard lock at a time).
    pub fn class_report(&self) -> ClassReport {
        let mut report = ClassReport::new(self.config.max_item_bytes);
        for shard in self.each_shard() {
            shard.add_class_stats(&mut report);
        }
        report
    }

    /// Unix time of relative time `rel` (as `Clock` counts it).
    pub fn unix_time(&self, rel: u32) -> u64 {
        self.clock.started_unix() + u64::from(rel)
    }

    fn lock_shard(&self, index: usize) -> super::ShardGuard<'_> {
        self.shards[index].lock()
    }
}

#[cfg(test)]
mod tests;
