//! Randomised tests: long deterministic operation sequences checked against the
//! accounting invariants and, where eviction and expiry cannot interfere, against a
//! plain map.

use super::tests::{check, store, store_with};
use super::*;
use std::collections::HashMap;

/// xorshift64*: a small deterministic generator, so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[test]
fn random_operations_keep_accounting_exact_and_within_budget() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let s = store_with(64 * 1024, 4);
    let budget = s.shard_budget();
    let modes = [
        StoreMode::Set,
        StoreMode::Add,
        StoreMode::Replace,
        StoreMode::Append,
        StoreMode::Prepend,
        StoreMode::Cas,
    ];
    for step in 0..20_000 {
        let key = format!("key{}", rng.below(300));
        let key = key.as_bytes();
        match rng.below(10) {
            0..=4 => {
                let len = [0, 1, 10, 100, 1000, 5000][rng.below(6) as usize];
                let value = vec![b'0' + rng.below(10) as u8; len];
                let mode = modes[rng.below(6) as usize];
                let exptime = [0, 0, 0, 1, 5, -1][rng.below(6) as usize];
                let cas = s.get(key, None, |i| i.map_or(0, |i| i.cas));
                s.store(mode, key, 0, exptime, cas, &value);
            }
            5 => {
                s.get(key, None, |_| ());
            }
            6 => {
                s.delete(key);
            }
            7 => {
                s.arith(key, rng.below(1000), rng.below(2) == 0);
            }
            8 => {
                s.touch(key, [0, 2, -1][rng.below(3) as usize]);
            }
            _ => match rng.below(100) {
                0 => s.flush_all(0),
                1 => s.flush_all(3),
                _ => s.clock().advance(1),
            },
        }
        check(&s);
        let stats = s.stats();
        assert!(stats.bytes as usize <= budget * 4, "step {step}");
    }
    assert!(s.stats().evictions > 0, "the test should exercise eviction");
}

/// Without eviction or expiry, the store agrees with a plain map.
#[test]
fn agrees_with_a_map_model() {
    let mut rng = Rng(42);
    let s = store();
    let mut model: HashMap<Vec<u8>, (Vec<u8>, u32)> = HashMap::new();
    for _ in 0..20_000 {
        let key = format!("k{}", rng.below(50)).into_bytes();
        let value = format!("{}", rng.below(1000)).into_bytes();
        let flags = rng.below(4) as u32;
        let live = model.contains_key(&key);
        match rng.below(8) {
            op @ 0..=4 => {
                let mode = [
                    StoreMode::Set,
                    StoreMode::Add,
                    StoreMode::Replace,
                    StoreMode::Append,
                    StoreMode::Prepend,
                ][op as usize];
                let r = s.store(mode, &key, flags, 0, 0, &value);
                let stored = match mode {
                    StoreMode::Set => true,
                    StoreMode::Add => !live,
                    _ => live,
                };
                assert_eq!(r == StoreResult::Stored, stored);
                if stored {
                    let entry = model.entry(key.clone()).or_default();
                    match mode {
                        StoreMode::Append => entry.0.extend_from_slice(&value),
                        StoreMode::Prepend => entry.0 = [&value[..], &entry.0].concat(),
                        _ => *entry = (value.clone(), flags),
                    }
                }
            }
            5 => assert_eq!(s.delete(&key), model.remove(&key).is_some()),
            6 => {
                let r = s.arith(&key, 3, rng.below(2) == 0);
                match model.get(&key) {
                    None => assert_eq!(r, ArithResult::NotFound),
                    Some((v, _)) => {
                        // Values here are digits with trailing padding: strtoull
                        // stops at the first space.
                        let digits = v.split(|&b| b == b' ').next().unwrap();
                        let parsed = std::str::from_utf8(digits).unwrap().parse::<u64>().ok();
                        match (parsed, r) {
                            (Some(_), ArithResult::Value(n)) => {
                                let digits = n.to_string().into_bytes();
                                let entry = model.get_mut(&key).unwrap();
                                if digits.len() <= entry.0.len() {
                                    let len = entry.0.len();
                                    entry.0 = digits;
                                    entry.0.resize(len, b' ');
                                } else {
                                    entry.0 = digits;
                                }
                            }
                            (None, ArithResult::NonNumeric) => {}
                            other => panic!("{other:?} for {v:?}"),
                        }
                    }
                }
            }
            _ => {
                let hit = s.get(&key, None, |i| i.map(|i| (i.value.to_vec(), i.flags)));
                assert_eq!(hit.as_ref(), model.get(&key));
            }
        }
    }
    check(&s);
}
