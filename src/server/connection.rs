//! The per-connection state machine: bytes in, answers out, no syscalls.
//!
//! An engine hands every received chunk to [`Connection::on_input`]. The connection
//! parses as many whole requests as the chunk holds, executes them against the store
//! and appends the answers to its [`Output`]. What it cannot execute yet it copies into
//! `pending`: an incomplete request, or (backpressure) everything after the point where
//! the output went over its mark; [`Connection::resume`] picks it up once the engine
//! has drained the output.
//!
//! Memory: the mark is checked before every request and between the keys of a
//! multi-key get (which stops part-way and resumes where it stopped, see
//! `connection/text.rs`), so a connection holds at most its mark plus one answer,
//! counting what an engine is still sending ([`Output::held`]). The mark is
//! [`OUTPUT_HIGH_WATER`], or [`OUTPUT_PRESSURE_MARK`] while all connections together
//! hold more than their shared budget ([`super::buffers`]); under that pressure a
//! connection whose unfinished request grows past
//! [`super::buffers::INPUT_PRESSURE_BYTES`] is closed.
//!
//! Before a batch runs, `Connection::prefetch_batch` reads ahead over its plain gets and
//! sets (text or binary) and asks the CPU to load the records they will touch, so the
//! lookups' cache misses overlap (a hint only: it changes no answer).
//!
//! The dialect is fixed by the first byte (0x80: binary; anything else: text, in
//! which meta commands mix with classic ones), unless `-B` forces one; each dialect's
//! parsing and execution lives in a child module (`text`, `binary`; `meta` runs the
//! meta commands the text parser hands over).
//!
//! States: reading requests → (store command over the item limit: swallowing its data
//! block) → reading requests … → closing (quit or a fatal protocol error: the output is
//! still sent, input is ignored).
//!
//! Invariants:
//! - answers leave in request order;
//! - `pending` never holds a complete request unless the output is over the high-water
//!   mark (then the engine has stopped reading, so it grows by at most one read);
//! - any split of the same bytes into chunks gives the same answers.
//!
//! The store has its own vocabulary ([`WriteMode`], its own key and item limits);
//! [`write_mode`] maps the parsers' [`StoreMode`] onto it.

mod binary;
mod meta;
mod text;

use super::buffers::INPUT_PRESSURE_BYTES;
use super::conns::{ConnRecord, ConnState};
use super::output::Output;
use super::stats::{Stat, WorkerStats};
use super::Server;
use crate::config::ProtocolChoice;
use crate::protocol::StoreMode;
use crate::storage::WriteMode;
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
}

impl Connection {
    pub(crate) fn new(server: Arc<Server>, worker: usize, record: ConnRecord) -> Connection {
        Connection {
            server,
            worker,
            dialect: Dialect::Undetected,
            pending: Vec::new(),
            out: Output::new(),
            swallow: 0,
            stalled: false,
            closing: false,
            charged: 0,
            resume_get: Vec::new(),
            record,
        }
    }

    /// The CAS value a client is shown for an item whose CAS is `cas`.
    pub(super) fn shown_cas(&self, cas: u64) -> u64 {
        shown_cas(self.server.config.cas_enabled, cas)
    }

    fn stats(&self) -> &WorkerStats {
        self.server.stats.worker(self.worker)
    }

    /// Executes the requests in `input`; keeps what it cannot execute yet.
    pub fn on_input(&mut self, input: &[u8]) {
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
            self.pending.extend_from_slice(input);
            self.resume();
        }
        self.check_input_pressure();
    }

    /// Keeps `rest` of an input chunk for later, after the command of a get stopped
    /// part-way (if any).
    fn keep(&mut self, rest: &[u8]) {
        self.pending.append(&mut self.resume_get);
        self.pending.extend_from_slice(rest);
    }

    /// Executes kept input if the output has room.
    pub fn resume(&mut self) {
        if self.pending.is_empty() || self.closing || self.out.held() >= self.output_mark() {
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
        let held = self.out.footprint() + self.pending.capacity();
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

    pub fn output(&mut self) -> &mut Output {
        &mut self.out
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
        // request runs at once (reading it ahead would parse it twice and gain nothing,
        // and at pipeline depth 1 it is all there is), then a window from the second
        // on, the next when that one has run, so a deep pipeline is read ahead all
        // along.
        let mut until_prefetch = 1;
        loop {
            if until_prefetch == 0 && self.swallow == 0 {
                until_prefetch = self.prefetch_batch(&input[pos..]);
            }
            if self.closing {
                break;
            }
            if self.out.held() >= mark {
                self.stalled = pos < input.len();
                if self.stalled && mark == OUTPUT_PRESSURE_MARK {
                    self.stats().incr(Stat::ConnBufferPauses);
                }
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
            if self.dialect == Dialect::Undetected {
                self.dialect = self.detect(rest[0]);
            }
            let used = match self.dialect {
                Dialect::Binary => self.binary_step(rest),
                _ => self.text_step(rest, mark),
            };
            match used {
                Some(n) => {
                    crate::logging::command(self.record.fd(), &rest[..n]);
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
        self.stats().add(Stat::BytesWritten, written as u64);
        crate::logging::bytes_out(self.record.fd(), written);
        let state = ConnState::after(
            self.closing,
            self.swallow > 0,
            self.stalled,
            pos < input.len(),
        );
        self.record.note(self.server.store.clock().now(), state);
        pos
    }
}

/// Requests [`Connection::prefetch_batch`] reads ahead: a pipelined batch as deep as
/// memtier's or rc-load's `--pipeline 16`.
const PREFETCH_AHEAD: usize = 16;

impl Connection {
    /// Before a batch of plain gets and sets runs (text: `get`, `gets`, `set` in their
    /// plain spelling; binary: the GET family, SET, SETQ), asks the CPU to load the
    /// records they will read, up to [`PREFETCH_AHEAD`] requests: the batch's memory
    /// waits then overlap instead of coming one after another. With 100k keys a get's
    /// first read of its record was two thirds of the store's time at pipeline depth
    /// 16. A lone request (pipeline depth 1) costs one peek here and no lookup.
    ///
    /// Returns how many requests may run before the next look-ahead is worth doing:
    /// [`PREFETCH_AHEAD`] when it read that far, else `usize::MAX` (the input ends, or
    /// a request it does not read comes first: looking again would find the same).
    fn prefetch_batch(&self, input: &[u8]) -> usize {
        let mut at = 0;
        for _ in 0..PREFETCH_AHEAD {
            let rest = &input[at..];
            let peeked = match self.dialect {
                Dialect::Text => self.peek_text(rest),
                Dialect::Binary => crate::protocol::binary::peek_key(rest),
                Dialect::Undetected => None,
            };
            let Some((key, consumed)) = peeked else {
                return usize::MAX;
            };
            if at == 0 && consumed == input.len() {
                return usize::MAX;
            }
            self.prefetch_key(key);
            at += consumed;
        }
        PREFETCH_AHEAD
    }

    /// Starts loading the record `key` probably lives in (its first and last byte).
    #[inline]
    pub(super) fn prefetch_key(&self, key: &[u8]) {
        self.server.store.record_span(key, crate::os::prefetch);
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.server.buffers.charge(&mut self.charged, 0);
        self.server.closed();
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
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::server::stats::Stat;
    use std::io::IoSlice;

    pub(super) fn server(args: &[&str]) -> Arc<Server> {
        let argv = ["ringcache", "-t", "1"].iter().chain(args.iter()).copied();
        Server::new(Config::parse_args(argv).expect("test config"))
    }

    /// The parsers and the store each keep memcached's limits in their own words; the
    /// connection relies on them being the same rules.
    #[test]
    fn protocol_and_store_limits_agree() {
        assert_eq!(
            crate::protocol::KEY_MAX_BYTES,
            crate::storage::KEY_MAX_BYTES
        );
        for max in [64, 1024, 1024 * 1024] {
            for key_len in [0, 1, 250] {
                for flags in [0, 1] {
                    for value_len in (0..max + 8).step_by(7).chain([usize::MAX]) {
                        assert_eq!(
                            crate::protocol::item_too_large(key_len, value_len, flags, max),
                            crate::storage::item_too_large(key_len, value_len, flags, max),
                            "key {key_len} value {value_len} flags {flags} max {max}"
                        );
                    }
                }
            }
        }
        for mode in [
            StoreMode::Set,
            StoreMode::Add,
            StoreMode::Replace,
            StoreMode::Append,
            StoreMode::Prepend,
            StoreMode::Cas,
        ] {
            assert_eq!(format!("{mode:?}"), format!("{:?}", write_mode(mode)));
        }
    }

    /// Takes everything the connection has answered so far.
    fn drain(conn: &mut Connection) -> Vec<u8> {
        let out = conn.output();
        let mut bytes = Vec::new();
        loop {
            let mut slices = [IoSlice::new(&[]); 16];
            let n = out.chunks(&mut slices);
            if n == 0 {
                return bytes;
            }
            let len: usize = slices[..n].iter().map(|s| s.len()).sum();
            for s in &slices[..n] {
                bytes.extend_from_slice(s);
            }
            out.advance(len);
        }
    }

    pub(super) fn answers(server: &Arc<Server>, chunks: &[&[u8]]) -> Vec<u8> {
        let mut conn = server.open(0).unwrap();
        let mut all = Vec::new();
        for c in chunks {
            conn.on_input(c);
            all.extend(drain(&mut conn));
        }
        all
    }

    const SESSION: &[u8] = b"set a 5 0 3\r\nabc\r\nget a b\r\nappend a 0 0 2 noreply\r\nde\r\n\
gets a\r\nincr n 1\r\nset n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 100\r\ndelete a\r\n\
delete a\r\ntouch n 10\r\nbogus\r\nversion\r\n";

    #[test]
    fn a_session_answers_like_memcached() {
        let s = server(&[]);
        let out = String::from_utf8(answers(&s, &[SESSION])).unwrap();
        let cas_line = out.lines().nth(4).unwrap().to_string();
        assert!(cas_line.starts_with("VALUE a 5 5 "), "{out}");
        let expected = format!(
            "STORED\r\nVALUE a 5 3\r\nabc\r\nEND\r\n{cas_line}\r\nabcde\r\nEND\r\nNOT_FOUND\r\n\
STORED\r\n15\r\n0\r\nDELETED\r\nNOT_FOUND\r\nTOUCHED\r\nERROR\r\nVERSION {}\r\n",
            crate::server::VERSION
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn any_split_gives_the_same_answers() {
        let whole = answers(&server(&[]), &[SESSION]);
        let strip_cas = |b: Vec<u8>| {
            String::from_utf8(b)
                .unwrap()
                .lines()
                .map(|l| {
                    if l.starts_with("VALUE a 5 5 ") {
                        "VALUE a 5 5 <cas>"
                    } else {
                        l
                    }
                })
                .collect::<Vec<_>>()
                .join("\n")
        };
        let whole = strip_cas(whole);
        let bytes: Vec<&[u8]> = SESSION.chunks(1).collect();
        assert_eq!(strip_cas(answers(&server(&[]), &bytes)), whole);
        for size in [2, 3, 7, 13] {
            let chunks: Vec<&[u8]> = SESSION.chunks(size).collect();
            assert_eq!(
                strip_cas(answers(&server(&[]), &chunks)),
                whole,
                "chunk {size}"
            );
        }
    }

    #[test]
    fn a_value_over_the_limit_is_swallowed_and_the_stream_stays_in_step() {
        let s = server(&["-I", "1k"]);
        let mut input = b"set k 0 0 3\r\nold\r\nset k 0 0 5000\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 5000));
        input.extend_from_slice(b"\r\nget k\r\n");
        let chunks: Vec<&[u8]> = input.chunks(700).collect();
        let out = answers(&s, &chunks);
        assert_eq!(
            out,
            b"STORED\r\nSERVER_ERROR object too large for cache\r\nEND\r\n".to_vec()
        );
    }

    #[test]
    fn quit_closes_and_ignores_the_rest() {
        let s = server(&[]);
        let mut conn = s.open(0).unwrap();
        conn.on_input(b"version\r\nquit\r\nversion\r\n");
        assert!(conn.is_closing());
        assert!(!conn.wants_input());
        let out = String::from_utf8(drain(&mut conn)).unwrap();
        assert_eq!(out.matches("VERSION").count(), 1);
    }

    #[test]
    fn backpressure_stops_at_the_high_water_mark_and_resumes() {
        let s = server(&[]);
        let mut conn = s.open(0).unwrap();
        let big = vec![b'v'; 512 * 1024];
        let mut set = format!("set big 0 0 {}\r\n", big.len()).into_bytes();
        set.extend_from_slice(&big);
        set.extend_from_slice(b"\r\n");
        conn.on_input(&set);
        drain(&mut conn);
        let gets = b"get big\r\n".repeat(64);
        conn.on_input(&gets);
        assert!(!conn.wants_input(), "output over the mark stops input");
        let held = conn.pending_len();
        assert!(held > 0 && held < gets.len());
        let mut total = 0;
        while conn.pending_len() > 0 || !conn.output().is_empty() {
            let got = drain(&mut conn);
            assert!(got.len() <= OUTPUT_HIGH_WATER + big.len() + 64);
            total += got.len();
            conn.resume();
        }
        let one = big.len() + "VALUE big 0 524288\r\n\r\nEND\r\n".len();
        assert_eq!(total, 64 * one);
    }

    /// Stores a `len`-byte value under `key` and drains the answer.
    fn store_big(conn: &mut Connection, key: &str, len: usize) {
        let mut set = format!("set {key} 0 0 {len}\r\n").into_bytes();
        set.extend(std::iter::repeat_n(b'v', len));
        set.extend_from_slice(b"\r\n");
        conn.on_input(&set);
        assert_eq!(drain(conn), b"STORED\r\n");
    }

    #[test]
    fn a_multi_key_get_stops_at_the_mark_and_resumes_where_it_stopped() {
        let s = server(&[]);
        let mut conn = s.open(0).unwrap();
        let len = 300 * 1024;
        store_big(&mut conn, "b", len);
        for (command, with_cas) in [("get", false), ("gats 100", true)] {
            // 200 keys ask for 60 MB; a miss and a small hit sit between them.
            let mut line = command.to_string();
            for i in 0..200 {
                line.push_str(if i == 7 { " nope b" } else { " b" });
            }
            line.push_str("\r\nversion\r\n");
            conn.on_input(line.as_bytes());
            assert!(!conn.wants_input(), "stopped at the mark");
            let mut got = Vec::new();
            loop {
                assert!(
                    conn.output().held() <= OUTPUT_HIGH_WATER + len + 64,
                    "held {} with a mark of {OUTPUT_HIGH_WATER}",
                    conn.output().held()
                );
                let part = drain(&mut conn);
                if part.is_empty() && conn.pending_len() == 0 {
                    break;
                }
                got.extend(part);
                conn.resume();
            }
            let text = String::from_utf8_lossy(&got);
            let headers: Vec<&str> = text.lines().filter(|l| l.starts_with("VALUE")).collect();
            assert_eq!(headers.len(), 200, "{command}: every hit answered once");
            assert!(headers.iter().all(|h| h.starts_with("VALUE b 0 307200")));
            assert_eq!(headers.iter().any(|h| h.split(' ').count() == 5), with_cas);
            assert_eq!(
                text.matches("END\r\n").count(),
                1,
                "one END, after the last key"
            );
            assert!(text.ends_with(&format!("END\r\nVERSION {}\r\n", crate::server::VERSION)));
            assert!(conn.wants_input());
        }
    }

    #[test]
    fn big_gets_get_memcacheds_out_of_memory_answer_once_the_shared_budget_is_full() {
        let s = server(&["-o", "conn_buffer_limit_mb=1"]);
        let mut hog = s.open(0).unwrap();
        let len = 600 * 1024;
        store_big(&mut hog, "big", len);
        // The hog's answer stays unsent: 600 KiB of the 1 MiB budget.
        hog.on_input(b"get big\r\n");
        assert!(s.buffers.used_bytes() > 500 * 1024);
        let mut text = s.open(0).unwrap();
        text.on_input(b"get big\r\nmg big v\r\nmg big s\r\n");
        assert_eq!(
            String::from_utf8(drain(&mut text)).unwrap(),
            "SERVER_ERROR out of memory writing get response\r\n\
             SERVER_ERROR out of memory writing get response\r\nHD s614400\r\n",
            "a get of a big value is refused; one without its value is served"
        );
        let mut binary = s.open(0).unwrap();
        let mut get = vec![0x80, 0x00, 0, 3, 0, 0, 0, 0, 0, 0, 0, 3];
        get.extend_from_slice(&[0; 12]);
        get.extend_from_slice(b"big");
        binary.on_input(&get);
        let answer = drain(&mut binary);
        assert_eq!(&answer[6..8], &[0x00, 0x82], "binary: out of memory");
        // Once the hog's client has read, there is room again.
        drain(&mut hog);
        hog.resume();
        assert_eq!(s.buffers.used_bytes(), 0);
        text.on_input(b"get big\r\n");
        assert_eq!(
            drain(&mut text).len(),
            "VALUE big 0 614400\r\n\r\nEND\r\n".len() + len
        );
        let refusals = s.stats.totals().get(Stat::ConnBufferRefusals);
        assert_eq!(refusals, 3);
    }

    #[test]
    fn connection_count_follows_open_and_drop() {
        let s = server(&["-c", "2"]);
        let a = s.open(0).unwrap();
        let _b = s.open(0).unwrap();
        assert!(s.open(0).is_none(), "past -c");
        assert_eq!(s.curr_connections(), 2);
        drop(a);
        assert_eq!(s.curr_connections(), 1);
        assert!(s.open(0).is_some());
    }
}
