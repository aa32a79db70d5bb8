//! libmemcached-tools against ringcache, on both engines: `memcstat` (stats, settings,
//! the server version, the latency analysis), `memcflush`, `memccp`/`memccat` (a file
//! in and out), `memcslap` (short get, mget and set runs, text and binary), each
//! checked for its exit status, its output and what the server saw; `memcdump` (over
//! `lru_crawler metadump`) lists the keys.
//!
//! The tools are Debian's libmemcached-tools (`ci/test.sh` installs them); a missing
//! tool fails the test, never skips it.

#[macro_use]
mod common;

use common::*;
use std::process::Command;

/// Runs `tool` with `--servers=127.0.0.1:<port>` and `args`; its stdout, checked to
/// have exited 0.
fn run(server: &Server, tool: &str, args: &[&str]) -> String {
    let (ok, out, err) = try_run(server, tool, args);
    assert!(
        ok,
        "{tool} {args:?} failed against {}:\nstdout: {out}\nstderr: {err}",
        server.flavor()
    );
    out
}

/// Runs a tool; whether it exited 0, its stdout and stderr.
fn try_run(server: &Server, tool: &str, args: &[&str]) -> (bool, String, String) {
    let path = find_program(tool)
        .unwrap_or_else(|| panic!("{tool} is not installed (libmemcached-tools)"));
    let output = Command::new(path)
        .arg(format!("--servers=127.0.0.1:{}", server.port()))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {tool}: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// `memcstat`'s `\t<name>: <value>` lines as pairs.
fn memcstat_fields(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|l| l.strip_prefix('\t')?.split_once(": "))
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect()
}

both_engines! { reference;
    /// `memcstat` lists every stat the server gives, for `stats` and `stats settings`,
    /// says the version, and runs its latency analysis.
    fn memcstat(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        conn.set("k", b"v");
        let out = run(&server, "memcstat", &[]);
        assert!(out.starts_with(&format!("Server: 127.0.0.1 ({})\n", server.port())), "{out}");
        let fields = memcstat_fields(&out);
        let direct = stats(&mut conn);
        assert!(fields.len() >= 40, "{flavor}: {out}");
        for (name, value) in &fields {
            assert!(direct.contains_key(name), "{flavor}: memcstat shows {name}, stats does not");
            if ["curr_items", "version", "limit_maxbytes", "threads"].contains(&name.as_str()) {
                assert_eq!(value, &direct[name], "{flavor}: {name}");
            }
        }
        let settings = memcstat_fields(&run(&server, "memcstat", &["settings"]));
        assert!(settings.contains(&("item_size_max".to_string(), "1048576".to_string())), "{settings:?}");
        // `-S` prints the version on stderr.
        let (ok, out, err) = try_run(&server, "memcstat", &["-S"]);
        assert!(ok, "{flavor}: memcstat -S failed: {out} {err}");
        assert_eq!(err.trim(), format!("127.0.0.1:{} 1.6.18", server.port()), "{flavor}: {out}");
        let latency = run(&server, "memcstat", &["-a", "latency"]);
        assert!(latency.contains("Network Latency Test"), "{flavor}: {latency}");
        let binary = memcstat_fields(&run(&server, "memcstat", &["--binary"]));
        assert!(binary.iter().any(|(n, v)| n == "curr_items" && v == "1"), "{flavor}: {binary:?}");
    }
}

both_engines! { reference;
    /// `memcflush` empties the cache (and counts a `cmd_flush`).
    fn memcflush(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        conn.set("k", b"v");
        run(&server, "memcflush", &[]);
        assert_eq!(conn.get("k"), None, "{flavor}");
        assert_eq!(stat_u64(&stats(&mut conn), "cmd_flush"), 1, "{flavor}");
    }
}

both_engines! { reference;
    /// `memccp` stores a file under its name, `memccat` prints it back, in text and
    /// binary.
    fn memccp_and_memccat(flavor) {
        let server = Server::start(flavor, &[]);
        let dir = TempDir::new("memccp");
        let file = dir.join("payload.txt");
        let body: String = (0..2000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&file, &body).unwrap();
        run(&server, "memccp", &[file.to_str().unwrap()]);
        assert_eq!(server.connect().get("payload.txt").as_deref(), Some(body.as_bytes()), "{flavor}");
        // memccat ends the value with a newline of its own.
        for args in [&["payload.txt"][..], &["--binary", "payload.txt"]] {
            let out = run(&server, "memccat", args);
            assert!(out.strip_suffix('\n') == Some(&body), "{flavor} {args:?}: {} bytes", out.len());
        }
        let (ok, _, _) = try_run(&server, "memccat", &["nosuchkey"]);
        assert!(!ok, "{flavor}: memccat of a missing key succeeded");
    }
}

both_engines! { reference;
    /// Short `memcslap` runs of each test, text and binary: they finish, report their
    /// work, and the server saw it (every get of the get test a hit).
    fn memcslap(flavor) {
        let server = Server::start(flavor, &["-t", "2"]);
        for test in ["set", "get", "mget"] {
            for binary in [false, true] {
                let mut args = vec!["--concurrency=2", "--execute-number=500", "--flush", "--test", test];
                if binary {
                    args.push("--binary");
                }
                let mut conn = server.connect();
                let before = stats(&mut conn);
                let out = run(&server, "memcslap", &args);
                assert!(out.contains(&format!("Time to {test:<8}")), "{flavor} {args:?}: {out}");
                let after = stats(&mut conn);
                let delta = |n: &str| stat_u64(&after, n) - stat_u64(&before, n);
                assert!(delta("cmd_set") >= 500, "{flavor} {args:?}: {} sets", delta("cmd_set"));
                if test != "set" {
                    assert!(delta("cmd_get") >= 500, "{flavor} {args:?}: {} gets", delta("cmd_get"));
                    assert_eq!(delta("get_misses"), 0, "{flavor} {args:?}");
                }
            }
        }
    }
}

/// `memcdump` lists the keys (it reads `lru_crawler metadump all`).
fn memcdump_lists_keys(flavor: Flavor) {
    let server = Server::start(flavor, &[]);
    let mut conn = server.connect();
    for key in ["a", "b", "c"] {
        conn.set(key, b"v");
    }
    let mut keys: Vec<String> = run(&server, "memcdump", &[])
        .lines()
        .map(String::from)
        .collect();
    keys.sort();
    assert_eq!(keys, ["a", "b", "c"], "{flavor}");
}

#[test]
fn memcdump_epoll() {
    memcdump_lists_keys(Flavor::Ringcache(Engine::Epoll));
}

#[test]
fn memcdump_uring() {
    if skip_reason(Engine::Uring).is_none() {
        memcdump_lists_keys(Flavor::Ringcache(Engine::Uring));
    }
}

#[test]
#[ignore = "reference run against memcached (checks the test, not ringcache)"]
fn memcdump_memcached() {
    memcdump_lists_keys(Flavor::Memcached);
}
