//! One worker's UDP socket (`-U`): datagrams in with `recvmmsg`, answers out with
//! `sendmmsg`, both engines.
//!
//! [`UdpSocketPump::pump`] runs when the socket is readable (epoll: the socket is in
//! the epoll set, level-triggered; io_uring: a single-shot poll the worker re-arms
//! after each pump, which completes at once while datagrams wait). It receives up to
//! [`RECV_BATCH`] datagrams per call, hands each to the service's [`DatagramHandler`]
//! (`server::udp`: framing and the connection state machine), and sends every answer
//! datagram of the batch, each to the peer its request came from, in `sendmmsg` calls
//! of up to [`SEND_BATCH`]; sooner, once [`SEND_AT_BYTES`] of answers are held, so a
//! batch of large answers pins no more than that plus one. Fairness: at most
//! [`DATAGRAMS_PER_PUMP`] datagrams per pump, then the worker serves its TCP
//! connections; whatever is still queued keeps the socket readable, so the next turn
//! comes back to it.
//!
//! A send the socket has no room for (`EAGAIN`: the send buffer is full) drops that
//! datagram and the rest of what is held: UDP makes no promise, and a worker never
//! waits on one client's answers (memcached's UDP connection waits for room instead,
//! so an answer larger than the send buffer, `net.core.wmem_max` at most, may lose
//! its tail here and not there). A datagram the kernel refuses for another reason (an
//! unreachable peer) is dropped alone.
//!
//! Owns: the socket, the receive buffers (`RECV_BATCH` × [`MAX_REQUEST_BYTES`], one
//! allocation per socket for the worker's life), the peers' addresses of the batch.
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
    socket: UdpSocket,
    handler: H,
    /// `RECV_BATCH` receive buffers of `MAX_REQUEST_BYTES`, back to back.
    bufs: Vec<u8>,
    /// The batch's peers: `addrs[i]` sent datagram `i`.
    addrs: Vec<libc::sockaddr_storage>,
    addr_lens: Vec<libc::socklen_t>,
    /// The batch's answers and, per answer datagram, the datagram it answers.
    out: Datagrams,
    dest: Vec<usize>,
}

impl<H: DatagramHandler> UdpSocketPump<H> {
    pub fn new(socket: UdpSocket, handler: H) -> UdpSocketPump<H> {
        // SAFETY: sockaddr_storage is plain data for which all zeroes is valid.
        let zero: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
        UdpSocketPump {
            socket,
            handler,
            bufs: vec![0; RECV_BATCH * MAX_REQUEST_BYTES],
            addrs: vec![zero; RECV_BATCH],
            addr_lens: vec![0; RECV_BATCH],
            out: Datagrams::default(),
            dest: Vec::new(),
        }
    }

    pub fn fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }

    /// Receives and answers datagrams until none is left or the pump's budget is
    /// spent. Returns whether it stopped for the budget (datagrams may be left).
    pub fn pump(&mut self) -> io::Result<bool> {
        let mut handled = 0;
        while handled < DATAGRAMS_PER_PUMP {
            let mut lens = [0usize; RECV_BATCH];
            let n = self.receive(&mut lens)?;
            if n == 0 {
                return Ok(false);
            }
            for (i, &len) in lens.iter().enumerate().take(n) {
                let start = i * MAX_REQUEST_BYTES;
                let before = self.out.len();
                self.handler
                    .on_datagram(&self.bufs[start..start + len], &mut self.out);
                self.dest
                    .extend(std::iter::repeat_n(i, self.out.len() - before));
                if self.out.bytes_len() >= SEND_AT_BYTES {
                    self.send_answers();
                }
            }
            self.send_answers();
            handled += n;
        }
        Ok(true)
    }

    /// One `recvmmsg`: fills `lens` and the batch's peers; 0 when nothing waits.
    fn receive(&mut self, lens: &mut [usize; RECV_BATCH]) -> io::Result<usize> {
        // SAFETY: iovec and mmsghdr are plain data for which all zeroes is valid.
        let mut iovs: [libc::iovec; RECV_BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut hdrs: [libc::mmsghdr; RECV_BATCH] = unsafe { std::mem::zeroed() };
        let base = self.bufs.as_mut_ptr();
        for i in 0..RECV_BATCH {
            // SAFETY: `i * MAX_REQUEST_BYTES` is within `bufs`, which holds
            // `RECV_BATCH * MAX_REQUEST_BYTES` bytes.
            iovs[i].iov_base = unsafe { base.add(i * MAX_REQUEST_BYTES) }.cast();
            iovs[i].iov_len = MAX_REQUEST_BYTES;
            let hdr = &mut hdrs[i].msg_hdr;
            hdr.msg_iov = &mut iovs[i];
            hdr.msg_iovlen = 1;
            hdr.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_storage).cast();
            hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: `hdrs` holds RECV_BATCH initialised headers whose iovecs point at
        // disjoint `MAX_REQUEST_BYTES` slices of `bufs` and whose names point at
        // entries of `addrs`; all of them are live, exclusively borrowed, and outlive
        // this blocking-free call (MSG_DONTWAIT), which writes nothing else.
        let res = syscall!(recvmmsg(
            self.socket.as_raw_fd(),
            hdrs.as_mut_ptr(),
            RECV_BATCH as libc::c_uint,
            libc::MSG_DONTWAIT,
            std::ptr::null_mut()
        ));
        match res {
            Ok(n) => {
                let n = n as usize;
                for i in 0..n {
                    lens[i] = (hdrs[i].msg_len as usize).min(MAX_REQUEST_BYTES);
                    self.addr_lens[i] = hdrs[i].msg_hdr.msg_namelen;
                }
                Ok(n)
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock) => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            // An ICMP error queued on the socket (a peer's port unreachable) is
            // reported once by the next receive: nothing is lost, try again.
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => self.receive(lens),
            Err(e) => Err(e),
        }
    }

    /// Sends the answers held, each to its peer, and forgets them; drops what the
    /// socket refuses.
    fn send_answers(&mut self) {
        self.send_held();
        self.out.clear();
        self.dest.clear();
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
                hdr.msg_name = (&mut self.addrs[peer] as *mut libc::sockaddr_storage).cast();
                hdr.msg_namelen = self.addr_lens[peer];
            }
            // SAFETY: the first `count` headers are initialised; their iovecs point at
            // answer datagrams in `self.out` and their names at peers in `self.addrs`,
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
