//! The classic text dialect from the client's side: the requests the tools and tests
//! send, and the answers, decoded into [`Response`] (the protocol crate's vocabulary,
//! whose `encode::text` writes them on the server's side).
//!
//! [`decode`] reads one answer line (with its data block for `VALUE`); a get's whole
//! reply is its `VALUE`s then `END`, which [`decode_list`] reads in one call, as it
//! does the `STAT` lines of a stats group.

use crate::ascii::{self, put_data, put_line};
use crate::{malformed, DecodeError, Decoded};
pub use ringcache_protocol::Response;

/// Appends `get <key> <key>…\r\n`.
#[inline]
pub fn get<K: AsRef<[u8]>>(out: &mut Vec<u8>, keys: impl IntoIterator<Item = K>) {
    out.extend_from_slice(b"get");
    for key in keys {
        out.push(b' ');
        out.extend_from_slice(key.as_ref());
    }
    out.extend_from_slice(b"\r\n");
}

/// Appends `set <key> <flags> <exptime> <len>\r\n<value>\r\n`.
#[inline]
pub fn set(out: &mut Vec<u8>, key: &[u8], flags: u32, exptime: i64, value: &[u8]) {
    let (mut f, mut e, mut n) = (
        itoa::Buffer::new(),
        itoa::Buffer::new(),
        itoa::Buffer::new(),
    );
    put_line(
        out,
        &[
            b"set",
            key,
            f.format(flags).as_bytes(),
            e.format(exptime).as_bytes(),
            n.format(value.len()).as_bytes(),
        ],
    );
    put_data(out, value);
}

/// Appends `delete <key>\r\n`.
pub fn delete(out: &mut Vec<u8>, key: &[u8]) {
    put_line(out, &[b"delete", key]);
}

/// Appends `incr <key> <delta>\r\n`.
pub fn incr(out: &mut Vec<u8>, key: &[u8], delta: u64) {
    put_line(
        out,
        &[b"incr", key, itoa::Buffer::new().format(delta).as_bytes()],
    );
}

/// Appends `touch <key> <exptime>\r\n`.
pub fn touch(out: &mut Vec<u8>, key: &[u8], exptime: i64) {
    put_line(
        out,
        &[
            b"touch",
            key,
            itoa::Buffer::new().format(exptime).as_bytes(),
        ],
    );
}

/// Decodes the answer at the start of `input`: one line, and for `VALUE` its data
/// block. A line that is none of memcached's text answers is malformed.
///
/// Inlined into the caller with the two most frequent one-line answers, which are
/// taken without a line search (the same answers the search would find).
#[inline(always)]
pub fn decode(input: &[u8]) -> Result<Decoded<Response<'_>>, DecodeError> {
    if input.starts_with(b"END\r\n") {
        return Ok(Decoded {
            response: Response::End,
            consumed: 5,
        });
    }
    if input.starts_with(b"STORED\r\n") {
        return Ok(Decoded {
            response: Response::Stored,
            consumed: 8,
        });
    }
    decode_line(input)
}

/// [`decode`] past its fast paths.
fn decode_line(input: &[u8]) -> Result<Decoded<Response<'_>>, DecodeError> {
    let (line, head) = ascii::line(input)?;
    if let Some(fields) = line.strip_prefix(b"VALUE ") {
        return value(input, fields, head);
    }
    let response = match line {
        b"END" => Response::End,
        b"STORED" => Response::Stored,
        b"NOT_STORED" => Response::NotStored,
        b"EXISTS" => Response::Exists,
        b"NOT_FOUND" => Response::NotFound,
        b"DELETED" => Response::Deleted,
        b"TOUCHED" => Response::Touched,
        b"OK" => Response::Ok,
        b"RESET" => Response::Reset,
        b"ERROR" => Response::Error,
        _ => other(input, line)?,
    };
    Ok(Decoded {
        response,
        consumed: head,
    })
}

/// The answers with a word of their own after the first: `STAT`, `VERSION`, the error
/// lines with a message, and incr/decr's number.
fn other<'a>(input: &[u8], line: &'a [u8]) -> Result<Response<'a>, DecodeError> {
    let text = |bytes: &'a [u8]| {
        std::str::from_utf8(bytes).map_err(|_| malformed("answer line not UTF-8", input))
    };
    if let Some(stat) = line.strip_prefix(b"STAT ") {
        let (name, value) = ascii::split_space(stat);
        let value = value.ok_or_else(|| malformed("STAT line without a value", input))?;
        return Ok(Response::Stat(text(name)?, text(value)?));
    }
    if let Some(version) = line.strip_prefix(b"VERSION ") {
        return Ok(Response::Version(text(version)?));
    }
    if let Some(message) = line.strip_prefix(b"CLIENT_ERROR ") {
        return Ok(Response::ClientError(text(message)?));
    }
    if let Some(message) = line.strip_prefix(b"SERVER_ERROR ") {
        return Ok(Response::ServerError(text(message)?));
    }
    ascii::number(line)
        .map(Response::Number)
        .ok_or_else(|| malformed("unknown answer line", input))
}

/// `VALUE <key> <flags> <len>[ <cas>]` (`fields` is what follows `VALUE `) and its data.
#[inline]
fn value<'a>(
    input: &'a [u8],
    fields: &'a [u8],
    head: usize,
) -> Result<Decoded<Response<'a>>, DecodeError> {
    let Some((key, flags, len, cas)) = value_fields(fields) else {
        return Err(malformed("malformed VALUE line", input));
    };
    let (data, consumed) = ascii::data_block(input, head, len)?;
    Ok(Decoded {
        response: Response::Value {
            key,
            flags,
            value: data,
            cas,
        },
        consumed,
    })
}

/// The key, flags, length and CAS of `<key> <flags> <len>[ <cas>]`, the numbers read
/// in one pass (a hit's line is on every get's path).
#[inline]
fn value_fields(fields: &[u8]) -> Option<(&[u8], u32, u64, Option<u64>)> {
    let (key, numbers) = ascii::split_space(fields);
    let numbers = numbers.filter(|_| !key.is_empty())?;
    // flags, len, cas: each 1 to 20 digits that fit a u64, one space between them.
    let (mut n, mut count, mut digits) = ([0u64; 3], 0, 0);
    for &b in numbers {
        if b == b' ' {
            if digits == 0 || count == 2 {
                return None;
            }
            count += 1;
            digits = 0;
            continue;
        }
        let digit = b.wrapping_sub(b'0');
        if digit > 9 {
            return None;
        }
        n[count] = n[count].checked_mul(10)?.checked_add(u64::from(digit))?;
        digits += 1;
    }
    if digits == 0 || count == 0 {
        return None;
    }
    let flags = u32::try_from(n[0]).ok()?;
    Some((key, flags, n[1], (count == 2).then_some(n[2])))
}

/// A reply of several answers up to `END`: a get's hits, or a stats group.
#[derive(Debug, PartialEq, Eq)]
pub struct Listing<'a> {
    /// The `VALUE` and `STAT` answers before the end, in order.
    pub items: Vec<Response<'a>>,
    /// The answer that ended the reply: `END`, or any other (`ERROR`, `SERVER_ERROR …`,
    /// `RESET`, …), which a caller may or may not expect there.
    pub end: Response<'a>,
}

/// Decodes answers up to and including the first that is neither `VALUE` nor `STAT`.
pub fn decode_list(input: &[u8]) -> Result<Decoded<Listing<'_>>, DecodeError> {
    let mut items = Vec::new();
    let mut at = 0;
    loop {
        let Decoded { response, consumed } = decode(&input[at..])?;
        at += consumed;
        match response {
            Response::Value { .. } | Response::Stat(..) => items.push(response),
            end => {
                return Ok(Decoded {
                    response: Listing { items, end },
                    consumed: at,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::assert_malformed;

    fn one(input: &[u8]) -> Result<(Response<'_>, usize), DecodeError> {
        decode(input).map(|d| (d.response, d.consumed))
    }

    #[test]
    fn requests_are_memcached_commands() {
        let mut out = Vec::new();
        set(&mut out, b"k1", 5, 60, b"abc");
        get(&mut out, [b"k1"]);
        get(&mut out, ["a", "b"]);
        delete(&mut out, b"k1");
        incr(&mut out, b"n", 42);
        touch(&mut out, b"k1", -1);
        assert_eq!(
            out,
            b"set k1 5 60 3\r\nabc\r\nget k1\r\nget a b\r\ndelete k1\r\nincr n 42\r\n\
              touch k1 -1\r\n"
        );
    }

    #[test]
    fn one_line_answers() {
        assert_eq!(one(b"STORED\r\nEND\r\n"), Ok((Response::Stored, 8)));
        assert_eq!(one(b"END\r\n"), Ok((Response::End, 5)));
        assert_eq!(one(b"12\r\n"), Ok((Response::Number(12), 4)));
        assert_eq!(
            one(b"STAT version 1.6.18 extra\r\n"),
            Ok((Response::Stat("version", "1.6.18 extra"), 27))
        );
        assert_eq!(
            one(b"SERVER_ERROR out of memory\r\n"),
            Ok((Response::ServerError("out of memory"), 28))
        );
        assert_eq!(
            one(b"VERSION 1.6.18\r\n"),
            Ok((Response::Version("1.6.18"), 16))
        );
        assert_eq!(one(b"STORED\r"), Err(DecodeError::Incomplete));
        assert_malformed(
            |b| decode(b).map(|d| d.consumed),
            &[&b"HELLO\r\n"[..], b"STAT x\r\n", b"END\n", b"-1\r\n"],
        );
    }

    #[test]
    fn values_carry_their_data() {
        let hit = b"VALUE k 3 5 99\r\nab\r\nc\r\nEND\r\n";
        let want = Response::Value {
            key: b"k",
            flags: 3,
            value: b"ab\r\nc",
            cas: Some(99),
        };
        assert_eq!(one(hit), Ok((want, 23)));
        for cut in 0..23 {
            assert_eq!(one(&hit[..cut]), Err(DecodeError::Incomplete), "{cut}");
        }
        assert_malformed(
            |b| decode(b).map(|d| d.consumed),
            &[
                &b"VALUE k 0 3\r\nabcX\r\n"[..],
                b"VALUE k 0\r\n",
                b"VALUE k 0 3 1 2\r\n",
                b"VALUE k 4294967296 0\r\n",
                b"VALUE  0 0\r\n",
                b"VALUE k 0 x\r\n",
            ],
        );
    }

    #[test]
    fn lists_run_to_their_end() {
        let reply = b"VALUE a 0 1\r\n1\r\nVALUE b 0 1\r\n2\r\nEND\r\nSTORED\r\n";
        let got = decode_list(reply).unwrap();
        assert_eq!(got.consumed, 37);
        assert_eq!(got.response.items.len(), 2);
        assert_eq!(got.response.end, Response::End);
        for cut in 0..37 {
            assert_eq!(decode_list(&reply[..cut]), Err(DecodeError::Incomplete));
        }
        let stats = decode_list(b"STAT pid 1\r\nSTAT uptime 2\r\nEND\r\n").unwrap();
        assert_eq!(
            stats.response.items,
            vec![Response::Stat("pid", "1"), Response::Stat("uptime", "2")]
        );
        let refused = decode_list(b"SERVER_ERROR busy\r\n").unwrap();
        assert_eq!(refused.response.items, vec![]);
        assert_eq!(refused.response.end, Response::ServerError("busy"));
    }
}
