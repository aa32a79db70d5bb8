//! Meta answers: the bytes memcached 1.6.18 writes for them.
//!
//! Owns the spelling of a meta answer line: its two-letter code (or `VA <size>`), each
//! returned flag (` c<cas>`, ` k<key>`, ` O<opaque>` …), and the `me` debug line with
//! memcached's item arithmetic (`size`) and default slab classes (`cls`). The executor
//! decides which pieces an answer has and in what order; this module only writes them.
//! Knows nothing of the store or the connection.
//!
//! Invariants: nothing allocates (an answer line gathers in a stack buffer, [`Line`];
//! the `me` line's numbers go through `itoa`, base64 keys through a stack buffer); an
//! answer line is written only by [`Line::end`] or [`Line::end_with_data`] (which
//! writes the value's data block after it, ended by `\r\n`), and a value's data block
//! written apart is followed by [`end`].

use super::base64;
use crate::encode::copy_short;
use bytes::BufMut;

/// memcached's item header (48 bytes) and CAS (8): part of every item's size.
const ITEM_HEADER_BYTES: usize = 48 + 8;

/// memcached's smallest slab chunk (`-n 48` plus the 48-byte header) and growth factor
/// (`-f 1.25`), and its largest chunk (half a 1 MiB page; larger items are chunked and
/// counted in the last class).
const SLAB_CHUNK_MIN_BYTES: usize = 96;
const SLAB_CHUNK_MAX_BYTES: usize = 512 * 1024;

/// Bytes of an answer line gathered before they are appended (see [`Line`]): room for
/// the line of a get with a few returned flags, a key of [`SHORT_BYTES`] and a short
/// value's data block.
const LINE_BUF_BYTES: usize = 192;

/// Longest piece (a key, an opaque, a value's data) copied as fixed-size moves rather
/// than by `memcpy` (see [`copy_short`]).
const SHORT_BYTES: usize = 64;

/// Most bytes one number piece takes: ` c` and the 20 digits of a `u64` (`VA ` and a
/// length take fewer).
const NUMBER_MAX_BYTES: usize = 22;

/// One answer line being written: its code (`HD`, `EN` … or `VA <len>`), its returned
/// flags (` c<cas>`, ` k<key>`, ` O<opaque>` …) in the order the executor writes them,
/// and its end. Pieces gather in a stack buffer and are appended to `out` together when
/// it fills and at the line's end (digits written in place, no `itoa` copy; short
/// pieces as fixed-size moves, no `memcpy` call), with a short value's data block when
/// the line ends with it ([`Line::end_with_data`]): appends check capacity and copy, and
/// one per piece was the meta answer's largest cost in the profile. A line whose end is
/// never written leaves its gathered pieces unwritten, so the executor can drop an
/// answer it gives up on.
pub struct Line<'o, B: BufMut> {
    out: &'o mut B,
    buf: [u8; LINE_BUF_BYTES],
    len: usize,
}

impl<'o, B: BufMut> Line<'o, B> {
    /// A line starting with a two-letter code (`HD`, `EN`, `NF` …).
    #[inline(always)]
    pub fn code(out: &'o mut B, code: &[u8; 2]) -> Line<'o, B> {
        let mut line = Line::new(out);
        line.put(code);
        line
    }

    /// A line starting with `VA <len>`, the code of an answer that carries a value.
    #[inline(always)]
    pub fn value(out: &'o mut B, len: usize) -> Line<'o, B> {
        let mut line = Line::new(out);
        line.value_code(len);
        line
    }

    /// An empty line: its code comes next ([`Line::put_code`], [`Line::value_code`]).
    #[inline(always)]
    pub fn new(out: &'o mut B) -> Line<'o, B> {
        Line {
            out,
            buf: [0; LINE_BUF_BYTES],
            len: 0,
        }
    }

    /// The two-letter code of an empty line.
    #[inline(always)]
    pub fn put_code(&mut self, code: &[u8; 2]) {
        self.put(code);
    }

    /// `VA <len>`, the code of an empty line whose answer carries a value.
    #[inline(always)]
    pub fn value_code(&mut self, len: usize) {
        self.put(b"VA ");
        self.len = crate::encode::decimal(&mut self.buf, self.len, len as u64);
    }

    /// Appends what is gathered.
    #[inline]
    fn flush(&mut self) {
        self.out.put_slice(&self.buf[..self.len]);
        self.len = 0;
    }

    /// Gathers `bytes`, or appends them after what is gathered when they do not fit.
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        if self.len + bytes.len() <= LINE_BUF_BYTES {
            copy_short(&mut self.buf[self.len..self.len + bytes.len()], bytes);
            self.len += bytes.len();
        } else {
            self.flush();
            self.out.put_slice(bytes);
        }
    }

    /// ` <flag><n>` (` c123`, ` s5`).
    #[inline]
    pub fn number(&mut self, flag: u8, n: u64) {
        if self.len + NUMBER_MAX_BYTES > LINE_BUF_BYTES {
            self.flush();
        }
        self.buf[self.len] = b' ';
        self.buf[self.len + 1] = flag;
        self.len = crate::encode::decimal(&mut self.buf, self.len + 2, n);
    }

    /// ` <flag>` (` W`, ` X`, ` Z`).
    #[inline]
    pub fn mark(&mut self, flag: u8) {
        self.put(&[b' ', flag]);
    }

    /// ` t<seconds left>`: `-1` for an item that never expires, else its relative
    /// exptime minus now as an unsigned 32-bit number (memcached's arithmetic, which
    /// wraps for an exptime already past, such as `T-1`'s).
    #[inline]
    pub fn ttl(&mut self, exptime: u32, now: u32) {
        if exptime == 0 {
            self.put(b" t-1");
        } else {
            self.number(b't', u64::from(exptime.wrapping_sub(now)));
        }
    }

    /// An opaque token as sent (` O123`).
    #[inline]
    pub fn opaque(&mut self, token: &[u8]) {
        self.put(b" ");
        self.put(token);
    }

    /// ` k<key>`, or ` k<base64 key> b` for a binary key.
    #[inline(always)]
    pub fn key(&mut self, key: &[u8], binary: bool) {
        self.put(b" k");
        if binary {
            self.flush();
            put_base64(self.out, key);
            self.put(b" b");
        } else {
            self.put(key);
        }
    }

    /// Ends the line (`\r\n`) and appends it. (By reference: a line is 200 bytes, and
    /// moving it in cost more than ending it.)
    #[inline]
    pub fn end(&mut self) {
        self.put(b"\r\n");
        self.flush();
    }

    /// Ends the line, then appends `data` and [`end`]'s `\r\n`: a value's data block
    /// after its `VA` line, appended with the line when it fits in the buffer.
    #[inline(always)]
    pub fn end_with_data(&mut self, data: &[u8]) {
        self.put(b"\r\n");
        let at = self.len;
        if data.len() <= SHORT_BYTES && at + data.len() + 2 <= LINE_BUF_BYTES {
            copy_short(&mut self.buf[at..at + data.len()], data);
            self.buf[at + data.len()..at + data.len() + 2].copy_from_slice(b"\r\n");
            self.len = at + data.len() + 2;
            self.flush();
        } else {
            self.flush();
            self.out.put_slice(data);
            end(self.out);
        }
    }
}

/// Bytes of a [`Short`] answer: a `VA` line and a data block of [`SHORT_BYTES`], with
/// the usual returned flags (a line of every flag a plain get may return, a key of
/// [`SHORT_BYTES`] included, takes 142 bytes: then a value of more than 46 is given
/// up). As the classic get's short answer, small enough to be zeroed inline.
const SHORT_ANSWER_BYTES: usize = 192;

/// A whole answer written in one stack buffer and appended at once: its line (code,
/// returned flags, marks) and a short value's data block. Each piece says whether it
/// had room (a key or data over [`SHORT_BYTES`], or a line grown too long, have none);
/// on `false` the executor gives the answer up and writes it with [`Line`] instead
/// (nothing has been written to the output). The pieces are spelled as [`Line`]'s are;
/// no `memcpy` call, no capacity check of the output per piece.
pub struct Short {
    buf: [u8; SHORT_ANSWER_BYTES],
    at: usize,
}

impl Short {
    /// An empty answer: its code comes next ([`Short::value_code`], [`Short::code`]).
    #[inline(always)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Short {
        Short {
            buf: [0; SHORT_ANSWER_BYTES],
            at: 0,
        }
    }

    /// `VA <len>`, the code of an empty answer that carries a value.
    #[inline(always)]
    pub fn value_code(&mut self, len: usize) {
        self.buf[..3].copy_from_slice(b"VA ");
        self.at = crate::encode::decimal(&mut self.buf, 3, len as u64);
    }

    /// A two-letter code (`HD`) of an empty answer.
    #[inline(always)]
    pub fn code(&mut self, code: &[u8; 2]) {
        self.buf[..2].copy_from_slice(code);
        self.at = 2;
    }

    /// ` <flag><n>`, as [`Line::number`].
    #[inline(always)]
    #[must_use]
    pub fn number(&mut self, flag: u8, n: u64) -> bool {
        if self.at + NUMBER_MAX_BYTES > SHORT_ANSWER_BYTES {
            return false;
        }
        self.buf[self.at] = b' ';
        self.buf[self.at + 1] = flag;
        self.at = crate::encode::decimal(&mut self.buf, self.at + 2, n);
        true
    }

    /// ` t<seconds left>`, as [`Line::ttl`].
    #[inline(always)]
    #[must_use]
    pub fn ttl(&mut self, exptime: u32, now: u32) -> bool {
        if exptime != 0 {
            return self.number(b't', u64::from(exptime.wrapping_sub(now)));
        }
        self.put(b" t-1")
    }

    /// ` k<key>` of a key that is not binary (a binary one is [`Line::key`]'s).
    #[inline(always)]
    #[must_use]
    pub fn key(&mut self, key: &[u8]) -> bool {
        self.put(b" k") && self.put(key)
    }

    /// ` <flag>`, as [`Line::mark`].
    #[inline(always)]
    #[must_use]
    pub fn mark(&mut self, flag: u8) -> bool {
        self.put(&[b' ', flag])
    }

    /// `bytes` of at most [`SHORT_BYTES`].
    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) -> bool {
        let end = self.at + bytes.len();
        if bytes.len() > SHORT_BYTES || end > SHORT_ANSWER_BYTES {
            return false;
        }
        copy_short(&mut self.buf[self.at..end], bytes);
        self.at = end;
        true
    }

    /// Ends the line, then `data` and its `\r\n` if given: the whole answer, or `None`
    /// when it has no room for them.
    #[inline(always)]
    pub fn finish(&mut self, data: Option<&[u8]>) -> Option<&[u8]> {
        if !self.put(b"\r\n") {
            return None;
        }
        if let Some(data) = data {
            if !(self.put(data) && self.put(b"\r\n")) {
                return None;
            }
        }
        self.buf.get(..self.at)
    }
}

fn put_base64(out: &mut impl BufMut, key: &[u8]) {
    let mut buf = [0; base64::ENCODED_MAX_BYTES];
    let len = base64::encode(key, &mut buf);
    out.put_slice(&buf[..len]);
}

/// Ends an answer line, or a value's data block.
#[inline]
pub fn end(out: &mut impl BufMut) {
    out.put_slice(b"\r\n");
}

/// What `me` reports of an item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugInfo<'a> {
    pub key: &'a [u8],
    pub key_binary: bool,
    /// Relative exptime (0 = never) and the relative time now.
    pub exptime: u32,
    pub now: u32,
    /// Relative time of the last access.
    pub last_access: u32,
    pub cas: u64,
    pub fetched: bool,
    pub value_len: usize,
    pub flags: u32,
}

/// Appends `me`'s answer line: `ME <key> exp=… la=… cas=… fetch=… cls=… size=…`.
pub fn debug_line(out: &mut impl BufMut, item: &DebugInfo<'_>) {
    let mut digits = itoa::Buffer::new();
    out.put_slice(b"ME ");
    if item.key_binary {
        put_base64(out, item.key);
    } else {
        out.put_slice(item.key);
    }
    // memcached 1.6.45 prints the seconds left, exptime - now (1.6.18 printed
    // now - exptime, negative while the item lives).
    let exp = if item.exptime == 0 {
        -1
    } else {
        item.exptime.wrapping_sub(item.now) as i32
    };
    out.put_slice(b" exp=");
    out.put_slice(digits.format(exp).as_bytes());
    out.put_slice(b" la=");
    out.put_slice(
        digits
            .format(item.now.wrapping_sub(item.last_access))
            .as_bytes(),
    );
    out.put_slice(b" cas=");
    out.put_slice(digits.format(item.cas).as_bytes());
    out.put_slice(if item.fetched {
        b" fetch=yes".as_slice()
    } else {
        b" fetch=no"
    });
    let size = item_total_bytes(item.key.len(), item.value_len, item.flags);
    out.put_slice(b" cls=");
    out.put_slice(digits.format(slab_class(size)).as_bytes());
    out.put_slice(b" size=");
    out.put_slice(digits.format(size).as_bytes());
    end(out);
}

/// memcached's size of an item: header and CAS, the key and its NUL, the value and
/// its `\r\n`, and 4 bytes of client flags unless they are 0.
pub fn item_total_bytes(key_len: usize, value_len: usize, flags: u32) -> usize {
    let flags_bytes = if flags == 0 { 0 } else { 4 };
    ITEM_HEADER_BYTES + key_len + 1 + value_len + 2 + flags_bytes
}

/// The memcached slab class (1-based, default settings) an item of `total` bytes lives
/// in; items above the largest chunk are in the last class.
pub fn slab_class(total: usize) -> usize {
    let mut size = SLAB_CHUNK_MIN_BYTES;
    let mut class = 1;
    loop {
        if total <= size {
            return class;
        }
        // memcached grows each chunk by 1.25 (truncating), aligned up to 8 bytes, and
        // makes the largest chunk the last class once the next would reach 1/1.25 of it.
        let next = size * 5 / 4;
        class += 1;
        if next * 5 >= SLAB_CHUNK_MAX_BYTES * 4 {
            return class;
        }
        size = next.next_multiple_of(8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slab_classes_match_memcached_defaults() {
        // memcached -vv: 96 120 152 192 240 304 384 480 600 752 944 1184 … 394840 524288.
        assert_eq!(slab_class(1), 1);
        assert_eq!(slab_class(96), 1);
        assert_eq!(slab_class(97), 2);
        assert_eq!(slab_class(120), 2);
        assert_eq!(slab_class(1062), 12);
        assert_eq!(slab_class(1184), 12);
        assert_eq!(slab_class(1185), 13);
        assert_eq!(slab_class(394_840), 38);
        assert_eq!(slab_class(394_841), 39);
        assert_eq!(slab_class(524_288), 39);
        assert_eq!(slab_class(1_000_061), 39);
    }

    #[test]
    fn item_sizes_match_memcached() {
        // Measured with `me`: key "foo", value "bar": 65, with flags 5: 69.
        assert_eq!(item_total_bytes(3, 3, 0), 65);
        assert_eq!(item_total_bytes(3, 3, 5), 69);
        assert_eq!(item_total_bytes(3, 1000, 0), 1062);
    }

    fn line(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn pieces() {
        assert_eq!(
            line(|o| {
                let mut l = Line::value(o, 3);
                l.number(b's', 3);
                l.ttl(0, 10);
                l.ttl(40, 10);
                l.key(b"foo", false);
                l.key(b"foo", true);
                l.opaque(b"O123");
                l.mark(b'W');
                l.end();
            }),
            "VA 3 s3 t-1 t30 kfoo kZm9v b O123 W\r\n"
        );
        // Measured: `mg k T-1 t` (exptime 1) at relative time 263.
        assert_eq!(
            line(|o| {
                let mut l = Line::code(o, b"HD");
                l.ttl(1, 263);
                l.end();
            }),
            "HD t4294967034\r\n"
        );
        assert_eq!(line(|o| Line::code(o, b"EN").end()), "EN\r\n");
        assert_eq!(line(|o| Line::value(o, 0).end()), "VA 0\r\n");
        // A line that is never ended writes nothing of what it gathered.
        assert_eq!(line(|o| Line::code(o, b"HD").mark(b'W')), "");
    }

    /// A short answer is the bytes [`Line`] writes for the same pieces, data block
    /// included; one without room for a piece says so and gives nothing.
    #[test]
    fn short_answers_match_lines() {
        let key = [b'q'; 64];
        for data in [&b""[..], b"x", b"hello", &[b'd'; 46], &[b'd'; 64]] {
            let line = line(|o| {
                let mut l = Line::value(o, data.len());
                l.number(b's', data.len() as u64);
                l.ttl(0, 9);
                l.ttl(40, 9);
                l.number(b'c', u64::MAX);
                l.key(b"foo", false);
                l.mark(b'W');
                l.end_with_data(data);
            });
            let mut short = Short::new();
            short.value_code(data.len());
            assert!(short.number(b's', data.len() as u64));
            assert!(short.ttl(0, 9) && short.ttl(40, 9));
            assert!(short.number(b'c', u64::MAX));
            assert!(short.key(b"foo") && short.mark(b'W'));
            let got = short
                .finish(Some(data))
                .map(|b| String::from_utf8(b.to_vec()).unwrap());
            assert_eq!(got.as_deref(), Some(line.as_str()), "data {}", data.len());
        }
        let mut short = Short::new();
        short.code(b"HD");
        assert!(short.key(&key) && short.mark(b'Z'));
        let expected = format!("HD k{} Z\r\n", "q".repeat(64));
        assert_eq!(short.finish(None), Some(expected.as_bytes()));
        // A key or data over 64 bytes, or a line grown past the buffer, has no room.
        let mut short = Short::new();
        short.code(b"HD");
        assert!(!short.key(&[b'k'; 65]));
        let mut short = Short::new();
        short.value_code(65);
        assert_eq!(short.finish(Some(&[b'd'; 65])), None);
        let mut short = Short::new();
        short.value_code(64);
        assert!(short.key(&key) && short.number(b'c', u64::MAX) && short.number(b's', 64));
        assert!(short.number(b'f', u64::from(u32::MAX)) && short.number(b'l', 1 << 31));
        // 189 bytes with the data block: they fit; 12 more do not.
        assert!(short.ttl(1, 263));
        assert_eq!(short.finish(Some(&[b'd'; 64])), None);
        let mut short = Short::new();
        short.code(b"HD");
        let mut pieces = 0;
        while short.number(b'c', u64::MAX) {
            pieces += 1;
        }
        assert_eq!(pieces, (SHORT_ANSWER_BYTES - 2) / NUMBER_MAX_BYTES);
        assert!(short.mark(b'W') || short.finish(None).is_none());
    }

    /// Lines longer than the gathering buffer, in every arrangement of long and short
    /// pieces, come out as the pieces written one by one would.
    #[test]
    fn long_lines_match_the_pieces() {
        let key = [b'k'; 250];
        let opaque = [&b"O"[..], &[b'9'; 31]].concat();
        let long_opaque = [&b"O"[..], &[b'7'; 90]].concat();
        for order in 0..64usize {
            let mut expected = b"VA 123456".to_vec();
            let got = line(|o| {
                let mut l = Line::value(o, 123_456);
                for step in 0..6 {
                    match (order >> step) & 1 | (step % 3) << 1 {
                        0 => {
                            l.number(b'c', u64::MAX);
                            expected.extend(format!(" c{}", u64::MAX).bytes());
                        }
                        1 => {
                            l.key(&key[..(step * 50 + 1)], false);
                            expected.extend(b" k");
                            expected.extend(&key[..(step * 50 + 1)]);
                        }
                        2 => {
                            l.opaque(&opaque);
                            expected.push(b' ');
                            expected.extend(&opaque);
                        }
                        3 => {
                            l.key(b"\x00\xff", true);
                            expected.extend(b" kAP8= b");
                        }
                        4 => {
                            l.ttl(0, 5);
                            l.mark(b'Z');
                            expected.extend(b" t-1 Z");
                        }
                        _ => {
                            l.opaque(&long_opaque);
                            expected.push(b' ');
                            expected.extend(&long_opaque);
                        }
                    }
                }
                l.end();
            });
            expected.extend(b"\r\n");
            assert_eq!(got.as_bytes(), expected, "order {order}");
        }
    }

    #[test]
    fn debug_lines() {
        let info = DebugInfo {
            key: b"foo",
            key_binary: false,
            exptime: 110,
            now: 10,
            last_access: 7,
            cas: 8,
            fetched: true,
            value_len: 3,
            flags: 5,
        };
        assert_eq!(
            line(|o| debug_line(o, &info)),
            "ME foo exp=100 la=3 cas=8 fetch=yes cls=1 size=69\r\n"
        );
        let never = DebugInfo {
            key_binary: true,
            exptime: 0,
            fetched: false,
            flags: 0,
            ..info
        };
        assert_eq!(
            line(|o| debug_line(o, &never)),
            "ME Zm9v exp=-1 la=3 cas=8 fetch=no cls=1 size=65\r\n"
        );
    }
}
