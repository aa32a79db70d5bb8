//! `stats items` and `stats slabs`: one block per size class, with memcached 1.6.18's
//! field names and order (`items:<id>:<field>`, `<id>:<field>`), from the store's real
//! classes (`ringcache_storage`'s `classes.rs`: arena classes grouped into ids 1–32,
//! chunks within 25 % of each other; the last is the large class of records over
//! 64 KiB, one allocation each). The same ids are metadump's `cls=`, `stats cachedump
//! <id>`'s and `lru_crawler crawl <ids>`'s.
//!
//! `stats items` lists the classes holding items; `stats slabs` those with pages.
//! Fields for mechanisms ringcache does not have carry the value true of its one LRU
//! segment per shard: `number_hot`, `number_warm`, `age_hot`, `age_warm`,
//! `moves_to_cold`, `moves_to_warm`, `hits_to_hot`, `hits_to_warm`, `hits_to_temp` are
//! 0 and `number_cold` is `number`, `hits_to_cold` every hit (as memcached's flat LRU
//! mode counts them); `tailrepairs` and `lrutail_reflocked` are 0 (no reference counts
//! to leak or to find locked); `free_chunks_end` is 0 (a page is never carved up
//! lazily). `moves_within_lru` counts the items the eviction hand spared (read since it
//! last passed them: their mark cleared, left in place), memcached's bump within an LRU.
//! `age` is the seconds since the oldest access of a live item of the class as the
//! crawler's last pass found it (0 before any pass). `mem_requested` is what the items
//! count against the memory limit (their footprints: the sum over classes is
//! `bytes`), `total_malloced` what the pages and large records take.
//!
//! Left out: the per-class command counters of `stats slabs` (`get_hits`, `cmd_set`,
//! `delete_hits`, `incr_hits`, `decr_hits`, `cas_hits`, `cas_badval`, `touch_hits`):
//! ringcache counts commands per worker, not per class; `stats` has their totals.

use super::Server;
use crate::storage::ClassStats;
use std::fmt::Display;

type StatFn<'a> = dyn FnMut(&str, &dyn Display) + 'a;

/// `stats items`.
pub(super) fn items(server: &Server, stat: &mut StatFn<'_>) {
    let now = server.store.clock().now();
    let report = server.store.class_report();
    for class in report.classes.iter().filter(|c| c.number > 0) {
        let c = &class.counters;
        let age = class.oldest_time.map_or(0, |t| now.saturating_sub(t));
        let fields: [(&str, &dyn Display); 28] = [
            ("number", &class.number),
            ("number_hot", &0),
            ("number_warm", &0),
            ("number_cold", &class.number),
            ("age_hot", &0),
            ("age_warm", &0),
            ("age", &age),
            ("mem_requested", &class.mem_requested),
            ("evicted", &c.evicted),
            ("evicted_nonzero", &c.evicted_nonzero),
            ("evicted_time", &c.evicted_time),
            ("outofmemory", &c.outofmemory),
            ("tailrepairs", &0),
            ("reclaimed", &c.reclaimed),
            ("expired_unfetched", &c.expired_unfetched),
            ("evicted_unfetched", &c.evicted_unfetched),
            ("evicted_active", &c.evicted_active),
            ("crawler_reclaimed", &c.crawler_reclaimed),
            ("crawler_items_checked", &c.crawler_items_checked),
            ("lrutail_reflocked", &0),
            ("moves_to_cold", &0),
            ("moves_to_warm", &0),
            ("moves_within_lru", &c.moves_within_lru),
            ("direct_reclaims", &c.direct_reclaims),
            ("hits_to_hot", &0),
            ("hits_to_warm", &0),
            ("hits_to_cold", &c.hits),
            ("hits_to_temp", &0),
        ];
        for (name, value) in fields {
            stat(&format!("items:{}:{name}", class.id), value);
        }
    }
}

/// `stats slabs`.
pub(super) fn slabs(server: &Server, stat: &mut StatFn<'_>) {
    let report = server.store.class_report();
    let active: Vec<&ClassStats> = report
        .classes
        .iter()
        .filter(|c| c.total_pages > 0)
        .collect();
    for class in &active {
        let used = class.number as usize;
        let fields: [(&str, &dyn Display); 7] = [
            ("chunk_size", &class.chunk_size),
            ("chunks_per_page", &class.chunks_per_page),
            ("total_pages", &class.total_pages),
            ("total_chunks", &class.total_chunks),
            ("used_chunks", &used),
            ("free_chunks", &class.total_chunks.saturating_sub(used)),
            ("free_chunks_end", &0),
        ];
        for (name, value) in fields {
            stat(&format!("{}:{name}", class.id), value);
        }
    }
    let malloced: u64 = report.classes.iter().map(|c| c.malloced).sum();
    stat("active_slabs", &active.len());
    stat("total_malloced", &malloced);
}
