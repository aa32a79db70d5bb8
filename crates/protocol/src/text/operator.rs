//! The operator commands `shutdown`, `watch`, `stats detail`, `slabs` and `lru`, with
//! memcached 1.6.18's argument rules and answers (verified against the real server;
//! `watch deletions`, which 1.6.18 lacks, as 1.6.45). "Words" counts the command too;
//! "silenced" means no answer when the last word is `noreply` (memcached's
//! `set_noreply_maybe`): the reply is then [`SILENT`](super::SILENT).
//!
//! | input | answer |
//! |---|---|
//! | `shutdown` / `shutdown graceful` / anything else after `shutdown` | [`Shutdown::Now`] / [`Shutdown::Graceful`] / [`Shutdown::BadMode`]; the connection answers `ERROR: shutdown not enabled` without `-A`, else stops (or `CLIENT_ERROR invalid shutdown mode`); `noreply` is not special |
//! | `watch` | the request, for `fetchers` |
//! | `watch <kind> …` (`fetchers mutations evictions connevents deletions rawcmds sysevents proxyreqs proxyevents proxyuser`) | the request; a word that is no kind (`noreply` included) gives `kinds: None`, answered `ERROR` (silenced) once `-W` and pipelining were checked |
//! | `stats detail on\|off\|dump` (more words ignored) | the request (`OK`, `OK`, the dump) |
//! | `stats detail`, `stats detail <other>` | `CLIENT_ERROR usage: stats detail on\|off\|dump`, never silenced |
//! | `slabs reassign <src> <dst>` (exactly 4 words) | the request, the ids `None` unless both are numbers (`safe_strtol`) |
//! | `slabs automove <n>` (3 or more words) | `n` 0, 1 or 2: the request; another number `ERROR`, not a number `CLIENT_ERROR bad command line format` (both silenced) |
//! | `slabs automove ratio <decimal>` (4 or more words) | the request; fewer words or a bad decimal `ERROR` (silenced) |
//! | any other `slabs` line | `ERROR`, never silenced |
//! | `lru tune <hot> <warm> <hot factor> <warm factor>` (6 or more words) | the request; a bad number `ERROR`; `hot + warm` over 80 (in 32 bits, as memcached adds) `ERROR hot and warm pcts must not exceed 80`; a factor at or below 0 `ERROR hot/warm age factors must be greater than 0` (all silenced) |
//! | `lru mode <word>`, `lru temp_ttl <word>` (3 or more words) | the request (a server without memcached's LRU maintainer answers `ERROR`, as memcached with `-o no_lru_maintainer`) |
//! | `lru` alone | `ERROR`, never silenced |
//! | any other `lru` line | `ERROR` (silenced) |

use super::{safe_strtol, safe_strtoul, Command, Outcome, BAD_FORMAT, ERROR};
use crate::ascii::number::safe_strtod;
use crate::operator::{Decimal, LruCommand, Shutdown, SlabsCommand, StatsDetail, WatchKinds};
use crate::Request;

const DETAIL_USAGE: &str = "CLIENT_ERROR usage: stats detail on|off|dump";
const PCTS_TOO_HIGH: &str = "ERROR hot and warm pcts must not exceed 80";
const FACTORS_NOT_POSITIVE: &str = "ERROR hot/warm age factors must be greater than 0";

/// memcached's bound on `lru tune`'s hot and warm percentages together.
const LRU_PCT_MAX: u32 = 80;

impl<'a> Command<'_, 'a> {
    /// `shutdown [graceful]`.
    pub(super) fn shutdown(&self) -> Outcome<'a> {
        let t = self.tokens;
        let mode = match t.len() {
            1 => Shutdown::Now,
            2 if t.get(1) == b"graceful" => Shutdown::Graceful,
            _ => Shutdown::BadMode,
        };
        self.done(Request::Shutdown(mode))
    }

    /// `watch [kind …]`.
    pub(super) fn watch(&self) -> Outcome<'a> {
        let t = self.tokens;
        let noreply = t.noreply();
        let kinds = if t.len() == 1 {
            Some(WatchKinds::FETCHERS)
        } else {
            // Every counted word after the command (the tokenizer keeps only a few of
            // them one by one, so split the line again).
            self.line[t.start(1)..]
                .split(|&b| b == b' ')
                .filter(|w| !w.is_empty())
                .take(t.len() - 1)
                .try_fold(WatchKinds::default(), |all, word| {
                    WatchKinds::from_word(word).map(|kind| all.union(kind))
                })
        };
        self.done(Request::Watch { kinds, noreply })
    }

    /// `stats detail on|off|dump`.
    pub(super) fn stats_detail(&self) -> Outcome<'a> {
        let t = self.tokens;
        let detail = match (t.len() >= 3).then(|| t.get(2)) {
            Some(b"on") => StatsDetail::On,
            Some(b"off") => StatsDetail::Off,
            Some(b"dump") => StatsDetail::Dump,
            _ => return self.invalid(DETAIL_USAGE),
        };
        self.done(Request::StatsDetail(detail))
    }

    /// `slabs reassign <src> <dst>`, `slabs automove …`.
    pub(super) fn slabs(&self) -> Outcome<'a> {
        let t = self.tokens;
        if t.len() == 4 && t.get(1) == b"reassign" {
            let ids = safe_strtol(t.get(2)).zip(safe_strtol(t.get(3)));
            return self.done(Request::Slabs(SlabsCommand::Reassign(ids)));
        }
        if t.len() < 3 || t.get(1) != b"automove" {
            return self.invalid(ERROR);
        }
        let noreply = t.noreply();
        let refuse = |reply| self.client_error(reply, noreply);
        let command = if t.get(2) == b"ratio" {
            match (t.len() >= 4).then(|| safe_strtod(t.get(3))).flatten() {
                Some(ratio) => SlabsCommand::AutomoveRatio {
                    ratio: Decimal::new(ratio),
                    noreply,
                },
                None => return refuse(ERROR),
            }
        } else {
            match safe_strtoul(t.get(2)) {
                Some(level @ 0..=2) => SlabsCommand::Automove { level, noreply },
                Some(_) => return refuse(ERROR),
                None => return refuse(BAD_FORMAT),
            }
        };
        self.done(Request::Slabs(command))
    }

    /// `lru tune|mode|temp_ttl …`.
    pub(super) fn lru(&self) -> Outcome<'a> {
        let t = self.tokens;
        if t.len() < 2 {
            return self.invalid(ERROR);
        }
        let noreply = t.noreply();
        let refuse = |reply| self.client_error(reply, noreply);
        let command = match t.get(1) {
            b"tune" if t.len() >= 6 => {
                let numbers = (
                    safe_strtoul(t.get(2)),
                    safe_strtoul(t.get(3)),
                    safe_strtod(t.get(4)),
                    safe_strtod(t.get(5)),
                );
                let (Some(hot_pct), Some(warm_pct), Some(hot), Some(warm)) = numbers else {
                    return refuse(ERROR);
                };
                if hot_pct.wrapping_add(warm_pct) > LRU_PCT_MAX {
                    return refuse(PCTS_TOO_HIGH);
                }
                // NaN passes, as memcached's `factor <= 0` lets it.
                if hot <= 0.0 || warm <= 0.0 {
                    return refuse(FACTORS_NOT_POSITIVE);
                }
                LruCommand::Tune {
                    hot_pct,
                    warm_pct,
                    hot_max_factor: Decimal::new(hot),
                    warm_max_factor: Decimal::new(warm),
                    noreply,
                }
            }
            b"mode" if t.len() >= 3 => LruCommand::Mode {
                segmented: match t.get(2) {
                    b"segmented" => Some(true),
                    b"flat" => Some(false),
                    _ => None,
                },
                noreply,
            },
            b"temp_ttl" if t.len() >= 3 => LruCommand::TempTtl {
                ttl: safe_strtol(t.get(2)),
                noreply,
            },
            _ => return refuse(ERROR),
        };
        self.done(Request::Lru(command))
    }
}

#[cfg(test)]
mod tests {
    use crate::operator::{Decimal, LruCommand, Shutdown, SlabsCommand, StatsDetail, WatchKinds};
    use crate::text::parse;
    use crate::{Limits, ParseError, Parsed, Request};

    const LIMITS: Limits = Limits {
        max_item_bytes: 1024 * 1024,
    };

    fn request(line: &str) -> Request<'_> {
        match parse(line.as_bytes(), &LIMITS) {
            Ok(Parsed { request, consumed }) => {
                assert_eq!(consumed, line.len(), "{line:?}");
                request
            }
            other => panic!("{line:?}: {other:?}"),
        }
    }

    /// The answer of a line the parser refuses.
    fn refusal(line: &str) -> &'static str {
        match parse(line.as_bytes(), &LIMITS) {
            Err(ParseError::Invalid {
                reply,
                consumed,
                swallow: 0,
            }) => {
                assert_eq!(consumed, line.len(), "{line:?}");
                reply
            }
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn shutdown_modes() {
        assert_eq!(request("shutdown\r\n"), Request::Shutdown(Shutdown::Now));
        assert_eq!(
            request("shutdown graceful\r\n"),
            Request::Shutdown(Shutdown::Graceful)
        );
        for line in [
            "shutdown x\r\n",
            "shutdown graceful x\r\n",
            "shutdown noreply\r\n",
        ] {
            assert_eq!(
                request(line),
                Request::Shutdown(Shutdown::BadMode),
                "{line:?}"
            );
        }
    }

    #[test]
    fn watch_kinds() {
        let watch = |kinds, noreply| Request::Watch { kinds, noreply };
        assert_eq!(
            request("watch\r\n"),
            watch(Some(WatchKinds::FETCHERS), false)
        );
        let all = [
            WatchKinds::FETCHERS,
            WatchKinds::MUTATIONS,
            WatchKinds::EVICTIONS,
            WatchKinds::CONNEVENTS,
            WatchKinds::DELETIONS,
        ]
        .into_iter()
        .fold(WatchKinds::default(), WatchKinds::union);
        assert_eq!(
            request("watch fetchers  mutations evictions connevents deletions\r\n"),
            watch(Some(all), false)
        );
        assert_eq!(
            request("watch rawcmds sysevents proxyreqs proxyevents proxyuser\r\n"),
            watch(Some(WatchKinds::from_bits(0b11_1110_0000)), false)
        );
        assert_eq!(request("watch foo\r\n"), watch(None, false));
        assert_eq!(request("watch fetchers noreply\r\n"), watch(None, true));
        assert_eq!(request("watch noreply\r\n"), watch(None, true));
        // Nine kinds, past the tokens the tokenizer keeps one by one.
        let many = format!("watch {}x\r\n", "fetchers ".repeat(9));
        assert_eq!(request(&many), watch(None, false));
        let many = format!("watch {}\r\n", "fetchers ".repeat(12));
        assert_eq!(request(&many), watch(Some(WatchKinds::FETCHERS), false));
    }

    #[test]
    fn stats_detail() {
        assert_eq!(
            request("stats detail on\r\n"),
            Request::StatsDetail(StatsDetail::On)
        );
        assert_eq!(
            request("stats detail off x\r\n"),
            Request::StatsDetail(StatsDetail::Off)
        );
        assert_eq!(
            request("stats  detail  dump\r\n"),
            Request::StatsDetail(StatsDetail::Dump)
        );
        for line in [
            "stats detail\r\n",
            "stats detail x\r\n",
            "stats detail ON\r\n",
        ] {
            assert_eq!(refusal(line), super::DETAIL_USAGE, "{line:?}");
        }
        assert_eq!(refusal("stats detail x noreply\r\n"), super::DETAIL_USAGE);
    }

    #[test]
    fn slabs() {
        let slabs = Request::Slabs;
        assert_eq!(
            request("slabs reassign 1 2\r\n"),
            slabs(SlabsCommand::Reassign(Some((1, 2))))
        );
        assert_eq!(
            request("slabs reassign -1 x\r\n"),
            slabs(SlabsCommand::Reassign(None))
        );
        for level in 0..=2 {
            assert_eq!(
                request(&format!("slabs automove {level}\r\n")),
                slabs(SlabsCommand::Automove {
                    level,
                    noreply: false
                })
            );
        }
        assert_eq!(
            request("slabs automove 1 noreply\r\n"),
            slabs(SlabsCommand::Automove {
                level: 1,
                noreply: true
            })
        );
        // memcached's safe_strtoul truncates to 32 bits.
        assert_eq!(
            request("slabs automove 4294967296\r\n"),
            slabs(SlabsCommand::Automove {
                level: 0,
                noreply: false
            })
        );
        assert_eq!(
            request("slabs automove ratio 0.5\r\n"),
            slabs(SlabsCommand::AutomoveRatio {
                ratio: Decimal::new(0.5),
                noreply: false
            })
        );
        for (line, reply) in [
            ("slabs\r\n", "ERROR"),
            ("slabs noreply\r\n", "ERROR"),
            ("slabs automove\r\n", "ERROR"),
            ("slabs reassign 1\r\n", "ERROR"),
            ("slabs reassign 1 2 3\r\n", "ERROR"),
            ("slabs reassign 1 2 noreply\r\n", "ERROR"),
            ("slabs foo bar\r\n", "ERROR"),
            ("slabs automove 3\r\n", "ERROR"),
            (
                "slabs automove x\r\n",
                "CLIENT_ERROR bad command line format",
            ),
            (
                "slabs automove -1\r\n",
                "CLIENT_ERROR bad command line format",
            ),
            ("slabs automove ratio\r\n", "ERROR"),
            ("slabs automove ratio x\r\n", "ERROR"),
            ("slabs automove 3 noreply\r\n", ""),
            ("slabs automove x noreply\r\n", ""),
            ("slabs automove noreply\r\n", ""),
        ] {
            assert_eq!(refusal(line), reply, "{line:?}");
        }
    }

    #[test]
    fn lru() {
        assert_eq!(
            request("lru tune 10 20 0.1 2.0 5\r\n"),
            Request::Lru(LruCommand::Tune {
                hot_pct: 10,
                warm_pct: 20,
                hot_max_factor: Decimal::new(0.1),
                warm_max_factor: Decimal::new(2.0),
                noreply: false
            })
        );
        assert!(matches!(
            request("lru tune 0 0 nan 0x10 noreply\r\n"),
            Request::Lru(LruCommand::Tune { noreply: true, warm_max_factor, .. })
                if warm_max_factor == Decimal::new(16.0)
        ));
        // 2^32 - 1 + 1 wraps to 0 in memcached's 32-bit sum.
        assert!(matches!(
            request("lru tune 4294967295 1 1 1\r\n"),
            Request::Lru(LruCommand::Tune { .. })
        ));
        assert_eq!(
            request("lru mode flat x\r\n"),
            Request::Lru(LruCommand::Mode {
                segmented: Some(false),
                noreply: false
            })
        );
        assert_eq!(
            request("lru mode x noreply\r\n"),
            Request::Lru(LruCommand::Mode {
                segmented: None,
                noreply: true
            })
        );
        assert_eq!(
            request("lru temp_ttl -1\r\n"),
            Request::Lru(LruCommand::TempTtl {
                ttl: Some(-1),
                noreply: false
            })
        );
        for (line, reply) in [
            ("lru\r\n", "ERROR"),
            ("lru mode\r\n", "ERROR"),
            ("lru foo bar\r\n", "ERROR"),
            ("lru tune 10 20 0.1\r\n", "ERROR"),
            ("lru tune x 20 0.1 2.0\r\n", "ERROR"),
            ("lru tune -1 0 0.1 2\r\n", "ERROR"),
            ("lru tune 10 20 0.1abc 2.0\r\n", "ERROR"),
            ("lru tune 50 50 0.1 2.0\r\n", super::PCTS_TOO_HIGH),
            ("lru tune 81 0 0.1 2\r\n", super::PCTS_TOO_HIGH),
            ("lru tune 0 0 0 0\r\n", super::FACTORS_NOT_POSITIVE),
            ("lru tune 10 20 0.1 -2.0\r\n", super::FACTORS_NOT_POSITIVE),
            ("lru noreply\r\n", ""),
            ("lru foo noreply\r\n", ""),
            ("lru tune 50 50 0.1 2.0 noreply\r\n", ""),
        ] {
            assert_eq!(refusal(line), reply, "{line:?}");
        }
    }
}
