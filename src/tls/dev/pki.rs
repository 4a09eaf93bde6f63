//! Key, CA and leaf generation and the file writes behind [`super::ensure`].
//!
//! Owns: loading or creating the CA, deciding whether the leaf can stay
//! (`check_leaf`), issuing a leaf, and 0600/atomic file writes.
//! Receives: the directory [`Paths`], the [`DevPolicy`] and a clock value.
//! Hands on: a [`Ca`] and files on disk; no tracing of its own beyond
//! CA creation/replacement.

use std::fs;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use time::OffsetDateTime;

use super::{BACKDATE, CA_KEY_FILE, DevCertError, DevPolicy, LeafIssued, Paths, covered_names};
use crate::tls::store::CertStore;

/// A loaded CA: the issuer (DN + key) and its DER for chain checks.
pub(super) struct Ca {
    issuer: Issuer<'static, KeyPair>,
    der: CertificateDer<'static>,
}

pub(super) fn load_or_create_ca(
    paths: &Paths,
    policy: &DevPolicy,
    now: SystemTime,
) -> Result<(Ca, bool), DevCertError> {
    let cert_exists = paths.ca_cert.exists();
    let key_exists = paths.ca_key.exists();
    match (cert_exists, key_exists) {
        (false, false) => return Ok((create_ca(paths, policy, now)?, true)),
        (true, false) => {
            return Err(DevCertError::BadCa {
                path: paths.ca_key.clone(),
                detail: "the CA certificate exists but its key file is missing".to_owned(),
            });
        }
        (false, true) => {
            return Err(DevCertError::BadCa {
                path: paths.ca_cert.clone(),
                detail: "the CA key exists but its certificate file is missing".to_owned(),
            });
        }
        (true, true) => {}
    }
    let bad_cert = |detail: String| DevCertError::BadCa {
        path: paths.ca_cert.clone(),
        detail,
    };
    let cert_pem = String::from_utf8(read(&paths.ca_cert)?)
        .map_err(|_| bad_cert("not UTF-8 PEM".to_owned()))?;
    let key_pem = String::from_utf8(read(&paths.ca_key)?).map_err(|_| DevCertError::BadCa {
        path: paths.ca_key.clone(),
        detail: "not UTF-8 PEM".to_owned(),
    })?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| DevCertError::BadCa {
        path: paths.ca_key.clone(),
        detail: e.to_string(),
    })?;
    let der =
        CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| bad_cert(e.to_string()))?;
    let (_, x509) =
        x509_parser::parse_x509_certificate(&der).map_err(|e| bad_cert(e.to_string()))?;
    if *x509.public_key().subject_public_key.data != *key.der_bytes() {
        return Err(bad_cert(format!(
            "the key in {CA_KEY_FILE} does not belong to this certificate"
        )));
    }
    let not_after = x509.validity().not_after.timestamp();
    if not_after <= unix_secs(now) {
        tracing::warn!(path = %paths.ca_cert.display(), "dev CA expired; creating a new one (trust it again)");
        return Ok((create_ca(paths, policy, now)?, true));
    }
    let issuer = Issuer::from_ca_cert_der(&der, key).map_err(|e| bad_cert(e.to_string()))?;
    Ok((Ca { issuer, der }, false))
}

fn create_ca(paths: &Paths, policy: &DevPolicy, now: SystemTime) -> Result<Ca, DevCertError> {
    let gen_err = |source| DevCertError::Generate { what: "CA", source };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(
        DnType::CommonName,
        format!("portico dev CA ({})", hostname()),
    );
    dn.push(DnType::OrganizationName, "portico dev CA");
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = to_offset(now.checked_sub(BACKDATE).unwrap_or(now));
    params.not_after = to_offset(now + policy.ca_lifetime);
    let cert = params.self_signed(&key).map_err(gen_err)?;
    // Key first: a cert without its key would be reported as a broken CA.
    write_file(&paths.ca_key, key.serialize_pem().as_bytes(), true)?;
    write_file(&paths.ca_cert, cert.pem().as_bytes(), false)?;
    tracing::info!(path = %paths.ca_cert.display(), "created dev CA");
    Ok(Ca {
        issuer: Issuer::new(params, key),
        der: cert.der().clone(),
    })
}

/// `Ok(())` when the existing leaf can stay; otherwise why it must go.
pub(super) fn check_leaf(
    paths: &Paths,
    ca: &Ca,
    names: &[String],
    policy: &DevPolicy,
    now: SystemTime,
) -> Result<(), LeafIssued> {
    if !paths.leaf_cert.exists() || !paths.leaf_key.exists() {
        return Err(LeafIssued::Missing);
    }
    // Loading through the store also checks that the key matches.
    let mut b = CertStore::builder();
    b.add_files(&paths.leaf_cert, &paths.leaf_key)
        .map_err(|e| LeafIssued::Unusable(e.to_string()))?;
    let store = b.build();
    let info = store
        .infos()
        .first()
        .ok_or_else(|| LeafIssued::Unusable("empty".to_owned()))?;
    let left = info.not_after.duration_since(now).unwrap_or_default();
    if left < policy.renew_before {
        return Err(LeafIssued::Renewal {
            old_not_after: info.not_after,
        });
    }
    let have = covered_names(info);
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !have.contains(n))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(LeafIssued::NewNames(missing));
    }
    let leaf = store
        .lookup(None)
        .ok_or_else(|| LeafIssued::Unusable("empty".to_owned()))?;
    let leaf_der = leaf
        .end_entity_cert()
        .map_err(|e| LeafIssued::Unusable(e.to_string()))?;
    if !signed_by(&ca.der, leaf_der, now) {
        return Err(LeafIssued::OtherCa);
    }
    Ok(())
}

/// Full webpki path validation of `leaf` for `localhost` against `ca`.
fn signed_by(ca: &CertificateDer<'static>, leaf: &CertificateDer<'_>, now: SystemTime) -> bool {
    let mut roots = rustls::RootCertStore::empty();
    if roots.add(ca.clone()).is_err() {
        return false;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let Ok(verifier) =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
    else {
        return false;
    };
    let name = ServerName::try_from("localhost").expect("static name");
    verifier
        .verify_server_cert(
            leaf,
            &[],
            &name,
            &[],
            UnixTime::since_unix_epoch(since_epoch(now)),
        )
        .is_ok()
}

pub(super) fn issue_leaf(
    paths: &Paths,
    ca: &Ca,
    names: &[String],
    policy: &DevPolicy,
    now: SystemTime,
) -> Result<(), DevCertError> {
    let gen_err = |source| DevCertError::Generate {
        what: "leaf",
        source,
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()
        .map_err(gen_err)?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    dn.push(DnType::OrganizationName, "portico dev certificate");
    params.distinguished_name = dn;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = to_offset(now.checked_sub(BACKDATE).unwrap_or(now));
    params.not_after = to_offset(now + policy.leaf_lifetime);
    let cert = params.signed_by(&key, &ca.issuer).map_err(gen_err)?;
    write_file(&paths.leaf_key, key.serialize_pem().as_bytes(), true)?;
    write_file(&paths.leaf_cert, cert.pem().as_bytes(), false)?;
    Ok(())
}

/// Write via a temp file and rename, so readers (and a crash) never see half
/// a file. `secret` files are created 0600 on Unix.
pub(super) fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), DevCertError> {
    let tmp = path.with_extension("tmp");
    let _ = fs::remove_file(&tmp);
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut f = opts.open(&tmp).map_err(|source| io_err(&tmp, source))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(|source| io_err(&tmp, source))?;
    fs::rename(&tmp, path).map_err(|source| io_err(path, source))
}

pub(super) fn read(path: &Path) -> Result<Vec<u8>, DevCertError> {
    fs::read(path).map_err(|source| io_err(path, source))
}

pub(super) fn io_err(path: &Path, source: io::Error) -> DevCertError {
    DevCertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn since_epoch(t: SystemTime) -> Duration {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default()
}

fn unix_secs(t: SystemTime) -> i64 {
    i64::try_from(since_epoch(t).as_secs()).unwrap_or(i64::MAX)
}

fn to_offset(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t)
}

/// The machine name for the CA's common name, so several machines' CAs can
/// be told apart in a trust store.
fn hostname() -> String {
    let from_file = |p: &str| fs::read_to_string(p).ok();
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}
