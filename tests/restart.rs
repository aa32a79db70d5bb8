//! Restartable memory (`-e FILE`): a graceful stop (SIGUSR1, SIGTERM) saves every live
//! item and the next start with the same settings serves them byte for byte, with their
//! CAS, flags, meta state and TTLs that counted the downtime; a crash, other settings
//! or a damaged file start cold with exactly one WARN line.
//!
//! The memory file lives on tmpfs (`/dev/shm`) when there is one, else in the temp dir.

#[macro_use]
mod common;

use common::{Client, Flavor, Server};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const EXIT_TIMEOUT: Duration = Duration::from_secs(20);

/// A directory for the memory file, on tmpfs if there is one; removed on drop.
struct MemDir(PathBuf);

impl MemDir {
    fn new(tag: &str) -> MemDir {
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = base.join(format!(
            "ringcache-restart-{tag}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("create the memory file's directory");
        MemDir(dir)
    }

    fn file(&self) -> String {
        self.0.join("memory").display().to_string()
    }
}

impl Drop for MemDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Stops `server` with `sig` and waits for it to exit cleanly.
fn stop(mut server: Server, sig: libc::c_int) {
    server.signal(sig);
    let status = server
        .wait_exit(EXIT_TIMEOUT)
        .unwrap_or_else(|| panic!("still running after signal {sig}"));
    assert!(status.success(), "exit {status}\nlog:\n{}", server.log());
}

/// The WARN lines of `server`'s log about the memory file. The server binds (and
/// writes its port file) before it reads the memory file; a served request shows the
/// restore is over and logged.
fn memory_warnings(server: &Server) -> Vec<String> {
    server.connect().version();
    server
        .log()
        .lines()
        .filter(|l| l.contains("WARN") && l.contains("memory file"))
        .map(str::to_string)
        .collect()
}

/// Asserts a cold start with exactly one WARN line about the memory file that says
/// `why`, and nothing restored.
fn assert_cold_with_warning(server: &Server, why: &str) {
    let warnings = memory_warnings(server);
    assert_eq!(
        warnings.len(),
        1,
        "one WARN line wanted\nlog:\n{}",
        server.log()
    );
    assert!(
        warnings[0].contains(why),
        "{} should say {why}",
        warnings[0]
    );
    let mut conn = server.connect();
    let stats = conn.stats();
    assert_eq!(stats["ringcache_restarted_items"], "0");
    assert_eq!(stats["curr_items"], "0");
}

/// A `gets` of `key`: the whole reply, bytes as sent (value, flags and CAS).
fn gets(conn: &mut Client, key: &str) -> Vec<u8> {
    conn.send(format!("gets {key}\r\n").as_bytes());
    conn.read_until_end_of_get()
}

/// A meta get of `key` with `flags`, up to its `mn`.
fn mg(conn: &mut Client, key: &str, flags: &str) -> String {
    conn.send(format!("mg {key} {flags}\r\nmn\r\n").as_bytes());
    let reply = conn.read_until("a meta reply", |b| {
        b.windows(4).position(|w| w == b"MN\r\n").map(|i| i + 4)
    });
    String::from_utf8_lossy(&reply).into_owned()
}

/// The TTL left on `key` (meta `t`): -1 for none.
fn ttl(conn: &mut Client, key: &str) -> i64 {
    let reply = mg(conn, key, "t");
    reply
        .split_whitespace()
        .find_map(|w| w.strip_prefix('t'))
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no TTL in {reply:?}"))
}

fn keys() -> Vec<String> {
    (0..300).map(|i| format!("key:{i}")).collect()
}

/// Loads items of every kind: sizes up to 200 KB, flags, TTLs, read and unread, a
/// stale one, one with a base64 key, one with a client-chosen CAS, one that expires
/// within 2 s.
fn load(conn: &mut Client) {
    for (i, key) in keys().iter().enumerate() {
        let value = common::value_for(i as u64, (i * 61) % 5000);
        let ttl = if i % 3 == 0 { 1000 } else { 0 };
        let mut req = format!("set {key} {} {ttl} {}\r\n", i * 11, value.len()).into_bytes();
        req.extend_from_slice(&value);
        req.extend_from_slice(b"\r\n");
        conn.roundtrip(&req, b"STORED\r\n");
    }
    let big = common::value_for(7, 200_000);
    let mut req = format!("set big 77 0 {}\r\n", big.len()).into_bytes();
    req.extend_from_slice(&big);
    req.extend_from_slice(b"\r\n");
    conn.roundtrip(&req, b"STORED\r\n");
    for key in keys().iter().step_by(4) {
        conn.get(key).expect("just stored");
    }
    conn.roundtrip(b"md key:5 I\r\n", b"HD\r\n");
    conn.roundtrip(b"ms YmluYXJ5 3 b\r\nabc\r\n", b"HD\r\n");
    conn.roundtrip(b"ms chosen 1 E987654\r\nc\r\n", b"HD\r\n");
    conn.roundtrip(b"set brief 0 2 1\r\nb\r\n", b"STORED\r\n");
}

/// What a client sees of every loaded key, besides TTLs: `gets` replies (value,
/// flags, CAS) and meta replies (base64 key, chosen CAS).
fn snapshot(conn: &mut Client) -> HashMap<String, Vec<u8>> {
    let mut seen: HashMap<String, Vec<u8>> = keys()
        .into_iter()
        .chain(["big".to_string(), "chosen".to_string()])
        .map(|k| {
            let reply = gets(conn, &k);
            (k, reply)
        })
        .collect();
    let binary = mg(conn, "YmluYXJ5", "b k v c f");
    seen.insert("binary".into(), binary.into_bytes());
    seen
}

/// The restart test for one stop signal: every item back byte for byte with its CAS,
/// TTLs shorter by the downtime, the stale item still stale, the short one gone.
fn restores_after(flavor: Flavor, sig: libc::c_int) {
    let dir = MemDir::new("restore");
    let file = dir.file();
    let args = ["-t", "2", "-e", file.as_str()];
    let server = Server::start(flavor, &args);
    assert!(memory_warnings(&server).is_empty(), "{}", server.log());
    let mut conn = server.connect();
    load(&mut conn);
    let before = snapshot(&mut conn);
    let ttl_before = ttl(&mut conn, "key:0");
    let stopped = Instant::now();
    stop(server, sig);
    // The downtime: long enough for `brief` (2 s) to expire and TTLs to count it.
    let down = Duration::from_millis(2500);
    std::thread::sleep(down.saturating_sub(stopped.elapsed()));
    let server = Server::start(flavor, &args);
    let downtime = stopped.elapsed().as_secs() as i64;
    assert!(memory_warnings(&server).is_empty(), "{}", server.log());
    let mut conn = server.connect();
    let stats = conn.stats();
    // 300 keys, big, the base64 one, chosen; brief expired while down.
    assert_eq!(
        stats["ringcache_restarted_items"],
        "303",
        "{}",
        server.log()
    );
    assert_eq!(stats["curr_items"], "303");
    assert!(stats["ringcache_restart_load_us"].parse::<u64>().unwrap() > 0);
    let after = snapshot(&mut conn);
    for (key, reply) in &before {
        assert_eq!(
            Some(reply),
            after.get(key),
            "{key}: {:?} then {:?}",
            common::show(reply),
            after.get(key).map(|r| common::show(r))
        );
    }
    assert!(before["chosen"].starts_with(b"VALUE chosen 0 1 987654\r\n"));
    assert_eq!(conn.get("brief"), None, "expired while down");
    let ttl_after = ttl(&mut conn, "key:0");
    // The TTL went on during the downtime (±1 s of clock granularity each side).
    assert!(
        ttl_after <= ttl_before - downtime + 1 && ttl_after >= ttl_before - downtime - 2,
        "TTL {ttl_before} before, {ttl_after} after {downtime} s down"
    );
    assert_eq!(ttl(&mut conn, "key:1"), -1);
    let stale = mg(&mut conn, "key:5", "v c");
    assert!(stale.contains(" X") && stale.contains(" W"), "{stale}");
    // New writes get CAS values above every restored one.
    // (Not the CAS a client chose: its uniqueness is the client's business.)
    let highest = before
        .iter()
        .filter(|(key, _)| key.as_str() != "chosen")
        .filter_map(|(_, r)| {
            let line = String::from_utf8_lossy(r.split(|&b| b == b'\r').next()?).into_owned();
            line.split_whitespace().nth(4)?.parse::<u64>().ok()
        })
        .max()
        .unwrap();
    conn.set("fresh", b"v");
    let fresh = String::from_utf8_lossy(&gets(&mut conn, "fresh")).into_owned();
    let cas: u64 = fresh.split_whitespace().nth(4).unwrap().parse().unwrap();
    assert!(cas > highest, "new CAS {cas} not above {highest}");
    // The file is marked used while serving: a crash now would start cold.
    let len = std::fs::metadata(&file).unwrap().len();
    assert!(
        len < 1000,
        "the file still holds the snapshot ({len} bytes)"
    );
}

both_engines! {
    fn sigusr1_restores_every_item(flavor) {
        restores_after(flavor, libc::SIGUSR1);
    }
}

both_engines! {
    fn sigterm_restores_every_item(flavor) {
        restores_after(flavor, libc::SIGTERM);
    }
}

both_engines! {
    /// SIGKILL while a client loads items: the file is marked not clean, so the next
    /// start is cold, with one WARN line saying so.
    fn a_crash_mid_load_restarts_cold(flavor) {
        let dir = MemDir::new("crash");
        let file = dir.file();
        let args = ["-e", file.as_str()];
        let mut server = Server::start(flavor, &args);
        let mut conn = server.connect();
        for key in keys().iter().take(100) {
            conn.set(key, b"value");
        }
        // More sets in flight, unanswered, when the process dies.
        let mut burst = Vec::new();
        for key in keys() {
            burst.extend_from_slice(format!("set {key} 0 0 5\r\nvalue\r\n").as_bytes());
        }
        conn.send(&burst);
        server.signal(libc::SIGKILL);
        server.wait_exit(EXIT_TIMEOUT).expect("killed");
        let server = Server::start(flavor, &args);
        assert_cold_with_warning(&server, "not marked clean");
    }
}

/// Saves a few items to a memory file with `args`, stopping with SIGUSR1.
fn saved(flavor: Flavor, args: &[&str]) {
    let server = Server::start(flavor, args);
    let mut conn = server.connect();
    for key in keys().iter().take(50) {
        conn.set(key, b"value");
    }
    stop(server, libc::SIGUSR1);
}

both_engines! {
    /// A start with another -m (or -I) refuses the file: cold, one WARN naming it.
    fn other_settings_restart_cold(flavor) {
        let dir = MemDir::new("settings");
        let file = dir.file();
        saved(flavor, &["-m", "64", "-e", &file]);
        let server = Server::start(flavor, &["-m", "32", "-e", &file]);
        assert_cold_with_warning(&server, "-m 64m");
        stop(server, libc::SIGUSR1);
        // That cold run saved its own (empty) snapshot: -I differs now.
        let server = Server::start(flavor, &["-m", "32", "-I", "2m", "-e", &file]);
        assert_cold_with_warning(&server, "-I");
    }
}

both_engines! {
    /// A flipped byte or a truncated file: cold, one WARN saying it is damaged.
    fn a_damaged_file_restarts_cold(flavor) {
        let dir = MemDir::new("damaged");
        let file = dir.file();
        let args = ["-e", file.as_str()];
        saved(flavor, &args);
        let mut bytes = std::fs::read(&file).unwrap();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        std::fs::write(&file, &bytes).unwrap();
        let server = Server::start(flavor, &args);
        assert_cold_with_warning(&server, "damaged");
        drop(server);
        saved(flavor, &args);
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() - 100]).unwrap();
        let server = Server::start(flavor, &args);
        assert_cold_with_warning(&server, "damaged");
        drop(server);
        std::fs::write(&file, b"").unwrap();
        let server = Server::start(flavor, &args);
        assert_cold_with_warning(&server, "truncated");
    }
}

both_engines! {
    /// No file yet: a normal cold start, no warning; `stats settings` names the file.
    fn a_missing_file_is_a_quiet_cold_start(flavor) {
        let dir = MemDir::new("missing");
        let file = dir.file();
        let server = Server::start(flavor, &["-e", &file]);
        assert!(memory_warnings(&server).is_empty(), "{}", server.log());
        let mut conn = server.connect();
        conn.send(b"stats settings\r\n");
        let settings = String::from_utf8_lossy(&conn.read_until_end()).into_owned();
        assert!(settings.contains(&format!("STAT memory_file {file}\r\n")), "{settings}");
        // The file exists from the start, marked not clean.
        assert!(Path::new(&file).exists());
    }
}
