//! Round trips against the server's side of the wire (the protocol crate): what the
//! server's encoders write, the client decodes to the same answer, in any pieces; what
//! the client encodes, the server's parsers read as the request meant.

use crate::{binary, meta, text, DecodeError};
use proptest::prelude::*;
use ringcache_protocol::{self as protocol, Limits, Request, Response, StoreMode};

const LIMITS: Limits = Limits {
    max_item_bytes: 1 << 20,
};

/// A key memcached takes: printable ASCII but space.
fn key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(0x21u8..0x7f, 1..=40)
}

/// Words for `STAT` names, versions and error messages: no spaces where the answer
/// takes none, no line ends anywhere.
fn word() -> impl Strategy<Value = String> {
    "[a-z_0-9.]{1,12}"
}

fn message() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 .]{0,30}"
}

fn data() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..64)
}

/// Text answers in owned form (a `Response` borrows).
#[derive(Clone, Debug)]
enum Answer {
    /// The data-less answers, by index into [`simple`].
    Simple(usize),
    Value(Vec<u8>, u32, Vec<u8>, Option<u64>),
    Number(u64),
    Version(String),
    Stat(String, String),
    ClientError(String),
    ServerError(String),
}

const SIMPLE_COUNT: usize = 10;

fn simple(i: usize) -> Response<'static> {
    match i {
        0 => Response::Stored,
        1 => Response::NotStored,
        2 => Response::Exists,
        3 => Response::NotFound,
        4 => Response::Deleted,
        5 => Response::Touched,
        6 => Response::Ok,
        7 => Response::End,
        8 => Response::Reset,
        _ => Response::Error,
    }
}

impl Answer {
    fn response(&self) -> Response<'_> {
        match self {
            Answer::Simple(i) => simple(*i),
            Answer::Value(key, flags, value, cas) => Response::Value {
                key,
                flags: *flags,
                value,
                cas: *cas,
            },
            Answer::Number(n) => Response::Number(*n),
            Answer::Version(v) => Response::Version(v),
            Answer::Stat(name, value) => Response::Stat(name, value),
            Answer::ClientError(m) => Response::ClientError(m),
            Answer::ServerError(m) => Response::ServerError(m),
        }
    }
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        (0..SIMPLE_COUNT).prop_map(Answer::Simple),
        (key(), any::<u32>(), data(), any::<Option<u64>>())
            .prop_map(|(k, f, d, c)| Answer::Value(k, f, d, c)),
        any::<u64>().prop_map(Answer::Number),
        word().prop_map(Answer::Version),
        (word(), message()).prop_map(|(n, v)| Answer::Stat(n, v)),
        message().prop_map(Answer::ClientError),
        message().prop_map(Answer::ServerError),
    ]
}

/// Decodes `stream` answer by answer with `decode` (which returns an answer's length),
/// checking that every strict prefix of each answer is `Incomplete`; returns the
/// answers' lengths.
fn lengths(stream: &[u8], decode: impl Fn(&[u8]) -> Result<usize, DecodeError>) -> Vec<usize> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < stream.len() {
        let consumed = decode(&stream[at..]).unwrap_or_else(|e| panic!("{e:?}"));
        for cut in at..at + consumed {
            assert_eq!(
                decode(&stream[at..cut]),
                Err(DecodeError::Incomplete),
                "a prefix of {} bytes",
                cut - at
            );
        }
        out.push(consumed);
        at += consumed;
    }
    out
}

/// Asserts that `decode` (which returns an answer's length) calls each of `inputs`
/// malformed.
pub(crate) fn assert_malformed(
    decode: impl Fn(&[u8]) -> Result<usize, DecodeError>,
    inputs: &[&[u8]],
) {
    for input in inputs {
        let got = decode(input);
        assert!(
            matches!(got, Err(DecodeError::Malformed(_))),
            "\"{}\": {got:?}",
            input.escape_ascii()
        );
    }
}

proptest! {
    #[test]
    fn text_answers_decode_as_the_server_wrote_them(answers in proptest::collection::vec(answer(), 1..6)) {
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for a in &answers {
            protocol::encode::text(&a.response(), &mut stream);
            ends.push(stream.len());
        }
        let mut at = 0;
        for (a, end) in answers.iter().zip(&ends) {
            let got = text::decode(&stream[at..]).unwrap();
            prop_assert_eq!(got.consumed, end - at);
            prop_assert_eq!(got.response, a.response());
            at = *end;
        }
        let lens = lengths(&stream, |b| text::decode(b).map(|d| d.consumed));
        prop_assert_eq!(lens.len(), answers.len());
    }

    #[test]
    fn meta_answers_decode_as_the_server_wrote_them(
        hit in any::<bool>(),
        value in data(),
        key in key(),
        flags in any::<u32>(),
        cas in any::<u64>(),
    ) {
        use protocol::meta::encode::{self, Line};
        let mut stream = Vec::new();
        let mut line = if hit {
            Line::value(&mut stream, value.len())
        } else {
            Line::code(&mut stream, b"HD")
        };
        line.number(b'f', u64::from(flags));
        line.key(&key, false);
        line.number(b'c', cas);
        line.end();
        if hit {
            stream.extend_from_slice(&value);
            encode::end(&mut stream);
        }
        Line::code(&mut stream, b"EN").end();
        let first = meta::decode(&stream).unwrap();
        let f = match first.response {
            meta::Response::Value { flags, data } if hit => {
                prop_assert_eq!(data, &value[..]);
                flags
            }
            meta::Response::Status { code: meta::Code::Hd, flags } if !hit => flags,
            other => panic!("{other:?}"),
        };
        prop_assert_eq!(f.get(b'k'), Some(&key[..]));
        let (flags, cas) = (flags.to_string(), cas.to_string());
        prop_assert_eq!(f.get(b'f'), Some(flags.as_bytes()));
        prop_assert_eq!(f.get(b'c'), Some(cas.as_bytes()));
        prop_assert_eq!(lengths(&stream, |b| meta::decode(b).map(|d| d.consumed)).len(), 2);
    }

    #[test]
    fn binary_answers_decode_as_the_server_wrote_them(
        op in any::<u8>(),
        opaque in any::<u32>(),
        cas in any::<u64>(),
        extras in proptest::collection::vec(any::<u8>(), 0..24),
        key in proptest::collection::vec(any::<u8>(), 0..24),
        value in data(),
    ) {
        use protocol::binary::response::{put, ReplyTo};
        let mut stream = Vec::new();
        let to = ReplyTo { opcode: op, opaque };
        put(&mut stream, to, protocol::binary::Status::KeyExists, cas, &extras, &key, &value);
        protocol::binary::response::put_ok(&mut stream, to, 0);
        let p = binary::decode(&stream).unwrap();
        prop_assert_eq!(p.consumed, 24 + extras.len() + key.len() + value.len());
        let p = p.response;
        prop_assert_eq!((p.header.magic, p.header.opcode, p.status()), (0x81, op, 2));
        prop_assert_eq!((p.header.opaque, p.header.cas), (opaque, cas));
        prop_assert_eq!((p.extras, p.key, p.value), (&extras[..], &key[..], &value[..]));
        prop_assert_eq!(lengths(&stream, |b| binary::decode(b).map(|d| d.consumed)).len(), 2);
    }

    #[test]
    fn text_requests_parse_as_meant(key in key(), flags in any::<u32>(), exptime in -5i64..100_000, value in data()) {
        let mut out = Vec::new();
        text::set(&mut out, &key, flags, exptime, &value);
        let set_len = out.len();
        text::get(&mut out, [&key, &key]);
        let parsed = protocol::text::parse(&out, &LIMITS).unwrap();
        prop_assert_eq!(parsed.consumed, set_len);
        match parsed.request {
            Request::Store { mode: StoreMode::Set, key: k, flags: f, exptime: e, value: v, noreply: false, .. } => {
                prop_assert_eq!((k, f, e, v), (&key[..], flags, exptime, &value[..]));
            }
            other => panic!("{other:?}"),
        }
        let parsed = protocol::text::parse(&out[set_len..], &LIMITS).unwrap();
        let Request::Get { keys, with_cas: false, touch: None } = parsed.request else {
            panic!("{:?}", parsed.request)
        };
        prop_assert_eq!(keys.iter().collect::<Vec<_>>(), vec![&key[..], &key[..]]);
    }

    #[test]
    fn binary_requests_parse_as_meant(key in key(), flags in any::<u32>(), exptime in any::<u32>(), opaque in any::<u32>(), value in data()) {
        let mut out = Vec::new();
        binary::request(&mut out, binary::opcode::SET, opaque, &binary::store_extras(flags, exptime), &key, &value);
        let parsed = protocol::binary::parse(&out, &LIMITS).unwrap();
        prop_assert_eq!((parsed.consumed + parsed.swallow, parsed.request.opaque), (out.len(), opaque));
        match parsed.request.command {
            protocol::binary::Command::Store { key: k, flags: f, exptime: e, value: v, .. } => {
                prop_assert_eq!((k, f, e, v), (&key[..], flags, exptime, &value[..]));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn meta_requests_parse_as_meant() {
    use protocol::meta::MetaRequest;
    let mut out = Vec::new();
    meta::set(&mut out, b"k1", b"abc", b"F5 T60");
    meta::command(&mut out, b"mg", b"k2", b"k f v");
    meta::command(&mut out, b"ma", b"k3", b"D7");
    meta::noop(&mut out);
    let mut requests = Vec::new();
    let mut at = 0;
    while at < out.len() {
        let parsed = protocol::text::parse(&out[at..], &LIMITS).unwrap();
        at += parsed.consumed;
        let Request::Meta(request) = parsed.request else {
            panic!("{:?}", parsed.request)
        };
        requests.push(request);
    }
    let [set, get, arith, noop] = &requests[..] else {
        panic!("{requests:?}")
    };
    let MetaRequest::Set {
        meta: set,
        mode: StoreMode::Set,
        value: b"abc",
    } = set
    else {
        panic!("{set:?}")
    };
    assert_eq!(set.key.token, b"k1");
    assert_eq!((set.flags.client_flags, set.flags.ttl), (5, Some(60)));
    let MetaRequest::Get(get) = get else {
        panic!("{get:?}")
    };
    assert_eq!(
        (get.key.token, get.flag_tokens),
        (&b"k2"[..], &b"k f v"[..])
    );
    let MetaRequest::Arith {
        meta: arith,
        incr: true,
    } = arith
    else {
        panic!("{arith:?}")
    };
    assert_eq!((arith.key.token, arith.flags.delta), (&b"k3"[..], 7));
    assert_eq!(*noop, MetaRequest::Noop);
}
