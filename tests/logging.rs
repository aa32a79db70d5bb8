//! Logging and the pid file, read from the outside: `-vv` prints memcached's connection
//! and command lines (`<fd new auto-negotiating client connection`, `<fd <command>`,
//! `<fd connection closed.`) on stderr, `-vvv` adds byte counts, no `-v` prints none of
//! them, the `verbosity` command switches them at runtime, and `-P` writes the pid file
//! at start and removes it at exit.

#[macro_use]
mod common;

use common::{wait_until, Client, Server};
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(5);

/// The descriptor the server uses for `conn`, read from `stats conns` by our address.
fn server_fd(conn: &mut Client) -> String {
    let mine = format!("tcp:{}", conn.stream.local_addr().expect("local addr"));
    conn.send(b"stats conns\r\n");
    let reply = conn.read_until("stats conns", |b| {
        b.ends_with(b"END\r\n").then_some(b.len())
    });
    let text = String::from_utf8_lossy(&reply).to_string();
    text.lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .find_map(|l| {
            let (key, value) = l.split_once(' ')?;
            let (fd, field) = key.split_once(':')?;
            (field == "addr" && value == mine).then(|| fd.to_string())
        })
        .unwrap_or_else(|| panic!("no `stats conns` entry for {mine}:\n{text}"))
}

/// Connects, runs one command, and closes: returns the server's fd for it.
fn one_session(server: &Server) -> String {
    let mut conn = server.connect();
    conn.roundtrip(b"set logged 0 0 2\r\nhi\r\n", b"STORED\r\n");
    let fd = server_fd(&mut conn);
    drop(conn);
    fd
}

fn wait_for_log(server: &Server, what: &str) {
    let found = wait_until(WAIT, || server.log().contains(what));
    assert!(
        found,
        "log lacks {what:?} after {WAIT:?}:\n{}",
        server.log()
    );
}

both_engines! {
    /// `-vv`: accept, every command and close, as memcached words them.
    fn vv_logs_connections_and_commands(flavor) {
        let server = Server::start(flavor, &["-vv"]);
        let fd = one_session(&server);
        wait_for_log(&server, &format!("<{fd} connection closed."));
        let log = server.log();
        for line in [
            format!("<{fd} new auto-negotiating client connection"),
            format!("<{fd} set logged 0 0 2"),
            format!("<{fd} stats conns"),
        ] {
            assert!(log.contains(&line), "{flavor}: no {line:?} in\n{log}");
        }
        assert!(!log.contains(" bytes"), "{flavor}: -vv printed -vvv detail:\n{log}");
    }
}

both_engines! {
    /// `-vvv`: the bytes in and out as well.
    fn vvv_logs_bytes(flavor) {
        let server = Server::start(flavor, &["-vvv"]);
        let fd = one_session(&server);
        wait_for_log(&server, &format!("<{fd} connection closed."));
        let log = server.log();
        assert!(log.contains(&format!("<{fd} read ")), "{flavor}:\n{log}");
        assert!(log.contains(&format!(">{fd} queued 8 bytes")), "{flavor}: STORED\\r\\n is 8 bytes:\n{log}");
    }
}

both_engines! {
    /// Without `-v` there are no per-connection lines; `verbosity 2` turns them on at
    /// runtime and `verbosity 0` off again.
    fn verbosity_command_switches_connection_lines(flavor) {
        let server = Server::start(flavor, &[]);
        one_session(&server);
        let mut admin = server.connect();
        admin.roundtrip(b"verbosity 2\r\n", b"OK\r\n");
        let loud = one_session(&server);
        wait_for_log(&server, &format!("<{loud} connection closed."));
        admin.roundtrip(b"verbosity 0\r\n", b"OK\r\n");
        one_session(&server);
        admin.roundtrip(b"verbosity 2\r\n", b"OK\r\n");
        let marker = one_session(&server);
        wait_for_log(&server, &format!("<{marker} set logged"));
        // Each session's accept and command are logged before its `set` is answered, so
        // exactly the two sessions run at verbosity 2 show.
        let log = server.log();
        for line in ["new auto-negotiating client connection", "set logged 0 0 2"] {
            assert_eq!(log.matches(line).count(), 2, "{flavor}: {line:?} in\n{log}");
        }
    }
}

/// A pid file path in the temp dir, unique to this test run.
fn pid_path(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ringcache-test-pid-{tag}-{}", std::process::id()))
}

both_engines! {
    /// `-P`: the pid file holds the server's pid while it runs and is gone after a
    /// clean exit.
    fn pid_file_written_and_removed(flavor) {
        let path = pid_path(&flavor.to_string().replace('/', "-"));
        let _ = std::fs::remove_file(&path);
        let mut server = Server::start(flavor, &["-P", path.to_str().expect("utf-8 path")]);
        let want = format!("{}\n", server.pid());
        let written = wait_until(WAIT, || std::fs::read_to_string(&path).is_ok_and(|t| t == want));
        assert!(written, "{flavor}: pid file {} never held {want:?}", path.display());
        server.signal(libc::SIGTERM);
        let status = server.wait_exit(WAIT).expect("exits after SIGTERM");
        assert!(status.success(), "{flavor}: exit {status}");
        assert!(!path.exists(), "{flavor}: pid file {} left behind", path.display());
    }
}
