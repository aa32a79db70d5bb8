//! libmemcached's conformance tool: `memccapable -a` (ASCII protocol) and
//! `memccapable -b` (binary protocol) must pass.

#[macro_use]
mod common;

use common::Server;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const TOOL_TIMEOUT: Duration = Duration::from_secs(60);

both_engines! {
    reference;
    fn memccapable_ascii_passes(flavor) {
        run_memccapable(flavor, "-a");
    }
}

both_engines! {
    reference;
    fn memccapable_binary_passes(flavor) {
        run_memccapable(flavor, "-b");
    }
}

/// Runs memccapable in `mode` (`-a` or `-b`) against a fresh server; panics with its
/// output and the server log unless it passes.
fn run_memccapable(flavor: common::Flavor, mode: &str) {
    let tool = common::find_program("memccapable").unwrap_or_else(|| {
        panic!(
            "memccapable is not installed: `apt-get install libmemcached-tools` \
             (ci/test.sh installs it)"
        )
    });
    let server = Server::start(flavor, &[]);
    let child = Command::new(&tool)
        .args(["-h", "127.0.0.1", "-p", &server.port().to_string(), mode])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", tool.display()));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let result = rx.recv_timeout(TOOL_TIMEOUT).unwrap_or_else(|_| {
        let _ = common::signal_pid(pid, libc::SIGKILL);
        panic!("{flavor}: memccapable did not finish within {TOOL_TIMEOUT:?}")
    });
    let out = result.expect("wait for memccapable");
    let status = out.status;
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        status.success(),
        "{flavor}: memccapable {mode} failed ({status}):\n{output}\nserver log:\n{}",
        server.log()
    );
}
