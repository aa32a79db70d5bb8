//! The operator commands of the LRU crawler and the memory limit: `lru_crawler …`,
//! `stats cachedump <class> <limit>` and `cache_memlimit <megabytes> [noreply]`, with
//! memcached 1.6.18's argument rules and answers (verified against the real server);
//! `lru_crawler mgdump`, which 1.6.18 lacks, takes 1.6.45's.
//!
//! | input | answer |
//! |---|---|
//! | `lru_crawler enable`, `lru_crawler disable` (exactly) | the request (`OK`, or memcached's `ERROR failed to start lru crawler thread` when already on) |
//! | `lru_crawler sleep <n>`, `lru_crawler tocrawl <n>` (exactly three tokens) | the request; a bad number `CLIENT_ERROR bad command line format`; sleep over 1 000 000 `CLIENT_ERROR sleep must be one second or less` |
//! | `lru_crawler crawl\|metadump\|mgdump all\|hash\|<id>,<id>…` (exactly three tokens) | the request; empty ids between commas are skipped; an id that is not a number from 1 to 63 makes the list [`CrawlClasses::Invalid`] (memcached answers `BADCLASS invalid class id` once it has checked that the crawler is on) |
//! | any other `lru_crawler` line (other tokens, fewer, more, `noreply`) | `ERROR` |
//! | `stats cachedump` with fewer than two arguments | `CLIENT_ERROR bad command line` |
//! | `stats cachedump <class> <limit>` with a bad number | `CLIENT_ERROR bad command line format` (more arguments are ignored) |
//! | `cache_memlimit <n> [noreply]` (two or three tokens, else `ERROR`) | a bad number `ERROR`; under 8 `MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m`; over 1 000 000 000 `MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes`; a last `noreply` silences every answer |
//!
//! What the server then answers for a well-formed request (crawler disabled, `BUSY`,
//! class ids it has no items for, a limit it cannot take) is the connection's.

use super::{safe_strtoul, Command, Outcome, BAD_FORMAT, ERROR, SILENT};
use crate::{CrawlClasses, CrawlerCommand, Request};

const SLEEP_TOO_LONG: &str = "CLIENT_ERROR sleep must be one second or less";
const CACHEDUMP_ARGS: &str = "CLIENT_ERROR bad command line";
const MEMLIMIT_TOO_SMALL: &str = "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m";
const MEMLIMIT_NOT_MEGABYTES: &str = "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes";

/// The largest class id memcached accepts (`MAX_NUMBER_OF_SLAB_CLASSES - 1`).
const CLASS_ID_MAX: u32 = 63;

/// The longest sleep between crawler steps, in microseconds.
const SLEEP_MAX_MICROS: u32 = 1_000_000;

/// memcached's bounds on `cache_memlimit`, in megabytes.
const MEMLIMIT_MIN_MB: u32 = 8;
const MEMLIMIT_MAX_MB: u32 = 1_000_000_000;

/// `all`, `hash` or a comma-separated list of class ids (memcached's `strtok_r` on
/// `,`: empty pieces are skipped; each piece must be a number from 1 to 63).
fn crawl_classes(arg: &[u8]) -> CrawlClasses {
    match arg {
        b"all" => CrawlClasses::All,
        b"hash" => CrawlClasses::Hash,
        _ => {
            let mut ids = 0u64;
            for piece in arg.split(|&b| b == b',').filter(|p| !p.is_empty()) {
                match safe_strtoul(piece) {
                    Some(id) if (1..=CLASS_ID_MAX).contains(&id) => ids |= 1 << id,
                    _ => return CrawlClasses::Invalid,
                }
            }
            CrawlClasses::Ids(ids)
        }
    }
}

impl<'a> Command<'_, 'a> {
    /// `lru_crawler <subcommand> [argument]`.
    pub(super) fn lru_crawler(&self) -> Outcome<'a> {
        let t = self.tokens;
        let command = match (t.len(), t.get(1.min(t.len() - 1))) {
            (2, b"enable") => CrawlerCommand::Enable,
            (2, b"disable") => CrawlerCommand::Disable,
            (3, b"sleep") => match safe_strtoul(t.get(2)) {
                Some(micros) if micros > SLEEP_MAX_MICROS => return self.invalid(SLEEP_TOO_LONG),
                Some(micros) => CrawlerCommand::Sleep(micros),
                None => return self.invalid(BAD_FORMAT),
            },
            (3, b"tocrawl") => match safe_strtoul(t.get(2)) {
                Some(items) => CrawlerCommand::ToCrawl(items),
                None => return self.invalid(BAD_FORMAT),
            },
            (3, sub @ (b"crawl" | b"metadump" | b"mgdump")) => {
                let classes = crawl_classes(t.get(2));
                match sub {
                    b"crawl" => CrawlerCommand::Crawl(classes),
                    b"metadump" => CrawlerCommand::MetaDump(classes),
                    _ => CrawlerCommand::MgDump(classes),
                }
            }
            _ => return self.invalid(ERROR),
        };
        self.done(Request::Crawler(command))
    }

    /// `stats cachedump <class> <limit>` (further arguments ignored).
    pub(super) fn cachedump(&self) -> Outcome<'a> {
        let t = self.tokens;
        if t.len() < 4 {
            return self.invalid(CACHEDUMP_ARGS);
        }
        match (safe_strtoul(t.get(2)), safe_strtoul(t.get(3))) {
            (Some(class), Some(limit)) => self.done(Request::CacheDump { class, limit }),
            _ => self.invalid(BAD_FORMAT),
        }
    }

    /// `cache_memlimit <megabytes> [noreply]`.
    pub(super) fn cache_memlimit(&self) -> Outcome<'a> {
        let t = self.tokens;
        if !(2..=3).contains(&t.len()) {
            return self.invalid(ERROR);
        }
        let noreply = t.noreply();
        let refuse = |reply| self.invalid(if noreply { SILENT } else { reply });
        match safe_strtoul(t.get(1)) {
            None => refuse(ERROR),
            Some(mb) if mb < MEMLIMIT_MIN_MB => refuse(MEMLIMIT_TOO_SMALL),
            Some(mb) if mb > MEMLIMIT_MAX_MB => refuse(MEMLIMIT_NOT_MEGABYTES),
            Some(megabytes) => self.done(Request::CacheMemlimit { megabytes, noreply }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::parse;
    use crate::{Limits, ParseError, Parsed};

    const LIMITS: Limits = Limits {
        max_item_bytes: 1024 * 1024,
    };

    fn request(input: &[u8]) -> Request<'_> {
        match parse(input, &LIMITS) {
            Ok(Parsed { request, consumed }) => {
                assert_eq!(consumed, input.len(), "{input:?}");
                request
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }

    fn refused(input: &[u8]) -> &'static str {
        match parse(input, &LIMITS) {
            Err(ParseError::Invalid {
                reply,
                consumed,
                swallow: 0,
            }) => {
                assert_eq!(consumed, input.len(), "{input:?}");
                reply
            }
            other => panic!("{input:?}: {other:?}"),
        }
    }

    fn crawler(input: &[u8]) -> CrawlerCommand {
        match request(input) {
            Request::Crawler(c) => c,
            other => panic!("{input:?}: {other:?}"),
        }
    }

    #[test]
    fn lru_crawler_switches_and_settings() {
        use CrawlerCommand::*;
        assert_eq!(crawler(b"lru_crawler enable\r\n"), Enable);
        assert_eq!(crawler(b"lru_crawler  disable \n"), Disable);
        assert_eq!(crawler(b"lru_crawler sleep 0\r\n"), Sleep(0));
        assert_eq!(crawler(b"lru_crawler sleep 1000000\r\n"), Sleep(1_000_000));
        assert_eq!(crawler(b"lru_crawler sleep +5\r\n"), Sleep(5));
        // safe_strtoul keeps the low 32 bits, as memcached 1.6.18's does.
        assert_eq!(crawler(b"lru_crawler sleep 4294967297\r\n"), Sleep(1));
        assert_eq!(crawler(b"lru_crawler tocrawl 4294967296\r\n"), ToCrawl(0));
        assert_eq!(crawler(b"lru_crawler tocrawl -0\r\n"), ToCrawl(0));
        assert_eq!(refused(b"lru_crawler sleep 1000001\r\n"), SLEEP_TOO_LONG);
        for input in [
            &b"lru_crawler sleep -1\r\n"[..],
            b"lru_crawler sleep abc\r\n",
            b"lru_crawler sleep 5x\r\n",
            b"lru_crawler tocrawl -1\r\n",
            b"lru_crawler tocrawl abc\r\n",
        ] {
            assert_eq!(refused(input), BAD_FORMAT, "{input:?}");
        }
        for input in [
            &b"lru_crawler\r\n"[..],
            b"lru_crawler foo\r\n",
            b"lru_crawler sleep\r\n",
            b"lru_crawler sleep 5 x\r\n",
            b"lru_crawler enable x\r\n",
            b"lru_crawler enable noreply\r\n",
            b"lru_crawler crawl\r\n",
            b"lru_crawler crawl all all\r\n",
            b"lru_crawler crawl all noreply\r\n",
            b"lru_crawler metadump\r\n",
            b"lru_crawler mgdump all extra\r\n",
            b"lru_crawler a b c d e f\r\n",
            b"lru_crawler HTTP/1.1\r\n",
        ] {
            assert_eq!(refused(input), ERROR, "{input:?}");
        }
    }

    #[test]
    fn lru_crawler_class_lists() {
        use CrawlClasses::*;
        use CrawlerCommand::*;
        assert_eq!(crawler(b"lru_crawler crawl all\r\n"), Crawl(All));
        assert_eq!(crawler(b"lru_crawler crawl hash\r\n"), Crawl(Hash));
        assert_eq!(crawler(b"lru_crawler metadump all\r\n"), MetaDump(All));
        assert_eq!(crawler(b"lru_crawler mgdump hash\r\n"), MgDump(Hash));
        assert_eq!(
            crawler(b"lru_crawler crawl 1,2,63\r\n"),
            Crawl(Ids(1 << 1 | 1 << 2 | 1 << 63))
        );
        assert_eq!(crawler(b"lru_crawler crawl 1,,2\r\n"), Crawl(Ids(0b110)));
        assert_eq!(crawler(b"lru_crawler metadump ,1\r\n"), MetaDump(Ids(0b10)));
        assert_eq!(crawler(b"lru_crawler crawl +1\r\n"), Crawl(Ids(0b10)));
        assert_eq!(crawler(b"lru_crawler crawl ,\r\n"), Crawl(Ids(0)));
        for input in [
            &b"lru_crawler crawl 0\r\n"[..],
            b"lru_crawler crawl 64\r\n",
            b"lru_crawler crawl abc\r\n",
            b"lru_crawler crawl 1,abc\r\n",
            b"lru_crawler crawl 1,0\r\n",
            b"lru_crawler crawl ALL\r\n",
        ] {
            assert_eq!(crawler(input), Crawl(Invalid), "{input:?}");
        }
        assert_eq!(crawler(b"lru_crawler metadump 0\r\n"), MetaDump(Invalid));
        assert_eq!(crawler(b"lru_crawler mgdump 0\r\n"), MgDump(Invalid));
    }

    #[test]
    fn stats_cachedump() {
        assert_eq!(
            request(b"stats cachedump 1 0\r\n"),
            Request::CacheDump { class: 1, limit: 0 }
        );
        assert_eq!(
            request(b"stats cachedump  64  10 extra more\r\n"),
            Request::CacheDump {
                class: 64,
                limit: 10
            }
        );
        assert_eq!(
            request(b"stats cachedump 1 4294967297\r\n"),
            Request::CacheDump { class: 1, limit: 1 }
        );
        assert_eq!(refused(b"stats cachedump\r\n"), CACHEDUMP_ARGS);
        assert_eq!(refused(b"stats cachedump 1\r\n"), CACHEDUMP_ARGS);
        for input in [
            &b"stats cachedump abc 1\r\n"[..],
            b"stats cachedump 1 abc\r\n",
            b"stats cachedump -1 0\r\n",
            b"stats cachedump 1 -1\r\n",
        ] {
            assert_eq!(refused(input), BAD_FORMAT, "{input:?}");
        }
    }

    #[test]
    fn cache_memlimit() {
        let memlimit = |megabytes, noreply| Request::CacheMemlimit { megabytes, noreply };
        assert_eq!(request(b"cache_memlimit 8\r\n"), memlimit(8, false));
        assert_eq!(request(b"cache_memlimit 64 x\r\n"), memlimit(64, false));
        assert_eq!(
            request(b"cache_memlimit 64 noreply\r\n"),
            memlimit(64, true)
        );
        assert_eq!(
            request(b"cache_memlimit 1000000000\r\n"),
            memlimit(1_000_000_000, false)
        );
        for (input, reply) in [
            (&b"cache_memlimit\r\n"[..], ERROR),
            (b"cache_memlimit 9 noreply extra\r\n", ERROR),
            (b"cache_memlimit abc\r\n", ERROR),
            (b"cache_memlimit -1\r\n", ERROR),
            (b"cache_memlimit 0\r\n", MEMLIMIT_TOO_SMALL),
            (b"cache_memlimit 7\r\n", MEMLIMIT_TOO_SMALL),
            (b"cache_memlimit 4294967296\r\n", MEMLIMIT_TOO_SMALL),
            (b"cache_memlimit 1000000001\r\n", MEMLIMIT_NOT_MEGABYTES),
            (b"cache_memlimit 1 noreply\r\n", SILENT),
            (b"cache_memlimit abc noreply\r\n", SILENT),
            (b"cache_memlimit noreply\r\n", SILENT),
        ] {
            assert_eq!(refused(input), reply, "{input:?}");
        }
    }
}
