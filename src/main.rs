//! The `ringcache` command: parse flags, set up logging, run the server.
#![forbid(unsafe_code)]

use ringcache::config::{ArgsOutcome, Config};

fn main() {
    let config = match Config::parse_args(std::env::args_os()) {
        Ok(config) => config,
        Err(ArgsOutcome::Printed(text)) => {
            print!("{text}");
            return;
        }
        Err(ArgsOutcome::Refused(why)) => {
            eprintln!("ringcache: {why}");
            std::process::exit(64);
        }
    };
    ringcache::logging::init(config.verbosity);
    // Printed once, as a plain line (memcached's way); not also as a log line.
    if let Err(failure) = ringcache::run(config) {
        eprintln!("ringcache: {}", failure.why);
        std::process::exit(failure.status);
    }
}
