//! Parser tests: every opcode, every length rule, framing of refused packets, and
//! "any prefix is Incomplete".

use super::opcode::*;
use super::*;

const LIMITS: Limits = Limits {
    max_item_bytes: 1 << 20,
};

/// A request packet with lengths taken from the parts.
fn pkt(op: u8, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
    let body = extras.len() + key.len() + value.len();
    raw(
        op,
        key.len() as u16,
        extras.len() as u8,
        body as u32,
        0x1234,
        0,
    )
    .into_iter()
    .chain(extras.iter().copied())
    .chain(key.iter().copied())
    .chain(value.iter().copied())
    .collect()
}

/// A bare header with any lengths.
fn raw(op: u8, key_len: u16, ext_len: u8, body_len: u32, opaque: u32, cas: u64) -> Vec<u8> {
    let mut h = vec![REQUEST_MAGIC, op];
    h.extend_from_slice(&key_len.to_be_bytes());
    h.extend_from_slice(&[ext_len, 0, 0, 0]);
    h.extend_from_slice(&body_len.to_be_bytes());
    h.extend_from_slice(&opaque.to_be_bytes());
    h.extend_from_slice(&cas.to_be_bytes());
    h
}

fn set_extras(flags: u32, exptime: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exptime.to_be_bytes()].concat()
}

fn arith_extras(delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    [
        &delta.to_be_bytes()[..],
        &initial.to_be_bytes(),
        &exptime.to_be_bytes(),
    ]
    .concat()
}

/// Parses a whole packet, checking that it uses all of it (consumed + swallow) and
/// that every proper prefix that lacks needed bytes is Incomplete.
fn one(input: &[u8]) -> Command<'_> {
    let parsed = parse(input, &LIMITS).expect("a request");
    assert_eq!(parsed.consumed + parsed.swallow, input.len());
    assert_eq!(parsed.request.opaque, 0x1234);
    assert_eq!(parsed.request.opcode, input[1]);
    for cut in 0..parsed.consumed {
        assert_eq!(
            parse(&input[..cut], &LIMITS),
            Err(ParseError::Incomplete),
            "prefix {cut}"
        );
    }
    parsed.request.command
}

fn fatal(input: &[u8]) -> Status {
    match parse(input, &LIMITS) {
        Err(ParseError::Fatal { opcode, status, .. }) => {
            assert_eq!(opcode, input[1]);
            status
        }
        other => panic!("not fatal: {other:?}"),
    }
}

#[test]
fn header_fields_are_big_endian() {
    let mut bytes = raw(
        0x01,
        0x0102,
        8,
        0x0a0b0c0d,
        0xdead_beef,
        0x1122_3344_5566_7788,
    );
    bytes[5] = 9;
    bytes[6..8].copy_from_slice(&[0x33, 0x44]);
    let h = Header::read(&bytes);
    assert_eq!(
        h,
        Header {
            magic: 0x80,
            opcode: 0x01,
            key_len: 0x0102,
            extras_len: 8,
            data_type: 9,
            vbucket: 0x3344,
            body_len: 0x0a0b0c0d,
            opaque: 0xdead_beef,
            cas: 0x1122_3344_5566_7788,
        }
    );
}

#[test]
fn gets_and_gats() {
    for (op, with_key, quiet) in [
        (GET, false, false),
        (GETQ, false, true),
        (GETK, true, false),
        (GETKQ, true, true),
    ] {
        let p = pkt(op, &[], b"foo", &[]);
        let expected = Command::Get {
            key: b"foo",
            touch: None,
            with_key,
            quiet,
        };
        assert_eq!(one(&p), expected, "{op:#x}");
    }
    for (op, with_key, quiet) in [
        (GAT, false, false),
        (GATQ, false, true),
        (GATK, true, false),
        (GATKQ, true, true),
    ] {
        let p = pkt(op, &100u32.to_be_bytes(), b"foo", &[]);
        let expected = Command::Get {
            key: b"foo",
            touch: Some(100),
            with_key,
            quiet,
        };
        assert_eq!(one(&p), expected, "{op:#x}");
    }
}

#[test]
fn the_gat_opcodes_are_memcacheds() {
    assert_eq!(
        (TOUCH, GAT, GATQ, GATK, GATKQ),
        (0x1c, 0x1d, 0x1e, 0x23, 0x24)
    );
}

#[test]
fn touch() {
    let p = pkt(TOUCH, &7u32.to_be_bytes(), b"k", &[]);
    assert_eq!(
        one(&p),
        Command::Touch {
            key: b"k",
            exptime: 7
        }
    );
}

#[test]
fn store_commands() {
    let ex = set_extras(0xdead_beef, 300);
    for (op, mode, quiet) in [
        (SET, StoreMode::Set, false),
        (SETQ, StoreMode::Set, true),
        (ADD, StoreMode::Add, false),
        (ADDQ, StoreMode::Add, true),
        (REPLACE, StoreMode::Replace, false),
        (REPLACEQ, StoreMode::Replace, true),
    ] {
        let p = pkt(op, &ex, b"key", b"value");
        let expected = Command::Store {
            mode,
            key: b"key",
            flags: 0xdead_beef,
            exptime: 300,
            value: b"value",
            quiet,
        };
        assert_eq!(one(&p), expected, "{op:#x}");
    }
    for (op, mode, quiet) in [
        (APPEND, StoreMode::Append, false),
        (APPENDQ, StoreMode::Append, true),
        (PREPEND, StoreMode::Prepend, false),
        (PREPENDQ, StoreMode::Prepend, true),
    ] {
        let p = pkt(op, &[], b"key", b"tail");
        let expected = Command::Store {
            mode,
            key: b"key",
            flags: 0,
            exptime: 0,
            value: b"tail",
            quiet,
        };
        assert_eq!(one(&p), expected, "{op:#x}");
    }
    // An empty value is fine.
    assert!(matches!(
        one(&pkt(SET, &ex, b"k", b"")),
        Command::Store { value: b"", .. }
    ));
}

#[test]
fn delete_and_arith() {
    assert_eq!(
        one(&pkt(DELETE, &[], b"k", &[])),
        Command::Delete {
            key: b"k",
            quiet: false
        }
    );
    assert_eq!(
        one(&pkt(DELETEQ, &[], b"k", &[])),
        Command::Delete {
            key: b"k",
            quiet: true
        }
    );
    let ex = arith_extras(u64::MAX, 0x0102_0304_0506_0708, NO_CREATE);
    for (op, incr, quiet) in [
        (INCREMENT, true, false),
        (INCREMENTQ, true, true),
        (DECREMENT, false, false),
        (DECREMENTQ, false, true),
    ] {
        let expected = Command::Arith(Arith {
            key: b"n",
            incr,
            delta: u64::MAX,
            initial: 0x0102_0304_0506_0708,
            exptime: NO_CREATE,
            quiet,
        });
        assert_eq!(one(&pkt(op, &ex, b"n", &[])), expected, "{op:#x}");
    }
}

#[test]
fn commands_without_a_key() {
    assert_eq!(
        one(&pkt(FLUSH, &[], &[], &[])),
        Command::Flush {
            delay_secs: 0,
            quiet: false
        }
    );
    assert_eq!(
        one(&pkt(FLUSHQ, &10u32.to_be_bytes(), &[], &[])),
        Command::Flush {
            delay_secs: 10,
            quiet: true
        }
    );
    assert_eq!(one(&pkt(NOOP, &[], &[], &[])), Command::Noop);
    assert_eq!(one(&pkt(VERSION, &[], &[], &[])), Command::Version);
    assert_eq!(
        one(&pkt(QUIT, &[], &[], &[])),
        Command::Quit { quiet: false }
    );
    assert_eq!(
        one(&pkt(QUITQ, &[], &[], &[])),
        Command::Quit { quiet: true }
    );
}

#[test]
fn stat_groups() {
    let p = pkt(STAT, &[], b"settings", &[]);
    assert_eq!(
        one(&p),
        Command::Stat {
            group: Some(StatsGroup::Settings)
        }
    );
    assert_eq!(
        one(&pkt(STAT, &[], &[], &[])),
        Command::Stat {
            group: Some(StatsGroup::General)
        }
    );
    let group = stats_group;
    assert_eq!(group(b"settingsX"), Some(StatsGroup::Settings));
    assert_eq!(group(b"reset"), Some(StatsGroup::Reset));
    assert_eq!(group(b"resetxx"), Some(StatsGroup::Reset));
    assert_eq!(group(b"items"), Some(StatsGroup::Items));
    assert_eq!(group(b"slabs"), Some(StatsGroup::Slabs));
    assert_eq!(group(b"sizes"), Some(StatsGroup::Sizes));
    assert_eq!(group(b"detail on"), None);
    assert_eq!(group(b"detail off"), None);
    assert_eq!(group(b"conns"), Some(StatsGroup::Other(b"conns")));
    assert_eq!(group(b"items2"), Some(StatsGroup::Other(b"items2")));
    assert_eq!(group(b"detail x"), Some(StatsGroup::Other(b"detail x")));
}

#[test]
fn unknown_opcodes_are_answered_from_the_header_and_their_body_swallowed() {
    for op in [VERBOSITY, 0x1f, 0x25, 0x3d, 0xff] {
        let p = pkt(op, &1u32.to_be_bytes(), &[], b"xyz");
        let parsed = parse(&p[..HEADER_BYTES], &LIMITS).unwrap();
        assert_eq!(parsed.request.command, Command::Unknown, "{op:#x}");
        assert_eq!((parsed.consumed, parsed.swallow), (HEADER_BYTES, 7));
    }
    // SASL without SASL.
    assert_eq!(one(&pkt(SASL_LIST_MECHS, &[], &[], &[])), Command::Unknown);
    assert_eq!(
        one(&pkt(SASL_AUTH, &[], b"PLAIN", b"\0u\0p")),
        Command::Unknown
    );
    assert_eq!(one(&pkt(SASL_STEP, &[], b"PLAIN", &[])), Command::Unknown);
}

#[test]
fn bytes_after_the_key_of_touch_and_stat_are_swallowed() {
    let p = pkt(TOUCH, &1u32.to_be_bytes(), b"k", b"junk");
    let parsed = parse(&p[..HEADER_BYTES + 5], &LIMITS).unwrap();
    assert_eq!((parsed.consumed, parsed.swallow), (HEADER_BYTES + 5, 4));
    let p = pkt(STAT, &[], b"reset", b"zz");
    let parsed = parse(&p, &LIMITS).unwrap();
    assert_eq!((parsed.consumed, parsed.swallow), (HEADER_BYTES + 5, 2));
}

#[test]
fn bad_magic_closes_at_once() {
    assert_eq!(parse(&[0x81], &LIMITS), Err(ParseError::BadMagic));
    assert_eq!(parse(b"get k\r\n", &LIMITS), Err(ParseError::BadMagic));
    assert_eq!(parse(&[], &LIMITS), Err(ParseError::Incomplete));
    assert_eq!(parse(&[0x80], &LIMITS), Err(ParseError::Incomplete));
}

#[test]
fn lengths_beyond_the_body_are_unknown_command() {
    assert_eq!(fatal(&raw(GET, 3, 0, 2, 0, 0)), Status::UnknownCommand);
    assert_eq!(fatal(&raw(SET, 3, 8, 10, 0, 0)), Status::UnknownCommand);
    // Checked before the key length.
    assert_eq!(fatal(&raw(GET, 300, 0, 10, 0, 0)), Status::UnknownCommand);
}

#[test]
fn a_key_over_250_bytes_is_invalid_for_every_opcode() {
    let key = [b'k'; 251];
    for op in [GET, SET, DELETE, INCREMENT, STAT, TOUCH, 0x40] {
        assert_eq!(
            fatal(&raw(op, 251, 0, 251, 0, 0)),
            Status::InvalidArguments,
            "{op:#x}"
        );
    }
    assert!(parse(&pkt(GET, &[], &key[..250], &[]), &LIMITS).is_ok());
}

#[test]
fn lengths_outside_each_opcodes_rule_are_invalid() {
    let cases: &[(&str, Vec<u8>)] = &[
        ("get with extras", pkt(GET, b"abcd", b"foo", &[])),
        ("get without key", pkt(GET, &[], &[], &[])),
        ("getk with a value", pkt(GETK, &[], b"foo", b"xx")),
        ("set without extras", pkt(SET, &[], b"foo", b"bar")),
        ("set with 4 extras", pkt(SET, b"abcd", b"foo", b"bar")),
        ("set without key", pkt(SET, &set_extras(0, 0), &[], b"bar")),
        (
            "addq without key",
            pkt(ADDQ, &set_extras(0, 0), &[], b"bar"),
        ),
        ("append with extras", pkt(APPEND, b"abcd", b"foo", b"zz")),
        ("prepend without key", pkt(PREPEND, &[], &[], b"zz")),
        ("delete with extras", pkt(DELETE, b"abcd", b"foo", &[])),
        ("delete with a value", pkt(DELETE, &[], b"foo", b"xx")),
        ("delete without key", pkt(DELETEQ, &[], &[], &[])),
        ("incr with 8 extras", pkt(INCREMENT, &[1; 8], b"n", &[])),
        (
            "incr with a value",
            pkt(INCREMENT, &arith_extras(1, 0, 0), b"n", b"zz"),
        ),
        (
            "decr without key",
            pkt(DECREMENT, &arith_extras(1, 0, 0), &[], &[]),
        ),
        ("flush with 8 extras", pkt(FLUSH, b"abcdefgh", &[], &[])),
        ("flush with a key", pkt(FLUSH, &[], b"x", &[])),
        ("flush with a value", pkt(FLUSHQ, &[], &[], b"x")),
        ("stat with extras", pkt(STAT, b"abcd", &[], &[])),
        ("touch without extras", pkt(TOUCH, &[], b"foo", &[])),
        (
            "touch without key",
            pkt(TOUCH, &1u32.to_be_bytes(), &[], &[]),
        ),
        ("gatk with 8 extras", pkt(GATK, &[0; 8], b"foo", &[])),
        ("noop with extras", pkt(NOOP, b"abcd", &[], &[])),
        ("version with a key", pkt(VERSION, &[], b"x", &[])),
        ("quit with a key", pkt(QUIT, &[], b"x", &[])),
        ("quitq with a value", pkt(QUITQ, &[], &[], b"x")),
        (
            "sasl list with a key",
            pkt(SASL_LIST_MECHS, &[], b"kk", &[]),
        ),
        ("sasl auth without key", pkt(SASL_AUTH, &[], &[], b"x")),
        (
            "sasl step with extras",
            pkt(SASL_STEP, b"abcd", b"PLAIN", &[]),
        ),
    ];
    for (name, p) in cases {
        // Decided from the header alone.
        assert_eq!(
            fatal(&p[..HEADER_BYTES]),
            Status::InvalidArguments,
            "{name}"
        );
    }
}

#[test]
fn an_over_sized_value_is_refused_once_its_key_is_in() {
    let limits = Limits {
        max_item_bytes: 1024,
    };
    // memcached: 48 + 8 + key + 1 + value + 2 ≤ 1024, plus 4 for non-zero flags.
    let fits = 1024 - 48 - 8 - 1 - 1 - 2;
    let ok = pkt(SET, &set_extras(0, 0), b"k", &vec![b'v'; fits]);
    assert!(matches!(
        parse(&ok, &limits).unwrap().request.command,
        Command::Store { .. }
    ));
    for (op, flags, len) in [
        (SET, 0, fits + 1),
        (SETQ, 1, fits - 3),
        (ADD, 0, 100_000),
        (APPEND, 0, fits + 1),
    ] {
        let extras = if op == APPEND {
            vec![]
        } else {
            set_extras(flags, 0)
        };
        let p = pkt(op, &extras, b"k", &vec![b'v'; len]);
        let fixed = HEADER_BYTES + extras.len() + 1;
        let parsed = parse(&p[..fixed], &limits).unwrap();
        assert_eq!(
            parsed.request.command,
            Command::TooLarge {
                mode: store_mode(op),
                key: b"k"
            },
            "{op:#x}"
        );
        assert_eq!((parsed.consumed, parsed.swallow), (fixed, len));
        assert_eq!(parse(&p[..fixed - 1], &limits), Err(ParseError::Incomplete));
    }
    // Non-zero flags cost 4 bytes: the value that fits with flags 0 does not with 1.
    let p = pkt(SET, &set_extras(1, 0), b"k", &vec![b'v'; fits]);
    assert!(matches!(
        parse(&p, &limits).unwrap().request.command,
        Command::TooLarge { .. }
    ));
}

#[test]
fn a_huge_body_length_never_waits_for_the_body() {
    // Unknown opcode: answered from the header.
    let p = raw(0x40, 0, 0, u32::MAX, 0, 0);
    let parsed = parse(&p, &LIMITS).unwrap();
    assert_eq!(parsed.swallow, u32::MAX as usize);
    // A store: refused as too large once the extras and key are in.
    let mut p = raw(SET, 1, 8, u32::MAX, 0, 0);
    p.extend_from_slice(&set_extras(0, 0));
    p.push(b'k');
    let parsed = parse(&p, &LIMITS).unwrap();
    assert_eq!(parsed.swallow, u32::MAX as usize - 9);
    // Commands with an exact body: invalid.
    assert_eq!(
        fatal(&raw(GET, 1, 0, u32::MAX, 0, 0)),
        Status::InvalidArguments
    );
}

#[test]
fn pipelined_packets_parse_one_at_a_time() {
    let mut input = pkt(GETQ, &[], b"a", &[]);
    input.extend(pkt(SET, &set_extras(0, 0), b"b", b"vv"));
    input.extend(pkt(NOOP, &[], &[], &[]));
    let mut pos = 0;
    let mut ops = Vec::new();
    while pos < input.len() {
        let parsed = parse(&input[pos..], &LIMITS).unwrap();
        ops.push(parsed.request.opcode);
        pos += parsed.consumed + parsed.swallow;
    }
    assert_eq!(ops, [GETQ, SET, NOOP]);
}

#[test]
fn the_header_cas_and_opaque_are_kept() {
    let mut p = pkt(DELETE, &[], b"k", &[]);
    p[12..16].copy_from_slice(&77u32.to_be_bytes());
    p[16..24].copy_from_slice(&99u64.to_be_bytes());
    let r = parse(&p, &LIMITS).unwrap().request;
    assert_eq!((r.opaque, r.cas), (77, 99));
}

/// The look-ahead finds the key of whole GET-family and SET/SETQ packets, agrees with
/// the parser on where the packet ends, and declines anything else.
#[test]
fn peek_key_reads_gets_and_sets_only() {
    for op in [GET, GETQ, GETK, GETKQ] {
        let p = pkt(op, &[], b"a key", &[]);
        assert_eq!(peek_key(&p), Some((&b"a key"[..], p.len())), "{op:#x}");
        assert_eq!(parse(&p, &LIMITS).unwrap().consumed, p.len());
    }
    let set = pkt(SETQ, &set_extras(7, 0), b"k", b"value");
    assert_eq!(peek_key(&set), Some((&b"k"[..], set.len())));
    let mut two = set.clone();
    two.extend_from_slice(&pkt(GET, &[], b"next", &[]));
    assert_eq!(peek_key(&two), Some((&b"k"[..], set.len())));
    assert_eq!(peek_key(&set[..set.len() - 1]), None, "not fully arrived");
    assert_eq!(
        peek_key(&pkt(DELETE, &[], b"k", &[])),
        None,
        "not a get or set"
    );
    assert_eq!(peek_key(&pkt(GET, &[], b"", &[])), None, "no key");
    assert_eq!(
        peek_key(&raw(GET, 10, 0, 4, 0, 0)),
        None,
        "key longer than the body"
    );
    let mut bad_magic = pkt(GET, &[], b"k", &[]);
    bad_magic[0] = 0x81;
    assert_eq!(peek_key(&bad_magic), None);
    assert_eq!(
        peek_key(&pkt(GET, &[], &[b'k'; KEY_MAX_BYTES + 1], &[])),
        None
    );
}
