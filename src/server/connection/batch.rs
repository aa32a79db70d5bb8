//! The look-ahead across connections: the key of the first request in each of a turn's
//! receives, named before any of them runs, so their table and record misses overlap.
//!
//! At pipeline depth 1 a receive holds one request, and the look-ahead within a
//! connection ([`Connection::prefetch_batch`]) has nothing to read ahead of. But a
//! turn of the engine hands over many connections' receives at once (an epoll batch, a
//! batch of completions): the engine asks each connection for its first key
//! ([`Connection::first_key`]) and hands them all to [`prefetch_keys`], which asks the
//! store for their buckets and then their records as the pipelined look-ahead does.
//! With a store larger than the CPU's caches each get otherwise waits for two memory
//! loads, one after another.
//!
//! Owns nothing. Invariants: a key is a hint only; what is prefetched never changes
//! what runs or what it answers.

use super::{Connection, Dialect};
use crate::server::Server;

impl Connection {
    /// The key of the request `input` starts with, when `input` is the start of this
    /// connection's next request in a dialect the look-ahead reads (text and meta,
    /// binary); `None` otherwise (kept input, a data block to drop, TLS records, a
    /// request the look-ahead does not read).
    #[inline]
    pub(crate) fn first_key<'a>(&self, input: &'a [u8]) -> Option<&'a [u8]> {
        if !self.pending.is_empty() || self.swallow != 0 || self.tls.is_some() {
            return None;
        }
        match self.dialect {
            Dialect::Text => self.peek::<true>(input).map(|p| p.key),
            Dialect::Binary => self.peek::<false>(input).map(|p| p.key),
            Dialect::Sasl if self.sasl.authenticated() => self.peek::<false>(input).map(|p| p.key),
            Dialect::Sasl | Dialect::Undetected | Dialect::Unauthenticated => None,
        }
    }
}

/// Starts loading the table buckets, then the records, of `keys` (hints: a key that
/// is absent, or over the key limit, costs its hash and nothing more).
#[inline]
pub(crate) fn prefetch_keys(server: &Server, keys: &[&[u8]]) {
    server
        .store
        .record_spans(keys, crate::os::prefetch_value, |_, bytes| {
            crate::os::prefetch(bytes)
        });
}
