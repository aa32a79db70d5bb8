//! `stats detail`: memcached's per-prefix counters. A key's prefix is everything before
//! the first delimiter (`-D`, `:` by default); keys without one are not counted.
//!
//! As memcached 1.6.18 counts them: `get` and `hit` per key of a classic or binary get
//! (gets, gat and gats included; not touch, incr/decr or meta), `set` per classic or
//! binary store command whatever its outcome, `del` per classic or binary delete.
//! `stats detail dump` lists `PREFIX <prefix> get <n> hit <n> set <n> del <n>`, in no
//! particular order (memcached's is its hash table's); `stats reset` forgets every
//! prefix.
//!
//! Bounds: memcached keeps every prefix it sees; here at most [`PREFIXES_MAX`] are kept
//! and keys under further prefixes are not counted (a client writing random prefixes
//! cannot grow the table without bound).
//!
//! Cost while off (the default, unless `-D` is given): the server's `DETAIL` bit, in
//! the one relaxed load of `Server::observed` a request pays anyway. While on, one lock of one table shared by every worker per
//! counted key, as memcached's global stats lock.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Most prefixes counted at once.
pub const PREFIXES_MAX: usize = 4096;

/// The per-prefix counters and the switch.
#[derive(Debug)]
pub struct Detail {
    delimiter: u8,
    prefixes: Mutex<HashMap<Box<[u8]>, Counts>>,
}

/// One prefix's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub gets: u64,
    pub hits: u64,
    pub sets: u64,
    pub deletes: u64,
}

/// What a key is counted for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Get { hit: bool },
    Set,
    Delete,
}

impl Detail {
    /// Counters for keys with `delimiter` (whether they are counted is the server's
    /// `DETAIL` bit).
    pub fn new(delimiter: u8) -> Detail {
        Detail {
            delimiter,
            prefixes: Mutex::default(),
        }
    }

    /// The delimiter (`stats settings`' `stat_key_prefix`).
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Counts `op` on `key` under its prefix, if it has one (call only while counting
    /// is on).
    pub fn record(&self, key: &[u8], op: Op) {
        let Some(end) = memchr::memchr(self.delimiter, key) else {
            return;
        };
        let prefix = &key[..end];
        let mut prefixes = self.prefixes.lock().unwrap_or_else(PoisonError::into_inner);
        if !prefixes.contains_key(prefix) {
            if prefixes.len() >= PREFIXES_MAX {
                return;
            }
            prefixes.insert(prefix.into(), Counts::default());
        }
        let Some(counts) = prefixes.get_mut(prefix) else {
            return;
        };
        match op {
            Op::Get { hit } => {
                counts.gets += 1;
                counts.hits += u64::from(hit);
            }
            Op::Set => counts.sets += 1,
            Op::Delete => counts.deletes += 1,
        }
    }

    /// The dump's lines, `PREFIX <prefix> get <n> hit <n> set <n> del <n>` (without line
    /// ends).
    pub fn dump(&self) -> Vec<Vec<u8>> {
        let prefixes = self.prefixes.lock().unwrap_or_else(PoisonError::into_inner);
        prefixes
            .iter()
            .map(|(prefix, c)| {
                let mut line = b"PREFIX ".to_vec();
                line.extend_from_slice(prefix);
                line.extend_from_slice(
                    format!(
                        " get {} hit {} set {} del {}",
                        c.gets, c.hits, c.sets, c.deletes
                    )
                    .as_bytes(),
                );
                line
            })
            .collect()
    }

    /// `stats reset`: every prefix is forgotten.
    pub fn reset(&self) {
        self.prefixes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_the_first_delimiter() {
        let detail = Detail::new(b':');
        detail.record(b"a:1", Op::Set);
        detail.record(b"a:1", Op::Get { hit: true });
        detail.record(b"a:2", Op::Get { hit: false });
        detail.record(b"a:1", Op::Delete);
        detail.record(b"b:x:y", Op::Set);
        detail.record(b":z", Op::Set);
        detail.record(b"nodelimiter", Op::Set);
        let mut lines = detail.dump();
        lines.sort();
        assert_eq!(
            lines,
            [
                &b"PREFIX  get 0 hit 0 set 1 del 0"[..],
                b"PREFIX a get 2 hit 1 set 1 del 1",
                b"PREFIX b get 0 hit 0 set 1 del 0",
            ]
        );
        detail.reset();
        assert!(detail.dump().is_empty());
    }

    #[test]
    fn other_delimiter_and_the_bound() {
        let detail = Detail::new(b'/');
        detail.record(b"a:1", Op::Set);
        assert!(detail.dump().is_empty());
        for i in 0..PREFIXES_MAX + 10 {
            detail.record(format!("{i}/k").as_bytes(), Op::Set);
        }
        assert_eq!(detail.dump().len(), PREFIXES_MAX);
    }
}
