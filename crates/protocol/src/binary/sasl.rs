//! SASL over the binary protocol (`-S`): the packets of SASL_LIST_MECHS, SASL_AUTH and
//! SASL_STEP, and the PLAIN mechanism's message.
//!
//! Knows nothing of passwords, connections or authentication state: [`parse`] frames
//! the front of an input the way memcached 1.6.18 with `-S` reads it and hands back a
//! SASL request, or `None` for any other opcode (whose header it has checked as
//! memcached does before its authentication check); [`plain`] splits a PLAIN message.
//! Without `-S` nobody calls this module, and `binary::parse` answers the three opcodes
//! `Unknown command`.
//!
//! memcached 1.6.18's rules, checked against Debian's build (`tests/sasl.rs`):
//!
//! | input | answer |
//! |---|---|
//! | fewer than 24 bytes (any first byte) | waits |
//! | magic ≠ 0x80 | closed, no answer ([`ParseError::BadMagic`]) |
//! | `key_len + extras_len > body_len` | 0x81, closed ([`ParseError::Fatal`]) |
//! | SASL opcode, key over 250 bytes | 0x04, closed |
//! | SASL_LIST_MECHS with any extras, key or body | 0x04, closed |
//! | SASL_AUTH/STEP with extras or without a key | 0x04, closed |
//! | SASL_AUTH/STEP, mechanism (the key) over [`MECH_MAX_BYTES`] | 0x04 `Invalid arguments`, data swallowed, connection lives ([`SaslCommand::MechTooLong`]) |
//! | SASL_AUTH/STEP whose data would not fit one unchunked item (key + data + memcached's item overhead over the smaller of `-I` and [`SASL_ITEM_MAX_BYTES`]) | 0x82 `Out of memory`, data swallowed, connection lives ([`SaslCommand::TooLarge`]) |
//! | anything else SASL | [`SaslCommand::ListMechs`] or [`SaslCommand::Auth`] once the data is in |
//!
//! Invariants: `consumed + swallow` is the whole packet; `consumed` never exceeds the
//! input; the result depends only on the bytes, not on how they were split; nothing is
//! waited for past one SASL item (a hostile `body_len` is swallowed, not buffered).

use super::response::Status;
use super::{opcode, Header, ParseError, HEADER_BYTES, REQUEST_MAGIC};
use crate::{item_too_large, Limits, KEY_MAX_BYTES};

/// memcached's `MAX_SASL_MECH_LEN`: a longer mechanism name is refused with 0x04.
pub const MECH_MAX_BYTES: usize = 32;
/// memcached reads SASL data into one item that must not be chunked: with its default
/// 1 MiB pages, items over half a page (`slab_chunk_max`) are.
pub const SASL_ITEM_MAX_BYTES: usize = 512 * 1024;

/// What a SASL packet asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaslCommand<'a> {
    /// SASL_LIST_MECHS.
    ListMechs,
    /// SASL_AUTH (`step` false) or SASL_STEP: the mechanism (the packet's key) and the
    /// data (its value).
    Auth {
        step: bool,
        mech: &'a [u8],
        data: &'a [u8],
    },
    /// A mechanism name over [`MECH_MAX_BYTES`]: answer 0x04, the data is swallowed.
    MechTooLong,
    /// Data over what memcached would hold: answer 0x82, the data is swallowed.
    TooLarge,
}

/// A SASL request, the header fields its answer echoes, the bytes it used and the
/// bytes after them that belong to it but are not needed (drop them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SaslParsed<'a> {
    pub opcode: u8,
    pub opaque: u32,
    pub command: SaslCommand<'a>,
    pub consumed: usize,
    pub swallow: usize,
}

/// Whether `op` is one of the three SASL opcodes.
pub fn is_sasl(op: u8) -> bool {
    matches!(
        op,
        opcode::SASL_LIST_MECHS | opcode::SASL_AUTH | opcode::SASL_STEP
    )
}

/// Reads the packet at the front of `input` as memcached with `-S` does: `Ok(None)`
/// when its header is whole, its magic right and its lengths consistent but it is not
/// a SASL packet (then `binary::parse` or the authentication check decide).
pub fn parse<'a>(input: &'a [u8], limits: &Limits) -> Result<Option<SaslParsed<'a>>, ParseError> {
    let Some(head) = input.get(..HEADER_BYTES) else {
        return Err(ParseError::Incomplete);
    };
    if head[0] != REQUEST_MAGIC {
        return Err(ParseError::BadMagic);
    }
    let h = Header::read(head);
    let fatal = |status| ParseError::Fatal {
        opcode: h.opcode,
        opaque: h.opaque,
        status,
    };
    let (ext, key, body) = (
        usize::from(h.extras_len),
        usize::from(h.key_len),
        h.body_len as usize,
    );
    if key + ext > body {
        return Err(fatal(Status::UnknownCommand));
    }
    if !is_sasl(h.opcode) {
        return Ok(None);
    }
    if key > KEY_MAX_BYTES {
        return Err(fatal(Status::InvalidArguments));
    }
    let parsed = |command, consumed, swallow| {
        Ok(Some(SaslParsed {
            opcode: h.opcode,
            opaque: h.opaque,
            command,
            consumed,
            swallow,
        }))
    };
    if h.opcode == opcode::SASL_LIST_MECHS {
        if body != 0 {
            return Err(fatal(Status::InvalidArguments));
        }
        return parsed(SaslCommand::ListMechs, HEADER_BYTES, 0);
    }
    if ext != 0 || key == 0 {
        return Err(fatal(Status::InvalidArguments));
    }
    let data_len = body - key;
    let key_end = HEADER_BYTES + key;
    // memcached reads nothing of a packet before its extras and key are in.
    if input.len() < key_end {
        return Err(ParseError::Incomplete);
    }
    if key > MECH_MAX_BYTES {
        return parsed(SaslCommand::MechTooLong, key_end, data_len);
    }
    let item_max = limits.max_item_bytes.min(SASL_ITEM_MAX_BYTES);
    if item_too_large(key, data_len, 0, item_max) {
        return parsed(SaslCommand::TooLarge, key_end, data_len);
    }
    let Some(packet) = input.get(..key_end + data_len) else {
        return Err(ParseError::Incomplete);
    };
    let command = SaslCommand::Auth {
        step: h.opcode == opcode::SASL_STEP,
        mech: &packet[HEADER_BYTES..key_end],
        data: &packet[key_end..],
    };
    parsed(command, packet.len(), 0)
}

/// A PLAIN message (RFC 4616): `authzid NUL authcid NUL password`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plain<'a> {
    /// Who to act as (empty: the authcid itself).
    pub authzid: &'a [u8],
    /// Who authenticates.
    pub authcid: &'a [u8],
    pub password: &'a [u8],
}

/// Splits a PLAIN message; `None` unless it holds exactly two NULs (Cyrus SASL's PLAIN
/// refuses a trailing NUL or a missing one, as memcached answers them).
pub fn plain(data: &[u8]) -> Option<Plain<'_>> {
    let mut parts = data.splitn(3, |&b| b == 0);
    let (authzid, authcid, password) = (parts.next()?, parts.next()?, parts.next()?);
    if password.contains(&0) {
        return None;
    }
    Some(Plain {
        authzid,
        authcid,
        password,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_item_bytes: 1024 * 1024,
    };

    fn packet(op: u8, extras: &[u8], key: &[u8], value: &[u8], opaque: u32) -> Vec<u8> {
        let body = extras.len() + key.len() + value.len();
        let mut p = vec![REQUEST_MAGIC, op];
        p.extend_from_slice(&(key.len() as u16).to_be_bytes());
        p.push(extras.len() as u8);
        p.extend_from_slice(&[0, 0, 0]);
        p.extend_from_slice(&(body as u32).to_be_bytes());
        p.extend_from_slice(&opaque.to_be_bytes());
        p.extend_from_slice(&[0; 8]);
        p.extend_from_slice(extras);
        p.extend_from_slice(key);
        p.extend_from_slice(value);
        p
    }

    fn command(input: &[u8]) -> Result<Option<(SaslCommand<'_>, usize, usize)>, ParseError> {
        parse(input, &LIMITS).map(|p| p.map(|p| (p.command, p.consumed, p.swallow)))
    }

    #[test]
    fn reads_the_three_opcodes() {
        let list = packet(0x20, b"", b"", b"", 7);
        let parsed = parse(&list, &LIMITS).unwrap().unwrap();
        assert_eq!((parsed.opcode, parsed.opaque), (0x20, 7));
        assert_eq!(parsed.command, SaslCommand::ListMechs);
        let auth = packet(0x21, b"", b"PLAIN", b"\0a\0b", 1);
        let want = SaslCommand::Auth {
            step: false,
            mech: b"PLAIN",
            data: b"\0a\0b",
        };
        assert_eq!(command(&auth), Ok(Some((want, auth.len(), 0))));
        let step = packet(0x22, b"", b"X", b"", 1);
        let want = SaslCommand::Auth {
            step: true,
            mech: b"X",
            data: b"",
        };
        assert_eq!(command(&step), Ok(Some((want, step.len(), 0))));
        assert_eq!(command(&packet(0x0b, b"", b"", b"", 0)), Ok(None));
        assert_eq!(command(&packet(0x01, &[0; 8], b"k", b"v", 0)), Ok(None));
    }

    #[test]
    fn refuses_as_memcached() {
        let fatal = |op, status| {
            Err(ParseError::Fatal {
                opcode: op,
                opaque: 0,
                status,
            })
        };
        assert_eq!(command(&[0x80; 23]), Err(ParseError::Incomplete));
        assert_eq!(
            command(b"get aaaaaaaaaaaaaaaaaaaaaaaaa\r\n"),
            Err(ParseError::BadMagic)
        );
        assert_eq!(command(b"get"), Err(ParseError::Incomplete));
        let mut bad = packet(0x00, b"", b"key", b"", 0);
        bad[11] = 2; // body_len 2 < key_len 3
        assert_eq!(command(&bad), fatal(0x00, Status::UnknownCommand));
        let einval = Status::InvalidArguments;
        assert_eq!(
            command(&packet(0x20, b"", b"", b"x", 0)),
            fatal(0x20, einval)
        );
        assert_eq!(
            command(&packet(0x20, b"", b"k", b"", 0)),
            fatal(0x20, einval)
        );
        assert_eq!(
            command(&packet(0x21, b"", b"", b"x", 0)),
            fatal(0x21, einval)
        );
        assert_eq!(
            command(&packet(0x22, b"1234", b"P", b"x", 0)),
            fatal(0x22, einval)
        );
        assert_eq!(
            command(&packet(0x21, b"", &[b'P'; 251], b"", 0)),
            fatal(0x21, einval)
        );
        // Not fatal: a long mechanism and too much data are swallowed.
        let long = packet(0x21, b"", &[b'P'; 33], b"data", 0);
        assert_eq!(command(&long[..56]), Err(ParseError::Incomplete));
        assert_eq!(
            command(&long[..57]),
            Ok(Some((SaslCommand::MechTooLong, 57, 4)))
        );
        let fits = 512 * 1024 - (48 + 8 + 5 + 1 + 2);
        let big = packet(0x21, b"", b"PLAIN", &vec![b'x'; fits + 1], 0);
        assert_eq!(
            command(&big[..29]),
            Ok(Some((SaslCommand::TooLarge, 29, fits + 1)))
        );
        let ok = packet(0x21, b"", b"PLAIN", &vec![b'x'; fits], 0);
        assert_eq!(command(&ok[..29]), Err(ParseError::Incomplete));
        assert!(matches!(
            command(&ok),
            Ok(Some((SaslCommand::Auth { .. }, _, 0)))
        ));
        // A smaller -I lowers the limit.
        let small = Limits {
            max_item_bytes: 1024,
        };
        let p = packet(0x21, b"", b"PLAIN", &[b'x'; 1000], 0);
        let parsed = parse(&p, &small).unwrap().unwrap();
        assert_eq!(parsed.command, SaslCommand::TooLarge);
    }

    #[test]
    fn any_split_parses_the_same() {
        let input = packet(0x21, b"", b"PLAIN", b"\0alice\0secret", 9);
        let whole = command(&input);
        for cut in 0..input.len() {
            assert_eq!(command(&input[..cut]), Err(ParseError::Incomplete), "{cut}");
        }
        assert!(matches!(whole, Ok(Some(_))));
    }

    #[test]
    fn splits_plain_messages() {
        let p = |z: &'static [u8], c: &'static [u8], w: &'static [u8]| {
            Some(Plain {
                authzid: z,
                authcid: c,
                password: w,
            })
        };
        assert_eq!(plain(b"\0alice\0secret"), p(b"", b"alice", b"secret"));
        assert_eq!(plain(b"bob\0alice\0"), p(b"bob", b"alice", b""));
        assert_eq!(plain(b"\0\0"), p(b"", b"", b""));
        for bad in [
            &b""[..],
            b"alice",
            b"\0alicesecret",
            b"\0alice\0secret\0",
            b"\0a\0b\0c",
        ] {
            assert_eq!(plain(bad), None, "{bad:?}");
        }
    }
}
