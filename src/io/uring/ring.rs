//! Creating a worker's ring: the setup flags, tried best first.
//!
//! Owns: the ladder `SINGLE_ISSUER | DEFER_TASKRUN` → `COOP_TASKRUN` → plain, and the
//! one-time log line for each step down.
//!
//! Must not know: what the ring is used for.
//!
//! Invariant: a ring built with `SINGLE_ISSUER` is only ever submitted to from the
//! thread that built it (each worker builds its own ring on its own thread).

use io_uring::IoUring;
use std::fmt;
use std::io;
use std::sync::Once;

/// How completions' task work runs: the setup flags the kernel accepted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TaskRun {
    /// `SINGLE_ISSUER | DEFER_TASKRUN` (6.1): task work runs only when we wait.
    Defer,
    /// `COOP_TASKRUN` (5.19): no interrupting IPIs for task work.
    Coop,
    /// No setup flags.
    #[default]
    Plain,
}

impl fmt::Display for TaskRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskRun::Defer => "defer_taskrun",
            TaskRun::Coop => "coop_taskrun",
            TaskRun::Plain => "plain taskrun",
        })
    }
}

/// Completion queue entries per submission queue entry: multishot ops post many
/// completions per submission.
const CQ_PER_SQ: u32 = 4;

/// Logged once per process: stepping down from `Defer`, from `Coop`.
static STEPPED_DOWN: [Once; 2] = [Once::new(), Once::new()];

impl TaskRun {
    /// The next setup to try when this one is refused.
    fn lower(self) -> Option<TaskRun> {
        match self {
            TaskRun::Defer => Some(TaskRun::Coop),
            TaskRun::Coop => Some(TaskRun::Plain),
            TaskRun::Plain => None,
        }
    }
}

/// Builds a ring of `entries` submission entries with the best setup flags the kernel
/// takes, starting at `best` (a worker starts where the probe ended). Each step down is
/// logged once per process.
pub fn build(entries: u32, best: TaskRun) -> io::Result<(IoUring, TaskRun)> {
    let mut tier = best;
    loop {
        let mut b = IoUring::builder();
        b.setup_cqsize(entries * CQ_PER_SQ);
        match tier {
            TaskRun::Defer => b
                .setup_single_issuer()
                .setup_defer_taskrun()
                .setup_submit_all(),
            TaskRun::Coop => b
                .setup_coop_taskrun()
                .setup_taskrun_flag()
                .setup_submit_all(),
            TaskRun::Plain => &mut b,
        };
        let e = match b.build(entries) {
            Ok(ring) => return Ok((ring, tier)),
            Err(e) => e,
        };
        let Some(lower) = tier.lower().filter(|_| !is_refused(&e)) else {
            return Err(e);
        };
        STEPPED_DOWN[tier as usize]
            .call_once(|| tracing::info!("io_uring: {tier} setup refused ({e}); trying {lower}"));
        tier = lower;
    }
}

/// io_uring as a whole is unavailable: stepping down the flags will not help.
fn is_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSYS | libc::EPERM | libc::EACCES | libc::ENOMEM)
    )
}
