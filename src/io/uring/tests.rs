//! The proactor over real sockets, driven by the line service of `harness`.
//!
//! Every test waits on sockets or on the harness's counters with a deadline, never on
//! a sleep, and ends by shutting the worker down (which must return `Ok` with every
//! connection dropped). Each scenario runs with the probed features and, where
//! receiving or accepting differs, with the fallbacks an older kernel gets
//! (single-shot accept, single-shot recv, plain ring).

mod bench;
mod harness;
mod udp;

use super::worker::{BUF_BYTES, BUF_COUNT};
use super::{TaskRun, UringOptions};
use crate::io::REJECT_REPLY;
use harness::{all_modes, assert_eof, features, features_with, read_line, Opts, Server, DEADLINE};
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown as Close, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

#[test]
fn probe_reports_features() {
    let Some(f) = features("probe_reports_features") else {
        return;
    };
    eprintln!("io_uring features: {f}");
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut v = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|n| n.parse::<u32>().unwrap_or(0));
    let (major, minor) = (v.next().unwrap_or(0), v.next().unwrap_or(0));
    if (major, minor) >= (6, 1) {
        assert_eq!(f.taskrun, TaskRun::Defer, "{f}");
        assert!(f.multishot_accept && f.multishot_recv && f.buf_ring, "{f}");
        assert!(f.multishot_recvmsg, "{f}");
        assert_eq!(
            f.to_string(),
            "defer_taskrun, multishot accept, multishot recv, buf ring, udp multishot recvmsg"
        );
    }
    // Asked-for features are used only where the kernel has them; off when not asked.
    let off = UringOptions {
        bundle: false,
        send_zc_min_bytes: 0,
    };
    let f = features_with("probe_reports_features", off).unwrap();
    assert!(!f.recv_bundle && f.send_zc_min_bytes == 0, "{f}");
    // The capped multishot bundle recv was seen working on 6.18; the first kernel that
    // takes a length on a multishot recv is not pinned down here.
    if (major, minor) >= (6, 18) {
        let bundle = UringOptions {
            bundle: true,
            ..off
        };
        let f = features_with("probe_reports_features", bundle).unwrap();
        assert!(f.recv_bundle_in_use(), "{f}");
        assert!(f.to_string().contains(", recv bundle,"), "{f}");
    }
    if (major, minor) >= (6, 1) {
        let zc = UringOptions {
            send_zc_min_bytes: 4096,
            ..off
        };
        let f = features_with("probe_reports_features", zc).unwrap();
        assert_eq!(f.send_zc_min_bytes, 4096, "{f}");
        assert!(f.to_string().contains(", send zc,"), "{f}");
    }
}

/// A burst far larger than one provided buffer, written before the server reads any
/// of it: with bundles one completion carries many buffers, which must reach the
/// connection whole and in ring order.
#[test]
fn a_burst_larger_than_many_buffers_arrives_in_order() {
    const LINES: usize = 20_000;
    for f in all_modes("a_burst_larger_than_many_buffers_arrives_in_order") {
        let server = Server::start(Opts::new(&f));
        let conn = server.connect();
        let mut burst = Vec::new();
        for i in 0..LINES {
            burst.extend_from_slice(
                format!("burst line {i:06} {}\n", "z".repeat(i % 97)).as_bytes(),
            );
        }
        assert!(burst.len() > 64 * BUF_BYTES);
        let mut writer = conn.try_clone().unwrap();
        let sender = thread::spawn(move || writer.write_all(&burst).unwrap());
        let mut reader = BufReader::with_capacity(1 << 16, conn);
        for i in 0..LINES {
            let want = format!("OK burst line {i:06} {}\r\n", "z".repeat(i % 97));
            assert_eq!(read_line(&mut reader), want, "{f}");
        }
        sender.join().unwrap();
        drop(reader);
        server.wait_open(0);
        server.stop();
    }
}

/// Large answers, each of them sent zero-copy where that mode is on, to many
/// connections, some of which close while their answer is still being sent.
#[test]
fn large_answers_reach_readers_and_closers() {
    const BIG: usize = 256 * 1024;
    for f in all_modes("large_answers_reach_readers_and_closers") {
        let mut opts = Opts::new(&f);
        opts.big_bytes = BIG;
        let server = Server::start(opts);
        for round in 0..20 {
            let readers: Vec<TcpStream> = (0..4).map(|_| server.connect()).collect();
            let closers: Vec<TcpStream> = (0..4).map(|_| server.connect()).collect();
            for c in readers.iter().chain(&closers) {
                (&*c).write_all(b"big 262144\nbig 262144\n").unwrap();
            }
            drop(closers);
            let mut want = b"BIG 262144\r\n".to_vec();
            want.resize(want.len() + BIG, b'x');
            want.extend_from_slice(b"\r\n");
            let want = want.repeat(2);
            for c in readers {
                let mut got = vec![0u8; want.len()];
                (&c).read_exact(&mut got).unwrap();
                assert!(got == want, "{f}: round {round}");
            }
        }
        server.wait_open(0);
        server.stop();
    }
}

#[test]
fn serves_many_connections() {
    for f in all_modes("serves_many_connections") {
        let server = Server::start(Opts::new(&f));
        let mut conns: Vec<BufReader<TcpStream>> =
            (0..200).map(|_| BufReader::new(server.connect())).collect();
        for round in 0..3 {
            for (i, c) in conns.iter_mut().enumerate() {
                c.get_mut()
                    .write_all(format!("c{i} r{round}\n").as_bytes())
                    .unwrap();
            }
            for (i, c) in conns.iter_mut().enumerate() {
                assert_eq!(read_line(c), format!("OK c{i} r{round}\r\n"), "{f}");
            }
        }
        server.wait_open(200);
        drop(conns);
        server.wait_open(0);
        server.stop();
    }
}

#[test]
fn answers_100k_pipelined_lines_in_order() {
    const LINES: usize = 100_000;
    for f in all_modes("answers_100k_pipelined_lines_in_order") {
        let server = Server::start(Opts::new(&f));
        let conn = server.connect();
        let mut writer = conn.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let mut batch = String::new();
            for i in 0..LINES {
                batch.push_str(&format!("line {i}\n"));
                if batch.len() > 60_000 {
                    writer.write_all(batch.as_bytes()).unwrap();
                    batch.clear();
                }
            }
            writer.write_all(batch.as_bytes()).unwrap();
        });
        let mut reader = BufReader::new(conn);
        for i in 0..LINES {
            assert_eq!(read_line(&mut reader), format!("OK line {i}\r\n"), "{f}");
        }
        sender.join().unwrap();
        drop(reader);
        server.wait_open(0);
        server.stop();
    }
}

#[test]
fn reassembles_a_request_sent_one_byte_per_packet() {
    for f in all_modes("reassembles_a_request_sent_one_byte_per_packet") {
        let server = Server::start(Opts::new(&f));
        let mut conn = server.connect();
        conn.set_nodelay(true).unwrap();
        for b in b"split into single bytes\nand another\n" {
            conn.write_all(&[*b]).unwrap();
        }
        let mut reader = BufReader::new(conn);
        assert_eq!(read_line(&mut reader), "OK split into single bytes\r\n");
        assert_eq!(read_line(&mut reader), "OK and another\r\n");
        drop(reader);
        server.wait_open(0);
        server.stop();
    }
}

#[test]
fn quit_sends_pending_answers_then_closes() {
    let Some(f) = features("quit_sends_pending_answers_then_closes") else {
        return;
    };
    let mut opts = Opts::new(&f);
    opts.big_bytes = 1 << 20;
    let server = Server::start(opts);
    let mut conn = server.connect();
    conn.write_all(b"hello\nbig 1048576\nquit\nnot executed\n")
        .unwrap();
    let mut reader = BufReader::new(conn);
    assert_eq!(read_line(&mut reader), "OK hello\r\n");
    assert_eq!(read_line(&mut reader), "BIG 1048576\r\n");
    let mut value = vec![0u8; (1 << 20) + 2];
    reader.read_exact(&mut value).unwrap();
    assert!(value[..1 << 20].iter().all(|&b| b == b'x'));
    assert_eq!(&value[1 << 20..], b"\r\n");
    assert_eof(&mut reader);
    server.wait_open(0);
    server.stop();
}

#[test]
fn serves_a_unix_socket() {
    let Some(f) = features("serves_a_unix_socket") else {
        return;
    };
    let server = Server::start(Opts::new(&f));
    let conn = std::os::unix::net::UnixStream::connect(&server.unix).unwrap();
    conn.set_read_timeout(Some(DEADLINE)).unwrap();
    (&conn).write_all(b"over unix\n").unwrap();
    assert_eq!(read_line(&mut BufReader::new(&conn)), "OK over unix\r\n");
    drop(conn);
    server.wait_open(0);
    server.stop();
}

/// A client that sends a lot and reads nothing: the server stops reading from it,
/// keeps a bounded amount of its input, and serves another client meanwhile.
#[test]
fn backpressure_bounds_a_client_that_does_not_read() {
    const LINES: usize = 20_000;
    const LINE_BYTES: usize = 1000;
    /// What a connection may keep: what arrives in the batch of completions during
    /// which its output went over the mark — never more than the whole buffer ring
    /// (single-shot mode: one receive buffer).
    const KEPT_BOUND: usize = BUF_COUNT as usize * BUF_BYTES;
    for f in all_modes("backpressure_bounds_a_client_that_does_not_read") {
        let server = Server::start(Opts::new(&f));
        let conn = server.connect();
        let mut writer = conn.try_clone().unwrap();
        let sender = thread::spawn(move || {
            let mut batch = Vec::new();
            for i in 0..LINES {
                let head = format!("{i:08} ");
                batch.extend_from_slice(head.as_bytes());
                batch.resize(batch.len() + LINE_BYTES - head.len() - 1, b'y');
                batch.push(b'\n');
                if batch.len() >= 64 * 1024 {
                    writer.write_all(&batch).unwrap();
                    batch.clear();
                }
            }
            writer.write_all(&batch).unwrap();
        });
        server.counters.wait("backpressure", |s| s.backpressured);

        let other = server.connect();
        (&other).write_all(b"still served\n").unwrap();
        assert_eq!(
            read_line(&mut BufReader::new(&other)),
            "OK still served\r\n"
        );
        drop(other);

        let mut reader = BufReader::with_capacity(1 << 16, conn);
        for i in 0..LINES {
            let line = read_line(&mut reader);
            assert!(line.starts_with(&format!("OK {i:08} yyy")), "{f}: line {i}");
            assert_eq!(line.len(), LINE_BYTES + 3 - 1 + 2);
        }
        sender.join().unwrap();
        let kept = server.counters.read(|s| s.max_kept);
        eprintln!("{f}: most input kept by a backpressured connection: {kept} bytes");
        assert!(kept <= KEPT_BOUND, "{f}: kept {kept} bytes of input");
        drop(reader);
        server.wait_open(0);
        server.stop();
    }
}

#[test]
fn survives_clients_vanishing_mid_request_and_mid_response() {
    for f in all_modes("survives_clients_vanishing_mid_request_and_mid_response") {
        let mut opts = Opts::new(&f);
        opts.big_bytes = 8 << 20;
        let server = Server::start(opts);

        // Mid-request: half a line, then gone.
        let mut c = server.connect();
        c.write_all(b"half a requ").unwrap();
        drop(c);

        // Mid-response: an 8 MiB answer, a few bytes of it read, then gone.
        let mut c = server.connect();
        c.write_all(b"big 8388608\n").unwrap();
        let mut first = [0u8; 16];
        c.read_exact(&mut first).unwrap();
        drop(c);

        // Mid-pipeline: many requests, the answers never read, reset.
        let mut c = server.connect();
        c.write_all(&b"ping\n".repeat(50_000)).unwrap();
        c.shutdown(Close::Both).unwrap();
        drop(c);

        server.wait_open(0);
        let c = server.connect();
        (&c).write_all(b"after\n").unwrap();
        assert_eq!(read_line(&mut BufReader::new(&c)), "OK after\r\n");
        drop(c);
        server.wait_open(0);
        server.stop();
    }
}

#[test]
fn rejects_a_connection_past_the_limit() {
    let Some(f) = features("rejects_a_connection_past_the_limit") else {
        return;
    };
    let mut opts = Opts::new(&f);
    opts.limit = 1;
    let server = Server::start(opts);
    let first = server.connect();
    (&first).write_all(b"one\n").unwrap();
    assert_eq!(read_line(&mut BufReader::new(&first)), "OK one\r\n");

    let mut second = server.connect();
    let mut reply = vec![0u8; REJECT_REPLY.len()];
    second.read_exact(&mut reply).unwrap();
    assert_eq!(reply, REJECT_REPLY);
    assert_eof(&mut second);

    (&first).write_all(b"two\n").unwrap();
    assert_eq!(read_line(&mut BufReader::new(&first)), "OK two\r\n");
    drop(first);
    server.wait_open(0);
    server.stop();
}

#[test]
fn closes_an_idle_connection() {
    let Some(f) = features("closes_an_idle_connection") else {
        return;
    };
    let mut opts = Opts::new(&f);
    opts.idle_timeout_secs = 1;
    let server = Server::start(opts);
    let mut idle = server.connect();
    let started = Instant::now();
    assert_eof(&mut idle);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    server.wait_open(0);
    server.stop();
}

/// Shutdown lets a pending answer finish, then returns.
#[test]
fn shutdown_finishes_pending_sends() {
    let Some(f) = features("shutdown_finishes_pending_sends") else {
        return;
    };
    let mut opts = Opts::new(&f);
    opts.big_bytes = 16 << 20;
    let server = Server::start(opts);
    let mut c = server.connect();
    c.write_all(b"big 16777216\n").unwrap();
    let mut head = [0u8; 14];
    c.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"BIG 16777216\r\n");
    // The answer is stuck in socket buffers and the send op; stop now, read after.
    server.shutdown.trigger();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert_eq!(rest.len(), (16 << 20) + 2);
    server.stop();
}

/// Shutdown does not wait for a client that never reads past the grace period.
#[test]
fn shutdown_gives_up_on_a_client_that_never_reads() {
    let Some(f) = features("shutdown_gives_up_on_a_client_that_never_reads") else {
        return;
    };
    let mut opts = Opts::new(&f);
    opts.big_bytes = 32 << 20;
    let server = Server::start(opts);
    let mut stuck = server.connect();
    stuck.write_all(b"big 33554432\n").unwrap();
    let mut head = [0u8; 14];
    stuck.read_exact(&mut head).unwrap();
    let started = Instant::now();
    server.stop();
    let took = started.elapsed();
    let grace = Duration::from_secs(crate::io::SHUTDOWN_GRACE_SECS);
    assert!(
        took >= grace,
        "stopped after {took:?}, before the grace period"
    );
    assert!(
        took < grace + Duration::from_secs(3),
        "stopped after {took:?}"
    );
    let mut rest = Vec::new();
    let _ = stuck.read_to_end(&mut rest);
    assert!(rest.len() < 32 << 20, "the whole answer arrived after all");
}
