//! Engine-agnostic server logic: the per-connection state machine, its output queue,
//! per-worker statistics and listening-socket setup. Makes no syscalls of its own
//! except in `listener` (socket setup through `std` and `socket2`).
#![forbid(unsafe_code)]

pub mod connection;
pub mod output;
