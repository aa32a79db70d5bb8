//! Meta answers: the bytes memcached 1.6.18 writes for them.
//!
//! Owns the spelling of a meta answer line: its two-letter code (or `VA <size>`), each
//! returned flag (` c<cas>`, ` k<key>`, ` O<opaque>` …), and the `me` debug line with
//! memcached's item arithmetic (`size`) and default slab classes (`cls`). The executor
//! decides which pieces an answer has and in what order; this module only writes them.
//! Knows nothing of the store or the connection.
//!
//! Invariants: nothing allocates (numbers through `itoa`, keys through a stack buffer);
//! every answer the executor builds from these ends with [`end`].

use super::base64;
use bytes::BufMut;

/// memcached's item header (48 bytes) and CAS (8): part of every item's size.
const ITEM_HEADER_BYTES: usize = 48 + 8;

/// memcached's smallest slab chunk (`-n 48` plus the 48-byte header) and growth factor
/// (`-f 1.25`), and its largest chunk (half a 1 MiB page; larger items are chunked and
/// counted in the last class).
const SLAB_CHUNK_MIN_BYTES: usize = 96;
const SLAB_CHUNK_MAX_BYTES: usize = 512 * 1024;

/// Appends a two-letter code (`HD`, `EN`, `NF` …).
pub fn code(out: &mut impl BufMut, code: &[u8; 2]) {
    out.put_slice(code);
}

/// Appends `VA <len>`, the code of an answer that carries a value.
pub fn value_code(out: &mut impl BufMut, len: usize) {
    out.put_slice(b"VA ");
    out.put_slice(itoa::Buffer::new().format(len).as_bytes());
}

/// Appends ` <flag><n>` (` c123`, ` s5`).
pub fn number(out: &mut impl BufMut, flag: u8, n: impl itoa::Integer) {
    out.put_slice(&[b' ', flag]);
    out.put_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Appends ` <flag>` (` W`, ` X`, ` Z`).
pub fn mark(out: &mut impl BufMut, flag: u8) {
    out.put_slice(&[b' ', flag]);
}

/// Appends ` t<seconds left>`: `-1` for an item that never expires, else its relative
/// exptime minus now as an unsigned 32-bit number (memcached's arithmetic, which wraps
/// for an exptime already past, such as `T-1`'s).
pub fn ttl(out: &mut impl BufMut, exptime: u32, now: u32) {
    if exptime == 0 {
        out.put_slice(b" t-1");
    } else {
        number(out, b't', exptime.wrapping_sub(now));
    }
}

/// Appends an opaque token as sent (` O123`).
pub fn opaque(out: &mut impl BufMut, token: &[u8]) {
    out.put_slice(b" ");
    out.put_slice(token);
}

/// Appends ` k<key>`, or ` k<base64 key> b` for a binary key.
pub fn key(out: &mut impl BufMut, key: &[u8], binary: bool) {
    out.put_slice(b" k");
    if binary {
        put_base64(out, key);
        out.put_slice(b" b");
    } else {
        out.put_slice(key);
    }
}

fn put_base64(out: &mut impl BufMut, key: &[u8]) {
    let mut buf = [0; base64::ENCODED_MAX_BYTES];
    let len = base64::encode(key, &mut buf);
    out.put_slice(&buf[..len]);
}

/// Ends an answer line.
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
                value_code(o, 3);
                number(o, b's', 3u32);
                ttl(o, 0, 10);
                ttl(o, 40, 10);
                key(o, b"foo", false);
                key(o, b"foo", true);
                opaque(o, b"O123");
                mark(o, b'W');
                end(o);
            }),
            "VA 3 s3 t-1 t30 kfoo kZm9v b O123 W\r\n"
        );
        // Measured: `mg k T-1 t` (exptime 1) at relative time 263.
        assert_eq!(line(|o| ttl(o, 1, 263)), " t4294967034");
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
