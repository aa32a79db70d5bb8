//! What `stats [group]` answers, with memcached's field names and order.
//!
//! Reads the store's figures and every worker's counters on demand; nothing here runs
//! on the request path of other commands.

use super::stats::Stat;
use super::Server;
use crate::protocol::{Response, StatsGroup};
use std::fmt::Display;

/// Emits the answer to `stats <group>` through `emit`, ending with `END` (or `RESET`,
/// or `ERROR` for an unknown group, as memcached).
pub(super) fn write(server: &Server, group: StatsGroup<'_>, emit: &mut dyn FnMut(Response<'_>)) {
    let mut stat = |name: &str, value: &dyn Display| {
        let value = value.to_string();
        emit(Response::Stat(name, &value));
    };
    match group {
        StatsGroup::General => general(server, &mut stat),
        StatsGroup::Settings => settings(server, &mut stat),
        StatsGroup::Items => items(server, &mut stat),
        StatsGroup::Slabs => slabs(server, &mut stat),
        StatsGroup::Conns => {}
        StatsGroup::Sizes => stat("sizes_status", &"disabled"),
        StatsGroup::Reset => {
            server.stats.reset();
            server.store.reset_stats();
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

fn general(server: &Server, stat: &mut StatFn<'_>) {
    let clock = server.store.clock();
    let (user, system) = crate::io::sys::rusage_self();
    let totals = server.stats.totals();
    let store = server.store.stats();
    stat("pid", &std::process::id());
    stat("uptime", &clock.now());
    stat("time", &(clock.started_unix() + u64::from(clock.now())));
    stat("version", &super::VERSION);
    stat("pointer_size", &(usize::BITS));
    stat(
        "rusage_user",
        &format_args!("{}.{:06}", user.as_secs(), user.subsec_micros()),
    );
    stat(
        "rusage_system",
        &format_args!("{}.{:06}", system.as_secs(), system.subsec_micros()),
    );
    stat("max_connections", &server.config.max_connections);
    stat("curr_connections", &server.curr_connections());
    for s in Stat::ALL {
        if s == Stat::CmdGet {
            // memcached prints connection_structures between the connection counts and
            // the command counts.
            stat("connection_structures", &server.curr_connections());
        }
        stat(s.name(), &totals.get(s));
    }
    stat("limit_maxbytes", &store.limit_bytes);
    stat("accepting_conns", &1);
    stat("threads", &server.config.threads);
    stat("bytes", &store.bytes);
    stat("curr_items", &store.curr_items);
    stat("total_items", &store.total_items);
    stat("expired_unfetched", &store.expired_unfetched);
    stat("evicted_unfetched", &store.evicted_unfetched);
    stat("evictions", &store.evictions);
    stat("reclaimed", &store.reclaimed);
    stat("io_engine", &server.engine());
}

fn settings(server: &Server, stat: &mut StatFn<'_>) {
    let c = &server.config;
    stat("maxbytes", &c.limit_bytes);
    stat("maxconns", &c.max_connections);
    stat("tcpport", &c.tcp_port);
    stat("udpport", &0);
    stat("verbosity", &server.verbosity());
    stat("evictions", &"on");
    stat("num_threads", &c.threads);
    stat("cas_enabled", &"yes");
    stat("tcp_backlog", &c.backlog);
    stat(
        "binding_protocol",
        &match c.protocol {
            crate::config::ProtocolChoice::Auto => "auto-negotiate",
            crate::config::ProtocolChoice::Ascii => "ascii",
            crate::config::ProtocolChoice::Binary => "binary",
        },
    );
    stat("item_size_max", &c.max_item_bytes);
    stat("idle_timeout", &c.idle_timeout_secs);
    stat("io_engine", &server.engine());
}

/// ringcache has no slab classes; it reports everything as class 1 so tools that walk
/// `stats items` find the totals.
fn items(server: &Server, stat: &mut StatFn<'_>) {
    let store = server.store.stats();
    if store.curr_items == 0 {
        return;
    }
    stat("items:1:number", &store.curr_items);
    stat("items:1:evicted", &store.evictions);
    stat("items:1:evicted_unfetched", &store.evicted_unfetched);
    stat("items:1:reclaimed", &store.reclaimed);
    stat("items:1:expired_unfetched", &store.expired_unfetched);
}

fn slabs(server: &Server, stat: &mut StatFn<'_>) {
    let store = server.store.stats();
    if store.curr_items > 0 {
        stat("1:used_chunks", &store.curr_items);
        stat("1:mem_requested", &store.bytes);
    }
    stat("active_slabs", &u8::from(store.curr_items > 0));
    stat("total_malloced", &store.bytes);
}
