//! The lines of memcached's key dumps: `lru_crawler metadump` (1.6.18's format),
//! `lru_crawler mgdump` (1.6.45's) and `stats cachedump` (1.6.18's).
//!
//! Knows nothing of the store: callers pass each item's fields, times already as unix
//! seconds.
//!
//! | dump | per item | end |
//! |---|---|---|
//! | metadump | `key=<uri-encoded key> exp=<unix exptime or -1> la=<unix last access> cas=<cas> fetch=<yes\|no> cls=<class> size=<bytes>\n` | `END\r\n` |
//! | mgdump | `mg <key>\r\n`, or `mg <base64 key> b\r\n` for a key stored base64 | `EN\r\n`, after an `OK\r\n` before the first line |
//! | cachedump | `ITEM <key> [<value bytes> b; <unix exptime or 0> s]\r\n` | `END\r\n` |
//!
//! URI encoding is memcached's: every byte but ASCII letters, digits and `-._~` as `%`
//! and two upper-case hex digits.

use bytes::BufMut;

use crate::meta::base64;

/// What a metadump ends with.
pub const METADUMP_END: &[u8] = b"END\r\n";
/// What mgdump starts with (memcached 1.6.45 answers `OK` first).
pub const MGDUMP_START: &[u8] = b"OK\r\n";
/// What mgdump ends with.
pub const MGDUMP_END: &[u8] = b"EN\r\n";
/// What cachedump ends with.
pub const CACHEDUMP_END: &[u8] = b"END\r\n";

/// Appends `key` URI-encoded as memcached's `uriencode` does.
pub fn uriencode(key: &[u8], out: &mut impl BufMut) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.put_u8(b);
        } else {
            out.put_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]]);
        }
    }
}

/// One item of a metadump. `exptime` is `None` for an item that never expires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaDumpItem<'a> {
    pub key: &'a [u8],
    pub exptime: Option<u64>,
    pub last_access: u64,
    pub cas: u64,
    pub fetched: bool,
    pub class: usize,
    pub size: usize,
}

/// Appends one metadump line.
pub fn metadump_line(item: &MetaDumpItem<'_>, out: &mut impl BufMut) {
    let mut n = itoa::Buffer::new();
    out.put_slice(b"key=");
    uriencode(item.key, out);
    out.put_slice(b" exp=");
    match item.exptime {
        Some(t) => out.put_slice(n.format(t).as_bytes()),
        None => out.put_slice(b"-1"),
    }
    out.put_slice(b" la=");
    out.put_slice(n.format(item.last_access).as_bytes());
    out.put_slice(b" cas=");
    out.put_slice(n.format(item.cas).as_bytes());
    out.put_slice(if item.fetched {
        b" fetch=yes cls="
    } else {
        b" fetch=no cls="
    });
    out.put_slice(n.format(item.class).as_bytes());
    out.put_slice(b" size=");
    out.put_slice(n.format(item.size).as_bytes());
    out.put_u8(b'\n');
}

/// Appends one mgdump line: the key as stored, or base64 with ` b` for a key a client
/// sent base64-encoded.
pub fn mgdump_line(key: &[u8], key_binary: bool, out: &mut impl BufMut) {
    out.put_slice(b"mg ");
    if key_binary {
        let mut encoded = [0; base64::ENCODED_MAX_BYTES];
        let len = base64::encode(key, &mut encoded);
        out.put_slice(&encoded[..len]);
        out.put_slice(b" b\r\n");
    } else {
        out.put_slice(key);
        out.put_slice(b"\r\n");
    }
}

/// Appends one cachedump line; `exptime` 0 for an item that never expires.
pub fn cachedump_line(key: &[u8], value_len: usize, exptime: u64, out: &mut impl BufMut) {
    let mut n = itoa::Buffer::new();
    out.put_slice(b"ITEM ");
    out.put_slice(key);
    out.put_slice(b" [");
    out.put_slice(n.format(value_len).as_bytes());
    out.put_slice(b" b; ");
    out.put_slice(n.format(exptime).as_bytes());
    out.put_slice(b" s]\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_as_memcached_prints_them() {
        let mut out = Vec::new();
        metadump_line(
            &MetaDumpItem {
                key: b"a",
                exptime: None,
                last_access: 1796437789,
                cas: 1,
                fetched: true,
                class: 1,
                size: 61,
            },
            &mut out,
        );
        metadump_line(
            &MetaDumpItem {
                key: b"foo bar/%~",
                exptime: Some(1796437889),
                last_access: 1796437789,
                cas: 2,
                fetched: false,
                class: 7,
                size: 361,
            },
            &mut out,
        );
        assert_eq!(
            out,
            b"key=a exp=-1 la=1796437789 cas=1 fetch=yes cls=1 size=61\n\
key=foo%20bar%2F%25~ exp=1796437889 la=1796437789 cas=2 fetch=no cls=7 size=361\n"
        );
        let mut out = Vec::new();
        mgdump_line(b"a", false, &mut out);
        mgdump_line(b"foo bar", true, &mut out);
        assert_eq!(out, b"mg a\r\nmg Zm9vIGJhcg== b\r\n");
        let mut out = Vec::new();
        cachedump_line(b"bb", 300, 1796437889, &mut out);
        cachedump_line(b"a", 1, 0, &mut out);
        assert_eq!(
            out,
            b"ITEM bb [300 b; 1796437889 s]\r\nITEM a [1 b; 0 s]\r\n"
        );
    }

    #[test]
    fn uriencode_keeps_only_unreserved_bytes() {
        let all: Vec<u8> = (0..=255).collect();
        let mut out = Vec::new();
        uriencode(&all, &mut out);
        let text = String::from_utf8(out).unwrap();
        let kept = all
            .iter()
            .filter(|b| b.is_ascii_alphanumeric() || b"-._~".contains(b))
            .count();
        assert_eq!(text.len(), kept + 3 * (256 - kept));
        assert!(text.starts_with("%00%01"));
        assert!(text.contains("-.%2F0123456789%3A"));
        assert!(text.ends_with("%FE%FF"));
    }
}
