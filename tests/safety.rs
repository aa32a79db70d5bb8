//! Safe defaults: ringcache listens on loopback only unless `-l` says otherwise, has no
//! UDP socket, warns in its log when it listens on a wildcard address (the memcached
//! protocol has no authentication), warns when it runs as root without `-u`, and with
//! `-u` really drops to that user.
//!
//! These tests start ringcache themselves (not through `Server`, which always passes
//! `-l 127.0.0.1 -U 0`): the point is what happens without those flags. The sockets a
//! process owns are found from `/proc/PID/fd` and `/proc/net/{tcp,tcp6,udp,udp6}`.

#[macro_use]
mod common;

use common::{Client, Flavor, START_TIMEOUT};
use std::collections::HashSet;
use std::fs;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// A ringcache started with exactly `-p 0 --io-engine E` plus `args`; killed on drop.
struct Plain {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Plain {
    fn start(flavor: Flavor, args: &[&str]) -> Plain {
        Plain::start_under(flavor, &[], args)
    }

    /// As [`Plain::start`], run by the command `wrapper` (e.g. `taskset -c 0`), which
    /// must exec ringcache in its own process.
    fn start_under(flavor: Flavor, wrapper: &[&str], args: &[&str]) -> Plain {
        let Flavor::Ringcache(engine) = flavor else {
            panic!("safety tests are about ringcache's defaults, not {flavor}");
        };
        let dir = std::env::temp_dir().join(format!(
            "ringcache-safety-{}-{}-{}",
            std::process::id(),
            engine.flag(),
            [wrapper, args]
                .concat()
                .join("_")
                .replace(['/', '[', ']', ':'], "")
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        let log = fs::File::create(dir.join("log")).expect("create log");
        let program = env!("CARGO_BIN_EXE_ringcache");
        let mut command = match wrapper {
            [] => Command::new(program),
            [first, rest @ ..] => {
                let mut c = Command::new(first);
                c.args(rest).arg(program);
                c
            }
        };
        command.args(["-p", "0", "--io-engine", engine.flag()]);
        if !args.contains(&"-t") {
            command.args(["-t", "1"]);
        }
        let child = command
            .args(args)
            .env("MEMCACHED_PORT_FILENAME", dir.join("port"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("start ringcache");
        let mut plain = Plain {
            child,
            port: 0,
            dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let text = fs::read_to_string(plain.dir.join("port")).unwrap_or_default();
            if let Some(port) = text
                .lines()
                .find_map(|l| l.strip_prefix("TCP INET: "))
                .and_then(|p| p.trim().parse().ok())
            {
                plain.port = port;
                return plain;
            }
            if let Ok(Some(status)) = plain.child.try_wait() {
                panic!("ringcache {args:?} exited ({status}):\n{}", plain.log());
            }
            assert!(
                Instant::now() < deadline,
                "ringcache {args:?} did not listen within {START_TIMEOUT:?}:\n{}",
                plain.log()
            );
            std::thread::sleep(common::POLL_INTERVAL);
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn connect(&self) -> Client {
        Client::connect(SocketAddr::from(([127, 0, 0, 1], self.port)))
    }

    /// The local addresses of this process's sockets listed in `/proc/net/<table>`
    /// (`tcp`, `tcp6`, `udp`, `udp6`), with their state: "0A" is a listening TCP socket.
    fn sockets(&self, table: &str) -> Vec<(String, String)> {
        let mine: HashSet<String> = fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .expect("read /proc/PID/fd")
            .filter_map(|e| fs::read_link(e.ok()?.path()).ok())
            .filter_map(|l| {
                let l = l.to_string_lossy().into_owned();
                Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_string())
            })
            .collect();
        let text = fs::read_to_string(format!("/proc/{}/net/{table}", self.pid()))
            .unwrap_or_else(|e| panic!("read /proc/PID/net/{table}: {e}"));
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() > 9 && mine.contains(f[9])).then(|| (f[1].to_string(), f[3].to_string()))
            })
            .collect()
    }
}

impl Drop for Plain {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

const NO_AUTH: &str = "no authentication";

both_engines! {
    /// `-t 2` in a process allowed on one CPU only (`taskset -c 0`) starts one worker
    /// (two could only take turns on that core), says so at `-v`, and reports the
    /// workers it runs in `stats threads`; with two CPUs allowed, `-t 2` runs two.
    fn workers_capped_at_allowed_cpus(flavor) {
        let one = Plain::start_under(flavor, &["taskset", "-c", "0"], &["-t", "2", "-v"]);
        let mut client = one.connect();
        assert_eq!(client.stats()["threads"], "1", "{flavor}: -t 2 on one CPU");
        client.set("k", b"v");
        assert_eq!(client.get("k").as_deref(), Some(&b"v"[..]), "{flavor}");
        let log = one.log();
        assert!(
            log.contains("-t 2: this process may run on 1 CPU(s)"),
            "{flavor}: no line about the worker cap:\n{log}"
        );
        if std::thread::available_parallelism().map_or(0, |n| n.get()) < 2 {
            eprintln!("SKIPPED the two-CPU half ({flavor}): this machine has one CPU");
            return;
        }
        let two = Plain::start_under(flavor, &["taskset", "-c", "0,1"], &["-t", "2", "-v"]);
        assert_eq!(two.connect().stats()["threads"], "2", "{flavor}: -t 2 on two CPUs");
        assert!(!two.log().contains("this process may run on"), "{flavor}:\n{}", two.log());
    }
}

both_engines! {
    /// No `-l`: one listening socket, on 127.0.0.1; no UDP socket; no wildcard warning.
    fn default_listens_on_loopback_only_without_udp(flavor) {
        let server = Plain::start(flavor, &[]);
        server.connect().version();
        let tcp = server.sockets("tcp");
        let listening: Vec<&String> =
            tcp.iter().filter(|(_, st)| st == "0A").map(|(a, _)| a).collect();
        let want = format!("0100007F:{:04X}", server.port);
        assert_eq!(listening, vec![&want], "{flavor}: listening sockets {tcp:?}");
        let tcp6 = server.sockets("tcp6");
        assert!(tcp6.iter().all(|(_, st)| st != "0A"), "{flavor}: v6 listeners {tcp6:?}");
        for table in ["udp", "udp6"] {
            let udp = server.sockets(table);
            assert!(udp.is_empty(), "{flavor}: UDP sockets in {table}: {udp:?}");
        }
        let log = server.log();
        assert!(!log.contains(NO_AUTH), "{flavor}: wildcard warning on loopback:\n{log}");
    }
}

both_engines! {
    /// `-l 0.0.0.0` (and `[::]` where the machine has IPv6): a WARN line per wildcard
    /// address, naming the port really bound, saying the protocol has no
    /// authentication; and the server still serves.
    fn wildcard_listen_warns_no_authentication(flavor) {
        let v6 = fs::read_to_string("/proc/net/if_inet6").is_ok_and(|t| !t.trim().is_empty());
        let listen = if v6 { "0.0.0.0,[::]" } else { "0.0.0.0" };
        if !v6 {
            eprintln!("SKIPPED the [::] half ({flavor}): no IPv6 on this machine");
        }
        let server = Plain::start(flavor, &["-l", listen]);
        server.connect().version();
        let log = server.log();
        let warnings: Vec<&str> =
            log.lines().filter(|l| l.contains("WARN") && l.contains(NO_AUTH)).collect();
        assert!(
            warnings.iter().any(|l| l.contains(&format!("0.0.0.0:{}", server.port))),
            "{flavor}: no WARN for 0.0.0.0:\n{log}"
        );
        if v6 {
            // With -p 0 each address gets its own ephemeral port; the WARN names it.
            let port = warnings.iter().find_map(|l| {
                let rest = &l[l.find("listening on [::]:")? + "listening on [::]:".len()..];
                rest.split(':').next()?.parse::<u16>().ok()
            });
            assert!(
                port.is_some_and(|p| p != 0),
                "{flavor}: no WARN naming the bound [::] port:\n{log}"
            );
        }
    }
}

/// Whether the tests run as root; if not, says why a root-only test is skipped.
fn root_or_skip(what: &str) -> bool {
    let uid = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| ids(&s, "Uid:"))
        .map(|ids| ids[1]);
    if uid == Some(0) {
        return true;
    }
    eprintln!("SKIPPED {what}: needs root (euid {uid:?})");
    false
}

/// The four ids (real, effective, saved, fs) of a `Uid:` or `Gid:` line.
fn ids(status: &str, field: &str) -> Option<Vec<u32>> {
    let line = status.lines().find_map(|l| l.strip_prefix(field))?;
    line.split_whitespace().map(|n| n.parse().ok()).collect()
}

/// uid and gid of `user`, from /etc/passwd.
fn passwd_ids(user: &str) -> Option<(u32, u32)> {
    let mut text = String::new();
    fs::File::open("/etc/passwd")
        .ok()?
        .read_to_string(&mut text)
        .ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && f[0] == user).then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}

const ROOT_WARNING: &str = "running as root without -u";

both_engines! {
    /// As root without `-u`, ringcache runs (containers) but logs a WARN line.
    fn root_without_user_warns(flavor) {
        if !root_or_skip("root_without_user_warns") {
            return;
        }
        let server = Plain::start(flavor, &["-l", "127.0.0.1"]);
        server.connect().version();
        let log = server.log();
        assert!(
            log.lines().any(|l| l.contains("WARN") && l.contains(ROOT_WARNING)),
            "{flavor}: no root warning:\n{log}"
        );
    }
}

both_engines! {
    /// As root with `-u nobody`: every uid and gid of the process is nobody's, there is
    /// no root warning, and the server serves; `-u` with an unknown user refuses to start.
    fn user_flag_drops_privileges(flavor) {
        if !root_or_skip("user_flag_drops_privileges") {
            return;
        }
        let (uid, gid) = passwd_ids("nobody").expect("no user nobody in /etc/passwd");
        let server = Plain::start(flavor, &["-l", "127.0.0.1", "-u", "nobody"]);
        let mut conn = server.connect();
        conn.set("k", b"v");
        assert_eq!(conn.get("k").as_deref(), Some(&b"v"[..]), "{flavor}");
        let status = fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
        assert_eq!(ids(&status, "Uid:"), Some(vec![uid; 4]), "{flavor}: {status}");
        assert_eq!(ids(&status, "Gid:"), Some(vec![gid; 4]), "{flavor}: {status}");
        let groups = status.lines().find_map(|l| l.strip_prefix("Groups:")).unwrap_or("");
        assert_eq!(groups.trim(), "", "{flavor}: supplementary groups kept");
        let log = server.log();
        assert!(!log.contains(ROOT_WARNING), "{flavor}: root warning with -u:\n{log}");

        let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
            .args(["-p", "0", "-l", "127.0.0.1", "--io-engine"])
            .arg(match flavor {
                Flavor::Ringcache(e) => e.flag(),
                _ => unreachable!(),
            })
            .args(["-u", "no-such-user-ringcache"])
            .output()
            .expect("run ringcache");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flavor}: started with an unknown -u user");
        assert!(stderr.contains("-u no-such-user-ringcache"), "{flavor}: {stderr}");
    }
}
