//! What each key must hold: the values the soak writes, and one thread's knowledge of
//! its own keys.
//!
//! Every key has exactly one writer (the thread that owns it) and that thread's
//! requests on one connection are answered in order, so after each answer the owner
//! knows the key's state exactly, up to what the server may drop on its own: eviction
//! and expiry. Hence the rules a reply is checked against:
//!
//! - a hit must return exactly the bytes and flags of the last acknowledged set;
//!   anything else is classified (stale version, another key's value, corrupt) and is
//!   an error;
//! - a miss of a live key is allowed (eviction, expiry) and counted; the key is then
//!   known to be absent, so a later hit without a new set is an error (resurrection),
//!   as is a hit on a deleted key;
//! - a hit on a key whose TTL ran out more than [`EXPIRY_SLACK`] before the request
//!   was sent is an error (the server's clock is coarse, hence the slack);
//! - delete, touch and incr answers must agree with the state: `DELETED` for a key
//!   known absent is an error, `NOT_FOUND` for a live one is a counted miss.
//!
//! Values embed their key and version (`key:version:`) followed by filler that is a
//! function of (key, version): the expected bytes are regenerated for each check,
//! which is a stronger check than a checksum, and a mismatch can be named.

use ringcache_tools::mix;
use std::time::{Duration, Instant};

/// How long past its TTL an item may still be returned: the server's clock ticks once
/// a second and the ticker thread may run late on a busy machine.
pub const EXPIRY_SLACK: Duration = Duration::from_secs(3);

/// An upper bound on what one item counts against the server's memory limit beyond
/// its key and value bytes: ringcache's `item_footprint` adds at most ~100 bytes (record
/// header or slab entry, table slot, malloc or chunk rounding), 128 leaves room; values
/// near malloc's mmap threshold may be rounded to whole pages, hence 4 KiB more there.
/// Over-estimating only makes the guarded-key check less often strict, never wrong.
pub fn item_cost(key_len: usize, value_len: usize) -> u64 {
    let data = key_len + value_len;
    let pages = if data >= 64 * 1024 { 4096 + 16 } else { 0 };
    (data + pages + 128) as u64
}

fn hash_key(key: &str, version: u32) -> u64 {
    key.bytes().fold(mix(u64::from(version) ^ 0x5EED), |h, b| {
        mix(h ^ u64::from(b))
    })
}

/// Value sizes: mostly small, some medium, a few large (to make eviction work in
/// big steps too). `small` caps everything at 200 bytes (the guarded keys).
pub fn value_len(key: &str, version: u32, small: bool) -> usize {
    let h = hash_key(key, version);
    let pick = h % 100;
    let r = (h >> 8) as usize;
    if small {
        return 64 + r % 137;
    }
    match pick {
        0..=69 => 32 + r % 481,          // 32 B – 512 B
        70..=94 => 513 + r % 7680,       // 0.5 – 8 KiB
        _ => 8 * 1024 + r % (56 * 1024), // 8 – 64 KiB
    }
}

/// The exact bytes of `key` at `version`: [`value_len`] long (longer only if the
/// `key:version:` header itself is, which the soak's short keys never make it).
pub fn value_bytes(key: &str, version: u32, small: bool) -> Vec<u8> {
    let len = value_len(key, version, small);
    let mut v = format!("{key}:{version}:").into_bytes();
    let mut x = hash_key(key, version) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.push(b'a' + (x % 26) as u8);
    }
    v
}

/// The flags stored with `key` at `version`.
pub fn flags_for(key: &str, version: u32) -> u32 {
    (hash_key(key, version) >> 32) as u32
}

/// What the owner knows of one key.
#[derive(Clone, Debug)]
pub enum KeyState {
    /// Known not to be in the store: never set, deleted, or seen missing.
    Absent,
    /// Set (acknowledged) and not seen missing since.
    Live {
        version: u32,
        /// When the TTL runs out, measured from the acknowledgement (None: never).
        expires: Option<Instant>,
    },
}

/// Describes why a returned value is not the expected one.
pub fn classify(key: &str, want_version: u32, got: &[u8]) -> String {
    let prefix = format!("{key}:");
    let Some(rest) = got.strip_prefix(prefix.as_bytes()) else {
        return format!(
            "value of another key or corrupt ({} bytes, starts {:?})",
            got.len(),
            super::wire::show(&got[..got.len().min(40)])
        );
    };
    let version = rest
        .split(|&b| b == b':')
        .next()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<u32>().ok());
    match version {
        Some(n) if n < want_version => format!("stale value (version {n}, want {want_version})"),
        Some(n) if n > want_version => {
            format!("version {n}, newer than the acknowledged {want_version}")
        }
        _ => format!(
            "corrupt value for version {want_version} ({} bytes)",
            got.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_have_their_length_and_differ_per_version() {
        for v in 0..200 {
            for (key, small) in [("s:7:1999", false), ("g:31", true)] {
                let bytes = value_bytes(key, v, small);
                assert_eq!(bytes.len(), value_len(key, v, small), "{key} v{v}");
                assert!(bytes.starts_with(format!("{key}:{v}:").as_bytes()));
                assert!(item_cost(key.len(), bytes.len()) > bytes.len() as u64);
            }
        }
        assert_ne!(
            value_bytes("s:0:1", 1, false),
            value_bytes("s:0:1", 2, false)
        );
    }

    #[test]
    fn classify_names_what_went_wrong() {
        let key = "s:3:17";
        assert!(classify(key, 5, &value_bytes(key, 4, false)).starts_with("stale"));
        assert!(classify(key, 5, &value_bytes(key, 6, false)).contains("newer"));
        assert!(classify(key, 5, &value_bytes("s:3:18", 5, false)).contains("another key"));
        let mut bent = value_bytes(key, 5, false);
        *bent.last_mut().unwrap() ^= 1;
        assert!(classify(key, 5, &bent).starts_with("corrupt"));
    }
}
