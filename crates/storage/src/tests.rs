//! Unit tests of the store's public behaviour, with a manual clock.
//!
//! Each test names the memcached rule it pins down; shard internals (LRU order, the
//! accounting invariants) are checked through `Shard::check` and `Shard::lru_keys`.

use super::*;
use std::collections::HashSet;

pub(super) const MB: usize = 1 << 20;

pub(super) fn store_with(limit_bytes: usize, shards: usize) -> Store {
    let config = StoreConfig {
        limit_bytes,
        max_item_bytes: MB,
        shards,
    };
    Store::new(config, Clock::manual())
}

pub(super) fn store() -> Store {
    store_with(64 * MB, 4)
}

fn set(s: &Store, key: &str, value: &str) -> StoreResult {
    s.store(WriteMode::Set, key.as_bytes(), 0, 0, 0, value.as_bytes())
}

fn get(s: &Store, key: &str) -> Option<String> {
    s.get(key.as_bytes(), None, |hit| {
        hit.map(|i| String::from_utf8(i.value.to_vec()).unwrap())
    })
}

/// (value, flags, cas) of a hit.
fn gets(s: &Store, key: &str) -> Option<(String, u32, u64)> {
    s.get(key.as_bytes(), None, |hit| {
        hit.map(|i| (String::from_utf8(i.value.to_vec()).unwrap(), i.flags, i.cas))
    })
}

pub(super) fn check(s: &Store) {
    for shard in s.shards.iter() {
        shard.lock().unwrap().check();
    }
}

fn lru(s: &Store) -> Vec<String> {
    assert_eq!(s.shard_count(), 1);
    let keys = s.shards[0].lock().unwrap().lru_keys();
    keys.into_iter()
        .map(|k| String::from_utf8(k).unwrap())
        .collect()
}

#[test]
fn shard_count_is_a_power_of_two() {
    assert_eq!(store_with(64 * MB, 0).shard_count(), 1);
    assert_eq!(store_with(64 * MB, 1).shard_count(), 1);
    assert_eq!(store_with(64 * MB, 5).shard_count(), 8);
    assert_eq!(store_with(64 * MB, 16).shard_count(), 16);
    assert_eq!(store_with(64 * MB, 16).shard_budget(), 4 * MB);
}

#[test]
fn shards_are_halved_until_one_holds_the_largest_item() {
    // -I 1m: a shard needs a little over 1 MiB.
    assert_eq!(store_with(64 * MB, 64).shard_count(), 32);
    assert_eq!(store_with(8 * MB, 16).shard_count(), 4);
    // -I above half of -m: items up to half of -m fit, so one shard.
    assert_eq!(store_with(MB, 16).shard_count(), 1);
    for (limit, max_item, shards) in [(8 * MB, MB, 16), (64 * MB, 8 * MB, 16), (2 * MB, MB, 8)] {
        let s = Store::new(
            StoreConfig {
                limit_bytes: limit,
                max_item_bytes: max_item,
                shards,
            },
            Clock::manual(),
        );
        // Fill every shard with small items first, then the largest values allowed.
        for i in 0..20_000 {
            set(
                &s,
                &format!("small:{i}"),
                "0123456789abcdef0123456789abcdef",
            );
        }
        let largest = max_item.min(limit / 2) - 48 - 8 - 5 - 1 - 2;
        for key in ["a", "b", "c"] {
            let value = vec![b'x'; largest];
            assert_eq!(
                s.store(WriteMode::Set, key.as_bytes(), 0, 0, 0, &value),
                StoreResult::Stored,
                "-m {limit} -I {max_item}: {largest} bytes with {} shards",
                s.shard_count()
            );
        }
        check(&s);
    }
}

#[test]
fn relative_expiry() {
    let s = store();
    s.store(WriteMode::Set, b"k", 0, 10, 0, b"v");
    s.clock().advance(9);
    assert_eq!(get(&s, "k").as_deref(), Some("v"));
    s.clock().advance(1);
    assert_eq!(get(&s, "k"), None);
    assert_eq!(s.stats().curr_items, 0, "met expired item is removed");
    assert_eq!(s.stats().reclaimed, 1);
}

#[test]
fn zero_never_expires_negative_already_has() {
    let s = store();
    s.store(WriteMode::Set, b"forever", 0, 0, 0, b"v");
    s.store(WriteMode::Set, b"gone", 0, -1, 0, b"v");
    assert_eq!(get(&s, "gone"), None);
    s.clock().advance(100 * 24 * 3600);
    assert_eq!(get(&s, "forever").as_deref(), Some("v"));
}

#[test]
fn thirty_day_boundary() {
    let s = store();
    let start = s.clock().started_unix() as i64;
    // Exactly 30 days is relative.
    s.store(WriteMode::Set, b"rel", 0, 2_592_000, 0, b"v");
    // One more is an absolute unix time, long past: expired at once.
    s.store(WriteMode::Set, b"abs_past", 0, 2_592_001, 0, b"v");
    // An absolute time in the future.
    let in_50 = s.clock().unix_now() as i64 + 50;
    s.store(WriteMode::Set, b"abs", 0, in_50, 0, b"v");
    s.store(WriteMode::Set, b"at_start", 0, start, 0, b"v");
    assert_eq!(get(&s, "abs_past"), None);
    assert_eq!(get(&s, "at_start"), None);
    s.clock().advance(49);
    assert!(get(&s, "abs").is_some());
    s.clock().advance(1);
    assert_eq!(get(&s, "abs"), None);
    s.clock().advance(2_592_000 - 51);
    assert!(get(&s, "rel").is_some());
    s.clock().advance(1);
    assert_eq!(get(&s, "rel"), None);
}

#[test]
fn cas_unique_across_shards_and_writes() {
    let s = store_with(64 * MB, 16);
    let mut seen = HashSet::new();
    for i in 0..2000 {
        let key = format!("key{i}");
        set(&s, &key, "1");
        assert!(seen.insert(gets(&s, &key).unwrap().2));
        assert_eq!(s.arith(key.as_bytes(), 1, true), ArithResult::Value(2));
        assert!(seen.insert(gets(&s, &key).unwrap().2));
        s.store(WriteMode::Append, key.as_bytes(), 0, 0, 0, b"0");
        assert!(seen.insert(gets(&s, &key).unwrap().2));
    }
    assert!(!seen.contains(&0));
    check(&s);
}

#[test]
fn set_add_replace() {
    let s = store();
    let add = |k: &str, v: &str| s.store(WriteMode::Add, k.as_bytes(), 1, 0, 0, v.as_bytes());
    let replace =
        |k: &str, v: &str| s.store(WriteMode::Replace, k.as_bytes(), 2, 0, 0, v.as_bytes());
    assert_eq!(replace("k", "r"), StoreResult::NotStored);
    assert_eq!(add("k", "a"), StoreResult::Stored);
    assert_eq!(add("k", "b"), StoreResult::NotStored);
    assert_eq!(gets(&s, "k").unwrap().0, "a");
    assert_eq!(replace("k", "r"), StoreResult::Stored);
    assert_eq!(gets(&s, "k").unwrap().1, 2);
    assert_eq!(set(&s, "k", "s"), StoreResult::Stored);
    let (value, flags, _) = gets(&s, "k").unwrap();
    assert_eq!((value.as_str(), flags), ("s", 0));
    // Add succeeds over an expired item.
    s.store(WriteMode::Set, b"e", 0, 1, 0, b"old");
    s.clock().advance(1);
    assert_eq!(add("e", "new"), StoreResult::Stored);
    assert_eq!(get(&s, "e").as_deref(), Some("new"));
    assert_eq!(s.stats().total_items, 5);
    check(&s);
}

#[test]
fn append_prepend_keep_flags_and_exptime() {
    let s = store();
    let app = |mode, v: &str| s.store(mode, b"k", 99, 0, 0, v.as_bytes());
    assert_eq!(app(WriteMode::Append, "x"), StoreResult::NotStored);
    assert_eq!(app(WriteMode::Prepend, "x"), StoreResult::NotStored);
    s.store(WriteMode::Set, b"k", 7, 10, 0, b"mid");
    let cas0 = gets(&s, "k").unwrap().2;
    assert_eq!(app(WriteMode::Append, "_end"), StoreResult::Stored);
    assert_eq!(app(WriteMode::Prepend, "start_"), StoreResult::Stored);
    let (value, flags, cas) = gets(&s, "k").unwrap();
    assert_eq!((value.as_str(), flags), ("start_mid_end", 7));
    assert!(cas > cas0);
    s.clock().advance(10);
    assert_eq!(get(&s, "k"), None, "exptime kept from the original set");
    check(&s);
}

#[test]
fn append_past_the_size_limit_is_not_stored() {
    let s = store();
    let half = vec![b'x'; MB / 2];
    assert_eq!(
        s.store(WriteMode::Set, b"k", 0, 0, 0, &half),
        StoreResult::Stored
    );
    assert_eq!(
        s.store(WriteMode::Append, b"k", 0, 0, 0, &half),
        StoreResult::NotStored
    );
    assert_eq!(s.get(b"k", None, |i| i.unwrap().value.len()), MB / 2);
}

#[test]
fn cas_command() {
    let s = store();
    let cas = |c: u64, v: &str| s.store(WriteMode::Cas, b"k", 0, 0, c, v.as_bytes());
    assert_eq!(cas(1, "v"), StoreResult::NotFound);
    set(&s, "k", "v1");
    let c1 = gets(&s, "k").unwrap().2;
    assert_eq!(cas(c1 + 1, "v2"), StoreResult::Exists);
    assert_eq!(cas(c1, "v2"), StoreResult::Stored);
    assert_eq!(get(&s, "k").as_deref(), Some("v2"));
    assert_eq!(cas(c1, "v3"), StoreResult::Exists, "the CAS moved on");
}

#[test]
fn incr_decr() {
    let s = store();
    let arith = |k: &str, d, incr| s.arith(k.as_bytes(), d, incr);
    assert_eq!(arith("n", 1, true), ArithResult::NotFound);
    s.store(WriteMode::Set, b"n", 5, 0, 0, b"100");
    let cas0 = gets(&s, "n").unwrap().2;
    // Shorter result: rewritten in place, padded with spaces, new CAS.
    assert_eq!(arith("n", 1, false), ArithResult::Value(99));
    let (value, flags, cas1) = gets(&s, "n").unwrap();
    assert_eq!((value.as_str(), flags), ("99 ", 5));
    assert!(cas1 > cas0);
    assert_eq!(arith("n", 90, false), ArithResult::Value(9));
    assert_eq!(get(&s, "n").as_deref(), Some("9  "));
    // Longer result: a new value, flags kept.
    assert_eq!(arith("n", 991, true), ArithResult::Value(1000));
    assert_eq!(gets(&s, "n").unwrap().0, "1000");
    assert_eq!(gets(&s, "n").unwrap().1, 5);
    // Floor and wrap.
    assert_eq!(arith("n", 5000, false), ArithResult::Value(0));
    assert_eq!(get(&s, "n").as_deref(), Some("0   "));
    set(&s, "max", "18446744073709551615");
    assert_eq!(arith("max", 2, true), ArithResult::Value(1));
    assert_eq!(get(&s, "max").unwrap(), format!("1{}", " ".repeat(19)));
    // Not numbers.
    for v in ["", "abc", "12abc", "-1", "18446744073709551616"] {
        set(&s, "bad", v);
        assert_eq!(arith("bad", 1, true), ArithResult::NonNumeric, "{v:?}");
    }
    set(&s, "odd", "  12 abc");
    assert_eq!(arith("odd", 1, true), ArithResult::Value(13));
    assert_eq!(get(&s, "odd").as_deref(), Some("13      "));
    check(&s);
}

#[test]
fn touch_sets_exptime_not_cas() {
    let s = store();
    assert!(!s.touch(b"k", 10));
    set(&s, "k", "v");
    let cas = gets(&s, "k").unwrap().2;
    assert!(s.touch(b"k", 10));
    assert_eq!(gets(&s, "k").unwrap().2, cas);
    s.clock().advance(9);
    assert!(s.touch(b"k", 5));
    s.clock().advance(4);
    assert!(get(&s, "k").is_some());
    s.clock().advance(1);
    assert_eq!(get(&s, "k"), None);
    assert!(!s.touch(b"k", 0));
}

#[test]
fn gat_touches_then_returns() {
    let s = store();
    s.store(WriteMode::Set, b"k", 3, 5, 0, b"v");
    let hit = s.get(b"k", Some(100), |i| i.map(|i| (i.flags, i.value.to_vec())));
    assert_eq!(hit, Some((3, b"v".to_vec())));
    s.clock().advance(50);
    assert!(get(&s, "k").is_some());
    // gat with a negative exptime returns the item once, then it is gone.
    assert!(s.get(b"k", Some(-1), |i| i.is_some()));
    assert_eq!(get(&s, "k"), None);
    assert!(!s.get(b"missing", Some(10), |i| i.is_some()));
}

#[test]
fn flush_all_now() {
    let s = store();
    for i in 0..100 {
        set(&s, &format!("k{i}"), "v");
    }
    s.flush_all(0);
    for i in 0..100 {
        assert_eq!(get(&s, &format!("k{i}")), None);
    }
    set(&s, "k1", "after");
    assert_eq!(get(&s, "k1").as_deref(), Some("after"));
    assert!(s.store(WriteMode::Add, b"k2", 0, 0, 0, b"x") == StoreResult::Stored);
    s.flush_all(-5);
    assert_eq!(get(&s, "k1"), None);
    check(&s);
}

#[test]
fn flush_all_delayed() {
    // memcached: `flush_all 10` at T sets oldest_live = T + 9, in force from T + 9 for
    // items whose time is at most T + 9.
    let s = store();
    set(&s, "old", "v");
    s.flush_all(10);
    s.clock().advance(5);
    set(&s, "mid", "v");
    s.clock().advance(3);
    assert!(get(&s, "old").is_some(), "not due yet");
    assert!(get(&s, "mid").is_some());
    s.clock().advance(1);
    set(&s, "same", "v");
    assert_eq!(
        get(&s, "old"),
        None,
        "due in the second before realtime(10)"
    );
    assert_eq!(get(&s, "mid"), None, "stored before the flush came due");
    assert_eq!(get(&s, "same"), None, "stored in the second it came due");
    s.clock().advance(1);
    set(&s, "new", "v");
    assert!(get(&s, "new").is_some(), "stored after the flush's second");
    s.clock().advance(100);
    assert!(get(&s, "new").is_some());
}

#[test]
fn flush_all_1_is_in_force_at_once_for_its_whole_second() {
    let s = store();
    set(&s, "a", "v");
    s.flush_all(1);
    assert_eq!(get(&s, "a"), None, "oldest_live = now: in force at once");
    set(&s, "b", "v");
    assert_eq!(
        get(&s, "b"),
        None,
        "a write in the same second counts as older"
    );
    s.clock().advance(1);
    set(&s, "c", "v");
    assert!(get(&s, "c").is_some(), "written in the next second");
    // flush_all 0 spares what is written after it, even in the same second.
    s.flush_all(0);
    assert_eq!(get(&s, "c"), None);
    set(&s, "d", "v");
    assert!(get(&s, "d").is_some());
}

#[test]
fn newer_flush_replaces_pending_one() {
    let s = store();
    set(&s, "a", "v");
    s.flush_all(10);
    s.flush_all(100);
    s.clock().advance(50);
    assert!(get(&s, "a").is_some(), "the 10 s flush was replaced");
    s.flush_all(0);
    assert_eq!(get(&s, "a"), None);
    set(&s, "b", "v");
    s.clock().advance(60);
    assert!(
        get(&s, "b").is_some(),
        "flush_all 0 dropped the pending one"
    );
    // A flush that came due stays in force when a later one is scheduled.
    set(&s, "c", "v");
    s.flush_all(5);
    s.clock().advance(5);
    s.flush_all(100);
    assert_eq!(get(&s, "c"), None);
}

/// A single-shard store whose budget holds exactly `n` items of key "kN" and a 10-byte value.
fn lru_store(n: usize) -> Store {
    store_with(n * item_footprint(2, 10), 1)
}

fn active(s: &Store) -> Vec<String> {
    let keys = s.shards[0].lock().unwrap().active_keys();
    keys.into_iter()
        .map(|k| String::from_utf8(k).unwrap())
        .collect()
}

#[test]
fn evicts_least_recently_used_with_second_chance() {
    let s = lru_store(4);
    for k in ["k0", "k1", "k2", "k3"] {
        set(&s, k, "0123456789");
    }
    assert_eq!(lru(&s), ["k3", "k2", "k1", "k0"]);
    // A hit marks the item active and leaves the list alone; a write moves to the head.
    get(&s, "k0");
    set(&s, "k2", "9876543210");
    assert_eq!(lru(&s), ["k2", "k3", "k1", "k0"]);
    assert_eq!(active(&s), ["k0"]);
    assert_eq!(get(&s, "kx"), None);
    // The tail k0 was read: it loses the mark and moves to the head; k1 goes.
    set(&s, "k4", "0123456789");
    assert_eq!(lru(&s), ["k4", "k0", "k2", "k3"]);
    assert!(active(&s).is_empty());
    let stats = s.stats();
    assert_eq!((stats.evictions, stats.evicted_unfetched), (1, 1));
    // A touch counts as a read; k0, not read again since its second chance, goes next.
    assert!(s.touch(b"k3", 0));
    set(&s, "k5", "0123456789");
    assert_eq!(lru(&s), ["k5", "k3", "k4", "k0"]);
    set(&s, "k6", "0123456789");
    assert_eq!(lru(&s), ["k6", "k5", "k3", "k4"]);
    let stats = s.stats();
    assert_eq!(
        (stats.evictions, stats.evicted_unfetched),
        (3, 2),
        "k0 was fetched"
    );
    check(&s);
}

#[test]
fn every_active_item_gets_its_second_chance() {
    // Every item was read since it was written: one write moves them all to the head
    // (each losing its mark), and the first to reach the tail again, the oldest, goes.
    let n = 60;
    let s = store_with(n * item_footprint(3, 10), 1);
    let keys: Vec<String> = (0..n).map(|i| format!("k{i:02}")).collect();
    for k in &keys {
        set(&s, k, "0123456789");
    }
    for k in &keys {
        assert!(get(&s, k).is_some());
    }
    set(&s, "new", "0123456789");
    assert_eq!(
        get(&s, &keys[0]),
        None,
        "the oldest goes after its second chance"
    );
    let stats = s.stats();
    assert_eq!((stats.evictions, stats.evicted_unfetched), (1, 0));
    let order = lru(&s);
    assert_eq!(order[0], "new");
    assert_eq!(
        order[1..],
        keys[1..].iter().rev().cloned().collect::<Vec<_>>()[..]
    );
    check(&s);
}

#[test]
fn expired_reclaimed_before_live_evicted() {
    let s = lru_store(4);
    set(&s, "k0", "0123456789");
    s.store(WriteMode::Set, b"k1", 0, 5, 0, b"0123456789");
    set(&s, "k2", "0123456789");
    set(&s, "k3", "0123456789");
    s.clock().advance(5);
    set(&s, "k4", "0123456789");
    assert_eq!(lru(&s), ["k4", "k3", "k2", "k0"]);
    let stats = s.stats();
    assert_eq!(
        (stats.evictions, stats.reclaimed, stats.expired_unfetched),
        (0, 1, 1)
    );
    // Flushed items are reclaimed the same way.
    s.flush_all(0);
    set(&s, "k5", "0123456789");
    assert_eq!(s.stats().evictions, 0);
    assert_eq!(s.stats().reclaimed, 2);
    check(&s);
}

#[test]
fn too_large_set_removes_old_value() {
    let s = store();
    set(&s, "k", "old");
    let big = vec![0u8; MB];
    assert_eq!(
        s.store(WriteMode::Add, b"k", 0, 0, 0, &big),
        StoreResult::TooLarge
    );
    assert!(get(&s, "k").is_some(), "only set removes");
    assert_eq!(
        s.store(WriteMode::Set, b"k", 0, 0, 0, &big),
        StoreResult::TooLarge
    );
    assert_eq!(get(&s, "k"), None);
    // The limit is memcached's: header 48 + CAS 8 + key + 1 + value + 2.
    let fits = vec![0u8; MB - 48 - 8 - 1 - 1 - 2];
    assert_eq!(
        s.store(WriteMode::Set, b"k", 0, 0, 0, &fits),
        StoreResult::Stored
    );
}

#[test]
fn out_of_memory_when_larger_than_a_shard() {
    // An item size limit over the memory limit (the server refuses `-I` over half of
    // `-m`; the store answers for items that could never fit).
    let s = Store::new(
        StoreConfig {
            limit_bytes: 4000,
            max_item_bytes: MB,
            shards: 4,
        },
        Clock::manual(),
    );
    assert_eq!(
        s.shard_count(),
        1,
        "a 2000-byte item needs the whole budget"
    );
    for i in 0..40 {
        set(&s, &format!("k{i}"), "v");
    }
    let before = s.stats();
    let value = vec![b'x'; 4000];
    for i in 0..40 {
        let key = format!("k{i}");
        let r = s.store(WriteMode::Replace, key.as_bytes(), 0, 0, 0, &value);
        assert!(matches!(
            r,
            StoreResult::OutOfMemory | StoreResult::NotStored
        ));
    }
    let after = s.stats();
    assert_eq!(
        after, before,
        "nothing evicted for an item that can never fit"
    );
    assert_eq!(
        s.store(WriteMode::Set, b"k0", 0, 0, 0, &value),
        StoreResult::OutOfMemory
    );
    assert_eq!(get(&s, "k0"), None, "a failed set leaves no stale value");
    check(&s);
}

#[test]
fn stats_and_reset() {
    let s = lru_store(2);
    for k in ["k0", "k1", "k2"] {
        set(&s, k, "0123456789");
    }
    let stats = s.stats();
    assert_eq!(stats.curr_items, 2);
    assert_eq!(stats.total_items, 3);
    assert_eq!(stats.bytes as usize, 2 * item_footprint(2, 10));
    assert_eq!(stats.limit_bytes as usize, 2 * item_footprint(2, 10));
    assert_eq!(stats.evictions, 1);
    s.reset_stats();
    let reset = s.stats();
    assert_eq!(
        (reset.total_items, reset.evictions, reset.evicted_unfetched),
        (0, 0, 0)
    );
    assert_eq!(
        (reset.curr_items, reset.bytes),
        (stats.curr_items, stats.bytes)
    );
    assert!(s.delete(b"k2"));
    assert!(!s.delete(b"k2"));
    assert_eq!(s.stats().curr_items, 1);
}

#[test]
fn overlong_keys_are_never_stored() {
    let s = store();
    let key = vec![b'k'; 251];
    assert_eq!(
        s.store(WriteMode::Set, &key, 0, 0, 0, b"v"),
        StoreResult::NotStored
    );
    assert!(!s.get(&key, None, |i| i.is_some()));
    assert!(!s.delete(&key) && !s.touch(&key, 1));
    assert_eq!(s.arith(&key, 1, true), ArithResult::NotFound);
}

#[test]
fn an_item_as_big_as_the_shard_evicts_all_else() {
    let s = store_with(item_footprint(1, 5000), 1);
    for k in ["a", "b", "c"] {
        set(&s, k, "v");
    }
    let value = vec![b'x'; 5000];
    assert_eq!(
        s.store(WriteMode::Set, b"z", 0, 0, 0, &value),
        StoreResult::Stored
    );
    assert_eq!(lru(&s), ["z"]);
    assert_eq!(s.stats().bytes as usize, s.shard_budget());
    check(&s);
}

#[test]
fn shared_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
    let s = std::sync::Arc::new(store_with(256 * 1024, 4));
    let workers: Vec<_> = (0..2u64)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..5000u64 {
                    let key = format!("k{}", (i * 7 + t) % 500);
                    match i % 4 {
                        0 | 1 => assert_eq!(
                            set(&s, &key, &"1".repeat((i % 700) as usize)),
                            StoreResult::Stored
                        ),
                        2 => drop(s.arith(key.as_bytes(), 1, true)),
                        _ => drop(get(&s, &key)),
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    check(&s);
    assert!(
        s.stats().total_items >= 5000,
        "every set counts (and incr that grows)"
    );
}

/// The prefetch hint names the record a lookup will read: for a stored key, a span that
/// holds the key and value (the table's first candidate, which for one key per shard
/// is that key's record); nothing for a key never stored in an empty shard.
#[test]
fn record_span_names_the_record_a_lookup_reads() {
    let s = store_with(64 * MB, 1);
    let span = |key: &[u8]| s.record_span(key, |r| (r.as_ptr(), r.to_vec()));
    assert!(span(b"absent").is_none());
    assert_eq!(set(&s, "alpha", "value-one"), StoreResult::Stored);
    let (start, bytes) = span(b"alpha").expect("a stored key has a record");
    let whole = s
        .shard(b"alpha")
        .1
        .first_candidate(key_hash(&s.hasher, b"alpha"))
        .map(|r| (r.as_ptr(), r.to_vec()))
        .unwrap();
    assert_eq!((start, &bytes), (whole.0, &whole.1));
    assert!(bytes.windows(5).any(|w| w == b"alpha"));
    assert!(bytes.windows(9).any(|w| w == b"value-one"));
    assert!(span(&[b'k'; KEY_MAX_BYTES + 1]).is_none());
}
