//! The API's one error type and its JSON shape: `{ "error": { "code": "...", "message": "..." } }`.
//!
//! Errors a client caused carry a message that helps them. Internal errors carry a generic
//! message; the real cause is logged (inside the request's span), never sent.

use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use crate::db::DbError;
pub use crate::grading::Declined;

/// Every error an API handler can return.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AppError {
    /// The resource does not exist (or the caller may not know that it does).
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// No (valid) session, or failed credentials: 401 with a specific code.
    #[error("{message}")]
    Unauthenticated {
        /// `unauthenticated`, `session_expired`, `invalid_credentials`, `totp_required` …
        code: &'static str,
        /// What happened.
        message: String,
    },
    /// Signed in but not allowed, or a cross-site / CSRF-less request: 403 with a code.
    #[error("{message}")]
    Forbidden {
        /// `forbidden` or `csrf`.
        code: &'static str,
        /// What was refused.
        message: String,
    },
    /// The request conflicts with existing data.
    #[error("{0}")]
    Conflict(String),
    /// A request refused for a reason the viewer words in the user's language: 400
    /// `bad_request` (or 409 `conflict`) as ever, with `error.reason` naming the reason and
    /// `error.params` its values, beside the English `message` for scripts.
    #[error("{0}")]
    Declined(Declined),
    /// The submitted values do not fit (a grade against its form): 422 `invalid_grade`, with
    /// every problem listed in `error.problems`.
    #[error("{message}")]
    Invalid {
        /// Summary.
        message: String,
        /// The problems (`[{ "field", "eye", "code", "message" }]`).
        problems: serde_json::Value,
    },
    /// Too many attempts: 429 with an optional `Retry-After`.
    #[error("{message}")]
    TooManyRequests {
        /// `locked` or `throttled`.
        code: &'static str,
        /// What to do.
        message: String,
        /// Seconds to wait.
        retry_after: Option<i64>,
    },
    /// The request body is over the limit: 413 `too_large`.
    #[error("{0}")]
    TooLarge(String),
    /// The request body did not arrive in time: 408 `body_timeout`.
    #[error("{0}")]
    RequestTimeout(String),
    /// A dependency (database, store) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// The server is answering as many requests as it takes at once (load shedding): 503
    /// `overloaded` with `Retry-After: 1`.
    #[error("the server is answering as many requests as it can; try again in a moment")]
    Overloaded,
    /// Anything else; the detail is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// 403 `forbidden` with a message.
    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::Forbidden {
            code: "forbidden",
            message: message.into(),
        }
    }

    /// 401 `unauthenticated`.
    pub fn unauthenticated() -> AppError {
        AppError::Unauthenticated {
            code: "unauthenticated",
            message: "sign in first".into(),
        }
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Unauthenticated { code, .. } => (StatusCode::UNAUTHORIZED, code),
            AppError::Forbidden { code, .. } => (StatusCode::FORBIDDEN, code),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::Declined(d) if d.conflict => (StatusCode::CONFLICT, "conflict"),
            AppError::Declined(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_grade"),
            AppError::TooManyRequests { code, .. } => (StatusCode::TOO_MANY_REQUESTS, code),
            AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            AppError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "body_timeout"),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Overloaded => (StatusCode::SERVICE_UNAVAILABLE, "overloaded"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<crate::audit::AuditError> for AppError {
    fn from(err: crate::audit::AuditError) -> AppError {
        match err {
            crate::audit::AuditError::Invalid(err) => AppError::Internal(err.to_string()),
            crate::audit::AuditError::Unavailable(err) => {
                tracing::error!(error = %err, "audit log unavailable; request refused");
                AppError::Unavailable("the audit log is unavailable; try again shortly".into())
            }
        }
    }
}

impl From<DbError> for AppError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::NotFound => AppError::NotFound("not found".into()),
            DbError::Conflict { what } => AppError::Conflict(format!("this {what} already exists")),
            DbError::Unavailable { .. } => {
                AppError::Unavailable("the database is unavailable".into())
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        AppError::Internal(format!("{err:#}"))
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            AppError::Internal(_) => "internal error".to_owned(),
            other => other.to_string(),
        };
        let mut body = json!({ "error": { "code": code, "message": message } });
        if let AppError::Invalid { problems, .. } = &self {
            body["error"]["problems"] = problems.clone();
        }
        if let AppError::Declined(declined) = &self {
            body["error"]["reason"] = json!(declined.reason);
            body["error"]["params"] = declined.params.clone();
        }
        let body = Json(body);
        match self {
            AppError::TooManyRequests {
                retry_after: Some(seconds),
                ..
            } => (status, [(RETRY_AFTER, seconds.max(1).to_string())], body).into_response(),
            AppError::Overloaded => (status, [(RETRY_AFTER, "1".to_owned())], body).into_response(),
            // The cause stays on the server: the request's trace layer logs it
            // (`layers::log_internal_errors`), the browser reads "internal error".
            AppError::Internal(detail) => {
                (status, Extension(InternalCause(detail)), body).into_response()
            }
            _ => (status, body).into_response(),
        }
    }
}

/// The cause of an internal error, carried on its response (never in its body) for the
/// request's log line.
#[derive(Debug, Clone)]
pub struct InternalCause(pub String);

/// Fallback for unknown `/api/…` routes: a JSON 404, not the viewer's page.
pub async fn api_not_found() -> AppError {
    AppError::NotFound("no such API route".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn an_internal_error_answers_a_generic_message_and_carries_its_cause_for_the_log() {
        let response = AppError::Internal("stored grade 42: not JSON".into()).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let cause = response.extensions().get::<InternalCause>().cloned();
        assert_eq!(
            cause.map(|c| c.0).as_deref(),
            Some("stored grade 42: not JSON")
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            body,
            json!({ "error": { "code": "internal", "message": "internal error" } })
        );
    }
}
