#!/usr/bin/env bash
# End-to-end comparison of ringcache against memcached on this machine, as a ratio.
#
# For every configuration and repetition, each server runs ALONE, one after the other
# (each ringcache engine next to its floor, the order reversed every other
# repetition): the server pinned to CPU 0 (`taskset -c 0`), the load generator
# pinned to CPU 1, the key space prefilled, then a measured run. The
# server's CPU time is read from /proc/PID/stat around the measured run. Medians over
# the repetitions go to a Markdown table (stdout and report.md) and a chart drawn with
# matplotlib (report.png, report.svg: ops per server-CPU-second as a multiple of the
# newest memcached's, and p99 latency on a log axis), all in target/bench/<UTC time>/
# with target/bench/latest pointing at the newest run. Raw results: results.jsonl
# there. Progress: one line per measured run with its number and the time left.
#
# Usage: ci/bench.sh [--reps N] [--duration SECS] [--configs p1,p16,...] [--quick]
#                    [--tool rc-load|memtier] [--servers memcached,ringcache-epoll,...]
#                    [--memcached PATH]... [--baseline PATH]
#   --reps      repetitions (default 3); medians are reported
#   --duration  seconds per measured run (default 10)
#   --quick     one short repetition of p1 and p16 (under a minute)
#   --tool      memtier drives the same runs with memtier_benchmark (must be on PATH)
#   --servers   a subset of memcached (every build below), memcached-VERSION,
#               ringcache-uring, ringcache-epoll, floor-uring, floor-epoll,
#               baseline-uring, baseline-epoll (default: all that this build supports;
#               with --baseline, each ringcache engine named brings its baseline)
#   --memcached a memcached binary to compare against; repeatable (or MEMCACHED_BINS,
#               colon-separated). Default: Debian's memcached and, where it exists,
#               ../shared/reference/memcached-1.6.45 (the newest release). Each is
#               labelled by its -V version, and every ratio column names the version
#               it is against, newest first.
#   --baseline  another ringcache binary (an older commit's build, say) to run beside
#               this one on both engines, as baseline-uring and baseline-epoll, each
#               next to its twin; the report adds a table of this build ÷ the baseline
#               (ops per server-CPU-second and p99, same engine and repetition), so a
#               change's effect on latency is measured in the same run, not against
#               figures from another day or machine. Build one with
#               `git worktree add --detach ../old COMMIT && cargo build --release
#               --bin ringcache` in ../old
#   env RINGCACHE_ARGS: extra arguments for every ringcache and floor run (split on
#               spaces), e.g. RINGCACHE_ARGS="-o uring_bundle=0" for an A/B of an
#               io_uring feature (docs/uring-features.md)
#   env BASELINE_ARGS: extra arguments for the baseline runs instead (default: as
#               RINGCACHE_ARGS); with --baseline target/release/ringcache this is an
#               A/B of a flag on one build, latency included
#
# Configurations (1:10 set:get, 100k keys, uniform):
#   p1    50 connections, pipeline 1, 32-byte values, text protocol
#   p16   as p1 with pipeline 16
#   meta  as p16 over the meta protocol (mg/ms)
#   bin16 as p16 over the binary protocol
#   v1k   as p1 with 1 KiB values
#   v256k as p1 with 256 KiB values over 1,000 keys (250 MiB, within -m 1024): values
#         of the store's large class, which ringcache sends without a copy
#   c500  as p1 with 500 connections
#   bin   as p1 over the binary protocol
#   t2    as p16 with -t 2 (every server still pinned to CPU 0 alone, so its ops/s
#         compare directly with p16's: asking for a second worker must cost nothing;
#         ringcache starts one worker per allowed CPU, memcached starts two threads)
#   tls   as p1 over TLS (rc-load --tls; servers started with -Z and a certificate
#         the script makes with openssl): ringcache and the memcached builds that
#         have -Z; no floor. Adds p1 to the run, for the plaintext twin of each row
#   tls16 as p16 over TLS; adds p16 to the run likewise
#   tlshs the TLS handshake rate: 4 clients each looping connect, full handshake (no
#         resumption), one `version`, close (rc-load --tls --reconnect); ops per
#         server-CPU-second are handshakes per second per server core
#   udp   gets only over UDP (rc-load --udp: memcached's 8-byte frame header, 50
#         sockets with one get in flight each, a request unanswered within 1 s counted
#         as lost, not as an error), keys preloaded over TCP; servers started with
#         -U PORT (a free UDP port below 32768); no floor (it answers no UDP)
#
# Exit status: 0 when every run completed without protocol errors, 1 otherwise, 2 on
# a usage error or a missing tool.
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=3
DURATION=10
CONFIGS="p1,p16,meta,bin16,v1k,c500,bin,t2"
TOOL=rc-load
QUICK=0
ONLY_SERVERS=""
MC_PATHS=()
KEYS=100000
BASELINE=""

usage() { sed -n '2,/^set -euo/p' "ci/${0##*/}" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
    case "$1" in
        --reps) REPS="$2"; SET_REPS=1; shift 2 ;;
        --duration) DURATION="$2"; SET_DURATION=1; shift 2 ;;
        --configs) CONFIGS="$2"; SET_CONFIGS=1; shift 2 ;;
        --tool) TOOL="$2"; shift 2 ;;
        --servers) ONLY_SERVERS="$2"; shift 2 ;;
        --memcached) MC_PATHS+=("$2"); shift 2 ;;
        --baseline) BASELINE="$2"; shift 2 ;;
        --quick) QUICK=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "ci/bench.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
if [ "$QUICK" = 1 ]; then
    # Defaults for --quick; flags given explicitly still win.
    [ -n "${SET_REPS:-}" ] || REPS=1
    [ -n "${SET_DURATION:-}" ] || DURATION=3
    [ -n "${SET_CONFIGS:-}" ] || CONFIGS="p1,p16"
fi
case "$REPS" in ''|*[!0-9]*|0) echo "ci/bench.sh: --reps needs a positive integer" >&2; exit 2 ;; esac
case "$DURATION" in ''|*[!0-9.]*) echo "ci/bench.sh: --duration needs seconds" >&2; exit 2 ;; esac
IFS=, read -r -a CONFIG_LIST <<<"$CONFIGS"
for c in "${CONFIG_LIST[@]}"; do
    case "$c" in p1|p16|meta|bin16|v1k|v256k|c500|bin|t2|tls|tls16|tlshs|udp) ;; *) echo "ci/bench.sh: unknown config $c" >&2; exit 2 ;; esac
done
# A TLS config's ratio to plaintext is against its twin in the same repetition.
for twin in tls:p1 tls16:p16; do
    if [[ ",$CONFIGS," == *,${twin%%:*},* && ",$CONFIGS," != *,${twin##*:},* ]]; then
        CONFIG_LIST+=("${twin##*:}")
        CONFIGS="$CONFIGS,${twin##*:}"
        echo "ci/bench.sh: config ${twin%%:*} adds ${twin##*:}, its plaintext twin"
    fi
done

case "$TOOL" in
    rc-load) ;;
    memtier)
        if [[ ",$CONFIGS," =~ ,(meta|tls|tls16|tlshs|udp), ]]; then
            echo "ci/bench.sh: --tool memtier: configs meta, tls, tls16, tlshs and udp need rc-load" >&2
            exit 2
        fi
        if ! command -v memtier_benchmark >/dev/null 2>&1; then
            echo "ci/bench.sh: --tool memtier: memtier_benchmark is not on PATH (it is not packaged in Debian); build it from source or use the default --tool rc-load" >&2
            exit 2
        fi ;;
    *) echo "ci/bench.sh: --tool must be rc-load or memtier" >&2; exit 2 ;;
esac

if ! command -v memcached >/dev/null 2>&1; then
    echo "ci/bench.sh: memcached missing, installing Debian's package"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq memcached >/dev/null
    fi
    command -v memcached >/dev/null 2>&1 || {
        echo "ci/bench.sh: memcached is needed as the reference and could not be installed (apt-get install memcached)" >&2
        exit 2
    }
fi
for tool in taskset getconf; do
    command -v "$tool" >/dev/null 2>&1 || { echo "ci/bench.sh: $tool is needed (util-linux / libc-bin)" >&2; exit 2; }
done
PYTHON=/usr/bin/python3
[ -x "$PYTHON" ] || PYTHON=$(command -v python3 || true)
[ -n "$PYTHON" ] || { echo "ci/bench.sh: python3 is needed to write the report" >&2; exit 2; }
# The chart is drawn with matplotlib (Debian's python3-matplotlib).
if ! "$PYTHON" -c 'import matplotlib' >/dev/null 2>&1 && [ "$(id -u)" = 0 ] &&
    command -v apt-get >/dev/null 2>&1; then
    echo "ci/bench.sh: installing python3-matplotlib for the chart"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-matplotlib >/dev/null 2>&1 ||
        echo "ci/bench.sh: could not install python3-matplotlib: the report will have no chart" >&2
fi
if [ -n "$BASELINE" ]; then
    [ -x "$BASELINE" ] || { echo "ci/bench.sh: --baseline $BASELINE is not an executable file" >&2; exit 2; }
    BASELINE=$(realpath "$BASELINE")
    BASELINE_VERSION=$("$BASELINE" --version 2>/dev/null | head -n 1)
    [ -n "$BASELINE_VERSION" ] || { echo "ci/bench.sh: --baseline $BASELINE does not answer --version: not a ringcache build?" >&2; exit 2; }
fi
if [ "$(nproc)" -lt 2 ]; then
    echo "ci/bench.sh: needs 2 CPUs (server on CPU 0, load on CPU 1); this machine has $(nproc)" >&2
    exit 2
fi

# shellcheck source=ci/server-lib.sh
. ci/server-lib.sh
find_memcacheds "${MC_PATHS[@]+"${MC_PATHS[@]}"}"
if [ ${#MC_LABELS[@]} -eq 0 ]; then
    echo "ci/bench.sh: no memcached build runs here: nothing to compare with" >&2
    exit 2
fi

echo "ci/bench.sh: cargo build --release --workspace --bins"
cargo build --release --workspace --bins -q

# Every run keeps its own folder, target/bench/<UTC time>/, and target/bench/latest
# points at the newest, so a published figure can be traced to its raw results.
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
OUT=target/bench/$STAMP
RUN="$OUT/run"
mkdir -p "$OUT" "$RUN"
ln -sfn "$STAMP" target/bench/latest
RESULTS="$OUT/results.jsonl"
: >"$RESULTS"
RINGCACHE=target/release/ringcache
RCLOAD=target/release/rc-load
CLK_TCK=$(getconf CLK_TCK)
NOTES=()

# Each ringcache engine is listed next to its floor, so the two runs whose ratio is the
# "vs floor" figure are neighbours in time (see the order below).
SERVERS=("${MC_LABELS[@]}" ringcache-uring ringcache-epoll)
# The floor flag may be hidden from --help, so a probe that accepts it counts too.
if "$RINGCACHE" --help 2>/dev/null | grep -q -- --floor ||
    "$RINGCACHE" --floor --version >/dev/null 2>&1; then
    SERVERS=("${MC_LABELS[@]}" ringcache-uring floor-uring ringcache-epoll floor-epoll)
    if [[ ",$CONFIGS," =~ ,(bin|bin16|meta), ]]; then
        NOTES+=("floor rows skip configs bin, bin16 and meta: the floor responder speaks only the classic text protocol")
    fi
    if [[ ",$CONFIGS," =~ ,(tls|tls16|tlshs), ]]; then
        NOTES+=("floor rows skip configs tls, tls16 and tlshs: the floor has no TLS")
    fi
    if [[ ",$CONFIGS," == *,udp,* ]]; then
        NOTES+=("floor rows skip config udp: the floor drops every datagram")
    fi
else
    NOTES+=("floor-uring/floor-epoll skipped: target/release/ringcache has no --floor (no-op responder) mode yet")
fi
# A baseline build runs just before its twin on the same engine: baseline, ringcache,
# floor stay neighbours in both orders.
if [ -n "$BASELINE" ]; then
    with_base=()
    for s in "${SERVERS[@]}"; do
        case "$s" in ringcache-*) with_base+=("baseline-${s#ringcache-}") ;; esac
        with_base+=("$s")
    done
    SERVERS=("${with_base[@]}")
    NOTES+=("baseline-uring/baseline-epoll: $BASELINE ($BASELINE_VERSION)")
fi
if [ -n "$ONLY_SERVERS" ]; then
    IFS=, read -r -a asked <<<"$ONLY_SERVERS"
    wanted=()
    for s in "${asked[@]}"; do
        if [ "$s" = memcached ]; then wanted+=("${MC_LABELS[@]}"); else wanted+=("$s"); fi
    done
    for s in "${wanted[@]}"; do
        case " ${SERVERS[*]} " in
            *" $s "*) ;;
            *) echo "ci/bench.sh: --servers: $s is not one of: ${SERVERS[*]}" >&2; exit 2 ;;
        esac
    done
    SERVERS=()
    for s in "${wanted[@]}"; do
        # With --baseline, a ringcache engine asked for brings its baseline along.
        if [ -n "$BASELINE" ] && [[ "$s" == ringcache-* && " ${wanted[*]} " != *" baseline-${s#ringcache-} "* ]]; then
            SERVERS+=("baseline-${s#ringcache-}")
        fi
        SERVERS+=("$s")
    done
fi
declare -A BROKEN=()   # server -> why it could not start

# TLS: a self-signed certificate for 127.0.0.1 (rc-load --tls accepts any), and which
# memcached builds have -Z (Debian's has; a build without OpenSSL has not).
declare -A HAS_TLS=()
if [[ ",$CONFIGS," =~ ,(tls|tls16|tlshs), ]]; then
    command -v openssl >/dev/null 2>&1 || { echo "ci/bench.sh: configs tls, tls16, tlshs need openssl (apt-get install openssl)" >&2; exit 2; }
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
        -keyout "$RUN/tls-key.pem" -out "$RUN/tls-cert.pem" >/dev/null 2>&1 ||
        { echo "ci/bench.sh: openssl req could not make a certificate" >&2; exit 2; }
    for label in "${MC_LABELS[@]}"; do
        if "${MC_BIN[$label]}" -h 2>/dev/null | grep -q -- --enable-ssl; then
            HAS_TLS[$label]=1
        else
            NOTES+=("$label skips configs tls, tls16 and tlshs: this build has no TLS (-Z)")
        fi
    done
fi

# A UDP port below 32768 that nothing holds now (config udp), in UDP_PORT.
free_udp_port() {
    UDP_PORT=$("$PYTHON" - <<'PY'
import random, socket
for _ in range(1000):
    port = random.randrange(20000, 32000)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    print(port)
    break
PY
)
    [ -n "$UDP_PORT" ]
}

# The command line of server $1 (its TCP port comes from MEMCACHED_PORT_FILENAME; its
# UDP port, config udp, is UDP_PORT).
server_cmd() {
    local common=(-U "${UDP_PORT:-0}" -t "$THREADS" -m 1024 -l 127.0.0.1)
    [ "$TLS" = 1 ] &&
        common+=(-Z -o "ssl_chain_cert=$RUN/tls-cert.pem,ssl_key=$RUN/tls-key.pem")
    case "$1" in
        memcached-*) memcached_cmd "$1" "${common[@]}" ;;
        ringcache-uring) echo "$RINGCACHE" -p 0 "${common[@]}" --io-engine uring ${RINGCACHE_ARGS:-} ;;
        ringcache-epoll) echo "$RINGCACHE" -p 0 "${common[@]}" --io-engine epoll ${RINGCACHE_ARGS:-} ;;
        floor-uring) echo "$RINGCACHE" -p 0 "${common[@]}" --io-engine uring --floor ${RINGCACHE_ARGS:-} ;;
        floor-epoll) echo "$RINGCACHE" -p 0 "${common[@]}" --io-engine epoll --floor ${RINGCACHE_ARGS:-} ;;
        baseline-uring) echo "$BASELINE" -p 0 "${common[@]}" --io-engine uring ${BASELINE_ARGS-${RINGCACHE_ARGS:-}} ;;
        baseline-epoll) echo "$BASELINE" -p 0 "${common[@]}" --io-engine epoll ${BASELINE_ARGS-${RINGCACHE_ARGS:-}} ;;
    esac
}

# Starts server $1 pinned to CPU 0; sets SERVER_PID and SERVER_PORT once it is ready, or
# records in BROKEN why it could not start.
start_server() {
    # shellcheck disable=SC2046
    launch_server "$RUN/$1.log" "$RUN/$1.port" taskset -c 0 $(server_cmd "$1") || {
        BROKEN[$1]="$SERVER_ERROR"
        return 1
    }
}

# utime + stime of process $1, in clock ticks.
cpu_ticks() {
    local stat rest
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || { echo -1; return; }
    rest=${stat##*) }
    # shellcheck disable=SC2086
    set -- $rest
    echo $((${12} + ${13}))
}

# Sets CONNS PIPELINE VALUE KEYS PROTO THREADS TLS RECONNECT UDP for config $1.
config_params() {
    CONNS=50 PIPELINE=1 VALUE=32 KEYS=100000 PROTO=text THREADS=1 TLS=0 RECONNECT=0 UDP=0
    case "$1" in
        p16) PIPELINE=16 ;;
        meta) PIPELINE=16 PROTO=meta ;;
        bin16) PIPELINE=16 PROTO=binary ;;
        v1k) VALUE=1024 ;;
        v256k) VALUE=262144 KEYS=1000 ;;
        c500) CONNS=500 ;;
        bin) PROTO=binary ;;
        t2) PIPELINE=16 THREADS=2 ;;
        tls) TLS=1 ;;
        tls16) PIPELINE=16 TLS=1 ;;
        tlshs) CONNS=4 TLS=1 RECONNECT=1 ;;
        udp) UDP=1 ;;
    esac
}

# The load command for phase $1 (prefill|measure) against port $2 and server $3, as an
# array in LOAD.
load_cmd() {
    local phase="$1" port="$2" server="$3"
    if [ "$TOOL" = rc-load ]; then
        LOAD=("$RCLOAD" --server "127.0.0.1:$port" --protocol "$PROTO" --conns "$CONNS"
            --pipeline "$PIPELINE" --value-size "$VALUE" --keys "$KEYS" --quiet)
        # Config udp measures gets only, over UDP; its keys are set over TCP.
        if [ "$UDP" = 1 ] && [ "$phase" = measure ]; then
            LOAD+=(--ratio 0:1 --udp --udp-port "$UDP_PORT")
        else
            LOAD+=(--ratio 1:10)
        fi
        # The floor answers every get with one canned item.
        [[ "$server" == floor-* ]] && LOAD+=(--any-key)
        [ "$TLS" = 1 ] && LOAD+=(--tls)
        [ "$RECONNECT" = 1 ] && LOAD+=(--reconnect)
        if [ "$phase" = prefill ]; then
            LOAD+=(--prefill --requests 0)
        else
            LOAD+=(--duration "$DURATION" --json)
        fi
    else
        local mproto=memcache_text
        [ "$PROTO" = binary ] && mproto=memcache_binary
        LOAD=(memtier_benchmark -s 127.0.0.1 -p "$port" --protocol="$mproto" -t 1 -c "$CONNS"
            --pipeline="$PIPELINE" -d "$VALUE" --key-minimum=1 --key-maximum="$KEYS"
            --hide-histogram)
        if [ "$phase" = prefill ]; then
            LOAD+=(--ratio=1:0 --key-pattern=P:P --requests=allkeys)
        else
            LOAD+=(--ratio=1:10 --key-pattern=R:R --test-time="${DURATION%.*}"
                --json-out-file="$RUN/memtier.json")
        fi
    fi
}

FAILED=0
# One measured run of server $2 under config $3 in repetition $1.
run_one() {
    local rep="$1" server="$2" config="$3" log="$RUN/load.log" c0 c1 t0 t1 status=0 json
    config_params "$config"
    UDP_PORT=""
    if [ "$UDP" = 1 ] && ! free_udp_port; then
        echo "ci/bench.sh: no free UDP port below 32768 for $server" >&2
        FAILED=1
        return 0
    fi
    if ! start_server "$server"; then
        echo "ci/bench.sh: $server did not start: ${BROKEN[$server]}" >&2
        return 0
    fi
    load_cmd prefill "$SERVER_PORT" "$server"
    if ! taskset -c 1 "${LOAD[@]}" >"$log" 2>&1; then
        echo "ci/bench.sh: $server $config rep $rep: prefill failed:" >&2
        tail -n 5 "$log" >&2
        FAILED=1
        cleanup
        printf '{"rep":%s,"server":"%s","config":"%s","cpu_ticks":0,"clk_tck":%s,"wall_secs":0,"exit":1,"failed":"prefill","load":{"errors":1,"ops":0,"ops_per_sec":0}}\n' \
            "$rep" "$server" "$config" "$CLK_TCK" >>"$RESULTS"
        return 0
    fi
    load_cmd measure "$SERVER_PORT" "$server"
    c0=$(cpu_ticks "$SERVER_PID")
    t0=$EPOCHREALTIME
    taskset -c 1 "${LOAD[@]}" >"$RUN/load.out" 2>"$log" || status=$?
    t1=$EPOCHREALTIME
    c1=$(cpu_ticks "$SERVER_PID")
    cleanup
    if [ "$c1" = -1 ]; then
        echo "ci/bench.sh: $server $config rep $rep: the server died during the run" >&2
        tail -n 5 "$RUN/$server.log" >&2
        FAILED=1
        c1=$c0
        [ "$status" != 0 ] || status=99
    fi
    if [ "$TOOL" = rc-load ]; then
        json=$(tail -n 1 "$RUN/load.out")
    else
        json=$("$PYTHON" - "$RUN/memtier.json" "$DURATION" <<'PY'
import json, sys
# memtier_benchmark's JSON (2.x): "ALL STATS" -> "Totals"; latencies in milliseconds.
tot = json.load(open(sys.argv[1]))["ALL STATS"]["Totals"]
pct = tot.get("Percentile Latencies", {})
def ms(*names):
    for n in names:
        if n in pct: return pct[n] * 1000.0
        if n in tot: return tot[n] * 1000.0
    return None
ops_s = tot.get("Ops/sec", 0.0)
print(json.dumps({"tool": "memtier", "ops_per_sec": ops_s,
    "ops": ops_s * float(sys.argv[2]), "errors": 0,
    "p50_us": ms("p50.00", "p50"), "p99_us": ms("p99.00", "p99"),
    "p999_us": ms("p99.90", "p99.9"), "load_cpu_us_per_request": None}))
PY
)
    fi
    if [ "$status" != 0 ] || [ -z "$json" ] || [ "${json:0:1}" != "{" ]; then
        echo "ci/bench.sh: $server $config rep $rep: load run failed (exit $status):" >&2
        tail -n 8 "$log" >&2
        FAILED=1
        [ -n "$json" ] && [ "${json:0:1}" = "{" ] || json='{"errors":1,"ops":0,"ops_per_sec":0}'
    fi
    printf '{"rep":%s,"server":"%s","config":"%s","cpu_ticks":%s,"clk_tck":%s,"wall_secs":%s,"exit":%s,"load":%s}\n' \
        "$rep" "$server" "$config" "$((c1 - c0))" "$CLK_TCK" \
        "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", b - a }')" "$status" "$json" >>"$RESULTS"
    awk -v p="$PROGRESS" -v s="$server" -v c="$config" -v r="$rep" -v ticks="$((c1 - c0))" -v hz="$CLK_TCK" \
        -v a="$t0" -v b="$t1" -v j="$json" 'BEGIN {
            ops = j; sub(/.*"ops_per_sec":/, "", ops); sub(/[,}].*/, "", ops)
            printf "%s rep %d %-16s %-5s %10.0f ops/s  server CPU %.2f s/s\n", p, r, s, c, ops, ticks / hz / (b - a)
        }'
}

echo "ci/bench.sh: tool $TOOL, $REPS repetition(s) of ${CONFIG_LIST[*]}, ${DURATION} s each; servers ${SERVERS[*]}"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "ci/bench.sh: load average $LOAD_BEFORE (other work on this machine skews the results)"

# Whether server $1 runs config $2 (the floor speaks only classic text, with no TLS
# and no UDP; a memcached build without -Z has no TLS).
runs_config() {
    if [[ "$2" == tls || "$2" == tls16 || "$2" == tlshs ]]; then
        [[ "$1" == ringcache-* || "$1" == baseline-* || -n "${HAS_TLS[$1]:-}" ]]
    elif [ "$2" = udp ]; then
        [[ "$1" != floor-* ]]
    else
        ! [[ "$1" == floor-* && "$2" =~ ^(bin|bin16|meta)$ ]]
    fi
}
TOTAL=0
for config in "${CONFIG_LIST[@]}"; do
    for server in "${SERVERS[@]}"; do
        if runs_config "$server" "$config"; then TOTAL=$((TOTAL + REPS)); fi
    done
done
DONE=0
STARTED=$SECONDS
# "[k/N, 3m20s left]" before run k: the time left is the mean so far times what is left
# (before the first run: a guess of duration + 3 s per run).
progress() {
    local left per
    if [ "$DONE" -gt 0 ]; then
        per=$(((SECONDS - STARTED) / DONE))
    else
        per=$(awk -v d="$DURATION" 'BEGIN { printf "%d", d + 3 }')
    fi
    left=$((per * (TOTAL - DONE)))
    printf '[%d/%d, %dm%02ds left]' "$((DONE + 1))" "$TOTAL" $((left / 60)) $((left % 60))
}
for ((rep = 1; rep <= REPS; rep++)); do
    # Forward on odd repetitions, backward on even ones (A B C, C B A, ...): no server
    # always runs first or last, neighbours stay neighbours, and a slow drift of the
    # machine's speed (steal time, a neighbour's load) favours each side of a pair
    # equally often.
    n=${#SERVERS[@]}
    order=()
    for ((i = 0; i < n; i++)); do
        if ((rep % 2)); then order+=("${SERVERS[$i]}"); else order+=("${SERVERS[$((n - 1 - i))]}"); fi
    done
    for config in "${CONFIG_LIST[@]}"; do
        for server in "${order[@]}"; do
            runs_config "$server" "$config" || continue
            PROGRESS=$(progress)
            if [ -n "${BROKEN[$server]:-}" ]; then
                DONE=$((DONE + 1))
                continue
            fi
            # On a terminal, say what runs now; the result line replaces it.
            [ -t 1 ] && printf '%s running %s %s (rep %d)...\r' "$PROGRESS" "$server" "$config" "$rep"
            run_one "$rep" "$server" "$config"
            DONE=$((DONE + 1))
        done
    done
done
for server in "${!BROKEN[@]}"; do
    NOTES+=("$server did not start: ${BROKEN[$server]}")
done

NOTES+=("load average (1, 5, 15 min) before: $LOAD_BEFORE, after: $(cut -d' ' -f1-3 /proc/loadavg); anything else running on either CPU skews the results")
NOTES_TEXT=$(printf '%s\n' "${NOTES[@]+"${NOTES[@]}"}")
"$PYTHON" - "$RESULTS" "$OUT" "$TOOL" "$REPS" "$DURATION" "$NOTES_TEXT" "${SERVERS[*]}" "${CONFIG_LIST[*]}" <<'PY'
import json, math, os, platform, statistics, sys, time
from collections import defaultdict

results, out, tool, reps, duration, notes, servers, configs = sys.argv[1:9]
servers, configs = servers.split(), configs.split()
# The memcached builds, newest first (the order the script listed them): every ratio
# column is against one of them, by name.
mcs = [s for s in servers if s.startswith("memcached-")]
notes = [n for n in notes.splitlines() if n.strip()]
rows = [json.loads(l) for l in open(results) if l.strip()]

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None

# Per run: throughput, latency, server CPU seconds per second and ops per CPU-second.
runs = defaultdict(list)   # (server, config) -> [run]
for r in rows:
    load = r["load"]
    cpu = r["cpu_ticks"] / r["clk_tck"]
    ops = load.get("ops") or 0
    runs[(r["server"], r["config"])].append({
        "rep": r["rep"], "ok": r["exit"] == 0 and not load.get("errors"),
        "errors": load.get("errors") or 0,
        "ops_s": load.get("ops_per_sec") or 0.0,
        "p50": load.get("p50_us"), "p99": load.get("p99_us"), "p999": load.get("p999_us"),
        "cpu_s_s": cpu / r["wall_secs"] if r["wall_secs"] > 0 else None,
        "ops_cpu": ops / cpu if cpu > 0 else None,
        "load_us": load.get("load_cpu_us_per_request"),
        "timed_out": load.get("timed_out") or 0,
        # CPU seconds per second the load generator used (None for memtier).
        "load_s_s": ((load.get("load_cpu_user_secs") or 0) + (load.get("load_cpu_system_secs") or 0))
                    / load["secs"] if load.get("secs") and "load_cpu_user_secs" in load else None,
    })

def paired_ratios(server, config, key, base_server, base_config=None):
    """server/base per repetition, each pair from the same repetition."""
    base = {r["rep"]: r[key] for r in runs.get((base_server, base_config or config), []) if r["ok"]}
    return [r[key] / base[r["rep"]] for r in runs.get((server, config), [])
            if r["ok"] and r[key] and base.get(r["rep"])]

def paired_ratio(server, config, key, base_server, base_config=None):
    """Median over repetitions of server/base."""
    return median(paired_ratios(server, config, key, base_server, base_config))

def spread(server, config, key, base_server):
    """The per-repetition ratios' median with their middle half (quartiles) when there
    are 4 or more: `1.21 (1.08–1.25)`. How far one repetition strays shows how much
    the machine's noise moves a single ratio."""
    xs = paired_ratios(server, config, key, base_server)
    if not xs:
        return "n/a"
    if len(xs) < 4:
        return format(median(xs), ".2f")
    q1, _, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return f"{median(xs):.2f} ({q1:.2f}–{q3:.2f})"

def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)

versus = [f"ops/s vs {m} | ops/CPU-s vs {m}" for m in mcs]
table = [
    "| server | config | ops/s | p50 µs | p99 µs | p99.9 µs | server CPU (s/s) | ops per server-CPU-s | "
    + " | ".join(versus) + " | ops/CPU-s vs floor | load CPU µs/req |",
    "|---|---|---:|---:|---:|---:|---:|---:|" + "---:|---:|" * len(mcs) + "---:|---:|",
]
chart = []  # (config, server, ops_cpu, p99)
for config in configs:
    for server in servers:
        rs = runs.get((server, config))
        if not rs:
            continue
        ok = [r for r in rs if r["ok"]]
        med = {k: median([r[k] for r in ok]) for k in ("ops_s", "p50", "p99", "p999", "cpu_s_s", "ops_cpu", "load_us", "load_s_s")}
        failed = len(rs) - len(ok)
        name = server + (f" (FAILED {failed}/{len(rs)})" if failed else "")
        vs = []
        for m in mcs:
            if server == m:
                vs += ["1.00" if ok else "n/a"] * 2
            else:
                vs += [fmt(paired_ratio(server, config, "ops_s", m), ".2f"),
                       spread(server, config, "ops_cpu", m)]
        r_floor = "n/a"
        if server.startswith(("ringcache-", "baseline-")):
            floor = "floor-" + server.split("-", 1)[1]
            r_floor = spread(server, config, "ops_cpu", base_server=floor)
        # The load generator's core was (nearly) full: ops/s is a floor of what the
        # server can do, not its limit.
        bound = " †" if (med["load_s_s"] or 0) >= 0.9 else ""
        table.append(f"| {name} | {config} | {fmt(med['ops_s'], ',.0f')}{bound} | {fmt(med['p50'], '.1f')} | "
                     f"{fmt(med['p99'], '.1f')} | {fmt(med['p999'], '.1f')} | {fmt(med['cpu_s_s'], '.2f')} | "
                     f"{fmt(med['ops_cpu'], ',.0f')} | {' | '.join(vs)} | {r_floor} | {fmt(med['load_us'], '.2f')} |")
        if ok:
            chart.append((config, server, med["ops_cpu"] or 0.0, med["p99"] or 0.0))

def cpu_model():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"

header = [
    "# ringcache vs memcached " + ", ".join(m.split("-", 1)[1] for m in mcs),
    "",
    f"- date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
    f"- kernel: {platform.release()}",
    f"- CPU: {cpu_model()} ({os.cpu_count()} CPUs)",
    f"- load: {tool}; {reps} repetition(s) of {duration} s per server and config, medians shown",
    "- pinning: server on CPU 0 (`taskset -c 0`, `-t 1` except t2), load on CPU 1; each server alone, prefilled; each ringcache engine runs next to its floor, in an order reversed every other repetition",
    "- configs: 1:10 set:get, 100k keys, uniform; p1 = 50 conns, pipeline 1, 32 B values, text; "
    "p16 = pipeline 16; meta = p16 over meta (mg/ms); bin16 = p16 over binary; v1k = 1 KiB values; v256k = 256 KiB values, 1,000 keys; c500 = 500 conns; bin = binary protocol; "
    "t2 = p16 with `-t 2`, server on CPU 0 (memcached runs two threads there; ringcache starts one worker per allowed CPU, so one); "
    "tls = p1 over TLS, tls16 = p16 over TLS (`-Z`, self-signed P-256 certificate; rc-load --tls, rustls, TLS 1.3); "
    "tlshs = TLS handshakes: 4 clients each looping connect, full handshake, `version`, close (ops = handshakes, so ops per server-CPU-s = handshakes per second per server core); "
    "udp = gets only over UDP (`-U PORT`; rc-load --udp: 50 sockets, one get in flight each, a get unanswered within 1 s counted as lost), keys set over TCP first",
    "- vs floor: ops per server-CPU-s of ringcache divided by the floor's on the same engine, same repetition"
    + (" (baseline rows: the baseline build's ÷ this build's floor)" if any(x.startswith("baseline-") for x in servers) else ""),
    f"- memcached builds: {', '.join(mcs)} (newest first); each ratio column names the one it is against",
    "- ratios: median over repetitions of (server / that memcached in the same repetition); with 4 or more repetitions the ops/CPU-s ratios also show the quartiles of the per-repetition ratios in brackets",
]
header += [f"- note: {n}" for n in notes]
legend = ["", "† the load generator used ≥ 0.9 of its core, so it may have limited ops/s; "
          "compare ops per server-CPU-second there"]
# Threads: -t 2 against -t 1 under the same pipelined load (t2 vs p16), ops/s.
threads = []
if "t2" in configs and "p16" in configs:
    threads = ["", "| server | ops/s -t 2 ÷ -t 1 (t2 vs p16, same repetition) |", "|---|---:|"]
    for server in servers:
        if runs.get((server, "t2")):
            threads.append(f"| {server} | {fmt(paired_ratio(server, 't2', 'ops_s', base_server=server, base_config='p16'), '.2f')} |")
# TLS: ringcache over TLS against its own plaintext twin (same repetition), and
# against memcached -Z; both per server-CPU-second.
tls = []
tls_mcs = [m for m in mcs if runs.get((m, "tls")) or runs.get((m, "tls16")) or runs.get((m, "tlshs"))]
if any(c in configs for c in ("tls", "tls16")):
    cols = [f"tls vs {m} -Z" for m in tls_mcs] + [f"tls16 vs {m} -Z" for m in tls_mcs]
    tls = ["", "ops per server-CPU-s over TLS ÷ the same server's plaintext (tls vs p1, tls16 vs p16, same repetition), "
           "and ÷ memcached's over TLS (same config and repetition):", "",
           "| server | tls ÷ p1 | tls16 ÷ p16 | " + " | ".join(cols) + (" |" if cols else ""),
           "|---|---:|---:|" + "---:|" * len(cols)]
    for server in servers:
        if not (runs.get((server, "tls")) or runs.get((server, "tls16"))):
            continue
        cells = [fmt(paired_ratio(server, c, "ops_cpu", base_server=server, base_config=p), ".2f")
                 for c, p in (("tls", "p1"), ("tls16", "p16"))]
        for c in ("tls", "tls16"):
            cells += [("1.00" if server == m else fmt(paired_ratio(server, c, "ops_cpu", m), ".2f"))
                      for m in tls_mcs]
        tls.append(f"| {server} | " + " | ".join(cells) + " |")
# Handshakes: full TLS handshakes per second, and per second of one server core.
handshakes = []
if "tlshs" in configs:
    handshakes = ["", "TLS handshakes (config tlshs: connect, full handshake, one `version`, close):", "",
                  "| server | handshakes/s | handshakes per server-CPU-s (per core) | ÷ " + " | ÷ ".join(f"{m} -Z" for m in tls_mcs) + " |",
                  "|---|---:|---:|" + "---:|" * len(tls_mcs)]
    for server in servers:
        ok = [r for r in runs.get((server, "tlshs"), []) if r["ok"]]
        if not ok:
            continue
        cells = [fmt(median([r["ops_s"] for r in ok]), ",.0f"), fmt(median([r["ops_cpu"] for r in ok]), ",.0f")]
        cells += [("1.00" if server == m else fmt(paired_ratio(server, "tlshs", "ops_cpu", m), ".2f")) for m in tls_mcs]
        handshakes.append(f"| {server} | " + " | ".join(cells) + " |")
# UDP: gets lost (unanswered within rc-load's timeout), over every repetition.
udp = []
if "udp" in configs:
    udp = ["", "| server | udp gets lost (timed out), all repetitions | of answered |", "|---|---:|---:|"]
    for server in servers:
        rs = runs.get((server, "udp"))
        if rs:
            lost = sum(r["timed_out"] for r in rs)
            answered = sum(r["ops_s"] for r in rs) * float(duration)
            udp.append(f"| {server} | {lost} | {fmt(lost / answered if answered else None, '.2e')} |")
# This build against the baseline build (--baseline), same engine and repetition: the
# change's effect on throughput per CPU and on latency, measured in one run.
against_base = []
if any(s.startswith("baseline-") for s in servers):
    against_base = ["", "This build ÷ the baseline build (same engine, same repetition; below 1 in the p99 "
                    "column means lower latency now):", "",
                    "| config | engine | ops/CPU-s ÷ baseline | p99 µs baseline | p99 µs this build | p99 ÷ baseline |",
                    "|---|---|---:|---:|---:|---:|"]
    for config in configs:
        for server in servers:
            if not server.startswith("baseline-"):
                continue
            now = "ringcache-" + server.split("-", 1)[1]
            if not (runs.get((server, config)) and runs.get((now, config))):
                continue
            p99s = [median([r["p99"] for r in runs[(s, config)] if r["ok"]]) for s in (server, now)]
            against_base.append(f"| {config} | {server.split('-', 1)[1]} | {spread(now, config, 'ops_cpu', server)} | "
                                f"{fmt(p99s[0], ',.0f')} | {fmt(p99s[1], ',.0f')} | "
                                f"{fmt(paired_ratio(now, config, 'p99', server), '.2f')} |")
report = "\n".join(header + [""] + table + legend + threads + tls + handshakes + udp + against_base) + "\n"
open(os.path.join(out, "report.md"), "w").write(report)
print(report)

# The chart (matplotlib): ops per server-CPU-second as a multiple of the newest
# memcached's (left), p99 latency on a log axis (right), grouped by config.
try:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
except ImportError:
    print("ci/bench.sh: no chart: python3-matplotlib is not installed (apt-get install python3-matplotlib)")
    plt = None
if plt is not None and chart and mcs:
    base = mcs[0]
    present = [s for s in servers if any(c[1] == s for c in chart)]
    cfgs = [c for c in configs if any(x[0] == c for x in chart)]
    greys = ["#4d4d4d", "#969696", "#bdbdbd", "#d9d9d9"]
    colour = {m: greys[i % len(greys)] for i, m in enumerate(mcs)}
    colour.update({"ringcache-uring": "#1f77b4", "ringcache-epoll": "#2ca02c",
                   "floor-uring": "#9ecae1", "floor-epoll": "#a1d99b",
                   "baseline-uring": "#9467bd", "baseline-epoll": "#c5b0d5"})
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    width = 0.8 / max(len(present), 1)
    # Each config's bars are against the newest memcached that ran it (builds with no
    # TLS skip tls, tls16 and tlshs).
    cfg_base = {c: next((m for m in mcs if runs.get((m, c))), base) for c in cfgs}
    for si, s in enumerate(present):
        xs, ratio, p99 = [], [], []
        for ci, cfg in enumerate(cfgs):
            b = cfg_base[cfg]
            r = paired_ratio(s, cfg, "ops_cpu", b) if s != b else 1.0
            v = next((c for c in chart if c[0] == cfg and c[1] == s), None)
            if v is None:
                continue
            xs.append(ci + (si - (len(present) - 1) / 2) * width)
            ratio.append(r or 0.0)
            p99.append(v[3] or float("nan"))
        left.bar(xs, ratio, width * 0.95, label=s, color=colour.get(s, "#555"))
        for x, r in zip(xs, ratio):
            left.text(x, r, f"{r:.2f}", ha="center", va="bottom", fontsize=7, rotation=90)
        right.bar(xs, p99, width * 0.95, label=s, color=colour.get(s, "#555"))
    for ax in (left, right):
        ax.set_xticks(range(len(cfgs)))
        ax.set_xticklabels(cfgs)
        ax.grid(axis="y", alpha=0.3)
    left.axhline(1.0, color="black", linewidth=0.8)
    if max((b.get_height() for b in left.patches), default=0) > 6:
        # One config far ahead (memcached 1.6.18 barely pipelines: tls16) would flatten
        # the others' bars on a linear axis.
        left.set_yscale("log")
    left.set_ylabel(f"ops per server-CPU-second, × {base}")
    other = sorted({b for b in cfg_base.values() if b != base})
    left.set_title(f"throughput per CPU, × {base} (higher is better)"
                   + "".join(f"\n{', '.join(c for c in cfgs if cfg_base[c] == o)}: × {o}" for o in other),
                   fontsize=10 if other else None)
    right.set_yscale("log")
    lows = [c[3] for c in chart if c[3]]
    if lows:
        # Bars start at a power of ten below the lowest, so their lengths compare.
        right.set_ylim(bottom=10 ** math.floor(math.log10(min(lows))))
    right.set_ylabel("p99 latency, µs (log)")
    right.set_title("p99 latency (lower is better)")
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(f"ringcache vs {', '.join(mcs)} ({tool}, medians of {reps} × {duration} s)")
    fig.tight_layout()
    for ext in ("png", "svg"):
        fig.savefig(os.path.join(out, f"report.{ext}"), dpi=110)
print(f"ci/bench.sh: wrote {out}/report.md, {out}/report.png and .svg, raw runs in {results}")
PY

if [ "$FAILED" != 0 ] || grep -q '"errors":[1-9]' "$RESULTS"; then
    echo "ci/bench.sh: some runs failed or saw protocol errors (see above and $RUN/)" >&2
    exit 1
fi
