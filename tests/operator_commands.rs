//! memcached's operator commands, byte for byte against Debian's memcached 1.6.18 started
//! as ringcache is built: `-o no_lru_maintainer,no_slab_reassign` (ringcache has a flat
//! LRU and no slab mover, so memcached's own answers for that configuration are the ones
//! to give): `verbosity`, `shutdown`, `watch`'s refusals, `stats detail`, `slabs`,
//! `lru`, binary FLUSH under `-F`; then what each does (`shutdown` stops the server
//! with `-A`, the settings they change show in `stats settings`, `stats detail dump`
//! counts per prefix as memcached does).
//!
//! Each case goes to a fresh connection of both servers, followed by `version` (the same
//! answer on both) to read a silent (`noreply`) answer as silence.

#[macro_use]
mod common;

use common::*;
use std::time::Instant;

/// memcached's configuration that has what ringcache has (see the module header).
const REFERENCE: &[&str] = &["-o", "no_lru_maintainer,no_slab_reassign"];

/// Sends `request` and `version` on a new connection; the answer before `VERSION`.
fn answer(server: &Server, request: &[u8]) -> Vec<u8> {
    let mut conn = server.connect();
    conn.send(request);
    conn.send(b"version\r\n");
    let mut reply = conn.read_until("the version sentinel", |b| {
        memfind(b, b"VERSION 1.6.18\r\n").map(|at| at + 16)
    });
    reply.truncate(reply.len() - 16);
    reply
}

/// Every line, on both servers, with its answer checked equal.
fn same_answers(reference: &Server, ours: &Server, cases: &[&str]) {
    let mut differ = Vec::new();
    for case in cases {
        let want = answer(reference, case.as_bytes());
        let got = answer(ours, case.as_bytes());
        if want != got {
            differ.push(format!(
                "{:?}: memcached {} ringcache {}",
                case,
                show(&want),
                show(&got)
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "{}: {} of {} answers differ:\n{}",
        ours.flavor(),
        differ.len(),
        cases.len(),
        differ.join("\n")
    );
}

const VERBOSITY: &[&str] = &[
    "verbosity invalid\r\n",
    "verbosity -1\r\n",
    "verbosity x noreply\r\n",
    "verbosity 1\r\n",
    "verbosity 1 noreply\r\n",
    "verbosity 0 2\r\n",
];

const SHUTDOWN_REFUSED: &[&str] = &[
    "shutdown\r\n",
    "shutdown graceful\r\n",
    "shutdown x\r\n",
    "shutdown noreply\r\n",
];

const STATS_DETAIL: &[&str] = &[
    "stats detail\r\n",
    "stats detail x\r\n",
    "stats detail ON\r\n",
    "stats detail on\r\n",
    "stats detail on x\r\n",
    "stats detail  off\r\n",
    "stats detail on noreply\r\n",
    "stats detail x noreply\r\n",
    // Nothing counted on a fresh server: END only.
    "stats detail dump\r\n",
    "stats detail dump x\r\n",
];

const SLABS: &[&str] = &[
    "slabs\r\n",
    "slabs noreply\r\n",
    "slabs foo bar\r\n",
    "slabs automove\r\n",
    "slabs automove noreply\r\n",
    "slabs automove 0\r\n",
    "slabs automove 1\r\n",
    "slabs automove 2\r\n",
    "slabs automove 3\r\n",
    "slabs automove x\r\n",
    "slabs automove -1\r\n",
    "slabs automove 1 2\r\n",
    "slabs automove 4294967296\r\n",
    "slabs automove 1 noreply\r\n",
    "slabs automove 3 noreply\r\n",
    "slabs automove x noreply\r\n",
    "slabs automove ratio\r\n",
    "slabs automove ratio x\r\n",
    "slabs automove ratio 0.5\r\n",
    "slabs automove ratio 0.5 noreply\r\n",
    "slabs reassign\r\n",
    "slabs reassign 1\r\n",
    "slabs reassign 1 2\r\n",
    "slabs reassign 1 1\r\n",
    "slabs reassign x 2\r\n",
    "slabs reassign -1 99\r\n",
    "slabs reassign 1 2 3\r\n",
    "slabs reassign 1 2 noreply\r\n",
];

const LRU: &[&str] = &[
    "lru\r\n",
    "lru noreply\r\n",
    "lru foo\r\n",
    "lru foo bar\r\n",
    "lru foo noreply\r\n",
    "lru mode\r\n",
    "lru mode flat\r\n",
    "lru mode segmented\r\n",
    "lru mode x\r\n",
    "lru mode flat noreply\r\n",
    "lru temp_ttl\r\n",
    "lru temp_ttl 10\r\n",
    "lru temp_ttl -1\r\n",
    "lru temp_ttl x\r\n",
    "lru tune\r\n",
    "lru tune 10 20 0.1\r\n",
    "lru tune 10 20 0.1 2.0\r\n",
    "lru tune 10 20 0.1 2.0 5\r\n",
    "lru tune 0 0 0.1 2\r\n",
    "lru tune 50 50 0.1 2.0\r\n",
    "lru tune 81 0 0.1 2\r\n",
    "lru tune -1 0 0.1 2\r\n",
    "lru tune x 20 0.1 2.0\r\n",
    "lru tune 10 20 x 2.0\r\n",
    "lru tune 10 20 0.1abc 2.0\r\n",
    "lru tune 0 0 0 0\r\n",
    "lru tune 10 20 -0.1 2.0\r\n",
    "lru tune 10 20 nan 2.0\r\n",
    "lru tune 10 20 inf 2.0\r\n",
    "lru tune 10 20 0x10 1e1\r\n",
    "lru tune 10 20 0.1 2.0 noreply\r\n",
    "lru tune 50 50 0.1 2.0 noreply\r\n",
];

const WATCH_REFUSED: &[&str] = &[
    "watch foo\r\n",
    "watch fetchers foo\r\n",
    "watch x y\r\n",
    "watch noreply\r\n",
    "watch fetchers noreply\r\n",
    // Answers of earlier commands in the same batch are still pending.
    "version\r\nwatch\r\n",
];

both_engines! {
    /// Every operator command's answer, refusals and `noreply` included.
    fn answers_match_memcached(flavor) {
        let reference = Server::memcached(REFERENCE);
        let ours = Server::start(flavor, &[]);
        for cases in [VERBOSITY, SHUTDOWN_REFUSED, STATS_DETAIL, SLABS, LRU, WATCH_REFUSED] {
            same_answers(&reference, &ours, cases);
        }
    }
}

both_engines! {
    /// `-W`: `watch` refused (silently with `noreply`).
    fn watch_disabled_by_dash_w(flavor) {
        let mut args = REFERENCE.to_vec();
        args.push("-W");
        let reference = Server::memcached(&args);
        let ours = Server::start(flavor, &["-W"]);
        same_answers(&reference, &ours, &["watch\r\n", "watch foo\r\n", "watch noreply\r\n"]);
    }
}

both_engines! {
    /// The settings `slabs automove` and `lru tune` record, `verbosity` and `stats
    /// detail on` show in `stats settings` as memcached shows them.
    fn settings_follow_the_commands(flavor) {
        let reference = Server::memcached(REFERENCE);
        let ours = Server::start(flavor, &[]);
        let commands = b"slabs automove 2\r\nslabs automove ratio 0.25\r\nlru tune 10 30 0.5 3\r\n\
            verbosity 1\r\nstats detail on\r\n";
        let names = [
            "slab_automove",
            "slab_automove_ratio",
            "hot_lru_pct",
            "warm_lru_pct",
            "hot_max_factor",
            "warm_max_factor",
            "verbosity",
            "detail_enabled",
            "stat_key_prefix",
        ];
        let read = |server: &Server| {
            let mut conn = server.connect();
            let before = stats_group(&mut conn, "settings");
            conn.send(commands);
            conn.expect(b"OK\r\nOK\r\nOK\r\nOK\r\nOK\r\n");
            let after = stats_group(&mut conn, "settings");
            names.map(|n| (n, before[n].clone(), after[n].clone()))
        };
        assert_eq!(read(&ours), read(&reference), "{flavor}");
    }
}

both_engines! {
    /// `stats detail dump` after the same commands: the same `PREFIX` lines (in any
    /// order: memcached's is its hash table's), counting classic gets (hits), sets of
    /// every store command and deletes, not touch, incr, meta or keys without `:`; and
    /// `stats reset` forgets them.
    fn detail_dump_counts_like_memcached(flavor) {
        let script: &[u8] = b"stats detail on\r\nset a:1 0 0 1\r\nx\r\nget a:1\r\nget a:2\r\n\
            get nokey\r\ndelete a:1\r\nset b:x:y 0 0 1\r\nx\r\nget b:x:z b:x:y\r\ngets b:x:y\r\n\
            touch b:x:y 0\r\nincr b:x:y 1\r\nmg b:x:y v\r\nms c:1 1\r\nx\r\nmd c:1\r\n\
            set :z 0 0 1\r\nx\r\nadd b:1 0 0 1\r\nx\r\ncas b:1 0 0 1 1\r\nx\r\n\
            append b:1 0 0 1\r\nx\r\ngat 0 b:1\r\n";
        let dump = |server: &Server| {
            let mut conn = server.connect();
            conn.send(script);
            conn.send(b"version\r\n");
            conn.read_until("the script", |b| memfind(b, b"VERSION ").map(|at| at + 16));
            conn.send(b"stats detail dump\r\n");
            let dump = conn.read_until("the dump", |b| {
                (b.starts_with(b"END\r\n") || b.ends_with(b"\r\nEND\r\n")).then_some(b.len())
            });
            let mut lines: Vec<String> = String::from_utf8(dump).unwrap().lines().map(String::from).collect();
            lines.sort();
            conn.roundtrip(b"stats reset\r\n", b"RESET\r\n");
            conn.roundtrip(b"stats detail dump\r\n", b"END\r\n");
            lines
        };
        let want = dump(&Server::memcached(REFERENCE));
        assert_eq!(want.len(), 4, "the reference counted {want:?}");
        assert_eq!(dump(&Server::start(flavor, &[])), want, "{flavor}");
    }
}

both_engines! {
    /// `-D /` turns counting on from the start with another delimiter.
    fn dash_d_sets_the_delimiter_and_turns_detail_on(flavor) {
        let dump = |server: &Server| {
            let mut conn = server.connect();
            let settings = stats_group(&mut conn, "settings");
            conn.send(b"set a/1 0 0 1\r\nx\r\nget a/1\r\nget b:1\r\n");
            conn.expect(b"STORED\r\nVALUE a/1 0 1\r\nx\r\nEND\r\nEND\r\n");
            conn.send(b"stats detail dump\r\n");
            let dump = conn.read_until("the dump", |b| b.ends_with(b"END\r\n").then_some(b.len()));
            (settings["stat_key_prefix"].clone(), settings["detail_enabled"].clone(), dump)
        };
        let mut args = REFERENCE.to_vec();
        args.extend(["-D", "/"]);
        let want = dump(&Server::memcached(&args));
        assert_eq!(want.2, b"PREFIX a get 1 hit 1 set 1 del 0\r\nEND\r\n", "reference");
        assert_eq!(dump(&Server::start(flavor, &["-D", "/"])), want, "{flavor}");
    }
}

/// A binary request header: magic, opcode, no key/extras/body, `opaque`.
fn binary_request(opcode: u8, opaque: u32) -> Vec<u8> {
    let mut packet = vec![0x80, opcode];
    packet.extend_from_slice(&[0; 6]);
    packet.extend_from_slice(&0u32.to_be_bytes());
    packet.extend_from_slice(&opaque.to_be_bytes());
    packet.extend_from_slice(&0u64.to_be_bytes());
    packet
}

both_engines! {
    /// Binary FLUSH and FLUSHQ under `-F`: memcached answers "Auth failure." (0x20),
    /// flushes nothing and counts no `cmd_flush`.
    fn binary_flush_refused_under_dash_f(flavor) {
        let run = |server: &Server| {
            let mut text = server.connect();
            text.set("kept", b"1");
            // A connection speaks the dialect of its first byte: binary on a new one.
            let mut conn = server.connect();
            let mut packets = binary_request(0x08, 7);
            packets.extend(binary_request(0x18, 8));
            packets.extend(binary_request(0x0a, 9)); // NOOP ends the batch
            conn.send(&packets);
            // Two 24-byte headers with 13-byte bodies, then NOOP's 24 bytes.
            let reply = conn.read_exact_bytes(2 * (24 + 13) + 24);
            let flushes = stat_u64(&stats(&mut text), "cmd_flush");
            (reply, text.get("kept"), flushes)
        };
        let mut args = REFERENCE.to_vec();
        args.push("-F");
        let want = run(&Server::memcached(&args));
        assert_eq!(&want.0[24..37], b"Auth failure.");
        assert_eq!(run(&Server::start(flavor, &["-F"])), want, "{flavor}");
    }
}

both_engines! { reference;
    /// With `-A`, `shutdown` and `shutdown graceful` close the asking connection without
    /// an answer and stop the server (exit 0), after another client's pending answer; a
    /// bad mode is refused and nothing stops.
    fn shutdown_with_dash_a_stops(flavor) {
        for mode in ["shutdown\r\n", "shutdown graceful\r\n"] {
            let mut args = vec!["-A"];
            if flavor.is_memcached() {
                args.extend(REFERENCE);
            }
            let mut server = Server::start(flavor, &args);
            let mut asker = server.connect();
            asker.roundtrip(b"shutdown foo\r\n", b"CLIENT_ERROR invalid shutdown mode\r\n");
            asker.roundtrip(b"version\r\n", b"VERSION 1.6.18\r\n");
            asker.send(mode.as_bytes());
            let (got, how) = asker.read_to_close(Instant::now() + IO_TIMEOUT);
            assert!(got.is_empty() && how.is_some(), "{flavor} {mode:?}: {} {how:?}", show(&got));
            let status = server.wait_exit(IO_TIMEOUT).expect("the server stops");
            assert!(status.success(), "{flavor} {mode:?}: {status}");
        }
    }
}
