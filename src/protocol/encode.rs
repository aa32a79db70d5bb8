//! Response encoders: the bytes memcached writes for each answer.
//!
//! Owns the wire spelling of every [`Response`] in the classic text protocol, plus the
//! pieces a connection needs to write a large value without copying it
//! ([`value_header`], then the value as its own segment, then [`VALUE_TRAILER`]) and to
//! write the reply of a refused request ([`reply_line`]). It knows nothing of
//! connections or the store.
//!
//! Invariants: every answer ends in `\r\n`; nothing allocates (numbers go through
//! `itoa`'s stack buffer, or are written in place in a `VALUE` line's stack buffer); the
//! bytes match memcached 1.6.18's exactly.

use super::Response;
use bytes::BufMut;

/// What follows a value's data block: `VALUE … \r\n<data>\r\n`.
pub const VALUE_TRAILER: &[u8] = b"\r\n";

/// Appends `response` in the classic text protocol.
pub fn text(response: &Response<'_>, out: &mut impl BufMut) {
    match response {
        Response::Stored => out.put_slice(b"STORED\r\n"),
        Response::NotStored => out.put_slice(b"NOT_STORED\r\n"),
        Response::Exists => out.put_slice(b"EXISTS\r\n"),
        Response::NotFound => out.put_slice(b"NOT_FOUND\r\n"),
        Response::Deleted => out.put_slice(b"DELETED\r\n"),
        Response::Touched => out.put_slice(b"TOUCHED\r\n"),
        Response::Ok => out.put_slice(b"OK\r\n"),
        Response::End => out.put_slice(b"END\r\n"),
        Response::Error => out.put_slice(b"ERROR\r\n"),
        Response::Reset => out.put_slice(b"RESET\r\n"),
        Response::Value {
            key,
            flags,
            value,
            cas,
        } => {
            value_header(key, *flags, value.len(), *cas, out);
            out.put_slice(value);
            out.put_slice(VALUE_TRAILER);
        }
        Response::Number(n) => put_line(&[itoa::Buffer::new().format(*n).as_bytes()], out),
        Response::Version(version) => put_line(&[b"VERSION ", version.as_bytes()], out),
        Response::Stat(name, value) => {
            put_line(&[b"STAT ", name.as_bytes(), b" ", value.as_bytes()], out)
        }
        Response::ClientError(message) => put_line(&[b"CLIENT_ERROR ", message.as_bytes()], out),
        Response::ServerError(message) => put_line(&[b"SERVER_ERROR ", message.as_bytes()], out),
    }
}

/// Appends `parts` and `\r\n`.
fn put_line(parts: &[&[u8]], out: &mut impl BufMut) {
    for part in parts {
        out.put_slice(part);
    }
    out.put_slice(b"\r\n");
}

/// Appends `VALUE <key> <flags> <len>[ <cas>]\r\n`: the line before a value's data. The
/// caller appends the `len` data bytes (possibly as a separate segment) and then
/// [`VALUE_TRAILER`].
///
/// Three appends whatever the numbers: `VALUE `, the key, and the rest of the line built
/// right to left in a small stack buffer (each append checks capacity and copies).
pub fn value_header(key: &[u8], flags: u32, len: usize, cas: Option<u64>, out: &mut impl BufMut) {
    out.put_slice(b"VALUE ");
    out.put_slice(key);
    let mut tail = Tail::new();
    tail.push(b"\r\n");
    if let Some(cas) = cas {
        tail.number(cas);
        tail.push(b" ");
    }
    tail.number(len as u64);
    tail.push(b" ");
    tail.number(u64::from(flags));
    tail.push(b" ");
    out.put_slice(tail.bytes());
}

/// The end of a `VALUE` line, written back to front: ` <flags> <len> <cas>\r\n` is at
/// most 3 × (1 + 20) + 2 bytes.
struct Tail {
    buf: [u8; 64],
    start: usize,
}

impl Tail {
    fn new() -> Tail {
        Tail {
            buf: [0; 64],
            start: 64,
        }
    }

    /// Puts `bytes` in front of what is there.
    fn push(&mut self, bytes: &[u8]) {
        let start = self.start - bytes.len();
        self.buf[start..self.start].copy_from_slice(bytes);
        self.start = start;
    }

    /// Puts the decimal digits of `n` in front of what is there, written in place one by
    /// one (itoa's digits would need a copy of their own).
    fn number(&mut self, mut n: u64) {
        loop {
            self.start -= 1;
            self.buf[self.start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Appends the answer to a refused request (`ParseError::Invalid`/`Fatal`'s `reply`, a
/// line without its `\r\n`). An empty reply ([`super::text::SILENT`]) writes nothing:
/// memcached stays silent about errors in `noreply` commands.
pub fn reply_line(reply: &str, out: &mut impl BufMut) {
    if !reply.is_empty() {
        put_line(&[reply.as_bytes()], out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(response: Response<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        text(&response, &mut out);
        out
    }

    #[test]
    fn fixed_lines() {
        let cases: [(Response<'_>, &[u8]); 9] = [
            (Response::Stored, b"STORED\r\n"),
            (Response::NotStored, b"NOT_STORED\r\n"),
            (Response::Exists, b"EXISTS\r\n"),
            (Response::NotFound, b"NOT_FOUND\r\n"),
            (Response::Deleted, b"DELETED\r\n"),
            (Response::Touched, b"TOUCHED\r\n"),
            (Response::Ok, b"OK\r\n"),
            (Response::End, b"END\r\n"),
            (Response::Error, b"ERROR\r\n"),
        ];
        for (response, bytes) in cases {
            assert_eq!(encoded(response), bytes);
        }
    }

    #[test]
    fn values() {
        let plain = Response::Value {
            key: b"foo",
            flags: 4294967295,
            value: b"bar\r\nbaz",
            cas: None,
        };
        assert_eq!(encoded(plain), b"VALUE foo 4294967295 8\r\nbar\r\nbaz\r\n");
        let with_cas = Response::Value {
            key: b"k",
            flags: 0,
            value: b"",
            cas: Some(u64::MAX),
        };
        assert_eq!(
            encoded(with_cas),
            b"VALUE k 0 0 18446744073709551615\r\n\r\n"
        );
    }

    #[test]
    fn header_then_segment_equals_whole_value() {
        let mut split = Vec::new();
        value_header(b"key", 7, 5, Some(42), &mut split);
        split.extend_from_slice(b"hello");
        split.extend_from_slice(VALUE_TRAILER);
        let whole = encoded(Response::Value {
            key: b"key",
            flags: 7,
            value: b"hello",
            cas: Some(42),
        });
        assert_eq!(split, whole);
        assert_eq!(whole, b"VALUE key 7 5 42\r\nhello\r\n");
        let mut round = Vec::new();
        value_header(b"k", 10, 100, Some(1000), &mut round);
        value_header(b"k", 9, 99, None, &mut round);
        assert_eq!(round, b"VALUE k 10 100 1000\r\nVALUE k 9 99\r\n");
    }

    #[test]
    fn numbers_and_text() {
        assert_eq!(encoded(Response::Number(0)), b"0\r\n");
        assert_eq!(
            encoded(Response::Number(u64::MAX)),
            b"18446744073709551615\r\n"
        );
        assert_eq!(encoded(Response::Version("1.6.18")), b"VERSION 1.6.18\r\n");
        assert_eq!(
            encoded(Response::Stat("curr_items", "12")),
            b"STAT curr_items 12\r\n"
        );
        assert_eq!(
            encoded(Response::ClientError("bad data chunk")),
            b"CLIENT_ERROR bad data chunk\r\n"
        );
        assert_eq!(
            encoded(Response::ServerError("object too large for cache")),
            b"SERVER_ERROR object too large for cache\r\n"
        );
    }

    #[test]
    fn reply_lines() {
        let mut out = Vec::new();
        reply_line("ERROR", &mut out);
        reply_line(crate::protocol::text::SILENT, &mut out);
        reply_line("CLIENT_ERROR bad command line format", &mut out);
        assert_eq!(out, b"ERROR\r\nCLIENT_ERROR bad command line format\r\n");
    }
}
