//! SASL authentication (`-S`) over the binary protocol, against Debian's memcached
//! 1.6.18. Debian builds memcached without its own password file (`ENABLE_SASL_PWDB`
//! is off: `MEMCACHED_SASL_PWDB` is ignored), so the reference gets the same users in a
//! Cyrus sasldb: `saslpasswd2` (package `sasl2-bin`, installed by `ci/test.sh`) writes
//! them into a temp dir that also holds `memcached.conf` (`mech_list: plain`,
//! `sasldb_path`), and memcached is started with `SASL_CONF_PATH` naming that dir.
//! ringcache reads the same users from a `user:password` file named by
//! `MEMCACHED_SASL_PWDB`.
//!
//! Then, on both engines: real clients (python3-binary-memcached, libmemcached's
//! `memcstat --binary --username --password`), unauthenticated requests of every
//! dialect (the auth error or a close, nothing stored), 10,000 wrong passwords on one
//! connection and on many (another authenticated client is served all along), garbage
//! and huge SASL payloads, SIGHUP, and the startup refusals.

#[macro_use]
mod common;

use common::*;
use ringcache_client::binary::{self, opcode};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const USERS: &[(&str, &str)] = &[("alice", "secret"), ("bob", "pw2")];
const GOOD: &[u8] = b"\0alice\0secret";
const BAD: &[u8] = b"\0alice\0wrong";
const SASL_LIST_MECHS: u8 = opcode::SASL_LIST_MECHS;
const SASL_AUTH: u8 = opcode::SASL_AUTH;
const SASL_STEP: u8 = opcode::SASL_STEP;
const AUTH_ERROR: u16 = 0x20;
const AUTH_CONTINUE: u16 = 0x21;

/// One request packet.
fn pkt(op: u8, key: &[u8], extras: &[u8], value: &[u8]) -> Vec<u8> {
    pkt_opaque(op, key, extras, value, 0)
}

fn pkt_opaque(op: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
    let mut out = Vec::new();
    binary::request(&mut out, op, opaque, extras, key, value);
    out
}

fn auth(data: &[u8]) -> Vec<u8> {
    pkt(SASL_AUTH, b"PLAIN", b"", data)
}

fn set(key: &str, value: &str) -> Vec<u8> {
    pkt(
        opcode::SET,
        key.as_bytes(),
        &binary::store_extras(0, 0),
        value.as_bytes(),
    )
}

/// The users as memcached's password file has them.
fn write_pwdb(dir: &TempDir) -> String {
    let path = dir.join("pwdb");
    let lines: String = USERS.iter().map(|(u, p)| format!("{u}:{p}\n")).collect();
    std::fs::write(&path, lines).unwrap();
    path.display().to_string()
}

/// The same users in a Cyrus sasldb beside a `memcached.conf`, for Debian's memcached.
fn write_sasldb(dir: &TempDir) {
    let saslpasswd2 = find_program("saslpasswd2")
        .or_else(|| Some(Path::new("/usr/sbin/saslpasswd2").to_path_buf()).filter(|p| p.is_file()))
        .expect("saslpasswd2 is missing: `apt-get install sasl2-bin` (ci/test.sh does)");
    let db = dir.join("sasldb2");
    let conf = format!("mech_list: plain\nsasldb_path: {}\n", db.display());
    std::fs::write(dir.join("memcached.conf"), conf).unwrap();
    for (user, password) in USERS {
        let mut child = Command::new(&saslpasswd2)
            .args(["-p", "-c", "-a", "memcached", "-f"])
            .arg(&db)
            .arg(user)
            .stdin(Stdio::piped())
            .spawn()
            .expect("run saslpasswd2");
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(password.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success(), "saslpasswd2 {user}");
    }
}

/// A server with `-S` and `args`, its users in `dir`.
fn start(flavor: Flavor, dir: &TempDir, args: &[&str]) -> Server {
    let mut argv = vec!["-S"];
    argv.extend_from_slice(args);
    if flavor.is_memcached() {
        write_sasldb(dir);
        let conf_dir = dir.path().to_path_buf();
        Server::start_with(flavor, &argv, |c| {
            c.env("SASL_CONF_PATH", conf_dir);
        })
    } else {
        let pwdb = write_pwdb(dir);
        Server::start_with(flavor, &argv, |c| {
            c.env("MEMCACHED_SASL_PWDB", pwdb);
        })
    }
}

/// One answer packet, as the tests compare it.
#[derive(Debug, PartialEq, Eq)]
struct Answer {
    opcode: u8,
    status: u16,
    opaque: u32,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "[op {:#04x} status {:#x} opaque {} {} {}]",
            self.opcode,
            self.status,
            self.opaque,
            show(&self.key),
            show(&self.value)
        )
    }
}

/// Splits `bytes` into whole answers; the rest (not a whole packet) is shown raw.
fn answers(mut bytes: &[u8]) -> (Vec<Answer>, Vec<u8>) {
    let mut list = Vec::new();
    while let Ok(d) = binary::decode(bytes) {
        let p = d.response;
        list.push(Answer {
            opcode: p.header.opcode,
            status: p.status(),
            opaque: p.header.opaque,
            key: p.key.to_vec(),
            value: p.value.to_vec(),
        });
        bytes = &bytes[d.consumed..];
    }
    (list, bytes.to_vec())
}

/// The length of the first `n` whole packets of `b`, once they are in.
fn packets_len(b: &[u8], n: usize) -> Option<usize> {
    let mut at = 0;
    for _ in 0..n {
        let (_, len) = binary::frame(&b[at..]).ok()?;
        at += len;
    }
    Some(at)
}

fn read_answers(c: &mut Client, n: usize) -> Vec<Answer> {
    let bytes = c.read_until(&format!("{n} binary answers"), |b| packets_len(b, n));
    answers(&bytes).0
}

fn read_answer(c: &mut Client) -> Answer {
    read_answers(c, 1).remove(0)
}

/// Binary STAT `group`: the name/value pairs until the empty terminator.
fn binary_stats(c: &mut Client, group: &str) -> HashMap<String, String> {
    c.send(&pkt(opcode::STAT, group.as_bytes(), b"", b""));
    let bytes = c.read_until("binary stats", |b| {
        let mut at = 0;
        loop {
            let (h, len) = binary::frame(&b[at..]).ok()?;
            at += len;
            if h.key_len == 0 {
                return Some(at);
            }
        }
    });
    answers(&bytes)
        .0
        .into_iter()
        .filter(|a| !a.key.is_empty())
        .map(|a| {
            let s = |v: Vec<u8>| String::from_utf8(v).unwrap();
            (s(a.key), s(a.value))
        })
        .collect()
}

/// A new connection authenticated as alice.
fn authenticated(server: &Server) -> Client {
    let mut c = server.connect();
    c.send(&auth(GOOD));
    let a = read_answer(&mut c);
    assert_eq!(
        (a.status, a.value.as_slice()),
        (0, &b"Authenticated"[..]),
        "{a}"
    );
    c
}

/// What to read after a write.
#[derive(Clone, Copy)]
enum Then {
    Packets(usize),
    /// The server closes (after answering whatever it answers).
    Close,
}
use Then::{Close, Packets};

/// Runs one session: a transcript of the answers and closes.
fn run_session(server: &Server, session: &[(Vec<u8>, Then)]) -> String {
    let mut c = server.connect();
    let mut seen = String::new();
    for (bytes, then) in session {
        c.send(bytes);
        match then {
            Packets(n) => {
                for a in read_answers(&mut c, *n) {
                    seen.push_str(&a.to_string());
                }
            }
            Close => {
                let (got, how) = c.read_to_close(Instant::now() + IO_TIMEOUT);
                let (list, rest) = answers(&got);
                for a in list {
                    seen.push_str(&a.to_string());
                }
                seen.push_str(&format!("{} <closed: {}>", show(&rest), how.is_some()));
                break;
            }
        }
        seen.push_str(" | ");
    }
    seen
}

type Session = Vec<(Vec<u8>, Then)>;

/// The sessions both servers must answer alike.
fn sessions() -> Vec<(String, Session)> {
    let mut all: Vec<(String, Session)> = Vec::new();
    let mut add = |name: &str, steps: Session| all.push((name.to_string(), steps));
    let extras8 = binary::store_extras(0, 0);
    // Every command but VERSION and the SASL ones, unauthenticated: 0x20, closed.
    let refused: Vec<(&str, Vec<u8>)> = vec![
        ("noop", pkt(opcode::NOOP, b"", b"", b"")),
        ("get", pkt(opcode::GET, b"k", b"", b"")),
        ("getq", pkt(opcode::GETQ, b"k", b"", b"")),
        ("getkq", pkt(opcode::GETKQ, b"k", b"", b"")),
        ("set", set("k", "v")),
        ("setq", pkt(opcode::SETQ, b"k", &extras8, b"v")),
        ("addq", pkt(opcode::ADDQ, b"k", &extras8, b"v")),
        ("appendq", pkt(opcode::APPENDQ, b"k", b"", b"v")),
        ("delete", pkt(opcode::DELETE, b"k", b"", b"")),
        (
            "incr",
            pkt(opcode::INCREMENT, b"k", &binary::arith_extras(1, 0, 0), b""),
        ),
        ("flush", pkt(opcode::FLUSH, b"", b"", b"")),
        ("flushq", pkt(opcode::FLUSHQ, b"", b"", b"")),
        ("stat", pkt(opcode::STAT, b"", b"", b"")),
        ("quit", pkt(opcode::QUIT, b"", b"", b"")),
        ("quitq", pkt(opcode::QUITQ, b"", b"", b"")),
        ("touch", pkt(opcode::TOUCH, b"k", &[0; 4], b"")),
        ("gatkq", pkt(opcode::GATKQ, b"k", &[0; 4], b"")),
        ("verbosity", pkt(opcode::VERBOSITY, b"", &[0; 4], b"")),
        ("unassigned", pkt_opaque(0x3d, b"", b"", b"xx", 3)),
        (
            "key_over_250",
            pkt_opaque(opcode::GET, &[b'k'; 300], b"", b"", 4),
        ),
        ("bad_lengths_of_get", pkt(opcode::GET, b"k", b"abcd", b"")),
    ];
    for (name, packet) in refused {
        add(&format!("unauthenticated_{name}"), vec![(packet, Close)]);
    }
    let pipelined = [
        pkt(opcode::SETQ, b"a", &extras8, b"1"),
        pkt(opcode::SETQ, b"b", &extras8, b"2"),
        pkt(opcode::NOOP, b"", b"", b""),
    ]
    .concat();
    add("unauthenticated_pipeline", vec![(pipelined, Close)]);
    let line = |s: &str| s.as_bytes().to_vec();
    add(
        "text_is_closed",
        vec![(line("get aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"), Close)],
    );
    add(
        "meta_is_closed",
        vec![(line("ms aaaaaaaaaaaaaaaaaaaaaaaaaa 1 T0\r\nx\r\n"), Close)],
    );
    add(
        "text_version_is_closed",
        vec![(line("version\r\nversion\r\nversion\r\n"), Close)],
    );
    let version = || pkt(opcode::VERSION, b"", b"", b"");
    let noop = || pkt(opcode::NOOP, b"", b"", b"");
    let list = || pkt(SASL_LIST_MECHS, b"", b"", b"");
    add(
        "version_and_mechanisms",
        vec![
            (version(), Packets(1)),
            (list(), Packets(1)),
            (list(), Packets(1)),
        ],
    );
    add(
        "good_password_serves",
        vec![
            (auth(GOOD), Packets(1)),
            (set("k", "v"), Packets(1)),
            (pkt(opcode::GET, b"k", b"", b""), Packets(1)),
            (
                [pkt(opcode::GETQ, b"miss", b"", b""), noop()].concat(),
                Packets(1),
            ),
            (pkt(opcode::DELETE, b"k", b"", b""), Packets(1)),
            (version(), Packets(1)),
        ],
    );
    add(
        "bob_too",
        vec![(auth(b"\0bob\0pw2"), Packets(1)), (noop(), Packets(1))],
    );
    add(
        "wrong_password_keeps_the_connection_unauthenticated",
        vec![
            (auth(BAD), Packets(1)),
            (version(), Packets(1)),
            (set("w", "x"), Close),
        ],
    );
    add(
        "wrong_then_right",
        vec![
            (auth(BAD), Packets(1)),
            (auth(b"\0bob\0secret"), Packets(1)),
            (auth(GOOD), Packets(1)),
            (noop(), Packets(1)),
        ],
    );
    // Each PLAIN message Cyrus refuses (or takes), then VERSION (the connection lives).
    for (name, data) in [
        ("empty_means_continue", &b""[..]),
        ("no_nul", b"alicesecret"),
        ("one_nul", b"\0alicesecret"),
        ("trailing_nul", b"\0alice\0secret\0"),
        ("empty_user", b"\0\0secret"),
        ("empty_password", b"\0alice\0"),
        ("other_authzid", b"bob\0alice\0secret"),
        ("same_authzid", b"alice\0alice\0secret"),
        ("binary_garbage", b"\xff\xfe\0\x01\x02\0\x80\x81"),
    ] {
        add(
            &format!("plain_{name}"),
            vec![(auth(data), Packets(1)), (version(), Packets(1))],
        );
    }
    let mech = |m: &[u8], data: &[u8]| pkt(SASL_AUTH, m, b"", data);
    for (name, packet) in [
        ("lowercase", mech(b"plain", GOOD)),
        ("unknown", mech(b"CRAM-MD5", GOOD)),
        ("unknown_empty", mech(b"FOO", b"")),
        ("32_bytes", mech(&[b'P'; 32], GOOD)),
        ("33_bytes", mech(&[b'P'; 33], GOOD)),
        ("250_bytes", mech(&[b'P'; 250], GOOD)),
    ] {
        add(
            &format!("mechanism_{name}"),
            vec![(packet, Packets(1)), (version(), Packets(1))],
        );
    }
    let step = |data: &[u8]| pkt(SASL_STEP, b"PLAIN", b"", data);
    add(
        "step_without_auth",
        vec![(step(GOOD), Packets(1)), (noop(), Close)],
    );
    add(
        "continue_then_step",
        vec![
            (auth(b""), Packets(1)),
            (step(GOOD), Packets(1)),
            (noop(), Packets(1)),
        ],
    );
    add(
        "continue_then_wrong_steps",
        vec![
            (auth(b""), Packets(1)),
            (step(BAD), Packets(1)),
            (step(b""), Packets(1)),
            (step(GOOD), Packets(1)),
            (noop(), Packets(1)),
        ],
    );
    add(
        "continue_list_step",
        vec![
            (auth(b""), Packets(1)),
            (list(), Packets(1)),
            (step(GOOD), Packets(1)),
            (noop(), Packets(1)),
        ],
    );
    add(
        "failed_auth_then_step",
        vec![
            (auth(BAD), Packets(1)),
            (step(GOOD), Packets(1)),
            (noop(), Close),
        ],
    );
    add(
        "reauth_after_success_fails",
        vec![
            (auth(GOOD), Packets(1)),
            (auth(GOOD), Packets(1)),
            (noop(), Close),
        ],
    );
    add(
        "step_after_success_fails",
        vec![
            (auth(GOOD), Packets(1)),
            (step(GOOD), Packets(1)),
            (noop(), Close),
        ],
    );
    add(
        "list_forgets_the_authentication",
        vec![
            (auth(GOOD), Packets(1)),
            (list(), Packets(1)),
            (noop(), Close),
        ],
    );
    add(
        "answers_echo_opcode_and_opaque",
        vec![
            (pkt_opaque(SASL_AUTH, b"PLAIN", b"", BAD, 7), Packets(1)),
            (pkt_opaque(SASL_LIST_MECHS, b"", b"", b"", 8), Packets(1)),
            (pkt_opaque(SASL_AUTH, b"PLAIN", b"", GOOD, 9), Packets(1)),
            (
                pkt_opaque(opcode::SETQ, b"o", &extras8, b"v", 10),
                Packets(0),
            ),
            (pkt_opaque(opcode::GETK, b"o", b"", b"", 11), Packets(1)),
        ],
    );
    // The largest payload memcached reads into one unchunked item, one more, 2 MiB.
    let fits = 512 * 1024 - (48 + 8 + 5 + 1 + 2);
    let payload = |n: usize| [GOOD, &vec![b'x'; n - GOOD.len()]].concat();
    add(
        "payload_that_fits",
        vec![(auth(&payload(fits)), Packets(1)), (version(), Packets(1))],
    );
    add(
        "payload_one_over",
        vec![
            (auth(&payload(fits + 1)), Packets(1)),
            (version(), Packets(1)),
        ],
    );
    add(
        "payload_2_mib",
        vec![
            (auth(&payload(2 << 20)), Packets(1)),
            (version(), Packets(1)),
        ],
    );
    add(
        "list_with_a_body",
        vec![(pkt(SASL_LIST_MECHS, b"", b"", b"x"), Close)],
    );
    add(
        "auth_with_extras",
        vec![(pkt(SASL_AUTH, b"PLAIN", b"1234", GOOD), Close)],
    );
    add(
        "auth_without_mechanism",
        vec![(pkt(SASL_AUTH, b"", b"", GOOD), Close)],
    );
    let mut short_body = pkt(SASL_AUTH, b"PLAIN", b"", b"");
    short_body[11] = 2; // body_len 2, key 5
    add("key_longer_than_body", vec![(short_body, Close)]);
    all
}

both_engines! {
    /// The same sessions on memcached 1.6.18 (users in a sasldb) and ringcache (users
    /// in its password file), then the same counters and settings.
    fn matches_memcached(flavor) {
        let (mdir, rdir) = (TempDir::new("sasl-mc"), TempDir::new("sasl-rc"));
        let reference = start(Flavor::Memcached, &mdir, &[]);
        let server = start(flavor, &rdir, &[]);
        let mut failures = Vec::new();
        for (name, session) in sessions() {
            let want = run_session(&reference, &session);
            let got = run_session(&server, &session);
            if got != want {
                failures.push(format!("{name}:\n  memcached {want}\n  {flavor} {got}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        let figures = [&reference, &server].map(|s| {
            let mut c = authenticated(s);
            let st = binary_stats(&mut c, "");
            let settings = binary_stats(&mut c, "settings");
            assert_eq!(settings["auth_enabled_sasl"], "yes", "{}", s.flavor());
            assert_eq!(settings["binding_protocol"], "binary", "{}", s.flavor());
            ["auth_cmds", "auth_errors", "curr_items", "cmd_set", "cmd_get", "cmd_flush"]
                .map(|n| stat_u64(&st, n))
        });
        assert_eq!(figures[1], figures[0], "auth_cmds, auth_errors, curr_items, cmd_set, cmd_get, cmd_flush");
        assert!(figures[0][1] > 10, "auth_errors {}", figures[0][1]);
    }
}

/// Runs a python3-binary-memcached client: `set` then `get` of `key`, as `user`.
fn bmemcached(server: &Server, user: &str, password: &str, key: &str) -> String {
    let script = r#"
import sys, bmemcached
host, user, password, key = sys.argv[1:5]
client = bmemcached.Client((host,), user, password)
try:
    stored = client.set(key, "value-" + key)
    print("set", stored, "get", client.get(key))
except bmemcached.exceptions.MemcachedException as e:
    print("error", e.args[-1])
"#;
    let out = Command::new("/usr/bin/python3")
        .args([
            "-c",
            script,
            &format!("127.0.0.1:{}", server.port()),
            user,
            password,
            key,
        ])
        .output()
        .expect("run /usr/bin/python3 (apt-get install python3-binary-memcached; ci/test.sh does)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python3 bmemcached failed: {err}");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `memcstat --binary` with credentials: its exit status and its output.
fn memcstat(server: &Server, user: &str, password: &str) -> (bool, String) {
    let tool = find_program("memcstat").expect("memcstat is missing (libmemcached-tools)");
    let out = Command::new(tool)
        .arg(format!("--servers=127.0.0.1:{}", server.port()))
        .args([
            "--binary",
            &format!("--username={user}"),
            &format!("--password={password}"),
        ])
        .output()
        .expect("run memcstat");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

both_engines! {
    reference;
    /// Real clients: python3-binary-memcached and libmemcached's memcstat
    /// authenticate with the right password, get memcached's refusal with a wrong
    /// one, and a refused client stores nothing.
    fn real_clients(flavor) {
        let dir = TempDir::new("sasl-clients");
        let server = start(flavor, &dir, &[]);
        assert_eq!(bmemcached(&server, "alice", "secret", "k1"), "set True get value-k1");
        assert_eq!(bmemcached(&server, "bob", "pw2", "k2"), "set True get value-k2");
        assert_eq!(bmemcached(&server, "alice", "wrong", "k3"), "error 32");
        assert_eq!(bmemcached(&server, "mallory", "secret", "k4"), "error 32");
        let (ok, out) = memcstat(&server, "alice", "secret");
        assert!(ok && out.contains("pid:") && out.contains("curr_items: 2"), "{out}");
        let (ok, out) = memcstat(&server, "alice", "wrong");
        assert!(!ok && out.contains("AUTHENTICATION FAILURE"), "{out}");
        let mut c = authenticated(&server);
        for (key, stored) in [("k1", true), ("k2", true), ("k3", false), ("k4", false)] {
            c.send(&pkt(opcode::GET, key.as_bytes(), b"", b""));
            let a = read_answer(&mut c);
            assert_eq!(a.status == 0, stored, "{key}: {a}");
        }
    }
}

both_engines! {
    /// Requests of every dialect before authenticating: a binary one gets 0x20 and
    /// the connection closes; text and meta are closed unanswered. Nothing is stored,
    /// deleted, flushed or counted.
    fn unauthenticated_requests_store_nothing(flavor) {
        let dir = TempDir::new("sasl-unauth");
        let server = start(flavor, &dir, &[]);
        let mut setup = authenticated(&server);
        setup.send(&set("keep", "kept"));
        assert_eq!(read_answer(&mut setup).status, 0);
        let extras8 = binary::store_extras(0, 0);
        let hostile: Vec<Vec<u8>> = vec![
            set("a", "1"),
            [pkt(opcode::SETQ, b"b", &extras8, b"2"), pkt(opcode::SETQ, b"c", &extras8, b"3")].concat(),
            pkt(opcode::ADDQ, b"d", &extras8, b"4"),
            pkt(opcode::REPLACEQ, b"keep", &extras8, b"5"),
            pkt(opcode::APPEND, b"keep", b"", b"6"),
            pkt(opcode::PREPENDQ, b"keep", b"", b"7"),
            pkt(opcode::DELETEQ, b"keep", b"", b""),
            pkt(opcode::INCREMENTQ, b"e", &binary::arith_extras(1, 5, 0), b""),
            pkt(opcode::FLUSH, b"", b"", b""),
            pkt(opcode::GATQ, b"keep", &[0, 0, 0, 1], b""),
            b"set f 0 0 1\r\nF\r\nflush_all\r\n get keep\r\n".to_vec(),
            b"ms g 1 T0\r\nG\r\nmd keep q\r\nmn\r\n    ".to_vec(),
        ];
        for bytes in &hostile {
            let mut c = server.connect();
            c.send(bytes);
            let (got, how) = c.read_to_close(Instant::now() + IO_TIMEOUT);
            assert!(how.is_some(), "still open after {}", show(bytes));
            let (list, rest) = answers(&got);
            assert!(rest.is_empty(), "{}", show(&got));
            if bytes[0] == binary::REQUEST_MAGIC {
                assert_eq!(list.len(), 1, "{}", show(&got));
                assert_eq!((list[0].opcode, list[0].status), (bytes[1], AUTH_ERROR));
            } else {
                assert!(list.is_empty(), "{}", show(&got));
            }
        }
        for key in ["a", "b", "c", "d", "e", "f", "g"] {
            setup.send(&pkt(opcode::GET, key.as_bytes(), b"", b""));
            assert_eq!(read_answer(&mut setup).status, 1, "{key}");
        }
        setup.send(&pkt(opcode::GET, b"keep", b"", b""));
        assert_eq!(read_answer(&mut setup).value, b"kept");
        let st = binary_stats(&mut setup, "");
        assert_eq!(stat_u64(&st, "curr_items"), 1);
        assert_eq!(stat_u64(&st, "cmd_set"), 1);
        assert_eq!(stat_u64(&st, "cmd_flush"), 0);
        assert_eq!(stat_u64(&st, "auth_errors"), 0);
    }
}

/// Authenticated set/get roundtrips until `done`; the slowest one and how many ran.
fn serve_until(server: &Server, done: impl Fn() -> bool) -> (Duration, u32) {
    let mut served = authenticated(server);
    let (mut slowest, mut rounds) = (Duration::ZERO, 0u32);
    while !done() || rounds < 10 {
        let t = Instant::now();
        let value = format!("v{rounds}");
        served.send(&[set("k", &value), pkt(opcode::GET, b"k", b"", b"")].concat());
        let got = read_answers(&mut served, 2);
        assert_eq!(got[0].status, 0, "{}", got[0]);
        assert_eq!(got[1].value, value.as_bytes());
        slowest = slowest.max(t.elapsed());
        rounds += 1;
    }
    (slowest, rounds)
}

both_engines! {
    /// 10,000 wrong passwords on one connection, then 10,000 over 500 connections:
    /// each answered 0x20 and counted, no crash, and an authenticated client is
    /// served all along.
    fn ten_thousand_wrong_passwords(flavor) {
        let dir = TempDir::new("sasl-brute");
        let server = start(flavor, &dir, &[]);
        const TRIES: usize = 10_000;
        let (one, (slowest, rounds)) = std::thread::scope(|scope| {
            let attack = scope.spawn(|| {
                let mut attacker = server.connect();
                let mut batch = Vec::new();
                for i in 0..TRIES {
                    batch.extend(auth(format!("\0alice\0wrong{i:05}").as_bytes()));
                    if batch.len() > 32 * 1024 || i == TRIES - 1 {
                        attacker.send(&batch);
                        batch.clear();
                    }
                }
                let got = read_answers(&mut attacker, TRIES);
                // The connection lives and is still unauthenticated.
                attacker.send(&pkt(opcode::VERSION, b"", b"", b""));
                assert_eq!(read_answer(&mut attacker).status, 0);
                got
            });
            let served = serve_until(&server, || attack.is_finished());
            (attack.join().unwrap(), served)
        });
        assert_eq!(one.len(), TRIES);
        assert!(one.iter().all(|a| a.status == AUTH_ERROR && a.opcode == SASL_AUTH));
        // A bound for "served promptly" on a loaded 2-core machine, not a benchmark.
        assert!(slowest < Duration::from_secs(1), "slowest roundtrip {slowest:?} in {rounds}");
        const CONNS: usize = 500;
        let (failed, (slowest, rounds)) = std::thread::scope(|scope| {
            let attack = scope.spawn(|| {
                let mut failed = 0;
                for _ in 0..CONNS {
                    let mut c = server.connect();
                    let tries: Vec<u8> = (0..TRIES / CONNS).flat_map(|_| auth(BAD)).collect();
                    c.send(&tries);
                    failed += read_answers(&mut c, TRIES / CONNS)
                        .iter()
                        .filter(|a| a.status == AUTH_ERROR)
                        .count();
                    c.send(&pkt(opcode::NOOP, b"", b"", b""));
                    c.expect_closed(IO_TIMEOUT);
                }
                failed
            });
            let served = serve_until(&server, || attack.is_finished());
            (attack.join().unwrap(), served)
        });
        assert_eq!(failed, TRIES);
        assert!(slowest < Duration::from_secs(1), "slowest roundtrip {slowest:?} in {rounds}");
        let mut c = authenticated(&server);
        let st = binary_stats(&mut c, "");
        assert_eq!(stat_u64(&st, "auth_errors"), 2 * TRIES as u64);
        // The two serving clients and this one authenticated.
        assert_eq!(stat_u64(&st, "auth_cmds"), 2 * TRIES as u64 + 3);
    }
}

both_engines! {
    /// Garbage SASL payloads (random bytes, NULs anywhere, long ones), a body length
    /// of 2 GiB, and a mechanism at the key limit: answered as memcached answers
    /// (0x20, 0x21 for an empty PLAIN, 0x82 for what memcached would not hold), the
    /// server keeps serving and stores nothing.
    fn garbage_and_huge_payloads(flavor) {
        let dir = TempDir::new("sasl-garbage");
        let server = start(flavor, &dir, &[]);
        let mut c = server.connect();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut errors = 0u64;
        for round in 0..300 {
            let len = round * 53 % 3000;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    // Many NULs, so PLAIN's split is reached.
                    if rng.is_multiple_of(5) { 0 } else { (rng >> 24) as u8 }
                })
                .collect();
            let op = if round % 3 == 0 { SASL_STEP } else { SASL_AUTH };
            c.send(&pkt(op, b"PLAIN", b"", &data));
            let a = read_answer(&mut c);
            let want = if len == 0 && op == SASL_AUTH { AUTH_CONTINUE } else { AUTH_ERROR };
            assert_eq!(a.status, want, "round {round}: {a}");
            errors += u64::from(want == AUTH_ERROR);
        }
        // A 2 GiB body: refused from its header and key, the rest swallowed as it comes.
        let mut huge = server.connect();
        let mut header = pkt(SASL_AUTH, b"PLAIN", b"", b"");
        header[8..12].copy_from_slice(&(5u32 + (1 << 31)).to_be_bytes());
        huge.send(&header);
        assert_eq!(read_answer(&mut huge).status, 0x82);
        huge.send(&[0u8; 64 * 1024]);
        // The key limit for the mechanism: 0x04, the data swallowed, connection lives.
        c.send(&[pkt(SASL_AUTH, &[b'M'; 250], b"", &[7; 1000]), pkt(opcode::VERSION, b"", b"", b"")].concat());
        let got = read_answers(&mut c, 2);
        assert_eq!((got[0].status, got[1].status), (0x04, 0));
        let mut check = authenticated(&server);
        let st = binary_stats(&mut check, "");
        assert_eq!(stat_u64(&st, "curr_items"), 0);
        assert_eq!(stat_u64(&st, "auth_errors"), errors);
        drop(huge);
    }
}

both_engines! {
    /// SIGHUP rereads the password file; one that cannot be read keeps the old users.
    fn sighup_rereads_the_file(flavor) {
        let dir = TempDir::new("sasl-hup");
        let server = start(flavor, &dir, &[]);
        let pwdb = dir.join("pwdb");
        let attempt = |data: &[u8]| {
            let mut c = server.connect();
            c.send(&auth(data));
            read_answer(&mut c).status == 0
        };
        assert!(attempt(GOOD));
        std::fs::write(&pwdb, "zed:new\n").unwrap();
        server.signal(libc::SIGHUP);
        // The main thread takes the signal within its one-second tick.
        assert!(wait_until(Duration::from_secs(5), || attempt(b"\0zed\0new")));
        assert!(!attempt(GOOD));
        std::fs::remove_file(&pwdb).unwrap();
        server.signal(libc::SIGHUP);
        let warned = "cannot read the SASL password file";
        assert!(wait_until(Duration::from_secs(5), || server.log().contains(warned)), "{}", server.log());
        assert!(attempt(b"\0zed\0new"));
    }
}

both_engines! {
    reference;
    /// `-S` with `-Y`: memcached binds connections to ASCII, so the `-Y` login is the
    /// one that works and SASL is never reached; `stats settings` shows both.
    fn with_ascii_auth_ascii_wins(flavor) {
        let dir = TempDir::new("sasl-and-y");
        let authfile = dir.join("authfile");
        std::fs::write(&authfile, "alice:secret\n").unwrap();
        let authfile = authfile.display().to_string();
        let server = start(flavor, &dir, &["-Y", &authfile]);
        let mut c = server.connect();
        c.roundtrip(b"version\r\n", b"CLIENT_ERROR unauthenticated\r\n");
        c.roundtrip(b"set x 0 0 12\r\nalice secret\r\n", b"STORED\r\n");
        let settings = stats_group(&mut c, "settings");
        assert_eq!(settings["auth_enabled_sasl"], "yes");
        assert_eq!(settings["auth_enabled_ascii"], authfile);
        assert_eq!(settings["binding_protocol"], "ascii");
    }
}

/// A server's exit status and output when started with `args` and `env`.
fn start_status(program: &Path, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut cmd = Command::new(program);
    cmd.args(["-p", "0", "-l", "127.0.0.1"])
        .env_remove("MEMCACHED_SASL_PWDB");
    if is_root() && program == memcached_path().as_path() {
        cmd.args(["-u", "root"]);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).output().expect("run the server");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn startup_refusals() {
    let ringcache = Path::new(env!("CARGO_BIN_EXE_ringcache"));
    // memcached's own refusals, word for word and with its exit status.
    for args in [
        &["-S", "-B", "ascii"][..],
        &["-S", "-B", "auto"],
        &["-S", "-U", "21999"],
    ] {
        let (want_status, want_err) = start_status(&memcached_path(), args, &[]);
        let (status, err) = start_status(ringcache, args, &[]);
        assert_eq!(status, want_status, "{args:?}: {err}");
        assert_eq!(want_status, Some(64), "{args:?}");
        let said = want_err.lines().next().unwrap_or_default();
        assert!(
            said.starts_with("ERROR: ") && err.contains(said),
            "{args:?}: memcached {want_err} ringcache {err}"
        );
    }
    // Where memcached would fall back to Cyrus's sasldb, ringcache refuses to start.
    let (status, err) = start_status(ringcache, &["-S"], &[]);
    assert_eq!(status, Some(1), "{err}");
    assert!(err.contains("MEMCACHED_SASL_PWDB is not set"), "{err}");
    let (status, err) = start_status(
        ringcache,
        &["-S"],
        &[("MEMCACHED_SASL_PWDB", "/nonexistent/pwdb")],
    );
    assert_eq!(status, Some(1), "{err}");
    assert!(
        err.contains("cannot read the SASL password file /nonexistent/pwdb"),
        "{err}"
    );
}
