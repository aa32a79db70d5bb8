//! Restartable memory: the snapshot of every live item that a graceful stop writes
//! (the server's `-e FILE`), and the restore that the next start with the same settings
//! reads back, before it serves.
//!
//! Owns the file format and both walks over it. Knows nothing of files, paths or
//! signals: [`Store::save`] writes to any `impl Write`, [`Store::restore`] reads through
//! a [`SnapshotSource`] (ranges of bytes, so each shard's section can be read by its own
//! thread). Pure safe Rust; offsets and lengths only, no addresses: nothing needs a
//! fix-up.
//!
//! Format (little-endian), in this order:
//! - header, [`HEADER_BYTES`]: magic [`MAGIC`], [`FORMAT_VERSION`], the clean mark
//!   (1: written by a graceful stop and not used since; a server marks it 0 before it
//!   serves), the settings the layout depends on (memory limit, largest item, shard
//!   count, CAS on or off), the key hasher's seed and the hash of a probe key under it
//!   (a build whose hash function differs would put keys in other shards), the
//!   wall-clock second of the stop, and a CRC-32 of the header;
//! - one section per shard, in shard order: the shard's index, its CAS counter, its
//!   delayed `flush_all` not yet due (wall-clock second; 0: none), the items it held
//!   (live or dead, the room a restore reserves in its table); then its live items
//!   tail to head, each [`ITEM_HEAD_BYTES`] (key length, state bits, value length,
//!   client flags, own CAS, exptime and last access as wall-clock seconds (exptime 0:
//!   never)), the chosen CAS (meta `E`) if the state byte says so, the key, the value;
//!   then the item count and a CRC-32 of the section before it;
//! - a directory: each section's offset and length; the total item count, a CRC-32 of
//!   the directory, and [`END_MAGIC`].
//!
//! Invariants:
//! - a restore puts back only what passed every check: the header (magic, checksum,
//!   version, clean mark, settings, hash probe), the directory (checksum, sections
//!   contiguous and within the file), and each section (checksum, lengths within it,
//!   every key of the shard it is in, every CAS of that shard and not above its
//!   counter, no key twice). Any failure gives back an empty store and the one reason,
//!   never a partial one;
//! - times are carried as wall-clock seconds: an item with 100 s left at the stop and
//!   a 30 s downtime has 70 s left; one that expired meanwhile is not restored, nor are
//!   the items of a delayed `flush_all` that came due meanwhile. A last access older
//!   than the new process reads as its start (relative time cannot go below it);
//! - every item comes back to the shard it was saved from (same seed, same shard
//!   count), in the same list order, with its own CAS, chosen CAS, flags and state
//!   bits; each shard's CAS counter comes back, so later CAS values stay unique and
//!   above every restored one. The SIEVE hand starts at the tail.

use std::io::{self, BufWriter, Read, Write};
use std::time::Instant;

use crate::shard::{key_hash, Restore, SavedItem, ShardState};
use crate::{item_too_large, shard_count, Clock, Store, StoreConfig, KEY_MAX_BYTES};

#[cfg(test)]
mod tests;

/// The first bytes of a snapshot.
pub const MAGIC: [u8; 8] = *b"rcmemory";
/// The last bytes of a complete snapshot.
pub const END_MAGIC: [u8; 8] = *b"rcmemend";
/// The format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// Bytes of the header.
pub const HEADER_BYTES: usize = 80;
/// Bytes of an item before its chosen CAS, key and value.
pub const ITEM_HEAD_BYTES: usize = 34;
/// Bytes of a section before its items: index, CAS counter, pending flush, the items
/// the shard held (live or dead: room to reserve).
const SECTION_HEAD_BYTES: usize = 28;
/// Bytes of a section after its items: item count, CRC-32.
const SECTION_TAIL_BYTES: usize = 12;
/// Bytes of one directory entry: offset, length.
const DIR_ENTRY_BYTES: usize = 16;
/// Bytes after the directory entries: item count, CRC-32, end magic.
const TRAILER_BYTES: usize = 20;
/// Item state byte: a chosen CAS follows the fixed part.
const CHOSEN_CAS: u8 = 0x80;
/// The key whose hash the header records, to tell a build that hashes differently.
const PROBE_KEY: &[u8] = b"snapshot hash probe";

/// Where a restore reads a snapshot: its length and readers of byte ranges (a file
/// opened once per range, or a slice in memory).
pub trait SnapshotSource: Sync {
    type Reader<'a>: Read
    where
        Self: 'a;
    /// The snapshot's length in bytes.
    fn total_bytes(&self) -> u64;
    /// A reader of the `len` bytes from `offset`.
    fn open(&self, offset: u64, len: u64) -> io::Result<Self::Reader<'_>>;
}

impl SnapshotSource for [u8] {
    type Reader<'a> = &'a [u8];

    fn total_bytes(&self) -> u64 {
        self.len() as u64
    }

    fn open(&self, offset: u64, len: u64) -> io::Result<&[u8]> {
        usize::try_from(offset)
            .ok()
            .zip(usize::try_from(len).ok())
            .and_then(|(at, len)| self.get(at..at.checked_add(len)?))
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
    }
}

/// Why a snapshot was not restored (the store starts empty).
#[derive(Debug)]
pub enum SnapshotError {
    /// Reading it failed.
    Io(io::Error),
    /// Not a snapshot, or damaged: what failed.
    Corrupt(String),
    /// Written by another format version or with other settings: which.
    Mismatch(String),
    /// Not marked clean: the server that used it did not stop gracefully (a crash,
    /// SIGKILL), or it is being used.
    NotClean,
}

impl std::fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnapshotError::Io(e) => write!(f, "cannot read it: {e}"),
            SnapshotError::Corrupt(why) => write!(f, "damaged: {why}"),
            SnapshotError::Mismatch(why) => write!(f, "{why}"),
            SnapshotError::NotClean => f.write_str(
                "not marked clean: the last server on it did not stop gracefully (crash or SIGKILL)",
            ),
        }
    }
}

impl std::error::Error for SnapshotError {}

fn corrupt(why: impl Into<String>) -> SnapshotError {
    SnapshotError::Corrupt(why.into())
}

/// What [`Store::save`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Saved {
    pub items: u64,
    pub bytes: u64,
}

/// What [`Store::restore`] put back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Items restored.
    pub items: u64,
    /// Items saved that expired (or were flushed) during the downtime.
    pub expired: u64,
    /// Microseconds the restore took (reading, checking and inserting).
    pub load_us: u64,
    /// Wall-clock seconds between the stop and the restore.
    pub downtime_secs: u64,
}

/// The header's fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Header {
    clean: bool,
    limit_bytes: u64,
    max_item_bytes: u64,
    shards: u32,
    cas_enabled: bool,
    hash_seed: u64,
    hash_probe: u64,
    stop_unix: u64,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut h = [0u8; HEADER_BYTES];
        h[0..8].copy_from_slice(&MAGIC);
        h[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        h[12..16].copy_from_slice(&u32::from(self.clean).to_le_bytes());
        h[16..24].copy_from_slice(&self.limit_bytes.to_le_bytes());
        h[24..32].copy_from_slice(&self.max_item_bytes.to_le_bytes());
        h[32..36].copy_from_slice(&self.shards.to_le_bytes());
        h[36..40].copy_from_slice(&u32::from(self.cas_enabled).to_le_bytes());
        h[40..48].copy_from_slice(&self.hash_seed.to_le_bytes());
        h[48..56].copy_from_slice(&self.hash_probe.to_le_bytes());
        h[56..64].copy_from_slice(&self.stop_unix.to_le_bytes());
        let crc = crc32fast::hash(&h[..76]);
        h[76..80].copy_from_slice(&crc.to_le_bytes());
        h
    }

    fn decode(h: &[u8; HEADER_BYTES]) -> Result<Header, SnapshotError> {
        if h[0..8] != MAGIC {
            return Err(corrupt("bad magic (not a memory file of this store)"));
        }
        if crc32fast::hash(&h[..76]) != u32_at(h, 76) {
            return Err(corrupt("header checksum"));
        }
        let version = u32_at(h, 8);
        if version != FORMAT_VERSION {
            return Err(SnapshotError::Mismatch(format!(
                "format version {version}, this build reads {FORMAT_VERSION}"
            )));
        }
        Ok(Header {
            clean: u32_at(h, 12) == 1,
            limit_bytes: u64_at(h, 16),
            max_item_bytes: u64_at(h, 24),
            shards: u32_at(h, 32),
            cas_enabled: u32_at(h, 36) == 1,
            hash_seed: u64_at(h, 40),
            hash_probe: u64_at(h, 48),
            stop_unix: u64_at(h, 56),
        })
    }

    /// Whether a store with `config` (and CAS on or off) can take this snapshot.
    fn check(&self, config: &StoreConfig, cas_enabled: bool) -> Result<(), SnapshotError> {
        let mismatch = |what: &str, saved: String, now: String| {
            Err(SnapshotError::Mismatch(format!(
                "saved with {what} {saved}, started with {now}"
            )))
        };
        if self.limit_bytes != config.limit_bytes as u64 {
            return mismatch(
                "-m",
                format!("{}m", self.limit_bytes >> 20),
                format!("{}m", config.limit_bytes >> 20),
            );
        }
        if self.max_item_bytes != config.max_item_bytes as u64 {
            let (saved, now) = (self.max_item_bytes, config.max_item_bytes);
            return mismatch("-I", saved.to_string(), now.to_string());
        }
        let shards = shard_count(config);
        if self.shards as usize != shards {
            return mismatch(
                "shards",
                self.shards.to_string(),
                format!("{shards} (the shard count follows -t)"),
            );
        }
        if self.cas_enabled != cas_enabled {
            let word = |on: bool| if on { "CAS on" } else { "CAS off (-C)" };
            return mismatch("", word(self.cas_enabled).into(), word(cas_enabled).into());
        }
        Ok(())
    }
}

/// The header of a memory file in use: valid, with the clean mark off, so a start
/// after a crash finds a file that says so (see [`SnapshotError::NotClean`]).
pub fn not_clean_header() -> [u8; HEADER_BYTES] {
    Header {
        clean: false,
        limit_bytes: 0,
        max_item_bytes: 0,
        shards: 0,
        cas_enabled: false,
        hash_seed: 0,
        hash_probe: 0,
        stop_unix: 0,
    }
    .encode()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    let mut w = [0; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(w)
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// A writer that counts and checksums what passes.
struct Summing<W> {
    out: W,
    written: u64,
    crc: crc32fast::Hasher,
}

impl<W: Write> Summing<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        self.crc.update(bytes);
        self.written += bytes.len() as u64;
        Ok(())
    }

    /// The checksum so far, starting a new one.
    fn take_crc(&mut self) -> u32 {
        std::mem::take(&mut self.crc).finalize()
    }
}

/// A reader that counts and checksums what it reads; running out is corruption.
struct Checked<R> {
    input: R,
    read: u64,
    crc: crc32fast::Hasher,
}

impl<R: Read> Checked<R> {
    fn take(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        self.input.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => corrupt("truncated"),
            _ => SnapshotError::Io(e),
        })?;
        self.crc.update(buf);
        self.read += buf.len() as u64;
        Ok(())
    }
}

/// Seconds `rel` (relative to a clock started at `started_unix`) as wall-clock time.
fn to_unix(started_unix: u64, rel: u32) -> u64 {
    started_unix + u64::from(rel)
}

impl Store {
    /// Writes every live item, with what the store needs to take them back, to `out`:
    /// call it after the workers stopped (each shard is locked while it is written).
    /// `cas_enabled` is the server's `-C` setting, recorded so a start with the other
    /// one refuses the snapshot.
    pub fn save(&self, out: impl Write, cas_enabled: bool) -> io::Result<Saved> {
        let clock = self.clock();
        let (now, started) = (clock.now(), clock.started_unix());
        let header = Header {
            clean: true,
            limit_bytes: self.config.limit_bytes as u64,
            max_item_bytes: self.config.max_item_bytes as u64,
            shards: self.shards.len() as u32,
            cas_enabled,
            hash_seed: self.hash_seed,
            hash_probe: key_hash(&self.hasher, PROBE_KEY),
            stop_unix: clock.unix_now(),
        };
        let mut w = Summing {
            out: BufWriter::with_capacity(1 << 20, out),
            written: 0,
            crc: crc32fast::Hasher::new(),
        };
        w.put(&header.encode())?;
        let mut directory = Vec::with_capacity(self.shards.len());
        let mut total = 0u64;
        for (index, slot) in self.shards.iter().enumerate() {
            let start = w.written;
            w.take_crc();
            let mut shard = slot.lock();
            let state = shard.state();
            let pending = match state.flush_pending {
                0 => 0,
                at => to_unix(started, at),
            };
            w.put(&(index as u32).to_le_bytes())?;
            w.put(&state.cas_counter.to_le_bytes())?;
            w.put(&pending.to_le_bytes())?;
            w.put(&(shard.held_items() as u64).to_le_bytes())?;
            let mut items = 0u64;
            let mut failed = Ok(());
            shard.save_items(now, |item| {
                if failed.is_ok() {
                    failed = put_item(&mut w, item, started);
                    items += 1;
                }
            });
            drop(shard);
            failed?;
            let crc = w.take_crc();
            w.put(&items.to_le_bytes())?;
            w.put(&crc.to_le_bytes())?;
            directory.push((start, w.written - start));
            total += items;
        }
        w.take_crc();
        for (offset, len) in directory {
            w.put(&offset.to_le_bytes())?;
            w.put(&len.to_le_bytes())?;
        }
        w.put(&total.to_le_bytes())?;
        let crc = w.take_crc();
        w.put(&crc.to_le_bytes())?;
        w.put(&END_MAGIC)?;
        w.out.flush()?;
        Ok(Saved {
            items: total,
            bytes: w.written,
        })
    }

    /// A store with `config` and `clock` holding what `source` saved, if it passes
    /// every check (see the module header); else an empty store and the reason. The
    /// shards are read in parallel, one thread per CPU at most. `cas_enabled` is the
    /// server's `-C` setting, which must be the one saved.
    pub fn restore<S: SnapshotSource + ?Sized>(
        config: StoreConfig,
        clock: Clock,
        source: &S,
        cas_enabled: bool,
    ) -> (Store, Result<Restored, SnapshotError>) {
        let began = Instant::now();
        let checked = read_header(source, &config, cas_enabled)
            .and_then(|header| Ok((header, read_directory(source, header.shards as usize)?)));
        let (header, directory) = match checked {
            Ok(found) => found,
            Err(e) => return (Store::new(config, clock), Err(e)),
        };
        let store = Store::with_seed(config, clock, header.hash_seed);
        if key_hash(&store.hasher, PROBE_KEY) != header.hash_probe {
            let why = "keys hash differently in this build (its hash function changed)";
            return (store.emptied(), Err(SnapshotError::Mismatch(why.into())));
        }
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(directory.len());
        let results: Vec<Result<(u64, u64, u64), SnapshotError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (store, directory) = (&store, &directory);
                    scope.spawn(move || {
                        let mut sum = (0, 0, 0);
                        for index in (t..directory.len()).step_by(threads) {
                            let (items, expired, counter) =
                                store.restore_shard(source, index, directory[index])?;
                            sum = (sum.0 + items, sum.1 + expired, sum.2.max(counter));
                        }
                        Ok(sum)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(corrupt("a restore thread panicked")))
                })
                .collect()
        });
        let mut restored = Restored {
            downtime_secs: store.clock().unix_now().saturating_sub(header.stop_unix),
            ..Restored::default()
        };
        let mut highest = 0;
        for result in results {
            match result {
                Ok((items, expired, counter)) => {
                    restored.items += items;
                    restored.expired += expired;
                    highest = highest.max(counter);
                }
                Err(e) => return (store.emptied(), Err(e)),
            }
        }
        for slot in store.shards.iter() {
            let mut shard = slot.lock();
            let flush_pending = shard.state().flush_pending;
            shard.set_state(ShardState {
                cas_counter: highest,
                flush_pending,
            });
        }
        restored.load_us = began.elapsed().as_micros() as u64;
        let mut store = store;
        store.restored = Some(restored);
        (store, Ok(restored))
    }

    /// What [`Store::restore`] put back, if this store was restored.
    pub fn restored(&self) -> Option<Restored> {
        self.restored
    }

    /// An empty store with this one's configuration and clock (a restore that failed).
    fn emptied(self) -> Store {
        Store::new(self.config, self.clock)
    }

    /// Reads shard `index`'s section, `(offset, len)`, into that shard; the items
    /// restored and those that expired meanwhile.
    fn restore_shard<S: SnapshotSource + ?Sized>(
        &self,
        source: &S,
        index: usize,
        (offset, len): (u64, u64),
    ) -> Result<(u64, u64, u64), SnapshotError> {
        let input = source.open(offset, len).map_err(SnapshotError::Io)?;
        let mut r = Checked {
            input: io::BufReader::with_capacity(1 << 18, input),
            read: 0,
            crc: crc32fast::Hasher::new(),
        };
        let mut head = [0u8; SECTION_HEAD_BYTES];
        r.take(&mut head)?;
        if u32_at(&head, 0) as usize != index {
            return Err(corrupt(format!("section {index} names another shard")));
        }
        let cas_counter = u64_at(&head, 4);
        let pending_unix = u64_at(&head, 12);
        let held = u64_at(&head, 20);
        let clock = self.clock();
        let (now, started, unix_now) = (clock.now(), clock.started_unix(), clock.unix_now());
        // A delayed flush due by now killed every item saved (all written before it).
        let flushed = pending_unix != 0 && pending_unix <= unix_now + 1;
        let items_end = len - SECTION_TAIL_BYTES as u64;
        let mask = (1u64 << self.shard_bits) - 1;
        let max_item = self.config.max_item_bytes;
        let mut shard = self.shards[index].lock();
        // Room for what the shard held, if the section can hold that many items.
        let fits =
            (len - (SECTION_HEAD_BYTES + SECTION_TAIL_BYTES) as u64) / ITEM_HEAD_BYTES as u64;
        shard.reserve(held.min(fits) as usize);
        let (mut count, mut restored, mut expired) = (0u64, 0u64, 0u64);
        let mut buf = Vec::new();
        while r.read < items_end {
            let mut h = [0u8; ITEM_HEAD_BYTES];
            r.take(&mut h)?;
            let key_len = usize::from(h[0]);
            let bits = h[1];
            let value_len = u32_at(&h, 2) as usize;
            let flags = u32_at(&h, 6);
            let cas = u64_at(&h, 10);
            let exptime_unix = u64_at(&h, 18);
            let time_unix = u64_at(&h, 26);
            if key_len == 0 || key_len > KEY_MAX_BYTES {
                return Err(corrupt(format!("a key of {key_len} bytes")));
            }
            if item_too_large(key_len, value_len, flags, max_item) {
                return Err(corrupt(format!("an item of {value_len} bytes")));
            }
            let chosen_cas = if bits & CHOSEN_CAS != 0 {
                let mut c = [0u8; 8];
                r.take(&mut c)?;
                Some(u64::from_le_bytes(c))
            } else {
                None
            };
            if r.read + (key_len + value_len) as u64 > items_end {
                return Err(corrupt("an item runs past its section"));
            }
            buf.resize(key_len + value_len, 0);
            r.take(&mut buf)?;
            let (key, value) = buf.split_at(key_len);
            if cas & mask != index as u64 || cas >> self.shard_bits > cas_counter || cas == 0 {
                return Err(corrupt(format!("CAS {cas} in shard {index}")));
            }
            let hash = key_hash(&self.hasher, key);
            if self.shard_index(hash) != index {
                return Err(corrupt(format!("a key in shard {index} belongs elsewhere")));
            }
            count += 1;
            if flushed || (exptime_unix != 0 && exptime_unix <= unix_now) {
                expired += 1;
                continue;
            }
            let rel = |unix: u64| u32::try_from(unix.saturating_sub(started)).unwrap_or(u32::MAX);
            let item = SavedItem {
                key,
                value,
                flags,
                cas,
                chosen_cas,
                exptime: if exptime_unix == 0 {
                    0
                } else {
                    rel(exptime_unix)
                },
                time: rel(time_unix).min(now),
                bits: bits & !CHOSEN_CAS,
            };
            match shard.restore_item(hash, &item, now) {
                Restore::Restored => restored += 1,
                Restore::TooLarge => {}
                Restore::Duplicate => return Err(corrupt("a key saved twice")),
            }
        }
        if r.read != items_end {
            return Err(corrupt("an item runs past its section"));
        }
        let crc = std::mem::take(&mut r.crc).finalize();
        let mut tail = [0u8; SECTION_TAIL_BYTES];
        r.take(&mut tail)?;
        if u64_at(&tail, 0) != count || u32_at(&tail, 8) != crc {
            return Err(corrupt(format!("section {index} checksum")));
        }
        let flush_pending = if pending_unix == 0 || flushed {
            0
        } else {
            u32::try_from(pending_unix.saturating_sub(started)).unwrap_or(u32::MAX)
        };
        shard.set_state(ShardState {
            cas_counter,
            flush_pending,
        });
        Ok((restored, expired, cas_counter))
    }
}

/// Writes one item (see the module header).
fn put_item<W: Write>(w: &mut Summing<W>, item: &SavedItem<'_>, started: u64) -> io::Result<()> {
    let mut h = [0u8; ITEM_HEAD_BYTES];
    h[0] = item.key.len() as u8;
    h[1] = item.bits
        | if item.chosen_cas.is_some() {
            CHOSEN_CAS
        } else {
            0
        };
    h[2..6].copy_from_slice(&(item.value.len() as u32).to_le_bytes());
    h[6..10].copy_from_slice(&item.flags.to_le_bytes());
    h[10..18].copy_from_slice(&item.cas.to_le_bytes());
    let exptime = match item.exptime {
        0 => 0,
        at => to_unix(started, at),
    };
    h[18..26].copy_from_slice(&exptime.to_le_bytes());
    h[26..34].copy_from_slice(&to_unix(started, item.time).to_le_bytes());
    w.put(&h)?;
    if let Some(chosen) = item.chosen_cas {
        w.put(&chosen.to_le_bytes())?;
    }
    w.put(item.key)?;
    w.put(item.value)
}

/// Reads and checks the header.
fn read_header<S: SnapshotSource + ?Sized>(
    source: &S,
    config: &StoreConfig,
    cas_enabled: bool,
) -> Result<Header, SnapshotError> {
    if source.total_bytes() < HEADER_BYTES as u64 {
        return Err(corrupt(format!(
            "truncated ({} bytes, shorter than a header)",
            source.total_bytes()
        )));
    }
    let mut h = [0u8; HEADER_BYTES];
    let mut input = source
        .open(0, HEADER_BYTES as u64)
        .map_err(SnapshotError::Io)?;
    input.read_exact(&mut h).map_err(SnapshotError::Io)?;
    let header = Header::decode(&h)?;
    if !header.clean {
        return Err(SnapshotError::NotClean);
    }
    header.check(config, cas_enabled)?;
    Ok(header)
}

/// Reads and checks the directory of `shards` sections: each section's offset and
/// length, contiguous from the header to the directory.
fn read_directory<S: SnapshotSource + ?Sized>(
    source: &S,
    shards: usize,
) -> Result<Vec<(u64, u64)>, SnapshotError> {
    let total = source.total_bytes();
    let dir_bytes = (shards * DIR_ENTRY_BYTES + TRAILER_BYTES) as u64;
    let least = HEADER_BYTES as u64
        + (shards * (SECTION_HEAD_BYTES + SECTION_TAIL_BYTES)) as u64
        + dir_bytes;
    if total < least {
        return Err(corrupt(format!("truncated ({total} bytes)")));
    }
    let dir_start = total - dir_bytes;
    let mut dir = vec![0u8; dir_bytes as usize];
    let mut input = source
        .open(dir_start, dir_bytes)
        .map_err(SnapshotError::Io)?;
    input.read_exact(&mut dir).map_err(SnapshotError::Io)?;
    let trailer = &dir[shards * DIR_ENTRY_BYTES..];
    if trailer[12..20] != END_MAGIC {
        return Err(corrupt("truncated (no end mark)"));
    }
    if crc32fast::hash(&dir[..shards * DIR_ENTRY_BYTES + 8]) != u32_at(trailer, 8) {
        return Err(corrupt("directory checksum"));
    }
    let mut next = HEADER_BYTES as u64;
    let mut entries = Vec::with_capacity(shards);
    for i in 0..shards {
        let (offset, len) = (u64_at(&dir, i * 16), u64_at(&dir, i * 16 + 8));
        if offset != next || len < (SECTION_HEAD_BYTES + SECTION_TAIL_BYTES) as u64 {
            return Err(corrupt(format!("section {i} out of place")));
        }
        next = offset.saturating_add(len);
        entries.push((offset, len));
    }
    if next != dir_start {
        return Err(corrupt("sections do not end at the directory"));
    }
    Ok(entries)
}
