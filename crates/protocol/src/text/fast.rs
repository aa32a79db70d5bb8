//! The lines a cache reads most, in their plain spelling, read without the general
//! tokenizer: `get <key>` / `gets <key>`, `set <key> <flags> <exptime> <bytes>
//! [noreply]` with its data block, and their meta forms `mg <key> <flags>` and
//! `ms <key> <datalen> <flags>` with its data block, when every flag is one of
//! [`MG_FLAGS`] / [`MS_FLAGS`] (`ms` also takes `T<ttl>` and `F<flags>` of plain
//! digits). Four ways in: [`parse`] (the parser's first try), [`plain_get`] and
//! [`plain_meta_get`] (a `get <key>` line's key, an `mg` line's request: what the
//! connection runs without a `Parsed` around it) and [`peek`] (the look-ahead's key and
//! length, and a plain `get` or `set` itself, in the compact [`Plain`] form the
//! connection runs without parsing it again).
//!
//! Owns nothing of the protocol's rules: [`parse`] either returns exactly what the
//! general parser (`line` + `Command`) returns for the same input, or `None`, and then
//! the general parser decides; [`plain_meta_get`] is [`parse`]'s `mg` request. It says
//! `None` for anything it does not read in one straight pass: a key with a byte at or
//! below `' '` in it or over [`KEY_MAX_BYTES`], a second key, a number that is not 1
//! to 9 plain decimal digits (signs, whitespace and 32-bit truncation are the general
//! parser's), doubled spaces, a sixth token other than `noreply`, an item over the size
//! limit, a data block not ended by `\r\n`, a meta flag not in the lists (or given
//! twice), and a line that has not fully arrived. [`peek`] reads what [`parse`]
//! reads (its [`Plain`] request is [`parse`]'s), and also, as a key hint only, an `mg`
//! line of other one-byte flags (see there). Tests
//! (`fast/tests.rs`) compare all three with the general parser on mutations of plain
//! lines, on hostile lines and on generated meta lines (proptest).
//!
//! Why: the general parser tokenizes the whole line, keeps up to 23 token spans and
//! matches the command against every name; for the common `get` and `set` that was
//! about 400 instructions a request, a third of the server's user-space work at
//! pipeline depth 16. A plain `mg <key> k v` through the general parser (framing,
//! tokenizing, then the meta parser's own pass over the flags) cost twice a `get`.
//! Meta flags are read as bits of one word ([`letters`]): each flag one table load, a
//! repeat or a flag not in the list told once after the loop.

use crate::meta::{Meta, MetaFlags, MetaKey, MetaRequest};
use crate::text::{Peeked, Plain, PlainMetaGet};
use crate::{scan, Keys, Limits, ParseError, Parsed, Request, StoreMode, KEY_MAX_BYTES};

/// The `mg` flags read here: one letter each, no argument (`b`, whose key must be
/// decoded, and every flag with an argument are the general parser's).
const MG_FLAGS: u64 = letters(b"kvstcfquhl");

/// The `ms` flags read here without an argument (besides `T` and `F` with digits).
const MS_FLAGS: u64 = letters(b"kcsq");

/// `T` and `F`, the `ms` flags read here with plain digits.
const MS_NUMBER_FLAGS: u64 = letters(b"TF");

/// Most digits a number read here may have: 9 digits fit every field (flags `u32`,
/// exptime and bytes `i32`) with no truncation or range rule to apply.
const MAX_DIGITS: usize = 9;

/// The set of `flags` (ASCII letters) as bits: the low six bits of a byte from 0x40 to
/// 0x7f tell it apart from the others there (`A`–`Z` are 1–26, `a`–`z` 33–58), so one
/// test of a word says whether a flag is in a set, or was already seen.
const fn letters(flags: &[u8]) -> u64 {
    let mut set = 0;
    let mut i = 0;
    while i < flags.len() {
        set |= letter(flags[i]);
        i += 1;
    }
    set
}

/// The bit of `flag` in a set of [`letters`]; bit 0 (which no letter has) for a byte
/// outside 0x41–0x7f, where no flag's neighbours are (digits, spaces, line ends).
#[inline(always)]
const fn letter(flag: u8) -> u64 {
    LETTER_BITS[flag as usize]
}

/// [`letter`] of every byte, looked up (one load per flag read, where computing it took
/// a handful of instructions).
const LETTER_BITS: [u64; 256] = {
    let mut bits = [1; 256];
    let mut byte = 0x40;
    while byte < 0x80 {
        bits[byte] = 1 << (byte & 63);
        byte += 1;
    }
    bits
};

/// The request at the front of `input` if it is a plain `get`, `gets` or `set`;
/// `None` to leave it to the general parser.
#[inline(always)]
pub(super) fn parse<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Option<Result<Parsed<'a>, ParseError>> {
    match input.first_chunk::<4>()? {
        b"get " => get(input, 4, false),
        b"gets" if input.get(4) == Some(&b' ') => get(input, 5, true),
        b"set " => set(input, limits),
        [b'm', b'g', b' ', _] => meta_get(input),
        [b'm', b's', b' ', _] => meta_set(input, limits),
        _ => None,
    }
}

/// For the look-ahead: the key of the request at the front of `input`, the bytes the
/// request takes, and the request itself when it is a plain `get`, `gets` or `set`
/// or a plain `mg` (so the connection runs it without parsing it again), if [`parse`]
/// reads it, or if
/// it is an `mg <key>` line whose flags are all one byte (` <byte>` pairs, which it
/// skips without reading them: whatever they are, such a line is the key's lookup or a
/// refusal, and the line is its length). `None` where neither holds.
#[inline(always)]
pub(super) fn peek<'a>(input: &'a [u8], limits: &Limits) -> Option<Peeked<'a>> {
    let head = input.first_chunk::<4>()?;
    if let [b'm', b'g', b' ', _] = head {
        if let Some((get, consumed)) = meta_get_line(input) {
            return Some(Peeked {
                key: get.token,
                consumed,
                plain: Plain::MetaGet(get),
            });
        }
        let (key, mut at) = key(input, 3)?;
        while input.get(at)? == &b' ' && input.get(at + 1)? > &b' ' {
            at += 2;
        }
        let consumed = line_end(input, at)?;
        return Some(Peeked {
            key,
            consumed,
            plain: Plain::Other,
        });
    }
    if head == b"get " {
        // The pipelined request read most, told by one compare.
        let (key, consumed) = plain_get(input)?;
        return Some(Peeked {
            key,
            consumed,
            plain: Plain::Get {
                key,
                with_cas: false,
            },
        });
    }
    let Ok(Parsed { request, consumed }) = parse(input, limits)? else {
        return None;
    };
    let (key, plain) = match request {
        Request::Get { keys, with_cas, .. } => {
            let key = keys.iter().next()?;
            (key, Plain::Get { key, with_cas })
        }
        Request::Store {
            key,
            flags,
            exptime,
            value,
            noreply,
            ..
        } => (
            key,
            Plain::Set {
                key,
                flags,
                exptime,
                value,
                noreply,
            },
        ),
        Request::Meta(MetaRequest::Set { meta, .. }) => (meta.key.token, Plain::Other),
        _ => return None,
    };
    Some(Peeked {
        key,
        consumed,
        plain,
    })
}

/// `mg <key>( <flag>)*\r\n`, every flag one of [`MG_FLAGS`], none twice.
#[inline(always)]
fn meta_get(input: &[u8]) -> Option<Result<Parsed<'_>, ParseError>> {
    let (meta, consumed) = plain_meta_get(input)?;
    Some(Ok(Parsed {
        request: Request::Meta(MetaRequest::Get(meta)),
        consumed,
    }))
}

/// The request of [`meta_get`] itself, at the front of `input` (which starts `mg `),
/// and the bytes its line takes.
#[inline(always)]
pub(super) fn plain_meta_get(input: &[u8]) -> Option<(Meta<'_>, usize)> {
    let (get, consumed) = meta_get_line(input)?;
    Some((get.meta(), consumed))
}

/// The line of [`meta_get`] read (its key, flag tokens and flags as [`letters`]), and
/// its length.
#[inline(always)]
fn meta_get_line(input: &[u8]) -> Option<(PlainMetaGet<'_>, usize)> {
    let (token, mut at) = key(input, 3)?;
    let start = at + 1;
    // Each flag is ` <letter>`, the line ends after the last. A flag given twice, or
    // any byte but the listed letters, is told after the loop.
    let (mut seen, mut twice) = (0u64, 0u64);
    while input.get(at)? == &b' ' {
        let bit = letter(*input.get(at + 1)?);
        twice |= seen & bit;
        seen |= bit;
        at += 2;
    }
    if twice != 0 || seen & !MG_FLAGS != 0 {
        return None;
    }
    let consumed = line_end(input, at)?;
    let get = PlainMetaGet {
        token,
        flag_tokens: input.get(start..at).unwrap_or_default(),
        seen,
    };
    Some((get, consumed))
}

impl<'a> PlainMetaGet<'a> {
    /// The meta get [`parse`] returns for the line this was read from.
    #[inline(always)]
    pub fn meta(&self) -> Meta<'a> {
        let seen = self.seen;
        let flags = MetaFlags {
            value: seen & const { letters(b"v") } != 0,
            quiet: seen & const { letters(b"q") } != 0,
            no_bump: seen & const { letters(b"u") } != 0,
            locked: seen & const { letters(b"hl") } != 0,
            ..MetaFlags::default()
        };
        Meta {
            key: MetaKey {
                token: self.token,
                base64: false,
            },
            flag_tokens: self.flag_tokens,
            flags,
        }
    }
}

/// `ms <key> <datalen>( <flag>)*\r\n<data>\r\n`, every flag one of [`MS_FLAGS`] or
/// `T`/`F` with plain digits, none twice.
#[inline(always)]
fn meta_set<'a>(input: &'a [u8], limits: &Limits) -> Option<Result<Parsed<'a>, ParseError>> {
    let (token, at) = key(input, 3)?;
    let at = space(input, at)?;
    let (vlen, at) = number(input, at)?;
    let mut flags = MetaFlags::default();
    let (flag_tokens, line_len) = meta_flags(input, at, |flag, arg| match (flag, arg) {
        (b'T', Some(ttl)) => {
            flags.locked = true;
            flags.ttl = Some(ttl as i32);
        }
        (b'F', Some(client_flags)) => flags.client_flags = client_flags,
        (b'q', None) => flags.quiet = true,
        _ => {}
    })?;
    let vlen = vlen as usize;
    if limits.too_large(token.len(), vlen, flags.client_flags) {
        return None;
    }
    let end = line_len + vlen + 2;
    let Some(block) = input.get(line_len..end) else {
        return Some(Err(ParseError::Incomplete));
    };
    let (value, terminator) = block.split_at(vlen);
    if terminator != b"\r\n" {
        return None;
    }
    Some(Ok(Parsed {
        request: Request::Meta(MetaRequest::Set {
            meta: Meta {
                key: MetaKey {
                    token,
                    base64: false,
                },
                flag_tokens,
                flags,
            },
            mode: StoreMode::Set,
            value,
        }),
        consumed: end,
    }))
}

/// The `ms` flags from `at` (each ` <letter>[digits]`) to the line's end: [`MS_FLAGS`]
/// without digits, [`MS_NUMBER_FLAGS`] with them, none twice, each passed to `take`
/// (with its number, if any); any other flag leaves the line to the general parser.
/// Returns the flag tokens (what the general parser's `flag_tokens` is) and the line's
/// length.
#[inline(always)]
fn meta_flags(
    input: &[u8],
    mut at: usize,
    mut take: impl FnMut(u8, Option<u32>),
) -> Option<(&[u8], usize)> {
    let start = at + 1;
    let mut seen = 0u64;
    while input.get(at)? == &b' ' {
        let flag = *input.get(at + 1)?;
        let bit = letter(flag);
        if bit & !seen & !1 == 0 {
            return None;
        }
        seen |= bit;
        at += 2;
        let arg = match input.get(at) {
            Some(b'0'..=b'9') if bit & MS_NUMBER_FLAGS != 0 => {
                let (value, end) = number(input, at)?;
                at = end;
                Some(value)
            }
            _ if bit & MS_FLAGS != 0 => None,
            _ => return None,
        };
        take(flag, arg);
    }
    let consumed = line_end(input, at)?;
    Some((input.get(start..at).unwrap_or_default(), consumed))
}

/// The key of a `get <key>` line at the front of `input` and the bytes the line takes,
/// if [`parse`] reads it: its [`get`] request, without the `Parsed` around it.
#[inline(always)]
pub(super) fn plain_get(input: &[u8]) -> Option<(&[u8], usize)> {
    if input.first_chunk::<4>()? != b"get " {
        return None;
    }
    let (key, end) = key(input, 4)?;
    Some((key, line_end(input, end)?))
}

/// `get <key>\r\n`, the key starting at `start`.
#[inline(always)]
fn get(input: &[u8], start: usize, with_cas: bool) -> Option<Result<Parsed<'_>, ParseError>> {
    let (key, end) = key(input, start)?;
    let consumed = line_end(input, end)?;
    Some(Ok(Parsed {
        request: Request::Get {
            keys: Keys::one(key),
            with_cas,
            touch: None,
        },
        consumed,
    }))
}

/// `set <key> <flags> <exptime> <bytes>[ noreply]\r\n<data>\r\n`.
#[inline(always)]
fn set<'a>(input: &'a [u8], limits: &Limits) -> Option<Result<Parsed<'a>, ParseError>> {
    let (key, at) = key(input, 4)?;
    let at = space(input, at)?;
    let (flags, at) = number(input, at)?;
    let at = space(input, at)?;
    let (exptime, at) = number(input, at)?;
    let at = space(input, at)?;
    let (bytes, at) = number(input, at)?;
    let (noreply, line_len) = match input.get(at)? {
        b' ' => {
            let rest = input.get(at + 1..at + 8)?;
            if rest != b"noreply" {
                return None;
            }
            (true, line_end(input, at + 8)?)
        }
        _ => (false, line_end(input, at)?),
    };
    let bytes = bytes as usize;
    if limits.too_large(key.len(), bytes, flags) {
        return None;
    }
    let end = line_len + bytes + 2;
    let Some(block) = input.get(line_len..end) else {
        return Some(Err(ParseError::Incomplete));
    };
    let (value, terminator) = block.split_at(bytes);
    if terminator != b"\r\n" {
        return None;
    }
    Some(Ok(Parsed {
        request: Request::Store {
            mode: StoreMode::Set,
            key,
            flags,
            exptime: i64::from(exptime),
            cas: 0,
            value,
            noreply,
        },
        consumed: end,
    }))
}

/// The key starting at `start`: its bytes up to the first one at or below `' '`, and
/// where it ends. `None` if it is empty, too long, or the input ends inside it.
#[inline(always)]
fn key(input: &[u8], start: usize) -> Option<(&[u8], usize)> {
    let window = input.get(start..)?;
    let window = &window[..window.len().min(KEY_MAX_BYTES + 1)];
    let len = scan::first_control_or_space(window)?;
    if len == 0 {
        return None;
    }
    Some((&window[..len], start + len))
}

/// The byte at `at` is a single space (the next token does not start with another).
#[inline(always)]
fn space(input: &[u8], at: usize) -> Option<usize> {
    (input.get(at)? == &b' ').then_some(at + 1)
}

/// 1 to [`MAX_DIGITS`] decimal digits at `at`, and where they end.
#[inline(always)]
fn number(input: &[u8], at: usize) -> Option<(u32, usize)> {
    let mut value = 0u32;
    let mut i = at;
    while let Some(&b) = input.get(i) {
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        // Wrapping: a tenth digit overflows here, and is refused just below.
        value = value.wrapping_mul(10).wrapping_add(u32::from(digit));
        i += 1;
        if i - at > MAX_DIGITS {
            return None;
        }
    }
    (i > at).then_some((value, i))
}

/// The input at `at` is the line's end (`\r\n` or a bare `\n`): the line's length.
#[inline(always)]
fn line_end(input: &[u8], at: usize) -> Option<usize> {
    match input.get(at..at + 2) {
        Some(b"\r\n") => Some(at + 2),
        Some([b'\n', _]) => Some(at + 1),
        None if input.get(at) == Some(&b'\n') => Some(at + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
