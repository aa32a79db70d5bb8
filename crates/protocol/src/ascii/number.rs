//! Number tokens read the way memcached 1.6.18 reads them.
//!
//! memcached converts every numeric argument with C's `strtol`/`strtoul`/`strtoull`
//! (base 10) wrapped in its `safe_strto*` helpers, and clients see the quirks, so these
//! functions reproduce them rather than Rust's stricter `str::parse`:
//! - leading C whitespace (`\t \n \v \f \r`, space) is skipped, then an optional `+`/`-`;
//! - at least one digit must follow; after the digits the token must end or continue
//!   with C whitespace (`"5\tjunk"` reads as 5), anything else is an error (`"0x1"`);
//! - a magnitude that overflows 64 bits is an error (`ERANGE`);
//! - unsigned reads negate a `-` value modulo 2^64 and refuse it only when the result
//!   looks negative as a signed number (`"-0"` is 0, `"-18446744073709551615"` is 1);
//! - 32-bit results are the 64-bit value truncated, as memcached's `*out = l` does
//!   (flags `4294967301` are 5, exptime `2147483648` is -2147483648, bytes `4294967297`
//!   is 1).
//!
//! Owns no state and knows nothing of commands.

/// C's `isspace` in the "C" locale.
fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// The parts of a base-10 number as `strtoul`/`strtol` see them: whether a `-` sign was
/// read and the magnitude, or `None` when there are no digits, the magnitude overflows
/// `u64`, or the digits are followed by something other than whitespace.
fn scan(token: &[u8]) -> Option<(bool, u64)> {
    let mut i = 0;
    while i < token.len() && is_c_space(token[i]) {
        i += 1;
    }
    let mut negative = false;
    if i < token.len() && (token[i] == b'+' || token[i] == b'-') {
        negative = token[i] == b'-';
        i += 1;
    }
    let digits_start = i;
    let mut magnitude: u64 = 0;
    while i < token.len() && token[i].is_ascii_digit() {
        magnitude = magnitude
            .checked_mul(10)?
            .checked_add(u64::from(token[i] - b'0'))?;
        i += 1;
    }
    if i == digits_start {
        return None;
    }
    if i < token.len() && !is_c_space(token[i]) {
        return None;
    }
    Some((negative, magnitude))
}

/// memcached's `safe_strtoull`: CAS values and incr/decr deltas.
pub fn safe_strtoull(token: &[u8]) -> Option<u64> {
    let (negative, magnitude) = scan(token)?;
    let value = if negative {
        magnitude.wrapping_neg()
    } else {
        magnitude
    };
    if negative && (value as i64) < 0 {
        return None;
    }
    Some(value)
}

/// memcached's `safe_strtoul` into a `uint32_t`: client flags, verbosity level.
pub fn safe_strtoul(token: &[u8]) -> Option<u32> {
    safe_strtoull(token).map(|v| v as u32)
}

/// memcached's `safe_strtol` into an `int32_t`: exptimes, flush delay, value length.
pub fn safe_strtol(token: &[u8]) -> Option<i32> {
    let (negative, magnitude) = scan(token)?;
    let value: i64 = if negative {
        if magnitude > 1u64 << 63 {
            return None;
        }
        (magnitude as i64).wrapping_neg()
    } else {
        i64::try_from(magnitude).ok()?
    };
    Some(value as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_64() {
        assert_eq!(safe_strtoull(b"0"), Some(0));
        assert_eq!(safe_strtoull(b"+7"), Some(7));
        assert_eq!(safe_strtoull(b"-0"), Some(0));
        assert_eq!(safe_strtoull(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(safe_strtoull(b"18446744073709551616"), None);
        assert_eq!(safe_strtoull(b"-1"), None);
        assert_eq!(
            safe_strtoull(b"-9223372036854775809"),
            Some(9223372036854775807)
        );
        assert_eq!(safe_strtoull(b"-18446744073709551615"), Some(1));
        assert_eq!(safe_strtoull(b"9223372036854775808"), Some(1 << 63));
        assert_eq!(safe_strtoull(b"\t1"), Some(1));
        assert_eq!(safe_strtoull(b"1\t"), Some(1));
        assert_eq!(safe_strtoull(b"1\tjunk"), Some(1));
        assert_eq!(safe_strtoull(b"1\r"), Some(1));
        for bad in [
            &b""[..],
            b"abc",
            b"0x1",
            b"1x",
            b"-",
            b"+",
            b"\t",
            b"--1",
            b"1-",
        ] {
            assert_eq!(safe_strtoull(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn unsigned_32_truncates() {
        assert_eq!(safe_strtoul(b"4294967295"), Some(u32::MAX));
        assert_eq!(safe_strtoul(b"4294967296"), Some(0));
        assert_eq!(safe_strtoul(b"4294967301"), Some(5));
        assert_eq!(safe_strtoul(b"18446744073709551615"), Some(u32::MAX));
        assert_eq!(safe_strtoul(b"9223372036854775808"), Some(0));
        assert_eq!(safe_strtoul(b"-1"), None);
    }

    #[test]
    fn signed_32_truncates() {
        assert_eq!(safe_strtol(b"-1"), Some(-1));
        assert_eq!(safe_strtol(b"2147483647"), Some(i32::MAX));
        assert_eq!(safe_strtol(b"2147483648"), Some(i32::MIN));
        assert_eq!(safe_strtol(b"4294967296"), Some(0));
        assert_eq!(safe_strtol(b"4294967297"), Some(1));
        assert_eq!(safe_strtol(b"-2147483649"), Some(i32::MAX));
        assert_eq!(safe_strtol(b"9223372036854775807"), Some(-1));
        assert_eq!(safe_strtol(b"9223372036854775808"), None);
        assert_eq!(safe_strtol(b"-9223372036854775808"), Some(0));
        assert_eq!(safe_strtol(b"-9223372036854775809"), None);
        assert_eq!(safe_strtol(b"-0"), Some(0));
        assert_eq!(safe_strtol(b"abc"), None);
    }
}
