//! Secrets the server stores in its database, sealed with the server secrets key
//! (`auth.secrets_key_file`): TOTP secrets and OIDC ID tokens.
//!
//! The database holds what a stolen backup or a read-only SQL injection would give away, so
//! values that grant or prove access are not stored as they are: tokens are hashed
//! ([`super::tokens`]), and the two values the server must read back (a TOTP secret to check
//! codes, an ID token as the logout hint) are encrypted with XChaCha20-Poly1305 under a 32-byte
//! key that lives in a file, never in the database.
//!
//! Stored form: `v1:` followed by base64 (standard, padded) of the 24-byte random nonce and the
//! ciphertext with its tag. The associated data binds a value to its place: the [`Column`] and
//! the user it belongs to, so a sealed value copied into another user's row (or another column)
//! does not open. A value without the prefix is a plain one written before sealing existed
//! (TOTP secrets are base32 and ID tokens are JWTs, neither contains `:`); [`SecretsKey::open`]
//! passes it through, and [`super::sealing`] seals such values at start.
//!
//! Pure: no I/O besides the random nonce; the key file is read by [`super::keys`].

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The prefix of a sealed value (format version 1).
pub const PREFIX: &str = "v1:";

/// Length of the random nonce.
const NONCE_LEN: usize = 24;
/// Length of the Poly1305 tag.
const TAG_LEN: usize = 16;

/// The column a sealed value is stored in; part of its associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Column {
    /// `credentials.totp_secret` and `credentials.totp_pending_secret`. One label for both:
    /// confirming set-up moves the pending value to the active column in one SQL statement
    /// (`Db::enable_totp`), which must not need the key.
    TotpSecret,
    /// `sessions.id_token`, bound to the session's user.
    IdToken,
}

impl Column {
    /// The label in the associated data.
    fn label(self) -> &'static str {
        match self {
            Column::TotpSecret => "credentials.totp_secret",
            Column::IdToken => "sessions.id_token",
        }
    }

    /// What the value is, for error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Column::TotpSecret => "TOTP secret",
            Column::IdToken => "OIDC ID token",
        }
    }
}

/// How a stored value looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Sealed by this module (has the [`PREFIX`]).
    Sealed,
    /// A plain value written before values were sealed.
    Plain,
}

/// Tells a sealed value from a plain legacy one.
pub fn classify(stored: &str) -> Stored {
    if stored.starts_with(PREFIX) {
        Stored::Sealed
    } else {
        Stored::Plain
    }
}

/// Why a sealed value cannot be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenFailure {
    /// The text after the prefix is not base64 of a nonce and a tag at least.
    Malformed,
    /// The tag does not verify: another key, or a value altered or moved from another row.
    Rejected,
    /// It opens, but the plaintext is not UTF-8 (cannot happen for values this module sealed).
    NotText,
}

/// A stored secret that cannot be opened. The message names the value and its user, never the
/// value itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {what} of user {user} cannot be decrypted ({why}): wrong auth.secrets_key_file?", what = .column.describe(), why = .failure.describe())]
pub struct UnreadableSecret {
    /// Which kind of value.
    pub column: Column,
    /// Whose.
    pub user: Uuid,
    /// What went wrong.
    pub failure: OpenFailure,
}

impl OpenFailure {
    fn describe(self) -> &'static str {
        match self {
            OpenFailure::Malformed => "not a sealed value",
            OpenFailure::Rejected => {
                "another key sealed it, or it was altered or copied from another row"
            }
            OpenFailure::NotText => "not text",
        }
    }
}

/// The server secrets key: seals and opens stored secrets. `Debug` shows only the
/// fingerprint.
#[derive(Clone)]
pub struct SecretsKey {
    cipher: XChaCha20Poly1305,
    fingerprint: String,
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretsKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl SecretsKey {
    /// The key from its 32 bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> SecretsKey {
        // A hash under a fixed label identifies the key in logs without revealing it.
        let mut hasher = Sha256::new();
        hasher.update(b"readroom secrets key fingerprint\0");
        hasher.update(bytes);
        let fingerprint = hex::encode(&hasher.finalize()[..8]);
        SecretsKey {
            cipher: XChaCha20Poly1305::new(Key::from_slice(bytes)),
            fingerprint,
        }
    }

    /// 16 hex digits that identify the key (a hash of it), for logs and error messages.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Seals `plain`, stored in `column` for `user`, with a fresh random nonce.
    pub fn seal(&self, column: Column, user: Uuid, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.seal_with_nonce(column, user, plain, nonce)
    }

    fn seal_with_nonce(
        &self,
        column: Column,
        user: Uuid,
        plain: &str,
        nonce: [u8; NONCE_LEN],
    ) -> String {
        let aad = associated_data(column, user);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain.as_bytes(),
                    aad: &aad,
                },
            )
            // Encryption fails only for messages longer than the cipher's limit (256 GiB).
            .unwrap_or_default();
        let mut bytes = Vec::with_capacity(NONCE_LEN + sealed.len());
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}", STANDARD.encode(bytes))
    }

    /// The plaintext of a stored value of `column` for `user`. A plain legacy value (no
    /// [`PREFIX`]) is returned as it is.
    pub fn open(
        &self,
        column: Column,
        user: Uuid,
        stored: &str,
    ) -> Result<String, UnreadableSecret> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let unreadable = |failure| UnreadableSecret {
            column,
            user,
            failure,
        };
        let bytes = STANDARD
            .decode(encoded)
            .map_err(|_| unreadable(OpenFailure::Malformed))?;
        if bytes.len() < NONCE_LEN + TAG_LEN {
            return Err(unreadable(OpenFailure::Malformed));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let aad = associated_data(column, user);
        let plain = self
            .cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| unreadable(OpenFailure::Rejected))?;
        String::from_utf8(plain).map_err(|_| unreadable(OpenFailure::NotText))
    }
}

/// `readroom/at-rest/v1`, the column label and the user's 16 bytes, NUL-separated.
fn associated_data(column: Column, user: Uuid) -> Vec<u8> {
    let mut aad = Vec::with_capacity(64);
    aad.extend_from_slice(b"readroom/at-rest/v1\0");
    aad.extend_from_slice(column.label().as_bytes());
    aad.push(0);
    aad.extend_from_slice(user.as_bytes());
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    fn key(byte: u8) -> SecretsKey {
        SecretsKey::from_bytes(&[byte; 32])
    }

    fn user(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn round_trip() {
        let key = key(1);
        let sealed = key.seal(Column::TotpSecret, user(7), SECRET);
        assert!(sealed.starts_with("v1:"), "{sealed}");
        assert!(!sealed.contains(SECRET));
        assert_eq!(classify(&sealed), Stored::Sealed);
        assert_eq!(
            key.open(Column::TotpSecret, user(7), &sealed).unwrap(),
            SECRET
        );
        // A fresh nonce each time: the same secret never looks the same twice.
        assert_ne!(sealed, key.seal(Column::TotpSecret, user(7), SECRET));
        // Nonce, ciphertext (as long as the text) and tag.
        let bytes = STANDARD.decode(&sealed[3..]).unwrap();
        assert_eq!(bytes.len(), NONCE_LEN + SECRET.len() + TAG_LEN);
    }

    #[test]
    fn a_wrong_key_fails_with_a_message_that_names_the_problem_not_the_value() {
        let sealed = key(1).seal(Column::TotpSecret, user(7), SECRET);
        let err = key(2)
            .open(Column::TotpSecret, user(7), &sealed)
            .unwrap_err();
        assert_eq!(err.failure, OpenFailure::Rejected);
        let message = err.to_string();
        assert_eq!(
            message,
            format!(
                "the TOTP secret of user {} cannot be decrypted (another key sealed it, or it \
                 was altered or copied from another row): wrong auth.secrets_key_file?",
                user(7)
            )
        );
        assert!(!message.contains(SECRET) && !message.contains(&sealed[3..]));
    }

    #[test]
    fn a_value_moved_to_another_user_or_column_does_not_open() {
        let key = key(1);
        let sealed = key.seal(Column::TotpSecret, user(7), SECRET);
        let moved = key.open(Column::TotpSecret, user(8), &sealed).unwrap_err();
        assert_eq!(
            (moved.user, moved.failure),
            (user(8), OpenFailure::Rejected)
        );
        let other_column = key.open(Column::IdToken, user(7), &sealed).unwrap_err();
        assert_eq!(other_column.column, Column::IdToken);
        assert!(
            other_column
                .to_string()
                .starts_with("the OIDC ID token of user")
        );
    }

    #[test]
    fn altered_and_malformed_values_are_refused() {
        let key = key(1);
        let sealed = key.seal(Column::IdToken, user(7), "a.b.c");
        let mut bytes = STANDARD.decode(&sealed[3..]).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let altered = format!("v1:{}", STANDARD.encode(&bytes));
        let failure = |stored: &str| {
            key.open(Column::IdToken, user(7), stored)
                .unwrap_err()
                .failure
        };
        assert_eq!(failure(&altered), OpenFailure::Rejected);
        assert_eq!(failure("v1:not base64!"), OpenFailure::Malformed);
        assert_eq!(failure("v1:"), OpenFailure::Malformed);
        assert_eq!(
            failure(&format!(
                "v1:{}",
                STANDARD.encode([0u8; NONCE_LEN + TAG_LEN - 1])
            )),
            OpenFailure::Malformed
        );
    }

    #[test]
    fn legacy_plain_values_are_told_apart_and_passed_through() {
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
        for plain in [SECRET, jwt] {
            assert_eq!(classify(plain), Stored::Plain);
            assert_eq!(key(1).open(Column::IdToken, user(7), plain).unwrap(), plain);
        }
    }

    #[test]
    fn the_format_is_stable() {
        // A fixed key and nonce give a fixed value: a change to the format or the associated
        // data would make every stored secret unreadable, so it must show up here.
        let sealed = key(1).seal_with_nonce(Column::TotpSecret, user(7), "AB", [3; NONCE_LEN]);
        assert_eq!(
            sealed,
            "v1:AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDD0Lw1vNigv5pxgFvRYdX47Mo"
        );
        assert_eq!(
            key(1).open(Column::TotpSecret, user(7), &sealed).unwrap(),
            "AB"
        );
    }

    #[test]
    fn debug_shows_only_the_fingerprint() {
        let key = key(1);
        let shown = format!("{key:?}");
        assert!(shown.contains(key.fingerprint()), "{shown}");
        assert_eq!(key.fingerprint().len(), 16);
        assert_ne!(key.fingerprint(), self::key(2).fingerprint());
    }
}
