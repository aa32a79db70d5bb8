//! The model of `model_tests.rs`: the store's rules restated plainly, with no
//! sharing of code or data structures with the store (a map of items, one `Vec` per
//! shard for its list in write order and the key its eviction hand is on, one byte
//! count per shard, the clock and the flush state).

use super::*;
use std::collections::{BTreeMap, HashMap};

/// `shard/evict.rs`: how many items at the tail a write that does not fit inspects for
/// dead ones before the hand evicts live items.
const RECLAIM_SEARCH: usize = 50;
/// `shard/evict.rs`: how many active items in a row the hand spares in one eviction.
const HAND_SEARCH: usize = 256;
/// memcached's limit between relative and absolute exptimes (30 days).
pub(super) const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// One item as the model sees it.
#[derive(Clone, Debug)]
pub(super) struct MItem {
    pub(super) value: Vec<u8>,
    pub(super) flags: u32,
    /// Relative expiry time; 0 never.
    pub(super) exptime: u32,
    /// Whether its record has an expiry field: written with an expiry, or touched to
    /// one since (the field stays when the expiry is cleared again).
    pub(super) exptime_field: bool,
    /// Relative time of the last write, or of the last access after the first fetch.
    pub(super) time: u32,
    /// The write that made this value (a store, or an incr/decr): a store-wide count.
    pub(super) write: u64,
    pub(super) fetched: bool,
    /// Read, touched or written over since the hand last passed it.
    pub(super) active: bool,
    pub(super) shard: usize,
}

/// The rules of the store, restated plainly.
pub(super) struct Model {
    pub(super) items: HashMap<Vec<u8>, MItem>,
    /// Per shard: keys from last written to written longest ago.
    pub(super) lru: Vec<Vec<Vec<u8>>>,
    /// Per shard: the key the eviction hand looks at next (`None`: the tail).
    pub(super) hand: Vec<Option<Vec<u8>>>,
    pub(super) bytes: Vec<usize>,
    pub(super) budget: usize,
    pub(super) now: u32,
    pub(super) started_unix: u64,
    /// The last write's number (0: none).
    pub(super) writes: u64,
    /// Writes up to this one were flushed by an immediate `flush_all`.
    pub(super) flushed_writes: u64,
    /// Items whose time is before this were flushed by a delayed `flush_all` now due
    /// (or `flush_all 1`).
    pub(super) flush_before: u32,
    /// A delayed `flush_all` not yet due: `realtime(delay)`, due a second before
    /// (memcached's `oldest_live = realtime(delay) - 1`, `time <= oldest_live`); 0: none.
    pub(super) flush_pending: u32,
    pub(super) stats: StoreStats,
    /// CAS seen per write, and write per CAS seen.
    pub(super) cas_of_write: HashMap<u64, u64>,
    pub(super) write_of_cas: HashMap<u64, u64>,
    /// Per shard: CAS seen by write number, to check they grow.
    pub(super) cas_order: Vec<BTreeMap<u64, u64>>,
}

impl Model {
    pub(super) fn new(store: &Store) -> Model {
        let shards = store.shard_count();
        Model {
            items: HashMap::new(),
            lru: vec![Vec::new(); shards],
            hand: vec![None; shards],
            bytes: vec![0; shards],
            budget: store.shard_budget(),
            now: store.clock().now(),
            started_unix: store.clock().started_unix(),
            writes: 0,
            flushed_writes: 0,
            flush_before: 0,
            flush_pending: 0,
            stats: StoreStats {
                limit_bytes: store.config().limit_bytes as u64,
                ..StoreStats::default()
            },
            cas_of_write: HashMap::new(),
            write_of_cas: HashMap::new(),
            cas_order: vec![BTreeMap::new(); shards],
        }
    }

    pub(super) fn exptime(&self, e: Exp) -> i64 {
        match e {
            Exp::Raw(n) => n,
            Exp::AfterStart(n) => self.started_unix as i64 + n,
        }
    }

    /// memcached's `realtime()`.
    pub(super) fn realtime(&self, exptime: i64) -> u32 {
        if exptime == 0 {
            0
        } else if exptime < 0 {
            1
        } else if exptime > REALTIME_MAXDELTA {
            let started = self.started_unix as i64;
            if exptime <= started {
                1
            } else {
                (exptime - started) as u32
            }
        } else {
            self.now + exptime as u32
        }
    }

    pub(super) fn advance(&mut self, secs: u32) {
        self.now += secs;
        if self.flush_pending != 0 && self.now + 1 >= self.flush_pending {
            self.flush_before = self.flush_pending;
            self.flush_pending = 0;
        }
    }

    pub(super) fn is_dead(&self, item: &MItem) -> bool {
        (item.exptime != 0 && item.exptime <= self.now)
            || item.write <= self.flushed_writes
            || item.time < self.flush_before
    }

    pub(super) fn footprint(key: &[u8], item: &MItem) -> usize {
        stored_footprint(key.len(), item.value.len(), item.flags, item.exptime_field)
    }

    /// Moves the hand of `shard` off `key`, which is leaving its place at `at`, to its
    /// neighbour towards the head (or back to the tail).
    fn hand_off(&mut self, shard: usize, key: &[u8], at: usize) {
        if self.hand[shard].as_deref() == Some(key) {
            self.hand[shard] = at.checked_sub(1).map(|i| self.lru[shard][i].clone());
        }
    }

    pub(super) fn unlink(&mut self, key: &[u8]) -> MItem {
        let item = self.items.remove(key).expect("unlink of a held key");
        let at = self.lru[item.shard]
            .iter()
            .position(|k| k == key)
            .expect("held key in the list");
        self.hand_off(item.shard, key, at);
        self.lru[item.shard].remove(at);
        self.bytes[item.shard] -= Model::footprint(key, &item);
        item
    }

    pub(super) fn reclaim(&mut self, key: &[u8]) {
        let item = self.unlink(key);
        self.stats.reclaimed += 1;
        self.stats.expired_unfetched += u64::from(!item.fetched);
    }

    /// Moves `key` to the head of its list.
    pub(super) fn move_to_head(&mut self, key: &[u8]) {
        let shard = self.items[key].shard;
        let at = self.lru[shard]
            .iter()
            .position(|k| k == key)
            .expect("held key in the list");
        self.hand_off(shard, key, at);
        let list = &mut self.lru[shard];
        let k = list.remove(at);
        list.insert(0, k);
    }

    /// Whether `key` holds a live item; a dead one is removed (reclaimed).
    pub(super) fn find_live(&mut self, key: &[u8]) -> bool {
        match self.items.get(key) {
            None => false,
            Some(item) if self.is_dead(item) => {
                // Every lookup that meets a dead item counts it, writes too (memcached's
                // do_item_get), flushed before expired.
                if item.write <= self.flushed_writes || item.time < self.flush_before {
                    self.stats.get_flushed += 1;
                } else {
                    self.stats.get_expired += 1;
                }
                self.reclaim(key);
                false
            }
            Some(_) => true,
        }
    }

    /// Dead items among the `RECLAIM_SEARCH` nearest the tail first; then, until `need`
    /// more bytes fit, the hand walks from its key towards the head, wrapping to the
    /// tail: an active live item loses its mark and stays (at most `HAND_SEARCH` in a
    /// row), the first other item is evicted (reclaimed if dead) and the hand goes on
    /// to its neighbour towards the head.
    pub(super) fn make_room(&mut self, shard: usize, need: usize) {
        let fits = |m: &Model| m.bytes[shard] + need <= m.budget;
        let tail: Vec<Vec<u8>> = self.lru[shard]
            .iter()
            .rev()
            .take(RECLAIM_SEARCH)
            .cloned()
            .collect();
        for key in tail {
            if fits(self) {
                break;
            }
            if self.is_dead(&self.items[&key]) {
                self.reclaim(&key);
            }
        }
        while !fits(self) {
            let list = &self.lru[shard];
            assert!(!list.is_empty(), "room in an empty shard");
            let mut at = match &self.hand[shard] {
                Some(k) => list.iter().position(|x| x == k).expect("hand on the list"),
                None => list.len() - 1,
            };
            let mut spared = 0;
            loop {
                let key = self.lru[shard][at].clone();
                let item = &self.items[&key];
                if !self.is_dead(item) && item.active && spared < HAND_SEARCH {
                    self.items.get_mut(&key).expect("held").active = false;
                    spared += 1;
                    at = at.checked_sub(1).unwrap_or(self.lru[shard].len() - 1);
                    continue;
                }
                self.hand[shard] = Some(key.clone());
                if self.is_dead(item) {
                    self.reclaim(&key);
                } else {
                    let item = self.unlink(&key);
                    self.stats.evictions += 1;
                    self.stats.evicted_unfetched += u64::from(!item.fetched);
                }
                break;
            }
        }
    }

    pub(super) fn insert(
        &mut self,
        key: &[u8],
        value: Vec<u8>,
        flags: u32,
        exptime: u32,
        shard: usize,
        active: bool,
    ) {
        self.writes += 1;
        let item = MItem {
            value,
            flags,
            exptime,
            exptime_field: exptime != 0,
            time: self.now,
            write: self.writes,
            fetched: false,
            active,
            shard,
        };
        self.bytes[shard] += Model::footprint(key, &item);
        assert!(self.bytes[shard] <= self.budget, "model over budget");
        self.lru[shard].insert(0, key.to_vec());
        self.items.insert(key.to_vec(), item);
        self.stats.total_items += 1;
    }

    /// Replaces `old` (if live) with a new item, making room; `OutOfMemory` when it
    /// cannot fit even in an empty shard (a set then drops the old item). The new item
    /// is active if `old` was held (a write of a held key is an access).
    pub(super) fn put(
        &mut self,
        mode: WriteMode,
        key: &[u8],
        old: bool,
        new: (Vec<u8>, u32, u32),
        shard: usize,
    ) -> StoreResult {
        let need = stored_footprint(key.len(), new.0.len(), new.1, new.2 != 0);
        if need > self.budget {
            if mode == WriteMode::Set && old {
                self.unlink(key);
            }
            return StoreResult::OutOfMemory;
        }
        if old {
            self.unlink(key);
        }
        self.make_room(shard, need);
        self.insert(key, new.0, new.1, new.2, shard, old);
        StoreResult::Stored
    }

    /// The CAS `cas` is known not to be the current one of `key`'s item.
    pub(super) fn is_stale_cas(&self, key: &[u8], cas: u64) -> bool {
        let write = self.items[key].write;
        match self.cas_of_write.get(&write) {
            Some(&known) => known != cas,
            // 0 and u64::MAX are never handed out; a CAS seen for another write is
            // not this one's (unless CAS values repeat, which then shows here).
            None => {
                cas == 0
                    || cas == u64::MAX
                    || self.write_of_cas.get(&cas).is_some_and(|&w| w != write)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn store(
        &mut self,
        mode: WriteMode,
        key: &[u8],
        flags: u32,
        exptime: i64,
        cas: u64,
        value: &[u8],
        shard: usize,
    ) -> StoreResult {
        use WriteMode::*;
        if crate::item_too_large(key.len(), value.len(), flags, MAX_ITEM_BYTES) {
            if mode == Set {
                self.delete(key);
            }
            return StoreResult::TooLarge;
        }
        let exptime = self.realtime(exptime);
        let live = self.find_live(key);
        match (mode, live) {
            (Add, true) | (Replace | Append | Prepend, false) => StoreResult::NotStored,
            (Cas, false) => StoreResult::NotFound,
            (Cas, true) if self.is_stale_cas(key, cas) => StoreResult::Exists,
            (Append | Prepend, true) => {
                let old = &self.items[key];
                let joined = if mode == Append {
                    [&old.value[..], value].concat()
                } else {
                    [value, &old.value[..]].concat()
                };
                let too_large =
                    crate::item_too_large(key.len(), joined.len(), old.flags, MAX_ITEM_BYTES);
                if too_large {
                    return StoreResult::NotStored;
                }
                let new = (joined, old.flags, old.exptime);
                self.put(mode, key, true, new, shard)
            }
            _ => self.put(mode, key, live, (value.to_vec(), flags, exptime), shard),
        }
    }

    /// A hit: marked active and fetched (not moved), its time refreshed from the
    /// second fetch on, its exptime set when touched. Returns (value, flags, write).
    pub(super) fn get(&mut self, key: &[u8], touch: Option<i64>) -> Option<(Vec<u8>, u32, u64)> {
        let touch = touch.map(|e| self.realtime(e));
        if !self.find_live(key) {
            return None;
        }
        let now = self.now;
        let item = self.items.get_mut(key).expect("live");
        if item.fetched {
            item.time = now;
        }
        item.fetched = true;
        item.active = true;
        let found = (item.value.clone(), item.flags, item.write);
        match touch {
            Some(exptime) if exptime != 0 && !item.exptime_field => {
                // No field for it: the item is stored anew at the head, as it is.
                let mut item = self.unlink(key);
                (item.exptime, item.exptime_field) = (exptime, true);
                let (shard, need) = (item.shard, Model::footprint(key, &item));
                if need <= self.budget {
                    self.make_room(shard, need);
                    self.bytes[shard] += need;
                    self.lru[shard].insert(0, key.to_vec());
                    self.items.insert(key.to_vec(), item);
                }
            }
            Some(exptime) => item.exptime = exptime,
            None => {}
        }
        Some(found)
    }

    pub(super) fn delete(&mut self, key: &[u8]) -> bool {
        let live = self.find_live(key);
        if live {
            self.unlink(key);
        }
        live
    }

    pub(super) fn arith(&mut self, key: &[u8], delta: u64, incr: bool) -> ArithResult {
        if !self.find_live(key) {
            return ArithResult::NotFound;
        }
        let item = &self.items[key];
        let Some(n) = decimal(&item.value) else {
            return ArithResult::NonNumeric;
        };
        let n = if incr {
            n.wrapping_add(delta)
        } else {
            n.saturating_sub(delta)
        };
        let digits = n.to_string().into_bytes();
        if digits.len() <= item.value.len() {
            let mut value = digits;
            value.resize(item.value.len(), b' ');
            self.writes += 1;
            let (writes, time) = (self.writes, self.now);
            let item = self.items.get_mut(key).expect("live");
            (item.value, item.write, item.time) = (value, writes, time);
            item.active = true;
            self.move_to_head(key);
        } else {
            let (flags, exptime, shard) = (item.flags, item.exptime, item.shard);
            let need = stored_footprint(key.len(), digits.len(), flags, exptime != 0);
            if need > self.budget {
                return ArithResult::OutOfMemory;
            }
            self.unlink(key);
            self.make_room(shard, need);
            self.insert(key, digits, flags, exptime, shard, true);
        }
        ArithResult::Value(n)
    }

    /// memcached's `process_flush_all`: `oldest_live = realtime(delay) - 1` (`now - 1`
    /// without a delay); due once `now` reaches it, when items whose time is at most
    /// `oldest_live` are flushed; at once (by CAS) if it is due already.
    pub(super) fn flush_all(&mut self, delay: i64) {
        let new_oldest = if delay > 0 {
            self.realtime(delay)
        } else {
            self.now
        };
        if new_oldest > self.now + 1 {
            self.flush_pending = new_oldest;
            return;
        }
        self.flush_pending = 0;
        self.flushed_writes = self.writes;
        self.flush_before = if delay > 0 { new_oldest } else { 0 };
    }

    /// Records the CAS a hit showed for `write`; checks it against every other seen.
    pub(super) fn saw_cas(
        &mut self,
        write: u64,
        shard: usize,
        cas: u64,
    ) -> Result<(), TestCaseError> {
        if let Some(&known) = self.cas_of_write.get(&write) {
            prop_assert_eq!(known, cas, "write {} showed two CAS values", write);
            return Ok(());
        }
        if let Some(&other) = self.write_of_cas.get(&cas) {
            return Err(TestCaseError::fail(format!(
                "CAS {cas} handed out for writes {other} and {write}"
            )));
        }
        prop_assert!(cas != 0, "a stored item has CAS 0");
        let order = &mut self.cas_order[shard];
        if let Some((&w, &c)) = order.range(..write).next_back() {
            prop_assert!(
                c < cas,
                "write {} has CAS {} after write {} had {}",
                write,
                cas,
                w,
                c
            );
        }
        if let Some((&w, &c)) = order.range(write..).next() {
            prop_assert!(
                cas < c,
                "write {} has CAS {} before write {} had {}",
                write,
                cas,
                w,
                c
            );
        }
        order.insert(write, cas);
        self.cas_of_write.insert(write, cas);
        self.write_of_cas.insert(cas, write);
        Ok(())
    }
}

/// The number a value holds for incr/decr, for the values this test generates: optional
/// leading spaces, at least one digit, then the end or a space; at most 2^64 - 1.
fn decimal(value: &[u8]) -> Option<u64> {
    let start = value.iter().position(|&b| b != b' ').unwrap_or(value.len());
    let rest = &value[start..];
    let end = rest
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(rest.len());
    if end == 0 || rest.get(end).is_some_and(|&b| b != b' ') {
        return None;
    }
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

impl Model {
    pub(super) fn stats_now(&self) -> StoreStats {
        let bytes: usize = self
            .items
            .iter()
            .map(|(k, item)| Model::footprint(k, item))
            .sum();
        StoreStats {
            curr_items: self.items.len() as u64,
            bytes: bytes as u64,
            ..self.stats.clone()
        }
    }
}
