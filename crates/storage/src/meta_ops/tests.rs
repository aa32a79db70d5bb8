//! Unit tests of the meta store operations, with a manual clock: each pins down a rule
//! memcached 1.6.18 follows, and every test ends by checking the shard invariants.

use super::*;
use crate::tests::{check, store, store_with, MB};

const SET: MetaSet = MetaSet {
    mode: WriteMode::Set,
    flags: 0,
    exptime: 0,
    compare_cas: None,
    invalidate: false,
    key_binary: false,
};

fn ms(s: &Store, key: &str, value: &str, opts: MetaSet) -> (StoreResult, u64) {
    s.meta_set(key.as_bytes(), value.as_bytes(), &opts)
}

/// What a meta get sees: (value, cas, exptime, fetched, stale, win_sent, created).
type Seen = (String, u64, u32, bool, bool, bool, bool);

fn mg(s: &Store, key: &str, opts: MetaGet) -> Option<Seen> {
    s.meta_get(key.as_bytes(), opts, |hit| {
        hit.map(|i| {
            (
                String::from_utf8(i.value().to_vec()).unwrap(),
                i.cas(),
                i.exptime(),
                i.fetched(),
                i.is_stale(),
                i.win_sent(),
                i.created(),
            )
        })
    })
}

const PEEK: MetaGet = MetaGet {
    bump: false,
    vivify: false,
};
const GET: MetaGet = MetaGet {
    bump: true,
    vivify: false,
};

#[test]
fn set_returns_the_new_cas_and_modes_follow_memcached() {
    let s = store();
    let (r, cas) = ms(&s, "k", "a", SET);
    assert_eq!(r, StoreResult::Stored);
    assert_eq!(mg(&s, "k", PEEK).unwrap().1, cas);
    let add = MetaSet {
        mode: WriteMode::Add,
        ..SET
    };
    assert_eq!(ms(&s, "k", "b", add), (StoreResult::NotStored, 0));
    assert_eq!(ms(&s, "new", "b", add).0, StoreResult::Stored);
    let replace = MetaSet {
        mode: WriteMode::Replace,
        ..SET
    };
    assert_eq!(ms(&s, "nope", "b", replace), (StoreResult::NotStored, 0));
    let append = MetaSet {
        mode: WriteMode::Append,
        flags: 9,
        ..SET
    };
    assert_eq!(ms(&s, "k", "bc", append).0, StoreResult::Stored);
    let prepend = MetaSet {
        mode: WriteMode::Prepend,
        ..SET
    };
    assert_eq!(ms(&s, "k", "_", prepend).0, StoreResult::Stored);
    assert_eq!(mg(&s, "k", PEEK).unwrap().0, "_abc");
    assert_eq!(ms(&s, "nope", "b", append).0, StoreResult::NotStored);
    check(&s);
}

#[test]
fn compare_cas_per_mode() {
    let s = store();
    let (_, cas) = ms(&s, "k", "a", SET);
    let with = |mode, cas| MetaSet {
        mode,
        compare_cas: Some(cas),
        ..SET
    };
    // Set and Replace become cas: a missing key is NotFound, another CAS (even 0) Exists.
    assert_eq!(
        ms(&s, "nope", "x", with(WriteMode::Set, 1)).0,
        StoreResult::NotFound
    );
    assert_eq!(
        ms(&s, "nope", "x", with(WriteMode::Replace, 1)).0,
        StoreResult::NotFound
    );
    assert_eq!(
        ms(&s, "k", "x", with(WriteMode::Set, 0)).0,
        StoreResult::Exists
    );
    assert_eq!(
        ms(&s, "k", "x", with(WriteMode::Set, cas + 1)).0,
        StoreResult::Exists
    );
    assert_eq!(
        ms(&s, "k", "b", with(WriteMode::Replace, cas)).0,
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
    let cas = mg(&s, "k", PEEK).unwrap().1;
    assert_eq!(
        ms(&s, "k", "d", with(WriteMode::Prepend, cas)).0,
        StoreResult::Stored
    );
    assert_eq!(mg(&s, "k", PEEK).unwrap().0, "dbc");
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
    let (_, old) = ms(
        &s,
        "k",
        "a",
        MetaSet {
            exptime: 100,
            ..SET
        },
    );
    // A meta get wins the item first.
    s.meta_get(b"k", GET, |hit| hit.unwrap().mark_win_sent());
    let stale = MetaSet {
        compare_cas: Some(old - 1),
        invalidate: true,
        exptime: 5,
        ..SET
    };
    let (r, cas) = ms(&s, "k", "b", stale);
    assert_eq!(r, StoreResult::Stored);
    assert!(cas > old);
    let (value, _, exptime, fetched, is_stale, win, _) = mg(&s, "k", PEEK).unwrap();
    assert_eq!(value, "b");
    assert_eq!(exptime, s.clock().realtime(100));
    assert!(!fetched && is_stale && win);
    // A higher CAS is still refused; a plain set clears the marks.
    let higher = MetaSet {
        compare_cas: Some(cas + 10),
        ..stale
    };
    assert_eq!(ms(&s, "k", "c", higher).0, StoreResult::Exists);
    ms(&s, "k", "c", SET);
    let (_, _, _, _, is_stale, win, _) = mg(&s, "k", PEEK).unwrap();
    assert!(!is_stale && !win);
    check(&s);
}

#[test]
fn base64_keys_are_marked_and_append_drops_the_mark() {
    let s = store();
    let binary = MetaSet {
        key_binary: true,
        ..SET
    };
    ms(&s, "k", "a", binary);
    assert!(s.meta_get(b"k", PEEK, |i| i.unwrap().key_is_binary()));
    let append = MetaSet {
        mode: WriteMode::Append,
        ..binary
    };
    ms(&s, "k", "b", append);
    assert!(!s.meta_get(b"k", PEEK, |i| i.unwrap().key_is_binary()));
}

#[test]
fn too_large_removes_the_key_in_every_mode() {
    let s = store_with(64 * MB, 1);
    ms(&s, "k", "a", SET);
    let big = "x".repeat(MB);
    let append = MetaSet {
        mode: WriteMode::Append,
        ..SET
    };
    assert_eq!(ms(&s, "k", &big, append), (StoreResult::TooLarge, 0));
    assert!(mg(&s, "k", PEEK).is_none());
    check(&s);
}

#[test]
fn get_bumps_after_the_caller_read_the_old_metadata() {
    let s = store_with(64 * MB, 1);
    ms(&s, "a", "1", SET);
    ms(&s, "b", "2", SET);
    s.clock().advance(5);
    s.meta_get(b"a", PEEK, |i| {
        let i = i.unwrap();
        assert_eq!(i.now() - i.last_access(), 5);
        assert!(!i.fetched());
    });
    let active = || s.shards[0].lock().unwrap().active_keys();
    assert!(active().is_empty(), "a peek does not mark the item active");
    s.meta_get(b"a", GET, |i| assert!(!i.unwrap().fetched()));
    assert_eq!(active(), [b"a"]);
    // The first read after a write leaves the access time; later ones refresh it.
    s.meta_get(b"a", GET, |i| {
        let i = i.unwrap();
        assert!(i.fetched());
        assert_eq!(i.now() - i.last_access(), 5);
    });
    s.meta_get(b"a", PEEK, |i| {
        assert_eq!(i.unwrap().last_access(), s.clock().now())
    });
    // A caller that gives up skips the bump.
    s.meta_get(b"b", GET, |i| i.unwrap().skip_bump());
    assert!(!mg(&s, "b", PEEK).unwrap().3);
    check(&s);
}

#[test]
fn vivify_creates_an_empty_accounted_item_once() {
    let s = store();
    let vivify = MetaGet {
        bump: true,
        vivify: true,
    };
    s.meta_get(b"v", vivify, |i| {
        let mut i = i.unwrap();
        assert!(i.created() && !i.win_sent());
        assert_eq!((i.value(), i.flags(), i.exptime()), (&b""[..], 0, 0));
        i.set_exptime(i.now() + 30);
        i.mark_win_sent();
    });
    let (value, _, exptime, fetched, _, win, created) = mg(&s, "v", vivify).unwrap();
    assert_eq!(value, "");
    assert_eq!(exptime, s.clock().now() + 30);
    assert!(fetched && win && !created);
    assert_eq!(s.stats().curr_items, 1);
    check(&s);
}

#[test]
fn expired_items_are_misses_for_meta_get() {
    let s = store();
    ms(&s, "k", "a", MetaSet { exptime: 2, ..SET });
    s.clock().advance(2);
    assert!(mg(&s, "k", GET).is_none());
    check(&s);
}

#[test]
fn delete_and_invalidate() {
    let s = store();
    let (_, cas) = ms(&s, "k", "a", SET);
    let delete = MetaDelete::default();
    let compare = MetaDelete {
        compare_cas: Some(cas + 1),
        ..delete
    };
    assert_eq!(s.meta_delete(b"k", &compare), MetaDeleteResult::Exists);
    s.meta_get(b"k", GET, |i| i.unwrap().mark_win_sent());
    let invalidate = MetaDelete {
        compare_cas: Some(cas),
        invalidate: true,
        exptime: Some(30),
    };
    assert_eq!(
        s.meta_delete(b"k", &invalidate),
        MetaDeleteResult::Invalidated
    );
    let (value, new_cas, exptime, _, stale, win, _) = mg(&s, "k", PEEK).unwrap();
    assert_eq!(value, "a");
    assert!(new_cas > cas && stale && !win);
    assert_eq!(exptime, s.clock().realtime(30));
    assert_eq!(s.meta_delete(b"k", &delete), MetaDeleteResult::Deleted);
    assert_eq!(s.meta_delete(b"k", &delete), MetaDeleteResult::NotFound);
    check(&s);
}

fn ma(s: &Store, key: &str, opts: MetaArith) -> (MetaArithResult, Option<(u64, String)>) {
    s.meta_arith(key.as_bytes(), opts, |r, i| {
        (
            r,
            i.map(|i| (i.cas(), String::from_utf8(i.value().to_vec()).unwrap())),
        )
    })
}

#[test]
fn arith_vivify_and_compare() {
    let s = store();
    let incr = MetaArith {
        incr: true,
        delta: 1,
        compare_cas: 0,
        vivify: None,
    };
    assert_eq!(ma(&s, "n", incr), (MetaArithResult::NotFound, None));
    let vivify = MetaArith {
        vivify: Some(99),
        ..incr
    };
    let (r, item) = ma(&s, "n", vivify);
    assert_eq!(r, MetaArithResult::Created(99));
    let (cas, value) = item.unwrap();
    assert_eq!(value, "99");
    let stale = MetaArith {
        compare_cas: cas + 1,
        ..incr
    };
    assert_eq!(ma(&s, "n", stale), (MetaArithResult::Exists, None));
    // Growing past the old length makes a new item, with a new CAS.
    let (r, item) = ma(&s, "n", vivify);
    assert_eq!(r, MetaArithResult::Value(100));
    let (new_cas, value) = item.unwrap();
    assert!(new_cas > cas);
    assert_eq!(value, "100");
    let decr = MetaArith {
        incr: false,
        delta: 95,
        compare_cas: new_cas,
        vivify: None,
    };
    assert_eq!(ma(&s, "n", decr).1.unwrap().1, "5  ");
    ms(&s, "t", "text", SET);
    assert_eq!(ma(&s, "t", incr), (MetaArithResult::NonNumeric, None));
    check(&s);
}
