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
//!   replaces the item's metadata (fresh, not stale, no win). `N` (1.6.45) makes an
//!   append or prepend that misses store the value, with `F` and `N`'s TTL.
//! - `md`: `C` must equal (even 0); `I` marks stale with a new CAS, clears the win and
//!   applies `T`; `T` without `I` or `x` is ignored. `x` (1.6.45) keeps the item with
//!   an empty value, client flags 0, `T`'s TTL or none, its CAS (a new one with `I`),
//!   not stale unless `I` (answered and counted as a delete).
//! - `E` (1.6.45): the CAS of what the command writes: `ms`'s item, `md`'s
//!   invalidated or emptied item, `ma`'s changed or created item, `mg`'s vivified
//!   item (a hit keeps its CAS); `E0` is no choice. The store keeps it beside the
//!   item (`storage` `shard/cas.rs`). `mg … C` (1.6.45) equal to the item's CAS
//!   answers `HD` without the value, as if `v` were absent.
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
//!
//! The hot path: a plain `mg` line (`protocol::text::parse_plain_meta_get`) comes
//! straight from `text_step`, without the `Parsed` copy, or from the look-ahead
//! (`PlainMetaGet`, run by `execute`), and unless it has `u` it runs
//! `meta_get_letters`: its one-letter flags read as bytes, the store's lookup inlined,
//! the whole answer of a short key and value gathered in one stack buffer
//! (`protocol::meta::encode::Short`) and appended at once, the get counted in the
//! connection's `GetCounts` as a text get is. Any other get without `T N R C E b u` or
//! a long opaque runs a copy of [`Connection::meta_get`] compiled with them absent (the
//! same code, constants folded). A test holds all three to the same answers and
//! counters. Other answer lines are gathered by `protocol::meta::encode::Line`.
//! Callgrind, `PROTOCOL=meta PIPELINE=16 ci/profile.sh callgrind ringcache-epoll`: 1208
//! user-space instructions per request before `meta_get_letters`, about 1110 after.

use super::text::{NON_NUMERIC, NO_MEMORY, TOO_LARGE};
use super::{shown_cas, Connection};
use crate::protocol::meta::encode::{self, DebugInfo, Line, Short};
use crate::protocol::meta::{
    KeyBuf, Meta, MetaFlags, MetaKey, MetaRequest, OPAQUE_MAX_BYTES, OPAQUE_TOO_LONG,
};
use crate::protocol::text::PlainMetaGet;
use crate::protocol::{encode::reply_line, Response, StoreMode};
use crate::server::buffers::ConnBuffers;
use crate::server::stats::Stat;
use crate::storage::{
    Arith, ArithResult, Delete, DeleteResult, Initial, ItemRef, KeyHash, Read, SharedValue,
    StoreResult, Write, WriteMode,
};
use bytes::{BufMut, BytesMut};

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
                let mut buf: KeyBuf = None;
                self.server
                    .store
                    .delete(key.bytes(&mut buf), Delete::default());
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

    /// Runs a meta get. One without `T`, `N`, `R`, `C`, `E`, `b`, `u` or a long opaque
    /// (what clients send most: `mg <key> v`, with `k f c t s` …) runs a copy compiled
    /// with those known absent, as a text get does (the flags are still walked in
    /// order).
    pub(super) fn meta_get(&mut self, meta: &Meta<'_>) {
        if is_plain(&meta.flags) {
            self.meta_get_as::<true>(meta)
        } else {
            self.meta_get_as::<false>(meta)
        }
    }

    /// Runs a meta get read by the plain line's parser
    /// (`protocol::text::parse_plain_meta_get`, or the look-ahead's
    /// `protocol::text::PlainMetaGet::meta`), whose flags are plain but for `u`. Inlined
    /// into its callers, which build the request just for this call: only its key, flag
    /// tokens and the flags `v q u` are read, so the whole request is never made.
    ///
    /// `hash`: the key's hash, when the look-ahead took it ([`Store::key_hash`]).
    #[inline(always)]
    fn meta_get_plain_inline(&mut self, meta: &Meta<'_>, hash: Option<KeyHash>) {
        let f = &meta.flags;
        if f.no_bump {
            return self.meta_get_bumpless(meta.key.token, meta.flag_tokens, f.value, f.quiet);
        }
        let hash = hash.unwrap_or_else(|| self.server.store.key_hash(meta.key.token));
        self.meta_get_letters(meta.key.token, hash, meta.flag_tokens, f.value, f.quiet)
    }

    /// [`Connection::meta_get_plain_inline`] of a request the text step read. Out of
    /// line: the connection's loop stays as it is for text requests.
    #[inline(never)]
    pub(super) fn meta_get_plain(&mut self, meta: &Meta<'_>) {
        self.meta_get_plain_inline(meta, None)
    }

    /// [`Connection::meta_get_plain_inline`] of a get the look-ahead read (its request
    /// is made here, and only the pieces read are), with the key's hash it took.
    #[inline(never)]
    pub(super) fn meta_get_ahead(&mut self, get: PlainMetaGet<'_>, hash: KeyHash) {
        self.meta_get_plain_inline(&get.meta(), Some(hash))
    }

    /// [`Connection::meta_get_plain`] of a get with `u`: the request made again as the
    /// plain line's parser makes it, run as any other get.
    #[cold]
    #[inline(never)]
    fn meta_get_bumpless(&mut self, key: &[u8], tokens: &[u8], value: bool, quiet: bool) {
        let meta = Meta {
            key: MetaKey {
                token: key,
                base64: false,
            },
            flag_tokens: tokens,
            flags: MetaFlags {
                value,
                quiet,
                no_bump: true,
                locked: tokens.iter().any(|&b| b == b'h' || b == b'l'),
                ..MetaFlags::default()
            },
        };
        self.meta_get_as::<false>(&meta)
    }

    /// A plain meta get (no `u`) whose flag tokens `tokens` are each one letter of
    /// `k v s t c f q h l`, one space apart, none twice (the plain line's parser's);
    /// `value`, `quiet`: `v`, `q` given. Its answer is written by [`HitLetters`] (the
    /// tokens read as bytes) and it is counted in the connection's
    /// [`GetCounts`](crate::server::stats::GetCounts), as a plain text get is.
    ///
    /// Out of line, one function for both callers: then it is the store lookup's only
    /// caller, which has the lookup inlined (as a text get's is).
    #[inline(never)]
    fn meta_get_letters(
        &mut self,
        key: &[u8],
        hash: KeyHash,
        tokens: &[u8],
        value: bool,
        quiet: bool,
    ) {
        let hit = HitLetters {
            key,
            tokens,
            value,
            quiet,
            cas_on: self.server.config.cas_enabled,
            buffers: &self.server.buffers,
        };
        let out = self.out.buf();
        let mut shared = None;
        let got = self.server.store.get_hashed(
            key,
            hash,
            Read::GET,
            #[inline(always)]
            |item| match item {
                Some(item) => hit.answer(item, out, &mut shared),
                None => {
                    if !quiet {
                        answer_miss_letters(key, tokens, out);
                    }
                    Got::Miss { failed: false }
                }
            },
        );
        if let Some(shared) = shared {
            // A value of the store's large class, after its line, without a copy.
            self.out.push_pinned(shared.value, shared.pinned_bytes);
            encode::end(self.out.buf());
        }
        let hit = matches!(got, Got::Hit { .. });
        self.observe_get(key, hit, false);
        match got {
            Got::Hit { .. } => {
                self.gets.gets += 1;
                self.gets.hits += 1;
            }
            Got::Miss { .. } => {
                self.gets.gets += 1;
                self.gets.misses += 1;
            }
            got => self.count_meta_get(got),
        }
    }

    /// [`Connection::meta_get`]; `PLAIN`: none of the flags it lists was given.
    #[inline(always)]
    fn meta_get_as<const PLAIN: bool>(&mut self, meta: &Meta<'_>) {
        let f = &meta.flags;
        let times = if PLAIN {
            GetTimes::default()
        } else {
            let clock = self.server.store.clock();
            let realtime = |ttl: Option<i32>| ttl.map(|t| clock.realtime(i64::from(t)));
            GetTimes {
                ttl: realtime(f.ttl),
                vivify: realtime(f.vivify),
                recache: realtime(f.recache),
            }
        };
        let read = if PLAIN {
            Read::GET
        } else {
            Read {
                touch: None,
                bump: !f.no_bump,
                vivify: times.vivify.is_some(),
                new_cas: f.new_cas,
            }
        };
        let mut buf: KeyBuf = None;
        let key = if PLAIN {
            meta.key.token
        } else {
            meta.key.bytes(&mut buf)
        };
        let hit = HitContext {
            meta,
            times,
            cas_on: self.server.config.cas_enabled,
            buffers: &self.server.buffers,
        };
        let out = self.out.buf();
        let mut shared = None;
        let got = self.server.store.get(key, read, |item| match item {
            Some(item) => hit.answer::<PLAIN>(item, out, &mut shared),
            None => answer_get_miss(meta, key, out),
        });
        if let Some(shared) = shared {
            // A value of the store's large class, after its line, without a copy.
            self.out.push_pinned(shared.value, shared.pinned_bytes);
            encode::end(self.out.buf());
        }
        self.observe_get(key, matches!(got, Got::Hit { .. }), false);
        self.count_meta_get(got);
    }

    /// Counts a meta get as memcached does (see the module header), and writes the error
    /// answer of one that failed.
    #[inline(always)]
    fn count_meta_get(&mut self, got: Got) {
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

    pub(super) fn meta_set(&mut self, meta: &Meta<'_>, mode: StoreMode, value: &[u8]) {
        let f = &meta.flags;
        let mut buf: KeyBuf = None;
        let key = meta.key.bytes(&mut buf);
        // `C` makes set and replace a cas, guards append and prepend, and is ignored by
        // add.
        let write = Write {
            flags: f.client_flags,
            exptime: f.ttl.map_or(0, i64::from),
            cas: f.compare_cas.unwrap_or(0),
            invalidate: f.invalidate,
            key_binary: f.base64,
            refusal_removes: true,
            add_is_access: true,
            new_cas: f.new_cas,
            vivify: f.vivify.map(i64::from),
            ..Write::new(match (mode, f.compare_cas) {
                (StoreMode::Set | StoreMode::Replace, Some(_)) => WriteMode::Cas,
                _ => super::write_mode(mode),
            })
        };
        let (result, cas) = self.server.store.write(key, value, &write);
        self.count_store(write.mode, result);
        self.observe_store(key, write.mode, result, (value.len(), write.exptime), false);
        let code = match result {
            StoreResult::Stored if f.quiet => return,
            StoreResult::Stored => b"HD",
            StoreResult::NotStored => b"NS",
            StoreResult::Exists => b"EX",
            StoreResult::NotFound => b"NF",
            StoreResult::TooLarge => return self.reply(Response::ServerError(TOO_LARGE)),
            StoreResult::OutOfMemory => return self.reply(Response::ServerError(NO_MEMORY)),
        };
        let mut line = Line::code(self.out.buf(), code);
        for token in meta.tokens() {
            match token[0] {
                b'O' => line.opaque(token),
                b'k' => line.key(key, f.base64),
                b'c' => line.number(b'c', cas),
                _ => {}
            }
        }
        line.end();
    }

    fn meta_delete(&mut self, meta: &Meta<'_>) {
        let f = &meta.flags;
        let mut buf: KeyBuf = None;
        let key = meta.key.bytes(&mut buf);
        let delete = Delete {
            cas: f.compare_cas,
            invalidate: f.invalidate,
            exptime: f.ttl.map(i64::from),
            remove_value: f.remove_value,
            new_cas: f.new_cas,
        };
        let peeked = self.peek_for_watch(key);
        let result = self.server.store.delete(key, delete);
        self.observe_delete(key, peeked, result == DeleteResult::Deleted, "md", false);
        let code = match result {
            DeleteResult::Deleted => {
                self.stats().incr(Stat::DeleteHits);
                b"HD"
            }
            DeleteResult::Invalidated => b"HD",
            DeleteResult::NotFound | DeleteResult::Exists => {
                self.stats().incr(Stat::DeleteMisses);
                if result == DeleteResult::Exists {
                    b"EX"
                } else {
                    b"NF"
                }
            }
        };
        if f.quiet && code == b"HD" {
            return;
        }
        let mut line = Line::code(self.out.buf(), code);
        echo(meta, &mut line, key, f.base64);
        line.end();
    }

    fn meta_arith(&mut self, meta: &Meta<'_>, incr: bool) {
        let f = &meta.flags;
        let clock = self.server.store.clock();
        let times = ArithTimes {
            ttl: f.ttl.map(|t| clock.realtime(i64::from(t))),
            vivify: f.vivify.map(|t| clock.realtime(i64::from(t))),
        };
        // `N` creates a missing item holding `J` with no expiry; `N`'s TTL is set where
        // the flag stands.
        let arith = Arith {
            incr,
            delta: f.delta,
            cas: f.compare_cas.unwrap_or(0),
            create: f.vivify.map(|_| Initial {
                value: f.initial,
                exptime: 0,
            }),
            new_cas: f.new_cas,
        };
        let mut buf: KeyBuf = None;
        let key = meta.key.bytes(&mut buf);
        let cas_on = self.server.config.cas_enabled;
        let peeked = self.peek_for_watch(key);
        let out = self.out.buf();
        let start = out.len();
        let (result, failed) = self.server.store.arith(key, arith, |result, item| {
            let failed = match (result, item) {
                (ArithResult::Value(n) | ArithResult::Created(n), Some(item)) => {
                    answer_arith_hit(meta, key, n, item, &times, cas_on, out)
                }
                (ArithResult::NotFound | ArithResult::Exists, _) => {
                    answer_arith_miss(meta, key, result, out)
                }
                _ => false,
            };
            (result, failed)
        });
        let found = !matches!(result, ArithResult::NotFound | ArithResult::Created(_));
        self.observe_lookup(key, peeked, found);
        let (hit, miss) = if incr {
            (Stat::IncrHits, Stat::IncrMisses)
        } else {
            (Stat::DecrHits, Stat::DecrMisses)
        };
        match result {
            ArithResult::Value(_) => self.stats().incr(hit),
            ArithResult::NotFound => self.stats().incr(miss),
            _ => {}
        }
        // memcached 1.6.45 hides an auto-create's answer too (1.6.18 sent it).
        let quiet = f.quiet && matches!(result, ArithResult::Value(_) | ArithResult::Created(_));
        if failed || quiet {
            self.out.buf().truncate(start);
        }
        match result {
            _ if failed => self.error(OPAQUE_TOO_LONG),
            ArithResult::NonNumeric => self.reply(Response::ClientError(NON_NUMERIC)),
            ArithResult::OutOfMemory => self.reply(Response::ServerError("out of memory")),
            _ => {}
        }
    }

    fn meta_debug(&mut self, key: MetaKey<'_>) {
        let mut buf: KeyBuf = None;
        let key = key.bytes(&mut buf);
        let out = self.out.buf();
        self.server.store.get(key, Read::PEEK, |item| match item {
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

/// Whether a meta get's flags are plain: none of `T`, `N`, `R`, `C`, `E`, `b`, `u`,
/// and no opaque too long (see [`Connection::meta_get`]).
fn is_plain(f: &MetaFlags) -> bool {
    f.ttl.is_none()
        && f.vivify.is_none()
        && f.recache.is_none()
        && f.compare_cas.is_none()
        && f.new_cas == 0
        && !f.base64
        && !f.no_bump
        && !f.opaque_too_long
}

/// The relative times a meta get's flags set (`T`, `N`) or compare (`R`), made once
/// before the item's lock is taken.
#[derive(Default)]
struct GetTimes {
    ttl: Option<u32>,
    vivify: Option<u32>,
    recache: Option<u32>,
}

/// What answering a meta get's hit needs besides the item.
struct HitContext<'a> {
    meta: &'a Meta<'a>,
    times: GetTimes,
    cas_on: bool,
    buffers: &'a ConnBuffers,
}

impl HitContext<'_> {
    /// Writes the answer to a meta get's hit (`VA`/`HD`, its flags in request order,
    /// the win marks, the value), acting on `T`, `N` and `R` where they stand; under
    /// the item's lock. `PLAIN`: see [`Connection::meta_get_as`].
    ///
    /// A value of the store's large class is left in `shared`, for the caller to queue
    /// after the line without a copy, then the value's end.
    #[inline(always)]
    fn answer<const PLAIN: bool>(
        &self,
        item: &mut ItemRef<'_>,
        out: &mut BytesMut,
        shared: &mut Option<SharedValue>,
    ) -> Got {
        let f = &self.meta.flags;
        let len = item.value().len();
        // memcached 1.6.45: a `C` equal to the item's CAS means the client holds this
        // value already: `HD`, no value.
        let value = f.value && (PLAIN || f.compare_cas != Some(item.cas()));
        if value && len >= super::text::SEGMENT_MIN_BYTES && !self.buffers.has_room(len) {
            if f.locked {
                item.skip_bump();
            }
            return Got::NoMemory;
        }
        let start = out.len();
        let mut line = Line::new(out);
        if value {
            line.value_code(len);
        } else {
            line.put_code(b"HD");
        }
        let Some((mut won, touched)) = self.walk_flags::<PLAIN>(item, &mut line) else {
            // What the line appended before it gave up (a long key) goes too.
            out.truncate(start);
            if f.locked {
                item.skip_bump();
            }
            return Got::Failed;
        };
        if item.win_sent() {
            line.mark(b'Z');
        }
        if item.is_stale() {
            line.mark(b'X');
            won |= !item.win_sent();
        }
        if won {
            line.mark(b'W');
            item.mark_win_sent();
        }
        if !value {
            line.end();
        } else if len < super::text::SEGMENT_MIN_BYTES {
            line.end_with_data(item.value());
        } else {
            line.end();
            *shared = item.shared_value();
            if shared.is_none() {
                out.put_slice(item.value());
                encode::end(out);
            }
        }
        Got::Hit { touched }
    }

    /// Walks a meta get's flags in request order: returned flags are written, `T`, `N`
    /// and `R` act. Returns whether this request won the item and whether it was
    /// touched, or `None` at an opaque too long to answer.
    #[inline(always)]
    fn walk_flags<const PLAIN: bool>(
        &self,
        item: &mut ItemRef<'_>,
        line: &mut Line<'_, BytesMut>,
    ) -> Option<(bool, bool)> {
        let GetTimes {
            ttl,
            vivify,
            recache,
        } = self.times;
        let (mut won, mut touched) = (false, false);
        for token in self.meta.tokens() {
            match token[0] {
                b'T' | b'N' | b'R' if PLAIN => {}
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
                b's' => line.number(b's', item.value().len() as u64),
                b't' => line.ttl(item.exptime(), item.now()),
                b'c' => line.number(b'c', shown_cas(self.cas_on, item.cas())),
                b'f' => line.number(b'f', u64::from(item.flags())),
                b'l' => line.number(b'l', u64::from(item.now().wrapping_sub(item.last_access()))),
                b'h' => line.number(b'h', u64::from(item.fetched())),
                b'O' if token.len() > OPAQUE_MAX_BYTES => return None,
                b'O' => line.opaque(token),
                b'k' => line.key(item.key(), item.key_is_binary()),
                _ => {}
            }
        }
        Some((won, touched))
    }
}

/// What answering a hit of [`Connection::meta_get_letters`] needs besides the item.
struct HitLetters<'a> {
    /// The request's key and flag tokens: one letter each, one space apart, none
    /// twice, no `u`.
    key: &'a [u8],
    tokens: &'a [u8],
    value: bool,
    quiet: bool,
    cas_on: bool,
    buffers: &'a ConnBuffers,
}

impl HitLetters<'_> {
    /// [`HitContext::answer`] of a plain get whose flags are one letter each: the same
    /// bytes, the flag tokens read as one letter every other byte, the whole answer
    /// gathered in an [`encode::Short`] when its key and value are short (else written
    /// by [`HitLetters::answer_long`]).
    #[inline(always)]
    fn answer(
        &self,
        item: &mut ItemRef<'_>,
        out: &mut BytesMut,
        shared: &mut Option<SharedValue>,
    ) -> Got {
        let data = item.value();
        let mut short = Short::new();
        if self.value {
            short.value_code(data.len());
        } else {
            short.code(b"HD");
        }
        for &flag in self.tokens.iter().step_by(2) {
            let fits = match flag {
                b'k' if item.key_is_binary() => false,
                b'k' => short.key(item.key()),
                b'v' | b'q' => true,
                _ => self.number_flag(&mut short, flag, item, data.len()),
            };
            if !fits {
                return self.answer_long(item, out, shared);
            }
        }
        let (win_sent, stale) = (item.win_sent(), item.is_stale());
        let marked = (!win_sent || short.mark(b'Z'))
            && (!stale || short.mark(b'X'))
            && (win_sent || !stale || short.mark(b'W'));
        let answer = if marked {
            short.finish(self.value.then_some(data))
        } else {
            None
        };
        let Some(answer) = answer else {
            return self.answer_long(item, out, shared);
        };
        out.put_slice(answer);
        if stale && !win_sent {
            item.mark_win_sent();
        }
        Got::Hit { touched: false }
    }

    /// Writes the returned flag `flag` (one of `s t c f l h`) of [`HitLetters::answer`];
    /// false when it has no room. Out of line: inlined, the reads of the item and the
    /// digit arithmetic these flags need were hoisted before the loop over the flags,
    /// and paid for when none was asked for.
    #[inline(never)]
    fn number_flag(&self, short: &mut Short, flag: u8, item: &ItemRef<'_>, len: usize) -> bool {
        match flag {
            b's' => short.number(b's', len as u64),
            b't' => short.ttl(item.exptime(), item.now()),
            b'c' => short.number(b'c', shown_cas(self.cas_on, item.cas())),
            b'f' => short.number(b'f', u64::from(item.flags())),
            b'l' => short.number(b'l', u64::from(item.now().wrapping_sub(item.last_access()))),
            b'h' => short.number(b'h', u64::from(item.fetched())),
            _ => true,
        }
    }

    /// [`HitLetters::answer`] of a long key or value, or a binary key: as any plain get.
    #[cold]
    #[inline(never)]
    fn answer_long(
        &self,
        item: &mut ItemRef<'_>,
        out: &mut BytesMut,
        shared: &mut Option<SharedValue>,
    ) -> Got {
        let locked = self.tokens.iter().any(|&b| b == b'h' || b == b'l');
        let meta = Meta {
            key: MetaKey {
                token: self.key,
                base64: false,
            },
            flag_tokens: self.tokens,
            flags: MetaFlags {
                value: self.value,
                quiet: self.quiet,
                locked,
                ..MetaFlags::default()
            },
        };
        let hit = HitContext {
            meta: &meta,
            times: GetTimes::default(),
            cas_on: self.cas_on,
            buffers: self.buffers,
        };
        hit.answer::<true>(item, out, shared)
    }
}

/// [`answer_get_miss`] of a get whose flags are one letter each, not quiet: `EN`, and
/// the key for `k`.
#[inline(always)]
fn answer_miss_letters(key: &[u8], tokens: &[u8], out: &mut BytesMut) {
    let mut line = Line::code(out, b"EN");
    if tokens.iter().step_by(2).any(|&flag| flag == b'k') {
        line.key(key, false);
    }
    line.end();
}

/// Writes the answer to a meta get's miss (`EN`, unless quiet or failing on a long
/// opaque).
fn answer_get_miss(meta: &Meta<'_>, key: &[u8], out: &mut BytesMut) -> Got {
    let f = &meta.flags;
    if !f.quiet && !f.opaque_too_long {
        let mut line = Line::code(out, b"EN");
        echo(meta, &mut line, key, f.base64);
        line.end();
    }
    Got::Miss {
        failed: f.opaque_too_long,
    }
}

/// The relative times a meta arithmetic's flags set (`T`, `N`).
struct ArithTimes {
    ttl: Option<u32>,
    vivify: Option<u32>,
}

/// Writes the answer to a meta arithmetic that left the item holding `n` (`VA`/`HD`,
/// its flags in request order, the number), acting on `T` and `N` where they stand;
/// returns whether it failed on an opaque too long to answer.
fn answer_arith_hit(
    meta: &Meta<'_>,
    key: &[u8],
    n: u64,
    item: &mut ItemRef<'_>,
    times: &ArithTimes,
    cas_on: bool,
    out: &mut BytesMut,
) -> bool {
    let f = &meta.flags;
    let mut digits = itoa::Buffer::new();
    let number = digits.format(n).as_bytes();
    let mut line = if f.value {
        Line::value(out, number.len())
    } else {
        Line::code(out, b"HD")
    };
    let mut failed = false;
    for token in meta.tokens() {
        match token[0] {
            b'c' => line.number(b'c', shown_cas(cas_on, item.cas())),
            b't' => line.ttl(item.exptime(), item.now()),
            b'T' => item.set_exptime(times.ttl.unwrap_or_default()),
            b'N' if item.created() => item.set_exptime(times.vivify.unwrap_or_default()),
            b'O' if token.len() > OPAQUE_MAX_BYTES => {
                failed = true;
                break;
            }
            b'O' => line.opaque(token),
            b'k' => line.key(key, f.base64),
            _ => {}
        }
    }
    line.end();
    if f.value {
        out.put_slice(number);
        encode::end(out);
    }
    failed
}

/// Writes the answer to a meta arithmetic that found no item (`NF`) or another CAS
/// (`EX`); returns whether it failed on an opaque too long to answer.
fn answer_arith_miss(meta: &Meta<'_>, key: &[u8], result: ArithResult, out: &mut BytesMut) -> bool {
    let code = if result == ArithResult::Exists {
        b"EX"
    } else {
        b"NF"
    };
    let mut line = Line::code(out, code);
    echo(meta, &mut line, key, meta.flags.base64);
    line.end();
    meta.flags.opaque_too_long
}

/// Echoes the `O` and `k` flags of a request in order (the flags every answer without
/// an item returns; `k` is the request's key, base64 again if it came so).
fn echo(meta: &Meta<'_>, line: &mut Line<'_, impl BufMut>, key: &[u8], base64: bool) {
    for token in meta.tokens() {
        match token[0] {
            b'O' => line.opaque(token),
            b'k' => line.key(key, base64),
            _ => {}
        }
    }
}
