//! `stats`: the fields memcached tools read are present and in memcached's order, the
//! values that are facts (pid, version, limits) are right, the counters a scripted
//! session moves end where memcached's do, `stats reset` clears what memcached's clears,
//! and `stats settings|conns|items|slabs` parse the way exporters parse them (Prometheus
//! memcached_exporter splits each line on single spaces: `STAT name value`, with
//! `items:<class>:<name>` and `<class>:<name>` keys). (The differential table skips
//! `stats`: its values differ by nature.)

#[macro_use]
mod common;

use common::{stat_u64, Client, Server};
use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
    "total_items",
    "evictions",
    "cmd_flush",
    "cmd_meta",
    "store_too_large",
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
    (b"mn\r\n", b"MN\r\n"),
    (b"me zz\r\n", b"EN\r\n"),
];

/// What the script does after [`SCRIPT`] and its cas: a value over the item limit, then
/// a flush and a get of a flushed item.
const TAIL: &[(&[u8], &[u8])] = &[(b"flush_all\r\n", b"OK\r\n"), (b"get a\r\n", b"END\r\n")];

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
    let mut big = b"set big 0 0 1048577\r\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 1048577));
    big.extend_from_slice(b"\r\n");
    conn.roundtrip(&big, b"SERVER_ERROR object too large for cache\r\n");
    for (req, want) in TAIL {
        conn.roundtrip(req, want);
    }
}

/// `stats <group>` as ordered (name, value) pairs; every line must be exactly
/// `STAT <name> <value>` (three tokens split on single spaces), as exporters require.
fn stats_group(conn: &mut Client, group: &str) -> Vec<(String, String)> {
    let cmd = if group.is_empty() {
        "stats\r\n".to_string()
    } else {
        format!("stats {group}\r\n")
    };
    conn.send(cmd.as_bytes());
    let reply = conn.read_until("stats", |b| {
        (b.starts_with(b"END\r\n") || b.ends_with(b"\r\nEND\r\n")).then_some(b.len())
    });
    let text = String::from_utf8(reply).expect("stats is text");
    text.lines()
        .take_while(|l| *l != "END")
        .map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            assert!(
                parts.len() == 3
                    && parts[0] == "STAT"
                    && !parts[1].is_empty()
                    && !parts[2].is_empty(),
                "`stats {group}` line {line:?} is not `STAT <name> <value>`"
            );
            (parts[1].to_string(), parts[2].to_string())
        })
        .collect()
}

fn names(pairs: &[(String, String)]) -> Vec<&str> {
    pairs.iter().map(|(n, _)| n.as_str()).collect()
}

/// Checks that the names `ours` shares with `reference` come in the same order, that
/// every name of ours is either one of memcached's or ringcache's own
/// (`ringcache_…`), and that `required` are all there.
fn assert_same_order(group: &str, reference: &[&str], ours: &[&str], required: &[&str]) {
    let shared: Vec<&str> = ours
        .iter()
        .copied()
        .filter(|n| reference.contains(n))
        .collect();
    let reference_order: Vec<&str> = reference
        .iter()
        .copied()
        .filter(|n| shared.contains(n))
        .collect();
    assert_eq!(
        shared, reference_order,
        "`stats {group}`: order differs from memcached's"
    );
    let foreign: Vec<&&str> = ours
        .iter()
        .filter(|n| !reference.contains(n) && !n.starts_with("ringcache_"))
        .collect();
    assert!(
        foreign.is_empty(),
        "`stats {group}`: names memcached does not print: {foreign:?}"
    );
    let missing: Vec<&&str> = required.iter().filter(|n| !ours.contains(n)).collect();
    assert!(missing.is_empty(), "`stats {group}` lacks {missing:?}");
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
        let missing: Vec<&str> = REQUIRED_GENERAL
            .iter()
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

/// Every field the memcached exporters and the issue name, for `stats`.
const REQUIRED_GENERAL: &[&str] = &[
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
    "connection_structures",
    "cmd_get",
    "cmd_set",
    "cmd_flush",
    "cmd_touch",
    "cmd_meta",
    "get_hits",
    "get_misses",
    "get_expired",
    "get_flushed",
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
    "store_too_large",
    "store_no_memory",
    "auth_cmds",
    "auth_errors",
    "bytes_read",
    "bytes_written",
    "limit_maxbytes",
    "accepting_conns",
    "listen_disabled_num",
    "threads",
    "bytes",
    "curr_items",
    "total_items",
    "expired_unfetched",
    "evicted_unfetched",
    "evictions",
    "reclaimed",
];

const REQUIRED_SETTINGS: &[&str] = &[
    "maxbytes",
    "maxconns",
    "tcpport",
    "udpport",
    "inter",
    "verbosity",
    "evictions",
    "domain_socket",
    "umask",
    "num_threads",
    "cas_enabled",
    "tcp_backlog",
    "binding_protocol",
    "item_size_max",
    "maxconns_fast",
    "flush_enabled",
    "idle_timeout",
];

both_engines! {
    /// `stats` and `stats settings` print memcached's names in memcached's order (the
    /// names ringcache shares with memcached 1.6.18, read from the reference server), and
    /// nothing else but `ringcache_…` figures.
    fn names_follow_memcached_order(flavor) {
        let reference = Server::memcached(&[]);
        let mut mc = reference.connect();
        let mc_general = stats_group(&mut mc, "");
        let mc_settings = stats_group(&mut mc, "settings");
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        let general = stats_group(&mut conn, "");
        let settings = stats_group(&mut conn, "settings");
        assert_same_order("", &names(&mc_general), &names(&general), REQUIRED_GENERAL);
        assert_same_order("settings", &names(&mc_settings), &names(&settings), REQUIRED_SETTINGS);
        // The exporter parses these as numbers and rusage as `seconds.micros`.
        for (name, value) in &general {
            if ["version", "ringcache_version", "ringcache_engine", "ringcache_uring_features"].contains(&name.as_str()) {
                continue;
            }
            if name.starts_with("rusage_") {
                let (s, us) = value.split_once('.').unwrap_or_else(|| panic!("{name}={value}"));
                assert!(s.parse::<u64>().is_ok() && us.len() == 6 && us.parse::<u32>().is_ok(), "{name}={value}");
            } else {
                assert!(value.parse::<f64>().is_ok(), "{flavor}: {name}={value} is not a number");
            }
        }
    }
}

both_engines! {
    reference;
    /// `stats settings` tells the flags the server runs with.
    fn settings_tell_the_flags(flavor) {
        let server = Server::start(flavor, &["-c", "77", "-m", "32", "-b", "100", "-I", "2m"]);
        let mut conn = server.connect();
        let s: HashMap<String, String> = stats_group(&mut conn, "settings").into_iter().collect();
        assert_eq!(s["maxbytes"], (32u64 << 20).to_string());
        assert_eq!(s["maxconns"], "77");
        // memcached prints its `-p` as given (the harness passes -1 for "any port");
        // ringcache prints the port `-p 0` ended up on.
        let port = if flavor.is_memcached() { "-1".to_string() } else { server.port().to_string() };
        assert_eq!(s["tcpport"], port, "{flavor}");
        assert_eq!(s["udpport"], "0");
        assert_eq!(s["inter"], "127.0.0.1");
        assert_eq!(s["verbosity"], "0");
        assert_eq!(s["evictions"], "on");
        assert_eq!(s["cas_enabled"], "yes");
        assert_eq!(s["num_threads"], "1");
        assert_eq!(s["tcp_backlog"], "100");
        assert_eq!(s["item_size_max"], (2u64 << 20).to_string());
        assert_eq!(s["binding_protocol"], "auto-negotiate");
        assert_eq!(s["domain_socket"], "NULL");
        conn.roundtrip(b"verbosity 1\r\n", b"OK\r\n");
        let s: HashMap<String, String> = stats_group(&mut conn, "settings").into_iter().collect();
        assert_eq!(s["verbosity"], "1", "{flavor}");
    }
}

both_engines! {
    reference;
    /// `stats conns` lists the listening socket and each client with memcached's
    /// `<fd>:addr`, `<fd>:listen_addr`, `<fd>:state`, `<fd>:secs_since_last_cmd` lines;
    /// ours shows our own address and `conn_parse_cmd`, a client holding half a set
    /// shows `conn_nread`.
    fn conns_show_our_connection(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        let mut other = server.connect();
        other.send(b"set x 0 0 5\r\nab");
        let listen = format!("tcp:127.0.0.1:{}", server.port());
        let mine = format!("tcp:{}", conn.stream.local_addr().expect("local addr"));
        let theirs = format!("tcp:{}", other.stream.local_addr().expect("local addr"));
        let by_fd = |pairs: Vec<(String, String)>| {
            let mut fds: HashMap<String, HashMap<String, String>> = HashMap::new();
            for (name, value) in pairs {
                let (fd, field) = name.split_once(':').unwrap_or_else(|| panic!("{name} has no fd"));
                assert!(fd.parse::<u32>().is_ok(), "{name}: fd is not a number");
                fds.entry(fd.to_string()).or_default().insert(field.to_string(), value);
            }
            fds.into_values().collect::<Vec<_>>()
        };
        let mut polled = Vec::new();
        let settled = common::wait_until(Duration::from_secs(5), || {
            polled = by_fd(stats_group(&mut conn, "conns"));
            polled.iter().any(|c| c.get("addr") == Some(&theirs)
                && c.get("state").map(String::as_str) == Some("conn_nread"))
        });
        assert!(settled, "{flavor}: the half-set client never showed conn_nread: {polled:?}");
        let find = |addr: &str| polled.iter().find(|c| c.get("addr").map(String::as_str) == Some(addr))
            .unwrap_or_else(|| panic!("{flavor}: no entry for {addr}: {polled:?}"));
        let l = find(&listen);
        assert_eq!(l["state"], "conn_listening");
        assert!(l["secs_since_last_cmd"].parse::<u64>().is_ok());
        let me = find(&mine);
        assert_eq!(me["listen_addr"], listen);
        assert_eq!(me["state"], "conn_parse_cmd");
        assert!(me["secs_since_last_cmd"].parse::<u64>().expect("secs") <= 1);
        assert_eq!(find(&theirs)["listen_addr"], listen);
        drop(other);
        let gone = common::wait_until(Duration::from_secs(5), || {
            !by_fd(stats_group(&mut conn, "conns")).iter().any(|c| c.get("addr") == Some(&theirs))
        });
        assert!(gone, "{flavor}: a closed client stays listed");
    }
}

/// `stats items` and `stats slabs` as the exporter maps them: class → field → value.
fn classes(
    pairs: &[(String, String)],
    prefix: &str,
) -> (
    HashMap<u32, HashMap<String, String>>,
    HashMap<String, String>,
) {
    let mut per_class: HashMap<u32, HashMap<String, String>> = HashMap::new();
    let mut global = HashMap::new();
    for (name, value) in pairs {
        let parts: Vec<&str> = name.split(':').collect();
        let (class, field) = match (prefix, parts.as_slice()) {
            ("items", ["items", class, field]) => (class, field),
            ("slabs", [class, field]) => (class, field),
            ("slabs", [_]) => {
                global.insert(name.clone(), value.clone());
                continue;
            }
            _ => panic!("`stats {prefix}`: unexpected key {name}"),
        };
        let class: u32 = class
            .parse()
            .unwrap_or_else(|_| panic!("{name}: class is not a number"));
        assert!(
            value.parse::<f64>().is_ok(),
            "{name}={value} is not a number"
        );
        per_class
            .entry(class)
            .or_default()
            .insert(field.to_string(), value.clone());
    }
    (per_class, global)
}

both_engines! {
    reference;
    /// `stats items` / `stats slabs` parse as exporters parse them, and their per-class
    /// figures add up to the general ones.
    fn items_and_slabs_parse_like_memcached(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        let (items, _) = classes(&stats_group(&mut conn, "items"), "items");
        assert!(items.is_empty(), "{flavor}: classes before any item: {items:?}");
        for i in 0..10 {
            conn.set(&format!("k{i}"), b"value");
        }
        conn.get("k1");
        let general = conn.stats();
        let (items, _) = classes(&stats_group(&mut conn, "items"), "items");
        let sum = |m: &HashMap<u32, HashMap<String, String>>, f: &str| -> u64 {
            m.values().map(|c| c.get(f).map_or(0, |v| v.parse::<u64>().expect("number"))).sum()
        };
        assert_eq!(sum(&items, "number"), stat_u64(&general, "curr_items"), "{flavor}");
        for field in ["mem_requested", "evicted", "reclaimed", "outofmemory", "expired_unfetched", "evicted_unfetched"] {
            assert!(items.values().all(|c| c.contains_key(field)), "{flavor}: items lack {field}");
        }
        let (slabs, global) = classes(&stats_group(&mut conn, "slabs"), "slabs");
        assert_eq!(sum(&slabs, "used_chunks"), 10, "{flavor}");
        // ringcache counts commands per worker, not per class (no `cmd_set`,
        // `get_hits`… per slab); a hit counts in `stats items`' `hits_to_*`.
        let hits: u64 = ["hits_to_hot", "hits_to_warm", "hits_to_cold", "hits_to_temp"]
            .iter()
            .map(|f| sum(&items, f))
            .sum();
        assert_eq!(hits, 1, "{flavor}");
        for field in ["chunk_size", "chunks_per_page", "total_pages", "total_chunks", "free_chunks"] {
            assert!(slabs.values().all(|c| c.contains_key(field)), "{flavor}: slabs lack {field}");
        }
        assert!(stat_u64(&global, "active_slabs") >= 1);
        assert!(global["total_malloced"].parse::<u64>().is_ok());
    }
}

both_engines! {
    reference;
    /// `stats reset` answers RESET and clears what memcached clears (counters, totals,
    /// evictions), keeping levels (items, bytes, connections).
    fn reset_clears_counters_keeps_levels(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        let _extra = server.connect();
        run_script(&mut conn);
        conn.set("kept", b"1");
        let before = conn.stats();
        conn.roundtrip(b"stats reset\r\n", b"RESET\r\n");
        let after = conn.stats();
        for name in ["curr_items", "bytes", "curr_connections", "limit_maxbytes"] {
            assert_eq!(after[name], before[name], "{flavor}: reset changed {name}");
        }
        for name in COUNTERS {
            assert_eq!(stat_u64(&after, name), 0, "{flavor}: reset left {name}");
        }
        assert_eq!(stat_u64(&after, "total_connections"), 0, "{flavor}");
        // Only the `stats` that read `after` was counted since.
        assert_eq!(stat_u64(&after, "bytes_read"), 7, "{flavor}");
    }
}

both_engines! {
    /// ringcache's own figures: the engine in use and, on io_uring, the features and the
    /// buffer and send figures, as single tokens after memcached's fields.
    fn engine_figures(flavor) {
        let common::Flavor::Ringcache(engine) = flavor else { unreachable!() };
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        let general = stats_group(&mut conn, "");
        let ours = general.iter().position(|(n, _)| n.starts_with("ringcache_")).expect("ringcache_ fields");
        assert!(general[ours..].iter().all(|(n, _)| n.starts_with("ringcache_")), "ringcache_ fields come last");
        let s: HashMap<String, String> = general.into_iter().collect();
        assert_eq!(s["ringcache_engine"], engine.flag());
        if engine == common::Engine::Uring {
            assert!(!s["ringcache_uring_features"].is_empty());
            assert!(s["ringcache_recv_enobufs"].parse::<u64>().is_ok());
            let in_flight: u64 = s["ringcache_sends_in_flight"].parse().expect("number");
            assert!(in_flight <= 1, "one idle client, {in_flight} sends in flight");
        }
        let settings: HashMap<String, String> = stats_group(&mut conn, "settings").into_iter().collect();
        assert_eq!(settings["ringcache_io_engine"], engine.flag());
    }
}

both_engines! {
    /// A lookup that meets an expired item counts `get_expired`, a flushed one
    /// `get_flushed` (memcached counts them where its lookup meets the item; its
    /// background threads make its own figures racy, so this checks ringcache alone).
    fn dead_items_met_by_lookups(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        conn.roundtrip(b"set e 0 -1 1\r\nE\r\n", b"STORED\r\n");
        conn.roundtrip(b"get e\r\n", b"END\r\n");
        conn.roundtrip(b"set f 0 0 1\r\nF\r\n", b"STORED\r\n");
        conn.roundtrip(b"flush_all\r\n", b"OK\r\n");
        conn.roundtrip(b"get f\r\n", b"END\r\n");
        let s = conn.stats();
        assert_eq!(stat_u64(&s, "get_expired"), 1, "{flavor}");
        assert_eq!(stat_u64(&s, "get_flushed"), 1, "{flavor}");
        assert_eq!(stat_u64(&s, "get_misses"), 2, "{flavor}");
    }
}
