//! `portico certs`: certificate status read from storage, no server needed.
//!
//! Owns: the report shape and its text rendering.
//! Receives: the [`AcmeSettings`] (storage, directory, domains).
//! Hands on: one [`DomainStatus`] per configured domain.

use std::fmt;
use std::time::SystemTime;

use super::manager::issuer_name;
use super::renewal;
use super::storage::{CaStorage, from_unix};
use crate::config::AcmeSettings;

/// What storage says about one domain.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainStatus {
    /// A certificate is stored.
    Stored {
        domain: String,
        issuer: String,
        not_after: SystemTime,
        next_renewal: SystemTime,
        /// `ari` when the time comes from the CA's ARI window, else `ratio`.
        rule: &'static str,
        challenge: Option<String>,
    },
    /// Nothing stored yet (portico serves a placeholder until it has one).
    Missing { domain: String },
    /// Stored files that do not load.
    Broken { domain: String, error: String },
}

/// Read the status of every configured domain.
pub fn report(settings: &AcmeSettings) -> Vec<DomainStatus> {
    let st = CaStorage::new(&settings.storage, &settings.directory);
    settings
        .domains
        .iter()
        .map(|d| {
            let domain = d.clone();
            let stored = match st.load_cert(d) {
                Ok(Some(s)) => s,
                Ok(None) => return DomainStatus::Missing { domain },
                Err(e) => {
                    return DomainStatus::Broken {
                        domain,
                        error: e.to_string(),
                    };
                }
            };
            match super::certified_key_from_pem(&stored.chain_pem, &stored.key_pem, &stored.dir) {
                Ok((ck, info)) => {
                    let ari = stored
                        .meta
                        .as_ref()
                        .and_then(|m| m.ari_renew_at)
                        .map(from_unix);
                    DomainStatus::Stored {
                        domain,
                        issuer: issuer_name(ck.cert[0].as_ref()),
                        not_after: info.not_after,
                        next_renewal: renewal::renew_at(info.not_before, info.not_after, ari),
                        rule: if ari.is_some() { "ari" } else { "ratio" },
                        challenge: stored.meta.and_then(|m| m.challenge),
                    }
                }
                Err(e) => DomainStatus::Broken {
                    domain,
                    error: e.to_string(),
                },
            }
        })
        .collect()
}

/// The table `portico certs` prints.
pub struct Table<'a> {
    pub settings: &'a AcmeSettings,
    pub rows: &'a [DomainStatus],
    pub now: SystemTime,
}

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = humantime::format_rfc3339_seconds;
        writeln!(f, "directory: {}", self.settings.directory)?;
        writeln!(
            f,
            "storage:   {}",
            CaStorage::new(&self.settings.storage, &self.settings.directory)
                .root()
                .display()
        )?;
        writeln!(
            f,
            "{:<32} {:<28} {:<22} {:<30} CHALLENGE",
            "DOMAIN", "ISSUER", "EXPIRES", "NEXT RENEWAL"
        )?;
        for r in self.rows {
            match r {
                DomainStatus::Stored {
                    domain,
                    issuer,
                    not_after,
                    next_renewal,
                    rule,
                    challenge,
                } => {
                    let expires = if *not_after < self.now {
                        format!("{} EXPIRED", t(*not_after))
                    } else {
                        t(*not_after).to_string()
                    };
                    let next = if *next_renewal <= self.now {
                        format!("now (due, {rule})")
                    } else {
                        format!("{} ({rule})", t(*next_renewal))
                    };
                    writeln!(
                        f,
                        "{domain:<32} {issuer:<28} {expires:<22} {next:<30} {}",
                        challenge.as_deref().unwrap_or("-")
                    )?;
                }
                DomainStatus::Missing { domain } => writeln!(
                    f,
                    "{domain:<32} {:<28} {:<22} {:<30} -",
                    "-", "none yet", "at start-up"
                )?,
                DomainStatus::Broken { domain, error } => {
                    writeln!(f, "{domain:<32} unreadable: {error}")?
                }
            }
        }
        Ok(())
    }
}
