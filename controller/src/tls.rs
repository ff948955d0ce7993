//! TLS for the control channels (rustls, ring provider), in the `ovs-pki` workflow OVS
//! documents: every peer holds a private key and a certificate signed by a CA, and each side
//! checks the other's certificate against the CA it was told to trust.
//!
//! - [`server_config`]: the OpenFlow and OVSDB listeners. A client certificate is *required*
//!   and must chain to `--tls-ca` (for `ovs-pki`: `switchca/cacert.pem`); a peer without one,
//!   with one from another CA, or speaking plain TCP fails the handshake and is closed.
//! - [`client_config`]: dialing a host's `ssl:IP:PORT` OVSDB server, with our certificate. The
//!   server's certificate must chain to the CA; its *name* is not checked, as OVS does not
//!   check it either (`ovs-pki` certificates name a host, not an address): the identity check
//!   is ours, by [`PeerIdentity`], against the host record.
//! - [`PeerIdentity`]: what a verified certificate says about its holder: the subject's common
//!   name and the SHA-256 fingerprint of the certificate. `ovs-pki req+sign NAME` writes
//!   `CN = NAME id:UUID`; a host record's `cert_cn` may name `NAME`, the whole CN, or
//!   `sha256:HEX` ([`PeerIdentity::matches`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use sha2::{Digest, Sha256};

/// Peers refused on the control channels, counted for `GET /metrics` (each is also logged).
pub mod refused {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Which listener or dialer refused.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Channel {
        /// OpenFlow (switches).
        OpenFlow = 0,
        /// OVSDB (hosts), dialled or dialling in.
        Ovsdb = 1,
    }

    /// Why.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Reason {
        /// The TLS handshake failed or timed out: no certificate, another CA's, plain TCP.
        Handshake = 0,
        /// A valid certificate that does not belong to the datapath or host it claims.
        Identity = 1,
    }

    static COUNTS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

    /// Counts one refusal.
    pub fn count(channel: Channel, reason: Reason) {
        COUNTS[channel as usize * 2 + reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every (channel, reason) with its count, as metric labels name them.
    pub fn counts() -> [(&'static str, &'static str, u64); 4] {
        let n = |i: usize| COUNTS[i].load(Ordering::Relaxed);
        [
            ("openflow", "handshake", n(0)),
            ("openflow", "identity", n(1)),
            ("ovsdb", "handshake", n(2)),
            ("ovsdb", "identity", n(3)),
        ]
    }
}

/// The three files of one TLS identity, as `ovs-vsctl set-ssl KEY CERT CACERT` takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Our private key (PEM).
    pub key: PathBuf,
    /// Our certificate (PEM; a chain may follow it).
    pub cert: PathBuf,
    /// The CA certificates a peer's certificate must chain to (PEM, one or more).
    pub ca: PathBuf,
}

/// The error of a key that does not belong to its certificate.
fn mismatch(key: &Path, cert: &Path) -> String {
    format!(
        "the key {} does not fit the certificate {}",
        key.display(),
        cert.display()
    )
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn load_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("reading certificates from {}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("reading certificates from {}", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

fn load_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    PrivateKeyDer::from_pem_file(path)
        .with_context(|| format!("reading the private key from {}", path.display()))
}

fn load_roots(path: &Path) -> anyhow::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .with_context(|| format!("a CA certificate in {}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// The listeners' configuration: our certificate, and a client certificate required from
/// every peer, chaining to `files.ca`.
pub fn server_config(files: &TlsFiles) -> anyhow::Result<Arc<ServerConfig>> {
    let provider = provider();
    let verifier =
        WebPkiClientVerifier::builder_with_provider(load_roots(&files.ca)?, provider.clone())
            .build()
            .context("building the client certificate verifier")?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(&files.cert)?, load_key(&files.key)?)
        .with_context(|| mismatch(&files.key, &files.cert))?;
    Ok(Arc::new(config))
}

/// The REST API's configuration (`--api-tls-key/--api-tls-cert`): our certificate, no client
/// certificate (clients authenticate with bearer tokens).
pub fn api_server_config(key: &Path, cert: &Path) -> anyhow::Result<Arc<ServerConfig>> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_no_client_auth()
        .with_single_cert(load_certs(cert)?, load_key(key)?)
        .with_context(|| mismatch(key, cert))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The dialer's configuration: our certificate for the server, whose certificate must chain
/// to `files.ca` (its name is not checked: see the module doc).
pub fn client_config(files: &TlsFiles) -> anyhow::Result<Arc<ClientConfig>> {
    let provider = provider();
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        load_roots(&files.ca)?,
        provider.clone(),
    )
    .build()
    .context("building the server certificate verifier")?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(ChainOnly(webpki)))
        .with_client_auth_cert(load_certs(&files.cert)?, load_key(&files.key)?)
        .with_context(|| mismatch(&files.key, &files.cert))?;
    Ok(Arc::new(config))
}

/// A server certificate verifier that checks the chain, validity and signatures like webpki,
/// but not the name: `ovs-pki` certificates carry a host name, and hosts are dialed by address.
#[derive(Debug)]
struct ChainOnly(Arc<rustls::client::WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        use rustls::CertificateError as E;
        // webpki checks the name only after the chain verified, so a name error proves the
        // chain good.
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(rustls::Error::InvalidCertificate(
                E::NotValidForName | E::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The identity a verified peer certificate proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The subject's common name (empty when it has none).
    pub cn: String,
    /// SHA-256 of the certificate (DER).
    pub fingerprint: [u8; 32],
}

impl PeerIdentity {
    /// The identity of a certificate.
    pub fn from_der(der: &[u8]) -> Self {
        Self {
            cn: subject_cn(der).unwrap_or_default(),
            fingerprint: Sha256::digest(der).into(),
        }
    }

    /// The identity of the end-entity certificate of a completed handshake, if any.
    pub fn of_peer(certs: Option<&[CertificateDer<'_>]>) -> Option<Self> {
        certs?.first().map(|c| Self::from_der(c.as_ref()))
    }

    /// The name `ovs-pki req+sign NAME` gave: the CN before its ` id:UUID` suffix.
    pub fn name(&self) -> &str {
        self.cn.split(" id:").next().unwrap_or(&self.cn)
    }

    /// `sha256:HEX`, as a host's `cert_cn` may name a certificate.
    pub fn fingerprint_text(&self) -> String {
        format!("sha256:{}", hex::encode(self.fingerprint))
    }

    /// Whether this certificate is the one `expected` (a host's `cert_cn`) names: its
    /// `ovs-pki` name, its whole CN, or `sha256:HEX` of the certificate.
    pub fn matches(&self, expected: &str) -> bool {
        if let Some(hex_fp) = expected.strip_prefix("sha256:") {
            let want = hex_fp.replace(':', "").to_ascii_lowercase();
            return want == hex::encode(self.fingerprint);
        }
        !expected.is_empty() && (expected == self.cn || expected == self.name())
    }
}

impl std::fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CN={:?} {}", self.cn, self.fingerprint_text())
    }
}

/// The subject common name of an X.509 certificate (DER), read with a minimal bounded DER
/// walk: Certificate → tbsCertificate → [version] serial signature issuer validity subject.
/// `None` for anything it cannot read; only certificates rustls already verified reach it.
pub fn subject_cn(der: &[u8]) -> Option<String> {
    let (_, cert, _) = der_read(der)?; // Certificate SEQUENCE
    let (_, tbs, _) = der_read(cert)?; // tbsCertificate SEQUENCE
    let mut rest = tbs;
    let (tag, _, r) = der_read(rest)?;
    if tag == 0xa0 {
        rest = r; // [0] version
    }
    for _ in 0..4 {
        // serial, signature, issuer, validity
        let (_, _, r) = der_read(rest)?;
        rest = r;
    }
    let (_, subject, _) = der_read(rest)?;
    let mut rdns = subject;
    while !rdns.is_empty() {
        let (_, set, r) = der_read(rdns)?;
        rdns = r;
        let mut atvs = set;
        while !atvs.is_empty() {
            let (_, atv, r) = der_read(atvs)?;
            atvs = r;
            let (oid_tag, oid, value) = der_read(atv)?;
            // id-at-commonName, 2.5.4.3
            if oid_tag == 0x06 && oid == [0x55, 0x04, 0x03] {
                let (_, v, _) = der_read(value)?;
                return String::from_utf8(v.to_vec()).ok();
            }
        }
    }
    None
}

/// One DER element: (tag, contents, the bytes after it).
fn der_read(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *b.first()?;
    let first = *b.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    let contents = b.get(header..end)?;
    Some((tag, contents, &b[end..]))
}

/// A bearer-free warning for listeners that accept unauthenticated peers beyond loopback.
pub fn warn_if_open(what: &str, addr: std::net::SocketAddr) {
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "{what} listens beyond loopback without authentication: anyone who reaches it is trusted (see README, Security)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_walk_refuses_truncation() {
        assert_eq!(der_read(&[0x30, 0x05, 1, 2]), None);
        assert_eq!(der_read(&[0x30, 0x82, 0x00]), None);
        assert_eq!(
            der_read(&[0x30, 0x01, 7, 9]),
            Some((0x30, &[7u8][..], &[9u8][..]))
        );
        assert_eq!(subject_cn(&[0x30, 0x00]), None);
        assert_eq!(subject_cn(&[]), None);
    }

    #[test]
    fn identity_matches_name_cn_or_fingerprint() {
        let id = PeerIdentity {
            cn: "hv1 id:d204e57d-f492-4268-8356-13adb1fc68c8".into(),
            fingerprint: [0xab; 32],
        };
        assert_eq!(id.name(), "hv1");
        assert!(id.matches("hv1"));
        assert!(id.matches("hv1 id:d204e57d-f492-4268-8356-13adb1fc68c8"));
        assert!(id.matches(&format!("sha256:{}", "AB".repeat(32))));
        assert!(!id.matches("hv2"));
        assert!(!id.matches("hv"));
        assert!(!id.matches(""));
        assert!(!id.matches("sha256:00"));
    }
}
