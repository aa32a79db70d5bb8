//! Writes: every mode, the CAS a write hands back, the CAS it compares (cas, guarded
//! append/prepend, invalidate), base64 keys, and what a refused write leaves behind.

use super::*;

#[test]
fn set_add_replace() {
    let s = store();
    let add = |k: &str, v: &str| write(&s, WriteMode::Add, k.as_bytes(), 1, 0, 0, v.as_bytes());
    let replace =
        |k: &str, v: &str| write(&s, WriteMode::Replace, k.as_bytes(), 2, 0, 0, v.as_bytes());
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
    write(&s, WriteMode::Set, b"e", 0, 1, 0, b"old");
    s.clock().advance(1);
    assert_eq!(add("e", "new"), StoreResult::Stored);
    assert_eq!(get(&s, "e").as_deref(), Some("new"));
    assert_eq!(s.stats().total_items, 5);
    check(&s);
}

#[test]
fn append_prepend_keep_flags_and_exptime() {
    let s = store();
    let app = |mode, v: &str| write(&s, mode, b"k", 99, 0, 0, v.as_bytes());
    assert_eq!(app(WriteMode::Append, "x"), StoreResult::NotStored);
    assert_eq!(app(WriteMode::Prepend, "x"), StoreResult::NotStored);
    write(&s, WriteMode::Set, b"k", 7, 10, 0, b"mid");
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
        write(&s, WriteMode::Set, b"k", 0, 0, 0, &half),
        StoreResult::Stored
    );
    assert_eq!(
        write(&s, WriteMode::Append, b"k", 0, 0, 0, &half),
        StoreResult::NotStored
    );
    assert_eq!(s.get(b"k", Read::GET, |i| i.unwrap().value().len()), MB / 2);
}

#[test]
fn cas_command() {
    let s = store();
    let cas = |c: u64, v: &str| write(&s, WriteMode::Cas, b"k", 0, 0, c, v.as_bytes());
    assert_eq!(cas(1, "v"), StoreResult::NotFound);
    set(&s, "k", "v1");
    let c1 = gets(&s, "k").unwrap().2;
    assert_eq!(cas(c1 + 1, "v2"), StoreResult::Exists);
    assert_eq!(cas(c1, "v2"), StoreResult::Stored);
    assert_eq!(get(&s, "k").as_deref(), Some("v2"));
    assert_eq!(cas(c1, "v3"), StoreResult::Exists, "the CAS moved on");
}

#[test]
fn too_large_set_removes_old_value() {
    let s = store();
    set(&s, "k", "old");
    let big = vec![0u8; MB];
    assert_eq!(
        write(&s, WriteMode::Add, b"k", 0, 0, 0, &big),
        StoreResult::TooLarge
    );
    assert!(get(&s, "k").is_some(), "only set removes");
    assert_eq!(
        write(&s, WriteMode::Set, b"k", 0, 0, 0, &big),
        StoreResult::TooLarge
    );
    assert_eq!(get(&s, "k"), None);
    // The limit is memcached's: header 48 + CAS 8 + key + 1 + value + 2.
    let fits = vec![0u8; MB - 48 - 8 - 1 - 1 - 2];
    assert_eq!(
        write(&s, WriteMode::Set, b"k", 0, 0, 0, &fits),
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
        let r = write(&s, WriteMode::Replace, key.as_bytes(), 0, 0, 0, &value);
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
        write(&s, WriteMode::Set, b"k0", 0, 0, 0, &value),
        StoreResult::OutOfMemory
    );
    assert_eq!(get(&s, "k0"), None, "a failed set leaves no stale value");
    check(&s);
}

#[test]
fn store_hands_back_the_cas_the_item_carries() {
    let s = store();
    let (result, cas) = write_cas(&s, WriteMode::Set, b"k", 3, 0, 0, b"v");
    assert_eq!(result, StoreResult::Stored);
    assert_eq!(cas_of(&s, b"k"), Some(cas));
    let (result, again) = write_cas(&s, WriteMode::Append, b"k", 0, 0, 0, b"w");
    assert_eq!(result, StoreResult::Stored);
    assert!(again > cas);
    assert_eq!(cas_of(&s, b"k"), Some(again));
    assert_eq!(value_of(&s, b"k").unwrap(), b"vw");
    check(&s);
}

#[test]
fn refused_stores_hand_back_no_cas() {
    let s = store();
    assert_eq!(
        write_cas(&s, WriteMode::Replace, b"k", 0, 0, 0, b"v"),
        (StoreResult::NotStored, 0)
    );
    write_cas(&s, WriteMode::Set, b"k", 0, 0, 0, b"v");
    assert_eq!(
        write_cas(&s, WriteMode::Add, b"k", 0, 0, 0, b"v"),
        (StoreResult::NotStored, 0)
    );
    assert_eq!(
        write_cas(&s, WriteMode::Cas, b"k", 0, 0, 1, b"v"),
        (StoreResult::Exists, 0)
    );
}

#[test]
fn append_with_a_cas_compares_it() {
    let s = store();
    let (_, cas) = write_cas(&s, WriteMode::Set, b"k", 0, 0, 0, b"a");
    assert_eq!(
        write_cas(&s, WriteMode::Append, b"k", 0, 0, cas + 1, b"b").0,
        StoreResult::Exists
    );
    assert_eq!(
        write_cas(&s, WriteMode::Prepend, b"missing", 0, 0, cas, b"b").0,
        StoreResult::NotStored
    );
    assert_eq!(
        write_cas(&s, WriteMode::Prepend, b"k", 0, 0, cas, b"b").0,
        StoreResult::Stored
    );
    assert_eq!(value_of(&s, b"k").unwrap(), b"ba");
}

#[test]
fn a_too_large_set_removes_the_old_value() {
    let s = store();
    write_cas(&s, WriteMode::Set, b"k", 0, 0, 0, b"old");
    let big = vec![0u8; MB];
    assert_eq!(
        write_cas(&s, WriteMode::Set, b"k", 0, 0, 0, &big),
        (StoreResult::TooLarge, 0)
    );
    assert_eq!(value_of(&s, b"k"), None);
}

#[test]
fn peeking_a_cas_does_not_count_as_a_fetch() {
    // memcached looks items up with DONT_UPDATE for cas checks: an item only
    // deleted is still "never fetched" when it is evicted.
    let s = store_with(64 * MB, 1);
    let (_, cas) = write_cas(&s, WriteMode::Set, b"k", 0, 0, 0, b"v");
    assert_eq!(
        write_cas(&s, WriteMode::Append, b"k", 0, 0, cas + 1, b"w").0,
        StoreResult::Exists
    );
    s.flush_all(0);
    assert_eq!(value_of(&s, b"k"), None);
    assert_eq!(s.stats().expired_unfetched, 1);
}

#[test]
fn set_returns_the_new_cas_and_modes_follow_memcached() {
    let s = store();
    let (r, cas) = ms(&s, "k", "a", MS);
    assert_eq!(r, StoreResult::Stored);
    assert_eq!(mg(&s, "k", Read::PEEK).unwrap().1, cas);
    let add = Write {
        mode: WriteMode::Add,
        ..MS
    };
    assert_eq!(ms(&s, "k", "b", add), (StoreResult::NotStored, 0));
    assert_eq!(ms(&s, "new", "b", add).0, StoreResult::Stored);
    let replace = Write {
        mode: WriteMode::Replace,
        ..MS
    };
    assert_eq!(ms(&s, "nope", "b", replace), (StoreResult::NotStored, 0));
    let append = Write {
        mode: WriteMode::Append,
        flags: 9,
        ..MS
    };
    assert_eq!(ms(&s, "k", "bc", append).0, StoreResult::Stored);
    let prepend = Write {
        mode: WriteMode::Prepend,
        ..MS
    };
    assert_eq!(ms(&s, "k", "_", prepend).0, StoreResult::Stored);
    assert_eq!(mg(&s, "k", Read::PEEK).unwrap().0, "_abc");
    assert_eq!(ms(&s, "nope", "b", append).0, StoreResult::NotStored);
    check(&s);
}

#[test]
fn compare_cas_per_mode() {
    let s = store();
    let (_, cas) = ms(&s, "k", "a", MS);
    let with = |mode, cas| Write { mode, cas, ..MS };
    // `C` makes set and replace a cas (the connection maps both onto `Cas`): a missing
    // key is NotFound, another CAS (even 0) Exists.
    assert_eq!(
        ms(&s, "nope", "x", with(WriteMode::Cas, 1)).0,
        StoreResult::NotFound
    );
    assert_eq!(
        ms(&s, "k", "x", with(WriteMode::Cas, 0)).0,
        StoreResult::Exists
    );
    assert_eq!(
        ms(&s, "k", "x", with(WriteMode::Cas, cas + 1)).0,
        StoreResult::Exists
    );
    assert_eq!(
        ms(&s, "k", "b", with(WriteMode::Cas, cas)).0,
        StoreResult::Stored
    );
    // Append and Prepend: 0 means no check; a missing key is NotStored.
    assert_eq!(
        ms(&s, "k", "x", with(WriteMode::Append, 1)).0,
        StoreResult::Exists
    );
    assert_eq!(
        ms(&s, "k", "c", with(WriteMode::Append, 0)).0,
        StoreResult::Stored
    );
    assert_eq!(
        ms(&s, "nope", "c", with(WriteMode::Append, 5)).0,
        StoreResult::NotStored
    );
    let cas = mg(&s, "k", Read::PEEK).unwrap().1;
    assert_eq!(
        ms(&s, "k", "d", with(WriteMode::Prepend, cas)).0,
        StoreResult::Stored
    );
    assert_eq!(mg(&s, "k", Read::PEEK).unwrap().0, "dbc");
    // Add ignores it.
    assert_eq!(
        ms(&s, "a", "1", with(WriteMode::Add, 77)).0,
        StoreResult::Stored
    );
    assert_eq!(
        ms(&s, "a", "1", with(WriteMode::Add, 77)).0,
        StoreResult::NotStored
    );
    check(&s);
}

#[test]
fn a_stale_cas_with_invalidate_stores_a_stale_value_keeping_ttl_and_win() {
    let s = store();
    let (_, old) = ms(&s, "k", "a", Write { exptime: 100, ..MS });
    // A meta get wins the item first.
    s.get(b"k", Read::GET, |hit| hit.unwrap().mark_win_sent());
    let stale = Write {
        mode: WriteMode::Cas,
        cas: old - 1,
        invalidate: true,
        exptime: 5,
        ..MS
    };
    let (r, cas) = ms(&s, "k", "b", stale);
    assert_eq!(r, StoreResult::Stored);
    assert!(cas > old);
    let (value, _, exptime, fetched, is_stale, win, _) = mg(&s, "k", Read::PEEK).unwrap();
    assert_eq!(value, "b");
    assert_eq!(exptime, s.clock().realtime(100));
    assert!(!fetched && is_stale && win);
    // A higher CAS is still refused; a plain set clears the marks.
    let higher = Write {
        cas: cas + 10,
        ..stale
    };
    assert_eq!(ms(&s, "k", "c", higher).0, StoreResult::Exists);
    ms(&s, "k", "c", MS);
    let (_, _, _, _, is_stale, win, _) = mg(&s, "k", Read::PEEK).unwrap();
    assert!(!is_stale && !win);
    check(&s);
}

#[test]
fn base64_keys_are_marked_and_append_drops_the_mark() {
    let s = store();
    let binary = Write {
        key_binary: true,
        ..MS
    };
    ms(&s, "k", "a", binary);
    assert!(s.get(b"k", Read::PEEK, |i| i.unwrap().key_is_binary()));
    let append = Write {
        mode: WriteMode::Append,
        ..binary
    };
    ms(&s, "k", "b", append);
    assert!(!s.get(b"k", Read::PEEK, |i| i.unwrap().key_is_binary()));
}

#[test]
fn too_large_removes_the_key_in_every_mode() {
    let s = store_with(64 * MB, 1);
    ms(&s, "k", "a", MS);
    let big = "x".repeat(MB);
    let append = Write {
        mode: WriteMode::Append,
        ..MS
    };
    assert_eq!(ms(&s, "k", &big, append), (StoreResult::TooLarge, 0));
    assert!(mg(&s, "k", Read::PEEK).is_none());
    check(&s);
}

#[test]
fn a_larger_record_rewritten_by_one_of_its_length_stays_where_it_is() {
    let s = store();
    // A medium record (paged) and a large one (an allocation of its own).
    for len in [5_000usize, 100_000] {
        let key = format!("big{len}");
        let at = |s: &Store| {
            s.get(key.as_bytes(), Read::GET, |i| {
                i.unwrap().value().as_ptr() as usize
            })
        };
        write(
            &s,
            WriteMode::Set,
            key.as_bytes(),
            1,
            1000,
            0,
            &vec![b'a'; len],
        );
        let (first, cas0) = (at(&s), cas_of(&s, key.as_bytes()).unwrap());
        // Same length (an expiry and flags both times), other bytes, flags and
        // exptime: rewritten in place.
        write(
            &s,
            WriteMode::Set,
            key.as_bytes(),
            2,
            100,
            0,
            &vec![b'b'; len],
        );
        assert_eq!(at(&s), first, "{len}: rewritten in place");
        assert_eq!(value_of(&s, key.as_bytes()).unwrap(), vec![b'b'; len]);
        let (_, flags, cas1) = gets(&s, &key).unwrap();
        assert_eq!(flags, 2);
        assert!(cas1 > cas0, "{len}: a fresh CAS");
        s.clock().advance(100);
        assert_eq!(get(&s, &key), None, "{len}: the new exptime holds");
        // Another length: a new record, the right bytes.
        write(
            &s,
            WriteMode::Set,
            key.as_bytes(),
            3,
            0,
            0,
            &vec![b'c'; len + 1],
        );
        assert_eq!(value_of(&s, key.as_bytes()).unwrap(), vec![b'c'; len + 1]);
        write(
            &s,
            WriteMode::Set,
            key.as_bytes(),
            3,
            0,
            0,
            &vec![b'd'; len + 1],
        );
        assert_eq!(value_of(&s, key.as_bytes()).unwrap(), vec![b'd'; len + 1]);
        check(&s);
    }
}
