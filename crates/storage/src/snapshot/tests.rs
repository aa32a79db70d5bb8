//! The snapshot's round trip, its checks (every corruption refused, never a partial
//! store), expiry over the downtime, CAS counters and list order.

use super::*;
use crate::{Delete, Read, Write, WriteMode};

const MB: usize = 1 << 20;

fn config(limit_bytes: usize, shards: usize) -> StoreConfig {
    StoreConfig {
        limit_bytes,
        max_item_bytes: MB,
        shards,
    }
}

fn set(s: &Store, key: &[u8], value: &[u8], flags: u32, exptime: i64) -> u64 {
    let w = Write {
        flags,
        exptime,
        ..Write::new(WriteMode::Set)
    };
    let (result, cas) = s.write(key, value, &w);
    assert_eq!(result, crate::StoreResult::Stored);
    cas
}

fn get(s: &Store, key: &[u8]) -> Option<(Vec<u8>, u32, u64)> {
    s.get(key, Read::GET, |item| {
        item.map(|i| (i.value().to_vec(), i.flags(), i.cas()))
    })
}

/// One item as a shard holds it: key, value, flags, own CAS, visible CAS, exptime,
/// time, state bits.
type Held = (Vec<u8>, Vec<u8>, u32, u64, u64, u32, u32, u8);

/// Every shard's items, head to tail, and its CAS counter, read from the inside.
fn dump(s: &Store) -> Vec<(Vec<Held>, u64)> {
    s.shards
        .iter()
        .map(|slot| {
            let mut shard = slot.lock();
            let now = s.clock().now();
            let keys = shard.lru_keys();
            let held = keys
                .iter()
                .map(|key| {
                    let hash = key_hash(&s.hasher, key);
                    let idx = shard.find_live(hash, key, now).expect("listed key is live");
                    let item = shard.item(idx);
                    (
                        key.clone(),
                        item.value().to_vec(),
                        item.flags(),
                        item.cas(),
                        shard.item_cas(idx),
                        item.exptime(),
                        item.time(),
                        item.bits(),
                    )
                })
                .collect();
            shard.check();
            (held, shard.state().cas_counter)
        })
        .collect()
}

fn saved(s: &Store) -> Vec<u8> {
    let mut out = Vec::new();
    let summary = s.save(&mut out, true).expect("save to memory");
    assert_eq!(summary.bytes, out.len() as u64);
    out
}

/// A store of 4 shards with items of every kind: sizes small to large, flags, TTLs,
/// read (fetched, active) and unread, stale, base64 key, a chosen CAS.
fn loaded() -> Store {
    let s = Store::new(config(64 * MB, 4), Clock::manual());
    for i in 0..200u32 {
        let key = format!("key:{i}");
        let value = vec![b'a' + (i % 26) as u8; (i as usize * 37) % 3000];
        set(&s, key.as_bytes(), &value, i * 7, i64::from(i % 3) * 100);
    }
    set(&s, b"large", &vec![7u8; 300_000], 9, 0);
    for i in (0..200).step_by(3) {
        assert!(get(&s, format!("key:{i}").as_bytes()).is_some());
    }
    let stale = Delete {
        invalidate: true,
        ..Delete::default()
    };
    assert_eq!(s.delete(b"key:5", stale), crate::DeleteResult::Invalidated);
    let b64 = Write {
        key_binary: true,
        ..Write::new(WriteMode::Set)
    };
    s.write(b"binary", b"v", &b64);
    let chosen = Write {
        new_cas: 4242,
        ..Write::new(WriteMode::Set)
    };
    s.write(b"chosen", b"c", &chosen);
    s
}

#[test]
fn round_trip_keeps_items_order_cas_and_state() {
    let s = loaded();
    let before = dump(&s);
    let bytes = saved(&s);
    let (r, result) = Store::restore(s.config().clone(), Clock::manual(), &bytes[..], true);
    let restored = result.expect("restores");
    assert_eq!(restored.items, 203);
    assert_eq!(restored.expired, 0);
    assert_eq!(r.restored(), Some(restored));
    let after = dump(&r);
    // Same clock start within a second: compare times through wall-clock seconds.
    let shift = |t: u32, from: &Store, to: &Store| {
        if t == 0 {
            0
        } else {
            (u64::from(t) + from.clock().started_unix() - to.clock().started_unix()) as u32
        }
    };
    assert_eq!(before.len(), after.len());
    let highest = before.iter().map(|(_, counter)| *counter).max();
    for ((items_b, _), (items_a, counter_a)) in before.iter().zip(&after) {
        assert_eq!(
            Some(*counter_a),
            highest,
            "every counter is the highest saved"
        );
        assert_eq!(items_b.len(), items_a.len());
        for (b, a) in items_b.iter().zip(items_a) {
            let expected = (
                b.0.clone(),
                b.1.clone(),
                b.2,
                b.3,
                b.4,
                shift(b.5, &s, &r),
                shift(b.6, &s, &r).min(r.clock().now()),
                b.7,
            );
            assert_eq!(&expected, a);
        }
    }
    assert_eq!(get(&r, b"chosen").map(|g| g.2), Some(4242));
    assert_eq!(get(&r, b"large").map(|g| g.0.len()), Some(300_000));
}

#[test]
fn new_cas_values_stay_above_every_restored_one() {
    let s = loaded();
    let highest = dump(&s)
        .iter()
        .flat_map(|(items, _)| items.iter().map(|i| i.3))
        .max()
        .unwrap();
    let bytes = saved(&s);
    let (r, result) = Store::restore(s.config().clone(), Clock::manual(), &bytes[..], true);
    result.unwrap();
    let mut seen = std::collections::HashSet::new();
    for i in 0..100 {
        let cas = set(&r, format!("new:{i}").as_bytes(), b"x", 0, 0);
        assert!(cas > highest, "{cas} > {highest}");
        assert!(seen.insert(cas));
    }
    // A write over a restored key gets a new CAS too.
    assert!(set(&r, b"key:1", b"y", 0, 0) > highest);
}

#[test]
fn ttls_count_the_downtime() {
    let s = Store::new(config(64 * MB, 4), Clock::manual());
    set(&s, b"short", b"1", 0, 20);
    set(&s, b"long", b"2", 0, 100);
    set(&s, b"never", b"3", 0, 0);
    let bytes = saved(&s);
    let clock = Clock::manual();
    clock.advance(30);
    let (r, result) = Store::restore(s.config().clone(), clock, &bytes[..], true);
    let restored = result.unwrap();
    assert_eq!((restored.items, restored.expired), (2, 1));
    let skew = r.clock().started_unix() as i64 - s.clock().started_unix() as i64;
    assert!(restored.downtime_secs >= 30 && restored.downtime_secs as i64 <= 30 + skew + 1);
    assert_eq!(get(&r, b"short"), None);
    let left = r.get(b"long", Read::PEEK, |i| {
        i.map(|i| i64::from(i.exptime()) - i64::from(i.now()))
    });
    // 100 s at the stop, 30 s down (plus the clocks' start skew, at most a second).
    assert_eq!(left, Some(70 - skew));
    let never = r.get(b"never", Read::PEEK, |i| i.map(|i| i.exptime()));
    assert_eq!(never, Some(0));
}

#[test]
fn a_delayed_flush_survives_or_comes_due_in_the_downtime() {
    let s = Store::new(config(64 * MB, 2), Clock::manual());
    set(&s, b"a", b"1", 0, 0);
    s.flush_all(60);
    let bytes = saved(&s);
    // Restored 10 s later: still pending, due 50 s after.
    let clock = Clock::manual();
    clock.advance(10);
    let (r, result) = Store::restore(s.config().clone(), clock, &bytes[..], true);
    assert_eq!(result.unwrap().items, 1);
    assert!(get(&r, b"a").is_some());
    r.clock().advance(60);
    assert_eq!(get(&r, b"a"), None, "the pending flush came due");
    // Restored 2 minutes later: it came due while down.
    let clock = Clock::manual();
    clock.advance(120);
    let (r, result) = Store::restore(s.config().clone(), clock, &bytes[..], true);
    assert_eq!(result.unwrap().items, 0);
    assert_eq!(get(&r, b"a"), None);
}

#[test]
fn dead_items_are_not_saved() {
    let s = Store::new(config(64 * MB, 2), Clock::manual());
    set(&s, b"gone", b"1", 0, 5);
    set(&s, b"kept", b"2", 0, 0);
    s.clock().advance(10);
    let (r, result) = Store::restore(s.config().clone(), Clock::manual(), &saved(&s)[..], true);
    assert_eq!(result.unwrap().items, 1);
    assert!(get(&r, b"kept").is_some());
}

/// Restoring `bytes` fails with an error whose text contains `why`, and leaves an empty
/// store that works.
fn refused(bytes: &[u8], config: StoreConfig, cas_enabled: bool, why: &str) {
    let (r, result) = Store::restore(config, Clock::manual(), bytes, cas_enabled);
    let e = result.expect_err("refused");
    assert!(e.to_string().contains(why), "{e} should say {why}");
    assert_eq!(r.stats().curr_items, 0);
    assert!(r.restored().is_none());
    set(&r, b"k", b"v", 0, 0);
    assert!(get(&r, b"k").is_some());
}

#[test]
fn other_settings_are_refused() {
    let s = loaded();
    let bytes = saved(&s);
    refused(&bytes, config(32 * MB, 4), true, "-m 64m");
    refused(&bytes, config(64 * MB, 8), true, "shards 4");
    let other_item = StoreConfig {
        max_item_bytes: 2 * MB,
        ..config(64 * MB, 4)
    };
    refused(&bytes, other_item, true, "-I");
    refused(&bytes, config(64 * MB, 4), false, "CAS on");
}

#[test]
fn a_file_not_marked_clean_is_refused() {
    refused(
        &not_clean_header(),
        config(64 * MB, 4),
        true,
        "not marked clean",
    );
    let mut bytes = saved(&loaded());
    bytes[..HEADER_BYTES].copy_from_slice(&not_clean_header());
    refused(&bytes, config(64 * MB, 4), true, "not marked clean");
}

#[test]
fn another_version_or_magic_is_refused() {
    let s = loaded();
    let mut bytes = saved(&s);
    bytes[8] = 2;
    let crc = crc32fast::hash(&bytes[..76]);
    bytes[76..80].copy_from_slice(&crc.to_le_bytes());
    refused(&bytes, config(64 * MB, 4), true, "format version 2");
    refused(b"hello", config(64 * MB, 4), true, "truncated");
    refused(&[0u8; 200], config(64 * MB, 4), true, "bad magic");
}

#[test]
fn a_changed_hash_function_is_refused() {
    let s = loaded();
    let mut bytes = saved(&s);
    bytes[48] ^= 1;
    let crc = crc32fast::hash(&bytes[..76]);
    bytes[76..80].copy_from_slice(&crc.to_le_bytes());
    refused(&bytes, config(64 * MB, 4), true, "hash");
}

/// A small store (2 shards, six items, TTLs and flags) and its snapshot, for the
/// byte-by-byte damage tests.
fn small() -> (Store, Vec<u8>) {
    let s = Store::new(config(64 * MB, 2), Clock::manual());
    for i in 0..6u32 {
        set(
            &s,
            format!("k{i}").as_bytes(),
            b"value",
            i,
            i64::from(i % 2) * 1000,
        );
    }
    let bytes = saved(&s);
    (s, bytes)
}

#[test]
fn every_flipped_byte_is_refused() {
    let (s, bytes) = small();
    for at in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut bad = bytes.clone();
            bad[at] ^= bit;
            let (r, result) = Store::restore(s.config().clone(), Clock::manual(), &bad[..], true);
            assert!(result.is_err(), "byte {at} ^ {bit:#x} went unnoticed");
            assert_eq!(r.stats().curr_items, 0);
        }
    }
}

#[test]
fn every_truncation_is_refused() {
    let (s, bytes) = small();
    for len in 0..bytes.len() {
        let (r, result) = Store::restore(s.config().clone(), Clock::manual(), &bytes[..len], true);
        assert!(result.is_err(), "cut at {len} went unnoticed");
        assert_eq!(r.stats().curr_items, 0);
    }
    // And a byte too many.
    let mut longer = bytes.clone();
    longer.push(0);
    let (_, result) = Store::restore(s.config().clone(), Clock::manual(), &longer[..], true);
    assert!(result.is_err());
}

#[test]
fn an_empty_store_round_trips() {
    let s = Store::new(config(64 * MB, 8), Clock::manual());
    let bytes = saved(&s);
    let (r, result) = Store::restore(s.config().clone(), Clock::manual(), &bytes[..], true);
    assert_eq!(result.unwrap().items, 0);
    assert_eq!(r.shard_count(), 8);
}

#[test]
fn cas_values_past_48_bits_round_trip() {
    // One shard whose CAS values cross 2^48 half-way: narrow and wide records.
    let s = Store::new(config(64 * MB, 1), Clock::manual());
    s.shards[0]
        .lock()
        .set_cas_counter(crate::item::WIDE_CAS_MIN - 3);
    let mut want = Vec::new();
    for i in 0..6u32 {
        let key = format!("key:{i}");
        let value = vec![b'v'; 40 + i as usize];
        let cas = set(&s, key.as_bytes(), &value, i, i64::from(i % 2) * 100);
        want.push((key, value, i, cas));
    }
    assert!(want[1].3 < crate::item::WIDE_CAS_MIN && want[2].3 >= crate::item::WIDE_CAS_MIN);
    let bytes = saved(&s);
    let (r, result) = Store::restore(s.config().clone(), Clock::manual(), &bytes[..], true);
    assert_eq!(result.expect("restores").items, 6);
    for (key, value, flags, cas) in want {
        assert_eq!(get(&r, key.as_bytes()), Some((value, flags, cas)), "{key}");
    }
    dump(&r);
    assert_eq!(r.stats().bytes, s.stats().bytes);
}
