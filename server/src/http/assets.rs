//! The viewer's static files, embedded in the binary (read from `viewer/` on disk in debug builds).
//!
//! A page load must not wait on a chain of round trips. `index.html` names the viewer's files by
//! a versioned path, `/assets/v/{version}/…`, where the version is a hash of every embedded file
//! ([`AssetVersion`]): in a release build those are served `immutable` for a year, so a grader's
//! browser fetches them once per release, and a new binary (new version) is fetched at once. The
//! page also lists every ES module as a `modulepreload`, so that the browser fetches the whole
//! module graph in parallel instead of discovering it import by import (six levels deep from
//! `app.js` to the stream modules: six round trips on a cold cache). `index.html` itself, the
//! un-versioned `/assets/…` paths and debug builds keep `Cache-Control: no-cache` with an ETag.
//!
//! For a browser with a session cookie the page also preloads the API answers its first render
//! waits on ([`api_preloads`]: `/api/me`, and on a case page the case and the ICE settings), so
//! that they are fetched while the modules load instead of one after another once they have
//! run. The preloads are only hints: no data is in the page, and each answer is authorised as
//! any request is.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "../viewer/"]
struct Viewer;

/// How long a browser keeps a versioned file (a year; a new release has a new version).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// The prefix of versioned asset paths, after `/assets/`.
const VERSIONED: &str = "v/";

/// The version of the embedded viewer, and `index.html` rewritten to use it.
struct AssetVersion {
    /// 16 hex digits of the SHA-256 over every embedded file's path and hash.
    version: String,
    /// `index.html` with versioned paths and a `modulepreload` for every module.
    index: String,
}

static ASSETS: LazyLock<AssetVersion> = LazyLock::new(AssetVersion::build);

impl AssetVersion {
    fn build() -> AssetVersion {
        let mut files: Vec<String> = Viewer::iter().map(|p| p.into_owned()).collect();
        files.sort();
        let mut hasher = Sha256::new();
        for path in &files {
            if let Some(file) = Viewer::get(path) {
                hasher.update(path.as_bytes());
                hasher.update(file.metadata.sha256_hash());
            }
        }
        let version = hex::encode(&hasher.finalize()[..8]);
        let html = Viewer::get("index.html")
            .map(|f| String::from_utf8_lossy(&f.data).into_owned())
            .unwrap_or_default();
        let modules: Vec<&str> = files
            .iter()
            .filter_map(|p| p.strip_prefix("assets/"))
            .filter(|p| p.ends_with(".js"))
            .collect();
        let index = versioned_index(&html, &version, &modules);
        AssetVersion { version, index }
    }
}

/// `html` with `/assets/` references under `/assets/v/{version}/` and a `modulepreload` link
/// for each of `modules` (paths under `assets/`) before the closing `</head>`.
fn versioned_index(html: &str, version: &str, modules: &[&str]) -> String {
    let prefix = format!("/assets/{VERSIONED}{version}/");
    let mut out = html.replace("\"/assets/", &format!("\"{prefix}"));
    let preloads: String = modules
        .iter()
        .map(|module| format!("  <link rel=\"modulepreload\" href=\"{prefix}{module}\">\n"))
        .collect();
    if let Some(at) = out.find("</head>") {
        out.insert_str(at, &preloads);
    }
    out
}

/// The API answers the first render of the page at `path` waits on, for a signed-in browser:
/// who is signed in, and on a case page (`/cases/{id}`, an id of letters, digits and dashes)
/// the case and the ICE settings of its stream.
fn api_preloads(path: &str) -> Vec<String> {
    let mut out = vec!["/api/me".to_owned()];
    if let Some(id) = path.strip_prefix("/cases/")
        && !id.is_empty()
        && id.len() <= 100
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        out.push(format!("/api/cases/{id}"));
        out.push("/api/stream/config".to_owned());
    }
    out
}

/// `html` with a `preload` link for each of `urls` (fetched as the viewer's `fetch` calls are,
/// with the session cookie) before the closing `</head>`.
fn with_api_preloads(html: &str, urls: &[String]) -> String {
    let links: String = urls
        .iter()
        .map(|url| format!("  <link rel=\"preload\" href=\"{url}\" as=\"fetch\" crossorigin>\n"))
        .collect();
    match html.find("</head>") {
        Some(at) => format!("{}{links}{}", &html[..at], &html[at..]),
        None => html.to_owned(),
    }
}

/// `GET /` (and the viewer's other page paths): the viewer's entry page.
pub async fn index(uri: Uri, headers: HeaderMap) -> Response {
    let signed_in = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|cookies| cookies.contains("readroom_session="));
    let page = if signed_in {
        with_api_preloads(&ASSETS.index, &api_preloads(uri.path()))
    } else {
        ASSETS.index.clone()
    };
    let etag = format!(
        "\"{}\"",
        hex::encode(&Sha256::digest(page.as_bytes())[..16])
    );
    if if_none_match(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(ETAG, etag)]).into_response();
    }
    (
        [
            (CONTENT_TYPE, "text/html; charset=utf-8".to_owned()),
            (CACHE_CONTROL, "no-cache".to_owned()),
            (ETAG, etag),
        ],
        page,
    )
        .into_response()
}

/// `GET /assets/{*path}`: a file, under its versioned path (`v/{version}/…`) or not.
pub async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if let Some(rest) = path.strip_prefix(VERSIONED) {
        let Some((version, file)) = rest.split_once('/') else {
            return (StatusCode::NOT_FOUND, "404 not found\n").into_response();
        };
        // Only this binary's version is immutable (never in a debug build, whose files change
        // on disk); a page of an older release asking for its own version gets today's file,
        // revalidated.
        let cache = if version == ASSETS.version && !cfg!(debug_assertions) {
            IMMUTABLE
        } else {
            "no-cache"
        };
        return serve(&format!("assets/{file}"), &headers, cache);
    }
    serve(&format!("assets/{path}"), &headers, "no-cache")
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

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == etag)
}

fn serve(path: &str, headers: &HeaderMap, cache: &str) -> Response {
    let Some(file) = Viewer::get(path) else {
        return (StatusCode::NOT_FOUND, "404 not found\n").into_response();
    };
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    if if_none_match(headers, &etag) {
        return (StatusCode::NOT_MODIFIED, [(ETAG, etag)]).into_response();
    }
    (
        [
            (CONTENT_TYPE, file.metadata.mimetype().to_owned()),
            (CACHE_CONTROL, cache.to_owned()),
            (ETAG, etag),
        ],
        file.data.into_owned(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_page_preloads_its_case_and_stream_settings_and_nothing_odd_gets_in() {
        assert_eq!(api_preloads("/"), ["/api/me"]);
        assert_eq!(
            api_preloads("/cases/6f1c-AB12"),
            ["/api/me", "/api/cases/6f1c-AB12", "/api/stream/config"]
        );
        for odd in [
            "/cases/\"><script>",
            "/cases/a%20b",
            "/cases/",
            "/cases/a/b",
        ] {
            assert_eq!(api_preloads(odd), ["/api/me"], "{odd}");
        }
        let page = with_api_preloads("<head>\n</head>", &api_preloads("/cases/c1"));
        assert!(
            page.contains(
                "<link rel=\"preload\" href=\"/api/cases/c1\" as=\"fetch\" crossorigin>\n"
            ) && page.ends_with("crossorigin>\n</head>"),
            "{page}"
        );
    }

    #[test]
    fn the_index_names_versioned_files_and_preloads_every_module() {
        let html = "<head>\n  <link rel=\"stylesheet\" href=\"/assets/app.css\">\n  <script type=\"module\" src=\"/assets/app.js\"></script>\n</head><body><a href=\"/\">x</a></body>";
        let out = versioned_index(html, "abc123", &["app.js", "stream/viewer.js"]);
        assert!(out.contains("href=\"/assets/v/abc123/app.css\""), "{out}");
        assert!(out.contains("src=\"/assets/v/abc123/app.js\""), "{out}");
        assert!(
            out.contains(
                "<link rel=\"modulepreload\" href=\"/assets/v/abc123/stream/viewer.js\">\n</head>"
            ),
            "{out}"
        );
        assert!(out.contains("<a href=\"/\">"), "other links stay: {out}");
        assert!(!out.contains("\"/assets/app"), "{out}");
    }

    #[test]
    fn the_embedded_index_preloads_the_stream_modules_under_one_version() {
        let assets = AssetVersion::build();
        let html = assets.index.clone();
        assert_eq!(assets.version.len(), 16);
        let prefix = format!("/assets/v/{}/", assets.version);
        for module in [
            "app.js",
            "router.js",
            "pages/case.js",
            "stream/viewer.js",
            "stream/connection.js",
        ] {
            assert!(
                html.contains(&format!("rel=\"modulepreload\" href=\"{prefix}{module}\"")),
                "{module} in {html}"
            );
        }
    }
}
