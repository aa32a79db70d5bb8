//! Base64 for meta keys (the `b` flag), as memcached 1.6.18 reads and writes it.
//!
//! memcached's decoder is lenient, and clients see it: bytes outside the alphabet are
//! skipped (`Zm9v!` is `foo`); the symbols left (with `=`, worth 0) must be a nonzero
//! multiple of four; decoding stops after the first quad that holds a `=`, which then
//! drops one byte for one `=`, two for two, and fails for more (`Z=gg` is two bytes,
//! `A===` fails); trailing bits are kept as they fall (`Zh==` is `f`). No crate decodes
//! that way, so [`decode`] is written here. [`encode`] is the standard padded alphabet
//! (the `base64` crate): answers carry the canonical form (`Zh==` comes back `Zg==`).
//!
//! Pure functions over byte slices; no allocation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

/// Bytes [`encode`] may write for a key of up to 250 bytes.
pub const ENCODED_MAX_BYTES: usize = 336;

/// The value of a base64 symbol (`=` counts as 0), or `None` for a byte memcached skips.
fn symbol(b: u8) -> Option<u8> {
    match b {
        b'A'..=b'Z' => Some(b - b'A'),
        b'a'..=b'z' => Some(b - b'a' + 26),
        b'0'..=b'9' => Some(b - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        b'=' => Some(0),
        _ => None,
    }
}

/// Decodes `src` into `out` (which must hold `src.len()` bytes) by memcached's rules;
/// `None` where memcached fails (its decoder's 0).
pub fn decode(src: &[u8], out: &mut [u8]) -> Option<usize> {
    let symbols = src.iter().filter(|&&b| symbol(b).is_some()).count();
    if symbols == 0 || symbols % 4 != 0 {
        return None;
    }
    let mut quad = [0u8; 4];
    let (mut filled, mut pads, mut len) = (0, 0, 0);
    for &b in src {
        let Some(value) = symbol(b) else { continue };
        pads += usize::from(b == b'=');
        quad[filled] = value;
        filled += 1;
        if filled < 4 {
            continue;
        }
        out[len] = (quad[0] << 2) | (quad[1] >> 4);
        out[len + 1] = (quad[1] << 4) | (quad[2] >> 2);
        out[len + 2] = (quad[2] << 6) | quad[3];
        len += 3;
        filled = 0;
        if pads > 0 {
            if pads > 2 {
                return None;
            }
            len -= pads;
            break;
        }
    }
    Some(len)
}

/// Encodes `src` (at most 250 bytes) into `out`; returns the length written.
pub fn encode(src: &[u8], out: &mut [u8; ENCODED_MAX_BYTES]) -> usize {
    STANDARD
        .encode_slice(src, out)
        .expect("a key of at most 250 bytes fits the buffer")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(src: &str) -> Option<Vec<u8>> {
        let mut out = [0u8; 256];
        decode(src.as_bytes(), &mut out).map(|n| out[..n].to_vec())
    }

    fn encoded(src: &[u8]) -> String {
        let mut out = [0u8; ENCODED_MAX_BYTES];
        let n = encode(src, &mut out);
        String::from_utf8(out[..n].to_vec()).unwrap()
    }

    #[test]
    fn canonical_round_trips() {
        for key in [
            &b"f"[..],
            b"fo",
            b"foo",
            b"foobar",
            b"\0\xff\x10 \r\n",
            &[7; 186],
        ] {
            assert_eq!(decoded(&encoded(key)).as_deref(), Some(key));
        }
        assert_eq!(encoded(b"foo"), "Zm9v");
        assert_eq!(encoded(b"f"), "Zg==");
        assert_eq!(encoded(&[0xfb, 0xff]), "+/8=");
        assert_eq!(encoded(&[0xff; 250]).len(), ENCODED_MAX_BYTES);
    }

    #[test]
    fn memcached_leniency() {
        assert_eq!(decoded("Zm9v!").as_deref(), Some(&b"foo"[..]));
        assert_eq!(decoded("Z m\t9\x01v").as_deref(), Some(&b"foo"[..]));
        assert_eq!(decoded("Zh==").as_deref(), Some(&b"f"[..]));
        assert_eq!(decoded("Z=gg").as_deref(), Some(&b"d\x08"[..]));
        assert_eq!(decoded("Zg==Zm9v").as_deref(), Some(&b"f"[..]));
        assert_eq!(decoded("AAAA").as_deref(), Some(&b"\0\0\0"[..]));
    }

    #[test]
    fn memcached_failures() {
        for bad in ["", "!!!!", "Zm9", "Zm9vYg=", "====", "A===", "Zm9vY"] {
            assert_eq!(decoded(bad), None, "{bad}");
        }
    }
}
