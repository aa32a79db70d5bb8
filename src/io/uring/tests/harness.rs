//! The test harness: a line service and a worker on its own thread.
//!
//! `LineService`: each `\n`-terminated line gets `OK <line>\r\n`; `big <n>` gets `n`
//! bytes as one shared segment; `quit` closes. A connection stops executing (and
//! wanting input) while its output is over `mark` bytes and keeps the rest of its
//! input; `Counters` records open connections (Conn drops), the most input any
//! connection kept, and whether backpressure happened, behind a condition variable
//! the tests wait on with a deadline. Its UDP handler (`Opts::udp`) answers each
//! datagram with itself behind an 8-byte frame header; `Counters` also counts the
//! UDP receives ended by ENOBUFS.

use super::super::{probe, run_worker, Features, TaskRun};
use crate::io::{Conn, Listener, Rejected, Service, Shutdown, UringOptions, WorkerSetup};
use crate::server::output::Output;
use bytes::Bytes;
use std::io::{self, BufRead, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long any wait in these tests may take before it counts as a hang.
pub(super) const DEADLINE: Duration = Duration::from_secs(20);

#[derive(Default)]
pub(super) struct State {
    pub(super) open: usize,
    pub(super) max_kept: usize,
    pub(super) backpressured: bool,
    pub(super) udp_enobufs: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    state: Mutex<State>,
    changed: Condvar,
}

impl Counters {
    fn update(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.state.lock().unwrap());
        self.changed.notify_all();
    }

    pub(super) fn read<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.state.lock().unwrap())
    }

    /// Waits until `cond` holds, failing the test after [`DEADLINE`].
    pub(super) fn wait(&self, what: &str, cond: impl Fn(&State) -> bool) {
        let deadline = Instant::now() + DEADLINE;
        let mut state = self.state.lock().unwrap();
        while !cond(&state) {
            let left = deadline
                .checked_duration_since(Instant::now())
                .unwrap_or_else(|| panic!("timed out waiting for {what}"));
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }
}

struct LineService {
    limit: usize,
    mark: usize,
    counters: Arc<Counters>,
    big: Bytes,
}

impl Service for LineService {
    type Conn = LineConn;
    type Udp = EchoDatagrams;

    fn open_udp(&self, _worker: usize, _fd: std::os::fd::RawFd) -> Self::Udp {
        EchoDatagrams
    }

    fn engine_event(&self, _worker: usize, event: crate::io::EngineEvent) {
        if event == crate::io::EngineEvent::UdpRecvNoBufs {
            self.counters.update(|s| s.udp_enobufs += 1);
        }
    }

    fn open(&self, _worker: usize, _fd: std::os::fd::RawFd) -> Result<LineConn, Rejected> {
        let mut state = self.counters.state.lock().unwrap();
        if state.open >= self.limit {
            return Err(Rejected);
        }
        state.open += 1;
        drop(state);
        self.counters.changed.notify_all();
        Ok(LineConn {
            kept: Vec::new(),
            out: Output::new(),
            closing: false,
            mark: self.mark,
            counters: self.counters.clone(),
            big: self.big.clone(),
        })
    }
}

/// Answers a datagram with itself, behind a frame header of request id 0.
pub(super) struct EchoDatagrams;

impl crate::io::udp::DatagramHandler for EchoDatagrams {
    fn on_datagram(&mut self, datagram: &[u8], out: &mut crate::server::udp::Datagrams) {
        crate::server::udp::frame(0, datagram, out);
    }
}

struct LineConn {
    kept: Vec<u8>,
    out: Output,
    closing: bool,
    mark: usize,
    counters: Arc<Counters>,
    big: Bytes,
}

impl LineConn {
    /// Executes whole lines while the output has room; returns the bytes used.
    fn execute(&mut self, input: &[u8]) -> usize {
        let mut used = 0;
        while !self.closing && self.out.len() <= self.mark {
            let Some(nl) = memchr::memchr(b'\n', &input[used..]) else {
                break;
            };
            let line = &input[used..used + nl];
            used += nl + 1;
            self.answer(line);
        }
        if self.out.len() > self.mark {
            self.counters.update(|s| s.backpressured = true);
        }
        used
    }

    fn answer(&mut self, line: &[u8]) {
        if line == b"quit" {
            self.closing = true;
        } else if let Some(n) = line.strip_prefix(b"big ") {
            let n: usize = std::str::from_utf8(n).unwrap().parse().unwrap();
            self.out.extend(format!("BIG {n}\r\n").as_bytes());
            self.out.push_shared(self.big.slice(..n));
            self.out.extend(b"\r\n");
        } else {
            self.out.extend(b"OK ");
            self.out.extend(line);
            self.out.extend(b"\r\n");
        }
    }
}

impl Conn for LineConn {
    fn on_input(&mut self, input: &[u8]) {
        if self.kept.is_empty() {
            let used = self.execute(input);
            self.kept.extend_from_slice(&input[used..]);
        } else {
            self.kept.extend_from_slice(input);
            self.resume();
        }
        let kept = self.kept.len();
        self.counters.update(|s| s.max_kept = s.max_kept.max(kept));
    }

    fn resume(&mut self) {
        if !self.kept.is_empty() {
            let kept = std::mem::take(&mut self.kept);
            let used = self.execute(&kept);
            self.kept = kept;
            self.kept.drain(..used);
        }
    }

    fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    fn wants_input(&self) -> bool {
        !self.closing && self.out.len() <= self.mark
    }

    fn is_closing(&self) -> bool {
        self.closing
    }
}

impl Drop for LineConn {
    fn drop(&mut self) {
        self.counters.update(|s| s.open -= 1);
    }
}

pub(super) struct Opts {
    pub(super) features: Features,
    pub(super) limit: usize,
    pub(super) mark: usize,
    pub(super) idle_timeout_secs: u32,
    pub(super) big_bytes: usize,
    /// Give the worker a UDP socket on 127.0.0.1.
    pub(super) udp: bool,
}

impl Opts {
    pub(super) fn new(features: &Features) -> Opts {
        Opts {
            features: features.clone(),
            limit: 10_000,
            mark: 64 * 1024,
            idle_timeout_secs: 0,
            big_bytes: 16,
            udp: false,
        }
    }
}

pub(super) struct Server {
    pub(super) addr: SocketAddr,
    /// The UDP socket's address (`Opts::udp`).
    pub(super) udp_addr: Option<SocketAddr>,
    pub(super) unix: std::path::PathBuf,
    pub(super) shutdown: Arc<Shutdown>,
    done: mpsc::Receiver<io::Result<()>>,
    pub(super) counters: Arc<Counters>,
}

impl Server {
    pub(super) fn start(opts: Opts) -> Server {
        let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
        tcp.set_nonblocking(true).unwrap();
        let addr = tcp.local_addr().unwrap();
        let unix = std::env::temp_dir().join(format!(
            "ringcache-uring-{}-{}.sock",
            std::process::id(),
            addr.port()
        ));
        let _ = std::fs::remove_file(&unix);
        let unix_listener = std::os::unix::net::UnixListener::bind(&unix).unwrap();
        unix_listener.set_nonblocking(true).unwrap();
        let shutdown = Arc::new(Shutdown::new().unwrap());
        let counters = Arc::new(Counters::default());
        let service = Arc::new(LineService {
            limit: opts.limit,
            mark: opts.mark,
            counters: counters.clone(),
            big: Bytes::from(vec![b'x'; opts.big_bytes]),
        });
        let udp: Vec<_> = opts
            .udp
            .then(|| {
                let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
                socket.set_nonblocking(true).unwrap();
                socket
            })
            .into_iter()
            .collect();
        let udp_addr = udp.first().map(|s| s.local_addr().unwrap());
        let setup = WorkerSetup {
            index: 0,
            listeners: vec![Listener::Tcp(tcp), Listener::Unix(unix_listener)],
            udp,
            shutdown: shutdown.clone(),
            idle_timeout_secs: opts.idle_timeout_secs,
        };
        let (tx, done) = mpsc::channel();
        let features = opts.features;
        thread::spawn(move || {
            let _ = tx.send(run_worker(&features, service, setup));
        });
        Server {
            addr,
            udp_addr,
            unix,
            shutdown,
            done,
            counters,
        }
    }

    pub(super) fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.set_write_timeout(Some(DEADLINE)).unwrap();
        s
    }

    pub(super) fn wait_open(&self, n: usize) {
        self.counters
            .wait(&format!("{n} open connections"), |s| s.open == n);
    }

    /// Triggers shutdown; the worker must return `Ok` and have dropped every `Conn`.
    pub(super) fn stop(self) {
        self.shutdown.trigger();
        let res = self
            .done
            .recv_timeout(DEADLINE)
            .expect("the worker did not stop");
        res.expect("the worker failed");
        assert_eq!(self.counters.read(|s| s.open), 0, "connections left open");
        let _ = std::fs::remove_file(&self.unix);
    }
}

/// The probed features with the default options, or `None` (saying why) where
/// io_uring is not usable.
pub(super) fn features(test: &str) -> Option<Features> {
    features_with(test, UringOptions::default())
}

/// The probed features with `wanted` options.
pub(super) fn features_with(test: &str, wanted: UringOptions) -> Option<Features> {
    match probe(1, wanted) {
        Ok(f) => Some(f),
        Err(why) => {
            eprintln!("{test}: SKIPPED: io_uring is not usable here: {why}");
            None
        }
    }
}

/// The probed features (the defaults), the optional paths the defaults leave out
/// (receive bundles, every send zero-copy: whichever this kernel has), and the
/// fallbacks an older kernel would get.
pub(super) fn all_modes(test: &str) -> Vec<Features> {
    let Some(best) = features(test) else {
        return Vec::new();
    };
    let defaults = UringOptions::default();
    let others = UringOptions {
        bundle: !defaults.bundle,
        send_zc_min_bytes: if defaults.send_zc_min_bytes == 0 {
            1
        } else {
            0
        },
    };
    let mut modes = vec![best];
    modes.extend(features_with(test, others).filter(|f| !modes.contains(f)));
    modes.push(Features {
        taskrun: TaskRun::Plain,
        ..Features::default()
    });
    modes
}

pub(super) fn read_line(r: &mut impl BufRead) -> String {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    line
}

pub(super) fn assert_eof(s: &mut impl Read) {
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => assert!(rest.is_empty(), "unexpected bytes {rest:?}"),
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
    }
}
