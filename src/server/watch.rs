//! `watch`: memcached's live log streams. A connection that sent `watch [kinds]` turns
//! into a [`Watcher`]; workers write one line per event of a watched kind into every
//! interested watcher's queue; the watcher's own worker moves its queue to the
//! connection's output when the engine polls it (`Connection::stream`).
//!
//! Lines are memcached 1.6.18's (`ts=<secs>.<micros> gid=<n> type=… \n`, keys
//! URI-encoded, microseconds unpadded as memcached prints them); `deletions` is 1.6.45's.
//! The line builders for each event are [`Watch::fetch`], [`Watch::store`],
//! [`Watch::deleted`], [`Watch::evicted`] and [`Watch::conn`].
//!
//! Bounds: at most [`WATCHERS_MAX`] watchers (memcached's limit), each queue at most
//! [`WATCHER_QUEUE_BYTES`] (memcached's default `watcher_logbuf_size`). A worker never
//! waits for a watcher: a line that does not fit a full queue is dropped and counted,
//! and the watcher is told `skipped=<n>` before its next line that fits, as memcached
//! does. A queue's lock is held only to append one line or to take the queue; the
//! lines taken become an output segment as they are (no copy).
//!
//! Cost when nobody watches: [`Watch::wants`], one relaxed load of the union of the
//! watched kinds, before any line is built.
//!
//! Counters for `stats`: `log_worker_written` (lines built), `log_watcher_sent` (lines
//! queued to a watcher), `log_watcher_skipped` (lines a full queue dropped),
//! `log_watchers`; `log_worker_dropped` is 0 (there is no per-worker buffer to overflow
//! between a worker and the queues).
//!
//! Must not know: engines, sockets (the connection events take the addresses they
//! print from the caller).

use crate::protocol::operator::WatchKinds;
use crate::storage::{Evicted, EvictionObserver};
use std::fmt::{self, Display, Write as _};
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

/// The bits `WatchKinds` may use (the rest of a `u16` is the server's).
const WATCH_BITS: u16 = (1 << 10) - 1;

/// Most watchers at once (memcached's `WATCHER_LIMIT`).
pub const WATCHERS_MAX: usize = 20;

/// Bytes a watcher's queue holds before lines are skipped (memcached's default
/// `watcher_logbuf_size`, 256 KiB).
pub const WATCHER_QUEUE_BYTES: usize = 256 * 1024;

/// The registry of watchers and the log counters.
#[derive(Debug, Default)]
pub struct Watch {
    /// The union of every watcher's kinds: what is worth building a line for.
    kinds: AtomicU16,
    watchers: RwLock<Vec<Arc<Watcher>>>,
    /// memcached's `gid`: one number per line built, in build order.
    gid: AtomicU64,
    written: AtomicU64,
    sent: AtomicU64,
    skipped: AtomicU64,
}

/// `watch` refused: [`WATCHERS_MAX`] watchers already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooMany;

/// One watcher: the kinds it asked for and its queue of lines.
#[derive(Debug)]
pub struct Watcher {
    kinds: WatchKinds,
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    lines: Vec<u8>,
    /// Lines dropped since the last one queued.
    skipped: u64,
}

/// Figures of the log streams, for `stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchStats {
    pub worker_written: u64,
    pub watcher_sent: u64,
    pub watcher_skipped: u64,
    pub watchers: usize,
}

impl Watch {
    /// Whether some watcher wants lines of `kind`.
    #[inline]
    pub fn wants(&self, kind: WatchKinds) -> bool {
        self.kinds.load(Ordering::Relaxed) & kind.bits() != 0
    }

    /// Adds a watcher for `kinds`; `observed` (the server's, see `Server::observed`)
    /// gets the new union of watched kinds, its other bits kept.
    pub fn add(&self, kinds: WatchKinds, observed: &AtomicU16) -> Result<Arc<Watcher>, TooMany> {
        let mut watchers = self
            .watchers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if watchers.len() >= WATCHERS_MAX {
            return Err(TooMany);
        }
        let watcher = Arc::new(Watcher {
            kinds,
            queue: Mutex::default(),
        });
        watchers.push(Arc::clone(&watcher));
        Watch::publish(&self.kinds, &watchers, observed);
        Ok(watcher)
    }

    /// Removes a watcher (its connection closed), updating `observed` as [`Watch::add`].
    pub fn remove(&self, watcher: &Arc<Watcher>, observed: &AtomicU16) {
        let mut watchers = self
            .watchers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        watchers.retain(|w| !Arc::ptr_eq(w, watcher));
        Watch::publish(&self.kinds, &watchers, observed);
    }

    /// Stores the union of `watchers`' kinds in `kinds` and in `observed`'s kind bits
    /// (under the registry's write lock, so two updates never cross).
    fn publish(kinds: &AtomicU16, watchers: &[Arc<Watcher>], observed: &AtomicU16) {
        let union = watchers.iter().fold(0, |all, w| all | w.kinds.bits());
        kinds.store(union, Ordering::Relaxed);
        let _ = observed.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |o| {
            Some((o & !WATCH_BITS) | union)
        });
    }

    pub fn stats(&self) -> WatchStats {
        WatchStats {
            worker_written: self.written.load(Ordering::Relaxed),
            watcher_sent: self.sent.load(Ordering::Relaxed),
            watcher_skipped: self.skipped.load(Ordering::Relaxed),
            watchers: self.watchers.read().map_or(0, |w| w.len()),
        }
    }

    /// `stats reset`: the counters start again from 0 (not the number of watchers).
    pub fn reset(&self) {
        for counter in [&self.written, &self.sent, &self.skipped] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    /// Builds the line `ts=… gid=… <body>\n` and queues it to every watcher of `kind`.
    fn emit(&self, kind: WatchKinds, body: fmt::Arguments<'_>) {
        let gid = self.gid.fetch_add(1, Ordering::Relaxed) + 1;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let mut line = String::with_capacity(160);
        // memcached prints the microseconds with `%d`: no leading zeros.
        let _ = writeln!(
            line,
            "ts={}.{} gid={gid} {body}",
            now.as_secs(),
            now.subsec_micros()
        );
        self.written.fetch_add(1, Ordering::Relaxed);
        let watchers = self.watchers.read().unwrap_or_else(PoisonError::into_inner);
        for watcher in watchers.iter().filter(|w| w.kinds.contains(kind)) {
            let counter = if watcher.push(line.as_bytes()) {
                &self.sent
            } else {
                &self.skipped
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// `fetchers`: a command looked a key up (`status` found, not_found).
    pub fn fetch(&self, key: &[u8], found: Option<ItemShape>, fd: i32) {
        let (status, shape) = match found {
            Some(shape) => ("found", shape),
            None => ("not_found", ItemShape::NONE),
        };
        self.emit(
            WatchKinds::FETCHERS,
            format_args!(
                "type=item_get key={} status={status} clsid={} cfd={fd} size={}",
                Uri(key),
                shape.class,
                shape.size
            ),
        );
    }

    /// `mutations`: a store command ran (`status` memcached's: stored, not_stored,
    /// exists, not_found, too_large, no_memory; `cmd` set, add, …).
    pub fn store(
        &self,
        key: &[u8],
        status: &str,
        cmd: &str,
        ttl_secs: u32,
        shape: ItemShape,
        fd: i32,
    ) {
        self.emit(
            WatchKinds::MUTATIONS,
            format_args!(
                "type=item_store key={} status={status} cmd={cmd} ttl={ttl_secs} clsid={} cfd={fd} size={}",
                Uri(key),
                shape.class,
                shape.size
            ),
        );
    }

    /// `deletions`: a command deleted an item (`cmd` delete, md).
    pub fn deleted(&self, key: &[u8], cmd: &str, shape: ItemShape) {
        self.emit(
            WatchKinds::DELETIONS,
            format_args!(
                "type=deleted key={} cmd={cmd} clsid={} size={}",
                Uri(key),
                shape.class,
                shape.size
            ),
        );
    }

    /// `evictions`: an item was evicted to make room. `ttl_secs` is `None` for an item
    /// that never expires (memcached prints -1); `idle_secs` is the time since it was
    /// last written or read.
    pub fn evicted(
        &self,
        key: &[u8],
        fetched: bool,
        ttl_secs: Option<u32>,
        idle_secs: u32,
        shape: ItemShape,
    ) {
        let ttl = ttl_secs.map_or(-1, i64::from);
        self.emit(
            WatchKinds::EVICTIONS,
            format_args!(
                "type=eviction key={} fetch={} ttl={ttl} la={idle_secs} clsid={} size={}",
                Uri(key),
                if fetched { "yes" } else { "no" },
                shape.class,
                shape.size
            ),
        );
    }

    /// `connevents`: a connection opened (`close` None) or closed (with memcached's
    /// reason: normal, error, shutdown). `peer` is `(rip, rport, transport)`.
    pub fn conn(&self, peer: &ConnPeer, close: Option<&str>, fd: i32) {
        let ConnPeer {
            ip,
            port,
            transport,
        } = peer;
        match close {
            None => self.emit(
                WatchKinds::CONNEVENTS,
                format_args!("type=conn_new rip={ip} rport={port} transport={transport} cfd={fd}"),
            ),
            Some(reason) => self.emit(
                WatchKinds::CONNEVENTS,
                format_args!(
                    "type=conn_close rip={ip} rport={port} transport={transport} reason={reason} cfd={fd}"
                ),
            ),
        }
    }
}

/// What the store calls for each eviction: an `evictions` line while someone watches.
/// The item's class id is the size class the store kept it in.
pub fn eviction_observer(watch: Arc<Watch>) -> EvictionObserver {
    Arc::new(move |e: &Evicted<'_>| {
        if watch.wants(WatchKinds::EVICTIONS) {
            let ttl = (e.exptime != 0).then(|| e.exptime.saturating_sub(e.now));
            let shape = ItemShape {
                class: e.class,
                size: e.value_len,
            };
            let idle = e.now.saturating_sub(e.last_access);
            watch.evicted(e.key, e.fetched, ttl, idle, shape);
        }
    })
}

impl Watcher {
    /// Queues one line, after a `skipped=<n>` line if lines were dropped before; false
    /// (and the line counted as skipped) when they do not fit.
    fn push(&self, line: &[u8]) -> bool {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let skipped_line = (queue.skipped > 0).then(|| format!("skipped={}\n", queue.skipped));
        let need = line.len() + skipped_line.as_ref().map_or(0, String::len);
        if queue.lines.len() + need > WATCHER_QUEUE_BYTES {
            queue.skipped += 1;
            return false;
        }
        if let Some(skipped) = skipped_line {
            queue.lines.extend_from_slice(skipped.as_bytes());
            queue.skipped = 0;
        }
        queue.lines.extend_from_slice(line);
        true
    }

    /// Takes the queued lines, leaving the queue empty: the lock is held for the swap
    /// only.
    pub fn take(&self) -> Vec<u8> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut queue.lines)
    }
}

/// What a line says of an item: memcached's slab class id and the value's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ItemShape {
    pub class: u32,
    pub size: usize,
}

impl ItemShape {
    /// No item (memcached's `clsid=0 size=0` of a miss).
    pub const NONE: ItemShape = ItemShape { class: 0, size: 0 };
}

/// The peer of a connection as a `connevents` line shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnPeer {
    /// The IP address, or `unix` for a unix socket.
    pub ip: String,
    /// The port (0 for a unix socket).
    pub port: u16,
    /// `tcp` or `local`.
    pub transport: &'static str,
}

/// A key as memcached's logger prints it: URI-encoded (letters, digits and `-_.~` as
/// they are, every other byte `%XX`).
struct Uri<'a>(&'a [u8]);

impl Display for Uri<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for &b in self.0 {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                f.write_char(char::from(b))?;
            } else {
                write!(f, "%{b:02X}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(watcher: &Watcher) -> String {
        String::from_utf8(watcher.take()).unwrap()
    }

    #[test]
    fn keys_are_uri_encoded() {
        assert_eq!(
            Uri(b"a%b=c\xff\x01/ Z-_.~9").to_string(),
            "a%25b%3Dc%FF%01%2F%20Z-_.~9"
        );
    }

    #[test]
    fn lines_go_to_the_watchers_of_their_kind() {
        let watch = Watch::default();
        let observed = AtomicU16::new(1 << 15);
        assert!(!watch.wants(WatchKinds::FETCHERS));
        let fetchers = watch.add(WatchKinds::FETCHERS, &observed).unwrap();
        let both = watch
            .add(WatchKinds::FETCHERS.union(WatchKinds::MUTATIONS), &observed)
            .unwrap();
        assert!(watch.wants(WatchKinds::MUTATIONS) && !watch.wants(WatchKinds::EVICTIONS));
        watch.fetch(b"k", Some(ItemShape { class: 3, size: 5 }), 7);
        watch.store(b"k", "stored", "set", 0, ItemShape { class: 3, size: 5 }, 7);
        let one = drain(&fetchers);
        assert!(one.starts_with("ts="), "{one}");
        assert!(
            one.ends_with(" gid=1 type=item_get key=k status=found clsid=3 cfd=7 size=5\n"),
            "{one}"
        );
        let two = drain(&both);
        assert_eq!(two.lines().count(), 2, "{two}");
        assert!(two.contains(
            " gid=2 type=item_store key=k status=stored cmd=set ttl=0 clsid=3 cfd=7 size=5\n"
        ));
        watch.remove(&both, &observed);
        assert!(!watch.wants(WatchKinds::MUTATIONS) && watch.wants(WatchKinds::FETCHERS));
        assert_eq!(
            observed.load(Ordering::Relaxed),
            (1 << 15) | WatchKinds::FETCHERS.bits()
        );
        let stats = watch.stats();
        assert_eq!(
            (stats.worker_written, stats.watcher_sent, stats.watchers),
            (2, 3, 1)
        );
    }

    #[test]
    fn a_full_queue_skips_lines_and_says_how_many() {
        let watch = Watch::default();
        let observed = AtomicU16::new(1 << 15);
        let watcher = watch.add(WatchKinds::FETCHERS, &observed).unwrap();
        let key = [b'k'; 200];
        let mut n = 0;
        while watch.stats().watcher_skipped < 5 {
            watch.fetch(&key, None, 1);
            n += 1;
        }
        let full = drain(&watcher);
        assert!(full.len() <= WATCHER_QUEUE_BYTES);
        assert_eq!(full.lines().count() as u64, n - 5);
        watch.fetch(b"after", None, 1);
        let next = drain(&watcher);
        let mut lines = next.lines();
        assert_eq!(lines.next(), Some("skipped=5"));
        assert!(lines.next().unwrap().contains("key=after"));
    }

    #[test]
    fn at_most_twenty_watchers() {
        let watch = Watch::default();
        let observed = AtomicU16::new(1 << 15);
        let all: Vec<_> = (0..WATCHERS_MAX)
            .map(|_| watch.add(WatchKinds::FETCHERS, &observed).unwrap())
            .collect();
        assert_eq!(
            watch.add(WatchKinds::FETCHERS, &observed).unwrap_err(),
            TooMany
        );
        watch.remove(&all[0], &observed);
        assert!(watch.add(WatchKinds::EVICTIONS, &observed).is_ok());
    }
}
