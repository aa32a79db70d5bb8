//! The hostile phase (`--hostile DURATION`): clients that pin server memory, and one
//! probe that must stay served meanwhile.
//!
//! In cycles of [`CYCLE`]: [`READERS`] connections each ask for a big value
//! [`GETS_PER_READER`] times and never read; [`HALF_SETTERS`] connections each send a
//! big set's header and all but the last bytes of its value, then stall. Meanwhile the
//! probe sets and reads back small keys, every answer checked, each round trip under
//! [`PROBE_MAX`]. Then every hostile connection is dropped and the next cycle starts.
//! `ci/soak.sh` checks the server's peak RSS against its bound around this phase.

use crate::wire::{self, Conn, Dialect, Op, Reply};
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const READERS: usize = 24;
const GETS_PER_READER: usize = 40;
const HALF_SETTERS: usize = 24;
const BIG_VALUE_BYTES: usize = 256 * 1024;
const HALF_SET_BYTES: usize = 512 * 1024;
const CYCLE: Duration = Duration::from_secs(2);
const PROBE_MAX: Duration = Duration::from_secs(2);

/// What the phase saw.
#[derive(Debug, Default)]
pub struct Report {
    pub cycles: u64,
    pub probe_checks: u64,
    pub probe_max: Duration,
    pub errors: Vec<String>,
}

/// Runs cycles against `addr` until `duration` has passed.
pub fn run(addr: SocketAddr, duration: Duration) -> Report {
    let mut report = Report::default();
    let mut probe = match Probe::connect(addr) {
        Ok(p) => p,
        Err(e) => {
            report.errors.push(format!("hostile: probe: {e}"));
            return report;
        }
    };
    let big: Vec<u8> = (0..BIG_VALUE_BYTES)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    if let Err(e) = probe.set("hostile:big", &big) {
        report
            .errors
            .push(format!("hostile: storing the big value: {e}"));
        return report;
    }
    let end = Instant::now() + duration;
    while Instant::now() < end && report.errors.is_empty() {
        let mut pinned = Vec::new();
        for _ in 0..READERS {
            match stalled_reader(addr) {
                Ok(s) => pinned.push(s),
                Err(e) => report.errors.push(format!("hostile: reader: {e}")),
            }
        }
        for i in 0..HALF_SETTERS {
            match half_setter(addr, i) {
                Ok(s) => pinned.push(s),
                Err(e) => report.errors.push(format!("hostile: half set: {e}")),
            }
        }
        let cycle_end = Instant::now() + CYCLE;
        let mut n = 0u64;
        while Instant::now() < cycle_end && report.errors.is_empty() {
            let key = format!("hostile:probe{}", n % 64);
            let value = format!("{}:{}", report.cycles, n).into_bytes();
            let started = Instant::now();
            let outcome = probe
                .set(&key, &value)
                .and_then(|()| probe.get(&key))
                .and_then(|got| match got {
                    Some(v) if v == value => Ok(()),
                    other => Err(format!("{key}: read back {other:?}")),
                });
            let took = started.elapsed();
            report.probe_max = report.probe_max.max(took);
            report.probe_checks += 1;
            if let Err(e) = outcome {
                report.errors.push(format!("hostile: probe: {e}"));
            } else if took > PROBE_MAX {
                report
                    .errors
                    .push(format!("hostile: a probe round trip took {took:?}"));
            }
            n += 1;
        }
        drop(pinned);
        report.cycles += 1;
    }
    report
}

/// A connection that asks for the big value many times and never reads.
fn stalled_reader(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.write_all(&b"get hostile:big\r\n".repeat(GETS_PER_READER))?;
    Ok(s)
}

/// A connection that sends a big set short of its last bytes. The server may close
/// it under buffer pressure: a refused write is expected.
fn half_setter(addr: SocketAddr, i: usize) -> std::io::Result<TcpStream> {
    let mut s = TcpStream::connect(addr)?;
    s.set_nonblocking(true)?;
    let mut bytes = format!("set hostile:half{i} 0 0 {HALF_SET_BYTES}\r\n").into_bytes();
    bytes.resize(bytes.len() + HALF_SET_BYTES - 100, b'h');
    let _ = s.write(&bytes);
    Ok(s)
}

/// The probe: a text connection whose reads give up after [`wire::READ_TIMEOUT`], well past
/// [`PROBE_MAX`], so a slow answer is reported as slow rather than as a hang.
struct Probe(Conn);

impl Probe {
    fn connect(addr: SocketAddr) -> Result<Probe, String> {
        Conn::connect(addr, Dialect::Text)
            .map(Probe)
            .map_err(|e| e.to_string())
    }

    /// The one reply to `op`.
    fn ask(&mut self, op: Op) -> Result<Reply, String> {
        let mut reply = None;
        self.0
            .batch(std::slice::from_ref(&op), |_, r| reply = Some(r))?;
        reply.ok_or_else(|| format!("{}: no reply", wire::op_name(&op)))
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        match self.ask(Op::Set {
            key: key.to_string(),
            flags: 0,
            ttl: 0,
            value: value.to_vec(),
        })? {
            Reply::Stored => Ok(()),
            other => Err(format!("set {key}: {other:?}")),
        }
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        match self.ask(Op::Get {
            key: key.to_string(),
        })? {
            Reply::Value(hit) => Ok(hit.map(|h| h.value)),
            other => Err(format!("get {key}: {other:?}")),
        }
    }
}
