//! `--tls`: the rustls client side of a connection (ring provider, as the server).
//!
//! The handshake is done blocking, connection by connection, before the socket turns
//! non-blocking, and timed: the report gives handshakes per second. After it the
//! driver moves bytes through [`Tls`] instead of the socket (see `driver`).
//!
//! With no `--tls-ca` every server certificate is accepted (signatures are still
//! checked, so the handshake costs what a real one does): this is a benchmark client,
//! not a secure one.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::net::TcpStream;
use std::sync::Arc;

/// The client configuration every connection starts from.
pub fn client_config(ca: Option<&str>) -> Result<Arc<ClientConfig>, String> {
    let provider = Arc::new(ring_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .map_err(|e| format!("--tls: {e}"))?;
    let config = match ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in
                CertificateDer::pem_file_iter(path).map_err(|e| format!("--tls-ca {path}: {e}"))?
            {
                let cert = cert.map_err(|e| format!("--tls-ca {path}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("--tls-ca {path}: {e}"))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// rustls 0.23.48 marks the ring provider deprecated (no post-quantum key exchange);
/// the server uses it too (see `src/server/tls.rs`).
#[allow(deprecated)]
fn ring_provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}

/// Runs the handshake on a blocking `stream`; `host` is the name sent as SNI and, with
/// `--tls-ca`, checked against the certificate.
pub fn handshake(
    config: &Arc<ClientConfig>,
    host: &str,
    stream: &mut TcpStream,
) -> Result<ClientConnection, String> {
    let name = ServerName::try_from(host.to_string()).map_err(|e| format!("--tls: {host}: {e}"))?;
    let mut tls = ClientConnection::new(config.clone(), name).map_err(|e| format!("--tls: {e}"))?;
    while tls.is_handshaking() {
        tls.complete_io(stream)
            .map_err(|e| format!("TLS handshake failed: {e}"))?;
    }
    Ok(tls)
}

/// Accepts any certificate whose handshake signature verifies.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
