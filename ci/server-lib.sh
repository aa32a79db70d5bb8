# Sourced by ci/bench.sh and ci/memory.sh: start one server on a free port, learn the
# port from MEMCACHED_PORT_FILENAME, and stop it again (also on exit or interrupt).

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
