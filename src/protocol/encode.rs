//! Response encoders. Stub: the protocol work replaces it.

use super::Response;
use bytes::BufMut;

/// Appends `response` in the classic text protocol.
pub fn text(response: &Response<'_>, out: &mut impl BufMut) {
    let _ = (response, out);
}
