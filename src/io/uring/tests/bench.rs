//! An engine throughput measurement for tuning, run by hand (ignored by default).

use super::harness::{features, Opts, Server};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

/// Engine throughput with the line service, for tuning (run by hand, release build):
/// `cargo test --release --lib io::uring::tests::bench -- --ignored --nocapture`.
/// Small pipelined requests over many connections, then one bulk upload.
#[test]
#[ignore]
fn bench_engine_throughput() {
    let Some(f) = features("bench_engine_throughput") else {
        return;
    };
    const SECS: f64 = 2.0;
    for (threads, conns_per_thread, pipeline) in [(1, 1, 1), (2, 1, 1), (2, 25, 16), (2, 200, 4)] {
        let server = Server::start(Opts::new(&f));
        let stop_at = Instant::now() + Duration::from_secs_f64(SECS);
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let conns: Vec<TcpStream> = (0..conns_per_thread)
                    .map(|_| {
                        let c = server.connect();
                        c.set_nodelay(true).unwrap();
                        c
                    })
                    .collect();
                thread::spawn(move || {
                    let request = format!("get key:{t:04}\n").repeat(pipeline);
                    let answer_len = "OK get key:0000\r\n".len() * pipeline;
                    let mut buf = vec![0u8; answer_len];
                    let mut done = 0u64;
                    let mut conns = conns;
                    while Instant::now() < stop_at {
                        for c in &mut conns {
                            c.write_all(request.as_bytes()).unwrap();
                        }
                        for c in &mut conns {
                            c.read_exact(&mut buf).unwrap();
                        }
                        done += (pipeline * conns.len()) as u64;
                    }
                    done
                })
            })
            .collect();
        let total: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
        eprintln!(
            "{threads}×{conns_per_thread} conns, pipeline {pipeline}: {:.0} requests/s",
            total as f64 / SECS
        );
        server.wait_open(0);
        server.stop();
    }

    let server = Server::start(Opts::new(&f));
    let conn = server.connect();
    let mut writer = conn.try_clone().unwrap();
    const MB: usize = 256;
    let started = Instant::now();
    let sender = thread::spawn(move || {
        let line = [b"x".repeat(1023), b"\n".to_vec()].concat().repeat(1024);
        for _ in 0..MB {
            writer.write_all(&line).unwrap();
        }
        writer.write_all(b"quit\n").unwrap();
    });
    let mut sink = conn;
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match sink.read(&mut buf).unwrap() {
            0 => break,
            n => got += n,
        }
    }
    sender.join().unwrap();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "bulk: {MB} MiB up, {} MiB down: {:.0} MiB/s",
        got >> 20,
        MB as f64 / secs
    );
    server.wait_open(0);
    server.stop();
}
