# Sourced by ci/bench.sh, ci/memory.sh and ci/hitratio.sh: start one server on a free
# port, learn the port from MEMCACHED_PORT_FILENAME, and stop it again (also on exit or
# interrupt); find the memcached builds to compare with; read a server's RSS and stats.

SERVER_PID=""
SERVER_PORT=""
SERVER_ERROR=""

cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# launch_server LOG PORTFILE CMD...: runs CMD with its output in LOG; sets SERVER_PID and
# SERVER_PORT once it is ready (it wrote its port file, after listen, and a TCP connect
# succeeds). On failure sets SERVER_ERROR to why and returns 1.
launch_server() {
    local log="$1" portfile="$2" i
    shift 2
    rm -f "$portfile"
    MEMCACHED_PORT_FILENAME="$portfile" "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    SERVER_PORT=""
    SERVER_ERROR=""
    for ((i = 0; i < 1000; i++)); do
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
            SERVER_ERROR="exited at startup: $(tail -n 1 "$log")"
            return 1
        fi
        if [ -z "$SERVER_PORT" ] && [ -s "$portfile" ]; then
            SERVER_PORT=$(awk '/TCP INET/ { print $3; exit }' "$portfile")
        fi
        if [ -n "$SERVER_PORT" ] && (exec 3<>"/dev/tcp/127.0.0.1/$SERVER_PORT") 2>/dev/null; then
            return 0
        fi
        sleep 0.01
    done
    SERVER_ERROR="not ready after 10 s"
    cleanup
    return 1
}

# The memcached builds to compare against, newest version first: MC_LABELS
# ("memcached-1.6.45", …) and MC_BIN[label] (the binary). From the paths given as
# arguments (--memcached PATH), else $MEMCACHED_BINS (colon-separated), else Debian's
# `memcached` plus the newest release at ../shared/reference/memcached-1.6.45 where it
# exists. Each is labelled by what its `-V` says. Prints one line naming what it found.
declare -A MC_BIN=()
MC_LABELS=()
find_memcacheds() {
    local paths=("$@") p version label ref=../shared/reference/memcached-1.6.45 found=()
    if [ ${#paths[@]} -eq 0 ] && [ -n "${MEMCACHED_BINS:-}" ]; then
        IFS=: read -r -a paths <<<"$MEMCACHED_BINS"
    fi
    if [ ${#paths[@]} -eq 0 ]; then
        if command -v memcached >/dev/null 2>&1; then paths+=("$(command -v memcached)"); fi
        if [ -x "$ref" ]; then
            paths+=("$(cd "$(dirname "$ref")" && pwd)/$(basename "$ref")")
        else
            echo "$(basename "$0"): no newest memcached at $ref (a fresh clone without shared/): comparing with Debian's only"
        fi
    fi
    for p in "${paths[@]}"; do
        version=$("$p" -V 2>/dev/null | awk '{ print $2; exit }') || version=""
        if [ -z "$version" ]; then
            echo "$(basename "$0"): $p does not run (-V): skipped" >&2
            continue
        fi
        label="memcached-$version"
        while [ -n "${MC_BIN[$label]:-}" ]; do label="$label+"; done
        MC_BIN[$label]=$p
        found+=("$label")
    done
    mapfile -t MC_LABELS < <(printf '%s\n' "${found[@]+"${found[@]}"}" | sort -V -r)
    for label in "${MC_LABELS[@]+"${MC_LABELS[@]}"}"; do
        echo "$(basename "$0"): comparing with $label (${MC_BIN[$label]})"
    done
}

# The command line of memcached build $1 (a label from MC_LABELS) with the flags after
# it: "any free port" is -p -1, and -u is required when run as root.
memcached_cmd() {
    local label="$1" user=()
    shift
    [ "$(id -u)" = 0 ] && user=(-u root)
    echo "${MC_BIN[$label]}" "${user[@]}" -p -1 "$@"
}

# RSS of process $1 in bytes, as smaps_rollup counts it (VmRSS can lag far behind).
rss_bytes() {
    awk '/^Rss:/ { print $2 * 1024; exit }' "/proc/$1/smaps_rollup"
}

# The value of stat $2 from server port $1 (reads up to END).
stat_value() {
    local port="$1" name="$2" line value=""
    exec 3<>"/dev/tcp/127.0.0.1/$port"
    printf 'stats\r\n' >&3
    while IFS= read -r -t 10 line <&3; do
        line=${line%$'\r'}
        [ "$line" = END ] && break
        case "$line" in "STAT $name "*) value=${line#"STAT $name "} ;; esac
    done
    exec 3<&-
    echo "$value"
}
