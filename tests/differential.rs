//! Differential tests: the same bytes go to memcached (the reference) and to ringcache,
//! and the replies must match byte for byte, closes included.
//!
//! Every case is data in [`CASES`]: a list of writes sent to a fresh connection of a
//! fresh server (so cases never see each other's items or CAS values). Writes go out one
//! by one with TCP_NODELAY and a short pause between them, so a server sees requests
//! split where the case splits them.
//!
//! Reading the reply: a case that keeps the connection open is followed by a sentinel
//! (`set` + `get` of a key no case uses); the reply is everything before the sentinel's
//! answer. A case marked `closes` is read until EOF/RST instead.
//!
//! Normalised before comparing: the CAS in `VALUE k f n cas` lines (each distinct CAS
//! becomes `c1`, `c2`, ... in order of appearance, so equal stays equal) and the text of
//! `VERSION x`. `stats` is not compared here (values differ by nature; see `stats.rs`).
//!
//! Where ringcache may differ from memcached on a point `doc/protocol.txt` leaves open,
//! the case is listed in [`DEVIATIONS`] with the reason and ringcache's expected reply.
//!
//! `DIFF_DUMP=1 cargo test --test differential -- --nocapture` prints every case's
//! reference reply.

#[macro_use]
mod common;

use common::{show, Flavor, ReadEnd, Server};
use std::time::{Duration, Instant};

#[path = "differential/cases.rs"]
mod cases;

use cases::{Await, Bytewise, Case, Deviation, Gen, CASES, DEVIATIONS, W};

/// What a case produced on one server.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    /// Normalised reply bytes (sentinel answer removed).
    reply: Vec<u8>,
    closed: bool,
    /// Something the harness noticed (a timeout, a failed write), if anything.
    note: Option<String>,
}

const SENTINEL: &[u8] = b"set __sentinel__ 0 0 8\r\nS3NT1NEL\r\nget __sentinel__\r\n";
const SENTINEL_REPLY: &[u8] = b"STORED\r\nVALUE __sentinel__ 0 8\r\nS3NT1NEL\r\nEND\r\n";
/// How long one case may take on one server.
const CASE_TIMEOUT: Duration = Duration::from_secs(5);
/// The pause between writes, so that each tends to arrive in a read of its own. The
/// outcome never depends on it.
const WRITE_GAP: Duration = Duration::from_millis(1);

fn run_case(server: &Server, case: &Case) -> Outcome {
    let mut conn = server.connect();
    let deadline = Instant::now() + CASE_TIMEOUT;
    let mut reply = Vec::new();
    let mut note = None;
    let mut writes: Vec<Vec<u8>> = Vec::new();
    'send: for (i, part) in case.send.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(WRITE_GAP);
        }
        writes.clear();
        match part {
            W(bytes) if needs_cas(bytes) => {
                match conn.try_read_until(deadline, |b| b.ends_with(b"END\r\n").then_some(b.len()))
                {
                    Ok(got) => reply.extend_from_slice(&got),
                    Err((end, got)) => {
                        reply.extend_from_slice(&got);
                        note = Some(format!("no END before a $CAS write: {end:?}"));
                        break 'send;
                    }
                }
                let Some(cas) = last_cas(&reply) else {
                    note = Some("no CAS in the reply before a $CAS write".into());
                    break 'send;
                };
                writes.push(substitute_cas(bytes, cas));
            }
            W(bytes) => writes.push(bytes.to_vec()),
            Await(tail) => {
                match conn.try_read_until(deadline, |b| b.ends_with(tail).then_some(b.len())) {
                    Ok(got) => reply.extend_from_slice(&got),
                    Err((end, got)) => {
                        reply.extend_from_slice(&got);
                        note = Some(format!("no {} in the reply: {end:?}", show(tail)));
                        break 'send;
                    }
                }
            }
            Bytewise(bytes) => writes.extend(bytes.iter().map(|b| vec![*b])),
            Gen(f) => writes.push(f()),
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
        reply.extend_from_slice(&got);
        closed = how.is_some();
    } else {
        let _ = conn.try_send(SENTINEL);
        match conn.try_read_until(deadline, |b| b.ends_with(SENTINEL_REPLY).then_some(b.len())) {
            Ok(got) => {
                reply.extend_from_slice(&got[..got.len() - SENTINEL_REPLY.len()]);
                closed = false;
            }
            Err((end, got)) => {
                reply.extend_from_slice(&got);
                closed = matches!(end, ReadEnd::Closed(_));
                if !closed {
                    note = Some(format!("no sentinel reply: {end:?}"));
                }
            }
        }
    }
    Outcome {
        reply: normalise(&reply),
        closed,
        note,
    }
}

fn needs_cas(bytes: &[u8]) -> bool {
    common::memfind(bytes, b"$CAS").is_some() || common::memfind(bytes, b"$BADCAS").is_some()
}

fn substitute_cas(bytes: &[u8], cas: u64) -> Vec<u8> {
    let text = String::from_utf8(bytes.to_vec()).expect("$CAS writes are text");
    text.replace("$BADCAS", &(cas + 1_000_000).to_string())
        .replace("$CAS", &cas.to_string())
        .into_bytes()
}

/// Walks a reply: yields each line (without CRLF) and, for VALUE lines, skips the data.
fn for_each_line(reply: &[u8], mut f: impl FnMut(&[u8], &[u8])) {
    let mut at = 0;
    while at < reply.len() {
        let Some(len) = common::memfind(&reply[at..], b"\r\n") else {
            f(&reply[at..], b"");
            return;
        };
        let line = &reply[at..at + len];
        let mut end = at + len + 2;
        if let Some(n) = value_len(line) {
            end = (end + n + 2).min(reply.len());
        }
        f(line, &reply[at + len..end]);
        at = end;
    }
}

/// The data length of a `VALUE key flags bytes [cas]` line.
fn value_len(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    let fields: Vec<&str> = text.split(' ').collect();
    if fields[0] != "VALUE" || !(4..=5).contains(&fields.len()) {
        return None;
    }
    fields[3].parse().ok()
}

fn last_cas(reply: &[u8]) -> Option<u64> {
    let mut cas = None;
    for_each_line(reply, |line, _| {
        if value_len(line).is_some() {
            let text = String::from_utf8_lossy(line);
            if let Some(c) = text.split(' ').nth(4).and_then(|c| c.parse().ok()) {
                cas = Some(c);
            }
        }
    });
    cas
}

fn normalise(reply: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(reply.len());
    let mut cas_names: Vec<String> = Vec::new();
    for_each_line(reply, |line, rest| {
        let text = String::from_utf8_lossy(line);
        if value_len(line).is_some() && text.split(' ').count() == 5 {
            let mut fields: Vec<&str> = text.split(' ').collect();
            let cas = fields[4].to_string();
            let idx = match cas_names.iter().position(|c| *c == cas) {
                Some(i) => i,
                None => {
                    cas_names.push(cas);
                    cas_names.len() - 1
                }
            };
            let name = format!("c{}", idx + 1);
            fields[4] = &name;
            out.extend_from_slice(fields.join(" ").as_bytes());
        } else if line.starts_with(b"VERSION ") {
            out.extend_from_slice(b"VERSION <version>");
        } else {
            out.extend_from_slice(line);
        }
        out.extend_from_slice(rest);
    });
    out
}

fn describe(case: &Case) -> String {
    let mut s = String::new();
    for part in case.send {
        let bytes = match part {
            W(b) | Bytewise(b) => b.to_vec(),
            Gen(f) => f(),
            Await(b) => format!("(await {})", show(b)).into_bytes(),
        };
        s.push_str(&show(&bytes));
        s.push_str(if matches!(part, Bytewise(_)) {
            " (byte by byte) | "
        } else {
            " | "
        });
    }
    s
}

/// Runs every case on `a` (the reference) and on `b`; returns the report of mismatches.
/// After this many cases in a row where `b` timed out, the rest are not run (each
/// would wait out [`CASE_TIMEOUT`]) and the report says so.
const MAX_CONSECUTIVE_TIMEOUTS: usize = 5;

fn compare(a: Flavor, b: Flavor, deviations: &[Deviation]) -> Vec<String> {
    let dump = std::env::var_os("DIFF_DUMP").is_some();
    let mut failures = Vec::new();
    let mut timeouts_in_a_row = 0;
    for (index, case) in CASES.iter().enumerate() {
        if timeouts_in_a_row == MAX_CONSECUTIVE_TIMEOUTS {
            let rest: Vec<&str> = CASES[index..].iter().map(|c| c.name).collect();
            failures.push(format!(
                "{b} timed out on {MAX_CONSECUTIVE_TIMEOUTS} cases in a row; not run: {rest:?}"
            ));
            break;
        }
        let want = {
            let server = Server::start(a, &[]);
            run_case(&server, case)
        };
        let got = {
            let mut server = Server::start(b, &[]);
            let mut got = run_case(&server, case);
            if let Some(trouble) = server.trouble() {
                let note = got
                    .note
                    .take()
                    .map(|n| format!("{n}; "))
                    .unwrap_or_default();
                got.note = Some(format!("{note}{trouble}"));
            }
            got
        };
        if dump {
            eprintln!(
                "{:<40} closed={} {}{}",
                case.name,
                want.closed,
                show(&want.reply),
                want.note
                    .as_deref()
                    .map(|n| format!(" NOTE {n}"))
                    .unwrap_or_default()
            );
        }
        let timed_out = got.note.as_deref().is_some_and(|n| n.contains("Timeout"));
        timeouts_in_a_row = if timed_out { timeouts_in_a_row + 1 } else { 0 };
        let mut problems = Vec::new();
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
        let (want_reply, want_closed, why) = match deviations.iter().find(|d| d.case == case.name) {
            Some(d) => (d.reply.to_vec(), d.closes, Some(d.why)),
            None => (want.reply.clone(), want.closed, None),
        };
        if got.reply != want_reply || got.closed != want_closed || got.note.is_some() {
            problems.push(format!(
                "{b} differs{}:\n      want {} closed={}\n      got  {} closed={}{}",
                why.map(|w| format!(" (deviation allowed: {w})"))
                    .unwrap_or_default(),
                show(&want_reply),
                want_closed,
                show(&got.reply),
                got.closed,
                got.note.map(|n| format!(" ({n})")).unwrap_or_default()
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
        "{} of {} cases differ between {a} and {b}:\n\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n\n")
    );
}

/// Checks the machinery: two memcached instances agree on every case, every case
/// finishes (sentinel seen or close observed) and the table's `closes` is right.
#[test]
fn harness_memcached_agrees_with_itself() {
    let failures = compare(Flavor::Memcached, Flavor::Memcached, &[]);
    assert_no_failures(Flavor::Memcached, Flavor::Memcached, failures);
}

#[test]
fn table_is_large_and_names_are_unique() {
    assert!(CASES.len() >= 60, "only {} cases", CASES.len());
    let mut names: Vec<&str> = CASES.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len(), "duplicate case names");
    for d in DEVIATIONS {
        assert!(
            names.contains(&d.case),
            "deviation for unknown case {}",
            d.case
        );
    }
}

#[test]
fn normalise_maps_cas_by_appearance() {
    let raw = b"VALUE a 0 1 17\r\nA\r\nVALUE b 0 1 9\r\nB\r\nVALUE a 0 1 17\r\nA\r\nEND\r\nVERSION 1.6.18\r\n";
    let want = b"VALUE a 0 1 c1\r\nA\r\nVALUE b 0 1 c2\r\nB\r\nVALUE a 0 1 c1\r\nA\r\nEND\r\nVERSION <version>\r\n";
    assert_eq!(show(&normalise(raw)), show(want));
    // Data that looks like a VALUE line is left alone.
    let tricky = b"VALUE a 0 16 5\r\nVALUE x 0 1 99\r\n\r\nEND\r\n";
    assert_eq!(
        show(&normalise(tricky)),
        show(b"VALUE a 0 16 c1\r\nVALUE x 0 1 99\r\n\r\nEND\r\n")
    );
}

both_engines! {
    /// Every case answers as memcached does.
    fn matches_memcached(flavor) {
        let failures = compare(Flavor::Memcached, flavor, DEVIATIONS);
        assert_no_failures(Flavor::Memcached, flavor, failures);
    }
}
