//! Thin safe wrappers over the raw libc calls the engines and `main` need.
//!
//! Every call goes through [`syscall!`], which turns `-1` into `io::Error`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Calls a libc function, turning `-1` into the thread's last OS error.
///
/// The call is the only operation inside the macro's `unsafe` block; each use site
/// justifies its arguments with a `// SAFETY:` comment, as for any other unsafe
/// operation.
macro_rules! syscall {
    ($fn:ident ( $($arg:expr),* $(,)? )) => {{
        // SAFETY: every use passes arguments this call accepts (descriptors it owns,
        // pointers to live locals of the right type and size) and says why in a
        // `// SAFETY:` comment at the call site.
        let res = unsafe { libc::$fn($($arg),*) };
        if res == -1 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(res)
        }
    }};
}
pub(crate) use syscall;

/// The server-wide stop signal: a flag plus an eventfd that every worker watches
/// without consuming it, so one write wakes them all.
#[derive(Debug)]
pub struct Shutdown {
    flag: AtomicBool,
    efd: OwnedFd,
}

impl Shutdown {
    pub fn new() -> io::Result<Shutdown> {
        // SAFETY: eventfd takes only integers.
        let fd = syscall!(eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK))?;
        // SAFETY: eventfd just returned this descriptor and nothing else owns it.
        let efd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Shutdown {
            flag: AtomicBool::new(false),
            efd,
        })
    }

    /// Asks every worker to stop.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
        let one: u64 = 1;
        // A full counter (EAGAIN) still leaves the fd readable, which is all we need.
        // SAFETY: `efd` is our open eventfd, and the buffer is `one`, a live u64 of
        // exactly the 8 bytes an eventfd write takes.
        let _ = syscall!(write(
            self.efd.as_raw_fd(),
            (&one as *const u64).cast(),
            std::mem::size_of::<u64>()
        ));
    }

    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// The eventfd that becomes readable (and stays so) once triggered.
    pub fn fd(&self) -> RawFd {
        self.efd.as_raw_fd()
    }
}

fn stop_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is a plain bit array, for which all zeroes is a valid value;
    // sigemptyset below then initialises it the portable way.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live, initialised sigset_t we own exclusively; the signals
    // added are valid signal numbers, so none of these calls can fail.
    unsafe {
        libc::sigemptyset(&mut set);
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGUSR1,
            libc::SIGUSR2,
        ] {
            libc::sigaddset(&mut set, sig);
        }
    }
    set
}

/// Blocks SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGUSR2 in the calling thread and every
/// thread it spawns later, so they are only ever taken by [`wait_stop_signal`] (the main
/// thread decides what each means); also ignores SIGPIPE, as memcached does, so a write
/// to a vanished peer returns `EPIPE` instead of killing the process.
pub fn block_stop_signals() -> io::Result<()> {
    let set = stop_signals();
    // SAFETY: `set` is an initialised sigset_t that outlives the call; a null pointer
    // for the old set is allowed (we do not want it back).
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    // SAFETY: SIGPIPE is a valid signal and SIG_IGN a valid disposition; no handler
    // function is installed, so there is no async-signal-safety question.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    Ok(())
}

/// Waits up to `timeout` for one of the signals [`block_stop_signals`] blocked; returns
/// the signal number, or `None` on timeout.
pub fn wait_stop_signal(timeout: Duration) -> io::Result<Option<i32>> {
    let set = stop_signals();
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: `set` and `ts` are initialised locals that outlive the call; a null
    // siginfo pointer is allowed (only the returned signal number is used).
    match syscall!(sigtimedwait(&set, std::ptr::null_mut(), &ts)) {
        Ok(sig) => Ok(Some(sig)),
        Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::EINTR) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Ends the process the way an unhandled `sig` would (its default action, e.g. killed by
/// SIGUSR2, which memcached 1.6.18 does not handle), after the caller logged it.
pub fn die_by_signal(sig: i32) -> ! {
    // SAFETY: `sig` is a valid signal number and SIG_DFL a valid disposition; no handler
    // function is installed.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
    // SAFETY: raise takes a plain signal number; the signal stays pending (blocked in
    // this thread) until it is unblocked below.
    unsafe { libc::raise(sig) };
    // SAFETY: sigset_t is a plain bit array, for which all zeroes is a valid value.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a live sigset_t we own exclusively; `sig` is a valid signal.
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
    }
    // SAFETY: `set` is initialised and outlives the call; unblocking delivers the
    // pending signal, whose default action ends the process.
    unsafe { libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut()) };
    // Only reached for a signal whose default action is not to terminate.
    std::process::exit(128 + sig)
}

/// Raises the soft open-files limit towards `wanted` (up to the hard limit), as memcached
/// does for `-c`; returns the limit in force afterwards.
pub fn raise_nofile_limit(wanted: u64) -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `rl` is a live rlimit the call fills; RLIMIT_NOFILE is a valid resource.
    if syscall!(getrlimit(libc::RLIMIT_NOFILE, &mut rl)).is_err() {
        return wanted;
    }
    if rl.rlim_cur < wanted {
        let new = libc::rlimit {
            rlim_cur: wanted.min(rl.rlim_max),
            rlim_max: rl.rlim_max,
        };
        // SAFETY: `new` is an initialised rlimit that outlives the call.
        if syscall!(setrlimit(libc::RLIMIT_NOFILE, &new)).is_ok() {
            return new.rlim_cur;
        }
    }
    rl.rlim_cur
}

/// Drops root privileges to `user` (memcached's `-u`).
pub fn drop_privileges(user: &str) -> io::Result<()> {
    let name = std::ffi::CString::new(user)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "user name has a NUL byte"))?;
    // SAFETY: `name` is a NUL-terminated C string that lives across the call. getpwnam
    // returns null or a pointer into libc's static passwd storage, valid until the next
    // getpw* call in the process: ringcache makes no other, and this runs once, on the
    // main thread, before any worker thread exists.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    if pw.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no such user {user:?}"),
        ));
    }
    // SAFETY: `pw` is non-null (checked above) and its record has not been overwritten
    // since (no getpw* call in between); the two ids are copied out here.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    // SAFETY: a count of 0 with a null list is how setgroups clears the supplementary
    // groups; setgid and setuid take plain ids. The order (groups, gid, uid) matters:
    // after setuid the process could no longer change the other two.
    syscall!(setgroups(0, std::ptr::null()))?;
    // SAFETY: see above.
    syscall!(setgid(gid))?;
    // SAFETY: see above.
    syscall!(setuid(uid))?;
    Ok(())
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments and always succeeds (POSIX).
    unsafe { libc::geteuid() == 0 }
}

/// Caps glibc's malloc at `arenas` memory pools. With one pool per thread (glibc's
/// default, up to 8 per core), items freed by eviction on one worker leave holes that
/// another worker's pool cannot reuse, and RSS drifts past the memory limit (measured:
/// 110 MiB RSS for a 64 MiB store written by 4 threads, 67–73 MiB with one pool).
pub fn limit_malloc_arenas(arenas: i32) {
    // SAFETY: mallopt takes plain integers and only changes allocator tuning (glibc
    // takes its own lock for it); it is called first thing in `run`, before any worker
    // thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
}

/// Fixes glibc's mmap threshold at `bytes`: every allocation of at least that size is
/// mapped on its own and unmapped when freed. A fixed threshold also turns off glibc's
/// dynamic one, which rises to the size of each mapped block freed (up to 32 MiB), so
/// that after a large value was freed, later ones of that size would come from the
/// heap, where freeing them leaves holes that churn grows (see `storage/arena.rs`).
pub fn fix_mmap_threshold(bytes: usize) {
    let bytes = i32::try_from(bytes).unwrap_or(i32::MAX);
    // SAFETY: mallopt takes plain integers and only changes allocator tuning (glibc
    // takes its own lock for it); it is called first thing in `run`, before any worker
    // thread exists.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, bytes) };
}

/// How many CPUs this process may run on (its affinity mask, as `taskset` sets it), or
/// `None` when the kernel does not say.
pub fn allowed_cpus() -> Option<usize> {
    // SAFETY: cpu_set_t is a plain bit array, for which all zeroes (the empty set) is a
    // valid value.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; `set` is a live cpu_set_t of exactly the size
    // passed, which the call fills.
    syscall!(sched_getaffinity(
        0,
        std::mem::size_of::<libc::cpu_set_t>(),
        &mut set
    ))
    .ok()?;
    // SAFETY: CPU_COUNT only reads the initialised set it is given.
    let count = unsafe { libc::CPU_COUNT(&set) };
    usize::try_from(count).ok().filter(|&n| n > 0)
}

/// Whether the kernel takes TLS offload: attaches the `tls` upper-layer protocol to
/// the server side of a loopback connection made for the purpose (the kernel takes it
/// only on an established TCP socket). `Err` is the kernel's refusal (`ENOENT` when it
/// was built without `CONFIG_TLS` or the `tls` module is not loaded).
pub fn kernel_tls_probe() -> io::Result<()> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let _client = std::net::TcpStream::connect(listener.local_addr()?)?;
    let (server, _) = listener.accept()?;
    let name = b"tls";
    // SAFETY: `server` is an open socket for the whole call; the option value is
    // `name`'s bytes, valid for `name.len()` bytes, which the kernel only reads.
    let rc = unsafe {
        libc::setsockopt(
            server.as_raw_fd(),
            libc::SOL_TCP,
            libc::TCP_ULP,
            name.as_ptr().cast(),
            name.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
