//! The io_uring proactor: one ring per worker thread, completions drive connections.
//!
//! Owns: the startup [`probe`] and what it found ([`Features`]: the setup flags, the
//! accept and receive modes, and the optional features an operator asked for, receive
//! bundles and zero-copy send, where the kernel has them), and [`run_worker`]. Why the
//! optional features are off by default, and why others were not adopted: measured in
//! `docs/uring-features.md`.
//! The rooms below:
//! - `ring`: ring creation, setup flags tried best first;
//! - `probe`: can io_uring run here, which optional features work;
//! - `buffers`: the provided-buffer rings multishot receives draw from (one per worker
//!   for its connections, one per UDP socket);
//! - `ops`: `user_data` tokens (kind, generation, slot) and the send op record;
//! - `worker`: the event loop (submit, wait, dispatch completions, accept, timer, stop);
//! - `worker/conn`: one connection's slot (receive, send, backpressure, close), a
//!   child of `worker` (the worker's connection handling), not its peer;
//! - `worker/udp`: the worker's UDP sockets (`-U`): multishot recvmsg over a buffer
//!   ring per socket, or the poll + `recvmmsg` fallback, answers by `sendmmsg`.
//!
//! Must not know: protocols. It moves bytes between sockets and [`Conn`](super::Conn)s,
//! following the engine contract in `io/mod.rs`.
//!
//! Invariants: every buffer, iovec and header the kernel may touch is owned by an op
//! record (or a buffer ring: the worker's, or a UDP socket's) that outlives the op's
//! last completion; a connection's descriptor is closed only after all of its ops
//! completed, and its slot is freed only then, so no completion ever reaches a reused
//! slot's new connection.

mod buffers;
mod ops;
mod probe;
mod ring;
mod worker;

#[cfg(test)]
mod tests;

pub use ring::TaskRun;

use super::{Service, UringOptions, WorkerSetup};
use std::fmt;
use std::sync::Arc;

/// What the probe found the kernel supports, and what the engine will use.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Features {
    /// The ring setup flags the kernel took.
    pub taskrun: TaskRun,
    /// One accept op keeps accepting (5.19).
    pub multishot_accept: bool,
    /// One recv op keeps receiving into provided buffers (6.0).
    pub multishot_recv: bool,
    /// Provided-buffer rings (5.19).
    pub buf_ring: bool,
    /// One recvmsg op keeps receiving datagrams, with their peers' addresses, into
    /// provided buffers (6.0): the UDP sockets' receive path (`-U`).
    pub multishot_recvmsg: bool,
    /// Multishot receives take a bundle of provided buffers per completion
    /// (`IORING_RECVSEND_BUNDLE`, 6.10), asked for and supported.
    pub recv_bundle: bool,
    /// Sends of at least this many bytes use `SEND_ZC`/`SENDMSG_ZC` (6.0/6.1), asked
    /// for and supported; 0: never.
    pub send_zc_min_bytes: usize,
}

impl Features {
    /// Whether receives use multishot recv over the buffer ring (else single-shot recv
    /// into a buffer per connection).
    pub fn multishot_recv_in_use(&self) -> bool {
        self.multishot_recv && self.buf_ring
    }

    /// Whether UDP sockets receive with multishot recvmsg over a buffer ring of their
    /// own (else a single-shot poll, re-armed after each `recvmmsg` pump).
    pub fn multishot_recvmsg_in_use(&self) -> bool {
        self.multishot_recvmsg && self.buf_ring
    }

    /// Whether multishot receives take bundles.
    pub fn recv_bundle_in_use(&self) -> bool {
        self.recv_bundle && self.multishot_recv_in_use()
    }
}

impl fmt::Display for Features {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let accept = if self.multishot_accept {
            "multishot accept"
        } else {
            "single-shot accept"
        };
        let recv = if self.multishot_recv_in_use() {
            "multishot recv, buf ring"
        } else {
            "single-shot recv"
        };
        let udp = if self.multishot_recvmsg_in_use() {
            "udp multishot recvmsg"
        } else {
            "udp poll"
        };
        write!(f, "{}, {accept}, {recv}", self.taskrun)?;
        if self.recv_bundle_in_use() {
            f.write_str(", recv bundle")?;
        }
        if self.send_zc_min_bytes > 0 {
            f.write_str(", send zc")?;
        }
        write!(f, ", {udp}")
    }
}

/// Checks that io_uring can be used here by `workers` workers: ring creation at the
/// workers' size and every opcode the engine needs; of the optional features in
/// `wanted`, keeps those the kernel has. `Err` says why io_uring cannot be used.
pub fn probe(workers: usize, wanted: UringOptions) -> Result<Features, String> {
    probe::probe(workers, wanted)
}

/// Runs one proactor worker until shutdown.
pub fn run_worker<S: Service>(
    features: &Features,
    service: Arc<S>,
    setup: WorkerSetup,
) -> std::io::Result<()> {
    worker::Worker::new(features, service, setup)?.run()
}
