//! What an operator (or a script) sees of the server as a process, compared with
//! memcached 1.6.18: half-closed clients (`printf 'stats\r\n' | nc -N`), two servers on one
//! port, signals, the version it reports, and startup flags and errors.

#[macro_use]
mod common;

use common::*;
use std::io::Write;
use std::net::Shutdown;
use std::time::Instant;

/// How many times each half-close case is repeated: the lost reply was a race.
const HALF_CLOSE_ROUNDS: usize = 100;

/// Sends `request` and shuts down the sending side, TCP_CORKed (request and FIN in one
/// segment) or not (request, then FIN); returns everything received and how it ended.
fn send_then_half_close(server: &Server, request: &[u8], cork: bool) -> (Vec<u8>, Option<Closed>) {
    let mut client = server.connect();
    // A small receive buffer makes a large answer fill the server's socket, so the
    // server sees the FIN while output is still waiting.
    client.set_recv_buffer(64 * 1024);
    if cork {
        set_cork(&client.stream, true);
    }
    client.stream.write_all(request).expect("send request");
    client
        .stream
        .shutdown(Shutdown::Write)
        .expect("shutdown(SHUT_WR)");
    client.read_to_close(Instant::now() + IO_TIMEOUT)
}

/// Runs one half-close case `HALF_CLOSE_ROUNDS` times: every reply complete, then a FIN.
fn check_half_close(server: &Server, request: &[u8], want: &[u8], cork: bool) {
    for round in 0..HALF_CLOSE_ROUNDS {
        let (got, how) = send_then_half_close(server, request, cork);
        assert!(
            got == want && how == Some(Closed::Eof),
            "{}: round {round} (cork {cork}): got {} bytes {} closed {how:?}, want {} bytes",
            server.flavor(),
            got.len(),
            show(&got),
            want.len()
        );
    }
}

fn get_reply(key: &str, value: &[u8]) -> Vec<u8> {
    let mut r = format!("VALUE {key} 0 {}\r\n", value.len()).into_bytes();
    r.extend_from_slice(value);
    r.extend_from_slice(b"\r\nEND\r\n");
    r
}

both_engines! { reference;
    /// Request and FIN in one segment (TCP_CORK, then shutdown(SHUT_WR)): the uring
    /// engine took the FIN for a vanished peer and dropped the answer, every time.
    fn half_close_request_and_fin_in_one_segment(flavor) {
        let server = Server::start(flavor, &[]);
        server.connect().set("hc", b"hello");
        check_half_close(&server, b"get hc\r\n", &get_reply("hc", b"hello"), true);
        check_half_close(&server, b"set hc2 0 0 2\r\nok\r\n", b"STORED\r\n", true);
    }
}

both_engines! { reference;
    /// Request, then FIN in a segment of its own (plain `nc -N`).
    fn half_close_request_then_fin(flavor) {
        let server = Server::start(flavor, &[]);
        server.connect().set("hc", b"hello");
        check_half_close(&server, b"get hc\r\n", &get_reply("hc", b"hello"), false);
    }
}

both_engines! { reference;
    /// A pipelined batch then FIN: every request of the batch is answered.
    fn half_close_after_pipelined_batch(flavor) {
        let server = Server::start(flavor, &[]);
        server.connect().set("hc", b"hello");
        let one = get_reply("hc", b"hello");
        let batch = b"get hc\r\n".repeat(64);
        let want = one.repeat(64);
        check_half_close(&server, &batch, &want, true);
        check_half_close(&server, &batch, &want, false);
    }
}

both_engines! { reference;
    /// A large value's get then FIN: the answer takes many sends (or fills the socket
    /// buffer), all of it arrives before the close.
    fn half_close_large_value_get(flavor) {
        let server = Server::start(flavor, &[]);
        let value = value_for(7, 512 * 1024);
        server.connect().set("big", &value);
        let want = get_reply("big", &value);
        check_half_close(&server, b"get big\r\n", &want, true);
        check_half_close(&server, b"get big\r\n", &want, false);
    }
}

both_engines! { reference;
    /// `version`, binary VERSION and `stats`' `version` answer a plain memcached version
    /// number (clients parse `/(\d+)\.(\d+)\.(\d+)$/`); ringcache's own version is the
    /// last-group `ringcache_version` stat. They answered `1.6.18-ringcache-0.1.0`.
    fn version_is_a_plain_memcached_number(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        conn.roundtrip(b"version\r\n", b"VERSION 1.6.18\r\n");
        let stats = conn.stats();
        assert_eq!(stats["version"], "1.6.18", "{flavor}");
        if !flavor.is_memcached() {
            assert_eq!(stats["ringcache_version"], env!("CARGO_PKG_VERSION"));
        }
        // Binary VERSION (a connection's first byte picks its dialect): a 24-byte
        // request header, opcode 0x0b.
        let mut conn = server.connect();
        let mut request = [0u8; 24];
        request[0] = 0x80;
        request[1] = 0x0b;
        conn.send(&request);
        let header = conn.read_exact_bytes(24);
        assert_eq!((header[0], header[1], header[7]), (0x81, 0x0b, 0), "{flavor}");
        let body_len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
        assert_eq!(conn.read_exact_bytes(body_len as usize), b"1.6.18", "{flavor}");
    }
}

/// `-V` names ringcache's own version and the memcached protocol level it speaks.
#[test]
fn dash_v_prints_ringcache_version() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .arg("-V")
        .output()
        .expect("run ringcache -V");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(env!("CARGO_PKG_VERSION")) && text.contains("1.6.18"),
        "{text}"
    );
}

/// Polls the server's log until it holds `needle` (ringcache logs each signal at -v).
fn wait_for_log(server: &Server, needle: &str) {
    assert!(
        wait_until(IO_TIMEOUT, || server.log().contains(needle)),
        "{}: no {needle:?} in the log:\n{}",
        server.flavor(),
        server.log()
    );
}

both_engines! { reference;
    /// SIGHUP is ignored, as by memcached 1.6.18 (ringcache died of it).
    fn sighup_is_ignored(flavor) {
        let mut server = Server::start(flavor, &["-v"]);
        let mut conn = server.connect();
        conn.set("k", b"v");
        server.signal(libc::SIGHUP);
        if !flavor.is_memcached() {
            wait_for_log(&server, "SIGHUP");
        }
        assert_eq!(conn.get("k").as_deref(), Some(&b"v"[..]), "{flavor}");
        server.assert_alive();
        assert_eq!(server.connect().version(), "VERSION 1.6.18");
    }
}

both_engines! { reference;
    /// SIGUSR1 stops gracefully: exit status 0, and an answer still waiting in the
    /// server's socket (a client that reads slowly) is sent in full before the close.
    fn sigusr1_stops_gracefully(flavor) {
        let mut server = Server::start(flavor, &["-v"]);
        let value = value_for(3, 512 * 1024);
        server.connect().set("big", &value);
        let mut slow = server.connect();
        slow.set_recv_buffer(16 * 1024);
        slow.send(b"get big\r\n");
        // The answer has begun to arrive: the server is in the middle of sending it.
        let _ = slow.read_some(1, Instant::now() + IO_TIMEOUT);
        server.signal(libc::SIGUSR1);
        let (got, how) = slow.read_to_close(Instant::now() + IO_TIMEOUT);
        assert_eq!(how, Some(Closed::Eof), "{flavor}");
        assert!(got == get_reply("big", &value), "{flavor}: got {} bytes", got.len());
        let status = server.wait_exit(IO_TIMEOUT).expect("exits after SIGUSR1");
        assert_eq!(status.code(), Some(0), "{flavor}: {status}");
        if !flavor.is_memcached() {
            assert!(server.log().contains("SIGUSR1"), "{}", server.log());
        }
    }
}

both_engines! { reference;
    /// SIGUSR2: memcached 1.6.18 does not handle it, so it dies of it; ringcache too,
    /// after a log line.
    fn sigusr2_terminates_as_unhandled(flavor) {
        use std::os::unix::process::ExitStatusExt;
        let mut server = Server::start(flavor, &["-v"]);
        server.connect().version();
        server.signal(libc::SIGUSR2);
        let status = server.wait_exit(IO_TIMEOUT).expect("exits after SIGUSR2");
        assert_eq!(status.signal(), Some(libc::SIGUSR2), "{flavor}: {status}");
        if !flavor.is_memcached() {
            assert!(server.log().contains("SIGUSR2"), "{}", server.log());
        }
    }
}

both_engines! { reference;
    /// SIGPIPE (sent, or from writing to a vanished client) is ignored.
    fn sigpipe_is_ignored(flavor) {
        let mut server = Server::start(flavor, &["-v"]);
        let mut conn = server.connect();
        server.signal(libc::SIGPIPE);
        // A client that vanishes with an answer in flight.
        let value = value_for(5, 256 * 1024);
        conn.set("big", &value);
        let mut gone = server.connect();
        gone.set_linger_zero();
        gone.send(b"get big\r\nget big\r\nget big\r\n");
        drop(gone);
        assert_eq!(conn.version(), "VERSION 1.6.18");
        server.assert_alive();
    }
}

/// Runs ringcache (or memcached) with `args` until it exits or `timeout` passes (then
/// kills it): its exit status (`None`: still running at the deadline) and its stderr and
/// stdout.
fn run_to_exit(
    flavor: Flavor,
    args: &[&str],
    env: &[(&str, &std::path::Path)],
    timeout: std::time::Duration,
) -> (Option<std::process::ExitStatus>, String) {
    let dir = TempDir::new("run-to-exit");
    let out_path = dir.join("out");
    let out = std::fs::File::create(&out_path).expect("create output file");
    let (program, mut argv): (std::path::PathBuf, Vec<String>) = match flavor {
        Flavor::Memcached | Flavor::MemcachedNewest => {
            (memcached_path(), vec!["-u".into(), "root".into()])
        }
        Flavor::Ringcache(engine) => (
            env!("CARGO_BIN_EXE_ringcache").into(),
            vec!["--io-engine".into(), engine.flag().into()],
        ),
    };
    argv.extend(["-U", "0", "-t", "1"].map(String::from));
    argv.extend(args.iter().map(|a| a.to_string()));
    let mut command = std::process::Command::new(program);
    command
        .args(&argv)
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone().expect("dup"))
        .stderr(out);
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn");
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    (
        status,
        std::fs::read_to_string(&out_path).unwrap_or_default(),
    )
}

const REFUSAL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

both_engines! { reference;
    /// A second server on a TCP port the first listens on refuses to start (exit 71,
    /// naming the address), as memcached; ringcache's SO_REUSEPORT let it join, and the
    /// kernel spread clients over two caches.
    fn second_server_on_a_tcp_port_is_refused(flavor) {
        let mut first = Server::start(flavor, &[]);
        first.connect().set("k", b"first");
        let port = first.port().to_string();
        let (status, out) =
            run_to_exit(flavor, &["-p", &port, "-l", "127.0.0.1"], &[], REFUSAL_TIMEOUT);
        assert_eq!(status.and_then(|s| s.code()), Some(71), "{flavor}: {status:?}: {out}");
        if !flavor.is_memcached() {
            let addr = format!("127.0.0.1:{port}");
            assert!(out.contains(&format!("cannot bind {addr}: address in use (another memcached?)")), "{out}");
            assert_eq!(out.lines().count(), 1, "printed once: {out}");
        }
        first.assert_alive();
        for _ in 0..20 {
            assert_eq!(first.connect().get("k").as_deref(), Some(&b"first"[..]), "{flavor}");
        }
    }
}

both_engines! {
    /// Same for a unix socket: the second must not remove the first's live socket file.
    fn second_server_on_a_unix_socket_is_refused(flavor) {
        let dir = TempDir::new("unix-twice");
        let path = dir.join("s.sock");
        let spath = path.to_str().expect("utf-8 path");
        let Flavor::Ringcache(engine) = flavor else { unreachable!() };
        let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_ringcache"))
            .args(["--io-engine", engine.flag(), "-U", "0", "-t", "1", "-s", spath])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn first");
        let served = wait_until(IO_TIMEOUT, || std::os::unix::net::UnixStream::connect(&path).is_ok());
        let (status, out) = run_to_exit(flavor, &["-s", spath], &[], REFUSAL_TIMEOUT);
        let alive = first.try_wait().expect("try_wait").is_none();
        let still = std::os::unix::net::UnixStream::connect(&path).and_then(|mut s| {
            use std::io::Read;
            s.write_all(b"version\r\n")?;
            let mut buf = [0u8; 16];
            let n = s.read(&mut buf)?;
            Ok(buf[..n].to_vec())
        });
        let _ = first.kill();
        let _ = first.wait();
        assert!(served, "the first server never served {spath}");
        assert_eq!(status.and_then(|s| s.code()), Some(71), "{status:?}: {out}");
        assert!(out.contains(spath) && out.contains("another memcached?"), "{out}");
        assert!(alive, "the first server died");
        assert_eq!(still.expect("the first still serves its socket"), b"VERSION 1.6.18\r\n");
    }
}

fn settings(conn: &mut Client) -> std::collections::HashMap<String, String> {
    stats_group(conn, "settings")
}

both_engines! { reference;
    /// A repeated flag takes its last value, and -m takes an `m` suffix, as memcached
    /// (ringcache refused `-m 64 -m 128` and `-m 512m`).
    fn repeated_flags_take_the_last_value(flavor) {
        let server = Server::start(flavor, &["-m", "64", "-m", "128", "-I", "2m", "-I", "512k"]);
        let s = settings(&mut server.connect());
        assert_eq!((s["maxbytes"].as_str(), s["item_size_max"].as_str()), ("134217728", "524288"), "{flavor}");
        let server = Server::start(flavor, &["-m", "512m"]);
        assert_eq!(settings(&mut server.connect())["maxbytes"], "536870912", "{flavor}");
    }
}

both_engines! { reference;
    /// -F: flush_all is refused with memcached's words and flushes nothing.
    fn disable_flush_all(flavor) {
        let server = Server::start(flavor, &["-F"]);
        let mut conn = server.connect();
        conn.set("k", b"v");
        conn.roundtrip(b"flush_all\r\n", b"CLIENT_ERROR flush_all not allowed\r\n");
        conn.roundtrip(b"flush_all 0\r\n", b"CLIENT_ERROR flush_all not allowed\r\n");
        conn.roundtrip(b"flush_all noreply\r\nversion\r\n", b"VERSION 1.6.18\r\n");
        assert_eq!(conn.get("k").as_deref(), Some(&b"v"[..]), "{flavor}");
        assert_eq!(settings(&mut conn)["flush_enabled"], "no");
        assert_eq!(settings(&mut server.connect())["cas_enabled"], "yes");
    }
}

both_engines! { reference;
    /// -C: every item shows CAS 0 and no `cas` matches, as memcached.
    fn disable_cas(flavor) {
        let server = Server::start(flavor, &["-C"]);
        let mut conn = server.connect();
        conn.set("a", b"x");
        conn.roundtrip(b"gets a\r\n", b"VALUE a 0 1 0\r\nx\r\nEND\r\n");
        conn.roundtrip(b"cas a 0 0 1 0\r\ny\r\n", b"EXISTS\r\n");
        conn.roundtrip(b"cas a 0 0 1 1\r\ny\r\n", b"EXISTS\r\n");
        conn.roundtrip(b"cas nope 0 0 1 1\r\ny\r\n", b"NOT_FOUND\r\n");
        conn.roundtrip(b"mg a c v\r\n", b"VA 1 c0\r\nx\r\n");
        assert_eq!(conn.get("a").as_deref(), Some(&b"x"[..]), "{flavor}");
        assert_eq!(settings(&mut conn)["cas_enabled"], "no");
    }
}

both_engines! { reference;
    /// Without -A `shutdown` is refused; with it, a bad mode is refused and
    /// `shutdown graceful` stops the server (exit 0), closing the asking connection.
    fn shutdown_command_with_dash_a(flavor) {
        let server = Server::start(flavor, &[]);
        let mut conn = server.connect();
        conn.roundtrip(b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n");
        conn.roundtrip(b"shutdown graceful\r\n", b"ERROR: shutdown not enabled\r\n");
        assert_eq!(settings(&mut conn)["shutdown_command"], "no");
        for how in ["shutdown", "shutdown graceful"] {
            let mut server = Server::start(flavor, &["-A", "-v"]);
            let mut conn = server.connect();
            assert_eq!(settings(&mut conn)["shutdown_command"], "yes");
            conn.roundtrip(b"shutdown foo\r\n", b"CLIENT_ERROR invalid shutdown mode\r\n");
            conn.send(format!("{how}\r\n").as_bytes());
            let (got, closed) = conn.read_to_close(Instant::now() + IO_TIMEOUT);
            assert_eq!((show(&got), closed), (show(b""), Some(Closed::Eof)), "{flavor}: {how}");
            let status = server.wait_exit(IO_TIMEOUT).expect("stops after shutdown");
            assert_eq!(status.code(), Some(0), "{flavor}: {how}: {status}");
        }
    }
}

both_engines! {
    /// Bad values are refused in one line naming the flag, exit 64 (`-c -5` said
    /// "unexpected argument '-5' found").
    fn bad_flag_values_exit_64_with_one_line(flavor) {
        for args in [&["-c", "-5"][..], &["-b", "-1"], &["-m", "abc"], &["-m", "1g"], &["--bogus"]] {
            let (status, out) = run_to_exit(flavor, args, &[], IO_TIMEOUT);
            assert_eq!(status.and_then(|s| s.code()), Some(64), "{args:?}: {out}");
            assert_eq!(out.lines().count(), 1, "{args:?}: one line: {out}");
            assert!(out.contains(args[0]), "{args:?} names the flag: {out}");
        }
    }
}

both_engines! {
    /// A start that fails after writing the port file removes it, and prints its error
    /// once (it printed a log line and a plain line); exit 1.
    fn failed_start_prints_once_and_leaves_no_port_file(flavor) {
        let dir = TempDir::new("failed-start");
        let port_file = dir.join("port");
        let pid_file = dir.join("no-such-dir/pid");
        let pid = pid_file.to_str().expect("utf-8");
        let (status, out) = run_to_exit(
            flavor,
            &["-p", "0", "-l", "127.0.0.1", "-P", pid],
            &[("MEMCACHED_PORT_FILENAME", &port_file)],
            IO_TIMEOUT,
        );
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{out}");
        assert_eq!(out.lines().count(), 1, "printed once: {out}");
        assert!(out.contains("-P"), "{out}");
        assert!(!port_file.exists(), "a stale port file was left behind");
    }
}

both_engines! {
    /// As memcached, the pid file is written before privileges are dropped, so it may go
    /// where only root can write (it was written after, as the `-u` user, and refused).
    fn pid_file_is_written_before_dropping_privileges(flavor) {
        if !common::is_root() {
            eprintln!("SKIPPED: needs root to drop privileges with -u");
            return;
        }
        let dir = TempDir::new("pid-root-only");
        let pid_file = dir.join("ringcache.pid");
        let pid = pid_file.to_str().expect("utf-8").to_string();
        let mut server = Server::start(flavor, &["-u", "nobody", "-P", &pid]);
        server.connect().version();
        let written = std::fs::read_to_string(&pid_file).expect("pid file written");
        assert_eq!(written.trim(), server.pid().to_string());
        server.assert_alive();
    }
}
