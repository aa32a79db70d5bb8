//! One connection's slot in a proactor worker: receiving, sending, backpressure, close.
//!
//! A room of `worker` (its child module, not its peer): the worker's connection
//! handling, split from the loop so each file holds one concept. It uses the worker's
//! types; only `worker` uses it.
//!
//! Owns: the [`Slot`] (socket, generation, the service's `Conn`, the send record, the
//! receive buffer of single-shot mode, which ops are in flight) and the worker's
//! methods that drive it from completions.
//!
//! Must not know: protocols; it only calls the `Conn` trait.
//!
//! Invariants:
//! - at most one receive and one send in flight per slot; the send record and receive
//!   buffer are boxed and not touched while their op is in flight (a zero-copy send is
//!   in flight until its notification: its result is kept until then);
//! - every received byte goes to `Conn::on_input` in order, even after receiving was
//!   cancelled for backpressure; nothing is fed once the slot is closing;
//! - a receive of 0 bytes (the peer's FIN) is a half-close: receiving stops, every
//!   request already received is answered and sent, then the slot closes; only an
//!   error (RST) or a failed send closes at once, dropping pending output;
//! - a slot is removed, its `Conn` dropped and its descriptor closed only when it is
//!   closing and neither op is in flight;
//! - idle time (`-o idle_timeout`) runs from the last byte received or sent, and only
//!   while no send is in flight and no output is pending; a stream is never idle.

use super::super::ops::{self, Kind, SendRecord, Token};
use super::{Worker, BGID, RECV_BYTES};
use crate::io::{Conn, EngineEvent, FirstKeys, Rejected, Service, REJECT_REPLY};
use io_uring::{cqueue, opcode, types};
use std::os::fd::{AsRawFd, IntoRawFd, OwnedFd, RawFd};

pub(super) struct Slot<C> {
    fd: OwnedFd,
    gen: u32,
    /// `None` once closing: dropped as soon as the slot starts closing.
    conn: Option<C>,
    closing: bool,
    /// The peer shut down its sending side (a receive of 0 bytes): receive no more,
    /// answer what was received, then close.
    eof: bool,
    recv_armed: bool,
    recv_cancelled: bool,
    sending: bool,
    send_cancelled: bool,
    /// A zero-copy send's result, kept until its notification (the kernel let go of
    /// the bytes) arrives; the send counts as in flight until then.
    zc_result: Option<i32>,
    dirty: bool,
    /// On the worker's stream list (`Conn::is_streaming`).
    streaming: bool,
    /// The tick a byte was last received or sent: the start of idle time.
    last_active_tick: u64,
    send: Box<SendRecord>,
    /// The receive buffer of single-shot mode (`None` with multishot recv).
    recv_buf: Option<Box<[u8]>>,
}

impl<C> Slot<C> {
    fn token(&self, kind: Kind, key: usize) -> Token {
        Token::new(kind, self.gen, key)
    }
}

impl<S: Service> Worker<S> {
    /// A new socket was accepted: ask the service for a connection, or reject it.
    pub(super) fn open_conn(&mut self, fd: OwnedFd, tcp: bool) {
        if tcp {
            if let Err(e) = set_nodelay(fd.as_raw_fd()) {
                tracing::debug!("TCP_NODELAY: {e}");
            }
        }
        match self.service.open(self.index, fd.as_raw_fd()) {
            Ok(conn) => {
                let gen = self.next_gen();
                let recv_buf = self
                    .bufs
                    .is_none()
                    .then(|| vec![0u8; RECV_BYTES].into_boxed_slice());
                let key = self.conns.insert(Slot {
                    fd,
                    gen,
                    conn: Some(conn),
                    closing: false,
                    eof: false,
                    recv_armed: false,
                    recv_cancelled: false,
                    sending: false,
                    send_cancelled: false,
                    zc_result: None,
                    dirty: false,
                    streaming: false,
                    last_active_tick: self.tick,
                    send: SendRecord::new(),
                    recv_buf,
                });
                self.mark_dirty(key);
            }
            Err(Rejected) => {
                let raw = fd.into_raw_fd();
                let entry = opcode::Send::new(
                    types::Fd(raw),
                    REJECT_REPLY.as_ptr(),
                    REJECT_REPLY.len() as u32,
                )
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(Token::new(Kind::Reject, 0, raw as usize).encode());
                self.sqes.push(entry);
            }
        }
    }

    pub(super) fn mark_dirty(&mut self, key: usize) {
        if let Some(slot) = self.conns.get_mut(key) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(key);
            }
        }
    }

    /// The look-ahead across connections: before a batch of completions runs, the
    /// first key of each receive in it (up to [`crate::io::PREFETCH_CONNS`]) goes to
    /// [`Service::prefetch`] through [`FirstKeys`], so the lookups of the batch's
    /// requests wait for memory together. Only with two or more keys: a lone request
    /// gains nothing by it.
    pub(super) fn prefetch_recvs(&self, cqes: &[cqueue::Entry]) {
        let mut keys = FirstKeys::default();
        for cqe in cqes {
            let res = cqe.result();
            let Some(token) = Token::decode(cqe.user_data()) else {
                continue;
            };
            if token.kind != Kind::Recv || res <= 0 {
                continue;
            }
            let Some(slot) = self.conns.get(token.index as usize) else {
                continue;
            };
            let (Some(conn), true) = (slot.conn.as_ref(), slot.gen == token.gen) else {
                continue;
            };
            let n = res as usize;
            let input = match (
                cqueue::buffer_select(cqe.flags()),
                &self.bufs,
                &slot.recv_buf,
            ) {
                // SAFETY: this completion handed buffer `bid` to us with bytes in it
                // (its first buffer holds the first `buf_bytes` of them at most); it is
                // recycled only when the completion runs (`on_recv`), after `keys`,
                // which borrows it, is dropped at the end of this function.
                (Some(bid), Some(bufs), _) => unsafe { bufs.filled(bid, n.min(bufs.buf_bytes())) },
                (None, _, Some(buf)) => &buf[..n.min(buf.len())],
                _ => continue,
            };
            if !keys.add(conn, input) {
                break;
            }
        }
        keys.prefetch(&*self.service);
    }

    /// A receive completed: feed its bytes, give the buffer back, note an ended recv.
    pub(super) fn on_recv(&mut self, token: Token, res: i32, flags: u32) {
        let key = token.index as usize;
        let bid = cqueue::buffer_select(flags);
        let mut vanished = false;
        if res == -libc::ENOBUFS {
            self.service
                .engine_event(self.index, EngineEvent::RecvNoBufs);
        }
        if let Some(slot) = self.conns.get_mut(key).filter(|s| s.gen == token.gen) {
            if !cqueue::more(flags) {
                slot.recv_armed = false;
            }
            match (res, slot.conn.as_mut()) {
                (n, Some(conn)) if n > 0 => {
                    let n = n as usize;
                    match (bid, &self.bufs, &slot.recv_buf) {
                        (Some(first), Some(bufs), _) => {
                            // One buffer, or a bundle: `first` and the ones after it.
                            let mut left = n;
                            for bid in bufs.bundle(first, n) {
                                let len = left.min(bufs.buf_bytes());
                                // SAFETY: this completion handed buffer `bid` to us
                                // with `len` bytes in it (a bundle fills its buffers
                                // whole but the last); the bundle is recycled below,
                                // after this slice's last use.
                                conn.on_input(unsafe { bufs.filled(bid, len) });
                                left -= len;
                            }
                        }
                        (None, _, Some(buf)) => conn.on_input(&buf[..n]),
                        _ => {}
                    }
                    slot.last_active_tick = self.tick;
                }
                // A half-close, not a vanished peer: what was received this batch
                // is answered when the slot is serviced, then the slot closes.
                (0, Some(_)) => slot.eof = true,
                (n, Some(_)) if n < 0 => {
                    vanished = !matches!(-n, libc::ECANCELED | libc::ENOBUFS);
                }
                _ => {}
            }
            self.mark_dirty(key);
        }
        if let (Some(bid), Some(bufs)) = (bid, self.bufs.as_mut()) {
            bufs.recycle_bundle(bid, res.max(0) as usize);
        }
        if vanished {
            self.begin_close(key, true);
        }
    }

    /// A send completed: resubmit what is left, or let the connection go on. A
    /// zero-copy send completes twice: its result (`more` set), then its notification,
    /// and only the notification ends it.
    pub(super) fn on_send(&mut self, token: Token, res: i32, flags: u32) {
        let key = token.index as usize;
        let Some(slot) = self.conns.get_mut(key).filter(|s| s.gen == token.gen) else {
            return;
        };
        if cqueue::more(flags) {
            slot.zc_result = Some(res);
            return;
        }
        let res = if cqueue::notif(flags) {
            slot.zc_result.take().unwrap_or(res)
        } else {
            res
        };
        slot.sending = false;
        self.service.engine_event(self.index, EngineEvent::SendDone);
        if res > 0 {
            slot.last_active_tick = self.tick;
        }
        if slot.closing {
            slot.send.clear();
            return self.maybe_finish(key);
        }
        if res <= 0 {
            // The peer vanished (EPIPE, ECONNRESET) or the send cannot progress.
            slot.send.clear();
            return self.begin_close(key, true);
        }
        if !slot.send.advance(res as usize) {
            let entry = slot
                .send
                .entry(slot.fd.as_raw_fd(), token, self.send_zc_min_bytes);
            slot.sending = true;
            self.service
                .engine_event(self.index, EngineEvent::SendStarted);
            return self.sqes.push(entry);
        }
        slot.send.clear();
        if let Some(conn) = slot.conn.as_mut() {
            conn.output().send_done();
            conn.resume();
        }
        self.mark_dirty(key);
    }

    /// Services every slot a completion touched: start a send if output is pending and
    /// none is in flight, close a finished connection, (re-)arm or cancel receiving.
    pub(super) fn service_dirty(&mut self) {
        let mut dirty = std::mem::take(&mut self.dirty);
        for &key in &dirty {
            self.service(key);
        }
        dirty.clear();
        if self.dirty.is_empty() {
            self.dirty = dirty;
        }
    }

    fn service(&mut self, key: usize) {
        let stopping = self.stopping.is_some();
        let zc_min = self.send_zc_min_bytes;
        let Some(slot) = self.conns.get_mut(key) else {
            return;
        };
        slot.dirty = false;
        if slot.closing {
            return self.maybe_finish(key);
        }
        let gen = slot.gen;
        let Some(conn) = slot.conn.as_mut() else {
            return;
        };
        if !slot.sending {
            if slot.eof {
                // Nothing more will arrive: execute input kept at the mark now.
                conn.resume();
            }
            if slot.send.load(|segs| conn.output().take(segs)) {
                let entry = slot.send.entry(
                    slot.fd.as_raw_fd(),
                    Token::new(Kind::Send, gen, key),
                    zc_min,
                );
                slot.sending = true;
                self.service
                    .engine_event(self.index, EngineEvent::SendStarted);
                self.sqes.push(entry);
                // The output is empty again: let the connection execute input it kept
                // (while this send is in flight) before it is asked whether it wants
                // more, so kept input is worked off before more is received.
                conn.resume();
            } else if conn.is_closing() || stopping || slot.eof {
                return self.begin_close(key, false);
            }
        }
        if !slot.streaming && conn.is_streaming() {
            slot.streaming = true;
            self.streams.push(key);
            self.arm_stream_timer();
            // Noting the stream borrowed the worker: look the slot up again.
            return self.service(key);
        }
        let want = !stopping && !slot.eof && conn.wants_input();
        if want && !slot.recv_armed {
            let fd = types::Fd(slot.fd.as_raw_fd());
            // A receive buffer of its own exactly when there is no buffer ring.
            let entry = match slot.recv_buf.as_mut() {
                Some(buf) => opcode::Recv::new(fd, buf.as_mut_ptr(), buf.len() as u32).build(),
                None => ops::recv_multishot(fd.0, BGID, self.recv_bundle),
            };
            slot.recv_armed = true;
            slot.recv_cancelled = false;
            self.sqes
                .push(entry.user_data(Token::new(Kind::Recv, gen, key).encode()));
        } else if !want && slot.recv_armed && !slot.recv_cancelled {
            // Backpressure: stop receiving. Bytes the recv still delivers are fed anyway.
            slot.recv_cancelled = true;
            self.sqes
                .push(ops::cancel(Token::new(Kind::Recv, gen, key)));
        }
    }

    /// Starts closing: drop the connection, cancel its ops (a pending send only when
    /// `abort`: the peer vanished or time is up), close once they completed.
    pub(super) fn begin_close(&mut self, key: usize, abort: bool) {
        let Some(slot) = self.conns.get_mut(key) else {
            return;
        };
        slot.closing = true;
        slot.conn = None;
        if slot.recv_armed && !slot.recv_cancelled {
            slot.recv_cancelled = true;
            self.sqes.push(ops::cancel(slot.token(Kind::Recv, key)));
        }
        if abort && slot.sending && !slot.send_cancelled {
            slot.send_cancelled = true;
            self.sqes.push(ops::cancel(slot.token(Kind::Send, key)));
        }
        self.maybe_finish(key);
    }

    /// Frees a closing slot once none of its ops is in flight, closing its socket.
    fn maybe_finish(&mut self, key: usize) {
        match self.conns.get(key) {
            Some(slot) if slot.closing && !slot.recv_armed && !slot.sending => {}
            _ => return,
        }
        let slot = self.conns.remove(key);
        self.sqes.push(ops::close(slot.fd.into_raw_fd()));
    }

    /// Closes connections whose peer is gone although no receive said so. A TCP
    /// connection reset just as it was accepted, its data still queued, is one (seen
    /// on 6.18, in about 1 of 8 runs of `tests/stress.rs`): the multishot receive hands
    /// over the data and then never reports the reset (as if it waited for a wakeup
    /// that had already happened), so nothing would ever close the slot. Every connection idle for [`DEAD_CHECK_AFTER`] ticks, and every
    /// [`DEAD_CHECK_EVERY`] ticks after, is asked for its TCP state: one `getsockopt`
    /// per idle connection per check (a thousand idle connections: about 130 calls a
    /// second). The epoll engine needs no such check: its level-triggered readiness
    /// reports the reset whenever the socket is read again.
    pub(super) fn close_dead(&mut self) {
        let tick = self.tick;
        let dead: Vec<usize> = self
            .conns
            .iter()
            .filter_map(|(key, s)| {
                let idle = tick.saturating_sub(s.last_active_tick);
                let due = idle >= DEAD_CHECK_AFTER
                    && (idle - DEAD_CHECK_AFTER).is_multiple_of(DEAD_CHECK_EVERY);
                (due && !s.closing && !s.sending && tcp_closed(s.fd.as_raw_fd())).then_some(key)
            })
            .collect();
        for key in dead {
            self.begin_close(key, true);
        }
    }

    /// Closes connections waiting for a command for more than `idle_secs` ticks: no
    /// send in flight, no output pending, no byte received or sent for that long. A
    /// client still reading a long answer is not idle (memcached, too, times out only
    /// connections waiting for a command).
    pub(super) fn close_idle(&mut self, idle_secs: u64) {
        let tick = self.tick;
        let idle: Vec<usize> = self
            .conns
            .iter_mut()
            .filter_map(|(key, s)| {
                let waiting = !s.closing
                    && !s.streaming
                    && !s.sending
                    && tick - s.last_active_tick > idle_secs
                    && s.conn.as_mut().is_some_and(|c| c.output().is_empty());
                waiting.then_some(key)
            })
            .collect();
        for key in idle {
            self.begin_close(key, true);
        }
    }

    /// Asks the streaming connection in slot `key` for its output; false when the slot
    /// is no longer a live stream (closed, or reused by another connection).
    pub(super) fn poll_stream(&mut self, key: usize) -> bool {
        let stopping = self.stopping.is_some();
        match self.conns.get_mut(key) {
            Some(slot) if slot.streaming && !slot.closing => {
                if let (Some(conn), false) = (slot.conn.as_mut(), stopping) {
                    conn.stream();
                }
                true
            }
            _ => false,
        }
    }

    /// The shutdown grace is over: close everything, pending sends or not.
    pub(super) fn abort_all(&mut self) {
        let keys: Vec<usize> = self.conns.iter().map(|(key, _)| key).collect();
        for key in keys {
            self.begin_close(key, true);
        }
    }
}

/// Idle ticks before a connection's TCP state is first checked ([`Worker::close_dead`]).
const DEAD_CHECK_AFTER: u64 = 2;

/// Ticks between later checks of a connection that stays idle.
const DEAD_CHECK_EVERY: u64 = 8;

/// Whether `fd` is a TCP socket in state CLOSE: reset, or otherwise finished, with no
/// peer left to answer. False for a socket of another kind (a Unix socket refuses
/// `TCP_INFO`) and for any other state, half-closed ones included (a receive reports
/// those).
fn tcp_closed(fd: RawFd) -> bool {
    // The state is the first byte of `struct tcp_info`; the kernel copies as much of
    // the struct as the buffer holds.
    let mut info = [0u8; 8];
    let mut len = info.len() as libc::socklen_t;
    // SAFETY: the buffer is a live local array and `len` is exactly its size, which the
    // call may only lower; a bad `fd` is an error, not UB.
    let got = crate::io::sys::syscall!(getsockopt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_INFO,
        info.as_mut_ptr().cast(),
        &mut len
    ));
    got.is_ok() && len >= 1 && info[0] == TCP_STATE_CLOSE
}

/// `TCP_CLOSE` in the kernel's `enum tcp_state` (include/net/tcp_states.h).
const TCP_STATE_CLOSE: u8 = 7;

fn set_nodelay(fd: RawFd) -> std::io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: the option value points at `one`, a live c_int, and the length passed is
    // exactly its size; a bad `fd` is an error, not UB.
    crate::io::sys::syscall!(setsockopt(
        fd,
        libc::IPPROTO_TCP,
        libc::TCP_NODELAY,
        (&one as *const libc::c_int).cast(),
        size_of::<libc::c_int>() as libc::socklen_t
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::tcp_closed;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::time::{Duration, Instant};

    /// A connection whose peer reset it is CLOSE, an open or half-closed one is not,
    /// and a socket of another kind never is.
    #[test]
    fn tcp_closed_tells_a_reset_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        assert!(!tcp_closed(server.as_raw_fd()), "an open connection");
        client
            .shutdown(std::net::Shutdown::Write)
            .expect("shutdown");
        assert!(
            !tcp_closed(server.as_raw_fd()),
            "a half-closed one (CLOSE_WAIT)"
        );

        let mut client = TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        let (server, _) = listener.accept().expect("accept");
        client.write_all(b"get bi").expect("write");
        socket2::SockRef::from(&client)
            .set_linger(Some(Duration::ZERO))
            .expect("SO_LINGER");
        drop(client);
        // Loopback delivers the RST within the close; polled in case it ever does not.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !tcp_closed(server.as_raw_fd()) {
            assert!(Instant::now() < deadline, "a connection reset by its peer");
            std::thread::yield_now();
        }

        let (unix, _other) = UnixStream::pair().expect("socketpair");
        assert!(!tcp_closed(unix.as_raw_fd()), "a Unix socket");
    }
}
