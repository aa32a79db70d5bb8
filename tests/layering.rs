//! The walls Cargo cannot see, checked by reading the sources (see ARCHITECTURE.md).
//!
//! Cargo already refuses an import of a crate that is not a dependency; this checks the
//! rest: the pure crates (`crates/protocol`, `crates/storage`) name no crate of ours,
//! not each other, and not the server's modules; the client codec (`crates/client`)
//! depends on `ringcache-protocol` alone and names neither the server, its `io`, nor
//! the store; the tools (`crates/tools`) depend on the client codec, never on the
//! server package; `meta` reads lines through `ascii`, never through `text`; `server`
//! never reaches into `io` and calls the OS only through the `os` leaf, which imports
//! nothing of ours; and `unsafe` appears nowhere outside `src/io/`. Comment lines are
//! skipped (a header may say what a module must not know).

use std::fs;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, sorted.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    assert!(!out.is_empty(), "no sources under {}", dir.display());
    out
}

/// The code lines of a file (1-based numbers), without lines that are only a comment.
fn code_lines(path: &Path) -> Vec<(usize, String)> {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect()
}

/// Whether `line` holds `word` with no identifier character on either side.
fn has_word(line: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// Each line of the files under `dir` that contains one of `forbidden`.
fn offenders(dir: &Path, forbidden: &[&str], skip: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for path in rust_files(dir) {
        let rel = path
            .strip_prefix(root())
            .unwrap_or(&path)
            .display()
            .to_string();
        if skip.iter().any(|s| rel.ends_with(s)) {
            continue;
        }
        for (n, line) in code_lines(&path) {
            for word in forbidden {
                if line.contains(word) {
                    found.push(format!("{rel}:{n}: `{word}`: {}", line.trim()));
                }
            }
        }
    }
    found
}

/// The crates of ours (`ringcache…`) that the `[dependencies]`-like sections of a
/// manifest name, each with its section.
fn our_dependencies(manifest: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(manifest).expect("manifest");
    let mut section = String::new();
    let mut found = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.to_string();
        } else if section.contains("dependencies") && line.starts_with("ringcache") {
            let name = line.split(['=', ' ', '.']).next().unwrap_or(line);
            found.push((section.clone(), name.to_string()));
        }
    }
    found
}

/// What crate `dir` reaches that it must not: crates of ours its manifest names in a
/// `[dependencies]`-like section other than `allowed`, and code lines of its sources
/// that contain one of `forbidden`.
fn reaches(dir: &str, allowed: &[&str], forbidden: &[&str]) -> Vec<String> {
    let dir = root().join(dir);
    let manifest = dir.join("Cargo.toml");
    let mut found: Vec<String> = our_dependencies(&manifest)
        .into_iter()
        .filter(|(_, name)| !allowed.contains(&name.as_str()))
        .map(|(section, name)| format!("{}: {section} {name}", manifest.display()))
        .collect();
    found.extend(offenders(&dir.join("src"), forbidden, &[]));
    found
}

#[test]
fn protocol_depends_on_nothing_of_ours() {
    let found = reaches(
        "crates/protocol",
        &[],
        &[
            "ringcache",
            "storage::",
            "crate::server",
            "crate::io",
            "server::",
        ],
    );
    assert!(
        found.is_empty(),
        "protocol reaches outside itself:\n{}",
        found.join("\n")
    );
}

#[test]
fn storage_depends_on_nothing_of_ours() {
    let found = reaches(
        "crates/storage",
        &[],
        &[
            "ringcache",
            "protocol::",
            "crate::server",
            "crate::io",
            "server::",
            "StoreMode",
        ],
    );
    assert!(
        found.is_empty(),
        "storage reaches outside itself:\n{}",
        found.join("\n")
    );
}

/// The client codec is as pure as the protocol crate it builds on (its one crate of
/// ours): no server, no engine, no store, no sockets.
#[test]
fn client_depends_on_the_protocol_alone() {
    let found = reaches(
        "crates/client",
        &["ringcache-protocol"],
        &[
            "ringcache::",
            "ringcache_storage",
            "storage::",
            "crate::server",
            "server::",
            "crate::io",
            "io::",
            "std::net",
        ],
    );
    assert!(
        found.is_empty(),
        "the client codec reaches outside itself:\n{}",
        found.join("\n")
    );
    let uses = our_dependencies(&root().join("crates/client/Cargo.toml"));
    assert_eq!(
        uses,
        [("[dependencies]".into(), "ringcache-protocol".into())],
        "the manifest check reads the client's manifest"
    );
}

/// The tools talk to a server over sockets through the client codec; they never link
/// the server package, the store or the server's parsers.
#[test]
fn tools_do_not_depend_on_the_server() {
    let found = reaches(
        "crates/tools",
        &["ringcache-client"],
        &["ringcache::", "ringcache_storage", "ringcache_protocol"],
    );
    assert!(
        found.is_empty(),
        "the tools reach past the client codec:\n{}",
        found.join("\n")
    );
    let uses = our_dependencies(&root().join("crates/tools/Cargo.toml"));
    assert_eq!(
        uses,
        [("[dependencies]".into(), "ringcache-client".into())],
        "the manifest check reads the tools' manifest"
    );
}

#[test]
fn pure_crates_forbid_unsafe() {
    for lib in [
        "crates/protocol/src/lib.rs",
        "crates/storage/src/lib.rs",
        "crates/client/src/lib.rs",
        "crates/tools/src/bin/rc-load/main.rs",
        "crates/tools/src/bin/rc-soak/main.rs",
    ] {
        let text = fs::read_to_string(root().join(lib)).expect(lib);
        assert!(
            text.contains("#![forbid(unsafe_code)]"),
            "{lib}: no #![forbid(unsafe_code)]"
        );
    }
}

/// `meta` shares `ascii` with `text` and never imports `text` (its tests may parse
/// through `text::parse`, which is how a connection reaches `meta`).
#[test]
fn meta_does_not_import_text() {
    let found = offenders(
        &root().join("crates/protocol/src/meta"),
        &["text::", "super::text"],
        &["meta/tests.rs"],
    )
    .into_iter()
    .chain(
        code_lines(&root().join("crates/protocol/src/meta.rs"))
            .into_iter()
            .filter(|(_, l)| l.contains("text::"))
            .map(|(n, l)| format!("crates/protocol/src/meta.rs:{n}: {}", l.trim())),
    )
    .collect::<Vec<_>>();
    assert!(found.is_empty(), "meta imports text:\n{}", found.join("\n"));
}

/// `io` drives `server`, never the other way: the server names no engine type, and the
/// OS helpers it needs (rusage, socket addresses, prefetch) come from `os`. Raw OS
/// crates are `os`'s and `io`'s, not the server's (`socket2` sets listeners up).
#[test]
fn server_never_imports_io() {
    let mut found = Vec::new();
    for path in rust_files(&root().join("src/server")) {
        for (n, line) in code_lines(&path) {
            for word in ["crate::io", "super::io", "libc", "nix", "safe_arch"] {
                if has_word(&line, word) {
                    found.push(format!("{}:{n}: `{word}`: {}", path.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "server reaches into io or the OS:\n{}",
        found.join("\n")
    );
}

/// The OS leaf imports nothing of ours (its tests use only itself).
#[test]
fn os_leaf_imports_nothing_of_ours() {
    let path = root().join("src/os.rs");
    let found: Vec<String> = code_lines(&path)
        .into_iter()
        .filter(|(_, l)| {
            l.contains("crate::") || l.contains("ringcache") || l.contains("super::super")
        })
        .map(|(n, l)| format!("src/os.rs:{n}: {}", l.trim()))
        .collect();
    assert!(
        found.is_empty(),
        "the os leaf imports ours:\n{}",
        found.join("\n")
    );
    let text = fs::read_to_string(&path).expect("src/os.rs");
    assert!(
        text.contains("#![forbid(unsafe_code)]"),
        "src/os.rs: no #![forbid(unsafe_code)]"
    );
}

#[test]
fn unsafe_only_under_src_io() {
    let mut found = Vec::new();
    for dir in ["src", "crates"] {
        for path in rust_files(&root().join(dir)) {
            let rel = path.strip_prefix(root()).expect("under root");
            if rel.starts_with("src/io") {
                continue;
            }
            for (n, line) in code_lines(&path) {
                if has_word(&line, "unsafe") {
                    found.push(format!("{}:{n}: {}", rel.display(), line.trim()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "unsafe outside src/io/:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_checks_see_what_they_look_for() {
    assert!(has_word("    unsafe { x }", "unsafe"));
    assert!(!has_word("#![forbid(unsafe_code)]", "unsafe"));
    // The io engines do hold unsafe, so the walk would find it if it were not skipped.
    let io_unsafe = rust_files(&root().join("src/io"))
        .iter()
        .any(|p| code_lines(p).iter().any(|(_, l)| has_word(l, "unsafe")));
    assert!(
        io_unsafe,
        "no unsafe found under src/io: is the walk broken?"
    );
}
