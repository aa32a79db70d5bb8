//! The operator commands of the crawler and the memory limit: `lru_crawler …`,
//! `stats cachedump` and `cache_memlimit`, mapped onto the crawler (`server::crawler`)
//! and the store, with memcached 1.6.18's answers (checked against Debian's
//! memcached; `mgdump` against 1.6.45).
//!
//! | request | answer |
//! |---|---|
//! | `enable` | `OK`; `ERROR failed to start lru crawler thread` when already on |
//! | `disable`, `sleep <us>`, `tocrawl <n>` | `OK` |
//! | `crawl`, `metadump`, `mgdump` with the crawler off | `CLIENT_ERROR lru crawler disabled` |
//! | … with a bad class list | `BADCLASS invalid class id` |
//! | … with an empty one (`,`) | `NOTSTARTED no items to crawl` |
//! | `crawl hash` | `ERROR an unknown error happened` (memcached walks the hash table for dumps only) |
//! | `crawl <classes>` | `OK`, or `BUSY currently processing crawler request` while a pass runs |
//! | `metadump`, `mgdump`, `stats cachedump` with `-X` | `ERROR metadump not allowed`, `ERROR key dump not allowed` (1.6.45), `CLIENT_ERROR stats cachedump not allowed` |
//! | `metadump`, `mgdump`, `stats cachedump` | the dump (`dump.rs`); never `BUSY`: dumps run per connection, not on the crawler |
//! | `stats cachedump` of a class id over 63 | `CLIENT_ERROR Illegal slab id` |
//! | `cache_memlimit <mb>` | `OK` (nothing with `noreply`); below shards × an item of `-I`, items larger than a shard's share are then refused with `SERVER_ERROR out of memory storing object` (a WARN line says so) |

use super::dump::DumpKind;
use super::Connection;
use crate::protocol::{CrawlClasses, CrawlerCommand};
use crate::server::crawler::CrawlRefused;
use crate::storage::{ClassSet, CLASS_ID_MAX};

const CRAWLER_DISABLED: &str = "CLIENT_ERROR lru crawler disabled";
const BAD_CLASS: &str = "BADCLASS invalid class id";
const NOT_STARTED: &str = "NOTSTARTED no items to crawl";
const UNKNOWN_ERROR: &str = "ERROR an unknown error happened";
const BUSY: &str = "BUSY currently processing crawler request";
const ALREADY_ON: &str = "ERROR failed to start lru crawler thread";
const ILLEGAL_CLASS: &str = "CLIENT_ERROR Illegal slab id";
const OK: &str = "OK";
const METADUMP_OFF: &str = "ERROR metadump not allowed";
const MGDUMP_OFF: &str = "ERROR key dump not allowed";
const CACHEDUMP_OFF: &str = "CLIENT_ERROR stats cachedump not allowed";

/// The store's class set of a list the parser checked; `None` for a bad or empty one
/// (with memcached's answer).
fn class_set(classes: CrawlClasses) -> Result<ClassSet, &'static str> {
    match classes {
        CrawlClasses::All | CrawlClasses::Hash => Ok(ClassSet::all()),
        CrawlClasses::Invalid => Err(BAD_CLASS),
        CrawlClasses::Ids(0) => Err(NOT_STARTED),
        CrawlClasses::Ids(ids) => {
            let mut set = ClassSet::empty();
            (1..=CLASS_ID_MAX)
                .filter(|&id| ids & (1 << id) != 0)
                .for_each(|id| set.insert(id));
            Ok(set)
        }
    }
}

impl Connection {
    /// `lru_crawler <subcommand> …`.
    #[cold]
    pub(super) fn crawler_command(&mut self, command: CrawlerCommand) {
        let crawler = &self.server.crawler;
        let reply = match command {
            CrawlerCommand::Enable if crawler.enable() => OK,
            CrawlerCommand::Enable => ALREADY_ON,
            CrawlerCommand::Disable => {
                crawler.disable();
                OK
            }
            CrawlerCommand::Sleep(micros) => {
                crawler.set_sleep_micros(micros);
                OK
            }
            CrawlerCommand::ToCrawl(items) => {
                crawler.set_tocrawl(items);
                OK
            }
            _ if !crawler.enabled() => CRAWLER_DISABLED,
            CrawlerCommand::Crawl(CrawlClasses::Hash) => UNKNOWN_ERROR,
            CrawlerCommand::Crawl(classes) => match class_set(classes) {
                Err(reply) => reply,
                Ok(set) => match crawler.request(set) {
                    Ok(()) => OK,
                    Err(CrawlRefused::Busy) => BUSY,
                    Err(CrawlRefused::Disabled) => CRAWLER_DISABLED,
                },
            },
            CrawlerCommand::MetaDump(_) if !self.server.config.dump_enabled => METADUMP_OFF,
            CrawlerCommand::MgDump(_) if !self.server.config.dump_enabled => MGDUMP_OFF,
            CrawlerCommand::MetaDump(classes) | CrawlerCommand::MgDump(classes) => {
                match class_set(classes) {
                    Err(reply) => reply,
                    Ok(set) => {
                        let kind = if matches!(command, CrawlerCommand::MetaDump(_)) {
                            DumpKind::Meta
                        } else {
                            DumpKind::Mg
                        };
                        self.start_dump(kind, set);
                        return;
                    }
                }
            }
        };
        self.line(reply);
    }

    /// `stats cachedump <class> <limit>`.
    #[cold]
    pub(super) fn cachedump(&mut self, class: u32, limit: u32) {
        if !self.server.config.dump_enabled {
            return self.line(CACHEDUMP_OFF);
        }
        if class > CLASS_ID_MAX {
            return self.line(ILLEGAL_CLASS);
        }
        let mut set = ClassSet::empty();
        set.insert(class);
        self.start_dump(DumpKind::Cache { left: limit }, set);
    }

    /// `cache_memlimit <megabytes> [noreply]` (the parser checked memcached's bounds).
    #[cold]
    pub(super) fn cache_memlimit(&mut self, megabytes: u32, noreply: bool) {
        let store = &self.server.store;
        let bytes = (megabytes as usize).saturating_mul(1024 * 1024);
        let lowered = bytes < store.limit_bytes();
        store.set_limit_bytes(bytes);
        if lowered {
            self.server.crawler.limit_lowered();
        }
        tracing::info!("maxbytes adjusted to {megabytes}m");
        let share = bytes / store.shard_count();
        if share < crate::storage::item_footprint(0, store.config().max_item_bytes) {
            tracing::warn!(
                "cache_memlimit {megabytes}: each of the {} shards holds {share} bytes, less \
                 than an item of -I {}: larger items are refused until the limit is raised",
                store.shard_count(),
                store.config().max_item_bytes,
            );
        }
        if !noreply {
            self.line(OK);
        }
    }
}
