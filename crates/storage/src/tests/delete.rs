//! Deletes: the CAS a delete compares, and invalidation.

use super::*;

#[test]
fn delete_compares_a_non_zero_cas() {
    let s = store();
    let with_cas = |cas| Delete {
        cas: Some(cas),
        ..Delete::default()
    };
    assert_eq!(s.delete(b"k", Delete::default()), DeleteResult::NotFound);
    assert_eq!(s.delete(b"k", with_cas(5)), DeleteResult::NotFound);
    let (_, cas) = write_cas(&s, WriteMode::Set, b"k", 0, 0, 0, b"v");
    assert_eq!(s.delete(b"k", with_cas(cas + 1)), DeleteResult::Exists);
    assert_eq!(value_of(&s, b"k").unwrap(), b"v");
    assert_eq!(s.delete(b"k", with_cas(cas)), DeleteResult::Deleted);
    assert_eq!(value_of(&s, b"k"), None);
    write_cas(&s, WriteMode::Set, b"k", 0, 0, 0, b"v");
    assert_eq!(s.delete(b"k", Delete::default()), DeleteResult::Deleted);
    check(&s);
}

#[test]
fn delete_and_invalidate() {
    let s = store();
    let (_, cas) = ms(&s, "k", "a", MS);
    let delete = Delete::default();
    let compare = Delete {
        cas: Some(cas + 1),
        ..delete
    };
    assert_eq!(s.delete(b"k", compare), DeleteResult::Exists);
    s.get(b"k", Read::GET, |i| i.unwrap().mark_win_sent());
    let invalidate = Delete {
        cas: Some(cas),
        invalidate: true,
        exptime: Some(30),
        ..Delete::default()
    };
    assert_eq!(s.delete(b"k", invalidate), DeleteResult::Invalidated);
    let (value, new_cas, exptime, _, stale, win, _) = mg(&s, "k", Read::PEEK).unwrap();
    assert_eq!(value, "a");
    assert!(new_cas > cas && stale && !win);
    assert_eq!(exptime, s.clock().realtime(30));
    assert_eq!(s.delete(b"k", delete), DeleteResult::Deleted);
    assert_eq!(s.delete(b"k", delete), DeleteResult::NotFound);
    check(&s);
}
