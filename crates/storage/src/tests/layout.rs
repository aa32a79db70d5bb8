//! The record layout seen through the store (`item.rs`): an expiry given to an item
//! stored without one (its record stored anew, `shard/relocate.rs`), and CAS values of
//! 2^48 and more, which take a wide record.

use super::*;
use crate::item::WIDE_CAS_MIN;

/// A one-shard store (CAS values are the counter itself) whose next write has CAS
/// `next`.
fn store_at_cas(next: u64) -> Store {
    let s = store_with(64 * MB, 1);
    s.shards[0].lock().set_cas_counter(next - 1);
    s
}

fn bytes(s: &Store) -> usize {
    s.stats().bytes as usize
}

#[test]
fn touch_gives_an_expiry_to_an_item_stored_without_one_and_keeps_the_rest() {
    // A small record, one in the 2-byte classes' last step, and a medium one; with and
    // without flags.
    for len in [10usize, 233, 5000] {
        for flags in [0u32, 7] {
            let s = store_with(64 * MB, 1);
            let value = vec![b'v'; len];
            write(&s, WriteMode::Set, b"k", flags, 0, 0, &value);
            write(&s, WriteMode::Set, b"other", 0, 0, 0, b"x");
            let other = crate::stored_footprint(5, 1, 0, false);
            assert_eq!(
                bytes(&s),
                crate::stored_footprint(1, len, flags, false) + other
            );
            let (_, _, cas) = gets(&s, "k").unwrap();
            let now = s.clock().now();
            // gat: the caller sees the new expiry at once.
            let seen = s.get(b"k", Read::touch(100), |hit| {
                let hit = hit.unwrap();
                (hit.exptime(), hit.value().to_vec(), hit.flags(), hit.cas())
            });
            assert_eq!(seen, (now + 100, value.clone(), flags, cas));
            let what = format!("{len} bytes, flags {flags}");
            assert_eq!(
                bytes(&s),
                crate::stored_footprint(1, len, flags, true) + other,
                "{what}"
            );
            let (got, got_flags, got_cas) = gets(&s, "k").unwrap();
            assert_eq!(
                (got.into_bytes(), got_flags, got_cas),
                (value.clone(), flags, cas),
                "{what}"
            );
            let seen = mg(&s, "k", Read::PEEK).unwrap();
            assert_eq!((seen.2, seen.3), (now + 100, true), "{what}: fetched kept");
            check(&s);
            // Back to no expiry: in place, the field stays.
            assert!(s.touch(b"k", 0));
            assert_eq!(mg(&s, "k", Read::PEEK).unwrap().2, 0);
            assert_eq!(
                bytes(&s),
                crate::stored_footprint(1, len, flags, true) + other
            );
            s.clock().advance(200);
            assert_eq!(gets(&s, "k").unwrap().2, cas, "{what}: never expires");
            // And a short expiry again, in place: it holds.
            assert!(s.touch(b"k", 10));
            check(&s);
            s.clock().advance(10);
            assert_eq!(get(&s, "k"), None, "{what}: the expiry holds");
            assert_eq!(get(&s, "other").as_deref(), Some("x"));
            check(&s);
        }
    }
}

#[test]
fn a_touch_that_needs_room_evicts_another_item_never_the_touched_one() {
    // Room for exactly three items without an expiry.
    let s = store_with(3 * crate::stored_footprint(2, 40, 0, false), 1);
    let value = "v".repeat(40);
    for k in ["k0", "k1", "k2"] {
        set(&s, k, &value);
    }
    // k0, the oldest, is the one touched: stored anew, it pushes out the next oldest.
    assert!(s.touch(b"k0", 100));
    assert_eq!(get(&s, "k0").as_deref(), Some(&value[..]));
    assert_eq!(get(&s, "k1"), None);
    assert_eq!(s.stats().evictions, 1);
    check(&s);
}

#[test]
fn invalidation_with_an_expiry_stores_the_item_anew() {
    let s = store();
    ms(&s, "k", "abc", MS);
    let invalidate = Delete {
        invalidate: true,
        exptime: Some(30),
        ..Delete::default()
    };
    assert_eq!(s.delete(b"k", invalidate), DeleteResult::Invalidated);
    let (value, _, exptime, _, stale, ..) = mg(&s, "k", Read::PEEK).unwrap();
    assert_eq!(
        (value.as_str(), exptime, stale),
        ("abc", s.clock().now() + 30, true)
    );
    check(&s);
}

#[test]
fn cas_values_past_48_bits_take_a_wide_record() {
    let s = store_at_cas(WIDE_CAS_MIN - 6);
    // A 64-byte record (a 2-byte class of its own) and a 23-byte one (in the smallest
    // chunk, with room for the two more bytes).
    let long = "m".repeat(42);
    set(&s, "m", &long);
    set(&s, "a", "x");
    set(&s, "n", "5");
    ms(&s, "i", "inv", MS);
    write(&s, WriteMode::Set, b"t", 3, 0, 0, b"touched");
    assert_eq!(gets(&s, "t").unwrap().2, WIDE_CAS_MIN - 2);
    // Rewrites of the same length: in place for "a" (same class), a new record for
    // "m" (the wide one is a class up).
    set(&s, "a", "y");
    assert_eq!(gets(&s, "a").unwrap(), ("y".into(), 0, WIDE_CAS_MIN - 1));
    set(&s, "a", "z");
    assert_eq!(gets(&s, "a").unwrap(), ("z".into(), 0, WIDE_CAS_MIN));
    let narrow = bytes(&s);
    set(&s, "m", &long);
    assert_eq!(gets(&s, "m").unwrap(), (long.clone(), 0, WIDE_CAS_MIN + 1));
    assert_eq!(
        bytes(&s),
        narrow - crate::stored_footprint(1, 42, 0, false) + crate::item::footprint(23, 1, 42)
    );
    check(&s);
    // incr in place cannot widen the record: the item is stored anew.
    assert_eq!(arith(&s, b"n", 1, true), ArithResult::Value(6));
    assert_eq!(gets(&s, "n").unwrap(), ("6".into(), 0, WIDE_CAS_MIN + 2));
    // Invalidation with a fresh CAS: stored anew, marked stale.
    let invalidate = Delete {
        invalidate: true,
        ..Delete::default()
    };
    assert_eq!(s.delete(b"i", invalidate), DeleteResult::Invalidated);
    let (value, cas, _, _, stale, ..) = mg(&s, "i", Read::PEEK).unwrap();
    assert_eq!(
        (value.as_str(), cas, stale),
        ("inv", WIDE_CAS_MIN + 3, true)
    );
    // A touch keeps a narrow CAS narrow, and a wide one wide.
    assert!(s.touch(b"t", 100));
    assert!(s.touch(b"m", 100));
    assert_eq!(
        gets(&s, "t").unwrap(),
        ("touched".into(), 3, WIDE_CAS_MIN - 2)
    );
    assert_eq!(gets(&s, "m").unwrap(), (long, 0, WIDE_CAS_MIN + 1));
    // Later writes stay wide and in place when they fit.
    set(&s, "n", "7");
    assert_eq!(gets(&s, "n").unwrap(), ("7".into(), 0, WIDE_CAS_MIN + 4));
    check(&s);
}
