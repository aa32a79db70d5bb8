//! The three memcached dialects as rc-load speaks them: the request a get or a set is,
//! and what the answer to the oldest request in flight means. The bytes are written
//! and read by `ringcache-client`.
//!
//! - text: `get <key>` / `set <key> 0 0 <len>`; a hit must name the key asked for.
//! - meta: `mg <key> k v` / `ms <key> <len>`; a hit must echo the key (`k` flag).
//! - binary: GET / SET, each with a fresh opaque that the answer must carry back, so a
//!   reordered or lost answer is caught.
//!
//! Knows nothing of sockets. [`check`] never allocates unless the answer is wrong.

use crate::workload::Op;
use ringcache_client::binary::{self, opcode, RESPONSE_MAGIC};
use ringcache_client::meta::{self, Code};
use ringcache_client::text::{self, Response};
use ringcache_client::{DecodeError, Decoded, Dialect};

/// The wire dialect, as `--protocol` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Text,
    Binary,
    Meta,
}

impl Protocol {
    pub fn dialect(self) -> Dialect {
        match self {
            Protocol::Text => Dialect::Text,
            Protocol::Binary => Dialect::Binary,
            Protocol::Meta => Dialect::Meta,
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

/// Appends one request to `out`: a binary request carries `opaque`, a set expires
/// after `exptime` seconds (0: never).
#[inline]
pub fn encode(
    dialect: Dialect,
    out: &mut Vec<u8>,
    op: Op,
    key: &[u8],
    value: &[u8],
    (opaque, exptime): (u32, u32),
) {
    match (dialect, op) {
        (Dialect::Text, Op::Get) => text::get(out, [key]),
        (Dialect::Text, Op::Set) => text::set(out, key, 0, i64::from(exptime), value),
        (Dialect::Meta, Op::Get) => meta::command(out, b"mg", key, b"k v"),
        (Dialect::Meta, Op::Set) if exptime == 0 => meta::set(out, key, value, b""),
        (Dialect::Meta, Op::Set) => meta::set(out, key, value, format!("T{exptime}").as_bytes()),
        (Dialect::Binary, Op::Get) => binary::request(out, opcode::GET, opaque, &[], key, &[]),
        (Dialect::Binary, Op::Set) => {
            let extras = binary::store_extras(0, exptime);
            binary::request(out, opcode::SET, opaque, &extras, key, value);
        }
    }
}

/// Reads the answer to `expect` from the start of `input`. `Incomplete`: more bytes are
/// needed; `Malformed`: the bytes cannot be an answer to the request, the stream is out
/// of step and the connection must be dropped.
#[inline]
pub fn check(
    dialect: Dialect,
    input: &[u8],
    expect: &Expect<'_>,
) -> Result<Decoded<Answer>, DecodeError> {
    match dialect {
        Dialect::Text => check_text(input, expect),
        Dialect::Meta => check_meta(input, expect),
        Dialect::Binary => check_binary(input, expect),
    }
}

/// An answer that is well framed but cannot belong to the request in flight.
fn out_of_step(why: String) -> DecodeError {
    DecodeError::Malformed(why)
}

/// The first answer line of `input`, for a message.
fn first_line(input: &[u8]) -> String {
    let end = memchr::memmem::find(input, b"\r\n").unwrap_or(input.len());
    String::from_utf8_lossy(&input[..end.min(80)]).into_owned()
}

fn check_text(input: &[u8], expect: &Expect<'_>) -> Result<Decoded<Answer>, DecodeError> {
    let Decoded {
        response,
        mut consumed,
    } = text::decode(input)?;
    let answer = match (expect.op, response) {
        (Op::Set, Response::Stored) => Answer::Stored,
        (Op::Get, Response::End) => Answer::Miss,
        (Op::Get, Response::Value { key, .. }) => {
            let end = text::decode(&input[consumed..])?;
            if !matches!(end.response, Response::End) {
                return Err(out_of_step(format!(
                    "a get's VALUE followed by {:?}, not END",
                    end.response
                )));
            }
            consumed += end.consumed;
            if expect.any_key || key == expect.key {
                Answer::Hit
            } else {
                Answer::Wrong(format!(
                    "asked for {}, got VALUE {}",
                    String::from_utf8_lossy(expect.key),
                    String::from_utf8_lossy(key)
                ))
            }
        }
        (op, Response::Value { .. }) => {
            return Err(out_of_step(format!("{op:?} answered by a VALUE")));
        }
        (op, _) => Answer::Wrong(format!("{op:?} answered {}", first_line(input))),
    };
    Ok(Decoded {
        response: answer,
        consumed,
    })
}

fn check_meta(input: &[u8], expect: &Expect<'_>) -> Result<Decoded<Answer>, DecodeError> {
    let Decoded { response, consumed } = meta::decode(input)?;
    let answer = match (expect.op, response) {
        (Op::Set, meta::Response::Status { code: Code::Hd, .. }) => Answer::Stored,
        (Op::Get, meta::Response::Status { code: Code::En, .. }) => Answer::Miss,
        (Op::Get, meta::Response::Value { flags, .. }) => {
            let key = flags.get(b'k');
            if expect.any_key || key == Some(expect.key) {
                Answer::Hit
            } else {
                Answer::Wrong(format!(
                    "asked for {}, got VA with key {}",
                    String::from_utf8_lossy(expect.key),
                    String::from_utf8_lossy(key.unwrap_or(b"(none)"))
                ))
            }
        }
        (op, meta::Response::Status { .. } | meta::Response::Error(_)) => {
            Answer::Wrong(format!("{op:?} answered {}", first_line(input)))
        }
        (op, _) => {
            return Err(out_of_step(format!(
                "{op:?} answered {}",
                first_line(input)
            )));
        }
    };
    Ok(Decoded {
        response: answer,
        consumed,
    })
}

fn check_binary(input: &[u8], expect: &Expect<'_>) -> Result<Decoded<Answer>, DecodeError> {
    if input.first().is_some_and(|&magic| magic != RESPONSE_MAGIC) {
        return Err(out_of_step(format!(
            "binary answer without magic 0x81: {:?}",
            String::from_utf8_lossy(&input[..input.len().min(60)])
        )));
    }
    let Decoded {
        response: packet,
        consumed,
    } = binary::decode(input)?;
    let (opcode, opaque) = (packet.header.opcode, packet.header.opaque);
    let want_opcode = match expect.op {
        Op::Get => opcode::GET,
        Op::Set => opcode::SET,
    };
    if opcode != want_opcode || opaque != expect.opaque {
        return Err(out_of_step(format!(
            "binary answer out of step: opcode 0x{opcode:02x} opaque {opaque}, expected opcode 0x{want_opcode:02x} opaque {}",
            expect.opaque
        )));
    }
    let not_found = binary::Status::KeyNotFound as u16;
    let answer = match (expect.op, packet.status()) {
        (Op::Get, 0) if packet.extras.len() == 4 => Answer::Hit,
        (Op::Get, 0) => Answer::Wrong(format!(
            "GET hit with {} bytes of extras, not 4",
            packet.extras.len()
        )),
        (Op::Get, status) if status == not_found => Answer::Miss,
        (Op::Set, 0) => Answer::Stored,
        (op, status) => Answer::Wrong(format!(
            "{op:?} answered status 0x{status:04x} {}",
            String::from_utf8_lossy(packet.value)
        )),
    };
    Ok(Decoded {
        response: answer,
        consumed,
    })
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

    fn done(consumed: usize, answer: Answer) -> Result<Decoded<Answer>, DecodeError> {
        Ok(Decoded {
            response: answer,
            consumed,
        })
    }

    #[test]
    fn text_requests_are_memcached_commands() {
        let mut out = Vec::new();
        encode(Dialect::Text, &mut out, Op::Set, b"k1", b"abc", (0, 0));
        encode(Dialect::Text, &mut out, Op::Get, b"k1", b"", (0, 0));
        assert_eq!(out, b"set k1 0 0 3\r\nabc\r\nget k1\r\n");
    }

    #[test]
    fn text_answers() {
        let t = Dialect::Text;
        assert_eq!(check(t, b"STORED\r\n", &set(b"k")), done(8, Answer::Stored));
        assert_eq!(check(t, b"END\r\nVALUE", &get(b"k")), done(5, Answer::Miss));
        let hit = b"VALUE k 0 3\r\nabc\r\nEND\r\n";
        assert_eq!(check(t, hit, &get(b"k")), done(hit.len(), Answer::Hit));
        for cut in 0..hit.len() {
            assert_eq!(
                check(t, &hit[..cut], &get(b"k")),
                Err(DecodeError::Incomplete),
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
            Ok(Decoded {
                consumed: 23,
                response: Answer::Wrong(_)
            })
        ));
        assert!(matches!(
            check(t, b"SERVER_ERROR out of memory\r\n", &set(b"k")),
            Ok(Decoded {
                consumed: 28,
                response: Answer::Wrong(_)
            })
        ));
        assert!(matches!(
            check(t, b"VALUE k 0 3\r\nabcX\r\nEND\r\n", &get(b"k")),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            check(t, b"HELLO\r\n", &get(b"k")),
            Err(DecodeError::Malformed(_))
        ));
        assert!(matches!(
            check(t, b"END\n", &get(b"k")),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn meta_answers() {
        let m = Dialect::Meta;
        let mut out = Vec::new();
        encode(m, &mut out, Op::Set, b"k1", b"abc", (0, 0));
        encode(m, &mut out, Op::Get, b"k1", b"", (0, 0));
        assert_eq!(out, b"ms k1 3\r\nabc\r\nmg k1 k v\r\n");
        assert_eq!(check(m, b"HD\r\n", &set(b"k1")), done(4, Answer::Stored));
        assert_eq!(check(m, b"EN\r\n", &get(b"k1")), done(4, Answer::Miss));
        let hit = b"VA 3 kk1\r\nabc\r\n";
        assert_eq!(check(m, hit, &get(b"k1")), done(hit.len(), Answer::Hit));
        assert_eq!(
            check(m, &hit[..12], &get(b"k1")),
            Err(DecodeError::Incomplete)
        );
        assert!(matches!(
            check(m, hit, &get(b"k2")),
            Ok(Decoded {
                response: Answer::Wrong(_),
                ..
            })
        ));
        assert!(matches!(
            check(m, b"NS\r\n", &set(b"k1")),
            Ok(Decoded {
                response: Answer::Wrong(_),
                ..
            })
        ));
    }

    fn bin_answer(opcode: u8, status: u16, extras: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
        let mut a = vec![RESPONSE_MAGIC, opcode, 0, 0, extras.len() as u8, 0];
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
        let b = Dialect::Binary;
        let mut out = Vec::new();
        encode(b, &mut out, Op::Set, b"k1", b"abc", (9, 0));
        assert_eq!(out.len(), 24 + 8 + 2 + 3);
        assert_eq!(&out[..2], &[0x80, 0x01]);
        assert_eq!(&out[2..4], &2u16.to_be_bytes());
        assert_eq!(out[4], 8);
        assert_eq!(&out[8..12], &13u32.to_be_bytes());
        assert_eq!(&out[12..16], &9u32.to_be_bytes());

        let hit = bin_answer(opcode::GET, 0, &[0; 4], b"abc", 7);
        assert_eq!(check(b, &hit, &get(b"k")), done(hit.len(), Answer::Hit));
        assert_eq!(
            check(b, &hit[..hit.len() - 1], &get(b"k")),
            Err(DecodeError::Incomplete)
        );
        let miss = bin_answer(opcode::GET, 1, &[], b"Not found", 7);
        assert_eq!(check(b, &miss, &get(b"k")), done(miss.len(), Answer::Miss));
        let stored = bin_answer(opcode::SET, 0, &[], b"", 7);
        assert_eq!(check(b, &stored, &set(b"k")), done(24, Answer::Stored));
        let late = bin_answer(opcode::SET, 0, &[], b"", 6);
        assert!(matches!(
            check(b, &late, &set(b"k")),
            Err(DecodeError::Malformed(_))
        ));
        let too_big = bin_answer(opcode::SET, 0x0003, &[], b"Too large.", 7);
        assert!(matches!(
            check(b, &too_big, &set(b"k")),
            Ok(Decoded {
                response: Answer::Wrong(_),
                ..
            })
        ));
    }
}
