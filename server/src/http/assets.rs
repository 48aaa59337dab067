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
//! For a signed-in browser the page carries who is signed in (the `GET /api/me` answer, as JSON
//! in a `<script type="application/json">` the viewer reads once: [`with_signed_in`]), so that
//! the first render does not wait on that round trip; such a page is per user and is served
//! `no-store`. It also preloads the API answers the first render of a case page waits on
//! ([`api_preloads`]: the case and the ICE settings), so that they are fetched while the modules
//! load instead of one after another once they have run. The preloads are only hints: each
//! answer is authorised as any request is.

use std::sync::LazyLock;

use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

use crate::auth;
use crate::state::AppState;

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
        if cfg!(feature = "test-hooks") {
            out.insert_str(at, TEST_HOOKS_META);
        }
    }
    out
}

/// What marks the page of a test build, where the viewer exposes `window.readroomViewer` to the
/// browser tests (`viewer/assets/stream/viewer.js`).
const TEST_HOOKS_META: &str = "  <meta name=\"readroom-test-hooks\" content=\"on\">\n";

/// The case of a case page (`/cases/{id}`, an id of letters, digits and dashes, at most 100).
fn case_page(path: &str) -> Option<&str> {
    path.strip_prefix("/cases/").filter(|id| {
        !id.is_empty()
            && id.len() <= 100
            && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// The API answers the first render of the page at `path` waits on, for a signed-in browser: on
/// a case page, the case.
fn api_preloads(path: &str) -> Vec<String> {
    case_page(path)
        .map(|id| format!("/api/cases/{id}"))
        .into_iter()
        .collect()
}

/// The id of the element carrying the signed-in user (read by `viewer/assets/session.js`).
const ME_ELEMENT: &str = "readroom-me";
/// The id of the element carrying a case page's ICE settings (read by
/// `viewer/assets/stream/connection.js`).
const STREAM_CONFIG_ELEMENT: &str = "readroom-stream-config";

/// `html` with, before the closing `</head>`, each of `embedded` as a JSON element of that id
/// (with `<`, `>` and `&` escaped so that no value can end the element) and a `preload` link for
/// each of `urls` (fetched as the viewer's `fetch` calls are, with the session cookie).
fn with_signed_in(html: &str, embedded: &[(&str, serde_json::Value)], urls: &[String]) -> String {
    let mut head = String::new();
    for (id, value) in embedded {
        let json = value
            .to_string()
            .replace('<', "\\u003c")
            .replace('>', "\\u003e")
            .replace('&', "\\u0026");
        head.push_str(&format!(
            "  <script type=\"application/json\" id=\"{id}\">{json}</script>\n"
        ));
    }
    for url in urls {
        head.push_str(&format!(
            "  <link rel=\"preload\" href=\"{url}\" as=\"fetch\" crossorigin>\n"
        ));
    }
    match html.find("</head>") {
        Some(at) => format!("{}{head}{}", &html[..at], &html[at..]),
        None => html.to_owned(),
    }
}

/// What a signed-in user's entry page at `path` carries, as the API would answer it: who is
/// signed in (`GET /api/me`) and, on a case page, the ICE settings (`GET /api/stream/config`).
/// Empty without a valid session (the viewer then asks `/api/me` itself and is sent to sign
/// in). Resolving the session counts as activity, as any signed-in request does.
async fn signed_in_page_data(
    state: &AppState,
    headers: &HeaderMap,
    path: &str,
) -> Vec<(&'static str, serde_json::Value)> {
    let Some(token) = state.auth.cookie.token_from(headers) else {
        return Vec::new();
    };
    let signed_in = match auth::resolve(&state.db, &state.auth, Some(&token), auth::now_unix())
        .await
    {
        Ok(Ok(signed_in)) => signed_in,
        Ok(Err(_)) => return Vec::new(),
        Err(err) => {
            tracing::warn!(error = %err, "entry page: session lookup failed; served without the user");
            return Vec::new();
        }
    };
    let me = match super::me::me_view(state, &signed_in).await {
        Ok(me) => me,
        Err(err) => {
            tracing::warn!(error = %err, "entry page: user view failed; served without the user");
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    if let Ok(me) = serde_json::to_value(me) {
        out.push((ME_ELEMENT, me));
    }
    if case_page(path).is_some() {
        // Left to the viewer's own request if it fails here (that request reports the error).
        if let Ok(config) = super::stream::stream_config_view(state, &signed_in).await
            && let Ok(config) = serde_json::to_value(config)
        {
            out.push((STREAM_CONFIG_ELEMENT, config));
        }
    }
    out
}

/// `GET /` (and the viewer's other page paths): the viewer's entry page.
pub async fn index(State(state): State<AppState>, uri: Uri, headers: HeaderMap) -> Response {
    let embedded = signed_in_page_data(&state, &headers, uri.path()).await;
    if !embedded.is_empty() {
        let page = with_signed_in(&ASSETS.index, &embedded, &api_preloads(uri.path()));
        return (
            [
                (CONTENT_TYPE, "text/html; charset=utf-8"),
                (CACHE_CONTROL, "no-store"),
            ],
            page,
        )
            .into_response();
    }
    let page = &ASSETS.index;
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
        page.clone(),
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
        assert!(api_preloads("/").is_empty());
        assert_eq!(api_preloads("/cases/6f1c-AB12"), ["/api/cases/6f1c-AB12"]);
        for odd in [
            "/cases/\"><script>",
            "/cases/a%20b",
            "/cases/",
            "/cases/a/b",
        ] {
            assert!(api_preloads(odd).is_empty(), "{odd}");
        }
        let me = serde_json::json!({ "id": "u1" });
        let page = with_signed_in(
            "<head>\n</head>",
            &[(ME_ELEMENT, me)],
            &api_preloads("/cases/c1"),
        );
        assert!(
            page.contains(
                "<link rel=\"preload\" href=\"/api/cases/c1\" as=\"fetch\" crossorigin>\n"
            ) && page.ends_with("crossorigin>\n</head>"),
            "{page}"
        );
    }

    #[test]
    fn no_value_of_the_signed_in_user_can_end_its_element() {
        let name = "</script><script>alert(1)</script> & <!-- x";
        let me = serde_json::json!({ "id": "u1", "display_name": name });
        let page = with_signed_in("<head>\n</head><body></body>", &[(ME_ELEMENT, me)], &[]);
        let open = format!("<script type=\"application/json\" id=\"{ME_ELEMENT}\">");
        let body = &page[page.find(&open).expect("the element") + open.len()..];
        let json = &body[..body.find("</script>").expect("its end")];
        assert!(
            !json.contains('<') && !json.contains('>') && !json.contains('&'),
            "{json}"
        );
        let back: serde_json::Value = serde_json::from_str(json).expect("JSON");
        assert_eq!(back["display_name"], name);
        assert_eq!(page.matches("</script>").count(), 1, "{page}");
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
    fn every_figure_a_form_may_name_is_drawn_and_captioned() {
        let i18n = Viewer::get("assets/i18n.js").expect("the message catalogue");
        let i18n = String::from_utf8_lossy(&i18n.data);
        for name in readroom_domain::grading::FIGURES {
            let path = format!("assets/figures/{name}.svg");
            let svg = Viewer::get(&path).unwrap_or_else(|| panic!("{path} is not embedded"));
            assert_eq!(svg.metadata.mimetype(), "image/svg+xml", "{path}");
            // English and Korean captions.
            let key = format!("\"figure.{name}\":");
            assert_eq!(i18n.matches(&key).count(), 2, "captions of {name}");
        }
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
