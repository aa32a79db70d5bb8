//! The eviction policies `rc-evict-sim` compares, each holding at most `capacity` keys
//! of equal size (a count, not bytes: the hit-ratio stream's values are all one size).
//!
//! Knows nothing of the request stream. Every policy answers `get` (a hit marks the key
//! as the policy wants) and `set` (an overwrite counts as an access, as the server's
//! shards count it; a new key may evict one).
//!
//! - `sieve`: SIEVE (NSDI '24), as `crates/storage/src/shard/evict.rs` runs it: a list
//!   in insertion order, a visited bit set by hits, a hand walking from the oldest end
//!   towards the newest that spares (and clears) visited keys and evicts the first other
//!   one, then stays where it stopped.
//! - `clock`: FIFO-reinsertion (CLOCK) over fixed slots: the new key takes the evicted
//!   key's slot, just behind the hand. What a shard without list links could run, its
//!   hand walking the arena's records in place.
//! - `lru`: exact least-recently-used, for reference.

use std::collections::HashMap;

/// "No slot" in the list links.
const NIL: usize = usize::MAX;

pub trait Policy {
    /// Whether `key` is held; a hit counts as an access.
    fn get(&mut self, key: u64) -> bool;
    /// Stores `key` (an access if held), evicting one key if the cache is full.
    fn set(&mut self, key: u64);
}

/// The policy named `name` (`sieve`, `clock`, `lru`) holding `capacity` keys.
pub fn by_name(name: &str, capacity: usize) -> Option<Box<dyn Policy>> {
    match name {
        "sieve" => Some(Box::new(Listed::new(capacity, Order::Sieve))),
        "lru" => Some(Box::new(Listed::new(capacity, Order::Lru))),
        "clock" => Some(Box::new(Clock::new(capacity))),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Order {
    Sieve,
    Lru,
}

/// SIEVE or LRU: slots in a doubly linked list, `head` the newest.
struct Listed {
    order: Order,
    capacity: usize,
    slot_of: HashMap<u64, usize>,
    key: Vec<u64>,
    visited: Vec<bool>,
    prev: Vec<usize>,
    next: Vec<usize>,
    head: usize,
    tail: usize,
    /// SIEVE's hand: the next slot it looks at, or [`NIL`] (the tail).
    hand: usize,
    free: Vec<usize>,
}

impl Listed {
    fn new(capacity: usize, order: Order) -> Listed {
        Listed {
            order,
            capacity,
            slot_of: HashMap::with_capacity(capacity),
            key: vec![0; capacity],
            visited: vec![false; capacity],
            prev: vec![NIL; capacity],
            next: vec![NIL; capacity],
            head: NIL,
            tail: NIL,
            hand: NIL,
            free: (0..capacity).rev().collect(),
        }
    }

    fn unlink(&mut self, i: usize) {
        let (p, n) = (self.prev[i], self.next[i]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n] = p;
        }
    }

    fn link_head(&mut self, i: usize) {
        self.prev[i] = NIL;
        self.next[i] = self.head;
        if self.head == NIL {
            self.tail = i;
        } else {
            self.prev[self.head] = i;
        }
        self.head = i;
    }

    fn access(&mut self, i: usize) {
        match self.order {
            Order::Sieve => self.visited[i] = true,
            Order::Lru => {
                self.unlink(i);
                self.link_head(i);
            }
        }
    }

    fn evict(&mut self) {
        let victim = match self.order {
            Order::Lru => self.tail,
            Order::Sieve => {
                let mut h = if self.hand == NIL {
                    self.tail
                } else {
                    self.hand
                };
                while self.visited[h] {
                    self.visited[h] = false;
                    h = if self.prev[h] == NIL {
                        self.tail
                    } else {
                        self.prev[h]
                    };
                }
                self.hand = self.prev[h];
                h
            }
        };
        self.unlink(victim);
        self.slot_of.remove(&self.key[victim]);
        self.free.push(victim);
    }
}

impl Policy for Listed {
    fn get(&mut self, key: u64) -> bool {
        let Some(&i) = self.slot_of.get(&key) else {
            return false;
        };
        self.access(i);
        true
    }

    fn set(&mut self, key: u64) {
        if self.get(key) {
            return;
        }
        if self.slot_of.len() == self.capacity {
            self.evict();
        }
        let i = self.free.pop().expect("a slot is free after an eviction");
        self.key[i] = key;
        self.visited[i] = false;
        self.link_head(i);
        self.slot_of.insert(key, i);
    }
}

/// CLOCK over fixed slots, filled in order, then each new key in its victim's slot.
struct Clock {
    capacity: usize,
    slot_of: HashMap<u64, usize>,
    key: Vec<u64>,
    visited: Vec<bool>,
    hand: usize,
}

impl Clock {
    fn new(capacity: usize) -> Clock {
        Clock {
            capacity,
            slot_of: HashMap::with_capacity(capacity),
            key: Vec::with_capacity(capacity),
            visited: Vec::with_capacity(capacity),
            hand: 0,
        }
    }
}

impl Policy for Clock {
    fn get(&mut self, key: u64) -> bool {
        let Some(&i) = self.slot_of.get(&key) else {
            return false;
        };
        self.visited[i] = true;
        true
    }

    fn set(&mut self, key: u64) {
        if self.get(key) {
            return;
        }
        if self.key.len() < self.capacity {
            self.slot_of.insert(key, self.key.len());
            self.key.push(key);
            self.visited.push(false);
            return;
        }
        while self.visited[self.hand] {
            self.visited[self.hand] = false;
            self.hand = (self.hand + 1) % self.capacity;
        }
        let h = self.hand;
        self.slot_of.remove(&self.key[h]);
        self.key[h] = key;
        self.slot_of.insert(key, h);
        self.hand = (h + 1) % self.capacity;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keys 0..4 fill a cache of 4; 0 and 2 are read; 4 and 5 come in.
    fn run(policy: &mut dyn Policy) -> Vec<u64> {
        for k in 0..4 {
            policy.set(k);
        }
        assert!(policy.get(0) && policy.get(2));
        policy.set(4);
        policy.set(5);
        (0..6).filter(|&k| policy.get(k)).collect()
    }

    #[test]
    fn sieve_spares_read_keys_and_evicts_the_oldest_unread() {
        assert_eq!(run(by_name("sieve", 4).unwrap().as_mut()), vec![0, 2, 4, 5]);
    }

    #[test]
    fn clock_spares_read_keys() {
        assert_eq!(run(by_name("clock", 4).unwrap().as_mut()), vec![0, 2, 4, 5]);
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        // After the reads the order is 2, 0, 3, 1 (newest first): 1 then 3 go.
        assert_eq!(run(by_name("lru", 4).unwrap().as_mut()), vec![0, 2, 4, 5]);
    }

    #[test]
    fn sieve_keeps_a_spared_key_where_clock_evicts_it() {
        // 0 is read, then four new keys come in. SIEVE spares 0, and its hand goes on
        // towards the newest keys, evicting 1, 2, 3 and then 4, new and unread. CLOCK
        // spares 0 too, but puts each new key behind its hand, so it comes round to 0
        // (its mark spent) before any new key.
        let held = |name| {
            let mut p = by_name(name, 4).unwrap();
            for k in 0..4 {
                p.set(k);
            }
            assert!(p.get(0));
            for k in 4..8 {
                p.set(k);
            }
            (0..8).filter(|&k| p.get(k)).collect::<Vec<_>>()
        };
        assert_eq!(held("sieve"), vec![0, 5, 6, 7]);
        assert_eq!(held("clock"), vec![4, 5, 6, 7]);
    }
}
