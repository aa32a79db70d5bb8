//! The per-connection state machine. Stub.
