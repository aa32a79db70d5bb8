//! A proactor worker's UDP sockets (`-U`): multishot recvmsg over a buffer ring per
//! socket, or the poll + `recvmmsg` fallback; answers by `sendmmsg` either way.
//!
//! A room of `worker` (its child module, like `conn`): it uses the worker's types;
//! only `worker` uses it.
//!
//! Owns: [`UdpSocket`] (the socket's [`UdpSocketPump`], and in multishot mode its
//! provided-buffer ring, registered as buffer group [`UDP_BGID_BASE`] + the socket's
//! index, and the boxed `msghdr` the op reads), and the worker's methods that arm,
//! complete and end a turn of its receives.
//!
//! Multishot mode (the probe found `IORING_OP_RECVMSG` multishot with buffer rings,
//! 6.0): one op receives every datagram into a buffer of [`UDP_BUF_BYTES`] (the
//! kernel's `io_uring_recvmsg_out` header, a `sockaddr_in6`-sized name, and
//! [`MAX_REQUEST_BYTES`] of payload, so a datagram is cut where `recvmmsg` would cut
//! it). Each completion's datagram goes, with the peer's address the kernel wrote
//! beside it, to the pump's handler at once, and its buffer back to the ring. The
//! answers of a turn are sent at its end, in `sendmmsg` batches from the worker
//! thread (`io/udp.rs`; a `sendmmsg` to a UDP socket copies into the socket buffer
//! and never waits, so an io_uring `SendMsg` per datagram does the same copy, inline
//! at submission, plus an SQE and a CQE each). Measured (2026-12-05, loaded 2-CPU
//! machine, server on CPU 0, `rc-load --udp` on CPU 1, 50 sockets, 5 alternated runs
//! of 3 s): one `SendMsg` per answer datagram, its msghdr, iovec and address owned by
//! a batch record until its completion, gave 251 k gets per server-CPU-second at 8 in
//! flight per socket and 214 k at 1, against 256 k and 226 k with `sendmmsg`: no gain,
//! so the simpler `sendmmsg` stays. (Receiving, the same setup at 8 in flight: 239 k
//! multishot, 240 k poll + `recvmmsg`; both runs were bound by the load generator,
//! the server using about a quarter of its core.) When the kernel ends the op (no
//! `IORING_CQE_F_MORE`: the ring ran dry, ENOBUFS, counted in
//! `ringcache_udp_recv_enobufs`; or an error), it is re-armed at the end of the
//! turn, once the turn's buffers are back on the ring; datagrams that arrived
//! meanwhile wait in the socket's receive queue (or are dropped by the kernel when it
//! is full, as for any UDP server that falls behind).
//!
//! Fairness: a turn takes the completions present when it starts, and each holds a
//! buffer, so one socket feeds a turn at most [`UDP_BUF_COUNT`] datagrams (the
//! fallback's pump stops at `DATAGRAMS_PER_PUMP`); the worker's connections are served
//! in the same turn. A send the socket has no room for drops the rest of the turn's
//! answers (`io/udp.rs`), in both modes.
//!
//! Fallback (no multishot recvmsg, or its buffer ring refused): a single-shot poll per
//! socket, re-armed after each `recvmmsg` pump.
//!
//! Must not know: protocols or framing (the pump's handler does).
//!
//! Invariants: a socket's buffer ring and `msghdr` live as long as the worker's ring
//! (the socket is a worker field declared after the ring, so it drops after it; the
//! worker leaks its sockets if it ends with ops in flight); a buffer id handed out by a
//! completion is recycled exactly once, after its datagram was handled; at most one
//! receive op (poll or recvmsg) is in flight per socket.

use super::super::buffers::BufRing;
use super::super::ops::{Kind, Token};
use super::Worker;
use crate::io::udp::{DatagramHandler, UdpSocketPump};
use crate::io::{EngineEvent, Service};
use crate::server::udp::MAX_REQUEST_BYTES;
use io_uring::{cqueue, opcode, squeue, types, IoUring};

/// Provided buffers per UDP socket (a power of two): the most datagrams one socket
/// feeds a turn. 64 × 64 KiB: 4 MiB of address space per worker and UDP socket,
/// allocated zeroed, so resident only where datagrams were written (one page per
/// buffer for small requests).
pub(in crate::io::uring) const UDP_BUF_COUNT: u16 = 64;
/// The name field the kernel reserves in each buffer: room for an IPv6 peer.
const NAME_BYTES: usize = size_of::<libc::sockaddr_in6>();
/// One buffer: the kernel's `io_uring_recvmsg_out` header (4 × u32), the name field,
/// and a datagram of up to `MAX_REQUEST_BYTES`.
const UDP_BUF_BYTES: usize = 16 + NAME_BYTES + MAX_REQUEST_BYTES;
/// Buffer group of UDP socket `i`: `UDP_BGID_BASE + i` (group 0 is the connections').
const UDP_BGID_BASE: u16 = 1;

/// One UDP socket of the worker and how it receives.
pub(super) struct UdpSocket<H> {
    pump: UdpSocketPump<H>,
    /// `Some`: multishot recvmsg; `None`: poll + `recvmmsg`.
    multishot: Option<Multishot>,
    /// A receive op (poll or recvmsg) is in flight.
    armed: bool,
}

/// The multishot recvmsg's own memory.
struct Multishot {
    bufs: BufRing,
    bgid: u16,
    /// What the op reads (only `msg_namelen` and `msg_controllen` matter); boxed, so it
    /// stays put while the op is in flight.
    msg: Box<libc::msghdr>,
}

impl<H: DatagramHandler> UdpSocket<H> {
    /// UDP socket `index` of a worker whose ring is `ring`, in multishot mode if
    /// `multishot` and its buffer ring is accepted, else in poll mode.
    pub(super) fn new(
        pump: UdpSocketPump<H>,
        ring: &IoUring,
        index: usize,
        multishot: bool,
    ) -> UdpSocket<H> {
        let multishot = multishot
            .then(|| Multishot::new(ring, index))
            .and_then(|m| {
                m.map_err(|e| tracing::warn!("UDP buffer ring refused ({e}); poll + recvmmsg"))
                    .ok()
            });
        UdpSocket {
            pump,
            multishot,
            armed: false,
        }
    }
}

impl Multishot {
    fn new(ring: &IoUring, index: usize) -> std::io::Result<Multishot> {
        let bgid = u16::try_from(index)
            .ok()
            .and_then(|i| i.checked_add(UDP_BGID_BASE))
            .ok_or_else(|| std::io::Error::other("too many UDP sockets"))?;
        let bufs = BufRing::new(UDP_BUF_COUNT, UDP_BUF_BYTES)?;
        // SAFETY: `bufs` is kept in this `Multishot`, owned by the worker's `udp` field,
        // which is declared after the ring and so dropped after it (closing the io_uring
        // and the registration) when the worker ends with no op in flight; the worker
        // leaks it otherwise. If registration fails, `bufs` is dropped unregistered.
        unsafe { bufs.register(&ring.submitter(), bgid) }?;
        // SAFETY: msghdr is plain data; all zeroes is a valid, empty header.
        let mut msg: Box<libc::msghdr> = Box::new(unsafe { std::mem::zeroed() });
        msg.msg_namelen = NAME_BYTES as libc::socklen_t;
        Ok(Multishot { bufs, bgid, msg })
    }
}

impl<S: Service> Worker<S> {
    /// Arms UDP socket `i`'s receive: the multishot recvmsg, or a single-shot poll (a
    /// poll armed while datagrams wait completes at once, so the socket is served
    /// level-triggered).
    pub(super) fn arm_udp(&mut self, i: usize) {
        let token = Token::new(Kind::Udp, 0, i).encode();
        let u = &mut self.udp[i];
        let fd = types::Fd(u.pump.fd());
        let entry: squeue::Entry = match &u.multishot {
            Some(m) => opcode::RecvMsgMulti::new(fd, &*m.msg, m.bgid).build(),
            None => opcode::PollAdd::new(fd, libc::POLLIN as u32).build(),
        };
        u.armed = true;
        self.sqes.push(entry.user_data(token));
    }

    /// A completion of UDP socket `i`'s receive. Poll mode: the socket is readable (or
    /// the poll was cancelled at shutdown): receive and answer up to the pump's budget,
    /// then poll again. Multishot mode: answer the datagram (its answers are sent at
    /// the end of the turn, [`Worker::end_udp_turn`]), give its buffer back.
    pub(super) fn on_udp(&mut self, i: usize, res: i32, flags: u32) {
        let index = self.index;
        let stopping = self.stopping.is_some();
        let u = &mut self.udp[i];
        if !cqueue::more(flags) {
            u.armed = false;
        }
        let Some(m) = u.multishot.as_mut() else {
            if stopping {
                return;
            }
            if let Err(e) = u.pump.pump() {
                tracing::warn!("UDP socket of worker {index}: {e}");
            }
            self.arm_udp(i);
            return;
        };
        if let Some(bid) = cqueue::buffer_select(flags) {
            if let (Ok(len), false) = (usize::try_from(res), stopping) {
                // SAFETY: this completion handed buffer `bid` to us with `len` bytes in
                // it; it is recycled just below, after the last use of `filled`.
                let filled = unsafe { m.bufs.filled(bid, len) };
                if let Ok(out) = types::RecvMsgOut::parse(filled, &m.msg) {
                    u.pump.on_datagram(out.payload_data(), out.name_data());
                }
            }
            m.bufs.recycle(bid);
        }
        if res == -libc::ENOBUFS {
            self.service.engine_event(index, EngineEvent::UdpRecvNoBufs);
        } else if res < 0 && res != -libc::ECANCELED && !stopping {
            tracing::warn!(
                "UDP recvmsg of worker {index}: {}",
                std::io::Error::from_raw_os_error(-res)
            );
        }
    }

    /// The end of a turn: each multishot socket sends the turn's answers, and its
    /// receive is re-armed if the kernel ended it (its buffers are all back by now).
    pub(super) fn end_udp_turn(&mut self) {
        for i in 0..self.udp.len() {
            let u = &mut self.udp[i];
            if u.multishot.is_none() {
                continue;
            }
            u.pump.send_answers();
            if !u.armed && self.stopping.is_none() {
                self.arm_udp(i);
            }
        }
    }
}
