//! Response encoders: the bytes memcached writes for each answer.
//!
//! Owns the wire spelling of every [`Response`] in the classic text protocol, plus the
//! pieces a connection needs to write a large value without copying it
//! ([`value_header`], then the value as its own segment, then [`VALUE_TRAILER`]) and to
//! write the reply of a refused request ([`reply_line`]). It knows nothing of
//! connections or the store.
//!
//! Invariants: every answer ends in `\r\n`; nothing allocates (numbers go through
//! `itoa`'s stack buffer); the bytes match memcached 1.6.18's exactly.

use super::Response;
use bytes::BufMut;

/// What follows a value's data block: `VALUE … \r\n<data>\r\n`.
pub const VALUE_TRAILER: &[u8] = b"\r\n";

/// Appends `response` in the classic text protocol.
pub fn text(response: &Response<'_>, out: &mut impl BufMut) {
    let line: &[u8] = match response {
        Response::Stored => b"STORED\r\n",
        Response::NotStored => b"NOT_STORED\r\n",
        Response::Exists => b"EXISTS\r\n",
        Response::NotFound => b"NOT_FOUND\r\n",
        Response::Deleted => b"DELETED\r\n",
        Response::Touched => b"TOUCHED\r\n",
        Response::Ok => b"OK\r\n",
        Response::End => b"END\r\n",
        Response::Error => b"ERROR\r\n",
        Response::Value {
            key,
            flags,
            value,
            cas,
        } => {
            value_header(key, *flags, value.len(), *cas, out);
            out.put_slice(value);
            out.put_slice(VALUE_TRAILER);
            return;
        }
        Response::Number(n) => {
            out.put_slice(itoa::Buffer::new().format(*n).as_bytes());
            out.put_slice(b"\r\n");
            return;
        }
        Response::Version(version) => {
            out.put_slice(b"VERSION ");
            out.put_slice(version.as_bytes());
            out.put_slice(b"\r\n");
            return;
        }
        Response::Stat(name, value) => {
            out.put_slice(b"STAT ");
            out.put_slice(name.as_bytes());
            out.put_slice(b" ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
            return;
        }
        Response::ClientError(message) => {
            out.put_slice(b"CLIENT_ERROR ");
            out.put_slice(message.as_bytes());
            out.put_slice(b"\r\n");
            return;
        }
        Response::ServerError(message) => {
            out.put_slice(b"SERVER_ERROR ");
            out.put_slice(message.as_bytes());
            out.put_slice(b"\r\n");
            return;
        }
    };
    out.put_slice(line);
}

/// Appends `VALUE <key> <flags> <len>[ <cas>]\r\n`: the line before a value's data. The
/// caller appends the `len` data bytes (possibly as a separate segment) and then
/// [`VALUE_TRAILER`].
pub fn value_header(key: &[u8], flags: u32, len: usize, cas: Option<u64>, out: &mut impl BufMut) {
    let mut digits = itoa::Buffer::new();
    out.put_slice(b"VALUE ");
    out.put_slice(key);
    out.put_slice(b" ");
    out.put_slice(digits.format(flags).as_bytes());
    out.put_slice(b" ");
    out.put_slice(digits.format(len).as_bytes());
    if let Some(cas) = cas {
        out.put_slice(b" ");
        out.put_slice(digits.format(cas).as_bytes());
    }
    out.put_slice(b"\r\n");
}

/// Appends the answer to a refused request (`ParseError::Invalid`/`Fatal`'s `reply`, a
/// line without its `\r\n`). An empty reply ([`super::text::SILENT`]) writes nothing:
/// memcached stays silent about errors in `noreply` commands.
pub fn reply_line(reply: &str, out: &mut impl BufMut) {
    if reply.is_empty() {
        return;
    }
    out.put_slice(reply.as_bytes());
    out.put_slice(b"\r\n");
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
