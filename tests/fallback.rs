//! The real fallback: with `kernel.io_uring_disabled = 2` (what Docker's seccomp
//! profile amounts to: ring setup fails with EPERM), `--io-engine auto` must log why and
//! serve with epoll, and `--io-engine uring` must refuse to start with that reason.
//!
//! The sysctl is machine-wide, so this file holds ONE test (cargo runs test binaries one
//! after another, and tests of one binary in parallel): nothing else of this suite runs
//! while it is set, and a guard restores the old value even if the test panics.

#[macro_use]
#[allow(unused_macros)]
mod common;

use common::{Engine, Server};
use std::process::{Command, Stdio};
use std::time::Duration;

const SYSCTL: &str = "/proc/sys/kernel/io_uring_disabled";

/// Restores the sysctl's old value when dropped.
struct Restore(String);

impl Drop for Restore {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(SYSCTL, &self.0) {
            eprintln!("could not restore {SYSCTL} to {:?}: {e}", self.0.trim());
        }
    }
}

#[test]
fn auto_falls_back_to_epoll_and_uring_refuses_when_io_uring_is_disabled() {
    let old = match std::fs::read_to_string(SYSCTL) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("SKIPPED: cannot read {SYSCTL} ({e}): this kernel has no such switch");
            return;
        }
    };
    if let Err(e) = std::fs::write(SYSCTL, &old) {
        eprintln!("SKIPPED: {SYSCTL} is not writable here ({e}); needs root outside a container");
        return;
    }
    let _restore = Restore(old);
    std::fs::write(SYSCTL, "2").expect("disable io_uring");

    // auto: one WARN line with the reason, then a working server on epoll.
    let server = Server::ringcache(Engine::Auto, &[]);
    let mut client = server.connect();
    client.set("fallback", b"works");
    assert_eq!(client.get("fallback").as_deref(), Some(&b"works"[..]));
    let stats = client.stats();
    assert_eq!(
        stats.get("ringcache_engine").map(String::as_str),
        Some("epoll")
    );
    let log = server.log();
    let warn: Vec<&str> = log.lines().filter(|l| l.contains("WARN")).collect();
    assert!(
        warn.iter()
            .any(|l| l.contains("io_uring") && l.contains("using epoll")),
        "auto must say why it falls back; log:\n{log}"
    );

    // uring: a startup error naming the reason, non-zero exit.
    let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .args([
            "-p",
            "0",
            "-l",
            "127.0.0.1",
            "-U",
            "0",
            "--io-engine",
            "uring",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run ringcache");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "uring must refuse to start: {stderr}"
    );
    assert!(
        stderr.contains("io_uring") && stderr.contains("not usable"),
        "the refusal must say why: {stderr}"
    );
    drop(client);
    // Only the probe connection itself remains.
    server.wait_curr_connections(1, Duration::from_secs(10));
}
