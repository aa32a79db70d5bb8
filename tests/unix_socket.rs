//! Unix domain sockets (`-s PATH`, `-a MASK`), checked against memcached 1.6.18's
//! behaviour: with `-s` there is no TCP listener at all (and no port file), the file gets
//! exactly the `-a` mode, a stale socket file is replaced while any other file is left
//! alone (refusing to start), the file stays after exit, and under `-u` it belongs to
//! that user. Each test also has an ignored reference run against memcached.

#[macro_use]
mod common;

use common::{Flavor, Server};
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

/// A server started with `-s`, killed on drop.
struct UnixServer {
    flavor: Flavor,
    path: PathBuf,
    child: Child,
    log: PathBuf,
    exit: Option<ExitStatus>,
}

impl UnixServer {
    /// Starts `flavor` with `-s path` plus `args`; `MEMCACHED_PORT_FILENAME` points at
    /// `port_file`. Does not wait for the socket.
    fn spawn(flavor: Flavor, path: &Path, port_file: &Path, args: &[&str]) -> UnixServer {
        let (program, mut argv) = match flavor {
            Flavor::Memcached | Flavor::MemcachedNewest => {
                let mut v: Vec<String> = vec!["-U".into(), "0".into()];
                if is_root() && !args.contains(&"-u") {
                    v.extend(["-u".into(), "root".into()]);
                }
                (common::memcached_path(), v)
            }
            Flavor::Ringcache(engine) => (
                PathBuf::from(env!("CARGO_BIN_EXE_ringcache")),
                vec!["--io-engine".into(), engine.flag().into()],
            ),
        };
        argv.extend(["-t", "2", "-s"].map(String::from));
        argv.push(path.display().to_string());
        argv.extend(args.iter().map(|a| a.to_string()));
        let log = port_file.with_extension("log");
        let out = fs::File::create(&log).expect("create log");
        let child = Command::new(&program)
            .args(&argv)
            .env("MEMCACHED_PORT_FILENAME", port_file)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("dup log"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} {argv:?}: {e}", program.display()));
        UnixServer {
            flavor,
            path: path.to_path_buf(),
            child,
            log,
            exit: None,
        }
    }

    /// Starts the server and waits until the socket accepts a connection.
    fn start(flavor: Flavor, path: &Path, port_file: &Path, args: &[&str]) -> UnixServer {
        let mut server = UnixServer::spawn(flavor, path, port_file, args);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if UnixStream::connect(path).is_ok() {
                return server;
            }
            if let Some(status) = server.child.try_wait().expect("try_wait") {
                server.exit = Some(status);
                panic!(
                    "{flavor} exited ({status}) before listening on {}\nlog:\n{}",
                    path.display(),
                    server.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{flavor}: {} not accepting within {TIMEOUT:?}\nlog:\n{}",
                path.display(),
                server.log()
            );
            std::thread::sleep(common::POLL_INTERVAL);
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the process to exit, failing after `TIMEOUT`.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.exit {
                return status;
            }
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.exit = Some(status);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running after {TIMEOUT:?}",
                self.flavor
            );
            std::thread::sleep(common::POLL_INTERVAL);
        }
    }
}

impl Drop for UnixServer {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // After a SIGKILL the kernel tears an io_uring ring down asynchronously, and a
        // listening socket its pending accept holds keeps accepting for a moment after
        // the process is gone: wait until it stops, so the next server's readiness check
        // cannot connect to the old one.
        common::wait_until(TIMEOUT, || UnixStream::connect(&self.path).is_err());
    }
}

fn is_root() -> bool {
    fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A unix-socket connection whose reads give up after `TIMEOUT`.
struct Conn(UnixStream);

impl Conn {
    fn open(path: &Path) -> Conn {
        let s =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        s.set_read_timeout(Some(TIMEOUT)).expect("SO_RCVTIMEO");
        s.set_write_timeout(Some(TIMEOUT)).expect("SO_SNDTIMEO");
        Conn(s)
    }

    /// Sends `req` and reads until the reply ends with `end` (and is at least as long).
    fn ask(&mut self, req: &[u8], end: &[u8]) -> Vec<u8> {
        self.0.write_all(req).expect("send");
        let mut reply = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        while !reply.ends_with(end) {
            let n = match self.0.read(&mut buf) {
                // A signal to the test process (seen under load); the read timeout
                // still bounds the wait.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => other,
            };
            let n = n.unwrap_or_else(|e| {
                panic!(
                    "reading the reply to {}: {e}; so far {}",
                    common::show(&req[..req.len().min(80)]),
                    common::show(&reply)
                )
            });
            assert!(n > 0, "closed; so far {}", common::show(&reply));
            reply.extend_from_slice(&buf[..n]);
        }
        reply
    }
}

/// The TCP ports process `pid` has a socket on (any state), from `/proc`: the socket
/// inodes among its fds, looked up in its network namespace's tcp and tcp6 tables.
fn tcp_ports_of(pid: u32) -> Vec<u16> {
    let mut inodes = Vec::new();
    for entry in fs::read_dir(format!("/proc/{pid}/fd")).expect("read /proc/PID/fd") {
        let Ok(link) = fs::read_link(entry.expect("fd entry").path()) else {
            continue;
        };
        let link = link.display().to_string();
        if let Some(inode) = link
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
        {
            inodes.push(inode.to_string());
        }
    }
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 9 && inodes.iter().any(|i| i == cols[9]) {
                let port = cols[1].rsplit(':').next().unwrap_or("0");
                ports.push(u16::from_str_radix(port, 16).expect("hex port"));
            }
        }
    }
    ports
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

both_engines! {
    reference;
    /// set/get/delete/incr over the socket, on several connections (two workers share
    /// the one socket), including a value larger than the socket buffers.
    fn get_and_set_over_the_socket(flavor) {
        let dir = common::TempDir::new("getset");
        let path = dir.join("rc.sock");
        let _server = UnixServer::start(flavor, &path, &dir.join("port"), &[]);
        let mut conns: Vec<Conn> = (0..4).map(|_| Conn::open(&path)).collect();
        for (i, c) in conns.iter_mut().enumerate() {
            let set = format!("set k{i} {i} 0 5\r\nval-{i}\r\n");
            assert_eq!(c.ask(set.as_bytes(), b"\r\n"), b"STORED\r\n", "{flavor}");
        }
        for (i, c) in conns.iter_mut().rev().enumerate() {
            let j = 3 - i;
            let want = format!("VALUE k{j} {j} 5\r\nval-{j}\r\nEND\r\n");
            assert_eq!(c.ask(format!("get k{j}\r\n").as_bytes(), b"END\r\n"), want.as_bytes());
        }
        let c = &mut conns[0];
        assert_eq!(c.ask(b"set n 0 0 1\r\n7\r\nincr n 5\r\n", b"12\r\n"), b"STORED\r\n12\r\n");
        assert_eq!(c.ask(b"delete k1\r\n", b"\r\n"), b"DELETED\r\n");
        assert_eq!(c.ask(b"get k1\r\n", b"END\r\n"), b"END\r\n");
        let big = common::value_for(9, 700 * 1024);
        let mut set = format!("set big 0 0 {}\r\n", big.len()).into_bytes();
        set.extend_from_slice(&big);
        set.extend_from_slice(b"\r\n");
        assert_eq!(c.ask(&set, b"\r\n"), b"STORED\r\n");
        let reply = conns[3].ask(b"get big\r\n", b"\r\nEND\r\n");
        assert_eq!(common::parse_get_reply(&reply, "big"), Some(big), "{flavor}");
    }
}

both_engines! {
    reference;
    /// `-a` sets exactly the socket file's mode bits (default 700), whatever the umask.
    fn mask_sets_the_mode_bits(flavor) {
        let dir = common::TempDir::new("mask");
        for (args, want) in [
            (&[][..], 0o700),
            (&["-a", "750"][..], 0o750),
            (&["-a", "777"][..], 0o777),
            (&["-a", "600"][..], 0o600),
        ] {
            let path = dir.join("m.sock");
            let server = UnixServer::start(flavor, &path, &dir.join("port"), args);
            let meta = fs::metadata(&path).expect("stat socket");
            assert!(meta.file_type().is_socket(), "{flavor}: not a socket");
            assert_eq!(mode_of(&path), want, "{flavor} {args:?}: mode {:o}", mode_of(&path));
            drop(server);
        }
    }
}

both_engines! {
    reference;
    /// With `-s`, TCP is off even when `-p` and `-l` are given, as in memcached: the
    /// process has no TCP socket at all and writes no `MEMCACHED_PORT_FILENAME` file.
    fn no_tcp_port_when_a_socket_is_given(flavor) {
        // The /proc check finds a TCP listener where there is one.
        let tcp = match flavor {
            Flavor::Ringcache(engine) => Server::ringcache(engine, &[]),
            memcached => Server::start(memcached, &[]),
        };
        assert!(
            tcp_ports_of(tcp.pid()).contains(&tcp.port()),
            "the /proc check does not see {flavor}'s TCP port {}",
            tcp.port()
        );
        drop(tcp);

        let dir = common::TempDir::new("notcp");
        let path = dir.join("rc.sock");
        let port_file = dir.join("port");
        let server = UnixServer::start(flavor, &path, &port_file, &["-p", "0", "-l", "127.0.0.1"]);
        Conn::open(&path).ask(b"version\r\n", b"\r\n");
        assert_eq!(tcp_ports_of(server.pid()), Vec::<u16>::new(), "{flavor} has TCP sockets");
        assert!(!port_file.exists(), "{flavor} wrote a port file with -s");
    }
}

both_engines! {
    reference;
    /// A socket file left behind by an earlier process is replaced; a file that is not
    /// a socket is left alone and the server refuses to start, naming the path.
    fn stale_socket_is_replaced_other_files_are_not(flavor) {
        let dir = common::TempDir::new("stale");
        let path = dir.join("rc.sock");
        drop(UnixListener::bind(&path).expect("bind a stale socket"));
        assert!(UnixStream::connect(&path).is_err(), "the stale socket still accepts");
        let server = UnixServer::start(flavor, &path, &dir.join("port"), &[]);
        assert_eq!(Conn::open(&path).ask(b"get x\r\n", b"END\r\n"), b"END\r\n");
        drop(server);

        let file = dir.join("plain");
        fs::write(&file, b"not a socket").unwrap();
        let mut server = UnixServer::spawn(flavor, &file, &dir.join("port2"), &[]);
        let status = server.wait_exit();
        assert!(!status.success(), "{flavor} started over a regular file");
        assert_eq!(fs::read(&file).unwrap(), b"not a socket", "{flavor} touched the file");
        assert!(
            server.log().contains(&file.display().to_string()),
            "{flavor}: the error does not name the path:\n{}",
            server.log()
        );
    }
}

both_engines! {
    reference;
    /// SIGTERM ends the server with status 0 and, as memcached, leaves the socket file
    /// in place; the next start replaces it and serves.
    fn socket_file_stays_after_exit_and_is_reused(flavor) {
        let dir = common::TempDir::new("exit");
        let path = dir.join("rc.sock");
        let mut server = UnixServer::start(flavor, &path, &dir.join("port"), &[]);
        let mut conn = Conn::open(&path);
        assert_eq!(conn.ask(b"set a 0 0 1\r\nx\r\n", b"\r\n"), b"STORED\r\n");
        common::signal_pid(server.pid(), libc::SIGTERM).expect("kill");
        let status = server.wait_exit();
        assert!(status.success(), "{flavor}: {status}\n{}", server.log());
        let meta = fs::symlink_metadata(&path).expect("the socket file is gone");
        assert!(meta.file_type().is_socket());
        drop(server);
        let _again = UnixServer::start(flavor, &path, &dir.join("port"), &[]);
        assert_eq!(Conn::open(&path).ask(b"get a\r\n", b"END\r\n"), b"END\r\n");
    }
}

/// The uid of user `nobody`, from /etc/passwd.
fn nobody_uid() -> Option<u32> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .and_then(|l| l.split(':').nth(2))
        .and_then(|uid| uid.parse().ok())
}

both_engines! {
    reference;
    /// Started as root with `-u nobody`, the socket is created after privileges are
    /// dropped, so the file belongs to `nobody` (as memcached's does).
    fn socket_belongs_to_the_u_user(flavor) {
        if !is_root() {
            eprintln!("SKIPPED: needs root to test -u (running as uid {})", fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0));
            return;
        }
        let uid = nobody_uid().expect("no user nobody in /etc/passwd");
        let dir = common::TempDir::new("user");
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o1777)).unwrap();
        let path = dir.join("rc.sock");
        let _server = UnixServer::start(flavor, &path, &dir.join("port"), &["-u", "nobody", "-a", "777"]);
        assert_eq!(fs::metadata(&path).unwrap().uid(), uid, "{flavor}: socket owner");
        assert_eq!(Conn::open(&path).ask(b"get a\r\n", b"END\r\n"), b"END\r\n");
    }
}
