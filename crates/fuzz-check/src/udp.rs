//! The UDP check ([`check_udp`]): memcached's datagram framing around the connection
//! state machine (`server::udp::UdpConn`), over the connection check's store.
//!
//! The input is a run of datagrams, each a length byte and that many bytes (255: the
//! rest of the input). Each goes through one endpoint, as a worker's socket would pass
//! it. For every datagram: no panic; one the header rules drop (8 bytes or fewer, a
//! total other than 1) gets no answer; any other gets either nothing, memcached's bare
//! `quit` header (its request id, total 0), or one sequence of its request id numbered
//! from 0 with the count in every header, every datagram but the last exactly
//! `MAX_DATAGRAM_BYTES` and the last at most that and not empty. Across the run: the
//! answers' payload stays bounded by the input, and the store never over its limit.

use super::{assert_within_limit, connection_server, OUTPUT_PER_INPUT_BYTE};
use ringcache::server::udp::{parse_request, Datagrams, UdpConn, HEADER_BYTES, MAX_DATAGRAM_BYTES};

/// The datagrams an input encodes (see the module header).
pub fn datagrams(data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < data.len() {
        let len = usize::from(data[at]);
        at += 1;
        let end = if len == 255 {
            data.len()
        } else {
            data.len().min(at + len)
        };
        out.push(&data[at..end]);
        at = end;
    }
    out
}

/// The UDP framing over the connection state machine (see the module header).
pub fn check_udp(data: &[u8]) {
    let server = connection_server();
    let mut udp = UdpConn::new(&server, 0, -1);
    let mut out = Datagrams::default();
    let mut payload_bytes = 0;
    for datagram in datagrams(data) {
        out.clear();
        udp.on_datagram(datagram, &mut out);
        assert_within_limit(&server);
        let Ok((id, _)) = parse_request(datagram) else {
            assert!(out.is_empty(), "a dropped datagram was answered");
            continue;
        };
        let total = out.len();
        for i in 0..total {
            let d = out.get(i);
            let field = |at: usize| u16::from_be_bytes([d[at], d[at + 1]]);
            assert_eq!(field(0), id, "datagram {i} of {total}: another request id");
            if field(4) == 0 {
                assert_eq!(
                    (total, d.len()),
                    (1, HEADER_BYTES),
                    "a bare header among others"
                );
                continue;
            }
            assert_eq!((field(2), field(4)), (i as u16, total as u16), "numbering");
            assert_eq!(field(6), 0, "reserved field");
            assert!(
                d.len() > HEADER_BYTES && d.len() <= MAX_DATAGRAM_BYTES,
                "size {}",
                d.len()
            );
            if i + 1 < total {
                assert_eq!(
                    d.len(),
                    MAX_DATAGRAM_BYTES,
                    "datagram {i} of {total} not full"
                );
            }
            payload_bytes += d.len() - HEADER_BYTES;
        }
    }
    let bound = 8192 + data.len() * OUTPUT_PER_INPUT_BYTE;
    assert!(
        payload_bytes <= bound,
        "{payload_bytes} bytes of answers for {} bytes of input",
        data.len()
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_are_length_prefixed() {
        let data = [3, b'a', b'b', b'c', 0, 255, b'x', b'y'];
        assert_eq!(datagrams(&data), [&b"abc"[..], b"", b"xy"]);
        assert_eq!(datagrams(&[9, b'a']), [&b"a"[..]]);
    }
}
