//! Hostile use of the operator commands, on both engines: watchers that never read
//! while other clients work (the workers are not held up, memory stays bounded, the
//! watcher loses lines and is told so), the most watchers there may be, counting a flood
//! of distinct key prefixes, and malformed operator lines. Each ends by checking that
//! the server still answers correctly and that `curr_connections` comes back.

#[macro_use]
mod common;
mod hostile_scene;

use common::*;
use hostile_scene::*;
use std::time::{Duration, Instant};

/// Every client's gets and sets, pipelined in batches: `rounds` batches of `batch`.
fn work(server: &Server, client: usize, rounds: usize, batch: usize) {
    let mut c = server.connect();
    for round in 0..rounds {
        let mut requests = Vec::new();
        for i in 0..batch {
            let key = format!("c{client}:k{}", (round * batch + i) % 500);
            requests.extend_from_slice(
                format!("set {key} 0 0 8 noreply\r\nvalue-{i:02}\r\nget {key}\r\n").as_bytes(),
            );
        }
        c.send(&requests);
        let mut ends = 0;
        c.read_until("a batch of gets", |b| {
            ends = b.windows(5).filter(|w| w == b"END\r\n").count();
            (ends == batch).then_some(b.len())
        });
    }
}

both_engines! {
    /// Watchers of every kind that never read while four clients work: the clients
    /// finish in good time (no worker waits for a watcher), RSS grows by little more
    /// than the watchers' bounded queues, and the lines the watchers could not take are
    /// counted as skipped.
    fn watchers_that_never_read_hold_up_no_one(flavor) {
        let mut scene = Scene::start(flavor, &["-t", "2"]);
        let mut watchers = Vec::new();
        for _ in 0..4 {
            let mut w = scene.server.connect();
            w.set_recv_buffer(4096);
            w.roundtrip(b"watch fetchers mutations evictions deletions connevents\r\n", b"OK\r\n");
            watchers.push(w);
        }
        let mut rss = RssWatch::new(&scene.server);
        let started = Instant::now();
        std::thread::scope(|s| {
            for client in 0..4 {
                let server = &scene.server;
                s.spawn(move || work(server, client, 50, 500));
            }
        });
        let took = started.elapsed();
        rss.assert_growth_below(12 * MIB, "4 watchers never reading 400k lines");
        // 100k sets and 100k gets on a loaded 2-core machine take well under a second;
        // a worker waiting for a watcher would never finish.
        assert!(took < Duration::from_secs(30), "{flavor}: the clients took {took:?}");
        let s = scene.probe.stats();
        assert!(stat_u64(&s, "log_watcher_skipped") > 0, "{flavor}: nothing skipped");
        assert_eq!(stat_u64(&s, "log_watchers"), 4, "{flavor}");
        drop(watchers);
        scene.assert_settled("watchers that never read");
        let gone = wait_until(SETTLE, || stat_u64(&scene.probe.stats(), "log_watchers") == 0);
        assert!(gone, "{flavor}: closed watchers still counted");
    }
}

both_engines! {
    /// Twenty watchers (the most there may be) that never read, and a watcher that
    /// vanishes with a reset: memory stays bounded, the twenty-first is refused, a
    /// reset watcher's place is freed.
    fn twenty_stuck_watchers_and_a_reset_one(flavor) {
        let mut scene = Scene::start(flavor, &[]);
        let mut rss = RssWatch::new(&scene.server);
        let mut watchers = Vec::new();
        for _ in 0..20 {
            let mut w = scene.server.connect();
            w.set_recv_buffer(4096);
            w.roundtrip(b"watch fetchers\r\n", b"OK\r\n");
            watchers.push(w);
        }
        scene.probe.roundtrip(b"watch\r\n", b"WATCHER_TOO_MANY log watcher limit reached\r\n");
        work(&scene.server, 0, 40, 500);
        rss.assert_growth_below(12 * MIB, "20 watchers never reading 20k lines each");
        let reset = watchers.pop().unwrap();
        reset.set_linger_zero();
        drop(reset);
        let freed = wait_until(SETTLE, || stat_u64(&scene.probe.stats(), "log_watchers") == 19);
        assert!(freed, "{flavor}: the reset watcher is still counted");
        let mut again = scene.server.connect();
        again.roundtrip(b"watch mutations\r\n", b"OK\r\n");
        drop((watchers, again));
        scene.assert_settled("20 stuck watchers");
    }
}

both_engines! { reference;
    /// A watcher that sends a flood after `watch` (memcached stops reading it): the
    /// bytes are dropped, not kept, and nothing it sent runs.
    fn a_watcher_flooding_input_is_ignored(flavor) {
        let mut scene = Scene::start(flavor, &[]);
        let mut rss = RssWatch::new(&scene.server);
        let mut w = scene.server.connect();
        w.roundtrip(b"watch mutations\r\n", b"OK\r\n");
        let flood = b"set flooded 0 0 1\r\nx\r\n".repeat(4096);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut sent = 0;
        // memcached reads nothing more: the flood stops when its socket buffer is full.
        w.stream.set_write_timeout(Some(Duration::from_millis(200))).unwrap();
        while sent < 64 * MIB && Instant::now() < deadline && w.try_send(&flood).is_ok() {
            sent += flood.len() as u64;
        }
        rss.assert_growth_below(8 * MIB, "a watcher sending a flood");
        assert_eq!(scene.probe.get("flooded"), None, "{flavor}");
        drop(w);
        // memcached notices a closed watcher only when it writes it a line.
        let conns = scene.conns;
        let gone = wait_until(SETTLE, || {
            scene.probe.set("poke", b"1");
            stat_u64(&scene.probe.stats(), "curr_connections") <= conns
        });
        assert!(gone, "{flavor}: the closed watcher is still counted");
        scene.assert_settled("a flooding watcher");
    }
}

both_engines! {
    /// `stats detail on` and keys under 100 000 distinct prefixes: memory stays bounded
    /// (at most 4096 prefixes are counted) and the dump stays a bounded answer.
    fn a_flood_of_prefixes_is_bounded(flavor) {
        let mut scene = Scene::start(flavor, &[]);
        scene.probe.roundtrip(b"stats detail on\r\n", b"OK\r\n");
        let mut rss = RssWatch::new(&scene.server);
        let mut c = scene.server.connect();
        for batch in 0..100 {
            let gets: String = (0..1000).map(|i| format!("get p{batch}x{i}:k\r\n")).collect();
            c.send(gets.as_bytes());
            c.read_until("1000 misses", |b| (b.len() >= 5000).then_some(5000));
        }
        rss.assert_growth_below(16 * MIB, "100 000 distinct prefixes");
        scene.probe.send(b"stats detail dump\r\n");
        let dump = scene.probe.read_until("the dump", |b| b.ends_with(b"END\r\n").then_some(b.len()));
        let lines = dump.split(|&b| b == b'\n').filter(|l| l.starts_with(b"PREFIX ")).count();
        assert_eq!(lines, 4096, "{flavor}");
        scene.probe.roundtrip(b"stats detail off\r\n", b"OK\r\n");
        scene.probe.roundtrip(b"stats reset\r\n", b"RESET\r\n");
        scene.probe.roundtrip(b"stats detail dump\r\n", b"END\r\n");
        drop(c);
        scene.assert_settled("a flood of prefixes");
    }
}

both_engines! { reference;
    /// Malformed operator lines: huge numbers, 30 words, control bytes, every command
    /// cut short. Each gets an answer (or silence for `noreply`) and the connection goes
    /// on.
    fn malformed_operator_lines(flavor) {
        let mut scene = Scene::start(flavor, &[]);
        let words = "fetchers ".repeat(30);
        let lines: Vec<String> = vec![
            // (23 words of kinds would be a valid watch, as in memcached.)
            format!("watch x {words}"),
            "slabs reassign 99999999999999999999 1".into(),
            "slabs automove 99999999999999999999".into(),
            "slabs automove ratio 1e99999".into(),
            "lru tune 99999999999999999999 1 1 1".into(),
            "lru tune 1 1 1e-99999 1".into(),
            "lru temp_ttl 99999999999999999999".into(),
            format!("lru {words}"),
            format!("slabs {words}"),
            "stats detail \u{1}on".into(),
            "shutdown \tgraceful".into(),
            "verbosity 99999999999999999999".into(),
            "lru tune 10 20 0.1\t2.0".into(),
        ];
        let mut c = scene.server.connect();
        for line in &lines {
            c.send(format!("{line}\r\nversion\r\n").as_bytes());
            let reply = c.read_until("an answer and VERSION", |b| memfind(b, b"VERSION ").map(|at| at + 16));
            assert!(reply.ends_with(b"VERSION 1.6.18\r\n"), "{flavor} {line:?}: {}", show(&reply));
        }
        drop(c);
        scene.assert_settled("malformed operator lines");
    }
}
