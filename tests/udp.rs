//! UDP (`-U`, issue 17): memcached's 8-byte frame header, one request per datagram,
//! answers in numbered datagrams of at most 1400 bytes. Raw datagrams, on both engines.
//!
//! - `same_datagrams_as_memcached`: Debian's memcached 1.6.18 and ringcache are sent
//!   the same datagrams; single- and multi-datagram answers must match byte for byte
//!   (headers included), and a request split over two datagrams, a bad header, a
//!   `quit`, a `noreply` must get the same answer or the same silence. Where memcached
//!   1.6 starts a new sequence per answer object (two requests in one datagram, the
//!   hits of a multi-key get) and ringcache numbers the whole answer as one sequence
//!   (README, "Differences from memcached"), the payloads must still be the same bytes
//!   in the same order.
//! - `hostile_datagrams`: empty, 7 and 8 bytes, a 65,507-byte datagram, a header
//!   claiming 65,535 parts, 10,000 garbage datagrams; the server still answers TCP and
//!   UDP clients afterwards and its memory stays bounded.
//! - `stats_over_udp`: `stats` spans two datagrams; `stats settings` names the port.
//! - `a_flood_past_the_udp_buffer_ring`: on io_uring the UDP receive mode `stats`
//!   names is multishot recvmsg (kernel 6.1 and up), and bursts of datagrams run its
//!   buffer ring dry until ENOBUFS is counted (only that path counts it); TCP is
//!   answered between the bursts and a later UDP client afterwards (the receive was
//!   re-armed). io_uring's poll fallback is tested in `src/io/uring/tests/udp.rs`.
//!
//! Silence is asserted without sleeping: after the datagram that must get no answer,
//! the same socket sends a `version` under another request id, and the first datagram
//! to come back must be that answer (loopback keeps one socket pair's order).

#[macro_use]
mod common;

use common::{show, stat_u64, Flavor, Server, IO_TIMEOUT};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// A UDP port below 32768 that nothing holds now (a socket bound to it and closed).
fn free_udp_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let start = std::process::id() % 6_000 * 2;
    for _ in 0..12_000 {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = (20_000 + (start + n * 7) % 12_000) as u16;
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free UDP port below 32768");
}

/// A server with UDP on a free port, and that port.
fn start(flavor: Flavor, extra: &[&str]) -> (Server, SocketAddr) {
    let port = free_udp_port().to_string();
    let mut args = vec!["-U", port.as_str()];
    args.extend_from_slice(extra);
    let server = Server::start(flavor, &args);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    (server, addr)
}

/// One datagram's header fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    id: u16,
    seq: u16,
    total: u16,
    reserved: u16,
}

fn header_of(d: &[u8]) -> Header {
    assert!(
        d.len() >= 8,
        "a datagram shorter than its header: {}",
        show(d)
    );
    let u = |at: usize| u16::from_be_bytes([d[at], d[at + 1]]);
    Header {
        id: u(0),
        seq: u(2),
        total: u(4),
        reserved: u(6),
    }
}

fn frame(id: u16, seq: u16, total: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    for v in [id, seq, total, 0] {
        d.extend_from_slice(&v.to_be_bytes());
    }
    d.extend_from_slice(payload);
    d
}

/// A UDP client socket "connected" to the server.
struct Udp {
    socket: UdpSocket,
    next_id: u16,
}

impl Udp {
    fn new(server: SocketAddr) -> Udp {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a client UDP socket");
        socket.connect(server).expect("connect the UDP socket");
        socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Udp {
            socket,
            next_id: 1000,
        }
    }

    fn send_raw(&self, datagram: &[u8]) {
        self.socket.send(datagram).expect("send a datagram");
    }

    fn recv(&self) -> Vec<u8> {
        self.try_recv()
            .unwrap_or_else(|e| panic!("no datagram within {IO_TIMEOUT:?}: {e}"))
    }

    /// The next datagram, or the error that ended the wait (a timeout included).
    fn try_recv(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0; 70_000];
        loop {
            match self.socket.recv(&mut buf) {
                Ok(n) => {
                    buf.truncate(n);
                    return Ok(buf);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// A one-datagram answer to `payload`, sending it again (as a UDP client does)
    /// while no answer comes within a second: a server flooded with datagrams drops
    /// some, the request maybe.
    fn request_retrying(&mut self, payload: &[u8]) -> Vec<u8> {
        self.socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let deadline = Instant::now() + IO_TIMEOUT;
        self.next_id = self.next_id.wrapping_add(1);
        loop {
            self.send_raw(&frame(self.next_id, 0, 1, payload));
            loop {
                match self.try_recv() {
                    // An answer to a request sent before is skipped.
                    Ok(d) if header_of(&d).id != self.next_id => continue,
                    Ok(d) => {
                        self.socket.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
                        return d;
                    }
                    Err(e) => {
                        assert!(
                            Instant::now() < deadline,
                            "no answer within {IO_TIMEOUT:?}: {e}"
                        );
                        break;
                    }
                }
            }
        }
    }

    /// Receives the datagrams of request `id` until `until` says the answer is whole.
    fn recv_answer(&self, id: u16, until: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while !until(&got) {
            let d = self.recv();
            assert_eq!(
                header_of(&d).id,
                id,
                "a datagram of another request: {}",
                show(&d)
            );
            got.push(d);
        }
        got
    }

    /// Sends `payload` as request `id` and reads as many datagrams as the first one's
    /// total says (ringcache's answers, and memcached's single-object ones).
    fn request_id(&self, id: u16, payload: &[u8]) -> Vec<Vec<u8>> {
        self.send_raw(&frame(id, 0, 1, payload));
        self.recv_answer(id, |got| {
            got.first()
                .is_some_and(|d| got.len() >= usize::from(header_of(d).total.max(1)))
        })
    }

    fn request(&mut self, payload: &[u8]) -> Vec<Vec<u8>> {
        self.next_id = self.next_id.wrapping_add(1);
        self.request_id(self.next_id, payload)
    }

    /// Sends `payload` and reads datagrams until their payloads end with `end`
    /// (answers memcached splits into several sequences).
    fn request_until(&mut self, payload: &[u8], end: &[u8]) -> Vec<Vec<u8>> {
        self.next_id = self.next_id.wrapping_add(1);
        self.send_raw(&frame(self.next_id, 0, 1, payload));
        self.recv_answer(self.next_id, |got| payloads(got).ends_with(end))
    }

    /// Sends `datagram`, which must get no answer: the next datagram back is the
    /// answer to a `version` sent after it.
    fn expect_silence(&mut self, datagram: &[u8], what: &str) {
        self.send_raw(datagram);
        self.next_id = self.next_id.wrapping_add(1);
        self.send_raw(&frame(self.next_id, 0, 1, b"version\r\n"));
        let d = self.recv();
        let h = header_of(&d);
        assert!(
            h.id == self.next_id && d[8..].starts_with(b"VERSION "),
            "{what}: expected no answer, got {h:?} {}",
            show(&d[8..])
        );
    }
}

/// The payloads of `datagrams`, in order.
fn payloads(datagrams: &[Vec<u8>]) -> Vec<u8> {
    datagrams.iter().flat_map(|d| d[8..].to_vec()).collect()
}

/// Checks that `datagrams` are one well-formed sequence of request `id`: numbered from
/// 0, each carrying the count, none over 1400 bytes.
fn assert_one_sequence(datagrams: &[Vec<u8>], id: u16, what: &str) {
    let total = datagrams.len();
    for (i, d) in datagrams.iter().enumerate() {
        let h = header_of(d);
        let want = Header {
            id,
            seq: i as u16,
            total: total as u16,
            reserved: 0,
        };
        assert_eq!(h, want, "{what}: datagram {i}");
        assert!(d.len() <= 1400, "{what}: datagram {i} is {} bytes", d.len());
        if i + 1 < total {
            assert_eq!(d.len(), 1400, "{what}: datagram {i} is not full");
        }
    }
}

/// What a session of datagrams got back, case by case.
struct Transcript {
    exact: Vec<(&'static str, Vec<Vec<u8>>)>,
    payload_only: Vec<(&'static str, Vec<u8>)>,
}

/// The datagrams every server is sent, in order.
fn session(addr: SocketAddr) -> Transcript {
    let mut u = Udp::new(addr);
    let mut exact = Vec::new();
    let mut payload_only = Vec::new();
    let value_5000 = vec![b'v'; 5000];
    let mut set_5000 = b"set big 7 0 5000\r\n".to_vec();
    set_5000.extend_from_slice(&value_5000);
    set_5000.extend_from_slice(b"\r\n");
    let value_60000: Vec<u8> = (0..60_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut set_60000 = b"set huge 1 0 60000\r\n".to_vec();
    set_60000.extend_from_slice(&value_60000);
    set_60000.extend_from_slice(b"\r\n");

    exact.push(("version", u.request(b"version\r\n")));
    exact.push(("set", u.request(b"set k 5 0 3\r\nabc\r\n")));
    exact.push(("get hit", u.request(b"get k\r\n")));
    exact.push(("get miss", u.request(b"get nothere\r\n")));
    exact.push(("set 5000 bytes", u.request(&set_5000)));
    exact.push(("get of 5000 bytes: 4 datagrams", u.request(b"get big\r\n")));
    exact.push(("set 60000 bytes in one datagram", u.request(&set_60000)));
    exact.push((
        "get of 60000 bytes: 44 datagrams",
        u.request(b"get huge\r\n"),
    ));
    exact.push(("meta get", u.request(b"mg k v f k s\r\n")));
    exact.push(("meta noop", u.request(b"mn\r\n")));
    exact.push(("incr on text", u.request(b"incr k 1\r\n")));
    exact.push(("unknown command", u.request(b"bogus\r\n")));
    exact.push(("delete", u.request(b"delete k\r\n")));
    // Binary in a datagram after text ones: each datagram picks its dialect.
    let noop = [
        0x80, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    exact.push(("binary noop", u.request(&noop)));
    let mut bin_get = vec![0x80, 0x00, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 9];
    bin_get.extend_from_slice(&[0; 8]);
    bin_get.extend_from_slice(b"big");
    let mut answer = u.recv_after_send(&frame(4242, 0, 1, &bin_get), 4242);
    // The CAS (bytes 16..24 of the binary header) differs by server: zeroed.
    answer[0][8 + 16..8 + 24].fill(0);
    exact.push(("binary get of 5000 bytes (CAS zeroed)", answer));
    // A request split over two datagrams: the first half waits for nothing, the second
    // is a request of its own.
    u.expect_silence(&frame(77, 0, 1, b"ver"), "first half of a split request");
    exact.push(("second half of a split request", u.request(b"sion\r\n")));
    // A header claiming two parts, or none: dropped.
    u.expect_silence(&frame(78, 0, 2, b"version\r\n"), "total 2");
    u.expect_silence(&frame(79, 0, 0, b"version\r\n"), "total 0");
    u.expect_silence(&frame(80, 1, 2, b"version\r\n"), "second part of two");
    u.expect_silence(&frame(81, 0, 1, b"set q 0 0 1 noreply\r\nq\r\n"), "noreply");
    u.expect_silence(&frame(82, 0, 1, b""), "header only");
    // The sequence number and the reserved field are ignored.
    let mut odd = frame(83, 5, 1, b"get q\r\n");
    odd[6] = 0xff;
    exact.push(("seq 5, reserved 0xff00", u.recv_after_send(&odd, 83)));
    // quit: a bare header, total 0; the socket goes on serving.
    u.send_raw(&frame(84, 0, 1, b"quit\r\n"));
    exact.push(("quit", vec![u.recv()]));
    exact.push(("after quit", u.request(b"get q\r\n")));

    // Answers memcached 1.6 splits into several sequences.
    for i in 0..60 {
        u.request(format!("set key{i:02} 0 0 30\r\n{}\r\n", "x".repeat(30)).as_bytes());
    }
    let keys: Vec<String> = (0..60).map(|i| format!("key{i:02}")).collect();
    let get_many = format!("get {} nokey\r\n", keys.join(" "));
    payload_only.push((
        "get of 60 keys",
        payloads(&u.request_until(get_many.as_bytes(), b"END\r\n")),
    ));
    payload_only.push((
        "two requests in one datagram",
        payloads(&u.request_until(b"version\r\nversion\r\n", b"8\r\nVERSION 1.6.18\r\n")),
    ));
    Transcript {
        exact,
        payload_only,
    }
}

impl Udp {
    /// Sends a whole datagram as request `id` and reads the answer's datagrams.
    fn recv_after_send(&self, datagram: &[u8], id: u16) -> Vec<Vec<u8>> {
        self.send_raw(datagram);
        self.recv_answer(id, |got| {
            got.first()
                .is_some_and(|d| got.len() >= usize::from(header_of(d).total.max(1)))
        })
    }
}

both_engines! {
    /// The same datagrams to memcached 1.6.18 and to ringcache.
    fn same_datagrams_as_memcached(flavor) {
        let (_mc, mc_addr) = start(Flavor::Memcached, &[]);
        let (_rc, rc_addr) = start(flavor, &[]);
        let want = session(mc_addr);
        let got = session(rc_addr);
        for ((case, w), (_, g)) in want.exact.iter().zip(&got.exact) {
            let shown = |ds: &[Vec<u8>]| {
                ds.iter()
                    .take(3)
                    .map(|d| format!("{:?} {}", header_of(d), show(&d[8..d.len().min(80)])))
                    .collect::<Vec<_>>()
            };
            assert!(w == g, "{flavor}: {case}:\n memcached {:?}\n ringcache {:?}", shown(w), shown(g));
        }
        assert_eq!(want.exact.len(), got.exact.len());
        for ((case, w), (_, g)) in want.payload_only.iter().zip(&got.payload_only) {
            assert!(w == g, "{flavor}: {case}:\n memcached {}\n ringcache {}", show(w), show(g));
        }
        // ringcache numbers the whole answer to one datagram as one sequence.
        let mut u = Udp::new(rc_addr);
        let keys: Vec<String> = (0..60).map(|i| format!("key{i:02}")).collect();
        let answer = u.request(format!("get {}\r\n", keys.join(" ")).as_bytes());
        assert_one_sequence(&answer, u.next_id, "get of 60 keys");
        assert!(answer.len() > 1, "{flavor}: 60 hits fit one datagram?");
    }
}

/// A TCP client that stored `k` before the attack still reads it back, and UDP still
/// answers.
fn assert_serves(server: &Server, udp_addr: SocketAddr, flavor: Flavor, when: &str) {
    let mut c = server.connect();
    assert_eq!(
        c.get("before").as_deref(),
        Some(&b"kept"[..]),
        "{flavor}: {when}: TCP get"
    );
    let mut u = Udp::new(udp_addr);
    let answer = u.request_retrying(b"get before\r\n");
    assert_eq!(
        &answer[8..],
        b"VALUE before 0 4\r\nkept\r\nEND\r\n",
        "{flavor}: {when}: UDP get"
    );
}

both_engines! {
    /// Datagrams that try to break the UDP side: nothing answers them but what
    /// memcached answers, and TCP and UDP clients are served afterwards.
    fn hostile_datagrams(flavor) {
        let (mut server, addr) = start(flavor, &[]);
        server.connect().set("before", b"kept");
        let rss_before = server.rss_bytes();
        let mut u = Udp::new(addr);
        u.expect_silence(b"", "an empty datagram");
        u.expect_silence(&[0, 1, 0, 0, 0, 1, 0], "7 bytes");
        u.expect_silence(&[0, 1, 0, 0, 0, 1, 0, 0], "8 bytes (a header alone)");
        u.expect_silence(&frame(9, 0, 65_535, b"get before\r\n"), "a header claiming 65,535 parts");
        u.expect_silence(&frame(9, 65_534, 65_535, b"get before\r\n"), "part 65,535 of 65,535");
        // The largest IPv4 datagram: a 65,499-byte line without a newline (dropped
        // whole at the datagram's end), then one that is a real set.
        let mut line = frame(10, 0, 1, b"get ");
        line.resize(65_507, b'k');
        let mut c = server.connect();
        u.send_raw(&line);
        c.roundtrip(b"version\r\n", b"VERSION 1.6.18\r\n");
        let mut big = frame(11, 0, 1, b"set big 0 0 65400\r\n");
        big.resize(big.len() + 65_400, b'b');
        big.extend_from_slice(b"\r\n");
        assert!(big.len() <= 65_507);
        u.send_raw(&big);
        let stored = u.recv_answer(11, |got| !got.is_empty());
        assert_eq!(&stored[0][8..], b"STORED\r\n", "{flavor}: the largest datagram");
        let value = u.request(b"get big\r\n");
        assert_one_sequence(&value, u.next_id, "get of 65,400 bytes");
        assert_eq!(payloads(&value).len(), "VALUE big 0 65400\r\n".len() + 65_400 + 7);
        assert_serves(&server, addr, flavor, "after the edge cases");

        // 10,000 garbage datagrams from a socket that never reads its answers.
        let garbage = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut buf = Vec::new();
        for i in 0..10_000u32 {
            buf.clear();
            let len = (next() % 1500) as usize;
            buf.extend((0..len).map(|_| next() as u8));
            match i % 4 {
                // A valid header before random bytes, text-looking or binary.
                0 if buf.len() >= 8 => buf[..8].copy_from_slice(&frame(i as u16, 0, 1, b"")),
                1 if buf.len() >= 9 => {
                    buf[..8].copy_from_slice(&frame(i as u16, 0, 1, b""));
                    buf[8] = 0x80;
                }
                2 if buf.len() >= 12 => {
                    buf[..12].copy_from_slice(&frame(i as u16, 0, 1, b"get "));
                }
                _ => {}
            }
            // A full socket buffer is the kernel dropping garbage: fine.
            let _ = garbage.send_to(&buf, addr);
        }
        assert_serves(&server, addr, flavor, "after 10,000 garbage datagrams");
        server.assert_alive();
        let grown = server.rss_bytes().saturating_sub(rss_before);
        assert!(grown < 64 << 20, "{flavor}: RSS grew by {grown} bytes");
    }
}

both_engines! {
    reference;
    /// `stats` spans two datagrams of one sequence; `stats settings` names the port.
    fn stats_over_udp(flavor) {
        let (server, addr) = start(flavor, &["-t", "2"]);
        let mut u = Udp::new(addr);
        let answer = u.request(b"stats\r\n");
        assert!(answer.len() >= 2, "{flavor}: stats in {} datagram(s)", answer.len());
        assert_one_sequence(&answer, u.next_id, "stats");
        assert!(payloads(&answer).ends_with(b"END\r\n"));
        let mut c = server.connect();
        let settings = common::stats_group(&mut c, "settings");
        assert_eq!(stat_u64(&settings, "udpport"), u64::from(addr.port()), "{flavor}");
        assert_eq!(stat_u64(&settings, "num_threads_per_udp"), 2, "{flavor}");
        // Each worker has a socket on the port: many clients are all answered.
        let clients: Vec<Udp> = (0..8).map(|_| Udp::new(addr)).collect();
        for (i, client) in clients.iter().enumerate() {
            let id = 500 + i as u16;
            let answer = client.request_id(id, b"version\r\n");
            assert!(answer[0][8..].starts_with(b"VERSION "), "{flavor}: client {i}");
        }
    }
}

/// `-U` with `-Y`: refused as memcached refuses it.
#[test]
fn udp_with_ascii_auth_is_refused() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .args([
            "-p",
            "0",
            "-l",
            "127.0.0.1",
            "-U",
            "11311",
            "-Y",
            "/dev/null",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run ringcache");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("Cannot use UDP with ascii authentication enabled (-U 0 to disable)"),
        "{stderr}"
    );
}

/// A child process killed and reaped on drop (a failing test leaves none behind).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

both_engines! {
    /// UDP on a wildcard address: a WARN line about reflection, and it serves.
    fn udp_on_a_wildcard_address_warns(flavor) {
        let Flavor::Ringcache(engine) = flavor else { unreachable!() };
        let port = free_udp_port();
        let dir = common::TempDir::new("udp-wildcard");
        let log_path = dir.join("log");
        let log = std::fs::File::create(&log_path).unwrap();
        let _child = Killed(
            std::process::Command::new(env!("CARGO_BIN_EXE_ringcache"))
                .args(["-p", "0", "-t", "1", "--io-engine", engine.flag(), "-l", "0.0.0.0"])
                .args(["-U", &port.to_string()])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .expect("run ringcache"),
        );
        // The warning is logged once the sockets are bound.
        let want = format!("UDP on 0.0.0.0:{port}");
        let deadline = Instant::now() + common::START_TIMEOUT;
        let text = loop {
            let text = std::fs::read_to_string(&log_path).unwrap();
            if text.lines().any(|l| l.contains("WARN") && l.contains(&want)) {
                break text;
            }
            assert!(Instant::now() < deadline, "{flavor}: no UDP warning:\n{text}");
            std::thread::sleep(common::POLL_INTERVAL);
        };
        let mut u = Udp::new(format!("127.0.0.1:{port}").parse().unwrap());
        let answer = u.request(b"version\r\n");
        assert!(answer[0][8..].starts_with(b"VERSION "), "{flavor}: {text}");
    }
}

/// The UDP receive mode io_uring runs, as `stats` names it: `udp_multishot_recvmsg`
/// (multishot recvmsg over a buffer ring) or `udp_poll` (the poll + `recvmmsg`
/// fallback); `None` on epoll.
fn uring_udp_mode(server: &Server) -> Option<String> {
    let stats = server.connect().stats();
    let words = stats.get("ringcache_uring_features")?;
    let mode = words.split(',').find(|w| w.starts_with("udp_"));
    Some(
        mode.unwrap_or_else(|| panic!("no UDP mode in {words}"))
            .to_string(),
    )
}

/// The kernel's (major, minor) release.
fn kernel_release() -> (u32, u32) {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    (v.next().unwrap_or(0), v.next().unwrap_or(0))
}

both_engines! {
    /// More datagrams than the io_uring worker's UDP buffer ring holds (64), in bursts
    /// from a socket that never reads its answers, until the multishot recvmsg has
    /// ended with ENOBUFS (`ringcache_udp_recv_enobufs`, which only that path counts:
    /// the proof it is the one in use); a TCP client is answered between the bursts,
    /// and afterwards a new UDP client is answered (the receive was re-armed). On
    /// epoll, and on io_uring's poll fallback, the same flood must be survived alike.
    fn a_flood_past_the_udp_buffer_ring(flavor) {
        let (mut server, addr) = start(flavor, &["-t", "1"]);
        server.connect().set("before", b"kept");
        let mode = uring_udp_mode(&server);
        if kernel_release() >= (6, 1) && mode.is_some() {
            assert_eq!(mode.as_deref(), Some("udp_multishot_recvmsg"), "{flavor}");
        }
        let multishot = mode.as_deref() == Some("udp_multishot_recvmsg");
        if mode.is_some() && !multishot {
            eprintln!("{flavor}: multishot recvmsg not in use ({mode:?}): ENOBUFS not asserted");
        }
        let mut tcp = server.connect();
        let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
        let request = frame(1, 0, 1, b"get before\r\n");
        let deadline = Instant::now() + IO_TIMEOUT;
        let mut bursts = 0;
        loop {
            for _ in 0..2_000 {
                // A full socket buffer is the kernel dropping the flood: fine.
                let _ = flood.send_to(&request, addr);
            }
            bursts += 1;
            tcp.roundtrip(b"version\r\n", b"VERSION 1.6.18\r\n");
            let stats = tcp.stats();
            let enobufs = match mode {
                Some(_) => stat_u64(&stats, "ringcache_udp_recv_enobufs"),
                None => 0,
            };
            if !multishot {
                assert_eq!(enobufs, 0, "{flavor}: ENOBUFS without multishot recvmsg");
                if bursts == 10 {
                    break;
                }
            } else if enobufs > 0 && bursts >= 10 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{flavor}: {bursts} bursts of 2,000 datagrams and no ENOBUFS"
            );
        }
        assert_serves(&server, addr, flavor, "after the flood");
        server.assert_alive();
    }
}
