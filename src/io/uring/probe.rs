//! The startup probe: can io_uring run here, and which optional features work.
//!
//! Owns: reading `kernel.io_uring_disabled`, turning a refused `io_uring_setup` into a
//! reason a user can act on, the opcode check, and small live tests of the optional
//! features (a provided-buffer ring, a multishot recv on a socketpair, a multishot
//! recvmsg on a loopback UDP socket, a multishot accept on an abstract unix socket) — a
//! kernel version says less than a try; the feature flags and opcodes of the features
//! an operator may ask for (receive bundles, zero-copy send); and one
//! build of every worker's full-size ring, which older kernels charge to the
//! locked-memory limit.
//!
//! Must not know: connections, the service.
//!
//! Invariant: nothing the probe lends the kernel is freed while an op may still use it
//! (an op that did not finish in time leaks its buffer ring instead).

use super::buffers::BufRing;
use super::ops;
use super::ring::{self, TaskRun};
use super::worker::RING_ENTRIES;
use super::{Features, UringOptions};
use io_uring::{cqueue, opcode, squeue, types, IoUring, Probe};
use std::io::{self, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

/// Every opcode the engine submits.
const REQUIRED: &[(u8, &str)] = &[
    (opcode::Accept::CODE, "ACCEPT"),
    (opcode::Recv::CODE, "RECV"),
    (opcode::Send::CODE, "SEND"),
    (opcode::SendMsg::CODE, "SENDMSG"),
    (opcode::Timeout::CODE, "TIMEOUT"),
    (opcode::PollAdd::CODE, "POLL_ADD"),
    (opcode::AsyncCancel::CODE, "ASYNC_CANCEL"),
    (opcode::Close::CODE, "CLOSE"),
];

/// How long one live feature test may take before it counts as unsupported.
const TRY_FOR: Duration = Duration::from_secs(1);

const PROBE_BGID: u16 = 0;

pub fn probe(workers: usize, wanted: UringOptions) -> Result<Features, String> {
    let disabled = std::fs::read_to_string("/proc/sys/kernel/io_uring_disabled")
        .ok()
        .and_then(|s| s.trim().parse::<u8>().ok());
    if disabled == Some(2) {
        return Err("kernel.io_uring_disabled=2: io_uring is disabled for every process".into());
    }
    let (mut ring, taskrun) =
        ring::build(8, TaskRun::Defer).map_err(|e| setup_error(&e, disabled))?;

    let mut ops = Probe::new();
    ring.submitter()
        .register_probe(&mut ops)
        .map_err(|e| format!("io_uring_register(PROBE): {e} (kernel older than 5.6?)"))?;
    let missing: Vec<&str> = REQUIRED
        .iter()
        .filter(|(code, _)| !ops.is_supported(*code))
        .map(|(_, name)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the kernel lacks io_uring ops {}",
            missing.join(", ")
        ));
    }

    let mut features = Features {
        taskrun,
        ..Features::default()
    };
    if ring.params().is_feature_ext_arg() {
        features.multishot_accept = try_multishot_accept(&mut ring).unwrap_or_else(|e| {
            tracing::debug!("io_uring probe: multishot accept not testable ({e})");
            // DEFER_TASKRUN (6.1) implies multishot accept (5.19).
            taskrun == TaskRun::Defer
        });
        if let Ok(bufs) = BufRing::new(2, 64) {
            // SAFETY: if registration fails `bufs` is dropped unregistered; otherwise
            // `try_multishot_recv` frees it only after the group was unregistered with
            // no op in flight, and leaks it otherwise.
            if unsafe { bufs.register(&ring.submitter(), PROBE_BGID) }.is_ok() {
                features.buf_ring = true;
                match try_multishot_recv(&mut ring, bufs, false) {
                    Ok(yes) => features.multishot_recv = yes,
                    Err(e) => tracing::debug!("io_uring probe: multishot recv failed ({e})"),
                }
            }
        }
        if features.buf_ring && ops.is_supported(opcode::RecvMsg::CODE) {
            features.multishot_recvmsg = try_multishot_recvmsg(&mut ring).unwrap_or_else(|e| {
                tracing::debug!("io_uring probe: multishot recvmsg failed ({e})");
                false
            });
        }
    }
    // Bundles are a flag of the multishot recv the engine already uses: the kernel
    // advertises them (6.10) as a feature bit, but the byte cap the engine puts on a
    // bundle needs a newer kernel (older ones refuse a length on a multishot recv), so
    // the capped receive is tried live. Reading a bundle relies on completions arriving
    // in the order buffers were taken, which DEFER_TASKRUN guarantees.
    if wanted.bundle
        && features.multishot_recv
        && taskrun == TaskRun::Defer
        && ring.params().is_feature_recvsend_bundle()
    {
        // Buffers as large as the cap: a bundle that empties the ring ends the
        // multishot, so the ring must keep some after the one the byte lands in.
        if let Ok(bufs) = BufRing::new(4, ops::BUNDLE_MAX_BYTES as usize) {
            // SAFETY: as for the first buffer ring above.
            if unsafe { bufs.register(&ring.submitter(), PROBE_BGID) }.is_ok() {
                match try_multishot_recv(&mut ring, bufs, true) {
                    Ok(yes) => features.recv_bundle = yes,
                    Err(e) => tracing::debug!("io_uring probe: bundle recv failed ({e})"),
                }
            }
        }
    }
    if wanted.send_zc_min_bytes > 0 {
        if ops.is_supported(opcode::SendZc::CODE) && ops.is_supported(opcode::SendMsgZc::CODE) {
            features.send_zc_min_bytes = wanted.send_zc_min_bytes;
        } else {
            tracing::warn!("-o uring_send_zc: the kernel lacks SEND_ZC/SENDMSG_ZC; copying sends");
        }
    }
    // Kernels before 5.12 charge ring memory to RLIMIT_MEMLOCK (64 KiB by default): an
    // 8-entry ring fits where the workers' rings do not. Build them all once here, so
    // that `auto` falls back to epoll now rather than a worker failing after start.
    let rings: io::Result<Vec<_>> = (0..workers)
        .map(|_| ring::build(RING_ENTRIES, taskrun))
        .collect();
    rings.map_err(|e| {
        format!(
            "{workers} ring(s) of {RING_ENTRIES} entries: {}",
            setup_error(&e, disabled)
        )
    })?;
    Ok(features)
}

fn setup_error(e: &io::Error, disabled: Option<u8>) -> String {
    let hint = match (e.raw_os_error(), disabled) {
        (Some(libc::EPERM), Some(n)) if n > 0 => format!(" (kernel.io_uring_disabled={n})"),
        (Some(libc::EPERM), _) => " (a seccomp profile, e.g. a container's default?)".into(),
        (Some(libc::ENOSYS), _) => " (kernel without io_uring, or filtered by seccomp)".into(),
        (Some(libc::ENOMEM), _) => " (locked-memory limit too low? see ulimit -l)".into(),
        _ => String::new(),
    };
    format!("io_uring_setup: {e}{hint}")
}

/// A multishot recv (with `bundle`, a capped bundle recv) delivers a byte already
/// waiting and stays armed. `bufs` is registered as [`PROBE_BGID`]; it is freed only
/// once no op can use it (else leaked).
fn try_multishot_recv(ring: &mut IoUring, bufs: BufRing, bundle: bool) -> io::Result<bool> {
    let mut bufs = ManuallyDrop::new(bufs);
    let outcome = recv_once(ring, &mut bufs, bundle);
    if matches!(outcome, Ok(Some(_))) && ring.submitter().unregister_buf_ring(PROBE_BGID).is_ok() {
        drop(ManuallyDrop::into_inner(bufs));
    }
    Ok(outcome?.unwrap_or(false))
}

/// `Ok(None)`: the recv did not finish in time and may still use `bufs`.
fn recv_once(ring: &mut IoUring, bufs: &mut BufRing, bundle: bool) -> io::Result<Option<bool>> {
    let (a, b) = UnixStream::pair()?;
    (&b).write_all(b"x")?;
    let recv = ops::recv_multishot(a.as_raw_fd(), PROBE_BGID, bundle).user_data(1);
    push(ring, &recv)?;
    let Some(first) = wait_for(ring, |c| c.user_data() == 1) else {
        return Ok(None);
    };
    if let Some(bid) = cqueue::buffer_select(first.flags()) {
        bufs.recycle(bid);
    }
    let armed = cqueue::more(first.flags());
    if armed {
        push(ring, &opcode::AsyncCancel::new(1).build().user_data(2))?;
        if wait_for(ring, |c| c.user_data() == 1 && !cqueue::more(c.flags())).is_none() {
            return Ok(None);
        }
    }
    Ok(Some(first.result() == 1 && armed))
}

/// A multishot recvmsg over a buffer ring delivers a waiting UDP datagram with its
/// sender's address and stays armed. The buffer ring is freed only once no op can use
/// it (else leaked).
fn try_multishot_recvmsg(ring: &mut IoUring) -> io::Result<bool> {
    let bufs = ManuallyDrop::new(BufRing::new(2, 256)?);
    // SAFETY: if registration fails `bufs` is dropped unregistered; otherwise it is
    // freed below only after the group was unregistered with no op in flight, and
    // leaked otherwise.
    if let Err(e) = unsafe { bufs.register(&ring.submitter(), PROBE_BGID) } {
        drop(ManuallyDrop::into_inner(bufs));
        return Err(e);
    }
    // SAFETY: msghdr is plain data; all zeroes is a valid, empty header.
    let mut msg: ManuallyDrop<Box<libc::msghdr>> =
        ManuallyDrop::new(Box::new(unsafe { std::mem::zeroed() }));
    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
    let outcome = recvmsg_once(ring, &bufs, &msg);
    if matches!(outcome, Ok(Some(_))) && ring.submitter().unregister_buf_ring(PROBE_BGID).is_ok() {
        drop(ManuallyDrop::into_inner(bufs));
        drop(ManuallyDrop::into_inner(msg));
    }
    Ok(outcome?.unwrap_or(false))
}

/// `Ok(None)`: the recvmsg did not finish in time and may still use `bufs` and `msg`.
fn recvmsg_once(
    ring: &mut IoUring,
    bufs: &BufRing,
    msg: &libc::msghdr,
) -> io::Result<Option<bool>> {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0")?;
    socket.send_to(b"x", socket.local_addr()?)?;
    let recv = opcode::RecvMsgMulti::new(types::Fd(socket.as_raw_fd()), msg, PROBE_BGID)
        .build()
        .user_data(5);
    push(ring, &recv)?;
    let Some(first) = wait_for(ring, |c| c.user_data() == 5) else {
        return Ok(None);
    };
    let mut got = false;
    if let (Some(bid), Ok(len)) = (
        cqueue::buffer_select(first.flags()),
        usize::try_from(first.result()),
    ) {
        // SAFETY: the completion handed buffer `bid` to us with `len` bytes, and it is
        // never given back (the ring is unregistered or leaked next).
        let filled = unsafe { bufs.filled(bid, len) };
        got = types::RecvMsgOut::parse(filled, msg).is_ok_and(|out| {
            out.payload_data() == b"x" && out.name_data().len() == size_of::<libc::sockaddr_in>()
        });
    }
    let armed = cqueue::more(first.flags());
    if armed {
        push(ring, &opcode::AsyncCancel::new(5).build().user_data(6))?;
        if wait_for(ring, |c| c.user_data() == 5 && !cqueue::more(c.flags())).is_none() {
            return Ok(None);
        }
    }
    Ok(Some(got && armed))
}

/// A multishot accept takes a waiting connection and stays armed.
fn try_multishot_accept(ring: &mut IoUring) -> io::Result<bool> {
    use std::os::linux::net::SocketAddrExt;
    let name = format!(
        "ringcache-probe-{}-{:?}",
        std::process::id(),
        Instant::now()
    );
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
    let listener = UnixListener::bind_addr(&addr)?;
    let _client = UnixStream::connect_addr(&addr)?;
    let accept = opcode::AcceptMulti::new(types::Fd(listener.as_raw_fd()))
        .flags(libc::SOCK_CLOEXEC)
        .build()
        .user_data(3);
    push(ring, &accept)?;
    let Some(first) = wait_for(ring, |c| c.user_data() == 3) else {
        return Ok(false);
    };
    if first.result() >= 0 {
        // SAFETY: a successful accept returns a new descriptor that nothing else owns.
        drop(unsafe { OwnedFd::from_raw_fd(first.result()) });
    }
    let armed = cqueue::more(first.flags());
    if armed {
        push(ring, &opcode::AsyncCancel::new(3).build().user_data(4))?;
        wait_for(ring, |c| c.user_data() == 3 && !cqueue::more(c.flags()));
    }
    Ok(first.result() >= 0 && armed)
}

fn push(ring: &mut IoUring, entry: &squeue::Entry) -> io::Result<()> {
    // SAFETY: the probe's entries point at nothing, or at a buffer ring (and a
    // recvmsg's msghdr) that stays alive until their completion (or is leaked).
    unsafe { ring.submission().push(entry) }
        .map_err(|_| io::Error::other("probe ring unexpectedly full"))
}

/// Submits, then waits (at most [`TRY_FOR`]) for a completion `want` accepts.
fn wait_for(
    ring: &mut IoUring,
    mut want: impl FnMut(&cqueue::Entry) -> bool,
) -> Option<cqueue::Entry> {
    let deadline = Instant::now() + TRY_FOR;
    loop {
        if let Some(found) = ring.completion().find(|c| want(c)) {
            return Some(found);
        }
        let left = deadline.checked_duration_since(Instant::now())?;
        let ts = types::Timespec::from(left);
        let args = types::SubmitArgs::new().timespec(&ts);
        match ring.submitter().submit_with_args(1, &args) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::ETIME | libc::EINTR)) => {}
            Err(_) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_setup_names_the_likely_cause() {
        let eperm = io::Error::from_raw_os_error(libc::EPERM);
        let why = setup_error(&eperm, Some(1));
        assert!(
            why.starts_with("io_uring_setup: Operation not permitted"),
            "{why}"
        );
        assert!(why.ends_with("(kernel.io_uring_disabled=1)"), "{why}");
        assert!(setup_error(&eperm, Some(0)).contains("seccomp"));
        let enosys = io::Error::from_raw_os_error(libc::ENOSYS);
        assert!(setup_error(&enosys, None).contains("kernel without io_uring"));
    }
}
