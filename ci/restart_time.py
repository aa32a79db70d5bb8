#!/usr/bin/python3
"""Times a restart from the -e memory file (README, "Restartable memory").

usage: ci/restart_time.py ITEMS MEMORY_MB [PORT]

Starts target/release/ringcache -t 2 -m MEMORY_MB -e /dev/shm/..., prefills ITEMS items
(11-byte keys, 32-byte values) with rc-load, stops it with SIGUSR1, starts it again on
the same file and times the spawn to the first served get of a prefilled key. Build
first: cargo build --release --workspace."""
import os, signal, socket, subprocess, sys, time

if len(sys.argv) not in (3, 4) or sys.argv[1] in ("-h", "--help"):
    print(__doc__)
    sys.exit(0 if sys.argv[1:2] in (["-h"], ["--help"]) else 2)
ITEMS, MB = int(sys.argv[1]), sys.argv[2]
PORT = int(sys.argv[3]) if len(sys.argv) == 4 else 31931
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SERVER, LOAD = (os.path.join(ROOT, "target/release", b) for b in ("ringcache", "rc-load"))
DIR = f"/dev/shm/ringcache-restart-time-{os.getpid()}"
FILE = f"{DIR}/memory"
os.makedirs(DIR, exist_ok=True)
ARGS = [SERVER, "-p", str(PORT), "-t", "2", "-m", MB, "-e", FILE, "-v"]


def reply(s, until):
    buf = b""
    while not buf.endswith(until):
        buf += s.recv(65536)
    return buf


def start():
    began = time.monotonic()
    proc = subprocess.Popen(ARGS, stderr=open(f"{DIR}/log", "a"))
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", PORT))
            break
        except OSError:
            time.sleep(0.001)
    s.sendall(b"get key:0000001\r\n")
    first = reply(s, b"END\r\n")
    return proc, s, time.monotonic() - began, first


def stats(s):
    s.sendall(b"stats\r\n")
    lines = reply(s, b"END\r\n").decode().split("\r\n")
    return dict(l.split()[1:3] for l in lines if l.startswith("STAT"))


try:
    proc, s, _, _ = start()
    subprocess.run([LOAD, "--server", f"127.0.0.1:{PORT}", "--keys", str(ITEMS), "--value-size", "32",
                    "--prefill", "--requests", "0", "--conns", "4", "-q"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    held = stats(s)["curr_items"]
    began = time.monotonic()
    proc.send_signal(signal.SIGUSR1)
    proc.wait()
    stop = time.monotonic() - began
    size = os.path.getsize(FILE)
    proc, s, up, first = start()
    st = stats(s)
    print(f"{held} items, -m {MB}: stop and save {stop:.3f} s, file {size / 1e6:.1f} MB; "
          f"spawn to first served get {up:.3f} s (a hit: {first.startswith(b'VALUE')}); "
          f"restored {st['ringcache_restarted_items']} items in {int(st['ringcache_restart_load_us']) / 1e6:.3f} s")
    proc.send_signal(signal.SIGTERM)
    proc.wait()
finally:
    subprocess.run(["rm", "-rf", DIR])
