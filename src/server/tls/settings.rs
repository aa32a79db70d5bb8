//! memcached's TLS options: `-Z` and the `-o ssl_*` options, with memcached 1.6.18's
//! names, defaults and refusals (checked against Debian's `memcached -Z`), and what
//! `stats settings` prints for them.
//!
//! | option | ringcache |
//! |---|---|
//! | `ssl_chain_cert=FILE` | the server's certificate chain (PEM), required with `-Z` |
//! | `ssl_key=FILE` | its private key (PEM: PKCS#8, PKCS#1 or SEC1), required with `-Z` |
//! | `ssl_ca_cert=FILE` | the CAs (PEM) client certificates are verified against |
//! | `ssl_verify_mode=0..3` | 0 none, 1 ask for a client certificate (verify it if given), 2 require one, 3 as 2 (OpenSSL's "client once" means nothing without renegotiation); `stats settings` prints OpenSSL's flags (0, 1, 3, 7) as memcached does |
//! | `ssl_min_version=0..3` (or `tlsv1.0`…`tlsv1.3`) | 3 is TLS 1.3 only; 0–2 mean TLS 1.2 and 1.3, the only versions rustls speaks (`stats settings` says `tlsv1.2`) |
//! | `ssl_ciphers=LIST` | `:`-separated TLS 1.2 suites by OpenSSL or IANA name; the TLS 1.3 suites stay (as OpenSSL's cipher list does not touch them); a list that names none is refused |
//! | `ssl_session_cache` | server-side session cache (TLS 1.2 ids, TLS 1.3 tickets); off: no resumption |
//! | `ssl_keyformat=1` | PEM only (memcached's 1); another value is refused |
//! | `ssl_wbuf_size=KB` | recorded for `stats settings` (records are sized by rustls) |
//! | `ssl_kernel_tls` | accepted (`stats settings` says `yes`); sessions stay in userspace, as OpenSSL keeps them where the kernel cannot take them: the startup log says why, `ringcache_ktls_fallbacks` counts them (see `super`) |
//!
//! Knows no sockets and no rustls: `super` turns these into a rustls configuration.

use std::path::PathBuf;

/// Protocol versions from memcached's `ssl_min_version` numbers: what rustls can offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MinVersion {
    /// 0, 1 or 2: TLS 1.2 and 1.3.
    Tls12,
    /// 3: TLS 1.3 only.
    Tls13,
}

/// `ssl_verify_mode`: whether clients show a certificate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyMode {
    /// 0: no client certificate asked for.
    None,
    /// 1: asked for; verified against `ssl_ca_cert` if given, a client without one is
    /// served.
    Request,
    /// 2: required and verified.
    Require,
    /// 3: as 2 (OpenSSL's `SSL_VERIFY_CLIENT_ONCE` added).
    RequireOnce,
}

impl VerifyMode {
    /// OpenSSL's flags, as memcached's `stats settings` prints them.
    pub fn openssl_flags(self) -> u8 {
        match self {
            VerifyMode::None => 0,
            VerifyMode::Request => 1,
            VerifyMode::Require => 3,
            VerifyMode::RequireOnce => 7,
        }
    }
}

/// The TLS settings from `-Z` and `-o ssl_*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// `-Z`.
    pub enabled: bool,
    pub chain_cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    pub ca_cert: Option<PathBuf>,
    pub verify_mode: VerifyMode,
    pub min_version: MinVersion,
    /// `ssl_ciphers` as given.
    pub ciphers: Option<String>,
    pub session_cache: bool,
    /// `ssl_wbuf_size` in bytes (memcached's default 16 KiB).
    pub wbuf_bytes: usize,
    /// `ssl_kernel_tls`: hand sessions to the kernel where it can take them.
    pub kernel_tls: bool,
}

impl Default for TlsSettings {
    fn default() -> TlsSettings {
        TlsSettings {
            enabled: false,
            chain_cert: None,
            key: None,
            ca_cert: None,
            verify_mode: VerifyMode::None,
            min_version: MinVersion::Tls12,
            ciphers: None,
            session_cache: false,
            wbuf_bytes: 16 * 1024,
            kernel_tls: false,
        }
    }
}

impl TlsSettings {
    /// Takes `-o key[=value]` if it is one of the TLS options; `Ok(false)` if not.
    pub fn option(&mut self, key: &str, value: &str) -> Result<bool, String> {
        let path = || Some(PathBuf::from(value));
        match key {
            "ssl_chain_cert" => self.chain_cert = path(),
            "ssl_key" => self.key = path(),
            "ssl_ca_cert" => self.ca_cert = path(),
            "ssl_verify_mode" => {
                self.verify_mode = match value {
                    "0" => VerifyMode::None,
                    "1" => VerifyMode::Request,
                    "2" => VerifyMode::Require,
                    "3" => VerifyMode::RequireOnce,
                    _ => {
                        return Err(format!(
                            "-o ssl_verify_mode={value}: Invalid ssl_verify_mode (0 none, 1 request, 2 require, 3 once)"
                        ))
                    }
                }
            }
            "ssl_min_version" => {
                self.min_version = match value {
                    "0" | "1" | "2" | "tlsv1.0" | "tlsv1.1" | "tlsv1.2" => MinVersion::Tls12,
                    "3" | "tlsv1.3" => MinVersion::Tls13,
                    _ => {
                        return Err(format!(
                            "-o ssl_min_version={value}: Invalid ssl_min_version (0 tlsv1.0, 1 tlsv1.1, 2 tlsv1.2, 3 tlsv1.3)"
                        ))
                    }
                }
            }
            "ssl_ciphers" => self.ciphers = Some(value.to_string()),
            "ssl_session_cache" => self.session_cache = true,
            "ssl_keyformat" => {
                if value != "1" {
                    return Err(format!(
                        "-o ssl_keyformat={value}: only PEM keys (1) are supported"
                    ));
                }
            }
            "ssl_wbuf_size" => {
                let kb: usize = value
                    .parse()
                    .ok()
                    .filter(|kb| (1..=1 << 20).contains(kb))
                    .ok_or_else(|| {
                        format!("-o ssl_wbuf_size={value}: not a number of kilobytes")
                    })?;
                self.wbuf_bytes = kb * 1024;
            }
            "ssl_kernel_tls" => self.kernel_tls = true,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// What `-Z` needs besides itself, checked before anything is read.
    pub fn check(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        if self.chain_cert.is_none() {
            return Err(
                "-Z: Error loading the certificate chain: no -o ssl_chain_cert=FILE given".into(),
            );
        }
        if self.key.is_none() {
            return Err("-Z: Error loading the key: no -o ssl_key=FILE given".into());
        }
        if self.verify_mode != VerifyMode::None && self.ca_cert.is_none() {
            return Err(format!(
                "-o ssl_verify_mode={}: client certificates need -o ssl_ca_cert=FILE to be verified against",
                self.verify_mode.openssl_flags().min(3)
            ));
        }
        Ok(())
    }

    /// `ssl_min_version` as `stats settings` prints it: what is in force.
    pub fn min_version_name(&self) -> &'static str {
        match self.min_version {
            MinVersion::Tls12 => "tlsv1.2",
            MinVersion::Tls13 => "tlsv1.3",
        }
    }
}

/// The TLS 1.2 suites rustls has, by OpenSSL's name and IANA's.
pub(super) const TLS12_SUITE_NAMES: &[(&str, &str)] = &[
    (
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
    (
        "ECDHE-RSA-AES256-GCM-SHA384",
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    ),
    (
        "ECDHE-RSA-AES128-GCM-SHA256",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    ),
    (
        "ECDHE-RSA-CHACHA20-POLY1305",
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    ),
];

/// The IANA names of the TLS 1.2 suites `list` (OpenSSL's `:`-separated syntax) names;
/// words that name no suite rustls has are skipped. Empty: the list names none.
pub(super) fn tls12_suites(list: &str) -> Vec<&'static str> {
    let mut named = Vec::new();
    for word in list.split([':', ' ']).filter(|w| !w.is_empty()) {
        let found = TLS12_SUITE_NAMES.iter().find(|(openssl, iana)| {
            word.eq_ignore_ascii_case(openssl) || word.eq_ignore_ascii_case(iana)
        });
        if let Some(&(_, iana)) = found {
            if !named.contains(&iana) {
                named.push(iana);
            }
        }
    }
    named
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(options: &[(&str, &str)]) -> Result<TlsSettings, String> {
        let mut s = TlsSettings {
            enabled: true,
            ..TlsSettings::default()
        };
        for (k, v) in options {
            assert!(s.option(k, v)?, "{k} is a TLS option");
        }
        s.check()?;
        Ok(s)
    }

    #[test]
    fn memcached_defaults_and_refusals() {
        let files = [("ssl_chain_cert", "c.pem"), ("ssl_key", "k.pem")];
        let s = parse(&files).unwrap();
        assert_eq!(s.verify_mode.openssl_flags(), 0);
        assert_eq!(s.min_version_name(), "tlsv1.2");
        assert_eq!(s.wbuf_bytes, 16384);
        assert!(parse(&files[..1])
            .unwrap_err()
            .contains("Error loading the key"));
        assert!(parse(&[]).unwrap_err().contains("certificate chain"));
        for (k, v) in [
            ("ssl_verify_mode", "4"),
            ("ssl_min_version", "5"),
            ("ssl_keyformat", "2"),
            ("ssl_wbuf_size", "x"),
        ] {
            let mut s = TlsSettings::default();
            assert!(s.option(k, v).is_err(), "{k}={v} refused");
        }
        let mut s = TlsSettings::default();
        assert_eq!(s.option("idle_timeout", "3"), Ok(false));
        assert_eq!(s.option("ssl_kernel_tls", ""), Ok(true));
        assert!(s.kernel_tls);
    }

    #[test]
    fn verify_modes_print_openssl_flags_and_need_a_ca() {
        let files = [("ssl_chain_cert", "c.pem"), ("ssl_key", "k.pem")];
        for (mode, flags) in [("1", 1), ("2", 3), ("3", 7)] {
            let mut opts = files.to_vec();
            opts.push(("ssl_verify_mode", mode));
            assert!(parse(&opts).unwrap_err().contains("ssl_ca_cert"));
            opts.push(("ssl_ca_cert", "ca.pem"));
            assert_eq!(parse(&opts).unwrap().verify_mode.openssl_flags(), flags);
        }
    }

    #[test]
    fn min_version_numbers_and_names() {
        for (v, want) in [
            ("0", "tlsv1.2"),
            ("2", "tlsv1.2"),
            ("3", "tlsv1.3"),
            ("tlsv1.3", "tlsv1.3"),
        ] {
            let mut s = TlsSettings::default();
            s.option("ssl_min_version", v).unwrap();
            assert_eq!(s.min_version_name(), want);
        }
    }

    #[test]
    fn cipher_lists_by_openssl_or_iana_name() {
        assert_eq!(
            tls12_suites("ECDHE-ECDSA-AES128-GCM-SHA256:HIGH:!aNULL"),
            ["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"]
        );
        assert_eq!(
            tls12_suites("tls_ecdhe_rsa_with_aes_256_gcm_sha384:ECDHE-RSA-AES256-GCM-SHA384"),
            ["TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"]
        );
        assert!(tls12_suites("BOGUS").is_empty());
    }
}
