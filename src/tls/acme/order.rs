//! One certificate order for one domain (RFC 8555 §7.4).
//!
//! Owns: the order flow: newOrder → authorization → publish the answer →
//! tell the CA → poll (honouring `Retry-After`) → finalize with a CSR for a
//! fresh ECDSA P-256 key → download the chain; and the challenge fallback:
//! if the preferred challenge fails, a new order tries the next one.
//! Receives: the account, the domain, challenge types in preference order
//! and the [`Challenges`] map the listeners answer from.
//! Hands on: an [`Issued`] (chain PEM, key PEM, the challenge that worked)
//! or an [`AcmeError`] naming the challenge(s) and the CA's error.

use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, DistinguishedName, KeyPair};

use super::AcmeError;
use super::challenge::{Challenges, Published};
use crate::config::ChallengeKind;

/// A certificate fresh from the CA.
#[derive(Debug, Clone)]
pub struct Issued {
    pub chain_pem: String,
    pub key_pem: String,
    pub challenge: ChallengeKind,
}

/// How long the CA gets to validate and to issue.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(250))
    .backoff(1.5)
    .timeout(Duration::from_secs(90));

fn challenge_type(kind: ChallengeKind) -> ChallengeType {
    match kind {
        ChallengeKind::Http01 => ChallengeType::Http01,
        ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
    }
}

/// Order a certificate for `domain`, trying `kinds` in order. Only a
/// challenge failure moves on to the next kind; a CA/network error returns.
pub async fn issue(
    account: &Account,
    domain: &str,
    kinds: &[ChallengeKind],
    challenges: &Arc<Challenges>,
) -> Result<Issued, AcmeError> {
    let mut failures = Vec::new();
    for &kind in kinds {
        match issue_with(account, domain, kind, challenges).await {
            Ok(issued) => {
                if !failures.is_empty() {
                    tracing::info!(domain, challenge = %kind, "challenge succeeded after falling back");
                }
                return Ok(issued);
            }
            Err(AcmeError::Challenge { challenge, detail }) => {
                tracing::warn!(domain, challenge = %challenge, error = %detail, "challenge failed; trying the next one if any");
                failures.push(format!("{challenge}: {detail}"));
            }
            Err(e) => return Err(e),
        }
    }
    Err(AcmeError::AllChallengesFailed {
        detail: failures.join("; "),
    })
}

async fn issue_with(
    account: &Account,
    domain: &str,
    kind: ChallengeKind,
    challenges: &Arc<Challenges>,
) -> Result<Issued, AcmeError> {
    let ca = |what: &'static str| move |source| AcmeError::Ca { what, source };
    let ids = [Identifier::Dns(domain.to_string())];
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(ca("new order"))?;
    tracing::info!(domain, challenge = %kind, order = order.url(), "ACME order placed");

    // Answers stay published until this function returns.
    let mut published: Vec<Published> = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(ca("authorization"))?;
        match authz.status {
            AuthorizationStatus::Valid => continue, // reused authorization
            AuthorizationStatus::Pending => {}
            other => {
                return Err(AcmeError::Challenge {
                    challenge: kind,
                    detail: format!("authorization is {other:?}"),
                });
            }
        }
        let mut ch = authz
            .challenge(challenge_type(kind))
            .ok_or_else(|| AcmeError::Challenge {
                challenge: kind,
                detail: "the CA does not offer this challenge".into(),
            })?;
        let key_auth = ch.key_authorization();
        published.push(match kind {
            ChallengeKind::Http01 => challenges.publish_http01(&ch.token, key_auth.as_str()),
            ChallengeKind::TlsAlpn01 => challenges
                .publish_tls_alpn01(domain, key_auth.digest().as_ref())
                .map_err(|e| AcmeError::Challenge {
                    challenge: kind,
                    detail: e.to_string(),
                })?,
        });
        ch.set_ready().await.map_err(|e| match e {
            instant_acme::Error::Api(p) => AcmeError::Challenge {
                challenge: kind,
                detail: p.to_string(),
            },
            e => AcmeError::Ca {
                what: "challenge",
                source: e,
            },
        })?;
    }

    let status = order.poll_ready(&POLL).await.map_err(|e| match e {
        instant_acme::Error::Api(p) => AcmeError::Challenge {
            challenge: kind,
            detail: p.to_string(),
        },
        e => AcmeError::Ca {
            what: "validation",
            source: e,
        },
    })?;
    if status != OrderStatus::Ready {
        let mut detail = format!("order is {status:?}");
        let mut auths = order.authorizations();
        while let Some(Ok(mut a)) = auths.next().await {
            if let Ok(state) = a.refresh().await
                && let Some(p) = state.challenges.iter().find_map(|c| c.error.as_ref())
            {
                detail = p.to_string();
            }
        }
        return Err(AcmeError::Challenge {
            challenge: kind,
            detail,
        });
    }
    drop(published);

    let key = KeyPair::generate().map_err(|e| AcmeError::Csr(e.to_string()))?;
    let mut params = CertificateParams::new(vec![domain.to_string()])
        .map_err(|e| AcmeError::Csr(e.to_string()))?;
    params.distinguished_name = DistinguishedName::new();
    let csr = params
        .serialize_request(&key)
        .map_err(|e| AcmeError::Csr(e.to_string()))?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(ca("finalize"))?;
    let chain_pem = order
        .poll_certificate(&POLL)
        .await
        .map_err(ca("certificate download"))?;
    Ok(Issued {
        chain_pem,
        key_pem: key.serialize_pem(),
        challenge: kind,
    })
}
