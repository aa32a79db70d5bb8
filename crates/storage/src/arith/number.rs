//! memcached's incr/decr arithmetic on stored values.
//!
//! Owns which stored values count as numbers and how a result is written back. It
//! reproduces memcached 1.6's `do_add_delta`, which reads the value with C's `strtoull`
//! (through `safe_strtoull`) and rewrites it in place when the new digits fit, padding
//! with spaces. Knows nothing of shards or locking.
//!
//! Rules (each checked against memcached 1.6.18):
//! - leading white space (space, `\t`, `\n`, `\v`, `\f`, `\r`) is skipped, then one
//!   optional `+` or `-`, then at least one digit;
//! - the digits must end the value or be followed by white space or a NUL; anything
//!   after that is ignored ("12 abc" is 12; "12abc" is not a number);
//! - more than 2^64 - 1 is not a number; a `-` is taken as strtoull does (negated modulo
//!   2^64) and refused only when the result is above 2^63 - 1 ("-0" is 0, "-1" is not a
//!   number, "-18446744073709551615" is 1);
//! - leading zeros are fine, but an item too big for one memcached slab chunk (512 KiB
//!   by memcached's item size arithmetic) is never a number;
//! - incr wraps at 2^64, decr stops at 0;
//! - a result no longer than the old value is written over it, padded with trailing
//!   spaces to the old length ("100" decr 1 → "99 "); a longer one replaces the value.

use crate::item_too_large;

/// memcached stores larger items in chunks, and refuses to do arithmetic on them.
const CHUNK_MAX_BYTES: usize = 512 * 1024;

fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The number an item with key length `key_len` and value `value` holds, if any.
pub(crate) fn parse(key_len: usize, value: &[u8]) -> Option<u64> {
    if item_too_large(key_len, value.len(), 0, CHUNK_MAX_BYTES) {
        return None;
    }
    let start = value.iter().position(|&b| !is_c_space(b));
    let rest = &value[start.unwrap_or(value.len())..];
    let (negative, rest) = match rest {
        [b'-', tail @ ..] => (true, tail),
        [b'+', tail @ ..] => (false, tail),
        _ => (false, rest),
    };
    let n = digits(rest)?;
    if negative {
        let n = n.wrapping_neg();
        (n <= i64::MAX as u64).then_some(n)
    } else {
        Some(n)
    }
}

/// Decimal digits (at least one) up to the end, white space or a NUL.
fn digits(s: &[u8]) -> Option<u64> {
    let end = s
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    if let Some(&b) = s.get(end) {
        if b != 0 && !is_c_space(b) {
            return None;
        }
    }
    s[..end].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// The value after incr (wrapping) or decr (flooring at 0).
pub(crate) fn apply(value: u64, delta: u64, incr: bool) -> u64 {
    if incr {
        value.wrapping_add(delta)
    } else {
        value.saturating_sub(delta)
    }
}

/// Writes `digits` over `value` when they fit, padding with spaces; false when the
/// value is too short (the caller then stores `digits` as a new value).
pub(crate) fn write_in_place(value: &mut [u8], digits: &[u8]) -> bool {
    if digits.len() > value.len() {
        return false;
    }
    let (head, tail) = value.split_at_mut(digits.len());
    head.copy_from_slice(digits);
    tail.fill(b' ');
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(s: &[u8]) -> Option<u64> {
        parse(1, s)
    }

    #[test]
    fn plain_numbers() {
        assert_eq!(num(b"0"), Some(0));
        assert_eq!(num(b"100"), Some(100));
        assert_eq!(num(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(num(b"000000000000000000000000000005"), Some(5));
    }

    #[test]
    fn not_numbers() {
        for v in [
            &b""[..],
            b" ",
            b"+",
            b"-",
            b"abc",
            b"12abc",
            b"1-",
            b"- 1",
            b"-1",
            b"-9223372036854775808",
            b"18446744073709551616",
            b"99999999999999999999999",
        ] {
            assert_eq!(num(v), None, "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn strtoull_quirks() {
        assert_eq!(num(b"  12 "), Some(12));
        assert_eq!(num(b"\t7\n"), Some(7));
        assert_eq!(num(b"\x0b5"), Some(5));
        assert_eq!(num(b"12 abc"), Some(12));
        assert_eq!(num(b" 1 2"), Some(1));
        assert_eq!(num(b"1\x002"), Some(1));
        assert_eq!(num(b"1\r2"), Some(1));
        assert_eq!(num(b"+12"), Some(12));
        assert_eq!(num(b"-0"), Some(0));
        assert_eq!(num(b"-18446744073709551615"), Some(1));
        assert_eq!(num(b"-9223372036854775809"), Some(i64::MAX as u64));
    }

    #[test]
    fn chunked_items_are_not_numbers() {
        // memcached: key "z" with 524228 digits is a number, with 524229 it is not.
        let mut v = vec![b'0'; 524_229];
        *v.last_mut().unwrap() = b'7';
        assert_eq!(parse(1, &v[1..]), Some(7));
        assert_eq!(parse(1, &v), None);
    }

    #[test]
    fn wrap_and_floor() {
        assert_eq!(apply(u64::MAX, 2, true), 1);
        assert_eq!(apply(5, 10, false), 0);
        assert_eq!(apply(100, 1, false), 99);
    }

    #[test]
    fn space_padding() {
        let mut v = *b"100";
        assert!(write_in_place(&mut v, b"99"));
        assert_eq!(&v, b"99 ");
        assert!(write_in_place(&mut v, b"9"));
        assert_eq!(&v, b"9  ");
        assert!(write_in_place(&mut v, b"123"));
        assert_eq!(&v, b"123");
        assert!(!write_in_place(&mut v, b"1000"));
        assert_eq!(&v, b"123");
    }
}
