//! Pending challenge answers, read on the request/handshake path.
//!
//! Owns: the HTTP-01 token → key-authorization map and the TLS-ALPN-01
//! domain → challenge-certificate map (RFC 8737: self-signed, SAN = the
//! domain, a *critical* `id-pe-acmeIdentifier` (1.3.6.1.5.5.7.1.31) holding
//! SHA-256 of the key authorization).
//! Receives: entries from the order flow, as RAII [`Published`] guards that
//! remove themselves when the attempt ends (success or not).
//! Hands on: [`Challenges::http01`] to the port-80 service, and the
//! [`ChallengeHook`] impl to the TLS resolver. Both lookups are a read lock
//! on a small map: nothing blocks accept.
//!
//! Shared storage: HTTP-01 answers are also written to
//! `<storage>/<ca>/challenges/<token>`, and a token missing from memory is
//! looked up there, so whichever node the CA's validator reaches can answer
//! an order placed by another node behind the same load balancer.
//! TLS-ALPN-01 answers stay in memory (the validator must reach the node
//! that ordered).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::RwLock;
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair};
use rustls::server::ClientHello;
use rustls::sign::CertifiedKey;
use rustls_pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::tls::ChallengeHook;
use crate::tls::resolver::offers_acme_tls_alpn;

/// The challenge certificate could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ChallengeCertError {
    #[error("cannot generate the TLS-ALPN-01 certificate: {0}")]
    Rcgen(#[from] rcgen::Error),
    #[error("cannot load the TLS-ALPN-01 key: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("the key authorization digest is not 32 bytes")]
    Digest,
}

/// Answers currently published.
#[derive(Debug, Default)]
pub struct Challenges {
    http: RwLock<HashMap<String, Arc<str>>>,
    alpn: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    /// `<storage>/<ca>/challenges`, shared with other nodes.
    shared_dir: Option<PathBuf>,
}

/// ACME tokens are base64url; anything else never touches the filesystem.
fn token_ok(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 256
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

enum Entry {
    Http(String),
    Alpn(String),
}

/// Removes its entry when dropped.
pub struct Published {
    owner: Arc<Challenges>,
    entry: Entry,
}

impl Drop for Published {
    fn drop(&mut self) {
        match &self.entry {
            Entry::Http(token) => {
                self.owner.http.write().remove(token);
                if let Some(dir) = &self.owner.shared_dir {
                    let _ = std::fs::remove_file(dir.join(token));
                }
            }
            Entry::Alpn(domain) => {
                self.owner.alpn.write().remove(domain);
            }
        }
    }
}

impl Challenges {
    /// Answers that are also shared through `dir` (see the module docs).
    pub fn with_shared_dir(dir: PathBuf) -> Self {
        Self {
            shared_dir: Some(dir),
            ..Self::default()
        }
    }

    /// The key authorization for an HTTP-01 token, if one is pending here
    /// or (shared storage) on another node.
    pub fn http01(&self, token: &str) -> Option<Arc<str>> {
        if let Some(k) = self.http.read().get(token) {
            return Some(k.clone());
        }
        let dir = self.shared_dir.as_ref().filter(|_| token_ok(token))?;
        let text = std::fs::read_to_string(dir.join(token)).ok()?;
        Some(Arc::from(text.trim()))
    }

    /// Publish an HTTP-01 answer until the guard drops.
    pub fn publish_http01(self: &Arc<Self>, token: &str, key_authorization: &str) -> Published {
        self.http
            .write()
            .insert(token.to_string(), Arc::from(key_authorization));
        if let Some(dir) = self.shared_dir.as_ref().filter(|_| token_ok(token))
            && let Err(e) =
                super::storage::write_private(&dir.join(token), key_authorization.as_bytes())
        {
            tracing::warn!(error = %e, "cannot share the HTTP-01 answer with other nodes");
        }
        Published {
            owner: Arc::clone(self),
            entry: Entry::Http(token.to_string()),
        }
    }

    /// Publish a TLS-ALPN-01 certificate for `domain` until the guard drops.
    pub fn publish_tls_alpn01(
        self: &Arc<Self>,
        domain: &str,
        digest: &[u8],
    ) -> Result<Published, ChallengeCertError> {
        let ck = challenge_cert(domain, digest)?;
        let domain = domain.to_ascii_lowercase();
        self.alpn.write().insert(domain.clone(), Arc::new(ck));
        Ok(Published {
            owner: Arc::clone(self),
            entry: Entry::Alpn(domain),
        })
    }

    /// Number of pending answers (tests, logs).
    pub fn pending(&self) -> usize {
        self.http.read().len() + self.alpn.read().len()
    }
}

/// The RFC 8737 certificate for `domain` with `SHA-256(keyAuthorization)`.
pub fn challenge_cert(domain: &str, digest: &[u8]) -> Result<CertifiedKey, ChallengeCertError> {
    if digest.len() != 32 {
        return Err(ChallengeCertError::Digest);
    }
    let mut params = CertificateParams::new(vec![domain.to_string()])?;
    params.distinguished_name = DistinguishedName::new();
    params
        .custom_extensions
        .push(CustomExtension::new_acme_identifier(digest));
    let key = KeyPair::generate()?;
    let cert = params.self_signed(&key)?;
    let provider = rustls::crypto::ring::default_provider();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: its key check parses the certificate
    // with webpki, which (rightly, for normal certs) refuses the critical
    // acmeIdentifier extension. The key is ours and fresh: no check needed.
    let signer = provider.key_provider.load_private_key(key_der)?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signer))
}

impl ChallengeHook for Challenges {
    fn resolve(&self, hello: &ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if !offers_acme_tls_alpn(hello) {
            return None;
        }
        let sni = hello
            .server_name()?
            .trim_end_matches('.')
            .to_ascii_lowercase();
        self.alpn.read().get(&sni).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use x509_parser::prelude::*;

    #[test]
    fn http01_answers_live_as_long_as_the_guard() {
        let c = Arc::new(Challenges::default());
        assert!(c.http01("tok").is_none());
        let g = c.publish_http01("tok", "tok.thumb");
        assert_eq!(c.http01("tok").as_deref(), Some("tok.thumb"));
        assert!(c.http01("other").is_none());
        drop(g);
        assert!(c.http01("tok").is_none());
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn http01_answers_are_shared_through_storage() {
        let dir = std::env::temp_dir().join(format!("portico-ch-{}", rand::random::<u32>()));
        let a = Arc::new(Challenges::with_shared_dir(dir.clone()));
        let b = Challenges::with_shared_dir(dir.clone());
        let g = a.publish_http01("tok_1-x", "tok_1-x.thumb");
        assert_eq!(b.http01("tok_1-x").as_deref(), Some("tok_1-x.thumb"));
        assert!(b.http01("../etc/passwd").is_none());
        assert!(b.http01("").is_none());
        drop(g);
        assert!(b.http01("tok_1-x").is_none(), "removed from storage too");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tls_alpn_cert_has_critical_acme_identifier_and_san() {
        let digest = [7u8; 32];
        let ck = challenge_cert("a.example.com", &digest).expect("cert");
        let der = ck.end_entity_cert().expect("leaf");
        let (_, cert) = parse_x509_certificate(der).expect("x509");
        let oid =
            x509_parser::der_parser::oid::Oid::from(&[1, 3, 6, 1, 5, 5, 7, 1, 31]).expect("oid");
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid == oid)
            .expect("acmeIdentifier present");
        assert!(ext.critical, "acmeIdentifier must be critical");
        // DER OCTET STRING (0x04, 0x20) wrapping the digest
        assert_eq!(&ext.value[..2], &[0x04, 0x20]);
        assert_eq!(&ext.value[2..], &digest);
        let san = cert.subject_alternative_name().expect("ok").expect("san");
        assert!(matches!(
            san.value.general_names[0],
            GeneralName::DNSName("a.example.com")
        ));
        assert!(challenge_cert("a.example.com", &[1u8; 5]).is_err());
    }

    #[test]
    fn tls_alpn_guard_removes_entry() {
        let c = Arc::new(Challenges::default());
        let g = c
            .publish_tls_alpn01("A.Example.com", &[1u8; 32])
            .expect("ok");
        assert_eq!(c.pending(), 1);
        drop(g);
        assert_eq!(c.pending(), 0);
    }
}
