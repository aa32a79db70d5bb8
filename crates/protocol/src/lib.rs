//! Wire protocols: pure functions over byte slices.
//!
//! Owns the request and response vocabulary shared by every dialect, and the parsers and
//! encoders of each dialect (`text` for classic ASCII, `meta` for the meta commands
//! that mix with it, `binary`); `ascii`, the line framing and number rules `text` and
//! `meta` share (so `meta` never imports `text`); `scan`, the word-at-a-time byte
//! searches the text parsers share; `operator`, the vocabulary of the operator commands
//! (`shutdown`, `watch`, `stats detail`, `slabs`, `lru`); `dump`, the lines of the key
//! dumps (`lru_crawler metadump|mgdump`, `stats cachedump`); and `size_hint`, how long a
//! request whose header has arrived will be (for sizing the buffer that collects it).
//! It knows nothing of sockets, connections or the store: a parser turns bytes into a
//! [`Request`] that borrows from the input, an encoder appends a [`Response`] to a
//! buffer.
//!
//! Invariants:
//! - parsers are incremental: [`ParseError::Incomplete`] means "call again with more
//!   bytes", never an error to report; feeding a request in any number of pieces gives
//!   the same result as feeding it whole;
//! - limits (key length, line length, value size) are checked while parsing;
//! - `consumed` never exceeds the input length.
#![forbid(unsafe_code)]

mod ascii;
pub mod binary;
pub mod dump;
pub mod encode;
pub mod meta;
pub mod operator;
mod scan;
pub mod size_hint;
pub mod text;

/// memcached's `safe_strtoul` (a `uint32_t` as C reads it), for the server's `-Y`
/// authentication line, which no parser here frames.
pub use ascii::number::safe_strtoul;

/// Longest key memcached accepts.
pub const KEY_MAX_BYTES: usize = 250;

/// Longest command line (without its data block) before a connection that has sent no
/// newline is closed, as memcached does (multi-key gets may be longer, see `text`).
pub const LINE_MAX_BYTES: usize = 2048;

/// Limits the parser enforces.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest value a store command may carry (`-I`).
    pub max_item_bytes: usize,
}

impl Limits {
    /// Whether an item with this key, value and client flags is over the item size
    /// limit, by memcached's arithmetic: its item header (48 bytes), CAS (8), the client
    /// flags unless they are 0 (4), the key and its NUL, and the value with its `\r\n`
    /// must fit in `-I` bytes.
    pub fn too_large(&self, key_len: usize, value_len: usize, flags: u32) -> bool {
        item_too_large(key_len, value_len, flags, self.max_item_bytes)
    }
}

/// See [`Limits::too_large`].
pub fn item_too_large(key_len: usize, value_len: usize, flags: u32, max_item_bytes: usize) -> bool {
    let flags_len = if flags == 0 { 0 } else { 4 };
    48 + 8 + flags_len + key_len + 1 + value_len.saturating_add(2) > max_item_bytes
}

/// A successfully parsed request and how many input bytes it used.
#[derive(Debug, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub request: Request<'a>,
    pub consumed: usize,
}

/// Why a parser produced no request.
#[derive(Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not enough bytes yet for a whole request: read more and call again.
    Incomplete,
    /// Answer `reply` (a complete line without `\r\n`, e.g. `ERROR` or
    /// `CLIENT_ERROR bad command line format`; empty for a noreply command, which
    /// memcached refuses silently: see `encode::reply_line`), drop `consumed` bytes of input, then
    /// drop a further `swallow` bytes, which may not have arrived yet (the data block of
    /// a refused store command), and go on with the next request.
    Invalid {
        reply: &'static str,
        consumed: usize,
        swallow: usize,
    },
    /// The input can never become a valid request (a line over the limit without a
    /// newline): answer `reply` if any, then close the connection.
    Fatal { reply: Option<&'static str> },
}

/// How a store command treats an existing item.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    /// Store only if the item's CAS value equals the given one.
    Cas,
}

/// The keys of a multi-key command: the space-separated rest of its line, already
/// validated (every key 1..=250 bytes; memcached takes any other byte but space, `\n`
/// and NUL as key material, and so does the parser). Two such values are equal when
/// they hold the same keys in the same order.
#[derive(Clone, Copy, Debug)]
pub struct Keys<'a> {
    rest: &'a [u8],
    /// `rest` is known to be exactly one key (no space in it): iterating needs no
    /// search.
    one: bool,
}

impl<'a> Keys<'a> {
    /// The space-separated keys of `rest`.
    pub fn list(rest: &'a [u8]) -> Keys<'a> {
        Keys { rest, one: false }
    }

    /// Exactly one key, which holds no space.
    pub fn one(key: &'a [u8]) -> Keys<'a> {
        debug_assert!(!key.is_empty() && !key.contains(&b' '));
        Keys {
            rest: key,
            one: true,
        }
    }

    /// Whether this is known to be exactly one key (see [`Keys::one`]).
    pub fn is_one(&self) -> bool {
        self.one
    }

    /// The keys in order, duplicates kept.
    pub fn iter(&self) -> KeysIter<'a> {
        KeysIter(*self)
    }
}

impl PartialEq for Keys<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Keys<'_> {}

/// The keys of a [`Keys`]: the runs of bytes between spaces.
#[derive(Clone, Debug)]
pub struct KeysIter<'a>(Keys<'a>);

impl<'a> Iterator for KeysIter<'a> {
    type Item = &'a [u8];

    #[inline(always)]
    fn next(&mut self) -> Option<&'a [u8]> {
        let mut rest = std::mem::take(&mut self.0.rest);
        if self.0.one {
            return (!rest.is_empty()).then_some(rest);
        }
        while let [b' ', tail @ ..] = rest {
            rest = tail;
        }
        if rest.is_empty() {
            return None;
        }
        let len = scan::first_byte(rest, b' ').unwrap_or(rest.len());
        let (key, tail) = rest.split_at(len);
        self.0.rest = tail;
        Some(key)
    }
}

/// Which `stats` group was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsGroup<'a> {
    General,
    Settings,
    Items,
    Slabs,
    Conns,
    Sizes,
    Reset,
    /// Anything else, with all its arguments (`detail on`): memcached
    /// answers it per group or with an error.
    Other(&'a [u8]),
}

/// One request, in the dialect-neutral vocabulary the connection executes.
#[derive(Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// `get`/`gets` (and `gat`/`gats` when `touch` is set).
    Get {
        keys: Keys<'a>,
        with_cas: bool,
        /// `gat`/`gats`: the new expiration time to set on every hit.
        touch: Option<i64>,
    },
    /// `set`/`add`/`replace`/`append`/`prepend`/`cas`.
    Store {
        mode: StoreMode,
        key: &'a [u8],
        flags: u32,
        exptime: i64,
        /// Only meaningful with [`StoreMode::Cas`].
        cas: u64,
        value: &'a [u8],
        noreply: bool,
    },
    /// A store command whose value is over the item size limit. Answer
    /// `SERVER_ERROR object too large for cache` (unless `noreply`), remove `key` when
    /// `mode` is `Set` (memcached does, so no stale value survives a failed set), then
    /// drop the next `swallow` bytes of input (the data block and its `\r\n`), which may
    /// not have arrived yet.
    TooLarge {
        mode: StoreMode,
        key: &'a [u8],
        noreply: bool,
        swallow: usize,
    },
    Delete {
        key: &'a [u8],
        noreply: bool,
    },
    /// `incr` (`incr == true`) or `decr`.
    Arith {
        key: &'a [u8],
        delta: u64,
        incr: bool,
        noreply: bool,
    },
    Touch {
        key: &'a [u8],
        exptime: i64,
        noreply: bool,
    },
    FlushAll {
        delay_secs: i64,
        noreply: bool,
    },
    Version,
    Verbosity {
        level: u32,
        noreply: bool,
    },
    Stats(StatsGroup<'a>),
    Quit,
    /// A meta command (`mg ms md ma mn me`).
    Meta(meta::MetaRequest<'a>),
    /// `shutdown [graceful]` (refused unless the server runs with `-A`).
    Shutdown(operator::Shutdown),
    /// `refresh_certs [noreply]`: reload the TLS certificates (`-Z`).
    RefreshCerts {
        noreply: bool,
    },
    /// `watch [kind …]`: `kinds` is `None` when a word names no kind (memcached checks
    /// `-W` and pipelined answers before it says `ERROR` for that).
    Watch {
        kinds: Option<operator::WatchKinds>,
        noreply: bool,
    },
    /// `stats detail on|off|dump`.
    StatsDetail(operator::StatsDetail),
    /// `slabs reassign|automove …`.
    Slabs(operator::SlabsCommand),
    /// `lru tune|mode|temp_ttl …`.
    Lru(operator::LruCommand),
    /// `lru_crawler …`: the crawler's switches and settings, crawls and key dumps.
    Crawler(CrawlerCommand),
    /// `stats cachedump <class> <limit>`: the keys of one class (`limit` 0: all). The
    /// class id is not checked against the server's classes here.
    CacheDump {
        class: u32,
        limit: u32,
    },
    /// `cache_memlimit <megabytes> [noreply]`, with a number memcached accepts (at
    /// least 8, at most 1 000 000 000).
    CacheMemlimit {
        megabytes: u32,
        noreply: bool,
    },
}

/// The classes an `lru_crawler` crawl or dump names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrawlClasses {
    /// `all`.
    All,
    /// `hash` (memcached walks its hash table instead of the LRUs).
    Hash,
    /// A comma-separated list of class ids: bit `id` set for each (ids 1 to 63).
    Ids(u64),
    /// A list with a piece that is not a class id from 1 to 63 (memcached answers
    /// `BADCLASS invalid class id`, after checking that the crawler is enabled).
    Invalid,
}

/// One `lru_crawler` command, its arguments checked as memcached 1.6.18 checks them
/// (`mgdump`: as 1.6.45, which added it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrawlerCommand {
    Enable,
    Disable,
    /// `sleep <microseconds>` (at most 1 000 000).
    Sleep(u32),
    /// `tocrawl <items per class>`.
    ToCrawl(u32),
    Crawl(CrawlClasses),
    /// `metadump`: a `key=… exp=… la=… cas=… fetch=… cls=… size=…` line per item.
    MetaDump(CrawlClasses),
    /// `mgdump`: an `mg <key>` line per item.
    MgDump(CrawlClasses),
}

/// One answer, in the dialect-neutral vocabulary the encoders write.
#[derive(Debug, PartialEq, Eq)]
pub enum Response<'a> {
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    Ok,
    /// The end of a get's values (or of a stats listing).
    End,
    /// One hit of a get.
    Value {
        key: &'a [u8],
        flags: u32,
        value: &'a [u8],
        cas: Option<u64>,
    },
    /// The new value after incr/decr.
    Number(u64),
    Version(&'a str),
    /// One `STAT name value` line.
    Stat(&'a str, &'a str),
    /// The answer to `stats reset`.
    Reset,
    Error,
    ClientError(&'a str),
    ServerError(&'a str),
}
