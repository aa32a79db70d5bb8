//! What an operator reads at startup, without `-v`: the one line naming the engine and
//! its features, a WARN when `-t` is capped to the CPUs the process may use; that
//! `-l <host name>` listens on every address the name resolves to (as memcached, through
//! getaddrinfo), with the port file and the startup line following; and that `--help`
//! says what the flags do.

#[macro_use]
mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The startup line (it holds `listen=`), once the server has logged it.
fn startup_line(server: &Server) -> String {
    assert!(
        wait_until(IO_TIMEOUT, || server.log().contains(" listen=")),
        "{}: no startup line:\n{}",
        server.flavor(),
        server.log()
    );
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(" engine=")).collect();
    assert_eq!(lines.len(), 1, "one startup line:\n{log}");
    lines[0].to_string()
}

both_engines! {
    /// Without `-v` the log still says, in one line, which engine runs and with which
    /// io_uring features (the features `stats` reports, spelt for people).
    fn the_startup_line_names_engine_and_features_without_v(flavor) {
        let server = Server::start(flavor, &[]);
        let line = startup_line(&server);
        let stats = server.connect().stats();
        let engine = &stats["ringcache_engine"];
        assert!(line.contains(" INFO "), "{flavor}: {line}");
        assert!(line.contains(&format!("threads={}", stats["threads"])), "{flavor}: {line}");
        assert!(line.contains(&format!("listen=127.0.0.1:{}", server.port())), "{flavor}: {line}");
        match engine.as_str() {
            "uring" => {
                let words = &stats["ringcache_uring_features"];
                let shown = line
                    .split("engine=uring (")
                    .nth(1)
                    .and_then(|rest| rest.split(')').next())
                    .unwrap_or_else(|| panic!("{flavor}: no uring features in {line}"));
                // The line spells for people what `stats` lists as words:
                // "defer_taskrun, single-shot accept, multishot recv, buf ring" is
                // "defer_taskrun,accept,multishot_recv,buf_ring".
                let as_words = shown.replace("single-shot ", "").replace(", ", ",").replace(' ', "_");
                assert_eq!(&as_words, words, "{flavor}: {line}");
            }
            "epoll" => assert!(line.contains("engine=epoll "), "{flavor}: {line}"),
            other => panic!("{flavor}: engine {other}"),
        }
    }
}

both_engines! {
    /// `-t` above the CPUs this process may run on is capped, and said at default
    /// verbosity as a WARN (it was an INFO line only `-v` showed).
    fn a_capped_thread_count_warns_without_v(flavor) {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert!(cpus < 256, "this test needs fewer than 256 CPUs");
        let server = Server::start(flavor, &["-t", "256"]);
        let line = startup_line(&server);
        assert!(line.contains(&format!("threads={cpus}")), "{flavor}: {line}");
        assert_eq!(server.connect().stats()["threads"], cpus.to_string(), "{flavor}");
        let log = server.log();
        let warning = format!("-t 256: this process may run on {cpus} CPU(s)");
        assert!(
            log.lines().any(|l| l.contains(" WARN ") && l.contains(&warning)),
            "{flavor}: no WARN about the cap:\n{log}"
        );
    }
}

/// A server started under `unshare -m` with its own `/etc/hosts`; killed on drop.
struct PrivateHosts {
    child: Child,
    dir: TempDir,
}

impl PrivateHosts {
    /// Runs ringcache with `args`, seeing `hosts` as `/etc/hosts` (a bind mount in a
    /// mount namespace of its own: the machine's file is untouched).
    fn start(engine: Engine, hosts: &str, args: &[&str]) -> PrivateHosts {
        let dir = TempDir::new("private-hosts");
        let hosts_path = dir.join("hosts");
        std::fs::write(&hosts_path, hosts).expect("write hosts file");
        let log = std::fs::File::create(dir.join("log")).expect("create log");
        let child = Command::new("unshare")
            .args([
                "-m",
                "sh",
                "-c",
                "mount --bind \"$0\" /etc/hosts && exec \"$@\"",
            ])
            .arg(&hosts_path)
            .arg(env!("CARGO_BIN_EXE_ringcache"))
            .args([
                "--io-engine",
                engine.flag(),
                "-p",
                "0",
                "-U",
                "0",
                "-t",
                "1",
            ])
            .args(args)
            .env("MEMCACHED_PORT_FILENAME", dir.join("port"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("run unshare");
        PrivateHosts { child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// The port file's lines, once it is written (it is renamed into place whole).
    fn port_file(&mut self) -> String {
        let path = self.dir.join("port");
        let written = wait_until(IO_TIMEOUT, || {
            path.exists() || self.child.try_wait().ok().flatten().is_some()
        });
        std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("no port file (written {written}):\n{}", self.log()))
    }
}

impl Drop for PrivateHosts {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this process may make a mount namespace and the machine has `::1`.
fn private_hosts_skip_reason() -> Option<&'static str> {
    if !is_root() {
        return Some("needs root for unshare -m and a bind mount");
    }
    let v6_loopback = std::fs::read_to_string("/proc/net/if_inet6")
        .is_ok_and(|t| t.contains("00000000000000000000000000000001"));
    if !v6_loopback {
        return Some("no ::1 on this machine");
    }
    let unshare = Command::new("unshare")
        .args(["-m", "true"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !unshare.is_ok_and(|s| s.success()) {
        return Some("unshare -m does not work here");
    }
    None
}

/// `version` over a fresh connection to `addr`.
fn version_at(addr: SocketAddr) -> String {
    let mut conn = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    conn.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
    conn.write_all(b"version\r\n").expect("send");
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(b"\r\n") {
        let n = match conn.read(&mut buf) {
            // A signal to the test process (a child exiting) may interrupt the read.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => r.unwrap_or_else(|e| panic!("read {addr}: {e}")),
        };
        assert!(n > 0, "{addr} closed");
        got.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&got).trim_end().to_string()
}

both_engines! {
    /// `-l localhost`, where `localhost` is both 127.0.0.1 and ::1 (Debian's default
    /// /etc/hosts), listens on both, as memcached does (getaddrinfo, one socket per
    /// answer); it bound 127.0.0.1 only. The port file and the startup line name both.
    fn listen_on_a_name_binds_every_address_it_resolves_to(flavor) {
        if let Some(why) = private_hosts_skip_reason() {
            eprintln!("SKIPPED ({flavor}): {why}");
            return;
        }
        let Flavor::Ringcache(engine) = flavor else { unreachable!() };
        let mut server =
            PrivateHosts::start(engine, "127.0.0.1 localhost\n::1 localhost\n", &["-l", "localhost"]);
        let ports = server.port_file();
        let port = |family: &str| -> u16 {
            ports
                .lines()
                .find_map(|l| l.strip_prefix(&format!("TCP {family}: ")))
                .and_then(|p| p.trim().parse().ok())
                .unwrap_or_else(|| panic!("{flavor}: no {family} line in {ports:?}:\n{}", server.log()))
        };
        let (v4, v6) = (port("INET"), port("INET6"));
        let v4_addr = SocketAddr::from(([127, 0, 0, 1], v4));
        let v6_addr: SocketAddr = format!("[::1]:{v6}").parse().expect("v6 address");
        assert_eq!(version_at(v4_addr), "VERSION 1.6.18", "{flavor}");
        assert_eq!(version_at(v6_addr), "VERSION 1.6.18", "{flavor}");
        assert!(wait_until(IO_TIMEOUT, || server.log().contains(" listen=")), "{}", server.log());
        let log = server.log();
        let line = log.lines().find(|l| l.contains(" listen=")).expect("startup line");
        assert!(
            line.contains(&v4_addr.to_string()) && line.contains(&v6_addr.to_string()),
            "{flavor}: the startup line names both addresses: {line}"
        );
    }
}

/// Runs `ringcache` with `args` to completion; its stdout.
fn ringcache_output(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ringcache");
    assert!(out.status.success(), "{args:?}: {}", out.status);
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// `--help` says what the flags do: warnings print without `-v` (it said `-v` added
/// "warnings and errors"), `-l` takes host names, `-o` names the options it knows.
#[test]
fn help_describes_verbosity_listen_and_extended_options() {
    let help = ringcache_output(&["--help"]);
    let flag = |name: &str| -> String {
        let at = help
            .find(name)
            .unwrap_or_else(|| panic!("no {name} in --help:\n{help}"));
        help[at..]
            .split("\n\n")
            .next()
            .unwrap_or_default()
            .to_string()
    };
    let verbose = flag("-v, --verbose");
    assert!(
        verbose.contains("Without it: warnings, errors and the one startup line"),
        "{verbose}"
    );
    assert!(!verbose.contains("-v warnings"), "{verbose}");
    let listen = flag("-l, --listen");
    assert!(listen.contains("every address it resolves to"), "{listen}");
    let extended = flag("-o, --extended");
    assert!(
        extended.contains("idle_timeout") && extended.contains("conn_buffer_limit_mb"),
        "{extended}"
    );
    assert!(flag("-t, --threads").contains("capped"), "{help}");
    // The short form lists the same flags.
    let short = ringcache_output(&["-h"]);
    for name in [
        "-v, --verbose",
        "-l, --listen",
        "-o, --extended",
        "--io-engine",
    ] {
        assert!(short.contains(name), "-h lacks {name}:\n{short}");
    }
    assert!(Path::new(env!("CARGO_BIN_EXE_ringcache")).exists());
}
