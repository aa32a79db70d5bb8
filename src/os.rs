//! The few things the server asks of the OS outside the engines: the process's CPU time
//! (`stats`' `rusage_*`), a socket's addresses (`stats conns`, the port `-p 0` got), and
//! the CPU's hint to start loading a cache line (the connection's look-ahead over a
//! pipelined batch).
//!
//! A leaf: it imports nothing of ours, so `server` can use it without reaching into
//! `io`. Safe code only: the raw calls are made by well-kept crates, `nix` (getrusage,
//! getpeername, getsockname) and `safe_arch` (PREFETCHT0 on a reference).
//!
//! Must not know: connections, engines, the store.
#![forbid(unsafe_code)]

use nix::sys::socket::{self, SockaddrStorage};
use std::net::SocketAddr;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::Duration;

/// The process's user and system CPU time (zero if the kernel will not say).
pub fn rusage_self() -> (Duration, Duration) {
    use nix::sys::resource::{getrusage, UsageWho};
    let Ok(usage) = getrusage(UsageWho::RUSAGE_SELF) else {
        return (Duration::ZERO, Duration::ZERO);
    };
    let time = |t: nix::sys::time::TimeVal| {
        Duration::new(t.tv_sec().max(0) as u64, t.tv_usec().max(0) as u32 * 1000)
    };
    (time(usage.user_time()), time(usage.system_time()))
}

/// A socket's address, as far as `stats conns` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketName {
    /// A TCP socket's address.
    Inet(SocketAddr),
    /// A unix socket's path (empty for an unnamed socket, such as a client's).
    Unix(PathBuf),
}

/// A socket's peer and local addresses (`getpeername`, `getsockname`); `None` where the
/// call fails or the family is neither IP nor unix.
///
/// Reads only: a descriptor that is not a socket gives `None`. The answer is about
/// whatever `fd` names at the time of the call, so the caller must know it is still the
/// socket it means (`stats conns` asks while holding the table lock, before which no
/// engine closes a registered socket).
pub fn socket_addrs(fd: RawFd) -> (Option<SocketName>, Option<SocketName>) {
    if fd < 0 {
        return (None, None);
    }
    let name = |addr: nix::Result<SockaddrStorage>| socket_name(&addr.ok()?);
    (name(socket::getpeername(fd)), name(socket::getsockname(fd)))
}

fn socket_name(addr: &SockaddrStorage) -> Option<SocketName> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketName::Inet(SocketAddr::V4((*v4).into())));
    }
    if let Some(v6) = addr.as_sockaddr_in6() {
        return Some(SocketName::Inet(SocketAddr::V6((*v6).into())));
    }
    let unix = addr.as_unix_addr()?;
    Some(SocketName::Unix(
        unix.path().map(PathBuf::from).unwrap_or_default(),
    ))
}

/// Asks the CPU to start loading the cache lines of `bytes`' first and last byte, so a
/// read of them a little later does not wait for memory. A hint only: nothing the
/// program can see changes. A no-op off x86_64.
#[inline(always)]
pub fn prefetch(bytes: &[u8]) {
    if let Some(first) = bytes.first() {
        prefetch_value(first);
    }
    if let Some(last) = bytes.last() {
        prefetch_value(last);
    }
}

/// Asks the CPU to start loading the cache line that holds `value` (a table slot the
/// look-ahead names without reading it). A hint, as [`prefetch`].
#[inline(always)]
pub fn prefetch_value<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    safe_arch::prefetch_t0(value);
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    #[test]
    fn rusage_counts_cpu_time() {
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let (user, system) = rusage_self();
        assert!(user + system > Duration::ZERO, "{user:?} {system:?}");
    }

    #[test]
    fn socket_addrs_name_both_ends_of_a_tcp_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (peer, local) = socket_addrs(server.as_raw_fd());
        assert_eq!(peer, Some(SocketName::Inet(client.local_addr().unwrap())));
        assert_eq!(
            local,
            Some(SocketName::Inet(listener.local_addr().unwrap()))
        );
        let (none, listening) = socket_addrs(listener.as_raw_fd());
        assert_eq!(none, None, "a listener has no peer");
        assert_eq!(listening, local);
        assert_eq!(socket_addrs(-1), (None, None));
    }

    #[test]
    fn socket_addrs_name_a_unix_socket_by_its_path() {
        let dir = std::env::temp_dir().join(format!("os-leaf-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let _client = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let (server, _) = listener.accept().unwrap();
        let (peer, local) = socket_addrs(server.as_raw_fd());
        assert_eq!(peer, Some(SocketName::Unix(PathBuf::new())));
        assert_eq!(local, Some(SocketName::Unix(path.clone())));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn prefetch_takes_any_slice() {
        prefetch(&[]);
        prefetch(b"x");
        prefetch(&vec![0u8; 4096]);
        prefetch_value(&7u32);
    }
}
