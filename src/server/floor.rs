//! The network floor: a responder with no store that answers every key of a text `get`
//! with a canned hit and every storage command with `STORED`.
//!
//! `ringcache --floor` serves it on either engine so a benchmark can show what any
//! server pays the kernel for the same traffic, and how close the real server runs to
//! that. It parses only enough to stay in step (line ends, the `<bytes>` of storage
//! commands); it is not a cache and never a production mode.
//!
//! The hit names each key the get asked for, and its value is as long as the last value
//! the connection stored (32 bytes before its first storage command), so a load of 1 KiB
//! values gets 1 KiB answers: the floor sends exactly the bytes a real server sends for
//! the same hits, copied into the output as a real server copies them out of its store.
//! (Same bytes matter beyond their count: on this project's benchmark machine the
//! kernel's copy of a send into socket memory cost 0.5 % to 24 % of the CPU depending on
//! nothing but the answers' lengths, so a floor answering with another key length
//! measured another kernel cost.)

use super::output::Output;

/// Value bytes of the hit before the connection stores anything.
const FIRST_VALUE_BYTES: usize = 32;

/// What follows the key in the canned hit for a value of `value_bytes` (flags 0): the
/// rest of the `VALUE` line, the value and its line end.
fn hit(value_bytes: usize) -> Vec<u8> {
    let mut hit = format!(" 0 {value_bytes}\r\n").into_bytes();
    hit.extend((0..value_bytes).map(|i| b'0' + (i % 10) as u8));
    hit.extend_from_slice(b"\r\n");
    hit
}

/// Bytes of input kept at most while waiting for a line end.
const MAX_LINE_BYTES: usize = 4096;

/// The longest value the hit takes the length of (memcached's default `-I`).
const MAX_HIT_VALUE_BYTES: usize = 1 << 20;

/// One floor connection.
#[derive(Debug)]
pub struct FloorConn {
    /// The answer to a get after `VALUE <key>`: a value as long as the last one stored.
    hit: Vec<u8>,
    hit_value_bytes: usize,
    pending: Vec<u8>,
    out: Output,
    /// Data-block bytes still to skip.
    skip: usize,
    closing: bool,
}

impl Default for FloorConn {
    fn default() -> FloorConn {
        FloorConn::new()
    }
}

impl FloorConn {
    pub fn new() -> FloorConn {
        FloorConn {
            hit: hit(FIRST_VALUE_BYTES),
            hit_value_bytes: FIRST_VALUE_BYTES,
            pending: Vec::new(),
            out: Output::default(),
            skip: 0,
            closing: false,
        }
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
            if let Some(keys) = line.strip_prefix(b"get ") {
                let keys = keys.strip_suffix(b"\r").unwrap_or(keys);
                for key in keys.split(|&b| b == b' ').filter(|k| !k.is_empty()) {
                    self.out.extend(b"VALUE ");
                    self.out.extend(key);
                    self.out.extend(&self.hit);
                }
                self.out.extend(b"END\r\n");
            } else if line.starts_with(b"quit") {
                self.closing = true;
                return pos;
            } else if let Some(bytes) = storage_bytes(line) {
                self.skip = bytes.saturating_add(2);
                if bytes != self.hit_value_bytes && bytes <= MAX_HIT_VALUE_BYTES {
                    self.hit = hit(bytes);
                    self.hit_value_bytes = bytes;
                }
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

    /// A real server's answer to `get <key>` when it holds `value_bytes` bytes.
    fn answer(key: &str, value_bytes: usize) -> Vec<u8> {
        let value: Vec<u8> = (0..value_bytes).map(|i| b'0' + (i % 10) as u8).collect();
        [
            format!("VALUE {key} 0 {value_bytes}\r\n").as_bytes(),
            &value,
            b"\r\nEND\r\n",
        ]
        .concat()
    }

    #[test]
    fn answers_gets_and_sets_in_step_across_splits() {
        let input = b"set a 0 0 5\r\nhello\r\nget a\r\nbogus\r\n";
        let mut whole = FloorConn::new();
        whole.on_input(input);
        let expected = [&b"STORED\r\n"[..], &answer("a", 5), b"ERROR\r\n"].concat();
        assert_eq!(out(&mut whole), expected);
        let mut split = FloorConn::new();
        for b in input.chunks(1) {
            split.on_input(b);
        }
        assert_eq!(out(&mut split), expected);
    }

    #[test]
    fn the_hit_names_the_keys_asked_for_with_the_last_value_length_stored() {
        let mut c = FloorConn::new();
        c.on_input(b"get key:0000042\r\n");
        assert_eq!(out(&mut c), answer("key:0000042", 32));
        let mut c = FloorConn::new();
        c.on_input(b"get a  bb\n");
        let both = out(&mut c);
        let one = answer("a", 32);
        let first = &one[..one.len() - b"END\r\n".len()];
        assert_eq!(both, [first, &answer("bb", 32)].concat());
        let mut c = FloorConn::new();
        let value = vec![b'x'; 1024];
        let input = [&b"set a 0 0 1024\r\n"[..], &value, b"\r\nget a\r\n"].concat();
        c.on_input(&input);
        assert_eq!(
            out(&mut c),
            [&b"STORED\r\n"[..], &answer("a", 1024)].concat()
        );
        // A length past the largest item leaves the hit alone, and stays in step.
        let mut c = FloorConn::new();
        c.on_input(b"set a 0 0 99999999999\r\n");
        assert_eq!(out(&mut c), b"STORED\r\n");
        assert_eq!(c.hit_value_bytes, 32);
    }
}
