//! `--udp`: the measured phase as text `get`s over UDP, memcached's datagram framing.
//!
//! Each request is one datagram: memcached's 8-byte frame header (request id,
//! sequence 0, total 1, reserved 0, big-endian) and `get <key>\r\n`. `--conns`
//! sockets (spread over `--threads`, each thread an edge-triggered mio loop, as the
//! TCP driver) keep up to `--pipeline` requests in flight each; an answer is matched to
//! its request by the request id (every answer datagram carries it, with its sequence
//! number and the total), reassembled in sequence order and checked as a TCP answer
//! would be (`protocol::check`: a hit must name the key asked for).
//!
//! UDP may lose a request or an answer: a request unanswered after `--udp-timeout` is
//! given up (its slot takes a new request), counted in `Tally::timed_out` and reported
//! as lost, not as an error; a late answer to it is ignored. A phase therefore always
//! ends: at the deadline no request is sent any more, and the last ones are answered
//! or time out.
//!
//! Keys are set beforehand over TCP (`--prefill`, the TCP driver), since a set does
//! not fit memcached's UDP use. Knows nothing of the server but its address.

use crate::driver::{Progress, Tally};
use crate::protocol::{self, Answer, Expect};
use crate::report::{CpuTime, Phase};
use crate::workload::{key_name, Mix, Op, KEY_NAME_MAX};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};
use ringcache_client::{DecodeError, Decoded, Dialect};
use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// memcached's UDP frame header.
const HEADER_BYTES: usize = 8;
/// Error descriptions kept per thread.
const ERRORS_KEPT: usize = 5;

/// One request in flight.
struct Pending {
    id: u16,
    key: u64,
    sent: Instant,
    /// Answer datagrams received so far: (sequence, payload).
    parts: Vec<(u16, Vec<u8>)>,
}

/// One UDP socket, connected to the server.
pub struct Endpoint {
    socket: UdpSocket,
    in_flight: VecDeque<Pending>,
    next_id: u16,
}

/// Opens `count` UDP sockets connected to `server`.
pub fn open(server: SocketAddr, count: usize) -> Result<Vec<Endpoint>, String> {
    let any: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("a literal address")
    } else {
        "[::]:0".parse().expect("a literal address")
    };
    (0..count)
        .map(|i| {
            let socket = UdpSocket::bind(any).map_err(|e| format!("UDP socket {i}: {e}"))?;
            socket
                .connect(server)
                .map_err(|e| format!("UDP socket {i} to {server}: {e}"))?;
            Ok(Endpoint {
                socket,
                in_flight: VecDeque::new(),
                // Sockets start at different ids, so a stray answer matches nothing.
                next_id: (i as u16).wrapping_mul(7919),
            })
        })
        .collect()
}

/// What one thread sends.
pub struct Plan {
    /// The key stream (only its keys are used: every request is a get).
    pub mix: Mix,
    pub pipeline: usize,
    /// Requests this thread may send; `u64::MAX` for no limit.
    pub budget: u64,
    /// No new request after this.
    pub deadline: Option<Instant>,
    /// A request unanswered this long is lost.
    pub timeout: Duration,
    pub key_digits: usize,
    pub any_key: bool,
}

/// Runs one thread's measured phase over `endpoints`.
pub fn run_phase(endpoints: &mut [Endpoint], mut plan: Plan, progress: &Progress) -> Tally {
    let mut tally = Tally::new();
    let mut poll = match Poll::new() {
        Ok(p) => p,
        Err(e) => {
            note(&mut tally, format!("cannot create epoll instance: {e}"));
            tally.lost += 1;
            return tally;
        }
    };
    for (i, e) in endpoints.iter_mut().enumerate() {
        if let Err(err) = poll
            .registry()
            .register(&mut e.socket, Token(i), Interest::READABLE)
        {
            note(&mut tally, format!("cannot register UDP socket: {err}"));
            tally.lost += 1;
            return tally;
        }
    }
    let started = Instant::now();
    let mut last_answer = started;
    let mut sent = 0u64;
    let mut sending = plan.budget > 0;
    let mut datagram = vec![0u8; 65_536];
    let mut request = Vec::with_capacity(HEADER_BYTES + 8 + KEY_NAME_MAX);
    let mut events = Events::with_capacity(1024);
    for e in endpoints.iter_mut() {
        fill(
            e,
            &mut plan,
            &mut sending,
            &mut sent,
            &mut request,
            started,
            &mut tally,
        );
    }
    loop {
        let now = Instant::now();
        if sending && plan.deadline.is_some_and(|d| now >= d) {
            sending = false;
        }
        // Requests past their timeout are lost; their slots take new requests.
        let mut oldest: Option<Instant> = None;
        for e in endpoints.iter_mut() {
            let before = e.in_flight.len();
            e.in_flight
                .retain(|p| now.duration_since(p.sent) < plan.timeout);
            tally.timed_out += (before - e.in_flight.len()) as u64;
            if before != e.in_flight.len() {
                fill(
                    e,
                    &mut plan,
                    &mut sending,
                    &mut sent,
                    &mut request,
                    now,
                    &mut tally,
                );
            }
            if let Some(p) = e.in_flight.front() {
                oldest = Some(oldest.map_or(p.sent, |o: Instant| o.min(p.sent)));
            }
        }
        if !sending && endpoints.iter().all(|e| e.in_flight.is_empty()) {
            break;
        }
        let mut wait = Duration::from_millis(100);
        if let Some(o) = oldest {
            wait = wait.min((o + plan.timeout).saturating_duration_since(now));
        }
        if let (true, Some(d)) = (sending, plan.deadline) {
            wait = wait.min(d.saturating_duration_since(now));
        }
        if let Err(e) = poll.poll(&mut events, Some(wait.max(Duration::from_micros(100)))) {
            if e.kind() == ErrorKind::Interrupted {
                continue;
            }
            note(&mut tally, format!("epoll_wait failed: {e}"));
            tally.lost += endpoints
                .iter()
                .map(|e| e.in_flight.len() as u64)
                .sum::<u64>();
            break;
        }
        for event in events.iter() {
            let Some(e) = endpoints.get_mut(event.token().0) else {
                continue;
            };
            let now = Instant::now();
            let before = tally.completed;
            // Edge-triggered: read until the socket is empty.
            loop {
                let n = match e.socket.recv(&mut datagram) {
                    Ok(n) => n,
                    Err(err) if err.kind() == ErrorKind::WouldBlock => break,
                    Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                    // An ICMP error (the server's port closed): the requests time out.
                    Err(err) if err.kind() == ErrorKind::ConnectionRefused => continue,
                    Err(err) => {
                        note(&mut tally, format!("UDP receive failed: {err}"));
                        break;
                    }
                };
                on_datagram(e, &datagram[..n], &plan, now, &mut tally);
            }
            if tally.completed > before {
                last_answer = now;
            }
            fill(
                e,
                &mut plan,
                &mut sending,
                &mut sent,
                &mut request,
                now,
                &mut tally,
            );
        }
        progress.completed.store(tally.completed, Ordering::Relaxed);
        progress.errors.store(tally.errors(), Ordering::Relaxed);
    }
    progress.completed.store(tally.completed, Ordering::Relaxed);
    progress.errors.store(tally.errors(), Ordering::Relaxed);
    tally.elapsed = last_answer.saturating_duration_since(started);
    tally
}

/// Runs the measured phase: `plans[t]` over the sockets `groups[t]`, one thread each;
/// returns the merged tally and the CPU this process spent.
pub fn measure(groups: &mut [Vec<Endpoint>], plans: Vec<Plan>, ticks: u64) -> Phase {
    let cpu_before = CpuTime::of("self", ticks).unwrap_or_default();
    let tallies: Vec<Tally> = std::thread::scope(|scope| {
        let handles: Vec<_> = groups
            .iter_mut()
            .zip(plans)
            .map(|(endpoints, plan)| {
                scope.spawn(move || run_phase(endpoints, plan, &Progress::default()))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    let mut t = Tally::new();
                    t.lost = 1;
                    t.error_notes.push("a UDP load thread panicked".into());
                    t
                })
            })
            .collect()
    });
    Phase::merged(&tallies, cpu_before, ticks)
}

/// Sends requests on `e` until its pipeline is full or nothing may be sent.
fn fill(
    e: &mut Endpoint,
    plan: &mut Plan,
    sending: &mut bool,
    sent: &mut u64,
    request: &mut Vec<u8>,
    now: Instant,
    tally: &mut Tally,
) {
    while *sending && e.in_flight.len() < plan.pipeline {
        let (_, key, _) = plan.mix.next();
        let id = e.next_id;
        e.next_id = e.next_id.wrapping_add(1);
        request.clear();
        for field in [id, 0, 1, 0] {
            request.extend_from_slice(&field.to_be_bytes());
        }
        let mut name = [0; KEY_NAME_MAX];
        request.extend_from_slice(b"get ");
        request.extend_from_slice(key_name(&mut name, key, plan.key_digits));
        request.extend_from_slice(b"\r\n");
        match e.socket.send(request) {
            Ok(_) => {}
            // The socket's send buffer is full: try again at the next wake-up.
            Err(err) if err.kind() == ErrorKind::WouldBlock => return,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            // An ICMP error reported on send: this request is lost.
            Err(err) if err.kind() == ErrorKind::ConnectionRefused => {
                tally.timed_out += 1;
                continue;
            }
            Err(err) => {
                note(tally, format!("UDP send failed: {err}"));
                tally.lost += 1;
                *sending = false;
                return;
            }
        }
        e.in_flight.push_back(Pending {
            id,
            key,
            sent: now,
            parts: Vec::new(),
        });
        *sent += 1;
        if *sent >= plan.budget {
            *sending = false;
        }
    }
}

/// One answer datagram: added to its request's parts; a request with all its parts
/// is checked and done.
fn on_datagram(e: &mut Endpoint, datagram: &[u8], plan: &Plan, now: Instant, tally: &mut Tally) {
    if datagram.len() < HEADER_BYTES {
        tally.wrong += 1;
        note(tally, format!("a {}-byte UDP answer", datagram.len()));
        return;
    }
    let field = |at: usize| u16::from_be_bytes([datagram[at], datagram[at + 1]]);
    let (id, seq, total) = (field(0), field(2), field(4));
    // An answer to a request given up on is ignored.
    let Some(at) = e.in_flight.iter().position(|p| p.id == id) else {
        return;
    };
    let pending = &mut e.in_flight[at];
    pending.parts.push((seq, datagram[HEADER_BYTES..].to_vec()));
    if pending.parts.len() < usize::from(total.max(1)) {
        return;
    }
    let Some(mut pending) = e.in_flight.remove(at) else {
        return;
    };
    pending.parts.sort_by_key(|&(seq, _)| seq);
    let answer: Vec<u8> = pending.parts.into_iter().flat_map(|(_, p)| p).collect();
    let mut name = [0; KEY_NAME_MAX];
    let expect = Expect {
        op: Op::Get,
        key: key_name(&mut name, pending.key, plan.key_digits),
        opaque: 0,
        any_key: plan.any_key,
    };
    tally.completed += 1;
    tally.gets += 1;
    match protocol::check(Dialect::Text, &answer, &expect) {
        Ok(Decoded {
            consumed,
            response: a,
        }) if consumed == answer.len() => match a {
            Answer::Hit => tally.hits += 1,
            Answer::Miss => tally.misses += 1,
            Answer::Stored => {
                tally.wrong += 1;
                note(tally, "a get answered STORED".into());
            }
            Answer::Wrong(why) => {
                tally.wrong += 1;
                note(tally, why);
            }
        },
        Ok(_) => {
            tally.wrong += 1;
            note(tally, "a UDP answer with bytes after the get's END".into());
        }
        Err(DecodeError::Incomplete) => {
            tally.wrong += 1;
            note(
                tally,
                format!("a UDP answer of {total} datagram(s) cut short"),
            );
        }
        Err(DecodeError::Malformed(why)) => {
            tally.wrong += 1;
            note(tally, why);
        }
    }
    let nanos = now.saturating_duration_since(pending.sent).as_nanos();
    tally.latency.saturating_record(nanos.max(1) as u64);
}

fn note(tally: &mut Tally, why: String) {
    if tally.error_notes.len() < ERRORS_KEPT {
        tally.error_notes.push(why);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{KeyPattern, Ratio, ValueSize};

    /// A server on a local socket that answers the first request with a two-datagram
    /// hit (sent in reverse order) and never answers the second.
    #[test]
    fn answers_are_reassembled_and_silence_times_out() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let mut endpoints = open(addr, 1).unwrap();
        let responder = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            let (n, peer) = server.recv_from(&mut buf).unwrap();
            let id = u16::from_be_bytes([buf[0], buf[1]]);
            assert!(buf[8..n].starts_with(b"get key:"), "{:?}", &buf[..n]);
            let key = std::str::from_utf8(&buf[12..n - 2]).unwrap().to_string();
            let answer = format!("VALUE {key} 0 2\r\nhi\r\nEND\r\n");
            let (a, b) = answer.as_bytes().split_at(7);
            for (seq, part) in [(1u16, b), (0, a)] {
                let mut d = Vec::new();
                for f in [id, seq, 2, 0] {
                    d.extend_from_slice(&f.to_be_bytes());
                }
                d.extend_from_slice(part);
                server.send_to(&d, peer).unwrap();
            }
            // The second request gets no answer.
            server.recv_from(&mut buf).unwrap();
        });
        let plan = Plan {
            mix: Mix::new(
                Ratio { sets: 0, gets: 1 },
                10,
                KeyPattern::Uniform,
                ValueSize { min: 0, max: 0 },
                1,
            ),
            pipeline: 1,
            budget: 2,
            deadline: None,
            timeout: Duration::from_millis(300),
            key_digits: crate::workload::key_digits(10),
            any_key: false,
        };
        let tally = run_phase(&mut endpoints, plan, &Progress::default());
        responder.join().unwrap();
        assert_eq!(tally.completed, 1, "{:?}", tally.error_notes);
        assert_eq!(tally.hits, 1, "{:?}", tally.error_notes);
        assert_eq!(tally.timed_out, 1);
        assert_eq!(tally.errors(), 0, "{:?}", tally.error_notes);
    }
}
