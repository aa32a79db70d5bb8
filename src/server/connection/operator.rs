//! The operator commands (`shutdown`, `watch`, `stats detail`, `slabs`, `lru`) and what
//! every dialect reports to the operator's views: the `watch` log lines and `stats
//! detail`'s per-prefix counters.
//!
//! Answers, as memcached 1.6.18 gives them (the parser's table in
//! `protocol::text::operator` has the argument rules):
//!
//! | request | answer |
//! |---|---|
//! | `shutdown …` without `-A` | `ERROR: shutdown not enabled` |
//! | `shutdown`, `shutdown graceful` with `-A` | no answer: the connection closes and the server stops (pending answers are sent, exit 0) |
//! | `shutdown <other>` with `-A` | `CLIENT_ERROR invalid shutdown mode` |
//! | `watch …` under `-W` | `CLIENT_ERROR watch commands not allowed` |
//! | `watch …` after other answers in the same batch | `ERROR cannot pipeline other commands before watch` |
//! | `watch <word that is no kind>` | `ERROR` |
//! | `watch …` with 20 watchers already | `WATCHER_TOO_MANY log watcher limit reached` |
//! | `watch [kinds]` | `OK`, then the connection is a log stream: every further byte it sends is ignored (memcached stops reading it), lines arrive until it closes |
//! | `stats detail on`, `off` | `OK` |
//! | `stats detail dump` | one `PREFIX …` line per prefix, `END` |
//! | `slabs reassign <src> <dst>` | `CLIENT_ERROR slab reassignment disabled` (ringcache has no slab mover: memcached's answer under `-o no_slab_reassign`) |
//! | `slabs automove 0\|1\|2`, `slabs automove ratio <r>` | `OK`; recorded for `stats settings` only |
//! | `lru tune …` (valid) | `OK`; recorded for `stats settings` only (the LRU is not segmented) |
//! | `lru mode …`, `lru temp_ttl …` | `ERROR` (no LRU maintainer: memcached's answer under `-o no_lru_maintainer`) |
//!
//! Every answer but the `shutdown` and `stats detail` ones is silenced by `noreply`.
//!
//! A watching connection is a stream: the engine calls [`Connection::stream`] every
//! few milliseconds (see `io`'s contract), which moves the lines workers queued for it
//! (`server::watch`) into its output while the output is under [`WATCH_OUTPUT_MARK`];
//! a watcher that does not read leaves its queue full and loses lines, never blocks.
//!
//! What a line says of an item: its size is the value's length; its class id is the
//! size class the store keeps it in (the ids of `stats items`). Lookups a command makes without reading the item (touch, incr/decr,
//! delete) peek at it for their line only while a watcher wants it.

use super::Connection;
use crate::protocol::operator::{LruCommand, Shutdown, SlabsCommand, StatsDetail, WatchKinds};
use crate::protocol::{encode, Response};
use crate::server::conns::WATCHING;
use crate::server::detail::Op;
use crate::server::tunables::LruTuning;
use crate::server::watch::{ConnPeer, ItemShape, Watcher};
use crate::server::DETAIL;
use crate::storage::{Read, StoreResult, WriteMode};
use std::sync::Arc;

/// Output a watcher may hold before its queue is left to fill (and skip lines): a
/// watcher holds at most this, one queue taken and one queue filling.
pub const WATCH_OUTPUT_MARK: usize = 64 * 1024;

const SHUTDOWN_DISABLED: &str = "ERROR: shutdown not enabled";
const SHUTDOWN_BAD_MODE: &str = "CLIENT_ERROR invalid shutdown mode";
const WATCH_DISABLED: &str = "CLIENT_ERROR watch commands not allowed";
const WATCH_PIPELINED: &str = "ERROR cannot pipeline other commands before watch";
const WATCH_TOO_MANY: &str = "WATCHER_TOO_MANY log watcher limit reached";
const REASSIGN_DISABLED: &str = "CLIENT_ERROR slab reassignment disabled";

/// A connection turned into a log stream.
#[derive(Debug)]
pub(super) struct Watching {
    watcher: Arc<Watcher>,
}

impl Connection {
    /// `shutdown [graceful]`: with `-A` both stop the server and close this connection
    /// without an answer.
    pub(super) fn shutdown(&mut self, mode: Shutdown) {
        if !self.server.config.shutdown_command {
            return self.line(SHUTDOWN_DISABLED);
        }
        match mode {
            Shutdown::Now | Shutdown::Graceful => {
                tracing::info!("shutdown command received: stopping");
                self.closing = true;
                self.server.request_stop();
            }
            Shutdown::BadMode => self.line(SHUTDOWN_BAD_MODE),
        }
    }

    /// `refresh_certs`: rereads the TLS certificate, key and CA files (`OK`, silenced
    /// by `noreply`), or memcached's error line, never silenced.
    pub(super) fn refresh_certs(&mut self, noreply: bool) {
        let refreshed = match self.server.tls() {
            None => Err("Error TLS not enabled".to_string()),
            Some(tls) => tls.refresh(),
        };
        match refreshed {
            Ok(()) => self.reply_unless(noreply, Response::Ok),
            Err(e) => {
                tracing::warn!("refresh_certs: {e}; the certificates in force stay");
                self.line(&e);
            }
        }
    }

    /// `watch [kinds]`: refusals in memcached's order, then the connection streams.
    pub(super) fn watch(&mut self, kinds: Option<WatchKinds>, noreply: bool) {
        let refuse = |conn: &mut Connection, reply| {
            if !noreply {
                conn.line(reply);
            }
        };
        if !self.server.config.watch_enabled {
            return refuse(self, WATCH_DISABLED);
        }
        if !self.out.is_empty() {
            return refuse(self, WATCH_PIPELINED);
        }
        let Some(kinds) = kinds else {
            return refuse(self, "ERROR");
        };
        match self.server.add_watcher(kinds) {
            Ok(watcher) => {
                self.reply_unless(noreply, Response::Ok);
                // Everything the client sends from now on is dropped unread (and
                // `stats conns` tells the state by it).
                self.swallow = WATCHING;
                self.pending = Vec::new();
                self.watching = Some(Box::new(Watching { watcher }));
            }
            Err(_) => refuse(self, WATCH_TOO_MANY),
        }
    }

    /// Whether this connection is a `watch` stream (the engine then calls
    /// [`Connection::stream`] periodically).
    #[inline]
    pub fn is_streaming(&self) -> bool {
        self.watching.is_some()
    }

    /// Moves the lines queued for this watcher into the output, unless the output holds
    /// `WATCH_OUTPUT_MARK` already (the client is not reading: let the queue fill).
    pub fn stream(&mut self) {
        let Some(watching) = self.watching.as_ref() else {
            return;
        };
        if self.out.held() >= WATCH_OUTPUT_MARK {
            return;
        }
        let lines = watching.watcher.take();
        if !lines.is_empty() {
            self.out.push_shared(lines.into());
        }
        self.charge();
    }

    /// Unregisters a watcher and logs the close of a connection (from `Drop`).
    pub(super) fn on_close(&mut self) {
        if let Some(watching) = self.watching.take() {
            self.server.remove_watcher(&watching.watcher);
        }
        let watch = &self.server.watch;
        if watch.wants(WatchKinds::CONNEVENTS) && self.record.fd() >= 0 {
            let reason = if self.fatal { "error" } else { "normal" };
            watch.conn(&conn_peer(self.record.fd()), Some(reason), self.record.fd());
        }
    }

    /// Runs a `flush_all` (text or binary) and records its time for `stats settings`'
    /// `oldest`.
    pub(super) fn flush_all(&self, delay_secs: i64) {
        let clock = self.server.store.clock();
        let at = (delay_secs > 0).then(|| clock.realtime(delay_secs));
        self.server.store.flush_all(delay_secs);
        let cas = self.server.config.cas_enabled;
        self.server.tunables.flushed(clock.now(), at, cas);
    }

    /// `stats detail on|off|dump`.
    pub(super) fn stats_detail(&mut self, detail: StatsDetail) {
        match detail {
            StatsDetail::On => self.server.set_detail(true),
            StatsDetail::Off => self.server.set_detail(false),
            StatsDetail::Dump => {
                for line in self.server.detail.dump() {
                    self.out.extend(&line);
                    self.out.extend(b"\r\n");
                }
                return self.out.extend(encode::END);
            }
        }
        self.reply(Response::Ok);
    }

    /// `slabs reassign|automove …`.
    pub(super) fn slabs(&mut self, command: SlabsCommand) {
        let tunables = &self.server.tunables;
        let noreply = match command {
            SlabsCommand::Reassign(_) => return self.line(REASSIGN_DISABLED),
            SlabsCommand::Automove { level, noreply } => {
                tunables.set_slab_automove(level);
                noreply
            }
            SlabsCommand::AutomoveRatio { ratio, noreply } => {
                tunables.set_slab_automove_ratio(ratio.get());
                noreply
            }
        };
        self.reply_unless(noreply, Response::Ok);
    }

    /// `lru tune|mode|temp_ttl …`.
    pub(super) fn lru(&mut self, command: LruCommand) {
        match command {
            LruCommand::Tune {
                hot_pct,
                warm_pct,
                hot_max_factor,
                warm_max_factor,
                noreply,
            } => {
                self.server.tunables.set_lru(LruTuning {
                    hot_pct,
                    warm_pct,
                    hot_max_factor: hot_max_factor.get(),
                    warm_max_factor: warm_max_factor.get(),
                });
                self.reply_unless(noreply, Response::Ok);
            }
            // memcached refuses both without its LRU maintainer thread.
            LruCommand::Mode { noreply, .. } | LruCommand::TempTtl { noreply, .. } => {
                self.reply_unless(noreply, Response::Error)
            }
        }
    }

    /// Reports a key a get looked up (`hit`): `fetchers` watchers, and `stats detail`
    /// when `detail` (classic and binary gets; memcached does not count meta ones).
    /// One load of the server's observed bits when nobody observes.
    #[inline]
    pub(super) fn observe_get(&self, key: &[u8], hit: bool, detail: bool) {
        let observed = self.server.observed();
        if observed & (WatchKinds::FETCHERS.bits() | DETAIL) != 0 {
            self.observed_get(observed, key, hit, detail);
        }
    }

    #[cold]
    #[inline(never)]
    fn observed_get(&self, observed: u16, key: &[u8], hit: bool, detail: bool) {
        if observed & WatchKinds::FETCHERS.bits() != 0 {
            // The hit's size, read again: only while someone watches.
            let found = if hit { self.peek_shape(key) } else { None };
            self.server.watch.fetch(key, found, self.record.fd());
        }
        if detail && observed & DETAIL != 0 {
            self.server.detail.record(key, Op::Get { hit });
        }
    }

    /// Before a command that looks `key` up without reading it (touch, incr/decr,
    /// delete): the item's shape for the `fetchers` and `deletions` lines, peeked only
    /// while a watcher wants one (`None` otherwise, or on a miss).
    #[inline]
    pub(super) fn peek_for_watch(&self, key: &[u8]) -> Option<ItemShape> {
        let kinds = WatchKinds::FETCHERS.union(WatchKinds::DELETIONS).bits();
        if self.server.observed() & kinds == 0 {
            return None;
        }
        self.peek_shape(key)
    }

    #[cold]
    #[inline(never)]
    fn peek_shape(&self, key: &[u8]) -> Option<ItemShape> {
        self.server
            .store
            .get(key, Read::PEEK, |item| item.map(|i| stored_shape(i)))
    }

    /// Reports a lookup made without a get (touch, incr/decr, delete) to `fetchers`
    /// watchers: `peeked` is what [`Connection::peek_for_watch`] saw, `hit` the outcome.
    #[inline]
    pub(super) fn observe_lookup(&self, key: &[u8], peeked: Option<ItemShape>, hit: bool) {
        if self.server.observed() & WatchKinds::FETCHERS.bits() != 0 {
            let found = hit.then(|| peeked.unwrap_or(ItemShape::NONE));
            self.server.watch.fetch(key, found, self.record.fd());
        }
    }

    /// Reports a delete: `fetchers` and `deletions` watchers (with what was peeked
    /// before it) and `stats detail` when `detail` (classic and binary deletes).
    #[inline]
    pub(super) fn observe_delete(
        &self,
        key: &[u8],
        peeked: Option<ItemShape>,
        deleted: bool,
        cmd: &str,
        detail: bool,
    ) {
        let observed = self.server.observed();
        let kinds = WatchKinds::FETCHERS.union(WatchKinds::DELETIONS).bits();
        if observed & (kinds | DETAIL) != 0 {
            self.observed_delete(observed, key, (peeked, deleted), cmd, detail);
        }
    }

    #[cold]
    #[inline(never)]
    fn observed_delete(
        &self,
        observed: u16,
        key: &[u8],
        (peeked, deleted): (Option<ItemShape>, bool),
        cmd: &str,
        detail: bool,
    ) {
        self.observe_lookup(key, peeked, deleted);
        if deleted && observed & WatchKinds::DELETIONS.bits() != 0 {
            let shape = peeked.unwrap_or(ItemShape::NONE);
            self.server.watch.deleted(key, cmd, shape);
        }
        if detail && observed & DETAIL != 0 {
            self.server.detail.record(key, Op::Delete);
        }
    }

    /// Reports a write: `mutations` watchers and `stats detail` when `detail` (classic
    /// and binary stores). `request` is the request's value length and exptime; a
    /// stored item is peeked for its own (an append's whole value, its kept TTL).
    #[inline]
    pub(super) fn observe_store(
        &self,
        key: &[u8],
        mode: WriteMode,
        result: StoreResult,
        request: (usize, i64),
        detail: bool,
    ) {
        let observed = self.server.observed();
        if observed & (WatchKinds::MUTATIONS.bits() | DETAIL) != 0 {
            self.observed_store(observed, key, (mode, result), request, detail);
        }
    }

    #[cold]
    #[inline(never)]
    fn observed_store(
        &self,
        observed: u16,
        key: &[u8],
        (mode, result): (WriteMode, StoreResult),
        request: (usize, i64),
        detail: bool,
    ) {
        if observed & WatchKinds::MUTATIONS.bits() != 0 {
            self.log_store(key, mode, result, request);
        }
        if detail && observed & DETAIL != 0 {
            self.server.detail.record(key, Op::Set);
        }
    }

    fn log_store(
        &self,
        key: &[u8],
        mode: WriteMode,
        result: StoreResult,
        (len, exptime): (usize, i64),
    ) {
        let clock = self.server.store.clock();
        let now = clock.now();
        let ttl = |exptime: u32| {
            if exptime == 0 {
                0
            } else {
                exptime.saturating_sub(now)
            }
        };
        let stored = (result == StoreResult::Stored)
            .then(|| {
                self.server.store.get(key, Read::PEEK, |item| {
                    item.map(|i| (ttl(i.exptime()), stored_shape(i)))
                })
            })
            .flatten();
        let (ttl_secs, shape) =
            stored.unwrap_or_else(|| (ttl(clock.realtime(exptime)), shape(key, len)));
        let status = match result {
            StoreResult::Stored => "stored",
            StoreResult::NotStored => "not_stored",
            StoreResult::Exists => "exists",
            StoreResult::NotFound => "not_found",
            StoreResult::TooLarge => "too_large",
            StoreResult::OutOfMemory => "no_memory",
        };
        let cmd = match mode {
            WriteMode::Set => "set",
            WriteMode::Add => "add",
            WriteMode::Replace => "replace",
            WriteMode::Append => "append",
            WriteMode::Prepend => "prepend",
            WriteMode::Cas => "cas",
        };
        self.server
            .watch
            .store(key, status, cmd, ttl_secs, shape, self.record.fd());
    }
}

/// What a log line says of a stored item: the size class it is in and its value length.
fn stored_shape(item: &crate::storage::ItemRef<'_>) -> ItemShape {
    ItemShape {
        class: item.class_id(),
        size: item.value().len(),
    }
}

/// What a log line says of an item not stored, with this key and value length: the size
/// class an item of these lengths without flags or expiry is kept in.
fn shape(key: &[u8], value_len: usize) -> ItemShape {
    ItemShape {
        class: crate::storage::class_id_of(key.len(), value_len),
        size: value_len,
    }
}

/// The peer of socket `fd` as `connevents` lines show it (memcached's `rip=unix
/// rport=0 transport=local` for a unix socket).
pub(crate) fn conn_peer(fd: i32) -> ConnPeer {
    use crate::os::SocketName;
    match crate::os::socket_addrs(fd).0 {
        Some(SocketName::Inet(addr)) => ConnPeer {
            ip: addr.ip().to_string(),
            port: addr.port(),
            transport: "tcp",
        },
        Some(SocketName::Unix(_)) => ConnPeer {
            ip: "unix".into(),
            port: 0,
            transport: "local",
        },
        None => ConnPeer {
            ip: "unknown".into(),
            port: 0,
            transport: "tcp",
        },
    }
}
