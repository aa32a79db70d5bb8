//! Execution tests: binary sessions driven through a `Connection`, answers decoded.

use super::super::Connection;
use crate::config::Config;
use crate::protocol::binary::opcode::*;
use crate::server::stats::Stat;
use crate::server::Server;
use std::sync::Arc;

fn server(args: &[&str]) -> Arc<Server> {
    let argv = ["ringcache", "-t", "1"].iter().chain(args.iter()).copied();
    Server::new(Config::parse_args(argv).expect("test config"))
}

/// A request packet; `opaque` is the opcode, to tell answers apart.
fn pkt(op: u8, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    pkt_cas(op, extras, key, value, 0)
}

fn pkt_cas(op: u8, extras: &[u8], key: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
    let mut p = vec![0x80, op];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
    let body = (extras.len() + key.len() + value.len()) as u32;
    p.extend_from_slice(&body.to_be_bytes());
    p.extend_from_slice(&u32::from(op).to_be_bytes());
    p.extend_from_slice(&cas.to_be_bytes());
    p.extend_from_slice(extras);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

fn set(key: &[u8], flags: u32, value: &[u8]) -> Vec<u8> {
    let extras = [flags.to_be_bytes(), 0u32.to_be_bytes()].concat();
    pkt(SET, &extras, key, value)
}

fn arith(op: u8, key: &[u8], delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    let extras = [
        &delta.to_be_bytes()[..],
        &initial.to_be_bytes(),
        &exptime.to_be_bytes(),
    ]
    .concat();
    pkt(op, &extras, key, &[])
}

/// One decoded answer.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Answer {
    opcode: u8,
    status: u16,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
    cas: u64,
}

impl Answer {
    fn value_u64(&self) -> u64 {
        u64::from_be_bytes(self.value.as_slice().try_into().unwrap())
    }
}

fn decode(mut bytes: &[u8]) -> Vec<Answer> {
    let mut answers = Vec::new();
    while !bytes.is_empty() {
        assert!(
            bytes.len() >= 24 && bytes[0] == 0x81,
            "bad answer {bytes:?}"
        );
        let key_len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
        let ext_len = usize::from(bytes[4]);
        assert_eq!(bytes[5], 0, "data type");
        let body = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
        let opaque = u32::from_be_bytes(bytes[12..16].try_into().unwrap());
        assert_eq!(opaque, u32::from(bytes[1]), "opaque echoed");
        let b = &bytes[24..24 + body];
        answers.push(Answer {
            opcode: bytes[1],
            status: u16::from_be_bytes([bytes[6], bytes[7]]),
            extras: b[..ext_len].to_vec(),
            key: b[ext_len..ext_len + key_len].to_vec(),
            value: b[ext_len + key_len..].to_vec(),
            cas: u64::from_be_bytes(bytes[16..24].try_into().unwrap()),
        });
        bytes = &bytes[24 + body..];
    }
    answers
}

/// Takes everything the connection has answered so far.
fn drain(conn: &mut Connection) -> Vec<u8> {
    let mut segments = Vec::new();
    conn.output().take(&mut segments);
    segments.concat()
}

/// Feeds `input` in chunks of `chunk` bytes to a new connection; returns the answers
/// and whether the connection is closing.
fn run_chunked(s: &Arc<Server>, input: &[u8], chunk: usize) -> (Vec<Answer>, bool) {
    let mut conn = s.open(0).unwrap();
    let mut bytes = Vec::new();
    for c in input.chunks(chunk) {
        conn.on_input(c);
        bytes.extend(drain(&mut conn));
    }
    (decode(&bytes), conn.is_closing())
}

fn run(s: &Arc<Server>, input: &[u8]) -> Vec<Answer> {
    run_chunked(s, input, input.len().max(1)).0
}

fn statuses(answers: &[Answer]) -> Vec<(u8, u16)> {
    answers.iter().map(|a| (a.opcode, a.status)).collect()
}

#[test]
fn set_then_gets_of_every_kind() {
    let s = server(&[]);
    let input = [
        set(b"foo", 5, b"bar"),
        pkt(GET, &[], b"foo", &[]),
        pkt(GETK, &[], b"foo", &[]),
        pkt(GET, &[], b"nope", &[]),
        pkt(GETK, &[], b"nope", &[]),
    ]
    .concat();
    let a = run(&s, &input);
    assert_eq!(a.len(), 5);
    let cas = a[0].cas;
    assert!(cas != 0 && a[0].value.is_empty() && a[0].extras.is_empty());
    assert_eq!(
        (&a[1].extras[..], &a[1].key[..]),
        (&[0, 0, 0, 5][..], &b""[..])
    );
    assert_eq!((&a[1].value[..], a[1].cas), (&b"bar"[..], cas));
    assert_eq!((&a[2].key[..], &a[2].value[..]), (&b"foo"[..], &b"bar"[..]));
    assert_eq!((a[3].status, &a[3].value[..]), (1, &b"Not found"[..]));
    assert_eq!((a[4].status, &a[4].key[..]), (1, &b"nope"[..]));
    assert!(a[4].value.is_empty());
    let t = s.stats.totals();
    assert_eq!(
        (
            t.get(Stat::CmdGet),
            t.get(Stat::GetHits),
            t.get(Stat::GetMisses)
        ),
        (4, 2, 2)
    );
}

#[test]
fn pipelined_quiet_gets_end_with_noop() {
    let s = server(&[]);
    run(&s, &[set(b"a", 0, b"1"), set(b"c", 0, b"3")].concat());
    let input = [
        pkt(GETQ, &[], b"a", &[]),
        pkt(GETQ, &[], b"b", &[]),
        pkt(GETKQ, &[], b"c", &[]),
        pkt(GETKQ, &[], b"d", &[]),
        pkt(NOOP, &[], &[], &[]),
    ]
    .concat();
    let a = run(&s, &input);
    assert_eq!(statuses(&a), [(GETQ, 0), (GETKQ, 0), (NOOP, 0)]);
    assert_eq!(a[0].value, b"1");
    assert_eq!((&a[1].key[..], &a[1].value[..]), (&b"c"[..], &b"3"[..]));
    assert_eq!(s.stats.totals().get(Stat::GetMisses), 2);
}

#[test]
fn quiet_stores_answer_only_errors() {
    let s = server(&[]);
    let extras = [0u8; 8];
    let input = [
        pkt(SETQ, &extras, b"k", b"v"),
        pkt(ADDQ, &extras, b"k", b"v"),
        pkt(REPLACEQ, &extras, b"k", b"w"),
        pkt(APPENDQ, &[], b"k", b"x"),
        pkt(PREPENDQ, &[], b"k", b"y"),
        pkt(APPENDQ, &[], b"missing", b"x"),
        pkt(DELETEQ, &[], b"missing", &[]),
        pkt(INCREMENTQ, &[0; 20], b"k", &[]),
        pkt(FLUSHQ, &[], &[], &[]),
        pkt(NOOP, &[], &[], &[]),
    ]
    .concat();
    let a = run(&s, &input);
    assert_eq!(
        statuses(&a),
        [
            (ADDQ, 2),
            (APPENDQ, 5),
            (DELETEQ, 1),
            (INCREMENTQ, 6),
            (NOOP, 0)
        ]
    );
    assert_eq!(a[0].value, b"Data exists for key.");
    assert_eq!(a[1].value, b"Not stored.");
    assert_eq!(
        a[3].value,
        b"Non-numeric server-side value for incr or decr"
    );
}

#[test]
fn store_refusals_as_memcached_answers_them() {
    let s = server(&[]);
    let extras = [0u8; 8];
    let input = [
        pkt(ADD, &extras, b"k", b"v"),
        pkt(ADD, &extras, b"k", b"v"),
        pkt(REPLACE, &extras, b"missing", b"v"),
        pkt(APPEND, &[], b"missing", b"v"),
        pkt(PREPEND, &[], b"k", b"<"),
        pkt(GET, &[], b"k", &[]),
    ]
    .concat();
    let a = run(&s, &input);
    assert_eq!(
        statuses(&a),
        [
            (ADD, 0),
            (ADD, 2),
            (REPLACE, 1),
            (APPEND, 5),
            (PREPEND, 0),
            (GET, 0)
        ]
    );
    assert_eq!(a[5].value, b"<v");
    assert_eq!(a[5].cas, a[4].cas);
}

#[test]
fn cas_in_the_header_compares() {
    let s = server(&[]);
    let first = run(&s, &set(b"k", 0, b"v1"));
    let cas = first[0].cas;
    let extras = [0u8; 8];
    let input = [
        pkt_cas(SET, &extras, b"k", b"v2", cas + 1),
        pkt_cas(SET, &extras, b"missing", b"v2", cas),
        pkt_cas(ADD, &extras, b"missing", b"v2", cas),
        pkt_cas(APPEND, &[], b"k", b"x", cas + 1),
        pkt_cas(APPEND, &[], b"missing", b"x", cas),
        pkt_cas(DELETE, &[], b"k", &[], cas + 1),
        pkt_cas(INCREMENT, &[0; 20], b"k", &[], cas + 1),
        pkt_cas(REPLACE, &extras, b"k", b"v3", cas),
    ]
    .concat();
    let a = run(&s, &input);
    assert_eq!(
        statuses(&a),
        [
            (SET, 2),
            (SET, 1),
            (ADD, 1),
            (APPEND, 2),
            (APPEND, 5),
            (DELETE, 2),
            (INCREMENT, 2),
            (REPLACE, 0)
        ]
    );
    let new_cas = a[7].cas;
    assert!(new_cas > cas);
    let a = run(
        &s,
        &[
            pkt_cas(DELETE, &[], b"k", &[], new_cas),
            pkt(GET, &[], b"k", &[]),
        ]
        .concat(),
    );
    assert_eq!(statuses(&a), [(DELETE, 0), (GET, 1)]);
    let t = s.stats.totals();
    assert_eq!(
        (
            t.get(Stat::CasBadval),
            t.get(Stat::CasMisses),
            t.get(Stat::CasHits)
        ),
        (1, 2, 1)
    );
}

#[test]
fn incr_with_an_initial_value() {
    let s = server(&[]);
    let input = [
        arith(INCREMENT, b"n", 5, 10, 0),
        arith(INCREMENT, b"n", 5, 10, 0),
        arith(DECREMENT, b"n", 500, 10, 0),
        arith(INCREMENT, b"none", 1, 10, u32::MAX),
        arith(DECREMENT, b"d", 1, 7, 0),
        pkt(GET, &[], b"n", &[]),
        pkt(GET, &[], b"d", &[]),
    ]
    .concat();
    let a = run(&s, &input);
    assert_eq!(a[0].value_u64(), 10);
    assert_eq!(a[1].value_u64(), 15);
    assert_eq!(a[2].value_u64(), 0);
    assert_eq!((a[3].status, &a[3].value[..]), (1, &b"Not found"[..]));
    assert_eq!(a[4].value_u64(), 7);
    assert_eq!((&a[5].value[..], a[5].cas), (&b"0 "[..], a[2].cas));
    assert_eq!(a[6].value, b"7");
    assert!(a[0].cas != 0 && a[1].cas > a[0].cas);
    let t = s.stats.totals();
    assert_eq!((t.get(Stat::IncrHits), t.get(Stat::IncrMisses)), (1, 1));
    assert_eq!((t.get(Stat::DecrHits), t.get(Stat::DecrMisses)), (1, 0));
}

#[test]
fn a_value_too_large_is_swallowed_and_the_old_one_unlinked() {
    let s = server(&["-I", "1k"]);
    let mut input = set(b"k", 0, b"old");
    input.extend(set(b"k", 0, &[b'x'; 5000]));
    input.extend(pkt(ADD, &[0; 8], b"j", &[b'x'; 5000]));
    input.extend(pkt(GET, &[], b"k", &[]));
    input.extend(pkt(NOOP, &[], &[], &[]));
    for chunk in [input.len(), 700, 1] {
        let (a, closing) = run_chunked(&s, &input, chunk);
        assert!(!closing);
        assert_eq!(
            statuses(&a),
            [(SET, 0), (SET, 3), (ADD, 3), (GET, 1), (NOOP, 0)],
            "chunk {chunk}"
        );
        assert_eq!(a[1].value, b"Too large.");
    }
    assert_eq!(s.stats.totals().get(Stat::StoreTooLarge), 0);
}

#[test]
fn one_byte_at_a_time_gives_the_same_answers() {
    let session = [
        set(b"a", 1, b"abc"),
        pkt(GETKQ, &[], b"a", &[]),
        pkt(GETQ, &[], b"zz", &[]),
        arith(INCREMENT, b"n", 2, 40, 0),
        pkt(APPEND, &[], b"a", b"def"),
        pkt(TOUCH, &100u32.to_be_bytes(), b"a", &[]),
        pkt(GATK, &0u32.to_be_bytes(), b"a", &[]),
        pkt(0x40, &[], b"unknown", b"body"),
        pkt(DELETE, &[], b"a", &[]),
        pkt(VERSION, &[], &[], &[]),
        pkt(STAT, &[], b"settings", &[]),
        pkt(NOOP, &[], &[], &[]),
    ]
    .concat();
    // CAS values carry the key's shard, which a fresh server's random hash seed
    // picks: compare them by order of appearance.
    let renumber = |mut answers: Vec<Answer>| {
        let mut seen = vec![0];
        for a in &mut answers {
            if !seen.contains(&a.cas) {
                seen.push(a.cas);
            }
            a.cas = seen.iter().position(|&c| c == a.cas).unwrap() as u64;
        }
        answers
    };
    let whole = renumber(run(&server(&[]), &session));
    assert_eq!(whole.last().unwrap().opcode, NOOP);
    for chunk in [1, 2, 5, 23, 24, 25] {
        let (split, closing) = run_chunked(&server(&[]), &session, chunk);
        assert!(!closing);
        assert_eq!(renumber(split), whole, "chunk {chunk}");
    }
}

#[test]
fn touch_and_gat() {
    let s = server(&[]);
    let ex = 100u32.to_be_bytes();
    let input = [
        set(b"k", 9, b"v"),
        pkt(TOUCH, &ex, b"k", &[]),
        pkt(TOUCH, &ex, b"missing", &[]),
        pkt(GAT, &ex, b"k", &[]),
        pkt(GATQ, &ex, b"missing", &[]),
        pkt(GATK, &ex, b"missing", &[]),
        pkt(GATKQ, &ex, b"k", &[]),
    ]
    .concat();
    let a = run(&s, &input);
    assert_eq!(
        statuses(&a),
        [
            (SET, 0),
            (TOUCH, 0),
            (TOUCH, 1),
            (GAT, 0),
            (GATK, 1),
            (GATKQ, 0)
        ]
    );
    assert_eq!((&a[1].extras[..], a[1].cas), (&[0, 0, 0, 9][..], a[0].cas));
    assert!(a[1].value.is_empty() && a[1].key.is_empty());
    assert_eq!(a[3].value, b"v");
    assert_eq!((&a[5].key[..], &a[5].value[..]), (&b"k"[..], &b"v"[..]));
    let t = s.stats.totals();
    assert_eq!(
        (
            t.get(Stat::CmdTouch),
            t.get(Stat::TouchHits),
            t.get(Stat::CmdGet)
        ),
        (6, 3, 0)
    );
}

#[test]
fn version_flush_and_quit() {
    let s = server(&[]);
    let input = [
        set(b"k", 0, b"v"),
        pkt(FLUSH, &[], &[], &[]),
        pkt(GET, &[], b"k", &[]),
        pkt(VERSION, &[], &[], &[]),
        pkt(QUIT, &[], &[], &[]),
        pkt(NOOP, &[], &[], &[]),
    ]
    .concat();
    let (a, closing) = run_chunked(&s, &input, input.len());
    assert!(closing);
    assert_eq!(
        statuses(&a),
        [(SET, 0), (FLUSH, 0), (GET, 1), (VERSION, 0), (QUIT, 0)]
    );
    assert_eq!(a[3].value, crate::server::VERSION.as_bytes());
    let (a, closing) = run_chunked(
        &s,
        &[pkt(QUITQ, &[], &[], &[]), pkt(NOOP, &[], &[], &[])].concat(),
        100,
    );
    assert!(closing && a.is_empty());
}

#[test]
fn stat_sends_one_packet_per_stat_then_a_terminator() {
    let s = server(&[]);
    let a = run(&s, &pkt(STAT, &[], &[], &[]));
    let (last, stats) = a.split_last().unwrap();
    assert!(last.key.is_empty() && last.value.is_empty() && last.status == 0);
    assert!(stats.iter().any(|a| a.key == b"pid"));
    assert!(stats.iter().any(|a| a.key == b"cmd_get" && a.value == b"0"));
    let a = run(&s, &pkt(STAT, &[], b"settings", &[]));
    assert!(a.iter().any(|a| a.key == b"item_size_max"));
    assert!(a.last().unwrap().key.is_empty());
    for key in [&b"reset"[..], b"detail on"] {
        let a = run(&s, &pkt(STAT, &[], key, &[]));
        assert_eq!(statuses(&a), [(STAT, 0)]);
        assert!(a[0].key.is_empty());
    }
    for key in [&b"bogus"[..], b"conns"] {
        let a = run(
            &s,
            &[pkt(STAT, &[], key, &[]), pkt(NOOP, &[], &[], &[])].concat(),
        );
        assert_eq!(statuses(&a), [(STAT, 1), (NOOP, 0)]);
        assert_eq!(a[0].value, b"Not found");
    }
}

#[test]
fn unknown_commands_are_answered_and_skipped() {
    let s = server(&[]);
    let input = [
        pkt(VERBOSITY, &1u32.to_be_bytes(), &[], &[]),
        pkt(0x40, &[], b"k", b"abc"),
        pkt(NOOP, &[], &[], &[]),
    ]
    .concat();
    let a = run(&s, &input);
    assert_eq!(statuses(&a), [(VERBOSITY, 0x81), (0x40, 0x81), (NOOP, 0)]);
    assert_eq!(a[0].value, b"Unknown command");
}

#[test]
fn malformed_packets_are_answered_then_closed() {
    let s = server(&[]);
    let long_key = [b'k'; 251];
    let cases = [
        (pkt(GET, b"abcd", b"foo", &[]), 0x04),
        (pkt(SET, &[], b"foo", b"bar"), 0x04),
        (pkt(GET, &[], &long_key, &[]), 0x04),
        (pkt(NOOP, b"abcd", &[], &[]), 0x04),
    ];
    for (p, status) in cases {
        let input = [pkt(NOOP, &[], &[], &[]), p, pkt(NOOP, &[], &[], &[])].concat();
        let (a, closing) = run_chunked(&s, &input, input.len());
        assert!(closing);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].status, status);
        assert_eq!(a[1].value, b"Invalid arguments");
    }
    // key_len beyond the body.
    let mut p = pkt(GET, &[], b"foo", &[]);
    p[11] = 2;
    let (a, closing) = run_chunked(&s, &p, p.len());
    assert!(closing);
    assert_eq!(
        (a[0].status, &a[0].value[..]),
        (0x81, &b"Unknown command"[..])
    );
}

#[test]
fn bad_magic_after_the_first_packet_closes_silently() {
    let s = server(&[]);
    let mut bad = pkt(NOOP, &[], &[], &[]);
    bad[0] = 0x00;
    let input = [pkt(NOOP, &[], &[], &[]), bad, pkt(NOOP, &[], &[], &[])].concat();
    let (a, closing) = run_chunked(&s, &input, input.len());
    assert!(closing);
    assert_eq!(statuses(&a), [(NOOP, 0)]);
}
