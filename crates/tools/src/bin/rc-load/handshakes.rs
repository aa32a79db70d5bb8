//! `--tls --reconnect`: the TLS handshake rate. Each of `--conns` threads loops, one
//! connection at a time: connect, a full handshake (the client keeps no session, so
//! nothing is resumed), one `version` request over TLS, `close_notify` and close. One
//! such cycle is one op, so ops/s is handshakes per second and the server's CPU per op
//! (what `ci/bench.sh` config `tlshs` reports) is its CPU per handshake.

use super::driver::Tally;
use super::report::{CpuTime, Phase};
use super::tls;
use rustls::client::Resumption;
use rustls::ClientConfig;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one cycle's connect or read may take before it counts as lost.
const CYCLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Lost cycles after which a thread stops (the server is not answering).
const MAX_LOST: u64 = 10;

/// Runs `threads` loops until `duration` passes or `requests` cycles are done.
pub fn run(
    addr: SocketAddr,
    host: &str,
    config: &Arc<ClientConfig>,
    threads: usize,
    duration: Option<Duration>,
    requests: Option<u64>,
    ticks: u64,
) -> Phase {
    let mut fresh = (**config).clone();
    fresh.resumption = Resumption::disabled();
    let config = Arc::new(fresh);
    let budget = AtomicU64::new(requests.unwrap_or(u64::MAX));
    let cpu_before = CpuTime::of("self", ticks).unwrap_or_default();
    let started = Instant::now();
    let deadline = duration.map(|d| started + d);
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| cycles(addr, host, &config, deadline, &budget)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| lost("a load thread panicked")))
            .collect()
    });
    let mut phase = Phase::merged(&tallies, cpu_before, ticks);
    phase.tally.elapsed = started.elapsed();
    phase
}

/// One thread's loop.
fn cycles(
    addr: SocketAddr,
    host: &str,
    config: &Arc<ClientConfig>,
    deadline: Option<Instant>,
    budget: &AtomicU64,
) -> Tally {
    let mut tally = Tally::new();
    while deadline.is_none_or(|d| Instant::now() < d)
        && budget
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    {
        let started = Instant::now();
        match cycle(addr, host, config) {
            Ok(()) => {
                tally.completed += 1;
                tally.gets += 1;
                let ns = started.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
                let _ = tally.latency.record(ns.max(1));
            }
            Err(why) => {
                tally.lost += 1;
                if tally.error_notes.len() < 5 {
                    tally.error_notes.push(why);
                }
                if tally.lost >= MAX_LOST {
                    break;
                }
            }
        }
    }
    tally
}

/// Connect, handshake, `version`, close.
fn cycle(addr: SocketAddr, host: &str, config: &Arc<ClientConfig>) -> Result<(), String> {
    let mut stream = TcpStream::connect_timeout(&addr, CYCLE_TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(CYCLE_TIMEOUT))
        .and_then(|()| stream.set_nodelay(true))
        .map_err(|e| format!("cannot set up the socket: {e}"))?;
    let mut session = tls::handshake(config, host, &mut stream)?;
    let mut answer = Vec::new();
    {
        let mut tls = rustls::Stream::new(&mut session, &mut stream);
        tls.write_all(b"version\r\n")
            .map_err(|e| format!("write over TLS: {e}"))?;
        let mut chunk = [0u8; 256];
        while !answer.ends_with(b"\r\n") {
            let n = tls
                .read(&mut chunk)
                .map_err(|e| format!("read over TLS: {e}"))?;
            if n == 0 {
                return Err("closed before the version answer".into());
            }
            answer.extend_from_slice(&chunk[..n]);
        }
    }
    if !answer.starts_with(b"VERSION ") {
        return Err(format!(
            "version answered {:?}",
            String::from_utf8_lossy(&answer)
        ));
    }
    session.send_close_notify();
    // The close_notify is a courtesy: a server that closed first is not an error.
    let _ = session.complete_io(&mut stream);
    Ok(())
}

fn lost(why: &str) -> Tally {
    let mut t = Tally::new();
    t.lost = 1;
    t.error_notes.push(why.into());
    t
}
