//! UDP (`-U`): memcached's datagram framing around the connection state machine.
//!
//! Every datagram carries memcached's 8-byte frame header: request id, sequence
//! number, total datagrams, reserved (big-endian `u16`s). A request is one datagram
//! ([`parse_request`]): memcached 1.6.18 silently drops a datagram of 8 bytes or fewer
//! and one whose header claims a total other than 1 (it has no reassembly), ignores
//! the sequence number and the reserved field, and so does ringcache.
//!
//! The payload runs through a [`Connection`], the same state machine a TCP connection
//! uses (text, meta, binary as `-B` allows), one per worker and UDP socket
//! ([`UdpConn`]). What the datagram leaves unexecuted is dropped at its end
//! ([`Connection::end_datagram`]): a request split over two datagrams is two broken
//! requests, as in memcached (the second half alone answers `ERROR`). A connection
//! that `quit` (or closed on a fatal error, or turned into a `watch` stream) is
//! replaced by a fresh one; `quit` is answered, as memcached answers it, by a bare
//! header whose total is 0.
//!
//! The whole answer to one datagram is one sequence ([`frame`]): datagrams of at most
//! [`MAX_DATAGRAM_BYTES`] (memcached's `UDP_MAX_PAYLOAD_SIZE`, header included), each
//! with the request id, its sequence number from 0 and the total count. memcached 1.6
//! starts a new sequence at each of its response objects instead (each request of a
//! datagram, each hit of a multi-key get); the bytes are the same and in the same
//! order (README, "Differences from memcached").
//!
//! Memory: the answer to one datagram is built whole (the total goes in every header)
//! in one buffer per endpoint, bounded by [`UdpConn::answer_limit`]: the largest item
//! plus one output mark. An answer past it (a multi-key get of many large values, a
//! key dump) is replaced by memcached's `SERVER_ERROR out of memory writing get
//! response` and the rest of the datagram is dropped. The engine sends a batch's
//! answers once they pass a few hundred KiB (`io::udp`), so a worker holds at most
//! about one such answer twice over. Nothing is allocated per datagram once the
//! buffers have grown.
//!
//! Must not know: sockets or addresses (the engine receives, sends and pairs each
//! answer with its peer: `io::udp`).

use super::connection::{Connection, OUTPUT_HIGH_WATER};
use super::Server;
use std::io::IoSlice;
use std::os::fd::RawFd;
use std::sync::Arc;

/// memcached's UDP frame header: request id, sequence, total, reserved.
pub const HEADER_BYTES: usize = 8;

/// The largest answer datagram, header included (memcached's `UDP_MAX_PAYLOAD_SIZE`).
pub const MAX_DATAGRAM_BYTES: usize = 1400;

/// Answer bytes per datagram.
pub const MAX_CHUNK_BYTES: usize = MAX_DATAGRAM_BYTES - HEADER_BYTES;

/// The largest request datagram read whole (memcached's `UDP_READ_BUFFER_SIZE`); a
/// larger one is truncated by the kernel and its tail lost.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// What memcached answers when it cannot build a get's answer.
const TOO_LARGE: &[u8] = b"SERVER_ERROR out of memory writing get response\r\n";

/// Why a request datagram is dropped without an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// No payload after the header (8 bytes or fewer).
    Short,
    /// The header claims a request of more than one datagram (or of none).
    MultiPart,
}

/// A request datagram's request id and payload, or why it is dropped.
pub fn parse_request(datagram: &[u8]) -> Result<(u16, &[u8]), Dropped> {
    if datagram.len() <= HEADER_BYTES {
        return Err(Dropped::Short);
    }
    if datagram[4..6] != [0, 1] {
        return Err(Dropped::MultiPart);
    }
    let request_id = u16::from_be_bytes([datagram[0], datagram[1]]);
    Ok((request_id, &datagram[HEADER_BYTES..]))
}

/// The header of datagram `sequence` of `total`.
pub fn header(request_id: u16, sequence: u16, total: u16) -> [u8; HEADER_BYTES] {
    let [r0, r1] = request_id.to_be_bytes();
    let [s0, s1] = sequence.to_be_bytes();
    let [t0, t1] = total.to_be_bytes();
    [r0, r1, s0, s1, t0, t1, 0, 0]
}

/// Answer datagrams, back to back in one buffer: a batch's worth for the engine to
/// send. Reused from batch to batch.
#[derive(Debug, Default)]
pub struct Datagrams {
    bytes: Vec<u8>,
    /// Where each datagram ends in `bytes`.
    ends: Vec<usize>,
}

impl Datagrams {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Bytes held, headers included.
    pub fn bytes_len(&self) -> usize {
        self.bytes.len()
    }

    /// Datagram `i`.
    pub fn get(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }

    /// Forgets every datagram, keeping the buffers (a large one is let go).
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        if self.bytes.capacity() > 4 * OUTPUT_HIGH_WATER {
            self.bytes = Vec::new();
        }
    }

    fn push(&mut self, parts: &[&[u8]]) {
        for part in parts {
            self.bytes.extend_from_slice(part);
        }
        self.ends.push(self.bytes.len());
    }
}

/// Appends `answer` to `out` as the datagrams of request `request_id`; returns how many.
/// An empty answer is no datagram. `answer` must fit `u16::MAX` datagrams (the caller
/// bounds it far below).
pub fn frame(request_id: u16, answer: &[u8], out: &mut Datagrams) -> usize {
    let total = answer.len().div_ceil(MAX_CHUNK_BYTES);
    let total16 = u16::try_from(total).expect("a UDP answer fits u16::MAX datagrams");
    for (sequence, chunk) in answer.chunks(MAX_CHUNK_BYTES).enumerate() {
        out.push(&[&header(request_id, sequence as u16, total16), chunk]);
    }
    total
}

/// One worker's endpoint on one UDP socket: the connection every datagram runs
/// through, and the buffer answers are built in.
#[derive(Debug)]
pub struct UdpConn {
    server: Arc<Server>,
    worker: usize,
    fd: RawFd,
    conn: Connection,
    answer: Vec<u8>,
}

impl UdpConn {
    pub fn new(server: &Arc<Server>, worker: usize, fd: RawFd) -> UdpConn {
        UdpConn {
            server: Arc::clone(server),
            worker,
            fd,
            conn: server.udp_connection(worker, fd),
            answer: Vec::new(),
        }
    }

    /// The most answer bytes one datagram may get: the largest item plus one output
    /// mark (and a bounded number of datagrams).
    fn answer_limit(&self) -> usize {
        (self.server.config.max_item_bytes + OUTPUT_HIGH_WATER).min(MAX_CHUNK_BYTES * 60_000)
    }

    /// Runs one received datagram and appends its answer datagrams to `out`.
    pub fn on_datagram(&mut self, datagram: &[u8], out: &mut Datagrams) {
        let Ok((request_id, payload)) = parse_request(datagram) else {
            return;
        };
        self.answer.clear();
        self.conn.on_input(payload);
        let limit = self.answer_limit();
        loop {
            drain(self.conn.output(), &mut self.answer);
            if self.answer.len() > limit {
                self.answer.clear();
                self.answer.extend_from_slice(TOO_LARGE);
                break;
            }
            // With the output drained, only requests kept at the mark (or a dump
            // carried on) keep it from wanting input.
            if self.conn.is_closing() || self.conn.wants_input() {
                break;
            }
            self.conn.resume();
            if self.conn.output().is_empty() {
                break;
            }
        }
        self.conn.end_datagram();
        if self.answer.is_empty() && self.conn.is_closing() {
            // memcached's answer to `quit`: a header and nothing else, total 0.
            out.push(&[&header(request_id, 0, 0)]);
        } else {
            frame(request_id, &self.answer, out);
        }
        if self.conn.is_closing() || self.conn.is_streaming() {
            self.conn = self.server.udp_connection(self.worker, self.fd);
        }
        if self.answer.capacity() > 4 * OUTPUT_HIGH_WATER {
            self.answer = Vec::new();
        }
    }
}

/// Moves every pending byte of `output` to the end of `into`.
fn drain(output: &mut super::output::Output, into: &mut Vec<u8>) {
    while !output.is_empty() {
        let mut slices = [IoSlice::new(&[]); 16];
        let n = output.chunks(&mut slices);
        let mut moved = 0;
        for slice in &slices[..n] {
            into.extend_from_slice(slice);
            moved += slice.len();
        }
        output.advance(moved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn request(id: u16, payload: &[u8]) -> Vec<u8> {
        let mut d = header(id, 0, 1).to_vec();
        d.extend_from_slice(payload);
        d
    }

    fn endpoint() -> UdpConn {
        let config = Config::parse_args(["ringcache", "-U", "0"]).unwrap();
        UdpConn::new(&Server::new(config), 0, -1)
    }

    fn headers(out: &Datagrams) -> Vec<(u16, u16, u16)> {
        (0..out.len())
            .map(|i| {
                let d = out.get(i);
                let u = |at: usize| u16::from_be_bytes([d[at], d[at + 1]]);
                (u(0), u(2), u(4))
            })
            .collect()
    }

    #[test]
    fn header_rules_are_memcacheds() {
        assert_eq!(parse_request(&[]), Err(Dropped::Short));
        assert_eq!(parse_request(&header(1, 0, 1)), Err(Dropped::Short));
        assert_eq!(
            parse_request(&request(1, b"x")[..]).map(|(id, p)| (id, p.len())),
            Ok((1, 1))
        );
        let mut two = request(7, b"version\r\n");
        two[5] = 2;
        assert_eq!(parse_request(&two), Err(Dropped::MultiPart));
        two[5] = 0;
        assert_eq!(parse_request(&two), Err(Dropped::MultiPart));
        // Sequence and reserved are ignored.
        let mut odd = request(0xabcd, b"v");
        odd[3] = 9;
        odd[6] = 0xff;
        assert_eq!(parse_request(&odd).unwrap().0, 0xabcd);
    }

    #[test]
    fn a_long_answer_is_split_in_numbered_datagrams() {
        let mut out = Datagrams::default();
        let answer = vec![b'y'; 3 * MAX_CHUNK_BYTES + 5];
        assert_eq!(frame(42, &answer, &mut out), 4);
        assert_eq!(
            headers(&out),
            [(42, 0, 4), (42, 1, 4), (42, 2, 4), (42, 3, 4)]
        );
        assert_eq!(out.get(0).len(), MAX_DATAGRAM_BYTES);
        assert_eq!(out.get(3).len(), HEADER_BYTES + 5);
        assert_eq!(frame(1, b"", &mut out), 0);
        assert_eq!(out.len(), 4);
    }

    #[test]
    fn datagrams_run_through_the_connection() {
        let mut udp = endpoint();
        let mut out = Datagrams::default();
        udp.on_datagram(&request(5, b"set k 0 0 2\r\nhi\r\nget k\r\n"), &mut out);
        assert_eq!(headers(&out), [(5, 0, 1)]);
        assert_eq!(&out.get(0)[8..], b"STORED\r\nVALUE k 0 2\r\nhi\r\nEND\r\n");
        // A request cut at the datagram's end is dropped with it.
        out.clear();
        udp.on_datagram(&request(6, b"ver"), &mut out);
        udp.on_datagram(&request(7, b"sion\r\n"), &mut out);
        assert_eq!(headers(&out), [(7, 0, 1)]);
        assert_eq!(&out.get(0)[8..], b"ERROR\r\n");
        // quit: a bare header, total 0, and the endpoint goes on.
        out.clear();
        udp.on_datagram(&request(8, b"quit\r\n"), &mut out);
        udp.on_datagram(&request(9, b"get k\r\n"), &mut out);
        assert_eq!(out.get(0), header(8, 0, 0));
        assert_eq!(&out.get(1)[8..], b"VALUE k 0 2\r\nhi\r\nEND\r\n");
    }

    #[test]
    fn an_answer_past_the_limit_is_refused() {
        let mut udp = endpoint();
        let mut out = Datagrams::default();
        let value = vec![b'v'; 900 * 1024];
        let mut set = b"set big 0 0 921600\r\n".to_vec();
        set.extend_from_slice(&value);
        set.extend_from_slice(b"\r\n");
        // Stored over the connection directly: the set is larger than a datagram.
        udp.conn.on_input(&set);
        udp.conn.end_datagram();
        drain(udp.conn.output(), &mut Vec::new());
        udp.on_datagram(&request(1, b"get big big big\r\n"), &mut out);
        assert_eq!(headers(&out), [(1, 0, 1)]);
        assert_eq!(&out.get(0)[8..], TOO_LARGE);
        out.clear();
        udp.on_datagram(&request(2, b"get big\r\n"), &mut out);
        assert_eq!(out.len(), (value.len() + 30).div_ceil(MAX_CHUNK_BYTES));
    }
}
