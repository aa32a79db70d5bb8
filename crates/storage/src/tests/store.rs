//! Store-wide behaviour: the shard count, CAS values unique across shards and writes,
//! stats, keys over the limit, sharing between threads, the prefetch hint.

use super::*;
use std::collections::HashSet;

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
                write(&s, WriteMode::Set, key.as_bytes(), 0, 0, 0, &value),
                StoreResult::Stored,
                "-m {limit} -I {max_item}: {largest} bytes with {} shards",
                s.shard_count()
            );
        }
        check(&s);
    }
}

#[test]
fn cas_unique_across_shards_and_writes() {
    let s = store_with(64 * MB, 16);
    let mut seen = HashSet::new();
    for i in 0..2000 {
        let key = format!("key{i}");
        set(&s, &key, "1");
        assert!(seen.insert(gets(&s, &key).unwrap().2));
        assert_eq!(arith(&s, key.as_bytes(), 1, true), ArithResult::Value(2));
        assert!(seen.insert(gets(&s, &key).unwrap().2));
        write(&s, WriteMode::Append, key.as_bytes(), 0, 0, 0, b"0");
        assert!(seen.insert(gets(&s, &key).unwrap().2));
    }
    assert!(!seen.contains(&0));
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
    assert_eq!(
        stats.bytes as usize,
        2 * crate::stored_footprint(2, 10, 0, false)
    );
    assert_eq!(
        stats.limit_bytes as usize,
        2 * crate::stored_footprint(2, 10, 0, false)
    );
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
    assert!(delete(&s, b"k2"));
    assert!(!delete(&s, b"k2"));
    assert_eq!(s.stats().curr_items, 1);
}

#[test]
fn overlong_keys_are_never_stored() {
    let s = store();
    let key = vec![b'k'; 251];
    assert_eq!(
        write(&s, WriteMode::Set, &key, 0, 0, 0, b"v"),
        StoreResult::NotStored
    );
    assert!(!s.get(&key, Read::GET, |i| i.is_some()));
    assert!(!delete(&s, &key) && !s.touch(&key, 1));
    assert_eq!(arith(&s, &key, 1, true), ArithResult::NotFound);
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
                        2 => drop(arith(&s, key.as_bytes(), 1, true)),
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

/// The batch look-ahead names, for each key, what the one-key look-ahead names (the
/// same record bytes, in place), across shards and with keys missing; a key over
/// [`KEY_MAX_BYTES`] names nothing, and keys past [`SPAN_BATCH`] are not read. Every
/// record named comes after its table slot was named.
#[test]
fn record_spans_name_what_record_span_names_for_each_key() {
    record_spans_agree(store_with(64 * MB, 8));
}

/// The same with more shards than the batch sorts keys into at once (`SHARD_SLOTS`):
/// keys of two shards whose indices share their low bits are told apart.
#[test]
fn record_spans_tell_apart_shards_of_one_slot() {
    let s = store_with(512 * MB, 128);
    assert_eq!(s.shard_count(), 128);
    record_spans_agree(s);
}

fn record_spans_agree(s: Store) {
    let stored: Vec<String> = (0..40).map(|i| format!("key:{i:07}")).collect();
    for key in &stored {
        assert_eq!(
            set(&s, key, &format!("value of {key}")),
            StoreResult::Stored
        );
    }
    // Two keys whose shards differ in the bits above the lowest five lead the batch.
    let mut ordered: Vec<&String> = stored.iter().collect();
    if s.shard_count() > 32 {
        let pair = (0..stored.len())
            .flat_map(|a| (0..stored.len()).map(move |b| (a, b)))
            .find(|&(a, b)| {
                let (x, y) = (
                    s.shard_of(stored[a].as_bytes()),
                    s.shard_of(stored[b].as_bytes()),
                );
                x != y && x % 32 == y % 32
            })
            .expect("40 keys in 128 shards: two share a slot");
        ordered.retain(|k| **k != stored[pair.0] && **k != stored[pair.1]);
        ordered.insert(0, &stored[pair.1]);
        ordered.insert(0, &stored[pair.0]);
    }
    let long = vec![b'k'; KEY_MAX_BYTES + 1];
    let mut batch: Vec<&[u8]> = Vec::new();
    for (i, key) in ordered.iter().take(12).enumerate() {
        batch.push(key.as_bytes());
        if i % 4 == 0 {
            batch.push(b"never-stored");
        }
    }
    batch.push(&long);
    assert_eq!(batch.len(), SPAN_BATCH);
    let shards: HashSet<usize> = batch.iter().map(|k| s.shard_of(k)).collect();
    assert!(shards.len() > 2, "the batch spans shards: {shards:?}");

    let span = |key: &[u8]| s.record_span(key, |r| r.as_ptr_range());
    let mut slots = 0;
    let mut named = vec![None; batch.len()];
    s.record_spans(
        &batch,
        |_| slots += 1,
        |i, bytes| {
            assert!(named[i].is_none(), "key {i} named twice");
            named[i] = Some(bytes.as_ptr_range());
        },
    );
    for (i, key) in batch.iter().enumerate() {
        assert_eq!(
            named[i],
            span(key),
            "key {i}: {:?}",
            String::from_utf8_lossy(key)
        );
    }
    assert!(
        named.last().unwrap().is_none(),
        "a key over the limit names nothing"
    );
    let found = named.iter().flatten().count();
    assert!(found >= 12, "every stored key names its record: {found}");
    assert!(
        slots >= found,
        "a record is named after its slot: {slots} < {found}"
    );

    // Past SPAN_BATCH keys the rest is not read.
    let many: Vec<&[u8]> = stored.iter().map(|k| k.as_bytes()).collect();
    let mut seen = Vec::new();
    s.record_spans(&many, |_| {}, |i, _| seen.push(i));
    seen.sort_unstable();
    assert_eq!(seen, (0..SPAN_BATCH).collect::<Vec<_>>());
    // And an empty batch reads nothing.
    s.record_spans(&[], |_| panic!("no key"), |_, _| panic!("no key"));
}

#[test]
fn hash_table_figures_follow_the_tables() {
    let s = store();
    let empty = s.stats();
    assert_eq!((empty.hash_bytes, empty.hash_buckets), (0, 0));
    for i in 0..1000 {
        set(&s, &format!("key{i}"), "v");
    }
    let stats = s.stats();
    assert!(stats.hash_buckets >= 1000, "{stats:?}");
    assert!(stats.hash_bytes >= stats.hash_buckets * 4, "{stats:?}");
}

#[test]
fn a_thread_that_finds_a_shard_locked_counts_a_wait() {
    let s = store_with(MB, 1);
    set(&s, "k", "v");
    assert_eq!(s.lock_waits(), 0);
    std::thread::scope(|scope| {
        // The get's closure runs under the shard lock: it holds it until the other
        // thread has found it held (and counted so) before blocking on it.
        s.get(b"k", Read::GET, |_| {
            scope.spawn(|| set(&s, "k", "w"));
            while s.lock_waits() == 0 {
                std::thread::yield_now();
            }
        });
    });
    assert_eq!(s.lock_waits(), 1);
    assert_eq!(get(&s, "k").as_deref(), Some("w"));
    assert_eq!(s.stats().lock_waits, 1);
}
