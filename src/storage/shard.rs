//! One shard. Stub: the storage work replaces it.
