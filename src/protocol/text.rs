//! Classic memcached text protocol: request parser. Stub: the protocol work replaces it.

use super::{Limits, ParseError, Parsed};

/// Parses one request from the start of `input`.
pub fn parse<'a>(input: &'a [u8], limits: &Limits) -> Result<Parsed<'a>, ParseError> {
    let _ = (input, limits);
    Err(ParseError::Incomplete)
}
