//! The three dialects on a blocking socket: encode an [`Op`], read its [`Reply`].
//!
//! Knows nothing of keys' expected state: it turns bytes into replies and calls
//! anything it does not expect (an unknown line, a bad length, a wrong opaque, a close)
//! a protocol error, which the caller counts as a failure.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long a read may wait for the server before the soak calls it a hang.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Text,
    Meta,
    Binary,
}

impl Dialect {
    pub const ALL: [Dialect; 3] = [Dialect::Text, Dialect::Meta, Dialect::Binary];

    pub fn name(self) -> &'static str {
        match self {
            Dialect::Text => "text",
            Dialect::Meta => "meta",
            Dialect::Binary => "binary",
        }
    }
}

/// One request. TTLs are relative seconds (0: never expires).
#[derive(Clone, Debug)]
pub enum Op {
    Set {
        key: String,
        flags: u32,
        ttl: u32,
        value: Vec<u8>,
    },
    Get {
        key: String,
    },
    MultiGet {
        keys: Vec<String>,
    },
    Delete {
        key: String,
    },
    Incr {
        key: String,
        delta: u64,
    },
    Touch {
        key: String,
        ttl: u32,
    },
}

/// A hit: the key it was for, its flags and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub key: Vec<u8>,
    pub flags: u32,
    pub value: Vec<u8>,
}

/// The answer to one [`Op`], whatever the dialect.
#[derive(Debug)]
pub enum Reply {
    Stored,
    /// Get: the hit, or `None` for a miss.
    Value(Option<Hit>),
    /// Multi-get: the hits, in the order the server sent them.
    Values(Vec<Hit>),
    /// Delete: whether the key was there.
    Deleted(bool),
    /// Incr: the new value, or `None` when the key was missing.
    Incremented(Option<u64>),
    /// Touch: whether the key was there.
    Touched(bool),
}

/// A connection: the socket plus what has been read but not yet consumed.
pub struct Conn {
    stream: TcpStream,
    pub dialect: Dialect,
    buf: Vec<u8>,
    pos: usize,
    /// The next binary opaque.
    opaque: u32,
}

impl Conn {
    pub fn connect(addr: std::net::SocketAddr, dialect: Dialect) -> io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        Ok(Conn {
            stream,
            dialect,
            buf: Vec::with_capacity(64 * 1024),
            pos: 0,
            opaque: 1,
        })
    }

    /// Sends every op of a batch in one write and reads the replies in order, handing
    /// each to `on_reply` as it arrives (so the caller's model advances op by op).
    pub fn batch(
        &mut self,
        ops: &[Op],
        mut on_reply: impl FnMut(usize, Reply),
    ) -> Result<(), String> {
        let mut out = Vec::with_capacity(4096);
        let mut first_opaques = Vec::with_capacity(ops.len());
        for op in ops {
            first_opaques.push(self.opaque);
            self.encode(op, &mut out);
        }
        self.stream
            .write_all(&out)
            .map_err(|e| format!("write: {e}"))?;
        for (i, (op, opaque)) in ops.iter().zip(first_opaques).enumerate() {
            let reply = self.read_reply(op, opaque)?;
            on_reply(i, reply);
        }
        Ok(())
    }

    /// Ends the connection the polite way where the dialect has one.
    pub fn quit(mut self) {
        let bye: &[u8] = match self.dialect {
            Dialect::Text | Dialect::Meta => b"quit\r\n",
            Dialect::Binary => &[
                0x80, 0x07, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ],
        };
        let _ = self.stream.write_all(bye);
        // Wait for the server's close, so the connection count can settle after us.
        let mut sink = [0u8; 64];
        while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
    }

    fn encode(&mut self, op: &Op, out: &mut Vec<u8>) {
        match self.dialect {
            Dialect::Text => encode_text(op, out),
            Dialect::Meta => encode_meta(op, out),
            Dialect::Binary => {
                encode_binary(op, self.opaque, out);
            }
        }
        self.opaque = self.opaque.wrapping_add(opaques(op));
    }

    fn read_reply(&mut self, op: &Op, opaque: u32) -> Result<Reply, String> {
        match self.dialect {
            Dialect::Text => self.read_text(op),
            Dialect::Meta => self.read_meta(op),
            Dialect::Binary => self.read_binary(op, opaque),
        }
    }

    // ---- buffered reading ----

    fn fill(&mut self) -> Result<(), String> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 1 << 20 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let start = self.buf.len();
        self.buf.resize(start + 64 * 1024, 0);
        let got = self.stream.read(&mut self.buf[start..]);
        match got {
            Ok(0) => {
                self.buf.truncate(start);
                Err("server closed the connection".into())
            }
            Ok(n) => {
                self.buf.truncate(start + n);
                Ok(())
            }
            Err(e) => {
                self.buf.truncate(start);
                Err(match e.kind() {
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                        format!("no answer within {READ_TIMEOUT:?}")
                    }
                    _ => format!("read: {e}"),
                })
            }
        }
    }

    /// The next line, without its `\r\n`.
    fn line(&mut self) -> Result<Vec<u8>, String> {
        loop {
            let rest = &self.buf[self.pos..];
            if let Some(i) = memchr::memmem::find(rest, b"\r\n") {
                let line = rest[..i].to_vec();
                self.pos += i + 2;
                return Ok(line);
            }
            if rest.len() > 4096 {
                return Err(format!("no line end in {} bytes", rest.len()));
            }
            self.fill()?;
        }
    }

    fn exact(&mut self, n: usize) -> Result<Vec<u8>, String> {
        while self.buf.len() - self.pos < n {
            self.fill()?;
        }
        let bytes = self.buf[self.pos..self.pos + n].to_vec();
        self.pos += n;
        Ok(bytes)
    }

    /// `n` bytes of data followed by `\r\n`.
    fn data_block(&mut self, n: usize) -> Result<Vec<u8>, String> {
        let mut data = self.exact(n + 2)?;
        if !data.ends_with(b"\r\n") {
            return Err(format!("data block of {n} bytes not followed by \\r\\n"));
        }
        data.truncate(n);
        Ok(data)
    }

    // ---- text ----

    fn read_text(&mut self, op: &Op) -> Result<Reply, String> {
        match op {
            Op::Get { key } => {
                let hits = self.read_text_values()?;
                single_hit(key, hits)
            }
            Op::MultiGet { .. } => Ok(Reply::Values(self.read_text_values()?)),
            _ => {
                let line = self.line()?;
                match (op, line.as_slice()) {
                    (Op::Set { .. }, b"STORED") => Ok(Reply::Stored),
                    (Op::Delete { .. }, b"DELETED") => Ok(Reply::Deleted(true)),
                    (Op::Delete { .. }, b"NOT_FOUND") => Ok(Reply::Deleted(false)),
                    (Op::Touch { .. }, b"TOUCHED") => Ok(Reply::Touched(true)),
                    (Op::Touch { .. }, b"NOT_FOUND") => Ok(Reply::Touched(false)),
                    (Op::Incr { .. }, b"NOT_FOUND") => Ok(Reply::Incremented(None)),
                    (Op::Incr { .. }, n) => parse_u64(n)
                        .map(|v| Reply::Incremented(Some(v)))
                        .ok_or_else(|| unexpected(op, n)),
                    (_, other) => Err(unexpected(op, other)),
                }
            }
        }
    }

    /// `VALUE key flags len` blocks up to `END`.
    fn read_text_values(&mut self) -> Result<Vec<Hit>, String> {
        let mut hits = Vec::new();
        loop {
            let line = self.line()?;
            if line == b"END" {
                return Ok(hits);
            }
            let parts: Vec<&[u8]> = line.split(|&b| b == b' ').collect();
            let (key, flags, len) = match parts.as_slice() {
                [b"VALUE", key, flags, len] => (key.to_vec(), parse_u64(flags), parse_u64(len)),
                _ => return Err(format!("get: unexpected line {:?}", show(&line))),
            };
            let (Some(flags), Some(len)) = (flags, len) else {
                return Err(format!("get: bad VALUE line {:?}", show(&line)));
            };
            let value = self.data_block(len as usize)?;
            hits.push(Hit {
                key,
                flags: flags as u32,
                value,
            });
        }
    }

    // ---- meta ----

    fn read_meta(&mut self, op: &Op) -> Result<Reply, String> {
        match op {
            Op::MultiGet { .. } => {
                let mut hits = Vec::new();
                loop {
                    let line = self.line()?;
                    if line == b"MN" {
                        return Ok(Reply::Values(hits));
                    }
                    hits.push(self.read_meta_value(op, &line)?);
                }
            }
            _ => {
                let line = self.line()?;
                match (op, line.as_slice()) {
                    (Op::Set { .. }, b"HD") => Ok(Reply::Stored),
                    (Op::Get { .. }, b"EN") => Ok(Reply::Value(None)),
                    (Op::Get { key }, l) if l.starts_with(b"VA ") => {
                        let mut hit = self.read_meta_value(op, l)?;
                        hit.key = key.as_bytes().to_vec();
                        Ok(Reply::Value(Some(hit)))
                    }
                    (Op::Delete { .. }, b"HD") => Ok(Reply::Deleted(true)),
                    (Op::Delete { .. }, b"NF") => Ok(Reply::Deleted(false)),
                    (Op::Touch { .. }, b"HD") => Ok(Reply::Touched(true)),
                    (Op::Touch { .. }, b"EN") => Ok(Reply::Touched(false)),
                    (Op::Incr { .. }, b"NF") => Ok(Reply::Incremented(None)),
                    (Op::Incr { .. }, l) if l.starts_with(b"VA ") => {
                        let hit = self.read_meta_value(op, l)?;
                        parse_u64(&hit.value)
                            .map(|v| Reply::Incremented(Some(v)))
                            .ok_or_else(|| unexpected(op, &hit.value))
                    }
                    (_, other) => Err(unexpected(op, other)),
                }
            }
        }
    }

    /// `VA len <flags>` and its data block; `f` and `k` return flags are read.
    fn read_meta_value(&mut self, op: &Op, line: &[u8]) -> Result<Hit, String> {
        let mut parts = line.split(|&b| b == b' ');
        if parts.next() != Some(b"VA") {
            return Err(unexpected(op, line));
        }
        let len = parts
            .next()
            .and_then(parse_u64)
            .ok_or_else(|| unexpected(op, line))?;
        let mut hit = Hit {
            key: Vec::new(),
            flags: 0,
            value: Vec::new(),
        };
        for flag in parts {
            match flag.split_first() {
                Some((b'f', n)) => {
                    hit.flags = parse_u64(n).ok_or_else(|| unexpected(op, line))? as u32
                }
                Some((b'k', k)) => hit.key = k.to_vec(),
                _ => return Err(unexpected(op, line)),
            }
        }
        hit.value = self.data_block(len as usize)?;
        Ok(hit)
    }

    // ---- binary ----

    fn read_binary(&mut self, op: &Op, opaque: u32) -> Result<Reply, String> {
        match op {
            Op::MultiGet { keys } => {
                // GETKQ answers hits only, then the NOOP (opaque after the keys') ends it.
                let end = opaque.wrapping_add(keys.len() as u32);
                let mut hits = Vec::new();
                loop {
                    let r = self.binary_response()?;
                    if r.opcode == NOOP {
                        if r.opaque != end {
                            return Err(format!("NOOP with opaque {} not {end}", r.opaque));
                        }
                        return Ok(Reply::Values(hits));
                    }
                    let i = r.opaque.wrapping_sub(opaque) as usize;
                    if r.opcode != GETKQ || r.status != 0 || i >= keys.len() {
                        return Err(format!(
                            "multi-get: unexpected response opcode {:#x} status {} opaque {}",
                            r.opcode, r.status, r.opaque
                        ));
                    }
                    hits.push(r.hit()?);
                }
            }
            _ => {
                let r = self.binary_response()?;
                if r.opaque != opaque {
                    return Err(format!(
                        "binary: response opaque {} for request {opaque}",
                        r.opaque
                    ));
                }
                match (op, r.status) {
                    (Op::Set { .. }, 0) => Ok(Reply::Stored),
                    (Op::Get { key }, 0) => {
                        let mut hit = r.hit()?;
                        hit.key = key.as_bytes().to_vec();
                        Ok(Reply::Value(Some(hit)))
                    }
                    (Op::Get { .. }, 1) => Ok(Reply::Value(None)),
                    (Op::Delete { .. }, 0 | 1) => Ok(Reply::Deleted(r.status == 0)),
                    (Op::Touch { .. }, 0 | 1) => Ok(Reply::Touched(r.status == 0)),
                    (Op::Incr { .. }, 1) => Ok(Reply::Incremented(None)),
                    (Op::Incr { .. }, 0) if r.value.len() == 8 => {
                        let mut n = [0u8; 8];
                        n.copy_from_slice(&r.value);
                        Ok(Reply::Incremented(Some(u64::from_be_bytes(n))))
                    }
                    _ => Err(format!(
                        "binary {}: unexpected status {:#x} body {:?}",
                        op_name(op),
                        r.status,
                        show(&r.value)
                    )),
                }
            }
        }
    }

    fn binary_response(&mut self) -> Result<BinaryResponse, String> {
        let h = self.exact(24)?;
        if h[0] != 0x81 {
            return Err(format!("binary: response magic {:#x}", h[0]));
        }
        let key_len = usize::from(u16::from_be_bytes([h[2], h[3]]));
        let extras_len = usize::from(h[4]);
        let status = u16::from_be_bytes([h[6], h[7]]);
        let body_len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]) as usize;
        let opaque = u32::from_be_bytes([h[12], h[13], h[14], h[15]]);
        if key_len + extras_len > body_len {
            return Err(format!(
                "binary: key {key_len} + extras {extras_len} > body {body_len}"
            ));
        }
        let body = self.exact(body_len)?;
        Ok(BinaryResponse {
            opcode: h[1],
            status,
            opaque,
            extras: body[..extras_len].to_vec(),
            key: body[extras_len..extras_len + key_len].to_vec(),
            value: body[extras_len + key_len..].to_vec(),
        })
    }
}

struct BinaryResponse {
    opcode: u8,
    status: u16,
    opaque: u32,
    extras: Vec<u8>,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl BinaryResponse {
    fn hit(self) -> Result<Hit, String> {
        let flags: [u8; 4] = self
            .extras
            .as_slice()
            .try_into()
            .map_err(|_| format!("binary get: {} bytes of extras", self.extras.len()))?;
        Ok(Hit {
            key: self.key,
            flags: u32::from_be_bytes(flags),
            value: self.value,
        })
    }
}

const SET: u8 = 0x01;
const GET: u8 = 0x00;
const DELETE: u8 = 0x04;
const INCREMENT: u8 = 0x05;
const NOOP: u8 = 0x0a;
const GETKQ: u8 = 0x0d;
const TOUCH: u8 = 0x1c;

fn single_hit(key: &str, mut hits: Vec<Hit>) -> Result<Reply, String> {
    match hits.len() {
        0 => Ok(Reply::Value(None)),
        1 if hits[0].key == key.as_bytes() => Ok(Reply::Value(hits.pop())),
        _ => Err(format!(
            "get {key}: answered for keys {:?}",
            hits.iter().map(|h| show(&h.key)).collect::<Vec<_>>()
        )),
    }
}

fn encode_text(op: &Op, out: &mut Vec<u8>) {
    match op {
        Op::Set {
            key,
            flags,
            ttl,
            value,
        } => {
            out.extend_from_slice(
                format!("set {key} {flags} {ttl} {}\r\n", value.len()).as_bytes(),
            );
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        Op::Get { key } => out.extend_from_slice(format!("get {key}\r\n").as_bytes()),
        Op::MultiGet { keys } => {
            out.extend_from_slice(format!("get {}\r\n", keys.join(" ")).as_bytes())
        }
        Op::Delete { key } => out.extend_from_slice(format!("delete {key}\r\n").as_bytes()),
        Op::Incr { key, delta } => {
            out.extend_from_slice(format!("incr {key} {delta}\r\n").as_bytes())
        }
        Op::Touch { key, ttl } => {
            out.extend_from_slice(format!("touch {key} {ttl}\r\n").as_bytes())
        }
    }
}

fn encode_meta(op: &Op, out: &mut Vec<u8>) {
    match op {
        Op::Set {
            key,
            flags,
            ttl,
            value,
        } => {
            out.extend_from_slice(
                format!("ms {key} {} F{flags} T{ttl}\r\n", value.len()).as_bytes(),
            );
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        Op::Get { key } => out.extend_from_slice(format!("mg {key} f v\r\n").as_bytes()),
        Op::MultiGet { keys } => {
            for key in keys {
                out.extend_from_slice(format!("mg {key} k f v q\r\n").as_bytes());
            }
            out.extend_from_slice(b"mn\r\n");
        }
        Op::Delete { key } => out.extend_from_slice(format!("md {key}\r\n").as_bytes()),
        Op::Incr { key, delta } => {
            out.extend_from_slice(format!("ma {key} D{delta} v\r\n").as_bytes())
        }
        Op::Touch { key, ttl } => out.extend_from_slice(format!("mg {key} T{ttl}\r\n").as_bytes()),
    }
}

/// Encodes `op`; a multi-get takes one opaque per key plus one for its NOOP.
fn encode_binary(op: &Op, opaque: u32, out: &mut Vec<u8>) {
    match op {
        Op::Set {
            key,
            flags,
            ttl,
            value,
        } => {
            let mut extras = [0u8; 8];
            extras[..4].copy_from_slice(&flags.to_be_bytes());
            extras[4..].copy_from_slice(&ttl.to_be_bytes());
            binary_request(out, SET, opaque, &extras, key.as_bytes(), value);
        }
        Op::Get { key } => binary_request(out, GET, opaque, &[], key.as_bytes(), &[]),
        Op::MultiGet { keys } => {
            for (i, key) in keys.iter().enumerate() {
                let o = opaque.wrapping_add(i as u32);
                binary_request(out, GETKQ, o, &[], key.as_bytes(), &[]);
            }
            let o = opaque.wrapping_add(keys.len() as u32);
            binary_request(out, NOOP, o, &[], &[], &[]);
        }
        Op::Delete { key } => binary_request(out, DELETE, opaque, &[], key.as_bytes(), &[]),
        Op::Incr { key, delta } => {
            // Delta, initial value, expiration 0xffffffff: fail when missing.
            let mut extras = [0u8; 20];
            extras[..8].copy_from_slice(&delta.to_be_bytes());
            extras[16..].copy_from_slice(&u32::MAX.to_be_bytes());
            binary_request(out, INCREMENT, opaque, &extras, key.as_bytes(), &[]);
        }
        Op::Touch { key, ttl } => {
            binary_request(out, TOUCH, opaque, &ttl.to_be_bytes(), key.as_bytes(), &[])
        }
    }
}

fn binary_request(
    out: &mut Vec<u8>,
    opcode: u8,
    opaque: u32,
    extras: &[u8],
    key: &[u8],
    value: &[u8],
) {
    let body = extras.len() + key.len() + value.len();
    out.extend_from_slice(&[0x80, opcode]);
    out.extend_from_slice(&(key.len() as u16).to_be_bytes());
    out.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
    out.extend_from_slice(&(body as u32).to_be_bytes());
    out.extend_from_slice(&opaque.to_be_bytes());
    out.extend_from_slice(&0u64.to_be_bytes());
    out.extend_from_slice(extras);
    out.extend_from_slice(key);
    out.extend_from_slice(value);
}

/// How many binary opaques `op` uses (the connection's counter advances by it).
fn opaques(op: &Op) -> u32 {
    match op {
        Op::MultiGet { keys } => keys.len() as u32 + 1,
        _ => 1,
    }
}

pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Set { .. } => "set",
        Op::Get { .. } => "get",
        Op::MultiGet { .. } => "multi-get",
        Op::Delete { .. } => "delete",
        Op::Incr { .. } => "incr",
        Op::Touch { .. } => "touch",
    }
}

fn unexpected(op: &Op, line: &[u8]) -> String {
    format!("{}: unexpected answer {:?}", op_name(op), show(line))
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(b).ok()?.parse().ok()
}

/// Bytes for an error message: printable ASCII as is, the rest escaped, cut at 80.
pub fn show(b: &[u8]) -> String {
    let cut = &b[..b.len().min(80)];
    let mut s: String = cut.escape_ascii().to_string();
    if b.len() > 80 {
        s.push_str(&format!("…({} bytes)", b.len()));
    }
    s
}
