//! Key dumps: `lru_crawler metadump` (memcached 1.6.18's lines), `lru_crawler mgdump`
//! (1.6.45's), `stats cachedump` and libmemcached's `memcdump`, which is built on it
//! (it failed: "Failed to dump keys"). A dump streams as its client reads: a big one
//! never holds a copy of the cache, other clients are served meanwhile, and a client
//! that never reads pins a bounded amount of memory.

#[macro_use]
mod common;

use common::*;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One metadump line: its fields in order.
type MetaLine = Vec<(String, String)>;

/// Sends `request` and reads a dump ending in `end`.
///
/// memcached's crawler also runs on its own (after a start, say), and a dump asked for
/// meanwhile is answered `BUSY currently processing crawler request`: it is asked for
/// again until the crawler is free (for 10 s at most). ringcache never answers `BUSY`.
fn dump(conn: &mut Client, request: &str, end: &[u8]) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        conn.send(format!("{request}\r\n").as_bytes());
        let reply = conn.read_until(request, |b| {
            let busy = b.starts_with(b"BUSY ") && b.ends_with(b"\r\n");
            (busy || b.ends_with(end)).then_some(b.len())
        });
        if !reply.starts_with(b"BUSY ") || Instant::now() > deadline {
            return reply;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// `lru_crawler metadump <arg>`, parsed.
fn metadump(conn: &mut Client, arg: &str) -> Vec<MetaLine> {
    let reply = dump(conn, &format!("lru_crawler metadump {arg}"), b"END\r\n");
    let text = String::from_utf8(reply).expect("ASCII dump");
    let body = text.strip_suffix("END\r\n").expect("ends in END");
    body.split_terminator('\n')
        .map(|line| {
            line.split(' ')
                .map(|field| {
                    let (k, v) = field
                        .split_once('=')
                        .unwrap_or_else(|| panic!("bad field {field:?} in {line:?}"));
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

fn field<'a>(line: &'a MetaLine, name: &str) -> &'a str {
    &line
        .iter()
        .find(|(k, _)| k == name)
        .unwrap_or_else(|| panic!("{line:?} lacks {name}"))
        .1
}

/// The classes `stats items` lists as holding items.
fn classes_with_items(conn: &mut Client) -> HashSet<String> {
    stats_group(conn, "items")
        .keys()
        .map(|k| {
            k.split(':')
                .nth(1)
                .expect("items:<class>:<field>")
                .to_string()
        })
        .collect()
}

/// The CAS of `key`, from `gets`.
fn cas_of(conn: &mut Client, key: &str) -> String {
    conn.send(format!("gets {key}\r\n").as_bytes());
    let reply = String::from_utf8(conn.read_until_end_of_get()).unwrap();
    reply
        .lines()
        .next()
        .unwrap()
        .split(' ')
        .nth(4)
        .expect("gets CAS")
        .to_string()
}

both_engines! { reference;
    /// Every live item, one `key=… exp=… la=… cas=… fetch=… cls=… size=…` line each
    /// (`\n`-terminated), then `END`: keys URI-encoded, times as unix seconds, classes
    /// as `stats items` numbers them.
    fn metadump_lines_as_memcached_prints_them(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        conn.set("a", b"x");
        assert_eq!(conn.get("a"), Some(b"x".to_vec()));
        conn.roundtrip(b"set b 0 100 3\r\nyyy\r\n", b"STORED\r\n");
        conn.set("k/x%y:z", b"v");
        conn.roundtrip(b"ms Zm9vIGJhcg== 2 b\r\nhi\r\n", b"HD\r\n");
        conn.roundtrip(b"set gone 0 -1 1\r\ng\r\n", b"STORED\r\n");
        let now: u64 = stat_u64(&conn.stats(), "time");
        let lines = metadump(&mut conn, "all");
        let by_key: HashMap<&str, &MetaLine> = lines.iter().map(|l| (field(l, "key"), l)).collect();
        let mut keys: Vec<&str> = by_key.keys().copied().collect();
        keys.sort_unstable();
        assert_eq!(keys, ["a", "b", "foo%20bar", "k%2Fx%25y%3Az"], "{flavor}");
        let classes = classes_with_items(&mut conn);
        for line in &lines {
            let names: Vec<&str> = line.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(names, ["key", "exp", "la", "cas", "fetch", "cls", "size"], "{flavor}");
            let la: u64 = field(line, "la").parse().unwrap();
            assert!(la.abs_diff(now) <= 2, "{flavor}: la {la} at {now}");
            assert!(classes.contains(field(line, "cls")), "{flavor}: {line:?} {classes:?}");
            assert!(field(line, "size").parse::<u64>().unwrap() > 2);
        }
        let a = by_key["a"];
        assert_eq!((field(a, "exp"), field(a, "fetch")), ("-1", "yes"));
        assert_eq!(field(a, "cas"), cas_of(&mut conn, "a"));
        let b = by_key["b"];
        let exp: u64 = field(b, "exp").parse().unwrap();
        assert!(exp.abs_diff(now + 100) <= 2, "{flavor}: exp {exp} at {now}");
        assert_eq!(field(b, "fetch"), "no");
        // One class, and the hash table walk, list the same items.
        let a_class = field(a, "cls").to_string();
        let in_class = metadump(&mut conn, &a_class);
        assert!(in_class.iter().all(|l| field(l, "cls") == a_class));
        // (memcached's walk of one class's LRUs can miss an item its LRU maintainer
        // moves between them meanwhile.)
        assert!(flavor.is_memcached() || in_class.iter().any(|l| field(l, "key") == "a"));
        assert_eq!(metadump(&mut conn, "hash").len(), 4, "{flavor}");
        // Pipelined behind a dump, a request is answered after its END (memcached
        // drops what was pipelined behind a metadump).
        if flavor.is_memcached() {
            return;
        }
        conn.send(b"lru_crawler metadump all\r\nversion\r\n");
        let reply = conn.read_until("a dump, then VERSION", |b| {
            b.ends_with(b"VERSION 1.6.18\r\n").then_some(b.len())
        });
        assert!(reply.ends_with(b"END\r\nVERSION 1.6.18\r\n"), "{flavor}: {}", show(&reply));
        assert_eq!(reply.iter().filter(|&&b| b == b'\n').count(), 6);
    }
}

/// `mgdump`'s expected lines for the items [`mgdump_reply`] stores.
fn mgdump_reply(server: &Server) -> (Vec<u8>, HashSet<Vec<u8>>) {
    let mut conn = server.connect();
    conn.set("a", b"x");
    conn.set("bb", b"yyy");
    conn.roundtrip(b"ms Zm9vIGJhcg== 2 b\r\nhi\r\n", b"HD\r\n");
    let reply = dump(&mut conn, "lru_crawler mgdump all", b"EN\r\n");
    let lines: HashSet<Vec<u8>> = reply
        .split_inclusive(|&b| b == b'\n')
        .map(|l| l.to_vec())
        .collect();
    (reply, lines)
}

both_engines! {
    /// `lru_crawler mgdump` as memcached 1.6.45 prints it (1.6.18 has no mgdump): `OK`,
    /// an `mg <key>` line per item (`mg <base64> b` for a key stored base64), `EN`.
    fn mgdump_lines_as_memcached_1_6_45_prints_them(flavor) {
        let want: HashSet<Vec<u8>> = [&b"OK\r\n"[..], b"mg a\r\n", b"mg bb\r\n", b"mg Zm9vIGJhcg== b\r\n", b"EN\r\n"]
            .iter()
            .map(|l| l.to_vec())
            .collect();
        let (reply, lines) = mgdump_reply(&Server::start(flavor, &[]));
        assert!(reply.starts_with(b"OK\r\n") && reply.ends_with(b"EN\r\n"), "{}", show(&reply));
        assert_eq!(lines, want, "{flavor}");
        match newest_memcached_path() {
            Some(_) => {
                let newest = Server::start(Flavor::MemcachedNewest, &[]);
                assert_eq!(mgdump_reply(&newest).1, want, "memcached 1.6.45 prints another mgdump");
            }
            None => eprintln!("SKIPPED (mgdump against memcached 1.6.45): not beside this checkout"),
        }
    }
}

both_engines! {
    /// `stats cachedump <class> <limit>`: `ITEM <key> [<bytes> b; <unix exptime or 0> s]`
    /// per item of the class, at most `limit` (0: all), then `END`.
    fn cachedump_lines_as_memcached_prints_them(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        conn.set("a", b"x");
        conn.roundtrip(b"set b 0 100 1\r\ny\r\n", b"STORED\r\n");
        let now = stat_u64(&conn.stats(), "time");
        let lines = metadump(&mut conn, "all");
        let class = field(&lines[0], "cls").to_string();
        assert!(lines.iter().all(|l| field(l, "cls") == class), "one-byte values share a class");
        let exp = field(lines.iter().find(|l| field(l, "key") == "b").unwrap(), "exp").to_string();
        assert!(exp.parse::<u64>().unwrap().abs_diff(now + 100) <= 2);
        let reply = dump(&mut conn, &format!("stats cachedump {class} 0"), b"END\r\n");
        let reply = String::from_utf8(reply).unwrap();
        let mut got: Vec<&str> = reply.lines().collect();
        assert_eq!(got.pop(), Some("END"));
        got.sort_unstable();
        let b_line = format!("ITEM b [1 b; {exp} s]");
        assert_eq!(got, ["ITEM a [1 b; 0 s]", b_line.as_str()], "{flavor}");
        let one = dump(&mut conn, &format!("stats cachedump {class} 1"), b"END\r\n");
        assert_eq!(String::from_utf8(one).unwrap().lines().count(), 2, "limit 1: one item");
        let other = if class == "1" { "2" } else { "1" };
        conn.roundtrip(format!("stats cachedump {other} 0\r\n").as_bytes(), b"END\r\n");
        conn.roundtrip(b"stats cachedump 0 0\r\n", b"END\r\n");
    }
}

both_engines! {
    /// libmemcached's `memcdump` lists every key, of every size class (it asks `stats
    /// cachedump 0 0` to `63 0`).
    fn memcdump_lists_every_key(flavor) {
        let memcdump = find_program("memcdump").unwrap_or_else(|| {
            panic!("memcdump is not installed: `apt-get install libmemcached-tools` (ci/test.sh installs it)")
        });
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        let mut want = HashSet::new();
        for i in 0..2000usize {
            let len = [1, 40, 300, 1200, 5000, 20_000, 70_000, 300_000][i % 8];
            if len > 20_000 && i % 40 >= 8 {
                continue;
            }
            let key = format!("key:{i}");
            conn.set(&key, &value_for(i as u64, len));
            want.insert(key);
        }
        let out = std::process::Command::new(memcdump)
            .arg(format!("--servers=127.0.0.1:{}", server.port()))
            .output()
            .expect("run memcdump");
        assert!(out.status.success(), "{flavor}: memcdump failed: {}", String::from_utf8_lossy(&out.stderr));
        let got: HashSet<String> = String::from_utf8(out.stdout).unwrap().lines().map(String::from).collect();
        assert_eq!(got.len(), want.len(), "{flavor}");
        assert_eq!(got, want, "{flavor}");
    }
}

/// Keys of 200 bytes: a metadump of [`BIG_KEYS`] of them is ~26 MB of lines.
const BIG_KEYS: usize = 100_000;

fn big_key(i: usize) -> String {
    format!("{i:0>200}")
}

/// Stores [`BIG_KEYS`] items with 200-byte keys.
fn fill_big(server: &Server) {
    let mut conn = server.connect();
    for chunk in (0..BIG_KEYS).collect::<Vec<_>>().chunks(10_000) {
        let mut batch = Vec::new();
        for &i in chunk {
            batch.extend_from_slice(
                format!("set {} 0 0 8 noreply\r\nvaluevvv\r\n", big_key(i)).as_bytes(),
            );
        }
        conn.send(&batch);
    }
    conn.roundtrip(b"mn\r\n", b"MN\r\n");
    assert_eq!(stat_u64(&conn.stats(), "curr_items"), BIG_KEYS as u64);
}

both_engines! {
    /// A metadump of 100k keys (26 MB of lines) streams while another client keeps
    /// getting answers, and the server's memory grows by far less than the dump.
    fn a_big_metadump_streams_while_others_are_served(flavor) {
        let server = Server::start(flavor, &["-m", "64"]);
        fill_big(&server);
        let rss_before = server.rss_bytes();
        let stop = Arc::new(AtomicBool::new(false));
        let (gets, slowest_us) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let mut other = server.connect();
        let getter = {
            let (stop, gets, slowest_us) = (Arc::clone(&stop), Arc::clone(&gets), Arc::clone(&slowest_us));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    assert_eq!(other.get(&big_key(7)), Some(b"valuevvv".to_vec()));
                    slowest_us.fetch_max(started.elapsed().as_micros() as u64, Ordering::Relaxed);
                    gets.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        assert!(wait_until(IO_TIMEOUT, || gets.load(Ordering::Relaxed) > 0), "no get answered");
        let mut conn = server.connect();
        conn.send(b"lru_crawler metadump all\r\n");
        let (mut lines, mut max_rss, mut tail) = (0usize, 0, Vec::new());
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut first_read = true;
        loop {
            conn.read_some(256 * 1024, deadline).expect("the dump keeps coming");
            lines += conn.buffered().iter().filter(|&&b| b == b'\n').count();
            tail.extend_from_slice(conn.buffered());
            tail.drain(..tail.len().saturating_sub(5));
            conn.clear_buffered();
            max_rss = max_rss.max(server.rss_bytes());
            if tail == b"END\r\n" {
                break;
            }
            if first_read {
                // The dump has begun and waits for this client to read: the other
                // client is served meanwhile.
                first_read = false;
                let base = gets.load(Ordering::Relaxed);
                let served = wait_until(IO_TIMEOUT, || gets.load(Ordering::Relaxed) >= base + 10);
                assert!(served, "{flavor}: gets stopped while a dump waited for its reader");
            }
        }
        stop.store(true, Ordering::Relaxed);
        getter.join().expect("the other client was served");
        assert_eq!(lines, BIG_KEYS + 1, "{flavor}: one line per key, then END");
        let slowest = Duration::from_micros(slowest_us.load(Ordering::Relaxed));
        assert!(slowest < Duration::from_secs(2), "{flavor}: a get took {slowest:?} during the dump");
        let grown = max_rss.saturating_sub(rss_before);
        assert!(grown < 12 << 20, "{flavor}: memory grew by {grown} bytes for a 26 MB dump");
    }
}

both_engines! {
    /// A client that asks for a metadump of 100k keys and never reads: the server holds
    /// its output mark, not the dump, serves everyone else (another dump included), and
    /// lets go of it all when the client leaves.
    fn a_metadump_nobody_reads_pins_bounded_memory(flavor) {
        let server = Server::start(flavor, &["-m", "64"]);
        fill_big(&server);
        let rss_before = server.rss_bytes();
        let mut hog = server.connect();
        hog.set_recv_buffer(4096);
        hog.send(b"lru_crawler metadump all\r\n");
        let mut conn = server.connect();
        // The hog's output reaches its mark: the budget counts what it holds beyond
        // its allowance.
        let (filled, stats) = {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let stats = conn.stats();
                if stat_u64(&stats, "ringcache_conn_buffer_bytes") > 512 * 1024 || Instant::now() > deadline {
                    break (stat_u64(&stats, "ringcache_conn_buffer_bytes") > 512 * 1024, stats);
                }
                std::thread::sleep(POLL_INTERVAL);
            }
        };
        assert!(filled, "{flavor}: the hog's output never filled: {stats:?}");
        assert!(stat_u64(&stats, "ringcache_conn_buffer_bytes") < 4 << 20, "{stats:?}");
        let grown = server.rss_bytes().saturating_sub(rss_before);
        assert!(grown < 12 << 20, "{flavor}: memory grew by {grown} bytes for a 26 MB dump");
        assert_eq!(conn.version(), "VERSION 1.6.18");
        assert_eq!(conn.get(&big_key(3)), Some(b"valuevvv".to_vec()));
        // Another dump of one class meanwhile (all keys share one class here).
        let lines = dump(&mut conn, "lru_crawler mgdump all", b"EN\r\n");
        assert_eq!(lines.iter().filter(|&&b| b == b'\n').count(), BIG_KEYS + 2);
        // The dumping connection leaves too: the tail buffer its dump grew may stay
        // charged while it lives (an epoll connection keeps a sent tail of up to 64 KiB,
        // past its 32 KiB allowance), which is not what this test is about.
        drop(hog);
        drop(conn);
        let mut probe = server.connect();
        let released = wait_until(Duration::from_secs(10), || {
            stat_u64(&probe.stats(), "ringcache_conn_buffer_bytes") == 0
        });
        assert!(released, "{flavor}: the hog's buffers stay charged after it left");
    }
}
