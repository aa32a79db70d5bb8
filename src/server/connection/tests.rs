//! Unit tests of the connection: whole sessions of classic commands through
//! `Connection::on_input`, split every way, with backpressure, the shared buffer budget
//! and the limits the parsers and the store must agree on. The meta and binary
//! commands have their own, in `meta/tests.rs` and `binary/tests.rs`.

use super::*;
use crate::config::Config;
use crate::server::stats::Stat;
use std::io::IoSlice;

pub(super) fn server(args: &[&str]) -> Arc<Server> {
    let argv = ["ringcache", "-t", "1"].iter().chain(args.iter()).copied();
    Server::new(Config::parse_args(argv).expect("test config"))
}

/// The parsers and the store each keep memcached's limits in their own words; the
/// connection relies on them being the same rules.
#[test]
fn protocol_and_store_limits_agree() {
    assert_eq!(
        crate::protocol::KEY_MAX_BYTES,
        crate::storage::KEY_MAX_BYTES
    );
    for max in [64, 1024, 1024 * 1024] {
        for key_len in [0, 1, 250] {
            for flags in [0, 1] {
                for value_len in (0..max + 8).step_by(7).chain([usize::MAX]) {
                    assert_eq!(
                        crate::protocol::item_too_large(key_len, value_len, flags, max),
                        crate::storage::item_too_large(key_len, value_len, flags, max),
                        "key {key_len} value {value_len} flags {flags} max {max}"
                    );
                }
            }
        }
    }
    for mode in [
        StoreMode::Set,
        StoreMode::Add,
        StoreMode::Replace,
        StoreMode::Append,
        StoreMode::Prepend,
        StoreMode::Cas,
    ] {
        assert_eq!(format!("{mode:?}"), format!("{:?}", write_mode(mode)));
    }
}

/// Takes everything the connection has answered so far.
fn drain(conn: &mut Connection) -> Vec<u8> {
    let out = conn.output();
    let mut bytes = Vec::new();
    loop {
        let mut slices = [IoSlice::new(&[]); 16];
        let n = out.chunks(&mut slices);
        if n == 0 {
            return bytes;
        }
        let len: usize = slices[..n].iter().map(|s| s.len()).sum();
        for s in &slices[..n] {
            bytes.extend_from_slice(s);
        }
        out.advance(len);
    }
}

pub(super) fn answers(server: &Arc<Server>, chunks: &[&[u8]]) -> Vec<u8> {
    let mut conn = server.open(0).unwrap();
    let mut all = Vec::new();
    for c in chunks {
        conn.on_input(c);
        all.extend(drain(&mut conn));
    }
    all
}

const SESSION: &[u8] = b"set a 5 0 3\r\nabc\r\nget a b\r\nappend a 0 0 2 noreply\r\nde\r\n\
gets a\r\nincr n 1\r\nset n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\ndelete a\r\n\
delete a\r\ntouch n 10\r\nbogus\r\nversion\r\n";

#[test]
fn a_session_answers_like_memcached() {
    let s = server(&[]);
    let out = String::from_utf8(answers(&s, &[SESSION])).unwrap();
    let cas_line = out.lines().nth(4).unwrap().to_string();
    assert!(cas_line.starts_with("VALUE a 5 5 "), "{out}");
    let expected = format!(
        "STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\n{cas_line}\r\nabcde\r\nEND\r\nNOT_FOUND\r\n\
STORED\r\n15\r\n0\r\nDELETED\r\nNOT_FOUND\r\nTOUCHED\r\nERROR\r\nVERSION {}\r\n",
        crate::server::VERSION
    );
    assert_eq!(out, expected);
}

#[test]
fn any_split_gives_the_same_answers() {
    let whole = answers(&server(&[]), &[SESSION]);
    let strip_cas = |b: Vec<u8>| {
        String::from_utf8(b)
            .unwrap()
            .lines()
            .map(|l| {
                if l.starts_with("VALUE a 5 5 ") {
                    "VALUE a 5 5 <cas>"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let whole = strip_cas(whole);
    let bytes: Vec<&[u8]> = SESSION.chunks(1).collect();
    assert_eq!(strip_cas(answers(&server(&[]), &bytes)), whole);
    for size in [2, 3, 7, 13] {
        let chunks: Vec<&[u8]> = SESSION.chunks(size).collect();
        assert_eq!(
            strip_cas(answers(&server(&[]), &chunks)),
            whole,
            "chunk {size}"
        );
    }
}

#[test]
fn a_value_over_the_limit_is_swallowed_and_the_stream_stays_in_step() {
    let s = server(&["-I", "1k"]);
    let mut input = b"set k 0 0 3\r\nold\r\nset k 0 0 5000\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 5000));
    input.extend_from_slice(b"\r\nget k\r\n");
    let chunks: Vec<&[u8]> = input.chunks(700).collect();
    let out = answers(&s, &chunks);
    assert_eq!(
        out,
        b"STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n".to_vec()
    );
}

#[test]
fn quit_closes_and_ignores_the_rest() {
    let s = server(&[]);
    let mut conn = s.open(0).unwrap();
    conn.on_input(b"version\r\nquit\r\nversion\r\n");
    assert!(conn.is_closing());
    assert!(!conn.wants_input());
    let out = String::from_utf8(drain(&mut conn)).unwrap();
    assert_eq!(out.matches("VERSION").count(), 1);
}

#[test]
fn backpressure_stops_at_the_high_water_mark_and_resumes() {
    let s = server(&[]);
    let mut conn = s.open(0).unwrap();
    let big = vec![b'v'; 512 * 1024];
    let mut set = format!("set big 0 0 {}\r\n", big.len()).into_bytes();
    set.extend_from_slice(&big);
    set.extend_from_slice(b"\r\n");
    conn.on_input(&set);
    drain(&mut conn);
    let gets = b"get big\r\n".repeat(64);
    conn.on_input(&gets);
    assert!(!conn.wants_input(), "output over the mark stops input");
    let held = conn.pending_len();
    assert!(held > 0 && held < gets.len());
    let mut total = 0;
    while conn.pending_len() > 0 || !conn.output().is_empty() {
        let got = drain(&mut conn);
        assert!(got.len() <= OUTPUT_HIGH_WATER + big.len() + 64);
        total += got.len();
        conn.resume();
    }
    let one = big.len() + "VALUE big 0 524288\r\n\r\nEND\r\n".len();
    assert_eq!(total, 64 * one);
}

/// Stores a `len`-byte value under `key` and drains the answer.
fn store_big(conn: &mut Connection, key: &str, len: usize) {
    let mut set = format!("set {key} 0 0 {len}\r\n").into_bytes();
    set.extend(std::iter::repeat_n(b'v', len));
    set.extend_from_slice(b"\r\n");
    conn.on_input(&set);
    assert_eq!(drain(conn), b"STORED\r\n");
}

#[test]
fn a_multi_key_get_stops_at_the_mark_and_resumes_where_it_stopped() {
    let s = server(&[]);
    let mut conn = s.open(0).unwrap();
    let len = 300 * 1024;
    store_big(&mut conn, "b", len);
    for (command, with_cas) in [("get", false), ("gats 100", true)] {
        // 200 keys ask for 60 MB; a miss and a small hit sit between them.
        let mut line = command.to_string();
        for i in 0..200 {
            line.push_str(if i == 7 { " nope b" } else { " b" });
        }
        line.push_str("\r\nversion\r\n");
        conn.on_input(line.as_bytes());
        assert!(!conn.wants_input(), "stopped at the mark");
        let mut got = Vec::new();
        loop {
            assert!(
                conn.output().held() <= OUTPUT_HIGH_WATER + len + 64,
                "held {} with a mark of {OUTPUT_HIGH_WATER}",
                conn.output().held()
            );
            let part = drain(&mut conn);
            if part.is_empty() && conn.pending_len() == 0 {
                break;
            }
            got.extend(part);
            conn.resume();
        }
        let text = String::from_utf8_lossy(&got);
        let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("VALUE")).collect();
        assert_eq!(headers.len(), 200, "{command}: every hit answered once");
        assert!(headers.iter().all(|h| h.starts_with("VALUE b 0 307200")));
        assert_eq!(headers.iter().any(|h| h.split(' ').count() == 5), with_cas);
        assert_eq!(
            text.matches("END\r\n").count(),
            1,
            "one END, after the last key"
        );
        assert!(text.ends_with(&format!("END\r\nVERSION {}\r\n", crate::server::VERSION)));
        assert!(conn.wants_input());
    }
}

#[test]
fn big_gets_get_memcacheds_out_of_memory_answer_once_the_shared_budget_is_full() {
    let s = server(&["-o", "conn_buffer_limit_mb=1"]);
    let mut hog = s.open(0).unwrap();
    let len = 600 * 1024;
    store_big(&mut hog, "big", len);
    // The hog's answer stays unsent: 600 KiB of the 1 MiB budget.
    hog.on_input(b"get big\r\n");
    assert!(s.buffers.used_bytes() > 500 * 1024);
    let mut text = s.open(0).unwrap();
    text.on_input(b"get big\r\nmg big v\r\nmg big s\r\n");
    assert_eq!(
        String::from_utf8(drain(&mut text)).unwrap(),
        "SERVER_ERROR out of memory writing get response\r\n\
         SERVER_ERROR out of memory writing get response\r\nHD s614400\r\n",
        "a get of a big value is refused; one without its value is served"
    );
    let mut binary = s.open(0).unwrap();
    let mut get = vec![0x80, 0x00, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3];
    get.extend_from_slice(&[0; 12]);
    get.extend_from_slice(b"big");
    binary.on_input(&get);
    let answer = drain(&mut binary);
    assert_eq!(&answer[6..8], &[0x00, 0x82], "binary: out of memory");
    // Once the hog's client has read, there is room again.
    drain(&mut hog);
    hog.resume();
    assert_eq!(s.buffers.used_bytes(), 0);
    text.on_input(b"get big\r\n");
    assert_eq!(
        drain(&mut text).len(),
        "VALUE big 0 614400\r\n\r\nEND\r\n".len() + len
    );
    let refusals = s.stats.totals().get(Stat::ConnBufferRefusals);
    assert_eq!(refusals, 3);
}

#[test]
fn connection_count_follows_open_and_drop() {
    let s = server(&["-c", "2"]);
    let a = s.open(0).unwrap();
    let _b = s.open(0).unwrap();
    assert!(s.open(0).is_none(), "past -c");
    assert_eq!(s.curr_connections(), 2);
    drop(a);
    assert_eq!(s.curr_connections(), 1);
    assert!(s.open(0).is_some());
}

/// `watch` turns a connection into a stream: what follows `watch` in the same input is
/// dropped, further input too, the lines other connections cause arrive when the
/// engine polls it, and dropping it removes the watcher.
#[test]
fn a_watch_connection_streams_and_drops_its_input() {
    let server = server(&[]);
    let mut watcher = server.open(0).unwrap();
    watcher.on_input(b"watch mutations\r\nset dropped 0 0 1\r\nx\r\nget");
    assert!(watcher.is_streaming());
    assert_eq!(drain(&mut watcher), b"OK\r\n");
    assert_eq!(watcher.pending_len(), 0);
    watcher.on_input(b" more\r\nversion\r\n");
    let mut client = server.open(0).unwrap();
    client.on_input(b"set k 0 0 2\r\nab\r\nget dropped\r\n");
    assert_eq!(drain(&mut client), b"STORED\r\nEND\r\n");
    assert!(drain(&mut watcher).is_empty(), "lines before the poll");
    watcher.stream();
    let lines = String::from_utf8(drain(&mut watcher)).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
    assert!(
        lines.ends_with(
            " type=item_store key=k status=stored cmd=set ttl=0 clsid=1 cfd=-1 size=2\n"
        ),
        "{lines}"
    );
    assert_eq!(server.watch.stats().watchers, 1);
    drop(watcher);
    assert_eq!(server.watch.stats().watchers, 0);
    assert!(!server
        .watch
        .wants(crate::protocol::operator::WatchKinds::MUTATIONS));
}

/// `stats detail` counts classic gets, stores and deletes per prefix, from any
/// connection, and `stats reset` forgets them.
#[test]
fn stats_detail_counts_per_prefix() {
    let server = server(&["-D", "/"]);
    let mut conn = server.open(0).unwrap();
    conn.on_input(b"set a/1 0 0 1\r\nx\r\nget a/1 a/2 b:1\r\ndelete a/1\r\nstats detail dump\r\n");
    let out = String::from_utf8(drain(&mut conn)).unwrap();
    assert!(
        out.ends_with("DELETED\r\nPREFIX a get 2 hit 1 set 1 del 1\r\nEND\r\n"),
        "{out}"
    );
    conn.on_input(b"stats reset\r\nstats detail dump\r\n");
    assert_eq!(drain(&mut conn), b"RESET\r\nEND\r\n");
}

/// A pipelined batch the look-ahead reads (plain gets and sets, `mg` and `ms` lines, with
/// other commands between them) answers as the same requests sent one per read, and a
/// `stats` in the same read as the gets counts every one of them.
#[test]
fn a_batch_read_ahead_answers_as_requests_one_per_read() {
    let mut requests: Vec<Vec<u8>> = Vec::new();
    for i in 0..40 {
        let request = match i % 8 {
            0 => format!("set k{i} {i} 0 2\r\nv{}\r\n", i % 10),
            1 => format!("get k{}\r\n", i - 1),
            2 => format!("gets nothing{i}\r\n"),
            3 => format!("mg k{} v f\r\n", i - 3),
            4 => format!("ms m{i} 2 T0\r\nab\r\n"),
            5 => format!("get m{}\r\n", i - 1),
            6 => "incr k0 1\r\n".to_string(),
            _ => format!("get k{} k{}\r\n", i - 7, i - 6),
        };
        requests.push(request.into_bytes());
    }
    requests.push(b"stats\r\n".to_vec());
    let whole = requests.concat();
    let one_per_read: Vec<&[u8]> = requests.iter().map(Vec::as_slice).collect();
    let batched = String::from_utf8(answers(&server(&[]), &[&whole])).unwrap();
    let single = String::from_utf8(answers(&server(&[]), &one_per_read)).unwrap();
    let answers_of = |out: &str| {
        let at = out.find("STAT pid ").expect("the stats answer");
        let counters: Vec<String> = ["cmd_get", "get_hits", "get_misses"]
            .iter()
            .map(|name| {
                let prefix = format!("STAT {name} ");
                out.lines()
                    .find(|l| l.starts_with(&prefix))
                    .unwrap_or_else(|| panic!("no {name}"))
                    .to_string()
            })
            .collect();
        (out[..at].to_string(), counters)
    };
    let (batched_answers, batched_counts) = answers_of(&batched);
    let (single_answers, single_counts) = answers_of(&single);
    assert_eq!(batched_answers, single_answers);
    assert!(batched_answers.contains("VALUE k8 8 2\r\nv8\r\nEND\r\n"));
    // Per 8 requests: six keys looked up (get, gets, mg, get, and a get of two), five
    // cycles.
    assert_eq!(batched_counts[0], "STAT cmd_get 30");
    assert_eq!(batched_counts, single_counts);
}
