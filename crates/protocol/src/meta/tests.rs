//! Tests of the meta parser: every command, every flag, every error answer (as
//! memcached 1.6.18 gives them), the `ms` data block, and split-invariance.

use super::*;
use crate::text;

const LIMITS: Limits = Limits {
    max_item_bytes: 1024 * 1024,
};

/// Parses `input`, which must be exactly one whole meta request.
fn request(input: &[u8]) -> MetaRequest<'_> {
    let parsed = parse(input, &LIMITS).unwrap_or_else(|e| panic!("{input:?}: {e:?}"));
    assert_eq!(parsed.consumed, input.len(), "{input:?}");
    match parsed.request {
        Request::Meta(meta) => meta,
        other => panic!("not meta: {other:?}"),
    }
}

/// The answer to a refused request and the bytes it swallows; its line is consumed.
fn refused(input: &[u8]) -> (&'static str, usize) {
    let line_len = memchr::memchr(b'\n', input).unwrap() + 1;
    match parse(input, &LIMITS) {
        Err(ParseError::Invalid {
            reply,
            consumed,
            swallow,
        }) => {
            assert_eq!(consumed, line_len, "{input:?}");
            (reply, swallow)
        }
        other => panic!("{input:?}: {other:?}"),
    }
}

/// The reply to a refused request that swallows nothing.
fn reply(input: &[u8]) -> &'static str {
    let (reply, swallow) = refused(input);
    assert_eq!(swallow, 0, "{input:?}");
    reply
}

fn meta<'a>(request: &MetaRequest<'a>) -> Meta<'a> {
    match request {
        MetaRequest::Get(m) | MetaRequest::Delete(m) => *m,
        MetaRequest::Set { meta, .. } | MetaRequest::Arith { meta, .. } => *meta,
        other => panic!("no flags: {other:?}"),
    }
}

fn flags(input: &[u8]) -> MetaFlags {
    meta(&request(input)).flags
}

fn key(m: &MetaKey<'_>) -> Vec<u8> {
    let mut buf = None;
    m.bytes(&mut buf).to_vec()
}

#[test]
fn noop_and_debug() {
    assert_eq!(request(b"mn\r\n"), MetaRequest::Noop);
    assert_eq!(request(b"mn foo bar\n"), MetaRequest::Noop);
    let plain = MetaKey {
        token: b"foo",
        base64: false,
    };
    assert_eq!(request(b"me foo\r\n"), MetaRequest::Debug(plain));
    // Only a third token of exactly `b` means base64.
    assert_eq!(request(b"me foo bar baz\r\n"), MetaRequest::Debug(plain));
    assert_eq!(request(b"me foo x b\r\n"), MetaRequest::Debug(plain));
    let MetaRequest::Debug(k) = request(b"me Zm9v b\r\n") else {
        panic!()
    };
    assert!(k.base64);
    assert_eq!(key(&k), b"foo");
    for bad in [&b"me\r\n"[..], b"me \r\n", b"me Zm9 b\r\n"] {
        assert_eq!(reply(bad), BAD_FORMAT, "{bad:?}");
    }
    let long = [b"me ".to_vec(), vec![b'k'; 251], b"\r\n".to_vec()].concat();
    assert_eq!(reply(&long), BAD_FORMAT);
}

#[test]
fn get_delete_arith_shapes() {
    let r = request(b"mg foo s v t\r\n");
    let MetaRequest::Get(m) = r else { panic!() };
    assert_eq!(m.key.token, b"foo");
    assert_eq!(m.tokens().collect::<Vec<_>>(), [&b"s"[..], b"v", b"t"]);
    assert!(m.flags.value);
    assert!(matches!(request(b"mg foo\r\n"), MetaRequest::Get(_)));
    assert!(matches!(request(b"md foo q\r\n"), MetaRequest::Delete(_)));
    assert!(matches!(
        request(b"ma foo\r\n"),
        MetaRequest::Arith { incr: true, .. }
    ));
    for (line, incr) in [
        (&b"ma k MI\r\n"[..], true),
        (b"ma k M+\r\n", true),
        (b"ma k MD\r\n", false),
        (b"ma k M-\r\n", false),
    ] {
        let MetaRequest::Arith { incr: got, .. } = request(line) else {
            panic!()
        };
        assert_eq!(got, incr, "{line:?}");
    }
    // Spaces: runs of them separate, leading and trailing ones are ignored.
    let m = meta(&request(b"  mg   foo   v  k \r\n"));
    assert_eq!(m.key.token, b"foo");
    assert_eq!(m.tokens().collect::<Vec<_>>(), [&b"v"[..], b"k"]);
}

#[test]
fn every_flag_and_its_value() {
    let f = flags(b"mg Zm9v b q u v I\r\n");
    assert!(f.base64 && f.quiet && f.no_bump && f.value && f.invalidate);
    assert!(!f.locked);
    let f = flags(b"mg k C18446744073709551615 F4294967301 T-1 N30 R+5 D\t7 J9 MZ\r\n");
    assert_eq!(f.compare_cas, Some(u64::MAX));
    assert_eq!(f.client_flags, 5, "flags are truncated to 32 bits");
    assert_eq!((f.ttl, f.vivify, f.recache), (Some(-1), Some(30), Some(5)));
    assert_eq!((f.delta, f.initial, f.mode), (7, 9, Some(b'Z')));
    assert!(f.locked);
    for locking in [
        &b"mg k h\r\n"[..],
        b"mg k l\r\n",
        b"mg k T1\r\n",
        b"mg k N1\r\n",
        b"mg k R1\r\n",
    ] {
        assert!(flags(locking).locked, "{locking:?}");
    }
    // Flags with nothing to parse take any trailing bytes; the others their defaults.
    let f = flags(b"mg k c1 k9 s t f O P L\r\n");
    assert_eq!(f, MetaFlags::default());
    assert_eq!(f.delta, 1);
    let f = flags(b"mg k O12345678901234567890123456789012\r\n");
    assert!(f.opaque_too_long);
    assert!(!flags(b"mg k O1234567890123456789012345678901\r\n").opaque_too_long);
}

#[test]
fn base64_keys() {
    let m = meta(&request(b"mg Zm9v! b k\r\n"));
    assert_eq!(m.key.token, b"Zm9v!");
    assert_eq!(key(&m.key), b"foo");
    let m = meta(&request(b"mg foo k\r\n"));
    assert_eq!(key(&m.key), b"foo");
    // The 250-byte limit applies to the token as sent.
    let token = vec![b'A'; 248];
    let line = [b"mg ".as_slice(), &token, b" b\r\n"].concat();
    assert_eq!(key(&meta(&request(&line)).key), vec![0; 186]);
}

#[test]
fn flag_errors() {
    let cases: &[(&[u8], &str)] = &[
        (b"mg k Z\r\n", INVALID_FLAG),
        (b"mg k S\r\n", INVALID_FLAG),
        (b"mg k E\r\n", BAD_TOKEN),
        (b"mg k E-1\r\n", BAD_TOKEN),
        (b"mg k Eabc\r\n", BAD_TOKEN),
        (b"mg k E18446744073709551616\r\n", BAD_TOKEN),
        (b"mg k E1 E2\r\n", DUPLICATE_FLAG),
        (b"mg k x x\r\n", DUPLICATE_FLAG),
        (b"mg k \t\r\n", INVALID_FLAG),
        (b"mg k v v\r\n", DUPLICATE_FLAG),
        (b"mg k O1 O2\r\n", DUPLICATE_FLAG),
        (b"mg k \x7f\r\n", DUPLICATE_FLAG),
        (b"mg k \xc3\xa9\r\n", DUPLICATE_FLAG),
        (b"mg k T\r\n", BAD_TOKEN),
        (b"mg k Tx\r\n", BAD_TOKEN),
        (b"mg k N1.5\r\n", BAD_TOKEN),
        (b"mg k R\r\n", BAD_TOKEN),
        (b"mg k C-1\r\n", BAD_TOKEN),
        (b"mg k T0x5\r\n", BAD_TOKEN),
        (b"mg k Fx\r\n", BAD_FORMAT),
        (b"mg k F-1\r\n", BAD_FORMAT),
        (b"mg k Tx Fx\r\n", BAD_TOKEN),
        (b"mg k Fx Tx\r\n", BAD_TOKEN),
        (b"mg k Jx\r\n", BAD_INITIAL),
        (b"mg k D-1\r\n", BAD_DELTA),
        (b"mg k D18446744073709551616\r\n", BAD_DELTA),
        (b"mg k b\r\n", DECODING_KEY),
        (b"mg k Tx b\r\n", DECODING_KEY),
        (b"mg k b Tx\r\n", BAD_TOKEN),
        // The first unknown or repeated flag ends the scan with its own answer.
        (b"mg k Tx Z\r\n", INVALID_FLAG),
        (b"mg k Z Tx\r\n", INVALID_FLAG),
        (b"mg k b b\r\n", DUPLICATE_FLAG),
    ];
    for &(line, answer) in cases {
        assert_eq!(reply(line), answer, "{line:?}");
        // md names the error as mg does (memcached 1.6.45; 1.6.18 answered md as ma);
        // ma answers every flag error alike.
        let md = [b"md".as_slice(), &line[2..]].concat();
        assert_eq!(reply(&md), answer, "{md:?}");
        let ma = [b"ma".as_slice(), &line[2..]].concat();
        assert_eq!(reply(&ma), INVALID_OR_DUPLICATE, "{ma:?}");
    }
}

#[test]
fn line_shape_errors() {
    let long_key = [b"mg ".to_vec(), vec![b'k'; 251], b" v\r\n".to_vec()].concat();
    let cases: &[(&[u8], &str)] = &[
        // No key: memcached 1.6.45's format error (1.6.18 said ERROR).
        (b"mg\r\n", BAD_FORMAT),
        (b"mg \r\n", BAD_FORMAT),
        (b"md\r\n", BAD_FORMAT),
        (b"ma\r\n", BAD_FORMAT),
        (b"ms\r\n", BAD_FORMAT),
        (b"ms foo\r\n", BAD_FORMAT),
        (b"ms foo abc\r\n", BAD_FORMAT),
        (b"ms foo 1x\r\n", BAD_FORMAT),
        (b"ms foo -1\r\n", BAD_FORMAT),
        (b"ms foo 2147483646\r\n", BAD_FORMAT),
        (b"ms foo T30 3\r\n", BAD_FORMAT),
        (&long_key, BAD_FORMAT),
        (b"mz foo\r\n", ERROR),
    ];
    for &(line, answer) in cases {
        assert_eq!(reply(line), answer, "{line:?}");
    }
    // memcached 1.6.45 skips the block of an `ms` whose length it could read.
    let long_ms = [b"ms ".to_vec(), vec![b'k'; 251], b" 1\r\n".to_vec()].concat();
    assert_eq!(refused(&long_ms), (BAD_FORMAT, 3));
    let long_ms = [b"ms ".to_vec(), vec![b'k'; 251], b" x\r\n".to_vec()].concat();
    assert_eq!(reply(&long_ms), BAD_FORMAT);
    assert!(matches!(
        request(b"ms foo 2147483645\r\n"),
        MetaRequest::SetTooLarge { .. }
    ));
}

#[test]
fn token_limits() {
    // 20 tokens with the command and key are too many; 19 are fine.
    let flags17 = b" s v k c f t u h l O1 T1 N1 R1 P L q I";
    assert_eq!(flags17.split(|&b| b == b' ').count() - 1, 17);
    let line = |cmd: &[u8], extra: &[u8]| [cmd, b" a", flags17, extra, b"\r\n"].concat();
    assert!(parse(&line(b"mg", b""), &LIMITS).is_ok());
    assert_eq!(reply(&line(b"mg", b" M1")), MG_TOO_LONG);
    assert_eq!(reply(&line(b"md", b" M1")), TOO_LONG);
    assert_eq!(reply(&line(b"ma", b" M1")), TOO_LONG);
    let many = b"mg a 1 2 3 4 5 6 7 8 9 A B C D E F G H I J K L M N O P Q R S\r\n";
    assert_eq!(reply(many), MG_TOO_LONG);
    // ms counts its datalen: 16 flags are the most.
    let ms = [
        b"ms a 1".as_slice(),
        &flags17[..flags17.len() - 2],
        b"\r\nx\r\n",
    ]
    .concat();
    assert!(matches!(request(&ms), MetaRequest::Set { .. }));
    let ms = [b"ms a 1".as_slice(), flags17, b"\r\nx\r\n"].concat();
    assert_eq!(reply(&ms), TOO_LONG, "nothing swallowed");
}

#[test]
fn set_modes_and_values() {
    for (line, want) in [
        (&b"ms k 3\r\nabc\r\n"[..], StoreMode::Set),
        (b"ms k 3 MS\r\nabc\r\n", StoreMode::Set),
        (b"ms k 3 ME\r\nabc\r\n", StoreMode::Add),
        (b"ms k 3 MA\r\nabc\r\n", StoreMode::Append),
        (b"ms k 3 MP\r\nabc\r\n", StoreMode::Prepend),
        (b"ms k 3 MR\r\nabc\r\n", StoreMode::Replace),
    ] {
        let MetaRequest::Set { mode, value, .. } = request(line) else {
            panic!("{line:?}")
        };
        assert_eq!((mode, value), (want, &b"abc"[..]), "{line:?}");
    }
    let MetaRequest::Set { meta, value, .. } = request(b"ms k 0 F3 T9 C7 I q\r\n\r\n") else {
        panic!()
    };
    assert_eq!(value, b"");
    let f = meta.flags;
    assert_eq!(
        (f.client_flags, f.ttl, f.compare_cas),
        (3, Some(9), Some(7))
    );
    assert!(f.invalidate && f.quiet);
    // The value may hold anything, newlines included.
    let MetaRequest::Set { value, .. } = request(b"ms k 4\n\r\n\r\n\r\n") else {
        panic!()
    };
    assert_eq!(value, b"\r\n\r\n");
}

#[test]
fn set_errors_swallow_the_data_block() {
    let cases: &[(&[u8], &str)] = &[
        (b"ms k 2 Z\r\n", INVALID_FLAG),
        (b"ms k 2 c c\r\n", DUPLICATE_FLAG),
        (b"ms k 2 T\r\n", BAD_TOKEN),
        (b"ms k 2 Fx\r\n", BAD_FORMAT),
        (b"ms k 2 b\r\n", DECODING_KEY),
        (b"ms k 2 Ms\r\n", MS_MODE),
        (b"ms k 2 MI\r\n", MS_MODE),
        (
            b"ms k 2 O123456789012345678901234567890123\r\n",
            OPAQUE_TOO_LONG,
        ),
        // A bad mode is answered before a long opaque.
        (b"ms k 2 O123456789012345678901234567890123 MZ\r\n", MS_MODE),
    ];
    for &(line, answer) in cases {
        let input = [line, b"ab\r\n"].concat();
        assert_eq!(refused(&input), (answer, 4), "{line:?}");
    }
    assert_eq!(refused(b"ma k MX\r\n"), (MA_MODE, 0));
    // memcached 1.6.45: the mode is the first byte of `M`'s argument; an empty `M` is a
    // bad mode, and `mg` ignores it (1.6.18: incorrect length for M token).
    assert_eq!(refused(b"ma k M\r\n"), (MA_MODE, 0));
    assert_eq!(refused(b"ms k 1 M\r\n"), (MS_MODE, 3));
    assert!(matches!(
        request(b"ma k MIX\r\n"),
        MetaRequest::Arith { incr: true, .. }
    ));
    assert!(matches!(request(b"mg k MSS\r\n"), MetaRequest::Get(_)));
    assert_eq!(refused(b"ma k MS\r\n"), (MA_MODE, 0));
    assert_eq!(
        refused(b"md k O123456789012345678901234567890123\r\n"),
        (OPAQUE_TOO_LONG, 0)
    );
}

#[test]
fn data_block_framing() {
    // Every prefix is incomplete; a block not ending in \r\n is a bad chunk of exactly
    // datalen + 2 bytes, even with q.
    let whole = b"ms k 5 c\r\nhello\r\n";
    for end in 0..whole.len() {
        assert_eq!(parse(&whole[..end], &LIMITS), Err(ParseError::Incomplete));
    }
    for input in [
        &b"ms k 2\r\nabc\r\n"[..],
        b"ms k 2 q\r\nabc\r\n",
        b"ms k 2\r\nab\n\n",
    ] {
        let line_len = memchr::memchr(b'\n', input).unwrap() + 1;
        assert_eq!(
            parse(input, &LIMITS),
            Err(ParseError::Invalid {
                reply: BAD_DATA_CHUNK,
                consumed: line_len + 4,
                swallow: 0
            }),
            "{input:?}"
        );
    }
}

#[test]
fn too_large_counts_flags_like_memcached() {
    let limits = Limits {
        max_item_bytes: 1024 * 1024,
    };
    // 48 + 8 + key + 1 + value + 2 (+ 4 with flags) must fit in 1 MiB.
    let fits = 1024 * 1024 - 48 - 8 - 1 - 1 - 2;
    let line = |len: usize, flags: &str| format!("ms f {len}{flags}\r\n").into_bytes();
    let too_large = |input: &[u8]| {
        matches!(
            parse(input, &limits),
            Ok(Parsed {
                request: Request::Meta(MetaRequest::SetTooLarge { .. }),
                ..
            })
        )
    };
    assert!(!too_large(&line(fits, "")));
    assert!(too_large(&line(fits + 1, "")));
    assert!(too_large(&line(fits, " F1")));
    assert!(!too_large(&line(fits - 4, " F1")));
    assert!(!too_large(&line(fits, " F0")));
    let input = line(fits + 1, " q");
    let Ok(Parsed {
        request: Request::Meta(MetaRequest::SetTooLarge { key, swallow }),
        consumed,
    }) = parse(&input, &limits)
    else {
        panic!()
    };
    assert_eq!(
        (key.token, swallow, consumed),
        (&b"f"[..], fits + 3, input.len())
    );
}

#[test]
fn the_text_parser_hands_meta_lines_over() {
    for line in [
        &b"mg k v\r\n"[..],
        b"mn\r\n",
        b"me k\r\n",
        b"md k\r\n",
        b"ma k\r\n",
        b"ms k 1\r\nx\r\n",
    ] {
        let parsed = text::parse(line, &LIMITS).unwrap();
        assert!(matches!(parsed.request, Request::Meta(_)), "{line:?}");
        assert_eq!(parsed.consumed, line.len());
    }
    // (`m` alone is a line under two bytes: a format error since memcached 1.6.45.)
    for line in [&b"mz k\r\n"[..], b"MG k\r\n", b"mgg k\r\n"] {
        assert!(
            matches!(
                text::parse(line, &LIMITS),
                Err(ParseError::Invalid { reply: "ERROR", .. })
            ),
            "{line:?}"
        );
    }
    // The line rules are the text parser's: NUL ends the line, 2048 bytes without a
    // newline close the connection.
    let m = match text::parse(b"mg k\0 v\r\n", &LIMITS).unwrap().request {
        Request::Meta(MetaRequest::Get(m)) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(m.tokens().count(), 0);
    let long = [b"mg k ".as_slice(), &[b'v'; 3000]].concat();
    assert_eq!(
        text::parse(&long, &LIMITS),
        Err(ParseError::Fatal { reply: None })
    );
}

#[test]
fn any_split_parses_the_same() {
    let stream: &[u8] = b"mg foo s v t k O1\r\nms bar 5 T10 c\r\nhello\r\nmd foo q\r\n\
ma n N0 J5 v\r\nmn\r\nme foo\r\nms k 2 Z\r\nab\r\nms k 2\r\nabc\r\n\
ms k 1 E7 MA N0\r\nz\r\nmd k x E8 I\r\nmg k C8 v E\r\n";
    let whole = parse_all(stream, stream.len());
    assert_eq!(whole.len(), 12);
    for step in [1, 2, 3, 5, 7, 11] {
        assert_eq!(parse_all(stream, step), whole, "step {step}");
    }
}

/// Feeds `stream` to the parser `step` bytes at a time, as a connection would; returns
/// a description of each request or refusal.
fn parse_all(stream: &[u8], step: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let (mut pos, mut available, mut swallow) = (0, 0, 0);
    while pos < stream.len() {
        available = (available + step).min(stream.len());
        loop {
            let skip = swallow.min(available - pos);
            pos += skip;
            swallow -= skip;
            if swallow > 0 || pos == available {
                break;
            }
            match parse(&stream[pos..available], &LIMITS) {
                Ok(parsed) => {
                    seen.push(format!("{:?}", parsed.request));
                    pos += parsed.consumed;
                }
                Err(ParseError::Incomplete) => break,
                Err(ParseError::Invalid {
                    reply,
                    consumed,
                    swallow: more,
                }) => {
                    seen.push(reply.to_string());
                    pos += consumed;
                    swallow = more;
                }
                Err(fatal) => panic!("{fatal:?}"),
            }
        }
    }
    seen
}

#[test]
fn hostile_lines_never_panic_and_never_overrun() {
    // Lines stitched from meta fragments, odd bytes and numbers at their limits, fed
    // whole and as every prefix: the parser answers or waits, and stays in bounds.
    let pieces: &[&[u8]] = &[
        b"mg",
        b"ms",
        b"md",
        b"ma",
        b"me",
        b"mn",
        b" ",
        b"  ",
        b"k",
        b"Zm9v",
        b"=",
        b"b",
        b"q",
        b"v",
        b"O",
        b"O123456789012345678901234567890123",
        b"T-1",
        b"N",
        b"R9",
        b"C18446744073709551616",
        b"F4294967296",
        b"D",
        b"J-",
        b"M",
        b"MZZ",
        b"I",
        b"\0",
        b"\r",
        b"\t",
        b"\x80",
        b"\xff",
        b"2147483645",
        b"-1",
        b"0",
        b"3",
        b"\r\n",
        b"\n",
        b"abc",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    for _ in 0..3000 {
        let mut input = Vec::new();
        for _ in 0..next() % 12 {
            input.extend_from_slice(pieces[next() % pieces.len()]);
        }
        for end in 0..=input.len() {
            match parse(&input[..end], &LIMITS) {
                Ok(parsed) => assert!(parsed.consumed <= end && parsed.consumed > 0),
                Err(ParseError::Invalid { consumed, .. }) => assert!(consumed <= end),
                Err(ParseError::Incomplete | ParseError::Fatal { .. }) => {}
            }
        }
    }
}

#[test]
fn memcached_1_6_45_flags_e_and_x() {
    let f = flags(b"ms k 1 E7 x c\r\nA\r\n");
    assert_eq!((f.new_cas, f.remove_value), (7, true));
    assert_eq!(flags(b"md k x E18446744073709551615\r\n").new_cas, u64::MAX);
    // `E0` (like no `E`) leaves the choice to the server.
    assert_eq!(flags(b"mg k E0 N30\r\n").new_cas, 0);
    assert!(flags(b"ma k x\r\n").remove_value);
    assert_eq!(flags(b"mg k C5 v\r\n").compare_cas, Some(5));
    // `ma` names a bad `E` as it names every flag error.
    assert_eq!(reply(b"ma k E\r\n"), INVALID_OR_DUPLICATE);
    assert_eq!(refused(b"ms k 1 Ex\r\nA\r\n"), (BAD_TOKEN, 3));
}

/// The flag tokens (`Meta::tokens`, `Words`) are the line split at spaces, empty pieces
/// dropped, on every arrangement of short tokens and spaces (the one-letter shortcut
/// and the byte loop alike), and the general parser's `rest` after them is unchanged.
#[test]
fn tokens_are_the_line_split_at_spaces() {
    let alphabet = b" kvO1\t";
    for len in 0..=7u32 {
        for n in 0..(alphabet.len() as u64).pow(len) {
            let mut digits = n;
            let line: Vec<u8> = (0..len)
                .map(|_| {
                    let b = alphabet[(digits % alphabet.len() as u64) as usize];
                    digits /= alphabet.len() as u64;
                    b
                })
                .collect();
            let expected: Vec<&[u8]> = line
                .split(|&b| b == b' ')
                .filter(|t| !t.is_empty())
                .collect();
            let got: Vec<&[u8]> = Words { line: &line }.collect();
            assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(&line));
            let mut words = Words { line: &line };
            if words.next().is_some() {
                let rest = expected[1..].to_vec();
                let again: Vec<&[u8]> = Words { line: words.rest() }.collect();
                assert_eq!(again, rest, "{:?}", String::from_utf8_lossy(&line));
            }
        }
    }
}
