//! Hostile clients against the engines themselves (issue 14): what one connection, or a
//! crowd of them, does to everybody else. Each test is named for what it attacks, runs
//! on both engines, and ends by checking the server still serves.
//!
//! - a few clients flooding `noreply` requests must not starve another client (the
//!   epoll loop used to read one socket for as long as it kept filling);
//! - more clients than open files must not make the server spin on `accept` (epoll
//!   used to retry EMFILE at once, forever, logging each failure);
//! - the idle timeout must not cut a client still reading a long answer (both engines
//!   used to count only input as activity).

#[macro_use]
mod common;

use common::{stat_u64, Client, ReadEnd, Server};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// CPU time (user + system) the process `pid` used so far, from `/proc/PID/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/stat: {e}"));
    // Fields after the command name (which may hold spaces) start at state (field 3);
    // utime and stime are fields 14 and 15, in USER_HZ (100 a second on Linux).
    let rest = &stat[stat.rfind(')').expect("comm ends with )") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

both_engines! {
    /// Three writers stream `touch k 10 noreply` as fast as they can on a one-worker
    /// server; another client's `version` must still come back promptly. Normal is a
    /// few milliseconds; a loop that serves one socket while it keeps filling took
    /// seconds (memcached yields after 20 requests per event).
    fn noreply_flood_does_not_starve_others(flavor) {
        const WRITERS: usize = 3;
        const PROBES: usize = 50;
        const PROBE_EVERY: Duration = Duration::from_millis(100);
        /// Far above a normal round trip (ms), far below the starvation seen (8-10 s).
        const BOUND: Duration = Duration::from_secs(1);
        /// Each writer stops after this much, or when the probes are done.
        const WRITER_BYTES: usize = 2 << 30;
        let server = Server::start(flavor, &["-t", "1"]);
        let mut probe = server.connect();
        probe.set("k", b"v");
        let stop = Arc::new(AtomicBool::new(false));
        let chunk: Vec<u8> = b"touch k 10 noreply\r\n".repeat(50_000);
        let writers: Vec<_> = (0..WRITERS)
            .map(|_| {
                let mut w = server.connect();
                let (stop, chunk) = (Arc::clone(&stop), chunk.clone());
                std::thread::spawn(move || {
                    let mut sent = 0;
                    while !stop.load(Ordering::Relaxed) && sent < WRITER_BYTES {
                        if w.stream.write_all(&chunk).is_err() {
                            break;
                        }
                        sent += chunk.len();
                    }
                    sent
                })
            })
            .collect();
        // Every round trip once the writers started counts, the ones that wait for the
        // flood to get going (its requests being executed) included.
        let mut worst = Duration::ZERO;
        let flooding = common::wait_until(Duration::from_secs(10), || {
            let started = Instant::now();
            let touched = stat_u64(&probe.stats(), "cmd_touch");
            worst = worst.max(started.elapsed());
            touched > 100_000 || worst > BOUND
        });
        assert!(flooding, "{flavor}: the flood never got going");
        // Probes spread over a few seconds of flooding (a stuck loop shows within them).
        let probing = Instant::now();
        for i in 0..PROBES {
            if worst > BOUND {
                break;
            }
            let due = probing + PROBE_EVERY * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            let started = Instant::now();
            probe.version();
            worst = worst.max(started.elapsed());
        }
        stop.store(true, Ordering::Relaxed);
        let sent: usize = writers.into_iter().map(|w| w.join().expect("writer")).sum();
        assert!(
            worst <= BOUND,
            "{flavor}: a version round trip took {worst:?} while {WRITERS} clients flooded \
             noreply requests ({} MiB sent)",
            sent >> 20
        );
        assert_eq!(probe.get("k").as_deref(), Some(&b"v"[..]));
    }
}

both_engines! {
    /// The server may open only 100 files while 150 clients connect: it must back off
    /// (not spin on EMFILE), keep its log short, keep serving the connection it has,
    /// and accept again once the crowd leaves.
    fn out_of_files_does_not_spin(flavor) {
        const CROWD: usize = 150;
        const FILES: u64 = 100;
        common::raise_fd_limit(CROWD as u64 + 256);
        let server = Server::start_with_nofile(flavor, &["-t", "1", "-c", "1000"], FILES);
        let mut kept = server.connect();
        kept.version();
        let crowd: Vec<_> = (0..CROWD)
            .map(|_| std::net::TcpStream::connect(server.addr()).expect("connect (backlog)"))
            .collect();
        assert!(
            common::wait_until(Duration::from_secs(10), || server.log().contains("accept")),
            "{flavor}: the server never ran out of files\nlog:\n{}",
            server.log()
        );
        // A measurement window, not a synchronisation: how busy the server is while
        // clients wait that it cannot accept.
        let window = Duration::from_millis(1500);
        let (cpu_before, started) = (cpu_time(server.pid()), Instant::now());
        std::thread::sleep(window);
        let busy = cpu_time(server.pid()).saturating_sub(cpu_before);
        let wall = started.elapsed();
        kept.version();
        let log = server.log();
        assert!(
            busy * 10 < wall * 3,
            "{flavor}: the server used {busy:?} CPU in {wall:?} while out of files"
        );
        assert!(
            log.len() < 4096,
            "{flavor}: {} bytes of log while out of files; it starts:\n{}",
            log.len(),
            &log[..log.len().min(2000)]
        );
        drop(crowd);
        // Once the crowd left, the server can open files again (within its pause).
        let mut late = Client::connect(server.addr());
        late.timeout = Duration::from_secs(5);
        late.version();
        kept.version();
    }
}

both_engines! {
    /// With `-o idle_timeout=2`, a client that asked for a 20 MB answer and reads it
    /// slowly (over more than the timeout) gets all of it: it is reading, not idle, as
    /// in memcached (which times out only connections waiting for a command). A client
    /// that sends nothing is still closed after the timeout.
    fn idle_timeout_spares_a_slow_reader(flavor) {
        const VALUE_BYTES: usize = 1_000_000;
        const GETS: usize = 20;
        let server = Server::start(flavor, &["-t", "1", "-o", "idle_timeout=2"]);
        let mut writer = server.connect();
        let value = common::value_for(7, VALUE_BYTES);
        writer.set("big", &value);
        drop(writer);

        let mut idle = server.connect();
        let mut reader = server.connect();
        reader.set_recv_buffer(64 * 1024);
        reader.send(&b"get big\r\n".repeat(GETS));
        let reply_bytes = GETS * (format!("VALUE big 0 {VALUE_BYTES}\r\n").len() + VALUE_BYTES + 7);
        // Read in bursts of at most 16 KiB at a slow reader's pace of 4 MB/s (the
        // behaviour under test): the whole answer takes about 5 s, over twice the timeout.
        const PACE_BYTES_PER_SEC: u64 = 4_000_000;
        let started = Instant::now();
        let mut got = 0;
        while got < reply_bytes {
            let due = started + Duration::from_micros(got as u64 * 1_000_000 / PACE_BYTES_PER_SEC);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            match reader.read_some(16 * 1024, Instant::now() + Duration::from_secs(10)) {
                Ok(n) => got += n,
                Err(ReadEnd::Closed(how)) => panic!(
                    "{flavor}: closed ({how:?}) after {got} of {reply_bytes} bytes, {:?} into \
                     reading",
                    started.elapsed()
                ),
                Err(e) => panic!("{flavor}: reading the answer: {e:?} after {got} bytes"),
            }
        }
        let took = started.elapsed();
        assert!(took > Duration::from_secs(3), "{flavor}: the slow read took only {took:?}");
        let answer = reader.read_exact_bytes(reply_bytes);
        assert_eq!(answer.len(), reply_bytes);
        assert!(answer.ends_with(b"END\r\n"), "{flavor}: the answer does not end in END");
        reader.version();

        // The client that never sent anything was closed meanwhile.
        idle.expect_closed(Duration::from_secs(5));
    }
}
