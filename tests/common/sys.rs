//! The few raw calls the harness needs that std does not offer. Each `unsafe`
//! block wraps one call and says why it is sound.

use std::io;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::process::Command;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn kill(pid: u32, sig: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid).expect("pid fits pid_t");
    // SAFETY: kill takes plain integers; pid is our own child, not yet reaped.
    if unsafe { libc::kill(pid, sig) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes the child get SIGKILL if the thread that spawned it dies (a test process
/// killed from outside leaves no server behind; `Drop` covers panics).
pub fn kill_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and only calls
    // prctl, which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sets the child's RLIMIT_NOFILE, soft and hard, to `files` before it runs.
pub fn limit_nofile(command: &mut Command, files: u64) {
    use std::os::unix::process::CommandExt;
    let lim = libc::rlimit {
        rlim_cur: files,
        rlim_max: files,
    };
    // SAFETY: the closure runs in the forked child before exec and only calls
    // setrlimit, which is async-signal-safe, on a copy of `lim` it owns.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sets a SOL_SOCKET option to `value`.
fn set_socket_option<T>(stream: &TcpStream, name: libc::c_int, value: &T) -> io::Result<()> {
    let len = libc::socklen_t::try_from(std::mem::size_of::<T>()).expect("option size");
    // SAFETY: the fd is open (borrowed from the stream) and the option value points to
    // a live `T` whose size we pass; the kernel only reads it.
    let res = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            name,
            (value as *const T).cast(),
            len,
        )
    };
    if res == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// SO_LINGER with a zero timeout: close() sends RST.
pub fn set_linger_zero(stream: &TcpStream) -> io::Result<()> {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    set_socket_option(stream, libc::SO_LINGER, &linger)
}

/// Sets the socket's receive buffer size (the kernel doubles it).
pub fn set_recv_buffer(stream: &TcpStream, bytes: libc::c_int) -> io::Result<()> {
    set_socket_option(stream, libc::SO_RCVBUF, &bytes)
}

/// Raises RLIMIT_NOFILE's soft limit towards `want`; returns the new soft limit.
pub fn raise_nofile(want: u64) -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: lim is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == -1 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur >= want {
        return Ok(lim.rlim_cur);
    }
    lim.rlim_cur = want.min(lim.rlim_max);
    // SAFETY: lim is a valid rlimit with cur <= max.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(lim.rlim_cur)
}

/// Creates and closes an io_uring: fails where the kernel or a sandbox refuses it.
pub fn probe_io_uring() -> io::Result<()> {
    // struct io_uring_params is 120 bytes; zeroed means "no flags".
    let mut params = [0u64; 15];
    // SAFETY: io_uring_setup writes at most sizeof(io_uring_params) = 120 bytes
    // into params, which is 120 bytes long and lives across the call.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 2u32, params.as_mut_ptr()) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is the ring descriptor just created and owned by nobody else.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}

/// TCP_CORK on or off: while on, the kernel holds partial segments, so a request and a
/// following FIN (shutdown) leave in one segment once it is turned off or at shutdown.
pub fn set_cork(stream: &TcpStream, on: bool) -> io::Result<()> {
    let value: libc::c_int = on.into();
    let len = libc::socklen_t::try_from(std::mem::size_of::<libc::c_int>()).expect("size");
    // SAFETY: the fd is open (borrowed from the stream) and the value points to a live
    // c_int whose size we pass; the kernel only reads it.
    let res = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_CORK,
            (&value as *const libc::c_int).cast(),
            len,
        )
    };
    if res == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
