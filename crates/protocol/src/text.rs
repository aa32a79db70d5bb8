//! Classic memcached text protocol: the request parser.
//!
//! Owns the framing (lines, data blocks, line-length limits), the tokenizer and the
//! per-command argument rules of the ASCII dialect, down to memcached's exact answers
//! for bad input: 1.6.18's, except where the tables below name 1.6.45 (its rewritten
//! parser; ringcache follows it there). It knows nothing of the store or the connection: [`parse`]
//! turns the front of a byte slice into one [`Request`] borrowing from it, or says what
//! to answer and how many bytes to drop. Meta commands (`mg ms md ma mn me`) are
//! `meta`'s: this parser frames their line and hands it to `meta::parse_line`.
//! Framing the line and the numbers (the first two rows of the tables below, and the
//! number rules) are `crate::ascii`'s, shared with `meta`; tokenizing is `line`'s.
//!
//! Invariants:
//! - `consumed` never exceeds the input; a request is returned only when its line (and
//!   for store commands its data block and `\r\n`) is complete;
//! - the result depends only on the bytes, never on how they were split: every proper
//!   prefix of a request gives [`ParseError::Incomplete`] (or, for a line over the
//!   limit, the same [`ParseError::Fatal`]); that is why the 2048-byte rule below looks
//!   at the first 2049 bytes only, where memcached looks at whatever one read returned;
//! - every key (including each key of a multi-key get) is checked while parsing;
//! - no allocation: tokens are slices of the input.
//!
//! Silent errors: memcached sends no error line for a command that carried `noreply`
//! (its `out_string` drops any answer once `noreply` was seen). [`ParseError::Invalid`]
//! cannot say "no reply", so its `reply` is then [`SILENT`] (the empty string): the
//! connection writes nothing for it (`encode::reply_line` does that).
//!
//! # memcached 1.6.18's behaviour, verified against the real server
//!
//! Rows whose `here` column names 1.6.45 follow memcached 1.6.45 instead (checked by the
//! differential tests against both builds).
//!
//! Framing and tokens:
//!
//! | input | memcached | here |
//! |---|---|---|
//! | line ends `\r\n` or bare `\n` | both accepted | same |
//! | `\r` elsewhere in a line | key/token material (`get a\rb`) | same |
//! | NUL byte in a line | the line ends there (`strlen`): `get a\0b` is `get a` | same |
//! | several spaces, leading/trailing spaces | ignored; only `' '` separates (`\t` is token material) | same |
//! | control bytes in keys (`\x01`, `\t`) | accepted as key material | same |
//! | more than 23 tokens | only the first 23 count; commands with a token limit answer `ERROR` | only the first 23 count; extra tokens are ignored, a last `noreply` counts (1.6.45) |
//! | empty line, first token shorter than 2 bytes | `ERROR` | a line under 2 bytes (empty, `x`, one space, NUL first) is `CLIENT_ERROR bad command line format` (1.6.45); otherwise `ERROR` |
//! | commands are case-sensitive (`GET`) | `ERROR` | same |
//! | unknown command whose last token starts `HTTP/` (first byte not one of `m g s a c i d t`) | connection closed, no answer | `Fatal { reply: None }` |
//! | other unknown command | `ERROR` | same; `lru_crawler`, `cache_memlimit` and `stats cachedump` are `admin`'s |
//! | two-byte command starting with `m` | meta command (`mg ms md ma mn me`), else `ERROR` | the six go to `meta::parse_line`; others `ERROR` |
//! | `shutdown`, `watch`, `stats detail`, `slabs`, `lru` | memcached's rules | `operator`'s (`text/operator.rs` has their table) |
//! | no `\n` within 2048 bytes, line not `get `/`gets ` after ≤ 100 spaces | connection closed, no answer | `Fatal { reply: None }` as soon as 2049 bytes lack a `\n` |
//! | no `\n` within 2048 bytes, `get `/`gets ` line | keeps reading, no limit (a 4 MB get works) | keeps reading up to [`GET_LINE_MAX_BYTES`], then `Fatal` with `SERVER_ERROR out of memory reading request` (memcached's answer when its read buffer cannot grow) |
//! | `quit` (any arguments) | closes | `Request::Quit` |
//! | `refresh_certs` (any arguments; `noreply` last silences `OK` only) | reloads the TLS certificates: `OK`, or memcached's error line | `Request::RefreshCerts` |
//! | `version` (any arguments) | `VERSION 1.6.18` | `Request::Version` |
//!
//! Numbers (memcached's `safe_strto*`, see `ascii::number`): leading whitespace and `+`/`-`
//! accepted, trailing whitespace-then-anything accepted (`1\tjunk` is 1), `0x1` refused,
//! 32-bit values truncated from 64 bits (flags `4294967301` → 5, exptime `4294967296` →
//! 0, bytes `4294967297` → 1), `-0` is 0 everywhere, other negatives refused by unsigned
//! fields.
//!
//! Store commands (`set add replace append prepend`: 5 or 6 tokens; `cas`: 6 or 7):
//!
//! | input | answer | consumed / swallow |
//! |---|---|---|
//! | too many tokens (`set a 0 0 1 2 3`) | `ERROR` (never silenced) | 1.6.45: ignored, stored (silent only if the last token is `noreply`) |
//! | no usable length: too few tokens (`set a 0 0`), bad/negative bytes, bytes > 2^31-3 | `ERROR` for a wrong count, else `CLIENT_ERROR bad command line format` | 1.6.45: `CLIENT_ERROR bad command line format`, never silenced; line / 0 (data parsed as a command) |
//! | extra 6th token that is not `noreply` (`set a 0 0 1 foo`) | ignored, stored | line + data |
//! | with a usable length: key > 250 bytes, bad/negative flags, bad exptime, bad or missing cas | `CLIENT_ERROR bad command line format`, line / 0 | 1.6.45: the same answer (silent with a last `noreply`); line / bytes + 2 (the block is skipped) |
//! | item over the size limit | `SERVER_ERROR object too large for cache` (silent with noreply), `set` also unlinks the old value | `Request::TooLarge`: line / bytes + 2, whatever those bytes are |
//! | data block not followed by `\r\n` | `CLIENT_ERROR bad data chunk` (silent with noreply), nothing stored | line + bytes + 2 / 0: exactly the block and two bytes go, the rest is parsed (`set a 0 0 1\r\nxyz\r\n` answers it, then the empty line's error) |
//!
//! Other commands:
//!
//! | input | answer |
//! |---|---|
//! | `get`/`gets`/`gat`/`gats` without a key (also `gat <exptime>`) | 1.6.45: `CLIENT_ERROR bad command line format` (1.6.18: `ERROR`, and `END` for `gat <exptime>`) |
//! | `bget` without a key | `ERROR` |
//! | any key of a get > 250 bytes | 1.6.45: `CLIENT_ERROR bad command line format` and an empty line, no values at all (memcached even drops the still-unsent answers of earlier pipelined commands; not reproduced) |
//! | `gat`/`gats` bad exptime | `CLIENT_ERROR invalid exptime argument` |
//! | `get k noreply` | `noreply` is a key |
//! | `incr`/`decr`/`touch`/`delete`/`verbosity` missing an argument | 1.6.45: `CLIENT_ERROR bad command line format` (1.6.18: `ERROR`) |
//! | `incr`/`decr`/`touch`/`verbosity` with more arguments | 1.6.45: ignored, a last `noreply` counts (1.6.18: `ERROR`) |
//! | `incr`/`decr` bad or negative delta, or ≥ 2^64 | `CLIENT_ERROR invalid numeric delta argument` |
//! | `touch` bad exptime | `CLIENT_ERROR invalid exptime argument` |
//! | `delete k 0`, `delete k noreply`, `delete k 0 noreply` | accepted (legacy hold time must be exactly `0`) |
//! | `delete k 1`, `delete k 0 x`, `delete k 00` | `CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]` (kept: 1.6.45 deletes, and fails `memccapable`) |
//! | `delete` with more than 3 arguments | `ERROR` (kept, as above) |
//! | `flush_all` with more than 2 arguments | `ERROR` |
//! | `flush_all abc`, `flush_all noreply 10` | `CLIENT_ERROR invalid exptime argument` |
//! | `flush_all -5` | `OK` (negative delay = now) |
//! | `verbosity x`, `verbosity -1` | `CLIENT_ERROR bad command line format` |
//! | `stats <group> <anything>` | the group; extra tokens ignored |
//! | key > 250 bytes in incr/decr/touch/delete | `CLIENT_ERROR bad command line format` |
//! | any `CLIENT_ERROR` above on a command whose last token is `noreply` | no answer ([`SILENT`]) |
//!
//! Every error here consumes exactly its line and swallows nothing, except a refused
//! store with a usable length (1.6.45) and an item that is too large: those skip the
//! data block.

use super::{Keys, Limits, ParseError, Parsed, Request, StatsGroup, StoreMode, KEY_MAX_BYTES};
use crate::meta::Meta;

mod admin;
mod fast;
mod line;
mod operator;
#[cfg(test)]
mod tests;

use crate::ascii::number::{safe_strtol, safe_strtoul, safe_strtoull};
pub use crate::ascii::{GET_LINE_MAX_BYTES, SILENT};
use line::Tokens;

const ERROR: &str = "ERROR";
const BAD_FORMAT: &str = "CLIENT_ERROR bad command line format";
const BAD_DATA_CHUNK: &str = "CLIENT_ERROR bad data chunk";
const BAD_EXPTIME: &str = "CLIENT_ERROR invalid exptime argument";
const BAD_DELTA: &str = "CLIENT_ERROR invalid numeric delta argument";
const DELETE_USAGE: &str = "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]";
/// memcached 1.6.45's answer for a get with a key over 250 bytes: the error line and an
/// empty line after it (its `out_errstring` leaves the line end it was given in place).
const BAD_GET_KEY: &str = "CLIENT_ERROR bad command line format\r\n";

/// Parses one request from the start of `input`.
#[inline]
pub fn parse<'a>(input: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, ParseError> {
    match fast::parse(input, limits) {
        Some(parsed) => parsed,
        None => parse_general(input, limits),
    }
}

/// For a look-ahead: the key the request at the front of `input` will look up, the
/// bytes it takes and, for a plain `get <key>`, `gets <key>`, `set` or `mg` line, the
/// request itself, read once (see `fast`), without trying the general parser; `None` for any
/// input but those and plain `ms` and `mg` lines. The key is a hint: an `mg` line of
/// one-byte flags is read this way even where the parser then refuses it.
#[inline]
pub fn peek_plain<'a>(input: &'a [u8], limits: &Limits) -> Option<Peeked<'a>> {
    fast::peek(input, limits)
}

/// What [`peek_plain`] read of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peeked<'a> {
    /// The key the request looks up first.
    pub key: &'a [u8],
    /// The bytes the request takes.
    pub consumed: usize,
    /// The request, when it is one the connection may run as read here.
    pub plain: Plain<'a>,
}

/// A request [`peek_plain`] read whole: exactly the [`Request`] [`parse`] returns for
/// the same bytes ([`Plain::request`]), in a smaller form a look-ahead can keep a
/// batch of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plain<'a> {
    /// `get <key>` or `gets <key>`: one key, no touch.
    Get { key: &'a [u8], with_cas: bool },
    /// `set <key> <flags> <exptime> <bytes>[ noreply]` with its data block.
    Set {
        key: &'a [u8],
        flags: u32,
        exptime: i64,
        value: &'a [u8],
        noreply: bool,
    },
    /// `mg <key>( <flag>)*` of the flags the fast path reads (see `fast`).
    MetaGet(PlainMetaGet<'a>),
    /// A request only named by its key and length (`ms`, an `mg` of other flags):
    /// [`parse`] it to run it.
    Other,
}

/// A plain `mg` line as [`peek_plain`] read it: [`PlainMetaGet::meta`] is its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlainMetaGet<'a> {
    token: &'a [u8],
    flag_tokens: &'a [u8],
    /// Its flags, as `fast`'s letter bits.
    seen: u64,
}

impl<'a> Plain<'a> {
    /// The request [`parse`] returns for the same bytes (`None` for [`Plain::Other`]).
    pub fn request(self) -> Option<Request<'a>> {
        match self {
            Plain::Get { key, with_cas } => Some(Request::Get {
                keys: Keys::one(key),
                with_cas,
                touch: None,
            }),
            Plain::Set {
                key,
                flags,
                exptime,
                value,
                noreply,
            } => Some(Request::Store {
                mode: StoreMode::Set,
                key,
                flags,
                exptime,
                cas: 0,
                value,
                noreply,
            }),
            Plain::MetaGet(get) => Some(Request::Meta(crate::meta::MetaRequest::Get(get.meta()))),
            Plain::Other => None,
        }
    }
}

/// [`parse`] of a plain `mg <key> <flags>` line (see `fast`), or `None` for any other
/// input: the meta get [`parse`] returns, and the bytes it uses, without the `Parsed`
/// around it (the largest request, a copy per request in the meta profile).
#[inline]
pub fn parse_plain_meta_get(input: &[u8]) -> Option<(Meta<'_>, usize)> {
    match input.first_chunk::<3>()? {
        b"mg " => fast::plain_meta_get(input),
        _ => None,
    }
}

/// The key of a plain `get <key>` line (see `fast`) at the front of `input`, and the
/// bytes it uses: the one-key get [`parse`] returns, without the `Parsed` around it.
#[inline]
pub fn parse_plain_get(input: &[u8]) -> Option<(&[u8], usize)> {
    fast::plain_get(input)
}

/// [`parse`] for every line: frame, tokenize, dispatch on the command name.
fn parse_general<'a>(input: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, ParseError> {
    let (tokens, line_len) = line::split(input)?;
    let command = Command {
        line: tokens.line(),
        tokens: &tokens,
        line_len,
    };
    command.parse(input, limits)
}

/// One framed line being turned into a request.
struct Command<'t, 'a> {
    line: &'a [u8],
    tokens: &'t Tokens<'a>,
    /// Bytes of input the line occupies, newline included.
    line_len: usize,
}

type Outcome<'a> = Result<Parsed<'a>, ParseError>;

impl<'a> Command<'_, 'a> {
    fn parse(&self, input: &'a [u8], limits: &Limits) -> Outcome<'a> {
        let t = self.tokens;
        // memcached 1.6.45: a line shorter than two bytes is a format error.
        if self.line.len() < 2 {
            return self.invalid(BAD_FORMAT);
        }
        if t.len() == 0 || t.get(0).len() < 2 {
            return self.invalid(ERROR);
        }
        match t.get(0) {
            b"get" | b"bget" => self.get(false, false),
            b"gets" => self.get(true, false),
            b"gat" => self.get(false, true),
            b"gats" => self.get(true, true),
            b"set" => self.store(StoreMode::Set, input, limits),
            b"add" => self.store(StoreMode::Add, input, limits),
            b"replace" => self.store(StoreMode::Replace, input, limits),
            b"append" => self.store(StoreMode::Append, input, limits),
            b"prepend" => self.store(StoreMode::Prepend, input, limits),
            b"cas" => self.store(StoreMode::Cas, input, limits),
            b"incr" => self.arith(true),
            b"decr" => self.arith(false),
            b"delete" => self.delete(),
            b"touch" => self.touch(),
            b"flush_all" => self.flush_all(),
            b"verbosity" => self.verbosity(),
            b"stats" => self.stats(),
            b"version" => self.done(Request::Version),
            b"quit" => self.done(Request::Quit),
            b"shutdown" => self.shutdown(),
            b"refresh_certs" => self.done(Request::RefreshCerts {
                noreply: self.tokens.noreply(),
            }),
            b"watch" => self.watch(),
            b"slabs" => self.slabs(),
            b"lru" => self.lru(),
            b"lru_crawler" => self.lru_crawler(),
            b"cache_memlimit" => self.cache_memlimit(),
            [b'm', b'g' | b's' | b'd' | b'a' | b'n' | b'e'] => {
                super::meta::parse_line(input, self.line, self.line_len, limits)
            }
            other => self.unknown(other),
        }
    }

    fn done(&self, request: Request<'a>) -> Outcome<'a> {
        Ok(Parsed {
            request,
            consumed: self.line_len,
        })
    }

    fn invalid(&self, reply: &'static str) -> Outcome<'a> {
        Err(ParseError::Invalid {
            reply,
            consumed: self.line_len,
            swallow: 0,
        })
    }

    /// An error answer that `noreply` silences.
    fn client_error(&self, reply: &'static str, noreply: bool) -> Outcome<'a> {
        self.invalid(if noreply { SILENT } else { reply })
    }

    /// A command memcached does not know (or this server does not offer).
    fn unknown(&self, command: &[u8]) -> Outcome<'a> {
        // memcached dispatches on the first byte before comparing names; only names
        // that fall through every branch get the HTTP check.
        let dispatched = (command[0] == b'm' && command.len() == 2)
            || matches!(command[0], b'g' | b's' | b'a' | b'c' | b'i' | b'd' | b't')
            || matches!(command, b"lru_crawler" | b"watch" | b"lru");
        let t = self.tokens;
        if !dispatched && t.last().starts_with(b"HTTP/") {
            return Err(ParseError::Fatal { reply: None });
        }
        self.invalid(ERROR)
    }

    /// `get|gets|bget <key>*` and `gat|gats <exptime> <key>*`.
    fn get(&self, with_cas: bool, touch: bool) -> Outcome<'a> {
        let t = self.tokens;
        if t.len() < 2 {
            // memcached 1.6.45 still knows `bget` only by its old answer.
            return self.invalid(if t.get(0) == b"bget" {
                ERROR
            } else {
                BAD_FORMAT
            });
        }
        let (touch, first_key) = if touch {
            if t.len() < 3 {
                return self.invalid(BAD_FORMAT);
            }
            match safe_strtol(t.get(1)) {
                Some(exptime) => (Some(i64::from(exptime)), 2),
                None => return self.invalid(BAD_EXPTIME),
            }
        } else {
            (None, 1)
        };
        let keys = Keys::list(&self.line[t.start(first_key)..]);
        let too_long = if t.all_kept() {
            (first_key..t.len()).any(|i| t.get(i).len() > KEY_MAX_BYTES)
        } else {
            keys.iter().any(|key| key.len() > KEY_MAX_BYTES)
        };
        if too_long {
            return self.invalid(BAD_GET_KEY);
        }
        self.done(Request::Get {
            keys,
            with_cas,
            touch,
        })
    }

    /// `<mode> <key> <flags> <exptime> <bytes> [noreply]` and
    /// `cas <key> <flags> <exptime> <bytes> <cas unique> [noreply]`, with the data block.
    fn store(&self, mode: StoreMode, input: &'a [u8], limits: &Limits) -> Outcome<'a> {
        let t = self.tokens;
        let with_cas = mode == StoreMode::Cas;
        let min = if with_cas { 6 } else { 5 };
        // memcached 1.6.45 reads the length first: without a usable one the line is
        // refused (noreply or not) and the data line is parsed as a command.
        let bytes = match (t.len() > 4).then(|| safe_strtol(t.get(4))).flatten() {
            Some(bytes) if (0..=i32::MAX - 2).contains(&bytes) => bytes as usize,
            _ => return self.invalid(BAD_FORMAT),
        };
        // With a length, any other error skips the data block, as a too-large item
        // does; extra tokens are ignored, and only a last `noreply` counts.
        let noreply = t.len() >= min && t.noreply();
        let refused = Err(ParseError::Invalid {
            reply: if noreply { SILENT } else { BAD_FORMAT },
            consumed: self.line_len,
            swallow: bytes + 2,
        });
        let key = t.get(1);
        if t.len() < min || key.len() > KEY_MAX_BYTES {
            return refused;
        }
        let (Some(flags), Some(exptime)) = (safe_strtoul(t.get(2)), safe_strtol(t.get(3))) else {
            return refused;
        };
        let cas = if with_cas {
            match safe_strtoull(t.get(5)) {
                Some(cas) => cas,
                None => return refused,
            }
        } else {
            0
        };
        if limits.too_large(key.len(), bytes, flags) {
            return self.done(Request::TooLarge {
                mode,
                key,
                noreply,
                swallow: bytes + 2,
            });
        }
        let end = self.line_len + bytes + 2;
        let Some(block) = input.get(self.line_len..end) else {
            return Err(ParseError::Incomplete);
        };
        let (value, terminator) = block.split_at(bytes);
        if terminator != b"\r\n" {
            return Err(ParseError::Invalid {
                reply: if noreply { SILENT } else { BAD_DATA_CHUNK },
                consumed: end,
                swallow: 0,
            });
        }
        Ok(Parsed {
            request: Request::Store {
                mode,
                key,
                flags,
                exptime: i64::from(exptime),
                cas,
                value,
                noreply,
            },
            consumed: end,
        })
    }

    /// A key argument: over [`KEY_MAX_BYTES`] is memcached's format error.
    fn key(&self, i: usize, noreply: bool) -> Result<&'a [u8], ParseError> {
        let key = self.tokens.get(i);
        if key.len() > KEY_MAX_BYTES {
            self.client_error(BAD_FORMAT, noreply)?;
        }
        Ok(key)
    }

    /// The `<cmd> <key> <arg> [noreply]` shape of incr, decr and touch (memcached
    /// 1.6.45: further tokens are ignored, a last `noreply` counts): the key, the
    /// argument and noreply.
    fn key_arg(&self) -> Result<(&'a [u8], &'a [u8], bool), ParseError> {
        let t = self.tokens;
        if t.len() < 3 {
            self.invalid(BAD_FORMAT)?;
        }
        let noreply = t.noreply();
        Ok((self.key(1, noreply)?, t.get(2), noreply))
    }

    /// `incr|decr <key> <delta> [noreply]`.
    fn arith(&self, incr: bool) -> Outcome<'a> {
        let (key, delta, noreply) = self.key_arg()?;
        let Some(delta) = safe_strtoull(delta) else {
            return self.client_error(BAD_DELTA, noreply);
        };
        self.done(Request::Arith {
            key,
            delta,
            incr,
            noreply,
        })
    }

    /// `delete <key> [0] [noreply]` (the legacy hold time must be exactly `0`). Here
    /// memcached 1.6.18's rules stay: 1.6.45 ignores the hold time and extra tokens, and
    /// so fails `memccapable`'s delete tests; only a missing key follows 1.6.45.
    fn delete(&self) -> Outcome<'a> {
        let t = self.tokens;
        if t.len() < 2 {
            return self.invalid(BAD_FORMAT);
        }
        if t.len() > 4 {
            return self.invalid(ERROR);
        }
        let noreply = t.len() > 2 && t.noreply();
        if t.len() > 2 {
            let hold_is_zero = t.get(2) == b"0";
            let valid = (t.len() == 3 && (hold_is_zero || noreply))
                || (t.len() == 4 && hold_is_zero && noreply);
            if !valid {
                return self.client_error(DELETE_USAGE, noreply);
            }
        }
        let key = self.key(1, noreply)?;
        self.done(Request::Delete { key, noreply })
    }

    /// `touch <key> <exptime> [noreply]`.
    fn touch(&self) -> Outcome<'a> {
        let (key, exptime, noreply) = self.key_arg()?;
        let Some(exptime) = safe_strtol(exptime) else {
            return self.client_error(BAD_EXPTIME, noreply);
        };
        self.done(Request::Touch {
            key,
            exptime: i64::from(exptime),
            noreply,
        })
    }

    /// `flush_all [delay] [noreply]`.
    fn flush_all(&self) -> Outcome<'a> {
        let t = self.tokens;
        if t.len() > 3 {
            return self.invalid(ERROR);
        }
        let noreply = t.noreply();
        let delay_secs = if t.len() != if noreply { 2 } else { 1 } {
            match safe_strtol(t.get(1)) {
                Some(delay) => i64::from(delay),
                None => return self.client_error(BAD_EXPTIME, noreply),
            }
        } else {
            0
        };
        self.done(Request::FlushAll {
            delay_secs,
            noreply,
        })
    }

    /// `verbosity <level> [noreply]`.
    fn verbosity(&self) -> Outcome<'a> {
        let t = self.tokens;
        if t.len() < 2 {
            return self.invalid(BAD_FORMAT);
        }
        let noreply = t.noreply();
        let Some(level) = safe_strtoul(t.get(1)) else {
            return self.client_error(BAD_FORMAT, noreply);
        };
        self.done(Request::Verbosity { level, noreply })
    }

    /// `stats [group …]`. A group this parser does not name comes back as
    /// [`StatsGroup::Other`] holding all the arguments (`cachedump 1 2`); `stats detail`
    /// is `operator`'s.
    fn stats(&self) -> Outcome<'a> {
        let t = self.tokens;
        let group = if t.len() == 1 {
            StatsGroup::General
        } else {
            match t.get(1) {
                b"settings" => StatsGroup::Settings,
                b"items" => StatsGroup::Items,
                b"slabs" => StatsGroup::Slabs,
                b"conns" => StatsGroup::Conns,
                b"sizes" => StatsGroup::Sizes,
                b"reset" => StatsGroup::Reset,
                b"detail" => return self.stats_detail(),
                b"cachedump" => return self.cachedump(),
                _ => {
                    let args = &self.line[t.start(1)..];
                    let end = args.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
                    StatsGroup::Other(&args[..end])
                }
            }
        };
        self.done(Request::Stats(group))
    }
}
