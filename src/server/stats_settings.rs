//! What `stats settings` answers: memcached 1.6.18's fields in its order, each saying
//! ringcache's real configuration in memcached's words, then ringcache's own settings
//! (`ringcache_…`).
//!
//! The shape is memcached's when started with `-o no_lru_maintainer,no_slab_reassign`
//! and built without extstore, the configuration that has what ringcache has: a flat
//! LRU (`lru_maintainer_thread no`, `lru_segmented no`, `temp_lru no`), no slab mover
//! (`slab_reassign no`). The settings such a memcached only records are recorded here
//! too and printed as set (`slab_automove`, `slab_automove_ratio`, `lru tune`'s
//! `hot_lru_pct`, `warm_lru_pct`, `hot_max_factor`, `warm_max_factor`: see
//! `server::tunables`), with memcached's defaults for what cannot be set
//! (`slab_automove_window`, `temporary_ttl`, `hashpower_init` 0, `tail_repair_time` 0).
//! `hash_algorithm` is the store's (`foldhash`); `oldest` is the last `flush_all`'s
//! time in ringcache's clock (seconds since start: memcached's clock starts earlier, so
//! the numbers differ); the `ssl_*` lines come from `server::tls` (with `-Z` all of
//! 1.6.18's; without it the ones that say "none"); NAPI ids and memory files are off.
//!
//! Left out, because ringcache has no such setting:
//! `reqs_per_event` (no `-R`: the engines bound input per connection per turn in
//! bytes), `worker_logbuf_size` (workers write `watch` lines straight into the watchers'
//! queues), `read_buf_mem_limit` (see `ringcache_conn_buffer_limit_mb`), `ext_*` and
//! `slab_automove_freeratio` (no extstore); without `-Z`, `ssl_keyformat`,
//! `ssl_wbuf_size` and `ssl_min_version`. The slab geometry is the store's size classes':
//! `growth_factor` the most consecutive classes' chunks grow by, `chunk_size` the
//! smallest chunk, `slab_chunk_max` the largest paged one. The crawler's settings
//! (`lru_crawler`, `lru_crawler_sleep`, `lru_crawler_tocrawl`) come from
//! `server::crawler`.

use super::stats_report::StatFn;
use super::Server;
use crate::config::{IoEngine, ListenAddr, ProtocolChoice};
use crate::os::SocketName;
use crate::server::watch::WATCHER_QUEUE_BYTES;

pub(super) fn settings(server: &Server, stat: &mut StatFn<'_>) {
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
    let yes_no = |on: bool| if on { "yes" } else { "no" };
    let tunables = &server.tunables;
    // `cache_memlimit` changes it.
    stat("maxbytes", &server.store.limit_bytes());
    stat("maxconns", &c.max_connections);
    stat("tcpport", &tcp_port(server));
    stat("udpport", &c.udp_port);
    stat(
        "inter",
        &if tcp.is_empty() {
            "NULL".to_string()
        } else {
            tcp.join(",")
        },
    );
    stat("verbosity", &server.verbosity());
    stat("oldest", &tunables.oldest_live());
    stat("evictions", &"on");
    stat(
        "domain_socket",
        &unix.as_ref().map_or("NULL", |(path, _)| path.as_str()),
    );
    stat(
        "umask",
        &format_args!("{:o}", unix.as_ref().map_or(0o700, |u| u.1)),
    );
    stat("shutdown_command", &yes_no(c.shutdown_command));
    stat(
        "growth_factor",
        &format_args!("{:.2}", crate::storage::GROWTH_FACTOR),
    );
    stat("chunk_size", &crate::storage::smallest_chunk());
    stat("num_threads", &c.threads);
    // Every worker serves its own UDP sockets.
    stat("num_threads_per_udp", &c.threads);
    stat("stat_key_prefix", &char::from(server.detail.delimiter()));
    stat("detail_enabled", &yes_no(server.detail_enabled()));
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
    let sasl = if c.sasl { "yes" } else { "no" };
    stat("auth_enabled_sasl", &sasl);
    // memcached shows the `-Y` file's path.
    let auth_file = server.auth().map(|a| a.path().display().to_string());
    stat("auth_enabled_ascii", &auth_file.as_deref().unwrap_or("no"));
    stat("item_size_max", &c.max_item_bytes);
    stat("maxconns_fast", &"yes");
    stat("hashpower_init", &0);
    stat("slab_reassign", &"no");
    stat("slab_automove", &tunables.slab_automove());
    stat(
        "slab_automove_ratio",
        &format_args!("{:.2}", tunables.slab_automove_ratio()),
    );
    stat("slab_automove_window", &30);
    stat("slab_chunk_max", &crate::storage::largest_paged_chunk());
    stat("lru_crawler", &yes_no(server.crawler.enabled()));
    stat("lru_crawler_sleep", &server.crawler.sleep_micros());
    stat("lru_crawler_tocrawl", &server.crawler.tocrawl());
    stat("tail_repair_time", &0);
    stat("flush_enabled", &yes_no(c.flush_enabled));
    stat("dump_enabled", &yes_no(c.dump_enabled));
    stat("hash_algorithm", &"foldhash");
    stat("lru_maintainer_thread", &"no");
    stat("lru_segmented", &"no");
    let lru = tunables.lru();
    stat("hot_lru_pct", &lru.hot_pct);
    stat("warm_lru_pct", &lru.warm_pct);
    stat("hot_max_factor", &format_args!("{:.2}", lru.hot_max_factor));
    stat(
        "warm_max_factor",
        &format_args!("{:.2}", lru.warm_max_factor),
    );
    stat("temp_lru", &"no");
    stat("temporary_ttl", &61);
    stat("idle_timeout", &c.idle_timeout_secs);
    stat("watcher_logbuf_size", &WATCHER_QUEUE_BYTES);
    stat("track_sizes", &"no");
    stat("inline_ascii_response", &"no");
    super::tls::settings_stats(server.tls(), stat);
    stat("num_napi_ids", &"(null)");
    match &c.memory_file {
        Some(path) => stat("memory_file", &path.display()),
        None => stat("memory_file", &"(null)"),
    }
    stat(
        "ringcache_conn_buffer_limit_mb",
        &(c.conn_buffer_limit_bytes >> 20),
    );
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
