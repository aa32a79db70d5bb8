//! The binary protocol from the client's side: request packets, and response packets
//! decoded field by field.
//!
//! The header layout, opcodes and statuses are the protocol crate's (re-exported here):
//! a response header reads like a request's, with the status where a request has its
//! vbucket ([`Packet::status`]). Decoding checks the framing only (lengths that fit the
//! body); the magic, opcode, status and opaque are the caller's to judge, so a test can
//! show a wrong one rather than lose it.

use crate::{malformed, DecodeError, Decoded};
pub use ringcache_protocol::binary::{
    opcode, Header, Status, HEADER_BYTES, NO_CREATE, REQUEST_MAGIC, RESPONSE_MAGIC,
};

/// Appends one request packet: the header (magic 0x80, data type, vbucket and CAS 0),
/// then `extras`, `key` and `value`.
#[inline]
pub fn request(
    out: &mut Vec<u8>,
    opcode: u8,
    opaque: u32,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    debug_assert!(extras.len() <= usize::from(u8::MAX) && key.len() <= usize::from(u16::MAX));
    let body_len = extras.len() + key.len() + value.len();
    let mut header = [0u8; HEADER_BYTES];
    header[0] = REQUEST_MAGIC;
    header[1] = opcode;
    header[2..4].copy_from_slice(&(key.len() as u16).to_be_bytes());
    header[4] = extras.len() as u8;
    header[8..12].copy_from_slice(&(body_len as u32).to_be_bytes());
    header[12..16].copy_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// The extras of SET, ADD and REPLACE: flags, then exptime.
#[inline]
pub fn store_extras(flags: u32, exptime: u32) -> [u8; 8] {
    let mut extras = [0u8; 8];
    extras[..4].copy_from_slice(&flags.to_be_bytes());
    extras[4..].copy_from_slice(&exptime.to_be_bytes());
    extras
}

/// The extras of INCREMENT and DECREMENT: delta, the initial value for a missing key,
/// and its exptime ([`NO_CREATE`]: answer `KeyNotFound` instead of creating it).
pub fn arith_extras(delta: u64, initial: u64, exptime: u32) -> [u8; 20] {
    let mut extras = [0u8; 20];
    extras[..8].copy_from_slice(&delta.to_be_bytes());
    extras[8..16].copy_from_slice(&initial.to_be_bytes());
    extras[16..].copy_from_slice(&exptime.to_be_bytes());
    extras
}

/// One response packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet<'a> {
    /// As received; `vbucket` holds the status (see [`Packet::status`]).
    pub header: Header,
    pub extras: &'a [u8],
    pub key: &'a [u8],
    pub value: &'a [u8],
}

impl Packet<'_> {
    /// The response status (0: no error; see [`Status`]).
    pub fn status(&self) -> u16 {
        self.header.vbucket
    }
}

/// The header of the packet at the start of `input` and the packet's whole length
/// (header and body), once all of it has arrived. Its key and extras lengths are not
/// checked against the body's: [`decode`] does that.
#[inline]
pub fn frame(input: &[u8]) -> Result<(Header, usize), DecodeError> {
    if input.len() < HEADER_BYTES {
        return Err(DecodeError::Incomplete);
    }
    let header = Header::read(input);
    let len = HEADER_BYTES + header.body_len as usize;
    if input.len() < len {
        return Err(DecodeError::Incomplete);
    }
    Ok((header, len))
}

/// Decodes the packet at the start of `input`. Malformed when its key and extras do not
/// fit in its body.
#[inline]
pub fn decode(input: &[u8]) -> Result<Decoded<Packet<'_>>, DecodeError> {
    let (header, len) = frame(input)?;
    let extras_end = HEADER_BYTES + usize::from(header.extras_len);
    let key_end = extras_end + usize::from(header.key_len);
    if key_end > len {
        return Err(malformed(
            "binary answer: key and extras longer than the body",
            input,
        ));
    }
    Ok(Decoded {
        response: Packet {
            header,
            extras: &input[HEADER_BYTES..extras_end],
            key: &input[extras_end..key_end],
            value: &input[key_end..len],
        },
        consumed: len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_their_lengths_and_opaque() {
        let mut out = Vec::new();
        request(
            &mut out,
            opcode::SET,
            9,
            &store_extras(5, 60),
            b"k1",
            b"abc",
        );
        assert_eq!(out.len(), 24 + 8 + 2 + 3);
        let h = Header::read(&out);
        assert_eq!(
            (h.magic, h.opcode, h.key_len, h.extras_len),
            (0x80, 0x01, 2, 8)
        );
        assert_eq!((h.body_len, h.opaque, h.cas, h.vbucket), (13, 9, 0, 0));
        assert_eq!(&out[24..32], &[0, 0, 0, 5, 0, 0, 0, 60]);
        assert_eq!(&out[32..], b"k1abc");
        let incr = arith_extras(1, 2, NO_CREATE);
        assert_eq!(&incr[..8], &1u64.to_be_bytes());
        assert_eq!(&incr[8..16], &2u64.to_be_bytes());
        assert_eq!(&incr[16..], &[0xff; 4]);
    }

    #[test]
    fn packets_decode_field_by_field() {
        let mut bytes = vec![0x81, 0x0c, 0, 1, 4, 0, 0, 1, 0, 0, 0, 8, 0, 0, 0, 7];
        bytes.extend_from_slice(&42u64.to_be_bytes());
        bytes.extend_from_slice(b"ffffkval");
        bytes.extend_from_slice(b"next");
        let got = decode(&bytes).unwrap();
        assert_eq!(got.consumed, 32);
        let p = got.response;
        assert_eq!(
            (p.header.magic, p.header.opcode, p.status()),
            (0x81, 0x0c, 1)
        );
        assert_eq!((p.header.opaque, p.header.cas), (7, 42));
        assert_eq!(
            (p.extras, p.key, p.value),
            (&b"ffff"[..], &b"k"[..], &b"val"[..])
        );
        for cut in 0..32 {
            assert_eq!(decode(&bytes[..cut]), Err(DecodeError::Incomplete), "{cut}");
        }
        bytes[4] = 8; // extras + key = 9 > body 8
        assert!(matches!(decode(&bytes), Err(DecodeError::Malformed(_))));
        assert_eq!(frame(&bytes).map(|(h, len)| (h.opaque, len)), Ok((7, 32)));
    }
}
