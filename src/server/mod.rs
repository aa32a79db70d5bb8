//! Engine-agnostic server logic: the shared [`Server`] state, the per-connection state
//! machine, its output queue, the budget all connections' buffers share (`buffers`),
//! per-worker statistics (`stats`, `stats_report`, `stats_classes`), the
//! per-worker connection tables behind `stats conns` (`conns`), the operator's views
//! and knobs (`watch` log streams, `detail` per-prefix counters, `tunables` the settings
//! only recorded), the LRU crawler's thread (`crawler`), listening-socket setup,
//! `-Y` authentication (`auth`), `-S` SASL authentication (`sasl`), and TLS (`tls`:
//! rustls inside the connection).
//!
//! The server makes no syscall of its own: engines (in `io`) feed bytes in and take
//! bytes out; what it needs of the OS besides (CPU time and socket addresses for
//! `stats`, the prefetch hint) goes through the `os` leaf, and `listener` sets sockets
//! up at startup through `std` and `socket2`. It never imports `io` (checked by
//! `tests/layering.rs`): the `shutdown` command stops the engines through a closure that
//! `run` hands over ([`Server::set_stop`]).
#![forbid(unsafe_code)]

pub mod auth;
pub mod buffers;
pub mod connection;
pub mod conns;
pub mod crawler;
pub mod detail;
pub mod floor;
pub mod listener;
pub mod output;
pub mod sasl;
pub mod stats;
mod stats_classes;
mod stats_report;
mod stats_settings;
pub mod tls;
pub mod tunables;
pub mod udp;
pub mod watch;

use crate::config::Config;
use crate::protocol::Limits;
use crate::storage::{Clock, Store, StoreConfig};
use buffers::ConnBuffers;
use connection::Connection;
use conns::ConnTables;
use detail::Detail;
use stats::StatsRegistry;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use tunables::Tunables;
use watch::Watch;

/// The version `version`, binary VERSION and `stats` report: the memcached protocol level
/// ringcache implements, as a plain memcached version number. Clients parse it to pick
/// features (a widely used Node client matches `/(\d+)\.(\d+)\.(\d+)$/`), so nothing may
/// follow the number.
pub const VERSION: &str = "1.6.18";

/// ringcache's own version: `-V`, the `ringcache_version` stat and the startup line.
pub const RINGCACHE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The bit of [`Server::observed`] set while `stats detail` counts; the watched kinds
/// (`WatchKinds` bits) take the bits below it.
pub const DETAIL: u16 = 1 << 15;

/// What stops the server (see [`Server::set_stop`]).
type StopFn = Box<dyn Fn() + Send + Sync>;

/// The store's configuration for `config`: `-m`, `-I`, and 8 shards per worker.
pub fn store_config(config: &Config) -> StoreConfig {
    StoreConfig {
        limit_bytes: config.limit_bytes,
        max_item_bytes: config.max_item_bytes,
        shards: (config.threads * 8).next_power_of_two().max(8),
    }
}

/// State shared by every worker: the store, the configuration, the counters.
pub struct Server {
    pub store: Store,
    pub config: Config,
    pub stats: StatsRegistry,
    /// Who is connected, per worker, for `stats conns`.
    pub conns: ConnTables,
    pub limits: Limits,
    /// The budget all connections' buffers share.
    pub buffers: ConnBuffers,
    /// The `watch` log streams (shared with the store's eviction observer).
    pub watch: Arc<Watch>,
    /// `stats detail`'s per-prefix counters.
    pub detail: Detail,
    /// Settings operators change at run time that are only recorded.
    pub tunables: Tunables,
    /// What the request path reports to: the kinds some watcher wants, and [`DETAIL`].
    observed: AtomicU16,
    /// The LRU crawler's settings and state (its thread: `crawler::spawn`).
    pub crawler: crawler::Crawler,
    curr_connections: AtomicU32,
    /// The most clients connected at once (`connection_structures`).
    clients_high_water: AtomicU32,
    /// Whether `total_connections` still counts the listening sockets, as memcached's
    /// does from startup until the first `stats reset`.
    listeners_in_total: AtomicBool,
    verbosity: AtomicU8,
    /// The engine in use and its features, for `stats` (set once at startup).
    engine: OnceLock<(String, String)>,
    /// What the `shutdown` command (`-A`) calls to stop the server (set once at
    /// startup by whoever runs the workers).
    stop: OnceLock<StopFn>,
    /// The `-Y` credentials (set once at startup, before any connection).
    auth: OnceLock<auth::AsciiAuth>,
    /// The `-S` password file (set once at startup, before any connection).
    sasl: OnceLock<sasl::SaslPasswords>,
    /// TLS (`-Z`; set once at startup, before any connection).
    tls: OnceLock<tls::Tls>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Server {
    pub fn new(config: Config) -> Arc<Server> {
        let store = Store::new(store_config(&config), Clock::new());
        Server::with_store(config, store)
    }

    /// A server around `store` (one restored from a memory file, `-e`), made with
    /// [`store_config`] of `config`.
    pub fn with_store(config: Config, store: Store) -> Arc<Server> {
        let watch = Arc::new(Watch::default());
        store.observe_evictions(watch::eviction_observer(Arc::clone(&watch)));
        Arc::new(Server {
            store,
            stats: StatsRegistry::new(config.threads),
            conns: ConnTables::new(config.threads),
            limits: Limits {
                max_item_bytes: config.max_item_bytes,
            },
            buffers: ConnBuffers::new(config.conn_buffer_limit_bytes),
            watch,
            detail: Detail::new(config.prefix_delimiter),
            tunables: Tunables::default(),
            observed: AtomicU16::new(if config.detail_enabled { DETAIL } else { 0 }),
            crawler: crawler::Crawler::new(config.crawler),
            curr_connections: AtomicU32::new(0),
            clients_high_water: AtomicU32::new(0),
            listeners_in_total: AtomicBool::new(true),
            verbosity: AtomicU8::new(config.verbosity),
            engine: OnceLock::new(),
            stop: OnceLock::new(),
            auth: OnceLock::new(),
            sasl: OnceLock::new(),
            tls: OnceLock::new(),
            config,
        })
    }

    /// A new connection on worker `worker` with no socket (unit tests), or `None` past
    /// the connection limit.
    pub fn open(self: &Arc<Server>, worker: usize) -> Option<Connection> {
        self.accept(worker, -1)
    }

    /// A new connection on worker `worker`, socket `fd`, or `None` past the connection
    /// limit.
    pub fn accept(self: &Arc<Server>, worker: usize, fd: RawFd) -> Option<Connection> {
        let stats = self.stats.worker(worker);
        let prev = self.curr_connections.fetch_add(1, Ordering::Relaxed);
        if prev >= self.config.max_connections {
            self.curr_connections.fetch_sub(1, Ordering::Relaxed);
            stats.incr(stats::Stat::RejectedConnections);
            return None;
        }
        stats.incr(stats::Stat::TotalConnections);
        self.clients_high_water
            .fetch_max(prev + 1, Ordering::Relaxed);
        crate::logging::accepted(fd);
        let record = self.conns.register(worker, fd, self.store.clock().now());
        if fd >= 0
            && self
                .watch
                .wants(crate::protocol::operator::WatchKinds::CONNEVENTS)
        {
            let peer = connection::conn_peer(fd);
            self.watch.conn(&peer, None, fd);
        }
        let mut conn = Connection::new(Arc::clone(self), worker, record);
        if let Some(tls) = self.tls() {
            if self.speaks_tls(tls, fd) {
                conn.start_tls(tls);
            }
        }
        Some(conn)
    }

    /// Whether the connection on socket `fd` speaks TLS: not on a unix socket, nor on
    /// a `notls:` listener (its local address tells, asked only when there are some).
    fn speaks_tls(&self, tls: &tls::Tls, fd: RawFd) -> bool {
        let unix = self
            .config
            .listen
            .iter()
            .any(|a| matches!(a, crate::config::ListenAddr::Unix { .. }));
        !unix
            && tls.applies(|| match crate::os::socket_addrs(fd).1 {
                Some(crate::os::SocketName::Inet(addr)) => Some(addr),
                _ => None,
            })
    }

    /// Turns TLS on (once, at startup, before any connection).
    pub fn set_tls(&self, tls: tls::Tls) {
        let _ = self.tls.set(tls);
    }

    /// The TLS state, if `-Z` is on.
    pub fn tls(&self) -> Option<&tls::Tls> {
        self.tls.get()
    }

    /// Worker `worker`'s endpoint for the UDP socket `fd` (`-U`): listed in `stats
    /// conns`, not counted as a client.
    pub fn udp_connection(self: &Arc<Server>, worker: usize, fd: RawFd) -> Connection {
        let record = self.conns.register(worker, fd, self.store.clock().now());
        Connection::new_udp(Arc::clone(self), worker, record)
    }

    /// Turns `-Y` authentication on (once, at startup, before any connection).
    pub fn set_auth(&self, auth: auth::AsciiAuth) {
        let _ = self.auth.set(auth);
    }

    /// The `-Y` credentials, if authentication is on.
    pub fn auth(&self) -> Option<&auth::AsciiAuth> {
        self.auth.get()
    }

    /// Turns `-S` SASL authentication on (once, at startup, before any connection).
    pub fn set_sasl(&self, passwords: sasl::SaslPasswords) {
        let _ = self.sasl.set(passwords);
    }

    /// The `-S` password file, if SASL is on.
    pub fn sasl(&self) -> Option<&sasl::SaslPasswords> {
        self.sasl.get()
    }

    /// Called when a connection is dropped.
    pub(crate) fn closed(&self) {
        self.curr_connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// Clients connected now.
    pub fn curr_connections(&self) -> u32 {
        self.curr_connections.load(Ordering::Relaxed)
    }

    /// The most clients connected at once since startup.
    pub fn clients_high_water(&self) -> u32 {
        self.clients_high_water.load(Ordering::Relaxed)
    }

    /// Whether `total_connections` counts the listening sockets (until `stats reset`).
    pub fn listeners_in_total(&self) -> bool {
        self.listeners_in_total.load(Ordering::Relaxed)
    }

    /// `stats reset`: every counter starts again from 0, as memcached's: the workers'
    /// and the store's, the log streams', the per-prefix ones, and the listening
    /// sockets' share of `total_connections`. Levels (items, bytes, connections) stay.
    pub fn reset_stats(&self) {
        self.stats.reset();
        self.store.reset_stats();
        self.watch.reset();
        self.detail.reset();
        self.listeners_in_total.store(false, Ordering::Relaxed);
    }

    pub fn verbosity(&self) -> u8 {
        self.verbosity.load(Ordering::Relaxed)
    }

    /// Sets the verbosity (the `verbosity` command) and the log level with it.
    pub fn set_verbosity(&self, level: u8) {
        self.verbosity.store(level, Ordering::Relaxed);
        crate::logging::set_verbosity(level);
    }

    /// What the request path reports to (see [`DETAIL`]): one relaxed load, all a
    /// request pays while nobody watches and `stats detail` is off.
    #[inline]
    pub fn observed(&self) -> u16 {
        self.observed.load(Ordering::Relaxed)
    }

    /// Adds a `watch` stream for `kinds`.
    pub fn add_watcher(
        &self,
        kinds: crate::protocol::operator::WatchKinds,
    ) -> Result<Arc<watch::Watcher>, watch::TooMany> {
        self.watch.add(kinds, &self.observed)
    }

    /// Removes a `watch` stream (its connection closed).
    pub fn remove_watcher(&self, watcher: &Arc<watch::Watcher>) {
        self.watch.remove(watcher, &self.observed);
    }

    /// `stats detail on|off`.
    pub fn set_detail(&self, on: bool) {
        if on {
            self.observed.fetch_or(DETAIL, Ordering::Relaxed);
        } else {
            self.observed.fetch_and(!DETAIL, Ordering::Relaxed);
        }
    }

    pub fn detail_enabled(&self) -> bool {
        self.observed() & DETAIL != 0
    }

    /// Records the engine in use (`uring`, `epoll`) and its features (comma-separated
    /// words, no spaces) for `stats`.
    pub fn set_engine(&self, name: &str, features: String) {
        let _ = self.engine.set((name.to_string(), features));
    }

    /// Hands over what the `shutdown` command calls to stop the server (it triggers the
    /// engines' stop signal, which the server does not know).
    pub fn set_stop(&self, stop: impl Fn() + Send + Sync + 'static) {
        let _ = self.stop.set(Box::new(stop));
    }

    /// Stops the server as SIGUSR1 does: stop accepting, send what is pending, exit 0
    /// (the `shutdown` command with `-A`). Whether it may is the caller's to check.
    pub fn request_stop(&self) {
        if let Some(stop) = self.stop.get() {
            stop();
        }
    }

    /// The engine in use, `none` before one started.
    pub fn engine(&self) -> &str {
        self.engine.get().map_or("none", |e| e.0.as_str())
    }

    /// The engine's features in use (empty for epoll).
    pub fn engine_features(&self) -> &str {
        self.engine.get().map_or("", |e| e.1.as_str())
    }
}
