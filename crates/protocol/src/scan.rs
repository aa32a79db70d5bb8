//! Finding the first byte of a kind in a short slice, eight bytes at a time.
//!
//! Keys and command tokens are short (an 11-byte key is typical), where `memchr`'s
//! set-up costs more than the search and a byte loop costs a branch per byte. These
//! read one 64-bit word per step and compute a mask of the matching bytes with a few
//! arithmetic operations (the lowest set bit of such a mask is always exact: a borrow
//! only runs towards higher bytes). Pure functions, no state.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// High bit set in each byte of `word` below `n` (`n` ≤ 0x80); exact for the lowest
/// such byte, possibly set in higher ones after it.
#[inline(always)]
fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH
}

/// High bit set in each byte of `word` equal to `b`; exact for the lowest one.
#[inline(always)]
fn equal(word: u64, b: u8) -> u64 {
    below(word ^ (ONES * u64::from(b)), 1)
}

/// Index of the first byte of `hay` that `mask` (over words) and `is` (over single
/// bytes, for slices shorter than a word) match, `None` if none. A last partial word
/// is read as the slice's last eight bytes, with the bytes already seen masked off
/// (they matched nothing, so no borrow from them can fake a match).
#[inline(always)]
fn first(hay: &[u8], mask: impl Fn(u64) -> u64, is: impl Fn(u8) -> bool) -> Option<usize> {
    let len = hay.len();
    if len < 8 {
        return hay.iter().position(|&b| is(b));
    }
    let word_at = |at: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&hay[at..at + 8]);
        u64::from_le_bytes(w)
    };
    let mut at = 0;
    while at + 8 <= len {
        let m = mask(word_at(at));
        if m != 0 {
            return Some(at + (m.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    if at == len {
        return None;
    }
    let last = len - 8;
    let seen = at - last;
    let m = mask(word_at(last)) & (u64::MAX << (8 * seen));
    (m != 0).then(|| last + (m.trailing_zeros() / 8) as usize)
}

/// Index of the first byte of `hay` at or below `' '` (a space, NUL, a control byte).
#[inline(always)]
pub(crate) fn first_control_or_space(hay: &[u8]) -> Option<usize> {
    first(hay, |w| below(w, b' ' + 1), |x| x <= b' ')
}

/// Index of the first `b` in `hay`.
#[inline(always)]
pub(crate) fn first_byte(hay: &[u8], b: u8) -> Option<usize> {
    first(hay, |w| equal(w, b), |x| x == b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_a_byte_loop() {
        let alphabet = [
            b' ', b'!', 0, b'\r', b'\n', 0x1f, b'a', 0x7f, 0x80, 0xff, 0xa0,
        ];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..50_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            let hay: Vec<u8> = (0..len)
                .map(|i| {
                    let pick = (state >> (i % 60)) as usize ^ i;
                    if pick.is_multiple_of(5) {
                        alphabet[pick % alphabet.len()]
                    } else {
                        b'k'
                    }
                })
                .collect();
            assert_eq!(
                first_control_or_space(&hay),
                hay.iter().position(|&b| b <= b' '),
                "{hay:?}"
            );
            assert_eq!(
                first_byte(&hay, b' '),
                hay.iter().position(|&b| b == b' '),
                "{hay:?}"
            );
        }
    }
}
