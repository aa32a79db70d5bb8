//! Item layout. Stub: the storage work replaces it.
pub(crate) fn footprint(key_len: usize, value_len: usize) -> usize {
    key_len + value_len + 64
}
