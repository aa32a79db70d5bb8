//! memcached's binary protocol (requests start with magic 0x80): the request parser.
//!
//! Owns the framing (24-byte big-endian header, then extras, key and value inside
//! `body_len`), the per-opcode length rules and the decoding of extras. It knows
//! nothing of the store or the connection: [`parse`] turns the front of a byte slice
//! into one [`BinaryRequest`] borrowing its key and value from the input, or says why
//! there is none. The response packets are written by `response`.
//!
//! Invariants:
//! - `consumed` never exceeds the input; `consumed + swallow` is always the whole
//!   packet (24 + `body_len`), so the stream stays framed whatever is refused;
//! - nothing waits for bytes it will not use: an unknown opcode is answered from its
//!   header, an over-sized value is refused once its extras and key are in, and bytes
//!   after the key of a command that carries no value are swallowed, so a hostile
//!   `body_len` never grows a connection's buffer past one item;
//! - the result depends only on the bytes, never on how they were split;
//! - no allocation: keys and values are slices of the input.
//!
//! # memcached 1.6.18's behaviour, verified against the real server
//!
//! Every answer echoes the request's opcode (the quiet one for a quiet command) and
//! opaque; data type 0. Errors carry no extras, no key, CAS 0 and a text body.
//!
//! | input | memcached | here |
//! |---|---|---|
//! | first byte of a connection not 0x80 | the text protocol (`ERROR`…) | same (connection's dialect detection) |
//! | later packet with magic ≠ 0x80 | closed, no answer, earlier answers of the same read lost | [`ParseError::BadMagic`]: closed after earlier answers |
//! | `key_len > body_len` or `key_len + extras_len > body_len` | waits until extras + key bytes past the header have arrived, then 0x81 `Unknown command`, closed | [`ParseError::Fatal`] at once, from the header |
//! | `key_len` > 250, any opcode | 0x04 `Invalid arguments`, closed | [`ParseError::Fatal`] |
//! | lengths outside the opcode's rule (table below) | 0x04 `Invalid arguments`, closed | [`ParseError::Fatal`] |
//! | unassigned opcode (0x1f, 0x25, 0x3d, 0xff), VERBOSITY 0x1b | 0x81 `Unknown command`, body swallowed; a value-only body stays in sync, but extras or a key are skipped twice and memcached 1.6.18 loses sync | [`Command::Unknown`]: the body is skipped once |
//! | SASL_LIST_MECHS 0x20 with an empty body; SASL_AUTH/STEP 0x21/0x22 with a key and no extras | 0x81 `Unknown command` (no SASL), connection lives | [`Command::Unknown`] (with `-S` the connection reads them with [`sasl::parse`] first) |
//! | SASL ops with other lengths | 0x04, closed | [`ParseError::Fatal`] |
//! | SET/ADD/REPLACE/APPEND/PREPEND value over `-I` (memcached's item arithmetic; non-zero flags cost 4 more bytes) | 0x03 `Too large.` (quiet or not), value swallowed; SET/SETQ also unlink the old value; no stats counted | [`Command::TooLarge`] |
//! | TOUCH/GAT*/STAT with bytes after the key | memcached reads the extra bytes as the next header (loses sync) | answered, extra bytes swallowed |
//! | data type and vbucket fields | ignored | ignored |
//!
//! Length rules (anything else is [`ParseError::Fatal`] with 0x04):
//!
//! | opcodes | extras | key | body |
//! |---|---|---|---|
//! | GET GETQ GETK GETKQ | 0 | > 0 | = key |
//! | SET ADD REPLACE (+Q) | 8 (flags, exptime) | > 0 | ≥ key + 8 |
//! | APPEND PREPEND (+Q) | 0 | > 0 | any |
//! | DELETE(Q) | 0 | > 0 | = key |
//! | INCREMENT DECREMENT (+Q) | 20 (delta u64, initial u64, exptime u32) | > 0 | = key + 20 |
//! | TOUCH GAT GATQ GATK GATKQ | 4 (exptime) | > 0 | any |
//! | FLUSH(Q) | 0 or 4 (delay) | 0 | = extras |
//! | STAT | 0 | any | any |
//! | NOOP VERSION QUIT(Q) | 0 | 0 | 0 |
//!
//! Command answers (checked opcode by opcode; the connection executes them):
//!
//! | request | answer |
//! |---|---|
//! | GET/GETK hit | extras = flags (4 bytes), GETK also the key, value, CAS of the item; sent for GETQ/GETKQ too |
//! | GET miss / GETK miss | 0x01 `Not found` / 0x01 with the key as the only body; GETQ/GETKQ: nothing |
//! | GAT GATQ GATK GATKQ | as GET…, setting the exptime; stats count `cmd_touch` + `touch_hits`/`touch_misses` only |
//! | TOUCH hit / miss | extras = flags, no value, item CAS / 0x01 `Not found` |
//! | SET ADD REPLACE APPEND PREPEND success | empty, CAS of the new item (quiet: nothing) |
//! | non-zero CAS on SET/ADD/REPLACE | compare-and-swap (also ADD): mismatch 0x02 `Data exists for key.`, missing 0x01 `Not found` |
//! | non-zero CAS on APPEND/PREPEND | mismatch 0x02; missing 0x05 `Not stored.` |
//! | ADD on a live key / REPLACE on a missing one / APPEND on a missing one | 0x02 / 0x01 / 0x05 `Not stored.` |
//! | DELETE hit / miss / CAS mismatch | empty, CAS 0 / 0x01 / 0x02 |
//! | INCR/DECR hit | 8-byte big-endian new value, item CAS (decr floors at 0, incr wraps) |
//! | INCR/DECR miss, exptime ≠ 0xffffffff | item created holding `initial` (delta not applied), answered `initial`; no stats |
//! | INCR/DECR miss, exptime = 0xffffffff | 0x01, `incr_misses`/`decr_misses` |
//! | INCR/DECR non-numeric / CAS mismatch (checked first) | 0x06 `Non-numeric server-side value for incr or decr` / 0x02; no stats |
//! | quiet errors (ADDQ on a live key, DELETEQ miss, SETQ CAS mismatch…) | sent |
//! | FLUSH(Q) | empty (quiet: nothing), `cmd_flush` |
//! | NOOP / VERSION | empty / the version string as value |
//! | QUIT / QUITQ | empty answer then closed / closed silently |
//! | STAT, empty key | general stats, one packet per stat (key = name, value), then an empty packet |
//! | STAT `settings…`, `reset…` (prefix match) | settings / only the terminator |
//! | STAT `items`, `slabs`, `sizes` | that group, terminator |
//! | STAT `detail on`, `detail off` | only the terminator |
//! | STAT anything else (`conns`, `bogus`, `detail x`) | 0x01 `Not found` |

use super::{Limits, StatsGroup, StoreMode, KEY_MAX_BYTES};

pub mod response;
pub mod sasl;
#[cfg(test)]
mod tests;

pub use response::Status;

/// The first byte of every request.
pub const REQUEST_MAGIC: u8 = 0x80;
/// The first byte of every response.
pub const RESPONSE_MAGIC: u8 = 0x81;
/// Bytes of the fixed header before extras, key and value.
pub const HEADER_BYTES: usize = 24;
/// Extras of a INCREMENT/DECREMENT: an exptime that means "do not create".
pub const NO_CREATE: u32 = u32::MAX;

/// memcached's opcodes (`protocol_binary.h`).
pub mod opcode {
    pub const GET: u8 = 0x00;
    pub const SET: u8 = 0x01;
    pub const ADD: u8 = 0x02;
    pub const REPLACE: u8 = 0x03;
    pub const DELETE: u8 = 0x04;
    pub const INCREMENT: u8 = 0x05;
    pub const DECREMENT: u8 = 0x06;
    pub const QUIT: u8 = 0x07;
    pub const FLUSH: u8 = 0x08;
    pub const GETQ: u8 = 0x09;
    pub const NOOP: u8 = 0x0a;
    pub const VERSION: u8 = 0x0b;
    pub const GETK: u8 = 0x0c;
    pub const GETKQ: u8 = 0x0d;
    pub const APPEND: u8 = 0x0e;
    pub const PREPEND: u8 = 0x0f;
    pub const STAT: u8 = 0x10;
    pub const SETQ: u8 = 0x11;
    pub const ADDQ: u8 = 0x12;
    pub const REPLACEQ: u8 = 0x13;
    pub const DELETEQ: u8 = 0x14;
    pub const INCREMENTQ: u8 = 0x15;
    pub const DECREMENTQ: u8 = 0x16;
    pub const QUITQ: u8 = 0x17;
    pub const FLUSHQ: u8 = 0x18;
    pub const APPENDQ: u8 = 0x19;
    pub const PREPENDQ: u8 = 0x1a;
    pub const VERBOSITY: u8 = 0x1b;
    pub const TOUCH: u8 = 0x1c;
    pub const GAT: u8 = 0x1d;
    pub const GATQ: u8 = 0x1e;
    pub const SASL_LIST_MECHS: u8 = 0x20;
    pub const SASL_AUTH: u8 = 0x21;
    pub const SASL_STEP: u8 = 0x22;
    pub const GATK: u8 = 0x23;
    pub const GATKQ: u8 = 0x24;
}

/// A request header, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub magic: u8,
    pub opcode: u8,
    pub key_len: u16,
    pub extras_len: u8,
    pub data_type: u8,
    pub vbucket: u16,
    pub body_len: u32,
    pub opaque: u32,
    pub cas: u64,
}

impl Header {
    /// Decodes the first [`HEADER_BYTES`] of `bytes` (which must hold them).
    #[inline]
    pub fn read(bytes: &[u8]) -> Header {
        Header {
            magic: bytes[0],
            opcode: bytes[1],
            key_len: u16::from_be_bytes([bytes[2], bytes[3]]),
            extras_len: bytes[4],
            data_type: bytes[5],
            vbucket: u16::from_be_bytes([bytes[6], bytes[7]]),
            body_len: be_u32(&bytes[8..12]),
            opaque: be_u32(&bytes[12..16]),
            cas: be_u64(&bytes[16..24]),
        }
    }
}

/// What a request asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command<'a> {
    /// GET GETQ GETK GETKQ, and with `touch` GAT GATQ GATK GATKQ.
    Get {
        key: &'a [u8],
        /// GAT*: the new exptime to set on a hit.
        touch: Option<u32>,
        /// GETK*/GATK*: answers carry the key.
        with_key: bool,
        /// GETQ GETKQ GATQ GATKQ: a miss gets no answer.
        quiet: bool,
    },
    Touch {
        key: &'a [u8],
        exptime: u32,
    },
    /// SET ADD REPLACE APPEND PREPEND and their quiet forms (`Set`, `Add`, `Replace`,
    /// `Append`, `Prepend`; never `Cas`: a non-zero header CAS asks for one). Append
    /// and prepend carry flags and exptime 0.
    Store {
        mode: StoreMode,
        key: &'a [u8],
        flags: u32,
        exptime: u32,
        value: &'a [u8],
        quiet: bool,
    },
    /// A store command whose value is over the item size limit: answer 0x03 (quiet or
    /// not), unlink `key` if `mode` is `Set`; the value is swallowed.
    TooLarge {
        mode: StoreMode,
        key: &'a [u8],
    },
    Delete {
        key: &'a [u8],
        quiet: bool,
    },
    /// INCREMENT DECREMENT and their quiet forms.
    Arith(Arith<'a>),
    Flush {
        delay_secs: u32,
        quiet: bool,
    },
    Noop,
    Version,
    Quit {
        quiet: bool,
    },
    /// STAT: the group its key names; `None` for memcached's `detail on|off`, answered
    /// with the terminator alone.
    Stat {
        group: Option<StatsGroup<'a>>,
    },
    /// An opcode memcached does not serve here (VERBOSITY, SASL without SASL, anything
    /// unassigned): answer 0x81 `Unknown command`; the body is swallowed.
    Unknown,
}

/// An INCREMENT or DECREMENT (or their quiet forms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arith<'a> {
    pub key: &'a [u8],
    pub incr: bool,
    pub delta: u64,
    pub initial: u64,
    /// Exptime of a created item; [`NO_CREATE`]: do not create.
    pub exptime: u32,
    pub quiet: bool,
}

/// One binary request: the header fields every answer needs, and its command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BinaryRequest<'a> {
    pub opcode: u8,
    pub opaque: u32,
    /// The header CAS (0: none).
    pub cas: u64,
    pub command: Command<'a>,
}

/// A parsed request, the bytes it used, and the bytes after them that belong to it
/// but are not needed (they may not have arrived yet): drop them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parsed<'a> {
    pub request: BinaryRequest<'a>,
    pub consumed: usize,
    pub swallow: usize,
}

/// Why [`parse`] produced no request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Not enough bytes yet: read more and call again.
    Incomplete,
    /// The packet does not start with [`REQUEST_MAGIC`]: close without an answer.
    BadMagic,
    /// Impossible lengths: answer `status` (as `opcode`, `opaque`), then close.
    Fatal {
        opcode: u8,
        opaque: u32,
        status: Status,
    },
}

/// How an opcode's packet is framed once its lengths are valid.
enum Shape {
    /// The body is extras and key only.
    Exact,
    /// A value follows the key (store commands).
    Value,
    /// Bytes after the key are ignored (swallowed).
    IgnoreTail,
    /// The whole body is ignored; answered "Unknown command".
    Unknown,
}

/// The key of the whole GET-family or SET/SETQ packet at the front of `input`, and the
/// packet's length; `None` for anything else (another opcode, a packet not fully
/// arrived, lengths that do not fit). A cheap look ahead for a connection that wants to
/// prefetch what a pipelined batch will read: [`parse`] still decides everything.
pub fn peek_key(input: &[u8]) -> Option<(&[u8], usize)> {
    use opcode::{GET, GETK, GETKQ, GETQ, SET, SETQ};
    let header = input.first_chunk::<HEADER_BYTES>()?;
    if header[0] != REQUEST_MAGIC || !matches!(header[1], GET | GETQ | GETK | GETKQ | SET | SETQ) {
        return None;
    }
    let key_len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let extras_len = usize::from(header[4]);
    let body_len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    if key_len == 0 || key_len > KEY_MAX_BYTES || extras_len + key_len > body_len {
        return None;
    }
    let packet = input.get(..HEADER_BYTES.checked_add(body_len)?)?;
    let key_start = HEADER_BYTES + extras_len;
    Some((&packet[key_start..key_start + key_len], packet.len()))
}

/// Parses one request from the start of `input`.
pub fn parse<'a>(input: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, ParseError> {
    match input.first() {
        None => return Err(ParseError::Incomplete),
        Some(&REQUEST_MAGIC) => {}
        Some(_) => return Err(ParseError::BadMagic),
    }
    if input.len() < HEADER_BYTES {
        return Err(ParseError::Incomplete);
    }
    let h = Header::read(input);
    let fatal = |status| ParseError::Fatal {
        opcode: h.opcode,
        opaque: h.opaque,
        status,
    };
    let (ext_len, key_len) = (usize::from(h.extras_len), usize::from(h.key_len));
    let body_len = h.body_len as usize;
    if key_len + ext_len > body_len {
        return Err(fatal(Status::UnknownCommand));
    }
    if key_len > KEY_MAX_BYTES {
        return Err(fatal(Status::InvalidArguments));
    }
    let shape = shape(&h).ok_or(fatal(Status::InvalidArguments))?;
    let request = |command| BinaryRequest {
        opcode: h.opcode,
        opaque: h.opaque,
        cas: h.cas,
        command,
    };
    if let Shape::Unknown = shape {
        return Ok(Parsed {
            request: request(Command::Unknown),
            consumed: HEADER_BYTES,
            swallow: body_len,
        });
    }
    let fixed = HEADER_BYTES + ext_len + key_len;
    let Some(head) = input.get(HEADER_BYTES..fixed) else {
        return Err(ParseError::Incomplete);
    };
    let (extras, key) = head.split_at(ext_len);
    let tail = body_len - ext_len - key_len;
    let (value, consumed, swallow) = match shape {
        Shape::Value => {
            let flags = if ext_len == 8 {
                be_u32(&extras[..4])
            } else {
                0
            };
            if limits.too_large(key_len, tail, flags) {
                let mode = store_mode(h.opcode);
                let command = Command::TooLarge { mode, key };
                return Ok(Parsed {
                    request: request(command),
                    consumed: fixed,
                    swallow: tail,
                });
            }
            let value = input
                .get(fixed..fixed + tail)
                .ok_or(ParseError::Incomplete)?;
            (value, fixed + tail, 0)
        }
        _ => (&[][..], fixed, tail),
    };
    Ok(Parsed {
        request: request(command(h.opcode, extras, key, value)),
        consumed,
        swallow,
    })
}

/// The framing of `h`'s opcode if its lengths follow memcached's rule for it (see the
/// module table); `None` if they do not.
fn shape(h: &Header) -> Option<Shape> {
    use opcode::*;
    let (ext, key, body) = (h.extras_len, usize::from(h.key_len), h.body_len as usize);
    let (ok, shape) = match h.opcode {
        GET | GETQ | GETK | GETKQ | DELETE | DELETEQ => {
            (ext == 0 && key > 0 && body == key, Shape::Exact)
        }
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ => (ext == 8 && key > 0, Shape::Value),
        APPEND | APPENDQ | PREPEND | PREPENDQ => (ext == 0 && key > 0, Shape::Value),
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ => {
            (ext == 20 && key > 0 && body == key + 20, Shape::Exact)
        }
        TOUCH | GAT | GATQ | GATK | GATKQ => (ext == 4 && key > 0, Shape::IgnoreTail),
        FLUSH | FLUSHQ => (
            key == 0 && (ext == 0 || ext == 4) && body == usize::from(ext),
            Shape::Exact,
        ),
        STAT => (ext == 0, Shape::IgnoreTail),
        NOOP | VERSION | QUIT | QUITQ => (body == 0, Shape::Exact),
        SASL_LIST_MECHS => (body == 0, Shape::Unknown),
        SASL_AUTH | SASL_STEP => (ext == 0 && key > 0, Shape::Unknown),
        _ => (true, Shape::Unknown),
    };
    ok.then_some(shape)
}

fn store_mode(op: u8) -> StoreMode {
    use opcode::*;
    match op {
        ADD | ADDQ => StoreMode::Add,
        REPLACE | REPLACEQ => StoreMode::Replace,
        APPEND | APPENDQ => StoreMode::Append,
        PREPEND | PREPENDQ => StoreMode::Prepend,
        _ => StoreMode::Set,
    }
}

/// The command of a packet whose lengths [`shape`] accepted (and not `Unknown`).
fn command<'a>(op: u8, extras: &[u8], key: &'a [u8], value: &'a [u8]) -> Command<'a> {
    use opcode::*;
    let quiet = matches!(
        op,
        GETQ | GETKQ
            | GATQ
            | GATKQ
            | SETQ
            | ADDQ
            | REPLACEQ
            | APPENDQ
            | PREPENDQ
            | DELETEQ
            | INCREMENTQ
            | DECREMENTQ
            | FLUSHQ
            | QUITQ
    );
    match op {
        GET | GETQ | GETK | GETKQ => Command::Get {
            key,
            touch: None,
            with_key: matches!(op, GETK | GETKQ),
            quiet,
        },
        GAT | GATQ | GATK | GATKQ => Command::Get {
            key,
            touch: Some(be_u32(extras)),
            with_key: matches!(op, GATK | GATKQ),
            quiet,
        },
        TOUCH => Command::Touch {
            key,
            exptime: be_u32(extras),
        },
        SET | SETQ | ADD | ADDQ | REPLACE | REPLACEQ | APPEND | APPENDQ | PREPEND | PREPENDQ => {
            let (flags, exptime) = if extras.len() == 8 {
                (be_u32(&extras[..4]), be_u32(&extras[4..]))
            } else {
                (0, 0)
            };
            Command::Store {
                mode: store_mode(op),
                key,
                flags,
                exptime,
                value,
                quiet,
            }
        }
        DELETE | DELETEQ => Command::Delete { key, quiet },
        INCREMENT | INCREMENTQ | DECREMENT | DECREMENTQ => Command::Arith(Arith {
            key,
            incr: matches!(op, INCREMENT | INCREMENTQ),
            delta: be_u64(&extras[..8]),
            initial: be_u64(&extras[8..16]),
            exptime: be_u32(&extras[16..]),
            quiet,
        }),
        FLUSH | FLUSHQ => Command::Flush {
            delay_secs: if extras.is_empty() { 0 } else { be_u32(extras) },
            quiet,
        },
        NOOP => Command::Noop,
        VERSION => Command::Version,
        QUIT | QUITQ => Command::Quit { quiet },
        STAT => Command::Stat {
            group: stats_group(key),
        },
        _ => Command::Unknown,
    }
}

/// The stats group a STAT key names, matched as memcached's binary STAT does
/// (`reset` and `settings` by prefix; `detail on|off` → `None`: terminator only).
pub fn stats_group(key: &[u8]) -> Option<StatsGroup<'_>> {
    Some(match key {
        b"" => StatsGroup::General,
        b"items" => StatsGroup::Items,
        b"slabs" => StatsGroup::Slabs,
        b"sizes" => StatsGroup::Sizes,
        _ if key.starts_with(b"reset") => StatsGroup::Reset,
        _ if key.starts_with(b"settings") => StatsGroup::Settings,
        _ if key.starts_with(b"detail on") || key.starts_with(b"detail off") => return None,
        _ => StatsGroup::Other(key),
    })
}

/// The big-endian `u32` in the first 4 bytes of `b`.
fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// The big-endian `u64` in the first 8 bytes of `b`.
fn be_u64(b: &[u8]) -> u64 {
    let mut bytes = [0; 8];
    bytes.copy_from_slice(&b[..8]);
    u64::from_be_bytes(bytes)
}
