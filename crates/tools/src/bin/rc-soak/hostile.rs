//! The hostile phase (`--hostile DURATION`): clients that pin server memory, and one
//! probe that must stay served meanwhile.
//!
//! In cycles of [`CYCLE`]: [`READERS`] connections each ask for a big value
//! [`GETS_PER_READER`] times and never read; [`HALF_SETTERS`] connections each send a
//! big set's header and all but the last bytes of its value, then stall. Meanwhile the
//! probe sets and reads back small keys, every answer checked, each round trip under
//! [`PROBE_MAX`]. Then every hostile connection is dropped and the next cycle starts.
//! `ci/soak.sh` checks the server's peak RSS against its bound around this phase.

use std::io::{Read, Write};
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

/// A plain text connection with blocking, time-limited reads.
struct Probe {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Probe {
    fn connect(addr: SocketAddr) -> Result<Probe, String> {
        let stream = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(PROBE_MAX * 5))
            .map_err(|e| e.to_string())?;
        Ok(Probe {
            stream,
            buf: Vec::new(),
        })
    }

    fn set(&mut self, key: &str, value: &[u8]) -> Result<(), String> {
        let mut req = format!("set {key} 0 0 {}\r\n", value.len()).into_bytes();
        req.extend_from_slice(value);
        req.extend_from_slice(b"\r\n");
        self.stream.write_all(&req).map_err(|e| e.to_string())?;
        let answer = self.read_until(b"\r\n")?;
        match &answer[..] {
            b"STORED\r\n" => Ok(()),
            other => Err(format!("set {key}: {}", String::from_utf8_lossy(other))),
        }
    }

    fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.stream
            .write_all(format!("get {key}\r\n").as_bytes())
            .map_err(|e| e.to_string())?;
        let answer = self.read_until(b"END\r\n")?;
        if answer == b"END\r\n" {
            return Ok(None);
        }
        let header_end = answer
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("no header line")?;
        let value_end = answer.len() - b"\r\nEND\r\n".len();
        Ok(Some(answer[header_end + 2..value_end].to_vec()))
    }

    /// Reads until the buffer ends with `end`; returns and clears it.
    fn read_until(&mut self, end: &[u8]) -> Result<Vec<u8>, String> {
        let mut chunk = [0u8; 4096];
        while !self.buf.ends_with(end) {
            let n = self
                .stream
                .read(&mut chunk)
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("the server closed the probe's connection".into());
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
        Ok(std::mem::take(&mut self.buf))
    }
}
