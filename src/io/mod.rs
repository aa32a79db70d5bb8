//! The only place that talks to the kernel: the two I/O engines and their contract.
//!
//! # The engine contract
//!
//! An engine runs one worker thread's event loop. Every engine must:
//! - accept on each listener it is given (each worker has its own `SO_REUSEPORT`
//!   sockets, so workers never share a listener), and ask [`Service::open`] for a
//!   connection; on [`Rejected`] write [`REJECT_REPLY`] to the new socket and close it;
//! - when `accept` fails, let [`accept::AcceptErrors`] decide: out of descriptors or
//!   kernel memory (or a long run of other errors) the listener stops accepting for
//!   about [`accept::ACCEPT_PAUSE`] (never retried at once: the waiting connection stays
//!   in the backlog, so that would spin) while every connection goes on being served;
//!   the WARN line about it is rate-limited;
//! - report what only it sees through [`Service::engine_event`] (a listener paused and
//!   resumed, a connection that yielded its turn, a receive ended by ENOBUFS, a send
//!   submitted and completed), from its own thread;
//! - feed every received byte to [`Conn::on_input`] in order, and nothing else;
//! - send [`Conn::output`] in order, with at most one send in flight per connection;
//!   an engine that takes the output ([`Output::take`]) calls [`Output::send_done`]
//!   when that send has completed (until then the bytes count against the connection's
//!   high-water mark); whenever output was taken or sent, call [`Conn::resume`] (engines
//!   cannot see the connection's high-water mark; `resume` is cheap when there is
//!   nothing to do);
//! - stop reading from a connection while [`Conn::wants_input`] is false (backpressure),
//!   and keep serving every other connection meanwhile; bytes the kernel had already
//!   received may still be fed to `on_input` after it turned false (the `Conn` keeps
//!   them), so a connection holds at most one read's worth beyond its mark;
//! - be fair: in one turn of its loop, feed a connection a bounded amount of input
//!   before serving the others, however fast that client keeps writing (epoll: 256 KiB
//!   per connection per turn, then the connection waits on a ready list; io_uring: a
//!   turn is one batch of completions, bounded by the provided-buffer ring, or one
//!   16 KiB receive per connection without it, with connections interleaved in arrival
//!   order). A `version` behind three clients flooding `noreply` requests stays within
//!   milliseconds. Likewise send a connection a bounded amount of output per turn (an
//!   answer that grows as the client reads, a key dump, has no end of its own): epoll
//!   1 MiB, then the ready list; io_uring one send per completion, interleaved;
//! - when [`Conn::is_closing`], finish sending what is pending, then close the socket
//!   (a peer that vanished, an error or RST, is closed at once);
//! - treat a receive of 0 bytes (the peer's FIN) as a half-close, as memcached does:
//!   stop receiving, execute and answer every request already received, send it all,
//!   then close (`printf 'stats\r\n' | nc -N host 11211` gets its answer);
//! - close a connection that has been idle for `idle_timeout_secs`, if set. Idle means
//!   waiting for a command: no output pending, no send in flight, and no byte received
//!   or sent for that long. A client still reading a long answer is not idle (memcached
//!   likewise times out only connections in `conn_new_cmd`/`conn_read`), nor is a
//!   stream;
//! - serve streams: a connection whose [`Conn::is_streaming`] turned true (a `watch`
//!   log) produces output without input; call [`Conn::stream`] on it at least every
//!   [`STREAM_INTERVAL`] and send what it produced, as for any output. Engines notice
//!   the change after they fed it input; a connection never stops streaming;
//! - serve each UDP socket it is given (`-U`, [`WorkerSetup::udp`]) through a
//!   [`udp::UdpSocketPump`] over the handler [`Service::open_udp`] returns: pump it
//!   whenever the socket is readable, and come back to it next turn when the pump
//!   stopped for its budget (io_uring with multishot recvmsg receives the datagrams
//!   itself, a bounded number per turn, hands each to the pump with its peer, and has
//!   the pump send the turn's answers at its end);
//! - on [`Shutdown`]: stop accepting, finish pending sends (bounded by a grace period),
//!   close everything and return `Ok(())`.
//!
//! An engine knows nothing of protocols: it moves bytes between sockets and `Conn`s.
//! Engines are generic over the [`Service`], so a no-op service measures the network
//! floor every server pays.
//!
//! # Engine selection
//!
//! `--io-engine auto` probes io_uring once at startup ([`uring::probe`]); if the kernel
//! refuses it (`ENOSYS`, `EPERM` from `kernel.io_uring_disabled` or a seccomp profile,
//! missing opcodes) it logs one WARN line with the reason and runs epoll.
//! `--io-engine uring` that cannot start is a startup error with that reason.

pub mod accept;
pub mod epoll;
pub mod sys;
pub mod udp;
pub mod uring;

use crate::server::connection::Connection;
use crate::server::floor::FloorConn;
use crate::server::output::Output;
use crate::server::stats::Stat;
use crate::server::udp::{Datagrams, UdpConn};
use crate::server::Server;
use std::os::fd::RawFd;
use std::sync::Arc;

pub use crate::config::{IoEngine, UringOptions};
pub use crate::server::listener::Listener;
pub use sys::Shutdown;

/// What a connection past `-c` is told before it is closed (memcached's words).
pub const REJECT_REPLY: &[u8] = b"ERROR Too many open connections\r\n";

/// How long pending output may take to drain after a shutdown signal.
pub const SHUTDOWN_GRACE_SECS: u64 = 2;

/// How often a streaming connection is asked for its output (see [`Conn::stream`]): the
/// delay a `watch` line may have (memcached's logger thread polls its watchers every 1 ms
/// to 1 s), and 100 wake-ups a second on a worker that holds a watcher.
pub const STREAM_INTERVAL: std::time::Duration = std::time::Duration::from_millis(10);

/// The new connection would exceed the connection limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rejected;

/// What engines serve: one value per server, shared by all workers.
pub trait Service: Send + Sync + 'static {
    type Conn: Conn;
    /// What a worker's UDP socket hands its datagrams to.
    type Udp: udp::DatagramHandler;

    /// Worker `worker`'s handler for its UDP socket `fd` (`-U`), made once at start.
    fn open_udp(&self, worker: usize, fd: RawFd) -> Self::Udp;

    /// A connection was accepted by worker `worker` on socket `fd`. The returned `Conn`
    /// is dropped when the socket is closed (that is how the service counts open
    /// connections).
    fn open(&self, worker: usize, fd: RawFd) -> Result<Self::Conn, Rejected>;

    /// Something only the engine sees happened on worker `worker` (for `stats`). Called
    /// on that worker's thread.
    #[inline]
    fn engine_event(&self, _worker: usize, _event: EngineEvent) {}

    /// Starts loading what the requests of `keys` (the first keys of several
    /// connections' receives in one turn, [`Conn::first_key`]) will read, so the memory
    /// waits of a turn's requests overlap instead of coming one after another. A hint.
    #[inline]
    fn prefetch(&self, _keys: &[&[u8]]) {}
}

/// What an engine reports to its service for `stats`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EngineEvent {
    /// A listener stopped accepting for a while (out of descriptors, an error storm).
    ListenerPaused,
    /// A paused listener accepts again, after this long.
    ListenerResumed(std::time::Duration),
    /// A connection stopped being served with input possibly left, so the others get
    /// their turn (memcached's `conn_yields`).
    ConnYielded,
    /// A multishot receive ended with ENOBUFS: the provided-buffer ring ran dry.
    RecvNoBufs,
    /// A UDP socket's multishot recvmsg ended with ENOBUFS: its buffer ring ran dry.
    UdpRecvNoBufs,
    /// A send was submitted to the kernel.
    SendStarted,
    /// A send's completion arrived.
    SendDone,
}

/// One connection's protocol state, driven by an engine. Makes no syscalls.
pub trait Conn {
    /// Executes the requests in `input`, appending answers to the output. What it does
    /// not execute now (an incomplete request, or everything after the output went over
    /// its high-water mark) it copies and keeps for later.
    fn on_input(&mut self, input: &[u8]);

    /// Executes input kept by an earlier [`Conn::on_input`], if any and if the output
    /// has room again. Cheap when there is nothing to do.
    fn resume(&mut self);

    /// The pending answers.
    fn output(&mut self) -> &mut Output;

    /// False while the output is over its high-water mark, while input kept at the mark
    /// is not executed yet, or when the connection is closing: the engine stops reading
    /// until it turns true again.
    fn wants_input(&self) -> bool;

    /// The connection is done (quit, fatal protocol error): send what is pending, then
    /// close it.
    fn is_closing(&self) -> bool;

    /// The connection produces output of its own (a `watch` log stream): the engine
    /// calls [`Conn::stream`] every [`STREAM_INTERVAL`], and does not time it out as
    /// idle. Once true, it stays true.
    #[inline]
    fn is_streaming(&self) -> bool {
        false
    }

    /// Moves what a streaming connection produced since the last call into its output.
    fn stream(&mut self) {}

    /// The key of the request `input` (received, not yet handed to
    /// [`Conn::on_input`]) starts with, for [`Service::prefetch`]; `None` when there is
    /// none to name. A hint: it never changes what runs.
    #[inline]
    fn first_key<'a>(&self, _input: &'a [u8]) -> Option<&'a [u8]> {
        None
    }
}

/// How many connections' first keys one [`Service::prefetch`] call takes at most.
pub const PREFETCH_CONNS: usize = 16;

/// The first keys of one turn's receives ([`Conn::first_key`]), gathered for one
/// [`Service::prefetch`]: the look-ahead across connections both engines run.
#[derive(Default)]
pub struct FirstKeys<'a> {
    keys: [&'a [u8]; PREFETCH_CONNS],
    count: usize,
}

impl<'a> FirstKeys<'a> {
    /// Adds the first key of `input` (received by `conn`), if it names one; false once
    /// [`PREFETCH_CONNS`] keys are in (add no more).
    #[inline]
    pub fn add(&mut self, conn: &impl Conn, input: &'a [u8]) -> bool {
        if let Some(key) = conn.first_key(input) {
            self.keys[self.count] = key;
            self.count += 1;
        }
        self.count < PREFETCH_CONNS
    }

    /// Hands the keys to `service`, if there are two or more: a lone request gains
    /// nothing by it.
    #[inline]
    pub fn prefetch(&self, service: &impl Service) {
        if self.count >= 2 {
            service.prefetch(&self.keys[..self.count]);
        }
    }
}

/// Everything a worker needs besides the service.
#[derive(Debug)]
pub struct WorkerSetup {
    /// Worker number, 0-based.
    pub index: usize,
    /// This worker's own listening sockets (non-blocking).
    pub listeners: Vec<Listener>,
    /// This worker's own UDP sockets (non-blocking; empty without `-U`).
    pub udp: Vec<std::net::UdpSocket>,
    /// Set when SIGINT/SIGTERM arrives.
    pub shutdown: Arc<Shutdown>,
    /// Close connections idle this long (0: never).
    pub idle_timeout_secs: u32,
}

/// The engine chosen at startup, with what was probed.
#[derive(Clone, Debug)]
pub enum Chosen {
    Uring(uring::Features),
    Epoll,
}

impl Chosen {
    pub fn name(&self) -> &'static str {
        match self {
            Chosen::Uring(_) => "uring",
            Chosen::Epoll => "epoll",
        }
    }

    /// The features in use as `stats` shows them: comma-separated words, no spaces
    /// (`defer_taskrun,multishot_accept,multishot_recv,buf_ring,recv_bundle,udp_multishot_recvmsg`);
    /// empty for epoll. The UDP receive mode comes last.
    pub fn feature_words(&self) -> String {
        let Chosen::Uring(f) = self else {
            return String::new();
        };
        let mut words = vec![f.taskrun.to_string().replace(' ', "_")];
        words.push(
            if f.multishot_accept {
                "multishot_accept"
            } else {
                "accept"
            }
            .into(),
        );
        words.push(
            if f.multishot_recv_in_use() {
                "multishot_recv,buf_ring"
            } else {
                "recv"
            }
            .into(),
        );
        if f.recv_bundle_in_use() {
            words.push("recv_bundle".into());
        }
        if f.send_zc_min_bytes > 0 {
            words.push("send_zc".into());
        }
        words.push(
            if f.multishot_recvmsg_in_use() {
                "udp_multishot_recvmsg"
            } else {
                "udp_poll"
            }
            .into(),
        );
        words.join(",")
    }
}

/// As the startup line shows it: `uring (<features>)` or `epoll`.
impl std::fmt::Display for Chosen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Chosen::Uring(features) => write!(f, "uring ({features})"),
            Chosen::Epoll => f.write_str("epoll"),
        }
    }
}

/// Picks the engine once at startup, for `workers` workers. `Err` (only for `Uring`)
/// carries the reason io_uring cannot be used.
pub fn choose(wanted: IoEngine, uring: UringOptions, workers: usize) -> Result<Chosen, String> {
    match wanted {
        IoEngine::Epoll => Ok(Chosen::Epoll),
        IoEngine::Uring => uring::probe(workers, uring)
            .map(Chosen::Uring)
            .map_err(|why| format!("--io-engine uring: io_uring is not usable here: {why}")),
        IoEngine::Auto => match uring::probe(workers, uring) {
            Ok(features) => Ok(Chosen::Uring(features)),
            Err(why) => {
                tracing::warn!("io_uring is not usable ({why}); using epoll");
                Ok(Chosen::Epoll)
            }
        },
    }
}

/// Runs one worker's event loop with the chosen engine until shutdown.
pub fn run_worker<S: Service>(
    chosen: &Chosen,
    service: Arc<S>,
    setup: WorkerSetup,
) -> std::io::Result<()> {
    match chosen {
        Chosen::Uring(features) => uring::run_worker(features, service, setup),
        Chosen::Epoll => epoll::run_worker(service, setup),
    }
}

/// The real service: the memcached server over the shared store.
#[derive(Debug)]
pub struct Memcache(pub Arc<Server>);

impl Service for Memcache {
    type Conn = Connection;
    type Udp = UdpConn;

    fn open_udp(&self, worker: usize, fd: RawFd) -> UdpConn {
        UdpConn::new(&self.0, worker, fd)
    }

    fn open(&self, worker: usize, fd: RawFd) -> Result<Connection, Rejected> {
        Server::accept(&self.0, worker, fd).ok_or(Rejected)
    }

    #[inline]
    fn engine_event(&self, worker: usize, event: EngineEvent) {
        let stats = self.0.stats.worker(worker);
        match event {
            EngineEvent::ListenerPaused => {
                stats.incr(Stat::ListenDisabledNum);
                stats.incr(Stat::PausedListeners);
            }
            EngineEvent::ListenerResumed(paused) => {
                stats.decr(Stat::PausedListeners);
                stats.add(Stat::TimeInListenDisabledUs, paused.as_micros() as u64);
            }
            EngineEvent::ConnYielded => stats.incr(Stat::ConnYields),
            EngineEvent::RecvNoBufs => stats.incr(Stat::RecvNoBufs),
            EngineEvent::UdpRecvNoBufs => stats.incr(Stat::UdpRecvNoBufs),
            EngineEvent::SendStarted => stats.incr(Stat::SendsInFlight),
            EngineEvent::SendDone => stats.decr(Stat::SendsInFlight),
        }
    }

    #[inline]
    fn prefetch(&self, keys: &[&[u8]]) {
        crate::server::connection::prefetch_keys(&self.0, keys)
    }
}

impl udp::DatagramHandler for UdpConn {
    fn on_datagram(&mut self, datagram: &[u8], out: &mut Datagrams) {
        UdpConn::on_datagram(self, datagram, out)
    }
}

impl Conn for Connection {
    fn on_input(&mut self, input: &[u8]) {
        Connection::on_input(self, input)
    }

    #[inline]
    fn first_key<'a>(&self, input: &'a [u8]) -> Option<&'a [u8]> {
        Connection::first_key(self, input)
    }

    fn resume(&mut self) {
        Connection::resume(self)
    }

    fn output(&mut self) -> &mut Output {
        Connection::output(self)
    }

    fn wants_input(&self) -> bool {
        Connection::wants_input(self)
    }

    fn is_closing(&self) -> bool {
        Connection::is_closing(self)
    }

    #[inline]
    fn is_streaming(&self) -> bool {
        Connection::is_streaming(self)
    }

    fn stream(&mut self) {
        Connection::stream(self)
    }
}

/// The network floor: canned answers, no store (`ringcache --floor`).
#[derive(Debug, Default)]
pub struct Floor;

impl Service for Floor {
    type Conn = FloorConn;
    type Udp = udp::DropDatagrams;

    fn open_udp(&self, _worker: usize, _fd: RawFd) -> udp::DropDatagrams {
        udp::DropDatagrams
    }

    fn open(&self, _worker: usize, _fd: RawFd) -> Result<FloorConn, Rejected> {
        Ok(FloorConn::new())
    }
}

impl Conn for FloorConn {
    fn on_input(&mut self, input: &[u8]) {
        FloorConn::on_input(self, input)
    }

    fn resume(&mut self) {}

    fn output(&mut self) -> &mut Output {
        FloorConn::output(self)
    }

    fn wants_input(&self) -> bool {
        !self.is_closing()
    }

    fn is_closing(&self) -> bool {
        FloorConn::is_closing(self)
    }
}
