//! The epoll reactor: one edge-triggered epoll instance per worker thread.
//!
//! Each connection is registered once for `EPOLLIN | EPOLLOUT | EPOLLRDHUP` edge-
//! triggered, so no `epoll_ctl` is ever needed after accept; the worker remembers per
//! connection whether the socket may still have input (`readable`) or room (`writable`)
//! and clears each flag on `EAGAIN` or a short transfer. Reads go through one buffer
//! per worker into [`Conn::on_input`]; output leaves with `writev` straight from the
//! connection's [`Output`](crate::server::output::Output) segments.
//!
//! Fairness: one connection reads at most [`READ_BYTES_PER_TURN`] per turn of the loop,
//! and is sent at most [`WRITE_BYTES_PER_TURN`] (a key dump grows as fast as its client
//! reads). One whose socket may still hold input, or take output, after that goes on
//! the ready list and is served again next turn, after an `epoll_wait` that does not block while the list is
//! not empty (edge-triggered epoll would not report it again). So a client streaming
//! requests faster than they execute delays the others by at most one budget per
//! connection, instead of holding the worker for as long as it keeps writing.
//!
//! The read-ahead: when one `epoll_wait` names two or more connections, each of them
//! that would read first when pumped (readable, nothing to send, wanting input) reads
//! before any is pumped, into a per-worker buffer ([`READ_AHEAD_BYTES`]), and the first
//! key of each read goes to [`Service::prefetch`], so the turn's lookups wait for memory
//! together; each connection is then pumped as before, its read-ahead fed first. At
//! pipeline depth 1 a connection's own look-ahead has nothing to read ahead of; this is
//! the same idea across connections.
//!
//! Listeners are level-triggered. When `accept` runs out of descriptors (or a long run
//! of errors), the listener leaves the epoll set for [`ACCEPT_PAUSE`] and is put back
//! after it, while the connections go on being served ([`AcceptErrors`]).
//!
//! Owns: the epoll fd, the listeners, the sockets and their `Conn`s (in a slab), the
//! ready list. Knows nothing of protocols.
//!
//! Invariants: a connection whose `readable` flag is set but which did not read because
//! of backpressure is read again as soon as its output drains; one that stopped
//! reading because of its budget has `queued` set and its slot on the ready list, and
//! is pumped again next turn without a new edge (a stale entry left by a closed slot is
//! skipped, as the slot's new connection is not `queued`). A connection's read-ahead
//! (`ahead`) is fed to it in the same turn, before anything else it reads; an event the
//! read-ahead handled has its bits noted once, there. Idle time (`-o idle_timeout`) is
//! time with no output pending since the last byte read or written: a connection still
//! receiving a long answer is not idle, nor is a stream.
//!
//! UDP sockets (`-U`) are in the set level-triggered, each pumped by its
//! [`UdpSocketPump`] (`io/udp.rs`: `recvmmsg`/`sendmmsg` batches) when readable; one
//! that stopped for its budget is still readable, so the next wait reports it again.
//!
//! Streams (`Conn::is_streaming`, a `watch` log) are noted when a pump leaves them
//! streaming, kept on a list, and asked for output every [`STREAM_INTERVAL`] (the
//! `epoll_wait` timeout shortens to it while the list is not empty), then pumped.

use super::accept::{AcceptErrors, ACCEPT_PAUSE};
use super::sys::syscall;
use super::udp::UdpSocketPump;
use super::{
    Conn, EngineEvent, FirstKeys, Listener, Service, WorkerSetup, REJECT_REPLY,
    SHUTDOWN_GRACE_SECS, STREAM_INTERVAL,
};
use slab::Slab;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes read per `read` call.
const READ_BUF_BYTES: usize = 64 * 1024;
/// Bytes one connection may read per turn of the loop before the others are served
/// (memcached's `-R`, 20 requests per event, is the same idea counted in requests).
/// A few buffers: big enough that a bulk upload costs one extra `epoll_wait` per
/// 256 KiB, small enough that executing them (13,000 `touch … noreply`, the smallest
/// requests) takes a few milliseconds.
const READ_BYTES_PER_TURN: usize = 4 * READ_BUF_BYTES;
/// Bytes one connection may be sent per turn of the loop before the others are served:
/// an answer that keeps growing as the client reads (a key dump, `lru_crawler
/// metadump`, which the connection carries on at each `resume`) would otherwise keep
/// the worker for as long as a fast reader keeps up. One output mark's worth.
const WRITE_BYTES_PER_TURN: usize = 1024 * 1024;
/// Events taken per `epoll_wait`.
const MAX_EVENTS: usize = 256;
/// The buffer the read-ahead of a turn's connections fills ([`Reactor::read_ahead`]).
const READ_AHEAD_BYTES: usize = 2 * READ_BUF_BYTES;
/// A connection is read ahead only while this much of that buffer is left.
const READ_AHEAD_MIN_BYTES: usize = 4 * 1024;
/// Segments per `writev`.
const MAX_IOVECS: usize = 64;

/// Tokens at and above this are not connections.
const SHUTDOWN_TOKEN: u64 = u64::MAX;
const LISTENER_TOKEN_BASE: u64 = u64::MAX - 1024;
const UDP_TOKEN_BASE: u64 = u64::MAX - 2048;

/// A connected socket of either family.
#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    fn fd(&self) -> RawFd {
        match self {
            Stream::Tcp(s) => s.as_raw_fd(),
            Stream::Unix(s) => s.as_raw_fd(),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn writev(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write_vectored(bufs),
            Stream::Unix(s) => s.write_vectored(bufs),
        }
    }
}

#[derive(Debug)]
struct Entry<C> {
    /// Declared before `stream`, so the connection is dropped while its socket is
    /// still open (a `watch` close line asks for the peer's address).
    conn: C,
    stream: Stream,
    /// The socket may hold unread input.
    readable: bool,
    /// The socket may take more output.
    writable: bool,
    /// The peer shut down its sending side: read no more, close once the answers to
    /// what it sent are sent.
    eof: bool,
    /// epoll reported a hang-up or error: read until `read` says so, since no further
    /// edge will come.
    hangup: bool,
    /// On the ready list: used up its read budget with input possibly left.
    queued: bool,
    /// When a byte was last read or written: the start of idle time.
    last_active: Instant,
    /// On the stream list (`Conn::is_streaming`).
    streaming: bool,
    /// What the read-ahead of this turn read for it, fed first when it is pumped.
    ahead: Option<ReadAhead>,
}

/// What [`Reactor::read_ahead`] read from one connection (an end of input or an empty
/// socket it notes in the entry's flags at once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ReadAhead {
    /// `len` bytes at `start` of the read-ahead buffer, from a read of at most `cap`.
    Bytes {
        start: usize,
        len: usize,
        cap: usize,
    },
    /// The read failed: the peer is gone.
    Failed,
}

/// The epoll instance.
#[derive(Debug)]
struct Epoll {
    fd: OwnedFd,
}

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes only a flag.
        let fd = syscall!(epoll_create1(libc::EPOLL_CLOEXEC))?;
        // SAFETY: epoll_create1 just returned this descriptor; nothing else owns it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Epoll { fd })
    }

    fn add(&self, fd: RawFd, events: u32, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event { events, u64: token };
        // SAFETY: `self.fd` is our open epoll descriptor and `ev` a live, initialised
        // epoll_event the kernel copies during the call (a bad `fd` is an error, not UB).
        syscall!(epoll_ctl(
            self.fd.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            fd,
            &mut ev
        ))?;
        Ok(())
    }

    fn delete(&self, fd: RawFd) {
        let mut ev = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: as in `add`; the event is ignored by EPOLL_CTL_DEL but must be
        // non-null for kernels before 2.6.9.
        let _ = syscall!(epoll_ctl(
            self.fd.as_raw_fd(),
            libc::EPOLL_CTL_DEL,
            fd,
            &mut ev
        ));
    }

    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> io::Result<usize> {
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: the kernel writes at most `events.len()` entries into `events`, a live
        // exclusive slice; its length is the worker's small fixed event batch, so the
        // cast to i32 is exact.
        match syscall!(epoll_wait(
            self.fd.as_raw_fd(),
            events.as_mut_ptr(),
            events.len() as i32,
            ms
        )) {
            Ok(n) => Ok(n as usize),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
}

/// Runs one reactor worker until shutdown.
pub fn run_worker<S: Service>(service: Arc<S>, setup: WorkerSetup) -> io::Result<()> {
    Reactor::new(service, setup)?.run()
}

/// A listening socket and its accept state.
struct ListenerSlot {
    listener: Listener,
    errors: AcceptErrors,
    /// Out of the epoll set until then (out of descriptors, an error storm).
    paused_until: Option<Instant>,
    /// When the pause began.
    paused_since: Option<Instant>,
}

impl ListenerSlot {
    fn fd(&self) -> RawFd {
        match &self.listener {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

/// How a pump ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pumped {
    /// Nothing more to do until the next event.
    Waiting,
    /// The read budget is spent and the socket may hold more input.
    Yielded,
    /// Close the connection.
    Close,
}

struct Reactor<S: Service> {
    service: Arc<S>,
    epoll: Epoll,
    listeners: Vec<ListenerSlot>,
    conns: Slab<Entry<S::Conn>>,
    /// Connections that spent their read budget with input possibly left, in the order
    /// they did; each has `queued` set.
    ready: Vec<usize>,
    setup: WorkerSetup,
    read_buf: Vec<u8>,
    /// The read-ahead's buffer: each turn's first reads of several connections, kept
    /// until each is pumped that turn.
    ahead_buf: Vec<u8>,
    draining_since: Option<Instant>,
    /// The time after the last `epoll_wait`: what `last_active` is stamped with, so a
    /// transfer costs no clock call of its own.
    now: Instant,
    /// Streaming connections (each has `streaming` set), asked for output every
    /// [`STREAM_INTERVAL`]; a closed slot's stale entry is dropped at the next poll.
    streams: Vec<usize>,
    next_stream_poll: Instant,
    /// The worker's UDP sockets (`-U`).
    udp: Vec<UdpSocketPump<S::Udp>>,
}

impl<S: Service> Reactor<S> {
    fn new(service: Arc<S>, mut setup: WorkerSetup) -> io::Result<Reactor<S>> {
        let epoll = Epoll::new()?;
        let listeners: Vec<ListenerSlot> = std::mem::take(&mut setup.listeners)
            .into_iter()
            .map(|listener| ListenerSlot {
                listener,
                errors: AcceptErrors::default(),
                paused_until: None,
                paused_since: None,
            })
            .collect();
        for (i, l) in listeners.iter().enumerate() {
            epoll.add(l.fd(), libc::EPOLLIN as u32, LISTENER_TOKEN_BASE + i as u64)?;
        }
        epoll.add(setup.shutdown.fd(), libc::EPOLLIN as u32, SHUTDOWN_TOKEN)?;
        let udp: Vec<_> = std::mem::take(&mut setup.udp)
            .into_iter()
            .map(|socket| {
                let handler = service.open_udp(setup.index, socket.as_raw_fd());
                UdpSocketPump::new(socket, handler)
            })
            .collect();
        for (i, u) in udp.iter().enumerate() {
            epoll.add(u.fd(), libc::EPOLLIN as u32, UDP_TOKEN_BASE + i as u64)?;
        }
        Ok(Reactor {
            service,
            epoll,
            listeners,
            conns: Slab::new(),
            ready: Vec::new(),
            setup,
            read_buf: vec![0; READ_BUF_BYTES],
            ahead_buf: vec![0; READ_AHEAD_BYTES],
            draining_since: None,
            now: Instant::now(),
            streams: Vec::new(),
            next_stream_poll: Instant::now(),
            udp,
        })
    }

    fn run(mut self) -> io::Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
        let mut carried = Vec::new();
        let mut last_sweep = Instant::now();
        loop {
            let n = self.epoll.wait(&mut events, self.wait_timeout())?;
            self.now = Instant::now();
            // Last turn's yielders are served after this turn's events; connections
            // that yield now wait for the next turn.
            std::mem::swap(&mut carried, &mut self.ready);
            self.read_ahead(&mut events[..n]);
            for ev in &events[..n] {
                let (token, bits) = (ev.u64, ev.events);
                if token == SHUTDOWN_TOKEN {
                    self.begin_shutdown();
                } else if token >= LISTENER_TOKEN_BASE {
                    self.accept((token - LISTENER_TOKEN_BASE) as usize);
                } else if token >= UDP_TOKEN_BASE {
                    self.pump_udp((token - UDP_TOKEN_BASE) as usize);
                } else {
                    self.on_event(token as usize, bits);
                }
            }
            for slot in carried.drain(..) {
                match self.conns.get_mut(slot) {
                    Some(entry) if entry.queued => {
                        entry.queued = false;
                        self.pump(slot);
                    }
                    _ => {}
                }
            }
            self.resume_listeners();
            if !self.streams.is_empty() && self.now >= self.next_stream_poll {
                self.poll_streams();
            }
            if let Some(since) = self.draining_since {
                let done = self.conns.iter_mut().all(|(_, e)| e.conn_output_empty());
                if done || since.elapsed() >= Duration::from_secs(SHUTDOWN_GRACE_SECS) {
                    self.conns.clear();
                    return Ok(());
                }
            }
            if self.now.duration_since(last_sweep) >= Duration::from_secs(1) {
                last_sweep = self.now;
                self.close_idle();
            }
        }
    }

    /// How long `epoll_wait` may block: not at all while connections are ready, else
    /// until the next paused listener resumes, at most half a second (the idle sweep
    /// and the shutdown grace are checked between waits).
    fn wait_timeout(&self) -> Duration {
        if !self.ready.is_empty() {
            return Duration::ZERO;
        }
        // `now` is this turn's start: a pause may end a few milliseconds late, which
        // saves a clock call per turn.
        let wait = self
            .listeners
            .iter()
            .filter_map(|l| l.paused_until)
            .map(|at| at.saturating_duration_since(self.now))
            .fold(Duration::from_millis(500), Duration::min);
        if self.streams.is_empty() {
            wait
        } else {
            wait.min(self.next_stream_poll.saturating_duration_since(self.now))
        }
    }

    /// Asks every streaming connection for its output and sends it.
    fn poll_streams(&mut self) {
        self.next_stream_poll = self.now + STREAM_INTERVAL;
        let mut streams = std::mem::take(&mut self.streams);
        streams.retain(|&slot| match self.conns.get_mut(slot) {
            Some(entry) if entry.streaming => {
                if self.draining_since.is_none() {
                    entry.conn.stream();
                }
                true
            }
            _ => false,
        });
        for &slot in &streams {
            self.pump(slot);
        }
        streams.retain(|&slot| self.conns.contains(slot));
        streams.append(&mut self.streams);
        self.streams = streams;
    }

    fn begin_shutdown(&mut self) {
        if self.draining_since.is_some() {
            return;
        }
        self.draining_since = Some(Instant::now());
        for l in self.listeners.drain(..) {
            if l.paused_until.is_none() {
                self.epoll.delete(l.fd());
            }
        }
        self.epoll.delete(self.setup.shutdown.fd());
        // Closing a UDP socket takes it out of the epoll set.
        self.udp.clear();
        // Connections with nothing left to send go now; the rest get the grace period.
        self.conns.retain(|_, e| !e.conn_output_empty());
    }

    /// Receives and answers what UDP socket `index` holds (up to its budget).
    fn pump_udp(&mut self, index: usize) {
        if let Some(udp) = self.udp.get_mut(index) {
            if let Err(e) = udp.pump() {
                tracing::warn!("UDP socket of worker {}: {e}", self.setup.index);
            }
        }
    }

    /// Takes listener `index` out of the epoll set for [`ACCEPT_PAUSE`].
    fn pause_listener(&mut self, index: usize) {
        let Some(l) = self.listeners.get_mut(index) else {
            return;
        };
        if l.paused_until.is_none() {
            self.epoll.delete(l.fd());
            l.paused_since = Some(self.now);
            self.service
                .engine_event(self.setup.index, EngineEvent::ListenerPaused);
        }
        l.paused_until = Some(self.now + ACCEPT_PAUSE);
    }

    /// Puts listeners whose pause is over back into the epoll set and accepts what
    /// waited meanwhile.
    fn resume_listeners(&mut self) {
        for index in 0..self.listeners.len() {
            let l = &mut self.listeners[index];
            if l.paused_until.is_some_and(|at| at <= self.now) {
                l.paused_until = None;
                let token = LISTENER_TOKEN_BASE + index as u64;
                if let Err(e) = self.epoll.add(l.fd(), libc::EPOLLIN as u32, token) {
                    // Out of memory for the epoll set: try again after another pause.
                    tracing::debug!("re-adding a listener to epoll: {e}");
                    l.paused_until = Some(self.now + ACCEPT_PAUSE);
                    continue;
                }
                if let Some(since) = l.paused_since.take() {
                    let paused = self.now.saturating_duration_since(since);
                    self.service
                        .engine_event(self.setup.index, EngineEvent::ListenerResumed(paused));
                }
                self.accept(index);
            }
        }
    }

    fn accept(&mut self, index: usize) {
        loop {
            let accepted = match self.listeners.get(index).map(|l| &l.listener) {
                Some(Listener::Tcp(l)) => l.accept().map(|(s, _)| {
                    let _ = s.set_nodelay(true);
                    Stream::Tcp(s)
                }),
                Some(Listener::Unix(l)) => l.accept().map(|(s, _)| Stream::Unix(s)),
                None => return,
            };
            let mut stream = match accepted {
                Ok(s) => {
                    self.listeners[index].errors.succeeded();
                    s
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors the connection stays in the backlog and the
                    // listener readable: retrying at once would only spin.
                    if self.listeners[index].errors.failed(&e, self.now) {
                        self.pause_listener(index);
                        return;
                    }
                    continue;
                }
            };
            let conn = match self.service.open(self.setup.index, stream.fd()) {
                Ok(conn) => conn,
                Err(_) => {
                    let _ = stream.writev(&[IoSlice::new(REJECT_REPLY)]);
                    continue;
                }
            };
            let nonblocking = match &stream {
                Stream::Tcp(s) => s.set_nonblocking(true),
                Stream::Unix(s) => s.set_nonblocking(true),
            };
            let fd = stream.fd();
            let slot = self.conns.insert(Entry {
                stream,
                conn,
                readable: false,
                writable: true,
                eof: false,
                hangup: false,
                queued: false,
                last_active: self.now,
                streaming: false,
                ahead: None,
            });
            let events = (libc::EPOLLIN | libc::EPOLLOUT | libc::EPOLLRDHUP | libc::EPOLLET) as u32;
            if nonblocking
                .and_then(|_| self.epoll.add(fd, events, slot as u64))
                .is_err()
            {
                self.conns.remove(slot);
            } else {
                tracing::debug!(worker = self.setup.index, slot, "connection accepted");
            }
        }
    }

    /// The look-ahead across connections: when a turn's events name two or more
    /// connections, each one that would read first when pumped (readable, nothing to
    /// send, wanting input) reads now, into the read-ahead buffer; the first key of
    /// each read goes to [`Service::prefetch`], so the lookups of the turn's requests
    /// wait for memory together instead of one after another. The read is fed to the
    /// connection first thing when it is pumped this turn, so what it runs and in which
    /// order is unchanged. The events it handles lose their bits: they are noted here.
    fn read_ahead(&mut self, events: &mut [libc::epoll_event]) {
        if self.draining_since.is_some()
            || events
                .iter()
                .filter(|e| e.u64 < UDP_TOKEN_BASE)
                .nth(1)
                .is_none()
        {
            return;
        }
        let mut used = 0;
        for ev in events.iter_mut() {
            if ev.u64 >= UDP_TOKEN_BASE || READ_AHEAD_BYTES - used < READ_AHEAD_MIN_BYTES {
                continue;
            }
            let Some(entry) = self.conns.get_mut(ev.u64 as usize) else {
                continue;
            };
            // Noted here, not again when the event is handled: a read below may have
            // found the socket empty.
            let bits = ev.events;
            ev.events = 0;
            entry.note(bits);
            if !entry.readable
                || entry.queued
                || entry.eof
                || entry.streaming
                || entry.ahead.is_some()
                || !entry.conn.wants_input()
                || entry.conn.is_closing()
                || !entry.conn.output().is_empty()
            {
                continue;
            }
            let cap = (READ_AHEAD_BYTES - used).min(READ_BUF_BYTES);
            match entry.stream.read(&mut self.ahead_buf[used..used + cap]) {
                Ok(0) => {
                    entry.eof = true;
                    entry.readable = false;
                }
                Ok(len) => {
                    entry.ahead = Some(ReadAhead::Bytes {
                        start: used,
                        len,
                        cap,
                    });
                    used += len;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => entry.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => entry.ahead = Some(ReadAhead::Failed),
            }
        }
        let mut keys = FirstKeys::default();
        for ev in events.iter() {
            if ev.u64 >= UDP_TOKEN_BASE {
                continue;
            }
            let Some(entry) = self.conns.get(ev.u64 as usize) else {
                continue;
            };
            let Some(ReadAhead::Bytes { start, len, .. }) = entry.ahead else {
                continue;
            };
            if !keys.add(&entry.conn, &self.ahead_buf[start..start + len]) {
                break;
            }
        }
        keys.prefetch(&*self.service);
    }

    fn on_event(&mut self, slot: usize, bits: u32) {
        let Some(entry) = self.conns.get_mut(slot) else {
            return;
        };
        entry.note(bits);
        // A queued connection is pumped from the ready list later this turn, once.
        if !entry.queued {
            self.pump(slot);
        }
    }

    /// Serves connection `slot` for one turn: closes it, or queues it when it spent its
    /// read budget.
    fn pump(&mut self, slot: usize) {
        let Some(entry) = self.conns.get_mut(slot) else {
            return;
        };
        let draining = self.draining_since.is_some();
        let pumped = pump(
            entry,
            &mut self.read_buf,
            &self.ahead_buf,
            draining,
            self.now,
        );
        if pumped != Pumped::Close && !entry.streaming && entry.conn.is_streaming() {
            entry.streaming = true;
            self.streams.push(slot);
        }
        match pumped {
            Pumped::Waiting => {}
            Pumped::Yielded => {
                entry.queued = true;
                self.ready.push(slot);
                self.service
                    .engine_event(self.setup.index, EngineEvent::ConnYielded);
            }
            Pumped::Close => self.close(slot),
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(entry) = self.conns.try_remove(slot) {
            // Closing the socket removes it from the epoll set.
            tracing::debug!(worker = self.setup.index, slot, "connection closed");
            drop(entry);
        }
    }

    /// Closes connections waiting for a command for longer than the idle timeout:
    /// nothing pending to send and no byte moved either way for that long.
    fn close_idle(&mut self) {
        let limit = self.setup.idle_timeout_secs;
        if limit == 0 {
            return;
        }
        let limit = Duration::from_secs(u64::from(limit));
        let now = self.now;
        self.conns.retain(|_, e| {
            now.saturating_duration_since(e.last_active) < limit
                || !e.conn_output_empty()
                || e.streaming
        });
    }
}

impl<C: Conn> Entry<C> {
    fn conn_output_empty(&mut self) -> bool {
        self.conn.output().is_empty()
    }

    /// Notes what an event's `bits` say the socket may do now.
    fn note(&mut self, bits: u32) {
        if bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            self.readable = true;
        }
        if bits & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            self.hangup = true;
        }
        if bits & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            self.writable = true;
        }
    }
}

/// Moves bytes both ways until the socket or the connection can make no more progress,
/// or the connection read its budget for this turn.
///
/// What the read-ahead read for it (in `ahead_buf`) is fed first, as its first read.
fn pump<C: Conn>(
    entry: &mut Entry<C>,
    buf: &mut [u8],
    ahead_buf: &[u8],
    draining: bool,
    now: Instant,
) -> Pumped {
    let (mut read, mut written) = (0, 0);
    match entry.ahead.take() {
        None => {}
        Some(ReadAhead::Failed) => return Pumped::Close,
        Some(ReadAhead::Bytes { start, len, cap }) => {
            read += len;
            entry.last_active = now;
            entry.conn.on_input(&ahead_buf[start..start + len]);
            if len < cap && !entry.hangup {
                entry.readable = false;
            }
        }
    }
    loop {
        if entry.writable && !entry.conn.output().is_empty() {
            match flush(entry) {
                Some(0) => {}
                Some(n) => {
                    entry.last_active = now;
                    written += n;
                }
                None => return Pumped::Close,
            }
        }
        entry.conn.resume();
        let pending = !entry.conn.output().is_empty();
        if entry.conn.is_closing() && !pending {
            return Pumped::Close;
        }
        if pending && entry.writable {
            if written >= WRITE_BYTES_PER_TURN {
                return Pumped::Yielded;
            }
            continue;
        }
        // After the peer's FIN (a half-close) the answers to what it sent still go out:
        // close only once they are sent.
        if (entry.eof || draining) && !pending {
            return Pumped::Close;
        }
        if draining || !entry.readable || !entry.conn.wants_input() {
            return Pumped::Waiting;
        }
        if read >= READ_BYTES_PER_TURN {
            return Pumped::Yielded;
        }
        match entry.stream.read(buf) {
            Ok(0) => {
                entry.eof = true;
                entry.readable = false;
            }
            Ok(n) => {
                read += n;
                entry.last_active = now;
                entry.conn.on_input(&buf[..n]);
                if n < buf.len() && !entry.hangup {
                    // The socket was drained; a new edge reports the next input (a
                    // hang-up that came with this data reports none: read on to it).
                    entry.readable = false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => entry.readable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Pumped::Close,
        }
    }
}

/// Writes pending output until it is empty or the socket is full. How many bytes it
/// wrote; `None` on a dead peer.
fn flush<C: Conn>(entry: &mut Entry<C>) -> Option<usize> {
    let mut wrote = 0;
    loop {
        let out = entry.conn.output();
        // The common case, all answers in one buffer: one plain write, no iovec array.
        let result = if let Some(bytes) = out.contiguous() {
            let total = bytes.len();
            entry.stream.write(bytes).map(|n| (n, total))
        } else {
            let mut iovecs = [IoSlice::new(&[]); MAX_IOVECS];
            let n = out.chunks(&mut iovecs);
            if n == 0 {
                return Some(wrote);
            }
            let total: usize = iovecs[..n].iter().map(|s| s.len()).sum();
            entry.stream.writev(&iovecs[..n]).map(|n| (n, total))
        };
        match result {
            Ok((written, total)) => {
                entry.conn.output().advance(written);
                wrote += written;
                if written < total {
                    entry.writable = false;
                    return Some(wrote);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                entry.writable = false;
                return Some(wrote);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}
