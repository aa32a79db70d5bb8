//! Eviction: LRU order with second chances, dead items reclaimed before live ones are
//! evicted, an item as large as the shard.

use super::*;

fn active(s: &Store) -> Vec<String> {
    let keys = s.shards[0].lock().active_keys();
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
    write(&s, WriteMode::Set, b"k1", 0, 5, 0, b"0123456789");
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
fn an_item_as_big_as_the_shard_evicts_all_else() {
    let s = store_with(item_footprint(1, 5000), 1);
    for k in ["a", "b", "c"] {
        set(&s, k, "v");
    }
    let value = vec![b'x'; 5000];
    assert_eq!(
        write(&s, WriteMode::Set, b"z", 0, 0, 0, &value),
        StoreResult::Stored
    );
    assert_eq!(lru(&s), ["z"]);
    assert_eq!(s.stats().bytes as usize, s.shard_budget());
    check(&s);
}

#[test]
fn the_observer_sees_every_eviction_and_no_reclaim() {
    use std::sync::{Arc, Mutex};
    let s = lru_store(4);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    s.observe_evictions(Arc::new(move |e: &Evicted<'_>| {
        let key = String::from_utf8(e.key.to_vec()).unwrap();
        log.lock().unwrap().push((
            key,
            e.value_len,
            e.fetched,
            e.exptime,
            e.now - e.last_access,
        ));
    }));
    for k in ["k0", "k1", "k2", "k3"] {
        set(&s, k, "0123456789");
    }
    get(&s, "k1");
    set(&s, "k4", "0123456789");
    set(&s, "k5", "0123456789");
    // k0 is evicted, k1 gets its second chance, then k2 goes.
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("k0".to_string(), 10, false, 0, 0),
            ("k2".to_string(), 10, false, 0, 0)
        ]
    );
    assert_eq!(s.stats().evictions, 2);
}
