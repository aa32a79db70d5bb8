#!/usr/bin/env bash
# Memory cost per item: memcached against ringcache, as RSS growth per stored item.
#
# Each server runs alone with `-m 1024 -t 1` (memcached also `-u root` when run as
# root). Its RSS (/proc/PID/smaps_rollup) is read once it listens, then rc-load sets
# ITEMS keys `key:%07d` (11 bytes) with 32-byte values (pipelined, --prefill), the
# script checks through `stats` that curr_items == ITEMS, reads RSS again and prints
# (RSS after - RSS before) / ITEMS. The loader's connections stay in the figure, as
# they would for any client; with ITEMS = 1,000,000 they are well under 1 byte per item.
#
# Usage: ci/memory.sh [--items N] [--servers memcached,ringcache,ringcache-epoll,...]
#                     [--memcached PATH]...
#   --items     items to load (default 1000000; at most 10000000 so keys stay 11 bytes)
#   --servers   any of memcached (every build below), memcached-VERSION, ringcache
#               (engine auto), ringcache-uring, ringcache-epoll (default:
#               memcached,ringcache)
#   --memcached a memcached binary; repeatable (or MEMCACHED_BINS). Default: Debian's
#               and, where it exists, ../shared/reference/memcached-1.6.45, each
#               labelled by its -V version
#
# Output: one line per server, then a Markdown table (also target/memory/report.md).
# Exit status: 0 when every server stored every item, 1 otherwise, 2 on a usage error
# or a missing tool.
set -euo pipefail
cd "$(dirname "$0")/.."

ITEMS=1000000
SERVERS_ARG="memcached,ringcache"
MC_PATHS=()
usage() { sed -n '2,/^set -euo/p' "ci/${0##*/}" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --items) ITEMS="$2"; shift 2 ;;
        --servers) SERVERS_ARG="$2"; shift 2 ;;
        --memcached) MC_PATHS+=("$2"); shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "ci/memory.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
done
case "$ITEMS" in ''|*[!0-9]*|0) echo "ci/memory.sh: --items needs a positive integer" >&2; exit 2 ;; esac
if [ "$ITEMS" -gt 10000000 ]; then
    echo "ci/memory.sh: --items: at most 10000000 (keys are key:%07d)" >&2
    exit 2
fi
IFS=, read -r -a ASKED <<<"$SERVERS_ARG"
for s in "${ASKED[@]}"; do
    case "$s" in memcached|memcached-*|ringcache|ringcache-uring|ringcache-epoll) ;;
        *) echo "ci/memory.sh: --servers: unknown server $s" >&2; exit 2 ;;
    esac
done

if [[ ",$SERVERS_ARG," == *,memcached,* ]] && ! command -v memcached >/dev/null 2>&1; then
    echo "ci/memory.sh: memcached missing, installing Debian's package"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq && apt-get install -y -qq memcached >/dev/null
    fi
    command -v memcached >/dev/null 2>&1 || {
        echo "ci/memory.sh: memcached is needed as the reference and could not be installed (apt-get install memcached)" >&2
        exit 2
    }
fi

# shellcheck source=ci/server-lib.sh
. ci/server-lib.sh
find_memcacheds "${MC_PATHS[@]+"${MC_PATHS[@]}"}"
SERVERS=()
for s in "${ASKED[@]}"; do
    if [ "$s" = memcached ]; then SERVERS+=("${MC_LABELS[@]}"); else SERVERS+=("$s"); fi
done
for s in "${SERVERS[@]}"; do
    if [[ "$s" == memcached-* ]] && [ -z "${MC_BIN[$s]:-}" ]; then
        echo "ci/memory.sh: --servers: no memcached build labelled $s (found: ${MC_LABELS[*]})" >&2
        exit 2
    fi
done

echo "ci/memory.sh: cargo build --release --workspace --bins"
cargo build --release --workspace --bins -q
RINGCACHE=target/release/ringcache
RCLOAD=target/release/rc-load
OUT=target/memory
mkdir -p "$OUT"

server_cmd() {
    local common=(-U 0 -t 1 -m 1024 -l 127.0.0.1)
    case "$1" in
        memcached-*) memcached_cmd "$1" "${common[@]}" ;;
        ringcache) echo "$RINGCACHE" -p 0 "${common[@]}" ;;
        ringcache-uring) echo "$RINGCACHE" -p 0 "${common[@]}" --io-engine uring ;;
        ringcache-epoll) echo "$RINGCACHE" -p 0 "${common[@]}" --io-engine epoll ;;
    esac
}

# Starts server $1; sets SERVER_PID and SERVER_PORT once it accepts connections.
start_server() {
    # shellcheck disable=SC2046
    launch_server "$OUT/$1.log" "$OUT/$1.port" $(server_cmd "$1") || {
        echo "ci/memory.sh: $1 $SERVER_ERROR" >&2
        return 1
    }
}

FAILED=0
declare -a ROWS=()
echo "ci/memory.sh: $ITEMS items, 11-byte keys, 32-byte values; servers ${SERVERS[*]}"
for server in "${SERVERS[@]}"; do
    if ! start_server "$server"; then
        FAILED=1
        continue
    fi
    before=$(rss_bytes "$SERVER_PID")
    if ! "$RCLOAD" --server "127.0.0.1:$SERVER_PORT" --conns 4 --pipeline 64 \
        --keys "$ITEMS" --value-size 32 --prefill --requests 0 --quiet >"$OUT/load.log" 2>&1; then
        echo "ci/memory.sh: $server: load failed:" >&2
        tail -n 5 "$OUT/load.log" >&2
        FAILED=1
        cleanup
        continue
    fi
    after=$(rss_bytes "$SERVER_PID")
    items=$(stat_value "$SERVER_PORT" curr_items)
    bytes=$(stat_value "$SERVER_PORT" bytes)
    cleanup
    if [ "$items" != "$ITEMS" ]; then
        echo "ci/memory.sh: $server: curr_items is '$items', expected $ITEMS (evicted or refused)" >&2
        FAILED=1
    fi
    per_item=$(awk -v a="$before" -v b="$after" -v n="$ITEMS" 'BEGIN { printf "%.1f", (b - a) / n }')
    acct=$(awk -v b="$bytes" -v n="$ITEMS" 'BEGIN { printf "%.1f", b / n }')
    printf '  %-16s RSS %7.1f MiB -> %7.1f MiB  %6s B/item (RSS growth)  stats bytes %6s B/item  curr_items %s\n' \
        "$server" "$(awk -v x="$before" 'BEGIN { print x / 1048576 }')" \
        "$(awk -v x="$after" 'BEGIN { print x / 1048576 }')" "$per_item" "$acct" "$items"
    ROWS+=("| $server | $((before / 1024)) | $((after / 1024)) | $items | **$per_item** | $acct |")
done

{
    echo "| server | RSS before (KiB) | RSS after (KiB) | curr_items | RSS growth per item (B) | stats bytes per item (B) |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ROWS[@]+"${ROWS[@]}"}"
    echo
    echo "$ITEMS items, keys key:%07d (11 bytes), 32-byte values, -m 1024 -t 1; $(date -u +%Y-%m-%dT%H:%MZ)."
} | tee "$OUT/report.md"
exit "$FAILED"
