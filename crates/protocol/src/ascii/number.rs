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
//! Decimals (`lru tune`'s age factors, `slabs automove ratio`) are read as memcached's
//! `safe_strtod` reads them with glibc's `strtod`: leading whitespace, a sign, then a
//! decimal (`1`, `.5`, `2.`, `1e3`), a hexadecimal (`0x10`, `0x1.8p1`), `inf`/`infinity`
//! or `nan`/`nan(chars)` in any case; the token must end or continue with whitespace, and
//! a result out of range (`1e999`, `1e-999`: glibc's `ERANGE`) is an error.
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

/// memcached's `safe_strtod`: the longest prefix of `token` that glibc's `strtod` reads,
/// which must be followed by the end or C whitespace; `None` for no number, trailing
/// junk, or a finite number whose value overflows or underflows a double.
pub fn safe_strtod(token: &[u8]) -> Option<f64> {
    let mut i = 0;
    while i < token.len() && is_c_space(token[i]) {
        i += 1;
    }
    let negative = token.get(i) == Some(&b'-');
    if matches!(token.get(i), Some(b'+' | b'-')) {
        i += 1;
    }
    let (magnitude, end) = unsigned_decimal(&token[i..])?;
    let end = i + end;
    if end < token.len() && !is_c_space(token[end]) {
        return None;
    }
    Some(if negative { -magnitude } else { magnitude })
}

/// The unsigned number at the start of `text` as `strtod` reads it, and where it ends.
fn unsigned_decimal(text: &[u8]) -> Option<(f64, usize)> {
    let lower = |n: usize| text.get(..n).map(<[u8]>::to_ascii_lowercase);
    if lower(8).as_deref() == Some(b"infinity") {
        return Some((f64::INFINITY, 8));
    }
    if lower(3).as_deref() == Some(b"inf") {
        return Some((f64::INFINITY, 3));
    }
    if lower(3).as_deref() == Some(b"nan") {
        // `nan(n-char-sequence)`: letters, digits and `_` between the parentheses.
        let rest = &text[3..];
        let chars = rest
            .iter()
            .skip(1)
            .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_');
        let close = 1 + chars.count();
        let end = if rest.first() == Some(&b'(') && rest.get(close) == Some(&b')') {
            3 + close + 1
        } else {
            3
        };
        return Some((f64::NAN, end));
    }
    if lower(2).as_deref() == Some(b"0x") {
        if let Some(hex) = hexadecimal(&text[2..]) {
            return Some((hex.0, 2 + hex.1));
        }
        // "0x" without hex digits is the decimal 0, ending before the x.
        return Some((0.0, 1));
    }
    let digits = |from: usize| {
        text[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let int = digits(0);
    let mut end = int;
    let mut frac = 0;
    if text.get(end) == Some(&b'.') {
        frac = digits(end + 1);
        end += 1 + frac;
    }
    if int + frac == 0 {
        return None;
    }
    let mantissa_end = end;
    if matches!(text.get(end), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(text.get(end + 1), Some(b'+' | b'-')));
        let exp = digits(end + 1 + sign);
        if exp > 0 {
            end += 1 + sign + exp;
        }
    }
    let value: f64 = std::str::from_utf8(&text[..end]).ok()?.parse().ok()?;
    let nonzero = text[..mantissa_end]
        .iter()
        .any(|b| matches!(b, b'1'..=b'9'));
    in_range(value, nonzero).map(|v| (v, end))
}

/// A hexadecimal number after its `0x`: digits, an optional fraction, an optional binary
/// exponent `p[sign]digits`; its value and where it ends, or `None` without digits.
fn hexadecimal(text: &[u8]) -> Option<(f64, usize)> {
    let mut value = 0f64;
    let mut scale = 0i32;
    let mut end = 0;
    let mut seen = false;
    let mut nonzero = false;
    while let Some(d) = text.get(end).and_then(|b| (*b as char).to_digit(16)) {
        value = value * 16.0 + f64::from(d);
        nonzero |= d != 0;
        seen = true;
        end += 1;
    }
    if text.get(end) == Some(&b'.') {
        let mut at = end + 1;
        while let Some(d) = text.get(at).and_then(|b| (*b as char).to_digit(16)) {
            value = value * 16.0 + f64::from(d);
            nonzero |= d != 0;
            scale -= 4;
            seen = true;
            at += 1;
        }
        if seen {
            end = at;
        }
    }
    if !seen {
        return None;
    }
    if matches!(text.get(end), Some(b'p' | b'P')) {
        let sign_len = usize::from(matches!(text.get(end + 1), Some(b'+' | b'-')));
        let negative = text.get(end + 1) == Some(&b'-');
        let digits: Vec<u8> = text[end + 1 + sign_len..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .copied()
            .collect();
        if !digits.is_empty() {
            let exp = digits.iter().fold(0i32, |e, d| {
                e.saturating_mul(10).saturating_add(i32::from(d - b'0'))
            });
            scale = scale.saturating_add(if negative { -exp } else { exp });
            end += 1 + sign_len + digits.len();
        }
    }
    in_range(value * 2f64.powi(scale), nonzero).map(|v| (v, end))
}

/// glibc's `ERANGE`: a finite input whose value overflows to infinity, or a non-zero
/// input whose value underflows to zero or a subnormal.
fn in_range(value: f64, nonzero: bool) -> Option<f64> {
    let underflow = nonzero && (value == 0.0 || value.is_subnormal());
    (value.is_finite() && !underflow).then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_as_strtod() {
        for (text, want) in [
            (&b"0.1"[..], 0.1),
            (b"2", 2.0),
            (b"2.", 2.0),
            (b".5", 0.5),
            (b"+1.5", 1.5),
            (b"-0.25", -0.25),
            (b"1e1", 10.0),
            (b"1E-2", 0.01),
            (b"0x10", 16.0),
            (b"0X1.8p1", 3.0),
            (b"\t3\tjunk", 3.0),
            (b"3\r", 3.0),
        ] {
            assert_eq!(safe_strtod(text), Some(want), "{text:?}");
        }
        assert_eq!(safe_strtod(b"inf"), Some(f64::INFINITY));
        assert_eq!(safe_strtod(b"-Infinity"), Some(f64::NEG_INFINITY));
        assert!(safe_strtod(b"nan").is_some_and(f64::is_nan));
        assert!(safe_strtod(b"NaN(x_1)").is_some_and(f64::is_nan));
        for bad in [
            &b""[..],
            b"x",
            b"0.1abc",
            b".",
            b"-",
            b"1e999",
            b"1e-999",
            b"infx",
            b"nan(",
            b"0x1g",
            b"--1",
            // strtod stops before an `e` without digits and before a bare `0x`'s x:
            // what follows is junk.
            b"1e",
            b"1e+",
            b"0x",
        ] {
            assert_eq!(safe_strtod(bad), None, "{bad:?}");
        }
    }

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
