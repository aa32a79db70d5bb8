//! Eviction: the SIEVE hand (read items spared in place, unread ones evicted, the
//! bound on one eviction's walk), dead items reclaimed before live ones are evicted, an
//! item as large as the shard.

use super::*;
use crate::shard::HAND_SEARCH;

fn active(s: &Store) -> Vec<String> {
    let keys = s.shards[0].lock().active_keys();
    keys.into_iter()
        .map(|k| String::from_utf8(k).unwrap())
        .collect()
}

fn hand(s: &Store) -> Option<String> {
    let key = s.shards[0].lock().hand_key();
    key.map(|k| String::from_utf8(k).unwrap())
}

#[test]
fn the_hand_evicts_unread_items_and_leaves_read_ones_in_place() {
    let s = lru_store(4);
    for k in ["k0", "k1", "k2", "k3"] {
        set(&s, k, "0123456789");
    }
    assert_eq!(lru(&s), ["k3", "k2", "k1", "k0"]);
    // A hit marks the item active and leaves the list alone; a write moves to the
    // head, and a write of a held key marks it too.
    get(&s, "k0");
    set(&s, "k2", "9876543210");
    assert_eq!(lru(&s), ["k2", "k3", "k1", "k0"]);
    assert_eq!(active(&s), ["k2", "k0"]);
    assert_eq!(get(&s, "kx"), None);
    // The hand starts at the tail: k0 was read, loses its mark and stays; k1 goes and
    // the hand stops on k3, its neighbour towards the head.
    set(&s, "k4", "0123456789");
    assert_eq!(lru(&s), ["k4", "k2", "k3", "k0"]);
    assert_eq!(active(&s), ["k2"]);
    assert_eq!(hand(&s).as_deref(), Some("k3"));
    let stats = s.stats();
    assert_eq!((stats.evictions, stats.evicted_unfetched), (1, 1));
    assert_eq!(stats.moves_within_lru, 1);
    // A touch counts as a read: the hand spares k3 and k2, and the newest item, k4,
    // never read, goes; the hand wraps round to the tail.
    assert!(s.touch(b"k3", 0));
    set(&s, "k5", "0123456789");
    assert_eq!(lru(&s), ["k5", "k2", "k3", "k0"]);
    assert_eq!(hand(&s), None);
    // k0, not read since the hand passed it, goes next.
    set(&s, "k6", "0123456789");
    assert_eq!(lru(&s), ["k6", "k5", "k2", "k3"]);
    let stats = s.stats();
    assert_eq!(
        (
            stats.evictions,
            stats.evicted_unfetched,
            stats.evicted_active
        ),
        (3, 2, 0),
        "k0 was fetched"
    );
    assert_eq!(stats.moves_within_lru, 3);
    check(&s);
}

#[test]
fn every_read_item_is_spared_once() {
    // Every item was read since it was written: one write's hand clears every mark,
    // comes round to the tail again, and the oldest goes; nothing moves.
    let n = 60;
    let s = store_with(n * crate::stored_footprint(3, 10, 0, false), 1);
    let keys: Vec<String> = (0..n).map(|i| format!("k{i:02}")).collect();
    for k in &keys {
        set(&s, k, "0123456789");
    }
    for k in &keys {
        assert!(get(&s, k).is_some());
    }
    set(&s, "new", "0123456789");
    assert_eq!(get(&s, &keys[0]), None, "the oldest goes after its pass");
    let stats = s.stats();
    assert_eq!((stats.evictions, stats.evicted_unfetched), (1, 0));
    assert_eq!(stats.moves_within_lru, n as u64);
    let order = lru(&s);
    assert_eq!(order[0], "new");
    assert_eq!(
        order[1..],
        keys[1..].iter().rev().cloned().collect::<Vec<_>>()[..]
    );
    assert_eq!(hand(&s).as_deref(), Some("k01"));
    check(&s);
}

#[test]
fn one_eviction_spares_at_most_hand_search_read_items() {
    // More read items than the hand spares in one eviction: the one after the first
    // HAND_SEARCH goes although it was read (`evicted_active`).
    let n = HAND_SEARCH + 10;
    let s = store_with(n * crate::stored_footprint(4, 10, 0, false), 1);
    let keys: Vec<String> = (0..n).map(|i| format!("k{i:03}")).collect();
    for k in &keys {
        set(&s, k, "0123456789");
    }
    for k in &keys {
        assert!(get(&s, k).is_some());
    }
    set(&s, "newk", "0123456789");
    let stats = s.stats();
    assert_eq!((stats.evictions, stats.evicted_active), (1, 1));
    assert_eq!(stats.moves_within_lru, HAND_SEARCH as u64);
    assert_eq!(get(&s, &keys[HAND_SEARCH]), None);
    assert!(get(&s, &keys[0]).is_some());
    assert!(get(&s, &keys[HAND_SEARCH + 1]).is_some());
    check(&s);
}

#[test]
fn expired_reclaimed_before_live_evicted() {
    // Room for four items, one of them with an expiry.
    let s = store_with(
        3 * crate::stored_footprint(2, 10, 0, false) + crate::stored_footprint(2, 10, 0, true),
        1,
    );
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
    // k0 is evicted, the hand spares k1 (read), then k2 goes.
    assert_eq!(
        *seen.lock().unwrap(),
        [
            ("k0".to_string(), 10, false, 0, 0),
            ("k2".to_string(), 10, false, 0, 0)
        ]
    );
    assert_eq!(s.stats().evictions, 2);
}
