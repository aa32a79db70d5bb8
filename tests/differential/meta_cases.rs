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
        v.extend_from_slice(b" x");
    }
    v.extend_from_slice(b"\r\nma a v k c t O1 q N0 J0 D1 MI x x x x x x x x\r\n");
    // 19 tokens: served (the unknown flag is then what fails).
    v.extend_from_slice(b"mg a v k c f s t h l O1 u x x x x x x x\r\n");
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
        "mg_E_and_x_are_invalid_flags_in_1_6_18",
        &[
            W(b"ms a 1\r\nA\r\n"),
            W(b"mg a E5 v\r\nmg a x\r\nmg a v\r\n"),
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
