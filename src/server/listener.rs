//! Listening-socket setup, as memcached sets sockets up.
//!
//! Every worker gets its own TCP socket per address (`SO_REUSEPORT`, so the kernel
//! spreads connections without a hand-off thread); the first socket of an address
//! binds, and with port 0 the others follow the port it got. IPv6 sockets are
//! `IPV6_V6ONLY` so v4 and v6 can share a port. A unix socket cannot be shared by
//! `SO_REUSEPORT`, so its one socket is duplicated to every worker; a stale socket file
//! is replaced, the file gets exactly the `-a` mode, and it stays at exit (as memcached's).
//! UDP (`-U`, [`bind_udp`]): every worker gets its own socket per address too
//! (`SO_REUSEPORT`, the kernel spreads datagrams by source), non-blocking, with
//! buffers of [`UDP_BUFFER_BYTES`] asked for (memcached raises the send buffer as far
//! as the system lets it).
//! Startup only: nothing here runs per request.
//!
//! # Exclusive addresses
//!
//! `SO_REUSEPORT` would also let a second ringcache (same user) join the first one's
//! group, and the kernel would spread clients over two caches. As memcached, an address
//! another process listens on is a startup error ([`BindError::in_use`], exit 71). Before
//! binding a TCP group, a probe socket without `SO_REUSEPORT` (only `SO_REUSEADDR`, so
//! TIME_WAIT leftovers do not count) binds the address: the kernel refuses it if any
//! socket, of any user, reuseport or not, listens there. The probe is closed before the
//! group binds, so only a start racing ours within that instant could slip in. Port 0
//! needs no probe (the kernel hands out a free port). For a unix path, a socket file is
//! removed as stale only when nothing accepts a connection on it. A UDP address is
//! probed the same way, by a socket with no reuse option at all (UDP has no TIME_WAIT).

use crate::config::ListenAddr;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::Path;

/// A listening socket a worker accepts on (non-blocking).
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

impl Listener {
    /// The socket's descriptor (for `stats conns`).
    pub fn fd(&self) -> std::os::fd::RawFd {
        use std::os::fd::AsRawFd;
        match self {
            Listener::Tcp(l) => l.as_raw_fd(),
            Listener::Unix(l) => l.as_raw_fd(),
        }
    }
}

/// The sockets of every worker, and the TCP addresses they ended up bound to.
#[derive(Debug)]
pub struct Bound {
    /// `per_worker[w]` is worker `w`'s list.
    pub per_worker: Vec<Vec<Listener>>,
    pub tcp_addrs: Vec<SocketAddr>,
    /// `udp_per_worker[w]` is worker `w`'s UDP sockets ([`bind_udp`]; empty without
    /// `-U`).
    pub udp_per_worker: Vec<Vec<UdpSocket>>,
}

/// Why an address could not be bound: one line naming it, and whether it is in use.
#[derive(Debug)]
pub struct BindError {
    pub why: String,
    /// Another process listens there (memcached exits 71 for it).
    pub in_use: bool,
}

impl From<String> for BindError {
    fn from(why: String) -> BindError {
        BindError { why, in_use: false }
    }
}

/// Binds every address for `workers` workers. Errors name the address and the cause.
pub fn bind_all(addrs: &[ListenAddr], workers: usize, backlog: i32) -> Result<Bound, BindError> {
    let mut per_worker: Vec<Vec<Listener>> = (0..workers).map(|_| Vec::new()).collect();
    let mut tcp_addrs = Vec::new();
    for addr in addrs {
        match addr {
            ListenAddr::Tcp(wanted) => {
                let mut at = *wanted;
                if at.port() != 0 {
                    probe_tcp(at).map_err(|e| describe(&at, e))?;
                }
                for list in per_worker.iter_mut() {
                    let socket = bind_tcp(at, backlog).map_err(|e| describe(&at, e))?;
                    at = socket.local_addr().map_err(|e| describe(&at, e))?;
                    list.push(Listener::Tcp(socket));
                }
                tcp_addrs.push(at);
            }
            ListenAddr::Unix { path, mask } => {
                let socket = bind_unix(path, *mask, backlog).map_err(|e| {
                    let (hint, in_use) = match e.kind() {
                        std::io::ErrorKind::AddrInUse if e.raw_os_error().is_none() => {
                            (" (another memcached?)", true)
                        }
                        std::io::ErrorKind::AddrInUse => {
                            (" (a file that is not a socket is there)", false)
                        }
                        _ => ("", false),
                    };
                    BindError {
                        why: format!("cannot listen on unix socket {}: {e}{hint}", path.display()),
                        in_use,
                    }
                })?;
                for list in per_worker.iter_mut() {
                    let dup = socket
                        .try_clone()
                        .map_err(|e| format!("cannot share unix socket: {e}"))?;
                    list.push(Listener::Unix(dup));
                }
            }
        }
    }
    Ok(Bound {
        udp_per_worker: (0..per_worker.len()).map(|_| Vec::new()).collect(),
        per_worker,
        tcp_addrs,
    })
}

impl Bound {
    /// Adds `other`'s sockets (bound for the same number of workers) to each worker's list.
    pub fn extend(&mut self, other: Bound) {
        for (list, more) in self.per_worker.iter_mut().zip(other.per_worker) {
            list.extend(more);
        }
        self.tcp_addrs.extend(other.tcp_addrs);
        for (list, more) in self.udp_per_worker.iter_mut().zip(other.udp_per_worker) {
            list.extend(more);
        }
    }
}

fn describe(addr: &SocketAddr, e: std::io::Error) -> BindError {
    let in_use = e.kind() == std::io::ErrorKind::AddrInUse;
    let (what, hint) = match e.kind() {
        std::io::ErrorKind::AddrInUse => ("address in use".to_string(), " (another memcached?)"),
        std::io::ErrorKind::AddrNotAvailable => (e.to_string(), " (no such local address)"),
        _ => (e.to_string(), ""),
    };
    BindError {
        why: format!("cannot bind {addr}: {what}{hint}"),
        in_use,
    }
}

/// Fails with `AddrInUse` when another socket listens on `addr` (see the header).
fn probe_tcp(addr: SocketAddr) -> std::io::Result<()> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())
}

fn bind_tcp(addr: SocketAddr, backlog: i32) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

fn bind_unix(path: &Path, mask: u32, backlog: i32) -> std::io::Result<UnixListener> {
    // A socket file left by an earlier run would make bind fail; memcached removes it
    // (only a socket: any other file is left alone and bind fails). The file stays at
    // exit, as memcached's does.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                // Someone serves there: not stale (an error of our own, no errno).
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    "address in use",
                ));
            }
            std::fs::remove_file(path)?;
        }
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SockAddr::unix(path)?)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mask))?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// The receive and send buffer sizes asked of each UDP socket (the kernel caps them at
/// `net.core.rmem_max` / `wmem_max`).
pub const UDP_BUFFER_BYTES: usize = 4 * 1024 * 1024;

/// Binds a UDP socket per worker on every address; `per_worker[w]` is worker `w`'s
/// list. Errors name the address and the cause, as for TCP.
pub fn bind_udp(addrs: &[SocketAddr], workers: usize) -> Result<Vec<Vec<UdpSocket>>, BindError> {
    let mut per_worker: Vec<Vec<UdpSocket>> = (0..workers).map(|_| Vec::new()).collect();
    for &wanted in addrs {
        let udp_error = |e| {
            let mut err = describe(&wanted, e);
            err.why = format!("UDP: {}", err.why);
            err
        };
        let mut at = wanted;
        if at.port() != 0 {
            let probe = Socket::new(Domain::for_address(at), Type::DGRAM, Some(Protocol::UDP))
                .and_then(|s| {
                    if at.is_ipv6() {
                        s.set_only_v6(true)?;
                    }
                    s.bind(&at.into())
                });
            probe.map_err(udp_error)?;
        }
        for list in per_worker.iter_mut() {
            let socket = bind_one_udp(at).map_err(udp_error)?;
            at = socket.local_addr().map_err(udp_error)?;
            list.push(socket);
        }
    }
    Ok(per_worker)
}

fn bind_one_udp(addr: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    // Best effort: a smaller buffer only drops datagrams sooner under load.
    let _ = socket.set_recv_buffer_size(UDP_BUFFER_BYTES);
    let _ = socket.set_send_buffer_size(UDP_BUFFER_BYTES);
    socket.bind(&addr.into())?;
    Ok(socket.into())
}

/// Writes the bound ports to `path` the way memcached does for `MEMCACHED_PORT_FILENAME`
/// (`TCP INET: <port>` lines, `TCP INET6:` for v6, then a `UDP INET: <port>` line per
/// UDP address), through a temporary file renamed into place so a reader never sees
/// half a file.
pub fn write_port_file(path: &Path, tcp: &[SocketAddr], udp: &[SocketAddr]) -> std::io::Result<()> {
    let mut text = String::new();
    for (proto, addrs) in [("TCP", tcp), ("UDP", udp)] {
        for a in addrs {
            let family = if a.is_ipv6() { "INET6" } else { "INET" };
            text.push_str(&format!("{proto} {family}: {}\n", a.port()));
        }
    }
    let tmp = path.with_extension("lck");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gives_every_worker_the_same_port() {
        let addrs = [ListenAddr::Tcp("127.0.0.1:0".parse().unwrap())];
        let bound = bind_all(&addrs, 3, 16).unwrap();
        assert_eq!(bound.per_worker.len(), 3);
        let port = bound.tcp_addrs[0].port();
        assert_ne!(port, 0);
        for list in &bound.per_worker {
            match &list[0] {
                Listener::Tcp(l) => assert_eq!(l.local_addr().unwrap().port(), port),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn bind_error_names_the_address() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        // SO_REUSEPORT sockets only share with each other; the std socket has none.
        let err = bind_all(&[ListenAddr::Tcp(addr)], 1, 16).unwrap_err();
        assert!(err.why.contains(&addr.to_string()), "{err:?}");
        assert!(err.in_use);
    }

    #[test]
    fn udp_binds_per_worker_and_refuses_a_taken_port() {
        let bound = bind_udp(&["127.0.0.1:0".parse().unwrap()], 2).unwrap();
        let port = bound[0][0].local_addr().unwrap().port();
        assert_eq!(bound[1][0].local_addr().unwrap().port(), port);
        let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let err = bind_udp(&[addr], 1).unwrap_err();
        assert!(err.in_use && err.why.contains(&addr.to_string()), "{err:?}");
    }

    #[test]
    fn unix_socket_is_shared_and_masked() {
        let dir = std::env::temp_dir().join(format!("ringcache-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s.sock");
        let addrs = [ListenAddr::Unix {
            path: path.clone(),
            mask: 0o700,
        }];
        let bound = bind_all(&addrs, 2, 16).unwrap();
        assert_eq!(bound.per_worker[1].len(), 1);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        drop(bound);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
