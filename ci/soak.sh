#!/usr/bin/env bash
# Soak test (not part of ci/test.sh): ringcache under a long mixed workload on each
# engine in turn, with a small memory limit so that it evicts and short TTLs so that
# items expire, every answer checked by rc-soak (crates/tools/src/bin/rc-soak/).
#
#   ci/soak.sh [DURATION]     DURATION per engine: seconds or 90s / 5m / 1h (default 5m)
#   ci/soak.sh -h | --help    this text
#
# Then, per engine, a hostile phase (SOAK_HOSTILE, default 30s; `rc-soak --phase
# hostile`): stalled readers of big values and half-sent big sets pin what they can,
# in 2-second cycles, while a probe's small sets and gets must stay correct and quick.
#
# Per engine it fails when: rc-soak reports any error (wrong or stale value, protocol
# error, hang, lost guarded key, or a run that evicted or expired nothing); peak RSS
# (VmHWM) passes the bound; `curr_connections` does not return to its baseline once
# the client is gone; the server log (-v) has a WARN, ERROR or panic line; the server
# dies or does not exit 0 on SIGTERM. Prints one summary line per engine and exits
# non-zero on any failure.
#
# RSS bound: idle RSS right after startup (the binary, thread stacks, io_uring's rings
# and buffers: measured ~3.5 MiB epoll, ~12.5 MiB uring with -t 2) + the -m limit +
# RSS_SLACK_MIB (default 16) for malloc's per-chunk headers, free lists and
# fragmentation under mixed value sizes, connection buffers and in-flight requests.
# The hostile phase's bound adds the connection-buffer budget the server is started
# with (SOAK_CONN_BUFFER_MIB, default 8: `-o conn_buffer_limit_mb`); its peak is
# measured from a reset high-water mark (/proc/PID/clear_refs), so each phase is
# checked against its own bound.
#
# Environment: SOAK_MEMORY_MIB (-m, default 16), SOAK_THREADS (-t, default 2),
# SOAK_HOSTILE, SOAK_CONN_BUFFER_MIB, RSS_SLACK_MIB (above). Exit status: 0 when both
# engines pass, 1 when one fails, 64 on a usage error.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "ci/${0##*/}" | sed '$d; s/^# \{0,1\}//'; }
case ${1:-} in -h | --help) usage; exit 0 ;; esac
duration=${1:-5m}
if [ $# -gt 1 ] || ! [[ $duration =~ ^[0-9]+(\.[0-9]+)?[smh]?$ ]]; then
    echo "usage: ci/soak.sh [DURATION]   (e.g. 300, 90s, 5m; --help for more)" >&2
    exit 64
fi
limit_mib=${SOAK_MEMORY_MIB:-16}
slack_mib=${RSS_SLACK_MIB:-16}
threads=${SOAK_THREADS:-2}
hostile=${SOAK_HOSTILE:-30s}
conn_mib=${SOAK_CONN_BUFFER_MIB:-8}

echo "ci/soak.sh: building release binaries"
cargo build --release -q --workspace --bin ringcache --bin rc-soak
bin=target/release

work=$(mktemp -d /tmp/ringcache-soak.XXXXXX)
server_pid=
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -KILL "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

# `stats` over bash's /dev/tcp; prints "name value" lines.
server_stats() {
    local port=$1 line
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'stats\r\n' >&3
    while IFS= read -r -t 10 line <&3; do
        line=${line%$'\r'}
        [ "$line" = END ] && break
        echo "${line#STAT }"
    done
    exec 3>&- 3<&-
}

stat_of() { server_stats "$1" | awk -v k="$2" '$1 == k { print $2 }'; }

status_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# Resident memory as /proc/PID/smaps_rollup counts it (VmRSS can lag far behind).
rss_kib() { awk '$1 == "Rss:" { print $2 }' "/proc/$1/smaps_rollup"; }

# Waits up to 10 s for curr_connections to return to $2; prints a problem if not.
await_conns() {
    local port=$1 want=$2 conns= deadline=$((SECONDS + 10))
    while conns=$(stat_of "$port" curr_connections); [ "$conns" != "$want" ]; do
        if [ $SECONDS -gt $deadline ]; then
            echo "curr_connections $conns, baseline $want"
            return
        fi
        sleep 0.1
    done
}

summaries=()
failed=0

soak_engine() {
    local engine=$1 dir="$work/$1" problems=()
    mkdir -p "$dir"
    local user_flag=()
    # As root, drop to nobody as a deployment would (and avoid the root WARN line).
    if [ "$(id -u)" = 0 ]; then user_flag=(-u nobody); fi
    MEMCACHED_PORT_FILENAME="$dir/port" "$bin/ringcache" -p 0 -l 127.0.0.1 -U 0 \
        -m "$limit_mib" -t "$threads" -v --io-engine "$engine" "${user_flag[@]}" \
        -o "conn_buffer_limit_mb=$conn_mib" \
        >"$dir/server.log" 2>&1 &
    server_pid=$!
    local deadline=$((SECONDS + 10)) port=
    until port=$(sed -n 's/^TCP INET: //p' "$dir/port" 2>/dev/null | head -1) && [ -n "$port" ]; do
        if ! kill -0 "$server_pid" 2>/dev/null || [ $SECONDS -gt $deadline ]; then
            echo "ci/soak.sh: $engine: ringcache did not start:" >&2
            cat "$dir/server.log" >&2
            summaries+=("$engine: FAILED (did not start)")
            failed=1
            return
        fi
        sleep 0.05
    done
    local idle_kib base_conns
    idle_kib=$(rss_kib "$server_pid")
    base_conns=$(stat_of "$port" curr_connections)
    echo "ci/soak.sh: $engine: pid $server_pid port $port, idle RSS $((idle_kib / 1024)) MiB, soaking for $duration"

    local soak_rc=0
    "$bin/rc-soak" --server "127.0.0.1:$port" --duration "$duration" | tee "$dir/soak.out" || soak_rc=$?
    [ "$soak_rc" = 0 ] || problems+=("rc-soak exited $soak_rc")

    local peak_kib=0 hostile_kib=0 final_kib=0 bound_kib hostile_bound_kib problem
    if ! kill -0 "$server_pid" 2>/dev/null; then
        problems+=("server died")
    else
        # The probe's own connection is counted in both readings.
        problem=$(await_conns "$port" "$base_conns")
        [ -z "$problem" ] || problems+=("after the churn: $problem")
        peak_kib=$(status_kib "$server_pid" VmHWM)
        echo 5 >"/proc/$server_pid/clear_refs"
        echo "ci/soak.sh: $engine: hostile phase for $hostile"
        local hostile_rc=0
        "$bin/rc-soak" --server "127.0.0.1:$port" --duration "$hostile" --phase hostile \
            | tee "$dir/hostile.out" || hostile_rc=$?
        [ "$hostile_rc" = 0 ] || problems+=("hostile phase: rc-soak exited $hostile_rc")
    fi
    if kill -0 "$server_pid" 2>/dev/null; then
        problem=$(await_conns "$port" "$base_conns")
        [ -z "$problem" ] || problems+=("after the hostile phase: $problem")
        hostile_kib=$(status_kib "$server_pid" VmHWM)
        final_kib=$(rss_kib "$server_pid")
        kill -TERM "$server_pid"
        local rc=0
        wait "$server_pid" || rc=$?
        [ "$rc" = 0 ] || problems+=("exit status $rc after SIGTERM")
    fi
    server_pid=
    bound_kib=$((idle_kib + (limit_mib + slack_mib) * 1024))
    hostile_bound_kib=$((bound_kib + conn_mib * 1024))
    [ "$peak_kib" -le "$bound_kib" ] || problems+=("peak RSS ${peak_kib} KiB > bound ${bound_kib} KiB")
    [ "$hostile_kib" -le "$hostile_bound_kib" ] ||
        problems+=("hostile phase: peak RSS ${hostile_kib} KiB > bound ${hostile_bound_kib} KiB")
    if grep -nE ' (WARN|ERROR) |panicked' "$dir/server.log" >"$dir/bad-lines"; then
        problems+=("server log: $(head -3 "$dir/bad-lines" | tr '\n' ' ')")
    fi

    local result
    result=$(sed -n 's/^rc-soak: RESULT //p' "$dir/soak.out")
    field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$result"; }
    local hostile_result
    hostile_result=$(sed -n 's/^rc-soak: RESULT //p' "$dir/hostile.out" 2>/dev/null)
    hfield() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$hostile_result"; }
    local line
    line=$(printf '%-5s requests=%s ops/s=%s errors=%s misses=%s (expired %s) evictions=%s guard strict/checks=%s/%s RSS idle/peak/final/bound=%d/%d/%d/%d MiB; hostile cycles=%s probe max=%s ms RSS peak/bound=%d/%d MiB' \
        "$engine" "$(field requests)" "$(field ops_per_sec)" "$(field errors)" "$(field misses)" \
        "$(field expired_misses)" "$(field evictions)" "$(field guard_strict)" "$(field guard_checks)" \
        $((idle_kib / 1024)) $((peak_kib / 1024)) $((final_kib / 1024)) $((bound_kib / 1024)) \
        "$(hfield cycles)" "$(hfield probe_max_ms)" $((hostile_kib / 1024)) $((hostile_bound_kib / 1024)))
    if [ ${#problems[@]} -eq 0 ]; then
        summaries+=("$line  OK")
    else
        summaries+=("$line  FAILED: ${problems[*]}")
        failed=1
        echo "ci/soak.sh: $engine: server log kept in $dir/server.log" >&2
    fi
}

for engine in epoll uring; do
    soak_engine "$engine"
done

echo
echo "ci/soak.sh: summary (-m $limit_mib -t $threads -o conn_buffer_limit_mb=$conn_mib, $duration + hostile $hostile per engine)"
for s in "${summaries[@]}"; do echo "  $s"; done
if [ "$failed" = 0 ]; then
    rm -rf "$work"
    echo "ci/soak.sh: PASS"
else
    echo "ci/soak.sh: FAIL (logs in $work)"
    exit 1
fi
