//! Framing and tokenizing a command line: where the first line of the input ends, what
//! memcached sees of it, and its space-separated tokens.
//!
//! Owns the tokenizing rules of the text module header (at most [`MAX_TOKENS`] tokens);
//! the line rules (newline, `\r` only stripped before the newline, NUL ends the line,
//! the 2048-byte rule with its 2049-byte lookahead, the long-get rule) are
//! [`crate::ascii`]'s, which [`split`] repeats for short lines. Knows nothing of commands.
//!
//! Two ways to the same answer: [`split`] reads a line whose newline lies in the first
//! [`SHORT_LINE_BYTES`] bytes in one pass, eight bytes at a time, stopping only at the
//! bytes below `!` (the only ones that can end a line or a token); any other input goes
//! through [`frame`](crate::ascii::frame) (memchr for the newline, whatever the length) and
//! [`Tokens::split`]. Both record tokens through [`Tokens::push`], and a test checks
//! that they agree on every short input.

use crate::ascii::frame;
use crate::ParseError;

/// Tokens memcached's tokenizer splits off a line before leaving the rest in one piece
/// (its `MAX_TOKENS` of 24 counts a terminal token too).
pub(super) const MAX_TOKENS: usize = 23;

/// Tokens whose place is kept, besides the last one counted: no command reads past its
/// seventh (`cas <key> <flags> <exptime> <bytes> <cas> noreply`).
const KEPT_TOKENS: usize = 8;

/// Bytes [`split`] reads word by word looking for the newline before leaving the line to
/// [`frame`](crate::ascii::frame) (memchr), which is faster for long lines.
const SHORT_LINE_BYTES: usize = 256;

/// Frames and tokenizes the first line of `input`: its tokens (holding the line as
/// memcached sees it) and the line's length with its newline.
pub(super) fn split(input: &[u8]) -> Result<(Tokens<'_>, usize), ParseError> {
    if let Some(short) = split_short(input) {
        return Ok(short);
    }
    let (line, line_len) = frame(input)?;
    Ok((Tokens::split(line), line_len))
}

/// [`split`] for a line whose newline lies in the first [`SHORT_LINE_BYTES`] bytes
/// (well inside the 2048-byte rule); `None` for any other input.
///
/// One pass: each 8-byte word gives a mask of its bytes below `!`, and only those are
/// looked at, in order: a space ends a token, the first NUL ends the line's content
/// (the newline is still searched for), the newline ends the line; `\r`, `\t` and other
/// control bytes are token material (a `\r` right before the newline is dropped).
fn split_short(input: &[u8]) -> Option<(Tokens<'_>, usize)> {
    let window = &input[..input.len().min(SHORT_LINE_BYTES)];
    let mut tokens = Tokens::new(input);
    // Start of the token being read; whether tokens are still counted (no NUL seen and
    // fewer than MAX_TOKENS); where a NUL ended the content.
    let mut start = 0;
    let mut counting = true;
    let mut nul = None;
    for word in (0..window.len()).step_by(8) {
        let mut controls = controls(window, word);
        while controls != 0 {
            let at = word + controls.trailing_zeros() as usize;
            controls &= controls - 1;
            match window[at] {
                b' ' => {
                    if counting && start < at {
                        counting = tokens.push(start, at);
                    }
                    start = at + 1;
                }
                b'\n' => {
                    let end = match nul {
                        Some(nul) => nul,
                        None if at > 0 && window[at - 1] == b'\r' => at - 1,
                        None => at,
                    };
                    if counting && start < end {
                        tokens.push(start, end);
                    }
                    tokens.line = &input[..end];
                    return Some((tokens, at + 1));
                }
                0 if nul.is_none() => {
                    if counting && start < at {
                        tokens.push(start, at);
                    }
                    counting = false;
                    nul = Some(at);
                }
                _ => {}
            }
        }
    }
    None
}

/// One bit per byte of `window[at..at + 8]` (fewer at the end) that is below `!`, bit
/// `i` for byte `at + i`.
fn controls(window: &[u8], at: usize) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let word = if let Some(Ok(bytes)) = window.get(at..at + 8).map(<[u8; 8]>::try_from) {
        u64::from_le_bytes(bytes)
    } else if let Some(Ok(bytes)) = window
        .len()
        .checked_sub(8)
        .map(|from| <[u8; 8]>::try_from(&window[from..]))
    {
        // A short last word: the window's last eight bytes shifted down past the ones
        // already seen, padded with 0xff (not a control byte).
        let fresh = window.len() - at;
        (u64::from_le_bytes(bytes) >> (8 * (8 - fresh))) | (u64::MAX << (8 * fresh))
    } else {
        // A window shorter than a word.
        let mut bytes = [0xff; 8];
        for (to, &from) in bytes.iter_mut().zip(&window[at..]) {
            *to = from;
        }
        u64::from_le_bytes(bytes)
    };
    // A byte is below 0x21 when its high bit is clear and its low seven bits plus
    // 0x80 - 0x21 do not reach 0x80 (no byte carries into the next).
    let at_least = (word & LOW7) + ONES * (0x80 - 0x21);
    let below = !(at_least | word) & HIGH;
    // Gather each byte's high bit into bit i (no two partial products overlap).
    (below >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

/// The first [`MAX_TOKENS`] space-separated tokens of a line, as offsets: the first
/// [`KEPT_TOKENS`] and the last one counted, and how many were counted.
pub(super) struct Tokens<'a> {
    line: &'a [u8],
    kept: [(u32, u32); KEPT_TOKENS],
    last: (u32, u32),
    len: usize,
}

impl<'a> Tokens<'a> {
    fn new(line: &'a [u8]) -> Self {
        Tokens {
            line,
            kept: [(0, 0); KEPT_TOKENS],
            last: (0, 0),
            len: 0,
        }
    }

    /// Tokenizes a framed line (memchr for each token's end).
    fn split(line: &'a [u8]) -> Self {
        let mut tokens = Tokens::new(line);
        let mut at = 0;
        loop {
            while at < line.len() && line[at] == b' ' {
                at += 1;
            }
            if at == line.len() {
                break;
            }
            let start = at;
            at = memchr::memchr(b' ', &line[at..]).map_or(line.len(), |n| at + n);
            if !tokens.push(start, at) {
                break;
            }
        }
        tokens
    }

    /// Records the token `line[start..end]`; returns whether more may be counted.
    fn push(&mut self, start: usize, end: usize) -> bool {
        // Lines are at most GET_LINE_MAX_BYTES long.
        let span = (start as u32, end as u32);
        if let Some(kept) = self.kept.get_mut(self.len) {
            *kept = span;
        }
        self.last = span;
        self.len += 1;
        self.len < MAX_TOKENS
    }

    /// The line as memcached sees it (without newline, `\r` and anything from a NUL).
    pub(super) fn line(&self) -> &'a [u8] {
        self.line
    }

    /// How many tokens memcached counts (at most 23), without its terminal token.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    fn span(&self, i: usize) -> (usize, usize) {
        let (start, end) = if i + 1 == self.len {
            self.last
        } else {
            self.kept[i]
        };
        (start as usize, end as usize)
    }

    /// Token `i`: one of the first [`KEPT_TOKENS`], or the last (`i < len()`).
    pub(super) fn get(&self, i: usize) -> &'a [u8] {
        let (start, end) = self.span(i);
        &self.line[start..end]
    }

    /// The last token counted (`len() > 0`).
    pub(super) fn last(&self) -> &'a [u8] {
        self.get(self.len - 1)
    }

    /// Where token `i` starts in the line, or the line's end if there is no such token.
    pub(super) fn start(&self, i: usize) -> usize {
        if i < self.len {
            self.span(i).0
        } else {
            self.line.len()
        }
    }

    /// Whether every token of the line is counted and kept: then `get` reaches all of
    /// them (no rest of the line beyond the 23rd).
    pub(super) fn all_kept(&self) -> bool {
        self.len <= KEPT_TOKENS
    }

    /// memcached's `set_noreply_maybe`: the last counted token is exactly `noreply`.
    pub(super) fn noreply(&self) -> bool {
        self.len > 0 && self.last() == b"noreply"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(tokens: &Tokens<'_>) -> Vec<Vec<u8>> {
        (0..tokens.len())
            .filter(|&i| i < KEPT_TOKENS || i + 1 == tokens.len())
            .map(|i| tokens.get(i).to_vec())
            .collect()
    }

    #[test]
    fn controls_mask() {
        assert_eq!(controls(b"get a\r\n", 0), 0b0110_1000);
        assert_eq!(controls(b"\0\x01\x1f\x20\x21\x7f\x80\xff", 0), 0b1111);
        assert_eq!(controls(b"abcdefgh", 0), 0);
        assert_eq!(controls(b"        ", 0), 0xff);
        // A short last word overlapping the one before it.
        assert_eq!(controls(b"  \0\0\0\0\0\0x \n", 8), 0b110);
        assert_eq!(controls(b"abcdefgh\n", 8), 0b1);
    }

    /// The one-pass reader and frame + Tokens::split agree on every short input.
    #[test]
    fn short_and_long_paths_agree() {
        let alphabet = [b' ', b'\n', b'\r', 0, b'a', b'\t', b'b', 0x80, 0xff];
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut seen_short = 0;
        for round in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 70) as usize + (round % 3) * 100;
            let mut x = state;
            let input: Vec<u8> = (0..len)
                .map(|i| {
                    x = x.rotate_left(5).wrapping_add(i as u64 * 0x9e37_79b9);
                    // Mostly ordinary bytes, so lines of several tokens come up.
                    if x.is_multiple_of(4) {
                        alphabet[(x >> 8) as usize % alphabet.len()]
                    } else {
                        b'k'
                    }
                })
                .collect();
            let slow = frame(&input).map(|(line, len)| (Tokens::split(line), len));
            match (split_short(&input), slow) {
                (Some((fast, fast_len)), Ok((slow, slow_len))) => {
                    seen_short += 1;
                    assert_eq!(fast_len, slow_len, "{input:?}");
                    assert_eq!(fast.line(), slow.line(), "{input:?}");
                    assert_eq!(fast.len(), slow.len(), "{input:?}");
                    assert_eq!(all(&fast), all(&slow), "{input:?}");
                    for i in 0..=slow.len() {
                        assert_eq!(fast.start(i), slow.start(i), "{input:?}");
                    }
                }
                (Some(_), Err(e)) => panic!("{input:?}: short path framed, frame said {e:?}"),
                (None, Ok((_, len))) => assert!(
                    len > SHORT_LINE_BYTES.min(input.len()),
                    "{input:?}: newline at {len} missed"
                ),
                (None, Err(_)) => {}
            }
        }
        assert!(seen_short > 50_000, "{seen_short}");
    }

    #[test]
    fn many_tokens() {
        let line = b" a b c d e f g h i j k l m n o p q r s t u v w x y z\r\n";
        let (tokens, len) = split(line).unwrap();
        assert_eq!(len, line.len());
        assert_eq!(tokens.len(), MAX_TOKENS);
        assert_eq!(tokens.get(0), b"a");
        assert_eq!(tokens.get(7), b"h");
        assert_eq!(tokens.last(), b"w");
        assert_eq!(tokens.start(MAX_TOKENS), tokens.line().len());
        assert!(!tokens.all_kept());
    }
}
