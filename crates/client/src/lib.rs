//! The client side of memcached's three dialects: encode requests, decode answers.
//!
//! The one client codec that ringcache's tools (`rc-load`, `rc-soak`) and its
//! integration tests share. It knows nothing of sockets, of the server or of the store:
//! an encoder appends one request to a `Vec<u8>`; a decoder looks at the front of the
//! bytes received so far and returns one whole answer and how many bytes it used
//! ([`Decoded`]), or [`DecodeError::Incomplete`] until all of it has arrived.
//!
//! - `text`: the classic commands (`get`, `set`, `delete`, `incr`, `touch`); answers
//!   decode into the protocol crate's own vocabulary ([`ringcache_protocol::Response`]),
//!   the inverse of its `encode::text`; `text::decode_list` reads a get's hits or a
//!   stats group up to `END`.
//! - `meta`: `mg`, `ms`, `md`, `ma`, `mn`, and their answers (`VA`, `HD`, `EN`, …).
//! - `binary`: request packets, and response packets with every header field.
//! - `ascii` (private): what `text` and `meta` answers share: the `\r\n` line, decimal
//!   numbers, the data block.
//!
//! Invariants:
//! - every strict prefix of an answer is `Incomplete`, never `Malformed`, and what
//!   follows an answer never changes it: feeding bytes in any pieces gives the same
//!   answers;
//! - `consumed` never exceeds the input;
//! - answers borrow from the input; the one-answer decoders (`text::decode`,
//!   `meta::decode`, `binary::decode`) never allocate unless the input is malformed;
//! - `Malformed` means bytes no memcached-compatible server sends at that point (a
//!   line not ended by `\r\n`, a bad length, an unknown answer line): the stream is
//!   out of step.
#![forbid(unsafe_code)]

mod ascii;
pub mod binary;
pub mod meta;
pub mod text;

#[cfg(test)]
mod tests;

pub use ascii::LINE_MAX_BYTES;

/// One of memcached's wire dialects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Text,
    Meta,
    Binary,
}

impl Dialect {
    pub const ALL: [Dialect; 3] = [Dialect::Text, Dialect::Meta, Dialect::Binary];

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Text => "text",
            Dialect::Meta => "meta",
            Dialect::Binary => "binary",
        }
    }
}

/// One decoded answer and how many input bytes it used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<T> {
    pub response: T,
    pub consumed: usize,
}

impl<T> Decoded<T> {
    /// The same bytes read as something else (e.g. an owned copy of the answer).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Decoded<U> {
        Decoded {
            response: f(self.response),
            consumed: self.consumed,
        }
    }
}

/// Why a decoder returned no answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Not all of the answer has arrived: read more and call again.
    Incomplete,
    /// The bytes cannot be an answer (see the crate's invariants); says what was wrong
    /// and shows the start of the input.
    Malformed(String),
}

/// A [`DecodeError::Malformed`] saying `why`, with the first bytes of `input`.
pub(crate) fn malformed(why: &str, input: &[u8]) -> DecodeError {
    let shown = &input[..input.len().min(60)];
    DecodeError::Malformed(format!("{why}: \"{}\"", shown.escape_ascii()))
}
