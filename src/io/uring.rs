//! The io_uring proactor worker. Stub: the proactor work replaces it.

use super::{Service, WorkerSetup};
use std::sync::Arc;

/// What the probe found the kernel supports, and what the engine will use.
#[derive(Clone, Debug, Default)]
pub struct Features {}

impl std::fmt::Display for Features {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("none")
    }
}

/// Checks that io_uring can be used here: ring creation and every opcode the engine
/// needs. `Err` says why not.
pub fn probe() -> Result<Features, String> {
    Err("the io_uring engine is not built yet".to_string())
}

/// Runs one proactor worker until shutdown.
pub fn run_worker<S: Service>(
    features: &Features,
    service: Arc<S>,
    setup: WorkerSetup,
) -> std::io::Result<()> {
    let _ = (features, service, setup);
    Err(std::io::Error::other(
        "the io_uring engine is not built yet",
    ))
}
