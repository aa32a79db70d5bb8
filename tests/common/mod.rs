//! Integration-test harness: starts memcached or ringcache on an ephemeral port, talks
//! to it over blocking sockets where every read and wait has a deadline, and kills and
//! reaps the server on drop (so a panicking test leaves no process behind).
//!
//! - [`Server`] owns one server process, its temp dir (port file, log) and its port.
//! - [`Client`] (`client.rs`) is a `TcpStream` plus a read buffer; its reads never
//!   block past a deadline and report a close (EOF or reset) as a value, not a hang.
//! - `sys.rs` holds the few raw libc calls (signals, socket options, rlimit, probe).
//! - [`both_engines!`] turns one test body into one `#[test]` per ringcache engine, plus
//!   (on request) an ignored reference run against memcached that checks the test itself.
//! - [`rc_load`] builds the load generator (`ringcache-tools`) for tests that drive it.
//!
//! Ports are learnt from `MEMCACHED_PORT_FILENAME` (`TCP INET: <port>` lines), which
//! both servers write through a temp file renamed into place once they listen. memcached
//! is asked for an ephemeral port with `-p -1` (its `-p 0` turns TCP off); ringcache with
//! `-p 0`.
#![allow(dead_code)]

mod client;
mod sys;

pub use client::*;

use std::fs::{self, File};
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The longest any single read, reply or wait may take before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a server may take to write its port file.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause inside polling loops (which always have a deadline).
pub const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// The ringcache I/O engine a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Epoll,
    Uring,
    /// `--io-engine auto`: io_uring where the kernel allows it, else epoll.
    Auto,
}

impl Engine {
    pub fn flag(self) -> &'static str {
        match self {
            Engine::Epoll => "epoll",
            Engine::Uring => "uring",
            Engine::Auto => "auto",
        }
    }

    /// Why this engine cannot run on this machine, if it cannot.
    pub fn unavailable(self) -> Option<String> {
        match self {
            Engine::Epoll | Engine::Auto => None,
            Engine::Uring => sys::probe_io_uring()
                .err()
                .map(|e| format!("io_uring_setup failed: {e}")),
        }
    }
}

/// Which server a test talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavor {
    /// Debian's memcached, the reference.
    Memcached,
    /// The newest memcached release, where the workplace provides it
    /// ([`newest_memcached_path`]).
    MemcachedNewest,
    Ringcache(Engine),
}

impl Flavor {
    pub fn is_memcached(self) -> bool {
        matches!(self, Flavor::Memcached | Flavor::MemcachedNewest)
    }
}

/// The newest memcached release beside the checkout (`../shared/reference/`), if there.
pub fn newest_memcached_path() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/reference/memcached-1.6.45");
    path.is_file().then_some(path)
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flavor::Memcached => write!(f, "memcached"),
            Flavor::MemcachedNewest => write!(f, "memcached-newest"),
            Flavor::Ringcache(e) => write!(f, "ringcache/{}", e.flag()),
        }
    }
}

/// Decides whether a ringcache test on `engine` runs. `None` means run it; otherwise the
/// reason was printed as a SKIP line. With `RINGCACHE_REQUIRE_URING=1` a missing
/// io_uring fails the test instead, so CI on a capable kernel cannot skip silently.
pub fn skip_reason(engine: Engine) -> Option<String> {
    let why = engine.unavailable()?;
    if std::env::var_os("RINGCACHE_REQUIRE_URING").is_some_and(|v| v == "1") {
        panic!(
            "engine {} required (RINGCACHE_REQUIRE_URING=1) but {why}",
            engine.flag()
        );
    }
    eprintln!("SKIPPED ({} engine): {why}", engine.flag());
    Some(why)
}

/// One test body, one `#[test]` per ringcache engine: `name::epoll` and `name::uring`.
/// The body receives a [`Flavor`]. With a leading `reference;`, an `#[ignore]`d
/// `name::memcached` runs the same body against memcached, to check the test itself
/// (`cargo test -- --ignored`).
macro_rules! both_engines {
    (@engines $flavor:ident $body:block) => {
        fn body($flavor: $crate::common::Flavor) $body

        #[test]
        fn epoll() {
            body($crate::common::Flavor::Ringcache($crate::common::Engine::Epoll));
        }

        #[test]
        fn uring() {
            if $crate::common::skip_reason($crate::common::Engine::Uring).is_none() {
                body($crate::common::Flavor::Ringcache($crate::common::Engine::Uring));
            }
        }
    };
    (reference; $(#[$meta:meta])* fn $name:ident($flavor:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            both_engines!(@engines $flavor $body);

            #[test]
            #[ignore = "reference run against memcached (checks the test, not ringcache)"]
            fn memcached() {
                body($crate::common::Flavor::Memcached);
            }
        }
    };
    ($(#[$meta:meta])* fn $name:ident($flavor:ident) $body:block) => {
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            both_engines!(@engines $flavor $body);
        }
    };
}

/// A temp directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "ringcache-test-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path)
            .unwrap_or_else(|e| panic!("cannot create temp dir {}: {e}", path.display()));
        TempDir(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Where memcached is, or a panic that says how to get it.
pub fn memcached_path() -> PathBuf {
    find_program("memcached").unwrap_or_else(|| {
        panic!(
            "memcached is not installed (not in PATH nor /usr/bin): the differential and \
             reference tests need Debian's memcached 1.6 -- `apt-get install memcached` \
             (ci/test.sh installs it)"
        )
    })
}

/// Finds an executable in `PATH`, then in `/usr/bin`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A running server process. Dropping it kills (SIGKILL) and reaps the process; the
/// process also gets SIGKILL if the thread that started it exits, so start servers on
/// the test's own thread.
pub struct Server {
    flavor: Flavor,
    child: Child,
    port: u16,
    args: Vec<String>,
    exit: Option<ExitStatus>,
    dir: TempDir,
}

impl Server {
    /// memcached on 127.0.0.1, an ephemeral port, no UDP, `-t 1 -m 64` unless `args`
    /// say otherwise.
    pub fn memcached(args: &[&str]) -> Server {
        Server::start(Flavor::Memcached, args)
    }

    /// ringcache on `engine`, with the same defaults as [`Server::memcached`].
    pub fn ringcache(engine: Engine, args: &[&str]) -> Server {
        Server::start(Flavor::Ringcache(engine), args)
    }

    pub fn start(flavor: Flavor, args: &[&str]) -> Server {
        Server::start_with(flavor, args, |_| {})
    }

    /// [`Server::start`] with the open-file limit (soft and hard) of the server process
    /// set to `files` before it runs, so it cannot raise it.
    pub fn start_with_nofile(flavor: Flavor, args: &[&str], files: u64) -> Server {
        Server::start_with(flavor, args, |command| sys::limit_nofile(command, files))
    }

    /// [`Server::start`], letting `setup` adjust the command before it is spawned.
    pub fn start_with(flavor: Flavor, args: &[&str], setup: impl FnOnce(&mut Command)) -> Server {
        let (program, mut argv): (PathBuf, Vec<String>) = match flavor {
            Flavor::Memcached | Flavor::MemcachedNewest => {
                let mut v = vec!["-p".to_string(), "-1".to_string()];
                if sys::is_root() {
                    v.extend(["-u".to_string(), "root".to_string()]);
                }
                let path = match flavor {
                    Flavor::MemcachedNewest => newest_memcached_path()
                        .expect("the newest memcached is not beside this checkout"),
                    _ => memcached_path(),
                };
                (path, v)
            }
            Flavor::Ringcache(engine) => (
                PathBuf::from(env!("CARGO_BIN_EXE_ringcache")),
                vec![
                    "-p".to_string(),
                    "0".to_string(),
                    "--io-engine".to_string(),
                    engine.flag().to_string(),
                ],
            ),
        };
        argv.extend(["-l", "127.0.0.1", "-U", "0"].map(String::from));
        let given = |flag: &str| args.contains(&flag);
        if !given("-t") {
            argv.extend(["-t", "1"].map(String::from));
        }
        if !given("-m") {
            argv.extend(["-m", "64"].map(String::from));
        }
        argv.extend(args.iter().map(|a| a.to_string()));

        let dir = TempDir::new(match flavor {
            Flavor::Memcached | Flavor::MemcachedNewest => "memcached",
            Flavor::Ringcache(_) => "ringcache",
        });
        let port_file = dir.0.join("port");
        let log_path = dir.0.join("log");
        let log = File::create(&log_path).expect("create server log");
        let mut command = Command::new(&program);
        sys::kill_with_parent(&mut command);
        setup(&mut command);
        let child = command
            .args(&argv)
            .env("MEMCACHED_PORT_FILENAME", &port_file)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {argv:?}: {e}", program.display()));
        let mut server = Server {
            flavor,
            child,
            port: 0,
            args: argv,
            exit: None,
            dir,
        };
        server.port = server.wait_for_port(&port_file);
        server
    }

    fn wait_for_port(&mut self, port_file: &Path) -> u16 {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(text) = fs::read_to_string(port_file) {
                let port = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("TCP INET: "))
                    .find_map(|p| p.trim().parse::<u16>().ok());
                match port {
                    Some(port) if port != 0 => return port,
                    // The file is renamed into place complete: no TCP line means none.
                    _ => panic!(
                        "{} wrote its port file without a `TCP INET: <port>` line: {text:?}\n\
                         args: {:?}\nlog:\n{}",
                        self.flavor,
                        self.args,
                        self.log()
                    ),
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                self.exit = Some(status);
                panic!(
                    "{} exited ({status}) before listening\nargs: {:?}\nlog:\n{}",
                    self.flavor,
                    self.args,
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not write its port file within {START_TIMEOUT:?}\nargs: {:?}\nlog:\n{}",
                    self.flavor,
                    self.args,
                    self.log()
                );
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Every TCP port the server wrote to its port file, in its listeners' order (the
    /// first is [`Server::port`]).
    pub fn tcp_ports(&self) -> Vec<u16> {
        fs::read_to_string(self.dir.0.join("port"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once(": ")?.1.trim().parse().ok())
            .collect()
    }

    /// What the server printed on stdout and stderr so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.0.join("log")).unwrap_or_default()
    }

    /// Resident set size, from `/proc/PID/smaps_rollup` (`Rss:`; `VmRSS` in
    /// `/proc/PID/status` was once seen far below the truth on this kernel).
    pub fn rss_bytes(&self) -> u64 {
        let path = format!("/proc/{}/smaps_rollup", self.pid());
        let text = fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} (pid {}): {path}: {e}", self.flavor, self.pid()));
        let kib: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("Rss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no Rss line in {path}"));
        kib * 1024
    }

    /// A new connection with TCP_NODELAY and the default timeouts.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr())
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) to the server.
    pub fn signal(&self, sig: libc::c_int) {
        sys::kill(self.pid(), sig).unwrap_or_else(|e| panic!("kill {}: {e}", self.pid()));
    }

    /// Waits up to `timeout` for the server to exit; `None` if it is still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.exit {
                return Some(status);
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exit = Some(status);
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// What went wrong inside the server, if anything shows: its exit status if it has
    /// exited, and any `panicked` line of its log.
    pub fn trouble(&mut self) -> Option<String> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait");
        }
        let log = self.log();
        let panic = log.lines().find(|l| l.contains("panicked"));
        match (self.exit, panic) {
            (None, None) => None,
            (exit, panic) => Some(format!(
                "server {}{}",
                exit.map(|s| format!("exited ({s})"))
                    .unwrap_or_else(|| "running".into()),
                panic.map(|p| format!("; log: {p}")).unwrap_or_default()
            )),
        }
    }

    /// Panics (with the log) if the server has died.
    pub fn assert_alive(&mut self) {
        if let Some(status) = self.child.try_wait().expect("try_wait") {
            self.exit = Some(status);
            panic!("{} died: {status}\nlog:\n{}", self.flavor, self.log());
        }
    }

    /// Appends what went wrong with the server (an exit, a panic line), if anything, to
    /// a case's `note`.
    pub fn add_trouble_to(&mut self, note: &mut Option<String>) {
        if let Some(trouble) = self.trouble() {
            let before = note.take().map(|n| format!("{n}; ")).unwrap_or_default();
            *note = Some(format!("{before}{trouble}"));
        }
    }

    /// Polls `stats` on a fresh connection until `curr_connections` equals `want`
    /// (counting that probe connection itself), within `timeout`.
    pub fn wait_curr_connections(&self, want: u64, timeout: Duration) {
        let mut probe = self.connect();
        if let Err(now) = probe.wait_curr_connections(want, timeout) {
            panic!(
                "{}: curr_connections stayed {now}, expected {want} within {timeout:?}",
                self.flavor
            );
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls `cond` until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// A deterministic value for item `n`: `len` bytes, printable, different per `n`.
pub fn value_for(n: u64, len: usize) -> Vec<u8> {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            b'a' + (x % 26) as u8
        })
        .collect()
}

/// Sends `sig` to process `pid` (e.g. a tool the test started).
pub fn signal_pid(pid: u32, sig: libc::c_int) -> io::Result<()> {
    sys::kill(pid, sig)
}

/// Raises this process's open-file limit to at least `want` (up to the hard limit).
pub fn raise_fd_limit(want: u64) {
    let have = sys::raise_nofile(want).expect("setrlimit(RLIMIT_NOFILE)");
    assert!(
        have >= want,
        "this test needs {want} open files but the hard limit is {have} (ulimit -Hn)"
    );
}

/// Checks a differential case table: at least `min` cases, unique names, and every
/// deviation naming a case that exists.
#[allow(dead_code)]
pub fn check_case_table(names: &[&str], min: usize, deviation_cases: &[&str]) {
    assert!(names.len() >= min, "only {} cases", names.len());
    let mut sorted = names.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "duplicate case names");
    for case in deviation_cases {
        assert!(sorted.contains(case), "deviation for unknown case {case}");
    }
}

/// Sets TCP_CORK on `stream` (see `sys::set_cork`).
pub fn set_cork(stream: &std::net::TcpStream, on: bool) {
    sys::set_cork(stream, on).expect("setsockopt(TCP_CORK)");
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    sys::is_root()
}

/// rc-load for this test's profile. It is in the `ringcache-tools` package, whose
/// binaries Cargo does not build for this package's tests, so this builds it (a no-op
/// when it is up to date) into the target directory this test runs from.
pub fn rc_load() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // <target>/<profile>/deps/<test>-<hash>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("<target>/<profile>");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") => "dev",
        Some(name) => name,
        None => panic!("no profile directory above {}", exe.display()),
    };
    let target_dir = profile_dir.parent().expect("<target>");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--quiet", "--profile", profile, "--bin", "rc-load"])
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/tools/Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .status()
        .expect("run cargo");
    assert!(built.success(), "cargo build rc-load: {built}");
    profile_dir.join("rc-load")
}
