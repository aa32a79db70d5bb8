//! The text-protocol differential runner, shared by `differential.rs` (classic
//! commands) and `differential_meta.rs` (meta commands): runs a table of [`Case`]s on
//! the reference and on the server under test and reports every difference.
//!
//! Reading the reply: a case that keeps the connection open is followed by a sentinel
//! (`set` + `get` of a key no case uses); the reply is everything before the sentinel's
//! answer. A case marked `closes` is read until EOF/RST instead.
//!
//! Normalised before comparing (see [`normalise`]): CAS values (`VALUE k f n cas`
//! lines, meta `c<cas>` flags and `ME`'s `cas=`: each distinct non-zero CAS becomes
//! `c1`, `c2`, ... in order of appearance, so equal stays equal), the text of
//! `VERSION x`, and the second counts of meta answers (`t`, `l` flags, `ME`'s `exp=`
//! and `la=`), rounded to ten seconds (`t~100`) because a clock tick may fall between
//! a store and the read of its TTL; `-1` (never) stays exact.

use crate::cases::{Await, Bytewise, Case, Deviation, Gen, FOLLOWS_NEWEST, W};
use crate::common::{self, show, Flavor, ReadEnd, Server};
use std::time::{Duration, Instant};

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
                match conn.try_read_until(deadline, |b| {
                    (b.ends_with(b"END\r\n") || b.ends_with(b"MN\r\n")).then_some(b.len())
                }) {
                    Ok(got) => reply.extend_from_slice(&got),
                    Err((end, got)) => {
                        reply.extend_from_slice(&got);
                        note = Some(format!("no END or MN before a $CAS write: {end:?}"));
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

/// Walks a reply: yields each line (without CRLF) and, for VALUE and meta `VA` lines,
/// skips the data.
fn for_each_line(reply: &[u8], mut f: impl FnMut(&[u8], &[u8])) {
    let mut at = 0;
    while at < reply.len() {
        let Some(len) = common::memfind(&reply[at..], b"\r\n") else {
            f(&reply[at..], b"");
            return;
        };
        let line = &reply[at..at + len];
        let mut end = at + len + 2;
        if let Some(n) = value_len(line).or_else(|| va_len(line)) {
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

/// The data length of a meta `VA <len> <flags>*` line.
fn va_len(line: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    let mut fields = text.split(' ');
    (fields.next()? == "VA").then_some(())?;
    fields.next()?.parse().ok()
}

/// The tokens of a meta answer line that carry flags (after `VA <len>`, `ME <key>` or
/// the status code), or `None` if `line` is not a meta answer.
fn meta_flags(line: &str) -> Option<(usize, Vec<&str>)> {
    let fields: Vec<&str> = line.split(' ').collect();
    let skip = match fields[0] {
        "VA" | "ME" => 2,
        "HD" | "EN" | "NS" | "EX" | "NF" => 1,
        _ => return None,
    };
    (fields.len() >= skip).then_some((skip, fields))
}

/// The CAS a meta flag token carries (`c<n>`, or `cas=<n>` in `ME`), if any.
fn meta_cas(token: &str) -> Option<u64> {
    token
        .strip_prefix("cas=")
        .or_else(|| token.strip_prefix('c'))
        .and_then(|n| n.parse().ok())
}

fn last_cas(reply: &[u8]) -> Option<u64> {
    let mut cas = None;
    for_each_line(reply, |line, _| {
        let text = String::from_utf8_lossy(line);
        if value_len(line).is_some() {
            if let Some(c) = text.split(' ').nth(4).and_then(|c| c.parse().ok()) {
                cas = Some(c);
            }
        } else if let Some((skip, fields)) = meta_flags(&text) {
            if let Some(c) = fields[skip..]
                .iter()
                .filter_map(|t| meta_cas(t))
                .next_back()
            {
                if c != 0 {
                    cas = Some(c);
                }
            }
        }
    });
    cas
}

/// A count of seconds rounded to ten (`~100`); `-1` (never) stays as is.
fn approx_secs(n: &str) -> Option<String> {
    let n: i64 = n.parse().ok()?;
    Some(if n == -1 {
        "-1".to_string()
    } else {
        format!("~{}", (n + 5).div_euclid(10) * 10)
    })
}

pub fn normalise(reply: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(reply.len());
    let mut cas_names: Vec<String> = Vec::new();
    let mut name_of = |cas: &str| {
        let idx = match cas_names.iter().position(|c| *c == cas) {
            Some(i) => i,
            None => {
                cas_names.push(cas.to_string());
                cas_names.len() - 1
            }
        };
        idx + 1
    };
    for_each_line(reply, |line, rest| {
        let text = String::from_utf8_lossy(line);
        if value_len(line).is_some() && text.split(' ').count() == 5 {
            let mut fields: Vec<&str> = text.split(' ').collect();
            let name = format!("c{}", name_of(fields[4]));
            fields[4] = &name;
            out.extend_from_slice(fields.join(" ").as_bytes());
        } else if line.starts_with(b"VERSION ") {
            out.extend_from_slice(b"VERSION <version>");
        } else if let Some((skip, fields)) = meta_flags(&text) {
            let mut tokens: Vec<String> = fields[..skip].iter().map(|t| t.to_string()).collect();
            for token in &fields[skip..] {
                let me = fields[0] == "ME";
                let mapped = match meta_cas(token) {
                    Some(0) => None,
                    Some(c) if me == token.starts_with("cas=") => Some(format!(
                        "{}#{}",
                        if me { "cas=" } else { "c" },
                        name_of(&c.to_string())
                    )),
                    _ => None,
                };
                let timed = if me {
                    ["exp=", "la="].iter().find_map(|p| {
                        approx_secs(token.strip_prefix(p)?).map(|n| format!("{p}{n}"))
                    })
                } else {
                    ["t", "l"].iter().find_map(|p| {
                        approx_secs(token.strip_prefix(p)?).map(|n| format!("{p}{n}"))
                    })
                };
                tokens.push(mapped.or(timed).unwrap_or_else(|| token.to_string()));
            }
            out.extend_from_slice(tokens.join(" ").as_bytes());
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

pub fn compare(a: Flavor, b: Flavor, cases: &[Case], deviations: &[Deviation]) -> Vec<String> {
    let dump = std::env::var_os("DIFF_DUMP").is_some();
    let mut failures = Vec::new();
    let mut timeouts_in_a_row = 0;
    for (index, case) in cases.iter().enumerate() {
        if timeouts_in_a_row == MAX_CONSECUTIVE_TIMEOUTS {
            let rest: Vec<&str> = cases[index..].iter().map(|c| c.name).collect();
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
            server.add_trouble_to(&mut got.note);
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

pub fn assert_no_failures(a: Flavor, b: Flavor, cases: &[Case], failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{} of {} cases differ between {a} and {b}:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The names of the cases that Debian's memcached and the newest release (beside the
/// checkout, `../shared/reference/`) answer differently, after printing each
/// difference; `None`, after saying so, where the newest release is absent.
pub fn newest_differences(cases: &[Case]) -> Option<Vec<&'static str>> {
    if common::newest_memcached_path().is_none() {
        eprintln!(
            "SKIPPED: no newest memcached at ../shared/reference/memcached-1.6.45 (a clone \
             without the workplace's shared/ folder): compared with Debian's 1.6.18 only"
        );
        return None;
    }
    let failures = compare(Flavor::Memcached, Flavor::MemcachedNewest, cases, &[]);
    let differ: Vec<&'static str> = cases
        .iter()
        .map(|c| c.name)
        .filter(|name| {
            failures
                .iter()
                .any(|f| f.starts_with(&format!("case {name}\n")))
        })
        .collect();
    eprintln!(
        "{} of {} cases answer differently on the newest memcached (ringcache follows \
         1.6.45 where the deviation list says so):\n{}",
        differ.len(),
        cases.len(),
        failures.join("\n\n")
    );
    Some(differ)
}

/// Checks that the cases where ringcache follows the newest memcached (the
/// `deviations` whose `why` is [`FOLLOWS_NEWEST`]) answer on `flavor` as the newest
/// build does; skips with a message where that build is absent.
pub fn assert_moved_cases_match_newest(flavor: Flavor, cases: &[Case], deviations: &[Deviation]) {
    if common::newest_memcached_path().is_none() {
        eprintln!("SKIPPED: no newest memcached at ../shared/reference/memcached-1.6.45");
        return;
    }
    let moved: Vec<&str> = deviations
        .iter()
        .filter(|d| d.why == FOLLOWS_NEWEST)
        .map(|d| d.case)
        .collect();
    let picked: Vec<Case> = cases
        .iter()
        .filter(|c| moved.contains(&c.name))
        .map(|c| Case {
            name: c.name,
            send: c.send,
            closes: c.closes,
        })
        .collect();
    assert_eq!(
        picked.len(),
        moved.len(),
        "every moved case is in the table"
    );
    let failures = compare(Flavor::MemcachedNewest, flavor, &picked, &[]);
    assert_no_failures(Flavor::MemcachedNewest, flavor, &picked, failures);
}

/// Checks that every case named in `listed` still answers differently on the newest
/// memcached than on 1.6.18 (see [`newest_differences`]). A difference beyond the list
/// is printed but not failed on: once, under heavy load, one more case differed (a
/// harness timing note, not memcached), and this describes memcached, not ringcache.
pub fn assert_newest_differs(cases: &[Case], listed: &[&str]) {
    let Some(differ) = newest_differences(cases) else {
        return;
    };
    let missing: Vec<&&str> = listed.iter().filter(|n| !differ.contains(n)).collect();
    assert!(
        missing.is_empty(),
        "listed cases no longer differ: {missing:?}"
    );
    let extra: Vec<&&str> = differ.iter().filter(|n| !listed.contains(n)).collect();
    if !extra.is_empty() {
        eprintln!("NOTE: cases that differed this run but are not listed: {extra:?}");
    }
}
