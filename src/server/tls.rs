//! TLS (`-Z`): the rustls server configuration every TLS connection starts from, its
//! reload (`refresh_certs`, SIGHUP), the TLS counters and what `stats` and `stats
//! settings` print for them. The per-connection side is [`session`]; the options are
//! [`settings`].
//!
//! TLS runs in userspace, inside the connection (see `session`): engines move
//! ciphertext exactly as they move plaintext, and know nothing of it. The crypto
//! provider is rustls' `ring` one: it builds with a C compiler alone and quickly
//! (aws-lc-rs compiles a far larger C library), offline from the registry, and supports
//! every suite and key type memcached's OpenSSL setup is used with (ECDSA, RSA, Ed25519
//! keys; AES-GCM and ChaCha20-Poly1305; X25519, P-256, P-384). It lacks the
//! post-quantum hybrid exchange (see `provider`).
//!
//! Certificates and keys are read when the server starts (a failure refuses the start,
//! exit 64, in memcached's words) and again on `refresh_certs` or SIGHUP: a reload that
//! fails keeps the configuration in force. A new configuration serves connections
//! accepted after it; connections already open keep theirs. The server-side session
//! cache (`ssl_session_cache`) is one store that outlives reloads.
//!
//! `notls:` listeners serve plaintext: a connection is TLS unless its socket's local
//! address is one of theirs (checked only when there are some; a unix socket is always
//! plaintext, as memcached's).
//!
//! Counters (rare events, so shared atomics rather than per-worker stats):
//! `ssl_handshake_errors` (a connection that failed before its handshake completed:
//! garbage instead of a ClientHello, a refused or missing client certificate, no
//! common version or suite), `ssl_proto_errors` (ringcache's own: a TLS error after
//! the handshake, such as a record that does not decrypt), `ssl_new_sessions`
//! (sessions put into the session cache; printed only with `ssl_session_cache`, as
//! memcached), and `ringcache_ktls_fallbacks` (with `ssl_kernel_tls`: sessions whose
//! handshake completed and stayed in userspace, which is every one, since the hand-off
//! to the kernel's TLS is not built; the start-up log says what the kernel answered
//! when asked for it, on this project's machines that it cannot: `CONFIG_TLS` unset).

pub(crate) mod session;
pub mod settings;

pub use settings::TlsSettings;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{
    NoServerSessionStorage, ServerSessionMemoryCache, StoresServerSessions, WebPkiClientVerifier,
};
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use settings::{MinVersion, VerifyMode};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use super::stats_report::StatFn;

/// Sessions the server-side cache holds at most (OpenSSL's default cache size).
const SESSION_CACHE_ENTRIES: usize = 20 * 1024;

/// The shared TLS state: one per server, set at startup when `-Z` is given.
#[derive(Debug)]
pub struct Tls {
    settings: TlsSettings,
    /// What new connections start from; replaced whole by a reload.
    config: RwLock<Arc<ServerConfig>>,
    /// The session cache every configuration shares.
    sessions: Arc<dyn StoresServerSessions>,
    /// The bound addresses of `notls:` listeners.
    plain: Vec<SocketAddr>,
    /// When the certificates were last loaded.
    refreshed: Mutex<Instant>,
    handshake_errors: AtomicU64,
    proto_errors: AtomicU64,
    new_sessions: Arc<AtomicU64>,
    /// Sessions kept in userspace although `ssl_kernel_tls` asked for the kernel.
    kernel_fallbacks: AtomicU64,
}

impl Tls {
    /// Reads the certificate, key and CA files of `settings` (`-Z` given) and builds
    /// the configuration; `plain` are the bound addresses of the `notls:` listeners.
    pub fn load(settings: TlsSettings, plain: Vec<SocketAddr>) -> Result<Tls, String> {
        settings.check()?;
        let new_sessions = Arc::new(AtomicU64::new(0));
        let sessions: Arc<dyn StoresServerSessions> = if settings.session_cache {
            Arc::new(CountedSessions {
                cache: ServerSessionMemoryCache::new(SESSION_CACHE_ENTRIES),
                new: Arc::clone(&new_sessions),
            })
        } else {
            Arc::new(NoServerSessionStorage {})
        };
        let config = build(&settings, &sessions)?;
        Ok(Tls {
            settings,
            config: RwLock::new(Arc::new(config)),
            sessions,
            plain,
            refreshed: Mutex::new(Instant::now()),
            handshake_errors: AtomicU64::new(0),
            proto_errors: AtomicU64::new(0),
            new_sessions,
            kernel_fallbacks: AtomicU64::new(0),
        })
    }

    /// Rereads the files (`refresh_certs`, SIGHUP). On failure the configuration in
    /// force stays, and the error is memcached's line (without its `\r\n`).
    pub fn refresh(&self) -> Result<(), String> {
        let config = build(&self.settings, &self.sessions)?;
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(config);
        *self.refreshed.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        Ok(())
    }

    /// Whether a connection whose socket has local address `local` (asked only when
    /// some listeners are `notls:`) speaks TLS.
    pub(crate) fn applies(&self, local: impl FnOnce() -> Option<SocketAddr>) -> bool {
        if self.plain.is_empty() {
            return true;
        }
        let Some(local) = local() else {
            return true;
        };
        !self.plain.iter().any(|l| {
            l.port() == local.port()
                && l.is_ipv4() == local.is_ipv4()
                && (l.ip().is_unspecified() || l.ip() == local.ip())
        })
    }

    /// The configuration a new connection starts from.
    pub(crate) fn config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// A connection failed: during its handshake, or after it.
    pub(crate) fn count_error(&self, handshaking: bool) {
        let counter = if handshaking {
            &self.handshake_errors
        } else {
            &self.proto_errors
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection's handshake completed: with `ssl_kernel_tls`, its session is one
    /// more kept in userspace.
    pub(crate) fn count_established(&self) {
        if self.settings.kernel_tls {
            self.kernel_fallbacks.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Sessions kept in userspace although `ssl_kernel_tls` asked for the kernel.
    pub fn kernel_fallbacks(&self) -> u64 {
        self.kernel_fallbacks.load(Ordering::Relaxed)
    }

    pub fn handshake_errors(&self) -> u64 {
        self.handshake_errors.load(Ordering::Relaxed)
    }

    /// The `stats` lines, where memcached 1.6.18 prints them (after `log_watchers`).
    pub(super) fn stats(&self, stat: &mut StatFn<'_>) {
        if self.settings.session_cache {
            stat(
                "ssl_new_sessions",
                &self.new_sessions.load(Ordering::Relaxed),
            );
        }
        stat("ssl_handshake_errors", &self.handshake_errors());
        stat(
            "ssl_proto_errors",
            &self.proto_errors.load(Ordering::Relaxed),
        );
        let since = self
            .refreshed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed()
            .as_secs();
        stat("time_since_server_cert_refresh", &since);
    }
}

/// The `ssl_*` lines of `stats settings`, in memcached 1.6.18's order: with `-Z` all of
/// them as 1.6.18 prints them; without, the ones that say "none" (as before TLS).
pub(super) fn settings_stats(tls: Option<&Tls>, stat: &mut StatFn<'_>) {
    let Some(tls) = tls else {
        stat("ssl_enabled", &"no");
        stat("ssl_chain_cert", &"(null)");
        stat("ssl_key", &"(null)");
        stat("ssl_verify_mode", &0);
        stat("ssl_ciphers", &"NULL");
        stat("ssl_ca_cert", &"NULL");
        stat("ssl_session_cache", &"no");
        stat("ssl_kernel_tls", &"no");
        return;
    };
    let s = &tls.settings;
    let path = |p: &Option<std::path::PathBuf>, none: &str| {
        p.as_ref()
            .map_or(none.to_string(), |p| p.display().to_string())
    };
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    stat("ssl_enabled", &"yes");
    stat("ssl_chain_cert", &path(&s.chain_cert, "(null)"));
    stat("ssl_key", &path(&s.key, "(null)"));
    stat("ssl_verify_mode", &s.verify_mode.openssl_flags());
    stat("ssl_keyformat", &1);
    stat("ssl_ciphers", &s.ciphers.as_deref().unwrap_or("NULL"));
    stat("ssl_ca_cert", &path(&s.ca_cert, "NULL"));
    stat("ssl_wbuf_size", &s.wbuf_bytes);
    stat("ssl_session_cache", &yes_no(s.session_cache));
    stat("ssl_kernel_tls", &yes_no(s.kernel_tls));
    stat("ssl_min_version", &s.min_version_name());
}

/// Builds a configuration from the files, with memcached's error lines.
fn build(
    settings: &TlsSettings,
    sessions: &Arc<dyn StoresServerSessions>,
) -> Result<ServerConfig, String> {
    let (Some(chain_path), Some(key_path)) = (&settings.chain_cert, &settings.key) else {
        return Err("Error TLS not enabled".to_string());
    };
    let chain = read_certs(chain_path).map_err(|e| {
        format!(
            "Error loading the certificate chain: {}: {e}",
            chain_path.display()
        )
    })?;
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| format!("Error loading the key: {}: {e}", key_path.display()))?;
    let provider = Arc::new(provider(settings)?);
    let versions: &[&SupportedProtocolVersion] = match settings.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(versions)
        .map_err(|e| format!("Error setting the provided cipher(s): {e}"))?;
    let roots =
        match &settings.ca_cert {
            Some(path) => Some(read_roots(path).map_err(|e| {
                format!("Error loading the CA certificate: {}: {e}", path.display())
            })?),
            None => None,
        };
    let builder = match (settings.verify_mode, roots) {
        (VerifyMode::None, _) | (_, None) => builder.with_no_client_auth(),
        (mode, Some(roots)) => {
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            if mode == VerifyMode::Request {
                verifier = verifier.allow_unauthenticated();
            }
            let verifier = verifier
                .build()
                .map_err(|e| format!("Error loading the CA certificate: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("Error validating the certificate: {e}"))?;
    config.session_storage = Arc::clone(sessions);
    if !settings.session_cache {
        config.send_tls13_tickets = 0;
    }
    Ok(config)
}

/// rustls' ring provider, its TLS 1.2 suites narrowed to `ssl_ciphers` if given.
/// rustls 0.23.48 marks it deprecated because ring has no post-quantum key exchange
/// (X25519MLKEM768); the classic groups (X25519, P-256, P-384) are what memcached's
/// OpenSSL 3.0 clients offer anyway. Moving to aws-lc-rs is the way to that exchange.
#[allow(deprecated)]
fn provider(settings: &TlsSettings) -> Result<CryptoProvider, String> {
    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(list) = &settings.ciphers {
        let named = settings::tls12_suites(list);
        if named.is_empty() {
            return Err(format!("Error setting the provided cipher(s): {list}"));
        }
        provider.cipher_suites.retain(|suite| {
            suite.tls13().is_some() || named.contains(&format!("{:?}", suite.suite()).as_str())
        });
    }
    Ok(provider)
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| e.to_string())?;
    if certs.is_empty() {
        return Err("no certificate in it".to_string());
    }
    Ok(certs)
}

fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    Ok(roots)
}

/// The session cache, counting what it stores (`ssl_new_sessions`).
#[derive(Debug)]
struct CountedSessions {
    cache: Arc<ServerSessionMemoryCache>,
    new: Arc<AtomicU64>,
}

impl StoresServerSessions for CountedSessions {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let stored = self.cache.put(key, value);
        if stored {
            self.new.fetch_add(1, Ordering::Relaxed);
        }
        stored
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache.get(key)
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.cache.take(key)
    }

    fn can_cache(&self) -> bool {
        self.cache.can_cache()
    }
}
