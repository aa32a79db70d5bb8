//! A blocking client whose every read has a deadline, and the replies the tests read
//! (`stats`, get replies) taken apart by `ringcache-client`'s text decoder.

use super::{sys, IO_TIMEOUT};
use ringcache_client::text::{self, Response};
use ringcache_client::DecodeError;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// How a peer ended the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// Orderly FIN: read returned 0.
    Eof,
    /// RST: read failed with ECONNRESET.
    Reset,
}

/// Why a read stopped before its predicate held.
#[derive(Debug)]
pub enum ReadEnd {
    Timeout,
    Closed(Closed),
    Io(io::Error),
}

/// Shows bytes for a failure message: escaped, long ones cut in the middle.
pub fn show(bytes: &[u8]) -> String {
    const EDGE: usize = 300;
    if bytes.len() <= 2 * EDGE {
        format!("\"{}\"", bytes.escape_ascii())
    } else {
        format!(
            "\"{}\" ...({} bytes)... \"{}\"",
            bytes[..EDGE].escape_ascii(),
            bytes.len() - 2 * EDGE,
            bytes[bytes.len() - EDGE..].escape_ascii()
        )
    }
}

/// A blocking client connection whose every read has a deadline.
pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
    /// The default deadline for reads that take none.
    pub timeout: Duration,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        Client::from_stream(stream)
    }

    pub fn from_stream(stream: TcpStream) -> Client {
        stream.set_nodelay(true).expect("TCP_NODELAY");
        stream
            .set_write_timeout(Some(IO_TIMEOUT))
            .expect("SO_SNDTIMEO");
        Client {
            stream,
            buf: Vec::new(),
            timeout: IO_TIMEOUT,
        }
    }

    /// Writes all of `bytes`, panicking on error (a write timeout included).
    pub fn send(&mut self, bytes: &[u8]) {
        self.stream
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("send {}: {e}", show(bytes)));
    }

    pub fn try_send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Bytes received but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets what was read so far (a test that only counts a long answer).
    pub fn clear_buffered(&mut self) {
        self.buf.clear();
    }

    /// One `read` of at most `max` bytes into the buffer, waiting until `deadline`.
    /// Returns how many bytes arrived.
    pub fn read_some(&mut self, max: usize, deadline: Instant) -> Result<usize, ReadEnd> {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Err(ReadEnd::Timeout);
            }
            self.stream
                .set_read_timeout(Some((deadline - now).max(Duration::from_millis(1))))
                .expect("SO_RCVTIMEO");
            let len = self.buf.len();
            self.buf.resize(len + max, 0);
            let res = self.stream.read(&mut self.buf[len..]);
            self.buf.truncate(len + *res.as_ref().unwrap_or(&0));
            match res {
                Ok(0) => return Err(ReadEnd::Closed(Closed::Eof)),
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => {
                    return Err(ReadEnd::Closed(Closed::Reset))
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(ReadEnd::Io(e)),
            }
        }
    }

    /// Reads until `done(buffer)` returns `Some(n)`, then removes and returns the first
    /// `n` bytes. Fails with the reason and what was buffered so far.
    pub fn try_read_until(
        &mut self,
        deadline: Instant,
        mut done: impl FnMut(&[u8]) -> Option<usize>,
    ) -> Result<Vec<u8>, (ReadEnd, Vec<u8>)> {
        loop {
            if let Some(n) = done(&self.buf) {
                return Ok(self.buf.drain(..n).collect());
            }
            if let Err(end) = self.read_some(64 * 1024, deadline) {
                return Err((end, std::mem::take(&mut self.buf)));
            }
        }
    }

    /// [`Client::try_read_until`] with the default timeout; panics naming `what`.
    pub fn read_until(&mut self, what: &str, done: impl FnMut(&[u8]) -> Option<usize>) -> Vec<u8> {
        let deadline = Instant::now() + self.timeout;
        match self.try_read_until(deadline, done) {
            Ok(bytes) => bytes,
            Err((end, got)) => panic!("waiting for {what}: {end:?}; received {}", show(&got)),
        }
    }

    /// One `\r\n`-terminated line, terminator included.
    pub fn read_line(&mut self) -> Vec<u8> {
        self.read_until("a line", |b| memfind(b, b"\r\n").map(|i| i + 2))
    }

    /// `n` lines (each `\r\n`-terminated, no data blocks expected in between).
    pub fn read_lines(&mut self, n: usize) -> Vec<u8> {
        self.read_until(&format!("{n} lines"), |b| {
            let mut seen = 0;
            let mut at = 0;
            while seen < n {
                at += memfind(&b[at..], b"\r\n")? + 2;
                seen += 1;
            }
            Some(at)
        })
    }

    /// Exactly `n` bytes.
    pub fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        self.read_until(&format!("{n} bytes"), |b| (b.len() >= n).then_some(n))
    }

    /// Everything up to and including the first `END\r\n` that ends the buffer.
    pub fn read_until_end(&mut self) -> Vec<u8> {
        self.read_until("a reply ending in END", |b| {
            b.ends_with(b"END\r\n").then_some(b.len())
        })
    }

    /// Reads exactly `want.len()` bytes and asserts they are `want`.
    pub fn expect(&mut self, want: &[u8]) {
        let got = self.read_exact_bytes(want.len());
        assert!(got == want, "expected {}, got {}", show(want), show(&got));
    }

    /// Sends `cmd` and asserts the reply is exactly `want`.
    pub fn roundtrip(&mut self, cmd: &[u8], want: &[u8]) {
        self.send(cmd);
        self.expect(want);
    }

    /// Reads until the peer closes or `deadline`: what arrived, and how it closed
    /// (`None`: still open at the deadline).
    pub fn read_to_close(&mut self, deadline: Instant) -> (Vec<u8>, Option<Closed>) {
        loop {
            match self.read_some(64 * 1024, deadline) {
                Ok(_) => {}
                Err(ReadEnd::Closed(how)) => return (std::mem::take(&mut self.buf), Some(how)),
                Err(ReadEnd::Timeout) => return (std::mem::take(&mut self.buf), None),
                Err(ReadEnd::Io(e)) => panic!("read: {e}"),
            }
        }
    }

    /// Asserts the peer closes within `timeout` (discarding what arrives first).
    pub fn expect_closed(&mut self, timeout: Duration) -> Closed {
        let (got, how) = self.read_to_close(Instant::now() + timeout);
        how.unwrap_or_else(|| {
            panic!(
                "connection still open after {timeout:?}; received {}",
                show(&got)
            )
        })
    }

    pub fn set(&mut self, key: &str, value: &[u8]) {
        let mut req = Vec::new();
        text::set(&mut req, key.as_bytes(), 0, 0, value);
        self.roundtrip(&req, b"STORED\r\n");
    }

    /// The value of `key`, or `None` on a miss.
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        let mut req = Vec::new();
        text::get(&mut req, [key]);
        self.send(&req);
        let reply = self.read_until_end_of_get();
        parse_get_reply(&reply, key)
    }

    /// One `get`/`gets` reply: VALUE blocks (parsed by length, so data may hold
    /// anything) followed by `END\r\n`.
    pub fn read_until_end_of_get(&mut self) -> Vec<u8> {
        self.read_until("a get reply", get_reply_len)
    }

    /// A `version` round trip: proves the connection is served.
    pub fn version(&mut self) -> String {
        self.send(b"version\r\n");
        let line = self.read_line();
        let text = String::from_utf8_lossy(&line).into_owned();
        assert!(
            text.starts_with("VERSION "),
            "version answered {}",
            show(&line)
        );
        text.trim_end().to_string()
    }

    pub fn stats(&mut self) -> HashMap<String, String> {
        stats(self)
    }

    /// Polls `stats` on this connection until `curr_connections` is `want` (this
    /// connection included); on timeout, the last value seen.
    pub fn wait_curr_connections(&mut self, want: u64, timeout: Duration) -> Result<(), u64> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = stat_u64(&self.stats(), "curr_connections");
            if now == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(now);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Shrinks the socket's receive buffer (SO_RCVBUF; the kernel doubles the value).
    pub fn set_recv_buffer(&self, bytes: usize) {
        let bytes = libc::c_int::try_from(bytes).expect("buffer size fits c_int");
        sys::set_recv_buffer(&self.stream, bytes).expect("SO_RCVBUF");
    }

    /// Makes `close` send RST instead of FIN (SO_LINGER with a zero timeout).
    pub fn set_linger_zero(&self) {
        sys::set_linger_zero(&self.stream).expect("SO_LINGER");
    }
}

/// `stats` as a map from name to value.
pub fn stats(conn: &mut Client) -> HashMap<String, String> {
    stats_group(conn, "")
}

/// `stats <group>` (`settings`, `items`, …; "" for plain `stats`) as a map from name
/// to value.
pub fn stats_group(conn: &mut Client, group: &str) -> HashMap<String, String> {
    let command = if group.is_empty() {
        "stats\r\n".to_string()
    } else {
        format!("stats {group}\r\n")
    };
    conn.send(command.as_bytes());
    let reply = conn.read_until("stats", get_reply_len);
    let list = decode_list(&reply);
    assert_eq!(list.end, Response::End, "stats answered {}", show(&reply));
    list.items
        .into_iter()
        .map(|item| match item {
            Response::Stat(name, value) => (name.to_string(), value.to_string()),
            other => panic!("bad stats answer {other:?} in {}", show(&reply)),
        })
        .collect()
}

/// A numeric stat, or a panic naming it.
pub fn stat_u64(stats: &HashMap<String, String>, name: &str) -> u64 {
    stats
        .get(name)
        .unwrap_or_else(|| panic!("stats has no {name}: {stats:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("stat {name}={:?}: {e}", stats[name]))
}

/// The length of a complete get/gets/gat reply (its `VALUE`s up to `END`, or an error
/// line instead) or stats listing at the start of `b`, if complete.
pub fn get_reply_len(b: &[u8]) -> Option<usize> {
    match text::decode_list(b) {
        Ok(list) => Some(list.consumed),
        Err(DecodeError::Incomplete) => None,
        Err(DecodeError::Malformed(why)) => panic!("bad reply: {why}"),
    }
}

/// The answers of a complete get reply or stats listing that is all of `reply`.
fn decode_list(reply: &[u8]) -> text::Listing<'_> {
    match text::decode_list(reply) {
        Ok(list) if list.consumed == reply.len() => list.response,
        Ok(list) => panic!(
            "{} bytes after the reply: {}",
            reply.len() - list.consumed,
            show(reply)
        ),
        Err(e) => panic!("not a whole reply ({e:?}): {}", show(reply)),
    }
}

/// The value for `key` in a complete get reply: `None` for a miss; a panic for
/// anything but one hit for `key` or none.
pub fn parse_get_reply(reply: &[u8], key: &str) -> Option<Vec<u8>> {
    let list = decode_list(reply);
    assert_eq!(list.end, Response::End, "get reply {}", show(reply));
    match &list.items[..] {
        [] => None,
        [Response::Value { key: k, value, .. }] if *k == key.as_bytes() => Some(value.to_vec()),
        _ => panic!("unexpected get reply {}", show(reply)),
    }
}

/// The first position of `needle` in `hay`.
pub fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
