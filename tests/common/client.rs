//! A blocking client whose every read has a deadline, and parsers for the replies the
//! tests read (`stats`, get replies).

use super::{sys, IO_TIMEOUT};
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
        let mut req = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
        self.roundtrip(&req, b"STORED\r\n");
    }

    /// The value of `key`, or `None` on a miss.
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.send(format!("get {key}\r\n").as_bytes());
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
    let reply = conn.read_until("stats", |b| {
        (b.starts_with(b"END\r\n") || b.ends_with(b"\r\nEND\r\n")).then_some(b.len())
    });
    let text = String::from_utf8_lossy(&reply);
    let mut map = HashMap::new();
    for line in text.lines() {
        if line == "END" {
            break;
        }
        let mut parts = line.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some("STAT"), Some(name), Some(value)) => {
                map.insert(name.to_string(), value.to_string());
            }
            _ => panic!("bad stats line {line:?} in {}", show(&reply)),
        }
    }
    map
}

/// A numeric stat, or a panic naming it.
pub fn stat_u64(stats: &HashMap<String, String>, name: &str) -> u64 {
    stats
        .get(name)
        .unwrap_or_else(|| panic!("stats has no {name}: {stats:?}"))
        .parse()
        .unwrap_or_else(|e| panic!("stat {name}={:?}: {e}", stats[name]))
}

/// The length of a complete get/gets/gat reply at the start of `b`, if complete.
pub fn get_reply_len(b: &[u8]) -> Option<usize> {
    let mut at = 0;
    loop {
        let eol = at + memfind(&b[at..], b"\r\n")?;
        let line = &b[at..eol];
        if line == b"END" {
            return Some(eol + 2);
        }
        if !line.starts_with(b"VALUE ") {
            // An error line ends the reply.
            return Some(eol + 2);
        }
        let len: usize = std::str::from_utf8(line)
            .ok()
            .and_then(|l| l.split(' ').nth(3))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad VALUE line {}", show(line)));
        at = eol + 2 + len + 2;
        if b.len() < at {
            return None;
        }
    }
}

/// The value for `key` in a complete get reply.
pub fn parse_get_reply(reply: &[u8], key: &str) -> Option<Vec<u8>> {
    if reply == b"END\r\n" {
        return None;
    }
    let eol = memfind(reply, b"\r\n").expect("reply line");
    let line = String::from_utf8_lossy(&reply[..eol]);
    let fields: Vec<&str> = line.split(' ').collect();
    assert!(
        fields.len() >= 4 && fields[0] == "VALUE" && fields[1] == key,
        "unexpected get reply {}",
        show(reply)
    );
    let len: usize = fields[3].parse().expect("value length");
    let data = reply[eol + 2..eol + 2 + len].to_vec();
    assert_eq!(
        &reply[eol + 2 + len..],
        b"\r\nEND\r\n",
        "get reply tail: {}",
        show(reply)
    );
    Some(data)
}

/// The first position of `needle` in `hay`.
pub fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}
