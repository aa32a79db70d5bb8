//! Classic text commands: parse one request, run it against the store, answer in text.

use super::Connection;
use crate::protocol::text::Plain;
use crate::protocol::{encode, text, Keys, ParseError, Parsed, Request, Response, StoreMode};
use crate::server::stats::Stat;
use crate::storage::{
    Arith, ArithResult, Delete, DeleteResult, KeyHash, Read, SharedValue, StoreResult, Write,
    WriteMode,
};
use std::sync::Arc;

/// memcached's answer to `flush_all` under `-F`.
const FLUSH_DISABLED: &str = "flush_all not allowed";

impl Connection {
    /// Parses and runs one text request from the front of `input`; returns the bytes it
    /// used, or `None` when `input` holds no whole request yet (or the connection is
    /// closing). A multi-key get that stops at the output mark `mark` part-way uses the
    /// bytes up to its next key and leaves its command in `resume_get`.
    pub(super) fn text_step(&mut self, input: &[u8], mark: usize) -> Option<usize> {
        if let Some((key, consumed)) = text::parse_plain_get(input) {
            let hash = self.server.store.key_hash(key);
            self.get_one(key, hash, false, None);
            return Some(consumed);
        }
        if let Some((meta, consumed)) = text::parse_plain_meta_get(input) {
            self.meta_get_plain(&meta);
            return Some(consumed);
        }
        match text::parse(input, &self.server.limits) {
            Ok(Parsed {
                request:
                    Request::Get {
                        keys,
                        with_cas,
                        touch,
                    },
                consumed,
            }) => {
                let stopped = self.get_keys(keys, with_cas, touch, mark);
                Some(stopped.map_or(consumed, |next| offset_in(input, next)))
            }
            Ok(Parsed { request, consumed }) => {
                self.dispatch(request);
                Some(consumed)
            }
            Err(ParseError::Incomplete) => None,
            Err(ParseError::Invalid {
                reply,
                consumed,
                swallow,
            }) => {
                self.line(reply);
                self.swallow = swallow;
                Some(consumed)
            }
            Err(ParseError::Fatal { reply }) => {
                if let Some(reply) = reply {
                    self.line(reply);
                }
                self.closing = true;
                self.fatal = true;
                None
            }
        }
    }

    /// Runs the plain get, set or meta get `plain` the look-ahead read at the front of the
    /// input (`consumed` bytes long), as [`Connection::text_step`] runs the request the
    /// parser returns for the same bytes ([`Plain::request`]), without parsing it
    /// again. [`Plain::Other`] is not run here: `None`.
    /// `hash` is the key's ([`crate::storage::Store::key_hash`], taken by the
    /// look-ahead): a plain get's lookup and a plain set's write do not hash it again.
    #[inline]
    pub(super) fn text_run(
        &mut self,
        plain: &Plain<'_>,
        consumed: usize,
        hash: KeyHash,
    ) -> Option<usize> {
        match *plain {
            Plain::Get { key, with_cas } => {
                self.get_one(key, hash, with_cas, None);
                Some(consumed)
            }
            Plain::Set {
                key,
                flags,
                exptime,
                value,
                noreply,
            } => {
                let write = Write {
                    flags,
                    exptime,
                    ..Write::new(WriteMode::Set)
                };
                self.text_store(key, Some(hash), value, &write, noreply);
                Some(consumed)
            }
            Plain::MetaGet(get) => {
                self.meta_get_plain(&get.meta());
                Some(consumed)
            }
            Plain::Other => None,
        }
    }

    pub(super) fn reply(&mut self, response: Response<'_>) {
        encode::text(&response, self.out.buf());
    }

    /// Writes a refusal's answer line (nothing for the empty reply of a noreply
    /// command).
    pub(super) fn line(&mut self, line: &str) {
        encode::reply_line(line, self.out.buf());
    }

    pub(super) fn reply_unless(&mut self, noreply: bool, response: Response<'_>) {
        if !noreply {
            self.reply(response);
        }
    }

    fn dispatch(&mut self, request: Request<'_>) {
        match request {
            Request::Get { .. } => unreachable!("text_step runs gets"),
            Request::Store {
                mode,
                key,
                flags,
                exptime,
                cas,
                value,
                noreply,
            } => {
                // With -C no item carries a CAS value a client could have seen, so no
                // `cas` matches (memcached answers EXISTS). CAS values count up from 1:
                // u64::MAX is never reached.
                let cas = match (mode, self.server.config.cas_enabled) {
                    (StoreMode::Cas, true) => cas,
                    (StoreMode::Cas, false) => u64::MAX,
                    _ => 0,
                };
                let write = Write {
                    flags,
                    exptime,
                    cas,
                    ..Write::new(super::write_mode(mode))
                };
                self.text_store(key, None, value, &write, noreply);
            }
            Request::TooLarge {
                mode,
                key,
                noreply,
                swallow,
            } => self.text_too_large(mode, key, noreply, swallow),
            Request::Delete { key, noreply } => self.text_delete(key, noreply),
            Request::Arith {
                key,
                delta,
                incr,
                noreply,
            } => self.text_arith(key, Arith::new(incr, delta), noreply),
            Request::Touch {
                key,
                exptime,
                noreply,
            } => self.text_touch(key, exptime, noreply),
            Request::FlushAll {
                delay_secs,
                noreply,
            } => self.text_flush_all(delay_secs, noreply),
            Request::Version => self.reply(Response::Version(crate::server::VERSION)),
            Request::Verbosity { level, noreply } => {
                self.server.set_verbosity(level.min(u8::MAX as u32) as u8);
                self.reply_unless(noreply, Response::Ok);
            }
            Request::Stats(group) => {
                // The gets counted so far in this read are in the report.
                self.server
                    .stats
                    .worker(self.worker)
                    .add_gets(&mut self.gets);
                let server = Arc::clone(&self.server);
                let asker = self.record.fd();
                crate::server::stats_report::write(&server, group, asker, &mut |r| self.reply(r));
            }
            Request::Quit => self.closing = true,
            Request::Meta(request) => self.meta(request),
            Request::Shutdown(mode) => self.shutdown(mode),
            Request::RefreshCerts { noreply } => self.refresh_certs(noreply),
            Request::Watch { kinds, noreply } => self.watch(kinds, noreply),
            Request::StatsDetail(detail) => self.stats_detail(detail),
            Request::Slabs(command) => self.slabs(command),
            Request::Lru(command) => self.lru(command),
            Request::Crawler(command) => self.crawler_command(command),
            Request::CacheDump { class, limit } => self.cachedump(class, limit),
            Request::CacheMemlimit { megabytes, noreply } => {
                self.cache_memlimit(megabytes, noreply)
            }
        }
    }

    /// set, add, replace, append, prepend, cas.
    /// A store command; `hash` is the key's, when the look-ahead took it
    /// ([`crate::storage::Store::key_hash`]).
    fn text_store(
        &mut self,
        key: &[u8],
        hash: Option<KeyHash>,
        value: &[u8],
        write: &Write,
        noreply: bool,
    ) {
        let store = &self.server.store;
        let hash = hash.unwrap_or_else(|| store.key_hash(key));
        let (result, _) = store.write_hashed(key, hash, value, write);
        self.count_store(write.mode, result);
        self.observe_store(key, write.mode, result, (value.len(), write.exptime), true);
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

    /// A store command whose value the parser found over the item size limit: its data
    /// block is swallowed, and a set removes the key (memcached's rule).
    fn text_too_large(&mut self, mode: StoreMode, key: &[u8], noreply: bool, swallow: usize) {
        if mode == StoreMode::Set {
            self.server.store.delete(key, Delete::default());
        }
        // memcached counts no cmd_set for a value over the limit.
        self.stats().incr(Stat::StoreTooLarge);
        self.reply_unless(noreply, Response::ServerError(TOO_LARGE));
        self.swallow = swallow;
    }

    fn text_delete(&mut self, key: &[u8], noreply: bool) {
        let peeked = self.peek_for_watch(key);
        let hit = self.server.store.delete(key, Delete::default()) == DeleteResult::Deleted;
        self.observe_delete(key, peeked, hit, "delete", true);
        self.count(hit, Stat::DeleteHits, Stat::DeleteMisses);
        let response = if hit {
            Response::Deleted
        } else {
            Response::NotFound
        };
        self.reply_unless(noreply, response);
    }

    /// incr, decr.
    fn text_arith(&mut self, key: &[u8], arith: Arith, noreply: bool) {
        let peeked = self.peek_for_watch(key);
        let result = self.server.store.arith(key, arith, |result, _| result);
        self.observe_lookup(key, peeked, result != ArithResult::NotFound);
        let (hit, miss) = if arith.incr {
            (Stat::IncrHits, Stat::IncrMisses)
        } else {
            (Stat::DecrHits, Stat::DecrMisses)
        };
        self.count(result != ArithResult::NotFound, hit, miss);
        let response = match result {
            ArithResult::Value(n) => Response::Number(n),
            ArithResult::NonNumeric => Response::ClientError(NON_NUMERIC),
            ArithResult::OutOfMemory => Response::ServerError("out of memory"),
            // A classic incr neither compares a CAS nor creates an item.
            ArithResult::NotFound | ArithResult::Exists | ArithResult::Created(_) => {
                Response::NotFound
            }
        };
        self.reply_unless(noreply, response);
    }

    fn text_touch(&mut self, key: &[u8], exptime: i64, noreply: bool) {
        self.stats().incr(Stat::CmdTouch);
        let peeked = self.peek_for_watch(key);
        let hit = self.server.store.touch(key, exptime);
        self.observe_lookup(key, peeked, hit);
        self.count(hit, Stat::TouchHits, Stat::TouchMisses);
        let response = if hit {
            Response::Touched
        } else {
            Response::NotFound
        };
        self.reply_unless(noreply, response);
    }

    fn text_flush_all(&mut self, delay_secs: i64, noreply: bool) {
        // memcached counts a refused flush_all too.
        self.stats().incr(Stat::CmdFlush);
        if !self.server.config.flush_enabled {
            return self.reply_unless(noreply, Response::ClientError(FLUSH_DISABLED));
        }
        self.flush_all(delay_secs);
        self.reply_unless(noreply, Response::Ok);
    }

    /// Runs a get of `keys`, one key at a time. When the output reaches `mark` with keys
    /// left, it stops there, puts the command back in `resume_get` (`gats 10 `), and
    /// returns the next key: the connection then holds at most its mark plus one value,
    /// however many keys one line names (a 2 MiB line of one key repeated could
    /// otherwise ask for a terabyte). `END` follows the last key.
    fn get_keys<'k>(
        &mut self,
        keys: Keys<'k>,
        with_cas: bool,
        touch: Option<i64>,
        mark: usize,
    ) -> Option<&'k [u8]> {
        if keys.is_one() {
            if let Some(key) = keys.iter().next() {
                let hash = self.server.store.key_hash(key);
                self.get_one(key, hash, with_cas, touch);
            }
            return None;
        }
        // A multi-key get (never a plain line, so `prefetch_batch` did not read it): its
        // first records load together.
        keys.iter()
            .take(MULTI_GET_PREFETCH)
            .for_each(|key| self.prefetch_key(key));
        let mut left = keys.iter();
        while let Some(key) = left.next() {
            let hash = self.server.store.key_hash(key);
            if !self.get(key, hash, with_cas, touch) {
                // memcached's answer to a get it has no memory for: the rest of the
                // get is dropped, with no END.
                self.line(GET_NO_MEMORY);
                return None;
            }
            if self.out.held() >= mark {
                if let Some(next) = left.clone().next() {
                    self.resume_get = resume_command(with_cas, touch);
                    return Some(next);
                }
            }
        }
        self.out.extend(encode::END);
        None
    }

    /// [`Connection::get_keys`] of one key (whose hash is `hash`): nothing is left to
    /// stop before, and its `END` is written with its hit.
    #[inline(always)]
    fn get_one(&mut self, key: &[u8], hash: KeyHash, with_cas: bool, touch: Option<i64>) {
        let answered = match touch {
            None => self.get_counted::<false, true>(key, hash, with_cas, None),
            Some(_) => self.get_counted::<true, true>(key, hash, with_cas, touch),
        };
        if !answered {
            self.line(GET_NO_MEMORY);
        }
    }

    /// Looks up one key of a get (whose hash is `hash`) and answers its hit; false when
    /// the hit was a big value that the shared connection-buffer budget has no room
    /// for. memcached 1.6.18 counts a gat or gats key as a touch only (`cmd_touch`,
    /// `touch_hits`/`touch_misses`), a get or gets key as a get.
    #[inline]
    fn get(&mut self, key: &[u8], hash: KeyHash, with_cas: bool, touch: Option<i64>) -> bool {
        match touch {
            None => self.get_counted::<false, false>(key, hash, with_cas, None),
            Some(_) => self.get_counted::<true, false>(key, hash, with_cas, touch),
        }
    }

    /// [`Connection::get`], counted as a touch when `TOUCH`, and followed by `END` when
    /// `END` (a get of one key: a short hit's answer and its `END` are appended at
    /// once). Each variant is compiled on its own, so a plain get pays no test for the
    /// others. With `END`, nothing is written when it returns false.
    fn get_counted<const TOUCH: bool, const END: bool>(
        &mut self,
        key: &[u8],
        hash: KeyHash,
        with_cas: bool,
        touch: Option<i64>,
    ) -> bool {
        let (command, hit_stat, miss_stat) = if TOUCH {
            (Stat::CmdTouch, Stat::TouchHits, Stat::TouchMisses)
        } else {
            (Stat::CmdGet, Stat::GetHits, Stat::GetMisses)
        };
        if TOUCH {
            self.stats().incr(command);
        } else {
            self.gets.gets += 1;
        }
        let cas_on = self.server.config.cas_enabled;
        let out = &mut self.out;
        let line = &mut self.value_line;
        let buffers = &self.server.buffers;
        let mut refused = false;
        // Whether the answer written carries the `END` (a short hit's, with `END`).
        let mut ended = false;
        let read = Read { touch, ..Read::GET };
        let hit = self.server.store.get_hashed(
            key,
            hash,
            read,
            #[inline(always)]
            |item| {
                let Some(item) = item else {
                    return false;
                };
                // Read only for gets: a CAS takes a few instructions to assemble.
                let cas = with_cas.then(|| super::shown_cas(cas_on, item.cas()));
                let value = item.value();
                if value.len() < SEGMENT_MIN_BYTES {
                    let tail = if END { encode::END } else { b"" };
                    encode::value_then(item.key(), item.flags(), value, cas, tail, line, out.buf());
                    ended = END;
                } else if buffers.has_room(value.len()) {
                    // The item's parts, not the item: a reference to it handed to a call
                    // kept out of line would keep it in memory on every get's path.
                    big_value(
                        item.key(),
                        item.flags(),
                        value,
                        item.shared_value(),
                        cas,
                        out,
                    );
                } else {
                    refused = true;
                    return false;
                }
                true
            },
        );
        if refused {
            self.stats().incr(Stat::ConnBufferRefusals);
            return false;
        }
        if END && !ended {
            self.out.extend(encode::END);
        }
        if TOUCH {
            self.stats().incr(if hit { hit_stat } else { miss_stat });
        } else if hit {
            self.gets.hits += 1;
        } else {
            self.gets.misses += 1;
        }
        self.observe_get(key, hit, true);
        true
    }
}

/// Queues the answer to a get of a value of [`SEGMENT_MIN_BYTES`] or more, which the
/// connections' budget has room for: shared with the store when it is in the large
/// class (`shared`: no copy, see `server/output.rs`), else copied once into a segment
/// of its own. Out of line, so the closure of a small get stays small enough to inline.
#[cold]
#[inline(never)]
fn big_value(
    key: &[u8],
    flags: u32,
    value: &[u8],
    shared: Option<SharedValue>,
    cas: Option<u64>,
    out: &mut crate::server::output::Output,
) {
    encode::value_header(key, flags, value.len(), cas, out.buf());
    match shared {
        Some(shared) => out.push_pinned(shared.value, shared.pinned_bytes),
        None => out.push_copy(value),
    }
    out.extend(encode::VALUE_TRAILER);
}

/// Keys of a multi-key get whose records are read ahead before it runs.
const MULTI_GET_PREFETCH: usize = 16;

/// The command of a get that resumes with its remaining keys: `get `, `gets `,
/// `gat <exptime> `, `gats <exptime> `.
fn resume_command(with_cas: bool, touch: Option<i64>) -> Vec<u8> {
    let name = match (with_cas, touch.is_some()) {
        (false, false) => "get",
        (true, false) => "gets",
        (false, true) => "gat",
        (true, true) => "gats",
    };
    match touch {
        Some(exptime) => format!("{name} {exptime} ").into_bytes(),
        None => format!("{name} ").into_bytes(),
    }
}

/// Where `part` (a subslice of `whole`) starts in `whole`.
fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    let offset = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    debug_assert!(offset <= whole.len());
    offset
}

/// Values at least this big go into the output as their own exact-size segment rather
/// than into its growing buffer, which would double past them: a client that pipelines
/// gets of big values and does not read then pins what it asked for, not twice that
/// (`tests/hostile.rs`, slow readers). A value of the store's large class (over 64 KiB)
/// is that segment without a copy (`ItemRef::shared_value`).
pub(super) const SEGMENT_MIN_BYTES: usize = 32 * 1024;

/// memcached's answer to a get it cannot allocate the answer for.
pub(super) const GET_NO_MEMORY: &str = "SERVER_ERROR out of memory writing get response";

pub(super) const TOO_LARGE: &str = "object too large for cache";
pub(super) const NO_MEMORY: &str = "out of memory storing object";
pub(super) const NON_NUMERIC: &str = "cannot increment or decrement non-numeric value";
