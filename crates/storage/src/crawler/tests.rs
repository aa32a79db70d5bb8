//! The crawler's passes, key dumps, a lowered memory limit and the per-class figures,
//! with a manual clock.

use super::*;
use crate::tests::{check, delete, store_with, write, MB};
use crate::{Read, WriteMode};
use std::collections::{HashMap, HashSet};

fn set(s: &Store, key: &str, value_len: usize, exptime: i64) {
    let value = vec![b'v'; value_len];
    assert_eq!(
        write(s, WriteMode::Set, key.as_bytes(), 0, exptime, 0, &value),
        crate::StoreResult::Stored
    );
}

/// Runs a whole pass in slices of `slice` items; returns the slices it took.
fn crawl(s: &Store, set: ClassSet, tocrawl: u32, slice: usize) -> (CrawlPass, usize) {
    let mut pass = CrawlPass::new(s, set, tocrawl);
    let mut slices = 1;
    while !s.crawl_slice(&mut pass, slice) {
        slices += 1;
        assert!(slices < 1_000_000, "the pass ends");
    }
    (pass, slices)
}

/// Every key a dump of `set` lists, with how often.
fn dump(s: &Store, set: ClassSet, slice: usize) -> HashMap<Vec<u8>, usize> {
    let mut walk = Walk::new(set);
    let mut seen = HashMap::new();
    while !s.dump_slice(&mut walk, slice, |item| {
        *seen.entry(item.key.to_vec()).or_insert(0) += 1;
    }) {}
    seen
}

#[test]
fn a_pass_removes_expired_and_flushed_items_and_counts_them() {
    let s = store_with(64 * MB, 4);
    for i in 0..300 {
        set(&s, &format!("short:{i}"), 10, 5);
        set(&s, &format!("long:{i}"), 100, 0);
    }
    s.get(b"short:0", Read::GET, |hit| assert!(hit.is_some()));
    let (pass, slices) = crawl(&s, ClassSet::all(), 0, 64);
    assert_eq!((pass.reclaimed(), pass.checked()), (0, 600));
    assert!(slices >= 600 / 64, "{slices} slices of at most 64 items");
    s.clock().advance(5);
    let (pass, _) = crawl(&s, ClassSet::all(), 0, 64);
    assert_eq!(pass.reclaimed(), 300);
    let stats = s.stats();
    assert_eq!(stats.curr_items, 300);
    let long: usize = (0..300)
        .map(|i| crate::stored_footprint(format!("long:{i}").len(), 100, 0, false))
        .sum();
    assert_eq!(stats.bytes, long as u64);
    assert_eq!(stats.crawler_reclaimed, 300);
    assert_eq!(stats.crawler_items_checked, 1200);
    assert_eq!(stats.expired_unfetched, 299, "short:0 was fetched");
    assert_eq!(
        stats.reclaimed, 0,
        "the crawler counts its own, as memcached's"
    );
    check(&s);
    s.flush_all(0);
    crawl(&s, ClassSet::all(), 0, 1000);
    let stats = s.stats();
    assert_eq!((stats.curr_items, stats.bytes), (0, 0));
    assert_eq!(stats.crawler_reclaimed, 600);
    assert_eq!(
        stats.expired_unfetched, 299,
        "flushed items are not expired ones"
    );
    check(&s);
}

#[test]
fn a_pass_over_some_classes_leaves_the_others_and_tocrawl_bounds_it() {
    let s = store_with(64 * MB, 1);
    for i in 0..100 {
        set(&s, &format!("small:{i}"), 10, 1);
        set(&s, &format!("big:{i}"), 3000, 1);
    }
    s.clock().advance(1);
    let small =
        crate::classes::class_of_new(&crate::item::NewItem::new(b"small:10", &[0; 10], 0, 1));
    let mut only_small = ClassSet::empty();
    only_small.insert(small as u32);
    let (pass, _) = crawl(&s, only_small, 30, 7);
    assert_eq!(pass.reclaimed(), 30, "tocrawl 30: 30 checked in that class");
    let (pass, _) = crawl(&s, only_small, 0, 7);
    assert_eq!(pass.reclaimed(), 70);
    assert_eq!(s.stats().curr_items, 100, "the big ones are left");
    let (pass, _) = crawl(&s, ClassSet::empty(), 0, 7);
    assert_eq!(pass.checked(), 0);
    crawl(&s, ClassSet::all(), 0, 7);
    assert_eq!(s.stats().curr_items, 0);
    check(&s);
}

#[test]
fn a_dump_lists_every_live_item_once_with_its_metadata() {
    let s = store_with(64 * MB, 4);
    for i in 0..500 {
        set(
            &s,
            &format!("k{i}"),
            i % 700,
            if i % 10 == 0 { -1 } else { 100 },
        );
    }
    set(&s, "huge", 200_000, 0);
    let seen = dump(&s, ClassSet::all(), 13);
    assert_eq!(seen.len(), 451, "the 50 already expired are left out");
    assert!(seen.values().all(|&n| n == 1));
    assert!(seen.contains_key(&b"huge"[..]));
    let mut walk = Walk::new(ClassSet::all());
    let now = s.clock().now();
    let mut classes = HashSet::new();
    while !s.dump_slice(&mut walk, 100, |item| {
        assert_eq!(item.exptime == 0, item.key == b"huge");
        assert!(item.exptime == 0 || item.exptime == now + 100);
        assert_eq!(item.time, now);
        assert!(!item.fetched && !item.key_binary);
        assert_eq!(
            item.size,
            crate::stored_footprint(item.key.len(), item.value_len, 0, item.exptime != 0)
        );
        classes.insert(item.class);
    }) {}
    assert!(classes.len() > 10 && classes.contains(&class_count()));
    // A dump of one class holds its items only.
    let mut one = ClassSet::empty();
    one.insert(class_count() as u32);
    assert_eq!(dump(&s, one, 5).len(), 1);
}

#[test]
fn an_item_left_alone_during_a_dump_is_listed_though_others_come_and_go() {
    let s = store_with(64 * MB, 2);
    for i in 0..2000 {
        set(&s, &format!("stay:{i}"), 20, 0);
        set(&s, &format!("churn:{i}"), 20, 0);
    }
    let mut walk = Walk::new(ClassSet::all());
    let mut seen = HashSet::new();
    let mut round = 0;
    loop {
        let done = s.dump_slice(&mut walk, 50, |item| {
            seen.insert(item.key.to_vec());
        });
        if done {
            break;
        }
        // Between slices: deletes (records move into the holes) and new writes.
        for j in 0..20 {
            delete(&s, format!("churn:{}", (round * 20 + j) % 2000).as_bytes());
            set(&s, &format!("new:{round}:{j}"), 20, 0);
        }
        round += 1;
    }
    for i in 0..2000 {
        assert!(seen.contains(format!("stay:{i}").as_bytes()), "stay:{i}");
    }
    check(&s);
}

#[test]
fn class_report_matches_the_store() {
    let s = store_with(64 * MB, 4);
    for i in 0..1000 {
        set(&s, &format!("k{i}"), (i * 37) % 5000, 0);
    }
    set(&s, "huge", 300_000, 0);
    s.get(b"k1", Read::GET, |_| ());
    s.get(b"k2", Read::GET, |_| ());
    let report = s.class_report();
    let stats = s.stats();
    assert_eq!(report.classes.len(), class_count());
    let number: u64 = report.classes.iter().map(|c| c.number).sum();
    let requested: u64 = report.classes.iter().map(|c| c.mem_requested).sum();
    let hits: u64 = report.classes.iter().map(|c| c.counters.hits).sum();
    assert_eq!(
        (number, requested, hits),
        (stats.curr_items, stats.bytes, 2)
    );
    for c in &report.classes {
        assert!(c.total_chunks as u64 >= c.number, "class {}", c.id);
        if c.number > 0 {
            assert!(c.total_pages > 0);
        }
    }
    let large = report.classes.last().unwrap();
    assert_eq!(
        (large.number, large.total_pages, large.chunk_size),
        (1, 1, MB)
    );
    assert!(report
        .classes
        .windows(2)
        .all(|w| w[0].chunk_size < w[1].chunk_size));
    // The crawler records the oldest live item per class.
    s.clock().advance(7);
    crawl(&s, ClassSet::all(), 0, 100);
    let report = s.class_report();
    let c = report.classes.iter().find(|c| c.number > 0).unwrap();
    assert_eq!(c.oldest_time, Some(2));
}

#[test]
fn a_lower_limit_is_reached_in_slices_and_writes_do_not_grow_meanwhile() {
    let s = store_with(64 * MB, 4);
    for i in 0..40_000 {
        set(&s, &format!("k{i}"), 1000, 0);
    }
    let before = s.stats().bytes;
    assert!(before > 40 * MB as u64);
    s.set_limit_bytes(16 * MB);
    assert_eq!((s.limit_bytes(), s.shard_budget()), (16 * MB, 4 * MB));
    assert!(s.over_budget());
    set(&s, "during", 1000, 0);
    assert!(s.stats().bytes <= before, "a write does not grow the bytes");
    let mut slices = 0;
    while !s.evict_slice(100) {
        slices += 1;
        assert!(slices < 10_000);
    }
    assert!(slices > 100, "{slices} slices of at most 100 evictions");
    let stats = s.stats();
    assert!(stats.bytes <= 16 * MB as u64 && stats.bytes > 15 * MB as u64);
    assert_eq!(stats.limit_bytes, 16 * MB as u64);
    check(&s);
    // Below what lets a shard hold an item of -I, such items are refused.
    s.set_limit_bytes(2 * MB);
    while !s.evict_slice(1000) {}
    let big = vec![b'b'; MB - 100];
    assert_eq!(
        write(&s, WriteMode::Set, b"big", 0, 0, 0, &big),
        crate::StoreResult::OutOfMemory
    );
    set(&s, "small", 1000, 0);
    check(&s);
    s.set_limit_bytes(128 * MB);
    for i in 0..100_000 {
        set(&s, &format!("again{i}"), 1000, 0);
    }
    assert!(
        s.stats().bytes > 64 * MB as u64,
        "a higher limit holds more"
    );
    check(&s);
}
