//! ringcache: a memcached-compatible cache server. Stub header.
pub mod io;
pub mod protocol;
pub mod server;
pub mod storage;
