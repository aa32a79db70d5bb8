//! Restartable memory (`-e FILE`): the memory file's life around one run of the server.
//!
//! At start ([`load`]), before any worker serves: a file left by a graceful stop with
//! the same settings is restored into the new store (the store's `snapshot.rs` checks
//! it and reads its shards in parallel); a missing file is a normal cold start (INFO);
//! any other file starts cold with exactly one WARN line saying why. Then
//! ([`mark_used`]) the file is replaced by a header marked not clean, still before
//! serving, so a crash later never reloads stale data and the next start says so.
//! At a graceful stop ([`save`]), after the workers have stopped: every live item is
//! written to `FILE.tmp`, which is synced and renamed over `FILE` (the rename is the
//! clean mark: `FILE` is always either a whole snapshot or the not-clean header).
//!
//! Owns the file handling (paths, sync, rename) and the log lines; the format is the
//! store's. Knows nothing of sockets or engines.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::config::Config;
use crate::storage::{self, Clock, SnapshotSource, Store};

/// A memory file read by ranges: each shard's section through its own handle.
struct FileSource {
    path: PathBuf,
    bytes: u64,
}

impl SnapshotSource for FileSource {
    type Reader<'a> = io::Take<File>;

    fn total_bytes(&self) -> u64 {
        self.bytes
    }

    fn open(&self, offset: u64, len: u64) -> io::Result<io::Take<File>> {
        let mut file = File::open(&self.path)?;
        file.seek(SeekFrom::Start(offset))?;
        Ok(file.take(len))
    }
}

/// The store for `config`: restored from `-e FILE` if that holds a clean snapshot with
/// the same settings, else empty (see the module header for the log lines).
pub fn load(config: &Config) -> Store {
    let store_config = crate::server::store_config(config);
    let Some(path) = &config.memory_file else {
        return Store::new(store_config, Clock::new());
    };
    let bytes = match std::fs::metadata(path) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            tracing::info!(
                "-e {}: no memory file yet, starting with an empty cache",
                path.display()
            );
            return Store::new(store_config, Clock::new());
        }
        Err(e) => {
            tracing::warn!(
                "-e {}: cannot read the memory file ({e}); starting with an empty cache",
                path.display()
            );
            return Store::new(store_config, Clock::new());
        }
    };
    let source = FileSource {
        path: path.clone(),
        bytes,
    };
    let (store, result) = Store::restore(store_config, Clock::new(), &source, config.cas_enabled);
    match result {
        Ok(restored) => tracing::info!(
            "-e {}: restored {} items in {} ms ({} expired while down for {} s)",
            path.display(),
            restored.items,
            restored.load_us / 1000,
            restored.expired,
            restored.downtime_secs
        ),
        Err(e) => tracing::warn!(
            "-e {}: memory file not restored, {e}; starting with an empty cache",
            path.display()
        ),
    }
    store
}

/// Replaces the memory file with a header marked not clean (before serving), so a
/// start after a crash finds it so. A file that cannot be written refuses the start:
/// better now than at the stop.
pub fn mark_used(path: &Path) -> Result<(), String> {
    let write = || -> io::Result<()> {
        let mut file = File::create(path)?;
        file.write_all(&storage::not_clean_header())?;
        file.sync_all()
    };
    write().map_err(|e| format!("-e {}: cannot write the memory file: {e}", path.display()))
}

/// Writes every live item of `store` to `path` (through `path.tmp`, synced, renamed
/// over it): call it after the workers stopped. A failure is logged; the file then
/// stays marked not clean.
pub fn save(store: &Store, path: &Path, cas_enabled: bool) {
    let began = Instant::now();
    store.clock().tick();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> io::Result<storage::Saved> {
        let mut file = File::create(&tmp)?;
        let saved = store.save(&mut file, cas_enabled)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename itself is durable once the directory is synced.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(saved)
    };
    match write() {
        Ok(saved) => tracing::info!(
            "-e {}: saved {} items ({} bytes) in {} ms",
            path.display(),
            saved.items,
            saved.bytes,
            began.elapsed().as_millis()
        ),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            tracing::error!(
                "-e {}: cannot save the memory file: {e}; the next start will be cold",
                path.display()
            );
        }
    }
}
