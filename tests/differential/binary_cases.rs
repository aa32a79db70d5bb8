//! The binary differential table: requests as packets, built by [`req`] (and [`raw`]
//! for malformed headers). Names say what each case attacks. Also the accepted
//! deviations from memcached, each with its reason.

/// One step of a case.
pub enum Part {
    /// These bytes in one write.
    Send(Vec<u8>),
    /// One write per byte.
    Bytewise(Vec<u8>),
    /// Nothing is sent: the replies are read until the packet with this opaque has
    /// arrived. For answers memcached loses when later bytes arrive in the same read.
    Await(u32),
    /// Reads until the answer with `opaque` has arrived, then sends `f(its CAS)`.
    WithCas(u32, fn(u64) -> Vec<u8>),
}

pub use Part::{Await, Bytewise, Send, WithCas};

pub struct Case {
    pub name: &'static str,
    pub send: Vec<Part>,
    /// The server is expected to close the connection (memcached does).
    pub closes: bool,
}

fn case(name: &'static str, send: Vec<Part>) -> Case {
    Case {
        name,
        send,
        closes: false,
    }
}

fn closing(name: &'static str, send: Vec<Part>) -> Case {
    Case {
        name,
        send,
        closes: true,
    }
}

/// A case where ringcache is allowed to answer differently from memcached.
pub struct Deviation {
    pub case: &'static str,
    /// Why (taken from the verified-behaviour table of `crates/protocol/src/binary.rs`).
    pub why: &'static str,
    /// ringcache's expected answer, one normalised packet per line (as the runner
    /// prints them), and whether it closes.
    pub reply: &'static [&'static str],
    pub closes: bool,
    /// memcached loses sync or stalls on this case, so its own run proves nothing (it
    /// may hang until the case's timeout): it is not run.
    pub skip_reference: bool,
}

/// Known, accepted differences: where memcached 1.6.18 loses the stream's framing or
/// answers depending on how the bytes were batched, ringcache stays framed.
pub const DEVIATIONS: &[Deviation] = &[
    Deviation {
        case: "unknown_opcode_with_extras_and_key",
        why: "memcached 1.6.18 skips an unknown opcode's extras and key twice and loses \
              sync (crates/protocol/src/binary.rs: unassigned opcode row); ringcache skips the \
              body once, answers 0x81 and serves the next request",
        reply: &[
            "magic=81 op=1f klen=0 elen=0 dt=00 st=0081 opq=00000001 cas=0 ext=[] key=\"\" val=\"Unknown command\"",
            "magic=81 op=00 klen=0 elen=0 dt=00 st=0001 opq=00000002 cas=0 ext=[] key=\"\" val=\"Not found\"",
        ],
        closes: false,
        skip_reference: true,
    },
    Deviation {
        case: "verbosity_with_extras",
        why: "memcached 1.6.18 does not serve binary VERBOSITY: it answers 0x81 and skips \
              the extras twice, losing sync (crates/protocol/src/binary.rs: VERBOSITY 0x1b row); \
              ringcache answers 0x81 and stays framed",
        reply: &[
            "magic=81 op=1b klen=0 elen=0 dt=00 st=0081 opq=00000001 cas=0 ext=[] key=\"\" val=\"Unknown command\"",
            "magic=81 op=00 klen=0 elen=0 dt=00 st=0001 opq=00000002 cas=0 ext=[] key=\"\" val=\"Not found\"",
        ],
        closes: false,
        skip_reference: true,
    },
    Deviation {
        case: "gat_with_bytes_after_key",
        why: "memcached 1.6.18 reads the bytes after a TOUCH/GAT key as the next header \
              (loses sync, here: bad magic, closed); ringcache answers and swallows them \
              (crates/protocol/src/binary.rs: TOUCH/GAT*/STAT row)",
        reply: &[
            "magic=81 op=01 klen=0 elen=0 dt=00 st=0000 opq=00000001 cas=c1 ext=[] key=\"\" val=\"\"",
            "magic=81 op=1d klen=0 elen=4 dt=00 st=0000 opq=00000002 cas=c1 ext=[00000007] key=\"\" val=\"abc\"",
            "magic=81 op=00 klen=0 elen=4 dt=00 st=0000 opq=00000003 cas=c1 ext=[00000007] key=\"\" val=\"abc\"",
        ],
        closes: false,
        skip_reference: true,
    },
    Deviation {
        case: "key_len_over_body_nothing_after",
        why: "memcached 1.6.18 waits for extras + key bytes past the header before it \
              sees that they exceed the body (the connection hangs until more bytes \
              come); ringcache answers from the header: 0x81, closed \
              (crates/protocol/src/binary.rs: key_len > body_len row)",
        reply: &[
            "magic=81 op=00 klen=0 elen=0 dt=00 st=0081 opq=00000001 cas=0 ext=[] key=\"\" val=\"Unknown command\"",
        ],
        closes: true,
        skip_reference: true,
    },
    Deviation {
        case: "bad_magic_after_requests_same_read",
        why: "memcached 1.6.18 closes on a bad magic and loses the answers to earlier \
              requests of the same read; ringcache sends them, then closes \
              (crates/protocol/src/binary.rs: later packet with magic != 0x80 row)",
        reply: &[
            "magic=81 op=01 klen=0 elen=0 dt=00 st=0000 opq=00000001 cas=c1 ext=[] key=\"\" val=\"\"",
            "magic=81 op=00 klen=0 elen=4 dt=00 st=0000 opq=00000002 cas=c1 ext=[00000000] key=\"\" val=\"A\"",
        ],
        closes: true,
        skip_reference: false,
    },
];

/// The opcodes, from the protocol crate (the short names the cases use for the
/// arithmetic ones as aliases).
pub mod op {
    pub use ringcache::protocol::binary::opcode::*;
    pub use ringcache::protocol::binary::opcode::{
        DECREMENT as DECR, DECREMENTQ as DECRQ, INCREMENT as INCR, INCREMENTQ as INCRQ,
    };
}

use op::*;

/// A request packet: the 24-byte header (magic 0x80, data type 0, vbucket 0) with
/// lengths that match the body, then extras, key and value.
pub fn req(opcode: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
    let body = [extras, key, value].concat();
    let key_len = u16::try_from(key.len()).expect("key fits u16");
    let extras_len = u8::try_from(extras.len()).expect("extras fit u8");
    raw(
        0x80,
        opcode,
        key_len,
        extras_len,
        body.len() as u32,
        opaque,
        cas,
        &body,
    )
}

/// A packet with every header field given (lengths may lie about `body`).
#[allow(clippy::too_many_arguments)]
pub fn raw(
    magic: u8,
    opcode: u8,
    key_len: u16,
    extras_len: u8,
    body_len: u32,
    opaque: u32,
    cas: u64,
    body: &[u8],
) -> Vec<u8> {
    let mut v = Vec::with_capacity(24 + body.len());
    v.push(magic);
    v.push(opcode);
    v.extend_from_slice(&key_len.to_be_bytes());
    v.push(extras_len);
    v.push(0); // data type
    v.extend_from_slice(&0u16.to_be_bytes()); // vbucket
    v.extend_from_slice(&body_len.to_be_bytes());
    v.extend_from_slice(&opaque.to_be_bytes());
    v.extend_from_slice(&cas.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// SET/ADD/REPLACE extras: flags, exptime.
pub fn store_extras(flags: u32, exptime: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exptime.to_be_bytes()].concat()
}

/// INCR/DECR extras: delta, initial, exptime.
pub fn arith_extras(delta: u64, initial: u64, exptime: u32) -> Vec<u8> {
    [
        &delta.to_be_bytes()[..],
        &initial.to_be_bytes(),
        &exptime.to_be_bytes(),
    ]
    .concat()
}

fn set(key: &[u8], flags: u32, value: &[u8], opaque: u32) -> Vec<u8> {
    store(SET, key, flags, value, opaque, 0)
}

fn store(opcode: u8, key: &[u8], flags: u32, value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
    req(opcode, key, &store_extras(flags, 0), value, opaque, cas)
}

fn get(opcode: u8, key: &[u8], opaque: u32) -> Vec<u8> {
    req(opcode, key, &[], &[], opaque, 0)
}

fn arith(opcode: u8, key: &[u8], delta: u64, initial: u64, exptime: u32, opaque: u32) -> Vec<u8> {
    req(
        opcode,
        key,
        &arith_extras(delta, initial, exptime),
        &[],
        opaque,
        0,
    )
}

fn exptime(opcode: u8, key: &[u8], exptime: u32, opaque: u32) -> Vec<u8> {
    req(opcode, key, &exptime.to_be_bytes(), &[], opaque, 0)
}

fn bare(opcode: u8, opaque: u32) -> Vec<u8> {
    req(opcode, &[], &[], &[], opaque, 0)
}

/// Concatenates packets into one write.
fn batch(packets: &[Vec<u8>]) -> Part {
    Send(packets.concat())
}

/// Each packet in its own write.
fn each(packets: Vec<Vec<u8>>) -> Vec<Part> {
    packets.into_iter().map(Send).collect()
}

/// `bytes` cut at `cuts` (offsets), one write per piece.
fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut from = 0;
    for &cut in cuts {
        parts.push(Send(bytes[from..cut].to_vec()));
        from = cut;
    }
    parts.push(Send(bytes[from..].to_vec()));
    parts
}

const MIB: usize = 1024 * 1024;

/// The table.
pub fn cases() -> Vec<Case> {
    vec![
        // ---- retrieval
        case("get_miss", each(vec![get(GET, b"a", 1)])),
        case(
            "get_hit_flags_and_cas",
            each(vec![set(b"a", 0xdead_beef, b"abc", 1), get(GET, b"a", 2)]),
        ),
        case(
            "getq_miss_silent_hit_answered",
            each(vec![
                get(GETQ, b"a", 1),
                set(b"a", 3, b"abc", 2),
                get(GETQ, b"a", 3),
            ]),
        ),
        case(
            "getk_hit_and_miss_carry_key",
            each(vec![
                set(b"key", 5, b"value", 1),
                get(GETK, b"key", 2),
                get(GETK, b"nokey", 3),
            ]),
        ),
        case(
            "getkq_hit_and_miss",
            vec![
                Send(set(b"key", 5, b"value", 1)),
                batch(&[get(GETKQ, b"key", 2), get(GETKQ, b"nokey", 3)]),
            ],
        ),
        case(
            "get_empty_value_and_binary_value",
            each(vec![
                set(b"e", 0, b"", 1),
                set(b"b", 0, b"\x00\r\n\x80\xff", 2),
                get(GETK, b"e", 3),
                get(GETK, b"b", 4),
            ]),
        ),
        // ---- storage
        case(
            "add_replace_set",
            each(vec![
                store(ADD, b"a", 1, b"A", 1, 0),
                store(ADD, b"a", 2, b"B", 2, 0),
                store(REPLACE, b"b", 3, b"C", 3, 0),
                store(REPLACE, b"a", 4, b"D", 4, 0),
                store(SET, b"b", 5, b"E", 5, 0),
                get(GETK, b"a", 6),
                get(GETK, b"b", 7),
            ]),
        ),
        case(
            "quiet_stores_silent_on_success_errors_sent",
            vec![
                batch(&[
                    store(SETQ, b"a", 1, b"A", 1, 0),
                    store(ADDQ, b"a", 2, b"B", 2, 0),
                    store(REPLACEQ, b"b", 3, b"C", 3, 0),
                    store(ADDQ, b"b", 4, b"D", 4, 0),
                    store(REPLACEQ, b"a", 5, b"E", 5, 0),
                ]),
                batch(&[get(GETK, b"a", 6), get(GETK, b"b", 7)]),
            ],
        ),
        case(
            "set_with_matching_cas",
            vec![
                Send(set(b"a", 0, b"A", 1)),
                WithCas(1, |cas| store(SET, b"a", 9, b"B", 2, cas)),
                Send(get(GET, b"a", 3)),
            ],
        ),
        case(
            "set_with_stale_cas_exists",
            vec![
                Send(set(b"a", 0, b"A", 1)),
                WithCas(1, |cas| {
                    [set(b"a", 0, b"B", 2), store(SET, b"a", 0, b"C", 3, cas)].concat()
                }),
                Send(get(GET, b"a", 4)),
            ],
        ),
        case(
            "set_with_cas_on_missing_key",
            each(vec![store(SET, b"a", 0, b"A", 1, 12345), get(GET, b"a", 2)]),
        ),
        case(
            "add_and_replace_with_cas",
            vec![
                Send(set(b"a", 0, b"A", 1)),
                WithCas(1, |cas| {
                    [
                        store(ADD, b"a", 0, b"B", 2, cas + 1000),
                        store(REPLACE, b"a", 0, b"C", 3, cas + 1000),
                        store(REPLACE, b"a", 0, b"D", 4, cas),
                        store(ADD, b"z", 0, b"Z", 5, cas),
                    ]
                    .concat()
                }),
                Send(get(GET, b"a", 6)),
            ],
        ),
        case(
            "setq_cas_mismatch_is_sent",
            vec![
                Send(set(b"a", 0, b"A", 1)),
                WithCas(1, |cas| store(SETQ, b"a", 0, b"B", 2, cas + 1)),
                WithCas(1, |cas| store(SETQ, b"a", 0, b"C", 3, cas)),
                Send(get(GET, b"a", 4)),
            ],
        ),
        case(
            "set_exptime_absolute_past_expires",
            each(vec![
                req(SET, b"a", &store_extras(0, 2_592_001), b"A", 1, 0),
                get(GET, b"a", 2),
            ]),
        ),
        // ---- append / prepend
        case(
            "append_prepend_miss_then_hit",
            each(vec![
                req(APPEND, b"a", &[], b">", 1, 0),
                req(PREPEND, b"a", &[], b"<", 2, 0),
                set(b"a", 7, b"mm", 3),
                req(APPEND, b"a", &[], b">>", 4, 0),
                req(PREPEND, b"a", &[], b"<<", 5, 0),
                get(GET, b"a", 6),
            ]),
        ),
        case(
            "appendq_prependq",
            vec![
                batch(&[
                    set(b"a", 0, b"m", 1),
                    req(APPENDQ, b"a", &[], b">", 2, 0),
                    req(PREPENDQ, b"a", &[], b"<", 3, 0),
                    req(APPENDQ, b"b", &[], b"x", 4, 0),
                ]),
                Send(get(GET, b"a", 5)),
            ],
        ),
        case(
            "append_with_cas",
            vec![
                Send(set(b"a", 0, b"A", 1)),
                WithCas(1, |cas| {
                    [
                        req(APPEND, b"a", &[], b"x", 2, cas + 1000),
                        req(APPEND, b"a", &[], b"y", 3, cas),
                        req(APPEND, b"nope", &[], b"z", 4, cas),
                    ]
                    .concat()
                }),
                Send(get(GET, b"a", 5)),
            ],
        ),
        // ---- delete
        case(
            "delete_hit_then_miss",
            each(vec![
                set(b"a", 0, b"A", 1),
                get(DELETE, b"a", 2),
                get(DELETE, b"a", 3),
                get(GET, b"a", 4),
            ]),
        ),
        case(
            "deleteq_hit_silent_miss_sent",
            vec![
                Send(set(b"a", 0, b"A", 1)),
                batch(&[get(DELETEQ, b"a", 2), get(DELETEQ, b"a", 3)]),
                Send(get(GET, b"a", 4)),
            ],
        ),
        case(
            "delete_with_cas",
            vec![
                Send(set(b"a", 0, b"A", 1)),
                WithCas(1, |cas| {
                    [
                        req(DELETE, b"a", &[], &[], 2, cas + 1000),
                        req(DELETE, b"a", &[], &[], 3, cas),
                        req(DELETE, b"a", &[], &[], 4, cas),
                    ]
                    .concat()
                }),
            ],
        ),
        // ---- incr / decr
        case(
            "incr_decr_hit_keeps_flags",
            each(vec![
                set(b"n", 7, b"10", 1),
                arith(INCR, b"n", 5, 0, 0, 2),
                arith(DECR, b"n", 3, 0, 0, 3),
                get(GET, b"n", 4),
            ]),
        ),
        case(
            "incr_miss_creates_initial",
            each(vec![
                arith(INCR, b"n", 5, 42, 0, 1),
                arith(INCR, b"n", 1, 99, 0, 2),
                arith(DECR, b"m", 5, 7, 0, 3),
                get(GET, b"n", 4),
                get(GET, b"m", 5),
            ]),
        ),
        case(
            "incr_decr_miss_no_create",
            each(vec![
                arith(INCR, b"n", 1, 5, u32::MAX, 1),
                arith(DECR, b"n", 1, 5, u32::MAX, 2),
                get(GET, b"n", 3),
            ]),
        ),
        case(
            "incr_non_numeric",
            each(vec![
                set(b"n", 0, b"abc", 1),
                arith(INCR, b"n", 1, 0, 0, 2),
                arith(DECR, b"n", 1, 0, 0, 3),
                get(GET, b"n", 4),
            ]),
        ),
        case(
            "incr_wraps_decr_floors",
            each(vec![
                set(b"n", 0, b"18446744073709551615", 1),
                arith(INCR, b"n", 2, 0, 0, 2),
                arith(DECR, b"n", 5, 0, 0, 3),
                get(GET, b"n", 4),
            ]),
        ),
        case(
            "incrq_decrq_silent",
            vec![
                batch(&[
                    set(b"n", 0, b"5", 1),
                    arith(INCRQ, b"n", 10, 0, 0, 2),
                    arith(DECRQ, b"n", 1, 0, 0, 3),
                    arith(INCRQ, b"m", 1, 0, u32::MAX, 4),
                ]),
                Send(get(GET, b"n", 5)),
            ],
        ),
        case(
            "incr_with_cas",
            vec![
                Send(set(b"n", 0, b"1", 1)),
                WithCas(1, |cas| {
                    [
                        req(INCR, b"n", &arith_extras(1, 0, 0), &[], 2, cas + 1000),
                        req(INCR, b"n", &arith_extras(1, 0, 0), &[], 3, cas),
                    ]
                    .concat()
                }),
            ],
        ),
        // ---- touch / gat
        case(
            "touch_hit_and_miss",
            each(vec![
                set(b"a", 9, b"A", 1),
                exptime(TOUCH, b"a", 100, 2),
                exptime(TOUCH, b"b", 100, 3),
                get(GET, b"a", 4),
            ]),
        ),
        case(
            "touch_to_past_expires",
            each(vec![
                set(b"a", 0, b"A", 1),
                exptime(TOUCH, b"a", 2_592_001, 2),
                get(GET, b"a", 3),
            ]),
        ),
        case(
            "gat_gatk_hit_and_miss",
            each(vec![
                set(b"a", 9, b"abc", 1),
                exptime(GAT, b"a", 100, 2),
                exptime(GATK, b"a", 100, 3),
                exptime(GAT, b"b", 100, 4),
                exptime(GATK, b"b", 100, 5),
            ]),
        ),
        case(
            "gatq_gatkq_hit_and_miss",
            vec![
                Send(set(b"a", 9, b"abc", 1)),
                batch(&[
                    exptime(GATQ, b"a", 100, 2),
                    exptime(GATKQ, b"a", 100, 3),
                    exptime(GATQ, b"b", 100, 4),
                    exptime(GATKQ, b"b", 100, 5),
                ]),
            ],
        ),
        case(
            "gat_to_past_expires",
            each(vec![
                set(b"a", 0, b"A", 1),
                exptime(GAT, b"a", 2_592_001, 2),
                get(GET, b"a", 3),
            ]),
        ),
        // ---- flush
        case(
            "flush_now",
            each(vec![
                set(b"a", 0, b"A", 1),
                bare(FLUSH, 2),
                get(GET, b"a", 3),
                set(b"a", 0, b"B", 4),
                get(GET, b"a", 5),
            ]),
        ),
        case(
            "flush_with_delay_keeps_items_now",
            each(vec![
                set(b"a", 0, b"A", 1),
                req(FLUSH, &[], &100u32.to_be_bytes(), &[], 2, 0),
                get(GET, b"a", 3),
            ]),
        ),
        case(
            "flushq_silent",
            vec![
                Send(set(b"a", 0, b"A", 1)),
                batch(&[bare(FLUSHQ, 2), get(GET, b"a", 3)]),
            ],
        ),
        // ---- noop, version, stat, verbosity
        case("noop", each(vec![bare(NOOP, 7), bare(NOOP, 8)])),
        case("version", each(vec![bare(VERSION, 1)])),
        case(
            "stat_general",
            each(vec![set(b"a", 0, b"A", 1), req(STAT, &[], &[], &[], 2, 0)]),
        ),
        case(
            "stat_unknown_group_not_found",
            each(vec![req(STAT, b"bogus", &[], &[], 1, 0)]),
        ),
        case(
            "stat_detail_on_only_terminator",
            each(vec![req(STAT, b"detail on", &[], &[], 1, 0)]),
        ),
        case(
            "verbosity_without_body_unknown_command",
            each(vec![bare(VERBOSITY, 1), get(GET, b"a", 2)]),
        ),
        case(
            "unknown_opcode_with_value_body",
            vec![batch(&[
                req(0x1f, &[], &[], b"abcd", 1, 0),
                get(GET, b"a", 2),
            ])],
        ),
        case(
            "unknown_opcode_empty_body",
            each(vec![bare(0x1f, 1), bare(0xff, 2), get(GET, b"a", 3)]),
        ),
        // ---- quit
        closing("quit_answers_then_closes", each(vec![bare(QUIT, 1)])),
        closing("quitq_closes_silently", each(vec![bare(QUITQ, 1)])),
        closing(
            "quit_after_pipeline",
            vec![batch(&[
                set(b"a", 0, b"A", 1),
                get(GET, b"a", 2),
                bare(QUIT, 3),
                get(GET, b"a", 4),
            ])],
        ),
        // ---- pipelining and splitting
        case(
            "pipelined_quiet_sets_and_gets",
            vec![Send(pipelined_quiet())],
        ),
        case(
            "split_header",
            split(
                &[set(b"a", 1, b"A", 1), get(GET, b"a", 2)].concat(),
                &[5, 23, 24, 40],
            ),
        ),
        case(
            "split_body",
            split(
                &[set(b"key", 1, b"value", 1), get(GETK, b"key", 2)].concat(),
                &[28, 33, 35, 37, 40, 50],
            ),
        ),
        case(
            "byte_by_byte",
            vec![Bytewise(
                [
                    set(b"a", 3, b"hello", 1),
                    get(GETK, b"a", 2),
                    arith(INCR, b"c", 1, 10, 0, 3),
                    get(DELETE, b"a", 4),
                ]
                .concat(),
            )],
        ),
        // ---- too large
        case(
            "value_too_large_swallowed",
            each(vec![
                set(b"big", 0, &vec![b'x'; 2 * MIB], 1),
                get(GET, b"big", 2),
                set(b"big", 0, b"small", 3),
                get(GET, b"big", 4),
            ]),
        ),
        case(
            "setq_too_large_sent_and_unlinks",
            vec![
                Send(set(b"a", 0, b"old", 1)),
                batch(&[
                    store(SETQ, b"a", 0, &vec![b'x'; 2 * MIB], 2, 0),
                    get(GET, b"a", 3),
                ]),
            ],
        ),
        // ---- malformed
        closing(
            "bad_magic_closes",
            vec![
                Send(bare(NOOP, 1)),
                Await(1),
                Send(raw(0x81, GET, 1, 0, 1, 2, 0, b"a")),
            ],
        ),
        closing(
            "bad_magic_after_requests_same_read",
            vec![batch(&[
                set(b"a", 0, b"A", 1),
                get(GET, b"a", 2),
                raw(0x42, GET, 1, 0, 1, 3, 0, b"a"),
            ])],
        ),
        closing(
            "get_with_extras_invalid_arguments",
            vec![Send(req(GET, b"a", &[0, 0, 0, 0], &[], 1, 0))],
        ),
        closing(
            "set_without_extras_invalid_arguments",
            vec![Send(req(SET, b"a", &[], b"A", 1, 0))],
        ),
        closing(
            "incr_short_extras_invalid_arguments",
            vec![Send(req(INCR, b"n", &[0; 8], &[], 1, 0))],
        ),
        closing(
            "get_without_key_invalid_arguments",
            vec![Send(bare(GET, 1))],
        ),
        closing(
            "noop_with_body_invalid_arguments",
            vec![Send(req(NOOP, &[], &[], b"xx", 1, 0))],
        ),
        closing(
            "key_251_bytes_invalid_arguments",
            vec![Send(get(GET, &[b'k'; 251], 1))],
        ),
        case(
            "key_250_bytes_ok",
            each(vec![
                set(&[b'k'; 250], 0, b"V", 1),
                get(GETK, &[b'k'; 250], 2),
            ]),
        ),
        // memcached decides once extras + key bytes have arrived: a NOOP follows.
        closing(
            "key_len_over_body_unknown_command",
            vec![batch(&[
                raw(0x80, GET, 10, 0, 3, 1, 0, b"abc"),
                bare(NOOP, 2),
            ])],
        ),
        closing(
            "extras_and_key_over_body_unknown_command",
            vec![batch(&[
                raw(0x80, SET, 3, 8, 10, 1, 0, b"0123456789"),
                bare(NOOP, 2),
            ])],
        ),
        // ---- deviations (see DEVIATIONS)
        case(
            "unknown_opcode_with_extras_and_key",
            each(vec![
                req(0x1f, b"ab", &[1, 2, 3, 4], b"cd", 1, 0),
                get(GET, b"a", 2),
            ]),
        ),
        case(
            "verbosity_with_extras",
            each(vec![
                req(VERBOSITY, &[], &1u32.to_be_bytes(), &[], 1, 0),
                get(GET, b"a", 2),
            ]),
        ),
        closing(
            "key_len_over_body_nothing_after",
            vec![Send(raw(0x80, GET, 10, 0, 3, 1, 0, b"abc"))],
        ),
        case(
            "gat_with_bytes_after_key",
            each(vec![
                set(b"a", 7, b"abc", 1),
                req(GAT, b"a", &100u32.to_be_bytes(), b"junk", 2, 0),
                get(GET, b"a", 3),
            ]),
        ),
    ]
}

fn pipelined_quiet() -> Vec<u8> {
    let mut v = Vec::new();
    for i in 0..50u32 {
        let key = format!("k{i}");
        v.extend(store(
            SETQ,
            key.as_bytes(),
            i,
            format!("v{i}").as_bytes(),
            i,
            0,
        ));
    }
    for i in (0..60u32).step_by(7) {
        let key = format!("k{i}");
        v.extend(get(GETKQ, key.as_bytes(), 100 + i));
        v.extend(get(GETQ, key.as_bytes(), 200 + i));
    }
    v
}
