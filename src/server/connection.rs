//! The per-connection state machine: bytes in, answers out, no syscalls.
//!
//! An engine hands every received chunk to [`Connection::on_input`]. The connection
//! parses as many whole requests as the chunk holds, executes them against the store
//! and appends the answers to its [`Output`]. What it cannot execute yet it copies into
//! `pending`: an incomplete request, or (backpressure) everything after the point where
//! the output went over [`OUTPUT_HIGH_WATER`]; [`Connection::resume`] picks it up once
//! the engine has drained the output.
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

use super::output::Output;
use super::stats::{Stat, WorkerStats};
use super::Server;
use crate::protocol::{encode, text, ParseError, Parsed, Request, Response, StoreMode};
use crate::storage::{ArithResult, StoreResult};
use std::sync::Arc;

/// Output bytes above which the connection stops executing requests (and its engine
/// stops reading) until the client has read its answers.
pub const OUTPUT_HIGH_WATER: usize = 4 * 1024 * 1024;

/// One client connection's protocol state.
#[derive(Debug)]
pub struct Connection {
    server: Arc<Server>,
    worker: usize,
    /// Received bytes not executed yet.
    pending: Vec<u8>,
    out: Output,
    /// Input bytes still to drop (the data block of a refused store command).
    swallow: usize,
    closing: bool,
}

impl Connection {
    pub(crate) fn new(server: Arc<Server>, worker: usize) -> Connection {
        Connection {
            server,
            worker,
            pending: Vec::new(),
            out: Output::new(),
            swallow: 0,
            closing: false,
        }
    }

    fn stats(&self) -> &WorkerStats {
        self.server.stats.worker(self.worker)
    }

    /// Executes the requests in `input`; keeps what it cannot execute yet.
    pub fn on_input(&mut self, input: &[u8]) {
        self.stats().add(Stat::BytesRead, input.len() as u64);
        if self.closing {
            return;
        }
        if self.pending.is_empty() {
            let used = self.execute(input);
            if used < input.len() && !self.closing {
                self.pending.extend_from_slice(&input[used..]);
            }
        } else {
            self.pending.extend_from_slice(input);
            self.resume();
        }
    }

    /// Executes kept input if the output has room.
    pub fn resume(&mut self) {
        if self.pending.is_empty() || self.closing || !self.wants_input() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let used = self.execute(&pending);
        if self.closing {
            return;
        }
        pending.drain(..used);
        if pending.capacity() > 64 * 1024 && pending.len() < 16 * 1024 {
            pending.shrink_to(16 * 1024);
        }
        self.pending = pending;
    }

    pub fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    /// False while the output is over its high-water mark or the connection is closing.
    pub fn wants_input(&self) -> bool {
        !self.closing && self.out.len() < OUTPUT_HIGH_WATER
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Bytes received but not executed yet.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Parses and executes requests from the front of `input`; returns the bytes used.
    fn execute(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        let written_before = self.out.len();
        while !self.closing && self.out.len() < OUTPUT_HIGH_WATER {
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
            match text::parse(&input[pos..], &self.server.limits) {
                Ok(Parsed { request, consumed }) => {
                    pos += consumed;
                    self.dispatch(request);
                }
                Err(ParseError::Incomplete) => break,
                Err(ParseError::Invalid {
                    reply,
                    consumed,
                    swallow,
                }) => {
                    pos += consumed;
                    self.line(reply);
                    self.swallow = swallow;
                }
                Err(ParseError::Fatal { reply }) => {
                    if let Some(reply) = reply {
                        self.line(reply);
                    }
                    self.closing = true;
                }
            }
        }
        let written = self.out.len().saturating_sub(written_before);
        self.stats().add(Stat::BytesWritten, written as u64);
        pos
    }

    fn reply(&mut self, response: Response<'_>) {
        encode::text(&response, self.out.buf());
    }

    /// Writes a complete answer line given without its `\r\n`.
    fn line(&mut self, line: &str) {
        let buf = self.out.buf();
        buf.extend_from_slice(line.as_bytes());
        buf.extend_from_slice(b"\r\n");
    }

    fn reply_unless(&mut self, noreply: bool, response: Response<'_>) {
        if !noreply {
            self.reply(response);
        }
    }

    fn dispatch(&mut self, request: Request<'_>) {
        match request {
            Request::Get {
                keys,
                with_cas,
                touch,
            } => {
                for key in keys.iter() {
                    self.get(key, with_cas, touch);
                }
                self.reply(Response::End);
            }
            Request::Store {
                mode,
                key,
                flags,
                exptime,
                cas,
                value,
                noreply,
            } => {
                let result = self
                    .server
                    .store
                    .store(mode, key, flags, exptime, cas, value);
                self.count_store(mode, result);
                let response = match result {
                    StoreResult::Stored => Response::Stored,
                    StoreResult::NotStored => Response::NotStored,
                    StoreResult::Exists => Response::Exists,
                    StoreResult::NotFound => Response::NotFound,
                    StoreResult::TooLarge => Response::ServerError(TOO_LARGE),
                    StoreResult::OutOfMemory => Response::ServerError(NO_MEMORY),
                };
                self.reply_unless(noreply, response);
            }
            Request::TooLarge {
                mode,
                key,
                noreply,
                swallow,
            } => {
                if mode == StoreMode::Set {
                    self.server.store.delete(key);
                }
                self.stats().incr(Stat::CmdSet);
                self.stats().incr(Stat::StoreTooLarge);
                self.reply_unless(noreply, Response::ServerError(TOO_LARGE));
                self.swallow = swallow;
            }
            Request::Delete { key, noreply } => {
                let hit = self.server.store.delete(key);
                self.count(hit, Stat::DeleteHits, Stat::DeleteMisses);
                let response = if hit {
                    Response::Deleted
                } else {
                    Response::NotFound
                };
                self.reply_unless(noreply, response);
            }
            Request::Arith {
                key,
                delta,
                incr,
                noreply,
            } => {
                let result = self.server.store.arith(key, delta, incr);
                let (hit, miss) = if incr {
                    (Stat::IncrHits, Stat::IncrMisses)
                } else {
                    (Stat::DecrHits, Stat::DecrMisses)
                };
                self.count(result != ArithResult::NotFound, hit, miss);
                let response = match result {
                    ArithResult::Value(n) => Response::Number(n),
                    ArithResult::NotFound => Response::NotFound,
                    ArithResult::NonNumeric => {
                        Response::ClientError("cannot increment or decrement non-numeric value")
                    }
                    ArithResult::OutOfMemory => Response::ServerError("out of memory"),
                };
                self.reply_unless(noreply, response);
            }
            Request::Touch {
                key,
                exptime,
                noreply,
            } => {
                self.stats().incr(Stat::CmdTouch);
                let hit = self.server.store.touch(key, exptime);
                self.count(hit, Stat::TouchHits, Stat::TouchMisses);
                let response = if hit {
                    Response::Touched
                } else {
                    Response::NotFound
                };
                self.reply_unless(noreply, response);
            }
            Request::FlushAll {
                delay_secs,
                noreply,
            } => {
                self.stats().incr(Stat::CmdFlush);
                self.server.store.flush_all(delay_secs);
                self.reply_unless(noreply, Response::Ok);
            }
            Request::Version => self.reply(Response::Version(super::VERSION)),
            Request::Verbosity { level, noreply } => {
                self.server.set_verbosity(level.min(u8::MAX as u32) as u8);
                self.reply_unless(noreply, Response::Ok);
            }
            Request::Stats(group) => {
                let server = Arc::clone(&self.server);
                super::stats_report::write(&server, group, &mut |r| self.reply(r));
            }
            Request::Quit => self.closing = true,
        }
    }

    fn get(&mut self, key: &[u8], with_cas: bool, touch: Option<i64>) {
        let stats = self.server.stats.worker(self.worker);
        stats.incr(Stat::CmdGet);
        if touch.is_some() {
            stats.incr(Stat::CmdTouch);
        }
        let out = self.out.buf();
        let hit = self.server.store.get(key, touch, |item| match item {
            Some(item) => {
                let response = Response::Value {
                    key: item.key,
                    flags: item.flags,
                    value: item.value,
                    cas: with_cas.then_some(item.cas),
                };
                encode::text(&response, out);
                true
            }
            None => false,
        });
        if touch.is_some() {
            self.count(hit, Stat::TouchHits, Stat::TouchMisses);
        }
        self.count(hit, Stat::GetHits, Stat::GetMisses);
    }

    fn count(&self, hit: bool, on_hit: Stat, on_miss: Stat) {
        self.stats().incr(if hit { on_hit } else { on_miss });
    }

    fn count_store(&self, mode: StoreMode, result: StoreResult) {
        let stats = self.stats();
        stats.incr(Stat::CmdSet);
        match (mode, result) {
            (StoreMode::Cas, StoreResult::Stored) => stats.incr(Stat::CasHits),
            (StoreMode::Cas, StoreResult::Exists) => stats.incr(Stat::CasBadval),
            (StoreMode::Cas, StoreResult::NotFound) => stats.incr(Stat::CasMisses),
            (_, StoreResult::TooLarge) => stats.incr(Stat::StoreTooLarge),
            (_, StoreResult::OutOfMemory) => stats.incr(Stat::StoreNoMemory),
            _ => {}
        }
    }
}

const TOO_LARGE: &str = "object too large for cache";
const NO_MEMORY: &str = "out of memory storing object";

impl Drop for Connection {
    fn drop(&mut self) {
        self.server.closed();
    }
}
