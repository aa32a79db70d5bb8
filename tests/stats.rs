//! `stats`: the fields memcached tools read are present, the values that are facts
//! (pid, version, limits) are right, and the counters a scripted session moves end where
//! memcached's do. (The differential table skips `stats`: its values differ by nature.)

#[macro_use]
mod common;

use common::{stat_u64, Client, Server};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Fields every memcached monitoring tool expects in `stats`, besides [`COUNTERS`].
const FIELDS: &[&str] = &[
    "pid",
    "uptime",
    "time",
    "version",
    "pointer_size",
    "rusage_user",
    "rusage_system",
    "max_connections",
    "curr_connections",
    "total_connections",
    "rejected_connections",
    "cmd_flush",
    "get_expired",
    "get_flushed",
    "bytes_read",
    "bytes_written",
    "limit_maxbytes",
    "threads",
    "bytes",
];

/// Counters whose values after [`SCRIPT`] are facts about the requests, not about the
/// implementation: they must equal memcached's.
const COUNTERS: &[&str] = &[
    "cmd_get",
    "cmd_set",
    "cmd_touch",
    "get_hits",
    "get_misses",
    "delete_misses",
    "delete_hits",
    "incr_misses",
    "incr_hits",
    "decr_misses",
    "decr_hits",
    "cas_misses",
    "cas_hits",
    "cas_badval",
    "touch_hits",
    "touch_misses",
    "curr_items",
    "total_items",
    "evictions",
];

/// A session touching every counter in [`COUNTERS`], with the exact replies.
const SCRIPT: &[(&[u8], &[u8])] = &[
    (b"set a 0 0 1\r\nA\r\n", b"STORED\r\n"),
    (b"set b 0 0 1\r\nB\r\n", b"STORED\r\n"),
    (b"add a 0 0 1\r\nX\r\n", b"NOT_STORED\r\n"),
    (b"replace c 0 0 1\r\nX\r\n", b"NOT_STORED\r\n"),
    (b"get a\r\n", b"VALUE a 0 1\r\nA\r\nEND\r\n"),
    (b"get zz\r\n", b"END\r\n"),
    (
        b"get a b c\r\n",
        b"VALUE a 0 1\r\nA\r\nVALUE b 0 1\r\nB\r\nEND\r\n",
    ),
    (b"delete b\r\n", b"DELETED\r\n"),
    (b"delete b\r\n", b"NOT_FOUND\r\n"),
    (b"incr n 1\r\n", b"NOT_FOUND\r\n"),
    (b"set n 0 0 1\r\n1\r\n", b"STORED\r\n"),
    (b"incr n 1\r\n", b"2\r\n"),
    (b"decr n 1\r\n", b"1\r\n"),
    (b"decr m 1\r\n", b"NOT_FOUND\r\n"),
    (b"cas zz 0 0 1 1\r\nX\r\n", b"NOT_FOUND\r\n"),
    (b"cas a 0 0 1 999999\r\nX\r\n", b"EXISTS\r\n"),
    (b"touch a 100\r\n", b"TOUCHED\r\n"),
    (b"touch zz 100\r\n", b"NOT_FOUND\r\n"),
];

fn run_script(conn: &mut Client) {
    for (req, want) in SCRIPT {
        conn.roundtrip(req, want);
    }
    // A successful cas needs the current unique.
    conn.send(b"gets n\r\n");
    let reply = conn.read_until_end_of_get();
    let text = String::from_utf8_lossy(&reply);
    let cas = text
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(4))
        .unwrap_or_else(|| panic!("gets n answered {text:?}"))
        .to_string();
    conn.roundtrip(
        format!("cas n 0 0 1 {cas}\r\n7\r\n").as_bytes(),
        b"STORED\r\n",
    );
}

fn counters(stats: &HashMap<String, String>) -> Vec<(&'static str, u64)> {
    COUNTERS.iter().map(|n| (*n, stat_u64(stats, n))).collect()
}

#[test]
fn harness_memcached_counters_are_deterministic() {
    let run = || {
        let server = Server::memcached(&[]);
        let mut conn = server.connect();
        run_script(&mut conn);
        counters(&conn.stats())
    };
    assert_eq!(run(), run());
}

both_engines! {
    /// The counters moved by one scripted session equal memcached's.
    fn counters_match_memcached(flavor) {
        let reference = {
            let server = Server::memcached(&[]);
            let mut conn = server.connect();
            run_script(&mut conn);
            counters(&conn.stats())
        };
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        run_script(&mut conn);
        let got = counters(&conn.stats());
        let diffs: Vec<String> = reference
            .iter()
            .zip(&got)
            .filter(|(r, g)| r != g)
            .map(|((name, r), (_, g))| format!("{name}: memcached {r}, {flavor} {g}"))
            .collect();
        assert!(diffs.is_empty(), "counters differ:\n{}", diffs.join("\n"));
    }
}

both_engines! {
    reference;
    /// The fields are there and the facts among them are true.
    fn fields_and_facts(flavor) {
        let server = Server::start(flavor, &["-c", "100", "-m", "64"]);
        let mut conn = server.connect();
        let version = conn.version();
        let stats = conn.stats();
        let missing: Vec<&str> = FIELDS
            .iter()
            .chain(COUNTERS)
            .copied()
            .filter(|f| !stats.contains_key(*f))
            .collect();
        assert!(missing.is_empty(), "{flavor}: stats lacks {missing:?}");
        assert_eq!(stat_u64(&stats, "pid"), u64::from(server.pid()));
        assert_eq!(format!("VERSION {}", stats["version"]), version);
        assert_eq!(stat_u64(&stats, "limit_maxbytes"), 64 * 1024 * 1024);
        assert_eq!(stat_u64(&stats, "threads"), 1);
        assert_eq!(stat_u64(&stats, "max_connections"), 100);
        assert_eq!(stat_u64(&stats, "pointer_size"), 64);
        assert!(stat_u64(&stats, "uptime") < 60, "{flavor}: uptime {}", stats["uptime"]);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs();
        let time = stat_u64(&stats, "time");
        assert!(time.abs_diff(now) <= 5, "{flavor}: time {time}, now {now}");
        for f in ["rusage_user", "rusage_system"] {
            let v: f64 = stats[f].parse().unwrap_or_else(|e| panic!("{f}={:?}: {e}", stats[f]));
            assert!(v >= 0.0);
        }
        assert!(stat_u64(&stats, "bytes_read") > 0);
        assert_eq!(stat_u64(&stats, "curr_items"), 0);
        assert_eq!(stat_u64(&stats, "cmd_flush"), 0);
        conn.roundtrip(b"flush_all\r\n", b"OK\r\n");
        assert_eq!(stat_u64(&conn.stats(), "cmd_flush"), 1);
    }
}

both_engines! {
    reference;
    /// curr_connections and total_connections follow clients coming and going.
    fn connection_counts_follow_clients(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        let before = conn.stats();
        let (curr, total) = (stat_u64(&before, "curr_connections"), stat_u64(&before, "total_connections"));
        let mut extra: Vec<Client> = (0..3).map(|_| server.connect()).collect();
        for c in &mut extra {
            c.version();
        }
        let during = conn.stats();
        assert_eq!(stat_u64(&during, "curr_connections"), curr + 3, "{flavor}");
        assert_eq!(stat_u64(&during, "total_connections"), total + 3, "{flavor}");
        drop(extra);
        // `conn` plus the probe connection.
        server.wait_curr_connections(curr + 1, Duration::from_secs(5));
    }
}
