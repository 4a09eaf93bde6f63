//! The ACME account: loaded from storage, or created once and persisted.
//!
//! Owns: `<storage>/<ca>/account.json` (instant-acme's credentials: key,
//! account URL, directory; 0600) and the HTTP client choice (system roots,
//! or `tls.ca_root` for a private CA such as pebble).
//! Receives: the [`AcmeSettings`] and the CA's storage subtree.
//! Hands on: an `instant_acme::Account` for orders and ARI. Creation runs
//! under the `_account` lock so nodes sharing storage register only once.

use instant_acme::{Account, AccountBuilder, AccountCredentials, ExternalAccountKey, NewAccount};
use tokio_util::sync::CancellationToken;

use super::AcmeError;
use super::lock::{self, LockTiming};
use super::storage::{CaStorage, write_private};
use crate::config::AcmeSettings;

fn builder(settings: &AcmeSettings) -> Result<AccountBuilder, AcmeError> {
    match &settings.ca_root {
        Some(root) => Account::builder_with_root(root).map_err(|e| AcmeError::CaRoot {
            path: root.clone(),
            detail: e.to_string(),
        }),
        None => Account::builder().map_err(|e| AcmeError::Ca {
            what: "HTTP client",
            source: e,
        }),
    }
}

fn read_credentials(st: &CaStorage) -> Result<Option<AccountCredentials>, AcmeError> {
    let path = st.account_path();
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| AcmeError::BadAccountFile {
                    path,
                    detail: e.to_string(),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(AcmeError::Storage(super::storage::StorageError {
            path,
            source,
        })),
    }
}

/// Load the stored account, or register a new one (once, under a lock).
pub async fn load_or_create(
    settings: &AcmeSettings,
    st: &CaStorage,
    owner: &str,
    timing: LockTiming,
    cancel: &CancellationToken,
) -> Result<Account, AcmeError> {
    if let Some(creds) = read_credentials(st)? {
        return restore(settings, creds).await;
    }
    let _guard = lock::acquire(&st.lock_path("_account"), owner, timing, cancel).await?;
    // Another node may have registered while we waited.
    if let Some(creds) = read_credentials(st)? {
        return restore(settings, creds).await;
    }
    let contact = settings.email.as_ref().map(|e| format!("mailto:{e}"));
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let eab = settings
        .eab
        .as_ref()
        .map(|e| ExternalAccountKey::new(e.kid.clone(), &e.hmac_key));
    let (account, creds) = builder(settings)?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            settings.directory.clone(),
            eab.as_ref(),
        )
        .await
        .map_err(|e| AcmeError::Ca {
            what: "account registration",
            source: e,
        })?;
    let json = serde_json::to_vec_pretty(&creds).map_err(|e| AcmeError::BadAccountFile {
        path: st.account_path(),
        detail: e.to_string(),
    })?;
    write_private(&st.account_path(), &json)?;
    tracing::info!(account = account.id(), directory = %settings.directory, "registered a new ACME account");
    Ok(account)
}

async fn restore(settings: &AcmeSettings, creds: AccountCredentials) -> Result<Account, AcmeError> {
    builder(settings)?
        .from_credentials(creds)
        .await
        .map_err(|e| AcmeError::Ca {
            what: "directory",
            source: e,
        })
}
