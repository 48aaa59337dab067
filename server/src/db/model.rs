//! The rows the database layer reads and writes, as domain types.
//!
//! These types derive `sqlx::FromRow` (generic over the backend) and nothing for the wire:
//! the HTTP layer defines its own serde types and converts by hand.
//! Enumerations are stored as lower-case text and checked by the schema; newtypes such as
//! [`StudyCode`] and [`Recipients`] validate on construction, so a value of those types is always
//! one the schema accepts.

use std::fmt;
use std::str::FromStr;

use serde_json::Value as JsonValue;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use uuid::Uuid;

pub use readroom_domain::grading::records::{
    Assignment, AssignmentKind, AssignmentRole, AssignmentStatus,
};
pub use readroom_domain::names::UnknownName;
pub use readroom_domain::roles::Role;

/// A study code such as `DEMO` or `EYE-2026`: 1 to 32 characters of `A-Z`, `0-9` and `-`,
/// not starting with `-` (`[A-Z0-9][A-Z0-9-]{0,31}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StudyCode(String);

/// Why a text is not a [`StudyCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid study code `{0}`: use 1 to 32 characters of A-Z, 0-9 and `-`, not starting with `-`"
)]
pub struct InvalidStudyCode(String);

impl StudyCode {
    /// Checks `code` against `[A-Z0-9][A-Z0-9-]{0,31}`.
    pub fn new(code: &str) -> Result<StudyCode, InvalidStudyCode> {
        let bytes = code.as_bytes();
        let valid_char = |b: &u8| b.is_ascii_uppercase() || b.is_ascii_digit() || *b == b'-';
        let valid =
            (1..=32).contains(&bytes.len()) && bytes[0] != b'-' && bytes.iter().all(valid_char);
        if !valid {
            return Err(InvalidStudyCode(code.chars().take(40).collect()));
        }
        Ok(StudyCode(code.to_owned()))
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StudyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for StudyCode {
    type Err = InvalidStudyCode;

    fn from_str(code: &str) -> Result<StudyCode, InvalidStudyCode> {
        StudyCode::new(code)
    }
}

impl TryFrom<String> for StudyCode {
    type Error = InvalidStudyCode;

    fn try_from(code: String) -> Result<StudyCode, InvalidStudyCode> {
        StudyCode::new(&code)
    }
}

/// The age recipients (public keys) a study's bundles are encrypted to.
///
/// Invariant: at least one recipient; each is an `age1…` or `ssh-…` public key on one line,
/// without surrounding blanks, and none repeats.
/// Identities (`AGE-SECRET-KEY-…`, `AGE-PLUGIN-…`) are refused: the server holds public keys only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipients(Vec<String>);

/// Why a list is not a valid [`Recipients`]. Never contains the offending text, which might be a secret key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRecipients {
    /// The list is empty.
    #[error("at least one age recipient is required")]
    Empty,
    /// A line is an age identity (a secret key) rather than a recipient.
    #[error(
        "recipient {line} is a secret key (an age identity); give its public recipient instead"
    )]
    SecretKey {
        /// 1-based position in the list.
        line: usize,
    },
    /// A line is not an `age1…` or `ssh-…` recipient.
    #[error("recipient {line} is not an age (`age1…`) or SSH (`ssh-…`) public key")]
    NotARecipient {
        /// 1-based position in the list.
        line: usize,
    },
}

impl Recipients {
    /// Validates a list of recipients, trimming blanks, skipping empty and `#` comment lines
    /// and dropping repeats (the first occurrence keeps its place).
    pub fn new<I, S>(recipients: I) -> Result<Recipients, InvalidRecipients>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut list: Vec<String> = Vec::new();
        for (idx, recipient) in recipients.into_iter().enumerate() {
            let line = idx + 1;
            let recipient = recipient.as_ref().trim();
            if recipient.is_empty() || recipient.starts_with('#') {
                continue;
            }
            let upper = recipient.to_ascii_uppercase();
            if upper.starts_with("AGE-SECRET-KEY-") || upper.starts_with("AGE-PLUGIN-") {
                return Err(InvalidRecipients::SecretKey { line });
            }
            let well_formed = (recipient.starts_with("age1") || recipient.starts_with("ssh-"))
                && !recipient.chars().any(char::is_control);
            if !well_formed {
                return Err(InvalidRecipients::NotARecipient { line });
            }
            if !list.iter().any(|known| known == recipient) {
                list.push(recipient.to_owned());
            }
        }
        if list.is_empty() {
            return Err(InvalidRecipients::Empty);
        }
        Ok(Recipients(list))
    }

    /// Parses newline-separated recipients (the format of an age recipients file).
    pub fn from_lines(text: &str) -> Result<Recipients, InvalidRecipients> {
        Recipients::new(text.lines())
    }

    /// The recipients, in the order given.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The recipients joined with `\n`, as stored.
    pub fn to_lines(&self) -> String {
        self.0.join("\n")
    }

    /// Lower-case hex SHA-256 of the sorted recipients joined with `\n`: equal for equal sets,
    /// whatever their order. Stored with each bundle as `recipients_fingerprint`, so re-keying
    /// can find the bundles still encrypted to an old set.
    pub fn fingerprint(&self) -> String {
        let mut sorted: Vec<&str> = self.0.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        hex::encode(Sha256::digest(sorted.join("\n").as_bytes()))
    }
}

impl TryFrom<String> for Recipients {
    type Error = InvalidRecipients;

    fn try_from(text: String) -> Result<Recipients, InvalidRecipients> {
        Recipients::from_lines(&text)
    }
}

/// A person who signs in. Authentication data lives in other tables.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    /// Stable id.
    pub id: Uuid,
    /// Unique sign-in name (1 to 64 characters).
    pub username: String,
    /// Name shown in the viewer.
    pub display_name: String,
    /// Contact address, if known.
    pub email: Option<String>,
    /// When the account was created.
    pub created_at: OffsetDateTime,
    /// A disabled user cannot sign in; the row stays for the audit trail.
    pub disabled: bool,
}

/// The fields of a user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// Unique sign-in name (1 to 64 characters).
    pub username: String,
    /// Name shown in the viewer.
    pub display_name: String,
    /// Contact address, if known.
    pub email: Option<String>,
}

/// A role held by a user, in one study or globally.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleGrant {
    /// Stable id of the grant.
    pub id: Uuid,
    /// Who holds the role.
    pub user_id: Uuid,
    /// The role.
    #[sqlx(try_from = "String")]
    pub role: Role,
    /// The study it is limited to; `None` means every study.
    pub study_id: Option<Uuid>,
    /// When it was granted.
    pub granted_at: OffsetDateTime,
    /// Who granted it; `None` for the system (bootstrap, demo seeding).
    pub granted_by: Option<Uuid>,
    /// `manual` (admin, CLI, demo) or `idp:<provider>` (from claims at sign-in).
    pub source: String,
}

/// A user's local-account secrets and sign-in throttling state.
#[derive(Debug, Clone, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Credentials {
    /// argon2id PHC string, once a password is set.
    pub password_hash: Option<String>,
    /// The TOTP secret once TOTP is enabled, as stored: sealed with the server secrets key
    /// (`auth::at_rest`, column `TotpSecret`), or plain base32 from before sealing.
    pub totp_secret: Option<String>,
    /// A TOTP secret set up but not yet confirmed with a code, stored like `totp_secret`.
    pub totp_pending_secret: Option<String>,
    /// Consecutive failed sign-ins since the last success or lockout.
    pub failed_logins: i64,
    /// Lockouts in a row (the backoff exponent).
    pub lockouts: i64,
    /// Unix second until which sign-in is refused.
    pub locked_until_unix: Option<i64>,
}

/// A server-side session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    /// Stable id (not the cookie token, which is never stored).
    pub id: Uuid,
    /// Whose session.
    pub user_id: Uuid,
    /// The token state-changing requests must echo in `X-CSRF-Token`.
    pub csrf_token: String,
    /// `password`, `link` or `oidc:<provider>`.
    pub auth_method: String,
    /// The IdP's ID token (hint for RP-initiated logout), for OIDC sessions, as stored: sealed
    /// with the server secrets key (`auth::at_rest`, column `IdToken`, bound to `user_id`).
    pub id_token: Option<String>,
    /// When it started.
    pub created_at: OffsetDateTime,
    /// Unix second of the last request.
    pub last_seen_unix: i64,
    /// Unix second of the absolute end.
    pub expires_unix: i64,
}

/// A session with its user and the user's grants (role, and the study it is limited to), as
/// every signed-in request loads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionWithUser {
    /// The session.
    pub session: Session,
    /// Its user.
    pub user: User,
    /// The user's role grants; `None`: every study.
    pub grants: Vec<(Role, Option<Uuid>)>,
}

/// The fields of a session to create.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 (hex) of the cookie token.
    pub token_hash: String,
    /// Whose session.
    pub user_id: Uuid,
    /// CSRF token.
    pub csrf_token: String,
    /// `password`, `link` or `oidc:<provider>`.
    pub auth_method: String,
    /// The IdP's ID token, for OIDC sessions, sealed (`auth::at_rest`) by the caller.
    pub id_token: Option<String>,
    /// Unix second of the absolute end.
    pub expires_unix: i64,
    /// The client's address, for the user's session list and the audit.
    pub client_addr: Option<String>,
}

/// An OIDC login between the redirect to the provider and the callback.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingOidcLogin {
    /// Provider id.
    pub provider: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub pkce_verifier: String,
    /// Local path to return to after sign-in.
    pub return_to: String,
    /// Unix second after which the callback is refused.
    pub expires_unix: i64,
}

/// A user's identity at an OIDC provider.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ExternalIdentity {
    /// Provider id.
    pub provider: String,
    /// The provider's `sub`.
    pub subject: String,
    /// The readroom user.
    pub user_id: Uuid,
}

/// A grading study.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Study {
    /// Stable id.
    pub id: Uuid,
    /// Unique short code (`DEMO`, `EYE-2026`).
    #[sqlx(try_from = "String")]
    pub code: StudyCode,
    /// Human title.
    pub title: String,
    /// The recipients new bundles of the study are encrypted to.
    #[sqlx(try_from = "String")]
    pub recipients: Recipients,
    /// When the study was created.
    pub created_at: OffsetDateTime,
}

/// Metadata of an encrypted bundle to record at ingest. Holds no PHI.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBundle {
    /// The study it belongs to.
    pub study_id: Uuid,
    /// Subject pseudonym from the manifest.
    pub subject: String,
    /// Visit pseudonym from the manifest.
    pub visit: String,
    /// Manifest format (`readroom-bundle/1`).
    pub format: String,
    /// Key of the ciphertext in the object store; unique.
    pub object_key: String,
    /// Lower-case hex SHA-256 of the ciphertext.
    pub ciphertext_sha256: String,
    /// Size of the ciphertext in bytes.
    pub ciphertext_size: u64,
    /// Size of the plaintext bundle (zip) in bytes.
    pub plaintext_size: u64,
    /// Number of files in the bundle, manifest included.
    pub file_count: u32,
    /// Number of exams in the manifest.
    pub exam_count: u32,
    /// [`Recipients::fingerprint`] of the recipients the ciphertext is encrypted to.
    pub recipients_fingerprint: String,
    /// Non-PHI summary of the exams (ids, kinds, eyes, frame counts, dimensions).
    pub summary: JsonValue,
    /// Who ingested it; `None` for the system.
    pub ingested_by: Option<Uuid>,
}

/// An encrypted exam bundle as recorded.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Bundle {
    /// Stable id.
    pub id: Uuid,
    /// The study it belongs to.
    pub study_id: Uuid,
    /// Subject pseudonym.
    pub subject: String,
    /// Visit pseudonym.
    pub visit: String,
    /// Manifest format (`readroom-bundle/1`).
    pub format: String,
    /// Key of the ciphertext in the object store.
    pub object_key: String,
    /// Lower-case hex SHA-256 of the ciphertext.
    pub ciphertext_sha256: String,
    /// Size of the ciphertext in bytes.
    #[sqlx(try_from = "i64")]
    pub ciphertext_size: u64,
    /// Size of the plaintext bundle in bytes.
    #[sqlx(try_from = "i64")]
    pub plaintext_size: u64,
    /// Number of files in the bundle.
    #[sqlx(try_from = "i64")]
    pub file_count: u32,
    /// Number of exams in the manifest.
    #[sqlx(try_from = "i64")]
    pub exam_count: u32,
    /// Fingerprint of the recipients the ciphertext is encrypted to.
    pub recipients_fingerprint: String,
    /// Non-PHI summary of the exams.
    pub summary: JsonValue,
    /// When it was ingested.
    pub ingested_at: OffsetDateTime,
    /// Who ingested it; `None` for the system.
    pub ingested_by: Option<Uuid>,
}

/// The case-specific fields to record with a bundle at ingest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewCase {
    /// The same subject's earlier bundle in the same study, for current-vs-prior layouts.
    pub prior_bundle_id: Option<Uuid>,
    /// Demo lesion truth; never shown to graders.
    pub ground_truth: Option<JsonValue>,
}

/// A unit of grading work: one bundle (and optionally a prior) in a study.
///
/// Deliberately without the ground truth, so serializing a case cannot leak it to graders;
/// read it with [`Db::case_ground_truth`](super::Db::case_ground_truth).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Case {
    /// Stable id.
    pub id: Uuid,
    /// The study it belongs to.
    pub study_id: Uuid,
    /// Label unique within the study (`C-0001`), assigned at ingest in order.
    pub label: String,
    /// The bundle graded.
    pub bundle_id: Uuid,
    /// The same subject's earlier bundle, if any.
    pub prior_bundle_id: Option<Uuid>,
    /// When the case was created.
    pub created_at: OffsetDateTime,
}

/// A case with the fields of its bundle and study a listing shows.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct CaseSummary {
    /// The case.
    #[sqlx(flatten)]
    pub case: Case,
    /// Code of the case's study.
    #[sqlx(try_from = "String")]
    pub study_code: StudyCode,
    /// Subject pseudonym of the bundle.
    pub subject: String,
    /// Visit pseudonym of the bundle.
    pub visit: String,
    /// Number of exams in the bundle.
    #[sqlx(try_from = "i64")]
    pub exam_count: u32,
    /// Non-PHI summary of the bundle's exams.
    pub summary: JsonValue,
}

/// An [`Assignment`] as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(super) struct AssignmentRow {
    id: Uuid,
    case_id: Uuid,
    user_id: Uuid,
    #[sqlx(try_from = "String")]
    role: AssignmentRole,
    assigned_at: OffsetDateTime,
    due_at: Option<OffsetDateTime>,
    #[sqlx(try_from = "String")]
    status: AssignmentStatus,
    batch_id: Option<Uuid>,
    #[sqlx(try_from = "String")]
    kind: AssignmentKind,
}

impl From<AssignmentRow> for Assignment {
    fn from(row: AssignmentRow) -> Assignment {
        Assignment {
            id: row.id,
            case_id: row.case_id,
            user_id: row.user_id,
            role: row.role,
            assigned_at: row.assigned_at,
            due_at: row.due_at,
            status: row.status,
            batch_id: row.batch_id,
            kind: row.kind,
        }
    }
}

/// One row of a user's worklist: the assignment and the case it is for.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct AssignedCase {
    /// Id of the assignment.
    pub assignment_id: Uuid,
    /// Grading or adjudicating.
    #[sqlx(try_from = "String")]
    pub role: AssignmentRole,
    /// Where it stands.
    #[sqlx(try_from = "String")]
    pub status: AssignmentStatus,
    /// When it was assigned.
    pub assigned_at: OffsetDateTime,
    /// When it is due, if a due date was set.
    pub due_at: Option<OffsetDateTime>,
    /// A first grading or a hidden repeat.
    #[sqlx(try_from = "String")]
    pub kind: AssignmentKind,
    /// The batch it was handed out in, if any.
    pub batch_id: Option<Uuid>,
    /// The case, with its bundle's listing fields.
    #[sqlx(flatten)]
    pub case: CaseSummary,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn study_codes() {
        for good in ["DEMO", "EYE-2026", "A", "0-", &"X".repeat(32)] {
            assert!(StudyCode::new(good).is_ok(), "{good}");
        }
        for bad in ["", "-A", "demo", "EYE 2026", "EYE_1", &"X".repeat(33), "ÄB"] {
            assert!(StudyCode::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn recipients_refuse_identities_and_normalize() {
        let secret = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ";
        let err = Recipients::new(["age1abc", secret]).unwrap_err();
        assert_eq!(err, InvalidRecipients::SecretKey { line: 2 });
        assert!(!err.to_string().contains("QQQQ"));
        assert_eq!(
            Recipients::new(["not a key"]),
            Err(InvalidRecipients::NotARecipient { line: 1 })
        );
        assert_eq!(
            Recipients::from_lines("\n# c\n"),
            Err(InvalidRecipients::Empty)
        );

        let recipients = Recipients::from_lines(" age1b \n\n# comment\nage1a\nage1b\n").unwrap();
        assert_eq!(recipients.as_slice(), ["age1b", "age1a"]);
        assert_eq!(recipients.to_lines(), "age1b\nage1a");
        let reordered = Recipients::new(["age1a", "age1b"]).unwrap();
        assert_eq!(recipients.fingerprint(), reordered.fingerprint());
        assert_eq!(recipients.fingerprint().len(), 64);
    }

    #[test]
    fn text_enums_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(*role));
        }
        for status in AssignmentStatus::ALL {
            assert_eq!(status.as_str().parse::<AssignmentStatus>(), Ok(*status));
        }
        assert!("root".parse::<Role>().is_err());
    }
}
