//! memcached 1.6.45's meta additions in the store: a CAS the client chooses (`E`), a
//! delete that keeps the item with an empty value (`md … x`), and an append that
//! creates a missing item (`ms … MA N`).

use super::*;

fn chosen(mode: WriteMode, cas: u64) -> Write {
    Write {
        new_cas: cas,
        ..Write { mode, ..MS }
    }
}

#[test]
fn a_chosen_cas_is_the_one_clients_see() {
    let s = store_with(64 * MB, 1);
    let (_, first) = ms(&s, "a", "1", MS);
    assert_eq!(
        ms(&s, "k", "v", chosen(WriteMode::Set, 999)),
        (StoreResult::Stored, 999)
    );
    assert_eq!(cas_of(&s, b"k"), Some(999));
    // Generated CAS values go on growing past the hidden own CAS of `k`.
    let (_, next) = ms(&s, "b", "2", MS);
    assert_eq!(next, first + 2);
    // Compares (cas, guarded append, delete, arith) see the chosen CAS.
    let cas = |c| Write {
        cas: c,
        ..Write::new(WriteMode::Cas)
    };
    assert_eq!(s.write(b"k", b"w", &cas(next)).0, StoreResult::Exists);
    assert_eq!(s.write(b"k", b"w", &cas(999)).0, StoreResult::Stored);
    // A plain write gives a generated CAS again, and drops the alias.
    let (_, generated) = ms(&s, "k", "x", MS);
    assert_eq!(cas_of(&s, b"k"), Some(generated));
    // Zero is no choice.
    let (_, zero) = ms(&s, "z", "x", chosen(WriteMode::Set, 0));
    assert_eq!(zero, generated + 1);
    check(&s);
}

#[test]
fn flush_all_goes_by_write_order_not_by_a_chosen_cas() {
    let s = store_with(64 * MB, 1);
    ms(&s, "high", "v", chosen(WriteMode::Set, u64::MAX));
    s.flush_all(0);
    assert_eq!(get(&s, "high"), None);
    ms(&s, "low", "v", chosen(WriteMode::Set, 1));
    assert_eq!(cas_of(&s, b"low"), Some(1));
    check(&s);
}

#[test]
fn aliases_go_with_their_items() {
    let s = store_with(64 * MB, 1);
    for i in 0..100u64 {
        ms(
            &s,
            &format!("k{i}"),
            "12",
            chosen(WriteMode::Set, 5_000 + i),
        );
    }
    // Removed, rewritten in place, incremented in place, invalidated.
    assert!(delete(&s, b"k0"));
    ms(&s, "k1", "34", MS);
    assert_eq!(arith(&s, b"k2", 1, true), ArithResult::Value(13));
    let invalidate = Delete {
        invalidate: true,
        ..Delete::default()
    };
    assert_eq!(s.delete(b"k3", invalidate), DeleteResult::Invalidated);
    for key in ["k1", "k2", "k3"] {
        assert!(cas_of(&s, key.as_bytes()).unwrap() < 5_000, "{key}");
    }
    assert_eq!(cas_of(&s, b"k4"), Some(5_004));
    s.flush_all(0);
    for i in 0..100 {
        assert_eq!(get(&s, &format!("k{i}")), None);
    }
    // `check` asserts every alias belongs to an item held.
    check(&s);
}

#[test]
fn arith_invalidate_and_vivify_take_a_chosen_cas() {
    let s = store();
    ms(&s, "n", "5", MS);
    let incr = Arith {
        new_cas: 4321,
        ..Arith::new(true, 1)
    };
    let seen = s.arith(b"n", incr, |r, item| (r, item.map(|i| i.cas())));
    assert_eq!(seen, (ArithResult::Value(6), Some(4321)));
    assert_eq!(cas_of(&s, b"n"), Some(4321));
    let create = Arith {
        create: Some(Initial {
            value: 10,
            exptime: 0,
        }),
        ..incr
    };
    let seen = s.arith(
        b"m",
        Arith {
            new_cas: 55,
            ..create
        },
        |r, i| (r, i.map(|i| i.cas())),
    );
    assert_eq!(seen, (ArithResult::Created(10), Some(55)));
    let invalidate = Delete {
        invalidate: true,
        new_cas: 1234,
        ..Delete::default()
    };
    assert_eq!(s.delete(b"n", invalidate), DeleteResult::Invalidated);
    let (_, cas, _, _, stale, _, _) = mg(&s, "n", Read::PEEK).unwrap();
    assert_eq!((cas, stale), (1234, true));
    let vivify = Read {
        vivify: true,
        new_cas: 66,
        ..Read::GET
    };
    assert_eq!(mg(&s, "v", vivify).unwrap().1, 66);
    // A hit keeps its CAS.
    assert_eq!(
        mg(
            &s,
            "v",
            Read {
                new_cas: 77,
                ..vivify
            }
        )
        .unwrap()
        .1,
        66
    );
    check(&s);
}

#[test]
fn remove_value_keeps_an_empty_item() {
    let s = store();
    let w = Write {
        flags: 5,
        exptime: 100,
        ..MS
    };
    let (_, cas) = ms(&s, "k", "abc", w);
    let x = Delete {
        remove_value: true,
        ..Delete::default()
    };
    assert_eq!(s.delete(b"k", x), DeleteResult::Deleted);
    // Empty, flags 0, no expiry, the same CAS, not stale.
    assert_eq!(gets(&s, "k"), Some((String::new(), 0, cas)));
    let (_, _, exptime, _, stale, _, _) = mg(&s, "k", Read::PEEK).unwrap();
    assert_eq!((exptime, stale), (0, false));
    // With a TTL and an invalidation: a new CAS, stale; with `E` its CAS.
    let x_invalidate = Delete {
        invalidate: true,
        exptime: Some(30),
        ..x
    };
    assert_eq!(s.delete(b"k", x_invalidate), DeleteResult::Invalidated);
    let (_, new, exptime, _, stale, _, _) = mg(&s, "k", Read::PEEK).unwrap();
    assert!(new > cas);
    assert_eq!((exptime, stale), (s.clock().now() + 30, true));
    let x_chosen = Delete { new_cas: 42, ..x };
    assert_eq!(s.delete(b"k", x_chosen), DeleteResult::Deleted);
    assert_eq!(mg(&s, "k", Read::PEEK).unwrap().1, 42);
    // A CAS to compare still guards it; a miss is a miss.
    let guarded = Delete { cas: Some(1), ..x };
    assert_eq!(s.delete(b"k", guarded), DeleteResult::Exists);
    assert_eq!(s.delete(b"none", x), DeleteResult::NotFound);
    check(&s);
}

#[test]
fn append_with_vivify_creates_the_missing_item() {
    let s = store();
    let append = Write {
        flags: 3,
        exptime: 5,
        vivify: Some(100),
        ..Write::new(WriteMode::Append)
    };
    assert_eq!(s.write(b"a", b"z", &append).0, StoreResult::Stored);
    let (value, flags, _) = gets(&s, "a").unwrap();
    let (_, _, exptime, _, _, _, _) = mg(&s, "a", Read::PEEK).unwrap();
    // The flags as sent, the vivify TTL (not `T`'s).
    assert_eq!(
        (value.as_str(), flags, exptime),
        ("z", 3, s.clock().now() + 100)
    );
    // Found: an ordinary append.
    assert_eq!(s.write(b"a", b"y", &append).0, StoreResult::Stored);
    assert_eq!(get(&s, "a").unwrap(), "zy");
    // Without vivify a missing item is not stored.
    let plain = Write {
        vivify: None,
        ..append
    };
    assert_eq!(s.write(b"b", b"z", &plain).0, StoreResult::NotStored);
    check(&s);
}

#[test]
fn chosen_cas_values_count_against_the_budget() {
    // 64 KiB, one shard: thousands of small items, each written with a chosen CAS.
    let s = store_with(64 * 1024, 1);
    for i in 0..20_000u64 {
        let key = format!("k{i}");
        assert_eq!(
            ms(&s, &key, "v", chosen(WriteMode::Set, 1_000_000 + i)).0,
            StoreResult::Stored
        );
        if i % 997 == 0 {
            // The items' bytes and the alias table's together stay within the budget.
            check(&s);
        }
    }
    let stats = s.stats();
    assert!(stats.evictions > 0);
    // The alias table takes room: fewer items fit than with generated CAS values.
    let plain = store_with(64 * 1024, 1);
    for i in 0..20_000u64 {
        ms(&plain, &format!("k{i}"), "v", MS);
    }
    assert!(stats.curr_items < plain.stats().curr_items);
    // The newest ones are still there, with the CAS their writer chose.
    assert_eq!(cas_of(&s, b"k19999"), Some(1_019_999));
    // Writing them over with generated CAS values frees the table, and new items
    // alone fill the shard again, to within one item (of the largest key here).
    for i in 0..20_000u64 {
        ms(&s, &format!("k{i}"), "v", MS);
    }
    check(&s);
    let held = s.shards[0].lock().held();
    assert_eq!(held, s.stats().bytes as usize);
    for i in 20_000..20_100u64 {
        ms(&s, &format!("k{i}"), "v", MS);
    }
    let bytes = s.stats().bytes as usize;
    assert!(s.shard_budget() - bytes < item_footprint(6, 1), "{bytes}");
}

#[test]
fn an_item_that_cannot_keep_its_chosen_cas_beside_it_is_dropped() {
    // One item filling the whole shard: no room for an alias table beside it.
    let s = store_with(crate::stored_footprint(1, 4000, 0, false), 1);
    let value = "x".repeat(4000);
    assert_eq!(ms(&s, "a", &value, MS).0, StoreResult::Stored);
    assert_eq!(
        ms(&s, "a", &value, chosen(WriteMode::Set, 77)),
        (StoreResult::OutOfMemory, 0)
    );
    assert_eq!(cas_of(&s, b"a"), None);
    check(&s);
}
