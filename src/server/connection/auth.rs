//! An unauthenticated connection (`-Y`): its input goes through `server::auth::step`,
//! which answers everything but an authentication `set` with `CLIENT_ERROR
//! unauthenticated`; a good one makes the connection speak text. Counts `auth_cmds`
//! and `auth_errors`. Nothing here touches the store.

use super::{Connection, Dialect};
use crate::server::auth::{self, Step};
use crate::server::stats::Stat;

impl Connection {
    /// One step of an unauthenticated connection's input: the bytes used, or `None`
    /// to wait for more (or when closing).
    pub(super) fn auth_step(&mut self, input: &[u8]) -> Option<usize> {
        let Some(credentials) = self.server.auth() else {
            self.dialect = Dialect::Text;
            return Some(0);
        };
        let step = auth::step(credentials, &mut self.auth_state, input);
        match step {
            Step::Incomplete => None,
            Step::Close => {
                self.closing = true;
                None
            }
            Step::Answered {
                consumed,
                reply,
                authenticated,
                attempt,
            } => {
                if attempt {
                    self.stats().incr(Stat::AuthCmds);
                    if !authenticated {
                        self.stats().incr(Stat::AuthErrors);
                    }
                }
                if authenticated {
                    self.dialect = Dialect::Text;
                }
                self.out.extend(reply);
                Some(consumed)
            }
        }
    }
}
