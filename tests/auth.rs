//! ASCII authentication (`-Y FILE`), against Debian's memcached 1.6.18 started with the
//! same file: the same bytes, one request per write (memcached answers only one of
//! several requests reaching an unauthenticated connection in one read, a quirk
//! ringcache does not copy), the same answers. Then the startup refusals, the SIGHUP
//! reload, and hostile input on both engines: unauthenticated requests of every
//! dialect (only the auth error comes back, nothing is stored), 10,000 wrong passwords
//! (another authenticated client keeps being served), garbage and huge auth data.

#[macro_use]
mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const CREDENTIALS: &str = "alice:secret\nbob:pw2\n";
const UNAUTHENTICATED: &[u8] = b"CLIENT_ERROR unauthenticated\r\n";
const FAILURE: &[u8] = b"CLIENT_ERROR authentication failure\r\n";
const ALICE: &[u8] = b"set auth 0 0 12\r\nalice secret\r\n";

/// What to read after a write.
#[derive(Clone, Copy)]
enum Then {
    /// This many `\r\n` lines.
    Lines(usize),
    /// The server closes the connection.
    Close,
}
use Then::{Close, Lines};

/// One session: writes and what follows each.
type Session = &'static [(&'static [u8], Then)];

const SESSIONS: &[(&str, Session)] = &[
    (
        "every_command_is_unauthenticated",
        &[
            (b"get a\r\n", Lines(1)),
            (b"version\r\n", Lines(1)),
            (b"quit\r\n", Lines(1)),
            (b"\r\n", Lines(1)),
            (b"stats\r\n", Lines(1)),
            (b"mg a v\r\n", Lines(1)),
            (b"mn\r\n", Lines(1)),
            (b"ms a 1\r\n", Lines(1)),
            (b"A\r\n", Lines(1)),
            (b"SET x 0 0 12\r\n", Lines(1)),
            (b"add x 0 0 12\r\n", Lines(1)),
            (b"set x 0 0\r\n", Lines(1)),
            (b"set x 0 0 -1\r\n", Lines(1)),
            (b"\x80\x0a\x00\x00\x00\x00\x00\x00", Lines(1)),
            (b"get a\r\n", Lines(1)),
        ],
    ),
    (
        "wrong_then_right_password",
        &[
            (b"set x 0 0 9\r\nalice bad\r\n", Lines(1)),
            (b"get a\r\n", Lines(1)),
            (b"set x 0 0 7\r\nbob pw3\r\n", Lines(1)),
            (b"set x 0 0 9\r\nalice pw2\r\n", Lines(1)),
            (b"set x 0 0 12\r\nalice secret\r\n", Lines(1)),
            (b"get x auth\r\n", Lines(1)),
            (b"set a 0 0 1\r\nA\r\n", Lines(1)),
            (b"get a\r\n", Lines(3)),
            (b"set x 0 0 9\r\nalice bad\r\n", Lines(1)),
        ],
    ),
    (
        "auth_set_forms",
        &[
            (b"  set key 5 100 10 noreply\r\nbob    pw2\r\n", Lines(1)),
            (b"get key\r\n", Lines(1)),
        ],
    ),
    (
        "bare_newlines",
        &[
            (b"set x 0 0 8\nbob pw2 \r\n", Lines(1)),
            (b"mn\r\n", Lines(1)),
        ],
    ),
    (
        "extra_tokens_in_the_data",
        &[
            (b"set x 0 0 18\r\nalice secret extra\r\n", Lines(1)),
            (b"mn\r\n", Lines(1)),
        ],
    ),
    (
        "bad_termination",
        &[
            (b"set x 0 0 12\r\nalice secretXY", Lines(1)),
            (b"get a\r\n", Lines(1)),
        ],
    ),
    (
        "one_token",
        &[
            (b"set x 0 0 5\r\nalice\r\n", Lines(1)),
            (b"set x 0 0 6\r\nbobpw2\r\n", Lines(1)),
            (b"set x 0 0 0\r\n\r\n", Lines(1)),
        ],
    ),
    (
        "length_truncated_to_32_bits",
        &[
            (b"set x 0 0 4294967308\r\nalice secret\r\n", Lines(1)),
            (b"mn\r\n", Lines(1)),
        ],
    ),
    ("line_over_2048_bytes_closes", &[(&[b'x'; 3000], Close)]),
];

fn write_credentials(dir: &TempDir, text: &str) -> String {
    let path = dir.join("auth.txt");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// Runs `session` on `server`; the transcript of what came back.
fn run_session(server: &Server, session: Session) -> Vec<u8> {
    let mut c = server.connect();
    let mut seen = Vec::new();
    for &(bytes, then) in session {
        c.send(bytes);
        match then {
            Lines(n) => seen.extend(c.read_lines(n)),
            Close => {
                let how = c.expect_closed(Duration::from_secs(5));
                seen.extend(format!("<closed: {how:?}>").bytes());
                break;
            }
        }
        seen.extend(b" | ");
    }
    seen
}

both_engines! {
    /// The same sessions on memcached 1.6.18 and ringcache, with the same file.
    fn matches_memcached(flavor) {
        let dir = TempDir::new("auth");
        let file = write_credentials(&dir, CREDENTIALS);
        let reference = Server::memcached(&["-Y", &file]);
        let server = Server::start(flavor, &["-Y", &file]);
        let mut failures = Vec::new();
        for &(name, session) in SESSIONS {
            let want = run_session(&reference, session);
            let got = run_session(&server, session);
            if got != want {
                failures.push(format!("{name}:\n  memcached {}\n  {flavor} {}", show(&want), show(&got)));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
        // The counters and settings, on a fresh connection of each.
        let figures = [&reference, &server].map(|s| {
            let mut c = s.connect();
            c.roundtrip(ALICE, b"STORED\r\n");
            let st = c.stats();
            let settings = stats_group(&mut c, "settings");
            assert_eq!(settings["auth_enabled_ascii"], file, "{}", s.flavor());
            assert_eq!(settings["binding_protocol"], "ascii", "{}", s.flavor());
            ["auth_cmds", "auth_errors", "curr_items", "cmd_set"].map(|n| stat_u64(&st, n))
        });
        assert_eq!(figures[1], figures[0], "auth_cmds, auth_errors, curr_items, cmd_set");
        assert!(figures[0][1] > 0);
    }
}

/// `ringcache -Y …` (or memcached's) exit status and first stderr line.
fn start_status(program: &Path, args: &[&str]) -> (Option<i32>, String) {
    let mut cmd = Command::new(program);
    cmd.args(["-p", "0", "-U", "0", "-l", "127.0.0.1"]);
    if is_root() && program == memcached_path().as_path() {
        cmd.args(["-u", "root"]);
    }
    let out = cmd.args(args).output().expect("run the server");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), err)
}

#[test]
fn startup_refusals_match_memcached() {
    let dir = TempDir::new("auth-start");
    let missing = dir.join("missing.txt").display().to_string();
    let malformed = write_credentials(&dir, "alice:secret\n\nbob:pw2\n");
    let good = dir.join("good.txt");
    std::fs::write(&good, CREDENTIALS).unwrap();
    let good = good.display().to_string();
    let ringcache = Path::new(env!("CARGO_BIN_EXE_ringcache"));
    let cases: [(&[&str], &str); 3] = [
        (&["-Y", &missing], "Could not open authfile"),
        (
            &["-Y", &malformed],
            "has a malformed entry. Should be 'user:password'",
        ),
        (
            &["-Y", &good, "-B", "binary"],
            "cannot allow the BINARY protocol",
        ),
    ];
    for (args, says) in cases {
        let (want_status, want_err) = start_status(&memcached_path(), args);
        let (status, err) = start_status(ringcache, args);
        assert_eq!(status, want_status, "{args:?}: {err}");
        assert!(want_err.contains(says), "memcached {args:?}: {want_err}");
        assert!(err.contains(says), "ringcache {args:?}: {err}");
    }
}

both_engines! {
    reference;
    /// SIGHUP rereads the file; a file that cannot be read then keeps the old entries.
    fn sighup_rereads_the_file(flavor) {
        let dir = TempDir::new("auth-hup");
        let file = write_credentials(&dir, CREDENTIALS);
        let server = Server::start(flavor, &["-Y", &file]);
        let attempt = |data: &[u8]| {
            let mut c = server.connect();
            c.send(format!("set x 0 0 {}\r\n", data.len()).as_bytes());
            c.send(data);
            c.send(b"\r\n");
            c.read_line() == b"STORED\r\n"
        };
        assert!(attempt(b"alice secret"));
        std::fs::write(&file, "zed:new\n").unwrap();
        server.signal(libc::SIGHUP);
        // memcached rereads on its next clock tick (within a second).
        assert!(wait_until(Duration::from_secs(5), || attempt(b"zed new")));
        assert!(!attempt(b"alice secret"));
        std::fs::write(&file, "malformed\n").unwrap();
        server.signal(libc::SIGHUP);
        std::fs::remove_file(&file).unwrap();
        server.signal(libc::SIGHUP);
        assert!(attempt(b"zed new"));
    }
}

/// Authenticates a new connection as alice.
fn authenticated(server: &Server) -> Client {
    let mut c = server.connect();
    c.roundtrip(ALICE, b"STORED\r\n");
    c
}

both_engines! {
    /// Text, meta and binary requests before authenticating: one
    /// `CLIENT_ERROR unauthenticated` per line and nothing else; nothing stored,
    /// deleted, flushed or counted as a command.
    fn unauthenticated_requests_of_every_dialect(flavor) {
        let dir = TempDir::new("auth-dialects");
        let file = write_credentials(&dir, CREDENTIALS);
        let server = Server::start(flavor, &["-Y", &file, "-A"]);
        let mut setup = authenticated(&server);
        setup.roundtrip(b"set keep 0 0 4\r\nkept\r\n", b"STORED\r\n");
        let mut hostile = Vec::new();
        // (A `set` line of five tokens would be an authentication attempt.)
        hostile.extend_from_slice(b"set a 0 0\r\nadd b 0 0 1\r\nB\r\ncas keep 0 0 1 1\r\nC\r\n");
        hostile.extend_from_slice(b"delete keep\r\nincr keep 1\r\ntouch keep 1\r\nflush_all\r\n");
        hostile.extend_from_slice(b"get keep\r\ngets keep\r\ngat 1 keep\r\nverbosity 1\r\nshutdown\r\n");
        hostile.extend_from_slice(b"ms m 1 T0\r\nM\r\nmg keep v\r\nmd keep\r\nma keep\r\nme keep\r\nmn\r\n");
        // Binary SET and DELETE packets (0x80 …): read as text lines too.
        let mut set = vec![0x80, 0x01, 0, 1, 8, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 0];
        set.extend_from_slice(&[0; 8]);
        set.extend_from_slice(&[0; 8]);
        set.extend_from_slice(b"b1V");
        let mut delete = vec![0x80, 0x04, 0, 4, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 0];
        delete.extend_from_slice(&[0; 8]);
        delete.extend_from_slice(b"keep\n");
        hostile.extend_from_slice(&set);
        hostile.push(b'\n');
        hostile.extend_from_slice(&delete);
        let lines = hostile.iter().filter(|&&b| b == b'\n').count();
        let mut c = server.connect();
        for chunk in hostile.chunks(7) {
            c.send(chunk);
        }
        let got = c.read_lines(lines);
        assert_eq!(show(&got), show(&UNAUTHENTICATED.repeat(lines)));
        // Nothing more is on its way: the next answer is the next request's.
        c.roundtrip(ALICE, b"STORED\r\n");
        c.roundtrip(b"mn\r\n", b"MN\r\n");
        for key in ["a", "b", "m", "b1"] {
            assert_eq!(c.get(key), None, "{key}");
        }
        assert_eq!(c.get("keep").as_deref(), Some(&b"kept"[..]));
        let st = c.stats();
        assert_eq!(stat_u64(&st, "curr_items"), 1);
        assert_eq!(stat_u64(&st, "cmd_set"), 1);
        assert_eq!(stat_u64(&st, "cmd_flush"), 0);
        server.connect().roundtrip(b"mn\r\n", UNAUTHENTICATED);
    }
}

both_engines! {
    /// 10,000 wrong passwords on one connection: each answered, counted, no crash;
    /// an authenticated client is served all along.
    fn ten_thousand_wrong_passwords(flavor) {
        let dir = TempDir::new("auth-brute");
        let file = write_credentials(&dir, CREDENTIALS);
        let server = Server::start(flavor, &["-Y", &file]);
        const TRIES: usize = 10_000;
        let mut attacker = server.connect();
        let brute = std::thread::scope(|scope| {
            let attack = scope.spawn(move || {
                let mut batch = Vec::new();
                for i in 0..TRIES {
                    let data = format!("alice wrong{i:05}");
                    batch.extend(format!("set x 0 0 {}\r\n{data}\r\n", data.len()).bytes());
                    if batch.len() > 32 * 1024 || i == TRIES - 1 {
                        attacker.send(&batch);
                        batch.clear();
                    }
                }
                attacker.read_lines(TRIES)
            });
            let mut served = authenticated(&server);
            let mut slowest = Duration::ZERO;
            let mut rounds = 0u32;
            while !attack.is_finished() || rounds < 10 {
                let t = Instant::now();
                served.set("k", format!("v{rounds}").as_bytes());
                assert_eq!(served.get("k"), Some(format!("v{rounds}").into_bytes()));
                slowest = slowest.max(t.elapsed());
                rounds += 1;
            }
            (attack.join().unwrap(), slowest, rounds)
        });
        let (answers, slowest, rounds) = brute;
        assert_eq!(show(&answers), show(&FAILURE.repeat(TRIES)));
        // A bound for "served promptly" on a loaded 2-core machine, not a benchmark.
        assert!(slowest < Duration::from_secs(1), "slowest roundtrip {slowest:?} in {rounds}");
        let mut c = authenticated(&server);
        let st = c.stats();
        assert_eq!(stat_u64(&st, "auth_errors"), TRIES as u64);
        assert_eq!(stat_u64(&st, "auth_cmds"), TRIES as u64 + 2);
    }
}

both_engines! {
    /// Garbage as credentials (NULs, high bytes, newlines, one long token), and auth
    /// blocks at and over the 16 KiB limit: answered or closed, never stored, and the
    /// server keeps serving.
    fn garbage_and_huge_auth_data(flavor) {
        let dir = TempDir::new("auth-garbage");
        let file = write_credentials(&dir, CREDENTIALS);
        let server = Server::start(flavor, &["-Y", &file]);
        let mut c = server.connect();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..200 {
            let len = 1 + round * 37 % 900;
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    (rng >> 24) as u8
                })
                .collect();
            c.send(format!("set x 0 0 {len}\r\n").as_bytes());
            c.send(&data);
            c.send(b"\r\n");
            // Newlines in the data do not matter: the block is read by length.
            let answer = c.read_line();
            assert!(
                answer == FAILURE || answer == b"CLIENT_ERROR bad authentication token format\r\n",
                "round {round}: {}",
                show(&answer)
            );
        }
        c.roundtrip(b"set x 0 0 12\r\nalice\0secret\r\n", b"CLIENT_ERROR bad authentication token format\r\n");
        // The largest block memcached's read buffer takes, then one over it.
        let mut big = b"alice secret".to_vec();
        big.resize(16_370, b' ');
        c.send(format!("set x 0 0 {}\r\n", big.len()).as_bytes());
        c.send(&big);
        c.roundtrip(b"\r\n", b"STORED\r\n");
        let mut huge = server.connect();
        huge.send(b"set x 0 0 1000000000\r\n");
        huge.expect_closed(Duration::from_secs(5));
        let mut over = server.connect();
        over.send(b"set x 0 0 16384\r\n");
        over.expect_closed(Duration::from_secs(5));
        let st = c.stats();
        assert_eq!(stat_u64(&st, "curr_items"), 0);
        c.roundtrip(b"mn\r\n", b"MN\r\n");
    }
}
