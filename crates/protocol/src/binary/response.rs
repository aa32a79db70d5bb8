//! Binary response packets: header, extras, key and value, big-endian, as memcached
//! 1.6.18 writes them.
//!
//! Knows nothing of the store or the connection: the caller passes the opcode and
//! opaque to echo ([`ReplyTo`]), the status, the CAS and the body parts.
//!
//! Invariants: every packet starts with [`RESPONSE_MAGIC`], its data type is 0 and its
//! `body_len` is exactly extras + key + value; an error packet has no extras, no key,
//! CAS 0 and [`Status::message`] as its value; nothing allocates.

use super::RESPONSE_MAGIC;
use bytes::BufMut;

/// A response status (the header's vbucket field in a request).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u16)]
pub enum Status {
    NoError = 0x0000,
    KeyNotFound = 0x0001,
    KeyExists = 0x0002,
    TooLarge = 0x0003,
    InvalidArguments = 0x0004,
    NotStored = 0x0005,
    NonNumeric = 0x0006,
    /// memcached's answer to a refused command too (FLUSH under `-F`), not only to a
    /// failed authentication.
    AuthError = 0x0020,
    /// SASL: the mechanism wants another step (SASL_STEP); no error text.
    AuthContinue = 0x0021,
    UnknownCommand = 0x0081,
    OutOfMemory = 0x0082,
}

impl Status {
    /// The text memcached sends as the body of an error with this status.
    pub fn message(self) -> &'static str {
        match self {
            Status::NoError => "",
            Status::KeyNotFound => "Not found",
            Status::KeyExists => "Data exists for key.",
            Status::TooLarge => "Too large.",
            Status::InvalidArguments => "Invalid arguments",
            Status::NotStored => "Not stored.",
            Status::NonNumeric => "Non-numeric server-side value for incr or decr",
            Status::AuthError => "Auth failure.",
            Status::AuthContinue => "",
            Status::UnknownCommand => "Unknown command",
            Status::OutOfMemory => "Out of memory",
        }
    }
}

/// What every answer copies from its request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplyTo {
    pub opcode: u8,
    pub opaque: u32,
}

/// Appends one response packet.
pub fn put(
    out: &mut impl BufMut,
    to: ReplyTo,
    status: Status,
    cas: u64,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    put_header(out, to, status, cas, extras.len(), key.len(), value.len());
    out.put_slice(extras);
    out.put_slice(key);
    out.put_slice(value);
}

/// Appends a response header for a body of `extras_len + key_len + value_len` bytes,
/// which the caller appends next (the value possibly as its own segment).
pub fn put_header(
    out: &mut impl BufMut,
    to: ReplyTo,
    status: Status,
    cas: u64,
    extras_len: usize,
    key_len: usize,
    value_len: usize,
) {
    debug_assert!(extras_len <= usize::from(u8::MAX) && key_len <= usize::from(u16::MAX));
    let body_len = extras_len + key_len + value_len;
    debug_assert!(u32::try_from(body_len).is_ok(), "values are at most 1 GB");
    out.put_u8(RESPONSE_MAGIC);
    out.put_u8(to.opcode);
    out.put_u16(key_len as u16);
    out.put_u8(extras_len as u8);
    out.put_u8(0);
    out.put_u16(status as u16);
    out.put_u32(body_len as u32);
    out.put_u32(to.opaque);
    out.put_u64(cas);
}

/// Appends an empty success answer carrying `cas`.
pub fn put_ok(out: &mut impl BufMut, to: ReplyTo, cas: u64) {
    put(out, to, Status::NoError, cas, &[], &[], &[]);
}

/// Appends an error answer: `status` with its message as the body.
pub fn put_error(out: &mut impl BufMut, to: ReplyTo, status: Status) {
    put(out, to, status, 0, &[], &[], status.message().as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    const TO: ReplyTo = ReplyTo {
        opcode: 0x00,
        opaque: 0xdead_beef,
    };

    #[test]
    fn a_get_hit_as_memcached_writes_it() {
        let mut out = Vec::new();
        put(
            &mut out,
            ReplyTo {
                opcode: 0x0c,
                opaque: 7,
            },
            Status::NoError,
            2,
            &5u32.to_be_bytes(),
            b"foo",
            b"bar",
        );
        let mut expected = vec![0x81, 0x0c, 0, 3, 4, 0, 0, 0, 0, 0, 0, 10, 0, 0, 0, 7];
        expected.extend_from_slice(&2u64.to_be_bytes());
        expected.extend_from_slice(&[0, 0, 0, 5]);
        expected.extend_from_slice(b"foobar");
        assert_eq!(out, expected);
    }

    #[test]
    fn an_error_carries_its_message() {
        let mut out = Vec::new();
        put_error(&mut out, TO, Status::KeyNotFound);
        assert_eq!(&out[..8], &[0x81, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&out[8..12], &9u32.to_be_bytes());
        assert_eq!(&out[12..16], &TO.opaque.to_be_bytes());
        assert_eq!(&out[16..24], &[0; 8]);
        assert_eq!(&out[24..], b"Not found");
    }

    #[test]
    fn status_codes_and_messages() {
        let all = [
            (Status::NoError, 0x00, ""),
            (Status::KeyNotFound, 0x01, "Not found"),
            (Status::KeyExists, 0x02, "Data exists for key."),
            (Status::TooLarge, 0x03, "Too large."),
            (Status::InvalidArguments, 0x04, "Invalid arguments"),
            (Status::NotStored, 0x05, "Not stored."),
            (
                Status::NonNumeric,
                0x06,
                "Non-numeric server-side value for incr or decr",
            ),
            (Status::AuthError, 0x20, "Auth failure."),
            (Status::AuthContinue, 0x21, ""),
            (Status::UnknownCommand, 0x81, "Unknown command"),
            (Status::OutOfMemory, 0x82, "Out of memory"),
        ];
        for (status, code, message) in all {
            assert_eq!(status as u16, code);
            assert_eq!(status.message(), message);
        }
    }

    #[test]
    fn an_ok_is_a_bare_header() {
        let mut out = Vec::new();
        put_ok(&mut out, TO, 42);
        assert_eq!(out.len(), 24);
        assert_eq!(&out[8..12], &[0; 4]);
        assert_eq!(&out[16..24], &42u64.to_be_bytes());
    }
}
