//! The fast path against the general parser: plain lines it must read, lines it must
//! leave, seeded mutations of both, and (proptest) generated meta lines, hostile ones
//! included; the look-ahead's peek and the plain meta get against the parser too.

use super::*;
use crate::text::{parse_general, parse_plain_meta_get};
use crate::LINE_MAX_BYTES;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

fn limits() -> Limits {
    Limits {
        max_item_bytes: 1024,
    }
}

/// Every input the fast path reads gets the general parser's answer: [`parse`], the
/// plain get and meta get the connection runs directly ([`plain_get`],
/// [`parse_plain_meta_get`]) and the look-ahead's [`peek`] (see [`peek_agrees`]).
/// Returns whether [`parse`] read it.
fn agrees(input: &[u8]) -> bool {
    let limits = limits();
    let general = parse_general(input, &limits);
    let shown = String::from_utf8_lossy(input);
    if let Some((meta, consumed)) = parse_plain_meta_get(input) {
        let request = Request::Meta(MetaRequest::Get(meta));
        assert_eq!(Ok(Parsed { request, consumed }), general, "{shown:?}");
    }
    if let Some((key, consumed)) = plain_get(input) {
        let request = Request::Get {
            keys: Keys::one(key),
            with_cas: false,
            touch: None,
        };
        assert_eq!(Ok(Parsed { request, consumed }), general, "{shown:?}");
    }
    if let Some(peeked) = peek(input, &limits) {
        peek_agrees(input, peeked.key, peeked.consumed, &general);
        if let Some(request) = peeked.plain.request() {
            let consumed = peeked.consumed;
            assert_eq!(Ok(Parsed { request, consumed }), general, "{shown:?}");
        }
    }
    match parse(input, &limits) {
        Some(fast) => {
            assert_eq!(fast, general, "{shown:?}");
            true
        }
        None => false,
    }
}

/// What the look-ahead peeked (`key`, `consumed`) is what the general parser makes of
/// the same input: a request of that key (an `mg` key as sent, base64 or not) and
/// length, or a refusal of that line, or (an `mg` line past [`LINE_MAX_BYTES`], whose
/// one-letter flags the peek skips) the close such a line gets.
fn peek_agrees(
    input: &[u8],
    key: &[u8],
    consumed: usize,
    general: &Result<Parsed<'_>, ParseError>,
) {
    let shown = String::from_utf8_lossy(input);
    match general {
        Ok(Parsed {
            request,
            consumed: c,
        }) => {
            let looked_up = match request {
                Request::Get { keys, .. } => keys.iter().next(),
                Request::Store { key, .. } => Some(*key),
                Request::Meta(MetaRequest::Get(m) | MetaRequest::Set { meta: m, .. }) => {
                    Some(m.key.token)
                }
                _ => None,
            };
            assert_eq!(looked_up, Some(key), "{shown:?}");
            assert_eq!(*c, consumed, "{shown:?}");
        }
        Err(ParseError::Invalid {
            consumed: c,
            swallow: 0,
            ..
        }) if input.starts_with(b"mg ") => assert_eq!(*c, consumed, "{shown:?}"),
        Err(ParseError::Fatal { .. }) if consumed > LINE_MAX_BYTES => {}
        other => panic!("{shown:?}: peeked {key:?} {consumed}, parsed {other:?}"),
    }
}

#[test]
fn plain_lines_take_the_fast_path() {
    for input in [
        &b"get key:0001\r\n"[..],
        b"get k\n",
        b"gets k\r\nget j\r\n",
        b"set k 0 0 3\r\nabc\r\n",
        b"set k 4294 999999999 0 noreply\n\r\n",
        b"set k 1 2 5\r\nab",
        b"get \x80\x7f\r\n",
        b"mg key:0001 k v\r\n",
        b"mg k\r\n",
        b"mg k s v f t c q u h l\n",
        b"ms k 3\r\nabc\r\n",
        b"ms k 3 T60 F5 q k c s\r\nabc\r\n",
        b"ms k 3\r\nab",
    ] {
        assert!(agrees(input), "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn anything_else_is_left_to_the_general_parser() {
    for input in [
        &b"get a b\r\n"[..],
        b"get  a\r\n",
        b"get a\r",
        b"get a",
        b"get a\0\r\n",
        b"get a\tb\r\n",
        b"get \r\n",
        b"gets\r\n",
        b"set k 0 0 +3\r\nabc\r\n",
        b"set k 0 0 1234567890\r\n",
        b"set k 0 0 3 junk\r\nabc\r\n",
        b"set k 0 0 3\r\nabcd\r\n",
        b"set k 0 0 2000\r\n",
        b"set k 0 0 3 \r\nabc\r\n",
        b"sets k\r\n",
        b"mg k v v\r\n",
        b"mg k b\r\n",
        b"mg k O123\r\n",
        b"mg k T30 v\r\n",
        b"mg k  v\r\n",
        b"mg k v \r\n",
        b"mg k vv\r\n",
        b"ms k 3 I\r\nabc\r\n",
        b"ms k 3 T-1\r\nabc\r\n",
        b"ms k 3 MA\r\nabc\r\n",
        b"ms k 3\r\nabcd\r\n",
        b"ms k 2000\r\n",
    ] {
        assert!(
            parse(input, &limits()).is_none(),
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let long_key = [&b"get "[..], &[b'k'; KEY_MAX_BYTES + 1], b"\r\n"].concat();
    assert!(parse(&long_key, &limits()).is_none());
    let max_key = [&b"get "[..], &[b'k'; KEY_MAX_BYTES], b"\r\n"].concat();
    assert!(agrees(&max_key));
}

/// A single-key `Keys` (what this path makes) equals the general parser's list of
/// the same key and iterates to exactly that key.
#[test]
fn one_key_equals_a_list_of_it() {
    let one = Keys::one(b"k:1");
    assert!(one.is_one() && !Keys::list(b"k:1").is_one());
    assert_eq!(one, Keys::list(b"k:1"));
    assert_eq!(one, Keys::list(b"  k:1 "));
    assert_ne!(one, Keys::list(b"k:1 k:1"));
    assert_eq!(one.iter().collect::<Vec<_>>(), [b"k:1"]);
    let many: Vec<&[u8]> = Keys::list(b" a  bb ccc").iter().collect();
    assert_eq!(many, [&b"a"[..], b"bb", b"ccc"]);
}

/// Seeded mutations (substitutions, insertions, deletions, cuts) of plain lines: the
/// fast path must agree with the general parser on every one it reads, and read
/// many of them.
#[test]
fn agrees_with_the_general_parser_on_mutations() {
    let templates: [&[u8]; 10] = [
        b"mg key:0001 k v\r\n",
        b"mg k s v f t c q\r\n",
        b"ms k 3 T60 F7 q\r\nabc\r\n",
        b"ms key 10 c k\r\n0123456789\r\nmg key v\r\n",
        b"get key:0001\r\n",
        b"gets k\n",
        b"set k 0 0 3\r\nabc\r\n",
        b"set key 12 345 10 noreply\r\n0123456789\r\n",
        b"set k 4294967 0 1\nx\r\nget k\r\n",
        b"get k\r\nset k 0 0 1\r\nx\r\n",
    ];
    let alphabet = b" \r\n\0\t0919+-anoreplykvstcfqhlbTFOIMmgs\x80\xff";
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut read = 0;
    for round in 0..100_000 {
        let mut input = templates[round % templates.len()].to_vec();
        for _ in 0..(next() % 3) {
            let at = (next() as usize) % (input.len() + 1);
            let byte = alphabet[(next() as usize) % alphabet.len()];
            match next() % 4 {
                0 if at < input.len() => input[at] = byte,
                1 => input.insert(at, byte),
                2 if at < input.len() => {
                    input.remove(at);
                }
                _ => input.truncate(at),
            }
        }
        if agrees(&input) {
            read += 1;
        }
    }
    assert!(read > 20_000, "only {read} inputs took the fast path");
}

/// Hostile meta lines, each next to the plain line it spoils: what the fast path reads
/// of them, it reads as the general parser does, and the rest it leaves.
#[test]
fn hostile_meta_lines() {
    let long_key = "k".repeat(KEY_MAX_BYTES + 1);
    let max_key = "k".repeat(KEY_MAX_BYTES);
    let lines: Vec<String> = vec![
        // Flags repeated, in every spelling the fast path knows.
        "mg k v v\r\n".into(),
        "mg k k v k\r\n".into(),
        "mg k h l h\r\n".into(),
        "ms k 1 T1 T2\r\nx\r\n".into(),
        "ms k 1 F1 q F2\r\nx\r\n".into(),
        "ms k 1 q q\r\nx\r\n".into(),
        // Bad tokens: unknown flags, flags with arguments, signs, bytes past 0x7f.
        "mg k Z\r\n".into(),
        "mg k ~\r\n".into(),
        "mg k @\r\n".into(),
        "mg k 1\r\n".into(),
        "mg k vx\r\n".into(),
        "mg k v1\r\n".into(),
        "mg k T\r\n".into(),
        "mg k T-1 v\r\n".into(),
        "mg k Oabc v\r\n".into(),
        "mg k \u{7f}\r\n".into(),
        "ms k 1 T\r\nx\r\n".into(),
        "ms k 1 T+5\r\nx\r\n".into(),
        "ms k 1 F-1\r\nx\r\n".into(),
        "ms k 1 T1234567890\r\nx\r\n".into(),
        "ms k 1 k5\r\nx\r\n".into(),
        "ms k 1 Z\r\nx\r\n".into(),
        "ms k 1 MA\r\nx\r\n".into(),
        "ms k 1 I\r\nx\r\n".into(),
        // Keys: over the limit, at it, base64, empty, with control bytes.
        format!("mg {long_key} v\r\n"),
        format!("mg {max_key} v\r\n"),
        format!("ms {long_key} 1\r\nx\r\n"),
        format!("ms {max_key} 1\r\nx\r\n"),
        "mg Zm9v b v\r\n".into(),
        "mg Zm9 b v\r\n".into(),
        "ms Zm9v 1 b\r\nx\r\n".into(),
        "mg  k v\r\n".into(),
        "mg \r\n".into(),
        "mg\r\n".into(),
        "mg k\x01 v\r\n".into(),
        // Datalen missing, signed, too long, over the item limit, not matching its block.
        "ms k\r\n".into(),
        "ms k \r\n".into(),
        "ms k T5\r\nx\r\n".into(),
        "ms k -1\r\n\r\n".into(),
        "ms k +1\r\nx\r\n".into(),
        "ms k 1234567890\r\n".into(),
        "ms k 2000\r\n".into(),
        "ms k 1\r\nxy\r\n".into(),
        "ms k 2\r\nx\r\n".into(),
        "ms k 1\r\nx\n".into(),
        // Spacing and line ends.
        "mg k  v\r\n".into(),
        "mg k v \r\n".into(),
        "mg k\tv\r\n".into(),
        "mg k v\r".into(),
        "mg k v".into(),
        "mg k v\n".into(),
        "mg k \r\n".into(),
        "mg k \n".into(),
        format!("mg k{}\r\n", " v".repeat(LINE_MAX_BYTES)),
    ];
    for line in &lines {
        agrees(line.as_bytes());
        for cut in 0..line.len() {
            agrees(&line.as_bytes()[..cut]);
        }
    }
    // The plain neighbours are read, hostile ones are not.
    assert!(agrees(format!("mg {max_key} v\r\n").as_bytes()));
    assert!(agrees(b"mg k v\n"));
    for line in [
        "mg k v v\r\n",
        "mg k @\r\n",
        "mg k v1\r\n",
        "mg Zm9v b v\r\n",
    ] {
        assert!(parse(line.as_bytes(), &limits()).is_none(), "{line:?}");
        assert!(parse_plain_meta_get(line.as_bytes()).is_none(), "{line:?}");
    }
}

/// Meta flag tokens as clients and fuzzers write them: one of the flags the fast path
/// reads (for `mg` or for `ms`), one it leaves (with an argument or without), or junk.
fn flag(get: bool) -> impl Strategy<Value = String> {
    let plain = if get {
        prop::sample::select(&b"kvstcfquhl"[..])
            .prop_map(|f| (f as char).to_string())
            .boxed()
    } else {
        prop_oneof![
            prop::sample::select(&b"kcsq"[..]).prop_map(|f| (f as char).to_string()),
            (prop::sample::select(&b"TF"[..]), 0u32..100_000)
                .prop_map(|(f, n)| format!("{}{n}", f as char)),
        ]
        .boxed()
    };
    prop_oneof![
        12 => plain,
        1 => (prop::sample::select(&b"TFkvcsq"[..]), 0u32..100_000)
            .prop_map(|(f, n)| format!("{}{n}", f as char)),
        1 => (prop::sample::select(&b"bOTNRCEIMJDPLSxZ"[..]), "[-+0-9a-zA-Z]{0,4}")
            .prop_map(|(f, arg)| format!("{}{arg}", f as char)),
        1 => "[ -~\t\x00\x7f\u{80}]{1,3}",
    ]
}

/// A key: plain (most), at and over the length limit, base64, empty, with a bad byte.
fn meta_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z0-9:_]{1,16}",
        1 => Just("k".repeat(KEY_MAX_BYTES)),
        1 => Just("k".repeat(KEY_MAX_BYTES + 1)),
        1 => Just("Zm9v".to_string()),
        1 => Just(String::new()),
        1 => "[a-z]{1,3}[\x00-\x20\x7f][a-z]{0,3}",
    ]
}

/// Separators between tokens: one space (most), two, a tab.
fn separator() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just(" "), 1 => Just("  "), 1 => Just("\t")]
}

/// How a line ends: `\r\n` (most), a bare `\n`, a lone `\r`, or not at all.
fn line_end() -> impl Strategy<Value = &'static str> {
    prop_oneof![8 => Just("\r\n"), 2 => Just("\n"), 1 => Just("\r"), 1 => Just("")]
}

/// An `mg` or `ms` line (with a data block, well formed or not, after `ms`), and what
/// may follow it.
fn meta_line() -> impl Strategy<Value = Vec<u8>> {
    any::<bool>().prop_flat_map(|get| meta_line_of(get, flag(get)))
}

/// [`meta_line`] of one command (`mg` if `get`) with its flags from `flags`.
fn meta_line_of(get: bool, flags: impl Strategy<Value = String>) -> impl Strategy<Value = Vec<u8>> {
    (
        Just(get),
        meta_key(),
        prop_oneof![
            6 => (0usize..40).prop_map(|n| n.to_string()),
            1 => Just(String::new()),
            1 => Just("-1".to_string()),
            1 => Just("+3".to_string()),
            1 => Just("2000".to_string()),
            1 => Just("1234567890".to_string()),
        ],
        prop::collection::vec((separator(), flags), 0..5),
        line_end(),
        (
            prop_oneof![6 => Just(0isize), 1 => -2isize..3],
            prop_oneof![6 => Just("\r\n"), 1 => Just("\n"), 1 => Just("xx")],
        ),
        prop_oneof![Just(""), Just("mg next v\r\n"), Just("get k\r\n")],
    )
        .prop_map(|(get, key, datalen, flags, end, (off, trailer), after)| {
            let mut line = if get {
                format!("mg {key}")
            } else {
                format!("ms {key} {datalen}")
            };
            for (sep, flag) in &flags {
                line.push_str(sep);
                line.push_str(flag);
            }
            line.push_str(end);
            let mut bytes = line.into_bytes();
            if !get {
                let n = datalen
                    .parse::<isize>()
                    .unwrap_or(0)
                    .saturating_add(off)
                    .clamp(0, 64);
                bytes.extend(std::iter::repeat_n(b'x', n as usize));
                bytes.extend_from_slice(trailer.as_bytes());
            }
            bytes.extend_from_slice(after.as_bytes());
            bytes
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    /// Generated meta lines, plain and hostile: the fast path, the plain meta get and
    /// the look-ahead agree with the general parser on every one, whole and cut short.
    #[test]
    fn generated_meta_lines_agree_with_the_general_parser(
        line in meta_line(),
        cut in any::<prop::sample::Index>(),
    ) {
        agrees(&line);
        agrees(&line[..cut.index(line.len() + 1)]);
    }
}

/// The generator makes lines the fast path reads, and the general parser's flag
/// tokens for them are the fast path's (so the mutation and property tests above
/// compare something).
#[test]
fn generated_lines_reach_the_fast_path() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = meta_line();
    let (mut gets, mut sets) = (0, 0);
    for _ in 0..2000 {
        let line = strategy.new_tree(&mut runner).unwrap().current();
        if agrees(&line) {
            match line[1] {
                b'g' => gets += 1,
                _ => sets += 1,
            }
        }
    }
    assert!(gets > 200 && sets > 60, "gets {gets}, sets {sets}");
}
