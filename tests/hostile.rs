//! Hostile input (issue 6): bytes that try to break the server: long lines, declared
//! lengths, keys, binary lengths, and clients that make connection buffers grow. The
//! hostile *clients* (garbage, stalls, floods, slow readers, vanishing clients) are in
//! `hostile_clients.rs`; both share `hostile_scene/`. Each test is named for what it
//! attacks, runs on both engines, and ends by checking that the server still answers
//! correctly (a key stored before the attack reads back) and that `curr_connections`
//! returns to where it was.
//!
//! Expected answers are memcached 1.6.18's, learnt by sending it the same bytes; every
//! test marked `reference;` also has an ignored run against memcached
//! (`cargo test --release --test hostile -- --ignored`) that checks the expectations
//! themselves. Where ringcache answers differently on purpose the test says so.
//!
//! Already covered elsewhere, and not repeated here:
//! - `differential.rs` (classic text, byte for byte against memcached): a 3000-byte line
//!   without a newline, a 400-key get line over 2048 bytes, lengths negative,
//!   non-numeric, over `INT_MAX` and over 2^64, 251-byte keys in every command, NUL and
//!   tab in lines, incr at 2^64 - 1 and every other incr/decr edge;
//! - `differential_binary.rs`: key length over the body length, extras plus key over
//!   the body length, bad magic, wrong extras, 2 MiB values swallowed;
//! - `stress.rs`: 1,000 concurrent connections, 100,000 pipelined requests, a 1 MiB value
//!   one byte per packet, one slow reader of a 1 MiB value, text clients vanishing inside
//!   a request line, a value, and a response;
//! - `limits.rs`: `-m` under 400 MiB of writes, the eleventh connection with `-c 10`,
//!   one reader that never reads, the idle timeout.

#[macro_use]
mod common;
mod hostile_scene;

use common::{show, stat_u64, Client, Flavor};
use hostile_scene::*;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- long lines

both_engines! {
    reference;
    /// Lines with no newline within 2048 bytes: closed without an answer unless the
    /// line is a get (after at most 100 spaces), which may grow; an overlong key in a
    /// 100 KB get line is a `CLIENT_ERROR`, and the connection goes on.
    fn lines_over_2048_bytes_without_a_newline(flavor) {
        let mut scene = Scene::start(flavor, &[]);
        let server = &scene.server;
        let closing: [(&str, Vec<u8>); 4] = [
            ("2049 bytes of one token", vec![b'a'; 2049]),
            ("a set line with a 3000-byte key", [&b"set "[..], &[b'k'; 3000]].concat()),
            ("101 spaces before get", [&[b' '; 101][..], b"get ", &[b'k'; 3000]].concat()),
            ("64 KiB of control bytes", vec![0x01; 64 * 1024]),
        ];
        for (what, bytes) in closing {
            let (got, closed) = send_and_read_to_close(server, &bytes, Duration::from_secs(5));
            assert!(closed && got.is_empty(), "{flavor}: {what}: closed {closed}, got {}", show(&got));
        }
        // A get line may be long; its 100,000-byte key is refused, the rest goes on.
        let mut c = server.connect();
        let mut line = b"get ".to_vec();
        line.extend_from_slice(&[b'k'; 100_000]);
        line.extend_from_slice(b"\r\nversion\r\n");
        c.send(&line);
        // memcached 1.6.45's answer: the error line and an empty line.
        c.expect(b"CLIENT_ERROR bad command line format\r\n\r\n");
        c.version();
        drop(c);
        // 90 spaces then a get: still a get (memcached allows 100).
        let mut c = server.connect();
        let mut line = vec![b' '; 90];
        line.extend_from_slice(b"get __keep__");
        line.extend(std::iter::repeat_n(b" z", 2000).flatten());
        line.extend_from_slice(b"\r\n");
        c.send(&line);
        let reply = c.read_until_end_of_get();
        let want = format!("VALUE __keep__ 0 {}\r\n{}\r\nEND\r\n", KEEP_VALUE.len(), String::from_utf8_lossy(KEEP_VALUE));
        assert_eq!(show(&reply), show(want.as_bytes()), "{flavor}");
        drop(c);
        scene.assert_settled("long lines");
    }
}

both_engines! {
    /// A get line that never ends: memcached buffers it without limit; ringcache stops
    /// at 2 MiB with `SERVER_ERROR out of memory reading request` and closes, so 4 MiB
    /// of key bytes cannot grow its memory (a deliberate difference: no reference run).
    fn endless_get_line_is_cut_at_2_mib(flavor) {
        let mut scene = Scene::start(flavor, &[]);
        let mut rss = RssWatch::new(&scene.server);
        let mut c = scene.server.connect();
        c.send(b"get ");
        let chunk = vec![b'k'; 64 * 1024];
        let mut sent = 4;
        while sent < 4 * MIB {
            if c.try_send(&chunk).is_err() {
                break;
            }
            sent += chunk.len() as u64;
        }
        let (got, how) = c.read_to_close(Instant::now() + Duration::from_secs(10));
        assert!(how.is_some(), "{flavor}: still open after {sent} bytes of a get line");
        // The answer may be lost to the reset that unread input causes at close.
        assert!(
            got.is_empty() || got == b"SERVER_ERROR out of memory reading request\r\n",
            "{flavor}: got {}",
            show(&got)
        );
        rss.assert_growth_below(16 * MIB, "a 4 MiB get line");
        scene.assert_settled("an endless get line");
    }
}

// ---------------------------------------------------------------- declared lengths

both_engines! {
    reference;
    /// Declared lengths that are huge, negative or not numbers, in classic, meta and
    /// arithmetic commands: a 100,000,000-byte set and ms are refused as too large and
    /// their data swallowed without being buffered (RSS stays flat); bad numbers are
    /// `CLIENT_ERROR`s (memcached's exact answers).
    fn declared_lengths_huge_negative_non_numeric(flavor) {
        let mut scene = Scene::start(flavor, &[]);
        const HUGE: u64 = 100_000_000;
        let mut rss = RssWatch::new(&scene.server);
        for (line, end, want) in [
            (format!("set big 0 0 {HUGE}\r\n"), &b"version\r\n"[..], "SERVER_ERROR object too large for cache\r\nVERSION "),
            (format!("ms big {HUGE} T0\r\n"), b"mn\r\n", "SERVER_ERROR object too large for cache\r\nMN\r\n"),
        ] {
            let mut c = scene.server.connect();
            c.timeout = Duration::from_secs(30);
            // Read while sending: the refusal may come first.
            let mut reader = Client::from_stream(c.stream.try_clone().expect("clone"));
            reader.timeout = Duration::from_secs(30);
            let want_len = want.len();
            let read = std::thread::spawn(move || reader.read_exact_bytes(want_len));
            c.send(line.as_bytes());
            stream_filler(&mut c, HUGE, &mut rss);
            c.send(b"\r\n");
            c.send(end);
            let got = read.join().expect("reader");
            assert_eq!(show(&got), show(want.as_bytes()), "{flavor}: {}", line.trim_end());
        }
        rss.assert_growth_below(32 * MIB, "two 100 MB values swallowed");
        assert_eq!(scene.probe.get("big"), None);

        let mut c = scene.server.connect();
        c.send(
            b"ms a -1\r\nms a abc\r\nms a 99999999999999999999\r\n\
              cas a 0 0 -1 1\r\nappend a 0 0 x\r\nprepend a 0 0 4294967297\r\nA\r\n\
              incr a -1\r\ndecr a 99999999999999999999\r\nmn\r\n",
        );
        let got = c.read_until("MN", |b| b.ends_with(b"MN\r\n").then_some(b.len()));
        let want: &[u8] = b"CLIENT_ERROR bad command line format\r\n\
            CLIENT_ERROR bad command line format\r\n\
            CLIENT_ERROR bad command line format\r\n\
            CLIENT_ERROR bad command line format\r\n\
            CLIENT_ERROR bad command line format\r\n\
            NOT_STORED\r\n\
            CLIENT_ERROR invalid numeric delta argument\r\n\
            CLIENT_ERROR invalid numeric delta argument\r\n\
            MN\r\n";
        assert_eq!(show(&got), show(want), "{flavor}");
        drop(c);
        scene.assert_settled("huge declared lengths");
    }
}

// ---------------------------------------------------------------- keys

both_engines! {
    reference;
    /// Keys holding control characters, DEL, high bytes and escape sequences are key
    /// material (memcached stores and returns them verbatim); a NUL ends the line.
    fn keys_with_control_characters(flavor) {
        let mut scene = Scene::start(flavor, &[]);
        let mut c = scene.server.connect();
        for key in [&b"a\x01b"[..], b"a\x7fb", b"a\tb", b"a\rb", b"\xff\xfe", b"\x1b[31m", b"\x07\x08\x0b\x0c"] {
            let mut req = b"set ".to_vec();
            req.extend_from_slice(key);
            req.extend_from_slice(b" 3 0 1\r\nX\r\nget ");
            req.extend_from_slice(key);
            req.extend_from_slice(b"\r\nmg ");
            req.extend_from_slice(key);
            req.extend_from_slice(b" v k f\r\n");
            let mut want = b"STORED\r\nVALUE ".to_vec();
            want.extend_from_slice(key);
            want.extend_from_slice(b" 3 1\r\nX\r\nEND\r\nVA 1 k");
            want.extend_from_slice(key);
            want.extend_from_slice(b" f3\r\nX\r\n");
            c.send(&req);
            let got = c.read_exact_bytes(want.len());
            assert_eq!(show(&got), show(&want), "{flavor}: key {}", show(key));
        }
        // `get a\tb` is one key, not `a`: `a` alone is unknown.
        c.roundtrip(b"get a\r\n", b"END\r\n");
        // NUL: the line ends there (as in memcached 1.6.18; 1.6.45 reads past it). `set a`
        // lacks arguments and `X` is a one-byte line: both memcached 1.6.45's format error.
        c.roundtrip(
            b"set a\x00b 0 0 1\r\nX\r\nget a\r\nmg a\x00b v\r\nmn\r\n",
            b"CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n\
END\r\nEN\r\nMN\r\n",
        );
        drop(c);
        scene.assert_settled("keys with control characters");
    }
}

both_engines! {
    reference;
    /// 10,000 keys in one get (a 70 KB line), every thousandth stored; the same with
    /// one 251-byte key among them, which makes memcached refuse the whole line.
    fn ten_thousand_keys_in_one_get(flavor) {
        let mut scene = Scene::start(flavor, &[]);
        let mut c = scene.server.connect();
        let mut want = Vec::new();
        for i in (0..10_000).step_by(1000) {
            c.set(&format!("k{i}"), format!("v{i}").as_bytes());
            want.extend_from_slice(format!("VALUE k{i} 0 {}\r\nv{i}\r\n", format!("v{i}").len()).as_bytes());
        }
        want.extend_from_slice(b"END\r\n");
        let keys: Vec<String> = (0..10_000).map(|i| format!("k{i}")).collect();
        let line = format!("get {}\r\n", keys.join(" "));
        c.send(line.as_bytes());
        let got = c.read_until_end_of_get();
        assert_eq!(show(&got), show(&want), "{flavor}");
        // gets: the same values, each with a CAS.
        c.send(format!("gets {} \r\n", keys.join(" ")).as_bytes());
        let got = c.read_until_end_of_get();
        let values = got.windows(6).filter(|w| w == b"VALUE ").count();
        assert_eq!(values, 10, "{flavor}: gets answered {}", show(&got));
        // A 251-byte key in the middle: CLIENT_ERROR (and memcached 1.6.45's empty line)
        // and nothing else.
        let mut with_long = keys.clone();
        with_long.insert(5000, "x".repeat(251));
        c.roundtrip(
            format!("get {}\r\n", with_long.join(" ")).as_bytes(),
            b"CLIENT_ERROR bad command line format\r\n\r\n",
        );
        c.version();
        drop(c);
        scene.assert_settled("10,000 keys in one get");
    }
}

both_engines! {
    reference;
    /// incr of 2^64 - 1 wraps to 0 in all three dialects, and the value keeps its
    /// length (padded with spaces), as memcached does.
    fn incr_at_u64_max_wraps_to_zero(flavor) {
        let mut scene = Scene::start(flavor, &[]);
        let max = b"18446744073709551615";
        let padded: &[u8] = b"0                   ";
        let mut c = scene.server.connect();
        c.set("t", max);
        c.roundtrip(b"incr t 1\r\n", b"0\r\n");
        assert_eq!(c.get("t").as_deref(), Some(padded), "{flavor}: text");
        c.set("m", max);
        c.roundtrip(b"ma m v\r\nmg m v\r\n", &[&b"VA 1\r\n0\r\nVA 20\r\n"[..], padded, b"\r\n"].concat());
        drop(c);

        let mut b = scene.server.connect();
        b.send(&bin(OP_SET, &set_extras(0, 0), b"b", max, 1));
        let stored = read_bin(&mut b);
        assert_eq!((stored.opcode, stored.status), (OP_SET, 0), "{flavor}: {stored:?}");
        let mut extras = 1u64.to_be_bytes().to_vec();
        extras.extend_from_slice(&0u64.to_be_bytes());
        extras.extend_from_slice(&0u32.to_be_bytes());
        b.send(&bin(OP_INCR, &extras, b"b", b"", 2));
        let incr = read_bin(&mut b);
        assert_eq!((incr.opcode, incr.status, incr.opaque), (OP_INCR, 0, 2), "{flavor}: {incr:?}");
        assert_eq!(incr.rest, 0u64.to_be_bytes(), "{flavor}: binary incr value");
        assert!(incr.cas != 0 && incr.cas != stored.cas, "{flavor}: incr CAS {} after {}", incr.cas, stored.cas);
        b.send(&bin(OP_GET, &[], b"b", b"", 3));
        let got = read_bin(&mut b);
        assert_eq!((got.status, got.rest.as_slice()), (0, padded), "{flavor}: binary get");
        drop(b);
        scene.assert_settled("incr at 2^64 - 1");
    }
}

// ---------------------------------------------------------------- binary lengths

both_engines! {
    reference;
    /// Binary headers whose lengths contradict each other or are huge: a get with a
    /// 4 GiB body is refused (`Invalid arguments`) and closed; a set with a 100 MB value
    /// is refused (`Too large.`) after its value is swallowed without being buffered;
    /// a set whose body claims 4 GiB is never buffered either, however much follows.
    fn binary_lengths_that_contradict(flavor) {
        let mut scene = Scene::start(flavor, &[]);
        // GET, key "a", body length 2^32 - 1.
        let packet = bin_packet(OP_GET, 1, 0, u32::MAX, 5, &[], b"a", &[]);
        let (got, closed) = send_and_read_to_close(&scene.server, &packet, Duration::from_secs(5));
        let mut want = vec![0x81, OP_GET, 0, 0, 0, 0, 0, 4, 0, 0, 0, 17, 0, 0, 0, 5];
        want.extend_from_slice(&[0; 8]);
        want.extend_from_slice(b"Invalid arguments");
        assert!(closed, "{flavor}: a 4 GiB get body left the connection open");
        assert_eq!(show(&got), show(&want), "{flavor}: 4 GiB get body");

        // SET with a 100 MB value: streamed, then a NOOP.
        const HUGE: u32 = 100_000_000;
        let mut rss = RssWatch::new(&scene.server);
        let mut c = scene.server.connect();
        let mut reader = Client::from_stream(c.stream.try_clone().expect("clone"));
        reader.timeout = Duration::from_secs(30);
        let read = std::thread::spawn(move || (read_bin(&mut reader), read_bin(&mut reader)));
        c.send(&bin_packet(OP_SET, 1, 8, 9 + HUGE, 7, &set_extras(0, 0), b"a", &[]));
        stream_filler(&mut c, u64::from(HUGE), &mut rss);
        c.send(&bin(OP_NOOP, &[], &[], &[], 9));
        let (refused, noop) = read.join().expect("reader");
        assert_eq!(
            (refused.opcode, refused.status, refused.opaque, refused.rest.as_slice()),
            (OP_SET, 3, 7, &b"Too large."[..]),
            "{flavor}: {refused:?}"
        );
        assert_eq!((noop.opcode, noop.status, noop.opaque), (OP_NOOP, 0, 9), "{flavor}: {noop:?}");
        drop(c);
        rss.assert_growth_below(32 * MIB, "a 100 MB binary value swallowed");

        // SET whose body claims 4 GiB: 32 MiB follow, then the client leaves.
        let mut c = scene.server.connect();
        let mut rss = RssWatch::new(&scene.server);
        c.send(&bin_packet(OP_SET, 1, 8, u32::MAX, 8, &set_extras(0, 0), b"a", &[]));
        let chunk = vec![b'z'; MIB as usize];
        for _ in 0..32 {
            if c.try_send(&chunk).is_err() {
                break; // refused and closed: fine
            }
        }
        rss.assert_growth_below(32 * MIB, "32 MiB of a 4 GiB binary body");
        drop(c);
        assert_eq!(scene.probe.get("a"), None, "{flavor}");
        scene.assert_settled("binary length attacks");
    }
}

// ---------------------------------------------------------------- connection buffers (issue 14)

/// The slowest probe round trip allowed beside hundreds of hostile clients: well above
/// what they cost on a busy CI machine (2.5 s was seen with other builds running), well
/// below a stall (before the shared buffer budget, a get waited over 5 s).
const CROWDED_ROUND_TRIP_MAX: Duration = Duration::from_millis(4500);

/// A `-t 2 -m 64` scene that `clients` more connections may join.
fn crowded_scene(flavor: Flavor, clients: usize) -> Scene {
    common::raise_fd_limit(clients as u64 + 256);
    Scene::start(flavor, &["-t", "2", "-m", "64", "-c", "2000"])
}

/// `n` small sets and gets through the probe, each answer checked and RSS sampled;
/// returns the slowest round trip.
fn probe_round_trips(probe: &mut Client, rss: &mut RssWatch<'_>, n: u64) -> Duration {
    let flavor = rss.server.flavor();
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let started = Instant::now();
        let v = common::value_for(i, 100);
        probe.set(&format!("s{i}"), &v);
        assert_eq!(probe.get(&format!("s{i}")), Some(v), "{flavor}");
        slowest = slowest.max(started.elapsed());
        rss.tick();
    }
    slowest
}

/// Stores a 1,000,000-byte value under `key` through the probe.
fn store_megabyte(scene: &mut Scene, key: &str) -> Vec<u8> {
    let big = common::value_for(14, 1_000_000);
    scene.probe.set(key, &big);
    big
}

both_engines! {
    reference;
    /// One ~2 KB line names a 1 MB value 1,000 times and its client does not read: the
    /// server holds about one output mark, not the gigabyte asked for (it held ~1 GB
    /// before: every key's value was copied, the mark checked only between requests).
    /// Then the client reads, and gets all 1,000 values and one END.
    fn one_get_line_naming_a_big_value_a_thousand_times(flavor) {
        let mut scene = Scene::start(flavor, &["-t", "2", "-m", "64"]);
        let big = store_megabyte(&mut scene, "b");
        let mut rss = RssWatch::new(&scene.server);
        // No small receive buffer here: with one below the MSS, Linux can leave the
        // window shut for good once the client stops reading, and this client reads
        // everything at the end.
        let mut c = scene.server.connect();
        c.send(format!("get{}\r\n", " b".repeat(1000)).as_bytes());
        probe_round_trips(&mut scene.probe, &mut rss, 40);
        // Measured: ~2 MiB (epoll), ~11 MiB (io_uring: one send in flight beside the
        // output's mark, and the provided buffers).
        rss.assert_growth_below(24 * MIB, "a get line naming a 1 MB value 1,000 times");
        let header = format!("VALUE b 0 {}\r\n", big.len());
        let one = header.len() + big.len() + 2;
        let mut seen = 0usize;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut tail = Vec::new();
        while seen < 1000 * one + 5 {
            let n = c.read_some(1 << 20, deadline).unwrap_or_else(|e| {
                panic!("{flavor}: answer ended after {seen} bytes: {e:?}")
            });
            seen += n;
            let buf = c.buffered().to_vec();
            tail.extend_from_slice(&buf[buf.len().saturating_sub(64)..]);
            if tail.len() > 128 {
                tail.drain(..tail.len() - 64);
            }
            c.clear_buffered();
        }
        assert_eq!(seen, 1000 * one + 5, "{flavor}: 1,000 values and END, nothing more");
        assert!(tail.ends_with(b"\r\nEND\r\n"), "{flavor}: ends {}", show(&tail));
        drop(c);
        scene.assert_settled("a get line naming a big value 1,000 times");
    }
}

both_engines! {
    reference;
    /// 400 clients each ask for a 1 MB value 20 times and never read. Each connection
    /// stays under its mark, and together they stay under the shared connection-buffer
    /// budget (64 MiB by default): past it their marks drop to 64 KiB and a get of a big
    /// value gets memcached's out-of-memory answer. Before, this held ~1 GB.
    fn many_stalled_readers_of_big_values_share_one_budget(flavor) {
        const READERS: usize = 400;
        let mut scene = crowded_scene(flavor, READERS);
        store_megabyte(&mut scene, "big");
        let mut rss = RssWatch::new(&scene.server);
        let readers: Vec<Client> = (0..READERS)
            .map(|_| {
                let mut c = scene.server.connect();
                c.set_recv_buffer(4096);
                c.send(&b"get big\r\n".repeat(20));
                rss.tick();
                c
            })
            .collect();
        let slowest = probe_round_trips(&mut scene.probe, &mut rss, 40);
        assert!(slowest < CROWDED_ROUND_TRIP_MAX, "{flavor}: a round trip took {slowest:?}");
        // The budget (64 MiB), plus what each connection may hold under pressure beyond
        // it: its allowance (32 KiB) and one small answer past its 64 KiB mark; the
        // rest is the allocator's and the engine's buffers. Measured: docs/testing.md.
        rss.assert_growth_below(
            64 * MIB + READERS as u64 * 128 * 1024,
            "400 readers not reading 20 MB each",
        );
        if !flavor.is_memcached() {
            let stats = scene.probe.stats();
            assert!(stat_u64(&stats, "ringcache_conn_buffer_refusals") > 0, "{flavor}");
        }
        drop(readers);
        scene.assert_settled("stalled readers of big values");
    }
}

both_engines! {
    reference;
    /// 300 clients each send a 1 MB set's header and all but the last byte of its
    /// value, then stall. They cost what the connection-buffer budget allows (64 MiB
    /// by default): past it, a connection whose unfinished request grows beyond 64 KiB
    /// is closed (memcached, which reads values into items, would refuse them once out
    /// of memory). Before, this held ~1 MB per client (482 MiB for 500).
    fn half_sent_big_sets_share_one_budget(flavor) {
        const WRITERS: usize = 300;
        let mut scene = crowded_scene(flavor, WRITERS);
        let mut rss = RssWatch::new(&scene.server);
        let body = vec![b'h'; 999_999];
        let writers: Vec<Client> = (0..WRITERS)
            .map(|i| {
                let mut c = scene.server.connect();
                let _ = c.try_send(format!("set half{i} 0 0 1000000\r\n").as_bytes());
                // A closed connection refuses the rest: that is the point.
                let _ = c.try_send(&body);
                rss.tick();
                c
            })
            .collect();
        let slowest = probe_round_trips(&mut scene.probe, &mut rss, 20);
        assert!(slowest < CROWDED_ROUND_TRIP_MAX, "{flavor}: a round trip took {slowest:?}");
        rss.assert_growth_below(
            64 * MIB + WRITERS as u64 * 160 * 1024,
            "300 half-sent 1 MB sets",
        );
        assert_eq!(scene.probe.get("half0"), None, "{flavor}: nothing half-sent is stored");
        drop(writers);
        scene.assert_settled("half-sent big sets");
    }
}
