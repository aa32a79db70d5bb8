//! One load thread: an edge-triggered epoll loop (through mio) over its connections,
//! each keeping `pipeline` requests in flight.
//!
//! Per request the loop does: encode into the connection's output buffer, one `write`
//! per connection per wake-up for everything pending, one `read` per wake-up (a read that
//! does not fill the buffer drained the socket, so no second read to see `EAGAIN`), check
//! the answer against the oldest request in flight, record the latency, and send the
//! next request. A connection asks for `WRITABLE` events only while a write was short.
//!
//! Latency is from the moment a request is queued for sending (just before the `write`)
//! to the moment its answer has been read; one clock read per wake-up per connection.
//!
//! With `--tls` a connection carries a rustls client session: reads pull every record
//! the socket holds through it (until `EAGAIN`, as a record may span reads) and
//! checks the plaintext as it comes; writes move the output into the session and its
//! records to the socket. The plaintext path is a branch on an `Option`, nothing more.
//!
//! A connection whose answers cannot be parsed, or that the server closed, is dropped:
//! its requests in flight count as errors and the others go on.

use crate::protocol::{self, Answer, Expect};
use crate::workload::{key_name, Mix, Op, KEY_NAME_MAX};
use hdrhistogram::Histogram;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use ringcache_client::{DecodeError, Decoded, Dialect};
use rustls::ClientConnection;
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Initial read buffer per connection; it grows when one answer is larger.
const READ_BUFFER_BYTES: usize = 64 * 1024;
/// How long answers still in flight at the end may take before they count as lost.
pub const DRAIN_GRACE: Duration = Duration::from_secs(5);
/// Error descriptions kept per thread for the report.
const ERRORS_KEPT: usize = 5;

/// One request in flight.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    op: Op,
    key: u64,
    opaque: u32,
    sent: Instant,
}

/// One connection and its buffers.
pub struct Conn {
    stream: TcpStream,
    /// The TLS session, with `--tls`.
    tls: Option<Box<ClientConnection>>,
    input: Vec<u8>,
    /// Unconsumed input is `input[start..end]`.
    start: usize,
    end: usize,
    output: Vec<u8>,
    written: usize,
    in_flight: VecDeque<InFlight>,
    wants_writable: bool,
    next_opaque: u32,
    alive: bool,
}

impl Conn {
    /// `stream` is connected (and `tls`, if any, has done its handshake on it).
    pub fn new(
        stream: std::net::TcpStream,
        tls: Option<ClientConnection>,
    ) -> std::io::Result<Conn> {
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        Ok(Conn {
            stream: TcpStream::from_std(stream),
            tls: tls.map(Box::new),
            input: vec![0; READ_BUFFER_BYTES],
            start: 0,
            end: 0,
            output: Vec::with_capacity(16 * 1024),
            written: 0,
            in_flight: VecDeque::new(),
            wants_writable: false,
            next_opaque: 0,
            alive: true,
        })
    }
}

/// Where the requests of a phase come from.
pub enum Source {
    /// Set every key in `next..end` once, in order, with value lengths from `sizes`.
    Prefill { next: u64, end: u64, sizes: Mix },
    /// The measured mix, until the budget or the deadline runs out.
    Mix(Mix),
}

/// What a phase may send.
pub struct Plan<'a> {
    pub dialect: Dialect,
    pub pipeline: usize,
    pub source: Source,
    /// Requests this thread may send; `u64::MAX` for no limit.
    pub budget: u64,
    /// No new request after this.
    pub deadline: Option<Instant>,
    /// Give up when requests are in flight but no answer came for this long.
    pub stall_timeout: Duration,
    pub key_digits: usize,
    /// Accept hits for any key (see [`Expect::any_key`]).
    pub any_key: bool,
    /// Expiration time of every set (`--exptime`; 0: never).
    pub exptime: u32,
    /// Value bytes; sets send a prefix of it.
    pub values: &'a [u8],
}

/// Live counters another thread reads for the progress line.
#[derive(Debug, Default)]
pub struct Progress {
    pub completed: AtomicU64,
    pub errors: AtomicU64,
}

/// What one thread measured in one phase.
pub struct Tally {
    pub completed: u64,
    pub gets: u64,
    pub sets: u64,
    pub hits: u64,
    pub misses: u64,
    /// Well-framed but wrong answers.
    pub wrong: u64,
    /// Requests lost with a connection that broke, closed or did not answer in time.
    pub lost: u64,
    pub conns_dropped: u64,
    /// `--udp` requests given up after `--udp-timeout` (a datagram lost): reported,
    /// not errors.
    pub timed_out: u64,
    /// The first few error descriptions.
    pub error_notes: Vec<String>,
    /// Latency in nanoseconds.
    pub latency: Histogram<u64>,
    /// From the first request sent to the last answer read.
    pub elapsed: Duration,
}

impl Tally {
    pub fn new() -> Tally {
        Tally {
            completed: 0,
            gets: 0,
            sets: 0,
            hits: 0,
            misses: 0,
            wrong: 0,
            lost: 0,
            conns_dropped: 0,
            timed_out: 0,
            error_notes: Vec::new(),
            // 1 ns to 100 s at 3 significant digits.
            latency: Histogram::new_with_bounds(1, 100_000_000_000, 3)
                .expect("static histogram bounds are valid"),
            elapsed: Duration::ZERO,
        }
    }

    pub fn errors(&self) -> u64 {
        self.wrong + self.lost
    }

    pub fn merge(&mut self, other: &Tally) {
        self.completed += other.completed;
        self.gets += other.gets;
        self.sets += other.sets;
        self.hits += other.hits;
        self.misses += other.misses;
        self.wrong += other.wrong;
        self.lost += other.lost;
        self.conns_dropped += other.conns_dropped;
        self.timed_out += other.timed_out;
        for note in &other.error_notes {
            if self.error_notes.len() < ERRORS_KEPT {
                self.error_notes.push(note.clone());
            }
        }
        self.latency
            .add(&other.latency)
            .expect("histograms with the same bounds merge");
        self.elapsed = self.elapsed.max(other.elapsed);
    }

    fn note(&mut self, why: String) {
        if self.error_notes.len() < ERRORS_KEPT {
            self.error_notes.push(why);
        }
    }
}

impl Default for Tally {
    fn default() -> Tally {
        Tally::new()
    }
}

/// The loop's state outside the connections.
struct Sender<'a> {
    plan: Plan<'a>,
    sending: bool,
    sent: u64,
}

impl Sender<'_> {
    /// Queues requests on `conn` until its pipeline is full or nothing may be sent.
    fn fill(&mut self, conn: &mut Conn, now: Instant) {
        while self.sending && conn.in_flight.len() < self.plan.pipeline {
            let (op, key, len) = match &mut self.plan.source {
                Source::Prefill { next, end, sizes } => {
                    if *next == *end {
                        self.sending = false;
                        return;
                    }
                    *next += 1;
                    (Op::Set, *next - 1, sizes.value_len())
                }
                Source::Mix(mix) => mix.next(),
            };
            let mut name = [0; KEY_NAME_MAX];
            let name = key_name(&mut name, key, self.plan.key_digits);
            let opaque = conn.next_opaque;
            conn.next_opaque = conn.next_opaque.wrapping_add(1);
            protocol::encode(
                self.plan.dialect,
                &mut conn.output,
                op,
                name,
                &self.plan.values[..len],
                (opaque, self.plan.exptime),
            );
            conn.in_flight.push_back(InFlight {
                op,
                key,
                opaque,
                sent: now,
            });
            self.sent += 1;
            if self.sent >= self.plan.budget {
                self.sending = false;
            }
        }
    }
}

/// Runs one phase over `conns` and returns what it measured. The connections are
/// registered with a fresh poller for the phase and deregistered at its end.
pub fn run_phase(conns: &mut [Conn], plan: Plan<'_>, progress: &Progress) -> Tally {
    let mut tally = Tally::new();
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            tally.note(format!("cannot create epoll instance: {e}"));
            tally.lost += 1;
            return tally;
        }
    };
    let live_at_start = conns.iter().filter(|c| c.alive).count() as u64;
    for (i, conn) in conns.iter_mut().enumerate() {
        if !conn.alive {
            continue;
        }
        if let Err(e) = poll
            .registry()
            .register(&mut conn.stream, Token(i), Interest::READABLE)
        {
            drop_conn(conn, &mut tally, format!("cannot register connection: {e}"));
        }
        conn.wants_writable = false;
    }
    let deadline = plan.deadline;
    let stall_timeout = plan.stall_timeout;
    let mut sender = Sender {
        sending: plan.budget > 0,
        sent: 0,
        plan,
    };

    let started = Instant::now();
    let mut last_answer = started;
    for (i, conn) in conns.iter_mut().enumerate().filter(|(_, c)| c.alive) {
        sender.fill(conn, started);
        flush(&poll, conn, Token(i), &mut tally);
    }

    let mut events = Events::with_capacity(1024);
    let mut drain_until: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if sender.sending && deadline.is_some_and(|d| now >= d) {
            sender.sending = false;
        }
        if tally.conns_dropped >= live_at_start {
            break; // every connection is gone
        }
        if !sender.sending {
            let pending: usize = conns
                .iter()
                .filter(|c| c.alive)
                .map(|c| c.in_flight.len())
                .sum();
            if pending == 0 {
                break;
            }
            let until = *drain_until.get_or_insert(now + DRAIN_GRACE);
            if now >= until {
                let why =
                    format!("{pending} requests not answered within {DRAIN_GRACE:?} of the end");
                abandon_all(conns, &mut tally, why);
                break;
            }
        }
        if now.saturating_duration_since(last_answer) > stall_timeout {
            let pending: usize = conns
                .iter()
                .filter(|c| c.alive)
                .map(|c| c.in_flight.len())
                .sum();
            if pending > 0 {
                let why = format!(
                    "no answer for {stall_timeout:?} with {pending} requests in flight: server stalled"
                );
                abandon_all(conns, &mut tally, why);
                break;
            }
        }
        let mut timeout = Duration::from_millis(100);
        if let (true, Some(d)) = (sender.sending, deadline) {
            timeout = timeout.min(d.saturating_duration_since(now));
        }
        if let Err(e) = poll.poll(&mut events, Some(timeout)) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            tally.note(format!("epoll_wait failed: {e}"));
            break;
        }
        for event in events.iter() {
            let Some(conn) = conns.get_mut(event.token().0) else {
                continue;
            };
            if !conn.alive {
                continue;
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                let now = Instant::now();
                let before = tally.completed;
                read_answers(&sender.plan, conn, now, &mut tally);
                if tally.completed > before {
                    last_answer = now;
                }
                if conn.alive {
                    sender.fill(conn, now);
                }
            }
            if conn.alive {
                flush(&poll, conn, event.token(), &mut tally);
            }
        }
        progress.completed.store(tally.completed, Ordering::Relaxed);
        progress.errors.store(tally.errors(), Ordering::Relaxed);
    }
    for conn in conns.iter_mut() {
        if conn.alive {
            let _ = poll.registry().deregister(&mut conn.stream);
        }
    }
    progress.completed.store(tally.completed, Ordering::Relaxed);
    progress.errors.store(tally.errors(), Ordering::Relaxed);
    tally.elapsed = last_answer.saturating_duration_since(started);
    tally
}

/// Gives up on every live connection: their requests in flight are lost.
fn abandon_all(conns: &mut [Conn], tally: &mut Tally, why: String) {
    tally.note(why);
    for conn in conns.iter_mut().filter(|c| c.alive) {
        tally.lost += conn.in_flight.len() as u64;
        tally.conns_dropped += 1;
        conn.in_flight.clear();
        conn.alive = false;
    }
}

fn drop_conn(conn: &mut Conn, tally: &mut Tally, why: String) {
    tally.lost += conn.in_flight.len().max(1) as u64;
    tally.conns_dropped += 1;
    tally.note(why);
    conn.in_flight.clear();
    conn.alive = false;
    let _ = conn.stream.shutdown(std::net::Shutdown::Both);
}

/// Makes room at the end of the input buffer if it is full.
fn make_room(conn: &mut Conn) {
    if conn.end == conn.input.len() {
        if conn.start > 0 {
            conn.input.copy_within(conn.start..conn.end, 0);
            conn.end -= conn.start;
            conn.start = 0;
        } else {
            let len = conn.input.len();
            conn.input.resize(len * 2, 0);
        }
    }
}

/// Reads what is there and checks every complete answer.
fn read_answers(plan: &Plan<'_>, conn: &mut Conn, now: Instant, tally: &mut Tally) {
    if let Some(tls) = conn.tls.take() {
        read_answers_tls(plan, conn, tls, now, tally);
        return;
    }
    loop {
        make_room(conn);
        let room = conn.input.len() - conn.end;
        let n = match conn.stream.read(&mut conn.input[conn.end..]) {
            Ok(0) => {
                drop_conn(conn, tally, "server closed the connection".to_string());
                return;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                drop_conn(conn, tally, format!("read failed: {e}"));
                return;
            }
        };
        conn.end += n;
        if !check_answers(plan, conn, now, tally) {
            return;
        }
        if n < room {
            // A short read emptied the socket; the next arrival is a new edge.
            return;
        }
    }
}

/// [`read_answers`] through the TLS session `tls`, which goes back into `conn` unless
/// the connection is dropped.
fn read_answers_tls(
    plan: &Plan<'_>,
    conn: &mut Conn,
    mut tls: Box<ClientConnection>,
    now: Instant,
    tally: &mut Tally,
) {
    loop {
        let (drained, closed) = match tls.read_tls(&mut conn.stream) {
            Ok(0) => (false, true),
            Ok(_) => (false, false),
            Err(e) if e.kind() == ErrorKind::WouldBlock => (true, false),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                drop_conn(conn, tally, format!("read failed: {e}"));
                return;
            }
        };
        if let Err(e) = tls.process_new_packets() {
            drop_conn(conn, tally, format!("TLS error: {e}"));
            return;
        }
        let mut clean_close = false;
        loop {
            make_room(conn);
            match tls.reader().read(&mut conn.input[conn.end..]) {
                Ok(0) => {
                    clean_close = true;
                    break;
                }
                Ok(n) => conn.end += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => {
                    drop_conn(conn, tally, format!("TLS read failed: {e}"));
                    return;
                }
            }
        }
        if !check_answers(plan, conn, now, tally) {
            return;
        }
        if closed || clean_close {
            drop_conn(conn, tally, "server closed the connection".to_string());
            return;
        }
        if drained {
            break;
        }
    }
    conn.tls = Some(tls);
}

/// Checks the complete answers in the input buffer; false if the connection broke.
fn check_answers(plan: &Plan<'_>, conn: &mut Conn, now: Instant, tally: &mut Tally) -> bool {
    while conn.start < conn.end {
        let Some(req) = conn.in_flight.front().copied() else {
            let extra =
                String::from_utf8_lossy(&conn.input[conn.start..conn.end.min(conn.start + 60)])
                    .into_owned();
            drop_conn(
                conn,
                tally,
                format!("answer with no request in flight: {extra:?}"),
            );
            return false;
        };
        let mut name = [0; KEY_NAME_MAX];
        let expect = Expect {
            op: req.op,
            key: key_name(&mut name, req.key, plan.key_digits),
            opaque: req.opaque,
            any_key: plan.any_key,
        };
        match protocol::check(plan.dialect, &conn.input[conn.start..conn.end], &expect) {
            Err(DecodeError::Incomplete) => break,
            Err(DecodeError::Malformed(why)) => {
                drop_conn(conn, tally, why);
                return false;
            }
            Ok(Decoded {
                consumed,
                response: answer,
            }) => {
                conn.start += consumed;
                conn.in_flight.pop_front();
                tally.completed += 1;
                match req.op {
                    Op::Get => tally.gets += 1,
                    Op::Set => tally.sets += 1,
                }
                match answer {
                    Answer::Hit => tally.hits += 1,
                    Answer::Miss => tally.misses += 1,
                    Answer::Stored => {}
                    Answer::Wrong(why) => {
                        tally.wrong += 1;
                        tally.note(why);
                    }
                }
                let nanos = now.saturating_duration_since(req.sent).as_nanos();
                tally.latency.saturating_record(nanos.max(1) as u64);
            }
        }
    }
    if conn.start == conn.end {
        conn.start = 0;
        conn.end = 0;
    }
    true
}

/// Writes pending output; asks for `WRITABLE` only while some is left.
fn flush(poll: &Poll, conn: &mut Conn, token: Token, tally: &mut Tally) {
    let mut tls_pending = false;
    if let Some(tls) = conn.tls.as_mut() {
        loop {
            if conn.written < conn.output.len() {
                // Takes what fits under the session's buffer limit.
                match tls.writer().write(&conn.output[conn.written..]) {
                    Ok(n) => conn.written += n,
                    Err(e) => {
                        drop_conn(conn, tally, format!("TLS write failed: {e}"));
                        return;
                    }
                }
            }
            if !tls.wants_write() {
                break;
            }
            match tls.write_tls(&mut conn.stream) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    drop_conn(conn, tally, format!("write failed: {e}"));
                    return;
                }
            }
        }
        tls_pending = tls.wants_write();
    } else {
        while conn.written < conn.output.len() {
            match conn.stream.write(&conn.output[conn.written..]) {
                Ok(n) => conn.written += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    drop_conn(conn, tally, format!("write failed: {e}"));
                    return;
                }
            }
        }
    }
    let pending = tls_pending || conn.written < conn.output.len();
    if conn.written == conn.output.len() {
        conn.output.clear();
        conn.written = 0;
    }
    if pending != conn.wants_writable {
        let interest = if pending {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if let Err(e) = poll
            .registry()
            .reregister(&mut conn.stream, token, interest)
        {
            drop_conn(conn, tally, format!("cannot re-register connection: {e}"));
            return;
        }
        conn.wants_writable = pending;
    }
}
