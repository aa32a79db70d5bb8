//! Key dumps streamed as the client reads: `lru_crawler metadump`, `lru_crawler
//! mgdump` and `stats cachedump`.
//!
//! A dump is a walk over the store (`storage::Walk`) that the connection keeps while it
//! runs. Each step takes one slice of [`DUMP_SLICE_ITEMS`] items under one shard lock
//! and writes their lines to the output, and steps go on until the output reaches its
//! mark; then the connection stalls like a get stopped at the mark (it reads no more
//! requests), and the engine's [`Connection::resume`] after a send carries the dump on.
//! So a dump of any size holds at most the mark plus one slice's lines, never a copy of
//! the cache; other clients are served between steps and between slices; a client that
//! never reads pins only that much. Requests pipelined after the dump run when it
//! ends, in order.
//!
//! A dump lists the items live when its walk reaches them: an item present for the
//! whole dump is listed once, an item moved or rewritten meanwhile may be listed twice
//! or (if written after the walk passed its place) not at all, as memcached's dumps,
//! which also run beside writes.

use super::Connection;
use crate::protocol::dump::{self, MetaDumpItem};
use crate::storage::{ClassSet, DumpItem, Walk};

/// Items one dump step reads under one shard lock: at most ~50 KiB of metadump lines
/// (a 250-byte key URI-encodes to 750).
pub const DUMP_SLICE_ITEMS: usize = 64;

/// Which dump, in which format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum DumpKind {
    /// `lru_crawler metadump` (memcached 1.6.18's lines).
    Meta,
    /// `lru_crawler mgdump` (memcached 1.6.45's).
    Mg,
    /// `stats cachedump`: at most `left` more items (0: no limit).
    Cache { left: u32 },
}

/// A dump in progress.
#[derive(Debug)]
pub(super) struct Dump {
    kind: DumpKind,
    walk: Walk,
    /// Items listed so far (cachedump's limit counts them).
    listed: u64,
}

impl Connection {
    /// Starts a dump of the classes in `classes`; the execution loop carries it on
    /// before the next request (see [`Connection::dump_step`]).
    #[cold]
    pub(super) fn start_dump(&mut self, kind: DumpKind, classes: ClassSet) {
        if kind == DumpKind::Mg {
            self.out.extend(dump::MGDUMP_START);
        }
        self.dump = Some(Box::new(Dump {
            kind,
            walk: Walk::new(classes),
            listed: 0,
        }));
    }

    /// Writes the dump in progress until the output reaches `mark` or the dump ends
    /// (with its end line); returns true when it ended. Kept out of line: the request
    /// loop only tests whether a dump is in progress.
    #[cold]
    #[inline(never)]
    pub(super) fn dump_step(&mut self, mark: usize) -> bool {
        let Connection {
            dump, out, server, ..
        } = self;
        let Some(d) = dump.as_mut() else {
            return true;
        };
        let store = &server.store;
        let unix = |rel: u32| store.unix_time(rel);
        loop {
            if out.held() >= mark {
                return false;
            }
            let buf = out.buf();
            let (kind, listed) = (d.kind, &mut d.listed);
            let walked = store.dump_slice(&mut d.walk, DUMP_SLICE_ITEMS, |item: &DumpItem<'_>| {
                match kind {
                    DumpKind::Meta => dump::metadump_line(
                        &MetaDumpItem {
                            key: item.key,
                            exptime: (item.exptime != 0).then(|| unix(item.exptime)),
                            last_access: unix(item.time),
                            cas: super::shown_cas(server.config.cas_enabled, item.cas),
                            fetched: item.fetched,
                            class: item.class,
                            size: item.size,
                        },
                        buf,
                    ),
                    DumpKind::Mg => dump::mgdump_line(item.key, item.key_binary, buf),
                    DumpKind::Cache { left } => {
                        if left != 0 && *listed >= u64::from(left) {
                            return;
                        }
                        let exptime = if item.exptime == 0 {
                            0
                        } else {
                            unix(item.exptime)
                        };
                        dump::cachedump_line(item.key, item.value_len, exptime, buf);
                    }
                }
                *listed += 1;
            });
            let limit_reached = matches!(d.kind, DumpKind::Cache { left } if left != 0 && d.listed >= u64::from(left));
            if walked || limit_reached {
                out.extend(match d.kind {
                    DumpKind::Meta => dump::METADUMP_END,
                    DumpKind::Mg => dump::MGDUMP_END,
                    DumpKind::Cache { .. } => dump::CACHEDUMP_END,
                });
                *dump = None;
                return true;
            }
        }
    }
}
