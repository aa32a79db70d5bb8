//! Op identities and the send op record.
//!
//! Owns: the `user_data` encoding ([`Token`]: op kind, connection generation, slot
//! index) and [`SendRecord`], which owns everything a send or sendmsg SQE points at
//! (the segments taken from a connection's `Output`, their iovec array and the msghdr),
//! copying or, at or above the `-o uring_send_zc` size, zero-copy.
//!
//! Must not know: connections, the `Service`, the ring. It builds SQEs; it never submits.
//!
//! Invariants: a `SendRecord` lives in a `Box` (stable address) and is not cleared,
//! refilled or dropped while its SQE is in flight (for a zero-copy send: until its
//! notification, which may come after its result), so every pointer the kernel holds
//! stays valid until the completion arrives. `Token::decode(Token::encode(t)) == t`.

use bytes::Bytes;
use io_uring::{opcode, squeue, types};
use std::os::fd::RawFd;

/// What an in-flight op is, stored in the top byte of `user_data`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// Accept on listener `index`.
    Accept = 1,
    /// Receive on connection slot `index`.
    Recv = 2,
    /// Send on connection slot `index`.
    Send = 3,
    /// An `AsyncCancel`; its own completion carries nothing.
    Cancel = 4,
    /// A `Close` of a descriptor no slot refers to any more.
    Close = 5,
    /// The worker's one-second tick.
    Timer = 6,
    /// The poll on the shutdown eventfd.
    Shutdown = 7,
    /// [`crate::io::REJECT_REPLY`] going to the rejected socket `index` (a raw fd).
    Reject = 8,
    /// The worker's stream poll ([`crate::io::STREAM_INTERVAL`]), armed while it has
    /// streaming connections.
    StreamTick = 9,
    /// The receive of the worker's UDP socket `index` (`-U`): its multishot recvmsg, or
    /// its poll, re-armed after each pump.
    Udp = 10,
}

impl Kind {
    fn from_u8(v: u8) -> Option<Kind> {
        Some(match v {
            1 => Kind::Accept,
            2 => Kind::Recv,
            3 => Kind::Send,
            4 => Kind::Cancel,
            5 => Kind::Close,
            6 => Kind::Timer,
            7 => Kind::Shutdown,
            8 => Kind::Reject,
            9 => Kind::StreamTick,
            10 => Kind::Udp,
            _ => return None,
        })
    }
}

/// Generations wrap at 24 bits: a slot is only freed once all of its ops completed, so
/// the generation only has to tell apart completions of ops that could still be pending.
pub const GEN_MASK: u32 = (1 << 24) - 1;

/// The identity of one op: `kind:8 | generation:24 | index:32`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    pub gen: u32,
    pub index: u32,
}

impl Token {
    pub fn new(kind: Kind, gen: u32, index: usize) -> Token {
        Token {
            kind,
            gen: gen & GEN_MASK,
            index: index as u32,
        }
    }

    pub fn encode(self) -> u64 {
        (self.kind as u64) << 56 | u64::from(self.gen & GEN_MASK) << 32 | u64::from(self.index)
    }

    pub fn decode(user_data: u64) -> Option<Token> {
        Some(Token {
            kind: Kind::from_u8((user_data >> 56) as u8)?,
            gen: (user_data >> 32) as u32 & GEN_MASK,
            index: user_data as u32,
        })
    }
}

/// An `AsyncCancel` of the op with identity `target`.
pub fn cancel(target: Token) -> squeue::Entry {
    opcode::AsyncCancel::new(target.encode())
        .build()
        .user_data(Token::new(Kind::Cancel, 0, 0).encode())
}

/// Closes `fd` (which nothing refers to any more) through the ring.
pub fn close(fd: RawFd) -> squeue::Entry {
    opcode::Close::new(types::Fd(fd))
        .build()
        .user_data(Token::new(Kind::Close, 0, 0).encode())
}

/// `IORING_RECV_MULTISHOT` and `IORING_RECVSEND_BUNDLE`, the recv flags (in the SQE's
/// `ioprio`) of a multishot bundle receive.
const RECV_MULTISHOT: u16 = 1 << 1;
const RECVSEND_BUNDLE: u16 = 1 << 4;

/// Most bytes one bundle takes: without a cap one completion takes as many buffers
/// as the socket holds bytes, so a few connections flooding requests could hold the
/// whole buffer ring, and a quiet connection's receive would find none for seconds
/// (tests/hostile_engine.rs). 16 KiB, four buffers, keeps most of the bulk-input gain
/// (docs/uring-features.md).
pub const BUNDLE_MAX_BYTES: u32 = 16 * 1024;

/// The multishot receive on `fd` from buffer group `bgid`: one buffer per completion,
/// or with `bundle` a bundle of at most [`BUNDLE_MAX_BYTES`].
pub fn recv_multishot(fd: RawFd, bgid: u16, bundle: bool) -> squeue::Entry {
    if bundle {
        opcode::Recv::new(types::Fd(fd), std::ptr::null_mut(), BUNDLE_MAX_BYTES)
            .ioprio(RECV_MULTISHOT | RECVSEND_BUNDLE)
            .buf_group(bgid)
            .build()
            .flags(squeue::Flags::BUFFER_SELECT)
    } else {
        opcode::RecvMulti::new(types::Fd(fd), bgid).build()
    }
}

/// Most iovecs one sendmsg takes (the kernel's `UIO_MAXIOV`); more go in the next send.
const MAX_IOVECS: usize = 1024;

/// Flags of every send: no SIGPIPE for a vanished peer; let the kernel finish a
/// partial send itself rather than completing short.
const SEND_FLAGS: i32 = libc::MSG_NOSIGNAL | libc::MSG_WAITALL;

/// One connection's send op: owns the bytes being sent and what the SQE points at.
pub struct SendRecord {
    /// The segments taken from the connection's output; they keep the bytes alive.
    segs: Vec<Bytes>,
    /// One iovec per segment; `iov[first..]` is what is left to send.
    iov: Vec<libc::iovec>,
    first: usize,
    /// Points into `iov` while a sendmsg is in flight.
    msg: libc::msghdr,
}

impl SendRecord {
    pub fn new() -> Box<SendRecord> {
        Box::new(SendRecord {
            segs: Vec::new(),
            iov: Vec::new(),
            first: 0,
            // SAFETY: msghdr is plain data (pointers and integers); all zeroes is a valid,
            // empty header.
            msg: unsafe { std::mem::zeroed() },
        })
    }

    /// Takes what `take` moves out of an `Output` (it appends to the Vec it is given)
    /// and prepares the iovecs. Must only be called while no send is in flight.
    pub fn load(&mut self, take: impl FnOnce(&mut Vec<Bytes>)) -> bool {
        self.clear();
        take(&mut self.segs);
        self.segs.retain(|s| !s.is_empty());
        self.iov.extend(self.segs.iter().map(|s| libc::iovec {
            iov_base: s.as_ptr() as *mut libc::c_void,
            iov_len: s.len(),
        }));
        !self.iov.is_empty()
    }

    /// The SQE sending what is left (up to [`MAX_IOVECS`] segments).
    ///
    /// The entry points into this record: it must stay in place (it is boxed) and
    /// untouched until the op's completion arrives.
    ///
    /// With `zc_min_bytes` > 0, a send of at least that many bytes is zero-copy
    /// (`SEND_ZC`/`SENDMSG_ZC`): its result completion comes with `more` set and a
    /// notification follows once the kernel let go of the bytes; the record must stay
    /// untouched until then.
    pub fn entry(&mut self, fd: RawFd, token: Token, zc_min_bytes: usize) -> squeue::Entry {
        let left = &self.iov[self.first..];
        let n = left.len().min(MAX_IOVECS);
        let zc =
            zc_min_bytes > 0 && left[..n].iter().map(|v| v.iov_len).sum::<usize>() >= zc_min_bytes;
        let fd = types::Fd(fd);
        let entry = if n == 1 {
            let (buf, len) = (
                left[0].iov_base as *const u8,
                left[0].iov_len.min(u32::MAX as usize) as u32,
            );
            if zc {
                opcode::SendZc::new(fd, buf, len).flags(SEND_FLAGS).build()
            } else {
                opcode::Send::new(fd, buf, len).flags(SEND_FLAGS).build()
            }
        } else {
            self.msg.msg_iov = left.as_ptr() as *mut libc::iovec;
            self.msg.msg_iovlen = n as _;
            if zc {
                opcode::SendMsgZc::new(fd, &self.msg)
                    .flags(SEND_FLAGS as u32)
                    .build()
            } else {
                opcode::SendMsg::new(fd, &self.msg)
                    .flags(SEND_FLAGS as u32)
                    .build()
            }
        };
        entry.user_data(token.encode())
    }

    /// Records that the kernel sent `n` more bytes; true when nothing is left.
    pub fn advance(&mut self, mut n: usize) -> bool {
        while n > 0 && self.first < self.iov.len() {
            let v = &mut self.iov[self.first];
            if n >= v.iov_len {
                n -= v.iov_len;
                self.first += 1;
            } else {
                v.iov_base = (v.iov_base as *mut u8).wrapping_add(n) as *mut libc::c_void;
                v.iov_len -= n;
                n = 0;
            }
        }
        self.first == self.iov.len()
    }

    /// Drops the segments (their bytes are sent or no longer wanted). Must only be
    /// called while no send is in flight.
    pub fn clear(&mut self) {
        self.segs.clear();
        self.iov.clear();
        self.first = 0;
        self.msg.msg_iov = std::ptr::null_mut();
        self.msg.msg_iovlen = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_wraps_generation() {
        let t = Token::new(Kind::Send, GEN_MASK + 5, 123_456);
        assert_eq!(t.gen, 4);
        assert_eq!(Token::decode(t.encode()), Some(t));
        assert_eq!(Token::decode(0), None);
    }

    #[test]
    fn send_record_advances_across_segments() {
        let mut rec = SendRecord::new();
        let loaded = rec.load(|v| {
            v.push(Bytes::from_static(b"abc"));
            v.push(Bytes::new());
            v.push(Bytes::from_static(b"defgh"));
        });
        assert!(loaded);
        assert_eq!(rec.iov.len(), 2);
        assert!(!rec.advance(4));
        // SAFETY: iov[first] points into the live segment "defgh", advanced by one.
        let rest =
            unsafe { std::slice::from_raw_parts(rec.iov[rec.first].iov_base as *const u8, 4) };
        assert_eq!(rest, b"efgh");
        assert!(rec.advance(4));
        rec.clear();
        assert!(!rec.load(|_| {}));
    }
}
