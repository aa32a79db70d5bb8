//! The epoll reactor worker. Stub.

use super::{Service, WorkerSetup};
use std::sync::Arc;

/// Runs one reactor worker until shutdown.
pub fn run_worker<S: Service>(service: Arc<S>, setup: WorkerSetup) -> std::io::Result<()> {
    let _ = (service, setup);
    Ok(())
}
