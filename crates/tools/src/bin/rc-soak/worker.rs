//! The soak's threads: churn connections (mixed operations on their own keys) and the
//! guard connection (a few small keys that must never be lost while hot).
//!
//! # The guarded keys
//!
//! ringcache splits `-m` evenly over its shards and evicts within a shard by SIEVE: a
//! hand walks the shard's items, sparing (and unmarking) those read or written since it
//! last passed them and evicting the first unmarked one. A guarded key K last read or
//! set at moment E is marked from E on, so it can only be evicted after the hand has
//! passed it once (clearing the mark) and then gone a whole lap round its shard, every
//! other item in the lap evicted to make room for a write or spared for a read. The
//! check takes such a lap to need more than `budget - cost(K)` bytes written or hit
//! after E (over the whole store, whatever shard they hashed to): if the bytes written
//! or hit since E stay at or below that, a miss of K is an error. It is a bound on the
//! common case, not a proof: a lap also spares items whose marks date from before E,
//! so a shard whose items were nearly all read just before E could lose K sooner (as
//! under the LRU with second chances before). The global `-m` is not the right bound:
//! one shard's budget is `-m / shards`, and keys hash to shards at random.
//!
//! Every thread adds an upper bound of what each request may write or mark (a set's
//! item cost; a get's cost at the largest version it could return) to
//! `touch_sent` before sending it and to `touch_acked` after its answer. For K, the
//! guard thread keeps `baseline = touch_acked` read before sending the request that
//! last set or read K (everything counted there was applied before E). When a get of K
//! misses, `touch_sent` read after the answer bounds everything applied between E and
//! that get, so `touch_sent - baseline` is an upper bound of the bytes that could
//! have pushed K out. The guard reads all its keys in one multi-get per round, so on an
//! idle enough machine most rounds fall inside the bound ("strict" checks); rounds
//! that do not are counted as excused.

use crate::model::{self, item_cost, KeyState, EXPIRY_SLACK};
use crate::wire::{self, Conn, Dialect, Hit, Op, Reply};
use ringcache_tools::Rng;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What all threads share.
pub struct Shared {
    pub addr: SocketAddr,
    pub deadline: Instant,
    /// Set when any thread hits an error it cannot continue past.
    pub abort: AtomicBool,
    pub touch_sent: AtomicU64,
    pub touch_acked: AtomicU64,
    /// Requests answered so far, for progress lines.
    pub requests: AtomicU64,
    /// Bytes a shard may hold (`limit_maxbytes / shards`).
    pub shard_budget: u64,
}

/// One thread's counts.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    pub requests: u64,
    pub sets: u64,
    pub gets: u64,
    pub hits: u64,
    /// Misses of keys that were live (allowed: eviction or expiry).
    pub misses: u64,
    /// ... of which the key's TTL had run out.
    pub expired_misses: u64,
    pub deletes: u64,
    pub incrs: u64,
    pub touches: u64,
    pub reconnects: u64,
    pub guard_checks: u64,
    pub guard_strict: u64,
    pub guard_excused_misses: u64,
    pub errors: u64,
    /// The first few error messages.
    pub messages: Vec<String>,
}

impl Tally {
    pub fn add(&mut self, o: &Tally) {
        self.requests += o.requests;
        self.sets += o.sets;
        self.gets += o.gets;
        self.hits += o.hits;
        self.misses += o.misses;
        self.expired_misses += o.expired_misses;
        self.deletes += o.deletes;
        self.incrs += o.incrs;
        self.touches += o.touches;
        self.reconnects += o.reconnects;
        self.guard_checks += o.guard_checks;
        self.guard_strict += o.guard_strict;
        self.guard_excused_misses += o.guard_excused_misses;
        self.errors += o.errors;
        for m in &o.messages {
            if self.messages.len() < 20 {
                self.messages.push(m.clone());
            }
        }
    }

    fn error(&mut self, msg: String) {
        self.errors += 1;
        if self.messages.len() < 20 {
            self.messages.push(msg);
        }
    }
}

/// Batches between reconnects, on average.
const BATCHES_PER_CONNECTION: u64 = 400;
const COUNTERS_PER_THREAD: usize = 64;

/// What one request of a churn batch was about.
#[derive(Clone, Debug)]
enum Plan {
    Set { n: usize, version: u32 },
    Get { n: usize },
    Multi { ns: Vec<usize> },
    Delete { n: usize },
    Touch { n: usize, ttl: u32 },
    Incr { c: usize, delta: u64 },
    SetCounter { c: usize, value: u64 },
    GetCounter { c: usize },
}

/// One churn connection's keys and what it knows of them.
pub struct Churn {
    index: usize,
    rng: Rng,
    keys: Vec<String>,
    state: Vec<KeyState>,
    next_version: Vec<u32>,
    counter_keys: Vec<String>,
    counters: Vec<Option<u64>>,
    tally: Tally,
}

impl Churn {
    pub fn new(index: usize, keys: usize, seed: u64) -> Churn {
        Churn {
            index,
            rng: Rng::new(seed ^ (index as u64).wrapping_mul(0x9E37_79B9)),
            keys: (0..keys).map(|n| format!("s:{index}:{n}")).collect(),
            state: vec![KeyState::Absent; keys],
            next_version: vec![0; keys],
            counter_keys: (0..COUNTERS_PER_THREAD)
                .map(|c| format!("c:{index}:{c}"))
                .collect(),
            counters: vec![None; COUNTERS_PER_THREAD],
            tally: Tally::default(),
        }
    }

    pub fn run(mut self, shared: &Shared) -> Tally {
        let mut dialect_turn = self.index;
        while Instant::now() < shared.deadline && !shared.abort.load(Ordering::Relaxed) {
            let dialect = Dialect::ALL[dialect_turn % 3];
            dialect_turn += 1;
            let mut conn = match Conn::connect(shared.addr, dialect) {
                Ok(c) => c,
                Err(e) => {
                    self.tally.error(format!("connect: {e}"));
                    shared.abort.store(true, Ordering::Relaxed);
                    break;
                }
            };
            let batches = 1 + self.rng.below(2 * BATCHES_PER_CONNECTION);
            for _ in 0..batches {
                if Instant::now() >= shared.deadline || shared.abort.load(Ordering::Relaxed) {
                    break;
                }
                if let Err(e) = self.batch(&mut conn, shared) {
                    self.tally
                        .error(format!("churn {} ({}): {e}", self.index, dialect.name()));
                    shared.abort.store(true, Ordering::Relaxed);
                    return self.tally;
                }
            }
            conn.quit();
            self.tally.reconnects += 1;
        }
        self.tally
    }

    /// A key index, skewed: half the picks go to the first tenth of the keys.
    fn pick(&mut self) -> usize {
        let n = self.keys.len() as u64;
        let n = if self.rng.chance(50) {
            (n / 10).max(1)
        } else {
            n
        };
        self.rng.below(n) as usize
    }

    fn ttl(&mut self) -> u32 {
        match self.rng.below(10) {
            0 | 1 => 1 + self.rng.below(3) as u32,
            2..=4 => 3600,
            _ => 0,
        }
    }

    /// The most a hit on data key `n` can mark (its cost at its largest version).
    fn get_cost(&self, n: usize) -> u64 {
        match self.next_version[n] {
            0 => 0,
            v => {
                let key = &self.keys[n];
                let live = match self.state[n] {
                    KeyState::Live { version, .. } => model::value_len(key, version, false),
                    KeyState::Absent => 0,
                };
                item_cost(key.len(), live.max(model::value_len(key, v - 1, false)))
            }
        }
    }

    fn plan_batch(&mut self) -> (Vec<Op>, Vec<Plan>, u64) {
        let count = 1 + self.rng.below(16) as usize;
        let (mut ops, mut plans, mut cost) = (Vec::new(), Vec::new(), 0);
        for _ in 0..count {
            let (op, plan) = match self.rng.below(100) {
                0..=29 => {
                    let n = self.pick();
                    let version = self.next_version[n];
                    self.next_version[n] += 1;
                    let key = self.keys[n].clone();
                    let value = model::value_bytes(&key, version, false);
                    cost += item_cost(key.len(), value.len());
                    let op = Op::Set {
                        flags: model::flags_for(&key, version),
                        ttl: self.ttl(),
                        key,
                        value,
                    };
                    (op, Plan::Set { n, version })
                }
                30..=61 => {
                    let n = self.pick();
                    cost += self.get_cost(n);
                    let key = self.keys[n].clone();
                    (Op::Get { key }, Plan::Get { n })
                }
                62..=69 => {
                    let want = 2 + self.rng.below(11) as usize;
                    let mut ns: Vec<usize> = Vec::with_capacity(want);
                    for _ in 0..want {
                        let n = self.pick();
                        if !ns.contains(&n) {
                            ns.push(n);
                        }
                    }
                    cost += ns.iter().map(|&n| self.get_cost(n)).sum::<u64>();
                    let keys = ns.iter().map(|&n| self.keys[n].clone()).collect();
                    (Op::MultiGet { keys }, Plan::Multi { ns })
                }
                70..=76 => {
                    let n = self.pick();
                    let key = self.keys[n].clone();
                    (Op::Delete { key }, Plan::Delete { n })
                }
                77..=82 => {
                    let n = self.pick();
                    cost += self.get_cost(n);
                    let ttl = self.ttl();
                    let key = self.keys[n].clone();
                    (Op::Touch { key, ttl }, Plan::Touch { n, ttl })
                }
                83..=92 => {
                    let c = self.rng.below(COUNTERS_PER_THREAD as u64) as usize;
                    let key = self.counter_keys[c].clone();
                    cost += item_cost(key.len(), 20);
                    if self.counters[c].is_none() && self.rng.chance(70) {
                        let value = self.rng.below(1_000_000);
                        let op = Op::Set {
                            key,
                            flags: 0,
                            ttl: 0,
                            value: value.to_string().into_bytes(),
                        };
                        (op, Plan::SetCounter { c, value })
                    } else {
                        let delta = 1 + self.rng.below(1000);
                        (Op::Incr { key, delta }, Plan::Incr { c, delta })
                    }
                }
                _ => {
                    let c = self.rng.below(COUNTERS_PER_THREAD as u64) as usize;
                    let key = self.counter_keys[c].clone();
                    cost += item_cost(key.len(), 20);
                    (Op::Get { key }, Plan::GetCounter { c })
                }
            };
            ops.push(op);
            plans.push(plan);
        }
        (ops, plans, cost)
    }

    fn batch(&mut self, conn: &mut Conn, shared: &Shared) -> Result<(), String> {
        let (ops, plans, cost) = self.plan_batch();
        shared.touch_sent.fetch_add(cost, Ordering::SeqCst);
        let sent_at = Instant::now();
        let mut checked = Ok(());
        conn.batch(&ops, |i, reply| {
            if checked.is_ok() {
                checked = self.check(&ops[i], &plans[i], reply, sent_at);
            }
        })?;
        shared.touch_acked.fetch_add(cost, Ordering::SeqCst);
        shared
            .requests
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        self.tally.requests += ops.len() as u64;
        checked
    }

    /// Checks one answer against the model and advances the model. A wrong-typed
    /// answer (a protocol error) is returned as `Err`; a wrong value is counted.
    fn check(
        &mut self,
        op: &Op,
        plan: &Plan,
        reply: Reply,
        sent_at: Instant,
    ) -> Result<(), String> {
        let now = Instant::now();
        match (plan, reply) {
            (Plan::Set { n, version }, Reply::Stored) => {
                self.tally.sets += 1;
                let Op::Set { ttl, .. } = op else {
                    unreachable!()
                };
                self.state[*n] = KeyState::Live {
                    version: *version,
                    expires: (*ttl > 0).then(|| now + Duration::from_secs(u64::from(*ttl))),
                };
            }
            (Plan::Get { n }, Reply::Value(hit)) => self.check_get(*n, hit, sent_at),
            (Plan::Multi { ns }, Reply::Values(hits)) => {
                let mut next = 0;
                for hit in &hits {
                    let found = ns[next..]
                        .iter()
                        .position(|&n| self.keys[n].as_bytes() == hit.key.as_slice());
                    match found {
                        Some(p) => next += p + 1,
                        None => {
                            self.tally.error(format!(
                                "multi-get {:?}: answer for {:?} out of order, repeated or not asked",
                                op_keys(op),
                                wire::show(&hit.key)
                            ));
                            return Ok(());
                        }
                    }
                }
                for &n in ns {
                    let hit = hits
                        .iter()
                        .find(|h| h.key == self.keys[n].as_bytes())
                        .cloned();
                    self.check_get(n, hit, sent_at);
                }
            }
            (Plan::Delete { n }, Reply::Deleted(was)) => {
                self.tally.deletes += 1;
                match (&self.state[*n], was) {
                    (KeyState::Absent, true) => self.tally.error(format!(
                        "delete {}: DELETED a key known absent",
                        self.keys[*n]
                    )),
                    (KeyState::Live { .. }, false) => self.count_miss(*n),
                    _ => {}
                }
                self.state[*n] = KeyState::Absent;
            }
            (Plan::Touch { n, ttl }, Reply::Touched(was)) => {
                self.tally.touches += 1;
                match (self.state[*n].clone(), was) {
                    (KeyState::Absent, true) => self.tally.error(format!(
                        "touch {}: TOUCHED a key known absent",
                        self.keys[*n]
                    )),
                    (KeyState::Live { version, expires }, true) => {
                        self.check_not_expired(*n, expires, sent_at);
                        self.state[*n] = KeyState::Live {
                            version,
                            expires: (*ttl > 0).then(|| now + Duration::from_secs(u64::from(*ttl))),
                        };
                    }
                    (KeyState::Live { .. }, false) => {
                        self.count_miss(*n);
                        self.state[*n] = KeyState::Absent;
                    }
                    (KeyState::Absent, false) => {}
                }
            }
            (Plan::SetCounter { c, value }, Reply::Stored) => {
                self.tally.sets += 1;
                self.counters[*c] = Some(*value);
            }
            (Plan::Incr { c, delta }, Reply::Incremented(got)) => {
                self.tally.incrs += 1;
                let key = &self.counter_keys[*c];
                match (self.counters[*c], got) {
                    (None, Some(v)) => self
                        .tally
                        .error(format!("incr {key}: {v} for a counter known absent")),
                    (Some(v), Some(g)) if g != v + delta => {
                        self.tally
                            .error(format!("incr {key} by {delta}: {g}, want {}", v + delta));
                        self.counters[*c] = Some(g);
                    }
                    (Some(_), None) => {
                        self.tally.misses += 1;
                        self.counters[*c] = None;
                    }
                    (_, got) => self.counters[*c] = got,
                }
            }
            (Plan::GetCounter { c }, Reply::Value(hit)) => {
                self.tally.gets += 1;
                let key = &self.counter_keys[*c];
                match (self.counters[*c], hit) {
                    (None, Some(h)) => self.tally.error(format!(
                        "get {key}: hit {:?} on a counter known absent",
                        wire::show(&h.value)
                    )),
                    (Some(v), Some(h)) => {
                        self.tally.hits += 1;
                        if h.value != v.to_string().as_bytes() || h.flags != 0 {
                            self.tally.error(format!(
                                "get {key}: {:?} flags {}, want {v} flags 0",
                                wire::show(&h.value),
                                h.flags
                            ));
                        }
                    }
                    (Some(_), None) => {
                        self.tally.misses += 1;
                        self.counters[*c] = None;
                    }
                    (None, None) => {}
                }
            }
            (_, reply) => {
                return Err(format!(
                    "{}: answer of the wrong kind: {reply:?}",
                    wire::op_name(op)
                ))
            }
        }
        Ok(())
    }

    fn count_miss(&mut self, n: usize) {
        self.tally.misses += 1;
        if let KeyState::Live {
            expires: Some(at), ..
        } = self.state[n]
        {
            if Instant::now() >= at {
                self.tally.expired_misses += 1;
            }
        }
    }

    fn check_not_expired(&mut self, n: usize, expires: Option<Instant>, sent_at: Instant) {
        if let Some(at) = expires {
            if sent_at > at + EXPIRY_SLACK {
                let late = sent_at - at;
                self.tally.error(format!(
                    "{}: still there {late:?} after its TTL ran out",
                    self.keys[n]
                ));
            }
        }
    }

    fn check_get(&mut self, n: usize, hit: Option<Hit>, sent_at: Instant) {
        self.tally.gets += 1;
        let key = self.keys[n].clone();
        match (self.state[n].clone(), hit) {
            (KeyState::Absent, None) => {}
            (KeyState::Absent, Some(h)) => self.tally.error(format!(
                "get {key}: hit on a key known absent (deleted, never set or seen missing): \
                 {} bytes starting {:?}",
                h.value.len(),
                wire::show(&h.value[..h.value.len().min(40)])
            )),
            (KeyState::Live { .. }, None) => {
                self.count_miss(n);
                self.state[n] = KeyState::Absent;
            }
            (KeyState::Live { version, expires }, Some(h)) => {
                self.tally.hits += 1;
                self.check_not_expired(n, expires, sent_at);
                let want = model::value_bytes(&key, version, false);
                let want_flags = model::flags_for(&key, version);
                if h.value != want {
                    self.tally.error(format!(
                        "get {key}: {}",
                        model::classify(&key, version, &h.value)
                    ));
                } else if h.flags != want_flags {
                    self.tally
                        .error(format!("get {key}: flags {}, want {want_flags}", h.flags));
                }
            }
        }
    }
}

fn op_keys(op: &Op) -> Vec<String> {
    match op {
        Op::MultiGet { keys } => keys.clone(),
        _ => Vec::new(),
    }
}

/// The guard connection: `keys` small keys with no TTL, all read back every round.
pub struct Guard {
    rng: Rng,
    keys: Vec<String>,
    state: Vec<KeyState>,
    next_version: Vec<u32>,
    /// `touch_acked` before the request that last set or read each key.
    baseline: Vec<u64>,
    tally: Tally,
}

impl Guard {
    pub fn new(keys: usize, seed: u64) -> Guard {
        Guard {
            rng: Rng::new(seed ^ 0x6A4D),
            keys: (0..keys).map(|n| format!("g:{n}")).collect(),
            state: vec![KeyState::Absent; keys],
            next_version: vec![0; keys],
            baseline: vec![0; keys],
            tally: Tally::default(),
        }
    }

    pub fn run(mut self, shared: &Shared) -> Tally {
        let mut turn = 0;
        while Instant::now() < shared.deadline && !shared.abort.load(Ordering::Relaxed) {
            let dialect = Dialect::ALL[turn % 3];
            turn += 1;
            let mut conn = match Conn::connect(shared.addr, dialect) {
                Ok(c) => c,
                Err(e) => {
                    self.tally.error(format!("guard connect: {e}"));
                    shared.abort.store(true, Ordering::Relaxed);
                    break;
                }
            };
            for _ in 0..4 * BATCHES_PER_CONNECTION {
                if Instant::now() >= shared.deadline || shared.abort.load(Ordering::Relaxed) {
                    break;
                }
                if let Err(e) = self.round(&mut conn, shared) {
                    self.tally.error(format!("guard ({}): {e}", dialect.name()));
                    shared.abort.store(true, Ordering::Relaxed);
                    return self.tally;
                }
            }
            conn.quit();
            self.tally.reconnects += 1;
        }
        self.tally
    }

    fn cost(&self, n: usize, version: u32) -> u64 {
        item_cost(
            self.keys[n].len(),
            model::value_len(&self.keys[n], version, true),
        )
    }

    /// Sets the keys known absent (and now and then a new version of one), then reads
    /// all keys in one multi-get.
    fn round(&mut self, conn: &mut Conn, shared: &Shared) -> Result<(), String> {
        let mut ops = Vec::new();
        let mut sets = Vec::new();
        let mut cost = 0;
        let refresh = self
            .rng
            .chance(10)
            .then(|| self.rng.below(self.keys.len() as u64) as usize);
        for n in 0..self.keys.len() {
            if matches!(self.state[n], KeyState::Absent) || refresh == Some(n) {
                let version = self.next_version[n];
                self.next_version[n] += 1;
                let key = self.keys[n].clone();
                cost += self.cost(n, version);
                ops.push(Op::Set {
                    flags: model::flags_for(&key, version),
                    ttl: 0,
                    value: model::value_bytes(&key, version, true),
                    key,
                });
                sets.push((n, version));
            }
        }
        for n in 0..self.keys.len() {
            cost += match self.next_version[n] {
                0 => 0,
                v => self.cost(n, v - 1),
            };
        }
        ops.push(Op::MultiGet {
            keys: self.keys.clone(),
        });
        shared.touch_sent.fetch_add(cost, Ordering::SeqCst);
        let acked_before = shared.touch_acked.load(Ordering::SeqCst);
        let mut outcome = Ok(());
        let mut multi = None;
        conn.batch(&ops, |i, reply| match reply {
            Reply::Stored if i < sets.len() => {
                let (n, version) = sets[i];
                self.state[n] = KeyState::Live {
                    version,
                    expires: None,
                };
                self.baseline[n] = acked_before;
                self.tally.sets += 1;
            }
            Reply::Values(hits) if i == sets.len() => multi = Some(hits),
            other => outcome = Err(format!("guard: unexpected answer {other:?}")),
        })?;
        outcome?;
        let sent_after = shared.touch_sent.load(Ordering::SeqCst);
        shared.touch_acked.fetch_add(cost, Ordering::SeqCst);
        shared
            .requests
            .fetch_add(ops.len() as u64, Ordering::Relaxed);
        self.tally.requests += ops.len() as u64;
        let hits = multi.ok_or("guard: no multi-get answer")?;
        if let Some(h) = hits
            .iter()
            .find(|h| !self.keys.iter().any(|k| k.as_bytes() == h.key))
        {
            self.tally.error(format!(
                "guard multi-get: answer for {:?}, not asked",
                wire::show(&h.key)
            ));
        }
        for n in 0..self.keys.len() {
            let KeyState::Live { version, .. } = self.state[n] else {
                continue;
            };
            self.tally.gets += 1;
            self.tally.guard_checks += 1;
            let key = &self.keys[n];
            let touched = sent_after.saturating_sub(self.baseline[n]);
            let allowed = shared.shard_budget.saturating_sub(self.cost(n, version));
            let strict = touched <= allowed;
            self.tally.guard_strict += u64::from(strict);
            match hits.iter().find(|h| h.key == key.as_bytes()) {
                Some(h) => {
                    self.tally.hits += 1;
                    self.baseline[n] = acked_before;
                    let want = model::value_bytes(key, version, true);
                    if h.value != want || h.flags != model::flags_for(key, version) {
                        let why = model::classify(key, version, &h.value);
                        self.tally
                            .error(format!("guard get {key}: {why} (flags {})", h.flags));
                    }
                }
                None if strict => {
                    self.tally.error(format!(
                        "guarded key {key} lost: at most {touched} bytes written or hit since \
                         its last set or hit, shard budget {} (minus its own {} bytes)",
                        shared.shard_budget,
                        self.cost(n, version)
                    ));
                    self.state[n] = KeyState::Absent;
                }
                None => {
                    self.tally.misses += 1;
                    self.tally.guard_excused_misses += 1;
                    self.state[n] = KeyState::Absent;
                }
            }
        }
        Ok(())
    }
}
