//! Differential tests of the BINARY protocol: the same packets go to memcached (the
//! reference) and to ringcache, and the answers must match field by field, closes
//! included.
//!
//! Every case (`differential/binary_cases.rs`) is a list of writes sent to a fresh
//! connection of a fresh server. Writes go out one by one with TCP_NODELAY and a short
//! pause between them, so a server sees packets split where the case splits them.
//!
//! Reading the answer: a case that keeps the connection open is followed by a NOOP with
//! the opaque [`SENTINEL_OPAQUE`]; the answer is every response packet before that
//! NOOP's. A case marked `closes` is read until EOF/RST instead.
//!
//! Each response packet is decoded by `ringcache-client` (24-byte header, extras, key,
//! value) and shown as one line naming every field: magic, opcode, key length, extras length, data type,
//! status, opaque, CAS, extras, key, value. Normalised first: each distinct non-zero
//! CAS becomes `c1`, `c2`, ... in order of appearance; VERSION's value becomes
//! `<version>`; a run of STAT key/value packets becomes one `STAT-RUN` line saying
//! whether it has a `pid` and the value of `curr_items` (the rest of the stats differ
//! by nature), its empty terminator packet is kept as is.
//!
//! Where ringcache deliberately differs from memcached (the verified-behaviour table in
//! `crates/protocol/src/binary.rs`), the case is in `DEVIATIONS` with the reason and
//! ringcache's expected answer.
//!
//! `DIFF_DUMP=1 cargo test --test differential_binary -- --nocapture` prints every
//! case's reference answer.

#[macro_use]
mod common;

use common::{show, Flavor, ReadEnd, Server};
use ringcache_client::binary::{self, opcode, Packet, HEADER_BYTES};
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[path = "differential/binary_cases.rs"]
mod binary_cases;

use binary_cases::{cases, req, Await, Bytewise, Case, Send, WithCas, DEVIATIONS};

/// The opaque of the NOOP that ends every open case.
const SENTINEL_OPAQUE: u32 = 0x5e47_1e1a;
/// How long one case may take on one server.
const CASE_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause between writes, so that each tends to arrive in a read of its own.
const WRITE_GAP: Duration = Duration::from_millis(1);

/// Splits a byte stream into packets; what is left (a partial or undecodable packet)
/// comes back as the second value.
fn packets(mut b: &[u8]) -> (Vec<Packet<'_>>, &[u8]) {
    let mut out = Vec::new();
    while let Ok(p) = binary::decode(b) {
        out.push(p.response);
        b = &b[p.consumed..];
    }
    (out, b)
}

/// Where the packet with `opaque` (and `opcode`, if given) ends in `b`, if it has
/// arrived complete.
fn end_of_opaque(b: &[u8], opaque: u32, opcode: Option<u8>) -> Option<usize> {
    let mut at = 0;
    while let Ok((h, len)) = binary::frame(&b[at..]) {
        at += len;
        if opcode.is_none_or(|o| h.opcode == o) && h.opaque == opaque {
            return Some(at);
        }
    }
    None
}

/// What a case produced on one server.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// One normalised line per packet (sentinel answer removed).
    packets: Vec<String>,
    closed: bool,
    /// Something the harness noticed (a timeout, a failed write), if anything.
    note: Option<String>,
}

fn run_case(server: &Server, case: &Case) -> Outcome {
    let mut conn = server.connect();
    let deadline = Instant::now() + CASE_TIMEOUT;
    let mut received = Vec::new();
    let mut cas_of: HashMap<u32, u64> = HashMap::new();
    let mut note = None;
    let mut writes: Vec<Vec<u8>> = Vec::new();
    'send: for (i, part) in case.send.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(WRITE_GAP);
        }
        writes.clear();
        let awaited = match part {
            Send(bytes) => {
                writes.push(bytes.clone());
                None
            }
            Bytewise(bytes) => {
                writes.extend(bytes.iter().map(|b| vec![*b]));
                None
            }
            Await(opaque) => Some(*opaque),
            WithCas(opaque, _) => Some(*opaque),
        };
        if let Some(opaque) = awaited {
            if !cas_of.contains_key(&opaque) {
                match conn.try_read_until(deadline, |b| end_of_opaque(b, opaque, None)) {
                    Ok(got) => {
                        for p in packets(&got).0 {
                            cas_of.insert(p.header.opaque, p.header.cas);
                        }
                        received.extend_from_slice(&got);
                    }
                    Err((end, got)) => {
                        received.extend_from_slice(&got);
                        note = Some(format!("no answer with opaque {opaque}: {end:?}"));
                        break 'send;
                    }
                }
            }
            if let WithCas(_, f) = part {
                writes.push(f(cas_of[&opaque]));
            }
        }
        for (j, w) in writes.iter().enumerate() {
            if j > 0 {
                std::thread::sleep(WRITE_GAP);
            }
            if let Err(e) = conn.try_send(w) {
                note = Some(format!("write failed: {e}"));
                break 'send;
            }
        }
    }
    let closed;
    if case.closes || note.is_some() {
        let (got, how) = conn.read_to_close(deadline);
        received.extend_from_slice(&got);
        closed = how.is_some();
    } else {
        let _ = conn.try_send(&req(opcode::NOOP, &[], &[], &[], SENTINEL_OPAQUE, 0));
        match conn.try_read_until(deadline, |b| {
            end_of_opaque(b, SENTINEL_OPAQUE, Some(opcode::NOOP))
        }) {
            Ok(got) => {
                received.extend_from_slice(&got[..got.len() - HEADER_BYTES]);
                closed = false;
            }
            Err((end, got)) => {
                received.extend_from_slice(&got);
                closed = matches!(end, ReadEnd::Closed(_));
                if !closed {
                    note = Some(format!("no sentinel NOOP answer: {end:?}"));
                }
            }
        }
    }
    Outcome {
        packets: normalise(&received),
        closed,
        note,
    }
}

/// The normalised lines of a received stream (see the module doc).
fn normalise(received: &[u8]) -> Vec<String> {
    let (packets, rest) = packets(received);
    let mut cas_names: Vec<u64> = Vec::new();
    let mut lines = Vec::new();
    let mut stat_run: Option<(usize, bool, Option<String>)> = None;
    for p in packets {
        let h = p.header;
        if h.opcode == opcode::STAT && p.status() == 0 && !p.key.is_empty() {
            let run = stat_run.get_or_insert((0, false, None));
            run.0 += 1;
            run.1 |= p.key == b"pid";
            if p.key == b"curr_items" {
                run.2 = Some(String::from_utf8_lossy(p.value).into_owned());
            }
            continue;
        }
        if let Some((n, pid, items)) = stat_run.take() {
            lines.push(stat_line(n, pid, items));
        }
        let cas = if h.cas == 0 {
            "0".to_string()
        } else {
            let idx = cas_names
                .iter()
                .position(|c| *c == h.cas)
                .unwrap_or_else(|| {
                    cas_names.push(h.cas);
                    cas_names.len() - 1
                });
            format!("c{}", idx + 1)
        };
        let value = if h.opcode == opcode::VERSION && p.status() == 0 {
            "\"<version>\"".to_string()
        } else {
            show(p.value)
        };
        lines.push(format!(
            "magic={:02x} op={:02x} klen={} elen={} dt={:02x} st={:04x} opq={:08x} cas={cas} \
             ext=[{}] key={} val={value}",
            h.magic,
            h.opcode,
            h.key_len,
            h.extras_len,
            h.data_type,
            p.status(),
            h.opaque,
            p.extras
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            show(p.key),
        ));
    }
    if let Some((n, pid, items)) = stat_run.take() {
        lines.push(stat_line(n, pid, items));
    }
    if !rest.is_empty() {
        lines.push(format!("TRAILING {} bytes: {}", rest.len(), show(rest)));
    }
    lines
}

fn stat_line(n: usize, pid: bool, items: Option<String>) -> String {
    format!(
        "STAT-RUN many={} pid={pid} curr_items={}",
        n > 10,
        items.as_deref().unwrap_or("-")
    )
}

fn describe(case: &Case) -> String {
    let mut s = String::new();
    for part in &case.send {
        match part {
            Send(b) => s.push_str(&show(b)),
            Bytewise(b) => s.push_str(&format!("{} (byte by byte)", show(b))),
            Await(o) => s.push_str(&format!("(await opaque {o})")),
            WithCas(o, f) => s.push_str(&format!("{} (CAS of opaque {o})", show(&f(0)))),
        }
        s.push_str(" | ");
    }
    s
}

/// The differing fields of two packet lines (`name=value` tokens), for the report.
fn field_diff(want: &str, got: &str) -> String {
    let fields = |l: &str| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for token in l.split(' ') {
            match (token.contains('='), out.last_mut()) {
                (false, Some(last)) => {
                    last.push(' ');
                    last.push_str(token);
                }
                _ => out.push(token.to_string()),
            }
        }
        out
    };
    let (w, g) = (fields(want), fields(got));
    if w.len() != g.len() {
        return "different shapes".into();
    }
    w.iter()
        .zip(&g)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{a} -> {b}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn diff_lines(want: &[String], got: &[String]) -> String {
    let mut s = String::new();
    for i in 0..want.len().max(got.len()) {
        let (w, g) = (want.get(i), got.get(i));
        if w == g {
            continue;
        }
        s.push_str(&format!(
            "\n      packet {i}:\n        want {}\n        got  {}",
            w.map(String::as_str).unwrap_or("(none)"),
            g.map(String::as_str).unwrap_or("(none)")
        ));
        if let (Some(w), Some(g)) = (w, g) {
            s.push_str(&format!("\n        fields: {}", field_diff(w, g)));
        }
    }
    s
}

/// After this many cases in a row where `b` timed out, the rest are not run.
const MAX_CONSECUTIVE_TIMEOUTS: usize = 5;

/// Runs every case on `a` (the reference) and on `b`; returns the report of mismatches.
/// With `apply_deviations`, `b` is held to each deviation's answer instead of `a`'s,
/// and `a` does not run the cases it cannot finish (`skip_reference`); without, those
/// cases are not run at all and every other case must agree (checks the harness).
fn compare(a: Flavor, b: Flavor, apply_deviations: bool) -> Vec<String> {
    let dump = std::env::var_os("DIFF_DUMP").is_some();
    let all = cases();
    let mut failures = Vec::new();
    let mut timeouts_in_a_row = 0;
    for (index, case) in all.iter().enumerate() {
        if timeouts_in_a_row == MAX_CONSECUTIVE_TIMEOUTS {
            let rest: Vec<&str> = all[index..].iter().map(|c| c.name).collect();
            failures.push(format!(
                "{b} timed out on {MAX_CONSECUTIVE_TIMEOUTS} cases in a row; not run: {rest:?}"
            ));
            break;
        }
        let found = DEVIATIONS.iter().find(|d| d.case == case.name);
        let skip_reference = found.is_some_and(|d| d.skip_reference);
        if skip_reference && !apply_deviations {
            continue;
        }
        let deviation = found.filter(|_| apply_deviations);
        let want = if skip_reference {
            Outcome {
                packets: vec!["(not run: memcached loses sync here)".into()],
                closed: case.closes,
                note: None,
            }
        } else {
            let server = Server::start(a, &[]);
            run_case(&server, case)
        };
        let got = {
            let mut server = Server::start(b, &[]);
            let mut got = run_case(&server, case);
            server.add_trouble_to(&mut got.note);
            got
        };
        if dump {
            eprintln!(
                "{} closed={}{}\n    {}",
                case.name,
                want.closed,
                want.note
                    .as_deref()
                    .map(|n| format!(" NOTE {n}"))
                    .unwrap_or_default(),
                want.packets.join("\n    ")
            );
        }
        let timed_out = got.note.as_deref().is_some_and(|n| n.contains("Timeout"));
        timeouts_in_a_row = if timed_out { timeouts_in_a_row + 1 } else { 0 };
        let mut problems = Vec::new();
        // A deviation's reference run may lose sync (that is the deviation): only
        // the others must finish cleanly and close as the table says.
        if deviation.is_none() {
            if want.note.is_some() {
                problems.push(format!(
                    "reference {a}: {}",
                    want.note.as_deref().unwrap_or("")
                ));
            }
            if want.closed != case.closes {
                problems.push(format!(
                    "reference {a} closed={} but the table says closes={}",
                    want.closed, case.closes
                ));
            }
        }
        let (want_packets, want_closed, why) = match deviation {
            Some(d) => (
                d.reply.iter().map(|l| l.to_string()).collect(),
                d.closes,
                Some(d.why),
            ),
            None => (want.packets.clone(), want.closed, None),
        };
        if got.packets != want_packets || got.closed != want_closed || got.note.is_some() {
            problems.push(format!(
                "{b} differs{}: want closed={want_closed}, got closed={}{}{}",
                why.map(|w| format!(" (deviation allowed: {w})"))
                    .unwrap_or_default(),
                got.closed,
                got.note.map(|n| format!(" ({n})")).unwrap_or_default(),
                diff_lines(&want_packets, &got.packets)
            ));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "case {}\n    sent {}\n    {}",
                case.name,
                describe(case),
                problems.join("\n    ")
            ));
        }
    }
    failures
}

fn assert_no_failures(a: Flavor, b: Flavor, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} of {} binary cases differ between {a} and {b}:\n\n{}",
        failures.len(),
        cases().len(),
        failures.join("\n\n")
    );
}

/// Checks the machinery: two memcached instances agree on every case, every case
/// finishes (sentinel seen or close observed) and the table's `closes` is right.
/// Deviation cases are held to their memcached answer here too, except those where
/// memcached loses sync or stalls (`skip_reference`: not run).
#[test]
fn harness_memcached_agrees_with_itself() {
    let failures = compare(Flavor::Memcached, Flavor::Memcached, false);
    assert_no_failures(Flavor::Memcached, Flavor::Memcached, failures);
}

#[test]
fn table_is_large_and_names_are_unique() {
    let names: Vec<&str> = cases().iter().map(|c| c.name).collect();
    let deviations: Vec<&str> = DEVIATIONS.iter().map(|d| d.case).collect();
    common::check_case_table(&names, 25, &deviations);
}

#[test]
fn normalise_names_cas_by_appearance_and_folds_stats() {
    let pkt = |op: u8, key: &[u8], value: &[u8], cas: u64| {
        let mut p = req(op, key, &[], value, 9, cas);
        p[0] = 0x81;
        p
    };
    let stream = [
        pkt(0x00, b"", b"A", 17),
        pkt(0x00, b"", b"B", 5),
        pkt(0x00, b"", b"A", 17),
        pkt(0x01, b"", b"", 0),
        pkt(opcode::VERSION, b"", b"1.6.18", 0),
        pkt(opcode::STAT, b"pid", b"1", 0),
        pkt(opcode::STAT, b"curr_items", b"2", 0),
        pkt(opcode::STAT, b"", b"", 0),
        vec![0x81, 0x00, 0x00],
    ]
    .concat();
    let lines = normalise(&stream);
    let line = |op: &str, val: &str, cas: &str| {
        format!(
            "magic=81 op={op} klen=0 elen=0 dt=00 st=0000 opq=00000009 cas={cas} ext=[] \
             key=\"\" val={val}"
        )
    };
    assert_eq!(
        lines,
        vec![
            line("00", "\"A\"", "c1"),
            line("00", "\"B\"", "c2"),
            line("00", "\"A\"", "c1"),
            line("01", "\"\"", "0"),
            line("0b", "\"<version>\"", "0"),
            "STAT-RUN many=false pid=true curr_items=2".to_string(),
            line("10", "\"\"", "0"),
            "TRAILING 3 bytes: \"\\x81\\x00\\x00\"".to_string(),
        ]
    );
    assert_eq!(
        field_diff(&lines[0], &lines[1]),
        "cas=c1 -> cas=c2, val=\"A\" -> val=\"B\""
    );
}

both_engines! {
    /// Every binary case answers as memcached does (or as its deviation says).
    fn matches_memcached(flavor) {
        let failures = compare(Flavor::Memcached, flavor, true);
        assert_no_failures(Flavor::Memcached, flavor, failures);
    }
}
