//! How many bytes the first request of a buffer will take once it has all arrived, as
//! far as its header says: a hint for sizing the buffer that collects a large request,
//! never a parse.
//!
//! Owns [`request_bytes`]. Knows the framing of a text storage command (`set`, `add`,
//! `replace`, `append`, `prepend`, `cas`: the line, then `<bytes>` of data and `\r\n`),
//! of a meta set (`ms <key> <datalen> …`, the same) and of a binary packet (the 24-byte
//! header and its `body_len`); nothing of what the request means. The parsers alone
//! decide whether a request is valid: a wrong hint costs an allocation, not an answer.

use crate::ascii::{frame, number::safe_strtoul};
use crate::binary::{Header, HEADER_BYTES, REQUEST_MAGIC};

/// The full length of the first request in `input` (text or meta when `binary` is false,
/// a binary packet when true), if its header is all there and names a data block;
/// `None` otherwise (an incomplete line, a command without data, a malformed length).
pub fn request_bytes(input: &[u8], binary: bool) -> Option<usize> {
    if binary {
        return binary_bytes(input);
    }
    let (line, line_bytes) = frame(input).ok()?;
    let mut tokens = line.split(|&b| b == b' ').filter(|t| !t.is_empty());
    let data_token = match tokens.next()? {
        b"set" | b"add" | b"replace" | b"append" | b"prepend" | b"cas" => 3,
        b"ms" => 1,
        _ => return None,
    };
    let data = usize::try_from(safe_strtoul(tokens.nth(data_token)?)?).ok()?;
    line_bytes.checked_add(data)?.checked_add(2)
}

fn binary_bytes(input: &[u8]) -> Option<usize> {
    if input.len() < HEADER_BYTES || input[0] != REQUEST_MAGIC {
        return None;
    }
    let body = usize::try_from(Header::read(input).body_len).ok()?;
    HEADER_BYTES.checked_add(body)
}

#[cfg(test)]
mod tests {
    use super::request_bytes;

    #[test]
    fn text_storage_commands_count_line_data_and_crlf() {
        let cases: [(&[u8], usize); 7] = [
            (b"set k 0 0 5\r\nab", 13 + 5 + 2),
            (b"add k 1 2 10 noreply\r\n", 22 + 12),
            (b"replace  k  0 0  3\n", 19 + 5),
            (b"append k 0 0 65536\r\n", 20 + 65538),
            (b"prepend k 0 0 0\r\n", 17 + 2),
            (b"cas k 0 0 4 99\r\n", 16 + 6),
            (b"ms k 7 T0 F5\r\n", 14 + 9),
        ];
        for (input, want) in cases {
            assert_eq!(
                request_bytes(input, false),
                Some(want),
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn no_hint_without_a_whole_line_or_a_data_block() {
        for input in [
            &b"set k 0 0 5"[..],
            b"get k\r\n",
            b"mg k v\r\n",
            b"set k 0 0\r\n",
            b"set k 0 0 x\r\n",
            b"set k 0 0 -1\r\n",
            b"ms k\r\n",
            b"\r\n",
            b"",
        ] {
            assert_eq!(
                request_bytes(input, false),
                None,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn binary_packets_count_header_and_body() {
        let mut packet = [0u8; 24];
        packet[0] = 0x80;
        packet[8..12].copy_from_slice(&70_000u32.to_be_bytes());
        assert_eq!(request_bytes(&packet, true), Some(24 + 70_000));
        assert_eq!(request_bytes(&packet[..23], true), None);
        packet[0] = 0x81;
        assert_eq!(request_bytes(&packet, true), None);
        packet[0] = 0x80;
        packet[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(request_bytes(&packet, true), Some(24 + u32::MAX as usize));
    }
}
