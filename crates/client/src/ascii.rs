//! What the text and meta answers share: a line ended by `\r\n`, a decimal number, a
//! data block after a line, and the request pieces both dialects write (a key, a
//! number, a data block).
//!
//! Invariant: a line longer than [`LINE_MAX_BYTES`] is malformed whether or not its end
//! has arrived, so the verdict does not depend on how the input was split.

use crate::{malformed, DecodeError};

/// Longest answer line (without its `\r\n`) a decoder takes. memcached's longest are a
/// few hundred bytes (a `VALUE` line with a 250-byte key and a CAS, a meta answer with
/// a base64 key); anything far longer means the stream is out of step.
pub const LINE_MAX_BYTES: usize = 4096;

/// The first line of `input` without its `\r\n`, and its length with it.
#[inline]
pub(crate) fn line(input: &[u8]) -> Result<(&[u8], usize), DecodeError> {
    let scanned = &input[..input.len().min(LINE_MAX_BYTES + 2)];
    match memchr::memchr(b'\n', scanned) {
        Some(nl) if nl > 0 && input[nl - 1] == b'\r' => Ok((&input[..nl - 1], nl + 1)),
        Some(_) => Err(malformed("answer line not ended by \\r\\n", input)),
        None if scanned.len() > LINE_MAX_BYTES + 1 => Err(malformed("answer line too long", input)),
        None => Err(DecodeError::Incomplete),
    }
}

/// The bytes of `s` before its first space, and those after it (`None`: no space).
/// A loop, not `memchr`: the words of an answer line are a few bytes long.
#[inline]
pub(crate) fn split_space(s: &[u8]) -> (&[u8], Option<&[u8]>) {
    match s.iter().position(|&b| b == b' ') {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    }
}

/// A decimal number of 1 to 20 ASCII digits that fits a `u64`.
#[inline]
pub(crate) fn number(token: &[u8]) -> Option<u64> {
    if token.is_empty() || token.len() > 20 {
        return None;
    }
    token.iter().try_fold(0u64, |n, &d| {
        let digit = d.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

/// The `len` data bytes after a line of `head` bytes (with its `\r\n`), which must be
/// followed by `\r\n`; and where that `\r\n` ends.
#[inline]
pub(crate) fn data_block(
    input: &[u8],
    head: usize,
    len: u64,
) -> Result<(&[u8], usize), DecodeError> {
    let data_end = usize::try_from(len)
        .ok()
        .and_then(|len| head.checked_add(len))
        .filter(|end| end.checked_add(2).is_some())
        .ok_or_else(|| malformed("data length out of range", input))?;
    if input.len() < data_end + 2 {
        return Err(DecodeError::Incomplete);
    }
    if &input[data_end..data_end + 2] != b"\r\n" {
        return Err(malformed(
            "data block not followed by \\r\\n",
            &input[data_end..],
        ));
    }
    Ok((&input[head..data_end], data_end + 2))
}

/// Appends `parts`, separated by spaces, and `\r\n`.
#[inline]
pub(crate) fn put_line(out: &mut Vec<u8>, parts: &[&[u8]]) {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends a data block: the value and its `\r\n`.
#[inline]
pub(crate) fn put_data(out: &mut Vec<u8>, value: &[u8]) {
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_end_with_cr_lf() {
        assert_eq!(line(b"END\r\nrest"), Ok((&b"END"[..], 5)));
        assert_eq!(line(b"\r\n"), Ok((&b""[..], 2)));
        assert_eq!(line(b"END\r"), Err(DecodeError::Incomplete));
        assert_eq!(line(b""), Err(DecodeError::Incomplete));
        assert!(matches!(line(b"END\n"), Err(DecodeError::Malformed(_))));
        assert!(matches!(line(b"\n"), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn a_long_line_is_malformed_however_it_arrives() {
        let mut long = vec![b'x'; LINE_MAX_BYTES];
        assert_eq!(line(&long), Err(DecodeError::Incomplete));
        long.extend_from_slice(b"\r\n");
        assert_eq!(line(&long).map(|(_, n)| n), Ok(LINE_MAX_BYTES + 2));
        let mut longer = vec![b'x'; LINE_MAX_BYTES + 1];
        let cut = longer.clone();
        longer.extend_from_slice(b"\r\n");
        assert!(matches!(line(&longer), Err(DecodeError::Malformed(_))));
        assert_eq!(line(&cut), Err(DecodeError::Incomplete));
        let mut cut = cut;
        cut.push(b'\r');
        assert!(matches!(line(&cut), Err(DecodeError::Malformed(_))));
    }

    #[test]
    fn words() {
        assert_eq!(split_space(b"VA 3 kx"), (&b"VA"[..], Some(&b"3 kx"[..])));
        assert_eq!(split_space(b"HD"), (&b"HD"[..], None));
        assert_eq!(split_space(b"HD "), (&b"HD"[..], Some(&b""[..])));
    }

    #[test]
    fn numbers() {
        assert_eq!(number(b"0"), Some(0));
        assert_eq!(number(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(number(b"18446744073709551616"), None);
        assert_eq!(number(b""), None);
        assert_eq!(number(b"-1"), None);
        assert_eq!(number(b"1a"), None);
        assert_eq!(number(b"123456789012345678901"), None);
    }

    #[test]
    fn data_blocks() {
        let input = b"VA 3\r\nabc\r\nnext";
        assert_eq!(data_block(input, 6, 3), Ok((&b"abc"[..], 11)));
        for cut in 6..11 {
            assert_eq!(
                data_block(&input[..cut], 6, 3),
                Err(DecodeError::Incomplete)
            );
        }
        assert!(matches!(
            data_block(b"VA 3\r\nabcX\r\n", 6, 3),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            data_block(input, 6, u64::MAX),
            Err(DecodeError::Malformed(_))
        ));
    }
}
