//! One proactor worker's event loop.
//!
//! Owns: the ring, the buffer ring, the connection slab, the SQEs waiting to be
//! submitted and the count of ops in flight; the loop (one `submit_and_wait` per turn:
//! drain every completion, service the connections they touched, submit everything new
//! in one syscall); accepting; the one-second tick (idle timeout, re-arming listeners
//! that [`AcceptErrors`] paused, shutdown grace); the stream poll (a timer of
//! [`STREAM_INTERVAL`] armed while some connection streams: each is asked for its
//! output and serviced); the UDP sockets (`-U`, its child `udp`: multishot recvmsg per
//! socket, answers sent at the end of each turn; or a single-shot poll re-armed after
//! each `io/udp.rs` pump of `recvmmsg`/`sendmmsg` batches); the shutdown sequence.
//!
//! Fairness: a turn handles the completions present when it starts, in arrival order,
//! so the input one turn feeds is bounded by the provided-buffer ring (multishot recv,
//! `BUF_COUNT` × `BUF_BYTES` across all connections; with receive bundles one
//! completion may take most of it) or by one `RECV_BYTES` receive per
//! connection (single-shot, re-armed only when serviced); a client writing faster
//! than its requests execute cannot hold the loop past one batch, and the other
//! connections' completions in that batch are served in it.
//!
//! Before a turn's completions run, the first key of each receive among them goes to
//! [`Service::prefetch`] (`Worker::prefetch_recvs`, with two or more), so the turn's
//! lookups wait for memory together: the look-ahead across connections.
//!
//! Must not know: protocols. Per-connection logic lives in its child module `conn`
//! (`worker/conn.rs`), the UDP sockets' in `udp` (`worker/udp.rs`).
//!
//! Invariants: `Sqes::inflight` counts ops queued or submitted whose last completion
//! has not arrived; the loop ends only when stopping and it is zero. The ring is the
//! first field, so it drops before the memory its ops point at; if the worker ends with
//! ops in flight (an error), that memory is leaked instead of freed.

mod conn;
mod udp;

#[cfg(test)]
pub(super) use udp::UDP_BUF_COUNT;

use super::buffers::BufRing;
use super::ops::{self, Kind, Token, GEN_MASK};
use super::{ring, Features};
use crate::io::accept::AcceptErrors;
use crate::io::udp::UdpSocketPump;
use crate::io::{
    EngineEvent, Listener, Service, Shutdown, WorkerSetup, SHUTDOWN_GRACE_SECS, STREAM_INTERVAL,
};
use conn::Slot;
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use slab::Slab;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};
use udp::UdpSocket;

/// Submission queue entries per ring: room for a batch touching many connections.
pub(super) const RING_ENTRIES: u32 = 4096;
/// Provided receive buffers per worker, and their size: 4 MiB a worker. Buffers go back
/// to the ring as soon as their bytes were handed over, so only one batch of completions
/// holds them. Measured (bench_engine_throughput, 400 connections and a bulk upload):
/// 64 buffers ran dry (ENOBUFS re-arms), 256 or more never did; 4 KiB rather than 16 KiB
/// buffers gave no measurable throughput loss, and bound what one multishot invocation
/// (the kernel retries up to 32 buffers) feeds a connection already over its mark to
/// 128 KiB instead of 512 KiB.
pub(super) const BUF_COUNT: u16 = 1024;
pub(super) const BUF_BYTES: usize = 4 * 1024;
/// The buffer group of a worker's ring (each worker has its own ring).
const BGID: u16 = 0;
/// A connection's own receive buffer where multishot recv is not in use.
const RECV_BYTES: usize = 16 * 1024;

/// SQEs made during a batch, submitted together at the end of it.
#[derive(Default)]
struct Sqes {
    pub pending: Vec<squeue::Entry>,
    /// Ops queued or submitted whose final completion has not arrived.
    pub inflight: usize,
}

impl Sqes {
    pub fn push(&mut self, entry: squeue::Entry) {
        self.inflight += 1;
        self.pending.push(entry);
    }
}

struct ListenerSlot {
    /// Kept open for the worker's lifetime; accepts use its raw fd.
    listener: Listener,
    tcp: bool,
    armed: bool,
    /// Re-arm on the next tick rather than now (out of descriptors, error storm).
    paused: bool,
    /// When the pause began.
    paused_since: Option<Instant>,
    errors: AcceptErrors,
}

impl ListenerSlot {
    fn fd(&self) -> RawFd {
        match &self.listener {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

pub(super) struct Worker<S: Service> {
    // The ring is declared first so it is dropped first.
    ring: IoUring,
    /// The provided buffers of multishot receives (`None`: single-shot receives).
    bufs: Option<BufRing>,
    conns: Slab<Slot<S::Conn>>,
    sqes: Sqes,
    /// Slots whose connection needs servicing after this batch (sends, re-arms, close).
    dirty: Vec<usize>,
    service: Arc<S>,
    index: usize,
    /// Seconds ticked since the worker started.
    tick: u64,
    /// Set once shutdown began: the deadline for pending sends.
    stopping: Option<Instant>,
    next_gen: u32,
    listeners: Vec<ListenerSlot>,
    multishot_accept: bool,
    /// Multishot receives take bundles of buffers (`Features::recv_bundle_in_use`).
    recv_bundle: bool,
    /// Sends of at least this many bytes go zero-copy (0: never).
    send_zc_min_bytes: usize,
    cqes: Vec<cqueue::Entry>,
    timer: Box<types::Timespec>,
    timer_armed: bool,
    timer_cancelled: bool,
    /// Streaming connections (slots with `streaming` set) and their poll's timer.
    streams: Vec<usize>,
    stream_timer: Box<types::Timespec>,
    stream_timer_armed: bool,
    idle_timeout_secs: u64,
    shutdown: Arc<Shutdown>,
    /// The worker's UDP sockets (`-U`), each with a receive in flight while serving
    /// (declared after `ring`: their buffer rings must outlive it).
    udp: Vec<UdpSocket<S::Udp>>,
}

impl<S: Service> Worker<S> {
    pub fn new(features: &Features, service: Arc<S>, setup: WorkerSetup) -> io::Result<Self> {
        let (ring, taskrun) = ring::build(RING_ENTRIES, features.taskrun)?;
        if taskrun != features.taskrun {
            tracing::debug!("worker {}: ring uses {taskrun}", setup.index);
        }
        let mut bufs = None;
        if features.multishot_recv_in_use() {
            match BufRing::new(BUF_COUNT, BUF_BYTES) {
                // SAFETY: `b` is kept in `self.bufs` for the worker's life. `run`
                // unregisters group BGID when its loop ends with no op in flight; `Drop`
                // leaks `bufs` when ops are still in flight; otherwise `ring`, declared
                // first, is dropped (closing the io_uring and the registration) before
                // `bufs`.
                Ok(b) => match unsafe { b.register(&ring.submitter(), BGID) } {
                    Ok(()) => bufs = Some(b),
                    Err(e) => {
                        tracing::warn!("io_uring buffer ring refused ({e}); single-shot recv")
                    }
                },
                Err(e) => tracing::warn!("io_uring buffer ring: {e}; single-shot recv"),
            }
        }
        let udp = setup
            .udp
            .into_iter()
            .enumerate()
            .map(|(i, socket)| {
                let handler = service.open_udp(setup.index, socket.as_raw_fd());
                let pump = UdpSocketPump::new(socket, handler);
                UdpSocket::new(pump, &ring, i, features.multishot_recvmsg_in_use())
            })
            .collect();
        let listeners = setup
            .listeners
            .into_iter()
            .map(|listener| ListenerSlot {
                tcp: matches!(listener, Listener::Tcp(_)),
                listener,
                armed: false,
                paused: false,
                paused_since: None,
                errors: AcceptErrors::default(),
            })
            .collect();
        Ok(Worker {
            ring,
            bufs,
            conns: Slab::new(),
            sqes: Sqes::default(),
            dirty: Vec::new(),
            service,
            index: setup.index,
            tick: 0,
            stopping: None,
            next_gen: 0,
            listeners,
            multishot_accept: features.multishot_accept,
            recv_bundle: features.recv_bundle_in_use(),
            send_zc_min_bytes: features.send_zc_min_bytes,
            cqes: Vec::new(),
            timer: Box::new(types::Timespec::from(Duration::from_secs(1))),
            timer_armed: false,
            timer_cancelled: false,
            streams: Vec::new(),
            stream_timer: Box::new(types::Timespec::from(STREAM_INTERVAL)),
            stream_timer_armed: false,
            idle_timeout_secs: u64::from(setup.idle_timeout_secs),
            shutdown: setup.shutdown,
            udp,
        })
    }

    pub fn run(mut self) -> io::Result<()> {
        for i in 0..self.listeners.len() {
            self.arm_accept(i);
        }
        self.arm_timer();
        self.arm_shutdown_poll();
        for i in 0..self.udp.len() {
            self.arm_udp(i);
        }
        loop {
            self.flush()?;
            if self.stopping.is_some() && self.sqes.inflight == 0 {
                break;
            }
            self.wait()?;
            let mut cqes = std::mem::take(&mut self.cqes);
            cqes.extend(self.ring.completion());
            self.prefetch_recvs(&cqes);
            for cqe in &cqes {
                self.complete(cqe);
            }
            cqes.clear();
            self.cqes = cqes;
            self.end_udp_turn();
            self.service_dirty();
            if self.stopping.is_some()
                && self.conns.is_empty()
                && self.timer_armed
                && !self.timer_cancelled
            {
                self.timer_cancelled = true;
                self.sqes.push(ops::cancel(Token::new(Kind::Timer, 0, 0)));
            }
        }
        if self.bufs.is_some() {
            self.ring.submitter().unregister_buf_ring(BGID)?;
        }
        Ok(())
    }

    /// Hands every queued SQE to the submission queue, submitting early whenever it is
    /// full. What the kernel cannot take now stays queued for the next turn.
    fn flush(&mut self) -> io::Result<()> {
        let total = self.sqes.pending.len();
        let mut done = 0;
        let mut submitted = false;
        while done < total {
            let n = {
                let mut sq = self.ring.submission();
                let n = (sq.capacity() - sq.len()).min(total - done);
                // SAFETY: every queued entry points only at memory that lives until the
                // op's last completion: a connection's boxed `SendRecord` (not cleared or
                // dropped while its send is in flight), a slot's boxed `recv_buf` (the
                // slot is freed only after its recv completed), the registered buffer
                // ring (see `new`), a UDP socket's registered buffer ring and boxed
                // msghdr (`worker/udp.rs`), the boxed timespecs in `self.timer` and
                // `self.stream_timer`, or the static `REJECT_REPLY`.
                match unsafe { sq.push_multiple(&self.sqes.pending[done..done + n]) } {
                    Ok(()) => n,
                    Err(_) => 0,
                }
            };
            done += n;
            if done == total || (n == 0 && submitted) {
                break;
            }
            match self.ring.submit() {
                Ok(_) => submitted = true,
                Err(e) if is_transient(&e) => break,
                Err(e) => return Err(e),
            }
        }
        self.sqes.pending.drain(..done);
        Ok(())
    }

    /// Submits what is queued and waits for at least one completion.
    fn wait(&mut self) -> io::Result<()> {
        match self.ring.submit_and_wait(1) {
            Ok(_) => Ok(()),
            Err(e) if is_transient(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn complete(&mut self, cqe: &cqueue::Entry) {
        let flags = cqe.flags();
        if !cqueue::more(flags) {
            debug_assert!(self.sqes.inflight > 0, "a completion nobody waited for");
            self.sqes.inflight = self.sqes.inflight.saturating_sub(1);
        }
        let Some(token) = Token::decode(cqe.user_data()) else {
            return;
        };
        let res = cqe.result();
        match token.kind {
            Kind::Accept => self.on_accept(token.index as usize, res, flags),
            Kind::Recv => self.on_recv(token, res, flags),
            Kind::Send => self.on_send(token, res, flags),
            Kind::Reject => self.sqes.push(ops::close(token.index as RawFd)),
            Kind::Cancel | Kind::Close => {}
            Kind::Timer => self.on_tick(res),
            Kind::StreamTick => self.on_stream_tick(),
            Kind::Shutdown => self.on_shutdown(res),
            Kind::Udp => self.on_udp(token.index as usize, res, flags),
        }
    }

    fn arm_accept(&mut self, i: usize) {
        let l = &mut self.listeners[i];
        let fd = types::Fd(l.fd());
        let entry = if self.multishot_accept {
            opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build()
        };
        l.armed = true;
        self.sqes
            .push(entry.user_data(Token::new(Kind::Accept, 0, i).encode()));
    }

    fn on_accept(&mut self, i: usize, res: i32, flags: u32) {
        let l = &mut self.listeners[i];
        if !cqueue::more(flags) {
            l.armed = false;
        }
        if res >= 0 {
            l.errors.succeeded();
            let tcp = l.tcp;
            // SAFETY: a successful accept returns a new descriptor nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(res) };
            if self.stopping.is_none() {
                self.open_conn(fd, tcp);
            }
        } else if -res != libc::ECANCELED {
            let e = io::Error::from_raw_os_error(-res);
            if l.errors.failed(&e, Instant::now()) && !l.paused {
                // Accepting resumes at the next tick (within `ACCEPT_PAUSE`).
                l.paused = true;
                l.paused_since = Some(Instant::now());
                self.service
                    .engine_event(self.index, EngineEvent::ListenerPaused);
            }
        }
        let l = &self.listeners[i];
        if !l.armed && !l.paused && self.stopping.is_none() {
            self.arm_accept(i);
        }
    }

    /// A fresh generation for a new connection.
    fn next_gen(&mut self) -> u32 {
        self.next_gen = self.next_gen.wrapping_add(1) & GEN_MASK;
        self.next_gen
    }

    fn arm_timer(&mut self) {
        self.timer_armed = true;
        let entry = opcode::Timeout::new(&*self.timer)
            .build()
            .user_data(Token::new(Kind::Timer, 0, 0).encode());
        self.sqes.push(entry);
    }

    fn on_tick(&mut self, res: i32) {
        self.timer_armed = false;
        if -res == libc::ECANCELED {
            return;
        }
        self.tick += 1;
        for i in 0..self.listeners.len() {
            let l = &mut self.listeners[i];
            if l.paused {
                l.paused = false;
                if let Some(since) = l.paused_since.take() {
                    let paused = EngineEvent::ListenerResumed(since.elapsed());
                    self.service.engine_event(self.index, paused);
                }
                let l = &mut self.listeners[i];
                if !l.armed && self.stopping.is_none() {
                    self.arm_accept(i);
                }
            }
        }
        if self.idle_timeout_secs > 0 {
            self.close_idle(self.idle_timeout_secs);
        }
        self.close_dead();
        if self
            .stopping
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            self.abort_all();
        }
        if !(self.stopping.is_some() && self.conns.is_empty()) {
            self.arm_timer();
        }
    }

    /// Arms the stream poll's timer unless it is armed or the worker is stopping.
    fn arm_stream_timer(&mut self) {
        if self.stream_timer_armed || self.stopping.is_some() {
            return;
        }
        self.stream_timer_armed = true;
        let entry = opcode::Timeout::new(&*self.stream_timer)
            .build()
            .user_data(Token::new(Kind::StreamTick, 0, 0).encode());
        self.sqes.push(entry);
    }

    /// The stream poll: every streaming connection moves its output in and is
    /// serviced; the timer is armed again while any is left.
    fn on_stream_tick(&mut self) {
        self.stream_timer_armed = false;
        let mut streams = std::mem::take(&mut self.streams);
        streams.retain(|&key| self.poll_stream(key));
        for &key in &streams {
            self.mark_dirty(key);
        }
        self.streams = streams;
        if !self.streams.is_empty() {
            self.arm_stream_timer();
        }
    }

    fn arm_shutdown_poll(&mut self) {
        let entry = opcode::PollAdd::new(types::Fd(self.shutdown.fd()), libc::POLLIN as u32)
            .build()
            .user_data(Token::new(Kind::Shutdown, 0, 0).encode());
        self.sqes.push(entry);
    }

    /// The shutdown eventfd became readable: stop accepting, let pending sends finish
    /// (until the grace deadline), close every connection.
    fn on_shutdown(&mut self, res: i32) {
        if res < 0 && !self.shutdown.is_triggered() {
            tracing::warn!(
                "poll on the shutdown eventfd: {}",
                io::Error::from_raw_os_error(-res)
            );
            self.arm_shutdown_poll();
            return;
        }
        self.stopping = Some(Instant::now() + Duration::from_secs(SHUTDOWN_GRACE_SECS));
        for (i, l) in self.listeners.iter().enumerate() {
            if l.armed {
                self.sqes.push(ops::cancel(Token::new(Kind::Accept, 0, i)));
            }
        }
        for i in 0..self.udp.len() {
            self.sqes.push(ops::cancel(Token::new(Kind::Udp, 0, i)));
        }
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.mark_dirty(key);
        }
    }
}

impl<S: Service> Drop for Worker<S> {
    fn drop(&mut self) {
        if self.sqes.inflight > 0 {
            // Ended by an error with ops in flight: the kernel may still write into the
            // receive buffers or read the send records after the ring is closed, so
            // leak them rather than free memory it can touch.
            std::mem::forget(self.bufs.take());
            std::mem::forget(std::mem::take(&mut self.conns));
            std::mem::forget(std::mem::take(&mut self.udp));
        }
    }
}

/// Errors of `io_uring_enter` that only mean "try again next turn".
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR | libc::EAGAIN | libc::EBUSY | libc::ETIME)
    )
}
