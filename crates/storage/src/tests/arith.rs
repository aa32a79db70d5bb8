//! incr/decr: memcached's number rules through the store, the CAS an incr compares,
//! items created from an initial value.

use super::*;

#[test]
fn incr_decr() {
    let s = store();
    let arith = |k: &str, d, incr| arith(&s, k.as_bytes(), d, incr);
    assert_eq!(arith("n", 1, true), ArithResult::NotFound);
    write(&s, WriteMode::Set, b"n", 5, 0, 0, b"100");
    let cas0 = gets(&s, "n").unwrap().2;
    // Shorter result: rewritten in place, padded with spaces, new CAS.
    assert_eq!(arith("n", 1, false), ArithResult::Value(99));
    let (value, flags, cas1) = gets(&s, "n").unwrap();
    assert_eq!((value.as_str(), flags), ("99 ", 5));
    assert!(cas1 > cas0);
    assert_eq!(arith("n", 90, false), ArithResult::Value(9));
    assert_eq!(get(&s, "n").as_deref(), Some("9  "));
    // Longer result: a new value, flags kept.
    assert_eq!(arith("n", 991, true), ArithResult::Value(1000));
    assert_eq!(gets(&s, "n").unwrap().0, "1000");
    assert_eq!(gets(&s, "n").unwrap().1, 5);
    // Floor and wrap.
    assert_eq!(arith("n", 5000, false), ArithResult::Value(0));
    assert_eq!(get(&s, "n").as_deref(), Some("0   "));
    set(&s, "max", "18446744073709551615");
    assert_eq!(arith("max", 2, true), ArithResult::Value(1));
    assert_eq!(get(&s, "max").unwrap(), format!("1{}", " ".repeat(19)));
    // Not numbers.
    for v in ["", "abc", "12abc", "-1", "18446744073709551616"] {
        set(&s, "bad", v);
        assert_eq!(arith("bad", 1, true), ArithResult::NonNumeric, "{v:?}");
    }
    set(&s, "odd", "  12 abc");
    assert_eq!(arith("odd", 1, true), ArithResult::Value(13));
    assert_eq!(get(&s, "odd").as_deref(), Some("13      "));
    check(&s);
}

/// A binary incr/decr: the outcome and the item's CAS (0 when there is no item).
fn arith_cas(
    s: &Store,
    key: &[u8],
    delta: u64,
    incr: bool,
    cas: u64,
    create: Option<Initial>,
) -> (ArithResult, u64) {
    let a = Arith {
        cas,
        create,
        ..Arith::new(incr, delta)
    };
    s.arith(key, a, |result, item| (result, item.map_or(0, |i| i.cas())))
}

#[test]
fn arith_creates_from_the_initial_value_without_the_delta() {
    let s = store();
    let init = Some(Initial {
        value: 10,
        exptime: 0,
    });
    let (ArithResult::Created(10), cas) = arith_cas(&s, b"n", 5, true, 0, init) else {
        panic!("not created");
    };
    assert_eq!(cas_of(&s, b"n"), Some(cas));
    assert_eq!(value_of(&s, b"n").unwrap(), b"10");
    let (ArithResult::Value(15), cas) = arith_cas(&s, b"n", 5, true, 0, init) else {
        panic!("not updated");
    };
    assert_eq!(cas_of(&s, b"n"), Some(cas));
    assert_eq!(
        arith_cas(&s, b"n", 100, false, 0, None),
        (ArithResult::Value(0), cas_of(&s, b"n").unwrap())
    );
    assert_eq!(value_of(&s, b"n").unwrap(), b"0 ");
    check(&s);
}

#[test]
fn arith_without_initial_misses() {
    let s = store();
    assert_eq!(
        arith_cas(&s, b"n", 1, true, 0, None),
        (ArithResult::NotFound, 0)
    );
    assert_eq!(value_of(&s, b"n"), None);
}

#[test]
fn arith_checks_the_cas_before_the_number() {
    let s = store();
    let (_, cas) = write_cas(&s, WriteMode::Set, b"t", 0, 0, 0, b"text");
    assert_eq!(
        arith_cas(&s, b"t", 1, true, cas + 1, None),
        (ArithResult::Exists, 0)
    );
    assert_eq!(
        arith_cas(&s, b"t", 1, true, cas, None),
        (ArithResult::NonNumeric, 0)
    );
    let (_, cas) = write_cas(&s, WriteMode::Set, b"n", 7, 0, 0, b"99");
    assert_eq!(
        arith_cas(&s, b"n", 1, true, cas + 1, None),
        (ArithResult::Exists, 0)
    );
    let (ArithResult::Value(100), _) = arith_cas(&s, b"n", 1, true, cas, None) else {
        panic!("not updated");
    };
    // A grown value keeps the flags.
    assert_eq!(s.get(b"n", Read::GET, |i| i.map(|i| i.flags())), Some(7));
    // A CAS is ignored when the item is created.
    let init = Some(Initial {
        value: 3,
        exptime: 0,
    });
    assert!(matches!(
        arith_cas(&s, b"m", 1, true, 12345, init),
        (ArithResult::Created(3), _)
    ));
}

#[test]
fn a_created_item_expires_as_asked() {
    let s = store();
    let init = Some(Initial {
        value: 1,
        exptime: 2,
    });
    arith_cas(&s, b"n", 1, true, 0, init);
    assert!(value_of(&s, b"n").is_some());
    s.clock().advance(3);
    assert_eq!(value_of(&s, b"n"), None);
}

fn ma(s: &Store, key: &str, opts: Arith) -> (ArithResult, Option<(u64, String)>) {
    s.arith(key.as_bytes(), opts, |r, i| {
        (
            r,
            i.map(|i| (i.cas(), String::from_utf8(i.value().to_vec()).unwrap())),
        )
    })
}

#[test]
fn arith_vivify_and_compare() {
    let s = store();
    let incr = Arith {
        incr: true,
        delta: 1,
        cas: 0,
        create: None,
        new_cas: 0,
    };
    assert_eq!(ma(&s, "n", incr), (ArithResult::NotFound, None));
    let create = Arith {
        create: Some(Initial {
            value: 99,
            exptime: 0,
        }),
        ..incr
    };
    let (r, item) = ma(&s, "n", create);
    assert_eq!(r, ArithResult::Created(99));
    let (cas, value) = item.unwrap();
    assert_eq!(value, "99");
    let stale = Arith {
        cas: cas + 1,
        ..incr
    };
    assert_eq!(ma(&s, "n", stale), (ArithResult::Exists, None));
    // Growing past the old length makes a new item, with a new CAS.
    let (r, item) = ma(&s, "n", create);
    assert_eq!(r, ArithResult::Value(100));
    let (new_cas, value) = item.unwrap();
    assert!(new_cas > cas);
    assert_eq!(value, "100");
    let decr = Arith {
        incr: false,
        delta: 95,
        cas: new_cas,
        create: None,
        new_cas: 0,
    };
    assert_eq!(ma(&s, "n", decr).1.unwrap().1, "5  ");
    ms(&s, "t", "text", MS);
    assert_eq!(ma(&s, "t", incr), (ArithResult::NonNumeric, None));
    check(&s);
}
