//! The binary protocol (magic 0x80): parse one request, run it against the store,
//! answer with binary packets.
//!
//! What each opcode answers, and the memcached 1.6.18 behaviour it reproduces, is
//! tabled in `protocol::binary`; this file maps commands onto the store's operations
//! (a non-zero CAS makes set, add and replace a cas and guards append, prepend, delete
//! and incr/decr; an initial value is an item to create) and counts them in the
//! worker's stats as memcached's binary path does (which differs from its text path:
//! GAT counts only touch stats, a value too large and a created incr count nothing).
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
use crate::storage::{
    ArithResult, Delete, DeleteResult, Initial, Read, StoreResult, Write, WriteMode,
};
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
            Err(e) => self.binary_refused(e),
        }
    }

    /// What a binary packet the parser refused does: nothing yet (incomplete), or the
    /// connection closes (bad magic; a fatal error, answered first). Returns the bytes
    /// used: none.
    pub(super) fn binary_refused(&mut self, e: ParseError) -> Option<usize> {
        match e {
            ParseError::Incomplete => {}
            ParseError::BadMagic => self.closing = true,
            ParseError::Fatal {
                opcode,
                opaque,
                status,
            } => {
                self.binary_error(ReplyTo { opcode, opaque }, status);
                self.closing = true;
                self.fatal = true;
            }
        }
        None
    }

    fn binary_ok(&mut self, to: ReplyTo, cas: u64) {
        response::put_ok(self.out.buf(), to, cas);
    }

    fn binary_error(&mut self, to: ReplyTo, status: Status) {
        response::put_error(self.out.buf(), to, status);
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
                // A non-zero CAS turns set, add and replace alike into a cas, and guards
                // append and prepend.
                let compare = request.cas != 0
                    && matches!(mode, StoreMode::Set | StoreMode::Add | StoreMode::Replace);
                let effective = if compare { StoreMode::Cas } else { mode };
                let write = Write {
                    flags,
                    exptime: i64::from(exptime),
                    // With -C no CAS matches (see the text `cas`).
                    cas: if compare && !self.server.config.cas_enabled {
                        u64::MAX
                    } else {
                        request.cas
                    },
                    ..Write::new(super::write_mode(effective))
                };
                self.binary_store(to, key, value, &write, quiet);
            }
            Command::TooLarge { mode, key } => {
                if mode == StoreMode::Set {
                    self.server.store.delete(key, Delete::default());
                }
                self.binary_error(to, Status::TooLarge);
            }
            Command::Delete { key, quiet } => self.binary_delete(to, key, request.cas, quiet),
            Command::Arith(arith) => self.binary_arith(to, request.cas, arith),
            Command::Flush { .. } if !self.server.config.flush_enabled => {
                // memcached 1.6.18 under -F: AUTH_ERROR "Auth failure.", quiet or not.
                self.binary_error(to, Status::AuthError);
            }
            Command::Flush { delay_secs, quiet } => {
                self.stats().incr(Stat::CmdFlush);
                self.flush_all(i64::from(delay_secs));
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

    /// SET ADD REPLACE APPEND PREPEND (+Q): the new CAS on success.
    fn binary_store(&mut self, to: ReplyTo, key: &[u8], value: &[u8], write: &Write, quiet: bool) {
        let (result, cas) = self.server.store.write(key, value, write);
        let cas = self.shown_cas(cas);
        self.count_store(write.mode, result);
        // memcached's binary append and prepend do not count per prefix.
        let detail = !matches!(write.mode, WriteMode::Append | WriteMode::Prepend);
        self.observe_store(
            key,
            write.mode,
            result,
            (value.len(), write.exptime),
            detail,
        );
        let status = match result {
            StoreResult::Stored if quiet => return,
            StoreResult::Stored => return self.binary_ok(to, cas),
            StoreResult::Exists => Status::KeyExists,
            StoreResult::NotFound => Status::KeyNotFound,
            StoreResult::NotStored => match write.mode {
                WriteMode::Add => Status::KeyExists,
                WriteMode::Replace => Status::KeyNotFound,
                _ => Status::NotStored,
            },
            StoreResult::TooLarge => Status::TooLarge,
            StoreResult::OutOfMemory => Status::OutOfMemory,
        };
        self.binary_error(to, status);
    }

    /// DELETE (+Q): a non-zero CAS must equal the item's.
    fn binary_delete(&mut self, to: ReplyTo, key: &[u8], cas: u64, quiet: bool) {
        let delete = Delete {
            cas: (cas != 0).then_some(cas),
            ..Delete::default()
        };
        let peeked = self.peek_for_watch(key);
        let result = self.server.store.delete(key, delete);
        let deleted = result == DeleteResult::Deleted;
        self.observe_delete(key, peeked, deleted, "delete", true);
        match result {
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
            DeleteResult::Invalidated => unreachable!("a binary delete never invalidates"),
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
        let mut shared = None;
        let read = Read {
            touch: touch.map(i64::from),
            ..Read::GET
        };
        let hit = self.server.store.get(
            key,
            read,
            #[inline(always)]
            |item| {
                let Some(item) = item else { return false };
                let value = item.value();
                if value.len() >= super::text::SEGMENT_MIN_BYTES && !buffers.has_room(value.len()) {
                    refused = true;
                    return false;
                }
                let key = if with_key { item.key() } else { &[] };
                let flags = item.flags().to_be_bytes();
                let cas = super::shown_cas(cas_on, item.cas());
                if value.len() >= super::text::SEGMENT_MIN_BYTES {
                    // The store's large class: the value follows without a copy.
                    shared = item.shared_value();
                }
                if shared.is_some() {
                    let (extras, status) = (flags.len(), Status::NoError);
                    response::put_header(out, to, status, cas, extras, key.len(), value.len());
                    out.extend_from_slice(&flags);
                    out.extend_from_slice(key);
                } else {
                    response::put(out, to, Status::NoError, cas, &flags, key, value);
                }
                true
            },
        );
        if let Some(shared) = shared {
            self.out.push_pinned(shared.value, shared.pinned_bytes);
        }
        if refused {
            // memcached's answer when it has no memory for the answer.
            self.stats().incr(Stat::ConnBufferRefusals);
            return self.binary_error(to, Status::OutOfMemory);
        }
        let out = self.out.buf();
        if !hit && !quiet {
            if with_key {
                response::put(out, to, Status::KeyNotFound, 0, &[], key, &[]);
            } else {
                response::put_error(out, to, Status::KeyNotFound);
            }
        }
        self.observe_get(key, hit, true);
        if touch.is_some() {
            self.stats().incr(Stat::CmdTouch);
            self.count(hit, Stat::TouchHits, Stat::TouchMisses);
        } else {
            self.stats().incr(Stat::CmdGet);
            self.count(hit, Stat::GetHits, Stat::GetMisses);
        }
    }

    /// TOUCH: the hit's flags and CAS, no value.
    fn binary_touch(&mut self, to: ReplyTo, key: &[u8], exptime: u32) {
        let read = Read::touch(i64::from(exptime));
        let hit = self
            .server
            .store
            .get(key, read, |item| item.map(|i| (i.flags(), i.cas())));
        self.observe_get(key, hit.is_some(), true);
        self.stats().incr(Stat::CmdTouch);
        self.count(hit.is_some(), Stat::TouchHits, Stat::TouchMisses);
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
        let arith = crate::storage::Arith {
            incr,
            delta,
            cas,
            create: (exptime != NO_CREATE).then_some(Initial {
                value: initial,
                exptime: i64::from(exptime),
            }),
            ..crate::storage::Arith::new(incr, delta)
        };
        let (hit, miss) = if incr {
            (Stat::IncrHits, Stat::IncrMisses)
        } else {
            (Stat::DecrHits, Stat::DecrMisses)
        };
        let peeked = self.peek_for_watch(key);
        let store = &self.server.store;
        let (result, cas) = store.arith(key, arith, |result, item| {
            (result, item.map_or(0, |i| i.cas()))
        });
        let found = !matches!(result, ArithResult::NotFound | ArithResult::Created(_));
        self.observe_lookup(key, peeked, found);
        let value = match result {
            ArithResult::Value(value) => {
                self.stats().incr(hit);
                value
            }
            ArithResult::Created(value) => value,
            ArithResult::NotFound => {
                self.stats().incr(miss);
                return self.binary_error(to, Status::KeyNotFound);
            }
            ArithResult::NonNumeric => return self.binary_error(to, Status::NonNumeric),
            ArithResult::Exists => return self.binary_error(to, Status::KeyExists),
            ArithResult::OutOfMemory => return self.binary_error(to, Status::OutOfMemory),
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
}
