//! The binary protocol (magic 0x80). Not served yet: a binary request closes the
//! connection, as memcached does with `-B ascii`.

use super::Connection;

impl Connection {
    /// Parses and runs one binary request from the front of `input`; returns the bytes
    /// it used, or `None` when `input` holds no whole request yet (or the connection is
    /// closing).
    pub(super) fn binary_step(&mut self, input: &[u8]) -> Option<usize> {
        let _ = input;
        self.closing = true;
        None
    }
}
