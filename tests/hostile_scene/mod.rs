//! What the hostile-input tests (`hostile.rs`, `hostile_clients.rs`) share: the
//! [`Scene`] an attack runs in (a server and a probe connection whose key must survive),
//! RSS watching, filler streams, and binary packets built with free-standing length
//! fields.
#![allow(dead_code)]

use crate::common::{show, stat_u64, Client, Flavor, Server};
use std::time::{Duration, Instant};

pub const MIB: u64 = 1024 * 1024;
/// How long the connection count may take to come back after an attack.
pub const SETTLE: Duration = Duration::from_secs(20);
pub const KEEP_VALUE: &[u8] = b"kept through it all";

/// A server with one long-lived connection that stored `__keep__` before the attack.
pub struct Scene {
    pub server: Server,
    pub probe: Client,
    /// `curr_connections` with only the probe open.
    pub conns: u64,
}

impl Scene {
    pub fn start(flavor: Flavor, args: &[&str]) -> Scene {
        let server = Server::start(flavor, args);
        let mut probe = server.connect();
        probe.set("__keep__", KEEP_VALUE);
        let conns = stat_u64(&probe.stats(), "curr_connections");
        Scene {
            server,
            probe,
            conns,
        }
    }

    /// The server is alive, serves the probe correctly, and its connection count is
    /// back to the probe alone (plus the connection `wait_curr_connections` opens).
    pub fn assert_settled(&mut self, after: &str) {
        self.server.assert_alive();
        assert_eq!(
            self.probe.get("__keep__").as_deref(),
            Some(KEEP_VALUE),
            "{}: after {after}",
            self.server.flavor()
        );
        if let Err(now) = self.probe.wait_curr_connections(self.conns, SETTLE) {
            panic!(
                "{}: after {after}, curr_connections stayed {now}, expected {}",
                self.server.flavor(),
                self.conns
            );
        }
        if let Some(trouble) = self.server.trouble() {
            panic!("{}: after {after}: {trouble}", self.server.flavor());
        }
    }
}

/// Sends `bytes` on a fresh connection and reads until the server closes (or
/// `timeout`): what came back, and whether it closed.
pub fn send_and_read_to_close(server: &Server, bytes: &[u8], timeout: Duration) -> (Vec<u8>, bool) {
    let mut c = server.connect();
    // The server may close before it has read everything: a failed write is fine.
    let _ = c.try_send(bytes);
    let (got, how) = c.read_to_close(Instant::now() + timeout);
    (got, how.is_some())
}

/// The peak RSS seen while `work` runs, sampled from `tick` calls.
pub struct RssWatch<'a> {
    pub server: &'a Server,
    base: u64,
    peak: u64,
}

impl<'a> RssWatch<'a> {
    pub fn new(server: &'a Server) -> RssWatch<'a> {
        let base = server.rss_bytes();
        RssWatch {
            server,
            base,
            peak: base,
        }
    }

    pub fn tick(&mut self) {
        self.peak = self.peak.max(self.server.rss_bytes());
    }

    pub fn growth(&self) -> u64 {
        self.peak.saturating_sub(self.base)
    }

    pub fn assert_growth_below(&mut self, limit: u64, what: &str) {
        self.tick();
        let growth = self.growth();
        eprintln!(
            "{}: {what}: RSS grew {} KiB at most",
            self.server.flavor(),
            growth / 1024
        );
        assert!(
            growth < limit,
            "{}: {what}: RSS grew {} MiB (limit {} MiB)",
            self.server.flavor(),
            growth / MIB,
            limit / MIB
        );
    }
}

/// Streams `len` filler bytes on `c` in 1 MiB writes, sampling RSS between them.
pub fn stream_filler(c: &mut Client, len: u64, rss: &mut RssWatch<'_>) {
    let chunk = vec![b'y'; MIB as usize];
    let mut sent = 0;
    while sent < len {
        let n = (len - sent).min(MIB) as usize;
        c.send(&chunk[..n]);
        sent += n as u64;
        if sent % (8 * MIB) == 0 {
            rss.tick();
        }
    }
}

// ---------------------------------------------------------------- binary packets

/// One binary-protocol request with free-standing length fields.
#[allow(clippy::too_many_arguments)]
pub fn bin_packet(
    opcode: u8,
    key_len: u16,
    extras_len: u8,
    body_len: u32,
    opaque: u32,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) -> Vec<u8> {
    let mut p = vec![0x80, opcode];
    p.extend_from_slice(&key_len.to_be_bytes());
    p.push(extras_len);
    p.push(0);
    p.extend_from_slice(&0u16.to_be_bytes());
    p.extend_from_slice(&body_len.to_be_bytes());
    p.extend_from_slice(&opaque.to_be_bytes());
    p.extend_from_slice(&0u64.to_be_bytes());
    p.extend_from_slice(extras);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

/// A well-formed binary request.
pub fn bin(opcode: u8, extras: &[u8], key: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
    let body = (extras.len() + key.len() + value.len()) as u32;
    bin_packet(
        opcode,
        key.len() as u16,
        extras.len() as u8,
        body,
        opaque,
        extras,
        key,
        value,
    )
}

pub const OP_GET: u8 = 0x00;
pub const OP_SET: u8 = 0x01;
pub const OP_INCR: u8 = 0x05;
pub const OP_NOOP: u8 = 0x0a;

/// A binary response: (opcode, status, opaque, cas, extras, body after extras).
#[derive(Debug, PartialEq, Eq)]
pub struct BinReply {
    pub opcode: u8,
    pub status: u16,
    pub opaque: u32,
    pub cas: u64,
    pub extras: Vec<u8>,
    pub rest: Vec<u8>,
}

pub fn read_bin(c: &mut Client) -> BinReply {
    let header = c.read_exact_bytes(24);
    assert_eq!(header[0], 0x81, "response magic: {}", show(&header));
    let extras_len = usize::from(header[4]);
    let body_len = u32::from_be_bytes(header[8..12].try_into().unwrap()) as usize;
    let body = c.read_exact_bytes(body_len);
    BinReply {
        opcode: header[1],
        status: u16::from_be_bytes([header[6], header[7]]),
        opaque: u32::from_be_bytes(header[12..16].try_into().unwrap()),
        cas: u64::from_be_bytes(header[16..24].try_into().unwrap()),
        extras: body[..extras_len].to_vec(),
        rest: body[extras_len..].to_vec(),
    }
}

pub fn set_extras(flags: u32, exptime: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exptime.to_be_bytes()].concat()
}
