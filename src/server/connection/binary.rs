//! The binary protocol (magic 0x80): parse one request, run it against the store,
//! answer with binary packets.
//!
//! What each opcode answers, and the memcached 1.6.18 behaviour it reproduces, is
//! tabled in `protocol::binary`; this file maps commands onto store calls
//! (`storage::binary_ops` for the CAS-returning ones) and counts them in the worker's
//! stats as memcached's binary path does (which differs from its text path: GAT counts
//! only touch stats, a value too large and a created incr count nothing).
//!
//! Invariants: quiet commands send errors but no success (and GETQ/GETKQ/GATQ/GATKQ no
//! miss); every request that is answered is answered exactly once, in order, except
//! STAT, which sends one packet per stat and an empty terminator; a fatal packet is
//! answered and closes the connection, bad magic closes it silently.

use super::Connection;
use crate::protocol::binary::response::{self, ReplyTo, Status};
use crate::protocol::binary::{self, Arith, BinaryRequest, Command, ParseError, Parsed, NO_CREATE};
use crate::protocol::{Response, StatsGroup, StoreMode};
use crate::server::stats::Stat;
use crate::storage::binary_ops::{ArithOutcome, DeleteResult, Initial};
use crate::storage::StoreResult;
use std::sync::Arc;

#[cfg(test)]
mod tests;

impl Connection {
    /// Parses and runs one binary request from the front of `input`; returns the bytes
    /// it used, or `None` when `input` holds no whole request yet (or the connection is
    /// closing).
    pub(super) fn binary_step(&mut self, input: &[u8]) -> Option<usize> {
        match binary::parse(input, &self.server.limits) {
            Ok(Parsed {
                request,
                consumed,
                swallow,
            }) => {
                self.swallow = swallow;
                self.binary_dispatch(request);
                Some(consumed)
            }
            Err(ParseError::Incomplete) => None,
            Err(ParseError::BadMagic) => {
                self.closing = true;
                None
            }
            Err(ParseError::Fatal {
                opcode,
                opaque,
                status,
            }) => {
                self.binary_error(ReplyTo { opcode, opaque }, status);
                self.closing = true;
                None
            }
        }
    }

    fn binary_ok(&mut self, to: ReplyTo, cas: u64) {
        response::put_ok(self.out.buf(), to, cas);
    }

    fn binary_error(&mut self, to: ReplyTo, status: Status) {
        response::put_error(self.out.buf(), to, status);
    }

    fn binary_count(&self, hit: bool, on_hit: Stat, on_miss: Stat) {
        self.stats().incr(if hit { on_hit } else { on_miss });
    }

    fn binary_dispatch(&mut self, request: BinaryRequest<'_>) {
        let to = ReplyTo {
            opcode: request.opcode,
            opaque: request.opaque,
        };
        match request.command {
            Command::Get {
                key,
                touch,
                with_key,
                quiet,
            } => self.binary_get(to, key, touch, with_key, quiet),
            Command::Touch { key, exptime } => self.binary_touch(to, key, exptime),
            Command::Store {
                mode,
                key,
                flags,
                exptime,
                value,
                quiet,
            } => {
                // A non-zero CAS turns set, add and replace alike into a cas.
                let compare = request.cas != 0
                    && matches!(mode, StoreMode::Set | StoreMode::Add | StoreMode::Replace);
                let effective = if compare { StoreMode::Cas } else { mode };
                let (result, cas) = self.server.store.store_cas(
                    super::write_mode(effective),
                    key,
                    flags,
                    i64::from(exptime),
                    // With -C no CAS matches (see the text `cas`).
                    if compare && !self.server.config.cas_enabled {
                        u64::MAX
                    } else {
                        request.cas
                    },
                    value,
                );
                let cas = self.shown_cas(cas);
                self.binary_count_store(effective, result);
                let status = match result {
                    StoreResult::Stored if quiet => return,
                    StoreResult::Stored => return self.binary_ok(to, cas),
                    StoreResult::Exists => Status::KeyExists,
                    StoreResult::NotFound => Status::KeyNotFound,
                    StoreResult::NotStored => match effective {
                        StoreMode::Add => Status::KeyExists,
                        StoreMode::Replace => Status::KeyNotFound,
                        _ => Status::NotStored,
                    },
                    StoreResult::TooLarge => Status::TooLarge,
                    StoreResult::OutOfMemory => Status::OutOfMemory,
                };
                self.binary_error(to, status);
            }
            Command::TooLarge { mode, key } => {
                if mode == StoreMode::Set {
                    self.server.store.delete(key);
                }
                self.binary_error(to, Status::TooLarge);
            }
            Command::Delete { key, quiet } => {
                match self.server.store.delete_cas(key, request.cas) {
                    DeleteResult::Deleted => {
                        self.stats().incr(Stat::DeleteHits);
                        if !quiet {
                            self.binary_ok(to, 0);
                        }
                    }
                    DeleteResult::NotFound => {
                        self.stats().incr(Stat::DeleteMisses);
                        self.binary_error(to, Status::KeyNotFound);
                    }
                    DeleteResult::Exists => self.binary_error(to, Status::KeyExists),
                }
            }
            Command::Arith(arith) => self.binary_arith(to, request.cas, arith),
            Command::Flush { .. } if !self.server.config.flush_enabled => {
                // memcached answers AUTH_ERROR (0x20), which the protocol crate does not
                // model yet; refuse, never flush.
                self.binary_error(to, Status::UnknownCommand);
            }
            Command::Flush { delay_secs, quiet } => {
                self.stats().incr(Stat::CmdFlush);
                self.server.store.flush_all(i64::from(delay_secs));
                if !quiet {
                    self.binary_ok(to, 0);
                }
            }
            Command::Noop => self.binary_ok(to, 0),
            Command::Version => {
                let version = crate::server::VERSION.as_bytes();
                response::put(self.out.buf(), to, Status::NoError, 0, &[], &[], version);
            }
            Command::Quit { quiet } => {
                if !quiet {
                    self.binary_ok(to, 0);
                }
                self.closing = true;
            }
            Command::Stat { group } => self.binary_stats(to, group),
            Command::Unknown => self.binary_error(to, Status::UnknownCommand),
        }
    }

    /// GET GETQ GETK GETKQ, and GAT GATQ GATK GATKQ when `touch` is set.
    fn binary_get(
        &mut self,
        to: ReplyTo,
        key: &[u8],
        touch: Option<u32>,
        with_key: bool,
        quiet: bool,
    ) {
        let cas_on = self.server.config.cas_enabled;
        let out = self.out.buf();
        let buffers = &self.server.buffers;
        let mut refused = false;
        let hit = self.server.store.get(key, touch.map(i64::from), |item| {
            let Some(item) = item else { return false };
            if item.value.len() >= super::text::SEGMENT_MIN_BYTES
                && !buffers.has_room(item.value.len())
            {
                refused = true;
                return false;
            }
            let key = if with_key { item.key } else { &[] };
            let flags = item.flags.to_be_bytes();
            let cas = super::shown_cas(cas_on, item.cas);
            response::put(out, to, Status::NoError, cas, &flags, key, item.value);
            true
        });
        if refused {
            // memcached's answer when it has no memory for the answer.
            self.stats().incr(Stat::ConnBufferRefusals);
            return self.binary_error(to, Status::OutOfMemory);
        }
        if !hit && !quiet {
            if with_key {
                response::put(out, to, Status::KeyNotFound, 0, &[], key, &[]);
            } else {
                response::put_error(out, to, Status::KeyNotFound);
            }
        }
        if touch.is_some() {
            self.stats().incr(Stat::CmdTouch);
            self.binary_count(hit, Stat::TouchHits, Stat::TouchMisses);
        } else {
            self.stats().incr(Stat::CmdGet);
            self.binary_count(hit, Stat::GetHits, Stat::GetMisses);
        }
    }

    /// TOUCH: the hit's flags and CAS, no value.
    fn binary_touch(&mut self, to: ReplyTo, key: &[u8], exptime: u32) {
        let hit = self
            .server
            .store
            .get(key, Some(i64::from(exptime)), |item| {
                item.map(|i| (i.flags, i.cas))
            });
        self.stats().incr(Stat::CmdTouch);
        self.binary_count(hit.is_some(), Stat::TouchHits, Stat::TouchMisses);
        match hit {
            Some((flags, cas)) => {
                let cas = self.shown_cas(cas);
                let flags = flags.to_be_bytes();
                response::put(self.out.buf(), to, Status::NoError, cas, &flags, &[], &[]);
            }
            None => self.binary_error(to, Status::KeyNotFound),
        }
    }

    /// INCREMENT DECREMENT (+Q): the new value as 8 big-endian bytes and its CAS.
    fn binary_arith(&mut self, to: ReplyTo, cas: u64, arith: Arith<'_>) {
        let Arith {
            key,
            incr,
            delta,
            initial,
            exptime,
            quiet,
        } = arith;
        let initial = (exptime != NO_CREATE).then_some(Initial {
            value: initial,
            exptime: i64::from(exptime),
        });
        let (hit, miss) = if incr {
            (Stat::IncrHits, Stat::IncrMisses)
        } else {
            (Stat::DecrHits, Stat::DecrMisses)
        };
        let (value, cas) = match self.server.store.arith_cas(key, delta, incr, cas, initial) {
            ArithOutcome::Updated { value, cas } => {
                self.stats().incr(hit);
                (value, cas)
            }
            ArithOutcome::Created { value, cas } => (value, cas),
            ArithOutcome::NotFound => {
                self.stats().incr(miss);
                return self.binary_error(to, Status::KeyNotFound);
            }
            ArithOutcome::NonNumeric => return self.binary_error(to, Status::NonNumeric),
            ArithOutcome::Exists => return self.binary_error(to, Status::KeyExists),
            ArithOutcome::OutOfMemory => return self.binary_error(to, Status::OutOfMemory),
        };
        if !quiet {
            let value = value.to_be_bytes();
            response::put(self.out.buf(), to, Status::NoError, cas, &[], &[], &value);
        }
    }

    /// STAT: one packet per stat of the group `stats <group>` reports, then an empty
    /// one; a group memcached does not know is `Not found`.
    fn binary_stats(&mut self, to: ReplyTo, group: Option<StatsGroup<'_>>) {
        let Some(group) = group else {
            return self.binary_ok(to, 0);
        };
        let server = Arc::clone(&self.server);
        let asker = self.record.fd();
        let out = self.out.buf();
        crate::server::stats_report::write(&server, group, asker, &mut |r| match r {
            Response::Stat(name, value) => {
                let (name, value) = (name.as_bytes(), value.as_bytes());
                response::put(out, to, Status::NoError, 0, &[], name, value);
            }
            Response::Error => response::put_error(out, to, Status::KeyNotFound),
            // END, or RESET after `stats reset`.
            _ => response::put_ok(out, to, 0),
        });
    }

    /// Counts a store command as the text path does.
    fn binary_count_store(&self, mode: StoreMode, result: StoreResult) {
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
