//! Meta commands: run one parsed meta request against the store and answer it.
//!
//! The text parser hands meta lines to `protocol::meta`; the resulting request comes
//! here (from the text dispatcher), so meta and classic commands mix freely on one
//! connection. Each command walks its flag tokens in request order under the item's
//! shard lock, as memcached does, so flags that change the item (`T`, `N`) act where
//! they stand and returned flags come back in the order they were asked.
//!
//! The answers, what `q` hides and the order of returned flags are tabled in the header
//! of `protocol::meta`. Each flag's effect, as memcached 1.6.18 was measured to act:
//!
//! - `mg`: `h` and `l` show the state before this access (`l` = seconds since the last
//!   write or read, where the first read after a write does not count, as in
//!   memcached's segmented LRU; memcached may skip more refreshes while its LRU
//!   maintainer has not yet cleared an item's active mark); `u` skips the
//!   bump (no LRU move, not marked fetched); `T` sets the TTL (counted as a touch:
//!   `cmd_touch`/`touch_hits` instead of `cmd_get`/`get_hits`); `N` creates an empty
//!   item on a miss (flags 0) and wins it (`W`), later gets see `Z`; `R` wins when
//!   the item's exptime is set and before `R`'s, unless a win was sent; a stale item
//!   is `X` and wins if no win was sent; a win is sent once (`W` and never `Z` in one
//!   answer). `t` is `-1` for no expiry, else exptime − now as unsigned 32 bits.
//! - `ms`: `F` flags, `T` TTL (0 = never), `M` mode; `C` makes set and replace a cas
//!   (missing `NF`, other CAS — 0 too — `EX`), guards append/prepend (`EX` unless 0 or
//!   equal; missing `NS`) and is ignored by add; with `I` a CAS below the item's stores
//!   the value stale, keeping TTL and win; `b` keys are remembered, so `k` returns them
//!   base64 (append/prepend forget it, as memcached's new item does). Every store
//!   replaces the item's metadata (fresh, not stale, no win).
//! - `md`: `C` must equal (even 0); `I` marks stale with a new CAS, clears the win and
//!   applies `T`; `T` without `I` is ignored.
//! - `ma`: `D` delta (1), `M` mode, `C` compares unless 0, `N` creates a missing item
//!   with `J` (0) and that TTL (no delta applied; `q` hides it too, as in memcached
//!   1.6.45), `T` sets the TTL.
//!   Auto-created items (both `mg N` and `ma N`) never remember a base64 key.
//! - Stats: `mg` as get (or touch with `T`), `ms` as set (cas counters when `C` makes
//!   it a cas; too large: `store_too_large` only), `md` delete hits/misses (`EX` a
//!   miss, `I` neither), `ma` incr/decr hits/misses (`EX` and auto-create neither).
//!   A refused request counts nothing, but what memcached counted before an answer
//!   failed on a long opaque stays counted (an `mg` miss, an `ma` hit or miss).
//! - Any error answer (`CLIENT_ERROR`, `SERVER_ERROR`) replaces the whole answer and is
//!   never hidden by `q`; a long opaque in `mg` fails after `T`/`N` before it acted
//!   and, when `h l T N R` were given, skips the bump; in `ma` it fails after the
//!   arithmetic.

use super::text::{NON_NUMERIC, NO_MEMORY, TOO_LARGE};
use super::{shown_cas, Connection};
use crate::protocol::meta::encode::{self, DebugInfo};
use crate::protocol::meta::{
    KeyBuf, Meta, MetaKey, MetaRequest, OPAQUE_MAX_BYTES, OPAQUE_TOO_LONG,
};
use crate::protocol::{encode::reply_line, Response, StoreMode, KEY_MAX_BYTES};
use crate::server::stats::Stat;
use crate::storage::{
    MetaArith, MetaArithResult, MetaDelete, MetaDeleteResult, MetaGet, MetaSet, StoreResult,
};
use bytes::BufMut;

#[cfg(test)]
mod tests;

/// How a meta get went, for the counters and the error answer.
enum Got {
    Hit {
        touched: bool,
    },
    /// A miss, counted as one even when its answer then fails on a long opaque.
    Miss {
        failed: bool,
    },
    /// A hit whose answer failed (a long opaque): not counted.
    Failed,
    /// A hit whose value the shared connection-buffer budget has no room for.
    NoMemory,
}

impl Connection {
    /// Runs one meta request and writes its answer.
    pub(super) fn meta(&mut self, request: MetaRequest<'_>) {
        match request {
            MetaRequest::Get(meta) => self.meta_get(&meta),
            MetaRequest::Set { meta, mode, value } => self.meta_set(&meta, mode, value),
            MetaRequest::SetTooLarge { key, swallow } => {
                let mut buf: KeyBuf = [0; KEY_MAX_BYTES];
                self.server.store.delete(key.bytes(&mut buf));
                self.stats().incr(Stat::StoreTooLarge);
                self.reply(Response::ServerError(TOO_LARGE));
                self.swallow = swallow;
            }
            MetaRequest::Delete(meta) => self.meta_delete(&meta),
            MetaRequest::Arith { meta, incr } => self.meta_arith(&meta, incr),
            MetaRequest::Noop => self.out.extend(b"MN\r\n"),
            MetaRequest::Debug(key) => {
                // memcached 1.6.18's `cmd_meta` counts `me` only.
                self.stats().incr(Stat::CmdMeta);
                self.meta_debug(key)
            }
        }
    }

    /// Writes an error line (never hidden by `q`).
    fn error(&mut self, line: &str) {
        reply_line(line, self.out.buf());
    }

    fn meta_get(&mut self, meta: &Meta<'_>) {
        let cas_on = self.server.config.cas_enabled;
        let f = &meta.flags;
        let clock = self.server.store.clock();
        let realtime = |ttl: Option<i32>| ttl.map(|t| clock.realtime(i64::from(t)));
        let (ttl, vivify, recache) = (realtime(f.ttl), realtime(f.vivify), realtime(f.recache));
        let opts = MetaGet {
            bump: !f.no_bump,
            vivify: vivify.is_some(),
        };
        let mut buf: KeyBuf = [0; KEY_MAX_BYTES];
        let key = meta.key.bytes(&mut buf);
        let buffers = &self.server.buffers;
        let out = self.out.buf();
        let start = out.len();
        let got = self.server.store.meta_get(key, opts, |item| {
            let Some(mut item) = item else {
                if !f.quiet && !f.opaque_too_long {
                    encode::code(out, b"EN");
                    echo(meta, out, key, f.base64);
                    encode::end(out);
                }
                return Got::Miss {
                    failed: f.opaque_too_long,
                };
            };
            let len = item.value().len();
            if f.value && len >= super::text::SEGMENT_MIN_BYTES && !buffers.has_room(len) {
                if f.locked {
                    item.skip_bump();
                }
                return Got::NoMemory;
            }
            if f.value {
                encode::value_code(out, len);
            } else {
                encode::code(out, b"HD");
            }
            let (mut won, mut touched) = (false, false);
            for token in meta.tokens() {
                match token[0] {
                    b'T' => {
                        touched = true;
                        item.set_exptime(ttl.unwrap_or_default());
                    }
                    b'N' if item.created() => {
                        item.set_exptime(vivify.unwrap_or_default());
                        won = true;
                    }
                    b'R' => {
                        let exptime = item.exptime();
                        let before = recache.is_some_and(|r| exptime < r);
                        won |= !item.win_sent() && !item.created() && exptime != 0 && before;
                    }
                    b's' => encode::number(out, b's', item.value().len()),
                    b't' => encode::ttl(out, item.exptime(), item.now()),
                    b'c' => encode::number(out, b'c', shown_cas(cas_on, item.cas())),
                    b'f' => encode::number(out, b'f', item.flags()),
                    b'l' => encode::number(out, b'l', item.now().wrapping_sub(item.last_access())),
                    b'h' => encode::number(out, b'h', u8::from(item.fetched())),
                    b'O' if token.len() > OPAQUE_MAX_BYTES => {
                        out.truncate(start);
                        if f.locked {
                            item.skip_bump();
                        }
                        return Got::Failed;
                    }
                    b'O' => encode::opaque(out, token),
                    b'k' => encode::key(out, item.key(), item.key_is_binary()),
                    _ => {}
                }
            }
            if item.win_sent() {
                encode::mark(out, b'Z');
            }
            if item.is_stale() {
                encode::mark(out, b'X');
                won |= !item.win_sent();
            }
            if won {
                encode::mark(out, b'W');
                item.mark_win_sent();
            }
            encode::end(out);
            if f.value {
                out.put_slice(item.value());
                encode::end(out);
            }
            Got::Hit { touched }
        });
        match got {
            Got::Hit { touched: true } => {
                self.stats().incr(Stat::CmdTouch);
                self.stats().incr(Stat::TouchHits);
            }
            Got::Hit { touched: false } => {
                self.stats().incr(Stat::CmdGet);
                self.stats().incr(Stat::GetHits);
            }
            Got::Miss { failed } => {
                self.stats().incr(Stat::CmdGet);
                self.stats().incr(Stat::GetMisses);
                if failed {
                    self.error(OPAQUE_TOO_LONG);
                }
            }
            Got::Failed => self.error(OPAQUE_TOO_LONG),
            Got::NoMemory => {
                self.stats().incr(Stat::ConnBufferRefusals);
                self.error(super::text::GET_NO_MEMORY);
            }
        }
    }

    fn meta_set(&mut self, meta: &Meta<'_>, mode: StoreMode, value: &[u8]) {
        let f = &meta.flags;
        let mut buf: KeyBuf = [0; KEY_MAX_BYTES];
        let key = meta.key.bytes(&mut buf);
        let opts = MetaSet {
            mode: super::write_mode(mode),
            flags: f.client_flags,
            exptime: f.ttl.map_or(0, i64::from),
            compare_cas: f.compare_cas,
            invalidate: f.invalidate,
            key_binary: f.base64,
        };
        let (result, cas) = self.server.store.meta_set(key, value, &opts);
        let cas_mode =
            f.compare_cas.is_some() && matches!(mode, StoreMode::Set | StoreMode::Replace);
        self.count_store(if cas_mode { StoreMode::Cas } else { mode }, result);
        let code = match result {
            StoreResult::Stored if f.quiet => return,
            StoreResult::Stored => b"HD",
            StoreResult::NotStored => b"NS",
            StoreResult::Exists => b"EX",
            StoreResult::NotFound => b"NF",
            StoreResult::TooLarge => return self.reply(Response::ServerError(TOO_LARGE)),
            StoreResult::OutOfMemory => return self.reply(Response::ServerError(NO_MEMORY)),
        };
        let out = self.out.buf();
        encode::code(out, code);
        for token in meta.tokens() {
            match token[0] {
                b'O' => encode::opaque(out, token),
                b'k' => encode::key(out, key, f.base64),
                b'c' => encode::number(out, b'c', cas),
                _ => {}
            }
        }
        encode::end(out);
    }

    fn meta_delete(&mut self, meta: &Meta<'_>) {
        let f = &meta.flags;
        let mut buf: KeyBuf = [0; KEY_MAX_BYTES];
        let key = meta.key.bytes(&mut buf);
        let opts = MetaDelete {
            compare_cas: f.compare_cas,
            invalidate: f.invalidate,
            exptime: f.ttl.map(i64::from),
        };
        let result = self.server.store.meta_delete(key, &opts);
        let code = match result {
            MetaDeleteResult::Deleted => {
                self.stats().incr(Stat::DeleteHits);
                b"HD"
            }
            MetaDeleteResult::Invalidated => b"HD",
            MetaDeleteResult::NotFound | MetaDeleteResult::Exists => {
                self.stats().incr(Stat::DeleteMisses);
                if result == MetaDeleteResult::Exists {
                    b"EX"
                } else {
                    b"NF"
                }
            }
        };
        if f.quiet && code == b"HD" {
            return;
        }
        let out = self.out.buf();
        encode::code(out, code);
        echo(meta, out, key, f.base64);
        encode::end(out);
    }

    fn meta_arith(&mut self, meta: &Meta<'_>, incr: bool) {
        let cas_on = self.server.config.cas_enabled;
        let f = &meta.flags;
        let clock = self.server.store.clock();
        let ttl = f.ttl.map(|t| clock.realtime(i64::from(t)));
        let vivify = f.vivify.map(|t| clock.realtime(i64::from(t)));
        let opts = MetaArith {
            incr,
            delta: f.delta,
            compare_cas: f.compare_cas.unwrap_or(0),
            vivify: f.vivify.map(|_| f.initial),
        };
        let mut buf: KeyBuf = [0; KEY_MAX_BYTES];
        let key = meta.key.bytes(&mut buf);
        let out = self.out.buf();
        let start = out.len();
        let (result, failed) = self.server.store.meta_arith(key, opts, |result, item| {
            let failed = match (result, item) {
                (MetaArithResult::Value(n) | MetaArithResult::Created(n), Some(mut item)) => {
                    let mut digits = itoa::Buffer::new();
                    let number = digits.format(n).as_bytes();
                    if f.value {
                        encode::value_code(out, number.len());
                    } else {
                        encode::code(out, b"HD");
                    }
                    let mut failed = false;
                    for token in meta.tokens() {
                        match token[0] {
                            b'c' => encode::number(out, b'c', shown_cas(cas_on, item.cas())),
                            b't' => encode::ttl(out, item.exptime(), item.now()),
                            b'T' => item.set_exptime(ttl.unwrap_or_default()),
                            b'N' if item.created() => item.set_exptime(vivify.unwrap_or_default()),
                            b'O' if token.len() > OPAQUE_MAX_BYTES => {
                                failed = true;
                                break;
                            }
                            b'O' => encode::opaque(out, token),
                            b'k' => encode::key(out, key, f.base64),
                            _ => {}
                        }
                    }
                    encode::end(out);
                    if f.value {
                        out.put_slice(number);
                        encode::end(out);
                    }
                    failed
                }
                (MetaArithResult::NotFound | MetaArithResult::Exists, _) => {
                    let code = if result == MetaArithResult::Exists {
                        b"EX"
                    } else {
                        b"NF"
                    };
                    encode::code(out, code);
                    let failed = f.opaque_too_long;
                    echo(meta, out, key, f.base64);
                    encode::end(out);
                    failed
                }
                _ => false,
            };
            (result, failed)
        });
        let (hit, miss) = if incr {
            (Stat::IncrHits, Stat::IncrMisses)
        } else {
            (Stat::DecrHits, Stat::DecrMisses)
        };
        match result {
            MetaArithResult::Value(_) => self.stats().incr(hit),
            MetaArithResult::NotFound => self.stats().incr(miss),
            _ => {}
        }
        // memcached 1.6.45 hides an auto-create's answer too (1.6.18 sent it).
        let quiet = f.quiet
            && matches!(
                result,
                MetaArithResult::Value(_) | MetaArithResult::Created(_)
            );
        if failed || quiet {
            self.out.buf().truncate(start);
        }
        match result {
            _ if failed => self.error(OPAQUE_TOO_LONG),
            MetaArithResult::NonNumeric => self.reply(Response::ClientError(NON_NUMERIC)),
            MetaArithResult::OutOfMemory => self.reply(Response::ServerError("out of memory")),
            _ => {}
        }
    }

    fn meta_debug(&mut self, key: MetaKey<'_>) {
        let mut buf: KeyBuf = [0; KEY_MAX_BYTES];
        let key = key.bytes(&mut buf);
        let out = self.out.buf();
        let opts = MetaGet {
            bump: false,
            vivify: false,
        };
        self.server.store.meta_get(key, opts, |item| match item {
            Some(item) => encode::debug_line(
                out,
                &DebugInfo {
                    key: item.key(),
                    key_binary: item.key_is_binary(),
                    exptime: item.exptime(),
                    now: item.now(),
                    last_access: item.last_access(),
                    cas: item.cas(),
                    fetched: item.fetched(),
                    value_len: item.value().len(),
                    flags: item.flags(),
                },
            ),
            None => out.put_slice(b"EN\r\n"),
        });
    }
}

/// Echoes the `O` and `k` flags of a request in order (the flags every answer without
/// an item returns; `k` is the request's key, base64 again if it came so).
fn echo(meta: &Meta<'_>, out: &mut impl BufMut, key: &[u8], base64: bool) {
    for token in meta.tokens() {
        match token[0] {
            b'O' => encode::opaque(out, token),
            b'k' => encode::key(out, key, base64),
            _ => {}
        }
    }
}
