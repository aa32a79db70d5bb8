//! Replays the saved fuzz corpus and every saved crash on stable, without cargo-fuzz:
//! each file of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` goes through
//! the same check the fuzz target runs (this crate's `check_*`). A corpus directory that
//! is missing or empty fails the test: it is never skipped silently.
//!
//! No sockets here: the targets drive the parsers and the engine-agnostic connection
//! state machine directly, so there is no engine to run twice.

use std::path::{Path, PathBuf};

type Check = fn(&[u8]);

const TARGETS: [(&str, Check); 6] = [
    ("text", ringcache_fuzz_check::check_text),
    ("meta", ringcache_fuzz_check::check_meta),
    ("binary", ringcache_fuzz_check::check_binary),
    ("sasl", ringcache_fuzz_check::check_sasl),
    ("connection", ringcache_fuzz_check::check_connection),
    ("udp", ringcache_fuzz_check::check_udp),
];

/// `fuzz/` at the repository root (this crate is `crates/fuzz-check`).
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `dir`, sorted; `None` when it does not exist.
fn files(dir: &Path) -> Option<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).ok()?;
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    Some(files)
}

/// Runs `check` on every file; reports each file that panics, then fails if any did.
fn replay(check: Check, files: &[PathBuf]) {
    let mut failed = Vec::new();
    for path in files {
        let data = std::fs::read(path).expect("readable corpus file");
        if std::panic::catch_unwind(|| check(&data)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(failed.is_empty(), "invariants broken by: {failed:#?}");
}

fn replay_corpus(target: &str) {
    let (_, check) = TARGETS.iter().find(|(t, _)| *t == target).unwrap();
    let dir = fuzz_dir().join("corpus").join(target);
    let corpus = files(&dir).unwrap_or_else(|| panic!("{} is missing", dir.display()));
    assert!(!corpus.is_empty(), "{} is empty", dir.display());
    replay(*check, &corpus);
    println!("{target}: {} corpus files replayed", corpus.len());
}

#[test]
fn text_corpus() {
    replay_corpus("text");
}

#[test]
fn meta_corpus() {
    replay_corpus("meta");
}

#[test]
fn binary_corpus() {
    replay_corpus("binary");
}

#[test]
fn sasl_corpus() {
    replay_corpus("sasl");
}

#[test]
fn connection_corpus() {
    replay_corpus("connection");
}

#[test]
fn udp_corpus() {
    replay_corpus("udp");
}

/// Every crash once found stays fixed. A target may have no crash saved (none found),
/// but every directory under `regressions/` must name a target.
#[test]
fn saved_crashes() {
    let root = fuzz_dir().join("regressions");
    let dirs = subdirs(&root);
    let mut replayed = 0;
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let (_, check) = TARGETS
            .iter()
            .find(|(t, _)| *t == name)
            .unwrap_or_else(|| panic!("{}: no fuzz target of that name", dir.display()));
        let crashes = files(&dir).unwrap_or_default();
        replay(*check, &crashes);
        replayed += crashes.len();
    }
    println!("{replayed} saved crashes replayed");
}

/// Subdirectories of `root` (none if it does not exist yet).
fn subdirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}
