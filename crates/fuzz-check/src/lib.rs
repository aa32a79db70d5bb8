//! The invariants the fuzz targets check, in a crate of their own: `fuzz/` (nightly,
//! cargo-fuzz) calls them, and a stable `cargo test` replays the saved corpus through
//! them (`tests/replay.rs`), while the release library and binary carry none of it.
//!
//! Owns nothing the server uses: each `check_*` takes arbitrary bytes and panics when an
//! invariant breaks. The targets in `fuzz/fuzz_targets/` are one-line calls of these.
//! Uses only `ringcache`'s public API (the parsers, `Config`, `Server`, `Connection`).
//!
//! Parser checks ([`check_text`], [`check_meta`], [`check_binary`], [`check_sasl`]: the
//! binary framing of a `-S` connection, SASL packets first), for every input:
//! - no panic; `consumed` never exceeds the input and is never 0 for a request or a
//!   refusal (a connection would loop);
//! - a request or refusal parses the same from exactly its `consumed` bytes (it never
//!   looks past what it uses);
//! - feeding the input in chunks, as a connection does (keep the unparsed rest, append
//!   the next chunk, drop `swallow` bytes as they arrive), gives exactly the same
//!   sequence of requests and refusals, and the same unparsed rest, as feeding it whole.
//!   Three splits are tried: chunk lengths taken from the input's first bytes, one byte
//!   at a time (inputs up to [`BYTEWISE_MAX`]), and every two-piece split (inputs up to
//!   [`TWO_PIECE_MAX`]).
//!
//! The first byte's low bit picks the item size limit (1 KiB, so over-sized values are
//! reachable, or memcached's 1 MiB).
//!
//! Connection check ([`check_connection`]): the engine-agnostic state machine over a
//! real store of [`CONNECTION_LIMIT_BYTES`], fed the input in chunks while output is
//! drained in uneven pieces as a socket would take it: no panic, the store's accounted
//! bytes never over its limit, output bounded by the input, no stall once the output has
//! drained, and the bytes it keeps equal to what the parser leaves unparsed. A
//! connection that turned into a `watch` stream is polled as an engine polls it and
//! keeps nothing (it drops whatever follows its `watch`).
//!
//! UDP check ([`check_udp`], `udp.rs`): memcached's datagram framing around the same
//! connection: dropped datagrams unanswered, every answer one well-numbered sequence of
//! datagrams no larger than memcached's, output bounded, the store within its limit.
#![forbid(unsafe_code)]

mod udp;
pub use udp::{check_udp, datagrams};

use ringcache::config::Config;
use ringcache::protocol::meta::MetaRequest;
use ringcache::protocol::{binary, meta, text, Limits, ParseError, Parsed, Request};
use ringcache::server::connection::Connection;
use ringcache::server::Server;
use std::io::IoSlice;
use std::sync::Arc;

/// Longest input also fed one byte at a time.
pub const BYTEWISE_MAX: usize = 1024;

/// Longest input also fed in every possible pair of pieces.
pub const TWO_PIECE_MAX: usize = 256;

/// Memory limit of the connection check's store: small enough that a fuzz input can
/// fill it and make it evict.
pub const CONNECTION_LIMIT_BYTES: usize = 64 * 1024;

/// Item size limit of the connection check's store (`-I 1k`, memcached's smallest).
pub const CONNECTION_MAX_ITEM_BYTES: usize = 1024;

/// Output a single input byte may cause at most: a one-byte-per-key `get` of the largest
/// item, a `stats` listing, a binary STAT, all stay well below it.
const OUTPUT_PER_INPUT_BYTE: usize = CONNECTION_MAX_ITEM_BYTES;

/// Classic text commands (and the meta commands they hand over).
pub fn check_text(data: &[u8]) {
    let limits = limits_for(data);
    check_parser(data, &|input| text_like(text::parse(input, &limits)));
}

/// Meta commands through their own framing.
pub fn check_meta(data: &[u8]) {
    let limits = limits_for(data);
    check_parser(data, &|input| text_like(meta::parse(input, &limits)));
}

/// The binary protocol.
pub fn check_binary(data: &[u8]) {
    let limits = limits_for(data);
    check_parser(data, &|input| binary_step(input, &limits));
}

/// The binary protocol as a `-S` connection frames it: `binary::sasl::parse` first,
/// `binary::parse` for whatever is not a SASL packet.
pub fn check_sasl(data: &[u8]) {
    let limits = limits_for(data);
    check_parser(data, &|input| sasl_step(input, &limits));
}

/// The connection state machine over a small real store.
pub fn check_connection(data: &[u8]) {
    run_connection(data);
}

/// [`check_connection`]'s work; returns the store it ran against.
fn run_connection(data: &[u8]) -> Arc<Server> {
    let server = connection_server();
    let mut conn = server.open(0).expect("one connection under -c");
    let mut sink = Sink::new(data);
    for chunk in Chunks::from_seed(data) {
        if !conn.wants_input() {
            // An engine stops reading here; the output must drain before more comes.
            sink.drain_all(&mut conn);
        }
        if conn.is_closing() {
            break;
        }
        conn.on_input(chunk);
        conn.stream();
        sink.drain_some(&mut conn);
        conn.resume();
        assert_within_limit(&server);
    }
    sink.drain_all(&mut conn);
    assert_within_limit(&server);
    let bound = 8192 + data.len() * OUTPUT_PER_INPUT_BYTE;
    assert!(
        sink.sent <= bound,
        "{} bytes of output for {} bytes of input",
        sink.sent,
        data.len()
    );
    if conn.is_closing() {
        return server;
    }
    assert!(conn.wants_input(), "stalled with the output drained");
    if conn.is_streaming() {
        assert_eq!(conn.pending_len(), 0, "a watcher kept input");
        return server;
    }
    let limits = Limits {
        max_item_bytes: CONNECTION_MAX_ITEM_BYTES,
    };
    let rest = match data.first() {
        Some(&binary::REQUEST_MAGIC) => feed(&[data], &|i| binary_step(i, &limits)).pending,
        _ => feed(&[data], &|i| text_like(text::parse(i, &limits))).pending,
    };
    assert_eq!(
        conn.pending_len(),
        rest.len(),
        "the connection keeps other bytes than the parser leaves"
    );
    drop(conn);
    server
}

fn connection_server() -> Arc<Server> {
    let argv = ["ringcache", "-t", "1", "-m", "1", "-I", "1k", "-c", "4"];
    let mut config = Config::parse_args(argv).expect("fuzz server flags");
    config.limit_bytes = CONNECTION_LIMIT_BYTES;
    Server::new(config)
}

fn assert_within_limit(server: &Server) {
    let stats = server.store.stats();
    assert!(
        stats.bytes <= stats.limit_bytes,
        "store holds {} bytes over its limit of {}",
        stats.bytes,
        stats.limit_bytes
    );
}

/// Takes a connection's output the way a socket would: in uneven pieces.
struct Sink<'a> {
    seed: &'a [u8],
    sends: usize,
    sent: usize,
}

impl<'a> Sink<'a> {
    fn new(seed: &'a [u8]) -> Sink<'a> {
        Sink {
            seed,
            sends: 0,
            sent: 0,
        }
    }

    /// Sends part of the output (sometimes all of it, sometimes nothing).
    fn drain_some(&mut self, conn: &mut Connection) {
        let pick = self.seed.get(self.sends % 16).copied().unwrap_or(0);
        self.sends += 1;
        let budget = match pick % 4 {
            0 => 0,
            1 => usize::from(pick) * 7 + 1,
            _ => usize::MAX,
        };
        self.send(conn, budget);
    }

    /// Sends and resumes until nothing is left to send.
    fn drain_all(&mut self, conn: &mut Connection) {
        loop {
            self.send(conn, usize::MAX);
            conn.resume();
            if conn.output().is_empty() {
                return;
            }
        }
    }

    fn send(&mut self, conn: &mut Connection, mut budget: usize) {
        while budget > 0 {
            let out = conn.output();
            let mut slices = [IoSlice::new(&[]); 8];
            let n = out.chunks(&mut slices);
            if n == 0 {
                return;
            }
            let ready: usize = slices[..n].iter().map(|s| s.len()).sum();
            assert!(ready > 0, "an empty output segment was offered");
            let take = ready.min(budget);
            out.advance(take);
            self.sent += take;
            budget -= take;
        }
    }
}

/// The limits the parser checks run with, picked by the first byte.
fn limits_for(data: &[u8]) -> Limits {
    let small = data.first().is_some_and(|b| b & 1 == 1);
    Limits {
        max_item_bytes: if small { 1024 } else { 1 << 20 },
    }
}

/// One parser call, in terms every dialect shares.
#[derive(Debug)]
enum Step {
    /// A request (`event` describes it) or a refusal answered in place: drop
    /// `consumed`, then `swallow` more bytes.
    Used {
        event: String,
        consumed: usize,
        swallow: usize,
    },
    Incomplete,
    /// The connection would close.
    Stop(String),
}

fn text_like(outcome: Result<Parsed<'_>, ParseError>) -> Step {
    match outcome {
        Ok(Parsed { request, consumed }) => {
            let swallow = match &request {
                Request::TooLarge { swallow, .. }
                | Request::Meta(MetaRequest::SetTooLarge { swallow, .. }) => *swallow,
                _ => 0,
            };
            Step::Used {
                event: format!("{request:?}"),
                consumed,
                swallow,
            }
        }
        Err(ParseError::Incomplete) => Step::Incomplete,
        Err(ParseError::Invalid {
            reply,
            consumed,
            swallow,
        }) => Step::Used {
            event: format!("Invalid({reply:?})"),
            consumed,
            swallow,
        },
        Err(ParseError::Fatal { reply }) => Step::Stop(format!("Fatal({reply:?})")),
    }
}

fn binary_step(input: &[u8], limits: &Limits) -> Step {
    match binary::parse(input, limits) {
        Ok(binary::Parsed {
            request,
            consumed,
            swallow,
        }) => Step::Used {
            event: format!("{request:?}"),
            consumed,
            swallow,
        },
        Err(binary::ParseError::Incomplete) => Step::Incomplete,
        Err(e) => Step::Stop(format!("{e:?}")),
    }
}

fn sasl_step(input: &[u8], limits: &Limits) -> Step {
    match binary::sasl::parse(input, limits) {
        Ok(Some(parsed)) => {
            if let binary::sasl::SaslCommand::Auth { data, .. } = parsed.command {
                // The PLAIN split never panics and keeps every byte but its two NULs.
                if let Some(p) = binary::sasl::plain(data) {
                    let kept = p.authzid.len() + p.authcid.len() + p.password.len();
                    assert_eq!(kept + 2, data.len(), "PLAIN split lost bytes");
                }
            }
            Step::Used {
                event: format!("{:?}", parsed.command),
                consumed: parsed.consumed,
                swallow: parsed.swallow,
            }
        }
        Ok(None) => binary_step(input, limits),
        Err(binary::ParseError::Incomplete) => Step::Incomplete,
        Err(e) => Step::Stop(format!("{e:?}")),
    }
}

type Parser<'p> = dyn Fn(&[u8]) -> Step + 'p;

/// What feeding a parser produced.
#[derive(Debug, PartialEq, Eq)]
struct Fed {
    events: Vec<String>,
    /// Bytes received and not parsed (meaningless once stopped).
    pending: Vec<u8>,
    /// Bytes still to drop when they arrive.
    swallow: usize,
    stopped: bool,
}

/// Feeds `chunks` to `parse` as a connection does.
fn feed(chunks: &[&[u8]], parse: &Parser<'_>) -> Fed {
    let mut fed = Fed {
        events: Vec::new(),
        pending: Vec::new(),
        swallow: 0,
        stopped: false,
    };
    for chunk in chunks {
        if fed.stopped {
            break;
        }
        fed.pending.extend_from_slice(chunk);
        let mut pos = 0;
        loop {
            if fed.swallow > 0 {
                let n = fed.swallow.min(fed.pending.len() - pos);
                pos += n;
                fed.swallow -= n;
                if fed.swallow > 0 {
                    break;
                }
            }
            let rest = &fed.pending[pos..];
            if rest.is_empty() {
                break;
            }
            match parse(rest) {
                Step::Used {
                    event,
                    consumed,
                    swallow,
                } => {
                    assert!(
                        consumed > 0 && consumed <= rest.len(),
                        "consumed {consumed} of {} bytes: {event}",
                        rest.len()
                    );
                    assert_same_from_own_bytes(&rest[..consumed], &event, swallow, parse);
                    fed.events.push(event);
                    fed.swallow = swallow;
                    pos += consumed;
                }
                Step::Incomplete => break,
                Step::Stop(event) => {
                    fed.events.push(event);
                    fed.stopped = true;
                    break;
                }
            }
        }
        fed.pending.drain(..pos);
    }
    if fed.stopped {
        fed.pending.clear();
    }
    fed
}

/// A request or refusal must come out the same from exactly the bytes it used.
fn assert_same_from_own_bytes(own: &[u8], event: &str, swallow: usize, parse: &Parser<'_>) {
    match parse(own) {
        Step::Used {
            event: again,
            consumed,
            swallow: swallow_again,
        } => {
            assert_eq!(again, event, "parsed differently from its own bytes");
            assert_eq!(consumed, own.len(), "used other bytes alone: {event}");
            assert_eq!(
                swallow_again, swallow,
                "swallows other bytes alone: {event}"
            );
        }
        other => panic!("{event} gives {other:?} from its own {} bytes", own.len()),
    }
}

fn check_parser(data: &[u8], parse: &Parser<'_>) {
    let whole = feed(&[data], parse);
    let seeded: Vec<&[u8]> = Chunks::from_seed(data).collect();
    assert_split_same(&whole, &seeded, parse, "seeded split");
    if data.len() <= BYTEWISE_MAX {
        let bytes: Vec<&[u8]> = data.chunks(1).collect();
        assert_split_same(&whole, &bytes, parse, "byte by byte");
    }
    if data.len() <= TWO_PIECE_MAX {
        for at in 1..data.len() {
            let (a, b) = data.split_at(at);
            assert_split_same(&whole, &[a, b], parse, "two pieces");
        }
    }
}

fn assert_split_same(whole: &Fed, chunks: &[&[u8]], parse: &Parser<'_>, how: &str) {
    let split = feed(chunks, parse);
    if split != *whole {
        let lens: Vec<usize> = chunks.iter().map(|c| c.len()).collect();
        panic!(
            "{how} {lens:?} differs from the whole input:\nwhole: {whole:#?}\nsplit: {split:#?}"
        );
    }
}

/// Splits an input into chunks whose lengths (1..=64) come from its first 8 bytes,
/// taken in turn.
struct Chunks<'a> {
    data: &'a [u8],
    at: usize,
    turn: usize,
}

impl<'a> Chunks<'a> {
    fn from_seed(data: &'a [u8]) -> Chunks<'a> {
        Chunks {
            data,
            at: 0,
            turn: 0,
        }
    }
}

impl<'a> Iterator for Chunks<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.at == self.data.len() {
            return None;
        }
        let seed = self.data[self.turn % self.data.len().min(8)];
        let len = 1 + (usize::from(seed) + self.turn * 7) % 64;
        self.turn += 1;
        let end = self.data.len().min(self.at + len);
        let chunk = &self.data[self.at..end];
        self.at = end;
        Some(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_chunks_cover_the_input_in_order() {
        let data: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let joined: Vec<u8> = Chunks::from_seed(&data).flatten().copied().collect();
        assert_eq!(joined, data);
        assert!(Chunks::from_seed(&data).all(|c| (1..=64).contains(&c.len())));
        assert_eq!(Chunks::from_seed(b"").count(), 0);
    }

    #[test]
    fn feeding_swallows_a_refused_value_across_chunks() {
        let limits = Limits {
            max_item_bytes: 1024,
        };
        let mut input = b"set k 0 0 2000\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 2000));
        input.extend_from_slice(b"\r\nget k\r\n");
        let parse = |i: &[u8]| text_like(text::parse(i, &limits));
        let whole = feed(&[&input], &parse);
        assert_eq!(whole.events.len(), 2, "{whole:?}");
        assert!(whole.events[0].starts_with("TooLarge"));
        assert!(whole.pending.is_empty() && whole.swallow == 0);
        let pieces: Vec<&[u8]> = input.chunks(100).collect();
        assert_eq!(feed(&pieces, &parse), whole);
    }

    #[test]
    fn a_split_that_changes_the_answer_is_caught() {
        // A parser that (wrongly) depends on how much input it sees.
        let greedy = |i: &[u8]| Step::Used {
            event: format!("{}", i.len()),
            consumed: i.len(),
            swallow: 0,
        };
        let whole = feed(&[b"abcd"], &greedy);
        let caught = std::panic::catch_unwind(|| {
            assert_split_same(&whole, &[b"ab", b"cd"], &greedy, "two pieces")
        });
        assert!(caught.is_err());
    }

    #[test]
    fn each_check_accepts_realistic_input() {
        check_text(b"set a 0 0 1\r\nx\r\nget a b\r\nmg a v\r\n");
        check_meta(b"ms a 2 T0\r\nhi\r\nmg a v k\r\nmn\r\n");
        let mut noop = vec![0x80, 0x0a];
        noop.resize(24, 0);
        check_binary(&noop);
        check_connection(b"set a 0 0 1\r\nx\r\nget a\r\nstats\r\nquit\r\n");
        check_connection(&noop);
    }

    /// The crawler's commands, `cache_memlimit` and the key dumps (which write more
    /// than their request: a whole class, streamed at the output mark) pass every check,
    /// over a store the input filled.
    #[test]
    fn operator_commands_and_dumps_pass_every_check() {
        let mut input = Vec::new();
        for i in 0..300 {
            input.extend_from_slice(format!("set key{i} 0 {} 5\r\nvalue\r\n", i % 3).as_bytes());
        }
        input.extend_from_slice(b"ms Zm9vIGJhcg== 2 b\r\nhi\r\n");
        for command in [
            &b"lru_crawler metadump all\r\n"[..],
            b"lru_crawler mgdump hash\r\n",
            b"lru_crawler metadump 1,2,,3\r\nget key1\r\n",
            b"stats cachedump 2 0\r\nstats cachedump 2 5\r\nstats cachedump 64 0\r\n",
            b"lru_crawler crawl all\r\nlru_crawler crawl 0\r\nlru_crawler crawl ,\r\n",
            b"lru_crawler sleep 1000001\r\nlru_crawler tocrawl -1\r\nlru_crawler disable\r\n",
            b"lru_crawler metadump all\r\nlru_crawler enable\r\nlru_crawler enable\r\n",
            b"cache_memlimit 8\r\ncache_memlimit 7 noreply\r\ncache_memlimit x\r\n",
            b"stats items\r\nstats slabs\r\nquit\r\n",
        ] {
            let mut script = input.clone();
            script.extend_from_slice(command);
            check_text(&script);
            check_connection(&script);
        }
    }

    #[test]
    fn the_connection_check_fills_and_evicts_its_store() {
        let mut input = Vec::new();
        for i in 0..200 {
            input.extend_from_slice(format!("set key{i} 0 0 900\r\n").as_bytes());
            input.extend(std::iter::repeat_n(b'v', 900));
            input.extend_from_slice(b"\r\n");
        }
        input.extend_from_slice(b"stats\r\n");
        let server = run_connection(&input);
        let stats = server.store.stats();
        assert!(stats.evictions > 0, "{stats:?}");
        assert!(stats.bytes > CONNECTION_LIMIT_BYTES as u64 / 2, "{stats:?}");
    }
}
