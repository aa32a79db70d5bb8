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
use crate::protocol::binary::{opcode, Header, ParseError, HEADER_BYTES};
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
            Err(ParseError::Incomplete) => None,
            Err(ParseError::BadMagic) => {
                self.closing = true;
                None
            }
            Err(ParseError::Fatal {
                opcode,
                opaque,
                status,
            }) => {
                response::put_error(self.out.buf(), ReplyTo { opcode, opaque }, status);
                self.closing = true;
                self.fatal = true;
                None
            }
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
