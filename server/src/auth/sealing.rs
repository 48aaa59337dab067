//! The start-up pass over the stored secrets: seals the plain ones left by an earlier version
//! and checks that the configured key opens the sealed ones.
//!
//! # Design decision: seal plain values at start, not on first read
//!
//! A plain value sealed only when it is next read would stay readable in the database (and in
//! every backup taken since) for as long as its user does not sign in: an administrator's
//! TOTP secret can sit unused for months. So [`at_start`] seals every plain value once,
//! after the migrations, before the server answers; it is a handful of rows per user and
//! costs nothing when there is nothing to seal. Reads still accept a plain value
//! ([`super::at_rest::SecretsKey::open`] passes it through): during a rolling upgrade a
//! replica of the earlier version may still write one, and the next start seals it. Each
//! replacement is a compare-and-set on the value read, so replicas starting together never
//! seal a value twice.
//!
//! The same pass opens every sealed value: if some exist and none opens, the key is not the
//! one they were sealed with (a new key file created in place of a lost one, another
//! replica's key), and the server refuses to start with an error that says so, instead of
//! failing each TOTP user's sign-in. Values that do not open beside ones that do are reported
//! one by one (user id and why, never the value) and fail only their own sign-in.

use std::path::Path;

use super::at_rest::{Column, SecretsKey, Stored, UnreadableSecret, classify};
use crate::db::secrets::SecretPlace;
use crate::db::{Db, DbError};

/// Most unreadable values named one by one in the log.
const UNREADABLE_LOGGED: usize = 20;

/// What [`seal_stored_secrets`] found and did.
#[derive(Debug, Default)]
pub struct SealingReport {
    /// Plain values sealed by this pass.
    pub sealed_now: usize,
    /// Sealed values the key opens.
    pub readable: usize,
    /// Sealed values the key does not open.
    pub unreadable: Vec<UnreadableSecret>,
}

fn column(place: SecretPlace) -> Column {
    match place {
        SecretPlace::TotpSecret { .. } | SecretPlace::TotpPending { .. } => Column::TotpSecret,
        SecretPlace::IdToken { .. } => Column::IdToken,
    }
}

/// Seals every plain stored secret with `key` and tries to open every sealed one.
pub async fn seal_stored_secrets(db: &Db, key: &SecretsKey) -> Result<SealingReport, DbError> {
    let mut report = SealingReport::default();
    for secret in db.stored_secrets().await? {
        let column = column(secret.place);
        let user = secret.place.user_id();
        match classify(&secret.stored) {
            Stored::Plain => {
                let sealed = key.seal(column, user, &secret.stored);
                if db
                    .replace_stored_secret(secret.place, &secret.stored, &sealed)
                    .await?
                {
                    report.sealed_now += 1;
                }
            }
            Stored::Sealed => match key.open(column, user, &secret.stored) {
                Ok(_) => report.readable += 1,
                Err(err) => report.unreadable.push(err),
            },
        }
    }
    Ok(report)
}

/// The pass [`crate::serve::Server::bind`] runs after the migrations: seals plain values, and
/// refuses to start if sealed values exist and `key` (read from `key_path`) opens none of them.
pub async fn at_start(db: &Db, key: &SecretsKey, key_path: &Path) -> anyhow::Result<()> {
    let report = seal_stored_secrets(db, key).await?;
    if report.sealed_now > 0 {
        tracing::info!(
            count = report.sealed_now,
            key = key.fingerprint(),
            "sealed the plain TOTP secrets and ID tokens an earlier version stored"
        );
    }
    let Some(first) = report.unreadable.first() else {
        return Ok(());
    };
    if report.readable == 0 {
        anyhow::bail!(
            "the server secrets key {} (fingerprint {}) decrypts none of the sealed secrets in \
             the database ({} of them), so it is not the key they were sealed with: wrong \
             auth.secrets_key_file? (first: {first})",
            key_path.display(),
            key.fingerprint(),
            report.unreadable.len()
        );
    }
    for err in report.unreadable.iter().take(UNREADABLE_LOGGED) {
        tracing::error!(error = %err, "a stored secret cannot be decrypted; that user's sign-in with it fails");
    }
    tracing::error!(
        unreadable = report.unreadable.len(),
        readable = report.readable,
        key = key.fingerprint(),
        "some stored secrets cannot be decrypted with the server secrets key"
    );
    Ok(())
}
