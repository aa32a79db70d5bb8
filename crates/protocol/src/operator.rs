//! The vocabulary of memcached's operator commands that this crate parses for the
//! connection to run: `shutdown`, `watch`, `stats detail`, `slabs`, `lru` (the text
//! parser's `text/operator.rs` reads them; its header has the argument rules and
//! answers, verified against memcached 1.6.18).
//!
//! Each type carries what was asked, checked as far as memcached checks it without
//! knowing the server's settings; what the server then answers (`-A`, `-W`, a refused
//! setting) is the connection's.

/// `shutdown [graceful]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// `shutdown`: stop now (memcached raises SIGINT).
    Now,
    /// `shutdown graceful`: stop gracefully (memcached raises SIGUSR1).
    Graceful,
    /// Any other argument: `CLIENT_ERROR invalid shutdown mode` with `-A`.
    BadMode,
}

/// A set of memcached's log streams (`watch fetchers mutations …`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchKinds(u16);

impl WatchKinds {
    /// Item lookups (`type=item_get`).
    pub const FETCHERS: WatchKinds = WatchKinds(1);
    /// Writes (`type=item_store`).
    pub const MUTATIONS: WatchKinds = WatchKinds(1 << 1);
    /// Items evicted to make room (`type=eviction`).
    pub const EVICTIONS: WatchKinds = WatchKinds(1 << 2);
    /// Connections opened and closed (`type=conn_new`, `type=conn_close`).
    pub const CONNEVENTS: WatchKinds = WatchKinds(1 << 3);
    /// Items deleted by a command (`type=deleted`; memcached 1.6.45's word).
    pub const DELETIONS: WatchKinds = WatchKinds(1 << 4);
    /// memcached's raw command log, its background threads' events and its proxy's:
    /// accepted as memcached accepts them.
    pub const RAWCMDS: WatchKinds = WatchKinds(1 << 5);
    pub const SYSEVENTS: WatchKinds = WatchKinds(1 << 6);
    pub const PROXYREQS: WatchKinds = WatchKinds(1 << 7);
    pub const PROXYEVENTS: WatchKinds = WatchKinds(1 << 8);
    pub const PROXYUSER: WatchKinds = WatchKinds(1 << 9);

    /// The kind a `watch` argument names, if any.
    pub fn from_word(word: &[u8]) -> Option<WatchKinds> {
        Some(match word {
            b"fetchers" => WatchKinds::FETCHERS,
            b"mutations" => WatchKinds::MUTATIONS,
            b"evictions" => WatchKinds::EVICTIONS,
            b"connevents" => WatchKinds::CONNEVENTS,
            b"deletions" => WatchKinds::DELETIONS,
            b"rawcmds" => WatchKinds::RAWCMDS,
            b"sysevents" => WatchKinds::SYSEVENTS,
            b"proxyreqs" => WatchKinds::PROXYREQS,
            b"proxyevents" => WatchKinds::PROXYEVENTS,
            b"proxyuser" => WatchKinds::PROXYUSER,
            _ => return None,
        })
    }

    /// The kinds as bits (one bit per kind, in the order of the constants).
    pub fn bits(self) -> u16 {
        self.0
    }

    /// The kinds of `bits` (unknown bits are kept; no kind uses them).
    pub fn from_bits(bits: u16) -> WatchKinds {
        WatchKinds(bits)
    }

    pub fn contains(self, other: WatchKinds) -> bool {
        self.0 & other.0 == other.0
    }

    #[must_use]
    pub fn union(self, other: WatchKinds) -> WatchKinds {
        WatchKinds(self.0 | other.0)
    }
}

/// `stats detail on|off|dump`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsDetail {
    On,
    Off,
    Dump,
}

/// A decimal argument (`lru tune`'s factors, `slabs automove ratio`), as memcached's
/// `safe_strtod` read it. Compared by its bits, so a request stays `Eq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal(u64);

impl Decimal {
    pub fn new(value: f64) -> Decimal {
        Decimal(value.to_bits())
    }

    pub fn get(self) -> f64 {
        f64::from_bits(self.0)
    }
}

/// `slabs reassign|automove …`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlabsCommand {
    /// `slabs reassign <src> <dst>`: the two class ids, or `None` when one is not a
    /// number (memcached checks that after whether reassigning is enabled at all).
    Reassign(Option<(i32, i32)>),
    /// `slabs automove 0|1|2 [noreply]`.
    Automove { level: u32, noreply: bool },
    /// `slabs automove ratio <decimal> [noreply]`.
    AutomoveRatio { ratio: Decimal, noreply: bool },
}

/// `lru tune|mode|temp_ttl …`, with `noreply` as memcached reads it (the last token).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LruCommand {
    /// `lru tune <hot pct> <warm pct> <hot max factor> <warm max factor>`, within
    /// memcached's bounds (the percentages add up to at most 80, the factors are above 0).
    Tune {
        hot_pct: u32,
        warm_pct: u32,
        hot_max_factor: Decimal,
        warm_max_factor: Decimal,
        noreply: bool,
    },
    /// `lru mode flat|segmented`: `Some(true)` for segmented, `None` for another word.
    Mode {
        segmented: Option<bool>,
        noreply: bool,
    },
    /// `lru temp_ttl <seconds>`: `None` when not a number.
    TempTtl { ttl: Option<i32>, noreply: bool },
}
