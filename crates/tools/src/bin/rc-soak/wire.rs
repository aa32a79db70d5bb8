//! The three dialects on a blocking socket: encode an [`Op`], read its [`Reply`].
//!
//! The bytes are `ringcache-client`'s; this module says which requests an [`Op`] is in
//! each dialect and what their answers mean. Knows nothing of keys' expected state: it
//! turns answers into replies and calls anything it does not expect (an answer of the
//! wrong kind, a wrong opaque, a malformed answer, a close) a protocol error, which the
//! caller counts as a failure.

use ringcache_client::binary::{self, opcode, RESPONSE_MAGIC};
use ringcache_client::text::{self, Response};
use ringcache_client::{meta, DecodeError, Decoded};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub use ringcache_client::Dialect;

/// How long a read may wait for the server before the soak calls it a hang.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

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
            let reply = match self.dialect {
                Dialect::Text => self.read_text(op)?,
                Dialect::Meta => self.read_meta(op)?,
                Dialect::Binary => self.read_binary(op, opaque)?,
            };
            on_reply(i, reply);
        }
        Ok(())
    }

    /// `stats` (on a text connection): the general group, name to value.
    pub fn stats(&mut self) -> Result<HashMap<String, String>, String> {
        self.stream
            .write_all(b"stats\r\n")
            .map_err(|e| format!("stats: write: {e}"))?;
        self.next(|b| {
            Ok(text::decode_list(b)?.map(|list| {
                if list.end != Response::End {
                    return Err(format!("stats: answered {:?}", list.end));
                }
                list.items
                    .into_iter()
                    .map(|item| match item {
                        Response::Stat(name, value) => Ok((name.to_string(), value.to_string())),
                        other => Err(format!("stats: unexpected answer {other:?}")),
                    })
                    .collect()
            }))
        })
    }

    /// Ends the connection the polite way where the dialect has one.
    pub fn quit(mut self) {
        let mut bye = Vec::new();
        match self.dialect {
            Dialect::Text | Dialect::Meta => bye.extend_from_slice(b"quit\r\n"),
            Dialect::Binary => binary::request(&mut bye, opcode::QUIT, 0, &[], &[], &[]),
        }
        let _ = self.stream.write_all(&bye);
        // Wait for the server's close, so the connection count can settle after us.
        let mut sink = [0u8; 64];
        while matches!(self.stream.read(&mut sink), Ok(n) if n > 0) {}
    }

    fn encode(&mut self, op: &Op, out: &mut Vec<u8>) {
        encode(self.dialect, op, self.opaque, out);
        self.opaque = self.opaque.wrapping_add(opaques(op));
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

    /// The next answer: `decode` reads it from the front of the unread bytes and turns
    /// it into what the caller keeps (or an error message); more bytes are read until
    /// it is whole.
    fn next<T>(
        &mut self,
        decode: impl Fn(&[u8]) -> Result<Decoded<Result<T, String>>, DecodeError>,
    ) -> Result<T, String> {
        loop {
            match decode(&self.buf[self.pos..]) {
                Ok(Decoded { response, consumed }) => {
                    self.pos += consumed;
                    return response;
                }
                Err(DecodeError::Incomplete) => self.fill()?,
                Err(DecodeError::Malformed(why)) => return Err(why),
            }
        }
    }

    // ---- text ----

    fn read_text(&mut self, op: &Op) -> Result<Reply, String> {
        match op {
            Op::Get { key } => single_hit(key, self.read_text_values(op)?),
            Op::MultiGet { .. } => Ok(Reply::Values(self.read_text_values(op)?)),
            _ => self.next(|b| {
                Ok(text::decode(b)?.map(|r| text_reply(op, r).ok_or_else(|| unexpected(op, b))))
            }),
        }
    }

    /// `VALUE key flags len` blocks up to `END`.
    fn read_text_values(&mut self, op: &Op) -> Result<Vec<Hit>, String> {
        self.next(|b| {
            Ok(text::decode_list(b)?.map(|list| {
                if list.end != Response::End {
                    return Err(format!("{}: ended by {:?}", op_name(op), list.end));
                }
                list.items
                    .into_iter()
                    .map(|item| match item {
                        Response::Value {
                            key, flags, value, ..
                        } => Ok(Hit {
                            key: key.to_vec(),
                            flags,
                            value: value.to_vec(),
                        }),
                        _ => Err(unexpected(op, b)),
                    })
                    .collect()
            }))
        })
    }

    // ---- meta ----

    fn read_meta(&mut self, op: &Op) -> Result<Reply, String> {
        let Op::MultiGet { .. } = op else {
            return self.next(|b| {
                Ok(meta::decode(b)?.map(|r| match meta_reply(op, r) {
                    Some(reply) => reply,
                    None => Err(unexpected(op, b)),
                }))
            });
        };
        // `mg <key> k f v q` for each key answers hits only; `mn`'s `MN` ends them.
        let mut hits = Vec::new();
        loop {
            let hit = self.next(|b| {
                Ok(meta::decode(b)?.map(|r| match r {
                    meta::Response::NoOp => Ok(None),
                    meta::Response::Value { flags, data } => meta_hit(flags, data)
                        .map(Some)
                        .ok_or_else(|| unexpected(op, b)),
                    _ => Err(unexpected(op, b)),
                }))
            })?;
            match hit {
                Some(hit) => hits.push(hit),
                None => return Ok(Reply::Values(hits)),
            }
        }
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
                    if r.opcode == opcode::NOOP {
                        if r.opaque != end {
                            return Err(format!("NOOP with opaque {} not {end}", r.opaque));
                        }
                        return Ok(Reply::Values(hits));
                    }
                    let i = r.opaque.wrapping_sub(opaque) as usize;
                    if r.opcode != opcode::GETKQ || r.status != 0 || i >= keys.len() {
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
        self.next(|b| {
            Ok(binary::decode(b)?.map(|p| {
                if p.header.magic != RESPONSE_MAGIC {
                    return Err(format!("binary: response magic {:#x}", p.header.magic));
                }
                Ok(BinaryResponse {
                    opcode: p.header.opcode,
                    status: p.status(),
                    opaque: p.header.opaque,
                    extras: p.extras.to_vec(),
                    key: p.key.to_vec(),
                    value: p.value.to_vec(),
                })
            }))
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

/// What a one-line text answer means for `op`; `None` if it cannot answer it.
fn text_reply(op: &Op, r: Response<'_>) -> Option<Reply> {
    Some(match (op, r) {
        (Op::Set { .. }, Response::Stored) => Reply::Stored,
        (Op::Delete { .. }, Response::Deleted) => Reply::Deleted(true),
        (Op::Delete { .. }, Response::NotFound) => Reply::Deleted(false),
        (Op::Touch { .. }, Response::Touched) => Reply::Touched(true),
        (Op::Touch { .. }, Response::NotFound) => Reply::Touched(false),
        (Op::Incr { .. }, Response::NotFound) => Reply::Incremented(None),
        (Op::Incr { .. }, Response::Number(n)) => Reply::Incremented(Some(n)),
        _ => return None,
    })
}

/// What a meta answer means for `op` (not a multi-get); `None` if it cannot answer it.
fn meta_reply(op: &Op, r: meta::Response<'_>) -> Option<Result<Reply, String>> {
    use meta::Code::{En, Hd, Nf};
    let code = match r {
        meta::Response::Status { code, .. } => Some(code),
        _ => None,
    };
    Some(Ok(match (op, code, r) {
        (Op::Set { .. }, Some(Hd), _) => Reply::Stored,
        (Op::Get { .. }, Some(En), _) => Reply::Value(None),
        (Op::Get { key }, _, meta::Response::Value { flags, data }) => {
            let mut hit = meta_hit(flags, data)?;
            hit.key = key.as_bytes().to_vec();
            Reply::Value(Some(hit))
        }
        (Op::Delete { .. }, Some(Hd), _) => Reply::Deleted(true),
        (Op::Delete { .. }, Some(Nf), _) => Reply::Deleted(false),
        (Op::Touch { .. }, Some(Hd), _) => Reply::Touched(true),
        (Op::Touch { .. }, Some(En), _) => Reply::Touched(false),
        (Op::Incr { .. }, Some(Nf), _) => Reply::Incremented(None),
        (Op::Incr { .. }, _, meta::Response::Value { flags, data })
            if flags.iter().next().is_none() =>
        {
            Reply::Incremented(Some(parse_u64(data)?))
        }
        _ => return None,
    }))
}

/// A `VA` answer as a hit: its data, and the `f` and `k` flags it returned (any other
/// flag is unexpected: `None`).
fn meta_hit(flags: meta::Flags<'_>, data: &[u8]) -> Option<Hit> {
    let mut hit = Hit {
        key: Vec::new(),
        flags: 0,
        value: data.to_vec(),
    };
    for flag in flags.iter() {
        match flag.split_first() {
            Some((b'f', n)) => hit.flags = u32::try_from(parse_u64(n)?).ok()?,
            Some((b'k', k)) => hit.key = k.to_vec(),
            _ => return None,
        }
    }
    Some(hit)
}

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

/// Appends `op` in `dialect`; a binary multi-get takes one opaque per key (GETKQ) plus
/// one for the NOOP that ends it, as a meta multi-get ends with `mn`.
fn encode(dialect: Dialect, op: &Op, opaque: u32, out: &mut Vec<u8>) {
    use Dialect::{Binary, Meta, Text};
    match op {
        Op::Set {
            key,
            flags,
            ttl,
            value,
        } => {
            let key = key.as_bytes();
            match dialect {
                Text => text::set(out, key, *flags, i64::from(*ttl), value),
                Meta => meta::set(out, key, value, format!("F{flags} T{ttl}").as_bytes()),
                Binary => {
                    let extras = binary::store_extras(*flags, *ttl);
                    binary::request(out, opcode::SET, opaque, &extras, key, value);
                }
            }
        }
        Op::Get { key } => match dialect {
            Text => text::get(out, [key]),
            Meta => meta::command(out, b"mg", key.as_bytes(), b"f v"),
            Binary => binary::request(out, opcode::GET, opaque, &[], key.as_bytes(), &[]),
        },
        Op::MultiGet { keys } => match dialect {
            Text => text::get(out, keys),
            Meta => {
                for key in keys {
                    meta::command(out, b"mg", key.as_bytes(), b"k f v q");
                }
                meta::noop(out);
            }
            Binary => {
                for (i, key) in keys.iter().enumerate() {
                    let o = opaque.wrapping_add(i as u32);
                    binary::request(out, opcode::GETKQ, o, &[], key.as_bytes(), &[]);
                }
                let o = opaque.wrapping_add(keys.len() as u32);
                binary::request(out, opcode::NOOP, o, &[], &[], &[]);
            }
        },
        Op::Delete { key } => match dialect {
            Text => text::delete(out, key.as_bytes()),
            Meta => meta::command(out, b"md", key.as_bytes(), b""),
            Binary => binary::request(out, opcode::DELETE, opaque, &[], key.as_bytes(), &[]),
        },
        Op::Incr { key, delta } => match dialect {
            Text => text::incr(out, key.as_bytes(), *delta),
            Meta => meta::command(out, b"ma", key.as_bytes(), format!("D{delta} v").as_bytes()),
            Binary => {
                // Fail when missing rather than create.
                let extras = binary::arith_extras(*delta, 0, binary::NO_CREATE);
                binary::request(out, opcode::INCREMENT, opaque, &extras, key.as_bytes(), &[]);
            }
        },
        Op::Touch { key, ttl } => match dialect {
            Text => text::touch(out, key.as_bytes(), i64::from(*ttl)),
            Meta => meta::command(out, b"mg", key.as_bytes(), format!("T{ttl}").as_bytes()),
            Binary => {
                let extras = ttl.to_be_bytes();
                binary::request(out, opcode::TOUCH, opaque, &extras, key.as_bytes(), &[]);
            }
        },
    }
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

/// The error for an answer `op` cannot get: names the op and shows the answer's line.
fn unexpected(op: &Op, answer: &[u8]) -> String {
    let line = memchr::memmem::find(answer, b"\r\n").unwrap_or(answer.len());
    format!(
        "{}: unexpected answer {:?}",
        op_name(op),
        show(&answer[..line])
    )
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
