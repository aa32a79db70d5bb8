//! Execution tests of the meta commands: whole sessions through a `Connection`, with
//! answers as memcached 1.6.18 gives them (CAS values renamed by first appearance).

use crate::server::connection::tests::{answers, server};
use crate::server::stats::Stat;
use crate::server::Server;
use std::sync::Arc;

/// The answers to `input` (sent whole), as text with CAS values renamed `<cas1>`, … by
/// first appearance.
fn run(s: &Arc<Server>, input: &str) -> String {
    normalise(&answers(s, &[input.as_bytes()]))
}

fn normalise(out: &[u8]) -> String {
    let text = String::from_utf8_lossy(out);
    let mut names: Vec<String> = Vec::new();
    let mut rename = |word: &str| -> String {
        let (prefix, rest) = match word.strip_prefix("cas=") {
            Some(rest) => ("cas=", rest),
            None => match word.strip_prefix('c') {
                Some(rest) => ("c", rest),
                None => return word.to_string(),
            },
        };
        if rest == "0" || rest.is_empty() || !rest.chars().all(|c| c.is_ascii_digit()) {
            return word.to_string();
        }
        let n = names.iter().position(|d| d == rest).unwrap_or_else(|| {
            names.push(rest.to_string());
            names.len() - 1
        });
        format!("{prefix}<cas{}>", n + 1)
    };
    text.split("\r\n")
        .map(|line| {
            line.split(' ')
                .map(&mut rename)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\r\n")
}

/// The CAS value of `key`, read with a classic gets.
fn cas_of(s: &Arc<Server>, key: &str) -> u64 {
    let out = String::from_utf8(answers(s, &[format!("gets {key}\r\n").as_bytes()])).unwrap();
    let line = out.lines().next().unwrap();
    line.rsplit(' ').next().unwrap().parse().unwrap()
}

#[test]
fn get_flags_on_a_hit_and_a_miss() {
    let s = server(&[]);
    let out = run(
        &s,
        "ms foo 3 T100 F5\r\nbar\r\nmg foo s v c f t k h l O123\r\nmg foo h\r\nmg foo u h\r\n\
mg nope\r\nmg nope q\r\nmg nope k O1 v c\r\nmg foo q\r\nmn\r\n",
    );
    assert_eq!(
        out,
        "HD\r\nVA 3 s3 c<cas1> f5 t100 kfoo h0 l0 O123\r\nbar\r\nHD h1\r\nHD h1\r\n\
EN\r\nEN knope O1\r\nHD\r\nMN\r\n"
    );
}

#[test]
fn ttl_flags_act_in_request_order() {
    let s = server(&[]);
    let out = run(
        &s,
        "ms foo 3 T100\r\nbar\r\nmg foo t T50\r\nmg foo t\r\nmg foo T0 t\r\nmg foo T-1 t\r\nmg foo\r\n",
    );
    let now = s.store.clock().now();
    let past = 1u32.wrapping_sub(now);
    assert_eq!(
        out,
        format!("HD\r\nHD t100\r\nHD t50\r\nHD t-1\r\nHD t{past}\r\nEN\r\n")
    );
}

#[test]
fn vivify_and_recache_hand_out_one_win() {
    let s = server(&[]);
    let out = run(
        &s,
        "mg nf N30 t v c\r\nmg nf N30 t v\r\nmg nf t h\r\nmg n2 t N30\r\nmg n3 N30 u\r\nmg n3 h\r\n",
    );
    assert_eq!(
        out,
        "VA 0 t30 c<cas1> W\r\n\r\nVA 0 t30 Z\r\n\r\nHD t30 h1 Z\r\nHD t-1 W\r\nHD W\r\nHD h0 Z\r\n"
    );
    let out = run(
        &s,
        "ms foo 3 T100\r\nbar\r\nmg foo R10 t\r\nmg foo R200 t\r\nmg foo R200\r\n\
ms never 1\r\nx\r\nmg never R200\r\n",
    );
    assert_eq!(out, "HD\r\nHD t100\r\nHD t100 W\r\nHD Z\r\nHD\r\nHD\r\n");
}

#[test]
fn stale_while_revalidate() {
    let s = server(&[]);
    run(&s, "ms foo 3 T100\r\nbar\r\n");
    assert_eq!(
        run(&s, "md foo I T30 q\r\nmd foo I k O5\r\n"),
        "HD kfoo O5\r\n"
    );
    // The first reader after an invalidation wins; every later one sees Z.
    assert_eq!(run(&s, "mg foo t v\r\n"), "VA 3 t30 X W\r\nbar\r\n");
    assert_eq!(run(&s, "mg foo t v\r\n"), "VA 3 t30 Z X\r\nbar\r\n");
    let cas = cas_of(&s, "foo");
    // A write with an older CAS and I lands, stays stale, keeps TTL and the win.
    let out = run(
        &s,
        &format!("ms foo 3 C{} I c\r\nnew\r\nmg foo t v\r\n", cas - 1),
    );
    assert_eq!(out, "HD c<cas1>\r\nVA 3 t30 Z X\r\nnew\r\n");
    let cas = cas_of(&s, "foo");
    assert_eq!(
        run(&s, &format!("ms foo 3 C{} I\r\nnew\r\n", cas + 1)),
        "EX\r\n"
    );
    // The winner's plain write clears it all.
    assert_eq!(
        run(&s, "ms foo 3 I\r\nfin\r\nmg foo t v\r\n"),
        "HD\r\nVA 3 t-1\r\nfin\r\n"
    );
}

#[test]
fn set_modes_cas_and_quiet() {
    let s = server(&[]);
    let out = run(
        &s,
        "ms foo 3 ME\r\nbar\r\nms foo 3 ME c\r\nbaz\r\nms foo 2 MA c k\r\nxy\r\n\
ms foo 2 MP O9 q\r\nab\r\nmg foo v\r\nms nope 2 MA q\r\nxy\r\nms nope 2 MR c\r\nxy\r\n\
ms nf 1 C3 k\r\nx\r\nms nf 1 ME C3\r\nx\r\n",
    );
    assert_eq!(
        out,
        "HD\r\nNS c0\r\nHD c<cas1> kfoo\r\nVA 7\r\nabbarxy\r\nNS\r\nNS c0\r\nNF knf\r\nHD\r\n"
    );
    let cas = cas_of(&s, "foo");
    let out = run(
        &s,
        &format!(
            "ms foo 1 C0\r\nx\r\nms foo 1 MA C1\r\nx\r\nms foo 1 MA C{cas} q\r\n!\r\n\
ms foo 1 MP C0 q\r\n<\r\nmg foo v\r\n"
        ),
    );
    assert_eq!(out, "EX\r\nEX\r\nVA 9\r\n<abbarxy!\r\n");
    let stats = s.stats.totals();
    assert_eq!(
        stats.get(Stat::CasBadval),
        1,
        "only set/replace count as cas"
    );
    assert_eq!(stats.get(Stat::CasMisses), 1);
}

#[test]
fn delete_and_its_quiet_mode() {
    let s = server(&[]);
    let out = run(
        &s,
        "ms foo 3\r\nbar\r\nmd foo C1 k O1\r\nmd foo C0\r\nmd foo T30\r\nmg foo\r\nmd foo q\r\n\
md foo k O2 q\r\nms foo 1 T100\r\nx\r\nmd foo I T30 q\r\nmg foo t v\r\nmd foo q\r\nmn\r\n",
    );
    assert_eq!(
        out,
        "HD\r\nEX kfoo O1\r\nEX\r\nHD\r\nEN\r\nNF\r\nNF kfoo O2\r\nHD\r\nVA 1 t30 X W\r\nx\r\nMN\r\n"
    );
    let stats = s.stats.totals();
    assert_eq!(stats.get(Stat::DeleteHits), 2);
    assert_eq!(stats.get(Stat::DeleteMisses), 4);
}

#[test]
fn arithmetic() {
    let s = server(&[]);
    let out = run(
        &s,
        "ma n\r\nma n q\r\nma n N0 J10 v\r\nma n v\r\nma n q\r\nma n v D5 MD\r\nma n v D100 M-\r\n\
ma n v M+ D18446744073709551615\r\nma n c t v k O1\r\nma n T100 t\r\nma n N50 J5 v q\r\n\
ma n2 N50 J5 v q\r\nma n3 N50 q t\r\nma n5 q t k\r\n",
    );
    // `q` hides the auto-creates (`ma n2`, `ma n3`) as memcached 1.6.45 does.
    assert_eq!(
        out,
        "NF\r\nNF\r\nVA 2\r\n10\r\nVA 2\r\n11\r\nVA 1\r\n7\r\nVA 1\r\n0\r\n\
VA 20\r\n18446744073709551615\r\nVA 1 c<cas1> t-1 kn O1\r\n0\r\nHD t100\r\nNF kn5\r\n"
    );
    let out = run(
        &s,
        "ms s 3\r\nabc\r\nma s\r\nma s C1\r\nma s MX\r\nma s Dx\r\n\
ma n2 O123456789012345678901234567890123 v\r\nmg n2 v\r\n",
    );
    assert_eq!(
        out,
        "HD\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\nEX\r\n\
CLIENT_ERROR invalid mode for ma M token\r\nCLIENT_ERROR invalid or duplicate flag\r\n\
CLIENT_ERROR opaque token too long\r\nVA 1\r\n6\r\n"
    );
    let stats = s.stats.totals();
    // The incr whose answer failed on its long opaque counts: it was applied.
    assert_eq!(
        (stats.get(Stat::IncrHits), stats.get(Stat::IncrMisses)),
        (7, 3)
    );
    assert_eq!(
        (stats.get(Stat::DecrHits), stats.get(Stat::DecrMisses)),
        (2, 0)
    );
}

#[test]
fn base64_keys_come_back_encoded() {
    let s = server(&[]);
    let out = run(
        &s,
        "ms Zm9v 3 b k c\r\nbar\r\nmg foo k v\r\nme foo\r\nmd Zm9v b k q\r\nmg Zh== b k\r\n\
mg Zm9v! b k\r\nmg Zm9vYmFy b N30 k\r\nmg Zm9vYmFy b k\r\nmg Zm9vYg= b k\r\n",
    );
    assert_eq!(
        out,
        "HD kZm9v b c<cas1>\r\nVA 3 kZm9v b\r\nbar\r\nME Zm9v exp=-1 la=0 cas=<cas1> fetch=yes \
cls=1 size=65\r\nEN kZg== b\r\nEN kZm9v b\r\nHD kfoobar W\r\nHD kfoobar Z\r\n\
CLIENT_ERROR error decoding key\r\n"
    );
}

#[test]
fn debug_reports_what_memcached_does() {
    let s = server(&[]);
    let out = run(&s, "ms foo 3 T100 F5\r\nbar\r\nme foo\r\nme nope\r\nme\r\n");
    // `exp` is the seconds left, as memcached 1.6.45 prints it (1.6.18: their negative).
    assert_eq!(
        out,
        "HD\r\nME foo exp=100 la=0 cas=<cas1> fetch=no cls=1 size=69\r\nEN\r\n\
CLIENT_ERROR bad command line format\r\n"
    );
    s.store.clock().advance(7);
    // As in memcached, the first read after a write leaves the access time alone.
    let out = run(
        &s,
        "me foo\r\nmg foo l t\r\nmg foo u l\r\nmg foo l\r\nme foo\r\n",
    );
    assert_eq!(
        out,
        "ME foo exp=93 la=7 cas=<cas1> fetch=no cls=1 size=69\r\nHD l7 t93\r\nHD l7\r\nHD l7\r\n\
ME foo exp=93 la=0 cas=<cas1> fetch=yes cls=1 size=69\r\n"
    );
    s.store.clock().advance(93);
    assert_eq!(run(&s, "me foo\r\nmg foo\r\n"), "EN\r\nEN\r\n");
}

#[test]
fn errors_are_never_quiet_and_keep_the_stream_in_step() {
    let s = server(&["-I", "1k"]);
    let mut input = b"ms foo 3\r\nbar\r\nms foo 5000 MA q\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 5000));
    input.extend_from_slice(
        b"\r\nmg foo v\r\nms foo 2 q\r\nabc\r\nms foo 2 Z q\r\nab\r\nmg foo q O123456789012345678901234567890123\r\nmn\r\n",
    );
    let out = normalise(&answers(&s, &[&input]));
    // The empty line left after the bad chunk is memcached 1.6.45's format error.
    assert_eq!(
        out,
        "HD\r\nSERVER_ERROR object too large for cache\r\nEN\r\nCLIENT_ERROR bad data chunk\r\n\
CLIENT_ERROR bad command line format\r\nCLIENT_ERROR invalid flag\r\nCLIENT_ERROR opaque token too long\r\nMN\r\n"
    );
}

#[test]
fn a_long_opaque_fails_after_ttl_acted() {
    let s = server(&[]);
    let out = run(
        &s,
        "ms foo 1\r\nx\r\nmg foo T30 h O123456789012345678901234567890123\r\nmg foo t h\r\n\
mg new N30 O123456789012345678901234567890123\r\nmg new t\r\n",
    );
    assert_eq!(
        out,
        "HD\r\nCLIENT_ERROR opaque token too long\r\nHD t30 h0\r\n\
CLIENT_ERROR opaque token too long\r\nHD t30\r\n"
    );
}

#[test]
fn counts_like_memcached() {
    let s = server(&[]);
    run(
        &s,
        "ms a 1\r\n1\r\nmg a v\r\nmg zz v\r\nmg a T10\r\nmg zz T10\r\nmg zz N10\r\nmd a\r\nmd a\r\n\
ma c N0\r\nma c\r\nma c MD\r\nma nn\r\nme c\r\nmn\r\nmd c I\r\nma c C1\r\n\
mg nope O123456789012345678901234567890123\r\nmg c O123456789012345678901234567890123\r\n",
    );
    let st = s.stats.totals();
    let got = [
        Stat::CmdSet,
        Stat::CmdGet,
        Stat::GetHits,
        Stat::GetMisses,
        Stat::CmdTouch,
        Stat::TouchHits,
        Stat::DeleteHits,
        Stat::DeleteMisses,
        Stat::IncrHits,
        Stat::IncrMisses,
        Stat::DecrHits,
    ]
    .map(|stat| st.get(stat));
    // The miss whose answer failed on its opaque counts; the hit does not.
    assert_eq!(got, [1, 5, 2, 3, 1, 1, 1, 1, 1, 1, 1]);
}

#[test]
fn meta_and_classic_commands_mix() {
    let s = server(&[]);
    let out = run(
        &s,
        "set foo 5 0 3\r\nbar\r\nmg foo v f\r\nms foo 3 F9\r\nbaz\r\nget foo\r\nms n 1\r\n5\r\n\
incr n 5\r\nma n v\r\ntouch foo 100\r\nmg foo t\r\ndelete foo\r\nmg foo\r\nmd n\r\nget n\r\n",
    );
    assert_eq!(
        out,
        "STORED\r\nVA 3 f5\r\nbar\r\nHD\r\nVALUE foo 9 3\r\nbaz\r\nEND\r\nHD\r\n10\r\nVA 2\r\n11\r\n\
TOUCHED\r\nHD t100\r\nDELETED\r\nEN\r\nHD\r\nEND\r\n"
    );
}

const SESSION: &[u8] = b"ms foo 5 T100 c\r\nhello\r\nmg foo s v t k O1\r\nms k 2 Z\r\nab\r\n\
ms k 2\r\nabc\r\nmd foo I q\r\nmg foo v c\r\nmg foo v\r\nma n N0 J5 v\r\nma n q\r\nmg n v\r\n\
mg miss q\r\nme foo\r\nmn\r\n";

#[test]
fn any_split_gives_the_same_answers() {
    let whole = normalise(&answers(&server(&[]), &[SESSION]));
    assert!(whole.ends_with("MN\r\n"), "{whole}");
    for size in [1, 2, 3, 7, 13] {
        let chunks: Vec<&[u8]> = SESSION.chunks(size).collect();
        let split = normalise(&answers(&server(&[]), &chunks));
        assert_eq!(split, whole, "chunk {size}");
    }
}

/// A plain meta get (no `T N R C E b u`, run by the copy compiled with them absent, or
/// by the one for one-letter flags) and the same get with `C0` (which compares with no
/// item's CAS, so it changes nothing but the code that runs it) answer alike and count
/// alike: on hits, misses, stale items, items whose win was sent, items stored with a
/// base64 key, values around the short and the shared size, with every returned flag
/// the fast path reads, in orders, `q` and long keys; and through the plain line's
/// parser, the look-ahead's request (the second get of each pair) and the general one.
#[test]
fn plain_gets_answer_as_the_general_path() {
    let big = "b".repeat(40_000);
    let setup = format!(
        "ms foo 3 F7\r\nbar\r\nms old 2\r\nzz\r\nmd old I q\r\nms won 1\r\nw\r\n\
md won I q\r\nmg won\r\nms YmluYXJ5 3 b F4294967295\r\nbin\r\nms v64 64 T100\r\n{}\r\n\
ms v65 65\r\n{}\r\nms big 40000\r\n{big}\r\nms {} 62\r\n{}\r\n",
        "6".repeat(64),
        "5".repeat(65),
        "q".repeat(64),
        "x".repeat(62),
    );
    let setup = setup.as_str();
    let key = "k".repeat(250);
    let key64 = "q".repeat(64);
    let flag_sets = [
        "",
        "v",
        "k v",
        "v k",
        "s v t f c k h l",
        "l h k c f t v s",
        "q",
        "k q",
        "v q u",
        "h",
        "O123 k v",
        "k O1 q",
    ];
    for flags in flag_sets {
        for key in [
            "foo", "old", "won", "nope", &key, "binary", "v64", "v65", "big", &key64,
        ] {
            let plain = server(&[]);
            let general = server(&[]);
            run(&plain, setup);
            run(&general, setup);
            let line = format!("mg {key} {flags}\r\nmg {key} {flags}\r\n");
            let with_c0 = format!("mg {key} {flags} C0\r\nmg {key} {flags} C0\r\n");
            assert_eq!(
                run(&plain, &line),
                run(&general, &with_c0),
                "mg {key} {flags}"
            );
            let (p, g) = (plain.stats.totals(), general.stats.totals());
            for stat in [Stat::CmdGet, Stat::GetHits, Stat::GetMisses, Stat::CmdTouch] {
                assert_eq!(p.get(stat), g.get(stat), "mg {key} {flags}: {stat:?}");
            }
        }
    }
}
