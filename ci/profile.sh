#!/usr/bin/env bash
# Repeatable per-request cost of one server under rc-load, for when wall-clock
# benchmarks are too noisy: user-space instructions per request (callgrind), syscalls
# per request (strace -c), or a cpu-clock profile (perf record).
#
# Usage: ci/profile.sh callgrind|strace|perf SERVER [REQUESTS]
#   SERVER: memcached, ringcache-uring, ringcache-epoll, floor-uring, floor-epoll
#   env: CONNS (50), PIPELINE (1), KEYS (1000), THREADS (1), PROTOCOL (text; meta, binary),
#        VALUE_SIZE (32)
#
# callgrind runs the server twice (prefill only, then prefill + REQUESTS) and reports
# the difference divided by REQUESTS, so start-up and prefill cancel out; it also
# reports malloc calls per request. io_uring does not run under valgrind: use perf for
# the uring engine. Output goes to target/profile/<mode>-<server>/. The binaries come
# from the `profiling` profile (release plus line tables; the release profile strips
# them), in target/profiling/.
#
# Exit status: 0 when the run completed, 2 on a usage error or a failed build.
set -uo pipefail
cd "$(dirname "$0")/.."
usage() { sed -n '2,/^set -uo/p' "ci/${0##*/}" | sed '$d; s/^# \{0,1\}//'; }
case ${1:-} in -h | --help) usage; exit 0 ;; esac
if [ $# -lt 2 ] || [ $# -gt 3 ]; then
    echo "ci/profile.sh: a mode and a server are needed" >&2
    usage >&2
    exit 2
fi
MODE=$1; SRV=$2; N=${3:-20000}
case $MODE in
    callgrind | strace | perf) ;;
    *) echo "ci/profile.sh: mode must be callgrind, strace or perf" >&2; exit 2 ;;
esac
case $N in ''|*[!0-9]*|0) echo "ci/profile.sh: REQUESTS must be a positive integer" >&2; exit 2 ;; esac
BIN=target/profiling
OUT=target/profile/$MODE-$SRV
common=(-U 0 -t "${THREADS:-1}" -m 1024 -l 127.0.0.1)
case $SRV in
    memcached) CMD=(memcached -p -1 "${common[@]}"); [ "$(id -u)" = 0 ] && CMD+=(-u root) ;;
    ringcache-uring) CMD=("$BIN/ringcache" -p 0 "${common[@]}" --io-engine uring) ;;
    ringcache-epoll) CMD=("$BIN/ringcache" -p 0 "${common[@]}" --io-engine epoll) ;;
    floor-uring) CMD=("$BIN/ringcache" -p 0 "${common[@]}" --io-engine uring --floor) ;;
    floor-epoll) CMD=("$BIN/ringcache" -p 0 "${common[@]}" --io-engine epoll --floor) ;;
    *) echo "ci/profile.sh: unknown server $SRV" >&2; exit 2 ;;
esac
ANY=()
[[ $SRV == floor-* ]] && ANY=(--any-key)
cargo build --profile profiling --workspace --bins -q || exit 2

# One server run under $MODE with $1 measured requests; leaves its files in $OUT/$1.
run() {
    local n=$1 d=$OUT/$1 pre=() pid port perf_pid=""
    rm -rf "$d"; mkdir -p "$d"
    case $MODE in
        callgrind) pre=(valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" -q) ;;
        strace) pre=(strace -f -c -o "$d/strace.txt") ;;
    esac
    MEMCACHED_PORT_FILENAME=$d/port "${pre[@]}" "${CMD[@]}" >"$d/log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do [ -s "$d/port" ] && break; sleep 0.1; done
    port=$(awk '/TCP INET/ { print $3; exit }' "$d/port")
    local load=("$BIN/rc-load" --server "127.0.0.1:$port" --conns "${CONNS:-50}"
        --protocol "${PROTOCOL:-text}" --pipeline "${PIPELINE:-1}" --keys "${KEYS:-1000}" --value-size "${VALUE_SIZE:-32}" --ratio 1:10
        --quiet "${ANY[@]}")
    "${load[@]}" --prefill --requests 0 >/dev/null 2>&1
    if [ "$MODE" = perf ]; then
        perf record -e cpu-clock -g -p "$pid" -o "$d/perf.data" 2>/dev/null &
        perf_pid=$!
        sleep 0.5
    fi
    [ "$n" -gt 0 ] && "${load[@]}" --requests "$n" --json >"$d/load.json" 2>"$d/load.err"
    [ -n "$perf_pid" ] && kill -INT "$perf_pid" && wait "$perf_pid"
    # Under strace the server is strace's child: signal the server itself.
    if [ "$MODE" = strace ]; then kill -TERM "$(pgrep -P "$pid")"; else kill -TERM "$pid"; fi
    wait "$pid"
}

# Instructions and malloc calls in callgrind output $1.
cg_totals() {
    python3 - "$1" <<'PY'
import re, sys
names, calls, total = {}, 0, 0
cfn = None
for line in open(sys.argv[1]):
    if line.startswith("summary:") or line.startswith("totals:"):
        total = int(line.split()[1])
    elif line.startswith("cfn="):
        m = re.match(r"\((\d+)\)(?: (.*))?", line[4:].strip())
        if m and m.group(2):
            names[m.group(1)] = m.group(2)
        cfn = names.get(m.group(1)) if m else None
    elif line.startswith("fn="):
        m = re.match(r"\((\d+)\)(?: (.*))?", line[3:].strip())
        if m and m.group(2):
            names[m.group(1)] = m.group(2)
    elif line.startswith("calls=") and cfn == "malloc":
        calls += int(line[6:].split()[0])
print(total, calls)
PY
}

case $MODE in
    callgrind)
        run 0
        run "$N"
        read -r i0 m0 < <(cg_totals "$OUT/0/cg.out")
        read -r i1 m1 < <(cg_totals "$OUT/$N/cg.out")
        echo "$SRV: $(((i1 - i0) / N)) instructions/request, $(python3 -c "print(round(($m1 - $m0) / $N, 3))") mallocs/request ($N requests)"
        ;;
    strace)
        run "$N"
        echo "$SRV: syscalls over $N requests (plus prefill):"
        head -n 12 "$OUT/$N/strace.txt"
        ;;
    perf)
        run "$N"
        perf report -i "$OUT/$N/perf.data" --no-children --sort dso,sym -g none 2>/dev/null | grep '%' | head -n 30
        ;;
esac
tail -c 300 "$OUT/$N/load.json" 2>/dev/null; echo
