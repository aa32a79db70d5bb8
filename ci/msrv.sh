#!/usr/bin/env bash
# The declared minimum Rust (`rust-version` in Cargo.toml) against what the locked
# dependencies declare: fails when any package in Cargo.lock (every workspace member's
# dependencies, dev-dependencies included) needs a newer Rust than ours. When that
# toolchain is installed (`rustup toolchain list`), also builds the workspace with it;
# when not, says so: this machine has no internet to fetch it.
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-} in -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;; "") ;; *) echo "usage: ci/msrv.sh" >&2; exit 2 ;; esac
ours=$(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml)
[ -n "$ours" ] || { echo "ci/msrv.sh: no rust-version in Cargo.toml" >&2; exit 1; }
# A fresh machine has an empty registry: fetch the locked packages (registries are
# reachable) before reading their manifests.
cargo fetch --locked -q
cargo metadata --format-version 1 --locked --offline | /usr/bin/python3 -c '
import json, sys
ours = sys.argv[1]
key = lambda v: tuple(int(x) for x in v.split("."))
meta = json.load(sys.stdin)
newer = [(p["name"], p["version"], p["rust_version"]) for p in meta["packages"]
         if p.get("rust_version") and key(p["rust_version"]) > key(ours)]
top = max((p["rust_version"] for p in meta["packages"] if p.get("rust_version")), key=key)
for n, v, r in newer:
    print(f"ci/msrv.sh: {n} {v} needs Rust {r}, above rust-version {ours}")
if newer:
    sys.exit(1)
count = len(meta["packages"])
print(f"ci/msrv.sh: rust-version {ours} covers all {count} locked packages (the highest any declares: {top})")
' "$ours"
if rustup toolchain list 2>/dev/null | grep -q "^$ours"; then
    echo "ci/msrv.sh: building with Rust $ours"
    cargo "+$ours" check --workspace --all-targets --locked -q
else
    echo "ci/msrv.sh: Rust $ours is not installed (no internet to fetch it here), so the build with it is not run; the check above is what stands"
fi
