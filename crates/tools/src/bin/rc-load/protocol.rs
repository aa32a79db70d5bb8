//! The three memcached dialects as rc-load speaks them: encode a get or a set, and
//! check the answer to the oldest request in flight.
//!
//! - text: `get <key>` / `set <key> 0 0 <len>`; a hit must name the key asked for.
//! - meta: `mg <key> k v` / `ms <key> <len>`; a hit must echo the key (`k` flag).
//! - binary: GET / SET (magic 0x80), each with a fresh opaque that the answer must
//!   carry back, so a reordered or lost answer is caught.
//!
//! Knows nothing of sockets. [`check`] never allocates unless the answer is wrong.

use crate::workload::Op;

/// The wire dialect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Text,
    Binary,
    Meta,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Text => "text",
            Protocol::Binary => "binary",
            Protocol::Meta => "meta",
        }
    }
}

/// What a well-formed answer said.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    Hit,
    Miss,
    Stored,
    /// A well-framed answer that is not what the request should get (`SERVER_ERROR
    /// out of memory`, `NOT_STORED`, a hit for another key, a binary error status):
    /// counted as a protocol error; the stream is still in step.
    Wrong(String),
}

/// The outcome of reading the oldest answer.
#[derive(Debug, PartialEq, Eq)]
pub enum Checked {
    /// More bytes are needed.
    Incomplete,
    /// One answer, `consumed` bytes long.
    Done { consumed: usize, answer: Answer },
    /// The bytes cannot be an answer to the request: the stream is out of step and the
    /// connection must be dropped.
    Broken(String),
}

/// The request an answer is checked against.
#[derive(Clone, Copy, Debug)]
pub struct Expect<'a> {
    pub op: Op,
    pub key: &'a [u8],
    pub opaque: u32,
    /// Accept a hit for any key (a no-store responder such as `ringcache --floor`
    /// answers every get with the same canned item).
    pub any_key: bool,
}

const BIN_REQUEST: u8 = 0x80;
const BIN_RESPONSE: u8 = 0x81;
const BIN_GET: u8 = 0x00;
const BIN_SET: u8 = 0x01;
const BIN_HEADER: usize = 24;
const BIN_KEY_NOT_FOUND: u16 = 0x0001;

/// Longest answer line accepted before the stream is declared broken.
const LINE_MAX: usize = 4096;

/// Appends one request to `out`.
pub fn encode(proto: Protocol, out: &mut Vec<u8>, op: Op, key: &[u8], value: &[u8], opaque: u32) {
    let mut num = itoa::Buffer::new();
    match (proto, op) {
        (Protocol::Text, Op::Get) => {
            out.extend_from_slice(b"get ");
            out.extend_from_slice(key);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Text, Op::Set) => {
            out.extend_from_slice(b"set ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" 0 0 ");
            out.extend_from_slice(num.format(value.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Meta, Op::Get) => {
            out.extend_from_slice(b"mg ");
            out.extend_from_slice(key);
            out.extend_from_slice(b" k v\r\n");
        }
        (Protocol::Meta, Op::Set) => {
            out.extend_from_slice(b"ms ");
            out.extend_from_slice(key);
            out.push(b' ');
            out.extend_from_slice(num.format(value.len()).as_bytes());
            out.extend_from_slice(b"\r\n");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        (Protocol::Binary, Op::Get) => {
            binary_header(out, BIN_GET, key.len(), 0, key.len(), opaque);
            out.extend_from_slice(key);
        }
        (Protocol::Binary, Op::Set) => {
            binary_header(
                out,
                BIN_SET,
                key.len(),
                8,
                8 + key.len() + value.len(),
                opaque,
            );
            out.extend_from_slice(&[0; 8]); // flags 0, exptime 0
            out.extend_from_slice(key);
            out.extend_from_slice(value);
        }
    }
}

fn binary_header(
    out: &mut Vec<u8>,
    opcode: u8,
    key_len: usize,
    extras_len: u8,
    body_len: usize,
    opaque: u32,
) {
    out.extend_from_slice(&[BIN_REQUEST, opcode]);
    out.extend_from_slice(&(key_len as u16).to_be_bytes());
    out.extend_from_slice(&[extras_len, 0, 0, 0]); // extras, data type, vbucket
    out.extend_from_slice(&(body_len as u32).to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&[0; 8]); // cas
}

/// Reads the answer to `expect` from the start of `input`.
pub fn check(proto: Protocol, input: &[u8], expect: &Expect<'_>) -> Checked {
    match proto {
        Protocol::Text => check_text(input, expect),
        Protocol::Meta => check_meta(input, expect),
        Protocol::Binary => check_binary(input, expect),
    }
}

/// The first line of `input` without its `\r\n`, and the length with it.
fn line(input: &[u8]) -> Result<Option<(&[u8], usize)>, Checked> {
    match memchr::memchr(b'\n', input) {
        Some(nl) if nl > 0 && input[nl - 1] == b'\r' => Ok(Some((&input[..nl - 1], nl + 1))),
        Some(_) => Err(broken("answer line not ended by \\r\\n", input)),
        None if input.len() > LINE_MAX => Err(broken("answer line too long", input)),
        None => Ok(None),
    }
}

fn broken(why: &str, input: &[u8]) -> Checked {
    let shown = &input[..input.len().min(60)];
    Checked::Broken(format!("{why}: {:?}", String::from_utf8_lossy(shown)))
}

fn wrong(consumed: usize, why: String) -> Checked {
    Checked::Done {
        consumed,
        answer: Answer::Wrong(why),
    }
}

/// memcached's error lines, valid answers to any request in text and meta.
fn is_error_line(line: &[u8]) -> bool {
    line == b"ERROR" || line.starts_with(b"CLIENT_ERROR") || line.starts_with(b"SERVER_ERROR")
}

fn parse_len(token: Option<&[u8]>) -> Option<usize> {
    let token = token?;
    if token.is_empty() || token.len() > 10 || !token.iter().all(u8::is_ascii_digit) {
        return None;
    }
    token.iter().try_fold(0usize, |n, &d| {
        n.checked_mul(10)?.checked_add(usize::from(d - b'0'))
    })
}

/// Checks that `data_len` bytes and `\r\n` follow a header line of `head` bytes, then
/// `trailer`; returns the total length.
fn data_block(
    input: &[u8],
    head: usize,
    data_len: usize,
    trailer: &[u8],
) -> Result<usize, Checked> {
    let data_end = head + data_len;
    let total = data_end + 2 + trailer.len();
    if input.len() < total {
        return Err(Checked::Incomplete);
    }
    if &input[data_end..data_end + 2] != b"\r\n" || &input[data_end + 2..total] != trailer {
        return Err(broken(
            "value block not followed by \\r\\n",
            &input[data_end..],
        ));
    }
    Ok(total)
}

fn check_text(input: &[u8], expect: &Expect<'_>) -> Checked {
    let (line, head) = match line(input) {
        Ok(Some(l)) => l,
        Ok(None) => return Checked::Incomplete,
        Err(c) => return c,
    };
    let as_text = || String::from_utf8_lossy(line).into_owned();
    match expect.op {
        Op::Set if line == b"STORED" => Checked::Done {
            consumed: head,
            answer: Answer::Stored,
        },
        Op::Get if line == b"END" => Checked::Done {
            consumed: head,
            answer: Answer::Miss,
        },
        Op::Get if line.starts_with(b"VALUE ") => {
            // VALUE <key> <flags> <bytes> [<cas>]
            let mut fields = line[6..].split(|&b| b == b' ');
            let key = fields.next().unwrap_or_default();
            let flags = parse_len(fields.next());
            let Some(len) = parse_len(fields.next()).filter(|_| flags.is_some()) else {
                return broken("malformed VALUE line", input);
            };
            match data_block(input, head, len, b"END\r\n") {
                Ok(total) if expect.any_key || key == expect.key => Checked::Done {
                    consumed: total,
                    answer: Answer::Hit,
                },
                Ok(total) => wrong(
                    total,
                    format!(
                        "asked for {}, got VALUE {}",
                        String::from_utf8_lossy(expect.key),
                        String::from_utf8_lossy(key)
                    ),
                ),
                Err(c) => c,
            }
        }
        _ if is_error_line(line)
            || matches!(
                line,
                b"NOT_STORED" | b"EXISTS" | b"NOT_FOUND" | b"STORED" | b"END"
            ) =>
        {
            wrong(head, format!("{:?} answered {}", expect.op, as_text()))
        }
        _ => broken("unexpected answer line", input),
    }
}

fn check_meta(input: &[u8], expect: &Expect<'_>) -> Checked {
    let (line, head) = match line(input) {
        Ok(Some(l)) => l,
        Ok(None) => return Checked::Incomplete,
        Err(c) => return c,
    };
    match expect.op {
        Op::Set if line == b"HD" => Checked::Done {
            consumed: head,
            answer: Answer::Stored,
        },
        Op::Get if line == b"EN" => Checked::Done {
            consumed: head,
            answer: Answer::Miss,
        },
        Op::Get if line.starts_with(b"VA ") => {
            // VA <len> <flags>*, with k<key> among the flags
            let mut tokens = line[3..].split(|&b| b == b' ');
            let Some(len) = parse_len(tokens.next()) else {
                return broken("malformed VA line", input);
            };
            let key = tokens.find(|t| t.first() == Some(&b'k')).map(|t| &t[1..]);
            match data_block(input, head, len, b"") {
                Ok(total) if expect.any_key || key == Some(expect.key) => Checked::Done {
                    consumed: total,
                    answer: Answer::Hit,
                },
                Ok(total) => wrong(
                    total,
                    format!(
                        "asked for {}, got VA with key {}",
                        String::from_utf8_lossy(expect.key),
                        String::from_utf8_lossy(key.unwrap_or(b"(none)"))
                    ),
                ),
                Err(c) => c,
            }
        }
        _ if is_error_line(line)
            || line.starts_with(b"NS")
            || line.starts_with(b"EX")
            || line.starts_with(b"NF")
            || line.starts_with(b"HD")
            || line.starts_with(b"EN") =>
        {
            wrong(
                head,
                format!("{:?} answered {}", expect.op, String::from_utf8_lossy(line)),
            )
        }
        _ => broken("unexpected answer line", input),
    }
}

fn check_binary(input: &[u8], expect: &Expect<'_>) -> Checked {
    if input.is_empty() {
        return Checked::Incomplete;
    }
    if input[0] != BIN_RESPONSE {
        return broken("binary answer without magic 0x81", input);
    }
    if input.len() < BIN_HEADER {
        return Checked::Incomplete;
    }
    let be16 = |at: usize| u16::from_be_bytes([input[at], input[at + 1]]);
    let be32 =
        |at: usize| u32::from_be_bytes([input[at], input[at + 1], input[at + 2], input[at + 3]]);
    let (opcode, key_len, extras_len) = (input[1], usize::from(be16(2)), usize::from(input[4]));
    let (status, body_len, opaque) = (be16(6), be32(8) as usize, be32(12));
    let want_opcode = match expect.op {
        Op::Get => BIN_GET,
        Op::Set => BIN_SET,
    };
    if opcode != want_opcode || opaque != expect.opaque {
        return Checked::Broken(format!(
            "binary answer out of step: opcode 0x{opcode:02x} opaque {opaque}, expected opcode 0x{want_opcode:02x} opaque {}",
            expect.opaque
        ));
    }
    if key_len + extras_len > body_len {
        return Checked::Broken(format!(
            "binary answer body {body_len} shorter than key {key_len} + extras {extras_len}"
        ));
    }
    let total = BIN_HEADER + body_len;
    if input.len() < total {
        return Checked::Incomplete;
    }
    let answer = match (expect.op, status) {
        (Op::Get, 0) if extras_len == 4 => Answer::Hit,
        (Op::Get, 0) => Answer::Wrong(format!("GET hit with {extras_len} bytes of extras, not 4")),
        (Op::Get, BIN_KEY_NOT_FOUND) => Answer::Miss,
        (Op::Set, 0) => Answer::Stored,
        (op, status) => {
            let text = &input[BIN_HEADER + extras_len + key_len..total];
            Answer::Wrong(format!(
                "{op:?} answered status 0x{status:04x} {}",
                String::from_utf8_lossy(text)
            ))
        }
    };
    Checked::Done {
        consumed: total,
        answer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(key: &[u8]) -> Expect<'_> {
        Expect {
            op: Op::Get,
            key,
            opaque: 7,
            any_key: false,
        }
    }

    fn set(key: &[u8]) -> Expect<'_> {
        Expect {
            op: Op::Set,
            key,
            opaque: 7,
            any_key: false,
        }
    }

    fn done(consumed: usize, answer: Answer) -> Checked {
        Checked::Done { consumed, answer }
    }

    #[test]
    fn text_requests_are_memcached_commands() {
        let mut out = Vec::new();
        encode(Protocol::Text, &mut out, Op::Set, b"k1", b"abc", 0);
        encode(Protocol::Text, &mut out, Op::Get, b"k1", b"", 0);
        assert_eq!(out, b"set k1 0 0 3\r\nabc\r\nget k1\r\n");
    }

    #[test]
    fn text_answers() {
        let t = Protocol::Text;
        assert_eq!(check(t, b"STORED\r\n", &set(b"k")), done(8, Answer::Stored));
        assert_eq!(check(t, b"END\r\nVALUE", &get(b"k")), done(5, Answer::Miss));
        let hit = b"VALUE k 0 3\r\nabc\r\nEND\r\n";
        assert_eq!(check(t, hit, &get(b"k")), done(hit.len(), Answer::Hit));
        for cut in 0..hit.len() {
            assert_eq!(
                check(t, &hit[..cut], &get(b"k")),
                Checked::Incomplete,
                "{cut}"
            );
        }
        let any = Expect {
            any_key: true,
            ..get(b"other")
        };
        assert_eq!(check(t, hit, &any), done(hit.len(), Answer::Hit));
        assert!(matches!(
            check(t, hit, &get(b"other")),
            Checked::Done {
                consumed: 23,
                answer: Answer::Wrong(_)
            }
        ));
        assert!(matches!(
            check(t, b"SERVER_ERROR out of memory\r\n", &set(b"k")),
            Checked::Done {
                consumed: 28,
                answer: Answer::Wrong(_)
            }
        ));
        assert!(matches!(
            check(t, b"VALUE k 0 3\r\nabcX\r\nEND\r\n", &get(b"k")),
            Checked::Broken(_)
        ));
        assert!(matches!(
            check(t, b"HELLO\r\n", &get(b"k")),
            Checked::Broken(_)
        ));
        assert!(matches!(check(t, b"END\n", &get(b"k")), Checked::Broken(_)));
    }

    #[test]
    fn meta_answers() {
        let m = Protocol::Meta;
        let mut out = Vec::new();
        encode(m, &mut out, Op::Set, b"k1", b"abc", 0);
        encode(m, &mut out, Op::Get, b"k1", b"", 0);
        assert_eq!(out, b"ms k1 3\r\nabc\r\nmg k1 k v\r\n");
        assert_eq!(check(m, b"HD\r\n", &set(b"k1")), done(4, Answer::Stored));
        assert_eq!(check(m, b"EN\r\n", &get(b"k1")), done(4, Answer::Miss));
        let hit = b"VA 3 kk1\r\nabc\r\n";
        assert_eq!(check(m, hit, &get(b"k1")), done(hit.len(), Answer::Hit));
        assert_eq!(check(m, &hit[..12], &get(b"k1")), Checked::Incomplete);
        assert!(matches!(
            check(m, hit, &get(b"k2")),
            Checked::Done {
                answer: Answer::Wrong(_),
                ..
            }
        ));
        assert!(matches!(
            check(m, b"NS\r\n", &set(b"k1")),
            Checked::Done {
                answer: Answer::Wrong(_),
                ..
            }
        ));
    }

    fn bin_answer(opcode: u8, status: u16, extras: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
        let mut a = vec![BIN_RESPONSE, opcode, 0, 0, extras.len() as u8, 0];
        a.extend_from_slice(&status.to_be_bytes());
        a.extend_from_slice(&((extras.len() + value.len()) as u32).to_be_bytes());
        a.extend_from_slice(&opaque.to_be_bytes());
        a.extend_from_slice(&[0; 8]);
        a.extend_from_slice(extras);
        a.extend_from_slice(value);
        a
    }

    #[test]
    fn binary_requests_and_answers() {
        let b = Protocol::Binary;
        let mut out = Vec::new();
        encode(b, &mut out, Op::Set, b"k1", b"abc", 9);
        assert_eq!(out.len(), 24 + 8 + 2 + 3);
        assert_eq!(&out[..2], &[0x80, 0x01]);
        assert_eq!(&out[2..4], &2u16.to_be_bytes());
        assert_eq!(out[4], 8);
        assert_eq!(&out[8..12], &13u32.to_be_bytes());
        assert_eq!(&out[12..16], &9u32.to_be_bytes());

        let hit = bin_answer(BIN_GET, 0, &[0; 4], b"abc", 7);
        assert_eq!(check(b, &hit, &get(b"k")), done(hit.len(), Answer::Hit));
        assert_eq!(
            check(b, &hit[..hit.len() - 1], &get(b"k")),
            Checked::Incomplete
        );
        let miss = bin_answer(BIN_GET, 1, &[], b"Not found", 7);
        assert_eq!(check(b, &miss, &get(b"k")), done(miss.len(), Answer::Miss));
        let stored = bin_answer(BIN_SET, 0, &[], b"", 7);
        assert_eq!(check(b, &stored, &set(b"k")), done(24, Answer::Stored));
        let late = bin_answer(BIN_SET, 0, &[], b"", 6);
        assert!(matches!(check(b, &late, &set(b"k")), Checked::Broken(_)));
        let too_big = bin_answer(BIN_SET, 0x0003, &[], b"Too large.", 7);
        assert!(matches!(
            check(b, &too_big, &set(b"k")),
            Checked::Done {
                answer: Answer::Wrong(_),
                ..
            }
        ));
    }
}
