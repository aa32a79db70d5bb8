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
//! memcached's general fields in memcached's order, each where ringcache has the concept;
//! then ringcache's own figures, prefixed `ringcache_`. Left out, because ringcache has
//! nothing they could measure: `libevent`; `response_obj_*`, `read_buf_*` (memcached's
//! buffer pools); `reserved_fds` (ringcache enforces `-c` by count, it reserves no
//! descriptors); `time_in_listen_disabled_us`; `conn_yields` (no `-R` per-event request
//! limit: the engines bound input per connection per loop turn in bytes, and do not count
//! the turns a connection yields); `hash_power_level`, `hash_bytes`,
//! `hash_is_expanding` (many per-shard tables that grow inline, not one table expanded
//! by a thread); `slab_reassign_*`, `slabs_moved`, `slab_global_page_pool` (no slab
//! allocator); `lru_maintainer_juggles`, `evicted_active`,
//! `lrutail_reflocked`, `moves_*`, `direct_reclaims`, `lru_bumps_dropped` (one plain LRU
//! per shard, no maintainer thread, no segments); `malloc_fails` (an
//! allocation failure aborts; the memory limit shows as `store_no_memory`); `log_*`
//! (no `watch` logger); `unexpected_napi_ids`, `round_robin_fallback` (no NAPI-id thread
//! choice). `auth_cmds`/`auth_errors` are 0, as memcached's without `-S`;
//! `accepting_conns` is 1 (listeners pause only briefly, counted in
//! `listen_disabled_num`).
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
use crate::config::{IoEngine, ListenAddr, ProtocolChoice};
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
        StatsGroup::Settings => settings(server, &mut stat),
        StatsGroup::Items => super::stats_classes::items(server, &mut stat),
        StatsGroup::Slabs => super::stats_classes::slabs(server, &mut stat),
        StatsGroup::Conns => conns(server, asker, &mut stat),
        StatsGroup::Sizes => stat("sizes_status", &"disabled"),
        StatsGroup::Reset => {
            // As memcached: every counter and the store's totals (total_items,
            // evictions, reclaimed, …) start again from 0; levels (curr_items, bytes,
            // curr_connections) stay.
            server.stats.reset();
            server.store.reset_stats();
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

type StatFn<'a> = dyn FnMut(&str, &dyn Display) + 'a;

/// A `rusage` time as memcached prints it: seconds, a dot, six digits of microseconds.
fn timeval(d: std::time::Duration) -> String {
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

fn general(server: &Server, stat: &mut StatFn<'_>) {
    let clock = server.store.clock();
    let (user, system) = crate::os::rusage_self();
    let t = server.stats.totals();
    let store = server.store.stats();
    let curr_connections = server.curr_connections();
    stat("pid", &std::process::id());
    stat("uptime", &clock.now());
    stat("time", &(clock.started_unix() + u64::from(clock.now())));
    stat("version", &super::VERSION);
    stat("pointer_size", &(usize::BITS));
    stat("rusage_user", &timeval(user));
    stat("rusage_system", &timeval(system));
    stat("max_connections", &server.config.max_connections);
    stat("curr_connections", &curr_connections);
    counters(stat, &t, Stat::TotalConnections, Stat::RejectedConnections);
    // memcached counts a structure per listening socket and per client.
    let structures = curr_connections as usize + server.conns.listeners().len();
    stat("connection_structures", &structures);
    counters(stat, &t, Stat::CmdGet, Stat::GetMisses);
    // Counted by the store, where the lookup meets the dead item.
    stat("get_expired", &store.get_expired);
    stat("get_flushed", &store.get_flushed);
    counters(stat, &t, Stat::DeleteMisses, Stat::StoreNoMemory);
    stat("auth_cmds", &0);
    stat("auth_errors", &0);
    counters(stat, &t, Stat::BytesRead, Stat::BytesWritten);
    stat("limit_maxbytes", &store.limit_bytes);
    stat("accepting_conns", &1);
    counters(stat, &t, Stat::ListenDisabledNum, Stat::ListenDisabledNum);
    stat("threads", &server.config.threads);
    stat("lru_crawler_running", &u8::from(server.crawler.running()));
    stat("lru_crawler_starts", &server.crawler.starts());
    stat("bytes", &store.bytes);
    stat("curr_items", &store.curr_items);
    stat("total_items", &store.total_items);
    stat("expired_unfetched", &store.expired_unfetched);
    stat("evicted_unfetched", &store.evicted_unfetched);
    stat("evictions", &store.evictions);
    stat("reclaimed", &store.reclaimed);
    stat("crawler_reclaimed", &store.crawler_reclaimed);
    stat("crawler_items_checked", &store.crawler_items_checked);
    stat("ringcache_version", &super::RINGCACHE_VERSION);
    stat("ringcache_engine", &server.engine());
    if server.engine() == "uring" {
        stat("ringcache_uring_features", &server.engine_features());
        counters(stat, &t, Stat::RecvNoBufs, Stat::SendsInFlight);
    }
    stat("ringcache_conn_buffer_bytes", &server.buffers.used_bytes());
    stat("ringcache_conn_buffer_limit", &server.buffers.limit_bytes());
    counters(stat, &t, Stat::ConnBufferPauses, Stat::ConnBufferRefusals);
}

/// The counters from `first` to `last`, in [`Stat`]'s order (memcached's).
fn counters(stat: &mut StatFn<'_>, totals: &Totals, first: Stat, last: Stat) {
    for &s in Stat::span(first, last) {
        stat(s.name(), &totals.get(s));
    }
}

fn settings(server: &Server, stat: &mut StatFn<'_>) {
    let c = &server.config;
    let tcp: Vec<String> = c
        .listen
        .iter()
        .filter_map(|a| match a {
            ListenAddr::Tcp(sa) if sa.is_ipv6() => Some(format!("[{}]", sa.ip())),
            ListenAddr::Tcp(sa) => Some(sa.ip().to_string()),
            ListenAddr::Unix { .. } => None,
        })
        .collect();
    let unix = c.listen.iter().find_map(|a| match a {
        ListenAddr::Unix { path, mask } => Some((path.display().to_string(), *mask)),
        ListenAddr::Tcp(_) => None,
    });
    // `cache_memlimit` changes it.
    stat("maxbytes", &server.store.limit_bytes());
    stat("maxconns", &c.max_connections);
    stat("tcpport", &tcp_port(server));
    stat("udpport", &0);
    stat(
        "inter",
        &if tcp.is_empty() {
            "NULL".to_string()
        } else {
            tcp.join(",")
        },
    );
    stat("verbosity", &server.verbosity());
    stat("evictions", &"on");
    stat(
        "domain_socket",
        &unix.as_ref().map_or("NULL", |(path, _)| path.as_str()),
    );
    stat(
        "umask",
        &format_args!("{:o}", unix.as_ref().map_or(0o700, |u| u.1)),
    );
    let yes_no = |on: bool| if on { "yes" } else { "no" };
    stat("shutdown_command", &yes_no(c.shutdown_command));
    stat("num_threads", &c.threads);
    stat("cas_enabled", &yes_no(c.cas_enabled));
    stat("tcp_backlog", &c.backlog);
    stat(
        "binding_protocol",
        &match c.protocol {
            ProtocolChoice::Auto => "auto-negotiate",
            ProtocolChoice::Ascii => "ascii",
            ProtocolChoice::Binary => "binary",
        },
    );
    stat("auth_enabled_sasl", &"no");
    stat("auth_enabled_ascii", &"no");
    stat("item_size_max", &c.max_item_bytes);
    stat("maxconns_fast", &"yes");
    stat("lru_crawler", &yes_no(server.crawler.enabled()));
    stat("lru_crawler_sleep", &server.crawler.sleep_micros());
    stat("lru_crawler_tocrawl", &server.crawler.tocrawl());
    stat("flush_enabled", &yes_no(c.flush_enabled));
    stat("idle_timeout", &c.idle_timeout_secs);
    stat(
        "ringcache_conn_buffer_limit_mb",
        &(c.conn_buffer_limit_bytes >> 20),
    );
    stat("track_sizes", &"no");
    stat("ssl_enabled", &"no");
    stat(
        "ringcache_io_engine",
        &match c.io_engine {
            IoEngine::Auto => "auto",
            IoEngine::Uring => "uring",
            IoEngine::Epoll => "epoll",
        },
    );
}

/// The TCP port: `-p`, or the one the kernel picked for `-p 0`.
fn tcp_port(server: &Server) -> u16 {
    if server.config.tcp_port != 0 {
        return server.config.tcp_port;
    }
    server
        .conns
        .listeners()
        .iter()
        .find_map(|&fd| match crate::os::socket_addrs(fd).1? {
            SocketName::Inet(a) => Some(a),
            SocketName::Unix(_) => None,
        })
        .map_or(0, |a| a.port())
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
