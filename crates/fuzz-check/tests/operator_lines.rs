//! The operator commands (`watch`, `stats detail`, `slabs`, `lru`, `shutdown`,
//! `verbosity`) through the fuzz targets' checks: every combination of a command, its
//! arguments (good, bad, missing, extra, huge, `noreply`) and what follows it in the
//! same input (another request, a partial one) must keep the parser's and the
//! connection's invariants (see this crate's header), split in any way. The saved
//! corpus (`fuzz/corpus/{text,connection}`) carries a few of these lines too, for the
//! fuzzers to start from.

const COMMANDS: &[&str] = &[
    "watch",
    "watch fetchers",
    "watch fetchers mutations evictions connevents deletions",
    "watch rawcmds",
    "watch foo",
    "stats detail",
    "stats detail on",
    "stats detail off",
    "stats detail dump",
    "stats detail x",
    "slabs",
    "slabs automove",
    "slabs automove 1",
    "slabs automove 3",
    "slabs automove x",
    "slabs automove ratio",
    "slabs automove ratio 0.5",
    "slabs reassign 1 2",
    "slabs reassign x",
    "lru",
    "lru tune 10 20 0.1 2.0",
    "lru tune 50 50 0.1 2.0",
    "lru tune 1 1 0 0",
    "lru tune 1 1 nan 1e1",
    "lru mode flat",
    "lru mode x",
    "lru temp_ttl 5",
    "lru temp_ttl x",
    "shutdown",
    "shutdown graceful",
    "verbosity",
    "verbosity x",
];

const TAILS: &[&str] = &[
    "",
    " noreply",
    " 99999999999999999999",
    " 1e-99999",
    " \t",
    " x y z",
];

const AFTER: &[&str] = &[
    "",
    "get a\r\n",
    "set a:1 0 0 1\r\nx\r\n",
    "get a:1 a:2\r\nstats detail dump\r\n",
    "set b 0 0 5\r\nab",
];

#[test]
fn operator_lines_keep_the_invariants() {
    let mut inputs = 0;
    for command in COMMANDS {
        for tail in TAILS {
            for after in AFTER {
                let input = format!("{command}{tail}\r\n{after}");
                ringcache_fuzz_check::check_text(input.as_bytes());
                ringcache_fuzz_check::check_connection(input.as_bytes());
                inputs += 1;
            }
        }
    }
    println!("{inputs} operator inputs checked");
    assert_eq!(inputs, COMMANDS.len() * TAILS.len() * AFTER.len());
}
