//! Response encoders: the bytes memcached writes for each answer.
//!
//! Owns the wire spelling of every [`Response`] in the classic text protocol (a hit's
//! answer also with a tail gathered after it, [`value_then`]: a one-key get's `END`),
//! plus the pieces a connection needs to write a large value as a segment of its own
//! rather than through [`Response::Value`]'s single buffer ([`value_header`], then the
//! value, which the connection copies once out of the store, then [`VALUE_TRAILER`])
//! and to write the reply of a refused request ([`reply_line`]). It knows nothing of
//! connections or the store.
//!
//! Invariants: every answer ends in `\r\n`; nothing allocates (numbers go through
//! `itoa`'s stack buffer, or are written in place in a `VALUE` line's [`ValueLine`]); the
//! bytes match memcached 1.6.18's exactly.

use super::Response;
use bytes::BufMut;

/// The line that ends a get's answer.
pub const END: &[u8] = b"END\r\n";

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
        Response::End => out.put_slice(END),
        Response::Error => out.put_slice(b"ERROR\r\n"),
        Response::Reset => out.put_slice(b"RESET\r\n"),
        Response::Value {
            key,
            flags,
            value: data,
            cas,
        } => value(key, *flags, data, *cas, out),
        Response::Number(n) => put_line(&[itoa::Buffer::new().format(*n).as_bytes()], out),
        Response::Version(version) => put_line(&[b"VERSION ", version.as_bytes()], out),
        Response::Stat(name, value) => {
            put_line(&[b"STAT ", name.as_bytes(), b" ", value.as_bytes()], out)
        }
        Response::ClientError(message) => put_line(&[b"CLIENT_ERROR ", message.as_bytes()], out),
        Response::ServerError(message) => put_line(&[b"SERVER_ERROR ", message.as_bytes()], out),
    }
}

/// Appends a hit: `VALUE <key> <flags> <len>[ <cas>]\r\n<data>\r\n`. A get hit's whole
/// answer, so inlined into the caller (no `Response` to build and match on).
///
/// With a key and data of at most [`SHORT_BYTES`] each (the usual hit), the answer is
/// gathered in a [`ValueLine`] (key and data as fixed-size moves, digits in place) and
/// appended once: each append checks capacity and calls `memcpy`, and the five of a
/// header, data and trailer were a tenth of a pipelined get's instructions.
#[inline(always)]
pub fn value(key: &[u8], flags: u32, data: &[u8], cas: Option<u64>, out: &mut impl BufMut) {
    value_then(key, flags, data, cas, b"", &mut ValueLine::new(), out);
}

/// [`value`], then `tail` (at most [`TAIL_MAX_BYTES`]: a get of one key appends its
/// [`END`] here), gathered with a short hit's answer in `line` and appended with it at
/// once.
#[inline(always)]
pub fn value_then(
    key: &[u8],
    flags: u32,
    data: &[u8],
    cas: Option<u64>,
    tail: &[u8],
    line: &mut ValueLine,
    out: &mut impl BufMut,
) {
    if key.len() <= SHORT_BYTES && tail.len() <= TAIL_MAX_BYTES {
        return gathered_value(key, flags, data, cas, tail, &mut line.0, out);
    }
    value_header(key, flags, data.len(), cas, out);
    out.put_slice(data);
    out.put_slice(VALUE_TRAILER);
    out.put_slice(tail);
}

/// Longest key, and longest data, [`value`] gathers on the stack.
const SHORT_BYTES: usize = 64;

/// Longest tail [`value_then`] gathers with a short answer.
pub const TAIL_MAX_BYTES: usize = END.len();

/// Bytes of [`gathered_value`]'s buffer: `VALUE `, a key, ` <flags> <len> <cas>\r\n` (at
/// most 1 + 10 + 1 + 20 + 1 + 20 + 2 = 55 bytes), data, `\r\n` and a tail.
const SHORT_VALUE_BYTES: usize = 6 + SHORT_BYTES + 55 + SHORT_BYTES + 2 + TAIL_MAX_BYTES;

/// The buffer a short hit's answer is gathered in ([`value_then`]). A connection keeps
/// one and hands it to every get: a fresh one on the stack is zeroed first (a dozen
/// 16-byte stores, 9 of a pipelined get's instructions once what it saves is counted).
/// What an answer leaves in it is never read: each writes its bytes before appending
/// them.
#[derive(Clone, Debug)]
pub struct ValueLine([u8; SHORT_VALUE_BYTES]);

impl ValueLine {
    /// A zeroed line.
    pub fn new() -> ValueLine {
        ValueLine([0; SHORT_VALUE_BYTES])
    }
}

impl Default for ValueLine {
    fn default() -> ValueLine {
        ValueLine::new()
    }
}

/// [`value_then`] of a key of at most [`SHORT_BYTES`] and a tail of at most
/// [`TAIL_MAX_BYTES`], the header gathered in `line`. Data of at most [`SHORT_BYTES`]
/// is gathered after it with the trailer and tail, and the whole answer appended at
/// once; longer data is appended between the header and the gathered trailer and tail
/// (three appends, where [`value_header`]'s way takes six).
#[inline(always)]
fn gathered_value(
    key: &[u8],
    flags: u32,
    data: &[u8],
    cas: Option<u64>,
    tail: &[u8],
    line: &mut [u8; SHORT_VALUE_BYTES],
    out: &mut impl BufMut,
) {
    let at = short_header(key, flags, data.len(), cas, line);
    let tail = &tail[..tail.len().min(TAIL_MAX_BYTES)];
    if data.len() <= SHORT_BYTES {
        let end = at + data.len().min(SHORT_BYTES);
        copy_short(&mut line[at..end], data);
        line[end..end + 2].copy_from_slice(VALUE_TRAILER);
        line[end + 2..end + 2 + tail.len()].copy_from_slice(tail);
        out.put_slice(&line[..end + 2 + tail.len()]);
    } else {
        out.put_slice(&line[..at]);
        out.put_slice(data);
        line[..2].copy_from_slice(VALUE_TRAILER);
        copy_short(&mut line[2..2 + tail.len()], tail);
        out.put_slice(&line[..2 + tail.len()]);
    }
}

/// Writes `VALUE <key> <flags> <len>[ <cas>]\r\n` at the start of `line`, for a key of
/// at most [`SHORT_BYTES`]; returns its length.
#[inline(always)]
fn short_header(
    key: &[u8],
    flags: u32,
    len: usize,
    cas: Option<u64>,
    line: &mut [u8; SHORT_VALUE_BYTES],
) -> usize {
    line[..6].copy_from_slice(b"VALUE ");
    let mut at = 6 + key.len().min(SHORT_BYTES);
    copy_short(&mut line[6..at], key);
    line[at] = b' ';
    at = decimal(line, at + 1, u64::from(flags));
    line[at] = b' ';
    at = decimal(line, at + 1, len as u64);
    if let Some(cas) = cas {
        line[at] = b' ';
        at = decimal(line, at + 1, cas);
    }
    line[at..at + 2].copy_from_slice(b"\r\n");
    at + 2
}

/// Copies `src` into `dst` (of the same length, at most 64 bytes) as overlapping
/// fixed-size moves, with no call to `memcpy` (longer: `copy_from_slice`). Meta's
/// answers (`meta::encode`) use it too.
#[inline(always)]
pub(crate) fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if dst.len() != n || n > 64 {
        dst.copy_from_slice(src);
    } else if n >= 32 {
        copy_ends::<32>(dst, src);
    } else if n >= 16 {
        copy_ends::<16>(dst, src);
    } else if n >= 8 {
        copy_ends::<8>(dst, src);
    } else if n >= 4 {
        copy_ends::<4>(dst, src);
    } else if n > 0 {
        (dst[0], dst[n / 2], dst[n - 1]) = (src[0], src[n / 2], src[n - 1]);
    }
}

/// [`copy_short`] of `N..=2N` bytes: the first and the last `N`.
#[inline(always)]
fn copy_ends<const N: usize>(dst: &mut [u8], src: &[u8]) {
    if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
        *d = *s;
    }
    if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
        *d = *s;
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
/// Three appends whatever the numbers: `VALUE `, the key, and the rest of the line
/// written front to back in a small stack buffer (each append checks capacity and
/// copies).
#[inline]
pub fn value_header(key: &[u8], flags: u32, len: usize, cas: Option<u64>, out: &mut impl BufMut) {
    out.put_slice(b"VALUE ");
    out.put_slice(key);
    // ` <flags> <len> <cas>\r\n` is at most 3 × (1 + 20) + 2 bytes.
    let mut rest = [0u8; 64];
    rest[0] = b' ';
    let mut at = decimal(&mut rest, 1, u64::from(flags));
    rest[at] = b' ';
    at = decimal(&mut rest, at + 1, len as u64);
    if let Some(cas) = cas {
        rest[at] = b' ';
        at = decimal(&mut rest, at + 1, cas);
    }
    rest[at..at + 2].copy_from_slice(b"\r\n");
    out.put_slice(&rest[..at + 2]);
}

/// Writes the decimal digits of `n` into `buf` from `at` on; returns where they end.
/// One- and two-digit numbers (flags 0, short values) skip the digit count, and a
/// two-digit one is one load from [`DIGIT_PAIRS`] (no division); three and four digits
/// (values of 100 bytes to 9 KiB) are two loads after one division by 100, which the
/// compiler makes a multiply. (Meta answer lines are written with it too:
/// `meta::encode::Line`.)
#[inline(always)]
pub(crate) fn decimal<const N: usize>(buf: &mut [u8; N], at: usize, n: u64) -> usize {
    if n < 10 {
        buf[at] = b'0' + n as u8;
        return at + 1;
    }
    if let Some(pair) = DIGIT_PAIRS.get(n as usize) {
        buf[at..at + 2].copy_from_slice(pair);
        return at + 2;
    }
    if n < 10_000 {
        let (high, low) = ((n / 100) as usize, (n % 100) as usize);
        if high < 10 {
            buf[at] = b'0' + high as u8;
            buf[at + 1..at + 3].copy_from_slice(&DIGIT_PAIRS[low]);
            return at + 3;
        }
        buf[at..at + 2].copy_from_slice(&DIGIT_PAIRS[high]);
        buf[at + 2..at + 4].copy_from_slice(&DIGIT_PAIRS[low]);
        return at + 4;
    }
    let end = at + n.ilog10() as usize + 1;
    let mut n = n;
    for digit in buf[at..end].iter_mut().rev() {
        *digit = b'0' + (n % 10) as u8;
        n /= 10;
    }
    end
}

/// The two digits of every number below 100 (`00` to `99`), for [`decimal`].
const DIGIT_PAIRS: [[u8; 2]; 100] = {
    let mut pairs = [[0; 2]; 100];
    let mut n = 0;
    while n < 100 {
        pairs[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
        n += 1;
    }
    pairs
};

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

    /// The gathered answer of a short key and value is byte for byte the one written
    /// piece by piece, at every key and data length around its limits, with one
    /// [`ValueLine`] reused throughout (what the answer before left in it never shows).
    #[test]
    fn short_values_equal_pieces() {
        let bytes: Vec<u8> = (0..=255u8).cycle().take(2100).collect();
        let mut line = ValueLine::new();
        let cases = [None, Some(0), Some(7), Some(123_456), Some(u64::MAX)];
        for key_len in (1..=70).chain([249, 250]) {
            for data_len in (0..=70).chain([255, 300, 999, 1000, 1024, 2000]) {
                for (i, &cas) in cases.iter().enumerate() {
                    let key = &bytes[i..i + key_len];
                    let data = &bytes[key_len % 7..key_len % 7 + data_len];
                    let flags = [0, 9, 10, 99, 100, u32::MAX][(key_len + data_len) % 6];
                    let mut whole = Vec::new();
                    value(key, flags, data, cas, &mut whole);
                    let mut pieces = Vec::new();
                    value_header(key, flags, data.len(), cas, &mut pieces);
                    pieces.extend_from_slice(data);
                    pieces.extend_from_slice(VALUE_TRAILER);
                    assert_eq!(whole, pieces, "key {key_len}, data {data_len}, {cas:?}");
                    // With a tail (a one-key get's END): the same, then the tail.
                    let tail = [&b""[..], b"E", END][(key_len + i) % 3];
                    let mut then = Vec::new();
                    value_then(key, flags, data, cas, tail, &mut line, &mut then);
                    pieces.extend_from_slice(tail);
                    assert_eq!(then, pieces, "key {key_len}, data {data_len}, {tail:?}");
                }
            }
        }
    }

    /// Every path of [`decimal`] (one digit, a pair, three and four digits, the loop)
    /// writes what `format!` writes, at an offset, and says where it ended.
    #[test]
    fn decimal_writes_the_digits() {
        let around = |n: u64| n.saturating_sub(2)..=n.saturating_add(2);
        let numbers = (0..=12_000)
            .chain(around(99_999))
            .chain(around(u64::from(u32::MAX)))
            .chain(around(u64::MAX));
        for n in numbers {
            let mut buf = [b'#'; 24];
            let end = decimal(&mut buf, 2, n);
            let want = n.to_string();
            assert_eq!(&buf[2..end], want.as_bytes(), "{n}");
            assert_eq!(&buf[..2], b"##", "{n}");
            assert!(buf[end..].iter().all(|&b| b == b'#'), "{n}");
        }
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
        reply_line(crate::text::SILENT, &mut out);
        reply_line("CLIENT_ERROR bad command line format", &mut out);
        assert_eq!(out, b"ERROR\r\nCLIENT_ERROR bad command line format\r\n");
    }
}
