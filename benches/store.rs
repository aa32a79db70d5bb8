//! Store microbenchmarks: get hit, get miss, set, and set under eviction, each on one
//! and on two threads sharing one `Store` (the server's worker layout on this 2-core
//! machine).
//!
//! One criterion group per operation; throughput is in operations (a two-thread
//! iteration is two operations, one per thread). Run with `cargo bench --bench store`;
//! `cargo test --all-targets` runs every benchmark once, which is cheap.
//!
//! On a busy machine wall time is noise; count instructions instead:
//! `STORE_BENCH_COUNT=get_hit valgrind --tool=callgrind --toggle-collect='*counted_ops*'
//! target/release/deps/store-HASH --bench` runs 100 000 gets on a prefilled store
//! (also `get_miss`, `set` over existing keys, `set_evicting`); divide the collected
//! instruction count (valgrind's `Collected :` line) by 100 000. The count includes the
//! benchmark's own key formatting, about 60 instructions per operation. Count mode
//! never starts criterion, whose start-up forks a child that valgrind reports with a
//! second `Collected : 0` line (misread as "nothing counted" before).
//!
//! Lock contention: `STORE_BENCH_CONTENTION=1 target/release/deps/store-HASH --bench`
//! runs gets (and sets) on two threads at once whose keys all live in one shard, then
//! in two different shards, and prints per mode the operations per second and the
//! share of shard-lock acquisitions that found the lock held
//! (`StoreStats::lock_waits`, `stats`' `ringcache_shard_lock_waits`).
#![forbid(unsafe_code)]

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use ringcache::storage::{Clock, Read, Store, StoreConfig, StoreResult, Write, WriteMode};
use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Keys stored before the get benchmarks (all fit in memory).
const KEYS: u64 = 100_000;
/// Value size of every set, as in the end-to-end `p1` configuration.
const VALUE_BYTES: usize = 32;
/// Key space of the eviction benchmark, far larger than its memory limit holds.
const EVICT_KEYS: u64 = 4_000_000;
/// Memory limit of the eviction benchmark.
const EVICT_LIMIT_BYTES: usize = 4 << 20;

fn store(limit_bytes: usize) -> Store {
    Store::new(
        StoreConfig {
            limit_bytes,
            max_item_bytes: 1 << 20,
            shards: 16,
        },
        Clock::new(),
    )
}

/// `key:0000042`, the shape of rc-load's keys (11 bytes for up to 10^7 keys).
fn key(buf: &mut [u8; 16], n: u64) -> &[u8] {
    buf[..4].copy_from_slice(b"key:");
    let mut n = n;
    for slot in buf[4..11].iter_mut().rev() {
        *slot = b'0' + (n % 10) as u8;
        n /= 10;
    }
    &buf[..11]
}

/// A cheap, deterministic key sequence per thread (xorshift64).
struct KeyStream(u64);

impl KeyStream {
    fn new(thread: u64) -> KeyStream {
        KeyStream(0x9E37_79B9_7F4A_7C15 ^ (thread + 1).wrapping_mul(0xA24B_AED4_963E_E407))
    }

    fn next(&mut self, space: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % space
    }
}

fn set(store: &Store, n: u64, value: &[u8]) -> StoreResult {
    let mut buf = [0; 16];
    store
        .write(key(&mut buf, n), value, &Write::new(WriteMode::Set))
        .0
}

fn get(store: &Store, n: u64) -> bool {
    let mut buf = [0; 16];
    store.get(key(&mut buf, n), Read::GET, |item| item.is_some())
}

/// Runs `op(thread, keys)` `iters` times on each of `threads` threads at once and
/// returns the wall time of the slowest.
fn run_threads(
    store: &Arc<Store>,
    threads: u64,
    iters: u64,
    op: fn(&Store, &mut KeyStream, &[u8]),
) -> Duration {
    let barrier = Barrier::new(threads as usize);
    let value = [b'v'; VALUE_BYTES];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (store, barrier, value) = (Arc::clone(store), &barrier, &value);
                scope.spawn(move || {
                    let mut keys = KeyStream::new(t);
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        op(&store, &mut keys, value);
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread panicked"))
            .max()
            .unwrap_or_default()
    })
}

/// One group: `op` on 1 and on 2 threads over a store made by `make`.
fn group(
    c: &mut Criterion,
    name: &str,
    make: fn() -> Store,
    op: fn(&Store, &mut KeyStream, &[u8]),
) {
    let mut g = c.benchmark_group(format!("store/{name}"));
    // Made on first use, so listing or filtering benchmarks costs nothing; shared by
    // the 1- and 2-thread runs.
    let store = std::cell::OnceCell::new();
    for threads in [1u64, 2] {
        g.throughput(Throughput::Elements(threads));
        g.bench_function(BenchmarkId::new("threads", threads), |b| {
            let store = store.get_or_init(|| Arc::new(make()));
            b.iter_custom(|iters| run_threads(store, threads, iters, op));
        });
    }
    g.finish();
}

fn prefilled() -> Store {
    let s = store(1 << 30);
    let value = [b'v'; VALUE_BYTES];
    for n in 0..KEYS {
        set(&s, n, &value);
    }
    s
}

/// A store already at its limit, so every further set evicts.
fn full() -> Store {
    let s = store(EVICT_LIMIT_BYTES);
    let value = [b'v'; VALUE_BYTES];
    // Twice what fits even at zero overhead per item.
    for n in 0..(2 * EVICT_LIMIT_BYTES / VALUE_BYTES) as u64 {
        set(&s, n, &value);
    }
    s
}

/// One benchmarked operation: on `store`, with the thread's key stream and a value.
type Op = fn(&Store, &mut KeyStream, &[u8]);

/// Operations per run in callgrind mode.
const COUNTED_OPS: u64 = 100_000;

/// `COUNTED_OPS` of `op` on a store made by `make`, outside criterion: the function
/// callgrind counts (`--toggle-collect='*counted_ops*'`), so instructions per operation
/// are its inclusive count / `COUNTED_OPS`, free of the noise of a shared machine.
#[inline(never)]
fn counted_ops(store: &Store, op: Op) {
    let mut keys = KeyStream::new(0);
    let value = [b'v'; VALUE_BYTES];
    for _ in 0..COUNTED_OPS {
        op(store, &mut keys, &value);
    }
}

/// Callgrind mode: `STORE_BENCH_COUNT=get_hit|get_miss|set|set_evicting` runs
/// [`counted_ops`] once for that operation instead of the criterion groups.
fn count_mode(name: &str) {
    let (make, op): (fn() -> Store, Op) = match name {
        "get_hit" => (prefilled, |s, keys, _| {
            black_box(get(s, keys.next(KEYS)));
        }),
        "get_miss" => (prefilled, |s, keys, _| {
            black_box(get(s, KEYS + keys.next(KEYS)));
        }),
        "set" => (prefilled, |s, keys, value| {
            black_box(set(s, keys.next(KEYS), value));
        }),
        "set_evicting" => (full, |s, keys, value| {
            black_box(set(s, keys.next(EVICT_KEYS), value));
        }),
        _ => panic!("STORE_BENCH_COUNT: get_hit, get_miss, set or set_evicting"),
    };
    let store = make();
    counted_ops(&store, op);
    eprintln!("benches/store: {COUNTED_OPS} x {name} done");
}

fn benches(c: &mut Criterion) {
    group(c, "get_hit", prefilled, |s, keys, _| {
        black_box(get(s, keys.next(KEYS)));
    });
    group(c, "get_miss", prefilled, |s, keys, _| {
        black_box(get(s, KEYS + keys.next(KEYS)));
    });
    group(
        c,
        "set",
        || store(1 << 30),
        |s, keys, value| {
            black_box(set(s, keys.next(KEYS), value));
        },
    );
    group(c, "set_evicting", full, |s, keys, value| {
        black_box(set(s, keys.next(EVICT_KEYS), value));
    });
}

/// Keys (numbers for [`key`]) that live in shard `shard` of `store`, `count` of them.
fn keys_in_shard(store: &Store, shard: usize, count: usize) -> Vec<u64> {
    let mut buf = [0; 16];
    (0..)
        .filter(|&n| store.shard_of(key(&mut buf, n)) == shard)
        .take(count)
        .collect()
}

/// Contention mode: two threads, each over its own keys, in one shard or in two;
/// prints ops/s and lock waits per acquisition for gets and for sets.
fn contention_mode() {
    const OPS: usize = 2_000_000;
    const PER_THREAD_KEYS: usize = 1000;
    let value = [b'v'; VALUE_BYTES];
    println!("| operation | shards used | ops/s (2 threads) | lock waits per operation |");
    println!("|---|---|---:|---:|");
    for (name, is_set) in [("get", false), ("set", true)] {
        for (label, shards) in [
            ("one (same shard)", [0, 0]),
            ("two (different shards)", [0, 1]),
        ] {
            let s = store(1 << 30);
            let keys: Vec<Vec<u64>> = shards
                .iter()
                .enumerate()
                .map(|(t, &shard)| {
                    // Two threads in one shard get disjoint keys of it.
                    let all = keys_in_shard(&s, shard, 2 * PER_THREAD_KEYS);
                    all[t * PER_THREAD_KEYS..(t + 1) * PER_THREAD_KEYS].to_vec()
                })
                .collect();
            for list in &keys {
                for &n in list {
                    set(&s, n, &value);
                }
            }
            let before = s.stats().lock_waits;
            let barrier = Barrier::new(2);
            let start = Instant::now();
            std::thread::scope(|scope| {
                for list in &keys {
                    let (s, barrier, value) = (&s, &barrier, &value);
                    scope.spawn(move || {
                        barrier.wait();
                        for i in 0..OPS {
                            let n = list[i % list.len()];
                            if is_set {
                                black_box(set(s, n, value));
                            } else {
                                black_box(get(s, n));
                            }
                        }
                    });
                }
            });
            let elapsed = start.elapsed().as_secs_f64();
            let waits = s.stats().lock_waits - before;
            let ops = (2 * OPS) as f64;
            println!(
                "| {name} | {label} | {:.0} | {:.4} |",
                ops / elapsed,
                waits as f64 / ops
            );
        }
    }
}

criterion_group!(store_benches, benches);

/// `criterion_main!`, with callgrind mode first so that criterion never starts in it.
fn main() {
    if let Ok(name) = std::env::var("STORE_BENCH_COUNT") {
        count_mode(&name);
        return;
    }
    if std::env::var_os("STORE_BENCH_CONTENTION").is_some() {
        contention_mode();
        return;
    }
    store_benches();
    Criterion::default().configure_from_args().final_summary();
}
