//! `rc-soak`: a long mixed workload that checks every answer, for `ci/soak.sh`.
//!
//! `--conns` churn connections (std threads, blocking sockets) each own a key range
//! and run pipelined batches of set / get / multi-get / delete / incr / touch, with
//! short TTLs on some sets and touches, in the text, meta and binary dialects in turn
//! (each reconnect switches dialect). Values are large enough in total to make the
//! server evict. One more connection guards a few small keys that must not be lost
//! while they stay hot (see `worker.rs` for the bound). The rules every answer is
//! checked against are in `model.rs`.
//!
//! `--phase hostile` runs the hostile phase instead (`hostile.rs`): stalled readers of
//! big values and half-sent big sets pinning server memory, while a probe checks that
//! the server still answers. It ends with its own `RESULT` line.
//!
//! Prints a progress line every 30 s, then a summary and a last `RESULT` line of
//! `name=value` pairs for scripts. Exits 1 on any error: a wrong value, a protocol
//! error, a hang (10 s without an answer), a closed connection, a guarded key lost, or
//! a run that did not exercise what it claims (no eviction, no expiry, no strict guard
//! check).
#![forbid(unsafe_code)]

mod hostile;
mod model;
mod wire;
mod worker;

use clap::Parser;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use worker::{Churn, Guard, Shared, Tally};

/// Soak client for memcached-compatible servers: mixed load, every answer checked.
#[derive(Parser, Debug)]
#[command(name = "rc-soak", version)]
struct Args {
    /// Server address.
    #[arg(long, default_value = "127.0.0.1:11211")]
    server: String,
    /// How long: seconds, or with a unit (`300`, `90s`, `5m`).
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    duration: Duration,
    /// Churn connections (threads).
    #[arg(long, default_value_t = 8)]
    conns: usize,
    /// Data keys per churn connection.
    #[arg(long, default_value_t = 2000)]
    keys: usize,
    /// Guarded keys (small, no TTL, read back every round).
    #[arg(long, default_value_t = 32)]
    guard_keys: usize,
    /// Bytes one store shard may hold. Default: the server's `limit_maxbytes` divided
    /// by ringcache's shard count, the power of two at or above 8 × `threads` (min 8;
    /// `Server::new` in src/server/mod.rs). Give it when the server shards otherwise.
    #[arg(long)]
    shard_budget: Option<u64>,
    /// Seed of the key, operation and size choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Which phase: `churn` (the checked mixed workload) or `hostile` (clients that
    /// pin memory, and a probe).
    #[arg(long, value_enum, default_value_t = Phase::Churn)]
    phase: Phase,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    Churn,
    Hostile,
}

/// `300`, `300s`, `5m`, `1h`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?} (s, m or h)")),
    };
    if !(secs > 0.0 && secs < 1e7) {
        return Err(format!("duration {s:?} out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => {}
        Ok(false) => std::process::exit(1),
        Err(why) => {
            eprintln!("rc-soak: {why}");
            std::process::exit(1);
        }
    }
}

/// `stats` over a fresh text connection.
fn server_stats(addr: SocketAddr) -> Result<HashMap<String, String>, String> {
    wire::Conn::connect(addr, wire::Dialect::Text)
        .map_err(|e| format!("connect {addr}: {e}"))?
        .stats()
}

fn stat(stats: &HashMap<String, String>, name: &str) -> Result<u64, String> {
    stats
        .get(name)
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("stats has no numeric {name}"))
}

/// Runs the soak; `Ok(false)` when it found errors.
fn run(args: &Args) -> Result<bool, String> {
    if args.conns == 0 || args.keys == 0 || args.guard_keys == 0 {
        return Err("--conns, --keys and --guard-keys must be at least 1".into());
    }
    let addr = args
        .server
        .to_socket_addrs()
        .map_err(|e| format!("--server {}: {e}", args.server))?
        .next()
        .ok_or_else(|| format!("--server {}: no address", args.server))?;
    if args.phase == Phase::Hostile {
        return Ok(run_hostile(addr, args.duration));
    }
    let before = server_stats(addr)?;
    let shard_budget = match args.shard_budget {
        Some(b) => b,
        None => {
            let threads = stat(&before, "threads")?;
            let shards = (threads * 8).next_power_of_two().max(8);
            stat(&before, "limit_maxbytes")? / shards
        }
    };
    println!(
        "rc-soak: {} for {:?}: {} churn connections x {} keys, {} guarded keys, shard budget {shard_budget} B",
        addr, args.duration, args.conns, args.keys, args.guard_keys
    );
    let start = Instant::now();
    let shared = Shared {
        addr,
        deadline: start + args.duration,
        abort: AtomicBool::new(false),
        touch_sent: AtomicU64::new(0),
        touch_acked: AtomicU64::new(0),
        requests: AtomicU64::new(0),
        shard_budget,
    };
    let mut total = Tally::default();
    std::thread::scope(|scope| {
        let shared = &shared;
        let mut handles = Vec::new();
        for i in 0..args.conns {
            let churn = Churn::new(i, args.keys, args.seed);
            handles.push(scope.spawn(move || churn.run(shared)));
        }
        let guard = Guard::new(args.guard_keys, args.seed);
        handles.push(scope.spawn(move || guard.run(shared)));
        // Progress every 30 s while the workers run.
        let mut next = start + Duration::from_secs(30);
        while !handles.iter().all(|h| h.is_finished()) {
            if Instant::now() >= next {
                let done = shared.requests.load(Ordering::Relaxed);
                let secs = start.elapsed().as_secs_f64();
                println!(
                    "rc-soak: {secs:>5.0} s  {done} requests  {:.0}/s",
                    done as f64 / secs
                );
                next += Duration::from_secs(30);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        for h in handles {
            match h.join() {
                Ok(t) => total.add(&t),
                Err(_) => {
                    total.errors += 1;
                    total.messages.push("a soak thread panicked".into());
                }
            }
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let after = server_stats(addr)?;
    let evictions = stat(&after, "evictions")?.saturating_sub(stat(&before, "evictions")?);
    let reclaimed = stat(&after, "reclaimed")?.saturating_sub(stat(&before, "reclaimed")?);

    let mut failures = total.messages.clone();
    if total.errors > failures.len() as u64 {
        failures.push(format!("... {} errors in all", total.errors));
    }
    // A soak that did not exercise what it claims to test is a failed soak.
    if total.errors == 0 {
        if evictions == 0 {
            failures.push("no evictions: the workload did not fill the store".into());
        }
        if total.expired_misses == 0 && reclaimed == 0 {
            failures.push("no expiry observed".into());
        }
        if total.guard_strict == 0 {
            failures.push("no strict guard check: the guarded-key bound was never tight".into());
        }
    }

    println!(
        "rc-soak: {} requests in {secs:.1} s = {:.0}/s ({} sets, {} gets: {} hits, {} misses \
         of which {} expired; {} deletes, {} incrs, {} touches, {} reconnects)",
        total.requests,
        total.requests as f64 / secs,
        total.sets,
        total.gets,
        total.hits,
        total.misses,
        total.expired_misses,
        total.deletes,
        total.incrs,
        total.touches,
        total.reconnects,
    );
    println!(
        "rc-soak: guard: {} checks, {} strict (a miss would have been an error), {} excused misses",
        total.guard_checks, total.guard_strict, total.guard_excused_misses
    );
    println!(
        "rc-soak: server: {evictions} evictions, {reclaimed} expired items reclaimed, {} items, {} bytes held",
        stat(&after, "curr_items")?,
        stat(&after, "bytes")?
    );
    for f in &failures {
        println!("rc-soak: ERROR {f}");
    }
    println!(
        "rc-soak: RESULT requests={} ops_per_sec={:.0} errors={} misses={} expired_misses={} \
         evictions={evictions} reclaimed={reclaimed} guard_checks={} guard_strict={} \
         guard_excused={} reconnects={}",
        total.requests,
        total.requests as f64 / secs,
        total.errors,
        total.misses,
        total.expired_misses,
        total.guard_checks,
        total.guard_strict,
        total.guard_excused_misses,
        total.reconnects,
    );
    Ok(failures.is_empty())
}

/// The hostile phase; true when the probe was served correctly throughout.
fn run_hostile(addr: SocketAddr, duration: Duration) -> bool {
    println!("rc-soak: {addr} for {duration:?}: hostile phase");
    let report = hostile::run(addr, duration);
    for e in &report.errors {
        println!("rc-soak: ERROR {e}");
    }
    let probe_max_ms = report.probe_max.as_millis();
    println!(
        "rc-soak: RESULT cycles={} probe_checks={} probe_max_ms={probe_max_ms} errors={}",
        report.cycles,
        report.probe_checks,
        report.errors.len()
    );
    report.errors.is_empty() && report.cycles > 0
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("m").is_err());
    }
}
