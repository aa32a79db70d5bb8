//! Limits the server must hold under pressure: the memory bound (`-m`), the connection
//! bound (`-c`), a reader that never reads (backpressure), and the idle timeout.
//! Each runs on both ringcache engines; `reference;` tests also have an ignored
//! memcached run (`cargo test --test limits -- --ignored`) that checks the test itself.

#[macro_use]
mod common;

use common::{stat_u64, Client, Server};
use std::time::{Duration, Instant};

const MIB: u64 = 1024 * 1024;

/// The value stored under `key:<n>`: 1 to 7 KiB, its first bytes naming `n`.
fn item_value(n: u64) -> Vec<u8> {
    let len = 1024 + (n.wrapping_mul(7919) % (6 * 1024)) as usize;
    let mut v = vec![b'a' + (n % 26) as u8; len];
    let tag = format!("<{n}>");
    v[..tag.len()].copy_from_slice(tag.as_bytes());
    v
}

fn item_set(n: u64, out: &mut Vec<u8>) {
    let value = item_value(n);
    out.extend_from_slice(format!("set key:{n} 0 0 {}\r\n", value.len()).as_bytes());
    out.extend_from_slice(&value);
    out.extend_from_slice(b"\r\n");
}

both_engines! {
    reference;
    /// `-m 64`: ~400 MiB written over 4 pipelining connections stays within the bound,
    /// evicts, and the newest keys still hit with the right values.
    fn memory_bound_holds_under_400_mib_of_writes(flavor) {
        const CONNS: u64 = 4;
        const TARGET_BYTES: u64 = 400 * MIB;
        const BATCH: u64 = 32;
        const NEWEST_CHECKED: u64 = 25;
        let server = Server::start(flavor, &["-m", "64"]);
        let per_conn_items = TARGET_BYTES / 4096 / CONNS;
        let addr = server.addr();
        // The writers go batch by batch in step, so none falls so far behind on a busy
        // machine that its newest keys are older than the cache holds.
        let step = std::sync::Arc::new(std::sync::Barrier::new(CONNS as usize));
        let writers: Vec<_> = (0..CONNS)
            .map(|t| {
                let step = std::sync::Arc::clone(&step);
                std::thread::spawn(move || {
                    let mut conn = Client::connect(addr);
                    let mut batch = Vec::new();
                    let mut sent = 0;
                    while sent < per_conn_items {
                        step.wait();
                        batch.clear();
                        let count = BATCH.min(per_conn_items - sent);
                        for i in sent..sent + count {
                            item_set(i * CONNS + t, &mut batch);
                        }
                        conn.send(&batch);
                        let replies = conn.read_lines(count as usize);
                        assert_eq!(
                            replies,
                            b"STORED\r\n".repeat(count as usize),
                            "conn {t}: a set in batch at {sent} was not stored"
                        );
                        sent += count;
                    }
                    sent
                })
            })
            .collect();
        for w in writers {
            w.join().expect("writer thread");
        }
        let rss = server.rss_bytes();
        let limit = 64 * MIB * 5 / 4 + 16 * MIB;
        eprintln!("{flavor}: RSS {} MiB after ~400 MiB of writes with -m 64", rss / MIB);
        assert!(
            rss <= limit,
            "{flavor}: RSS {} MiB after 400 MiB of writes with -m 64 (limit {} MiB)",
            rss / MIB,
            limit / MIB
        );
        let mut conn = server.connect();
        let stats = conn.stats();
        assert!(stat_u64(&stats, "evictions") > 0, "{flavor}: no evictions: {stats:?}");
        let mut missing = Vec::new();
        for t in 0..CONNS {
            for i in per_conn_items - NEWEST_CHECKED..per_conn_items {
                let n = i * CONNS + t;
                match conn.get(&format!("key:{n}")) {
                    Some(v) => assert!(v == item_value(n), "{flavor}: key:{n} has a wrong value"),
                    None => missing.push(n),
                }
            }
        }
        // memcached's per-size-class LRUs may evict a few recent items (its reference run
        // tolerates that); ringcache, with no reads to spare older items, evicts in write
        // order and must keep all of the newest.
        let tolerated = if flavor.is_memcached() { (CONNS * NEWEST_CHECKED / 5) as usize } else { 0 };
        assert!(
            missing.len() <= tolerated,
            "{flavor}: {} of the {} newest keys were evicted: {missing:?}",
            missing.len(),
            CONNS * NEWEST_CHECKED
        );
    }
}

/// How a new connection was received.
enum Admission {
    /// It answered `version`.
    Served(Client),
    /// It was closed, after this reply.
    Refused(Vec<u8>),
}

/// Connects and finds out whether the server serves the connection. A refusal is
/// written unasked at accept, so the first moments are spent listening: sending first
/// would leave unread bytes at the server's close, which turns it into a RST that may
/// destroy the refusal text before it is read.
fn admit(server: &Server) -> Admission {
    let mut conn = server.connect();
    let listen_until = Instant::now() + Duration::from_millis(100);
    match conn.read_some(256, listen_until) {
        Err(common::ReadEnd::Timeout) => {}
        Ok(_) | Err(common::ReadEnd::Closed(_)) => {
            let (reply, _) = conn.read_to_close(Instant::now() + Duration::from_secs(5));
            return Admission::Refused(reply);
        }
        Err(e) => panic!("read: {e:?}"),
    }
    conn.send(b"version\r\n");
    let deadline = Instant::now() + Duration::from_secs(5);
    match conn.try_read_until(deadline, |b| common::memfind(b, b"\r\n").map(|i| i + 2)) {
        Ok(line) if line.starts_with(b"VERSION ") => Admission::Served(conn),
        Ok(line) => {
            let (rest, _) = conn.read_to_close(deadline);
            Admission::Refused([line, rest].concat())
        }
        Err((_, got)) => Admission::Refused(got),
    }
}

/// Opens connections until one is refused (or `max` are served): the served ones and
/// the refusal's reply.
fn fill_connections(server: &Server, max: usize) -> (Vec<Client>, Option<Vec<u8>>) {
    let mut live = Vec::new();
    while live.len() < max {
        match admit(server) {
            Admission::Served(conn) => live.push(conn),
            Admission::Refused(reply) => return (live, Some(reply)),
        }
    }
    (live, None)
}

both_engines! {
    reference;
    /// `-c 10`: ten connections are served, the next is told `ERROR Too many open
    /// connections` and closed, and closing one lets a new one in. (memcached counts
    /// its own descriptors against `-c` and cannot even start with `-c 10`, so its
    /// reference run uses `-c 20` and checks only the refusal mechanics.)
    fn connection_limit_refuses_the_eleventh(flavor) {
        let (limit, args) = if flavor.is_memcached() { (6, ["-c", "20"]) } else { (10, ["-c", "10"]) };
        let server = Server::start(flavor, &args);
        let (mut live, refused) = fill_connections(&server, limit + 2);
        assert!(
            live.len() >= limit,
            "{flavor}: only {} of {limit} connections were served before a refusal: {:?}",
            live.len(),
            refused.as_deref().map(common::show)
        );
        let reply = refused.unwrap_or_else(|| {
            panic!("{flavor}: {} connections open with {args:?}, none refused", live.len())
        });
        assert_eq!(
            common::show(&reply),
            common::show(b"ERROR Too many open connections\r\n"),
            "{flavor}: the refused connection's reply"
        );
        // The held ones still work.
        for conn in &mut live {
            conn.version();
        }
        // Close one; a new connection gets in (the server notices the close
        // asynchronously, so retry until then).
        drop(live.pop());
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Admission::Refused(_) = admit(&server) {
            assert!(Instant::now() < deadline, "{flavor}: no slot freed after closing one");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

both_engines! {
    reference;
    /// A client that pipelines thousands of `get big` (512 KiB) and never reads must
    /// not stall other clients nor make the server buffer gigabytes.
    fn slow_reader_is_backpressured(flavor) {
        const BIG: usize = 512 * 1024;
        const GETS: usize = 5000;
        let server = Server::start(flavor, &[]);
        let mut b = server.connect();
        let big = common::value_for(1, BIG);
        b.set("big", &big);
        let baseline_conns = stat_u64(&b.stats(), "curr_connections");
        let baseline_rss = server.rss_bytes();

        let mut a = server.connect();
        a.send(&b"get big\r\n".repeat(GETS));
        // The server has started answering A.
        a.read_some(1, Instant::now() + Duration::from_secs(5))
            .expect("A receives the start of its first answer");

        let mut slowest = Duration::ZERO;
        for i in 0..100u64 {
            let t = Instant::now();
            let v = common::value_for(i, 100);
            b.set(&format!("b{i}"), &v);
            assert_eq!(b.get(&format!("b{i}")), Some(v));
            slowest = slowest.max(t.elapsed());
        }
        assert!(
            slowest < Duration::from_secs(1),
            "{flavor}: a round trip took {slowest:?} while A was not reading"
        );
        let growth = server.rss_bytes().saturating_sub(baseline_rss);
        eprintln!("{flavor}: slowest round trip {slowest:?}, RSS growth {} KiB", growth / 1024);
        assert!(
            growth < 64 * MIB,
            "{flavor}: RSS grew {} MiB with {GETS} unread 512 KiB answers queued",
            growth / MIB
        );
        drop(a);
        // `b` plus the probe connection `wait_curr_connections` opens.
        server.wait_curr_connections(baseline_conns + 1, Duration::from_secs(5));
        assert_eq!(b.get("big"), Some(big));
    }
}

both_engines! {
    reference;
    /// `-o idle_timeout=2` closes an idle client and spares an active one.
    fn idle_timeout_closes_idle_clients(flavor) {
        let server = Server::start(flavor, &["-o", "idle_timeout=2"]);
        let mut idle = server.connect();
        idle.version();
        let mut active = server.connect();
        let start = Instant::now();
        let deadline = start + Duration::from_secs(10);
        let closed_at = loop {
            active.version();
            match idle.read_some(64, Instant::now() + Duration::from_millis(250)) {
                Err(common::ReadEnd::Closed(_)) => break start.elapsed(),
                Err(common::ReadEnd::Timeout) => {}
                Ok(_) => panic!("{flavor}: idle client got {}", common::show(idle.buffered())),
                Err(e) => panic!("{flavor}: idle client read: {e:?}"),
            }
            assert!(Instant::now() < deadline, "{flavor}: idle client still open after 10 s");
        };
        eprintln!("{flavor}: idle client closed after {closed_at:?}");
        assert!(
            closed_at >= Duration::from_secs(1),
            "{flavor}: idle client closed after only {closed_at:?} with idle_timeout=2"
        );
        active.version();
    }
}
