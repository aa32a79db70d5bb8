//! Tests of the text parser: every command, every error answer (as memcached 1.6.18
//! gives them), noreply, pipelining, split-invariance and hostile input.
//!
//! Longer than ~600 lines on purpose: it is a table of cases, one short test per
//! command and refusal, read by scrolling to the command in question; split by command
//! it would scatter the shared helpers at the top without making any one test shorter.

use super::*;
use crate::ascii::GET_LINE_TOO_LONG;

const LIMITS: Limits = Limits {
    max_item_bytes: 1024 * 1024,
};

/// Parses `input`, which must be exactly one whole request.
fn request(input: &[u8]) -> Request<'_> {
    let parsed = parse(input, &LIMITS).unwrap_or_else(|e| panic!("{input:?}: {e:?}"));
    assert_eq!(parsed.consumed, input.len(), "{input:?}");
    parsed.request
}

/// The answer to `input`, which must be exactly one refused line (nothing swallowed).
fn refused(input: &[u8]) -> &'static str {
    match parse(input, &LIMITS) {
        Err(ParseError::Invalid {
            reply,
            consumed,
            swallow,
        }) => {
            assert_eq!((consumed, swallow), (input.len(), 0), "{input:?}");
            reply
        }
        other => panic!("{input:?}: {other:?}"),
    }
}

fn keys<'a>(request: &Request<'a>) -> Vec<&'a [u8]> {
    match request {
        Request::Get { keys, .. } => keys.iter().collect(),
        other => panic!("not a get: {other:?}"),
    }
}

#[test]
fn gets() {
    let r = request(b"get foo\r\n");
    assert_eq!(keys(&r), [&b"foo"[..]]);
    assert!(matches!(
        r,
        Request::Get {
            with_cas: false,
            touch: None,
            ..
        }
    ));
    let r = request(b"gets a bb  ccc \r\n");
    assert_eq!(keys(&r), [&b"a"[..], b"bb", b"ccc"]);
    assert!(matches!(r, Request::Get { with_cas: true, .. }));
    assert_eq!(keys(&request(b"bget a\r\n")), [&b"a"[..]]);
    assert_eq!(keys(&request(b"get a noreply\n")), [&b"a"[..], b"noreply"]);
    assert_eq!(keys(&request(b"   get a\r\n")), [&b"a"[..]]);
    let r = request(b"gat 10 a b\r\n");
    assert_eq!(keys(&r), [&b"a"[..], b"b"]);
    assert!(matches!(
        r,
        Request::Get {
            with_cas: false,
            touch: Some(10),
            ..
        }
    ));
    let r = request(b"gats -1 a\r\n");
    assert!(matches!(
        r,
        Request::Get {
            with_cas: true,
            touch: Some(-1),
            ..
        }
    ));
    // gat with no key: memcached 1.6.45's format error (1.6.18 answered END).
    assert_eq!(refused(b"gat 10\r\n"), BAD_FORMAT);
    assert!(matches!(
        request(b"gat 4294967296 a\r\n"),
        Request::Get { touch: Some(0), .. }
    ));
}

#[test]
fn key_material() {
    // Only ' ' separates; \t, \r inside a line and control bytes are key material.
    assert_eq!(keys(&request(b"get a\tb\r\n")), [&b"a\tb"[..]]);
    assert_eq!(keys(&request(b"get a\rb\r\n")), [&b"a\rb"[..]]);
    assert_eq!(keys(&request(b"get a\r\r\n")), [&b"a\r"[..]]);
    assert_eq!(keys(&request(b"get c\x01d\r\n")), [&b"c\x01d"[..]]);
    // A NUL ends the line as memcached's strlen sees it.
    assert_eq!(keys(&request(b"get a\0b c\r\n")), [&b"a"[..]]);
    assert_eq!(refused(b"get\0 a\r\n"), BAD_FORMAT);
    assert_eq!(refused(b"ve\0rsion\r\n"), ERROR);
    assert_eq!(request(b"version\0garbage\r\n"), Request::Version);
}

#[test]
fn get_key_lengths() {
    let k250 = [b'k'; 250];
    let k251 = [b'k'; 251];
    let ok = [&b"get "[..], &k250, b"\r\n"].concat();
    assert_eq!(keys(&request(&ok)), [&k250[..]]);
    for cmd in [&b"get "[..], b"gets ", b"gat 1 ", b"gats 1 "] {
        let line = [cmd, &k251, b"\r\n"].concat();
        assert_eq!(refused(&line), BAD_GET_KEY);
        let line = [cmd, b"a ", &k251, b" b\r\n"].concat();
        assert_eq!(refused(&line), BAD_GET_KEY);
    }
}

#[test]
fn get_errors() {
    // memcached 1.6.45: a get without a key is a format error (1.6.18 said ERROR).
    assert_eq!(refused(b"get\r\n"), BAD_FORMAT);
    assert_eq!(refused(b"get  \r\n"), BAD_FORMAT);
    assert_eq!(refused(b"gets\r\n"), BAD_FORMAT);
    assert_eq!(refused(b"gat\r\n"), BAD_FORMAT);
    assert_eq!(refused(b"gats 10\r\n"), BAD_FORMAT);
    assert_eq!(refused(b"bget\r\n"), ERROR);
    assert_eq!(refused(b"gat x a\r\n"), BAD_EXPTIME);
    assert_eq!(refused(b"gats 0x1 a\r\n"), BAD_EXPTIME);
    assert_eq!(refused(b"GET a\r\n"), ERROR);
    assert_eq!(refused(b"gett a\r\n"), ERROR);
}

#[test]
fn many_keys() {
    let mut line = b"get".to_vec();
    for i in 0..10_000 {
        line.extend_from_slice(format!(" key:{i:05}").as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    assert!(line.len() > 100_000);
    let r = request(&line);
    let got = keys(&r);
    assert_eq!(got.len(), 10_000);
    assert_eq!(got[9_999], b"key:09999");
    // Every key is checked, not only the first 23 tokens.
    let mut bad = line[..line.len() - 2].to_vec();
    bad.push(b' ');
    bad.extend_from_slice(&[b'x'; 251]);
    bad.extend_from_slice(b"\r\n");
    assert_eq!(refused(&bad), BAD_GET_KEY);
}

#[test]
fn stores() {
    let cases = [
        (&b"set"[..], StoreMode::Set),
        (b"add", StoreMode::Add),
        (b"replace", StoreMode::Replace),
        (b"append", StoreMode::Append),
        (b"prepend", StoreMode::Prepend),
    ];
    for (name, mode) in cases {
        let input = [name, b" k 5 100 3\r\nabc\r\n"].concat();
        assert_eq!(
            request(&input),
            Request::Store {
                mode,
                key: b"k",
                flags: 5,
                exptime: 100,
                cas: 0,
                value: b"abc",
                noreply: false,
            }
        );
        let input = [name, b" k 0 0 0 noreply\r\n\r\n"].concat();
        assert!(matches!(
            request(&input),
            Request::Store {
                noreply: true,
                value: b"",
                ..
            }
        ));
    }
    assert_eq!(
        request(b"cas k 1 -1 2 77\r\nhi\r\n"),
        Request::Store {
            mode: StoreMode::Cas,
            key: b"k",
            flags: 1,
            exptime: -1,
            cas: 77,
            value: b"hi",
            noreply: false,
        }
    );
    assert!(matches!(
        request(b"cas k 0 0 1 18446744073709551615 noreply\r\nx\r\n"),
        Request::Store {
            cas: u64::MAX,
            noreply: true,
            ..
        }
    ));
    // The data block may hold anything, newlines included.
    assert!(matches!(
        request(b"set k 0 0 4\r\n\r\n\r\n\r\n"),
        Request::Store {
            value: b"\r\n\r\n",
            ..
        }
    ));
    // Bare \n ends the line; spaces are free; an extra non-noreply token is ignored.
    assert!(matches!(
        request(b"  set  k   0 0 1  \nx\r\n"),
        Request::Store { value: b"x", .. }
    ));
    assert!(matches!(
        request(b"set k 0 0 1 foo\r\nx\r\n"),
        Request::Store { noreply: false, .. }
    ));
}

#[test]
fn store_numbers_like_memcached() {
    let flags_of = |input: &[u8]| match request(input) {
        Request::Store { flags, .. } => flags,
        other => panic!("{other:?}"),
    };
    let exptime_of = |input: &[u8]| match request(input) {
        Request::Store { exptime, .. } => exptime,
        other => panic!("{other:?}"),
    };
    assert_eq!(flags_of(b"set k 4294967295 0 1\r\nx\r\n"), u32::MAX);
    assert_eq!(flags_of(b"set k 4294967301 0 1\r\nx\r\n"), 5);
    assert_eq!(flags_of(b"set k +5 0 1\r\nx\r\n"), 5);
    assert_eq!(flags_of(b"set k 1\tzz 0 1\r\nx\r\n"), 1);
    assert_eq!(flags_of(b"set k \t7 0 1\r\nx\r\n"), 7);
    assert_eq!(exptime_of(b"set k 0 2147483648 1\r\nx\r\n"), -2147483648);
    assert_eq!(exptime_of(b"set k 0 4294967296 1\r\nx\r\n"), 0);
    assert_eq!(exptime_of(b"set k 0 -2147483649 1\r\nx\r\n"), 2147483647);
    // bytes is read as a 32-bit int: 4294967297 is 1.
    assert!(matches!(
        request(b"set k 0 0 4294967297\r\nx\r\n"),
        Request::Store { value: b"x", .. }
    ));
    assert!(matches!(
        request(b"set k 0 0 -0\r\n\r\n"),
        Request::Store { value: b"", .. }
    ));
}

#[test]
fn store_errors() {
    let k251 = [b'k'; 251];
    // memcached 1.6.45: too few tokens is a format error; with a length, the data
    // block is skipped; extra tokens are ignored (1.6.18 said ERROR to all of these).
    for line in [&b"set a 0 0\r\n"[..], b"set\r\n", b"add a\r\n"] {
        assert_eq!(refused(line), BAD_FORMAT, "{line:?}");
    }
    assert_eq!(
        parse(b"cas a 0 0 1\r\n", &LIMITS),
        Err(ParseError::Invalid {
            reply: BAD_FORMAT,
            consumed: 13,
            swallow: 3
        })
    );
    for line in [
        &b"set a 0 0 1 2 3\r\nx\r\n"[..],
        b"cas a 0 0 1 5 6 7\r\nx\r\n",
    ] {
        assert!(matches!(request(line), Request::Store { .. }), "{line:?}");
    }
    // memcached 1.6.45: with a usable length the data block is skipped.
    let skipped = |line: &[u8]| match parse(line, &LIMITS) {
        Err(ParseError::Invalid {
            reply,
            consumed,
            swallow,
        }) if consumed == line.len() => (reply, swallow),
        other => panic!("{line:?}: {other:?}"),
    };
    for line in [
        &b"set a -1 0 1\r\n"[..],
        b"set a 0x1 0 1\r\n",
        b"set a 18446744073709551616 0 1\r\n",
        b"set a 0 9223372036854775808 1\r\n",
        b"set a 0 x 1\r\n",
        b"set a - 0 1\r\n",
        b"cas a 0 0 1 abc\r\n",
        b"cas a 0 0 1 -1\r\n",
    ] {
        assert_eq!(skipped(line), (BAD_FORMAT, 3), "{line:?}");
    }
    // Without one, the data line is parsed as a command.
    for line in [
        &b"set a 0 0 -1\r\n"[..],
        b"set a 0 0 abc\r\n",
        b"set a 0 0 1x\r\n",
        b"set a 0 0 2147483646\r\n",
        b"set a 0 0 18446744073709551615\r\n",
    ] {
        assert_eq!(refused(line), BAD_FORMAT, "{line:?}");
    }
    let long_key = [&b"set "[..], &k251, b" 0 0 1\r\n"].concat();
    assert_eq!(skipped(&long_key), (BAD_FORMAT, 3));
    // With noreply memcached answers nothing, unless the length is what is wrong.
    let long_key = [&b"set "[..], &k251, b" 0 0 1 noreply\r\n"].concat();
    assert_eq!(skipped(&long_key), (SILENT, 3));
    assert_eq!(refused(b"set a 0 0 abc noreply\r\n"), BAD_FORMAT);
    assert_eq!(refused(b"set a 0 0 noreply\r\n"), BAD_FORMAT);
    assert_eq!(skipped(b"cas a 0 0 1 noreply\r\n"), (SILENT, 3));
    assert_eq!(refused(b"set a 0 noreply\r\n"), BAD_FORMAT);
}

#[test]
fn refused_store_leaves_its_data_to_be_parsed() {
    // `set a 0 0 -1\r\nxyz\r\n`: memcached answers CLIENT_ERROR, then ERROR for "xyz".
    let input = b"set a 0 0 -1\r\nxyz\r\n";
    let first = parse(input, &LIMITS);
    assert_eq!(
        first,
        Err(ParseError::Invalid {
            reply: BAD_FORMAT,
            consumed: 14,
            swallow: 0
        })
    );
    assert_eq!(refused(&input[14..]), ERROR);
}

#[test]
fn bad_data_chunk() {
    let cases: [(&[u8], usize); 5] = [
        (b"set a 0 0 1\r\nxyz\r\nget a\r\n", 16),
        (b"set a 0 0 1\r\nx\ng", 16),
        (b"set a 0 0 1\r\nxy\nget a\r\n", 16),
        (b"set b 0 0 3\r\nabcdefg\r\n", 18),
        (b"set a 0 0 -0\r\nx\r\n", 16),
    ];
    for (input, consumed) in cases {
        assert_eq!(
            parse(input, &LIMITS),
            Err(ParseError::Invalid {
                reply: BAD_DATA_CHUNK,
                consumed,
                swallow: 0
            }),
            "{input:?}"
        );
    }
    assert_eq!(
        parse(b"set a 0 0 1 noreply\r\nxyz\r\n", &LIMITS),
        Err(ParseError::Invalid {
            reply: SILENT,
            consumed: 24,
            swallow: 0
        })
    );
    // What follows the dropped block is parsed afresh: "\r\n" is an empty line.
    assert_eq!(refused(b"\r\n"), BAD_FORMAT);
    assert_eq!(refused(b"fg\r\n"), ERROR);
}

#[test]
fn too_large() {
    let small = Limits {
        max_item_bytes: 1024,
    };
    // 48 + 8 + key + 1 + bytes + 2 must fit.
    let fits = b"set k 0 0 964\r\n";
    assert!(matches!(parse(fits, &small), Err(ParseError::Incomplete)));
    let input = b"set k 0 0 965 noreply\r\n";
    assert_eq!(
        parse(input, &small),
        Ok(Parsed {
            request: Request::TooLarge {
                mode: StoreMode::Set,
                key: b"k",
                noreply: true,
                swallow: 967,
            },
            consumed: input.len(),
        })
    );
    // Decided on the line alone, whatever follows.
    let input = b"cas k 0 0 2000000 1\r\nxx";
    assert_eq!(
        parse(input, &LIMITS),
        Ok(Parsed {
            request: Request::TooLarge {
                mode: StoreMode::Cas,
                key: b"k",
                noreply: false,
                swallow: 2_000_002,
            },
            consumed: 21,
        })
    );
    // Bad arguments win over the size check; memcached 1.6.45 skips the block.
    assert_eq!(
        parse(b"cas k 0 0 2000000 x\r\n", &LIMITS),
        Err(ParseError::Invalid {
            reply: BAD_FORMAT,
            consumed: 21,
            swallow: 2_000_002
        })
    );
}

#[test]
fn arithmetic() {
    assert_eq!(
        request(b"incr n 5\r\n"),
        Request::Arith {
            key: b"n",
            delta: 5,
            incr: true,
            noreply: false
        }
    );
    assert_eq!(
        request(b"decr n 18446744073709551615 noreply\r\n"),
        Request::Arith {
            key: b"n",
            delta: u64::MAX,
            incr: false,
            noreply: true
        }
    );
    assert!(matches!(
        request(b"incr n 1 2\r\n"),
        Request::Arith {
            delta: 1,
            noreply: false,
            ..
        }
    ));
    assert!(matches!(
        request(b"decr n +2\r\n"),
        Request::Arith { delta: 2, .. }
    ));
    assert!(matches!(
        request(b"incr n -9223372036854775809\r\n"),
        Request::Arith {
            delta: 9223372036854775807,
            ..
        }
    ));
    for bad in [
        &b"incr n abc\r\n"[..],
        b"incr n -1\r\n",
        b"incr n 18446744073709551616\r\n",
        b"decr n 0x5\r\n",
    ] {
        assert_eq!(refused(bad), BAD_DELTA);
    }
    assert_eq!(refused(b"incr n abc noreply\r\n"), SILENT);
    assert_eq!(refused(b"incr n noreply\r\n"), SILENT);
    // memcached 1.6.45: a missing delta is a format error, extra tokens are ignored.
    assert_eq!(refused(b"incr n\r\n"), BAD_FORMAT);
    assert!(matches!(
        request(b"incr n 1 2 3\r\n"),
        Request::Arith { .. }
    ));
    let long = [&b"incr "[..], &[b'k'; 251], b" 1\r\n"].concat();
    assert_eq!(refused(&long), BAD_FORMAT);
}

#[test]
fn delete() {
    let plain = Request::Delete {
        key: b"k",
        noreply: false,
    };
    let quiet = Request::Delete {
        key: b"k",
        noreply: true,
    };
    assert_eq!(request(b"delete k\r\n"), plain);
    assert_eq!(request(b"delete k 0\r\n"), plain);
    assert_eq!(request(b"delete k noreply\r\n"), quiet);
    assert_eq!(request(b"delete k 0 noreply\r\n"), quiet);
    assert_eq!(
        request(b"delete noreply\r\n"),
        Request::Delete {
            key: b"noreply",
            noreply: false
        }
    );
    // memcached 1.6.18's hold-time rule stays (1.6.45 ignores it and fails memccapable).
    for bad in [
        &b"delete k 1\r\n"[..],
        b"delete k 0 x\r\n",
        b"delete k noreply x\r\n",
        b"delete k 00\r\n",
    ] {
        assert_eq!(refused(bad), DELETE_USAGE);
    }
    assert_eq!(refused(b"delete k 1 noreply\r\n"), SILENT);
    assert_eq!(refused(b"delete k x noreply\r\n"), SILENT);
    assert_eq!(refused(b"delete k 0 0 0\r\n"), ERROR);
    // A missing key: memcached 1.6.45's format error (1.6.18 said ERROR).
    assert_eq!(refused(b"delete\r\n"), BAD_FORMAT);
    let long = [&b"delete "[..], &[b'k'; 251], b"\r\n"].concat();
    assert_eq!(refused(&long), BAD_FORMAT);
    let long = [&b"delete "[..], &[b'k'; 251], b" noreply\r\n"].concat();
    assert_eq!(refused(&long), SILENT);
}

#[test]
fn touch() {
    assert_eq!(
        request(b"touch k 10\r\n"),
        Request::Touch {
            key: b"k",
            exptime: 10,
            noreply: false
        }
    );
    assert_eq!(
        request(b"touch k -1 noreply\r\n"),
        Request::Touch {
            key: b"k",
            exptime: -1,
            noreply: true
        }
    );
    assert!(matches!(
        request(b"touch k 1 x\r\n"),
        Request::Touch { noreply: false, .. }
    ));
    assert_eq!(refused(b"touch k abc\r\n"), BAD_EXPTIME);
    assert_eq!(refused(b"touch k abc noreply\r\n"), SILENT);
    // memcached 1.6.45: a missing exptime is a format error, extra tokens are ignored.
    assert_eq!(refused(b"touch k\r\n"), BAD_FORMAT);
    assert!(matches!(
        request(b"touch k 1 x y\r\n"),
        Request::Touch { .. }
    ));
    let long = [&b"touch "[..], &[b'k'; 251], b" 1\r\n"].concat();
    assert_eq!(refused(&long), BAD_FORMAT);
}

#[test]
fn flush_all() {
    let flush = |delay_secs, noreply| Request::FlushAll {
        delay_secs,
        noreply,
    };
    assert_eq!(request(b"flush_all\r\n"), flush(0, false));
    assert_eq!(request(b"flush_all 0\r\n"), flush(0, false));
    assert_eq!(request(b"flush_all 10\r\n"), flush(10, false));
    assert_eq!(request(b"flush_all -5\r\n"), flush(-5, false));
    assert_eq!(request(b"flush_all noreply\r\n"), flush(0, true));
    assert_eq!(request(b"flush_all 10 noreply\r\n"), flush(10, true));
    assert_eq!(request(b"flush_all 10 x\r\n"), flush(10, false));
    assert_eq!(request(b"flush_all 0\t\r\n"), flush(0, false));
    assert_eq!(refused(b"flush_all abc\r\n"), BAD_EXPTIME);
    assert_eq!(refused(b"flush_all noreply 10\r\n"), BAD_EXPTIME);
    assert_eq!(refused(b"flush_all abc noreply\r\n"), SILENT);
    assert_eq!(refused(b"flush_all 1 2 3\r\n"), ERROR);
}

#[test]
fn verbosity() {
    let verbosity = |level, noreply| Request::Verbosity { level, noreply };
    assert_eq!(request(b"verbosity 1\r\n"), verbosity(1, false));
    assert_eq!(request(b"verbosity 1 noreply\r\n"), verbosity(1, true));
    assert_eq!(request(b"verbosity 1 x\r\n"), verbosity(1, false));
    assert_eq!(request(b"verbosity 4294967296\r\n"), verbosity(0, false));
    // memcached 1.6.45: no level is a format error, extra tokens are ignored.
    assert_eq!(refused(b"verbosity\r\n"), BAD_FORMAT);
    assert_eq!(request(b"verbosity 1 2 3\r\n"), verbosity(1, false));
    assert_eq!(refused(b"verbosity x\r\n"), BAD_FORMAT);
    assert_eq!(refused(b"verbosity -1\r\n"), BAD_FORMAT);
    assert_eq!(refused(b"verbosity noreply\r\n"), SILENT);
}

#[test]
fn stats_version_quit() {
    let cases: [(&[u8], StatsGroup<'_>); 10] = [
        (b"stats\r\n", StatsGroup::General),
        (b"stats  \r\n", StatsGroup::General),
        (b"stats settings\r\n", StatsGroup::Settings),
        (b"stats settings x\r\n", StatsGroup::Settings),
        (b"stats items\r\n", StatsGroup::Items),
        (b"stats slabs\r\n", StatsGroup::Slabs),
        (b"stats conns\r\n", StatsGroup::Conns),
        (b"stats sizes\r\n", StatsGroup::Sizes),
        (b"stats reset\r\n", StatsGroup::Reset),
        (b"stats foo  bar \r\n", StatsGroup::Other(b"foo  bar")),
    ];
    for (input, group) in cases {
        assert_eq!(request(input), Request::Stats(group), "{input:?}");
    }
    assert_eq!(
        request(b"stats foo\r\n"),
        Request::Stats(StatsGroup::Other(b"foo"))
    );
    assert_eq!(request(b"version\r\n"), Request::Version);
    assert_eq!(request(b"version foo bar\r\n"), Request::Version);
    assert_eq!(request(b"quit\r\n"), Request::Quit);
    assert_eq!(request(b"quit x y\n"), Request::Quit);
    assert_eq!(
        request(b"refresh_certs\r\n"),
        Request::RefreshCerts { noreply: false }
    );
    assert_eq!(
        request(b"refresh_certs noreply\r\n"),
        Request::RefreshCerts { noreply: true }
    );
    assert_eq!(refused(b"stats\t\r\n"), ERROR);
}

#[test]
fn unknown_and_empty() {
    // memcached 1.6.45: a line under two bytes is a format error.
    for input in [&b"\r\n"[..], b"\n", b"\0\r\n", b"x\r\n", b" \r\n"] {
        assert_eq!(refused(input), BAD_FORMAT, "{input:?}");
    }
    for input in [
        &b"   \r\n"[..],
        b"foo\r\n",
        b"x HTTP/1.0\r\n",
        b"gxx HTTP/1.0\r\n",
        b"mx HTTP/1.0\r\n",
        b"foo HTTP/1.0 x\r\n",
        b"mz\r\n", // two bytes starting with m, but no meta command
        b"slabs HTTP/1.0\r\n",
        b"lru_crawler HTTP/1.1\r\n",
    ] {
        assert_eq!(refused(input), ERROR, "{input:?}");
    }
    // The operator commands have their own tests (`text/operator.rs`); their names
    // are dispatched before the HTTP check, as memcached's are.
    assert_eq!(refused(b"lru HTTP/1.0\r\n"), ERROR);
    assert_eq!(refused(b"lru x noreply\r\n"), SILENT);
    assert!(matches!(
        request(b"watch HTTP/1.0\r\n"),
        Request::Watch { kinds: None, .. }
    ));
    assert!(matches!(
        request(b"shutdown HTTP/1.0\r\n"),
        Request::Shutdown(_)
    ));
    for input in [
        &b"GET / HTTP/1.1\r\n"[..],
        b"foo HTTP/1.0\r\n",
        b"rxx HTTP/1.0\r\n",
        b"mxx HTTP/1.0\n",
        b"POST /x HTTP/2\r\n",
    ] {
        assert_eq!(
            parse(input, &LIMITS),
            Err(ParseError::Fatal { reply: None }),
            "{input:?}"
        );
    }
    // A get whose key looks like HTTP is still a get.
    assert_eq!(keys(&request(b"get HTTP/1.0\r\n")), [&b"HTTP/1.0"[..]]);
}

#[test]
fn too_many_tokens() {
    let mut line = b"set k 0 0 1".to_vec();
    line.extend_from_slice(&b" x".repeat(30));
    line.extend_from_slice(b"\r\nx\r\n");
    // memcached 1.6.45 ignores the extra tokens (1.6.18 said ERROR).
    assert!(matches!(request(&line), Request::Store { .. }));
    let mut line = b"version".to_vec();
    line.extend_from_slice(&b" x".repeat(30));
    line.extend_from_slice(b"\r\n");
    assert_eq!(request(&line), Request::Version);
    // memcached's HTTP check looks at the 23rd token when there are more.
    let mut line = b"foo".to_vec();
    line.extend_from_slice(&b" x".repeat(21));
    line.extend_from_slice(b" HTTP/1.0 y y\r\n");
    assert_eq!(
        parse(&line, &LIMITS),
        Err(ParseError::Fatal { reply: None })
    );
}

#[test]
fn long_lines() {
    // 2048 bytes without a newline: wait. 2049: memcached closes.
    assert_eq!(parse(&[b'x'; 2048], &LIMITS), Err(ParseError::Incomplete));
    assert_eq!(
        parse(&[b'x'; 2049], &LIMITS),
        Err(ParseError::Fatal { reply: None })
    );
    let mut at_limit = vec![b'x'; 2048];
    at_limit.push(b'\n');
    assert_eq!(refused(&at_limit), ERROR);
    // A long set line is refused even when its newline is there.
    let mut set = b"set ".to_vec();
    set.extend_from_slice(&[b'k'; 2990]);
    set.extend_from_slice(b" 0 0 1\r\nx\r\n");
    assert_eq!(parse(&set, &LIMITS), Err(ParseError::Fatal { reply: None }));
    // get/gets lines may be longer, after at most 100 leading spaces.
    let spaced = |n: usize, command: &[u8]| [vec![b' '; n], command.to_vec()].concat();
    let keys_1500 = b"k ".repeat(1500);
    for prefix in [
        b"get ".to_vec(),
        b"gets ".to_vec(),
        b"get  ".to_vec(),
        spaced(100, b"get "),
        spaced(4, b"gets "),
    ] {
        let mut line = [&prefix[..], &keys_1500].concat();
        assert_eq!(parse(&line, &LIMITS), Err(ParseError::Incomplete));
        line.extend_from_slice(b"k\r\n");
        assert_eq!(keys(&request(&line)).len(), 1501);
    }
    for prefix in [
        b"gat 0 ".to_vec(),
        b"get\t".to_vec(),
        b"GET ".to_vec(),
        spaced(101, b"get "),
    ] {
        let line = [&prefix[..], &keys_1500].concat();
        assert_eq!(
            parse(&line, &LIMITS),
            Err(ParseError::Fatal { reply: None }),
            "{prefix:?}"
        );
    }
}

#[test]
fn get_line_cap() {
    let mut line = b"get ".to_vec();
    line.resize(GET_LINE_MAX_BYTES, b'k');
    assert_eq!(parse(&line, &LIMITS), Err(ParseError::Incomplete));
    let mut whole = line.clone();
    whole.push(b'\n');
    // One over-long key, but framed: a CLIENT_ERROR, not a close.
    assert_eq!(refused(&whole), BAD_GET_KEY);
    line.push(b'k');
    assert_eq!(
        parse(&line, &LIMITS),
        Err(ParseError::Fatal {
            reply: Some(GET_LINE_TOO_LONG)
        })
    );
}

#[test]
fn incomplete() {
    for input in [
        &b""[..],
        b"g",
        b"get a",
        b"get a\r",
        b"set k 0 0 3\r\n",
        b"set k 0 0 3\r\nab",
        b"set k 0 0 3\r\nabc",
        b"set k 0 0 3\r\nabc\r",
        b"set k 0 0 3\nabc",
    ] {
        assert_eq!(
            parse(input, &LIMITS),
            Err(ParseError::Incomplete),
            "{input:?}"
        );
    }
}

/// Requests memcached accepts, pipelined: each parses in turn, consuming exactly itself.
const SAMPLES: [&[u8]; 24] = [
    b"get foo\r\n",
    b"gets a b c\r\n",
    b"gat 100 a b\r\n",
    b"gats 0 a\n",
    b"set k 1 2 3\r\nabc\r\n",
    b"set k 0 0 5 noreply\r\nhe\r\no\r\n",
    b"add k 0 0 0\r\n\r\n",
    b"replace k 0 0 1\nx\r\n",
    b"append k 0 0 2\r\nxy\r\n",
    b"prepend k 0 0 2 noreply\r\nxy\r\n",
    b"cas k 0 0 1 99\r\nx\r\n",
    b"incr k 1\r\n",
    b"decr k 2 noreply\r\n",
    b"delete k\r\n",
    b"delete k 0 noreply\r\n",
    b"touch k 10\r\n",
    b"flush_all\r\n",
    b"flush_all 10 noreply\r\n",
    b"version\r\n",
    b"verbosity 1\r\n",
    b"stats\r\n",
    b"stats items\r\n",
    b"stats detail dump\r\n",
    b"quit\r\n",
];

#[test]
fn pipelined() {
    let stream: Vec<u8> = SAMPLES.concat();
    let mut at = 0;
    for sample in SAMPLES {
        let parsed = parse(&stream[at..], &LIMITS).unwrap();
        assert_eq!(parsed.consumed, sample.len(), "{sample:?}");
        assert_eq!(parsed.request, request(sample));
        at += parsed.consumed;
    }
    assert_eq!(at, stream.len());
    assert_eq!(parse(&stream[at..], &LIMITS), Err(ParseError::Incomplete));
}

#[test]
fn any_split_parses_the_same() {
    let refusals: [&[u8]; 6] = [
        b"set a 0 0 1\r\nxyz",
        b"set a 0 0 -1\r\n",
        b"bogus\r\n",
        b"incr a x noreply\r\n",
        b"set k 0 0 2000000\r\n",
        b"GET / HTTP/1.1\r\n",
    ];
    for whole in SAMPLES.iter().chain(refusals.iter()) {
        let expected = parse(whole, &LIMITS);
        assert!(
            !matches!(expected, Err(ParseError::Incomplete)),
            "{whole:?}"
        );
        for cut in 0..whole.len() {
            assert_eq!(
                parse(&whole[..cut], &LIMITS),
                Err(ParseError::Incomplete),
                "{whole:?} cut at {cut}"
            );
        }
        // Trailing bytes of a next request change nothing.
        let mut longer = whole.to_vec();
        longer.extend_from_slice(b"get next\r\n");
        assert_eq!(parse(&longer, &LIMITS), expected, "{whole:?}");
    }
}

/// A small deterministic PRNG (xorshift64*), so the hostile-input test needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn hostile_input_never_panics() {
    const PIECES: [&[u8]; 20] = [
        b"get",
        b"gets",
        b"gat",
        b"set",
        b"cas",
        b"incr",
        b"delete",
        b"touch",
        b"flush_all",
        b"verbosity",
        b"stats",
        b"noreply",
        b" ",
        b"  ",
        b"\r\n",
        b"\n",
        b"\r",
        b"\0",
        b"HTTP/1.1",
        b"-",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut input = Vec::new();
    for _ in 0..4000 {
        input.clear();
        let parts = rng.below(12);
        for _ in 0..parts {
            match rng.below(4) {
                0 => input.extend_from_slice(PIECES[rng.below(PIECES.len())]),
                1 => input.extend_from_slice(rng.next().to_string().as_bytes()),
                2 => input.push(rng.next() as u8),
                _ => {
                    let n = rng.below(8);
                    input.extend((0..n).map(|_| b'a' + rng.below(26) as u8));
                }
            }
            if rng.below(3) == 0 {
                input.push(b' ');
            }
        }
        if rng.below(40) == 0 {
            let n = rng.below(3000);
            input.extend((0..n).map(|_| rng.next() as u8));
        }
        let result = parse(&input, &LIMITS);
        let consumed = match &result {
            Ok(parsed) => parsed.consumed,
            Err(ParseError::Invalid { consumed, .. }) => *consumed,
            Err(_) => 0,
        };
        assert!(consumed <= input.len(), "{input:?}");
        if let Ok(Parsed {
            request: Request::Get { keys, .. },
            ..
        }) = result
        {
            assert!(keys
                .iter()
                .all(|k| !k.is_empty() && k.len() <= KEY_MAX_BYTES));
        }
    }
}
