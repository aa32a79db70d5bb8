//! ringcache: a memcached-compatible cache server for Linux.
//!
//! The map of the whole workspace (crates, modules, what each owns and must not know,
//! the request path, the thread model) is `ARCHITECTURE.md` at the repository root.
//!
//! This crate is the server: [`config`] (memcached's flags), [`logging`], [`server`]
//! (the engine-agnostic connection state machine, stats, listeners, the LRU crawler's
//! thread), [`io`] (the engines and syscall wrappers, the only module with `unsafe`),
//! [`os`] (the few OS
//! calls the server makes, a safe leaf), [`restart`] (the `-e` memory file: restored
//! before serving, saved after a graceful stop), and [`run`], which wires them. The pure
//! parsers and encoders ([`protocol`], crate `ringcache-protocol`) and the store
//! ([`storage`], crate `ringcache-storage`) are crates of their own, re-exported here
//! under their old module names.
//!
//! Dependency direction: `protocol`, `storage` and `os` depend on nothing of ours;
//! `server` uses them and never `io`; `io` drives `server`; [`run`] wires everything.

pub mod config;
pub mod io;
pub mod logging;
pub mod os;
pub mod restart;
pub mod server;

pub use ringcache_protocol as protocol;
pub use ringcache_storage as storage;

use config::{Config, ListenAddr};
use server::Server;
use std::sync::Arc;
use std::time::Duration;

/// Why the server could not start or stopped on an error: one line, and the exit status
/// memcached gives for it.
#[derive(Debug)]
pub struct Failure {
    pub why: String,
    /// 71 (EX_OSERR) when an address is taken, as memcached; 1 otherwise.
    pub status: i32,
}

impl From<String> for Failure {
    fn from(why: String) -> Failure {
        Failure { why, status: 1 }
    }
}

impl From<server::listener::BindError> for Failure {
    fn from(e: server::listener::BindError) -> Failure {
        Failure {
            status: if e.in_use { 71 } else { 1 },
            why: e.why,
        }
    }
}

/// Runs the server until SIGINT, SIGTERM or SIGUSR1 (each a graceful stop that saves
/// the `-e` memory file). `Err` is a one-line startup or runtime failure.
pub fn run(config: Config) -> Result<(), Failure> {
    let mut written = Vec::new();
    let result = serve(config, &mut written);
    if result.is_err() {
        // A failed start leaves no port or pid file of ours for a script to trust.
        for path in written {
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

/// [`run`]'s body, step by step; `written` collects the files it wrote (port file, pid
/// file).
fn serve(mut config: Config, written: &mut Vec<std::path::PathBuf>) -> Result<(), Failure> {
    let chosen = prepare_process(&mut config)?;
    let bound = bind_listeners(&config, written)?;
    log_startup(&config, &chosen, &bound.tcp_addrs);
    let pid_file = config.pid_file.clone();
    let idle_timeout_secs = config.idle_timeout_secs;
    let auth = load_auth(&config)?;
    let sasl = load_sasl(&config)?;
    let tls = load_tls(&config, &bound.tcp_addrs)?;
    // Restored (or not) and marked used before any worker serves.
    let store = restart::load(&config);
    if let Some(path) = &config.memory_file {
        restart::mark_used(path)?;
    }
    let server = Server::with_store(config, store);
    if let Some(auth) = auth {
        server.set_auth(auth);
    }
    if let Some(passwords) = sasl {
        server.set_sasl(passwords);
    }
    if let Some(tls) = tls {
        server.set_tls(tls);
    }
    server.set_engine(chosen.name(), chosen.feature_words());
    server
        .conns
        .set_listeners(bound.per_worker.iter().flatten().map(|l| l.fd()).collect());
    let shutdown =
        Arc::new(io::Shutdown::new().map_err(|e| format!("cannot create eventfd: {e}"))?);
    let stop = Arc::clone(&shutdown);
    server.set_stop(move || stop.trigger());
    let per_worker: Vec<_> = bound
        .per_worker
        .into_iter()
        .zip(bound.udp_per_worker)
        .collect();
    let idle = idle_timeout_secs;
    // The crawler walks the store (the no-store floor has none).
    let crawler = if server.config.floor {
        None
    } else {
        let thread = server::crawler::spawn(Arc::clone(&server))
            .map_err(|e| format!("cannot start the crawler thread: {e}"))?;
        Some(thread)
    };
    let workers = if server.config.floor {
        tracing::warn!("--floor: serving canned answers with no store (benchmark mode)");
        spawn_workers(&chosen, Arc::new(io::Floor), per_worker, &shutdown, idle)?
    } else {
        let service = Arc::new(io::Memcache(Arc::clone(&server)));
        spawn_workers(&chosen, service, per_worker, &shutdown, idle)?
    };
    let waited = wait_for_stop(&server, &shutdown);
    server.crawler.stop();
    if let Some(crawler) = crawler {
        let _ = crawler.join();
    }
    let joined = join_workers(workers);
    // A graceful stop (a signal, `shutdown`) saves the items; a failed worker does not.
    if let (Some(path), Ok(()), Ok(())) = (&server.config.memory_file, &waited, &joined) {
        restart::save(&server.store, path, server.config.cas_enabled);
    }
    if let Some(path) = pid_file {
        let _ = std::fs::remove_file(path);
    }
    waited?;
    joined.map_err(Failure::from)
}

/// What the process sets up before any socket: allocator tuning, the worker count (at
/// most one per allowed CPU), the engine, blocked stop signals, the open-file limit.
/// Warns about ignored `-o` options and a file limit below `-c`.
fn prepare_process(config: &mut Config) -> Result<io::Chosen, Failure> {
    io::sys::limit_malloc_arenas(1);
    io::sys::fix_mmap_threshold(storage::MMAP_THRESHOLD_BYTES);
    config.threads = workers_for(config.threads, io::sys::allowed_cpus());
    let chosen = io::choose(config.io_engine, config.uring, config.threads)?;
    io::sys::block_stop_signals().map_err(|e| format!("cannot block signals: {e}"))?;
    for opt in &config.ignored_options {
        tracing::warn!("-o {opt}: unknown or unsupported option, ignored");
    }
    let wanted_files = u64::from(config.max_connections) + 64;
    let files = io::sys::raise_nofile_limit(wanted_files);
    if files < wanted_files {
        tracing::warn!(
            "open-file limit is {files} (hard limit), below -c {} plus 64: connections past it \
             wait in the backlog instead of being served; raise `ulimit -n` (LimitNOFILE=)",
            config.max_connections
        );
    }
    Ok(chosen)
}

/// Reads the `-Y` file, if any: one that cannot be read or is malformed refuses the
/// start (exit 1, memcached's words).
fn load_auth(config: &Config) -> Result<Option<server::auth::AsciiAuth>, Failure> {
    let Some(path) = &config.auth_file else {
        return Ok(None);
    };
    Ok(Some(server::auth::AsciiAuth::load(path)?))
}

/// Reads the `-S` password file named by `MEMCACHED_SASL_PWDB`: without the variable,
/// or with a file that cannot be read, the start is refused (exit 1). memcached would
/// fall back to Cyrus's sasldb, which ringcache does not have.
fn load_sasl(config: &Config) -> Result<Option<server::sasl::SaslPasswords>, Failure> {
    if !config.sasl {
        return Ok(None);
    }
    let var = server::sasl::PWDB_ENV;
    let Some(path) = std::env::var_os(var) else {
        return Err(format!(
            "-S: {var} is not set; name a file of user:password lines in it (ringcache has no Cyrus sasldb)"
        )
        .into());
    };
    Ok(Some(server::sasl::SaslPasswords::load(
        std::path::Path::new(&path),
    )?))
}

/// Reads the `-Z` certificate, key and CA files, if TLS is on: one that cannot be read
/// or does not fit refuses the start (exit 64, memcached's words). `tcp_addrs` are the
/// bound TCP addresses, in `config.listen`'s order (the `notls:` ones serve plaintext).
fn load_tls(
    config: &Config,
    tcp_addrs: &[std::net::SocketAddr],
) -> Result<Option<server::tls::Tls>, Failure> {
    if !config.tls.enabled {
        return Ok(None);
    }
    let wanted = config.listen.iter().filter_map(|a| match a {
        ListenAddr::Tcp(addr) => Some(addr),
        ListenAddr::Unix { .. } => None,
    });
    let plain = wanted
        .zip(tcp_addrs)
        .filter(|(wanted, _)| config.notls.contains(wanted))
        .map(|(_, bound)| *bound)
        .collect();
    let tls = server::tls::Tls::load(config.tls.clone(), plain)
        .map_err(|why| Failure { why, status: 64 })?;
    if config.tls.kernel_tls {
        report_kernel_tls(io::sys::kernel_tls_probe());
    }
    Ok(Some(tls))
}

/// `-o ssl_kernel_tls`: memcached asks OpenSSL for kernel TLS, which keeps a session in
/// userspace wherever the kernel cannot take it, and starts either way. ringcache starts
/// too, serves every session in userspace (the hand-off to the kernel is not built:
/// no machine it is tested on has a kernel that takes TLS), and says so once, with the
/// kernel's own answer.
fn report_kernel_tls(probe: std::io::Result<()>) {
    match probe {
        Err(e) => tracing::warn!(
            "-o ssl_kernel_tls: the kernel refuses TLS offload (setsockopt TCP_ULP \"tls\": {e}); \
             sessions stay in userspace (rustls), counted in ringcache_ktls_fallbacks"
        ),
        Ok(()) => tracing::warn!(
            "-o ssl_kernel_tls: the kernel offers TLS offload, but ringcache does not hand \
             sessions to it yet; they stay in userspace (rustls), counted in ringcache_ktls_fallbacks"
        ),
    }
}

/// Binds every listener, writes the port and pid files, and drops privileges, in
/// memcached's order: TCP ports (maybe below 1024) and the pid file (maybe in a
/// directory only root can write) as root, the unix socket after dropping privileges,
/// so its file belongs to the `-u` user.
fn bind_listeners(
    config: &Config,
    written: &mut Vec<std::path::PathBuf>,
) -> Result<server::listener::Bound, Failure> {
    let (tcp, unix): (Vec<ListenAddr>, Vec<ListenAddr>) = config
        .listen
        .iter()
        .cloned()
        .partition(|a| matches!(a, ListenAddr::Tcp(_)));
    let mut bound = server::listener::bind_all(&tcp, config.threads, config.backlog)?;
    bound.udp_per_worker = server::listener::bind_udp(&config.udp_listen, config.threads)?;
    // memcached writes no port file when `-s` turns TCP off.
    if let (Ok(path), false) = (
        std::env::var("MEMCACHED_PORT_FILENAME"),
        bound.tcp_addrs.is_empty(),
    ) {
        let udp: Vec<_> = bound.udp_per_worker.first().map_or(Vec::new(), |list| {
            list.iter().filter_map(|s| s.local_addr().ok()).collect()
        });
        server::listener::write_port_file(path.as_ref(), &bound.tcp_addrs, &udp)
            .map_err(|e| format!("cannot write MEMCACHED_PORT_FILENAME {path}: {e}"))?;
        written.push(path.into());
    }
    if let Some(path) = &config.pid_file {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .map_err(|e| format!("-P {}: cannot write pid file: {e}", path.display()))?;
        written.push(path.clone());
    }
    drop_privileges(config)?;
    bound.extend(server::listener::bind_all(
        &unix,
        config.threads,
        config.backlog,
    )?);
    warn_on_wildcard(&bound.tcp_addrs, config.auth_file.is_some() || config.sasl);
    for addr in config.udp_listen.iter().filter(|a| a.ip().is_unspecified()) {
        tracing::warn!(
            "UDP on {addr}: a spoofed request makes the server send a victim answers far larger than the request (the 2018 memcached reflection attacks); keep UDP on a private network"
        );
    }
    Ok(bound)
}

/// The one startup line, printed at default verbosity (memcached prints none, but which
/// engine runs, with which io_uring features, is the first question about ringcache):
/// version, engine and features, workers, every address listened on, limits.
fn log_startup(config: &Config, chosen: &io::Chosen, tcp_addrs: &[std::net::SocketAddr]) {
    let addrs: Vec<String> = config
        .listen
        .iter()
        .filter_map(|a| match a {
            ListenAddr::Tcp(_) => None,
            ListenAddr::Unix { path, .. } => Some(format!("unix:{}", path.display())),
        })
        .chain(tcp_addrs.iter().map(|a| a.to_string()))
        .chain(config.udp_listen.iter().map(|a| format!("udp:{a}")))
        .collect();
    tracing::info!(
        target: logging::STARTUP,
        "ringcache {} (memcached {} protocol) engine={chosen} threads={} listen={} memory_limit={}MB max_item={}",
        server::RINGCACHE_VERSION,
        server::VERSION,
        config.threads,
        addrs.join(","),
        config.limit_bytes >> 20,
        config.max_item_bytes,
    );
}

/// The main thread keeps the clock and waits for signals until the server stops, taking
/// each as memcached 1.6.18 does (measured on Debian's): SIGINT/SIGTERM stop, SIGUSR1
/// stops gracefully (answers pending are still sent), SIGHUP rereads the `-Y` file (and
/// is otherwise ignored), SIGUSR2 is not handled (the process dies of it); SIGPIPE is
/// ignored (`block_stop_signals`).
fn wait_for_stop(server: &Server, shutdown: &io::Shutdown) -> Result<(), String> {
    while !shutdown.is_triggered() {
        match io::sys::wait_stop_signal(Duration::from_secs(1)) {
            Ok(Some(libc::SIGHUP)) => reload_on_hup(server),
            Ok(Some(libc::SIGUSR1)) => {
                tracing::info!("SIGUSR1 received: stopping gracefully");
                shutdown.trigger();
            }
            Ok(Some(libc::SIGUSR2)) => {
                tracing::info!("SIGUSR2 received: not handled (as memcached 1.6.18), terminating");
                io::sys::die_by_signal(libc::SIGUSR2);
            }
            Ok(Some(sig)) => {
                tracing::info!("signal {sig} received, shutting down");
                shutdown.trigger();
            }
            Ok(None) => server.store.clock().tick(),
            Err(e) => {
                // The workers must not outlive a main thread that stopped listening.
                shutdown.trigger();
                return Err(format!("waiting for signals failed: {e}"));
            }
        }
    }
    Ok(())
}

/// SIGHUP: memcached rereads the `-Y` file, keeping the old entries if it cannot, and
/// (since 1.6.40) the TLS certificates, keeping those in force if it cannot; ringcache
/// rereads the `-S` password file too (memcached reads that one at every
/// authentication). Without any of them it is ignored.
fn reload_on_hup(server: &Server) {
    let ascii = server.auth().map(|auth| ("-Y file", auth.reload()));
    let sasl = server
        .sasl()
        .map(|pwdb| ("-S password file", pwdb.reload()));
    for (what, result) in ascii.into_iter().chain(sasl) {
        match result {
            Ok(()) => tracing::info!("SIGHUP received: {what} reread"),
            Err(e) => tracing::warn!("SIGHUP received: {e}; the old entries stay"),
        }
    }
    match server.tls().map(|tls| tls.refresh()) {
        None => {}
        Some(Ok(())) => tracing::info!("SIGHUP received: TLS certificates reloaded"),
        Some(Err(e)) => tracing::warn!("SIGHUP received: {e}; the certificates in force stay"),
    }
    if server.auth().is_none() && server.sasl().is_none() && server.tls().is_none() {
        tracing::info!("SIGHUP received: ignored, as memcached");
    }
}

/// Waits for every worker; the last failure, if any.
fn join_workers(workers: Vec<Worker>) -> Result<(), String> {
    let mut failed = None;
    for w in workers {
        match w.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(format!("worker failed: {e}")),
            Err(_) => failed = Some("a worker thread panicked".to_string()),
        }
    }
    failed.map_or(Ok(()), Err)
}

type Worker = std::thread::JoinHandle<std::io::Result<()>>;

/// Starts one worker thread per listener list, each running the chosen engine.
fn spawn_workers<S: io::Service>(
    chosen: &io::Chosen,
    service: Arc<S>,
    per_worker: Vec<(Vec<io::Listener>, Vec<std::net::UdpSocket>)>,
    shutdown: &Arc<io::Shutdown>,
    idle_timeout_secs: u32,
) -> Result<Vec<Worker>, String> {
    let mut workers = Vec::new();
    for (index, (listeners, udp)) in per_worker.into_iter().enumerate() {
        let setup = io::WorkerSetup {
            index,
            listeners,
            udp,
            shutdown: Arc::clone(shutdown),
            idle_timeout_secs,
        };
        let (chosen, service, shutdown) =
            (chosen.clone(), Arc::clone(&service), Arc::clone(shutdown));
        let handle = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || {
                let result = io::run_worker(&chosen, service, setup);
                if let Err(e) = &result {
                    tracing::error!("worker {index} failed: {e}");
                    shutdown.trigger();
                }
                result
            })
            .map_err(|e| format!("cannot start worker thread: {e}"))?;
        workers.push(handle);
    }
    Ok(workers)
}

fn drop_privileges(config: &Config) -> Result<(), String> {
    match (&config.user, io::sys::is_root()) {
        (Some(user), true) => io::sys::drop_privileges(user)
            .map_err(|e| format!("-u {user}: cannot drop privileges: {e}")),
        (None, true) => {
            tracing::warn!(
                "running as root without -u; memcached would refuse, pass -u USER to drop privileges"
            );
            Ok(())
        }
        _ => Ok(()),
    }
}

/// One WARN line per wildcard address (0.0.0.0, ::), naming the port really bound;
/// with `-Y` or `-S` it says the passwords are sent in clear instead.
fn warn_on_wildcard(bound: &[std::net::SocketAddr], authenticated: bool) {
    for addr in bound.iter().filter(|a| a.ip().is_unspecified()) {
        if authenticated {
            tracing::warn!(
                "listening on {addr}: -Y and -S passwords cross the network in clear (no TLS), anyone on the path can read them"
            );
        } else {
            tracing::warn!(
                "listening on {addr}: the memcached protocol has no authentication, anyone who can reach this port can read and write the cache"
            );
        }
    }
}

/// How many workers to start for `-t threads` when the process may run on `cpus` CPUs
/// (its affinity mask). Workers past the CPUs cannot run in parallel: they only take
/// turns on a core, split each other's batches and add context switches (measured on
/// one core at pipeline 16: two workers served 7 % (uring) to 16 % (epoll) fewer
/// requests than one). So ringcache starts at most one worker per allowed CPU, and says
/// so.
fn workers_for(threads: usize, cpus: Option<usize>) -> usize {
    match cpus {
        Some(cpus) if threads > cpus => {
            tracing::warn!(
                "-t {threads}: this process may run on {cpus} CPU(s) (its affinity mask); \
                 starting {cpus} worker(s), as more could only take turns"
            );
            cpus
        }
        _ => threads,
    }
}
