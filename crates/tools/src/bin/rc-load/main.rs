//! `rc-load`: ringcache's load generator, for comparing servers on one machine.
//!
//! Opens `--conns` connections to a memcached-compatible server, optionally sets every
//! key once (`--prefill`), then keeps `--pipeline` requests in flight per connection
//! with a set:get mix for `--duration` seconds or `--requests` requests, checking every
//! answer. It reports ops/s, gets, sets, hits, misses, errors, latency percentiles
//! (hdrhistogram, from queueing a request to reading its answer) and its own CPU per
//! request, which has to stay well below the server's for the comparison to mean
//! anything when both share a small machine.
//!
//! `--tls` speaks the same protocol through a rustls client session per connection
//! (handshakes timed at connect, reported as handshakes per second); with no
//! `--tls-ca` it accepts any server certificate, as a benchmark client may. With
//! `--reconnect` it measures the handshake rate instead (`handshakes`).
//!
//! `--udp` measures text gets over UDP instead (memcached's 8-byte frame header, a
//! bounded number in flight per socket, a timeout per request that counts it as lost
//! rather than failing the run); `--prefill` still sets the keys over TCP first.
//!
//! Design: a single-threaded event loop by default (`--threads N` for more), epoll
//! through mio, so no `unsafe` here. Any protocol error fails the run (exit 1).
//!
//! Modules: `workload` (mix, keys, values), `protocol` (the requests and what their
//! answers mean in the three dialects, over `ringcache-client`), `driver` (the event
//! loop), `report` (text, JSON, CPU time), `tls` (the rustls client side), `handshakes`
//! (the `--reconnect` loops), `udp` (the `--udp` measured phase).
#![forbid(unsafe_code)]

mod driver;
mod handshakes;
mod protocol;
mod report;
mod tls;
mod udp;
mod workload;

use clap::Parser;
use driver::{Conn, Plan, Progress, Source, Tally};
use protocol::Protocol;
use report::{CpuTime, Phase, Settings};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workload::{KeyPattern, Mix, Ratio, ValueSize, Zipf};

/// How keys are drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum PatternArg {
    Uniform,
    Zipf,
}

/// Load generator for memcached-compatible servers (text, binary and meta protocols).
#[derive(Parser, Debug)]
#[command(name = "rc-load", version)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:11211")]
    server: String,
    /// Wire protocol.
    #[arg(long, value_enum, default_value_t = Protocol::Text)]
    protocol: Protocol,
    /// Connections.
    #[arg(long, default_value_t = 50)]
    conns: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Load threads (connections are spread over them).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Sets to gets, SETS:GETS.
    #[arg(long, default_value = "1:10")]
    ratio: Ratio,
    /// Key space: keys are key:0000000 .. key:<keys-1>.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// Key distribution.
    #[arg(long, value_enum, default_value_t = PatternArg::Uniform)]
    key_pattern: PatternArg,
    /// Exponent of the Zipf distribution.
    #[arg(long, default_value_t = 0.99)]
    zipf_exponent: f64,
    /// Value size in bytes: N, or MIN-MAX for sizes drawn uniformly.
    #[arg(long, default_value = "32")]
    value_size: ValueSize,
    /// Seconds of measured load (default 10 unless --requests is given).
    #[arg(long, conflicts_with = "requests")]
    duration: Option<f64>,
    /// Requests to send in the measured phase, over all connections (0: none).
    #[arg(long)]
    requests: Option<u64>,
    /// Set every key once, pipelined, before the measured phase.
    #[arg(long)]
    prefill: bool,
    /// Accept a hit for any key, not only the key asked for (for a no-store responder
    /// such as `ringcache --floor`, which answers every get with one canned item).
    #[arg(long)]
    any_key: bool,
    /// Print the result as one JSON line on stdout (the text report goes to stderr).
    #[arg(long)]
    json: bool,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
    /// Seconds without any answer, while requests are in flight, before the server is
    /// declared stalled and the run fails.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// Seed of the key and value-size choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Expiration time of every set, in seconds (0: never), so expired items pile up
    /// for the server to reclaim.
    #[arg(long, default_value_t = 0)]
    exptime: u32,
    /// Speak TLS (rustls). Without --tls-ca any server certificate is accepted: this
    /// is a benchmark client, not a secure one.
    #[arg(long)]
    tls: bool,
    /// PEM file of the CA certificates to check the server's certificate against
    /// (implies --tls; the server's name is the host part of --server).
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<String>,
    /// With --tls: measure the handshake rate instead of a load. Each of --conns
    /// threads loops: connect, a full handshake (no resumption), one `version` over
    /// TLS, close. One op is one such cycle.
    #[arg(long)]
    reconnect: bool,
    /// Measure text gets over UDP (memcached's frame header), from --conns UDP sockets
    /// with --pipeline requests in flight each; keys are set over TCP (--prefill).
    /// Needs --protocol text and a ratio of 0:N.
    #[arg(long)]
    udp: bool,
    /// Seconds a UDP request waits for its answer before it counts as lost.
    #[arg(long, default_value_t = 1.0)]
    udp_timeout: f64,
    /// The server's UDP port (default: the port of --server, as `-p N -U N` serves).
    #[arg(long)]
    udp_port: Option<u16>,
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(0) => {}
        Ok(errors) => {
            eprintln!("rc-load: FAILED: {errors} errors (wrong answers or requests lost)");
            std::process::exit(1);
        }
        Err(why) => {
            eprintln!("rc-load: {why}");
            std::process::exit(1);
        }
    }
}

/// Runs the whole load; returns the error count.
fn run(args: &Args) -> Result<u64, String> {
    if args.conns == 0 || args.pipeline == 0 || args.threads == 0 || args.keys == 0 {
        return Err("--conns, --pipeline, --threads and --keys must be at least 1".into());
    }
    if args.keys > u64::from(u32::MAX) {
        return Err("--keys: at most 4294967295".into());
    }
    if args.duration.is_some_and(|d| !(d > 0.0 && d < 1e6)) {
        return Err("--duration: expected a positive number of seconds".into());
    }
    if !(args.timeout > 0.0 && args.timeout < 1e6) {
        return Err("--timeout: expected a positive number of seconds".into());
    }
    if args.udp
        && (args.protocol != Protocol::Text
            || args.ratio.sets != 0
            || args.tls
            || args.tls_ca.is_some())
    {
        return Err(
            "--udp sends text gets only: use --protocol text, --ratio 0:1, no --tls".into(),
        );
    }
    if !(args.udp_timeout > 0.0 && args.udp_timeout < 1e6) {
        return Err("--udp-timeout: expected a positive number of seconds".into());
    }
    let stall_timeout = Duration::from_secs_f64(args.timeout);
    let threads = args.threads.min(args.conns);
    let pattern = match args.key_pattern {
        PatternArg::Uniform => KeyPattern::Uniform,
        PatternArg::Zipf if args.zipf_exponent > 0.0 => {
            KeyPattern::Zipf(Zipf::new(args.keys, args.zipf_exponent))
        }
        PatternArg::Zipf => return Err("--zipf-exponent must be positive".into()),
    };
    let settings = Settings {
        server: args.server.clone(),
        protocol: if args.udp {
            "text over udp"
        } else {
            args.protocol.dialect().name()
        },
        conns: args.conns,
        pipeline: args.pipeline,
        threads,
        ratio: args.ratio.to_string(),
        keys: args.keys,
        key_pattern: match args.key_pattern {
            PatternArg::Uniform => "uniform".into(),
            PatternArg::Zipf => format!("zipf({})", args.zipf_exponent),
        },
        value_size: args.value_size.to_string(),
        handshakes: None,
    };
    let mut settings = settings;

    let tls = if args.tls || args.tls_ca.is_some() {
        Some(tls::client_config(args.tls_ca.as_deref())?)
    } else {
        None
    };
    if args.reconnect {
        let Some(config) = tls.as_ref() else {
            return Err("--reconnect measures TLS handshakes: give --tls or --tls-ca".into());
        };
        let addr = resolve(&args.server)?;
        let duration = match args.requests {
            Some(_) => None,
            None => Some(Duration::from_secs_f64(args.duration.unwrap_or(10.0))),
        };
        let ticks = report::clock_ticks_per_sec();
        let measured = handshakes::run(
            addr,
            tls_host(&args.server),
            config,
            args.conns,
            duration,
            args.requests,
            ticks,
        );
        settings.threads = args.conns;
        settings.ratio = "0:1 (version)".into();
        return Ok(finish(args, &settings, None, Some(&measured)));
    }
    let connect_started = Instant::now();
    let mut groups = connect(&args.server, args.conns, threads, tls.as_ref())?;
    if tls.is_some() {
        settings.handshakes = Some((args.conns, connect_started.elapsed()));
    }
    let ticks = report::clock_ticks_per_sec();
    let values = workload::value_bytes(args.value_size.max);
    let key_digits = workload::key_digits(args.keys);
    let sizes = |seed: u64| {
        Mix::new(
            args.ratio,
            args.keys,
            KeyPattern::Uniform,
            args.value_size,
            seed,
        )
    };

    let prefill = if args.prefill {
        // Deep enough to be quick (32, or --pipeline if deeper), shallow enough to
        // bound the buffers (at most about 1 MiB of values in flight per connection).
        let bound = (1 << 20) / args.value_size.max.max(1);
        let pipeline = args.pipeline.max(32).min(bound).max(1);
        let plans = split(args.keys, &groups)
            .into_iter()
            .enumerate()
            .map(|(t, (lo, hi))| Plan {
                dialect: args.protocol.dialect(),
                pipeline,
                source: Source::Prefill {
                    next: lo,
                    end: hi,
                    sizes: sizes(args.seed.wrapping_add(1000 + t as u64)),
                },
                budget: u64::MAX,
                deadline: None,
                stall_timeout,
                key_digits,
                any_key: args.any_key,
                exptime: args.exptime,
                values: &values,
            })
            .collect();
        let phase = run_phase("prefill", &mut groups, plans, None, args.quiet, ticks);
        Some(phase)
    } else {
        None
    };

    let requests = args.requests;
    let duration = match requests {
        Some(_) => None,
        None => Some(Duration::from_secs_f64(args.duration.unwrap_or(10.0))),
    };
    let prefill_failed = prefill.as_ref().is_some_and(|p| p.tally.errors() > 0);
    let measured = if requests == Some(0) || prefill_failed {
        None
    } else if args.udp {
        let mut addr: SocketAddr = args
            .server
            .to_socket_addrs()
            .map_err(|e| format!("--server {}: {e}", args.server))?
            .next()
            .ok_or_else(|| format!("--server {}: no address", args.server))?;
        if let Some(port) = args.udp_port {
            addr.set_port(port);
        }
        let mut sockets: Vec<Vec<udp::Endpoint>> = (0..threads).map(|_| Vec::new()).collect();
        for (i, e) in udp::open(addr, args.conns)?.into_iter().enumerate() {
            sockets[i % threads].push(e);
        }
        let deadline = duration.map(|d| Instant::now() + d);
        let plans = split(requests.unwrap_or(u64::MAX / 2), &groups)
            .into_iter()
            .enumerate()
            .map(|(t, (lo, hi))| udp::Plan {
                mix: Mix::new(
                    args.ratio,
                    args.keys,
                    pattern.clone(),
                    args.value_size,
                    args.seed.wrapping_add(t as u64),
                ),
                pipeline: args.pipeline,
                budget: if requests.is_some() {
                    hi - lo
                } else {
                    u64::MAX
                },
                deadline,
                timeout: Duration::from_secs_f64(args.udp_timeout),
                key_digits,
                any_key: args.any_key,
            })
            .collect();
        Some(udp::measure(&mut sockets, plans, ticks))
    } else {
        let budgets = split(requests.unwrap_or(u64::MAX / 2), &groups);
        let deadline = duration.map(|d| Instant::now() + d);
        let plans = budgets
            .into_iter()
            .enumerate()
            .map(|(t, (lo, hi))| Plan {
                dialect: args.protocol.dialect(),
                pipeline: args.pipeline,
                source: Source::Mix(Mix::new(
                    args.ratio,
                    args.keys,
                    pattern.clone(),
                    args.value_size,
                    args.seed.wrapping_add(t as u64),
                )),
                budget: if requests.is_some() {
                    hi - lo
                } else {
                    u64::MAX
                },
                deadline,
                stall_timeout,
                key_digits,
                any_key: args.any_key,
                exptime: args.exptime,
                values: &values,
            })
            .collect();
        Some(run_phase(
            "measure",
            &mut groups,
            plans,
            duration,
            args.quiet,
            ticks,
        ))
    };

    Ok(finish(args, &settings, prefill.as_ref(), measured.as_ref()))
}

/// Prints the report; returns the error count.
fn finish(
    args: &Args,
    settings: &Settings,
    prefill: Option<&Phase>,
    measured: Option<&Phase>,
) -> u64 {
    let text = report::text(settings, prefill, measured);
    if args.json {
        eprint!("{text}");
        println!("{}", report::json(settings, prefill, measured));
    } else {
        print!("{text}");
    }
    let mut errors = 0;
    for phase in prefill.iter().chain(measured.iter()) {
        errors += phase.tally.errors();
        for note in &phase.tally.error_notes {
            eprintln!("rc-load: error: {note}");
        }
    }
    errors
}

/// The first address `server` names.
fn resolve(server: &str) -> Result<SocketAddr, String> {
    server
        .to_socket_addrs()
        .map_err(|e| format!("--server {server}: {e}"))?
        .next()
        .ok_or_else(|| format!("--server {server}: no address"))
}

/// The host part of `server`, sent as SNI (and checked with `--tls-ca`).
fn tls_host(server: &str) -> &str {
    let host = server.rsplit_once(':').map_or(server, |(host, _)| host);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// Opens `conns` connections and deals them round robin into `threads` groups.
/// With `tls`, each does its handshake before the next connects.
fn connect(
    server: &str,
    conns: usize,
    threads: usize,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Vec<Vec<Conn>>, String> {
    let addr = resolve(server)?;
    let mut groups: Vec<Vec<Conn>> = (0..threads).map(|_| Vec::new()).collect();
    for i in 0..conns {
        let mut stream =
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| {
                format!(
                    "cannot connect to {addr} (connection {}): {e} (is the server running?)",
                    i + 1
                )
            })?;
        let session = match tls {
            Some(config) => Some(tls::handshake(config, tls_host(server), &mut stream)?),
            None => None,
        };
        let conn =
            Conn::new(stream, session).map_err(|e| format!("cannot set up connection: {e}"))?;
        groups[i % threads].push(conn);
    }
    Ok(groups)
}

/// Splits `total` into one `(lo, hi)` range per group, proportional to its size.
fn split(total: u64, groups: &[Vec<Conn>]) -> Vec<(u64, u64)> {
    let conns: usize = groups.iter().map(Vec::len).sum();
    let mut lo = 0;
    let mut seen = 0;
    groups
        .iter()
        .map(|g| {
            seen += g.len();
            let hi = (u128::from(total) * seen as u128 / conns as u128) as u64;
            let range = (lo, hi);
            lo = hi;
            range
        })
        .collect()
}

/// Runs one phase on every thread at once, printing a progress line every second on
/// phases that last more than a few seconds; returns the merged tally and the CPU
/// this process spent.
fn run_phase(
    label: &str,
    groups: &mut [Vec<Conn>],
    plans: Vec<Plan<'_>>,
    expected: Option<Duration>,
    quiet: bool,
    ticks: u64,
) -> Phase {
    let cpu_before = CpuTime::of("self", ticks).unwrap_or_default();
    let progress: Vec<Progress> = groups.iter().map(|_| Progress::default()).collect();
    let started = Instant::now();
    let talk = !quiet && expected.is_none_or(|d| d >= Duration::from_secs(3));
    let tallies = std::thread::scope(|scope| {
        let (done_tx, done_rx) = mpsc::channel::<()>();
        let handles: Vec<_> = groups
            .iter_mut()
            .zip(plans)
            .zip(&progress)
            .map(|((conns, plan), progress)| {
                let done = done_tx.clone();
                scope.spawn(move || {
                    let tally = driver::run_phase(conns, plan, progress);
                    let _ = done.send(());
                    tally
                })
            })
            .collect();
        drop(done_tx);
        let (mut finished, mut tick, mut last) = (0, 1u64, 0u64);
        while finished < handles.len() {
            let next = started + Duration::from_secs(tick);
            match done_rx.recv_timeout(next.saturating_duration_since(Instant::now())) {
                Ok(()) => finished += 1,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let done: u64 = progress
                        .iter()
                        .map(|p| p.completed.load(Ordering::Relaxed))
                        .sum();
                    let errors: u64 = progress
                        .iter()
                        .map(|p| p.errors.load(Ordering::Relaxed))
                        .sum();
                    if talk && (expected.is_some() || tick >= 3) {
                        eprintln!(
                            "rc-load: [{label} {tick:>3}s] {} ops/s, {done} done, {errors} errors",
                            done - last
                        );
                    }
                    last = done;
                    tick += 1;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic_tally()))
            .collect::<Vec<Tally>>()
    });
    Phase::merged(&tallies, cpu_before, ticks)
}

/// The tally of a load thread that panicked: one error, so the run fails.
fn panic_tally() -> Tally {
    let mut t = Tally::new();
    t.lost = 1;
    t.error_notes.push("a load thread panicked".into());
    t
}
