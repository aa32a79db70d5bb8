//! One connection's TLS: a rustls `ServerConnection` beside the connection's buffers,
//! driven by the same bytes the engine already moves, so neither engine knows TLS is
//! there (io_uring's receive and send ops, epoll's reads and `writev`s, are the ones
//! a plaintext connection uses).
//!
//! In: [`TlsSession::open`] feeds received bytes to rustls (`read_tls`), processes the
//! records (`process_new_packets`: handshake messages, alerts, a TLS 1.3 KeyUpdate are
//! handled there) and reads the plaintext out for the connection to parse. Out:
//! [`TlsSession::seal`] moves the connection's pending plaintext answers into rustls'
//! writer and what rustls has to send (handshake flights, records, alerts,
//! `close_notify`) into the session's own [`Output`], the one the engine sends from.
//! No extra thread, no blocking call.
//!
//! Memory: `seal` works only while that output holds nothing (nothing pending and no
//! send in flight), so while the client reads slowly the plaintext answers stay in
//! the connection's output, where its high-water mark sees them: a connection holds
//! at most its mark (plaintext) plus one sealed batch (records). rustls bounds the
//! rest itself: one incoming record (16 KiB plus overhead), a handshake message
//! (64 KiB at most, the ClientHello being the only one a client sends before the
//! server's flight), plaintext it buffers (drained here after every record), and its
//! outgoing buffer (64 KiB, drained here after every write). [`SESSION_BYTES`] is
//! what a session is counted as against the shared buffer budget beyond the buffers
//! counted exactly.

use crate::server::output::Output;
use bytes::BufMut;
use rustls::{ServerConfig, ServerConnection};
use std::io::{IoSlice, Read, Write};
use std::sync::Arc;

/// What one session is counted as against the connections' shared buffer budget, on
/// top of its output and plaintext buffers: rustls' state and its incoming-record
/// buffer. A half-open handshake measured about 8 KiB resident (`tests/tls.rs` holds
/// a thousand); a session with a full incoming record holds 16 KiB more.
pub const SESSION_BYTES: usize = 16 * 1024;

/// Slices of the plaintext output handed to rustls per write.
const SEAL_SLICES: usize = 16;

/// Why a session ended: the peer broke the protocol.
#[derive(Debug)]
pub struct Broken {
    /// The handshake had not completed (`ssl_handshake_errors`).
    pub handshaking: bool,
    pub why: String,
}

#[derive(Debug)]
pub struct TlsSession {
    conn: ServerConnection,
    /// Records to send: what the engine sends from.
    wire: Output,
    /// Plaintext read out of records, lent to the connection while it executes.
    plain: Vec<u8>,
    /// The peer broke the protocol: input is ignored, the alert is sent, then the
    /// connection closes.
    broken: bool,
    /// `close_notify` was queued.
    notified: bool,
    /// The handshake completed and [`TlsSession::newly_established`] said so.
    established: bool,
}

impl TlsSession {
    pub fn new(config: Arc<ServerConfig>) -> Result<TlsSession, rustls::Error> {
        Ok(TlsSession {
            conn: ServerConnection::new(config)?,
            wire: Output::new(),
            plain: Vec::new(),
            broken: false,
            notified: false,
            established: false,
        })
    }

    /// Decrypts `input` (received bytes, in order). Returns the plaintext it held
    /// (the session's buffer: give it back with [`TlsSession::restore`]), or why the
    /// peer broke TLS, with the plaintext of the records before the bad one.
    pub fn open(&mut self, mut input: &[u8]) -> (Vec<u8>, Option<Broken>) {
        let mut plain = std::mem::take(&mut self.plain);
        plain.clear();
        if self.broken {
            return (plain, None);
        }
        while !input.is_empty() {
            let handshaking = self.conn.is_handshaking();
            let broke = |why: String| Broken { handshaking, why };
            match self.conn.read_tls(&mut input) {
                // The peer sent `close_notify`: rustls reads nothing more, so what
                // follows it is dropped (its FIN ends the connection).
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    self.broken = true;
                    return (plain, Some(broke(e.to_string())));
                }
            }
            let state = match self.conn.process_new_packets() {
                Ok(state) => state,
                Err(e) => {
                    self.broken = true;
                    return (plain, Some(broke(e.to_string())));
                }
            };
            let n = state.plaintext_bytes_to_read();
            if n > 0 {
                let start = plain.len();
                plain.resize(start + n, 0);
                if let Err(e) = self.conn.reader().read_exact(&mut plain[start..]) {
                    self.broken = true;
                    plain.truncate(start);
                    return (plain, Some(broke(e.to_string())));
                }
            }
        }
        (plain, None)
    }

    /// Whether the handshake has completed since the last call: true once per session.
    pub fn newly_established(&mut self) -> bool {
        if self.established || self.broken || self.conn.is_handshaking() {
            return false;
        }
        self.established = true;
        true
    }

    /// Takes back the plaintext buffer [`TlsSession::open`] lent out.
    pub fn restore(&mut self, mut plain: Vec<u8>) {
        if plain.capacity() > 64 * 1024 {
            plain = Vec::new();
        }
        self.plain = plain;
    }

    /// The output the engine sends from, after sealing what `out` (the connection's
    /// plaintext answers) holds, if the records of the last batch are all sent.
    /// `closing`: the connection is done, so `close_notify` follows its last answer.
    pub fn seal(&mut self, out: &mut Output, closing: bool) -> &mut Output {
        if self.wire.held() > 0 {
            return &mut self.wire;
        }
        if !self.broken && !self.conn.is_handshaking() {
            loop {
                let mut slices = [IoSlice::new(&[]); SEAL_SLICES];
                let n = out.chunks(&mut slices);
                if n == 0 {
                    break;
                }
                let taken = self.conn.writer().write_vectored(&slices[..n]).unwrap_or(0);
                out.advance(taken);
                self.drain();
                if taken == 0 {
                    break;
                }
            }
            if closing && !self.notified && out.is_empty() {
                self.conn.send_close_notify();
                self.notified = true;
            }
        }
        self.drain();
        &mut self.wire
    }

    /// Moves what rustls has to send into the wire output.
    fn drain(&mut self) {
        while self.conn.wants_write() {
            let mut writer = self.wire.buf().writer();
            match self.conn.write_tls(&mut writer) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }

    /// What the session holds, as counted against the shared buffer budget.
    pub fn footprint(&self) -> usize {
        self.wire.footprint() + self.plain.capacity() + SESSION_BYTES
    }
}
