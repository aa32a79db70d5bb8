//! [`check_udp`] on random runs of datagrams, on stable (the `udp` fuzz target runs the
//! same check under cargo-fuzz): headers valid and not, payloads cut from real requests
//! and random bytes, so the framing and the state machine meet dropped, truncated,
//! split, quitting and multi-datagram cases.

use proptest::prelude::*;
use ringcache_fuzz_check::check_udp;

/// Request pieces a datagram's payload is made of.
const PIECES: &[&[u8]] = &[
    b"get k\r\n",
    b"get k k k k k k k k\r\n",
    b"set k 0 0 900\r\n",
    b"set k 0 0 3\r\nabc\r\n",
    b"mg k v c\r\n",
    b"ms k 2 T0\r\nhi\r\n",
    b"quit\r\n",
    b"watch\r\n",
    b"stats\r\n",
    b"version\r\n",
    b"lru_crawler metadump all\r\n",
    b"\x80\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    b"\r\n",
    b"get ",
];

fn datagram() -> impl Strategy<Value = Vec<u8>> {
    let header = (
        any::<u16>(),
        any::<u16>(),
        prop_oneof![Just(1u16), any::<u16>()],
    );
    let piece = prop_oneof![
        prop::sample::select(PIECES).prop_map(|p| p.to_vec()),
        prop::collection::vec(any::<u8>(), 0..40),
        Just(vec![b'v'; 200]),
    ];
    (header, prop::collection::vec(piece, 0..5), any::<u8>()).prop_map(
        |((id, seq, total), pieces, cut)| {
            let mut d = Vec::new();
            for v in [id, seq, total, 0] {
                d.extend_from_slice(&v.to_be_bytes());
            }
            for p in pieces {
                d.extend_from_slice(&p);
            }
            // Sometimes cut it short, inside the header or a request.
            if cut < 64 {
                d.truncate(usize::from(cut));
            }
            d.truncate(254);
            d
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn random_datagram_runs_keep_the_framing_invariants(
        run in prop::collection::vec(datagram(), 1..12)
    ) {
        let mut input = Vec::new();
        for d in &run {
            input.push(d.len() as u8);
            input.extend_from_slice(d);
        }
        check_udp(&input);
    }
}
