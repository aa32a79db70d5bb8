//! Integration-test harness: starts memcached or ringcache on an ephemeral port, talks
//! to it over blocking sockets where every read and wait has a deadline, and kills and
//! reaps the server on drop (so a panicking test leaves no process behind).
//!
//! - [`Server`] owns one server process, its temp dir (port file, log) and its port.
//! - [`Client`] is a `TcpStream` plus a read buffer; its reads never block past a
//!   deadline and report a close (EOF or reset) as a value, not as a hang.
//! - [`both_engines!`] turns one test body into one `#[test]` per ringcache engine, plus
//!   (on request) an ignored reference run against memcached that checks the test itself.
//!
//! Ports are learnt from `MEMCACHED_PORT_FILENAME` (`TCP INET: <port>` lines), which
//! both servers write through a temp file renamed into place once they listen. memcached
//! is asked for an ephemeral port with `-p -1` (its `-p 0` turns TCP off); ringcache with
//! `-p 0`.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest any single read, reply or wait may take before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to write its port file.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause inside polling loops (which always have a deadline).
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The ringcache I/O engine a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Epoll,
    Uring,
}

impl Engine {
    pub fn flag(self) -> &'static str {
        match self {
            Engine::Epoll => "epoll",
            Engine::Uring => "uring",
        }
    }

    /// Why this engine cannot run on this machine, if it cannot.
    pub fn unavailable(self) -> Option<String> {
        match self {
            Engine::Epoll => None,
            Engine::Uring => sys::probe_io_uring()
                .err()
                .map(|e| format!("io_uring_setup failed: {e}")),
        }
    }
}

/// Which server a test talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Debian's memcached, the reference.
    Memcached,
    Ringcache(Engine),
}

impl Flavor {
    pub fn is_memcached(self) -> bool {
        self == Flavor::Memcached
    }
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flavor::Memcached => write!(f, "memcached"),
            Flavor::Ringcache(e) => write!(f, "ringcache/{}", e.flag()),
        }
    }
}

/// Decides whether a ringcache test on `engine` runs. `None` means run it; otherwise the
/// reason was printed as a SKIP line. With `RINGCACHE_REQUIRE_URING=1` a missing
/// io_uring fails the test instead, so CI on a capable kernel cannot skip silently.
pub fn skip_reason(engine: Engine) -> Option<String> {
    let why = engine.unavailable()?;
    if std::env::var_os("RINGCACHE_REQUIRE_URING").is_some_and(|v| v == "1") {
        panic!(
            "engine {} required (RINGCACHE_REQUIRE_URING=1) but {why}",
            engine.flag()
        );
    }
    eprintln!("SKIPPED ({} engine): {why}", engine.flag());
    Some(why)
}

/// One test body, one `#[test]` per ringcache engine: `name::epoll` and `name::uring`.
/// The body receives a [`Flavor`]. With a leading `reference;`, an `#[ignore]`d
/// `name::memcached` runs the same body against memcached, to check the test itself
/// (`cargo test -- --ignored`).
macro_rules! both_engines {
    (reference; $(#[$meta:meta])* fn $name:ident($flavor:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($flavor: $crate::common::Flavor) $body

            #[test]
            fn epoll() {
                body($crate::common::Flavor::Ringcache($crate::common::Engine::Epoll));
            }

            #[test]
            fn uring() {
                if $crate::common::skip_reason($crate::common::Engine::Uring).is_none() {
                    body($crate::common::Flavor::Ringcache($crate::common::Engine::Uring));
                }
            }

            #[test]
            #[ignore = "reference run against memcached (checks the test, not ringcache)"]
            fn memcached() {
                body($crate::common::Flavor::Memcached);
            }
        }
    };
    ($(#[$meta:meta])* fn $name:ident($flavor:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($flavor: $crate::common::Flavor) $body

            #[test]
            fn epoll() {
                body($crate::common::Flavor::Ringcache($crate::common::Engine::Epoll));
            }

            #[test]
            fn uring() {
                if $crate::common::skip_reason($crate::common::Engine::Uring).is_none() {
                    body($crate::common::Flavor::Ringcache($crate::common::Engine::Uring));
                }
            }
        }
    };
}

/// A temp directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "ringcache-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", path.display()));
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Where memcached is, or a panic that says how to get it.
pub fn memcached_path() -> PathBuf {
    find_program("memcached").unwrap_or_else(|| {
        panic!(
            "memcached is not installed (not in PATH nor /usr/bin): the differential and \
             reference tests need Debian's memcached 1.6 -- `apt-get install memcached` \
             (ci/test.sh installs it)"
        )
    })
}

/// Finds an executable in `PATH`, then in `/usr/bin`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A running server process. Dropping it kills (SIGKILL) and reaps the process.
pub struct Server {
    flavor: Flavor,
    child: Child,
    port: u16,
    args: Vec<String>,
    exit: Option<ExitStatus>,
    dir: TempDir,
}

impl Server {
    /// memcached on 127.0.0.1, an ephemeral port, no UDP, `-t 1 -m 64` unless `args`
    /// say otherwise.
    pub fn memcached(args: &[&str]) -> Server {
        Server::start(Flavor::Memcached, args)
    }

    /// ringcache on `engine`, with the same defaults as [`Server::memcached`].
    pub fn ringcache(engine: Engine, args: &[&str]) -> Server {
        Server::start(Flavor::Ringcache(engine), args)
    }

    pub fn start(flavor: Flavor, args: &[&str]) -> Server {
        let (program, mut argv): (PathBuf, Vec<String>) = match flavor {
            Flavor::Memcached => {
                let mut v = vec!["-p".to_string(), "-1".to_string()];
                if sys::is_root() {
                    v.extend(["-u".to_string(), "root".to_string()]);
                }
                (memcached_path(), v)
            }
            Flavor::Ringcache(engine) => (
                PathBuf::from(env!("CARGO_BIN_EXE_ringcache")),
                vec![
                    "-p".to_string(),
                    "0".to_string(),
                    "--io-engine".to_string(),
                    engine.flag().to_string(),
                ],
            ),
        };
        argv.extend(["-l", "127.0.0.1", "-U", "0"].map(String::from));
        let given = |flag: &str| args.contains(&flag);
        if !given("-t") {
            argv.extend(["-t", "1"].map(String::from));
        }
        if !given("-m") {
            argv.extend(["-m", "64"].map(String::from));
        }
        argv.extend(args.iter().map(|a| a.to_string()));

        let dir = TempDir::new(match flavor {
            Flavor::Memcached => "memcached",
            Flavor::Ringcache(_) => "ringcache",
        });
        let port_file = dir.0.join("port");
        let log_path = dir.0.join("log");
        let log = File::create(&log_path).expect("create server log");
        let child = Command::new(&program)
            .args(&argv)
            .env("MEMCACHED_PORT_FILENAME", &port_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {argv:?}: {e}", program.display()));
        let mut server = Server {
            flavor,
            child,
            port: 0,
            args: argv,
            exit: None,
            dir,
        };
        server.port = server.wait_for_port(&port_file);
        server
    }

    fn wait_for_port(&mut self, port_file: &Path) -> u16 {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(text) = fs::read_to_string(port_file) {
                let port = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("TCP INET: "))
                    .find_map(|p| p.trim().parse::<u16>().ok());
                match port {
                    Some(port) if port != 0 => return port,
                    // The file is renamed into place complete: no TCP line means none.
                    _ => panic!(
                        "{} wrote its port file without a `TCP INET: <port>` line: {text:?}\n\
                         args: {:?}\nlog:\n{}",
                        self.flavor,
                        self.args,
                        self.log()
                    ),
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
                panic!(
                    "{} exited ({status}) before listening\nargs: {:?}\nlog:\n{}",
                    self.flavor,
                    self.args,
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not write its port file within {START_TIMEOUT:?}\nargs: {:?}\nlog:\n{}",
                    self.flavor,
                    self.args,
                    self.log()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// What the server printed on stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.0.join("log")).unwrap_or_default()
    }

    /// Resident set size, from `/proc/PID/status` (`VmRSS`).
    pub fn rss_bytes(&self) -> u64 {
        let status =
            fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_else(|e| {
                panic!(
                    "{} (pid {}) has no /proc status: {e}",
                    self.flavor,
                    self.pid()
                )
            });
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no VmRSS in /proc/{}/status", self.pid()));
        kib * 1024
    }

    /// A new connection with TCP_NODELAY and the default timeouts.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) to the server.
    pub fn signal(&self, sig: libc::c_int) {
        sys::kill(self.pid(), sig).unwrap_or_else(|e| panic!("kill {}: {e}", self.pid()));
    }

    /// Waits up to `timeout` for the server to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit {
                return Some(status);
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exit = Some(status);
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Panics (with the log) if the server has died.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            self.exit = Some(status);
            panic!("{} died: {status}\nlog:\n{}", self.flavor, self.log());
        }
    }

    /// Polls `stats` on a fresh connection until `curr_connections` equals `want`
    /// (counting that probe connection itself), within `timeout`.
    pub fn wait_curr_connections(&self, want: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let mut probe = self.connect();
        loop {
            let now = stat_u64(&probe.stats(), "curr_connections");
            if now == want {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{}: curr_connections stayed {now}, expected {want} within {timeout:?}",
                    self.flavor
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

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
    conn.send(b"stats\r\n");
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

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// A deterministic value for item `n`: `len` bytes, printable, different per `n`.
pub fn value_for(n: u64, len: usize) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

/// Sends `sig` to process `pid` (e.g. a tool the test started).
pub fn signal_pid(pid: u32, sig: libc::c_int) -> io::Result<()> {
    sys::kill(pid, sig)
}

/// Raises this process's open-file limit to at least `want` (up to the hard limit).
pub fn raise_fd_limit(want: u64) {
    let have = sys::raise_nofile(want).expect("setrlimit(RLIMIT_NOFILE)");
    assert!(
        have >= want,
        "this test needs {want} open files but the hard limit is {have} (ulimit -Hn)"
    );
}

/// The few raw calls the harness needs that std does not offer.
mod sys {
    use super::*;

    pub fn is_root() -> bool {
        // SAFETY: geteuid has no preconditions and cannot fail.
        unsafe { libc::geteuid() == 0 }
    }

    pub fn kill(pid: u32, sig: libc::c_int) -> io::Result<()> {
        let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
        // SAFETY: kill takes plain integers; pid is our own child, not yet reaped.
        if unsafe { libc::kill(pid, sig) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    pub fn set_linger_zero(stream: &TcpStream) -> io::Result<()> {
        let linger = libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        // SAFETY: the fd is open (borrowed from the stream) and the option value points
        // to a live `linger` whose size we pass.
        let res = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_LINGER,
                (&linger as *const libc::linger).cast(),
                std::mem::size_of::<libc::linger>() as libc::socklen_t,
            )
        };
        if res == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sets the socket's receive buffer size (the kernel doubles it).
    pub fn set_recv_buffer(stream: &TcpStream, bytes: libc::c_int) -> io::Result<()> {
        // SAFETY: the fd is open and the option value points to a live c_int.
        let res = unsafe {
            libc::setsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&bytes as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if res == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Raises RLIMIT_NOFILE's soft limit towards `want`; returns the new soft limit.
    pub fn raise_nofile(want: u64) -> io::Result<u64> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: lim is a valid, writable rlimit.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == -1 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur >= want {
            return Ok(lim.rlim_cur);
        }
        lim.rlim_cur = want.min(lim.rlim_max);
        // SAFETY: lim is a valid rlimit with cur <= max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(lim.rlim_cur)
    }

    /// Creates and closes an io_uring: fails where the kernel or a sandbox refuses it.
    pub fn probe_io_uring() -> io::Result<()> {
        // struct io_uring_params is 120 bytes; zeroed means "no flags".
        let mut params = [0u64; 15];
        // SAFETY: io_uring_setup writes at most sizeof(io_uring_params) = 120 bytes
        // into params, which is 120 bytes long and lives across the call.
        let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 2u32, params.as_mut_ptr()) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd is the ring descriptor just created and owned by nobody else.
        unsafe { libc::close(fd as libc::c_int) };
        Ok(())
    }
}
