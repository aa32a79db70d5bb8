//! Process lifecycle: signals end the server cleanly (exit 0, clients see a close,
//! pending answers still delivered) and bad flags fail at startup with a reason.

#[macro_use]
mod common;

use common::Server;
use std::process::Command;
use std::time::{Duration, Instant};

/// Signals `sig` with an idle client connected: exit status 0 within 5 s, and the client
/// sees its connection end.
fn exits_cleanly_on(flavor: common::Flavor, sig: libc::c_int) {
    let mut server = Server::start(flavor, &[]);
    let mut idle = server.connect();
    idle.version();
    server.signal(sig);
    let status = server
        .wait_exit(Duration::from_secs(5))
        .unwrap_or_else(|| panic!("{flavor}: still running 5 s after signal {sig}"));
    assert!(
        status.success(),
        "{flavor}: exited with {status} after signal {sig}\nlog:\n{}",
        server.log()
    );
    idle.expect_closed(Duration::from_secs(5));
}

both_engines! {
    reference;
    fn sigterm_with_idle_client_exits_zero(flavor) {
        exits_cleanly_on(flavor, libc::SIGTERM);
    }
}

both_engines! {
    reference;
    fn sigint_with_idle_client_exits_zero(flavor) {
        exits_cleanly_on(flavor, libc::SIGINT);
    }
}

both_engines! {
    /// An answer being sent when SIGTERM arrives is still delivered whole (memcached
    /// drops it; ringcache's shutdown drains pending sends within its grace period).
    fn sigterm_finishes_pending_responses(flavor) {
        // Larger than what the socket buffers hold while the client does not read, so
        // part of the answer is still in the server when the signal arrives.
        const BIG: usize = 1536 * 1024;
        let mut server = Server::start(flavor, &["-I", "2m"]);
        let mut conn = server.connect();
        let big = common::value_for(3, BIG);
        conn.set("big", &big);
        conn.set_recv_buffer(32 * 1024);
        conn.send(b"get big\r\n");
        conn.read_some(1, Instant::now() + Duration::from_secs(5))
            .expect("the answer starts");
        server.signal(libc::SIGTERM);
        let reply = conn.read_until_end_of_get();
        assert_eq!(common::parse_get_reply(&reply, "big"), Some(big), "{flavor}");
        conn.expect_closed(Duration::from_secs(5));
        let status = server
            .wait_exit(Duration::from_secs(5))
            .unwrap_or_else(|| panic!("{flavor}: still running 5 s after SIGTERM"));
        assert!(status.success(), "{flavor}: exited with {status}");
    }
}

/// An unknown engine name is a startup error that names the flag.
#[test]
fn bad_io_engine_is_a_startup_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
        .args(["-p", "0", "-l", "127.0.0.1", "--io-engine", "bogus"])
        .output()
        .expect("run ringcache");
    assert!(
        !out.status.success(),
        "ringcache accepted --io-engine bogus"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("io-engine"),
        "the error does not name the flag: {stderr}"
    );
}
