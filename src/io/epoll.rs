//! The epoll reactor: one edge-triggered epoll instance per worker thread.
//!
//! Each connection is registered once for `EPOLLIN | EPOLLOUT | EPOLLRDHUP` edge-
//! triggered, so no `epoll_ctl` is ever needed after accept; the worker remembers per
//! connection whether the socket may still have input (`readable`) or room (`writable`)
//! and clears each flag on `EAGAIN` or a short transfer. Reads go through one buffer
//! per worker into [`Conn::on_input`]; output leaves with `writev` straight from the
//! connection's [`Output`](crate::server::output::Output) segments.
//!
//! Owns: the epoll fd, the listeners, the sockets and their `Conn`s (in a slab). Knows
//! nothing of protocols.
//!
//! Invariant: a connection whose `readable` flag is set but which did not read because
//! of backpressure is read again as soon as its output drains (edge-triggered epoll
//! would not report it again).

use super::sys::syscall;
use super::{Conn, EngineEvent, Listener, Service, WorkerSetup, REJECT_REPLY, SHUTDOWN_GRACE_SECS};
use slab::Slab;
use std::io::{self, IoSlice, Read, Write};
use std::net::TcpStream;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Bytes read per `read` call.
const READ_BUF_BYTES: usize = 64 * 1024;
/// Events taken per `epoll_wait`.
const MAX_EVENTS: usize = 256;
/// Segments per `writev`.
const MAX_IOVECS: usize = 64;

/// Tokens at and above this are not connections.
const SHUTDOWN_TOKEN: u64 = u64::MAX;
const LISTENER_TOKEN_BASE: u64 = u64::MAX - 1024;

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
    stream: Stream,
    conn: C,
    /// The socket may hold unread input.
    readable: bool,
    /// The socket may take more output.
    writable: bool,
    /// The peer closed its side (or the socket failed): close once output is tried.
    eof: bool,
    /// epoll reported a hang-up or error: read until `read` says so, since no further
    /// edge will come.
    hangup: bool,
    last_input: Instant,
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

struct Reactor<S: Service> {
    service: Arc<S>,
    epoll: Epoll,
    listeners: Vec<Listener>,
    conns: Slab<Entry<S::Conn>>,
    setup: WorkerSetup,
    read_buf: Vec<u8>,
    draining_since: Option<Instant>,
    /// The time after the last `epoll_wait`: what `last_input` is stamped with, so a
    /// read costs no clock call of its own.
    now: Instant,
}

impl<S: Service> Reactor<S> {
    fn new(service: Arc<S>, mut setup: WorkerSetup) -> io::Result<Reactor<S>> {
        let epoll = Epoll::new()?;
        let listeners = std::mem::take(&mut setup.listeners);
        for (i, l) in listeners.iter().enumerate() {
            let fd = match l {
                Listener::Tcp(l) => l.as_raw_fd(),
                Listener::Unix(l) => l.as_raw_fd(),
            };
            epoll.add(fd, libc::EPOLLIN as u32, LISTENER_TOKEN_BASE + i as u64)?;
        }
        epoll.add(setup.shutdown.fd(), libc::EPOLLIN as u32, SHUTDOWN_TOKEN)?;
        Ok(Reactor {
            service,
            epoll,
            listeners,
            conns: Slab::new(),
            setup,
            read_buf: vec![0; READ_BUF_BYTES],
            draining_since: None,
            now: Instant::now(),
        })
    }

    fn run(mut self) -> io::Result<()> {
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; MAX_EVENTS];
        let mut last_sweep = Instant::now();
        loop {
            let n = self.epoll.wait(&mut events, Duration::from_millis(500))?;
            self.now = Instant::now();
            for ev in &events[..n] {
                let (token, bits) = (ev.u64, ev.events);
                if token == SHUTDOWN_TOKEN {
                    self.begin_shutdown();
                } else if token >= LISTENER_TOKEN_BASE {
                    self.accept((token - LISTENER_TOKEN_BASE) as usize);
                } else {
                    self.on_event(token as usize, bits);
                }
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

    fn begin_shutdown(&mut self) {
        if self.draining_since.is_some() {
            return;
        }
        self.draining_since = Some(Instant::now());
        for l in self.listeners.drain(..) {
            let fd = match &l {
                Listener::Tcp(l) => l.as_raw_fd(),
                Listener::Unix(l) => l.as_raw_fd(),
            };
            self.epoll.delete(fd);
        }
        self.epoll.delete(self.setup.shutdown.fd());
        // Connections with nothing left to send go now; the rest get the grace period.
        self.conns.retain(|_, e| !e.conn_output_empty());
    }

    fn accept(&mut self, index: usize) {
        loop {
            let accepted = match self.listeners.get(index) {
                Some(Listener::Tcp(l)) => l.accept().map(|(s, _)| {
                    let _ = s.set_nodelay(true);
                    Stream::Tcp(s)
                }),
                Some(Listener::Unix(l)) => l.accept().map(|(s, _)| Stream::Unix(s)),
                None => return,
            };
            let mut stream = match accepted {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: memcached logs and carries on.
                    tracing::warn!("accept failed: {e}");
                    self.service
                        .engine_event(self.setup.index, EngineEvent::ListenerPaused);
                    return;
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
                last_input: self.now,
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

    fn on_event(&mut self, slot: usize, bits: u32) {
        let Some(entry) = self.conns.get_mut(slot) else {
            return;
        };
        if bits & (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            entry.readable = true;
        }
        if bits & (libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            entry.hangup = true;
        }
        if bits & (libc::EPOLLOUT | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0 {
            entry.writable = true;
        }
        let draining = self.draining_since.is_some();
        if !pump(entry, &mut self.read_buf, draining, self.now) {
            self.close(slot);
        }
    }

    fn close(&mut self, slot: usize) {
        if let Some(entry) = self.conns.try_remove(slot) {
            // Closing the socket removes it from the epoll set.
            tracing::debug!(worker = self.setup.index, slot, "connection closed");
            drop(entry);
        }
    }

    fn close_idle(&mut self) {
        let limit = self.setup.idle_timeout_secs;
        if limit == 0 {
            return;
        }
        let limit = Duration::from_secs(u64::from(limit));
        let now = self.now;
        self.conns
            .retain(|_, e| now.saturating_duration_since(e.last_input) < limit);
    }
}

impl<C: Conn> Entry<C> {
    fn conn_output_empty(&mut self) -> bool {
        self.conn.output().is_empty()
    }
}

/// Moves bytes both ways until the socket or the connection can make no more progress.
/// Returns false when the connection must be closed.
fn pump<C: Conn>(entry: &mut Entry<C>, buf: &mut [u8], draining: bool, now: Instant) -> bool {
    loop {
        if entry.writable && !entry.conn.output().is_empty() && !flush(entry) {
            return false;
        }
        entry.conn.resume();
        let pending = !entry.conn.output().is_empty();
        if entry.conn.is_closing() && !pending {
            return false;
        }
        if pending && entry.writable {
            continue;
        }
        if entry.eof || (draining && !pending) {
            return false;
        }
        if draining || !entry.readable || !entry.conn.wants_input() {
            return true;
        }
        match entry.stream.read(buf) {
            Ok(0) => {
                entry.eof = true;
                entry.readable = false;
            }
            Ok(n) => {
                entry.last_input = now;
                entry.conn.on_input(&buf[..n]);
                if n < buf.len() && !entry.hangup {
                    // The socket was drained; a new edge reports the next input (a
                    // hang-up that came with this data reports none: read on to it).
                    entry.readable = false;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => entry.readable = false,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Writes pending output until it is empty or the socket is full. False on a dead peer.
fn flush<C: Conn>(entry: &mut Entry<C>) -> bool {
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
                return true;
            }
            let total: usize = iovecs[..n].iter().map(|s| s.len()).sum();
            entry.stream.writev(&iovecs[..n]).map(|n| (n, total))
        };
        match result {
            Ok((written, total)) => {
                entry.conn.output().advance(written);
                if written < total {
                    entry.writable = false;
                    return true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                entry.writable = false;
                return true;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}
