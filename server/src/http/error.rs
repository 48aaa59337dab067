//! The API's one error type and its JSON shape: `{ "error": { "code": "...", "message": "..." } }`.
//!
//! Errors a client caused carry a message that helps them. Internal errors carry a generic
//! message; the real cause is logged (inside the request's span), never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::db::DbError;

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
    /// A dependency (database, store) is unavailable.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else; the detail is logged, not sent.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<DbError> for AppError {
    fn from(err: DbError) -> Self {
        match err {
            DbError::NotFound => AppError::NotFound("not found".into()),
            DbError::Unavailable { .. } => {
                AppError::Unavailable("the database is unavailable".into())
            }
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            AppError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                "internal error".to_owned()
            }
            other => other.to_string(),
        };
        (
            status,
            Json(json!({ "error": { "code": code, "message": message } })),
        )
            .into_response()
    }
}

/// Fallback for unknown `/api/…` routes: a JSON 404, not the viewer's page.
pub async fn api_not_found() -> AppError {
    AppError::NotFound("no such API route".into())
}
