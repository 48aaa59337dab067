//! The viewer's static files, embedded in the binary (read from `viewer/` on disk in debug builds).
//!
//! `index.html` and un-hashed ES modules are served with `Cache-Control: no-cache` and an ETag, so
//! a new binary's files are picked up at once and unchanged ones cost a 304.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../viewer/"]
struct Viewer;

/// `GET /`: the viewer's entry page.
pub async fn index(headers: HeaderMap) -> Response {
    serve("index.html", &headers)
}

/// `GET /assets/{*path}`.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    serve(&format!("assets/{path}"), &headers)
}

/// Any other path: a JSON error under `/api/`, else a plain 404 page.
pub async fn not_found_page(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") || uri.path() == "/api" {
        return super::error::api_not_found().await.into_response();
    }
    tracing::debug!(path = %uri.path(), "no such page");
    (
        StatusCode::NOT_FOUND,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "404 not found\n",
    )
        .into_response()
}

fn serve(path: &str, headers: &HeaderMap) -> Response {
    let Some(file) = Viewer::get(path) else {
        return (StatusCode::NOT_FOUND, "404 not found\n").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    let matches = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag);
    if matches {
        return (StatusCode::NOT_MODIFIED, [(ETAG, etag)]).into_response();
    }
    (
        [
            (CONTENT_TYPE, file.metadata.mimetype().to_owned()),
            (CACHE_CONTROL, "no-cache".to_owned()),
            (ETAG, etag),
        ],
        file.data.into_owned(),
    )
        .into_response()
}
