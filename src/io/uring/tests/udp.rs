//! The proactor's UDP sockets (`worker/udp.rs`) over real sockets, with the harness's
//! echo handler: both receive modes (multishot recvmsg over a buffer ring, and the
//! poll + `recvmmsg` fallback a kernel without it gets) answer every client at its
//! own address, the largest IPv4 datagram included; and a flood past the
//! buffer ring ends the multishot receive with ENOBUFS, which is counted and re-armed
//! while the worker keeps serving TCP and later datagrams.

use super::super::worker::UDP_BUF_COUNT;
use super::harness::{all_modes, features, read_line, Opts, Server, DEADLINE};
use crate::server::udp::{header, MAX_CHUNK_BYTES, MAX_REQUEST_BYTES};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

fn client(server: SocketAddr) -> UdpSocket {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(server).unwrap();
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
    socket
}

/// One datagram (an interrupted wait goes on waiting).
fn recv(socket: &UdpSocket, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match socket.recv(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

/// The echo of `datagram`: framed as request 0, in datagrams of `MAX_CHUNK_BYTES`.
fn recv_echo(socket: &UdpSocket, datagram: &[u8]) {
    let total = datagram.len().div_ceil(MAX_CHUNK_BYTES);
    let mut got = Vec::new();
    let mut buf = vec![0; 2048];
    for seq in 0..total {
        let n = recv(socket, &mut buf).expect("an echo datagram");
        assert_eq!(
            buf[..8],
            header(0, seq as u16, total as u16),
            "datagram {seq}"
        );
        got.extend_from_slice(&buf[8..n]);
    }
    assert!(
        got == datagram,
        "the echo of {} bytes differs",
        datagram.len()
    );
}

/// Sends `datagram` once a second until its echo comes back (a flood may have filled
/// the socket's receive queue, where the kernel drops).
fn echo_retrying(socket: &UdpSocket, datagram: &[u8]) {
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut buf = vec![0; 2048];
    loop {
        socket.send(datagram).unwrap();
        if let Ok(n) = recv(socket, &mut buf) {
            if buf[8..n] == *datagram {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no echo within {DEADLINE:?}");
    }
    socket.set_read_timeout(Some(DEADLINE)).unwrap();
}

#[test]
fn udp_is_answered_in_every_receive_mode() {
    let mut modes = all_modes("udp_is_answered_in_every_receive_mode");
    if let Some(best) = modes.first() {
        modes.insert(
            1,
            super::super::Features {
                multishot_recvmsg: false,
                ..best.clone()
            },
        );
    }
    for f in modes {
        let server = Server::start(Opts {
            udp: true,
            ..Opts::new(&f)
        });
        let addr = server.udp_addr.unwrap();
        let clients: Vec<UdpSocket> = (0..3).map(|_| client(addr)).collect();
        for round in 0..50 {
            for (i, c) in clients.iter().enumerate() {
                c.send(format!("c{i} r{round}").as_bytes()).unwrap();
            }
            for (i, c) in clients.iter().enumerate() {
                recv_echo(c, format!("c{i} r{round}").as_bytes());
            }
        }
        // The largest IPv4 datagram (under `MAX_REQUEST_BYTES`) is read whole.
        let big: Vec<u8> = (0..65_507.min(MAX_REQUEST_BYTES))
            .map(|i| (i % 251) as u8)
            .collect();
        clients[0].send(&big).unwrap();
        recv_echo(&clients[0], &big);
        let mut tcp = BufReader::new(server.connect());
        tcp.get_mut().write_all(b"still\n").unwrap();
        assert_eq!(read_line(&mut tcp), "OK still\r\n", "{f}");
        assert_eq!(server.counters.read(|s| s.udp_enobufs), 0, "{f}");
        drop(tcp);
        server.stop();
    }
}

#[test]
fn udp_flood_past_the_buffer_ring_rearms() {
    let Some(f) = features("udp_flood_past_the_buffer_ring_rearms") else {
        return;
    };
    if !f.multishot_recvmsg_in_use() {
        eprintln!("udp_flood_past_the_buffer_ring_rearms: SKIPPED: no multishot recvmsg ({f})");
        return;
    }
    let server = Server::start(Opts {
        udp: true,
        ..Opts::new(&f)
    });
    let addr = server.udp_addr.unwrap();
    let mut tcp = BufReader::new(server.connect());
    // Never reads its echoes: the kernel drops them once its queue is full.
    let flood = UdpSocket::bind("127.0.0.1:0").unwrap();
    let deadline = Instant::now() + DEADLINE;
    let mut bursts = 0;
    while server.counters.read(|s| s.udp_enobufs) == 0 {
        assert!(
            Instant::now() < deadline,
            "{bursts} bursts of {} datagrams never ran the buffer ring dry",
            16 * usize::from(UDP_BUF_COUNT)
        );
        for i in 0..16 * usize::from(UDP_BUF_COUNT) {
            let _ = flood.send_to(format!("flood {i}").as_bytes(), addr);
        }
        bursts += 1;
        tcp.get_mut()
            .write_all(format!("burst {bursts}\n").as_bytes())
            .unwrap();
        assert_eq!(read_line(&mut tcp), format!("OK burst {bursts}\r\n"));
    }
    // Re-armed: a later client is answered.
    echo_retrying(&client(addr), b"after the flood");
    drop(tcp);
    server.stop();
}
