#!/usr/bin/env bash
# Hit ratio at equal memory: ringcache against memcached on the same request stream.
#
# Each server starts alone with the same `-m` (default 16) and `-t 1`, and rc-load
# sends it the same deterministic stream (same seed): 1:4 set:get over KEYS keys
# (default 4,000,000, many times what fits), 100-byte values, first a warm-up of
# REQUESTS requests, then a measured run of REQUESTS more. Workloads:
#   zipf0.8, zipf0.99, zipf1.2   Zipf-distributed keys with that exponent
#   scan                         zipf0.99, and during the measured run a second client
#                                writes SCAN one-time keys (uniform over 10^9 keys, sets
#                                only): a burst that passes through the cache once
# A third server, `unbounded`, is ringcache with `-m 2048`, which never evicts here: its
# misses are the gets of keys not set yet, the floor no eviction policy goes below.
# Reported per server and workload: the get miss ratio of the measured run (the Zipf
# client's only), that ratio divided by each memcached build's, the same for the misses
# above the floor (what a policy can act on), `curr_items` and RSS (smaps_rollup) at
# the end. Lower miss ratios are better.
#
# Usage: ci/hitratio.sh [--memory MB] [--requests N] [--keys N] [--scan N]
#                       [--workloads zipf0.8,zipf0.99,zipf1.2,scan] [--memcached PATH]...
# Output: a Markdown table (stdout and target/hitratio/<UTC time>/report.md, with
# target/hitratio/latest pointing at the newest run; raw rc-load results beside it).
# Exit status: 0 when every run completed without protocol errors, 1 otherwise, 2 on a
# usage error or a missing tool.
set -euo pipefail
cd "$(dirname "$0")/.."

MEMORY=16
REQUESTS=2000000
KEYS=4000000
SCAN=1000000
WORKLOADS="zipf0.8,zipf0.99,zipf1.2,scan"
MC_PATHS=()
usage() { sed -n '2,/^set -euo/p' "ci/${0##*/}" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --memory) MEMORY="$2"; shift 2 ;;
        --requests) REQUESTS="$2"; shift 2 ;;
        --keys) KEYS="$2"; shift 2 ;;
        --scan) SCAN="$2"; shift 2 ;;
        --workloads) WORKLOADS="$2"; shift 2 ;;
        --memcached) MC_PATHS+=("$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "ci/hitratio.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
for n in "$MEMORY" "$REQUESTS" "$KEYS" "$SCAN"; do
    case "$n" in ''|*[!0-9]*|0) echo "ci/hitratio.sh: numbers must be positive integers" >&2; exit 2 ;; esac
done
IFS=, read -r -a WORKLOAD_LIST <<<"$WORKLOADS"
for w in "${WORKLOAD_LIST[@]}"; do
    case "$w" in zipf0.8|zipf0.99|zipf1.2|scan) ;;
        *) echo "ci/hitratio.sh: unknown workload $w" >&2; exit 2 ;;
    esac
done
command -v memcached >/dev/null 2>&1 || {
    echo "ci/hitratio.sh: Debian's memcached is needed as the reference (apt-get install memcached)" >&2
    exit 2
}

# shellcheck source=ci/server-lib.sh
. ci/server-lib.sh
find_memcacheds "${MC_PATHS[@]+"${MC_PATHS[@]}"}"

echo "ci/hitratio.sh: cargo build --release --workspace --bins"
cargo build --release --workspace --bins -q
RINGCACHE=target/release/ringcache
RCLOAD=target/release/rc-load
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=target/hitratio/$STAMP
mkdir -p "$OUT"
ln -sfn "$STAMP" target/hitratio/latest
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
SERVERS=("${MC_LABELS[@]}" ringcache unbounded)

server_cmd() {
    local common=(-U 0 -t 1 -m "$MEMORY" -l 127.0.0.1)
    case "$1" in
        memcached-*) memcached_cmd "$1" "${common[@]}" ;;
        ringcache) echo "$RINGCACHE" -p 0 "${common[@]}" --io-engine epoll ;;
        unbounded) echo "$RINGCACHE" -p 0 -U 0 -t 1 -m 2048 -l 127.0.0.1 --io-engine epoll ;;
    esac
}

FAILED=0
# One workload $2 on server $1: warm-up, then the measured run; appends a JSON line.
run_one() {
    local server="$1" workload="$2" exponent=0.99 scan_pid="" json items rss
    case "$workload" in zipf*) exponent=${workload#zipf} ;; esac
    # shellcheck disable=SC2046
    if ! launch_server "$OUT/$server.log" "$OUT/$server.port" $(server_cmd "$server"); then
        echo "ci/hitratio.sh: $server did not start: $SERVER_ERROR" >&2
        FAILED=1
        return 0
    fi
    local load=("$RCLOAD" --server "127.0.0.1:$SERVER_PORT" --conns 4 --pipeline 16
        --keys "$KEYS" --key-pattern zipf --zipf-exponent "$exponent" --ratio 1:4
        --value-size 100 --quiet)
    if ! "${load[@]}" --requests "$REQUESTS" --seed 1 >"$OUT/warmup.log" 2>&1; then
        echo "ci/hitratio.sh: $server $workload: warm-up failed:" >&2
        tail -n 5 "$OUT/warmup.log" >&2
        FAILED=1
        cleanup
        return 0
    fi
    if [ "$workload" = scan ]; then
        "$RCLOAD" --server "127.0.0.1:$SERVER_PORT" --conns 2 --pipeline 16 \
            --keys 1000000000 --ratio 1:0 --value-size 100 --requests "$SCAN" --seed 7 \
            --quiet >"$OUT/scan.log" 2>&1 &
        scan_pid=$!
    fi
    json=$("${load[@]}" --requests "$REQUESTS" --seed 2 --json 2>"$OUT/load.log" | tail -n 1) || json=""
    if [ -n "$scan_pid" ] && ! wait "$scan_pid"; then
        echo "ci/hitratio.sh: $server scan: the scanning client failed:" >&2
        tail -n 5 "$OUT/scan.log" >&2
        FAILED=1
    fi
    items=$(stat_value "$SERVER_PORT" curr_items)
    if [ "$server" = unbounded ] && [ "$(stat_value "$SERVER_PORT" evictions)" != 0 ]; then
        echo "ci/hitratio.sh: $workload: the unbounded server evicted: no floor" >&2
        FAILED=1
        cleanup
        return 0
    fi
    rss=$(rss_bytes "$SERVER_PID")
    cleanup
    if [ -z "$json" ] || [ "${json:0:1}" != "{" ]; then
        echo "ci/hitratio.sh: $server $workload: measured run failed:" >&2
        tail -n 5 "$OUT/load.log" >&2
        FAILED=1
        return 0
    fi
    printf '{"server":"%s","workload":"%s","items":%s,"rss":%s,"load":%s}\n' \
        "$server" "$workload" "${items:-0}" "${rss:-0}" "$json" >>"$RESULTS"
    awk -v s="$server" -v w="$workload" -v j="$json" -v items="$items" 'BEGIN {
        g = j; sub(/.*"gets":/, "", g); sub(/[,}].*/, "", g)
        m = j; sub(/.*"misses":/, "", m); sub(/[,}].*/, "", m)
        printf "  %-16s %-9s miss ratio %.4f  items %s\n", s, w, (g > 0 ? m / g : 0), items
    }'
}

echo "ci/hitratio.sh: -m $MEMORY -t 1, $KEYS keys, 100 B values, 1:4 set:get, $REQUESTS requests warm-up + $REQUESTS measured; servers ${SERVERS[*]}"
for workload in "${WORKLOAD_LIST[@]}"; do
    for server in "${SERVERS[@]}"; do
        run_one "$server" "$workload"
    done
done

PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=python3
"$PYTHON" - "$RESULTS" "$OUT" "${MC_LABELS[*]}" "$MEMORY" "$KEYS" "$REQUESTS" "$SCAN" <<'PY'
import json, os, sys, time
results, out, mcs, memory, keys, requests, scan = sys.argv[1:8]
mcs = mcs.split()
rows = [json.loads(l) for l in open(results) if l.strip()]
miss = {}
for r in rows:
    gets = r["load"].get("gets") or 0
    miss[(r["server"], r["workload"])] = (r["load"].get("misses", 0) / gets) if gets else None
head = ("| workload | server | get miss ratio | " + " | ".join(f"vs {m}" for m in mcs)
        + " | " + " | ".join(f"above floor vs {m}" for m in mcs) + " | curr_items | RSS MiB |")
table = [head, "|---|---|---:|" + "---:|" * (2 * len(mcs)) + "---:|---:|"]
for r in rows:
    w = r["workload"]
    m = miss[(r["server"], w)]
    floor = miss.get(("unbounded", w))
    vs, above = [], []
    for mc in mcs:
        base = miss.get((mc, w))
        vs.append(f"{m / base:.3f}" if m is not None and base else "n/a")
        ok = m is not None and base is not None and floor is not None and base > floor
        above.append(f"{(m - floor) / (base - floor):.3f}" if ok else "n/a")
    table.append(f"| {w} | {r['server']} | {m:.4f} | " + " | ".join(vs + above)
                 + f" | {r['items']:,} | {r['rss'] / 1048576:.1f} |")
report = "\n".join([
    "# Hit ratio at equal memory",
    "",
    f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
    f"- every server: `-m {memory} -t 1`; rc-load: {keys} keys, 100 B values, 1:4 set:get, "
    f"4 connections × pipeline 16, {requests} requests warm-up (seed 1) then {requests} measured (seed 2)",
    f"- scan: zipf0.99 while a second client sets {scan} one-time keys (uniform over 10^9)",
    "- vs: this server's miss ratio divided by that memcached's on the same workload (below 1 is fewer misses)",
    "- unbounded: ringcache with `-m 2048` (no eviction): its misses are gets of keys not set yet, the floor; "
    "above floor: (miss ratio - floor) / (that memcached's - floor), the misses an eviction policy can act on",
    "",
] + table) + "\n"
open(os.path.join(out, "report.md"), "w").write(report)
print(report)
PY
exit "$FAILED"
