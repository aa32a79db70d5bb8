//! One worker's UDP socket (`-U`): the handler of its datagrams and the sending of
//! their answers, both engines; and the `recvmmsg` receive path.
//!
//! Two ways in. [`UdpSocketPump::pump`] runs when the socket is readable (epoll: the
//! socket is in the epoll set, level-triggered; io_uring where multishot recvmsg is
//! refused: a single-shot poll the worker re-arms after each pump, which completes at
//! once while datagrams wait). It receives up to [`RECV_BATCH`] datagrams per
//! `recvmmsg` and hands each to the service's [`DatagramHandler`] (`server::udp`:
//! framing and the connection state machine). Fairness: at most
//! [`DATAGRAMS_PER_PUMP`] datagrams per pump, then the worker serves its TCP
//! connections; whatever is still queued keeps the socket readable, so the next turn
//! comes back to it. Or the io_uring worker receives the datagrams itself (multishot
//! recvmsg over a provided-buffer ring, `io/uring/worker/udp.rs`) and hands each, with
//! its peer's address, to [`UdpSocketPump::on_datagram`], then calls
//! [`UdpSocketPump::send_answers`] once per batch of completions.
//!
//! Either way every answer datagram goes to the peer its request came from, in
//! `sendmmsg` calls of up to [`SEND_BATCH`], at the end of the batch (a `recvmmsg`, or
//! the io_uring worker's batch of completions); sooner, once [`SEND_AT_BYTES`] of
//! answers are held, so a batch of large answers pins no more than that plus one.
//!
//! A send the socket has no room for (`EAGAIN`: the send buffer is full) drops that
//! datagram and the rest of what is held: UDP makes no promise, and a worker never
//! waits on one client's answers (memcached's UDP connection waits for room instead,
//! so an answer larger than the send buffer, `net.core.wmem_max` at most, may lose
//! its tail here and not there). A datagram the kernel refuses for another reason (an
//! unreachable peer) is dropped alone.
//!
//! Owns: the socket, the `recvmmsg` buffers (`RECV_BATCH` × [`MAX_REQUEST_BYTES`], one
//! allocation per socket for the worker's life, made at the first `pump`: the
//! multishot path never makes it), the held answers and their peers' addresses.
//! Knows nothing of protocols or framing.

use super::sys::syscall;
use crate::server::udp::{Datagrams, MAX_REQUEST_BYTES};
use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, RawFd};

/// Datagrams taken per `recvmmsg`.
pub const RECV_BATCH: usize = 16;
/// Datagrams handed to one `sendmmsg`.
pub const SEND_BATCH: usize = 64;
/// Datagrams one pump handles before the worker's other work gets its turn.
pub const DATAGRAMS_PER_PUMP: usize = 256;
/// Answer bytes held before they are sent, even mid-batch: what a batch of large
/// answers may pin is this plus one answer.
pub const SEND_AT_BYTES: usize = 256 * 1024;

/// What the engine's UDP socket hands its datagrams to (the service's side,
/// `server::udp::UdpConn` for the cache).
pub trait DatagramHandler {
    /// Runs one received datagram; appends the answer datagrams to `out`.
    fn on_datagram(&mut self, datagram: &[u8], out: &mut Datagrams);
}

/// A UDP socket with its handler and buffers.
pub struct UdpSocketPump<H> {
    /// `RECV_BATCH` receive buffers of `MAX_REQUEST_BYTES`, back to back (empty until
    /// the first `pump`).
    bufs: Vec<u8>,
    answers: Answers<H>,
}

/// The handler and what it answered since the last send.
struct Answers<H> {
    socket: UdpSocket,
    handler: H,
    /// The peers of the datagrams handled since the last send, in order.
    peers: Vec<libc::sockaddr_storage>,
    peer_lens: Vec<libc::socklen_t>,
    /// The answers and, per answer datagram, the index in `peers` of its peer.
    out: Datagrams,
    dest: Vec<usize>,
}

impl<H: DatagramHandler> UdpSocketPump<H> {
    pub fn new(socket: UdpSocket, handler: H) -> UdpSocketPump<H> {
        UdpSocketPump {
            bufs: Vec::new(),
            answers: Answers {
                socket,
                handler,
                peers: Vec::new(),
                peer_lens: Vec::new(),
                out: Datagrams::default(),
                dest: Vec::new(),
            },
        }
    }

    pub fn fd(&self) -> RawFd {
        self.answers.socket.as_raw_fd()
    }

    /// Runs one datagram received from `peer` (a socket address as the kernel wrote
    /// it, at most a `sockaddr_storage`); its answers are held until
    /// [`send_answers`](Self::send_answers), or sent now if the held answers reached
    /// [`SEND_AT_BYTES`].
    pub fn on_datagram(&mut self, datagram: &[u8], peer: &[u8]) {
        self.answers.on_datagram(datagram, peer);
    }

    /// Sends the answers held, each to its peer, and forgets them; drops what the
    /// socket refuses.
    pub fn send_answers(&mut self) {
        self.answers.send();
    }

    /// Receives and answers datagrams until none is left or the pump's budget is
    /// spent. Returns whether it stopped for the budget (datagrams may be left).
    pub fn pump(&mut self) -> io::Result<bool> {
        if self.bufs.is_empty() {
            self.bufs = vec![0; RECV_BATCH * MAX_REQUEST_BYTES];
        }
        // SAFETY: sockaddr_storage is plain data for which all zeroes is valid.
        let mut addrs: [libc::sockaddr_storage; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let mut handled = 0;
        while handled < DATAGRAMS_PER_PUMP {
            let mut lens = [(0usize, 0 as libc::socklen_t); RECV_BATCH];
            let n = self.receive(&mut addrs, &mut lens)?;
            if n == 0 {
                return Ok(false);
            }
            for (i, &(len, addr_len)) in lens.iter().enumerate().take(n) {
                let start = i * MAX_REQUEST_BYTES;
                let peer = storage_bytes(&addrs[i], addr_len);
                self.answers
                    .on_datagram(&self.bufs[start..start + len], peer);
            }
            self.answers.send();
            handled += n;
        }
        Ok(true)
    }

    /// One `recvmmsg`: fills `lens` (datagram and address lengths) and `addrs`; 0 when
    /// nothing waits.
    fn receive(
        &mut self,
        addrs: &mut [libc::sockaddr_storage; RECV_BATCH],
        lens: &mut [(usize, libc::socklen_t); RECV_BATCH],
    ) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain data for which all zeroes is valid.
        let mut iovs: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let base = self.bufs.as_mut_ptr();
        for i in 0..RECV_BATCH {
            // SAFETY: `i * MAX_REQUEST_BYTES` is within `bufs`, which holds
            // `RECV_BATCH * MAX_REQUEST_BYTES` bytes (allocated by `pump`).
            iovs[i].iov_base = unsafe { base.add(i * MAX_REQUEST_BYTES) }.cast();
            iovs[i].iov_len = MAX_REQUEST_BYTES;
            let hdr = &mut hdrs[i].msg_hdr;
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_name = (&mut addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: `hdrs` holds RECV_BATCH initialised headers whose iovecs point at
        // disjoint `MAX_REQUEST_BYTES` slices of `bufs` and whose names point at
        // entries of `addrs`; all of them are live, exclusively borrowed, and outlive
        // this blocking-free call (MSG_DONTWAIT), which writes nothing else.
        let res = syscall!(recvmmsg(
            self.answers.socket.as_raw_fd(),
            hdrs.as_mut_ptr(),
            RECV_BATCH as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut()
        ));
        match res {
            Ok(n) => {
                let n = n as usize;
                for i in 0..n {
                    lens[i] = (
                        (hdrs[i].msg_len as usize).min(MAX_REQUEST_BYTES),
                        hdrs[i].msg_hdr.msg_namelen,
                    );
                }
                Ok(n)
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            // An ICMP error queued on the socket (a peer's port unreachable) is
            // reported once by the next receive: nothing is lost, try again.
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => self.receive(addrs, lens),
            Err(e) => Err(e),
        }
    }
}

/// The first `len` bytes of `addr` (at most all of it).
fn storage_bytes(addr: &libc::sockaddr_storage, len: libc::socklen_t) -> &[u8] {
    let len = (len as usize).min(std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: `addr` is a live, initialised sockaddr_storage (plain data) and `len` is
    // at most its size; the slice borrows it.
    unsafe { std::slice::from_raw_parts((addr as *const libc::sockaddr_storage).cast(), len) }
}

impl<H: DatagramHandler> Answers<H> {
    fn on_datagram(&mut self, datagram: &[u8], peer: &[u8]) {
        let len = peer
            .len()
            .min(std::mem::size_of::<libc::sockaddr_storage>());
        // SAFETY: sockaddr_storage is plain data for which all zeroes is valid.
        let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        // SAFETY: `len` bytes are readable at `peer` and writable at `addr` (at most
        // its size), and the two do not overlap (`addr` is a fresh local).
        unsafe {
            std::ptr::copy_nonoverlapping(
                peer.as_ptr(),
                (&mut addr as *mut libc::sockaddr_storage).cast::<u8>(),
                len,
            )
        };
        let index = self.peers.len();
        self.peers.push(addr);
        self.peer_lens.push(len as libc::socklen_t);
        let before = self.out.len();
        self.handler.on_datagram(datagram, &mut self.out);
        self.dest
            .extend(std::iter::repeat_n(index, self.out.len() - before));
        if self.out.bytes_len() >= SEND_AT_BYTES {
            self.send();
        }
    }

    /// Sends the answers held and forgets them and their peers.
    fn send(&mut self) {
        self.send_held();
        self.out.clear();
        self.dest.clear();
        self.peers.clear();
        self.peer_lens.clear();
    }

    fn send_held(&mut self) {
        let total = self.out.len();
        let mut next = 0;
        while next < total {
            let count = (total - next).min(SEND_BATCH);
            // SAFETY: iovec and mmsghdr are plain data for which all zeroes is valid.
            let mut iovs: [libc::iovec; SEND_BATCH] = unsafe { std::mem::zeroed() };
            // SAFETY: as above.
            let mut hdrs: [libc::mmsghdr; SEND_BATCH] = unsafe { std::mem::zeroed() };
            for k in 0..count {
                let datagram = self.out.get(next + k);
                iovs[k].iov_base = datagram.as_ptr() as *mut libc::c_void;
                iovs[k].iov_len = datagram.len();
                let peer = self.dest[next + k];
                let hdr = &mut hdrs[k].msg_hdr;
                hdr.msg_iov = &mut iovs[k];
                hdr.msg_iovlen = 1;
                hdr.msg_name = (&mut self.peers[peer] as *mut libc::sockaddr_storage).cast();
                hdr.msg_namelen = self.peer_lens[peer];
            }
            // SAFETY: the first `count` headers are initialised; their iovecs point at
            // answer datagrams in `self.out` and their names at peers in `self.peers`,
            // all live and unchanged during this call, which only reads them (and
            // writes each header's `msg_len`).
            let res = syscall!(sendmmsg(
                self.socket.as_raw_fd(),
                hdrs.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT
            ));
            match res {
                Ok(sent) => next += (sent as usize).max(1),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // This datagram cannot go (an unreachable peer, a bad address): skip it.
                Err(_) => next += 1,
            }
        }
    }
}

/// The handler of a service that serves no UDP (the no-store floor, test services):
/// every datagram is dropped.
#[derive(Debug, Default)]
pub struct DropDatagrams;

impl DatagramHandler for DropDatagrams {
    fn on_datagram(&mut self, _datagram: &[u8], _out: &mut Datagrams) {}
}
