//! The documentation, checked as files: every relative link and image in README.md and
//! the Markdown under docs/ names a file that exists, and an anchor after it (`#…`)
//! names a heading of that file; each `ci/*.sh` script that documents itself prints
//! its usage on `--help` and `-h` (also when run from inside ci/) and exits 0, and
//! refuses an unknown flag with its usage-error status. No server is started, so there is no engine to run on.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md and every `.md` file under docs/, sorted.
fn markdown_files() -> Vec<PathBuf> {
    let mut out = vec![root().join("README.md")];
    let mut stack = vec![root().join("docs")];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The lines of `text` outside fenced code blocks, with inline code spans removed.
fn prose_lines(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut out = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut prose = String::new();
        for (i, part) in line.split('`').enumerate() {
            if i % 2 == 0 {
                prose.push_str(part);
            }
        }
        out.push(prose);
    }
    out
}

/// The targets of `[text](target)` and `![alt](target)` in `text`.
fn link_targets(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in prose_lines(text) {
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            out.push(after[..end].trim().to_string());
            rest = &after[end..];
        }
    }
    out
}

/// GitHub's anchor of a heading: lower case, spaces to hyphens, punctuation other than
/// `-` and `_` dropped; a repeated heading gets `-1`, `-2`, ….
fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#').trim();
        let mut slug = String::new();
        for c in title.chars() {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                slug.extend(c.to_lowercase());
            } else if c == ' ' {
                slug.push('-');
            }
        }
        let n = seen.entry(slug.clone()).or_insert(0);
        out.push(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// Why `target`, linked from `from`, does not resolve; `None` when it does or is not
/// relative (a URL).
fn broken(from: &Path, target: &str) -> Option<String> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (file, anchor) = match target.split_once('#') {
        Some((file, anchor)) => (file, Some(anchor)),
        None => (target, None),
    };
    let path = if file.is_empty() {
        from.to_path_buf()
    } else {
        from.parent().expect("a file's directory").join(file)
    };
    if !path.exists() {
        return Some(format!("{} does not exist", path.display()));
    }
    let anchor = anchor?;
    let text = fs::read_to_string(&path).ok()?;
    if anchors(&text).iter().any(|a| a == anchor) {
        None
    } else {
        Some(format!(
            "{} has no heading with the anchor #{anchor}",
            path.display()
        ))
    }
}

#[test]
fn relative_links_and_images_resolve() {
    let mut problems = Vec::new();
    let mut relative = 0;
    for file in markdown_files() {
        let text = fs::read_to_string(&file).unwrap();
        for target in link_targets(&text) {
            if !target.contains("://") {
                relative += 1;
            }
            if let Some(why) = broken(&file, &target) {
                problems.push(format!("{}: ({target}): {why}", file.display()));
            }
        }
    }
    // README alone links docs/, the chart and its saved run: finding almost none means
    // the scan is broken, not that everything resolves.
    assert!(relative >= 10, "only {relative} relative links found");
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn readme_embeds_the_chart_of_its_benchmark_run() {
    let readme = fs::read_to_string(root().join("README.md")).unwrap();
    let images: Vec<String> = readme
        .lines()
        .filter_map(|l| l.split_once("]("))
        .filter(|(before, _)| before.contains("!["))
        .map(|(_, after)| after.split(')').next().unwrap_or_default().to_string())
        .collect();
    assert!(
        images.iter().any(|i| i.starts_with("docs/bench/")),
        "README embeds no chart from docs/bench/: {images:?}"
    );
}

#[test]
fn anchors_follow_github_rules() {
    let text = "# Memory per item (ci/memory.sh)\n## Locked memory and io_uring\n\
                ```\n# not a heading\n```\n## ci/bench.sh\n## ci/bench.sh\n";
    assert_eq!(
        anchors(text),
        [
            "memory-per-item-cimemorysh",
            "locked-memory-and-io_uring",
            "cibenchsh",
            "cibenchsh-1"
        ]
    );
    assert_eq!(
        link_targets("see [a](x.md#b) and `[c](not-a-link)` ![d](e.png)"),
        ["x.md#b", "e.png"]
    );
}

/// Runs `bash ci/<script> <args>` from the repository root, or `bash <script> <args>`
/// from ci/ with `in_ci`; (status, stdout, stderr).
fn run_script(script: &str, args: &[&str], in_ci: bool) -> (i32, String, String) {
    let (path, dir) = if in_ci {
        (script.to_string(), root().join("ci"))
    } else {
        (format!("ci/{script}"), root())
    };
    let out = Command::new("bash")
        .arg(path)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("bash ci/{script}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn ci_scripts_print_usage_on_help_and_refuse_unknown_flags() {
    // (script, its status for a usage error)
    let scripts = [
        ("bench.sh", 2),
        ("memory.sh", 2),
        ("hitratio.sh", 2),
        ("profile.sh", 2),
        ("soak.sh", 64),
    ];
    for (script, usage_status) in scripts {
        for (flag, in_ci) in [("--help", false), ("-h", false), ("--help", true)] {
            let (status, stdout, stderr) = run_script(script, &[flag], in_ci);
            let how = if in_ci { "from ci/" } else { "" };
            assert_eq!(
                status, 0,
                "ci/{script} {flag} {how}: exit {status}\n{stderr}"
            );
            assert!(
                stdout.contains(&format!("ci/{script}")) && stdout.lines().count() >= 3,
                "ci/{script} {flag} {how} printed no usage:\n{stdout}"
            );
        }
        let (status, _, stderr) = run_script(script, &["--no-such-flag"], false);
        assert_eq!(
            status, usage_status,
            "ci/{script} --no-such-flag: exit {status}\n{stderr}"
        );
    }
}
