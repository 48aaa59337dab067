//! [`DbError`]: what callers of the database layer can tell apart, and nothing more.

use std::error::Error as StdError;

use sqlx::error::ErrorKind;

/// A boxed error from below the database layer.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a database call failed.
///
/// Handlers match on meaning: [`DbError::NotFound`] is a 404, [`DbError::Conflict`] a 409,
/// [`DbError::Unavailable`] a 503 and [`DbError::Other`] a 500 with a generic message.
/// No variant's message contains a password or other connection-string secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DbError {
    /// The row asked for does not exist, or a row the change refers to (a foreign key) does not.
    #[error("not found")]
    NotFound,
    /// A uniqueness rule refused the change (duplicate username, study code, bundle ...).
    #[error("already exists: {what}")]
    Conflict {
        /// What is duplicated, in words (`username`, `study code`, `bundle object key` ...).
        what: &'static str,
    },
    /// The database cannot be reached (connect failure, lost connection, pool exhausted or closed).
    #[error("database unavailable: {detail}")]
    Unavailable {
        /// What went wrong, with any password redacted.
        detail: String,
    },
    /// Anything else: a bug, a schema mismatch, a failed migration.
    #[error("database error: {0}")]
    Other(BoxError),
}

/// Unique constraints and what a duplicate means, for [`DbError::Conflict`]:
/// (PostgreSQL constraint or index name, SQLite's description after
/// `UNIQUE constraint failed: `, meaning).
const UNIQUE_CONSTRAINTS: &[(&str, &str, &str)] = &[
    ("users_username_key", "users.username", "username"),
    ("studies_code_key", "studies.code", "study code"),
    (
        "role_grants_scope_key",
        "index 'role_grants_scope_key'",
        "role grant",
    ),
    (
        "bundles_object_key_key",
        "bundles.object_key",
        "bundle object key",
    ),
    (
        "bundles_study_subject_visit_key",
        "bundles.study_id, bundles.subject, bundles.visit",
        "bundle for this study, subject and visit",
    ),
    (
        "cases_study_label_key",
        "cases.study_id, cases.label",
        "case label",
    ),
    (
        "cases_bundle_key",
        "cases.bundle_id",
        "case for this bundle",
    ),
    (
        "sessions_token_hash_key",
        "sessions.token_hash",
        "session token",
    ),
    (
        "signin_links_token_hash_key",
        "signin_links.token_hash",
        "sign-in link token",
    ),
    (
        "external_identities_pkey",
        "external_identities.provider, external_identities.subject",
        "external identity",
    ),
    (
        "assignments_case_user_role_key",
        "assignments.case_id, assignments.user_id, assignments.role, assignments.kind",
        "assignment",
    ),
    (
        "study_forms_study_version_key",
        "study_forms.study_id, study_forms.version",
        "form version",
    ),
    (
        "batches_study_name_key",
        "batches.study_id, batches.name",
        "batch name",
    ),
    (
        "grades_assignment_version_key",
        "grades.assignment_id, grades.version",
        "grade version",
    ),
    (
        "adjudications_case_round_key",
        "adjudications.case_id, adjudications.round",
        "adjudication round",
    ),
    (
        "adjudications_one_open_key",
        "adjudications.case_id",
        "open adjudication round",
    ),
    (
        "adjudications_case_grades_key",
        "adjudications.case_id, adjudications.grade_ids",
        "adjudication round for these grades",
    ),
];

fn conflict_what(error: &dyn sqlx::error::DatabaseError) -> &'static str {
    let sqlite_key = error
        .message()
        .strip_prefix("UNIQUE constraint failed: ")
        .unwrap_or_default();
    let constraint = error.constraint().unwrap_or_default();
    UNIQUE_CONSTRAINTS
        .iter()
        .find(|(pg, sqlite, _)| *pg == constraint || *sqlite == sqlite_key)
        .map_or("record", |(_, _, what)| what)
}

impl From<sqlx::Error> for DbError {
    fn from(error: sqlx::Error) -> DbError {
        match error {
            sqlx::Error::RowNotFound => DbError::NotFound,
            sqlx::Error::Database(db_error) => match db_error.kind() {
                ErrorKind::UniqueViolation => DbError::Conflict {
                    what: conflict_what(db_error.as_ref()),
                },
                ErrorKind::ForeignKeyViolation => DbError::NotFound,
                _ => DbError::Other(Box::new(sqlx::Error::Database(db_error))),
            },
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed => DbError::Unavailable {
                detail: error.to_string(),
            },
            other => DbError::Other(Box::new(other)),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for DbError {
    fn from(error: sqlx::migrate::MigrateError) -> DbError {
        match error {
            sqlx::migrate::MigrateError::Execute(inner) => match DbError::from(inner) {
                unavailable @ DbError::Unavailable { .. } => unavailable,
                other => DbError::Other(format!("migration failed: {other}").into()),
            },
            other => DbError::Other(Box::new(other)),
        }
    }
}

/// Returns `url` with its password (in the user info or a `password=` query parameter) replaced
/// by `***`, for messages and `Debug`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((user_info, host)) => match user_info.split_once(':') {
            Some((user, _password)) => format!("{user}:***@{host}"),
            None => authority.to_owned(),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => format!("{key}=***"),
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_owned(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// The secrets in `url` (user-info password, `password=` parameter), percent-decoded and raw,
/// so they can be scrubbed from driver messages.
pub(crate) fn url_secrets(url: &str) -> Vec<String> {
    let mut secrets = Vec::new();
    let Some((_, rest)) = url.split_once("://") else {
        return secrets;
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    if let Some((user_info, _)) = authority.rsplit_once('@')
        && let Some((_, password)) = user_info.split_once(':')
    {
        secrets.push(password.to_owned());
    }
    if let Some((_, query)) = tail.split_once('?') {
        for pair in query.split('&') {
            if let Some((key, value)) = pair.split_once('=')
                && key.eq_ignore_ascii_case("password")
            {
                secrets.push(value.to_owned());
            }
        }
    }
    let decoded: Vec<String> = secrets.iter().map(|s| percent_decode(s)).collect();
    secrets.extend(decoded);
    secrets.retain(|secret| !secret.is_empty());
    secrets
}

/// Replaces every occurrence of the URL's secrets in `text` with `***`.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    let mut text = text.to_owned();
    for secret in url_secrets(url) {
        text = text.replace(&secret, "***");
    }
    text
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut idx = 0;
    while idx < bytes.len() {
        let hex_pair = bytes
            .get(idx + 1..idx + 3)
            .and_then(|pair| std::str::from_utf8(pair).ok())
            .and_then(|pair| u8::from_str_radix(pair, 16).ok());
        match (bytes[idx], hex_pair) {
            (b'%', Some(byte)) => {
                out.push(byte);
                idx += 3;
            }
            (byte, _) => {
                out.push(byte);
                idx += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://app:s3cr%40t@db.example:5432/readroom?sslmode=require"),
            "postgres://app:***@db.example:5432/readroom?sslmode=require"
        );
        assert_eq!(
            redact_url("postgres://app@db/readroom?password=hunter2&sslmode=disable"),
            "postgres://app@db/readroom?password=***&sslmode=disable"
        );
        assert_eq!(
            redact_url("sqlite:///data/readroom.db"),
            "sqlite:///data/readroom.db"
        );
        assert_eq!(
            scrub(
                "failed for s3cr@t and s3cr%40t",
                "postgres://u:s3cr%40t@h/d"
            ),
            "failed for *** and ***"
        );
    }
}
