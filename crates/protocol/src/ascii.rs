//! What the two ASCII dialects share: framing a command line and reading its numbers.
//!
//! Classic text commands (`text`) and meta commands (`meta`) arrive on the same
//! connection and follow the same line rules, so both parsers use these and neither
//! imports the other's internals (`text` only hands a meta line on to `meta`).
//!
//! Owns: [`frame`] (where the first line ends and what memcached sees of it: newline,
//! `\r` only stripped before the newline, NUL ends the line, the 2048-byte rule with its
//! 2049-byte lookahead, the long-get rule up to [`GET_LINE_MAX_BYTES`]), memcached's
//! `safe_strto*` number rules ([`number`]), and [`SILENT`], the reply that writes
//! nothing. Knows nothing of commands.

pub(crate) mod number;

use crate::{ParseError, LINE_MAX_BYTES};

/// Longest `get`/`gets` line (without its newline) this parser waits for. memcached has
/// no limit; this one keeps a hostile client from growing a connection's buffer without
/// bound while leaving room for ~10,000 keys of 200 bytes in one request.
pub const GET_LINE_MAX_BYTES: usize = 2 << 20;

/// The `reply` of a [`ParseError::Invalid`] that memcached answers with nothing (the
/// command carried `noreply`): write no line at all.
pub const SILENT: &str = "";

/// memcached's answer when a `get` line outgrows [`GET_LINE_MAX_BYTES`] (its read buffer
/// cannot grow).
pub(crate) const GET_LINE_TOO_LONG: &str = "SERVER_ERROR out of memory reading request";

/// Leading spaces memcached tolerates before `get ` when it decides whether a line
/// without a newline may grow past [`LINE_MAX_BYTES`].
const GET_LEADING_SPACES_MAX: usize = 100;

/// Finds the first line: its content (without the newline, a `\r` before it, and
/// anything from a NUL byte on, as memcached's `strlen` sees it) and its length with the
/// newline.
pub(crate) fn frame(input: &[u8]) -> Result<(&[u8], usize), ParseError> {
    let head = &input[..input.len().min(LINE_MAX_BYTES + 1)];
    let newline = match memchr::memchr(b'\n', head) {
        Some(at) => at,
        None if input.len() <= LINE_MAX_BYTES => return Err(ParseError::Incomplete),
        None if !is_long_get(input) => return Err(ParseError::Fatal { reply: None }),
        None => {
            let searched = &input[head.len()..input.len().min(GET_LINE_MAX_BYTES + 1)];
            match memchr::memchr(b'\n', searched) {
                Some(at) => head.len() + at,
                None if input.len() > GET_LINE_MAX_BYTES => {
                    return Err(ParseError::Fatal {
                        reply: Some(GET_LINE_TOO_LONG),
                    })
                }
                None => return Err(ParseError::Incomplete),
            }
        }
    };
    let mut line = &input[..newline];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    if let Some(nul) = memchr::memchr(0, line) {
        line = &line[..nul];
    }
    Ok((line, newline + 1))
}

/// Whether a line with no newline in its first [`LINE_MAX_BYTES`] may keep growing:
/// memcached allows it for `get `/`gets ` after at most 100 leading spaces.
fn is_long_get(input: &[u8]) -> bool {
    let spaces = input.iter().take_while(|&&b| b == b' ').count();
    let rest = &input[spaces..];
    spaces <= GET_LEADING_SPACES_MAX && (rest.starts_with(b"get ") || rest.starts_with(b"gets "))
}
