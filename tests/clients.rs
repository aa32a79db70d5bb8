//! Real memcached clients and proxies against ringcache, on both engines: pymemcache
//! (Debian's `python3-pymemcache`, run with `/usr/bin/python3`), libmemcached's
//! `memccp`/`memccat`/`memcslap` (`libmemcached-tools`) and twemproxy (`nutcracker`)
//! with ketama distribution over three ringcache backends. ci/test.sh installs the
//! packages; a missing one fails the test with the package to install, never a skip.

#[macro_use]
mod common;

use common::{stat_u64, Engine, Flavor, Server};
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The longest any one client tool may run.
const TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// Debian's python, where `python3-pymemcache` installs (the `python3` first on
/// `PATH` may be another interpreter without it).
const PYTHON: &str = "/usr/bin/python3";

fn engine_of(flavor: Flavor) -> Engine {
    match flavor {
        Flavor::Ringcache(engine) => engine,
        _ => unreachable!("client tests run on ringcache"),
    }
}

/// Where a tool is (PATH, /usr/bin, /usr/sbin), or a panic naming the package.
fn tool(name: &str, package: &str) -> PathBuf {
    common::find_program(name)
        .or_else(|| Some(Path::new("/usr/sbin").join(name)).filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: this test needs it -- `apt-get install {package}` \
                 (ci/test.sh installs it)"
            )
        })
}

/// Runs `command` to completion within [`TOOL_TIMEOUT`] (killing it past that) and
/// returns its output; panics, with stderr, if it does not exit 0.
fn run(mut command: Command, what: &str) -> Output {
    let child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(TOOL_TIMEOUT) {
        Ok(result) => result.unwrap_or_else(|e| panic!("{what}: {e}")),
        Err(_) => {
            let _ = common::signal_pid(pid, libc::SIGKILL);
            panic!("{what} did not finish within {TOOL_TIMEOUT:?}");
        }
    };
    assert!(
        output.status.success(),
        "{what} failed ({})\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Runs a Python snippet with Debian's python3 and pymemcache; `args` become
/// `sys.argv[1..]`. Returns stdout.
fn python(script: &str, args: &[String]) -> String {
    if !Path::new(PYTHON).is_file() {
        panic!("{PYTHON} is missing: `apt-get install python3 python3-pymemcache`");
    }
    let probe = Command::new(PYTHON)
        .args(["-c", "import pymemcache"])
        .output()
        .expect("run /usr/bin/python3");
    assert!(
        probe.status.success(),
        "pymemcache is not importable by {PYTHON} -- `apt-get install python3-pymemcache` \
         (ci/test.sh installs it): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let mut command = Command::new(PYTHON);
    command.arg("-c").arg(script).args(args);
    let out = run(command, "python3 pymemcache snippet");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// The value of `key` on `server`, read directly.
fn get_direct(server: &Server, key: &str) -> Option<Vec<u8>> {
    server.connect().get(key)
}

/// Which of `servers` hold each key (by index), read directly from each.
fn holders(servers: &[Server], key: &str) -> Vec<usize> {
    (0..servers.len())
        .filter(|&i| get_direct(&servers[i], key).is_some())
        .collect()
}

fn curr_items(server: &Server) -> u64 {
    stat_u64(&server.connect().stats(), "curr_items")
}

const PY_BASICS: &str = r#"
import sys
from pymemcache.client.base import Client
c = Client(('127.0.0.1', int(sys.argv[1])), connect_timeout=10, timeout=10)
assert c.set('k', b'v1', noreply=False) is True
assert c.get('k') == b'v1'
assert c.add('k', b'x', noreply=False) is False
assert c.add('new', b'n', noreply=False) is True
assert c.replace('k', b'v2', noreply=False) is True
assert c.replace('absent', b'z', noreply=False) is False
assert c.append('k', b'-tail', noreply=False) is True
assert c.prepend('k', b'head-', noreply=False) is True
assert c.append('absent', b'z', noreply=False) is False
assert c.get('k') == b'head-v2-tail'
assert c.set('n', b'10', noreply=False) is True
assert c.incr('n', 5) == 15
assert c.decr('n', 20) == 0
assert c.incr('absent', 1) is None
assert c.delete('new', noreply=False) is True
assert c.delete('new', noreply=False) is False
assert c.get('new') is None
blob = bytes(range(256)) * 40
assert c.set('blob', blob, noreply=False) is True
assert c.get('blob') == blob
assert c.touch('k', 100, noreply=False) is True
assert c.touch('absent', 100, noreply=False) is False
assert c.set('noreply', b'fire-and-forget') is True
assert c.get('noreply') == b'fire-and-forget'
assert c.version().startswith(b'1.')
stats = c.stats()
assert stats[b'curr_items'] == 4, stats[b'curr_items']  # k, n, blob, noreply
print('OK')
"#;

both_engines! {
    /// pymemcache's classic commands: set/get/add/replace/append/prepend/incr/decr/
    /// delete/touch, noreply, version and stats; the results read back directly.
    fn pymemcache_basics(flavor) {
        let server = Server::ringcache(engine_of(flavor), &[]);
        let out = python(PY_BASICS, &[server.port().to_string()]);
        assert_eq!(out.trim(), "OK");
        assert_eq!(get_direct(&server, "k").as_deref(), Some(&b"head-v2-tail"[..]));
        // memcached rewrites a shrinking decr in place, padded with spaces: "15" → "0 ".
        assert_eq!(get_direct(&server, "n").as_deref(), Some(&b"0 "[..]));
        assert_eq!(get_direct(&server, "new"), None);
    }
}

const PY_MANY_AND_CAS: &str = r#"
import sys
from pymemcache.client.base import Client
c = Client(('127.0.0.1', int(sys.argv[1])), connect_timeout=10, timeout=10)
want = {'m%d' % i: (b'v%d-' % i) * (i + 1) for i in range(200)}
assert c.set_many(want, noreply=False) == []
got = c.get_many(list(want) + ['missing-1', 'missing-2'])
assert got == want, sorted(set(want) ^ set(got))
value, cas = c.gets('m1')
assert value == want['m1']
assert c.cas('m1', b'new', cas, noreply=False) is True
assert c.cas('m1', b'stale', cas, noreply=False) is False
assert c.cas('missing-1', b'x', cas, noreply=False) is None
value2, cas2 = c.gets('m1')
assert value2 == b'new' and cas2 != cas
many = c.gets_many(['m2', 'm3', 'missing-1'])
assert set(many) == {'m2', 'm3'}
assert many['m2'][0] == want['m2'] and many['m2'][1] != many['m3'][1]
assert c.delete_many(['m4', 'm5'], noreply=False) is True
assert c.get_many(['m4', 'm5']) == {}
print('OK')
"#;

both_engines! {
    /// pymemcache's multi-key calls (set_many, get_many with misses, gets_many,
    /// delete_many) and gets + cas (success, stale, missing).
    fn pymemcache_get_many_and_cas(flavor) {
        let server = Server::ringcache(engine_of(flavor), &[]);
        let out = python(PY_MANY_AND_CAS, &[server.port().to_string()]);
        assert_eq!(out.trim(), "OK");
        assert_eq!(get_direct(&server, "m1").as_deref(), Some(&b"new"[..]));
        assert_eq!(curr_items(&server), 198);
    }
}

const PY_HASH_CLIENT: &str = r#"
import sys
from pymemcache.client.hash import HashClient
servers = [('127.0.0.1', int(p)) for p in sys.argv[1:]]
hc = HashClient(servers, connect_timeout=10, timeout=10, ignore_exc=False)
want = {'h%d' % i: b'value-%d' % i for i in range(300)}
for k, v in want.items():
    assert hc.set(k, v, noreply=False) is True, k
assert hc.get_many(list(want)) == want
assert all(hc.get(k) == v for k, v in want.items())
print('OK')
"#;

both_engines! {
    /// pymemcache's HashClient over three ringcache instances: keys land on all three,
    /// each key on exactly one, and all read back through the client.
    fn pymemcache_hash_client_spreads_keys(flavor) {
        let engine = engine_of(flavor);
        let servers: Vec<Server> = (0..3).map(|_| Server::ringcache(engine, &[])).collect();
        let ports: Vec<String> = servers.iter().map(|s| s.port().to_string()).collect();
        let out = python(PY_HASH_CLIENT, &ports);
        assert_eq!(out.trim(), "OK");
        let items: Vec<u64> = servers.iter().map(curr_items).collect();
        assert!(items.iter().all(|&n| n > 0), "keys not on all three servers: {items:?}");
        assert_eq!(items.iter().sum::<u64>(), 300, "{items:?}");
        for i in (0..300).step_by(7) {
            let key = format!("h{i}");
            assert_eq!(holders(&servers, &key).len(), 1, "{key} on {:?}", holders(&servers, &key));
        }
    }
}

/// The (key, value) pairs of a complete multi-key get reply, in order (values parsed
/// by their length, so they may hold anything).
fn values_in(reply: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut values = Vec::new();
    let mut rest = reply;
    while rest != b"END\r\n" {
        let eol = common::memfind(rest, b"\r\n").expect("a VALUE line");
        let line = String::from_utf8_lossy(&rest[..eol]).into_owned();
        let fields: Vec<&str> = line.split(' ').collect();
        assert!(
            fields.len() >= 4 && fields[0] == "VALUE",
            "bad line {line:?}"
        );
        let len: usize = fields[3].parse().expect("value length");
        let data = &rest[eol + 2..];
        assert_eq!(
            &data[len..len + 2],
            b"\r\n",
            "value of {} not followed by CR LF",
            fields[1]
        );
        values.push((fields[1].to_string(), data[..len].to_vec()));
        rest = &data[len + 2..];
    }
    values
}

/// `--servers` for libmemcached's tools.
fn servers_arg(server: &Server) -> String {
    format!("--servers=127.0.0.1:{}", server.port())
}

both_engines! {
    /// memccp copies files in (text and binary protocol); memccat reads each back into
    /// a file, byte-identical, including CR LF, NUL and a value of several hundred KiB.
    fn memccp_and_memccat_round_trip(flavor) {
        let memccp = tool("memccp", "libmemcached-tools");
        let memccat = tool("memccat", "libmemcached-tools");
        let server = Server::ringcache(engine_of(flavor), &[]);
        let dir = common::TempDir::new("memccp");
        let mut binary: Vec<u8> = (0..=255u8).cycle().take(20_000).collect();
        binary.extend_from_slice(b"\r\nEND\r\n\0");
        let files: Vec<(&str, Vec<u8>)> = vec![
            ("small.txt", b"hello\r\nworld\0!".to_vec()),
            ("mid.bin", binary),
            ("big.bin", common::value_for(5, 600 * 1024)),
        ];
        for protocol in [None, Some("--binary")] {
            server.connect().roundtrip(b"flush_all\r\n", b"OK\r\n");
            let mut copy = Command::new(&memccp);
            copy.arg(servers_arg(&server)).args(protocol);
            for (name, bytes) in &files {
                let path = dir.join(name);
                fs::write(&path, bytes).unwrap();
                copy.arg(path);
            }
            run(copy, "memccp");
            assert_eq!(curr_items(&server), files.len() as u64, "{protocol:?}");
            for (name, bytes) in &files {
                let out = dir.join(&format!("{name}.out"));
                let mut cat = Command::new(&memccat);
                cat.arg(servers_arg(&server))
                    .args(protocol)
                    .arg(format!("--file={}", out.display()))
                    .arg(name);
                run(cat, "memccat");
                let back = fs::read(&out).unwrap();
                assert!(back == *bytes, "{name} ({protocol:?}): {} bytes back, {} sent", back.len(), bytes.len());
                assert_eq!(get_direct(&server, name).as_ref(), Some(bytes), "{name}");
            }
        }
    }
}

both_engines! {
    /// A short memcslap run (4 threads) with sets, then gets, then binary-protocol
    /// multi-gets: exit 0, and the server's counters show every request arrived.
    fn memcslap_short_runs(flavor) {
        let memcslap = tool("memcslap", "libmemcached-tools");
        let server = Server::ringcache(engine_of(flavor), &["-t", "2"]);
        let slap = |args: &[&str]| {
            let mut c = Command::new(&memcslap);
            c.arg(servers_arg(&server))
                .args(["--concurrency=4", "--execute-number=2000"])
                .args(args);
            run(c, &format!("memcslap {args:?}"));
            server.connect().stats()
        };
        // set: 4 threads x 2000 sets over 2000 keys.
        let s = slap(&["--test=set"]);
        assert_eq!(stat_u64(&s, "cmd_set"), 8000);
        assert_eq!(stat_u64(&s, "curr_items"), 2000);
        // get: loads 2000 keys, then 4 x 2000 gets, all hits.
        let s = slap(&["--test=get"]);
        assert_eq!(stat_u64(&s, "cmd_set"), 10_000);
        assert_eq!(stat_u64(&s, "cmd_get"), 8000);
        assert_eq!(stat_u64(&s, "get_hits"), 8000);
        // Binary protocol: loads again, then multi-gets; every key asked for is a hit.
        let s = slap(&["--test=mget", "--binary"]);
        assert_eq!(stat_u64(&s, "cmd_set"), 12_000);
        let gets = stat_u64(&s, "cmd_get") - 8000;
        assert!(gets > 0, "no binary gets arrived");
        assert_eq!(stat_u64(&s, "get_hits") - 8000, gets, "binary multi-get misses");
        assert_eq!(stat_u64(&s, "get_misses"), 0);
    }
}

/// A port below 32768 that is free right now (the caller retries if it is taken
/// by the time it is used).
fn free_low_port(salt: u32) -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut x = (nanos ^ std::process::id().rotate_left(16) ^ salt.wrapping_mul(0x9E37_79B9)) | 1;
    for _ in 0..1000 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let port = 20_000 + (x % 12_000) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port between 20000 and 32000");
}

/// A running nutcracker, killed on drop.
struct Nutcracker {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The twemproxy configuration docs/operations.md shows: one pool, ketama over `backends`.
/// md5 is libmemcached's ketama hash; twemproxy's `fnv1a_64` with ketama put 290, 300
/// and 10 of 600 short similar keys (`key-N`, `tw:N`) on three servers.
fn nutcracker_yml(listen: SocketAddr, backends: &[&Server]) -> String {
    let mut yml = format!(
        "ringcache:\n  listen: {listen}\n  hash: md5\n  distribution: ketama\n  \
         timeout: 2000\n  auto_eject_hosts: false\n  servers:\n"
    );
    for (i, b) in backends.iter().enumerate() {
        yml.push_str(&format!("   - 127.0.0.1:{}:1 rc{}\n", b.port(), i + 1));
    }
    yml
}

/// Starts nutcracker over `backends` and waits until it accepts; retries with other
/// ports if one was taken meanwhile.
fn start_nutcracker(dir: &common::TempDir, backends: &[&Server]) -> Nutcracker {
    let bin = tool("nutcracker", "nutcracker");
    for attempt in 0..5 {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_low_port(attempt)));
        let stats_port = free_low_port(attempt + 100);
        let conf = dir.join("nutcracker.yml");
        fs::write(&conf, nutcracker_yml(addr, backends)).unwrap();
        let log = dir.join("nutcracker.log");
        let child = Command::new(&bin)
            .arg("-c")
            .arg(&conf)
            .arg("-o")
            .arg(&log)
            .arg("-p")
            .arg(dir.join("nutcracker.pid"))
            .args(["-a", "127.0.0.1", "-s", &stats_port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let mut proxy = Nutcracker { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = proxy.child.try_wait().expect("try_wait") {
                let log = fs::read_to_string(&proxy.log).unwrap_or_default();
                if log.contains("in use") {
                    break; // a port was taken meanwhile: try others
                }
                panic!("nutcracker exited ({status}):\n{log}");
            }
            if TcpStream::connect(addr).is_ok() {
                return proxy;
            }
            assert!(
                Instant::now() < deadline,
                "nutcracker not accepting on {addr} within 10 s:\n{}",
                fs::read_to_string(&proxy.log).unwrap_or_default()
            );
            std::thread::sleep(common::POLL_INTERVAL);
        }
    }
    panic!("nutcracker could not bind a free port in 5 attempts");
}

both_engines! {
    /// twemproxy (nutcracker) with ketama over three ringcache backends: sets, gets,
    /// multi-gets, the other classic commands (add/replace/append/prepend/incr/decr/
    /// touch/gets/cas/version) and deletes through the proxy are all correct, and the
    /// keys are spread over all three backends, each key on exactly one.
    fn twemproxy_ketama_over_three_backends(flavor) {
        const KEYS: u64 = 300;
        let engine = engine_of(flavor);
        let backends: Vec<Server> = (0..3).map(|_| Server::ringcache(engine, &[])).collect();
        let dir = common::TempDir::new("twemproxy");
        let proxy = start_nutcracker(&dir, &backends.iter().collect::<Vec<_>>());
        let mut conn = common::Client::connect(proxy.addr);
        let value = |i: u64| common::value_for(i, 10 + (i as usize * 37) % 3000);
        for i in 0..KEYS {
            conn.set(&format!("tw:{i}"), &value(i));
        }
        for i in 0..KEYS {
            assert_eq!(conn.get(&format!("tw:{i}")), Some(value(i)), "tw:{i} via the proxy");
        }
        // Multi-gets of 50 keys (plus a miss), which the proxy splits per backend
        // and merges back.
        for start in (0..KEYS).step_by(50) {
            let keys: Vec<String> = (start..start + 50).map(|i| format!("tw:{i}")).collect();
            conn.send(format!("get {} tw:missing\r\n", keys.join(" ")).as_bytes());
            let reply = conn.read_until_end_of_get();
            let want: Vec<(String, Vec<u8>)> =
                (start..).zip(keys).map(|(i, key)| (key, value(i))).collect();
            assert!(values_in(&reply) == want, "multi-get from tw:{start}: {}", common::show(&reply));
        }
        // The rest of the classic commands twemproxy forwards, on a key of their own.
        for (cmd, want) in [
            (&b"set c 0 0 1\r\n1\r\n"[..], &b"STORED\r\n"[..]),
            (b"add c 0 0 1\r\n2\r\n", b"NOT_STORED\r\n"),
            (b"replace c 0 0 1\r\n3\r\n", b"STORED\r\n"),
            (b"append c 0 0 1\r\n4\r\n", b"STORED\r\n"),
            (b"prepend c 0 0 1\r\n5\r\n", b"STORED\r\n"),
            (b"incr c 10\r\n", b"544\r\n"),
            (b"decr c 1\r\n", b"543\r\n"),
            (b"touch c 100\r\n", b"TOUCHED\r\n"),
            (b"cas c 0 0 1 0\r\nx\r\n", b"EXISTS\r\n"),
        ] {
            conn.roundtrip(cmd, want);
        }
        conn.send(b"gets c\r\n");
        let reply = conn.read_until_end_of_get();
        let line = String::from_utf8_lossy(&reply[..common::memfind(&reply, b"\r\n").unwrap()]).into_owned();
        let cas = line.rsplit(' ').next().unwrap().to_string();
        conn.roundtrip(format!("cas c 0 0 1 {cas}\r\n9\r\n").as_bytes(), b"STORED\r\n");
        assert_eq!(conn.get("c").as_deref(), Some(&b"9"[..]));
        conn.roundtrip(b"delete c\r\n", b"DELETED\r\n");
        // The proxy forwards `version` to a backend: memcached's plain number (see operators.rs).
        assert_eq!(conn.version(), "VERSION 1.6.18");
        for i in 0..10 {
            conn.roundtrip(format!("delete tw:{i}\r\n").as_bytes(), b"DELETED\r\n");
            assert_eq!(conn.get(&format!("tw:{i}")), None);
        }
        let items: Vec<u64> = backends.iter().map(curr_items).collect();
        assert!(items.iter().all(|&n| n > 0), "keys not on all three backends: {items:?}");
        assert_eq!(items.iter().sum::<u64>(), KEYS - 10, "{items:?}");
        for i in (10..KEYS).step_by(11) {
            let key = format!("tw:{i}");
            assert_eq!(holders(&backends, &key).len(), 1, "{key}");
        }
    }
}
