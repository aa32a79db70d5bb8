//! The meta commands from the client's side: `mg`, `ms`, `md`, `ma`, `mn` requests,
//! and their answers (`VA`, `HD`, `EN`, `NF`, `NS`, `EX`, `MN`, `ME`, error lines).
//!
//! Request flags are passed as written on the wire (`b"k v"`, `b"F5 T60"`), answer
//! flags come back as the tokens the server wrote ([`Flags`]): the meta dialect's flags
//! are open-ended, and the caller knows which it asked for.

use crate::ascii::{self, put_data, put_line};
use crate::{malformed, DecodeError, Decoded};

/// Appends `<verb> <key>[ <flags>]\r\n`: `mg`, `md`, `ma` (any command without data).
#[inline]
pub fn command(out: &mut Vec<u8>, verb: &[u8], key: &[u8], flags: &[u8]) {
    if flags.is_empty() {
        put_line(out, &[verb, key]);
    } else {
        put_line(out, &[verb, key, flags]);
    }
}

/// Appends `ms <key> <len>[ <flags>]\r\n<value>\r\n`.
#[inline]
pub fn set(out: &mut Vec<u8>, key: &[u8], value: &[u8], flags: &[u8]) {
    let mut len = itoa::Buffer::new();
    let len = len.format(value.len()).as_bytes();
    if flags.is_empty() {
        put_line(out, &[b"ms", key, len]);
    } else {
        put_line(out, &[b"ms", key, len, flags]);
    }
    put_data(out, value);
}

/// Appends `mn\r\n`, whose `MN` answer marks the end of what came before.
pub fn noop(out: &mut Vec<u8>) {
    put_line(out, &[b"mn"]);
}

/// The code of an answer without data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// `HD`: done (stored, deleted, touched, or a hit asked without its value).
    Hd,
    /// `EN`: a get's miss.
    En,
    /// `NF`: not found (delete, arithmetic, or a set in a mode that needs the item).
    Nf,
    /// `NS`: not stored.
    Ns,
    /// `EX`: exists (a CAS mismatch).
    Ex,
}

/// The flags an answer returned: the space-separated tokens after its code (and size),
/// each a flag letter and its value, e.g. `kfoo`, `f5`, `c123`, `W`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flags<'a>(&'a [u8]);

impl<'a> Flags<'a> {
    /// The tokens as written, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.0.split(|&b| b == b' ').filter(|t| !t.is_empty())
    }

    /// What follows `letter` in the first token that starts with it (`get(b'k')` of
    /// `kfoo f5` is `foo`).
    #[inline]
    pub fn get(&self, letter: u8) -> Option<&'a [u8]> {
        self.iter().find(|t| t[0] == letter).map(|t| &t[1..])
    }

    /// The tokens as one slice, as the server wrote them.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.0
    }
}

/// One meta answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Response<'a> {
    /// `VA <len> <flags>*` and its data block.
    Value { flags: Flags<'a>, data: &'a [u8] },
    /// `HD`, `EN`, `NF`, `NS` or `EX` and its flags.
    Status { code: Code, flags: Flags<'a> },
    /// `MN`, the answer to `mn`.
    NoOp,
    /// `ME <key> <name>=<value>*`: what follows `ME `.
    Debug(&'a [u8]),
    /// `ERROR`, `CLIENT_ERROR …` or `SERVER_ERROR …`: the whole line.
    Error(&'a [u8]),
}

/// Decodes the answer at the start of `input`. A line that is none of the meta answers
/// or memcached's error lines is malformed.
#[inline]
pub fn decode(input: &[u8]) -> Result<Decoded<Response<'_>>, DecodeError> {
    let (line, head) = ascii::line(input)?;
    // Meta codes are two letters; the error lines' words are longer.
    let (word, rest) = match line {
        [_, _] => (line, &b""[..]),
        [_, _, b' ', rest @ ..] => (&line[..2], rest),
        _ => {
            let (word, rest) = ascii::split_space(line);
            (word, rest.unwrap_or_default())
        }
    };
    let status = |code| Response::Status {
        code,
        flags: Flags(rest),
    };
    let response = match word {
        b"VA" => {
            let (len, flags) = ascii::split_space(rest);
            let flags = flags.unwrap_or_default();
            let len = ascii::number(len).ok_or_else(|| malformed("malformed VA line", input))?;
            let (data, consumed) = ascii::data_block(input, head, len)?;
            return Ok(Decoded {
                response: Response::Value {
                    flags: Flags(flags),
                    data,
                },
                consumed,
            });
        }
        b"HD" => status(Code::Hd),
        b"EN" => status(Code::En),
        b"NF" => status(Code::Nf),
        b"NS" => status(Code::Ns),
        b"EX" => status(Code::Ex),
        b"MN" if rest.is_empty() => Response::NoOp,
        b"ME" => Response::Debug(rest),
        b"ERROR" | b"CLIENT_ERROR" | b"SERVER_ERROR" => Response::Error(line),
        _ => return Err(malformed("unknown meta answer line", input)),
    };
    Ok(Decoded {
        response,
        consumed: head,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::assert_malformed;

    fn one(input: &[u8]) -> Result<(Response<'_>, usize), DecodeError> {
        decode(input).map(|d| (d.response, d.consumed))
    }

    #[test]
    fn requests_are_meta_commands() {
        let mut out = Vec::new();
        set(&mut out, b"k1", b"abc", b"");
        set(&mut out, b"k1", b"abc", b"F5 T60");
        command(&mut out, b"mg", b"k1", b"k v");
        command(&mut out, b"md", b"k1", b"");
        noop(&mut out);
        assert_eq!(
            out,
            b"ms k1 3\r\nabc\r\nms k1 3 F5 T60\r\nabc\r\nmg k1 k v\r\nmd k1\r\nmn\r\n"
        );
    }

    #[test]
    fn answers() {
        let hit = b"VA 3 kk1 f5\r\nabc\r\n";
        let Ok((Response::Value { flags, data }, 18)) = one(hit) else {
            panic!("{:?}", one(hit));
        };
        assert_eq!(data, b"abc");
        assert_eq!(
            (flags.get(b'k'), flags.get(b'f')),
            (Some(&b"k1"[..]), Some(&b"5"[..]))
        );
        assert_eq!(flags.get(b'c'), None);
        for cut in 0..hit.len() {
            assert_eq!(one(&hit[..cut]), Err(DecodeError::Incomplete), "{cut}");
        }
        let bare = one(b"VA 0\r\n\r\n").unwrap();
        assert_eq!(bare.1, 8);
        assert_eq!(
            one(b"HD\r\n"),
            Ok((
                Response::Status {
                    code: Code::Hd,
                    flags: Flags(b"")
                },
                4
            ))
        );
        let Ok((Response::Status { code, flags }, 13)) = one(b"EN Oabc kk1\r\n") else {
            panic!()
        };
        assert_eq!(code, Code::En);
        assert_eq!(flags.iter().collect::<Vec<_>>(), vec![&b"Oabc"[..], b"kk1"]);
        assert_eq!(one(b"MN\r\n"), Ok((Response::NoOp, 4)));
        assert_eq!(
            one(b"CLIENT_ERROR bad data chunk\r\n"),
            Ok((Response::Error(b"CLIENT_ERROR bad data chunk"), 29))
        );
        assert_malformed(
            |b| decode(b).map(|d| d.consumed),
            &[
                &b"VALUE k 0 1\r\n"[..],
                b"VA\r\n",
                b"VA x\r\n",
                b"VA 1\r\nab\r\n",
                b"OK\r\n",
                b"MN x\r\n",
            ],
        );
    }
}
