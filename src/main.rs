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
    if let Err(why) = ringcache::run(config) {
        tracing::error!("{why}");
        eprintln!("ringcache: {why}");
        std::process::exit(1);
    }
}
