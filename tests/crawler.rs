//! The LRU crawler: `curr_items`/`bytes` follow `flush_all` and expiry within seconds
//! (they stayed at their old values until a lookup met each dead item), the
//! `lru_crawler` commands with memcached 1.6.18's answers, the crawler's settings and
//! figures in `stats`/`stats settings`, and `cache_memlimit` growing and shrinking the
//! store at run time. The differential tests run the same sequences against Debian's
//! memcached and compare.
//!
//! No test sleeps to synchronise: each polls `stats` until a deadline.

#[macro_use]
mod common;

use common::*;
use std::time::{Duration, Instant};

/// How long the crawler may take to make the figures true (a pass starts every
/// second; memcached's LRU maintainer takes one to three).
const SETTLE: Duration = Duration::from_secs(10);

/// Polls `stats` until `done` holds or [`SETTLE`] passes; returns the last stats.
fn poll_stats(
    conn: &mut Client,
    mut done: impl FnMut(&std::collections::HashMap<String, String>) -> bool,
) -> (bool, std::collections::HashMap<String, String>) {
    let deadline = Instant::now() + SETTLE;
    loop {
        let stats = conn.stats();
        if done(&stats) {
            return (true, stats);
        }
        if Instant::now() > deadline {
            return (false, stats);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stores `n` items `k0`…, pipelined with noreply, then checks they all arrived.
fn fill(conn: &mut Client, n: usize, exptime: u32, value_len: usize) {
    let value = value_for(1, value_len);
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend_from_slice(format!("set k{i} 0 {exptime} {value_len} noreply\r\n").as_bytes());
        batch.extend_from_slice(&value);
        batch.extend_from_slice(b"\r\n");
    }
    conn.send(&batch);
    conn.roundtrip(b"mn\r\n", b"MN\r\n");
}

/// What `flush_all` and expiry leave counted after `SETTLE` at most: (curr_items,
/// bytes) after a flush of 100 items, then after 100 items with a 1 s TTL expired.
fn dead_items_leave_the_counts(server: &Server) -> [(u64, u64); 2] {
    let mut conn = server.connect();
    fill(&mut conn, 100, 0, 10);
    assert_eq!(stat_u64(&conn.stats(), "curr_items"), 100);
    conn.roundtrip(b"flush_all\r\n", b"OK\r\n");
    let (_, flushed) = poll_stats(&mut conn, |s| stat_u64(s, "curr_items") == 0);
    fill(&mut conn, 100, 1, 10);
    let (_, expired) = poll_stats(&mut conn, |s| stat_u64(s, "curr_items") == 0);
    [flushed, expired].map(|s| (stat_u64(&s, "curr_items"), stat_u64(&s, "bytes")))
}

both_engines! { reference;
    /// 100 sets then `flush_all`: `curr_items` and `bytes` go to 0 within seconds, as
    /// memcached's do; so do 100 items with a 1 s TTL. ringcache kept counting them.
    fn flushed_and_expired_items_leave_the_counts(flavor) {
        let server = Server::start(flavor, &[]);
        assert_eq!(dead_items_leave_the_counts(&server), [(0, 0), (0, 0)], "{flavor}");
        if !flavor.is_memcached() {
            let stats = server.connect().stats();
            assert_eq!(stat_u64(&stats, "crawler_reclaimed"), 200, "{flavor}");
            assert!(stat_u64(&stats, "crawler_items_checked") >= 200);
            assert_eq!(stat_u64(&stats, "expired_unfetched"), 100, "the flushed ones are not");
            assert!(stat_u64(&stats, "lru_crawler_starts") >= 2);
        }
    }
}

both_engines! {
    /// The same sequence against Debian's memcached and ringcache ends with the same
    /// `curr_items` and `bytes`.
    fn differential_counts_after_flush_and_expiry(flavor) {
        let memcached = Server::memcached(&[]);
        let ringcache = Server::start(flavor, &[]);
        assert_eq!(
            dead_items_leave_the_counts(&ringcache),
            dead_items_leave_the_counts(&memcached),
            "{flavor} against memcached"
        );
    }
}

both_engines! {
    /// With `-o no_lru_crawler` dead items stay counted (until met), `crawl` is refused
    /// as memcached refuses it, and `lru_crawler enable` brings the counts back.
    fn without_the_crawler_dead_items_stay_counted_until_it_is_enabled(flavor) {
        let server = Server::start(flavor, &["-o", "no_lru_crawler"]);
        let mut conn = server.connect();
        assert_eq!(stats_group(&mut conn, "settings")["lru_crawler"], "no");
        fill(&mut conn, 50, 1, 10);
        let start = stat_u64(&conn.stats(), "uptime");
        let (passed, stats) = poll_stats(&mut conn, |s| stat_u64(s, "uptime") >= start + 3);
        assert!(passed, "uptime did not advance");
        assert_eq!(stat_u64(&stats, "curr_items"), 50, "{flavor}: expired, still counted");
        assert_eq!(stat_u64(&stats, "lru_crawler_starts"), 0);
        conn.roundtrip(b"lru_crawler crawl all\r\n", b"CLIENT_ERROR lru crawler disabled\r\n");
        conn.roundtrip(b"lru_crawler metadump all\r\n", b"CLIENT_ERROR lru crawler disabled\r\n");
        conn.roundtrip(b"lru_crawler enable\r\n", b"OK\r\n");
        assert_eq!(stats_group(&mut conn, "settings")["lru_crawler"], "yes");
        let (gone, stats) = poll_stats(&mut conn, |s| stat_u64(s, "curr_items") == 0);
        assert!(gone, "{flavor}: {stats:?}");
        assert_eq!(stat_u64(&stats, "bytes"), 0);
        assert_eq!(stat_u64(&stats, "crawler_reclaimed"), 50);
        // `stats reset` zeroes the crawler's counters, as memcached's.
        conn.roundtrip(b"lru_crawler disable\r\nstats reset\r\n", b"OK\r\nRESET\r\n");
        let stats = conn.stats();
        for field in ["lru_crawler_starts", "crawler_reclaimed", "crawler_items_checked"] {
            assert_eq!(stat_u64(&stats, field), 0, "{flavor}: {field} after stats reset");
        }
    }
}

/// `lru_crawler`, `cache_memlimit` and `stats cachedump` requests with deterministic
/// answers, in order, as memcached 1.6.18 answers them (checked by the differential
/// test below). Each starts from the crawler enabled.
const SCRIPT: &[(&str, &str)] = &[
    ("lru_crawler", "ERROR"),
    (
        "lru_crawler enable",
        "ERROR failed to start lru crawler thread",
    ),
    ("lru_crawler disable", "OK"),
    ("lru_crawler disable", "OK"),
    ("lru_crawler crawl all", "CLIENT_ERROR lru crawler disabled"),
    ("lru_crawler crawl 0", "CLIENT_ERROR lru crawler disabled"),
    (
        "lru_crawler metadump 1",
        "CLIENT_ERROR lru crawler disabled",
    ),
    ("lru_crawler enable", "OK"),
    ("lru_crawler sleep", "ERROR"),
    (
        "lru_crawler sleep -1",
        "CLIENT_ERROR bad command line format",
    ),
    (
        "lru_crawler sleep abc",
        "CLIENT_ERROR bad command line format",
    ),
    (
        "lru_crawler sleep 1000001",
        "CLIENT_ERROR sleep must be one second or less",
    ),
    ("lru_crawler sleep 5 x", "ERROR"),
    ("lru_crawler sleep 1000000", "OK"),
    ("lru_crawler sleep 100", "OK"),
    (
        "lru_crawler tocrawl -1",
        "CLIENT_ERROR bad command line format",
    ),
    (
        "lru_crawler tocrawl abc",
        "CLIENT_ERROR bad command line format",
    ),
    ("lru_crawler tocrawl 4294967296", "OK"),
    ("lru_crawler tocrawl 0", "OK"),
    ("lru_crawler crawl", "ERROR"),
    ("lru_crawler crawl 0", "BADCLASS invalid class id"),
    ("lru_crawler crawl 64", "BADCLASS invalid class id"),
    ("lru_crawler crawl 1,abc", "BADCLASS invalid class id"),
    ("lru_crawler crawl ,", "NOTSTARTED no items to crawl"),
    ("lru_crawler crawl hash", "ERROR an unknown error happened"),
    ("lru_crawler crawl all noreply", "ERROR"),
    ("lru_crawler crawl all all", "ERROR"),
    ("lru_crawler metadump", "ERROR"),
    ("lru_crawler metadump 0", "BADCLASS invalid class id"),
    ("lru_crawler metadump 63", "END"),
    // Last of the metadumps: memcached keeps the dump's client slot after this answer
    // and refuses the next metadump ("ERROR an unknown error happened").
    ("lru_crawler metadump ,", "NOTSTARTED no items to crawl"),
    ("lru_crawler foo", "ERROR"),
    ("lru_crawler enable noreply", "ERROR"),
    ("stats cachedump", "CLIENT_ERROR bad command line"),
    ("stats cachedump 1", "CLIENT_ERROR bad command line"),
    (
        "stats cachedump abc 1",
        "CLIENT_ERROR bad command line format",
    ),
    (
        "stats cachedump 1 -1",
        "CLIENT_ERROR bad command line format",
    ),
    ("stats cachedump 64 0", "CLIENT_ERROR Illegal slab id"),
    ("stats cachedump 0 0", "END"),
    ("stats cachedump 63 0", "END"),
    ("cache_memlimit", "ERROR"),
    ("cache_memlimit abc", "ERROR"),
    ("cache_memlimit -1", "ERROR"),
    (
        "cache_memlimit 0",
        "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m",
    ),
    (
        "cache_memlimit 7",
        "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m",
    ),
    (
        "cache_memlimit 1000000001",
        "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes",
    ),
    ("cache_memlimit 9 noreply extra", "ERROR"),
    ("cache_memlimit 64 x", "OK"),
    ("cache_memlimit 1000000000", "OK"),
    ("cache_memlimit 64", "OK"),
];

/// Runs [`SCRIPT`]; returns each request with its answer. A `crawl` answered `BUSY`
/// (a pass was running) is tried again until the deadline.
fn run_script(server: &Server) -> Vec<(String, String)> {
    try_run_script(server).unwrap_or_else(|stalled| panic!("{stalled}"))
}

/// [`run_script`], or which request got no answer line in time (and what came).
fn try_run_script(server: &Server) -> Result<Vec<(String, String)>, String> {
    let mut conn = server.connect();
    let mut answers = Vec::new();
    for (request, _) in SCRIPT {
        let deadline = Instant::now() + SETTLE;
        loop {
            conn.send(format!("{request}\r\n").as_bytes());
            let line = conn
                .try_read_until(Instant::now() + conn.timeout, |b| {
                    memfind(b, b"\r\n").map(|i| i + 2)
                })
                .map_err(|(end, got)| {
                    format!("{request:?}: no answer line ({end:?}); received {got:?}")
                })?;
            let line = String::from_utf8(line).expect("ASCII answer");
            let line = line.trim_end().to_string();
            if line.starts_with("BUSY") && Instant::now() < deadline {
                continue;
            }
            answers.push((request.to_string(), line));
            break;
        }
    }
    Ok(answers)
}

both_engines! { reference;
    /// Every request of the script gets memcached 1.6.18's answer; `cache_memlimit
    /// <mb> noreply` answers nothing.
    fn operator_commands_answer_as_memcached(flavor) {
        let server = Server::start(flavor, &[]);
        let want: Vec<(String, String)> =
            SCRIPT.iter().map(|(r, a)| (r.to_string(), a.to_string())).collect();
        assert_eq!(run_script(&server), want, "{flavor}");
        let mut conn = server.connect();
        conn.send(b"cache_memlimit 1 noreply\r\ncache_memlimit 32 noreply\r\n");
        conn.roundtrip(b"version\r\n", b"VERSION 1.6.18\r\n");
        assert_eq!(stat_u64(&conn.stats(), "limit_maxbytes"), 32 << 20, "{flavor}");
    }
}

both_engines! {
    /// The script against Debian's memcached and ringcache, side by side. memcached's
    /// `lru_crawler disable` stops its crawler thread asynchronously: on a loaded machine
    /// the next commands can meet the thread still stopping and answer `ERROR an unknown
    /// error happened` or `failed to start lru crawler thread`. So memcached gets up to
    /// three fresh runs, and each of its answers that differs (or the request it stalled
    /// on) is printed. A ringcache run that stalls fails, naming the request.
    fn differential_operator_commands(flavor) {
        let ringcache = Server::start(flavor, &[]);
        let ours = try_run_script(&ringcache).unwrap_or_else(|e| panic!("ringcache {flavor}: {e}"));
        let mut theirs = Vec::new();
        for attempt in 1..=3 {
            let memcached = Server::memcached(&[]);
            // A memcached run that stalls (its crawler thread still stopping) counts as
            // one that differs.
            theirs = match try_run_script(&memcached) {
                Ok(answers) => answers,
                Err(stalled) => {
                    eprintln!("{flavor}: memcached run {attempt} stalled: {stalled}");
                    continue;
                }
            };
            if theirs == ours {
                return;
            }
            eprintln!("{flavor}: memcached run {attempt} differs: {:?}",
                theirs.iter().zip(&ours).filter(|(a, b)| a != b).collect::<Vec<_>>());
        }
        assert_eq!(ours, theirs, "{flavor} against memcached");
    }
}

both_engines! {
    /// A `crawl` while a pass runs is `BUSY` (memcached's answer); `lru_crawler_running`
    /// says so; a shorter sleep lets the pass finish.
    fn crawl_while_a_pass_runs_is_busy(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        fill(&mut conn, 1000, 0, 10);
        // One slice per second: a pass over 8 shards takes seconds.
        conn.roundtrip(b"lru_crawler sleep 1000000\r\n", b"OK\r\n");
        let deadline = Instant::now() + SETTLE;
        loop {
            conn.send(b"lru_crawler crawl all\r\n");
            let line = conn.read_line();
            if line == b"OK\r\n" {
                break;
            }
            assert_eq!(line, b"BUSY currently processing crawler request\r\n");
            assert!(Instant::now() < deadline, "a pass never ended");
        }
        let starts = stat_u64(&conn.stats(), "lru_crawler_starts");
        conn.roundtrip(b"lru_crawler crawl 1\r\n", b"BUSY currently processing crawler request\r\n");
        let (running, _) = poll_stats(&mut conn, |s| stat_u64(s, "lru_crawler_running") == 1);
        assert!(running, "{flavor}: the pass asked for never ran");
        conn.roundtrip(b"lru_crawler crawl all\r\n", b"BUSY currently processing crawler request\r\n");
        conn.roundtrip(b"lru_crawler sleep 0\r\n", b"OK\r\n");
        let (ended, stats) = poll_stats(&mut conn, |s| stat_u64(s, "lru_crawler_running") == 0);
        assert!(ended, "{flavor}: {stats:?}");
        assert!(stat_u64(&stats, "lru_crawler_starts") > starts);
        assert!(stat_u64(&stats, "crawler_items_checked") >= 1000);
    }
}

both_engines! {
    /// The crawler's settings: memcached's defaults and `-o` options in `stats
    /// settings`, changed by `lru_crawler sleep|tocrawl|disable`.
    fn crawler_settings(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        let settings = stats_group(&mut conn, "settings");
        assert_eq!(
            (&*settings["lru_crawler"], &*settings["lru_crawler_sleep"], &*settings["lru_crawler_tocrawl"]),
            ("yes", "100", "0")
        );
        conn.roundtrip(b"lru_crawler sleep 7\r\nlru_crawler tocrawl 9\r\nlru_crawler disable\r\n", b"OK\r\n");
        conn.expect(b"OK\r\nOK\r\n");
        let settings = stats_group(&mut conn, "settings");
        assert_eq!(
            (&*settings["lru_crawler"], &*settings["lru_crawler_sleep"], &*settings["lru_crawler_tocrawl"]),
            ("no", "7", "9")
        );
        let stats = conn.stats();
        for field in ["lru_crawler_running", "lru_crawler_starts", "crawler_reclaimed", "crawler_items_checked"] {
            assert!(stats.contains_key(field), "{flavor}: stats lacks {field}");
        }
        let server = Server::start(flavor, &["-o", "lru_crawler_sleep=5,lru_crawler_tocrawl=7"]);
        let settings = stats_group(&mut server.connect(), "settings");
        assert_eq!((&*settings["lru_crawler_sleep"], &*settings["lru_crawler_tocrawl"]), ("5", "7"));
    }
}

both_engines! {
    /// `cache_memlimit` lowers the limit at run time: the store evicts down to it (in
    /// slices, while it keeps serving), `limit_maxbytes` and `stats settings maxbytes`
    /// follow; raising it again lets the store grow back.
    fn cache_memlimit_shrinks_and_grows_the_store(flavor) {
        let server = Server::start(flavor, &["-m", "64"]);
        let mut conn = server.connect();
        fill(&mut conn, 40_000, 0, 1000);
        let before = conn.stats();
        assert!(stat_u64(&before, "bytes") > 40 << 20, "{before:?}");
        conn.roundtrip(b"cache_memlimit 16\r\n", b"OK\r\n");
        let (shrunk, stats) = poll_stats(&mut conn, |s| stat_u64(s, "bytes") <= 16 << 20);
        assert!(shrunk, "{flavor}: {stats:?}");
        assert_eq!(stat_u64(&stats, "limit_maxbytes"), 16 << 20);
        assert!(stat_u64(&stats, "evictions") > 0);
        assert!(stat_u64(&stats, "bytes") > 12 << 20, "evicted down to the limit, not below");
        assert_eq!(stats_group(&mut conn, "settings")["maxbytes"], (16u64 << 20).to_string());
        // The most recent writes survive; the store keeps serving meanwhile.
        assert_eq!(conn.get("k39999"), Some(value_for(1, 1000)));
        conn.roundtrip(b"cache_memlimit 64\r\n", b"OK\r\n");
        fill(&mut conn, 40_000, 0, 1000);
        let after = conn.stats();
        assert!(stat_u64(&after, "bytes") > 40 << 20, "{flavor}: {after:?}");
        assert_eq!(stat_u64(&after, "limit_maxbytes"), 64 << 20);
    }
}

/// The crawler thread's voluntary context switches so far (from `/proc`). The thread
/// may start a moment after the port file is written (the listeners are bound first,
/// as memcached binds them before dropping privileges): it is waited for.
fn crawler_wakeups(server: &Server) -> u64 {
    let mut found = None;
    let seen = wait_until(IO_TIMEOUT, || {
        found = crawler_switches(server);
        found.is_some()
    });
    assert!(seen, "no crawler thread in /proc/{}/task", server.pid());
    found.expect("seen")
}

fn crawler_switches(server: &Server) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{}/task", server.pid())).expect("/proc tasks");
    for task in tasks {
        let path = task.expect("task entry").path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if name.trim() == "crawler" {
            let status = std::fs::read_to_string(path.join("status")).expect("task status");
            return status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse().ok());
        }
    }
    None
}

both_engines! {
    /// A disabled crawler's thread sleeps: a few wake-ups in seconds, not one per
    /// millisecond (it polled once its first pass came due).
    fn a_disabled_crawler_sleeps(flavor) {
        let server = Server::start(flavor, &["-o", "no_lru_crawler"]);
        let mut conn = server.connect();
        let start = stat_u64(&conn.stats(), "uptime");
        let before = crawler_wakeups(&server);
        let (passed, _) = poll_stats(&mut conn, |s| stat_u64(s, "uptime") >= start + 3);
        assert!(passed, "uptime did not advance");
        let woke = crawler_wakeups(&server) - before;
        assert!(woke <= 10, "{flavor}: the disabled crawler woke {woke} times in 3 s");
    }
}

both_engines! {
    /// Items that never expire are not walked every second: once a full pass found
    /// nothing that could die, no pass starts for seconds (2 million such items cost 7 %
    /// of a core idle). An item written with a TTL, and a delayed `flush_all`, bring
    /// the passes back, so the counts still follow within seconds.
    fn nothing_to_reclaim_no_passes(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        fill(&mut conn, 1000, 0, 10);
        let (passed, _) = poll_stats(&mut conn, |s| stat_u64(s, "lru_crawler_starts") >= 1);
        assert!(passed, "{flavor}: the crawler never ran");
        // A pass every second before: three in three seconds. Now at most one, the one
        // that meets the items if the first ran before the fill.
        let before = conn.stats();
        let start = stat_u64(&before, "uptime");
        let (passed, after) = poll_stats(&mut conn, |s| stat_u64(s, "uptime") >= start + 3);
        assert!(passed, "uptime did not advance");
        let grew = |name| stat_u64(&after, name) - stat_u64(&before, name);
        assert!(grew("lru_crawler_starts") <= 1, "{flavor}: {} passes", grew("lru_crawler_starts"));
        assert!(grew("crawler_items_checked") <= 1000, "{flavor}: {} checked", grew("crawler_items_checked"));

        conn.roundtrip(b"set short 0 1 1\r\nx\r\n", b"STORED\r\n");
        assert_eq!(stat_u64(&conn.stats(), "curr_items"), 1001);
        let (gone, _) = poll_stats(&mut conn, |s| stat_u64(s, "curr_items") == 1000);
        assert!(gone, "{flavor}: the item with a 1 s TTL stayed counted");

        conn.roundtrip(b"flush_all 2\r\n", b"OK\r\n");
        let (flushed, _) = poll_stats(&mut conn, |s| stat_u64(s, "curr_items") == 0);
        assert!(flushed, "{flavor}: a delayed flush left items counted");
    }
}
