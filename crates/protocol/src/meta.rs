//! Meta commands (`mg ms md ma mn me`): the request parser.
//!
//! Owns the syntax of memcached's meta commands: the key and its base64 form, the flag
//! tokens and their values, the data block of `ms`, and memcached 1.6.18's exact
//! answers for bad input. It knows nothing of the store or the connection, nor of the
//! text parser's internals: both frame lines and read numbers through `crate::ascii`
//! (same newline, NUL and 2048-byte rules as classic commands). The text parser hands
//! lines whose command is one of the six here to [`parse_line`]; [`parse`] frames on
//! its own. `encode` writes the answers, `base64` holds memcached's key
//! coding.
//!
//! Invariants:
//! - a request is returned only when its line (and for `ms` its data block and `\r\n`)
//!   is complete; every proper prefix is [`ParseError::Incomplete`];
//! - flag tokens are kept in request order ([`Meta::tokens`]): answers echo `O k c s t
//!   f l h` in that order, and `T`/`N` act where they stand (`mg k t T30` shows the old
//!   TTL, `mg k T30 t` the new one);
//! - a `b` key is checked to decode while parsing; the decoded key is at most
//!   [`KEY_MAX_BYTES`] and is made again on demand ([`MetaKey::bytes`]), so requests
//!   stay small and allocation-free;
//! - errors are never silenced: `q` hides only the success answers of the executor.
//!
//! Plain `mg`/`ms` lines (one-letter flags, plain digits) are usually read by
//! `text/fast.rs`, which gives exactly what [`parse_line`] gives or leaves the line
//! here; [`Meta::tokens`] reads a one-letter flag at once.
//!
//! # memcached 1.6.18's behaviour, verified against the real server
//!
//! | input | memcached | here |
//! |---|---|---|
//! | `mg`/`ms`/`md`/`ma` without a key | `ERROR` | `CLIENT_ERROR bad command line format` (memcached 1.6.45) |
//! | key over 250 bytes (before base64 decoding) | `CLIENT_ERROR bad command line format`, nothing swallowed (an `ms` data line is then a command) | same answer; an `ms` block with a readable length is skipped (1.6.45) |
//! | 20 or more tokens (command and key included) | `mg`: `CLIENT_ERROR options flags are too long`; others: `CLIENT_ERROR options flags too long` | same |
//! | a flag is a token's first byte; the rest is its argument (`c1` is `c`) | flags: `b c f h k l O P L q s t u v N R T C D F I J M` | 1.6.45's: those and `E` (a bad argument: `bad token`) and `x`, for every command; `S` and others are unknown |
//! | unknown flag / repeated flag (or first byte ≥ 0x7f) | `CLIENT_ERROR invalid flag` / `CLIENT_ERROR duplicate flag` (first one met ends the scan) | same |
//! | bad `N`/`T`/`R`/`C` argument | `CLIENT_ERROR bad token in command line format` | same |
//! | bad `F` | no message of its own: the last one set, else `CLIENT_ERROR bad command line format` | same |
//! | bad `J` / `D` | `CLIENT_ERROR invalid numeric initial value` / `… delta value` | same |
//! | `M` argument not one byte | `CLIENT_ERROR incorrect length for M token` | 1.6.45: the mode is its first byte, an empty `M` a bad mode (`mg`/`md` ignore it) |
//! | `b` key that does not decode | `CLIENT_ERROR error decoding key` | same |
//! | any flag error in `md`/`ma` | `CLIENT_ERROR invalid or duplicate flag` | same for `ma`; `md` names it as `mg` does (1.6.45) |
//! | base64 decoding | skips bytes outside the alphabet, needs a multiple of 4 symbols, stops after the first quad with `=` (one `=` drops one byte, two drop two, more fail) | same (`base64`) |
//! | `O` token over 32 bytes (with its `O`) | `CLIENT_ERROR opaque token too long`: `ms`/`md` before acting, `mg` after `T`/`N` before it acted, `ma` after the arithmetic | same |
//! | `ms k` (no datalen), bad/negative datalen | `CLIENT_ERROR bad command line format`, nothing swallowed | same |
//! | `ms` flag error, bad mode (`CLIENT_ERROR invalid mode for ms M token`), long opaque | the answer, data block swallowed | same |
//! | `ms` modes `M<E A P R S>` (case-sensitive) | add, append, prepend, replace, set | same |
//! | `ms` value over the item size limit | `SERVER_ERROR object too large for cache` even with `q`; the key is removed whatever the mode; data swallowed | same ([`MetaRequest::SetTooLarge`]) |
//! | `ms` data block not ending `\r\n` | `CLIENT_ERROR bad data chunk` even with `q`; exactly datalen + 2 bytes go | same |
//! | `ma` modes `M<I + D ->` | incr, incr, decr, decr; else `CLIENT_ERROR invalid mode for ma M token` | same |
//! | `mn …` | `MN` (arguments ignored) | same |
//! | `me` without a key, key over 250, bad base64 (`b` must be the third token exactly) | `CLIENT_ERROR bad command line format` | same |
//! | `me k …` | `ME <key> exp=<now-exptime, negative; -1 never; 1.6.45 prints exptime-now> la=<secs> cas=<n> fetch=<yes/no> cls=<slab class> size=<item bytes>`, or `EN` | same, but `exp` as 1.6.45 prints it; `cls` and `size` by memcached's default slab classes and item arithmetic (`encode`) |
//!
//! Answers (written by `server::connection::meta` with `encode`; its header details
//! each flag's effect and the counters):
//!
//! | command | answers | `q` hides | returned flags, in request order |
//! |---|---|---|---|
//! | `mg` | hit: `VA <len> <flags>` and the value with `v` (1.6.45: not when `C` equals the item's CAS), else `HD <flags>`; miss: `EN` | `EN` | hit: `s t c f l h O k`, then ` Z` (a win was sent), ` X` (stale), ` W` (this request won); miss: `O k` |
//! | `ms` | `HD`, `NS`, `EX`, `NF` | `HD` | `O k c` (`c0` unless stored) |
//! | `md` | `HD`, `NF`, `EX` | `HD` | `O k` |
//! | `ma` | `VA <len>` and the number with `v`, else `HD`; `NF`, `EX` | the answer to an applied delta and (as in 1.6.45; not 1.6.18) to an auto-create | with an item `c t O k`; `NF`/`EX` `O k` |
//! | `mn`, `me` | `MN`; `ME …` or `EN` | — | — |
//!
//! `k` is ` k<key>`, or ` k<base64> b` for a key sent with `b` (`mg` hits: stored with
//! `b`). Every `CLIENT_ERROR`/`SERVER_ERROR` replaces the whole answer, `q` or not.

use super::{Limits, ParseError, Parsed, Request, StoreMode, KEY_MAX_BYTES};
use crate::ascii::number::{safe_strtol, safe_strtoul, safe_strtoull};
use crate::ascii::{self, SILENT};

pub mod base64;
pub mod encode;
#[cfg(test)]
mod tests;

/// Longest opaque token (its `O` included) memcached echoes.
pub const OPAQUE_MAX_BYTES: usize = 32;

/// Tokens (command and key included) from which memcached refuses a meta command: its
/// limit is 20 counting the terminal token of its tokenizer.
const TOKENS_MAX: usize = 20;

const ERROR: &str = "ERROR";
const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";
const BAD_TOKEN: &str = "CLIENT_ERROR bad token in command line format";
const BAD_DATA_CHUNK: &str = "CLIENT_ERROR bad data chunk";
const INVALID_FLAG: &str = "CLIENT_ERROR invalid flag";
const DUPLICATE_FLAG: &str = "CLIENT_ERROR duplicate flag";
const INVALID_OR_DUPLICATE: &str = "CLIENT_ERROR invalid or duplicate flag";
const DECODING_KEY: &str = "CLIENT_ERROR error decoding key";
const BAD_INITIAL: &str = "CLIENT_ERROR invalid numeric initial value";
const BAD_DELTA: &str = "CLIENT_ERROR invalid numeric delta value";
const MG_TOO_LONG: &str = "CLIENT_ERROR options flags are too long";
const TOO_LONG: &str = "CLIENT_ERROR options flags too long";
const MS_MODE: &str = "CLIENT_ERROR invalid mode for ms M token";
const MA_MODE: &str = "CLIENT_ERROR invalid mode for ma M token";
/// Answer to a request whose `O` token is over [`OPAQUE_MAX_BYTES`].
pub const OPAQUE_TOO_LONG: &str = "CLIENT_ERROR opaque token too long";

/// One meta request.
#[derive(Debug, PartialEq, Eq)]
pub enum MetaRequest<'a> {
    /// `mg <key> <flags>*`.
    Get(Meta<'a>),
    /// `ms <key> <datalen> <flags>*` with its data block.
    Set {
        meta: Meta<'a>,
        /// Set, Add, Replace, Append or Prepend (`M`); `C` is in `meta.flags`.
        mode: StoreMode,
        value: &'a [u8],
    },
    /// An `ms` whose value is over the item size limit. Answer `SERVER_ERROR object too
    /// large for cache` (whatever `q` says), remove `key` (in every mode, as memcached's
    /// meta set does), then drop the next `swallow` bytes (the data block and its
    /// `\r\n`), which may not have arrived yet.
    SetTooLarge { key: MetaKey<'a>, swallow: usize },
    /// `md <key> <flags>*`.
    Delete(Meta<'a>),
    /// `ma <key> <flags>*`.
    Arith { meta: Meta<'a>, incr: bool },
    /// `mn`.
    Noop,
    /// `me <key> [b]`.
    Debug(MetaKey<'a>),
}

/// Room for a decoded key, made (and zeroed) only for a base64 key: most keys are
/// their token, and zeroing 250 bytes per request showed in the meta profile.
pub type KeyBuf = Option<[u8; KEY_MAX_BYTES]>;

/// A meta request's key as sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaKey<'a> {
    /// The key token: base64 text when `base64` is set.
    pub token: &'a [u8],
    /// `b`: the token is base64 (checked to decode).
    pub base64: bool,
}

impl MetaKey<'_> {
    /// The key's bytes: the token itself, or its decoding written into `buf` (start
    /// it `None`).
    pub fn bytes<'b>(&'b self, buf: &'b mut KeyBuf) -> &'b [u8] {
        if !self.base64 {
            return self.token;
        }
        let buf = buf.insert([0; KEY_MAX_BYTES]);
        // Checked while parsing; an undecodable token is the empty key, which misses.
        let len = base64::decode(self.token, buf).unwrap_or(0);
        &buf[..len]
    }
}

/// A meta command's key and flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta<'a> {
    pub key: MetaKey<'a>,
    /// The flag tokens as sent (space-separated): answers follow their order.
    pub flag_tokens: &'a [u8],
    pub flags: MetaFlags,
}

impl<'a> Meta<'a> {
    /// The flag tokens in request order; each one's first byte is its flag.
    #[inline]
    pub fn tokens(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        Words {
            line: self.flag_tokens,
        }
    }
}

/// The values of a request's flags (each flag appears at most once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaFlags {
    /// `b`.
    pub base64: bool,
    /// `q`: hide the command's nominal answer.
    pub quiet: bool,
    /// `u`: do not bump the item.
    pub no_bump: bool,
    /// `v`: return the value.
    pub value: bool,
    /// `I`: invalidate (mark stale).
    pub invalidate: bool,
    /// `h`, `l`, `T`, `N` or `R`: memcached bumps the item only after answering (and
    /// not at all when the answer fails).
    pub locked: bool,
    /// An `O` token over [`OPAQUE_MAX_BYTES`] (the executor answers
    /// [`OPAQUE_TOO_LONG`] where memcached does).
    pub opaque_too_long: bool,
    /// `C<cas>`.
    pub compare_cas: Option<u64>,
    /// `E<cas>` (memcached 1.6.45): the CAS the item a command writes carries; 0 when
    /// absent (and `E0`): the server's next.
    pub new_cas: u64,
    /// `x` (memcached 1.6.45): `md` keeps the item with an empty value; other commands
    /// accept and ignore it.
    pub remove_value: bool,
    /// `F<flags>` (0 when absent).
    pub client_flags: u32,
    /// `T<ttl>`: a client exptime.
    pub ttl: Option<i32>,
    /// `N<ttl>`: vivify on a miss with this exptime.
    pub vivify: Option<i32>,
    /// `R<ttl>`: win the recache if the item expires before this exptime.
    pub recache: Option<i32>,
    /// `D<delta>` (1 when absent).
    pub delta: u64,
    /// `J<initial>` (0 when absent).
    pub initial: u64,
    /// `M<mode>`: the mode byte.
    pub mode: Option<u8>,
}

impl Default for MetaFlags {
    fn default() -> MetaFlags {
        MetaFlags {
            base64: false,
            quiet: false,
            no_bump: false,
            value: false,
            invalidate: false,
            locked: false,
            opaque_too_long: false,
            compare_cas: None,
            new_cas: 0,
            remove_value: false,
            client_flags: 0,
            ttl: None,
            vivify: None,
            recache: None,
            delta: 1,
            initial: 0,
            mode: None,
        }
    }
}

type Outcome<'a> = Result<Parsed<'a>, ParseError>;

/// Parses one meta request from the start of `input`.
pub fn parse<'a>(input: &'a [u8], limits: &Limits) -> Outcome<'a> {
    let (line, line_len) = ascii::frame(input)?;
    parse_line(input, line, line_len, limits)
}

/// Parses the meta request whose line (framed by the text parser, without its
/// newline) is `line`, `line_len` bytes of `input` with the newline.
pub fn parse_line<'a>(
    input: &'a [u8],
    line: &'a [u8],
    line_len: usize,
    limits: &Limits,
) -> Outcome<'a> {
    let line = Line {
        text: line,
        len: line_len,
    };
    let mut words = Words { line: line.text };
    let command = words.next().unwrap_or_default();
    match command {
        b"mn" => line.done(MetaRequest::Noop),
        b"me" => line.debug(words),
        b"mg" | b"ms" | b"md" | b"ma" => line.command(command[1], words, input, limits),
        _ => line.refuse(ERROR),
    }
}

/// Space-separated tokens of a line, memcached's way (runs of spaces are one
/// separator; only `' '` separates).
#[derive(Clone)]
struct Words<'a> {
    line: &'a [u8],
}

impl<'a> Words<'a> {
    /// The unread rest of the line, leading spaces skipped.
    #[inline]
    fn rest(&self) -> &'a [u8] {
        let start = self.line.iter().position(|&b| b != b' ');
        &self.line[start.unwrap_or(self.line.len())..]
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    /// Tokens are short: a one-letter token followed by a single space (most flags
    /// clients send) is read at once, any other by a byte loop (which finds its end
    /// sooner than `memchr` sets up).
    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        match self.line {
            [] => return None,
            [b' ', ..] => {}
            [flag] | [flag, b' '] => {
                self.line = &[];
                return Some(std::slice::from_ref(flag));
            }
            [flag, b' ', rest @ ..] => {
                self.line = rest;
                return Some(std::slice::from_ref(flag));
            }
            _ => {}
        }
        let line = self.line;
        let mut start = 0;
        while start < line.len() && line[start] == b' ' {
            start += 1;
        }
        if start == line.len() {
            return None;
        }
        let mut end = start + 1;
        while end < line.len() && line[end] != b' ' {
            end += 1;
        }
        self.line = &line[end..];
        Some(&line[start..end])
    }
}

/// One framed meta line being turned into a request.
struct Line<'a> {
    text: &'a [u8],
    /// Bytes of input the line occupies, newline included.
    len: usize,
}

impl<'a> Line<'a> {
    fn done(&self, request: MetaRequest<'a>) -> Outcome<'a> {
        Ok(Parsed {
            request: Request::Meta(request),
            consumed: self.len,
        })
    }

    fn refuse(&self, reply: &'static str) -> Outcome<'a> {
        self.refuse_swallowing(reply, 0)
    }

    fn refuse_swallowing(&self, reply: &'static str, swallow: usize) -> Outcome<'a> {
        debug_assert_ne!(reply, SILENT);
        Err(ParseError::Invalid {
            reply,
            consumed: self.len,
            swallow,
        })
    }

    /// `me <key> [b]`: only a third token of exactly `b` counts.
    fn debug(&self, mut words: Words<'a>) -> Outcome<'a> {
        let Some(token) = words.next().filter(|key| key.len() <= KEY_MAX_BYTES) else {
            return self.refuse(BAD_FORMAT);
        };
        let base64 = words.next() == Some(b"b");
        if base64 && base64::decode(token, &mut [0; KEY_MAX_BYTES]).is_none() {
            return self.refuse(BAD_FORMAT);
        }
        self.done(MetaRequest::Debug(MetaKey { token, base64 }))
    }

    /// `mg`, `ms`, `md`, `ma` (told apart by the command's second byte).
    fn command(
        &self,
        which: u8,
        mut words: Words<'a>,
        input: &'a [u8],
        limits: &Limits,
    ) -> Outcome<'a> {
        // memcached 1.6.45: no key is a format error (1.6.18 said ERROR).
        let Some(token) = words.next() else {
            return self.refuse(BAD_FORMAT);
        };
        if token.len() > KEY_MAX_BYTES {
            // memcached 1.6.45 skips an `ms` data block whose length it could read.
            let vlen = match which {
                b's' => words.next().and_then(safe_strtol),
                _ => None,
            };
            return match vlen {
                Some(n) if (0..=i32::MAX - 2).contains(&n) => {
                    self.refuse_swallowing(BAD_FORMAT, n as usize + 2)
                }
                _ => self.refuse(BAD_FORMAT),
            };
        }
        let datalen = if which == b's' {
            match words.next() {
                Some(datalen) => Some(datalen),
                None => return self.refuse(BAD_FORMAT),
            }
        } else {
            None
        };
        let flag_tokens = words.rest();
        let fixed = if which == b's' { 3 } else { 2 };
        if fixed + words.count() >= TOKENS_MAX {
            return self.refuse(if which == b'g' { MG_TOO_LONG } else { TOO_LONG });
        }
        let vlen = match datalen.map(safe_strtol) {
            None => 0,
            Some(Some(n)) if (0..=i32::MAX - 2).contains(&n) => n as usize,
            Some(_) => return self.refuse(BAD_FORMAT),
        };
        let swallow = if which == b's' { vlen + 2 } else { 0 };
        let scan = scan_flags(token, flag_tokens);
        let meta = Meta {
            key: MetaKey {
                token,
                base64: scan.flags.base64,
            },
            flag_tokens,
            flags: scan.flags,
        };
        if let Some(reply) = scan.error {
            // memcached 1.6.45 names `md`'s error (1.6.18 said invalid or duplicate).
            let reply = if which == b'a' {
                INVALID_OR_DUPLICATE
            } else {
                reply
            };
            return self.refuse_swallowing(reply, swallow);
        }
        match which {
            b'g' => self.done(MetaRequest::Get(meta)),
            b'd' if meta.flags.opaque_too_long => self.refuse(OPAQUE_TOO_LONG),
            b'd' => self.done(MetaRequest::Delete(meta)),
            b'a' => match meta.flags.mode {
                None | Some(b'I' | b'+') => self.done(MetaRequest::Arith { meta, incr: true }),
                Some(b'D' | b'-') => self.done(MetaRequest::Arith { meta, incr: false }),
                Some(_) => self.refuse(MA_MODE),
            },
            _ => self.set(meta, scan.key_len, vlen, input, limits),
        }
    }

    /// The rest of `ms` once its flags are good: the mode, the size limit, the data.
    fn set(
        &self,
        meta: Meta<'a>,
        key_len: usize,
        vlen: usize,
        input: &'a [u8],
        limits: &Limits,
    ) -> Outcome<'a> {
        let swallow = vlen + 2;
        let mode = match meta.flags.mode {
            None | Some(b'S') => StoreMode::Set,
            Some(b'E') => StoreMode::Add,
            Some(b'A') => StoreMode::Append,
            Some(b'P') => StoreMode::Prepend,
            Some(b'R') => StoreMode::Replace,
            Some(_) => return self.refuse_swallowing(MS_MODE, swallow),
        };
        if meta.flags.opaque_too_long {
            return self.refuse_swallowing(OPAQUE_TOO_LONG, swallow);
        }
        if limits.too_large(key_len, vlen, meta.flags.client_flags) {
            return self.done(MetaRequest::SetTooLarge {
                key: meta.key,
                swallow,
            });
        }
        let end = self.len + swallow;
        let Some(block) = input.get(self.len..end) else {
            return Err(ParseError::Incomplete);
        };
        let (value, terminator) = block.split_at(vlen);
        if terminator != b"\r\n" {
            return Err(ParseError::Invalid {
                reply: BAD_DATA_CHUNK,
                consumed: end,
                swallow: 0,
            });
        }
        Ok(Parsed {
            request: Request::Meta(MetaRequest::Set { meta, mode, value }),
            consumed: end,
        })
    }
}

/// The flags of a request, or the answer memcached gives to them.
struct Scan {
    flags: MetaFlags,
    error: Option<&'static str>,
    /// The key's length (decoded with `b`).
    key_len: usize,
}

/// memcached's flag pre-parse: each token's first byte is its flag; an unknown or
/// repeated flag ends the scan with its error; a bad argument marks an error whose
/// message is the last one set (bad `F` sets none) and the scan goes on.
fn scan_flags(key: &[u8], tokens: &[u8]) -> Scan {
    let mut f = MetaFlags::default();
    let mut seen = [false; 127];
    let mut failed = false;
    let mut message = None;
    let mut key_len = key.len();
    for token in (Words { line: tokens }) {
        let flag = token[0];
        if flag >= 127 || seen[usize::from(flag)] {
            return Scan {
                flags: f,
                error: Some(DUPLICATE_FLAG),
                key_len,
            };
        }
        seen[usize::from(flag)] = true;
        let arg = &token[1..];
        let mut bad = |reply: Option<&'static str>| {
            failed = true;
            message = reply.or(message);
        };
        match flag {
            b'b' => {
                f.base64 = true;
                match base64::decode(key, &mut [0; KEY_MAX_BYTES]) {
                    Some(len) => key_len = len,
                    None => bad(Some(DECODING_KEY)),
                }
            }
            b'N' | b'T' | b'R' => {
                f.locked = true;
                match safe_strtol(arg) {
                    None => bad(Some(BAD_TOKEN)),
                    Some(ttl) if flag == b'N' => f.vivify = Some(ttl),
                    Some(ttl) if flag == b'T' => f.ttl = Some(ttl),
                    Some(ttl) => f.recache = Some(ttl),
                }
            }
            b'l' | b'h' => f.locked = true,
            b'O' => f.opaque_too_long = token.len() > OPAQUE_MAX_BYTES,
            b'P' | b'L' | b'k' | b's' | b't' | b'c' | b'f' => {}
            b'v' => f.value = true,
            b'u' => f.no_bump = true,
            b'q' => f.quiet = true,
            b'I' => f.invalidate = true,
            b'F' => match safe_strtoul(arg) {
                Some(flags) => f.client_flags = flags,
                None => bad(None),
            },
            b'C' => match safe_strtoull(arg) {
                Some(cas) => f.compare_cas = Some(cas),
                None => bad(Some(BAD_TOKEN)),
            },
            // memcached 1.6.45's two new flags (1.6.18: invalid).
            b'E' => match safe_strtoull(arg) {
                Some(cas) => f.new_cas = cas,
                None => bad(Some(BAD_TOKEN)),
            },
            b'x' => f.remove_value = true,
            // memcached 1.6.45 reads the mode's first byte; an empty `M` is a bad mode
            // (1.6.18 refused any length but one byte).
            b'M' => f.mode = Some(token.get(1).copied().unwrap_or(0)),
            b'J' => match safe_strtoull(arg) {
                Some(initial) => f.initial = initial,
                None => bad(Some(BAD_INITIAL)),
            },
            b'D' => match safe_strtoull(arg) {
                Some(delta) => f.delta = delta,
                None => bad(Some(BAD_DELTA)),
            },
            _ => {
                return Scan {
                    flags: f,
                    error: Some(INVALID_FLAG),
                    key_len,
                }
            }
        }
    }
    Scan {
        flags: f,
        error: failed.then(|| message.unwrap_or(BAD_FORMAT)),
        key_len,
    }
}
