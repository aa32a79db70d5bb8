//! What `stats [group]` answers, with memcached 1.6.18's field names, order and value
//! formats, so tools written for memcached (Prometheus memcached_exporter, which splits
//! every line on single spaces and parses numbers, cacti/munin scripts) read ringcache
//! unchanged.
//!
//! Reads the store's figures, every worker's counters and the connection tables on
//! demand; nothing here runs on the request path of other commands.
//!
//! # `stats`
//!
//! memcached 1.6.18's general fields in its order, in the shape memcached prints them
//! when started with `-o no_lru_maintainer,no_slab_reassign` (ringcache has neither an
//! LRU maintainer thread with segmented LRUs nor a slab mover, so memcached itself leaves
//! out `slab_reassign_*`, `slabs_moved`, `lru_maintainer_juggles`, `evicted_active`,
//! `moves_*`, `direct_reclaims`, `lru_bumps_dropped` there); then ringcache's own
//! figures, prefixed `ringcache_`. Each value is a real figure with memcached's meaning:
//!
//! - connections as memcached counts them, listening sockets included: one per
//!   listening address (ringcache's workers each have a socket per address, memcached
//!   one for all); `curr_connections` is clients + addresses − 1, `total_connections`
//!   counts the addresses until the first `stats reset`, `connection_structures` is
//!   the most clients at once + addresses (memcached's connection structures are never
//!   freed);
//! - `accepting_conns` is 0 while a listener is paused (out of descriptors),
//!   `time_in_listen_disabled_us` the time listeners spent paused; `conn_yields` counts
//!   the epoll engine's read-budget yields (io_uring's completion batches never yield a
//!   connection);
//! - `hash_power_level` is log2 of the id slots of all shards' tables together (12 to
//!   a 64-byte bucket; one item each, as memcached's buckets hold about one at its
//!   load), `hash_bytes` their memory; `hash_is_expanding` is 0 (tables grow inline
//!   under their shard's lock, never in the background);
//! - `log_*` are the `watch` streams' (`server::watch`);
//! - `auth_cmds`/`auth_errors` count `-Y` attempts and `-S` SASL_AUTH/SASL_STEP
//!   outcomes (a PLAIN "continue" counts in neither, as in memcached);
//! - 0 for what cannot happen here: `malloc_fails` (an allocation failure aborts; the memory limit shows
//!   as `store_no_memory`), `unexpected_napi_ids`/`round_robin_fallback` (no NAPI-id
//!   thread choice), `slab_global_page_pool` (freed pages go back to the allocator, no
//!   pool holds them), `lrutail_reflocked` (items are only used under their shard's
//!   lock, so the LRU tail is never in use).
//!
//! Left out, because ringcache has nothing they could honestly measure: `libevent`;
//! `response_obj_*`, `read_buf_*` (memcached's per-thread buffer pools: ringcache's
//! connection buffers are `ringcache_conn_buffer_*`); `reserved_fds` (ringcache enforces
//! `-c` by count and reserves no descriptors).
//!
//! `stats reset` zeroes every counter memcached's does (`Server::reset_stats`).
//!
//! # `stats settings`
//!
//! `stats_settings.rs`.
//!
//! The crawler's figures (`lru_crawler_running`, `lru_crawler_starts`,
//! `crawler_reclaimed`, `crawler_items_checked`) come from `crawler.rs` and the store.
//!
//! # `stats items`, `stats slabs`
//!
//! Per size class, in `stats_classes.rs`.
//!
//! # `stats conns`
//!
//! memcached's per-socket lines, ascending by descriptor: every listening socket of every
//! worker (`conn_listening`) and every client (`addr`, `listen_addr`, `state`,
//! `secs_since_last_cmd`). A client's `listen_addr` is the local address of its socket
//! (equal to the listener's except on a wildcard listener).

use super::conns::{ConnSnapshot, ConnState};
use super::stats::{Stat, Totals};
use super::Server;
use crate::os::SocketName;
use crate::protocol::{Response, StatsGroup};
use std::fmt::Display;
use std::os::fd::RawFd;

/// Emits the answer to `stats <group>` through `emit`, ending with `END` (or `RESET`,
/// or `ERROR` for an unknown group, as memcached). `asker` is the socket of the
/// connection that asked (shown as executing in `stats conns`).
pub(super) fn write(
    server: &Server,
    group: StatsGroup<'_>,
    asker: RawFd,
    emit: &mut dyn FnMut(Response<'_>),
) {
    let mut stat = |name: &str, value: &dyn Display| {
        let value = value.to_string();
        emit(Response::Stat(name, &value));
    };
    match group {
        StatsGroup::General => general(server, &mut stat),
        StatsGroup::Settings => super::stats_settings::settings(server, &mut stat),
        StatsGroup::Items => super::stats_classes::items(server, &mut stat),
        StatsGroup::Slabs => super::stats_classes::slabs(server, &mut stat),
        StatsGroup::Conns => conns(server, asker, &mut stat),
        StatsGroup::Sizes => stat("sizes_status", &"disabled"),
        StatsGroup::Reset => {
            server.reset_stats();
            server.crawler.reset_stats();
            emit(Response::Reset);
            return;
        }
        StatsGroup::Other(_) => {
            emit(Response::Error);
            return;
        }
    }
    emit(Response::End);
}

pub(super) type StatFn<'a> = dyn FnMut(&str, &dyn Display) + 'a;

/// A `rusage` time as memcached prints it: seconds, a dot, six digits of microseconds.
fn timeval(d: std::time::Duration) -> String {
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

fn general(server: &Server, stat: &mut StatFn<'_>) {
    let clock = server.store.clock();
    let (user, system) = crate::os::rusage_self();
    let t = server.stats.totals();
    let store = server.store.stats();
    let watch = server.watch.stats();
    let listening = listening_addresses(server);
    stat("pid", &std::process::id());
    stat("uptime", &clock.now());
    stat("time", &(clock.started_unix() + u64::from(clock.now())));
    stat("version", &super::VERSION);
    stat("pointer_size", &(usize::BITS));
    stat("rusage_user", &timeval(user));
    stat("rusage_system", &timeval(system));
    stat("max_connections", &server.config.max_connections);
    let clients = server.curr_connections() as usize;
    stat("curr_connections", &(clients + listening).saturating_sub(1));
    let listeners_counted = if server.listeners_in_total() {
        listening as u64
    } else {
        0
    };
    stat(
        "total_connections",
        &(t.get(Stat::TotalConnections) + listeners_counted),
    );
    counters(
        stat,
        &t,
        Stat::RejectedConnections,
        Stat::RejectedConnections,
    );
    let structures = server.clients_high_water() as usize + listening;
    stat("connection_structures", &structures);
    counters(stat, &t, Stat::CmdGet, Stat::GetMisses);
    // Counted by the store, where the lookup meets the dead item.
    stat("get_expired", &store.get_expired);
    stat("get_flushed", &store.get_flushed);
    counters(stat, &t, Stat::DeleteMisses, Stat::AuthErrors);
    counters(stat, &t, Stat::BytesRead, Stat::BytesWritten);
    stat("limit_maxbytes", &store.limit_bytes);
    stat(
        "accepting_conns",
        &u8::from(t.get(Stat::PausedListeners) == 0),
    );
    counters(
        stat,
        &t,
        Stat::ListenDisabledNum,
        Stat::TimeInListenDisabledUs,
    );
    stat("threads", &server.config.threads);
    counters(stat, &t, Stat::ConnYields, Stat::ConnYields);
    stat(
        "hash_power_level",
        &store.hash_buckets.checked_ilog2().unwrap_or(0),
    );
    stat("hash_bytes", &store.hash_bytes);
    stat("hash_is_expanding", &0);
    stat("lru_crawler_running", &u8::from(server.crawler.running()));
    stat("lru_crawler_starts", &server.crawler.starts());
    stat("malloc_fails", &0);
    stat("log_worker_dropped", &0);
    stat("log_worker_written", &watch.worker_written);
    stat("log_watcher_skipped", &watch.watcher_skipped);
    stat("log_watcher_sent", &watch.watcher_sent);
    stat("log_watchers", &watch.watchers);
    if let Some(tls) = server.tls() {
        tls.stats(stat);
    }
    stat("unexpected_napi_ids", &0);
    stat("round_robin_fallback", &0);
    stat("bytes", &store.bytes);
    stat("curr_items", &store.curr_items);
    stat("total_items", &store.total_items);
    stat("slab_global_page_pool", &0);
    stat("expired_unfetched", &store.expired_unfetched);
    stat("evicted_unfetched", &store.evicted_unfetched);
    stat("evictions", &store.evictions);
    stat("reclaimed", &store.reclaimed);
    stat("crawler_reclaimed", &store.crawler_reclaimed);
    stat("crawler_items_checked", &store.crawler_items_checked);
    stat("lrutail_reflocked", &0);
    stat("ringcache_version", &super::RINGCACHE_VERSION);
    stat("ringcache_engine", &server.engine());
    if server.engine() == "uring" {
        stat("ringcache_uring_features", &server.engine_features());
        counters(stat, &t, Stat::RecvNoBufs, Stat::SendsInFlight);
    }
    counters(stat, &t, Stat::PausedListeners, Stat::PausedListeners);
    stat("ringcache_conn_buffer_bytes", &server.buffers.used_bytes());
    stat("ringcache_conn_buffer_limit", &server.buffers.limit_bytes());
    counters(stat, &t, Stat::ConnBufferPauses, Stat::ConnBufferRefusals);
    stat("ringcache_shard_lock_waits", &store.lock_waits);
    if let Some(tls) = server.tls() {
        stat("ringcache_ktls_fallbacks", &tls.kernel_fallbacks());
    }
    // The restart from the `-e` memory file (memcached has no stat for it).
    let restored = server.store.restored().unwrap_or_default();
    stat("ringcache_restarted_items", &restored.items);
    stat("ringcache_restart_load_us", &restored.load_us);
}

/// Listening addresses: memcached has one listening socket per address, ringcache's
/// workers have one each (or share one); either way each distinct address counts once.
fn listening_addresses(server: &Server) -> usize {
    let mut addrs: Vec<SocketName> = Vec::new();
    for &fd in server.conns.listeners() {
        if let Some(name) = crate::os::socket_addrs(fd).1 {
            if !addrs.contains(&name) {
                addrs.push(name);
            }
        }
    }
    addrs.len()
}

/// The counters from `first` to `last`, in [`Stat`]'s order (memcached's).
fn counters(stat: &mut StatFn<'_>, totals: &Totals, first: Stat, last: Stat) {
    for &s in Stat::span(first, last) {
        stat(s.name(), &totals.get(s));
    }
}

/// How `stats conns` shows an address: memcached's `tcp:ip:port`, `tcp6:[ip]:port`,
/// `unix:path`.
fn addr_str(addr: &SocketName) -> String {
    match addr {
        SocketName::Inet(std::net::SocketAddr::V4(a)) => format!("tcp:{a}"),
        SocketName::Inet(std::net::SocketAddr::V6(a)) => format!("tcp6:[{}]:{}", a.ip(), a.port()),
        SocketName::Unix(path) => format!("unix:{}", path.display()),
    }
}

fn conns(server: &Server, asker: RawFd, stat: &mut StatFn<'_>) {
    let now = server.store.clock().now();
    // Listeners first as (fd, None), clients as (fd, Some(snapshot)); sorted by fd.
    let mut lines: Vec<(RawFd, Option<ConnSnapshot>)> = server
        .conns
        .listeners()
        .iter()
        .map(|&fd| (fd, None))
        .collect();
    let mut clients = Vec::new();
    server.conns.for_each(|snap| {
        if snap.fd >= 0 {
            // Asked while the table is locked: the socket cannot close meanwhile.
            clients.push((snap, crate::os::socket_addrs(snap.fd)));
        }
    });
    let mut addrs = std::collections::HashMap::new();
    for (snap, a) in clients {
        addrs.insert(snap.fd, a);
        lines.push((snap.fd, Some(snap)));
    }
    lines.sort_by_key(|l| l.0);
    for (fd, snap) in lines {
        let mut line = |name: &str, value: &dyn Display| stat(&format!("{fd}:{name}"), value);
        match snap {
            None => {
                let local = crate::os::socket_addrs(fd).1;
                line("addr", &local.as_ref().map_or("?".into(), addr_str));
                line("state", &"conn_listening");
                line("secs_since_last_cmd", &now);
            }
            Some(snap) => {
                let (peer, local) = addrs.remove(&fd).unwrap_or((None, None));
                line("addr", &peer.as_ref().map_or("?".into(), addr_str));
                line("listen_addr", &local.as_ref().map_or("?".into(), addr_str));
                let (state, secs) = if fd == asker {
                    (ConnState::ParseCmd, 0)
                } else {
                    (snap.state, now.saturating_sub(snap.last_cmd_secs))
                };
                line("state", &state.name());
                line("secs_since_last_cmd", &secs);
            }
        }
    }
}
