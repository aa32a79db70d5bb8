//! Reads: get, gat and touch, and the options meta adds (peek, vivify, the bump after
//! the caller read the old metadata).

use super::*;

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
    write(&s, WriteMode::Set, b"k", 3, 5, 0, b"v");
    let hit = s.get(b"k", Read::touch(100), |i| {
        i.map(|i| (i.flags(), i.value().to_vec()))
    });
    assert_eq!(hit, Some((3, b"v".to_vec())));
    s.clock().advance(50);
    assert!(get(&s, "k").is_some());
    // gat with a negative exptime returns the item once, then it is gone.
    assert!(s.get(b"k", Read::touch(-1), |i| i.is_some()));
    assert_eq!(get(&s, "k"), None);
    assert!(!s.get(b"missing", Read::touch(10), |i| i.is_some()));
}

#[test]
fn get_bumps_after_the_caller_read_the_old_metadata() {
    let s = store_with(64 * MB, 1);
    ms(&s, "a", "1", MS);
    ms(&s, "b", "2", MS);
    s.clock().advance(5);
    s.get(b"a", Read::PEEK, |i| {
        let i = i.unwrap();
        assert_eq!(i.now() - i.last_access(), 5);
        assert!(!i.fetched());
    });
    let active = || s.shards[0].lock().active_keys();
    assert!(active().is_empty(), "a peek does not mark the item active");
    s.get(b"a", Read::GET, |i| assert!(!i.unwrap().fetched()));
    assert_eq!(active(), [b"a"]);
    // The first read after a write leaves the access time; later ones refresh it.
    s.get(b"a", Read::GET, |i| {
        let i = i.unwrap();
        assert!(i.fetched());
        assert_eq!(i.now() - i.last_access(), 5);
    });
    s.get(b"a", Read::PEEK, |i| {
        assert_eq!(i.unwrap().last_access(), s.clock().now())
    });
    // A caller that gives up skips the bump.
    s.get(b"b", Read::GET, |i| i.unwrap().skip_bump());
    assert!(!mg(&s, "b", Read::PEEK).unwrap().3);
    check(&s);
}

#[test]
fn vivify_creates_an_empty_accounted_item_once() {
    let s = store();
    let vivify = Read {
        touch: None,
        bump: true,
        vivify: true,
        new_cas: 0,
    };
    s.get(b"v", vivify, |i| {
        let i = i.unwrap();
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
    ms(&s, "k", "a", Write { exptime: 2, ..MS });
    s.clock().advance(2);
    assert!(mg(&s, "k", Read::GET).is_none());
    check(&s);
}
