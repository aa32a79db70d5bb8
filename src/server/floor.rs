//! The network floor: a responder with no store that answers every text `get` with one
//! canned 32-byte hit and every storage command with `STORED`.
//!
//! `ringcache --floor` serves it on either engine so a benchmark can show what any
//! server pays the kernel for the same traffic, and how close the real server runs to
//! that. It parses only enough to stay in step (line ends, the `<bytes>` of storage
//! commands); it is not a cache and never a production mode.

use super::output::Output;

/// The canned hit (key `k`, 32-byte value).
const HIT: &[u8] = b"VALUE k 0 32\r\n01234567890123456789012345678901\r\nEND\r\n";

/// Bytes of input kept at most while waiting for a line end.
const MAX_LINE_BYTES: usize = 4096;

/// One floor connection.
#[derive(Debug, Default)]
pub struct FloorConn {
    pending: Vec<u8>,
    out: Output,
    /// Data-block bytes still to skip.
    skip: usize,
    closing: bool,
}

impl FloorConn {
    pub fn new() -> FloorConn {
        FloorConn::default()
    }

    pub fn on_input(&mut self, input: &[u8]) {
        if self.pending.is_empty() {
            let used = self.answer(input);
            self.pending.extend_from_slice(&input[used..]);
        } else {
            self.pending.extend_from_slice(input);
            let pending = std::mem::take(&mut self.pending);
            let used = self.answer(&pending);
            self.pending = pending[used..].to_vec();
        }
        if self.pending.len() > MAX_LINE_BYTES {
            self.closing = true;
        }
    }

    /// Answers every whole command at the front of `input`; returns the bytes used.
    fn answer(&mut self, input: &[u8]) -> usize {
        let mut pos = 0;
        loop {
            if self.skip > 0 {
                let n = self.skip.min(input.len() - pos);
                pos += n;
                self.skip -= n;
                if self.skip > 0 {
                    return pos;
                }
            }
            let Some(nl) = memchr::memchr(b'\n', &input[pos..]) else {
                return pos;
            };
            let line = &input[pos..pos + nl];
            pos += nl + 1;
            if line.starts_with(b"get") {
                self.out.extend(HIT);
            } else if line.starts_with(b"quit") {
                self.closing = true;
                return pos;
            } else if let Some(bytes) = storage_bytes(line) {
                self.skip = bytes + 2;
                self.out.extend(b"STORED\r\n");
            } else {
                self.out.extend(b"ERROR\r\n");
            }
        }
    }

    pub fn output(&mut self) -> &mut Output {
        &mut self.out
    }

    pub fn is_closing(&self) -> bool {
        self.closing
    }
}

/// The `<bytes>` field of a storage command line (`set k flags exptime bytes ...`).
fn storage_bytes(line: &[u8]) -> Option<usize> {
    let mut tokens = line
        .split(|&b| b == b' ' || b == b'\r')
        .filter(|t| !t.is_empty());
    let cmd = tokens.next()?;
    if !matches!(
        cmd,
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas"
    ) {
        return None;
    }
    let bytes = tokens.nth(3)?;
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::IoSlice;

    fn out(c: &mut FloorConn) -> Vec<u8> {
        let mut s = [IoSlice::new(&[]); 4];
        let n = c.output().chunks(&mut s);
        s[..n].iter().flat_map(|s| s.iter().copied()).collect()
    }

    #[test]
    fn answers_gets_and_sets_in_step_across_splits() {
        let input = b"set a 0 0 5\r\nhello\r\nget a\r\nbogus\r\n";
        let mut whole = FloorConn::new();
        whole.on_input(input);
        let expected = [&b"STORED\r\n"[..], HIT, b"ERROR\r\n"].concat();
        assert_eq!(out(&mut whole), expected);
        let mut split = FloorConn::new();
        for b in input.chunks(1) {
            split.on_input(b);
        }
        assert_eq!(out(&mut split), expected);
    }
}
