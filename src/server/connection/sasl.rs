//! A binary connection under `-S`: every packet passes here first. The SASL opcodes
//! are framed by `protocol::binary::sasl` and run against `server::sasl` (answers, the
//! connection's [`SaslState`](crate::server::sasl::SaslState), `auth_cmds` and
//! `auth_errors`); VERSION, and every command once authenticated, go on to
//! `binary_step`; any other command before authentication gets memcached's 0x20 `Auth
//! failure.` and the connection is closed after it (memcached 1.6.18's
//! `dispatch_bin_command`). Nothing here touches the store.
//!
//! With `-S` a connection speaks binary only (memcached binds it so): input whose
//! first byte is not 0x80 is closed without an answer once 24 bytes are in, as
//! memcached waits for a whole header before it looks at the magic.

use super::Connection;
use crate::protocol::binary::response::{self, ReplyTo, Status};
use crate::protocol::binary::sasl::{self, SaslCommand, SaslParsed};
use crate::protocol::binary::{opcode, Header, HEADER_BYTES};
use crate::server::sasl::{Outcome, MECHANISMS};
use crate::server::stats::Stat;
use std::sync::Arc;

impl Connection {
    /// One packet of a `-S` connection: the bytes used, or `None` to wait for more
    /// (or when closing).
    pub(super) fn sasl_step(&mut self, input: &[u8]) -> Option<usize> {
        match sasl::parse(input, &self.server.limits) {
            Ok(Some(parsed)) => {
                self.swallow = parsed.swallow;
                self.sasl_command(parsed);
                Some(parsed.consumed)
            }
            Ok(None) => {
                let header = Header::read(input);
                if self.sasl.authenticated() || header.opcode == opcode::VERSION {
                    return self.binary_step(input);
                }
                // memcached answers once the extras and key are in.
                let head =
                    HEADER_BYTES + usize::from(header.extras_len) + usize::from(header.key_len);
                if input.len() < head {
                    return None;
                }
                let to = ReplyTo {
                    opcode: header.opcode,
                    opaque: header.opaque,
                };
                response::put_error(self.out.buf(), to, Status::AuthError);
                self.closing = true;
                self.fatal = true;
                Some(head)
            }
            Err(e) => self.binary_refused(e),
        }
    }

    fn sasl_command(&mut self, parsed: SaslParsed<'_>) {
        let to = ReplyTo {
            opcode: parsed.opcode,
            opaque: parsed.opaque,
        };
        let (mech, data, step) = match parsed.command {
            SaslCommand::ListMechs => {
                self.sasl.list_mechs();
                let out = self.out.buf();
                return response::put(out, to, Status::NoError, 0, &[], &[], MECHANISMS);
            }
            SaslCommand::MechTooLong => {
                return response::put_error(self.out.buf(), to, Status::InvalidArguments)
            }
            SaslCommand::TooLarge => {
                return response::put_error(self.out.buf(), to, Status::OutOfMemory)
            }
            SaslCommand::Auth { mech, data, step } => (mech, data, step),
        };
        let server = Arc::clone(&self.server);
        let outcome = match server.sasl() {
            Some(passwords) => self.sasl.auth(passwords, step, mech, data),
            None => Outcome::Failed,
        };
        let out = self.out.buf();
        match outcome {
            Outcome::Authenticated => {
                response::put(out, to, Status::NoError, 0, &[], &[], b"Authenticated");
            }
            Outcome::Continue => response::put(out, to, Status::AuthContinue, 0, &[], &[], &[]),
            Outcome::Failed => response::put_error(out, to, Status::AuthError),
        }
        if outcome != Outcome::Continue {
            self.stats().incr(Stat::AuthCmds);
        }
        if outcome == Outcome::Failed {
            self.stats().incr(Stat::AuthErrors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{answers, server};
    use crate::server::sasl::SaslPasswords;
    use crate::server::Server;
    use std::sync::Arc;

    fn sasl_server() -> Arc<Server> {
        // -C: CAS 0 in every answer, so repeated sessions answer byte for byte alike.
        let s = server(&["-S", "-C"]);
        s.set_sasl(SaslPasswords::from_bytes(b"alice:secret\n"));
        s
    }

    fn packet(op: u8, extras: &[u8], key: &[u8], value: &[u8]) -> Vec<u8> {
        let body = (extras.len() + key.len() + value.len()) as u32;
        let mut p = vec![0x80, op];
        p.extend_from_slice(&(key.len() as u16).to_be_bytes());
        p.extend_from_slice(&[extras.len() as u8, 0, 0, 0]);
        p.extend_from_slice(&body.to_be_bytes());
        p.extend_from_slice(&[0; 12]);
        [p, extras.to_vec(), key.to_vec(), value.to_vec()].concat()
    }

    /// (status, value) of each answer packet.
    fn statuses(mut out: &[u8]) -> Vec<(u16, Vec<u8>)> {
        let mut list = Vec::new();
        while out.len() >= 24 {
            let body = u32::from_be_bytes([out[8], out[9], out[10], out[11]]) as usize;
            let (key, extras) = (
                usize::from(u16::from_be_bytes([out[2], out[3]])),
                usize::from(out[4]),
            );
            let status = u16::from_be_bytes([out[6], out[7]]);
            list.push((status, out[24 + extras + key..24 + body].to_vec()));
            out = &out[24 + body..];
        }
        assert!(out.is_empty(), "a partial packet: {out:?}");
        list
    }

    fn session() -> Vec<u8> {
        let auth = |data: &[u8]| packet(0x21, b"", b"PLAIN", data);
        [
            packet(0x0b, b"", b"", b""),
            packet(0x20, b"", b"", b""),
            auth(b"\0alice\0bad"),
            packet(0x21, b"", &[b'M'; 40], b"swallowed"),
            auth(b""),
            packet(0x22, b"", b"PLAIN", b"\0alice\0secret"),
            packet(0x01, &[0; 8], b"k", b"v"),
            packet(0x00, b"", b"k", b""),
            packet(0x20, b"", b"", b""),
            packet(0x00, b"", b"k", b""),
            packet(0x0a, b"", b"", b""),
        ]
        .concat()
    }

    #[test]
    fn gates_a_session_as_memcached() {
        let out = answers(&sasl_server(), &[&session()]);
        let want: Vec<(u16, &[u8])> = vec![
            (0, crate::server::VERSION.as_bytes()),
            (0, b"PLAIN"),
            (0x20, b"Auth failure."),
            (0x04, b"Invalid arguments"),
            (0x21, b""),
            (0, b"Authenticated"),
            (0, b""),
            (0, b"v"),
            (0, b"PLAIN"),
            // LIST_MECHS forgot the authentication: refused, closed; NOOP unanswered.
            (0x20, b"Auth failure."),
        ];
        let got = statuses(&out);
        let got: Vec<(u16, &[u8])> = got.iter().map(|(s, v)| (*s, v.as_slice())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn any_split_answers_the_same() {
        let s = sasl_server();
        let input = session();
        let whole = answers(&s, &[&input]);
        for cut in 1..input.len() {
            let split = answers(&s, &[&input[..cut], &input[cut..]]);
            assert_eq!(split, whole, "cut at {cut}");
        }
        // Text is closed unanswered once a whole header's worth is in.
        let text = b"get aaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        let mut conn = s.open(0).unwrap();
        conn.on_input(&text[..23]);
        assert!(!conn.is_closing());
        conn.on_input(&text[23..]);
        assert!(conn.is_closing());
        assert!(answers(&s, &[text]).is_empty());
    }
}
