//! TLS (`-Z`) on both engines, with certificates each test makes with `openssl`: a CA,
//! a server certificate it signed (for 127.0.0.1, 127.0.0.2 and localhost) and a
//! client certificate. Clients: Debian's python3 `ssl` module (OpenSSL) and pymemcache
//! with a `tls_context` (`tests/tls/client.py`), and rustls' own client where Python
//! cannot go (a TLS 1.3 KeyUpdate, half-open handshakes).
//!
//! What is checked: text, meta and binary requests over TLS answer as Debian's
//! memcached 1.6.18 `-Z` answers the same bytes with the same certificate; a `notls:`
//! listener serves plaintext beside a TLS one; mutual TLS (`ssl_verify_mode=2` with
//! `ssl_ca_cert`) refuses a client without a certificate and counts it;
//! `refresh_certs` and SIGHUP serve new files to new connections; KeyUpdates mid-session;
//! 1,000 half-open handshakes and 100 garbage "ClientHellos" while another client is
//! served, counted in `ssl_handshake_errors`, with the server's memory bounded; the
//! startup refusals; `-o ssl_kernel_tls` (accepted, sessions kept in userspace and
//! counted); `rc-load --tls --reconnect` (one handshake per op); and `rc-load --tls` (the benchmark's TLS client) checks every
//! answer of a pipelined load, with and without the test CA.

#[macro_use]
mod common;

use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

const CLIENT_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tls/client.py");

/// The certificates of one test, in a directory of their own.
struct Certs {
    dir: TempDir,
}

impl Certs {
    /// A CA, and `server`, `client` and `second` (another server certificate)
    /// signed by it.
    fn new() -> Certs {
        let dir = TempDir::new("tls-certs");
        openssl(
            dir.path(),
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=ringcache test CA",
            ],
        );
        issue(dir.path(), "server", "serverAuth", 1);
        issue(dir.path(), "client", "clientAuth", 2);
        issue(dir.path(), "second", "serverAuth", 3);
        Certs { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    /// `-Z` with the server certificate, plus `more` `-o` options.
    fn args(&self, more: &str) -> Vec<String> {
        let mut o = format!(
            "ssl_chain_cert={},ssl_key={}",
            self.path("server.pem"),
            self.path("server.key")
        );
        if !more.is_empty() {
            o = format!("{o},{more}");
        }
        vec!["-Z".into(), "-o".into(), o]
    }

    /// The DER of certificate `name` (`server`, `second`), hex-encoded.
    fn der_hex(&self, name: &str) -> String {
        let der = CertificateDer::from_pem_file(self.dir.join(&format!("{name}.pem")))
            .expect("read the test certificate");
        der.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("run openssl (ci/test.sh installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Certificate `name` for `usage` (serverAuth, clientAuth), signed by the test CA.
fn issue(dir: &Path, name: &str, usage: &str, serial: u32) {
    let (key, csr, pem, ext) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
        format!("{name}.ext"),
    );
    std::fs::write(
        dir.join(&ext),
        format!(
            "subjectAltName=IP:127.0.0.1,IP:127.0.0.2,DNS:localhost\n\
             basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n"
        ),
    )
    .expect("write the extensions file");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial.to_string(),
            "-days",
            "2",
            "-out",
            &pem,
            "-extfile",
            &ext,
        ],
    );
}

/// Runs `tests/tls/client.py MODE PORT CA [CERT KEY]`; its stdout lines.
fn python(mode: &str, port: u16, certs: &Certs, client_cert: bool) -> Vec<String> {
    let mut cmd = Command::new("/usr/bin/python3");
    cmd.arg(CLIENT_PY)
        .arg(mode)
        .arg(port.to_string())
        .arg(certs.path("ca.pem"));
    if client_cert {
        cmd.arg(certs.path("client.pem"))
            .arg(certs.path("client.key"));
    }
    let out = cmd.output().expect("run /usr/bin/python3");
    assert!(
        out.status.success(),
        "client.py {mode}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8 output")
        .lines()
        .map(String::from)
        .collect()
}

fn start(flavor: Flavor, args: &[String]) -> Server {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Server::start(flavor, &args)
}

/// rustls' client, trusting the test CA (and showing the client certificate if asked).
#[allow(deprecated)] // ring's provider: see src/server/tls.rs
fn rustls_config(certs: &Certs) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(certs.path("ca.pem")).expect("CA"))
        .expect("add the CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

fn client_session(config: &Arc<rustls::ClientConfig>) -> rustls::ClientConnection {
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    rustls::ClientConnection::new(Arc::clone(config), name).expect("client session")
}

/// A blocking TLS client over rustls.
struct TlsClient {
    stream: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl TlsClient {
    fn connect(addr: SocketAddr, config: &Arc<rustls::ClientConfig>) -> TlsClient {
        let tcp = TcpStream::connect(addr).expect("connect");
        tcp.set_read_timeout(Some(IO_TIMEOUT)).expect("timeout");
        tcp.set_nodelay(true).expect("nodelay");
        TlsClient {
            stream: rustls::StreamOwned::new(client_session(config), tcp),
            buf: Vec::new(),
        }
    }

    /// Sends `request` and reads until the answer ends with `end`.
    fn roundtrip(&mut self, request: &[u8], end: &[u8]) -> Vec<u8> {
        self.exchange(request, |buf| buf.ends_with(end))
    }

    /// Sends `request` and reads until `done` says the answer is whole.
    fn exchange(&mut self, request: &[u8], done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        self.stream.write_all(request).expect("write over TLS");
        self.stream.flush().expect("flush");
        let mut chunk = [0u8; 65536];
        while !done(&self.buf) {
            let n = self
                .stream
                .read(&mut chunk)
                .unwrap_or_else(|e| panic!("read over TLS after {:?}: {e}", show(&self.buf)));
            assert!(n > 0, "closed after {:?}", show(&self.buf));
            self.buf.extend_from_slice(&chunk[..n]);
        }
        std::mem::take(&mut self.buf)
    }

    fn stats(&mut self) -> HashMap<String, String> {
        let text = self.roundtrip(b"stats\r\n", b"END\r\n");
        String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|l| l.strip_prefix("STAT "))
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

both_engines! {
    /// `rc-load --tls` (ci/bench.sh's tls configs) does one handshake per connection
    /// and gets every answer of a pipelined load right, checking the certificate
    /// against the test CA or (plain `--tls`) accepting it.
    fn rc_load_over_tls_gets_every_answer_right(flavor) {
        let certs = Certs::new();
        let server = start(flavor, &certs.args(""));
        let ca = certs.path("ca.pem");
        for tls in [vec!["--tls-ca", ca.as_str()], vec!["--tls"]] {
            let out = Command::new(rc_load())
                .arg("--server")
                .arg(server.addr().to_string())
                .args(tls)
                .args(["--conns", "4", "--pipeline", "8", "--keys", "1000", "--prefill"])
                .args(["--requests", "5000", "--json", "--quiet"])
                .output()
                .expect("run rc-load");
            let json = String::from_utf8_lossy(&out.stdout);
            assert!(out.status.success(), "rc-load: {out:?}");
            for field in ["\"tls_handshakes\":4,", "\"ops\":5000,", "\"errors\":0,"] {
                assert!(json.contains(field), "{field} missing from {json}");
            }
            // --prefill set every key, so every get hit.
            assert!(json.contains("\"misses\":0,"), "{json}");
        }
    }
}

both_engines! {
    /// `rc-load --tls --reconnect` (ci/bench.sh's tlshs config) does one full handshake
    /// per op: each of the 20 ops is a connection of its own, and the server saw each.
    fn rc_load_reconnect_does_one_handshake_per_op(flavor) {
        let certs = Certs::new();
        let server = start(flavor, &certs.args(""));
        let before = TlsClient::connect(server.addr(), &rustls_config(&certs)).stats();
        let out = Command::new(rc_load())
            .arg("--server")
            .arg(server.addr().to_string())
            .args(["--tls-ca", certs.path("ca.pem").as_str(), "--reconnect"])
            .args(["--conns", "2", "--requests", "20", "--json", "--quiet"])
            .output()
            .expect("run rc-load");
        let json = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "rc-load: {out:?}");
        for field in ["\"ops\":20,", "\"errors\":0,"] {
            assert!(json.contains(field), "{field} missing from {json}");
        }
        let after = TlsClient::connect(server.addr(), &rustls_config(&certs)).stats();
        let total = |s: &HashMap<String, String>| s["total_connections"].parse::<u64>().expect("a number");
        assert_eq!(total(&after) - total(&before), 21, "20 handshake cycles and this client");
        assert_eq!(after["ssl_handshake_errors"], "0");
    }
}

both_engines! {
    /// Text, meta and binary over TLS answer byte for byte as memcached 1.6.18 `-Z`
    /// answers them, with the same certificate, through Python's `ssl` (OpenSSL); and
    /// pymemcache's `tls_context` works.
    fn python_clients_answer_as_memcached_over_tls(flavor) {
        let certs = Certs::new();
        let args = certs.args("");
        let ours = start(flavor, &args);
        let reference = start(Flavor::Memcached, &args);
        let got = python("session", ours.port(), &certs, false);
        let want = python("session", reference.port(), &certs, false);
        assert_eq!(got.len(), 20, "one answer per request batch");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "answer {i} differs from memcached's (hex)");
        }
        assert_eq!(
            python("pymemcache", ours.port(), &certs, false),
            ["over tls", "None"]
        );
        let stats = TlsClient::connect(ours.addr(), &rustls_config(&certs)).stats();
        assert_eq!(stats["ssl_handshake_errors"], "0");
    }
}

both_engines! {
    /// `-l notls:` serves plaintext beside a TLS listener; the TLS one refuses plaintext
    /// (a `get` is no ClientHello: the server answers with an alert and closes).
    fn notls_listener_serves_plaintext_beside_tls(flavor) {
        let certs = Certs::new();
        let mut args = certs.args("");
        args.extend(["-l".into(), "notls:127.0.0.2".into()]);
        let server = start(flavor, &args);
        let ports = server.tcp_ports();
        assert_eq!(ports.len(), 2, "two listeners: {ports:?}");
        let mut tls = TlsClient::connect(server.addr(), &rustls_config(&certs));
        assert_eq!(tls.roundtrip(b"set k 0 0 2\r\nhi\r\n", b"\r\n"), b"STORED\r\n");
        let mut plain = Client::connect(SocketAddr::from(([127, 0, 0, 2], ports[1])));
        assert_eq!(plain.get("k").as_deref(), Some(&b"hi"[..]));
        let mut wrong = server.connect();
        wrong.send(b"get k\r\n");
        let (answer, closed) = wrong.read_to_close(Instant::now() + IO_TIMEOUT);
        assert!(closed.is_some(), "a plaintext client on the TLS port is closed");
        assert_eq!(answer.first(), Some(&0x15), "a TLS alert record: {}", show(&answer));
        assert_eq!(tls.stats()["ssl_handshake_errors"], "1");
    }
}

both_engines! {
    /// `ssl_verify_mode=2` with `ssl_ca_cert`: a client with a certificate the CA
    /// signed is served, one without is refused and counted.
    fn mutual_tls_refuses_a_client_without_a_certificate(flavor) {
        let certs = Certs::new();
        let args = certs.args(&format!("ssl_verify_mode=2,ssl_ca_cert={}", certs.path("ca.pem")));
        let server = start(flavor, &args);
        let with = python("try", server.port(), &certs, true);
        assert_eq!(with, ["ok VERSION 1.6.18"]);
        let without = python("try", server.port(), &certs, false);
        assert!(without[0].starts_with("refused"), "{without:?}");
        let stats = python("handshake_errors", server.port(), &certs, true);
        assert_eq!(stats, ["ssl_handshake_errors 1"]);
    }
}

both_engines! {
    /// `refresh_certs` rereads the files: new connections get the new certificate, an
    /// open one goes on; a file that does not load is refused with memcached's line
    /// and the certificate in force stays; SIGHUP reloads as well.
    fn refresh_certs_and_sighup_serve_new_files(flavor) {
        let certs = Certs::new();
        let dir = TempDir::new("tls-live");
        let (chain, key) = (dir.join("chain.pem"), dir.join("key.pem"));
        let install = |name: &str| {
            std::fs::copy(certs.path(&format!("{name}.pem")), &chain).expect("copy cert");
            std::fs::copy(certs.path(&format!("{name}.key")), &key).expect("copy key");
        };
        install("server");
        let args = vec![
            "-Z".to_string(),
            "-o".to_string(),
            format!("ssl_chain_cert={},ssl_key={}", chain.display(), key.display()),
        ];
        let server = start(flavor, &args);
        let peer = || python("peer_cert", server.port(), &certs, false).concat();
        assert_eq!(peer(), certs.der_hex("server"));
        let mut open = TlsClient::connect(server.addr(), &rustls_config(&certs));
        assert_eq!(open.roundtrip(b"version\r\n", b"\r\n"), b"VERSION 1.6.18\r\n");

        install("second");
        assert_eq!(open.roundtrip(b"refresh_certs\r\n", b"\r\n"), b"OK\r\n");
        assert_eq!(peer(), certs.der_hex("second"));
        assert_eq!(open.roundtrip(b"refresh_certs noreply\r\nmn\r\n", b"\r\n"), b"MN\r\n");

        std::fs::write(&key, "not a key").expect("break the key");
        let refused = open.roundtrip(b"refresh_certs\r\n", b"\r\n");
        assert!(refused.starts_with(b"Error loading the key: "), "{}", show(&refused));
        assert_eq!(peer(), certs.der_hex("second"), "the certificate in force stays");

        install("server");
        server.signal(libc::SIGHUP);
        let deadline = Instant::now() + IO_TIMEOUT;
        while peer() != certs.der_hex("server") {
            assert!(Instant::now() < deadline, "SIGHUP did not reload the certificate");
            std::thread::sleep(POLL_INTERVAL);
        }
        assert_eq!(open.roundtrip(b"version\r\n", b"\r\n"), b"VERSION 1.6.18\r\n");
    }
}

both_engines! {
    /// TLS 1.3 KeyUpdate (rustls' client asks for new keys, and for the server's):
    /// requests before, between and after fifty updates are answered.
    fn key_updates_mid_session(flavor) {
        let certs = Certs::new();
        let server = start(flavor, &certs.args(""));
        let mut c = TlsClient::connect(server.addr(), &rustls_config(&certs));
        assert_eq!(c.roundtrip(b"set k 0 0 1\r\n0\r\n", b"\r\n"), b"STORED\r\n");
        assert_eq!(
            c.stream.conn.protocol_version(),
            Some(rustls::ProtocolVersion::TLSv1_3)
        );
        for i in 1..=50u32 {
            c.stream.conn.refresh_traffic_keys().expect("KeyUpdate");
            let want = format!("{i}\r\n");
            assert_eq!(c.roundtrip(b"incr k 1\r\n", b"\r\n"), want.as_bytes(), "update {i}");
        }
        assert_eq!(c.stats()["ssl_proto_errors"], "0");

        // `close_notify` and 14 KB after it in one write: the bytes are dropped,
        // and the worker goes on serving (another client on it is answered).
        let mut other = TlsClient::connect(server.addr(), &rustls_config(&certs));
        c.stream.conn.send_close_notify();
        let mut records = Vec::new();
        c.stream.conn.write_tls(&mut records).expect("close_notify");
        // More than rustls reads per call (4 KiB), so some stay after it stops reading.
        records.extend_from_slice(&b"get k\r\n".repeat(2000));
        c.stream.sock.write_all(&records).expect("write");
        assert_eq!(other.roundtrip(b"get k\r\n", b"END\r\n"), b"VALUE k 0 2\r\n50\r\nEND\r\n");
        assert_eq!(other.stats()["ssl_proto_errors"], "0");
    }
}

both_engines! {
    /// A value of 700 KB (tens of records each way) is stored and read back over TLS,
    /// then 40 pipelined gets of it (28 MB, past the output's high-water mark, so the
    /// connection pauses and resumes while its records drain) arrive whole and in order.
    /// (memcached 1.6.18 `-Z` stalls on values larger than a record, so this one has no
    /// differential.)
    fn large_values_over_many_records(flavor) {
        let certs = Certs::new();
        let server = start(flavor, &certs.args(""));
        let mut c = TlsClient::connect(server.addr(), &rustls_config(&certs));
        let value: Vec<u8> = (0..700_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut set = b"set big 0 0 700000\r\n".to_vec();
        set.extend_from_slice(&value);
        set.extend_from_slice(b"\r\n");
        assert_eq!(c.roundtrip(&set, b"\r\n"), b"STORED\r\n");
        let mut want = b"VALUE big 0 700000\r\n".to_vec();
        want.extend_from_slice(&value);
        want.extend_from_slice(b"\r\nEND\r\n");
        assert!(c.roundtrip(b"get big\r\n", b"END\r\n") == want, "one get");
        let total = want.len() * 40;
        let answers = c.exchange(&b"get big\r\n".repeat(40), |b| b.len() >= total);
        assert_eq!(answers.len(), want.len() * 40, "40 answers");
        assert!(answers.chunks(want.len()).all(|a| a == want), "every answer whole");
    }
}

/// Half-open handshakes held at once in the hostile test.
const HALF_OPEN: usize = 1000;

/// Resident memory one half-open handshake may add, at most.
const HALF_OPEN_MAX_BYTES: u64 = 24 * 1024;

both_engines! {
    /// 1,000 half-open handshakes (a whole ClientHello, half of one, or nothing) held
    /// open and 100 connections sending garbage instead of a ClientHello, while
    /// another client is served: it gets its answers throughout, every garbage
    /// connection is closed and counted in `ssl_handshake_errors`, and the server's
    /// resident memory grows by less than 24 KiB per half-open handshake (about 8 KiB
    /// measured).
    fn half_open_handshakes_and_garbage_leave_others_served(flavor) {
        raise_fd_limit(HALF_OPEN as u64 + 512);
        let certs = Certs::new();
        let mut args = certs.args("");
        args.extend(["-c".into(), "4096".into()]);
        let server = start(flavor, &args);
        let config = rustls_config(&certs);
        let mut hello = Vec::new();
        client_session(&config).write_tls(&mut hello).expect("a ClientHello");
        let mut good = TlsClient::connect(server.addr(), &config);
        assert_eq!(good.roundtrip(b"set k 0 0 1\r\nv\r\n", b"\r\n"), b"STORED\r\n");
        let before = server.rss_bytes();

        let mut held = Vec::new();
        for i in 0..HALF_OPEN {
            let mut s = TcpStream::connect(server.addr()).expect("connect");
            match i % 3 {
                0 => s.write_all(&hello).expect("send a ClientHello"),
                1 => s.write_all(&hello[..hello.len() / 2]).expect("send half"),
                _ => {}
            }
            held.push(s);
            if i % 100 == 99 {
                assert_eq!(good.roundtrip(b"get k\r\n", b"END\r\n"), b"VALUE k 0 1\r\nv\r\nEND\r\n");
            }
        }
        let deadline = Instant::now() + IO_TIMEOUT;
        loop {
            let curr: usize = good.stats()["curr_connections"].parse().expect("a number");
            if curr > HALF_OPEN {
                break;
            }
            assert!(Instant::now() < deadline, "only {curr} connections accepted");
            std::thread::sleep(POLL_INTERVAL);
        }
        let grown = server.rss_bytes().saturating_sub(before);
        eprintln!(
            "{HALF_OPEN} half-open handshakes: RSS +{} KiB ({} bytes each)",
            grown / 1024,
            grown / HALF_OPEN as u64
        );
        assert!(
            grown < HALF_OPEN as u64 * HALF_OPEN_MAX_BYTES,
            "RSS grew by {grown} bytes for {HALF_OPEN} half-open handshakes"
        );

        let garbage: [&[u8]; 4] = [
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            b"get k\r\n",
            &[0x16, 0x03, 0x01, 0x00, 0x05, 0xff, 0xff, 0xff, 0xff, 0xff],
            &[0x80; 64],
        ];
        for i in 0..100 {
            let mut s = Client::connect(server.addr());
            s.send(garbage[i % garbage.len()]);
            let (_, closed) = s.read_to_close(Instant::now() + IO_TIMEOUT);
            assert!(closed.is_some(), "garbage connection {i} was not closed");
            if i % 10 == 9 {
                assert_eq!(good.roundtrip(b"get k\r\n", b"END\r\n"), b"VALUE k 0 1\r\nv\r\nEND\r\n");
            }
        }
        assert_eq!(good.stats()["ssl_handshake_errors"], "100");
        drop(held);
    }
}

both_engines! {
    /// Refusals at startup, exit 64 with the reason: `-Z` without a certificate or
    /// key, a file that is not there, a key that does not fit, `notls:` without `-Z`,
    /// a client verify mode without CAs, an unknown cipher list, kTLS.
    fn startup_refusals(flavor) {
        let Flavor::Ringcache(engine) = flavor else { unreachable!() };
        let certs = Certs::new();
        let (cert, key, other_key) = (
            certs.path("server.pem"),
            certs.path("server.key"),
            certs.path("second.key"),
        );
        let cases: Vec<(Vec<String>, &str)> = vec![
            (vec!["-Z".into()], "certificate chain"),
            (vec!["-Z".into(), "-o".into(), format!("ssl_chain_cert={cert}")], "Error loading the key"),
            (
                vec!["-Z".into(), "-o".into(), format!("ssl_chain_cert=/nonexistent.pem,ssl_key={key}")],
                "Error loading the certificate chain: /nonexistent.pem",
            ),
            (
                vec!["-Z".into(), "-o".into(), format!("ssl_chain_cert={cert},ssl_key={other_key}")],
                "Error validating the certificate",
            ),
            (vec!["-l".into(), "notls:127.0.0.2".into()], "only when SSL is enabled"),
            (
                vec!["-Z".into(), "-o".into(), format!("ssl_chain_cert={cert},ssl_key={key},ssl_verify_mode=2")],
                "ssl_ca_cert",
            ),
            (
                vec!["-Z".into(), "-o".into(), format!("ssl_chain_cert={cert},ssl_key={key},ssl_ciphers=BOGUS")],
                "Error setting the provided cipher(s): BOGUS",
            ),
        ];
        for (args, why) in cases {
            let out = Command::new(env!("CARGO_BIN_EXE_ringcache"))
                .args(["-p", "0", "-l", "127.0.0.1", "--io-engine", engine.flag()])
                .args(&args)
                .output()
                .expect("run ringcache");
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
            assert!(stderr.contains(why), "{args:?}: want {why:?} in {stderr}");
        }
    }
}

both_engines! {
    /// `-o ssl_kernel_tls` starts, as memcached 1.6.18's does (OpenSSL keeps a session
    /// in userspace where the kernel cannot take it): the start-up log gives the
    /// kernel's answer, `stats settings` says `ssl_kernel_tls yes`, sessions are served
    /// in userspace and each completed handshake is counted in
    /// `ringcache_ktls_fallbacks`; a failed one is not.
    fn kernel_tls_option_serves_in_userspace_and_counts(flavor) {
        let certs = Certs::new();
        let server = start(flavor, &certs.args("ssl_kernel_tls"));
        let config = rustls_config(&certs);
        let mut first = TlsClient::connect(server.addr(), &config);
        assert_eq!(first.roundtrip(b"set k 5 0 2\r\nhi\r\n", b"\r\n"), b"STORED\r\n");
        let mut second = TlsClient::connect(server.addr(), &config);
        assert_eq!(second.roundtrip(b"get k\r\n", b"END\r\n"), b"VALUE k 5 2\r\nhi\r\nEND\r\n");
        let mut garbage = server.connect();
        garbage.send(b"get k\r\n");
        let (_, closed) = garbage.read_to_close(Instant::now() + IO_TIMEOUT);
        assert!(closed.is_some(), "plaintext on the TLS port is closed");
        let stats = first.stats();
        assert_eq!(stats["ringcache_ktls_fallbacks"], "2", "two sessions completed");
        assert_eq!(stats["ssl_handshake_errors"], "1");
        let settings = first.roundtrip(b"stats settings\r\n", b"END\r\n");
        let settings = String::from_utf8_lossy(&settings);
        assert!(settings.contains("STAT ssl_kernel_tls yes\r\n"), "{settings}");
        let log = server.log();
        assert!(
            log.contains("-o ssl_kernel_tls: the kernel refuses TLS offload (setsockopt TCP_ULP")
                || log.contains("-o ssl_kernel_tls: the kernel offers TLS offload"),
            "the start-up log says what the kernel answered: {log}"
        );
    }
}
