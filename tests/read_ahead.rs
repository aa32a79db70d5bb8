//! The look-ahead across connections (`server/connection/batch.rs`, the engines'
//! read-ahead): when one turn of the engine finds many connections with input, it reads
//! them all and prefetches their first keys before any runs. That must change nothing a
//! client sees. Each test stops the server (SIGSTOP), has every client send while it is
//! stopped, then lets it go on (SIGCONT), so its first turn finds all of them ready at
//! once: each connection must still get exactly its own answers, in order, whatever it
//! sent (a whole request, a half request finished later, a half-close, a reset, meta).

#[macro_use]
mod common;

use common::{Client, Server};
use std::net::Shutdown;
use std::time::Duration;

/// Waits until every thread of process `pid` is stopped (state `T`), so what the
/// clients send next is all waiting when it goes on.
fn wait_stopped(pid: u32) {
    let stopped = common::wait_until(Duration::from_secs(10), || {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            return false;
        };
        tasks.flatten().all(|task| {
            std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                stat.rfind(')')
                    .and_then(|at| stat[at + 1..].split_whitespace().next())
                    .is_some_and(|state| state == "T" || state == "t")
            })
        })
    });
    assert!(stopped, "server {pid} did not stop on SIGSTOP");
}

/// The kinds of client in one batch, by index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// `get` of its own key.
    Get,
    /// `get`, then a half-close: the answer must still come, then the close.
    GetHalfClose,
    /// A whole `get` and the first half of a second, finished after the server goes on.
    Split,
    /// Meta `mg <key> v`.
    Meta,
    /// A `set` of a new key and its `get` in one write.
    SetGet,
    /// A `get`, then a reset (SO_LINGER 0): nobody reads the answer.
    Reset,
}

const KINDS: [Kind; 6] = [
    Kind::Get,
    Kind::GetHalfClose,
    Kind::Split,
    Kind::Meta,
    Kind::SetGet,
    Kind::Reset,
];

both_engines! {
    /// 48 connections, all ready in the server's first turn after SIGCONT.
    fn many_ready_connections_each_get_their_own_answers(flavor) {
        const CLIENTS: usize = 48;
        let mut server = Server::start(flavor, &["-t", "1"]);
        let mut admin = server.connect();
        for i in 0..CLIENTS {
            admin.set(&format!("key:{i}"), format!("value-{i}").as_bytes());
        }
        let mut clients: Vec<(usize, Kind, Client)> = (0..CLIENTS)
            .map(|i| (i, KINDS[i % KINDS.len()], server.connect()))
            .collect();
        // The clients, `admin` and the probe itself.
        server.wait_curr_connections(CLIENTS as u64 + 2, Duration::from_secs(10));

        server.signal(libc::SIGSTOP);
        wait_stopped(server.pid());
        for (i, kind, client) in clients.iter_mut() {
            match kind {
                Kind::Get | Kind::Reset => client.send(format!("get key:{i}\r\n").as_bytes()),
                Kind::GetHalfClose => {
                    client.send(format!("get key:{i}\r\n").as_bytes());
                    client.stream.shutdown(Shutdown::Write).expect("shutdown");
                }
                Kind::Split => client.send(format!("get key:{i}\r\nget key:").as_bytes()),
                Kind::Meta => client.send(format!("mg key:{i} v\r\n").as_bytes()),
                Kind::SetGet => client.send(
                    format!("set new:{i} 0 0 5\r\nfresh\r\nget new:{i}\r\n").as_bytes(),
                ),
            }
            if *kind == Kind::Reset {
                client.set_linger_zero();
            }
        }
        // The resets go out while the server is stopped too.
        clients.retain(|(_, kind, _)| *kind != Kind::Reset);
        server.signal(libc::SIGCONT);

        for (i, kind, client) in clients.iter_mut() {
            let value = format!("value-{i}");
            let answer = format!("VALUE key:{i} 0 {}\r\n{value}\r\nEND\r\n", value.len());
            match kind {
                Kind::Get => client.expect(answer.as_bytes()),
                Kind::GetHalfClose => {
                    client.expect(answer.as_bytes());
                    client.expect_closed(Duration::from_secs(10));
                }
                Kind::Split => {
                    client.expect(answer.as_bytes());
                    client.send(format!("{i}\r\n").as_bytes());
                    client.expect(answer.as_bytes());
                }
                Kind::Meta => {
                    client.expect(format!("VA {}\r\n{value}\r\n", value.len()).as_bytes())
                }
                Kind::SetGet => client.expect(
                    format!("STORED\r\nVALUE new:{i} 0 5\r\nfresh\r\nEND\r\n").as_bytes(),
                ),
                Kind::Reset => unreachable!("resets were dropped"),
            }
        }
        let mut after = server.connect();
        assert_eq!(after.get("key:0").as_deref(), Some(&b"value-0"[..]));
        server.assert_alive();
    }
}
