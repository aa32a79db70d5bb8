//! `rc-evict-sim`: replays `ci/hitratio.sh`'s request stream against eviction policies
//! in memory, to compare them at chosen capacities without a server.
//!
//! The stream is rc-load's own (`../rc-load/workload.rs`, same generator and seeds): a
//! warm-up of `--requests` requests (seed 1), then a measured run of as many (seed 2),
//! sets and gets in the `--ratio` mix over `--keys` keys drawn from a Zipf law; a get
//! that misses does not fill. With `--scan N`, N one-time keys are set during the
//! measured run, spread evenly through it, as `ci/hitratio.sh`'s scanning client sets
//! them beside the measured one. Each `--policy NAME:CAPACITY` holds at most CAPACITY
//! keys (a count: the stream's values are all one size). Prints each policy's get miss
//! ratio over the measured run.
//!
//! What it is for: asking what a change of per-item size (and so of capacity at equal
//! `-m`) is worth against a change of policy, before building either (docs/benchmarks.md,
//! "Hit ratio at equal memory").
#![forbid(unsafe_code)]

mod policy;
#[allow(dead_code)] // rc-load's module; the simulation uses its stream only.
#[path = "../rc-load/workload.rs"]
mod workload;

use clap::Parser;
use workload::{KeyPattern, Mix, Op, Ratio, ValueSize, Zipf};

#[derive(Parser, Debug)]
#[command(
    name = "rc-evict-sim",
    about = "Replays rc-load's stream against eviction policies"
)]
struct Args {
    /// Key space: key numbers 0 .. KEYS-1.
    #[arg(long, default_value_t = 4_000_000)]
    keys: u64,
    /// Exponent of the Zipf law keys are drawn from.
    #[arg(long, default_value_t = 0.99)]
    zipf_exponent: f64,
    /// The set:get mix.
    #[arg(long, default_value = "1:4")]
    ratio: Ratio,
    /// Requests in the warm-up and again in the measured run.
    #[arg(long, default_value_t = 2_000_000)]
    requests: u64,
    /// One-time keys set during the measured run.
    #[arg(long, default_value_t = 0)]
    scan: u64,
    /// A policy (sieve, clock, lru) and the keys it may hold, e.g. sieve:102920;
    /// repeatable.
    #[arg(long = "policy", value_name = "NAME:CAPACITY", required = true)]
    policies: Vec<String>,
}

/// One policy's figures over the measured run.
struct Outcome {
    gets: u64,
    misses: u64,
}

/// Replays the stream of `args` against `policy`.
fn replay(args: &Args, policy: &mut dyn policy::Policy) -> Outcome {
    let mix = |seed| {
        let zipf = KeyPattern::Zipf(Zipf::new(args.keys, args.zipf_exponent));
        let sizes = ValueSize { min: 100, max: 100 };
        Mix::new(args.ratio, args.keys, zipf, sizes, seed)
    };
    let mut warm_up = mix(1);
    for _ in 0..args.requests {
        let (op, key, _) = warm_up.next();
        match op {
            Op::Set => policy.set(key),
            Op::Get => {
                policy.get(key);
            }
        }
    }
    // One-time keys are numbered above the key space, so they never repeat a key.
    let scan_every = args.requests.checked_div(args.scan).map(|n| n.max(1));
    let mut scanned = 0;
    let mut measured = mix(2);
    let mut outcome = Outcome { gets: 0, misses: 0 };
    for i in 0..args.requests {
        if let Some(every) = scan_every {
            if i % every == 0 && scanned < args.scan {
                policy.set(args.keys + scanned);
                scanned += 1;
            }
        }
        let (op, key, _) = measured.next();
        match op {
            Op::Set => policy.set(key),
            Op::Get => {
                outcome.gets += 1;
                outcome.misses += u64::from(!policy.get(key));
            }
        }
    }
    outcome
}

fn main() {
    let args = Args::parse();
    println!(
        "keys {} zipf {} ratio {} requests {} scan {}",
        args.keys, args.zipf_exponent, args.ratio, args.requests, args.scan
    );
    for spec in &args.policies {
        let parsed = spec
            .split_once(':')
            .and_then(|(name, cap)| Some((name, cap.parse::<usize>().ok()?)));
        let Some((name, capacity)) = parsed.filter(|&(_, cap)| cap > 0) else {
            eprintln!("rc-evict-sim: --policy {spec:?}: expected NAME:CAPACITY, e.g. sieve:102920");
            std::process::exit(2);
        };
        let Some(mut policy) = policy::by_name(name, capacity) else {
            eprintln!("rc-evict-sim: --policy {spec:?}: unknown policy (sieve, clock, lru)");
            std::process::exit(2);
        };
        let outcome = replay(&args, policy.as_mut());
        println!(
            "{name:<6} capacity {capacity:>9}  get miss ratio {:.4}  ({} of {} gets)",
            outcome.misses as f64 / outcome.gets.max(1) as f64,
            outcome.misses,
            outcome.gets
        );
    }
}
