//! Unit tests of the store's public behaviour, with a manual clock: one file per
//! operation (`read.rs`, `write.rs`, `delete.rs`, `arith.rs`) or concern (`chosen_cas.rs`
//! for meta `E`, `md … x` and `ms … MA N`, `expiry.rs`
//! for expiry and `flush_all`, `eviction.rs`, `layout.rs` for what the record layout
//! shows through the store, `store.rs` for store-wide behaviour).
//!
//! Each test names the memcached rule it pins down; shard internals (LRU order, the
//! accounting invariants) are checked through `Shard::check` and `Shard::lru_keys`.
//! The helpers here call the store as each dialect's commands do (a classic write,
//! a meta set's rules in [`MS`]), so a test reads as the command it stands for.

mod arith;
mod chosen_cas;
mod delete;
mod eviction;
mod expiry;
mod layout;
mod read;
mod store;
mod write;

use super::*;

pub(super) const MB: usize = 1 << 20;

pub(super) fn store_with(limit_bytes: usize, shards: usize) -> Store {
    let config = StoreConfig {
        limit_bytes,
        max_item_bytes: MB,
        shards,
    };
    Store::new(config, Clock::manual())
}

pub(super) fn store() -> Store {
    store_with(64 * MB, 4)
}

/// A classic write (set, add, replace, append, prepend, cas), with the new CAS.
pub(super) fn write_cas(
    s: &Store,
    mode: WriteMode,
    key: &[u8],
    flags: u32,
    exptime: i64,
    cas: u64,
    value: &[u8],
) -> (StoreResult, u64) {
    let w = Write {
        flags,
        exptime,
        cas,
        ..Write::new(mode)
    };
    s.write(key, value, &w)
}

/// A classic write's outcome.
pub(super) fn write(
    s: &Store,
    mode: WriteMode,
    key: &[u8],
    flags: u32,
    exptime: i64,
    cas: u64,
    value: &[u8],
) -> StoreResult {
    write_cas(s, mode, key, flags, exptime, cas, value).0
}

/// A classic incr (`incr`) or decr.
pub(super) fn arith(s: &Store, key: &[u8], delta: u64, incr: bool) -> ArithResult {
    s.arith(key, Arith::new(incr, delta), |result, _| result)
}

/// A classic delete: whether it removed the key.
pub(super) fn delete(s: &Store, key: &[u8]) -> bool {
    s.delete(key, Delete::default()) == DeleteResult::Deleted
}

fn set(s: &Store, key: &str, value: &str) -> StoreResult {
    write(s, WriteMode::Set, key.as_bytes(), 0, 0, 0, value.as_bytes())
}

fn get(s: &Store, key: &str) -> Option<String> {
    s.get(key.as_bytes(), Read::GET, |hit| {
        hit.map(|i| String::from_utf8(i.value().to_vec()).unwrap())
    })
}

/// (value, flags, cas) of a hit.
fn gets(s: &Store, key: &str) -> Option<(String, u32, u64)> {
    s.get(key.as_bytes(), Read::GET, |hit| {
        hit.map(|i| {
            let value = String::from_utf8(i.value().to_vec()).unwrap();
            (value, i.flags(), i.cas())
        })
    })
}

fn cas_of(s: &Store, key: &[u8]) -> Option<u64> {
    s.get(key, Read::GET, |hit| hit.map(|i| i.cas()))
}

fn value_of(s: &Store, key: &[u8]) -> Option<Vec<u8>> {
    s.get(key, Read::GET, |hit| hit.map(|i| i.value().to_vec()))
}

pub(super) fn check(s: &Store) {
    for shard in s.shards.iter() {
        shard.lock().check();
    }
}

fn lru(s: &Store) -> Vec<String> {
    assert_eq!(s.shard_count(), 1);
    let keys = s.shards[0].lock().lru_keys();
    keys.into_iter()
        .map(|k| String::from_utf8(k).unwrap())
        .collect()
}

/// A single-shard store whose budget holds exactly `n` items of key "kN" and a 10-byte value.
fn lru_store(n: usize) -> Store {
    store_with(n * crate::stored_footprint(2, 10, 0, false), 1)
}

/// A meta set (`ms`) with no flags: a set with meta's rules (a refused write removes
/// the key in every mode; an add that finds the item is an access).
const MS: Write = Write {
    refusal_removes: true,
    add_is_access: true,
    ..Write::new(WriteMode::Set)
};

fn ms(s: &Store, key: &str, value: &str, opts: Write) -> (StoreResult, u64) {
    s.write(key.as_bytes(), value.as_bytes(), &opts)
}

/// What a meta get sees: (value, cas, exptime, fetched, stale, win_sent, created).
type Seen = (String, u64, u32, bool, bool, bool, bool);

fn mg(s: &Store, key: &str, opts: Read) -> Option<Seen> {
    s.get(key.as_bytes(), opts, |hit| {
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
