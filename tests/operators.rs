//! What an operator (or a script) sees of the server as a process, compared with
//! memcached 1.6.18: half-closed clients (`printf 'stats\r\n' | nc -N`), two servers on one
//! port, signals, the version it reports, and startup flags and errors.

#[macro_use]
mod common;

use common::*;
use std::io::Write;
use std::net::Shutdown;
use std::time::Instant;

/// How many times each half-close case is repeated: the lost reply was a race.
const HALF_CLOSE_ROUNDS: usize = 100;

/// Sends `request` and shuts down the sending side, TCP_CORKed (request and FIN in one
/// segment) or not (request, then FIN); returns everything received and how it ended.
fn send_then_half_close(server: &Server, request: &[u8], cork: bool) -> (Vec<u8>, Option<Closed>) {
    let mut client = server.connect();
    // A small receive buffer makes a large answer fill the server's socket, so the
    // server sees the FIN while output is still waiting.
    client.set_recv_buffer(64 * 1024);
    if cork {
        set_cork(&client.stream, true);
    }
    client.stream.write_all(request).expect("send request");
    client
        .stream
        .shutdown(Shutdown::Write)
        .expect("shutdown(SHUT_WR)");
    client.read_to_close(Instant::now() + IO_TIMEOUT)
}

/// Runs one half-close case `HALF_CLOSE_ROUNDS` times: every reply complete, then a FIN.
fn check_half_close(server: &Server, request: &[u8], want: &[u8], cork: bool) {
    for round in 0..HALF_CLOSE_ROUNDS {
        let (got, how) = send_then_half_close(server, request, cork);
        assert!(
            got == want && how == Some(Closed::Eof),
            "{}: round {round} (cork {cork}): got {} bytes {} closed {how:?}, want {} bytes",
            server.flavor(),
            got.len(),
            show(&got),
            want.len()
        );
    }
}

fn get_reply(key: &str, value: &[u8]) -> Vec<u8> {
    let mut r = format!("VALUE {key} 0 {}\r\n", value.len()).into_bytes();
    r.extend_from_slice(value);
    r.extend_from_slice(b"\r\nEND\r\n");
    r
}

both_engines! { reference;
    /// Request and FIN in one segment (TCP_CORK, then shutdown(SHUT_WR)): the uring
    /// engine took the FIN for a vanished peer and dropped the answer, every time.
    fn half_close_request_and_fin_in_one_segment(flavor) {
        let server = Server::start(flavor, &[]);
        server.connect().set("hc", b"hello");
        check_half_close(&server, b"get hc\r\n", &get_reply("hc", b"hello"), true);
        check_half_close(&server, b"set hc2 0 0 2\r\nok\r\n", b"STORED\r\n", true);
    }
}

both_engines! { reference;
    /// Request, then FIN in a segment of its own (plain `nc -N`).
    fn half_close_request_then_fin(flavor) {
        let server = Server::start(flavor, &[]);
        server.connect().set("hc", b"hello");
        check_half_close(&server, b"get hc\r\n", &get_reply("hc", b"hello"), false);
    }
}

both_engines! { reference;
    /// A pipelined batch then FIN: every request of the batch is answered.
    fn half_close_after_pipelined_batch(flavor) {
        let server = Server::start(flavor, &[]);
        server.connect().set("hc", b"hello");
        let one = get_reply("hc", b"hello");
        let batch = b"get hc\r\n".repeat(64);
        let want = one.repeat(64);
        check_half_close(&server, &batch, &want, true);
        check_half_close(&server, &batch, &want, false);
    }
}

both_engines! { reference;
    /// A large value's get then FIN: the answer takes many sends (or fills the socket
    /// buffer), all of it arrives before the close.
    fn half_close_large_value_get(flavor) {
        let server = Server::start(flavor, &[]);
        let value = value_for(7, 512 * 1024);
        server.connect().set("big", &value);
        let want = get_reply("big", &value);
        check_half_close(&server, b"get big\r\n", &want, true);
        check_half_close(&server, b"get big\r\n", &want, false);
    }
}

both_engines! { reference;
    /// `version`, binary VERSION and `stats`' `version` answer a plain memcached version
    /// number (clients parse `/(\d+)\.(\d+)\.(\d+)$/`); ringcache's own version is the
    /// last-group `ringcache_version` stat. They answered `1.6.18-ringcache-0.1.0`.
    fn version_is_a_plain_memcached_number(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        conn.roundtrip(b"version\r\n", b"VERSION 1.6.18\r\n");
        let stats = conn.stats();
        assert_eq!(stats["version"], "1.6.18", "{flavor}");
        if !flavor.is_memcached() {
            assert_eq!(stats["ringcache_version"], env!("CARGO_PKG_VERSION"));
        }
        // Binary VERSION (a connection's first byte picks its dialect): a 24-byte
        // request header, opcode 0x0b.
        let mut conn = server.connect();
        let mut request = [0u8; 24];
        request[0] = 0x80;
        request[1] = 0x0b;
        conn.send(&request);
        let header = conn.read_exact_bytes(24);
        assert_eq!((header[0], header[1], header[7]), (0x81, 0x0b, 0), "{flavor}");
        let body_len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        assert_eq!(conn.read_exact_bytes(body_len as usize), b"1.6.18", "{flavor}");
    }
}

/// `-V` names ringcache's own version and the memcached protocol level it speaks.
#[test]
fn dash_v_prints_ringcache_version() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .arg("-V")
        .output()
        .expect("run ringcache -V");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(env!("CARGO_PKG_VERSION")) && text.contains("1.6.18"),
        "{text}"
    );
}
