//! The deploy files, checked without docker and without a running systemd: the
//! Dockerfile (what it copies exists and is not dockerignored, its USER is the user it
//! creates, its ENTRYPOINT + CMD start the built binary as that user and serve on
//! 0.0.0.0), contrib/ringcache.service (`systemd-analyze verify` without a warning,
//! the hardening it promises, a `SystemCallFilter=` that passes every call the server
//! makes under strace) and contrib/ringcache.default (its flags serve, as an
//! unprivileged user, like the unit's own default).
//!
//! The image itself is built only where a docker daemon answers and
//! `RINGCACHE_DOCKER_BUILD=1`; otherwise `docker_image` says on stderr that it was not.
//!
//! Longer than ~600 lines: three deploy files, each checked against the binary it
//! deploys (a parsed Dockerfile, a unit verified and run under strace, an environment
//! file), with the process helpers they share (start as a user, talk, stop) kept in one
//! place rather than split across files that would each need them.

#[allow(unused_macros)] // only rc_load is used here
mod common;

use common::rc_load;
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A line that the test output shows even when libtest captures `eprintln!`.
fn notice(msg: &str) {
    let _ = writeln!(std::io::stderr(), "deploy: {msg}");
}

/// A scratch directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("ringcache-deploy-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        // Searchable by the unprivileged user the server runs as.
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn running_as_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

// ---------------------------------------------------------------------------------
// The Dockerfile

/// The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined and
/// comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in read("Dockerfile").lines() {
        let t = line.trim();
        if t.starts_with('#') || (t.is_empty() && cur.is_empty()) {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        let (kw, args) = cur.split_once(char::is_whitespace).unwrap_or((&cur, ""));
        out.push((kw.to_ascii_uppercase(), args.trim().to_string()));
        cur.clear();
    }
    out
}

/// The instructions of the last stage (the image that runs).
fn final_stage(ins: &[(String, String)]) -> &[(String, String)] {
    let last_from = ins.iter().rposition(|(k, _)| k == "FROM").expect("no FROM");
    &ins[last_from..]
}

fn one<'a>(ins: &'a [(String, String)], kw: &str) -> &'a str {
    let all: Vec<_> = ins.iter().filter(|(k, _)| k == kw).collect();
    assert_eq!(all.len(), 1, "the final stage should have exactly one {kw}");
    &all[0].1
}

/// A JSON exec-form array of plain strings: `["a", "-l", "0.0.0.0"]`.
fn exec_form(s: &str) -> Vec<String> {
    let inner = s
        .trim()
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or_else(|| panic!("not exec form (a JSON array): {s}"));
    inner
        .split(',')
        .map(|w| {
            let w = w.trim();
            assert!(
                w.len() >= 2 && w.starts_with('"') && w.ends_with('"') && !w.contains('\\'),
                "unexpected exec-form word {w:?} in {s}"
            );
            w[1..w.len() - 1].to_string()
        })
        .collect()
}

/// The .dockerignore patterns, trailing slashes and leading `**/` dropped.
fn dockerignored() -> Vec<String> {
    read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.trim_start_matches("**/")
                .trim_end_matches('/')
                .to_string()
        })
        .collect()
}

fn is_ignored(path: &str, ignored: &[String]) -> bool {
    let first = path
        .trim_start_matches("./")
        .split('/')
        .next()
        .unwrap_or("");
    ignored.iter().any(|p| p == first || p == path)
}

#[test]
fn dockerfile_copies_what_exists_and_is_in_the_context() {
    let ins = dockerfile();
    let ignored = dockerignored();
    for must in ["target", ".git"] {
        assert!(
            ignored.iter().any(|p| p == must),
            ".dockerignore should exclude {must}/"
        );
    }
    let stages: Vec<String> = ins
        .iter()
        .filter(|(k, _)| k == "FROM")
        .filter_map(|(_, a)| {
            let w: Vec<_> = a.split_whitespace().collect();
            (w.len() == 3 && w[1].eq_ignore_ascii_case("as")).then(|| w[2].to_string())
        })
        .collect();
    let mut copies = 0;
    for (kw, args) in ins.iter().filter(|(k, _)| k == "COPY" || k == "ADD") {
        let words: Vec<&str> = args.split_whitespace().collect();
        let from = words.iter().find_map(|w| w.strip_prefix("--from="));
        let paths: Vec<&str> = words
            .iter()
            .copied()
            .filter(|w| !w.starts_with("--"))
            .collect();
        assert!(paths.len() >= 2, "{kw} {args}: no source or destination");
        for src in &paths[..paths.len() - 1] {
            copies += 1;
            if let Some(stage) = from {
                assert!(
                    stages.iter().any(|s| s == stage),
                    "{kw} {args}: no stage named {stage}"
                );
                let made = ins.iter().any(|(k, a)| k == "RUN" && a.contains(src));
                assert!(made, "{kw} {args}: no RUN in the Dockerfile makes {src}");
                continue;
            }
            assert!(
                root().join(src).exists(),
                "{kw} {args}: {src} does not exist"
            );
            assert!(
                *src == "." || !is_ignored(src, &ignored),
                "{kw} {args}: {src} is excluded by .dockerignore"
            );
        }
    }
    assert!(copies > 0, "the Dockerfile copies nothing");
    // What `cargo build` reads must reach the build context (`COPY . .`).
    for input in ["Cargo.toml", "Cargo.lock", "src", "benches", "crates"] {
        if root().join(input).exists() {
            assert!(
                !is_ignored(input, &ignored),
                ".dockerignore excludes {input}, which the build needs"
            );
        }
    }
}

/// The uid and gid the final stage creates its user with, and its name.
fn created_user(stage: &[(String, String)]) -> (u32, u32, String) {
    let run = stage
        .iter()
        .find(|(k, a)| k == "RUN" && a.contains("useradd"))
        .map(|(_, a)| a.as_str())
        .expect("the final stage creates no user (useradd)");
    let cmd = run.split("useradd").nth(1).unwrap();
    let cmd = cmd.split("&&").next().unwrap();
    let words: Vec<&str> = cmd.split_whitespace().collect();
    let value = |flag: &str| -> u32 {
        let i = words
            .iter()
            .position(|w| *w == flag)
            .unwrap_or_else(|| panic!("useradd without {flag}: {cmd}"));
        words[i + 1].parse().expect("a numeric id")
    };
    let name = words.last().expect("useradd without a name").to_string();
    (value("--uid"), value("--gid"), name)
}

#[test]
fn dockerfile_user_is_the_unprivileged_user_it_creates() {
    let ins = dockerfile();
    let stage = final_stage(&ins);
    let (uid, gid, name) = created_user(stage);
    assert_ne!(uid, 0, "the image's user must not be root");
    let user = one(stage, "USER");
    let (u, g) = user.split_once(':').unwrap_or((user, ""));
    assert!(
        u == name || u.parse() == Ok(uid),
        "USER {user} is not the created user {name} (uid {uid})"
    );
    assert!(
        g.is_empty() || g == name || g.parse() == Ok(gid),
        "USER {user}: group is not the created group (gid {gid})"
    );
    assert_eq!(one(stage, "EXPOSE"), "11211");
    let entry = exec_form(one(stage, "ENTRYPOINT"));
    assert!(
        entry.windows(2).any(|w| w == ["-l", "0.0.0.0"]),
        "ENTRYPOINT {entry:?} should listen on 0.0.0.0 (127.0.0.1 is unreachable from outside a container)"
    );
}

// ---------------------------------------------------------------------------------
// Running the built binary the way the deploy files run it

struct Server {
    /// ringcache, or the wrapper (strace) that runs it as its child.
    child: Child,
    wrapped: bool,
    /// Set once `stop` has reaped it: its pid may be someone else's by then.
    exited: bool,
    port: u16,
    log: PathBuf,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exited {
            return;
        }
        if self.wrapped {
            // Killing strace would only detach it from the server.
            let _ = Command::new("kill")
                .args(["-KILL", &self.pid().to_string()])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `args` with the value of `-p`/`--port` replaced by 0 (any free port), or `-p 0`
/// appended.
fn any_port(args: &[String]) -> Vec<String> {
    let mut out = args.to_vec();
    match out.iter().position(|a| a == "-p" || a == "--port") {
        Some(i) => out[i + 1] = "0".to_string(),
        None => out.extend(["-p".to_string(), "0".to_string()]),
    }
    out
}

/// Starts the built ringcache with `args` (plus a free port) as `uid:gid` when this
/// test runs as root (through setpriv, from a copy of the binary that user may
/// execute), or as the current user otherwise, under `wrap` (a command that runs the
/// rest as its child) if not empty; returns once it listens.
fn start(tag: &str, wrap: &[String], args: &[String], uid: u32, gid: u32) -> Server {
    let dir = TempDir::new(tag);
    let bin = dir.0.join("ringcache");
    fs::copy(env!("CARGO_BIN_EXE_ringcache"), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    let run = dir.0.join("run");
    fs::create_dir(&run).unwrap();
    let mut cmd = if running_as_root() {
        std::os::unix::fs::chown(&run, Some(uid), Some(gid)).unwrap();
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={gid}"))
            .arg("--clear-groups")
            .args(wrap)
            .arg(&bin);
        c
    } else if let Some((first, rest)) = wrap.split_first() {
        let mut c = Command::new(first);
        c.args(rest).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    let port_file = run.join("port");
    let log = dir.0.join("stderr");
    cmd.args(any_port(args))
        .env("MEMCACHED_PORT_FILENAME", &port_file)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap());
    let mut child = cmd
        .spawn()
        .expect("start ringcache (setpriv is util-linux)");
    let deadline = Instant::now() + Duration::from_secs(20);
    let port = loop {
        let text = fs::read_to_string(&port_file).unwrap_or_default();
        if let Some(p) = text
            .lines()
            .find_map(|l| l.strip_prefix("TCP INET: "))
            .and_then(|p| p.trim().parse().ok())
        {
            break p;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "ringcache {args:?} exited with {status} before listening:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "ringcache {args:?}: no port file"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    Server {
        child,
        wrapped: !wrap.is_empty(),
        exited: false,
        port,
        log,
        _dir: dir,
    }
}

impl Server {
    /// The server's process id.
    fn pid(&self) -> u32 {
        let id = self.child.id();
        if !self.wrapped {
            return id;
        }
        fs::read_to_string(format!("/proc/{id}/task/{id}/children"))
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(id)
    }

    /// The real, effective, saved and file-system uids of the server process.
    fn uids(&self) -> Vec<u32> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        line[4..]
            .split_whitespace()
            .map(|u| u.parse().unwrap())
            .collect()
    }

    /// Whether it has a listening TCP socket on 0.0.0.0 at its port.
    fn listens_on_any_v4(&self) -> bool {
        let want = format!("00000000:{:04X}", self.port);
        fs::read_to_string("/proc/net/tcp")
            .unwrap()
            .lines()
            .skip(1)
            .any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.len() > 3 && f[1] == want && f[3] == "0A"
            })
    }

    /// Stores and reads back an item and returns the `ringcache_engine` stat.
    fn talk(&self) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut ask = |cmd: &str, end: &str| -> String {
            s.write_all(cmd.as_bytes()).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.ends_with(end.as_bytes()) {
                let n = s.read(&mut buf).expect("an answer");
                assert!(
                    n > 0,
                    "closed after {cmd:?}: {:?}",
                    String::from_utf8_lossy(&got)
                );
                got.extend_from_slice(&buf[..n]);
            }
            String::from_utf8(got).unwrap()
        };
        assert_eq!(ask("set deploy 0 0 5\r\nhello\r\n", "\r\n"), "STORED\r\n");
        assert_eq!(
            ask("get deploy\r\n", "END\r\n"),
            "VALUE deploy 0 5\r\nhello\r\nEND\r\n"
        );
        let stats = ask("stats\r\n", "END\r\n");
        stats
            .lines()
            .find_map(|l| l.strip_prefix("STAT ringcache_engine "))
            .expect("stats without ringcache_engine")
            .to_string()
    }

    /// SIGTERM, as `docker stop` and `systemctl stop` send: expects exit status 0.
    fn stop(mut self) {
        let pid = self.pid().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        let status: ExitStatus = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                self.exited = true;
                break s;
            }
            assert!(Instant::now() < deadline, "no exit 10 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        };
        assert!(
            status.success(),
            "exit {status} after SIGTERM:\n{}",
            fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

/// Runs `args` as uid:gid and talks to it; `what` names the flags in messages.
fn serve_check(what: &str, args: &[String], uid: u32, gid: u32) -> Server {
    let server = start(what, &[], args, uid, gid);
    if running_as_root() {
        assert_eq!(server.uids(), [uid; 4], "{what}: not running as {uid}");
    }
    let engine = server.talk();
    eprintln!("{what}: {args:?} served with the {engine} engine");
    server
}

#[test]
fn dockerfile_command_serves_on_all_interfaces_as_its_user() {
    let ins = dockerfile();
    let stage = final_stage(&ins);
    let (uid, gid, _) = created_user(stage);
    let entry = exec_form(one(stage, "ENTRYPOINT"));
    let cmd = exec_form(one(stage, "CMD"));
    assert_eq!(
        entry[0], "/usr/local/bin/ringcache",
        "ENTRYPOINT should run the binary the build stage installs"
    );
    let args: Vec<String> = entry[1..].iter().chain(&cmd).cloned().collect();
    let server = serve_check("docker", &args, uid, gid);
    assert!(
        server.listens_on_any_v4(),
        "{args:?}: no listening socket on 0.0.0.0:{}",
        server.port
    );
    server.stop();
}

#[test]
fn docker_image() {
    let daemon = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !daemon {
        notice(
            "no docker daemon here: the image itself was NOT built or run; only the \
             Dockerfile's paths, user and command were checked (against the built binary)",
        );
        return;
    }
    if std::env::var_os("RINGCACHE_DOCKER_BUILD").is_none_or(|v| v != "1") {
        notice(
            "docker answers, but the image was NOT built: set RINGCACHE_DOCKER_BUILD=1 \
             to build it and run `ringcache --version` in it (minutes)",
        );
        return;
    }
    let tag = "ringcache:deploy-test";
    let built = Command::new("docker")
        .args(["build", "-t", tag, "."])
        .current_dir(root())
        .status()
        .unwrap();
    assert!(built.success(), "docker build failed");
    let out = Command::new("docker")
        .args(["run", "--rm", tag, "--version"])
        .output()
        .unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("ringcache"),
        "docker run {tag} --version: {out:?}"
    );
    notice("the image was built and runs `ringcache --version`");
}

// ---------------------------------------------------------------------------------
// contrib/: the systemd unit and its /etc/default file

fn unit_values(unit: &str, key: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_string())
        .collect()
}

fn unit_value(unit: &str, key: &str) -> String {
    let all = unit_values(unit, key);
    assert_eq!(
        all.len(),
        1,
        "contrib/ringcache.service: one {key}= expected"
    );
    all[0].clone()
}

/// `systemd-analyze verify` on `unit_text` written to a temporary ringcache.service:
/// its exit status and everything it printed.
fn verify(unit_text: &str) -> (bool, String) {
    let analyze = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect(
            "systemd-analyze is missing: install Debian's systemd package \
             (ci/test.sh does)",
        );
    let dir = TempDir::new("unit");
    let path = dir.0.join("ringcache.service");
    fs::write(&path, unit_text).unwrap();
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&path)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The unit with ExecStart's /usr/local/bin/ringcache replaced by the built binary:
/// `systemd-analyze verify` fails on an ExecStart that does not exist.
fn unit_for_this_build() -> String {
    let unit = read("contrib/ringcache.service");
    let from = "ExecStart=/usr/local/bin/ringcache ";
    assert!(
        unit.contains(from),
        "ExecStart should run /usr/local/bin/ringcache"
    );
    unit.replace(
        from,
        &format!("ExecStart={} ", env!("CARGO_BIN_EXE_ringcache")),
    )
}

#[test]
fn systemd_unit_verifies_without_warnings() {
    let unit = unit_for_this_build();
    // The check itself: an unknown key must show up, or a clean run proves nothing.
    let (_, bad) = verify(&unit.replace("[Service]\n", "[Service]\nNoSuchKey=1\n"));
    assert!(
        bad.contains("NoSuchKey"),
        "systemd-analyze verify did not report an unknown key:\n{bad}"
    );
    let (ok, text) = verify(&unit);
    let about_unit: Vec<&str> = text.lines().filter(|l| l.contains("ringcache")).collect();
    assert!(
        ok && about_unit.is_empty(),
        "systemd-analyze verify contrib/ringcache.service (ExecStart pointed at the built binary):\n{text}"
    );
    if !text.trim().is_empty() {
        eprintln!("systemd-analyze verify, about other units:\n{text}");
    }
}

#[test]
fn systemd_unit_has_the_promised_hardening() {
    let unit = read("contrib/ringcache.service");
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("PrivateTmp", "yes"),
        ("ProtectHome", "yes"),
        ("CapabilityBoundingSet", ""),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("MemoryDenyWriteExecute", "yes"),
        ("DynamicUser", "yes"),
        ("EnvironmentFile", "-/etc/default/ringcache"),
        ("ExecStart", "/usr/local/bin/ringcache $RINGCACHE_OPTS"),
        ("Restart", "on-failure"),
        ("RestartPreventExitStatus", "64"),
        // `-e /run/ringcache/memory` must outlive `systemctl restart`, and the stop
        // needs time to save it.
        ("RuntimeDirectory", "ringcache"),
        ("RuntimeDirectoryPreserve", "restart"),
        ("TimeoutStopSec", "60"),
    ] {
        assert_eq!(unit_value(&unit, key), want, "{key}=");
    }
    let filter = unit_value(&unit, "SystemCallFilter");
    for call in [
        "@system-service",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
    ] {
        assert!(
            filter.split_whitespace().any(|w| w == call),
            "SystemCallFilter= lacks {call}"
        );
    }
    let nofile: u64 = unit_value(&unit, "LimitNOFILE").parse().unwrap();
    assert!(
        nofile >= 1024 + 64,
        "LimitNOFILE={nofile} is below -c 1024 + 64"
    );
}

/// `RINGCACHE_OPTS=...` (quotes dropped), as systemd splits `$RINGCACHE_OPTS`.
fn opts(assignment: &str) -> Vec<String> {
    let v = assignment
        .trim()
        .trim_matches('"')
        .strip_prefix("RINGCACHE_OPTS=")
        .unwrap_or_else(|| panic!("not RINGCACHE_OPTS=: {assignment}"))
        .trim_matches('"');
    v.split_whitespace().map(String::from).collect()
}

#[test]
fn unit_and_default_file_flags_serve_as_an_unprivileged_user() {
    let unit = read("contrib/ringcache.service");
    let unit_opts = opts(&unit_value(&unit, "Environment"));
    let default = read("contrib/ringcache.default");
    let lines: Vec<&str> = default
        .lines()
        .filter(|l| l.starts_with("RINGCACHE_OPTS="))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "contrib/ringcache.default: one RINGCACHE_OPTS="
    );
    let file_opts = opts(lines[0]);
    assert_eq!(
        unit_opts, file_opts,
        "installing contrib/ringcache.default unedited should change nothing"
    );
    // 61184: the first uid systemd's DynamicUser= hands out.
    serve_check("unit", &unit_opts, 61184, 61184).stop();
}

/// The system calls a `SystemCallFilter=` list allows, groups expanded by
/// `systemd-analyze syscall-filter`.
fn allowed_syscalls(filter: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo: Vec<String> = filter.split_whitespace().map(String::from).collect();
    let mut seen = Vec::new();
    while let Some(name) = todo.pop() {
        if !name.starts_with('@') {
            out.push(name);
            continue;
        }
        if seen.contains(&name) {
            continue;
        }
        let listed = Command::new("systemd-analyze")
            .args(["syscall-filter", &name])
            .output()
            .expect("systemd-analyze syscall-filter");
        assert!(
            listed.status.success(),
            "systemd-analyze syscall-filter {name}"
        );
        let text = String::from_utf8(listed.stdout).unwrap();
        todo.extend(
            text.lines()
                .skip(1)
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
        seen.push(name);
    }
    out
}

/// Every system call ringcache makes, started with the unit's flags and put under
/// load with both engines, passes the unit's `SystemCallFilter=`: a new call the
/// filter refuses would fail with EPERM only under systemd.
#[test]
fn unit_syscall_filter_allows_what_the_server_calls() {
    let traced = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !traced {
        notice("strace is missing or cannot trace here: the unit's SystemCallFilter= was NOT checked against the calls ringcache makes");
        return;
    }
    let unit = read("contrib/ringcache.service");
    let allowed = allowed_syscalls(&unit_value(&unit, "SystemCallFilter"));
    let (uid, gid) = (61184, 61184);
    let mut used: Vec<String> = Vec::new();
    for engine in ["auto", "epoll"] {
        let out = TempDir::new("strace");
        if running_as_root() {
            std::os::unix::fs::chown(&out.0, Some(uid), Some(gid)).unwrap();
        }
        let trace = out.0.join("trace");
        let wrap: Vec<String> = ["strace", "-f", "-qq", "-o"]
            .into_iter()
            .map(String::from)
            .chain([trace.to_string_lossy().into_owned()])
            .collect();
        let mut args = opts(&unit_value(&unit, "Environment"));
        args.extend(["--io-engine", engine, "-t", "2"].map(String::from));
        let server = start("strace", &wrap, &args, uid, gid);
        let served = server.talk();
        let load = Command::new(rc_load())
            .arg("--server")
            .arg(format!("127.0.0.1:{}", server.port))
            .args(["--conns", "8", "--requests", "4000", "--quiet"])
            .output()
            .unwrap();
        assert!(load.status.success(), "rc-load: {load:?}");
        server.stop();
        let text = fs::read_to_string(&trace).unwrap();
        for line in text.lines() {
            // "PID name(args) = result"; skip "PID <... name resumed>", signals, exits.
            let call = line
                .split_once(' ')
                .map_or("", |(_, rest)| rest.trim_start());
            if let Some((name, _)) = call.split_once('(') {
                if !name.is_empty()
                    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    && !used.iter().any(|u| u == name)
                {
                    used.push(name.to_string());
                }
            }
        }
        eprintln!(
            "--io-engine {engine} ({served}): {} distinct system calls so far",
            used.len()
        );
    }
    assert!(
        used.iter().any(|u| u == "epoll_wait"),
        "no epoll_wait traced: {used:?}"
    );
    let refused: Vec<&String> = used.iter().filter(|u| !allowed.contains(u)).collect();
    assert!(
        refused.is_empty(),
        "contrib/ringcache.service's SystemCallFilter= refuses {refused:?}, which ringcache calls"
    );
}
