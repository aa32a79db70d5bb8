//! Who is connected, for `stats conns`: one table per worker, written at accept and
//! close only.
//!
//! Each worker's table is a `Mutex<Slab<…>>` its own thread locks when a connection
//! opens or closes; `stats conns` (on any thread) locks each table in turn to list it.
//! The request path takes no lock: a connection notes its state and the time of its last
//! command in its own [`ConnEntry`] with one relaxed store, a word no other thread
//! writes. Addresses are not stored: `stats conns` asks the kernel for them
//! (`getpeername`/`getsockname`) while it holds the table lock, so accepting costs no
//! extra syscall.
//!
//! Must not know: engines, protocols. Invariant: an entry is in its worker's table from
//! [`ConnTables::register`] until its [`ConnRecord`] is dropped (when the connection
//! closes).

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use slab::Slab;

/// What a `watch` connection still has to drop: everything (it ignores its input).
pub const WATCHING: usize = usize::MAX;

/// memcached's connection states, the ones a ringcache connection can be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ConnState {
    /// Waiting for the next request.
    Waiting = 0,
    /// Holding part of a request (a command line or a data block) until the rest comes.
    Nread,
    /// Dropping the data block of a refused store command.
    Swallow,
    /// Output over its high-water mark: waiting for the client to read.
    Write,
    /// Quit or a fatal protocol error: sending what is left, then closing.
    Closing,
    /// Executing a command (the connection that asked for `stats conns`).
    ParseCmd,
    /// A `watch` log stream.
    Watch,
}

impl ConnState {
    /// memcached's name (`conn_waiting`, …).
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Waiting => "conn_waiting",
            ConnState::Nread => "conn_nread",
            ConnState::Swallow => "conn_swallow",
            ConnState::Write => "conn_write",
            ConnState::Closing => "conn_closing",
            ConnState::ParseCmd => "conn_parse_cmd",
            ConnState::Watch => "conn_watch",
        }
    }

    /// The state a connection is in after executing input: `closing` (quit, fatal
    /// error), `swallow` bytes still to drop (a refused data block, or [`WATCHING`]),
    /// `stalled` (output over its mark), `partial` (input kept for later).
    #[inline]
    pub fn after(closing: bool, swallow: usize, stalled: bool, partial: bool) -> ConnState {
        if closing {
            ConnState::Closing
        } else if swallow > 0 {
            if swallow == WATCHING {
                ConnState::Watch
            } else {
                ConnState::Swallow
            }
        } else if stalled {
            ConnState::Write
        } else if partial {
            ConnState::Nread
        } else {
            ConnState::Waiting
        }
    }

    fn from_u8(v: u8) -> ConnState {
        match v {
            1 => ConnState::Nread,
            2 => ConnState::Swallow,
            3 => ConnState::Write,
            4 => ConnState::Closing,
            5 => ConnState::ParseCmd,
            6 => ConnState::Watch,
            _ => ConnState::Waiting,
        }
    }
}

/// What `stats conns` reads about one connection.
#[derive(Debug)]
pub struct ConnEntry {
    fd: RawFd,
    /// `(server-clock seconds of the last command << 8) | state`; written only by the
    /// connection's own worker.
    activity: AtomicU64,
}

type Table = Mutex<Slab<Arc<ConnEntry>>>;

/// One table per worker, plus the listening sockets.
#[derive(Debug)]
pub struct ConnTables {
    workers: Box<[Arc<Table>]>,
    listeners: OnceLock<Vec<RawFd>>,
}

/// A connection's place in its worker's table; dropping it takes the entry out.
#[derive(Debug)]
pub struct ConnRecord {
    table: Arc<Table>,
    key: usize,
    entry: Arc<ConnEntry>,
}

/// One line group of `stats conns`, read out of a table.
#[derive(Clone, Copy, Debug)]
pub struct ConnSnapshot {
    pub fd: RawFd,
    pub state: ConnState,
    pub last_cmd_secs: u32,
}

impl ConnTables {
    pub fn new(workers: usize) -> ConnTables {
        ConnTables {
            workers: (0..workers.max(1)).map(|_| Arc::default()).collect(),
            listeners: OnceLock::new(),
        }
    }

    /// Enters a new connection of worker `worker` on socket `fd` (`-1`: no socket, as
    /// in unit tests), its last command time `now`.
    pub fn register(&self, worker: usize, fd: RawFd, now: u32) -> ConnRecord {
        let table = Arc::clone(&self.workers[worker % self.workers.len()]);
        let entry = Arc::new(ConnEntry {
            fd,
            activity: AtomicU64::new(u64::from(now) << 8),
        });
        let key = lock(&table).insert(Arc::clone(&entry));
        ConnRecord { table, key, entry }
    }

    /// Records the listening sockets (once, at startup).
    pub fn set_listeners(&self, fds: Vec<RawFd>) {
        let _ = self.listeners.set(fds);
    }

    pub fn listeners(&self) -> &[RawFd] {
        self.listeners.get().map_or(&[], Vec::as_slice)
    }

    /// Calls `each` for every open connection, worker by worker, with that worker's
    /// table locked (so the sockets stay open while `each` looks at them).
    pub fn for_each(&self, mut each: impl FnMut(ConnSnapshot)) {
        for table in self.workers.iter() {
            let table = lock(table);
            for (_, e) in table.iter() {
                let a = e.activity.load(Ordering::Relaxed);
                each(ConnSnapshot {
                    fd: e.fd,
                    state: ConnState::from_u8(a as u8),
                    last_cmd_secs: (a >> 8) as u32,
                });
            }
        }
    }
}

impl ConnRecord {
    /// The connection's socket (`-1` if it has none).
    #[inline]
    pub fn fd(&self) -> RawFd {
        self.entry.fd
    }

    /// Notes the state after executing input, and `now` as the last command time.
    #[inline]
    pub fn note(&self, now: u32, state: ConnState) {
        self.entry
            .activity
            .store((u64::from(now) << 8) | state as u64, Ordering::Relaxed);
    }
}

impl Drop for ConnRecord {
    fn drop(&mut self) {
        lock(&self.table).try_remove(self.key);
        crate::logging::closed(self.entry.fd);
    }
}

fn lock(table: &Table) -> std::sync::MutexGuard<'_, Slab<Arc<ConnEntry>>> {
    table.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(t: &ConnTables) -> Vec<(RawFd, ConnState, u32)> {
        let mut v = Vec::new();
        t.for_each(|s| v.push((s.fd, s.state, s.last_cmd_secs)));
        v.sort_by_key(|e| e.0);
        v
    }

    #[test]
    fn entries_live_from_register_to_drop() {
        let t = ConnTables::new(2);
        let a = t.register(0, 7, 3);
        let b = t.register(1, 9, 4);
        b.note(10, ConnState::Nread);
        assert_eq!(
            listed(&t),
            vec![(7, ConnState::Waiting, 3), (9, ConnState::Nread, 10)]
        );
        drop(a);
        assert_eq!(listed(&t), vec![(9, ConnState::Nread, 10)]);
        drop(b);
        assert!(listed(&t).is_empty());
    }

    #[test]
    fn every_state_round_trips() {
        use ConnState::*;
        for s in [Waiting, Nread, Swallow, Write, Closing, ParseCmd] {
            assert_eq!(ConnState::from_u8(s as u8), s);
        }
    }
}
