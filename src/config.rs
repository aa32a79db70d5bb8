//! Command-line configuration with memcached's flags and meanings.
//!
//! `Config::parse_args` turns argv into a validated [`Config`] or a one-line reason to
//! refuse to start. Flags keep memcached's short and long names, defaults and bounds;
//! see the README's flag table. Knows nothing of sockets or the store.
#![forbid(unsafe_code)]

use clap::Parser;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// Which engine to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum IoEngine {
    /// io_uring if the kernel allows it, else epoll.
    Auto,
    /// io_uring, or refuse to start.
    Uring,
    /// The epoll reactor.
    Epoll,
}

/// Which dialects a connection may speak (`-B`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolChoice {
    /// Detect per connection from its first byte.
    Auto,
    Ascii,
    Binary,
}

/// The raw flags, as clap parses them.
#[derive(Parser, Debug)]
#[command(
    name = "ringcache",
    version = concat!(env!("CARGO_PKG_VERSION"), " (memcached 1.6.18 protocol)"),
    // As memcached (getopt): a flag given twice takes its last value.
    args_override_self = true,
    about = "A memcached-compatible cache server: io_uring proactor with an epoll fallback"
)]
struct Args {
    /// TCP port to listen on (0 or -1: any free port).
    #[arg(
        short = 'p',
        long = "port",
        default_value_t = 11211,
        allow_negative_numbers = true
    )]
    port: i32,
    /// UDP port (0: off, the default): the `-l` addresses' hosts on this port.
    #[arg(short = 'U', long = "udp-port", default_value_t = 0)]
    udp_port: u16,
    /// Unix socket path to listen on (disables TCP, as memcached does).
    #[arg(short = 's', long = "unix-socket")]
    unix_socket: Option<PathBuf>,
    /// Access mask for the unix socket, in octal.
    #[arg(short = 'a', long = "unix-mask", default_value = "700")]
    unix_mask: String,
    /// Interfaces to listen on: comma-separated `host`, `host:port` or `[v6]:port`; may
    /// repeat. A host name means every address it resolves to; `*` means 0.0.0.0. With
    /// -Z, `notls:<addr>` listens without TLS.
    #[arg(short = 'l', long = "listen", default_value = "127.0.0.1")]
    listen: Vec<String>,
    /// Item memory in megabytes (an `m` suffix is allowed).
    #[arg(short = 'm', long = "memory-limit", default_value = "64")]
    memory_limit: String,
    /// Maximum simultaneous connections.
    #[arg(
        short = 'c',
        long = "conn-limit",
        default_value_t = 1024,
        allow_negative_numbers = true
    )]
    conn_limit: i64,
    /// Worker threads (default: the CPUs this process may run on; more than that are
    /// capped to it, with a warning).
    #[arg(short = 't', long = "threads")]
    threads: Option<usize>,
    /// Largest item: bytes, or with a k/m suffix; from 1k to 1g, at most half of -m.
    #[arg(short = 'I', long = "max-item-size", default_value = "1m")]
    max_item_size: String,
    /// Backlog of the listening sockets.
    #[arg(
        short = 'b',
        long = "listen-backlog",
        default_value_t = 1024,
        allow_negative_numbers = true
    )]
    listen_backlog: i64,
    /// Protocols a connection may speak [default: auto; binary with -S, ascii with -Y].
    #[arg(short = 'B', long = "protocol", value_enum)]
    protocol: Option<ProtocolChoice>,
    /// Verbose. Without it: warnings, errors and the one startup line (engine, threads,
    /// addresses); -v: also signals and shutdown; -vv: connections and commands; -vvv:
    /// protocol detail.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count)]
    verbose: u8,
    /// Drop privileges to this user when started as root.
    #[arg(short = 'u', long = "user")]
    user: Option<String>,
    /// Extended options, comma-separated key=value; may repeat: idle_timeout=SECS,
    /// conn_buffer_limit_mb=MB, uring_bundle=0|1, uring_send_zc=BYTES, no_lru_crawler, lru_crawler_sleep=MICROS,
    /// lru_crawler_tocrawl=N, and with -Z ssl_chain_cert=FILE, ssl_key=FILE,
    /// ssl_ca_cert=FILE, ssl_verify_mode=0..3, ssl_min_version=0..3, ssl_ciphers=LIST,
    /// ssl_session_cache, ssl_keyformat=1, ssl_wbuf_size=KB. Other memcached options are ignored with a warning.
    #[arg(short = 'o', long = "extended")]
    extended: Vec<String>,
    /// Write the process id to this file (removed at exit).
    #[arg(short = 'P', long = "pid-file")]
    pid_file: Option<PathBuf>,
    /// Disable flush_all (answers `CLIENT_ERROR flush_all not allowed`).
    #[arg(short = 'F', long = "disable-flush-all")]
    disable_flush_all: bool,
    /// Disable CAS: items show CAS 0 and `cas` never matches.
    #[arg(short = 'C', long = "disable-cas")]
    disable_cas: bool,
    /// Enable the text `shutdown` command.
    #[arg(short = 'A', long = "enable-shutdown")]
    enable_shutdown: bool,
    /// The delimiter between key prefixes and ids for `stats detail`; giving it turns
    /// per-prefix counting on (default `:`, off).
    #[arg(short = 'D', value_name = "CHAR")]
    prefix_delimiter: Option<String>,
    /// Disable the `watch` command (live logging).
    #[arg(short = 'W', long = "disable-watch")]
    disable_watch: bool,
    /// Disable `stats cachedump` and `lru_crawler metadump|mgdump`.
    #[arg(short = 'X', long = "disable-dumping")]
    disable_dumping: bool,
    /// I/O engine: io_uring if the kernel allows it (auto), io_uring or fail, or epoll.
    #[arg(long = "io-engine", value_enum, default_value_t = IoEngine::Auto)]
    io_engine: IoEngine,
    /// Benchmark only: serve canned answers with no store (the network floor).
    #[arg(long = "floor", hide = true)]
    floor: bool,
    /// ASCII authentication: `user:password` lines; a connection's first command must
    /// be a `set` whose data is `user password`. Reread on SIGHUP.
    #[arg(short = 'Y', long = "auth-file")]
    auth_file: Option<PathBuf>,
    /// SASL PLAIN authentication for the binary protocol (only binary is spoken); users
    /// from the `user:password` file named by MEMCACHED_SASL_PWDB. Reread on SIGHUP.
    #[arg(short = 'S', long = "enable-sasl")]
    enable_sasl: bool,
    /// Restartable memory: a graceful stop (SIGUSR1, SIGTERM, SIGINT) writes every live
    /// item to this file (keep it on tmpfs), and the next start with the same -m, -I,
    /// -t and -C serves them again. A crash or another setting starts cold.
    #[arg(short = 'e', long = "memory-file")]
    memory_file: Option<PathBuf>,
    /// TLS on every TCP listener but those given as `-l notls:<addr>` (needs `-o
    /// ssl_chain_cert=FILE,ssl_key=FILE`; more `ssl_*` options as memcached's).
    #[arg(short = 'Z', long = "enable-ssl")]
    enable_ssl: bool,
}

/// Where to listen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix { path: PathBuf, mask: u32 },
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    pub listen: Vec<ListenAddr>,
    /// The UDP sockets' addresses (`-U`): each TCP address's host on the UDP port;
    /// empty when `-U` is 0 or only a unix socket is served.
    pub udp_listen: Vec<SocketAddr>,
    /// The `-U` port, for `stats settings`.
    pub udp_port: u16,
    pub limit_bytes: usize,
    pub max_connections: u32,
    pub threads: usize,
    pub max_item_bytes: usize,
    pub backlog: i32,
    pub protocol: ProtocolChoice,
    pub verbosity: u8,
    pub user: Option<String>,
    pub idle_timeout_secs: u32,
    /// What all connections' buffers may hold together beyond a small allowance each
    /// before they work under pressure (`-o conn_buffer_limit_mb=N`).
    pub conn_buffer_limit_bytes: usize,
    pub pid_file: Option<PathBuf>,
    pub io_engine: IoEngine,
    /// The optional io_uring features asked for (`-o uring_bundle`, `uring_send_zc`).
    pub uring: UringOptions,
    /// `-o` options that were not understood (warned about at startup).
    pub ignored_options: Vec<String>,
    /// The `-p` port, for `stats settings`.
    pub tcp_port: u16,
    /// Serve the no-store floor responder instead of the cache (benchmarks).
    pub floor: bool,
    /// `flush_all` allowed (`-F` turns it off).
    pub flush_enabled: bool,
    /// CAS values shown and checked (`-C` turns them off).
    pub cas_enabled: bool,
    /// The text `shutdown` command works (`-A`).
    pub shutdown_command: bool,
    /// `stats detail`'s prefix delimiter (`-D`, else `:`).
    pub prefix_delimiter: u8,
    /// Per-prefix counting on from the start (`-D` given).
    pub detail_enabled: bool,
    /// `watch` allowed (`-W` turns it off).
    pub watch_enabled: bool,
    /// Key dumps allowed (`-X` turns them off).
    pub dump_enabled: bool,
    /// The LRU crawler's settings (`-o no_lru_crawler`, `lru_crawler_sleep`,
    /// `lru_crawler_tocrawl`).
    pub crawler: CrawlerSettings,
    /// `-Y`: the ASCII authentication file (read at startup by `run`).
    pub auth_file: Option<PathBuf>,
    /// `-S`: SASL authentication for binary connections (the password file, named by
    /// `MEMCACHED_SASL_PWDB`, is read at startup by `run`).
    pub sasl: bool,
    /// `-Z` and the `-o ssl_*` options (the files are read at startup by `run`).
    pub tls: crate::server::tls::TlsSettings,
    /// The `-l notls:` addresses (as given; among `listen`): plaintext under `-Z`.
    pub notls: Vec<SocketAddr>,
    /// `-e`: the memory file a graceful stop saves the items to and the next start
    /// restores them from (`src/restart.rs`).
    pub memory_file: Option<PathBuf>,
}

/// The LRU crawler's start-up settings, with memcached's defaults: on, 100 µs between
/// steps, no limit on the items checked per class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CrawlerSettings {
    pub enabled: bool,
    pub sleep_micros: u32,
    pub tocrawl: u32,
}

impl Default for CrawlerSettings {
    fn default() -> CrawlerSettings {
        CrawlerSettings {
            enabled: true,
            sleep_micros: 100,
            tocrawl: 0,
        }
    }
}

impl CrawlerSettings {
    /// Takes `-o key[=value]` if it is one of the crawler's; `Ok(false)` if not.
    fn option(&mut self, key: &str, value: &str) -> Result<bool, String> {
        match key {
            "lru_crawler" => self.enabled = true,
            "no_lru_crawler" => self.enabled = false,
            "lru_crawler_sleep" => {
                self.sleep_micros = value.parse().ok().filter(|&us| us <= 1_000_000).ok_or_else(|| {
                    format!("-o lru_crawler_sleep={value}: the crawler's sleep must be from 0 to 1000000 microseconds")
                })?;
            }
            "lru_crawler_tocrawl" => {
                self.tocrawl = value.parse().map_err(|_| {
                    format!(
                        "-o lru_crawler_tocrawl={value}: not a number of items (a 32-bit number)"
                    )
                })?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }
}

/// How `parse_args` ends when it does not yield a config.
#[derive(Debug)]
pub enum ArgsOutcome {
    /// `--help` or `--version` was printed: exit 0.
    Printed(String),
    /// Refuse to start: a one-line reason.
    Refused(String),
}

impl Config {
    /// Parses and validates argv.
    pub fn parse_args<I, T>(argv: I) -> Result<Config, ArgsOutcome>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args = Args::try_parse_from(argv).map_err(|e| match e.kind() {
            clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                ArgsOutcome::Printed(e.to_string())
            }
            _ => ArgsOutcome::Refused(first_line(&e.to_string())),
        })?;
        Config::validate(args).map_err(ArgsOutcome::Refused)
    }

    /// Checks every flag and builds the configuration, one named step per flag group.
    fn validate(args: Args) -> Result<Config, String> {
        let protocol = protocol(args.protocol, args.enable_sasl, args.auth_file.is_some())?;
        if args.enable_sasl && args.udp_port != 0 {
            return Err("ERROR: Cannot enable UDP while using binary SASL authentication.".into());
        }
        if args.udp_port != 0 && args.auth_file.is_some() {
            return Err(
                "Cannot use UDP with ascii authentication enabled (-U 0 to disable)".to_string(),
            );
        }
        let limit_bytes = memory_limit(&args.memory_limit)?;
        let max_item_bytes = parse_item_size(&args.max_item_size)?;
        if max_item_bytes > limit_bytes / 2 {
            return Err(format!(
                "-I {}: cannot set the item size limit higher than 1/2 of the memory limit (-m {})",
                args.max_item_size, args.memory_limit
            ));
        }
        let tcp_port = tcp_port(args.port)?;
        let extended = Extended::parse(&args.extended)?;
        let prefix_delimiter = prefix_delimiter(args.prefix_delimiter.as_deref())?;
        let mut tls = extended.tls;
        tls.enabled = args.enable_ssl;
        tls.check()?;
        let (listen, notls) = listen_addrs(&args, tcp_port)?;
        if !notls.is_empty() && !tls.enabled {
            return Err("-l notls:…: 'notls' option is valid only when SSL is enabled (-Z)".into());
        }
        Ok(Config {
            udp_listen: udp_addrs(&listen, args.udp_port),
            listen,
            udp_port: args.udp_port,
            notls,
            tls,
            limit_bytes,
            max_connections: conn_limit(args.conn_limit)?,
            threads: threads(args.threads)?,
            max_item_bytes,
            backlog: backlog(args.listen_backlog)?,
            protocol,
            verbosity: args.verbose,
            user: args.user,
            idle_timeout_secs: extended.idle_timeout_secs,
            conn_buffer_limit_bytes: extended.conn_buffer_limit_mb << 20,
            pid_file: args.pid_file,
            io_engine: args.io_engine,
            uring: extended.uring,
            ignored_options: extended.ignored,
            tcp_port,
            floor: args.floor,
            flush_enabled: !args.disable_flush_all,
            cas_enabled: !args.disable_cas,
            shutdown_command: args.enable_shutdown,
            prefix_delimiter: prefix_delimiter.unwrap_or(b':'),
            detail_enabled: prefix_delimiter.is_some(),
            watch_enabled: !args.disable_watch,
            dump_enabled: !args.disable_dumping,
            crawler: extended.crawler,
            auth_file: args.auth_file,
            sasl: args.enable_sasl,
            memory_file: args.memory_file,
        })
    }
}

/// `-D`: its first byte (memcached reads `optarg[0]`).
fn prefix_delimiter(text: Option<&str>) -> Result<Option<u8>, String> {
    match text.map(str::as_bytes) {
        None => Ok(None),
        Some([first, ..]) => Ok(Some(*first)),
        Some([]) => Err("-D: the prefix delimiter must be one character".into()),
    }
}

/// `-B` in memcached 1.6.18's order: `-S` binds connections to binary (a `-B` other
/// than `binary` is refused); then `-Y` binds them to ascii (`-B binary` is refused),
/// so with both and no `-B` connections speak ascii and SASL is never reached.
fn protocol(
    choice: Option<ProtocolChoice>,
    sasl: bool,
    auth: bool,
) -> Result<ProtocolChoice, String> {
    let mut bound = choice;
    if sasl {
        match choice {
            None | Some(ProtocolChoice::Binary) => bound = Some(ProtocolChoice::Binary),
            Some(_) => {
                return Err("ERROR: You cannot allow the ASCII protocol while using SASL.".into())
            }
        }
    }
    if auth {
        return match choice {
            Some(ProtocolChoice::Binary) => Err(
                "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens."
                    .to_string(),
            ),
            _ => Ok(ProtocolChoice::Ascii),
        };
    }
    Ok(bound.unwrap_or(ProtocolChoice::Auto))
}

/// `-m` in bytes.
fn memory_limit(text: &str) -> Result<usize, String> {
    let mb = parse_megabytes(text)?;
    usize::try_from(mb)
        .ok()
        .and_then(|mb| mb.checked_mul(1024 * 1024))
        .ok_or_else(|| format!("-m {text}: too large"))
}

/// `-c`: from 1 to `u32::MAX`.
fn conn_limit(value: i64) -> Result<u32, String> {
    u32::try_from(value).ok().filter(|&c| c > 0).ok_or_else(|| {
        format!(
            "-c {value}: the connection limit must be from 1 to {}",
            u32::MAX
        )
    })
}

/// `-t`: 1 to 256, by default one per online core.
fn threads(value: Option<usize>) -> Result<usize, String> {
    match value {
        Some(0) => Err("-t 0: the number of threads must be at least 1".into()),
        Some(n) if n > 256 => Err(format!("-t {n}: at most 256 threads")),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get())),
    }
}

/// `-b`: from 1 to `i32::MAX`.
fn backlog(value: i64) -> Result<i32, String> {
    i32::try_from(value)
        .ok()
        .filter(|&b| b > 0)
        .ok_or_else(|| format!("-b {value}: the backlog must be from 1 to {}", i32::MAX))
}

/// `-p`. memcached's `-p -1` asks for any free port; ringcache's `-p 0` does too
/// (memcached's turns TCP off, which here is `-s`'s job).
fn tcp_port(value: i32) -> Result<u16, String> {
    match value {
        -1 => Ok(0),
        p => u16::try_from(p).map_err(|_| format!("-p {p}: not a port (0-65535, or -1)")),
    }
}

/// Where to listen: the `-s` unix socket (which turns TCP off, as memcached), else every
/// address of every `-l` entry, each once; and the addresses of the `notls:` entries.
fn listen_addrs(args: &Args, port: u16) -> Result<(Vec<ListenAddr>, Vec<SocketAddr>), String> {
    if let Some(path) = &args.unix_socket {
        let mask = u32::from_str_radix(&args.unix_mask, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .ok_or_else(|| format!("-a {}: not an octal mask", args.unix_mask))?;
        let unix = ListenAddr::Unix {
            path: path.clone(),
            mask,
        };
        return Ok((vec![unix], Vec::new()));
    }
    let mut addrs = Vec::new();
    let (mut notls, mut secure) = (Vec::new(), Vec::new());
    for entry in args.listen.iter().flat_map(|l| l.split(',')) {
        let (plain, entry) = match entry.trim().strip_prefix("notls:") {
            Some(rest) => (true, rest),
            None => (false, entry.trim()),
        };
        for addr in parse_listen(entry, port)? {
            if plain { &mut notls } else { &mut secure }.push(addr);
            let addr = ListenAddr::Tcp(addr);
            if !addrs.contains(&addr) {
                addrs.push(addr);
            }
        }
    }
    if let Some(both) = notls.iter().find(|a| secure.contains(a)) {
        return Err(format!("-l {both}: given both with and without notls:"));
    }
    Ok((addrs, notls))
}

/// `-U`: the hosts of the TCP addresses on `port` (memcached binds UDP on the same
/// interfaces); none when `port` is 0.
fn udp_addrs(listen: &[ListenAddr], port: u16) -> Vec<SocketAddr> {
    let mut addrs = Vec::new();
    if port == 0 {
        return addrs;
    }
    for a in listen {
        if let ListenAddr::Tcp(sa) = a {
            let udp = SocketAddr::new(sa.ip(), port);
            if !addrs.contains(&udp) {
                addrs.push(udp);
            }
        }
    }
    addrs
}

/// The `-o` options ringcache understands; the others are kept to be warned about.
struct Extended {
    tls: crate::server::tls::TlsSettings,
    idle_timeout_secs: u32,
    conn_buffer_limit_mb: usize,
    crawler: CrawlerSettings,
    uring: UringOptions,
    ignored: Vec<String>,
}

/// The optional io_uring features an operator can turn on or off (each is still used
/// only where the startup probe finds it works). The defaults are what measured best
/// (docs/uring-features.md): both off. Uncapped bundles won on bulk input but let
/// flooding connections starve a quiet one; capped ones lost. Zero-copy send lost on
/// loopback at every value size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UringOptions {
    /// Multishot receives take bundles of provided buffers (`-o uring_bundle=0|1`).
    pub bundle: bool,
    /// Sends of at least this many bytes go out zero-copy (`SEND_ZC`); 0: never
    /// (`-o uring_send_zc=BYTES`).
    pub send_zc_min_bytes: usize,
}

impl Extended {
    fn parse(options: &[String]) -> Result<Extended, String> {
        let mut extended = Extended {
            tls: Default::default(),
            idle_timeout_secs: 0,
            conn_buffer_limit_mb: crate::server::buffers::DEFAULT_LIMIT_MB,
            crawler: CrawlerSettings::default(),
            uring: UringOptions::default(),
            ignored: Vec::new(),
        };
        for opt in options.iter().flat_map(|o| o.split(',')) {
            let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
            if extended.crawler.option(key, value)? || extended.tls.option(key, value)? {
                continue;
            }
            match key {
                "idle_timeout" => {
                    extended.idle_timeout_secs = value
                        .parse()
                        .map_err(|_| format!("-o idle_timeout={value}: not a number of seconds"))?;
                }
                "conn_buffer_limit_mb" => {
                    extended.conn_buffer_limit_mb = value
                        .parse()
                        .ok()
                        .filter(|mb: &usize| (1..=1 << 20).contains(mb))
                        .ok_or_else(|| {
                            format!("-o conn_buffer_limit_mb={value}: not a number of megabytes from 1 to 1048576")
                        })?;
                }
                "uring_bundle" => {
                    extended.uring.bundle = match value {
                        "0" => false,
                        "1" => true,
                        _ => return Err(format!("-o uring_bundle={value}: not 0 or 1")),
                    };
                }
                "uring_send_zc" => {
                    extended.uring.send_zc_min_bytes = value.parse().map_err(|_| {
                        format!("-o uring_send_zc={value}: not a number of bytes (0: off)")
                    })?;
                }
                "" => {}
                _ => extended.ignored.push(opt.to_string()),
            }
        }
        Ok(extended)
    }
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim_start_matches("error: ")
        .to_string()
}

/// `-m`: megabytes, with an optional `m` suffix. memcached 1.6.18 reads `-m` with
/// `atoi`, so `-m 512m` is 512 MB there too, but `-m 1g` silently means 1 MB and
/// `-m 1024k` 1024 MB: ringcache refuses those instead of guessing.
fn parse_megabytes(text: &str) -> Result<u64, String> {
    let digits = text.strip_suffix(['m', 'M']).unwrap_or(text);
    let mb: u64 = digits.parse().map_err(|_| {
        format!("-m {text}: not a number of megabytes (memcached's -m takes megabytes: -m 1024, not 1g)")
    })?;
    if mb == 0 {
        return Err(format!(
            "-m {text}: the memory limit must be at least 1 megabyte"
        ));
    }
    Ok(mb)
}

/// `-I`: bytes with an optional k/m suffix, within memcached's bounds.
fn parse_item_size(text: &str) -> Result<usize, String> {
    let (digits, unit) = match text.as_bytes().last() {
        Some(b'k' | b'K') => (&text[..text.len() - 1], 1024),
        Some(b'm' | b'M') => (&text[..text.len() - 1], 1024 * 1024),
        _ => (text, 1),
    };
    let n: usize = digits
        .parse()
        .map_err(|_| format!("-I {text}: not a size (bytes, or a number with k or m)"))?;
    let bytes = n
        .checked_mul(unit)
        .ok_or_else(|| format!("-I {text}: too large"))?;
    if bytes < 1024 {
        return Err(format!(
            "-I {text}: the item size limit cannot be less than 1024 bytes"
        ));
    }
    if bytes > 1024 * 1024 * 1024 {
        return Err(format!(
            "-I {text}: the item size limit cannot be higher than 1 GB"
        ));
    }
    Ok(bytes)
}

/// One `-l` entry: `host`, `host:port`, `[v6]`, `[v6]:port`. A host name stands for
/// every address it resolves to, in the resolver's order (as memcached binds each
/// address `getaddrinfo` gives: `localhost` is 127.0.0.1 and ::1 where both are listed).
fn parse_listen(entry: &str, default_port: u16) -> Result<Vec<SocketAddr>, String> {
    let bad = |why: &str| format!("-l {entry}: {why}");
    if entry.is_empty() {
        return Err(bad("empty address"));
    }
    if let Ok(addr) = entry.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    if let Ok(ip) = entry
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(vec![SocketAddr::new(ip, default_port)]);
    }
    let (host, port) = match entry.rsplit_once(':') {
        Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad("bad port"))?),
        None => (entry, default_port),
    };
    if host == "*" {
        return Ok(vec![SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port,
        )]);
    }
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in (host, port).to_socket_addrs().into_iter().flatten() {
        if !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err(bad("not an address or a host name that resolves"));
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let argv = std::iter::once("ringcache").chain(args.iter().copied());
        Config::parse_args(argv).map_err(|e| match e {
            ArgsOutcome::Printed(s) | ArgsOutcome::Refused(s) => s,
        })
    }

    #[test]
    fn defaults_match_memcached() {
        let c = parse(&[]).unwrap();
        assert_eq!(
            c.listen,
            vec![ListenAddr::Tcp("127.0.0.1:11211".parse().unwrap())]
        );
        assert_eq!(c.limit_bytes, 64 << 20);
        assert_eq!(c.max_connections, 1024);
        assert_eq!(c.max_item_bytes, 1 << 20);
        assert_eq!(c.backlog, 1024);
        assert!(c.threads >= 1);
        assert_eq!(c.io_engine, IoEngine::Auto);
    }

    #[test]
    fn refuses_bad_values_with_one_line() {
        for bad in [
            &["-c", "0"][..],
            &["-t", "0"],
            &["-l", "fooble"],
            &["-I", "100"],
            &["-m", "0"],
            &["-U", "11211", "-Y", "/dev/null"],
            &["-I", "2g"],
            &["-m", "1", "-I", "1m"],
            &["-o", "idle_timeout=x"],
            &["--io-engine", "kqueue"],
            &["-p", "-2"],
            &["-p", "65536"],
            &["-c", "-5"],
            &["-b", "-1"],
            &["-b", "0"],
            &["-m", "1g"],
            &["-m", "1024k"],
            &["-m", "abc"],
        ] {
            let why = parse(bad).expect_err(&format!("{bad:?} must be refused"));
            assert!(!why.contains('\n'), "{bad:?}: {why}");
            assert!(!why.is_empty());
        }
    }

    #[test]
    fn udp_listens_on_the_tcp_hosts() {
        let c = parse(&["-U", "0"]).unwrap();
        assert!(c.udp_listen.is_empty());
        let c = parse(&["-U", "9999", "-l", "127.0.0.1:7000,127.0.0.2"]).unwrap();
        let want: Vec<SocketAddr> = ["127.0.0.1:9999", "127.0.0.2:9999"]
            .map(|a| a.parse().unwrap())
            .to_vec();
        assert_eq!((c.udp_port, c.udp_listen), (9999, want));
    }

    #[test]
    fn negative_numbers_get_a_clear_error_naming_the_flag() {
        assert!(parse(&["-c", "-5"]).unwrap_err().starts_with("-c -5: "));
        assert!(parse(&["-b", "-1"]).unwrap_err().starts_with("-b -1: "));
    }

    #[test]
    fn a_repeated_flag_takes_its_last_value_as_in_memcached() {
        let c = parse(&[
            "-m", "64", "-m", "128", "-c", "5", "-c", "7", "-I", "2m", "-I", "512k",
        ])
        .unwrap();
        assert_eq!(c.limit_bytes, 128 << 20);
        assert_eq!(c.max_connections, 7);
        assert_eq!(c.max_item_bytes, 512 << 10);
        assert_eq!(parse(&["-p", "0", "-p", "5"]).unwrap().tcp_port, 5);
    }

    /// What Debian's memcached 1.6.18 does with each combination (its exit 64 lines).
    #[test]
    fn sasl_binds_binary_and_meets_ascii_auth_as_memcached() {
        use ProtocolChoice::{Ascii, Auto, Binary};
        let bound = |args: &[&str]| parse(args).map(|c| (c.protocol, c.sasl));
        assert_eq!(bound(&[]), Ok((Auto, false)));
        assert_eq!(bound(&["-S"]), Ok((Binary, true)));
        assert_eq!(
            bound(&["--enable-sasl", "-B", "binary"]),
            Ok((Binary, true))
        );
        assert_eq!(bound(&["-S", "-Y", "f"]), Ok((Ascii, true)));
        assert_eq!(bound(&["-Y", "f", "-B", "auto"]), Ok((Ascii, false)));
        let ascii = "ERROR: You cannot allow the ASCII protocol while using SASL.";
        assert_eq!(bound(&["-S", "-B", "ascii"]), Err(ascii.into()));
        assert_eq!(bound(&["-S", "-B", "auto"]), Err(ascii.into()));
        let binary =
            "ERROR: You cannot allow the BINARY protocol while using ascii authentication tokens.";
        assert_eq!(
            bound(&["-S", "-Y", "f", "-B", "binary"]),
            Err(binary.into())
        );
        assert_eq!(
            bound(&["-S", "-U", "11211"]),
            Err("ERROR: Cannot enable UDP while using binary SASL authentication.".into())
        );
    }

    #[test]
    fn memory_limit_takes_an_m_suffix() {
        assert_eq!(parse(&["-m", "512m"]).unwrap().limit_bytes, 512 << 20);
        assert_eq!(parse(&["-m", "512M"]).unwrap().limit_bytes, 512 << 20);
    }

    #[test]
    fn uring_feature_options() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.uring, UringOptions::default());
        let c = parse(&["-o", "uring_bundle=0,uring_send_zc=16384"]).unwrap();
        assert_eq!(
            c.uring,
            UringOptions {
                bundle: false,
                send_zc_min_bytes: 16384
            }
        );
        assert!(c.ignored_options.is_empty());
        for bad in ["uring_bundle=2", "uring_bundle=", "uring_send_zc=big"] {
            parse(&["-o", bad]).expect_err(bad);
        }
    }

    #[test]
    fn switches_for_flush_cas_and_shutdown() {
        let c = parse(&[]).unwrap();
        assert!(c.flush_enabled && c.cas_enabled && !c.shutdown_command);
        let c = parse(&["-F", "-C", "-A"]).unwrap();
        assert!(!c.flush_enabled && !c.cas_enabled && c.shutdown_command);
    }

    #[test]
    fn prefix_delimiter_turns_detail_on_and_watch_can_be_disabled() {
        let c = parse(&[]).unwrap();
        assert!((c.prefix_delimiter, c.detail_enabled, c.watch_enabled) == (b':', false, true));
        let c = parse(&["-D", "/", "-W"]).unwrap();
        assert!((c.prefix_delimiter, c.detail_enabled, c.watch_enabled) == (b'/', true, false));
        assert!(parse(&["-D", ""]).is_err());
    }

    #[test]
    fn listen_forms() {
        let c = parse(&["-p", "0", "-l", "127.0.0.1,[::1]:5000", "-l", "localhost:7"]).unwrap();
        // `localhost` stands for every address the resolver gives for it.
        let mut localhost: Vec<ListenAddr> = Vec::new();
        for a in ("localhost", 7).to_socket_addrs().unwrap() {
            if !localhost.contains(&ListenAddr::Tcp(a)) {
                localhost.push(ListenAddr::Tcp(a));
            }
        }
        assert!(!localhost.is_empty());
        let mut want = vec![
            ListenAddr::Tcp("127.0.0.1:0".parse().unwrap()),
            ListenAddr::Tcp("[::1]:5000".parse().unwrap()),
        ];
        want.extend(localhost);
        assert_eq!(c.listen, want);
    }

    #[test]
    fn a_repeated_listen_address_is_bound_once() {
        let c = parse(&["-p", "0", "-l", "127.0.0.1,127.0.0.1", "-l", "127.0.0.1:0"]).unwrap();
        assert_eq!(
            c.listen,
            vec![ListenAddr::Tcp("127.0.0.1:0".parse().unwrap())]
        );
    }

    #[test]
    fn item_size_suffixes_and_extended_options() {
        let c = parse(&["-I", "2m", "-o", "idle_timeout=5,foo=bar", "-vv"]).unwrap();
        assert_eq!(c.max_item_bytes, 2 << 20);
        assert_eq!(c.idle_timeout_secs, 5);
        assert_eq!(c.ignored_options, vec!["foo=bar".to_string()]);
        assert_eq!(c.verbosity, 2);
        assert_eq!(parse(&["-I", "512k"]).unwrap().max_item_bytes, 512 << 10);
    }

    #[test]
    fn crawler_options_as_memcached() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.crawler, CrawlerSettings::default());
        assert!(c.crawler.enabled && c.crawler.sleep_micros == 100 && c.crawler.tocrawl == 0);
        let c = parse(&[
            "-o",
            "lru_crawler_sleep=5,lru_crawler_tocrawl=7,no_lru_crawler",
        ])
        .unwrap();
        assert_eq!(
            c.crawler,
            CrawlerSettings {
                enabled: false,
                sleep_micros: 5,
                tocrawl: 7
            }
        );
        assert!(
            parse(&["-o", "no_lru_crawler,lru_crawler"])
                .unwrap()
                .crawler
                .enabled
        );
        assert!(c.ignored_options.is_empty());
        for bad in [
            "lru_crawler_sleep=1000001",
            "lru_crawler_sleep=-1",
            "lru_crawler_sleep=abc",
            "lru_crawler_sleep",
            "lru_crawler_tocrawl=-1",
            "lru_crawler_tocrawl=abc",
            "lru_crawler_tocrawl",
        ] {
            let why = parse(&["-o", bad]).expect_err(bad);
            assert!(
                why.starts_with(&format!("-o {}", bad.split('=').next().unwrap())),
                "{why}"
            );
        }
    }

    #[test]
    fn port_minus_one_is_any_free_port_as_in_memcached() {
        for p in ["-1", "0"] {
            assert_eq!(
                parse(&["-p", p]).unwrap().listen,
                vec![ListenAddr::Tcp("127.0.0.1:0".parse().unwrap())]
            );
        }
    }

    #[test]
    fn unix_socket_replaces_tcp() {
        // memcached ignores -p and -l once -s is given: no TCP at all.
        let c = parse(&[
            "-s",
            "/tmp/x.sock",
            "-a",
            "770",
            "-p",
            "11311",
            "-l",
            "0.0.0.0",
        ])
        .unwrap();
        assert_eq!(
            c.listen,
            vec![ListenAddr::Unix {
                path: "/tmp/x.sock".into(),
                mask: 0o770
            }]
        );
    }
}
