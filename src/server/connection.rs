//! The per-connection state machine: bytes in, answers out, no syscalls.
//!
//! An engine hands every received chunk to [`Connection::on_input`]. The connection
//! parses as many whole requests as the chunk holds, executes them against the store
//! and appends the answers to its [`Output`]. What it cannot execute yet it copies into
//! `pending`: an incomplete request, or (backpressure) everything after the point where
//! the output went over its mark; [`Connection::resume`] picks it up once the engine
//! has drained the output.
//!
//! Memory: the mark is checked before every request, between the keys of a
//! multi-key get (which stops part-way and resumes where it stopped, see
//! `connection/text.rs`) and between the slices of a key dump (`connection/dump.rs`,
//! carried on by `resume` before any later request), so a connection holds at most its
//! mark plus one answer,
//! counting what an engine is still sending ([`Output::held`]). The mark is
//! [`OUTPUT_HIGH_WATER`], or [`OUTPUT_PRESSURE_MARK`] while all connections together
//! hold more than their shared budget ([`super::buffers`]); under that pressure a
//! connection whose unfinished request grows past
//! [`super::buffers::INPUT_PRESSURE_BYTES`] is closed.
//!
//! Before a batch runs, `Connection::prefetch_batch` reads ahead over its plain gets and
//! sets (text or binary) and asks the CPU to load the records they will touch, so the
//! lookups' cache misses overlap (a hint only: it changes no answer). A plain text get,
//! set or `mg` it read is kept (`Ahead`, by input offset) and runs as read, exactly the
//! request the parser returns for its bytes, so it is parsed once; with it the key's
//! hash in the store, which a plain get's lookup and a plain set's write take
//! (`Store::get_hashed`, `Store::write_hashed`), so the key is hashed once too.
//!
//! Counters: the plain gets' `cmd_get`, `get_hits` and `get_misses` are counted in the
//! connection and added to its worker's counters when `execute` ends and before a
//! `stats` answer (`stats::GetCounts`).
//!
//! The dialect is fixed by the first byte (0x80: binary; anything else: text, in
//! which meta commands mix with classic ones), unless `-B` forces one; each dialect's
//! parsing and execution lives in a child module (`text`, `binary`; `meta` runs the
//! meta commands the text parser hands over; `operator` the operator commands and the
//! reports every dialect makes to `watch` and `stats detail`; `admin` the crawler's
//! commands, `cache_memlimit` and `stats cachedump`; `dump` the key dumps). With `-Y` a
//! connection starts unauthenticated (`auth`: memcached's authentication `set`, see
//! `server::auth`) and speaks text once authenticated. With `-S` (and no `-Y`) it
//! speaks binary, every packet through `sasl` first (SASL PLAIN, see `server::sasl`).
//!
//! TLS (`-Z`): a connection may hold a `server::tls::session::TlsSession`. Then
//! [`Connection::on_input`] gets records, which the session decrypts before the
//! plaintext takes the usual path, and [`Connection::output`] returns the session's
//! output, sealing the pending answers into records first (only when the records
//! before them are all sent, so the mark keeps bounding the plaintext). A client that
//! breaks TLS gets the alert and is closed (`ssl_handshake_errors`/`ssl_proto_errors`).
//!
//! States: reading requests → (store command over the item limit: swallowing its data
//! block) → reading requests … → closing (quit or a fatal protocol error: the output is
//! still sent, input is ignored). After `watch`: a log stream for good (input is
//! swallowed unread; [`Connection::stream`] moves the queued lines out).
//!
//! Invariants:
//! - answers leave in request order;
//! - `pending` never holds a complete request unless the output is over the high-water
//!   mark (then the engine has stopped reading, so it grows by at most one read);
//! - any split of the same bytes into chunks gives the same answers.
//!
//! The store has its own vocabulary: one API named by operation (`get`, `write`,
//! `delete`, `arith`, …) whose options carry what a dialect adds, [`WriteMode`], its
//! own key and item limits. Each dialect's module maps its requests onto it
//! ([`write_mode`] maps the parsers' [`StoreMode`]); the counters every dialect shares
//! ([`Connection::count_store`]) are kept here.
//!
//! `connection/tests.rs` holds the unit tests of whole sessions.

mod admin;
mod auth;
mod batch;
mod binary;
mod dump;
mod meta;
mod operator;
mod sasl;
mod text;

pub(crate) use batch::prefetch_keys;

pub(crate) use operator::conn_peer;

use super::auth::AuthState;
use super::buffers::INPUT_PRESSURE_BYTES;
use super::conns::{ConnRecord, ConnState};
use super::output::Output;
use super::sasl::SaslState;
use super::stats::{GetCounts, Stat, WorkerStats};
use super::tls::session::{Broken, TlsSession};
use super::tls::Tls;
use super::Server;
use crate::config::ProtocolChoice;
use crate::protocol::encode::ValueLine;
use crate::protocol::text::{Peeked, Plain};
use crate::protocol::StoreMode;
use crate::storage::{KeyHash, StoreResult, WriteMode, SPAN_BATCH};
use std::sync::Arc;

/// The store's write mode for a parsed store command: the one place the wire's
/// vocabulary meets the store's (the store knows nothing of the protocol).
#[inline]
fn write_mode(mode: StoreMode) -> WriteMode {
    match mode {
        StoreMode::Set => WriteMode::Set,
        StoreMode::Add => WriteMode::Add,
        StoreMode::Replace => WriteMode::Replace,
        StoreMode::Append => WriteMode::Append,
        StoreMode::Prepend => WriteMode::Prepend,
        StoreMode::Cas => WriteMode::Cas,
    }
}

/// The first byte of every binary-protocol request.
const BINARY_MAGIC: u8 = 0x80;

/// Output bytes above which the connection stops executing requests (and its engine
/// stops reading) until the client has read its answers. It bounds what a client that
/// never reads can pin: this plus one answer (a text get's big value is its own
/// exact-size segment; smaller answers share a buffer that grows by doubling), plus one
/// send in flight on io_uring. 1 MiB is still hundreds of answers per send.
pub const OUTPUT_HIGH_WATER: usize = 1024 * 1024;

/// The mark while all connections' buffers together are over their budget: still
/// dozens of small answers per send, but a thousand stalled readers hold 64 MiB, not
/// 1 GiB.
pub const OUTPUT_PRESSURE_MARK: usize = 64 * 1024;

/// Which protocol a connection speaks; fixed by its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Undetected,
    /// Classic text and meta commands (they mix freely).
    Text,
    Binary,
    /// `-Y` and not authenticated yet: only an authentication `set` is read
    /// (`connection/auth.rs`, in `auth_state`); then `Text`.
    Unauthenticated,
    /// `-S`: binary, every packet through the SASL gate first (`connection/sasl.rs`,
    /// its state in `sasl`).
    Sasl,
}

/// One client connection's protocol state.
#[derive(Debug)]
pub struct Connection {
    server: Arc<Server>,
    worker: usize,
    dialect: Dialect,
    /// Received bytes not executed yet.
    pending: Vec<u8>,
    out: Output,
    /// Input bytes still to drop (the data block of a refused store command).
    swallow: usize,
    /// Execution stopped at the high-water mark with requests left in `pending`:
    /// take no input until [`Connection::resume`] has run them.
    stalled: bool,
    closing: bool,
    /// Bytes this connection last charged to the shared buffer budget.
    charged: usize,
    /// The command and leading arguments of a multi-key get stopped at the mark
    /// (`gat 10 `): `pending` starts with its remaining keys.
    resume_get: Vec<u8>,
    /// Its entry in `stats conns` (socket, state, last command time).
    record: ConnRecord,
    /// Set once the connection is a `watch` log stream (`connection/operator.rs`).
    watching: Option<Box<operator::Watching>>,
    /// Closing for a fatal protocol error (a `connevents` close says `error`).
    fatal: bool,
    /// A key dump in progress (`dump.rs`): carried on before the next request.
    dump: Option<Box<dump::Dump>>,
    /// Where an unauthenticated connection is (`-Y`).
    auth_state: AuthState,
    /// Its SASL authentication and exchange (`-S`).
    sasl: SaslState,
    /// TLS (`-Z`): records in and out around the plaintext (`server::tls::session`).
    tls: Option<Box<TlsSession>>,
    /// A worker's UDP endpoint (`server::udp`): not a client, so not counted in
    /// `curr_connections`.
    udp: bool,
    /// Plain gets counted here while [`Connection::execute`] runs, added to the
    /// worker's counters when it ends (and before `stats` answers).
    gets: GetCounts,
    /// Where a get gathers a short hit's answer (`encode::value_then`).
    value_line: ValueLine,
}

impl Connection {
    pub(crate) fn new(server: Arc<Server>, worker: usize, record: ConnRecord) -> Connection {
        // With both -Y and -S, memcached binds connections to ASCII: -Y wins.
        let dialect = if server.auth().is_some() {
            Dialect::Unauthenticated
        } else if server.sasl().is_some() {
            Dialect::Sasl
        } else {
            Dialect::Undetected
        };
        Connection {
            server,
            worker,
            dialect,
            pending: Vec::new(),
            out: Output::new(),
            swallow: 0,
            stalled: false,
            closing: false,
            charged: 0,
            resume_get: Vec::new(),
            record,
            watching: None,
            fatal: false,
            dump: None,
            auth_state: AuthState::Line,
            sasl: SaslState::default(),
            tls: None,
            udp: false,
            gets: GetCounts::default(),
            value_line: ValueLine::new(),
        }
    }

    /// Speaks TLS from the first byte (`-Z`, on a listener without `notls:`). A session
    /// that cannot start (never with a configuration that loaded) closes the connection.
    pub(crate) fn start_tls(&mut self, tls: &Tls) {
        match TlsSession::new(tls.config()) {
            Ok(session) => self.tls = Some(Box::new(session)),
            Err(e) => {
                tracing::warn!("connection {}: cannot start TLS: {e}", self.record.fd());
                self.closing = true;
            }
        }
    }

    /// A worker's UDP endpoint: a connection every datagram runs through
    /// (`server::udp`), not counted as a client.
    pub(crate) fn new_udp(server: Arc<Server>, worker: usize, record: ConnRecord) -> Connection {
        let mut conn = Connection::new(server, worker, record);
        conn.udp = true;
        conn
    }

    /// A datagram ended: what it left unexecuted (an incomplete request, the rest of a
    /// refused value, a dump or get stopped part-way) is dropped, as memcached drops
    /// what a datagram leaves, so the next datagram starts a new request, whose first
    /// byte picks its dialect again (memcached's UDP connection serves text and
    /// binary datagrams alike).
    pub(crate) fn end_datagram(&mut self) {
        if self.dialect != Dialect::Unauthenticated {
            self.dialect = Dialect::Undetected;
        }
        self.pending.clear();
        self.resume_get.clear();
        self.swallow = 0;
        self.stalled = false;
        self.dump = None;
        self.charge();
    }

    /// The CAS value a client is shown for an item whose CAS is `cas`.
    pub(super) fn shown_cas(&self, cas: u64) -> u64 {
        shown_cas(self.server.config.cas_enabled, cas)
    }

    fn stats(&self) -> &WorkerStats {
        self.server.stats.worker(self.worker)
    }

    /// Counts a lookup as `on_hit` or `on_miss`.
    pub(super) fn count(&self, hit: bool, on_hit: Stat, on_miss: Stat) {
        self.stats().incr(if hit { on_hit } else { on_miss });
    }

    /// Counts a write as memcached does in every dialect: `cmd_set`, then the cas
    /// counters of a `Cas` write (a binary set with a CAS, a meta set with `C`
    /// included) or the refusal's counter.
    pub(super) fn count_store(&self, mode: WriteMode, result: StoreResult) {
        let stats = self.stats();
        stats.incr(Stat::CmdSet);
        match (mode, result) {
            (WriteMode::Cas, StoreResult::Stored) => stats.incr(Stat::CasHits),
            (WriteMode::Cas, StoreResult::Exists) => stats.incr(Stat::CasBadval),
            (WriteMode::Cas, StoreResult::NotFound) => stats.incr(Stat::CasMisses),
            (_, StoreResult::TooLarge) => stats.incr(Stat::StoreTooLarge),
            (_, StoreResult::OutOfMemory) => stats.incr(Stat::StoreNoMemory),
            _ => {}
        }
    }

    /// Executes the requests in `input` (records, over TLS); keeps what it cannot
    /// execute yet.
    pub fn on_input(&mut self, input: &[u8]) {
        let Some(tls) = self.tls.as_mut() else {
            return self.receive(input);
        };
        let (plain, broken) = tls.open(input);
        if tls.newly_established() {
            if let Some(shared) = self.server.tls() {
                shared.count_established();
            }
        }
        if !plain.is_empty() {
            self.receive(&plain);
        }
        if let Some(tls) = self.tls.as_mut() {
            tls.restore(plain);
        }
        if let Some(broken) = broken {
            self.tls_broken(broken);
        }
    }

    /// The client broke TLS: its alert goes out, then the connection closes.
    #[cold]
    fn tls_broken(&mut self, broken: Broken) {
        if let Some(tls) = self.server.tls() {
            tls.count_error(broken.handshaking);
        }
        let when = if broken.handshaking {
            "handshake"
        } else {
            "session"
        };
        tracing::debug!(
            "connection {}: TLS {when} failed: {}",
            self.record.fd(),
            broken.why
        );
        self.fatal = true;
        self.closing = true;
        self.pending = Vec::new();
        self.charge();
    }

    /// Executes the plaintext requests in `input`; keeps what it cannot execute yet.
    fn receive(&mut self, input: &[u8]) {
        self.stats().add(Stat::BytesRead, input.len() as u64);
        crate::logging::bytes_in(self.record.fd(), input.len());
        if self.closing {
            return;
        }
        if self.pending.is_empty() {
            let used = self.execute(input);
            if used < input.len() && !self.closing {
                self.keep(&input[used..]);
            }
            self.charge();
        } else {
            self.collect(input);
            self.resume();
        }
        self.check_input_pressure();
    }

    /// Keeps `rest` of an input chunk for later, after the command of a get stopped
    /// part-way (if any).
    fn keep(&mut self, rest: &[u8]) {
        self.pending.append(&mut self.resume_get);
        self.collect(rest);
    }

    /// Appends `bytes` to the kept input. A buffer that must grow doubles, as a `Vec`
    /// does, but never past the whole length of its first request when the request's
    /// header names it (`protocol::size_hint`), and takes that length at once when at
    /// least half of it has arrived (no more than doubling would take). So a 64 KiB
    /// value is collected in a heap block of its size, rather than in one that doubles
    /// to 128 KiB, which glibc maps and remaps (about 3 `mremap` calls and 11 page
    /// faults per 64 KiB set).
    fn collect(&mut self, bytes: &[u8]) {
        let needed = self.pending.len() + bytes.len();
        let capacity = self.pending.capacity();
        if needed > capacity {
            let mut grow_to = needed.max(2 * capacity);
            let head = if self.pending.is_empty() {
                bytes
            } else {
                &self.pending
            };
            if let Some(total) = self.request_bytes(head).filter(|&t| t >= needed) {
                grow_to = if total <= 2 * needed {
                    total
                } else {
                    grow_to.min(total)
                };
            }
            self.pending.reserve_exact(grow_to - self.pending.len());
        }
        self.pending.extend_from_slice(bytes);
    }

    /// How long the request `input` starts with will be, if its header says so.
    fn request_bytes(&self, input: &[u8]) -> Option<usize> {
        let binary = match self.dialect {
            Dialect::Text => false,
            Dialect::Binary | Dialect::Sasl => true,
            Dialect::Undetected | Dialect::Unauthenticated => return None,
        };
        crate::protocol::size_hint::request_bytes(input, binary)
    }

    /// Executes kept input (and carries a dump on) if the output has room.
    pub fn resume(&mut self) {
        let idle = self.pending.is_empty() && self.dump.is_none();
        if idle || self.closing || self.out.held() >= self.output_mark() {
            self.charge();
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let used = self.execute(&pending);
        if self.closing {
            self.charge();
            return;
        }
        if self.resume_get.is_empty() {
            pending.drain(..used);
        } else {
            // A get stopped part-way: its command goes back in front of its keys.
            let command = std::mem::take(&mut self.resume_get);
            pending.splice(..used, command);
        }
        if pending.capacity() > 64 * 1024 && pending.len() < 16 * 1024 {
            pending.shrink_to(16 * 1024);
        }
        self.pending = pending;
        self.charge();
    }

    /// The output mark in force: lower while all connections' buffers are over budget.
    #[inline]
    fn output_mark(&self) -> usize {
        if self.server.buffers.under_pressure() {
            OUTPUT_PRESSURE_MARK
        } else {
            OUTPUT_HIGH_WATER
        }
    }

    /// Reports what this connection holds to the shared budget.
    #[inline]
    fn charge(&mut self) {
        let tls = self.tls.as_ref().map_or(0, |t| t.footprint());
        let held = self.out.footprint() + self.pending.capacity() + tls;
        self.server.buffers.charge(&mut self.charged, held);
    }

    /// Under buffer pressure, a connection whose unfinished request (a half-sent value
    /// or line, not requests kept behind a full output) has grown past
    /// [`INPUT_PRESSURE_BYTES`] is closed: it would otherwise pin that much for as long
    /// as its client likes.
    fn check_input_pressure(&mut self) {
        if self.stalled
            || self.closing
            || self.pending.len() <= INPUT_PRESSURE_BYTES
            || !self.server.buffers.under_pressure()
        {
            return;
        }
        self.stats().incr(Stat::ConnBufferCloses);
        tracing::info!(
            "closing connection {}: {} bytes of an unfinished request while connection buffers \
             are over their limit ({} of {} bytes)",
            self.record.fd(),
            self.pending.len(),
            self.server.buffers.used_bytes(),
            self.server.buffers.limit_bytes(),
        );
        self.closing = true;
        self.pending = Vec::new();
        self.charge();
    }

    /// What the engine sends: the answers, or over TLS the records sealed from them.
    /// (Inline: out of line, its call cost the engine's loop 8 instructions a request
    /// at pipeline depth 16.)
    #[inline]
    pub fn output(&mut self) -> &mut Output {
        match self.tls.as_mut() {
            None => &mut self.out,
            Some(tls) => tls.seal(&mut self.out, self.closing),
        }
    }

    /// False while the output is over its mark, while requests kept at the mark wait
    /// for [`Connection::resume`], or when the connection is closing.
    pub fn wants_input(&self) -> bool {
        !self.closing && !self.stalled && self.out.held() < self.output_mark()
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Bytes received but not executed yet.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// The dialect a connection speaks, from its first byte and `-B`.
    fn detect(&self, first: u8) -> Dialect {
        match self.server.config.protocol {
            ProtocolChoice::Ascii => Dialect::Text,
            ProtocolChoice::Binary => Dialect::Binary,
            ProtocolChoice::Auto if first == BINARY_MAGIC => Dialect::Binary,
            ProtocolChoice::Auto => Dialect::Text,
        }
    }

    /// Parses and executes requests from the front of `input`; returns the bytes used.
    fn execute(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        let written_before = self.out.len();
        self.stalled = false;
        let mark = self.output_mark();
        // Requests run before the next look-ahead (see `prefetch_batch`): the first
        // request runs at once (reading its record ahead gains nothing, and at pipeline
        // depth 1 it is all there is), then a window from the second on, the next when
        // that one has run, so a deep pipeline is read ahead all along. What a
        // look-ahead read is kept in `ahead`: a text get or set runs from there.
        let mut until_prefetch = 1;
        let mut ahead = None;
        loop {
            if until_prefetch == 0 && self.swallow == 0 {
                until_prefetch = self.prefetch_batch(input, pos, &mut ahead);
            }
            if self.closing {
                break;
            }
            if self.out.held() >= mark {
                self.stalled = pos < input.len() || self.dump.is_some();
                if self.stalled && mark == OUTPUT_PRESSURE_MARK {
                    self.stats().incr(Stat::ConnBufferPauses);
                }
                break;
            }
            if self.dump.is_some() && !self.dump_step(mark) {
                // The output reached the mark with the dump unfinished.
                self.stalled = true;
                break;
            }
            if self.swallow > 0 {
                let n = self.swallow.min(input.len() - pos);
                pos += n;
                self.swallow -= n;
                if self.swallow > 0 {
                    break;
                }
            }
            if pos == input.len() {
                break;
            }
            let rest = &input[pos..];
            // A request the look-ahead read (text only) runs as read.
            let used = match ahead
                .as_mut()
                .and_then(|ahead: &mut Ahead<'_>| ahead.take(pos))
            {
                Some((Plain::MetaGet(get), consumed, hash)) => {
                    self.meta_get_ahead(*get, hash);
                    Some(consumed)
                }
                Some((plain, consumed, hash)) if !matches!(plain, Plain::Other) => {
                    self.text_run(plain, consumed, hash)
                }
                _ => {
                    if self.dialect == Dialect::Undetected {
                        self.dialect = self.detect(rest[0]);
                    }
                    match self.dialect {
                        Dialect::Binary => self.binary_step(rest),
                        Dialect::Unauthenticated => self.auth_step(rest),
                        Dialect::Sasl => self.sasl_step(rest),
                        _ => self.text_step(rest, mark),
                    }
                }
            };
            match used {
                Some(n) => {
                    // `logging::command`'s own test first (its target, so the same
                    // filter answers): no request pays for a `-vv` line nobody reads.
                    if tracing::enabled!(target: "ringcache::logging", tracing::Level::DEBUG) {
                        crate::logging::command(self.record.fd(), &rest[..n]);
                    }
                    pos += n;
                    until_prefetch = until_prefetch.saturating_sub(1);
                    if !self.resume_get.is_empty() {
                        // A get stopped at the mark part-way: what is left of it and
                        // everything after waits for the client to read.
                        self.stalled = true;
                        break;
                    }
                }
                None => break,
            }
        }
        let written = self.out.len().saturating_sub(written_before);
        let stats = self.server.stats.worker(self.worker);
        stats.add_gets(&mut self.gets);
        stats.add(Stat::BytesWritten, written as u64);
        crate::logging::bytes_out(self.record.fd(), written);
        let state = ConnState::after(self.closing, self.swallow, self.stalled, pos < input.len());
        self.record.note(self.server.store.clock().now(), state);
        pos
    }
}

/// Requests [`Connection::prefetch_batch`] reads ahead: a pipelined batch as deep as
/// memtier's or rc-load's `--pipeline 16` (the store's [`SPAN_BATCH`]).
const PREFETCH_AHEAD: usize = SPAN_BATCH;

impl Connection {
    /// Before a batch of plain gets and sets runs (text: `get`, `gets`, `set` in their
    /// plain spelling; binary: the GET family, SET, SETQ), asks the CPU to load the
    /// records they will read, up to [`PREFETCH_AHEAD`] requests: the batch's memory
    /// waits then overlap instead of coming one after another. With 100k keys a get's
    /// first read of its record was two thirds of the store's time at pipeline depth
    /// 16. The keys are gathered first and handed to the store together
    /// ([`Store::record_spans`](crate::storage::Store::record_spans)), which names
    /// every key's table slot before it reads any, so the slots' misses overlap too
    /// (measured: docs/uring-features.md, "p16 after session 9"). A lone request
    /// (pipeline depth 1) costs one peek here and no lookup.
    ///
    /// Returns how many requests may run before the next look-ahead is worth doing:
    /// [`PREFETCH_AHEAD`] when it read that far, else `usize::MAX` (the input ends, or
    /// a request it does not read comes first: looking again would find the same).
    ///
    /// What it read stays in `ahead`, from `input[pos..]` on: a text get or set there
    /// then runs as read ([`Ahead::take`]), so a pipelined request is parsed once.
    fn prefetch_batch<'a>(
        &self,
        input: &'a [u8],
        pos: usize,
        ahead: &mut Option<Ahead<'a>>,
    ) -> usize {
        let rest = input.get(pos..).unwrap_or_default();
        match self.dialect {
            Dialect::Text => self.read_ahead::<true>(rest, Some((pos, ahead))),
            // Only text requests run as read (a binary one is parsed again).
            Dialect::Binary => self.read_ahead::<false>(rest, None),
            Dialect::Sasl if self.sasl.authenticated() => self.read_ahead::<false>(rest, None),
            Dialect::Sasl | Dialect::Undetected | Dialect::Unauthenticated => usize::MAX,
        }
    }

    /// What the look-ahead reads of the request at the front of `input`, in text
    /// (`TEXT`) or binary: its key and length, and a plain text get or set itself.
    #[inline(always)]
    fn peek<'a, const TEXT: bool>(&self, input: &'a [u8]) -> Option<Peeked<'a>> {
        if TEXT {
            return crate::protocol::text::peek_plain(input, &self.server.limits);
        }
        let (key, consumed) = crate::protocol::binary::peek_key(input)?;
        Some(Peeked {
            key,
            consumed,
            plain: Plain::Other,
        })
    }

    /// [`Connection::prefetch_batch`] in text (`TEXT`) or binary; what it read is kept
    /// in `keep`'s [`Ahead`] (from input offset `keep`'s `pos`), if given.
    #[inline(always)]
    fn read_ahead<'a, const TEXT: bool>(
        &self,
        rest: &'a [u8],
        keep: Option<(usize, &mut Option<Ahead<'a>>)>,
    ) -> usize {
        let peek = |input| self.peek::<TEXT>(input);
        // Nothing is set up before the first peek: at pipeline depth 1 the input here
        // is empty, and this is all the look-ahead costs.
        let Some(first) = peek(rest) else {
            return usize::MAX;
        };
        let store = &self.server.store;
        // Each key is hashed once: for its look-ahead here, and (text) for its lookup.
        let mut hashes = [store.key_hash(first.key); PREFETCH_AHEAD];
        let mut ahead = keep.map(|(pos, ahead)| {
            let ahead = ahead.get_or_insert_with(Ahead::new);
            ahead.at = pos;
            ahead.next = 0;
            ahead.count = 1;
            ahead.plain[0] = (first.plain, first.consumed);
            ahead.hashes[0] = hashes[0];
            ahead
        });
        let mut at = first.consumed;
        if at == rest.len() {
            // One request left: it runs next, so reading its record now gains nothing.
            return usize::MAX;
        }
        let mut count = 1;
        while count < PREFETCH_AHEAD {
            let Some(peeked) = peek(rest.get(at..).unwrap_or_default()) else {
                break;
            };
            hashes[count] = store.key_hash(peeked.key);
            if let Some(ahead) = ahead.as_mut() {
                ahead.plain[count] = (peeked.plain, peeked.consumed);
            }
            count += 1;
            at += peeked.consumed;
        }
        // The batch's count and hashes, once (not per request).
        if let Some(ahead) = ahead {
            ahead.count = count;
            ahead.hashes = hashes;
        }
        store.record_spans_hashed(&hashes, count, crate::os::prefetch_value, |_, bytes| {
            crate::os::prefetch(bytes)
        });
        if count == PREFETCH_AHEAD {
            PREFETCH_AHEAD
        } else {
            usize::MAX
        }
    }

    /// Starts loading the record `key` probably lives in (its first and last byte).
    #[inline]
    pub(super) fn prefetch_key(&self, key: &[u8]) {
        self.server.store.record_span(key, crate::os::prefetch);
    }
}

/// The requests one look-ahead read ([`Connection::prefetch_batch`]), in input order
/// from offset `at`: each as [`Plain`], its length and its key's hash in the store.
/// [`Ahead::take`] hands out the one at the offset a request runs from, and only that
/// one, so a request runs as read only where the look-ahead read exactly it.
struct Ahead<'a> {
    /// Where `plain[next]` starts in the input.
    at: usize,
    next: usize,
    count: usize,
    plain: [(Plain<'a>, usize); PREFETCH_AHEAD],
    hashes: [KeyHash; PREFETCH_AHEAD],
}

impl<'a> Ahead<'a> {
    fn new() -> Ahead<'a> {
        Ahead {
            at: 0,
            next: 0,
            count: 0,
            plain: [(Plain::Other, 0); PREFETCH_AHEAD],
            hashes: [KeyHash::default(); PREFETCH_AHEAD],
        }
    }

    /// The request read ahead that starts at input offset `pos`, its length and its
    /// key's hash; the next one then starts where it ends.
    /// (By reference: a request's run reads only its own fields, where a copy loaded
    /// every field of the largest.)
    #[inline]
    fn take(&mut self, pos: usize) -> Option<(&Plain<'a>, usize, KeyHash)> {
        if pos != self.at || self.next >= self.count {
            return None;
        }
        let (plain, consumed) = self.plain.get(self.next)?;
        let hash = *self.hashes.get(self.next)?;
        self.next += 1;
        self.at += consumed;
        Some((plain, *consumed, hash))
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.on_close();
        self.server.buffers.charge(&mut self.charged, 0);
        if !self.udp {
            self.server.closed();
        }
    }
}

/// The CAS value a client is shown: the item's, or 0 for every item under `-C`
/// (`cas_enabled` false), as memcached.
#[inline]
pub(super) fn shown_cas(cas_enabled: bool, cas: u64) -> u64 {
    if cas_enabled {
        cas
    } else {
        0
    }
}

#[cfg(test)]
mod tests;
