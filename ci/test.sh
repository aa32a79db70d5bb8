#!/usr/bin/env bash
# The README's test command: installs what the tests need when missing, checks
# formatting and lints, builds, and runs every test (unit, integration on both engines,
# the differential test against Debian's memcached, memccapable, real clients and twemproxy).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v memcached >/dev/null 2>&1 || missing+=(memcached)
command -v memccapable >/dev/null 2>&1 || missing+=(libmemcached-tools)  # also memccp, memccat, memcslap
# tests/clients.rs: Debian's python3 (not the first python3 on PATH) with pymemcache, twemproxy.
/usr/bin/python3 -c 'import pymemcache' >/dev/null 2>&1 || missing+=(python3-pymemcache)
command -v nutcracker >/dev/null 2>&1 || [ -x /usr/sbin/nutcracker ] || missing+=(nutcracker)
# tests/sasl.rs: saslpasswd2 writes the reference memcached's users into a Cyrus sasldb
# (Debian's memcached ignores MEMCACHED_SASL_PWDB); python3-binary-memcached is a SASL client.
command -v saslpasswd2 >/dev/null 2>&1 || [ -x /usr/sbin/saslpasswd2 ] || missing+=(sasl2-bin)
/usr/bin/python3 -c 'import bmemcached' >/dev/null 2>&1 || missing+=(python3-binary-memcached)
# tests/deploy.rs: systemd-analyze verify on contrib/ringcache.service, strace for its
# SystemCallFilter=.
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v strace >/dev/null 2>&1 || missing+=(strace)
# tests/tls.rs: openssl makes each test's certificates.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
    echo "ci/test.sh: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "ci/test.sh: cargo fmt --check"
cargo fmt --all -- --check
echo "ci/test.sh: unsafe only under src/io/ (src/ and crates/)"
! grep -rnw unsafe src crates --include='*.rs' | grep -v '^src/io/' | grep -vE '^[^:]+:[0-9]+:\s*//' || { echo "unsafe outside src/io/ (above)"; exit 1; }
echo "ci/test.sh: rust-version against the locked dependencies"
ci/msrv.sh
echo "ci/test.sh: cargo clippy"
cargo clippy --workspace --all-targets --release -q -- -D warnings
echo "ci/test.sh: cargo test"
cargo test --workspace --release --all-targets
