//! [`ChainError`]: why an event could not be sealed or hashed, or a checkpoint not signed or
//! verified.

/// Why an event could not be sealed or hashed, or a checkpoint not signed or verified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// A hash is not 64 lowercase hex digits.
    #[error("{field} is not 64 lowercase hex digits")]
    MalformedHash {
        /// Which hash.
        field: &'static str,
    },
    /// The chain head cannot be followed (negative or largest sequence number).
    #[error("no event can follow sequence number {0}")]
    SequenceExhausted(i64),
    /// `at` is not in the fixed timestamp form.
    #[error("the time is not an RFC 3339 UTC timestamp of the form YYYY-MM-DDTHH:MM:SS[.ffffff]Z")]
    InvalidTime,
    /// `details` is not a JSON object.
    #[error("details must be a JSON object, not {0}")]
    DetailsNotObject(&'static str),
    /// `details` is too large once canonical.
    #[error("details are {size} bytes of canonical JSON, more than the {max} allowed")]
    DetailsTooLarge {
        /// Canonical size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A text field is too long.
    #[error("{field} is {size} bytes, more than the {max} allowed")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its size in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The checkpoint names another signing key than the trusted one.
    #[error("the checkpoint names key {found:?}, not the trusted key {expected:?}")]
    WrongKey {
        /// The trusted key's id.
        expected: String,
        /// The key id the checkpoint names (at most 32 characters of it).
        found: String,
    },
    /// The checkpoint signature is not 64 bytes of base64url.
    #[error("the checkpoint signature is not 64 bytes of base64url")]
    MalformedSignature,
    /// The checkpoint signature does not verify with the trusted key.
    #[error("the checkpoint signature does not verify")]
    BadSignature,
    /// The public key is not an Ed25519 public key (or not 32 bytes of hex).
    #[error("not an Ed25519 public key")]
    MalformedKey,
}
