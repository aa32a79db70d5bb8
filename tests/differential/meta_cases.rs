//! The meta-command differential table (`mg ms md ma mn me`), run by the text runner
//! (`runner.rs`) exactly as the classic table is. Names say what each case attacks.
//! A `$CAS` write waits for a reply ending in `END` or `MN`: meta cases ask `mg k c`
//! followed by `mn` before one.

use crate::cases::{case, closing, newest, Bytewise, Case, Deviation, Gen, W};

/// Known, accepted differences from Debian's memcached 1.6.18: where memcached 1.6.45
/// answers otherwise (its rewritten parser), ringcache follows 1.6.45.
pub const META_DEVIATIONS: &[Deviation] = &[
    newest(
        "mg_no_key",
        b"CLIENT_ERROR bad command line format\r\nCLIENT_ERROR bad command line format\r\n",
    ),
    newest(
        "ms_size_mismatch_bad_data_chunk",
        b"CLIENT_ERROR bad data chunk\r\nCLIENT_ERROR bad command line format\r\n\
CLIENT_ERROR bad data chunk\r\nCLIENT_ERROR bad command line format\r\nEN\r\n",
    ),
    newest(
        "ms_key_251_bytes_nothing_swallowed",
        b"CLIENT_ERROR bad command line format\r\nMN\r\n",
    ),
    newest("ma_quiet", b"HD\r\nNF\r\nMN\r\nVA 1\r\n7\r\nVA 1\r\n7\r\n"),
    newest(
        "me_miss_and_hit",
        b"EN\r\nHD\r\nME a exp=~100 la=~0 cas=#1 fetch=no cls=1 size=63\r\n",
    ),
    newest(
        "ms_invalid_mode_swallows_data",
        b"CLIENT_ERROR invalid mode for ms M token\r\nCLIENT_ERROR invalid mode for ms M token\r\n\
HD\r\nVA 1\r\nC\r\n",
    ),
    newest(
        "ma_bad_tokens",
        b"HD\r\nCLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\n\
HD\r\nCLIENT_ERROR invalid or duplicate flag\r\nHD\r\nVA 1\r\n3\r\n",
    ),
    newest(
        "md_invalid_flag",
        b"HD\r\nHD\r\nCLIENT_ERROR duplicate flag\r\nEN\r\n",
    ),
    newest(
        "mg_E_and_x_flags",
        b"HD\r\nVA 1 c#1\r\nA\r\nHD\r\nVA 1\r\nA\r\n",
    ),
    newest(
        "ms_E_sets_the_cas",
        b"HD c#1\r\nVA 1 c#1\r\nA\r\nHD c#2\r\nHD c#3\r\nCLIENT_ERROR bad token in command line format\r\nCLIENT_ERROR bad token in command line format\r\nHD c#4\r\nHD c#4\r\nCLIENT_ERROR duplicate flag\r\nEX c0\r\nHD c#5\r\n",
    ),
    newest(
        "mg_C_equal_to_the_cas_omits_the_value",
        b"HD\r\nHD c#1\r\nVA 1 c#1\r\nA\r\nHD\r\nVA 1\r\nA\r\nHD s1 ka\r\nEN\r\nCLIENT_ERROR bad token in command line format\r\nMN\r\n",
    ),
    newest(
        "md_x_keeps_an_empty_item",
        b"HD c#1\r\nHD\r\nVA 0 c#1 f0 t-1 s0\r\n\r\nHD\r\nVA 0 c#2 f0 t~30 s0 X W\r\n\r\nVA 0 c#3\r\n\r\nNF\r\nEX\r\nHD ka O9\r\nMN\r\nHD\r\nHD\r\nVA 0 kfoo\r\n\r\n",
    ),
    newest(
        "md_E_gives_the_invalidated_cas",
        b"HD\r\nHD\r\nVA 1 c#1 X W\r\nA\r\nHD\r\nEN\r\nCLIENT_ERROR bad token in command line format\r\nCLIENT_ERROR bad token in command line format\r\n",
    ),
    newest(
        "ma_E_and_x",
        b"HD\r\nVA 1 c#1\r\n6\r\nVA 1 c#1\r\n6\r\nVA 2 c#2\r\n10\r\nVA 1\r\n7\r\nCLIENT_ERROR invalid or duplicate flag\r\nCLIENT_ERROR invalid or duplicate flag\r\nMN\r\n",
    ),
    newest(
        "mg_N_E_vivifies_with_the_cas",
        b"EN\r\nHD c#1 W\r\nHD c#1 Z\r\nCLIENT_ERROR bad token in command line format\r\n",
    ),
    newest(
        "ms_append_N_vivifies",
        b"HD c#1\r\nVA 1 t~100 f3\r\nz\r\nHD\r\nVA 2 t~100\r\nzy\r\nHD c#2\r\nVA 1 t-1 c#2\r\nz\r\nNS\r\nEN\r\nCLIENT_ERROR bad token in command line format\r\nMN\r\n",
    ),
    newest(
        "E_with_classic_commands_and_flush_all",
        b"HD\r\n100\r\nVALUE c 0 3 c1\r\n100\r\nEND\r\nHD\r\nSTORED\r\nVALUE d 0 2 c2\r\nab\r\nEND\r\nHD\r\nOK\r\nEN\r\nHD\r\nVA 1 c#3\r\nB\r\nSTORED\r\nVA 1\r\nC\r\n",
    ),
];

fn gen_key_251_mg() -> Vec<u8> {
    format!("mg {} v\r\nmg a v\r\n", "k".repeat(251)).into_bytes()
}

fn gen_key_250_ms_mg() -> Vec<u8> {
    let k = "k".repeat(250);
    format!("ms {k} 1\r\nV\r\nmg {k} v k\r\n").into_bytes()
}

fn gen_key_251_ms() -> Vec<u8> {
    // Nothing is swallowed: the data line is read as a command.
    format!("ms {} 1\r\nV\r\nmn\r\n", "k".repeat(251)).into_bytes()
}

fn gen_ms_too_large() -> Vec<u8> {
    let mut v = b"ms a 3\r\nold\r\n".to_vec();
    v.extend_from_slice(format!("ms a {} q\r\n", 2 * 1024 * 1024).as_bytes());
    v.extend(std::iter::repeat_n(b'x', 2 * 1024 * 1024));
    v.extend_from_slice(b"\r\nmg a v\r\n");
    v
}

fn gen_too_many_tokens() -> Vec<u8> {
    let mut v = b"ms a 1\r\nA\r\n".to_vec();
    // 20 tokens (command and key included): refused.
    v.extend_from_slice(b"mg a v k c f s t h l O1 q u");
    for _ in 0..7 {
        v.extend_from_slice(b" Z");
    }
    v.extend_from_slice(b"\r\nma a v k c t O1 q N0 J0 D1 MI Z Z Z Z Z Z Z Z\r\n");
    // 19 tokens: served (the unknown flag is then what fails).
    v.extend_from_slice(b"mg a v k c f s t h l O1 u Z Z Z Z Z Z Z\r\n");
    v
}

fn gen_opaque_too_long() -> Vec<u8> {
    let long = "9".repeat(32);
    let ok = "9".repeat(31);
    format!(
        "ms a 1 O{long}\r\nA\r\nms a 1 O{ok}\r\nB\r\nmg a v O{long}\r\nmg a v O{ok}\r\nmd a O{long}\r\nmg a v\r\n"
    )
    .into_bytes()
}

/// The table.
pub const META_CASES: &[Case] = &[
    // ---- mg
    case("mg_miss", &[W(b"mg a v\r\nmg a\r\n")]),
    case(
        "mg_miss_quiet_then_mn",
        &[W(b"mg a v q\r\nmg a v q k O1\r\nmn\r\n")],
    ),
    case(
        "mg_miss_echoes_opaque_and_key",
        &[W(b"mg a O77 k\r\nmg a k O77 v c\r\n")],
    ),
    case("mg_hit_no_flags", &[W(b"ms a 1\r\nA\r\n"), W(b"mg a\r\n")]),
    case(
        "mg_every_flag",
        &[
            W(b"ms a 3 T100 F5\r\nabc\r\n"),
            W(b"mg a v c f k s t l h O123\r\n"),
        ],
    ),
    case(
        "mg_flags_in_request_order",
        &[
            W(b"ms a 3 F9\r\nabc\r\n"),
            W(b"mg a O1 k h s f c t v\r\nmg a t c k O2\r\n"),
        ],
    ),
    case(
        "mg_hit_quiet_still_answers",
        &[W(b"ms a 1\r\nA\r\n"), W(b"mg a v q\r\nmg a q\r\nmn\r\n")],
    ),
    case(
        "mg_h_l_after_fetch",
        &[
            W(b"ms a 1\r\nA\r\n"),
            W(b"mg a h l\r\n"),
            W(b"mg a h l\r\n"),
            W(b"mg a h l v\r\n"),
        ],
    ),
    case(
        "mg_u_does_not_count_a_fetch",
        &[W(b"ms a 1\r\nA\r\n"), W(b"mg a u v\r\n"), W(b"mg a h\r\n")],
    ),
    case(
        "mg_t_without_ttl_is_minus_one",
        &[W(b"ms a 1\r\nA\r\n"), W(b"mg a t v\r\n")],
    ),
    case(
        "mg_T_touches_where_it_stands",
        &[
            W(b"ms a 1 T100\r\nA\r\n"),
            W(b"mg a t T300\r\n"),
            W(b"mg a T500 t\r\n"),
            W(b"mg a t\r\n"),
        ],
    ),
    case(
        "mg_N_vivifies_then_win_flags",
        &[
            W(b"mg a N30 v c t\r\n"),
            W(b"mg a N30 v c t\r\n"),
            W(b"ms a 1 T0\r\nA\r\n"),
            W(b"mg a v c\r\n"),
        ],
    ),
    case(
        "mg_R_recache_wins_below_ttl",
        &[
            W(b"ms a 1 T20\r\nA\r\n"),
            W(b"mg a R30 v\r\n"),
            W(b"mg a R30 v\r\n"),
            W(b"mg a R10 v\r\n"),
        ],
    ),
    case(
        "mg_E_and_x_flags",
        &[
            W(b"ms a 1\r\nA\r\n"),
            W(b"mg a E1000000005 v c\r\nmg a x\r\nmg a v\r\n"),
        ],
    ),
    // ---- memcached 1.6.45's additions (1.6.18: `E` and `x` are invalid flags)
    case(
        "ms_E_sets_the_cas",
        &[
            W(b"ms a 1 E1000000999 c\r\nA\r\nmg a c v\r\nms a 1 c\r\nB\r\n"),
            W(b"ms b 1 E0 c\r\nB\r\nms b 1 Eabc\r\nB\r\nms b 1 E-1\r\nB\r\n"),
            W(b"ms b 1 E18446744073709551615 c\r\nB\r\nmg b c\r\nms b 1 E1000000009 E1000000009\r\nB\r\n"),
            W(b"ms b 1 C1 E1000000009 c\r\nB\r\nms b 1 E1000000009 q\r\nB\r\nmg b c\r\n"),
        ],
    ),
    case(
        "mg_C_equal_to_the_cas_omits_the_value",
        &[
            W(b"ms a 1 E1000000077\r\nA\r\n"),
            W(b"mg a C1000000077 v c\r\nmg a C1000000078 v c\r\nmg a C1000000077 v q\r\nmg a C0 v\r\n"),
            W(b"mg a C1000000077 s k\r\nmg b C1000000077 v\r\nmg a Cx v\r\nmn\r\n"),
        ],
    ),
    case(
        "md_x_keeps_an_empty_item",
        &[
            W(b"ms a 3 F5 T100 c\r\nabc\r\n"),
            W(b"md a x\r\nmg a v c f t s\r\nmd a x I T30\r\nmg a v c f t s\r\n"),
            W(b"md a x E1000000042 q\r\nmg a v c\r\nmd b x\r\nmd a x C1\r\nmd a x1 k O9\r\nmn\r\n"),
            W(b"ms Zm9v 1 b\r\nA\r\nmd Zm9v b x\r\nmg Zm9v b k v\r\n"),
        ],
    ),
    case(
        "md_E_gives_the_invalidated_cas",
        &[
            W(b"ms a 1\r\nA\r\nmd a I E1000001234\r\nmg a c v\r\n"),
            W(b"md a E1000000005\r\nmg a c\r\nmd a E\r\nmd a Ex\r\n"),
        ],
    ),
    case(
        "ma_E_and_x",
        &[
            W(b"ms n 1\r\n5\r\nma n E1000004321 c v\r\nmg n c v\r\n"),
            W(b"ma m N0 J10 E1000000055 c v\r\nma n x v\r\nma n x x\r\nma n E\r\nmn\r\n"),
        ],
    ),
    case(
        "mg_N_E_vivifies_with_the_cas",
        &[W(b"mg v E1000000005\r\nmg v N0 E1000000066 c\r\nmg v c E1000000007 T30\r\nmg v E\r\n")],
    ),
    case(
        "ms_append_N_vivifies",
        &[
            W(b"ms a 1 MA N100 T5 F3 c\r\nz\r\nmg a v t f\r\nms a 1 MA N100\r\ny\r\n"),
            W(b"mg a v t\r\nms b 1 MP N0 E1000000008 c\r\nz\r\nmg b v t c\r\n"),
            W(b"ms c 1 MR N50\r\nz\r\nmg c v\r\nms d 1 MA Nx\r\nz\r\nmn\r\n"),
        ],
    ),
    case(
        "E_with_classic_commands_and_flush_all",
        &[
            W(b"ms c 2 E1000000007\r\n99\r\nincr c 1\r\ngets c\r\n"),
            W(b"ms d 1 E1000000008\r\na\r\nappend d 0 0 1\r\nb\r\ngets d\r\n"),
            W(b"ms e 1 E1000099999\r\nA\r\nflush_all\r\nmg e v\r\n"),
            W(b"ms f 1 E1000000001\r\nB\r\nmg f c v\r\ncas f 0 0 1 1000000001\r\nC\r\nmg f v\r\n"),
        ],
    ),
    case(
        "mg_base64_key",
        &[
            W(b"ms Zm9v 1 b\r\nA\r\n"),
            W(b"mg Zm9v b v k\r\nmg foo v k\r\nmg Zm9v v\r\n"),
        ],
    ),
    case(
        "mg_bad_base64_key",
        &[W(b"mg Zm9 b v\r\nmg !!!! b v\r\nmg Zg== b v k\r\n")],
    ),
    case(
        "mg_invalid_and_duplicate_flags",
        &[
            W(b"ms a 1\r\nA\r\n"),
            W(b"mg a zz\r\nmg a v v\r\nmg a v Y\r\nmg a N\r\nmg a Tx\r\nmg a v\r\n"),
        ],
    ),
    case("mg_no_key", &[W(b"mg\r\nmg \r\n")]),
    case("mg_key_251_bytes", &[Gen(gen_key_251_mg)]),
    case("ms_mg_key_250_bytes", &[Gen(gen_key_250_ms_mg)]),
    case("too_many_tokens", &[Gen(gen_too_many_tokens)]),
    case("opaque_token_too_long", &[Gen(gen_opaque_too_long)]),
    // ---- ms
    case(
        "ms_T_and_F",
        &[
            W(b"ms a 2 T100 F7\r\nAB\r\n"),
            W(b"mg a f t s v\r\nget a\r\n"),
        ],
    ),
    case(
        "ms_modes",
        &[
            W(b"ms a 1 ME\r\nA\r\nms a 1 ME\r\nB\r\n"),
            W(b"ms b 1 MR\r\nB\r\nms a 1 MR\r\nC\r\n"),
            W(b"ms a 1 MA\r\n>\r\nms a 1 MP\r\n<\r\nms c 1 MA\r\nX\r\nms c 1 MP\r\nX\r\n"),
            W(b"ms a 1 MS\r\nD\r\nms a 2 Ms\r\nEE\r\nmg a v\r\nmg b v\r\nmg c v\r\n"),
        ],
    ),
    case(
        "ms_append_keeps_flags_and_ttl",
        &[
            W(b"ms a 1 F3 T100\r\nA\r\n"),
            W(b"ms a 1 MA F9 T0\r\nB\r\n"),
            W(b"mg a v f t\r\n"),
        ],
    ),
    case(
        "ms_invalid_mode_swallows_data",
        &[W(
            b"ms a 1 MX\r\nA\r\nms a 1 M\r\nB\r\nms a 1 MSS\r\nC\r\nmg a v\r\n",
        )],
    ),
    case(
        "ms_compare_cas",
        &[
            W(b"ms a 1\r\nA\r\n"),
            W(b"mg a c\r\nmn\r\n"),
            W(b"ms a 1 C$BADCAS c\r\nB\r\nmn\r\n"),
            // No `c`: the next write reuses the CAS of the `mg`, now stale.
            W(b"ms a 1 C$CAS\r\nC\r\nmn\r\n"),
            W(b"ms a 1 C$CAS c\r\nD\r\n"),
            W(b"mg a v c\r\n"),
        ],
    ),
    case(
        "ms_compare_cas_missing_key",
        &[W(b"ms a 1 C123\r\nA\r\nms a 1 C123 q\r\nA\r\nmg a v\r\n")],
    ),
    case(
        "ms_c_k_O_echo",
        &[W(
            b"ms a 1 c k O5\r\nA\r\nms a 1 O6 ME k c\r\nB\r\nms a 1 b k\r\nC\r\n",
        )],
    ),
    case(
        "ms_quiet",
        &[W(
            b"ms a 1 q\r\nA\r\nms a 1 q ME\r\nB\r\nms b 1 q MR\r\nC\r\nmn\r\nmg a v\r\n",
        )],
    ),
    case(
        "ms_invalidate_with_current_cas_stores_fresh",
        &[
            W(b"ms a 1\r\nA\r\n"),
            W(b"mg a c\r\nmn\r\n"),
            W(b"ms a 1 I C$CAS\r\nB\r\n"),
            W(b"mg a v c\r\n"),
            W(b"mg a v c\r\n"),
        ],
    ),
    case(
        "ms_invalidate_with_older_cas_stores_stale",
        &[
            W(b"ms a 1 T100\r\nA\r\n"),
            W(b"mg a c\r\nmn\r\n"),
            // The item moves on; the CAS above is now older than the item's.
            W(b"ms a 1 T100\r\nB\r\nmn\r\n"),
            W(b"ms a 1 I T0 C$CAS\r\nC\r\nms a 1 C$BADCAS I\r\nD\r\n"),
            W(b"mg a v c t\r\n"),
            W(b"mg a v c t\r\n"),
        ],
    ),
    case(
        "ms_size_mismatch_bad_data_chunk",
        &[
            W(b"ms a 2\r\nABC\r\n"),
            W(b"ms a 2 q\r\nABCD\r\nmg a v\r\n"),
        ],
    ),
    case(
        "ms_bad_datalen",
        &[W(b"ms a x\r\nms a\r\nms a -1\r\nms a 1x\r\nmg a v\r\n")],
    ),
    case("ms_too_large_removes_key", &[Gen(gen_ms_too_large)]),
    case("ms_key_251_bytes_nothing_swallowed", &[Gen(gen_key_251_ms)]),
    case(
        "ms_invalid_flag_swallows_data",
        &[W(b"ms a 1 v\r\nA\r\nms a 1 c c\r\nB\r\nmg a v\r\n")],
    ),
    case(
        "ms_bad_F_T_tokens",
        &[W(
            b"ms a 1 Fx\r\nA\r\nms a 1 Tx\r\nB\r\nms a 1 Cx\r\nC\r\nmg a v\r\n",
        )],
    ),
    case(
        "ms_split_and_bytewise",
        &[
            W(b"ms a 5 T"),
            W(b"0 F3\r\nhel"),
            W(b"lo\r"),
            W(b"\n"),
            Bytewise(b"mg a v f\r\nms b 1 q\r\nB\r\nmn\r\n"),
        ],
    ),
    // ---- md
    case(
        "md_hit_then_miss",
        &[W(b"ms a 1\r\nA\r\n"), W(b"md a\r\nmd a\r\nmg a v\r\n")],
    ),
    case(
        "md_quiet",
        &[W(b"ms a 1\r\nA\r\n"), W(b"md a q\r\nmd a q\r\nmn\r\n")],
    ),
    case(
        "md_compare_cas",
        &[
            W(b"ms a 1\r\nA\r\n"),
            W(b"mg a c\r\nmn\r\n"),
            W(b"md a C$BADCAS\r\nmn\r\n"),
            W(b"md a C$CAS\r\nmg a v\r\n"),
        ],
    ),
    case(
        "md_k_O_echo_and_base64",
        &[
            W(b"ms Zm9v 1 b\r\nA\r\n"),
            W(b"md Zm9v b k O3\r\nmd a k O4\r\n"),
        ],
    ),
    case(
        "md_invalid_flag",
        &[
            W(b"ms a 1\r\nA\r\n"),
            W(b"md a v\r\nmd a q q\r\nmg a v\r\n"),
        ],
    ),
    case(
        "stale_while_revalidate",
        &[
            W(b"ms a 1 T100\r\nA\r\n"),
            W(b"md a I T30\r\n"),
            W(b"mg a v c t\r\n"),
            W(b"mg a v c t\r\n"),
            W(b"mg a c\r\nmn\r\n"),
            W(b"ms a 1 C$CAS I\r\nB\r\n"),
            W(b"mg a v c t\r\nmn\r\n"),
            W(b"ms a 1 C$CAS\r\nC\r\n"),
            W(b"mg a v c t\r\n"),
        ],
    ),
    // ---- ma
    case("ma_miss", &[W(b"ma n\r\nma n v\r\nma n q\r\nmn\r\n")]),
    case(
        "ma_autovivify_initial_and_delta",
        &[
            W(b"ma n N0 J10\r\n"),
            W(b"ma n v\r\n"),
            W(b"ma n MD D5 v\r\n"),
            W(b"ma n MI D100 v c t\r\n"),
            W(b"ma m N0 J13 v\r\nmg n v\r\nmg m v\r\n"),
        ],
    ),
    case(
        "ma_modes",
        &[
            W(b"ms n 2\r\n10\r\n"),
            W(b"ma n M+ D5 v\r\nma n M- D3 v\r\nma n Md v\r\nma n MI v\r\nma n Mx v\r\n"),
        ],
    ),
    case(
        "ma_decr_floors_incr_wraps",
        &[
            W(b"ms n 1\r\n5\r\nms m 20\r\n18446744073709551615\r\n"),
            W(b"ma n MD D10 v\r\nma m D2 v\r\n"),
        ],
    ),
    case(
        "ma_quiet",
        &[
            W(b"ms n 1\r\n5\r\n"),
            W(b"ma n q\r\nma n q v\r\nma x q\r\nma y q N0 J7\r\nmn\r\nmg n v\r\nmg y v\r\n"),
        ],
    ),
    case(
        "ma_non_numeric",
        &[W(b"ms n 3\r\nabc\r\n"), W(b"ma n\r\nma n v\r\nmg n v\r\n")],
    ),
    case(
        "ma_bad_tokens",
        &[
            W(b"ms n 1\r\n1\r\n"),
            W(b"ma n Dx\r\nma n J-1 N0\r\nma n MIX\r\nma n v v\r\nma n f\r\nmg n v\r\n"),
        ],
    ),
    case(
        "ma_compare_cas",
        &[
            W(b"ms n 1\r\n1\r\n"),
            W(b"mg n c\r\nmn\r\n"),
            W(b"ma n C$BADCAS v\r\nmn\r\n"),
            W(b"ma n C$CAS v c\r\n"),
        ],
    ),
    case(
        "ma_T_sets_ttl_k_O_echo",
        &[
            W(b"ma n N0 J1 T100 t k O9\r\n"),
            W(b"ma n T200 t v\r\nmg n t\r\n"),
        ],
    ),
    // ---- mn, me
    case("mn", &[W(b"mn\r\nmn extra args\r\n")]),
    case(
        "me_miss_and_hit",
        &[W(b"me a\r\n"), W(b"ms a 3 T100\r\nabc\r\n"), W(b"me a\r\n")],
    ),
    case(
        "me_after_fetch_and_no_ttl",
        &[W(b"ms a 1\r\nA\r\n"), W(b"mg a v\r\n"), W(b"me a\r\n")],
    ),
    case(
        "me_base64_and_errors",
        &[
            W(b"ms Zm9v 1 b\r\nA\r\n"),
            W(b"me Zm9v b\r\nme\r\nme Zm9 b\r\nme foo\r\n"),
        ],
    ),
    // ---- mixing and closing
    case(
        "meta_and_classic_share_items",
        &[
            W(b"set a 5 0 3\r\nabc\r\n"),
            W(b"mg a v f c\r\ngets a\r\n"),
            W(b"ms a 3 F6\r\nxyz\r\nget a\r\nmd a\r\nget a\r\n"),
        ],
    ),
    case(
        "meta_pipeline",
        &[W(
            b"ms a 1\r\nA\r\nmg a v\r\nma n N0 J5 v\r\nmd a q\r\nmg a v\r\nmn\r\nme n\r\n",
        )],
    ),
    closing("meta_then_quit", &[W(b"mg a v\r\nmn\r\nquit\r\nmn\r\n")]),
];
