//! When items die: memcached's expiry times (relative, absolute, never, already) and
//! `flush_all`, now and delayed.

use super::*;

#[test]
fn relative_expiry() {
    let s = store();
    write(&s, WriteMode::Set, b"k", 0, 10, 0, b"v");
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
    write(&s, WriteMode::Set, b"forever", 0, 0, 0, b"v");
    write(&s, WriteMode::Set, b"gone", 0, -1, 0, b"v");
    assert_eq!(get(&s, "gone"), None);
    s.clock().advance(100 * 24 * 3600);
    assert_eq!(get(&s, "forever").as_deref(), Some("v"));
}

#[test]
fn thirty_day_boundary() {
    let s = store();
    let start = s.clock().started_unix() as i64;
    // Exactly 30 days is relative.
    write(&s, WriteMode::Set, b"rel", 0, 2_592_000, 0, b"v");
    // One more is an absolute unix time, long past: expired at once.
    write(&s, WriteMode::Set, b"abs_past", 0, 2_592_001, 0, b"v");
    // An absolute time in the future.
    let in_50 = s.clock().unix_now() as i64 + 50;
    write(&s, WriteMode::Set, b"abs", 0, in_50, 0, b"v");
    write(&s, WriteMode::Set, b"at_start", 0, start, 0, b"v");
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
    assert!(write(&s, WriteMode::Add, b"k2", 0, 0, 0, b"x") == StoreResult::Stored);
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
