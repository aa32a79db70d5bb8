//! Values of the store's large class (records over 64 KiB), which a get sends without a
//! copy: the connection shares the store's bytes until its send completes (issue 20,
//! `crates/storage/src/arena.rs`, `src/server/output.rs`). Each test holds a send
//! pending (a reader that does not read asks for more big values than the kernel's
//! buffers hold) and proves it with `ringcache_conn_buffer_bytes` before anything else
//! happens; then the item is changed every way a client can change it, and the pending
//! answers must still carry the bytes the item had when they were read. Both engines.

#[macro_use]
mod common;

use common::{parse_get_reply, show, stat_u64, value_for, wait_until, Client, Flavor, Server};
use std::time::Duration;

/// A value of the large class (and within the default item size).
const BIG: usize = 1_000_000;

/// What a stalled reader asks for: more than the kernel's socket buffers on both sides
/// take (4 MiB of send buffer at most, `tcp_wmem`, and the receive buffer), so the server
/// holds some of it.
const PIPELINED_BYTES: usize = 12 << 20;

/// How long a pending send may take to show in the stats.
const SETTLE: Duration = Duration::from_secs(10);

/// A connection that reads nothing until told to. No small receive buffer: with one
/// below the MSS, Linux can leave the window shut for good once the client stops
/// reading (see `tests/hostile.rs`); the kernel's buffers take a few hundred KB of an
/// answer at most, [`wait_pending`] checks that the rest waits in the server.
fn stalled_reader(server: &Server) -> Client {
    server.connect()
}

/// Waits until the connections hold at least 256 KiB beyond their allowances: the
/// stalled reader's answer is queued or in flight, its value pinned.
fn wait_pending(flavor: Flavor, writer: &mut Client, what: &str) {
    let mut last = 0;
    let held = wait_until(SETTLE, || {
        last = stat_u64(&writer.stats(), "ringcache_conn_buffer_bytes");
        last >= 256 * 1024
    });
    assert!(
        held,
        "{flavor}: {what}: no pending answer ({last} bytes held)"
    );
}

/// Reads one text get answer of `key`; `None` on a miss.
fn read_get(c: &mut Client, key: &str) -> Option<Vec<u8>> {
    let reply = c.read_until_end_of_get();
    parse_get_reply(&reply, key)
}

/// Reads one meta get answer (`VA <len>` and the value, or `EN`); `None` on a miss.
fn read_meta_get(c: &mut Client) -> Option<Vec<u8>> {
    let line = c.read_line();
    let text = String::from_utf8_lossy(&line).into_owned();
    if text == "EN\r\n" {
        return None;
    }
    let len: usize = text
        .trim_end()
        .strip_prefix("VA ")
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("a meta get answered {}", show(&line)));
    Some(c.read_exact_bytes(len + 2)[..len].to_vec())
}

/// Asserts `got` is `want` without printing a megabyte.
fn assert_bytes(flavor: Flavor, what: &str, got: &[u8], want: &[u8]) {
    let at = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && at.is_none(),
        "{flavor}: {what}: {} bytes, want {}; first difference at {at:?}: {}",
        got.len(),
        want.len(),
        show(&got[at.unwrap_or(0)..got.len().min(at.unwrap_or(0) + 40)])
    );
}

both_engines! {
    /// A reader pipelines text and meta gets of a big value (more than the kernel's
    /// socket buffers take) and does not read; once the server holds some of the
    /// answers, the item is overwritten by a value of the same length (changed in
    /// place in the store, so the store copies first), by a shorter one, appended to,
    /// incremented (a number padded to 400 KB, changed in place) or deleted. Every get
    /// the server ran before the change answers the old bytes intact, the pending ones
    /// included; the ones after it, the new state.
    fn a_pending_answer_keeps_the_bytes_it_read(flavor) {
        let server = Server::start(flavor, &["-m", "64"]);
        let mut writer = server.connect();
        // A number padded to 400 KB: large, yet within what memcached's incr takes
        // (an item under 512 KiB).
        let number = |n: &str| {
            let mut v = n.as_bytes().to_vec();
            v.resize(400_000, b' ');
            v
        };
        // (what, old value, the command that changes it, its answer, the value a get
        // sees after)
        type Case<'a> = (&'a str, Vec<u8>, Vec<u8>, &'a str, Option<Vec<u8>>);
        let cases: Vec<Case<'_>> = vec![
            {
                let new = value_for(2, BIG);
                ("same-length overwrite", value_for(1, BIG), set_cmd("k", &new), "STORED", Some(new))
            },
            {
                let new = value_for(4, BIG - 10_000);
                ("shorter overwrite", value_for(3, BIG), set_cmd("k", &new), "STORED", Some(new))
            },
            {
                let old = value_for(5, BIG - 3);
                let mut new = old.clone();
                new.extend_from_slice(b"xyz");
                ("append", old, b"append k 0 0 3\r\nxyz\r\n".to_vec(), "STORED", Some(new))
            },
            ("incr in place", number("12"), b"incr k 5\r\n".to_vec(), "17", Some(number("17"))),
            ("delete", value_for(6, BIG), b"delete k\r\n".to_vec(), "DELETED", None),
        ];
        for (what, old, change, answer, after) in cases {
            writer.set("k", &old);
            let pairs = PIPELINED_BYTES / old.len() / 2 + 1;
            let hits = || stat_u64(&server.connect().stats(), "get_hits");
            let hits_before = hits();
            let mut reader = stalled_reader(&server);
            reader.send(&b"get k\r\nmg k v\r\n".repeat(pairs));
            wait_pending(flavor, &mut writer, what);
            // The server holds answers and runs no more of the reader's gets until it
            // reads: these ran before the change.
            let ran = (hits() - hits_before) as usize;
            writer.send(&change);
            assert_eq!(String::from_utf8_lossy(&writer.read_line()), format!("{answer}\r\n"), "{flavor}: {what}");
            assert_eq!(writer.get("k").as_deref(), after.as_deref(), "{flavor}: {what}");
            assert!(ran >= 1 && ran < 2 * pairs, "{flavor}: {what}: {ran} gets ran");
            for n in 0..2 * pairs {
                let got = if n % 2 == 0 {
                    read_get(&mut reader, "k")
                } else {
                    read_meta_get(&mut reader)
                };
                if n < ran {
                    let got = got.unwrap_or_else(|| panic!("{flavor}: {what}: get {n} missed"));
                    assert_bytes(flavor, &format!("{what}: get {n} of {ran} before"), &got, &old);
                } else {
                    let len = got.as_ref().map(|v| v.len());
                    assert!(got == after, "{flavor}: {what}: get {n} after: {len:?} bytes");
                }
            }
        }
        // Binary: GETKs left unread, then the value rewritten in place.
        let old = value_for(7, BIG);
        writer.set("b", &old);
        let n = PIPELINED_BYTES / BIG + 1;
        let mut reader = stalled_reader(&server);
        reader.send(&getk(b"b").repeat(n));
        wait_pending(flavor, &mut writer, "binary GETK");
        let newer = value_for(8, BIG);
        writer.set("b", &newer);
        let mut seen_old = 0;
        for i in 0..n {
            let head = reader.read_exact_bytes(24);
            let body_len = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
            assert_eq!((head[1], head[6], head[7], body_len), (0x0c, 0, 0, 5 + BIG), "{flavor}");
            let body = reader.read_exact_bytes(body_len);
            assert_eq!(&body[..5], b"\0\0\0\0b", "{flavor}: flags and key");
            if body[5..] == old[..] && seen_old == i {
                seen_old += 1;
            } else {
                assert_bytes(flavor, &format!("binary GETK {i}"), &body[5..], &newer);
            }
        }
        assert!(seen_old >= 1, "{flavor}: the pending GETK answered the old value");
        assert_eq!(writer.get("b").as_deref(), Some(&newer[..]), "{flavor}");
    }
}

both_engines! {
    /// A stalled reader pipelines 40 gets of one 1 MB value while another client
    /// overwrites it 40 times: the reader pins the version its first answer holds
    /// (counted against its output mark), the store holds the newest; memory grows by
    /// a few megabytes, not by the 40 versions. Every answer the reader then gets is
    /// one whole version.
    fn a_stalled_reader_of_a_rewritten_value_pins_bounded_memory(flavor) {
        const ROUNDS: u64 = 40;
        let server = Server::start(flavor, &["-m", "64"]);
        let mut writer = server.connect();
        let versions: Vec<Vec<u8>> = (0..=ROUNDS).map(|n| value_for(100 + n, BIG)).collect();
        writer.set("k", &versions[0]);
        let mut reader = stalled_reader(&server);
        reader.send(&b"get k\r\n".repeat(ROUNDS as usize));
        wait_pending(flavor, &mut writer, "pipelined gets");
        let before = server.rss_bytes();
        let mut peak = before;
        for version in &versions[1..] {
            writer.set("k", version);
            peak = peak.max(server.rss_bytes());
        }
        let growth = peak.saturating_sub(before);
        assert!(
            growth < 16 << 20,
            "{flavor}: {growth} bytes more while a stalled reader held a rewritten value"
        );
        let first = read_get(&mut reader, "k").expect("a hit");
        assert_bytes(flavor, "first answer", &first, &versions[0]);
        for n in 1..ROUNDS {
            let got = read_get(&mut reader, "k").expect("a hit");
            assert!(
                versions.contains(&got),
                "{flavor}: answer {n} is no whole version ({} bytes)",
                got.len()
            );
        }
        assert_eq!(writer.get("k").as_deref(), Some(&versions[ROUNDS as usize][..]));
    }
}

/// A text `set` of `key` to `value`.
fn set_cmd(key: &str, value: &[u8]) -> Vec<u8> {
    let mut cmd = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
    cmd.extend_from_slice(value);
    cmd.extend_from_slice(b"\r\n");
    cmd
}

/// A binary GETK request for `key`.
fn getk(key: &[u8]) -> Vec<u8> {
    let mut p = vec![0x80, 0x0c];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&(key.len() as u32).to_be_bytes());
    p.extend_from_slice(&[0; 12]);
    p.extend_from_slice(key);
    p
}
