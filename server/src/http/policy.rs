//! Deny by default: every API route declares a policy next to its handler, and this middleware
//! enforces it before the handler runs.
//!
//! A handler's `#[utoipa::path]` carries `extensions(("x-readroom-policy" = json!("…")))`;
//! [`PolicyTable::from_openapi`] reads them from the generated OpenAPI document, so the policy
//! is documented where clients see it and a route without one is refused (403, logged as a bug)
//! and fails the authorization matrix test.
//!
//! The middleware also refuses cross-site state-changing requests and, for signed-in routes,
//! state-changing requests without the session's CSRF token.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use readroom_domain::audit::{Action, Outcome};
use subtle::ConstantTimeEq;
use utoipa::openapi::OpenApi;

use super::AppError;
use crate::auth::{self, NoSession, SignedIn};
use crate::state::AppState;

/// The OpenAPI extension naming a route's policy.
pub const POLICY_EXTENSION: &str = "x-readroom-policy";
/// Header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who may call a route, before any resource-specific rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Anyone (sign-in, provider list, OpenAPI document). Cross-site writes are still refused.
    Public,
    /// Any signed-in user; the handler scopes data to that user.
    SignedIn,
    /// Signed in; the handler requires the study's coordinator role.
    Coordinator,
    /// Signed in; the handler requires the study's coordinator role or the auditor role
    /// (progress and agreement statistics; never images or grades of single cases).
    Statistics,
    /// Signed in; the handler requires access to the case ([`crate::access::CaseAccess`]).
    Case,
    /// Signed in with the global auditor role.
    Auditor,
    /// Signed in with the global admin role.
    Admin,
}

impl Policy {
    /// Every policy.
    pub const ALL: [Policy; 7] = [
        Policy::Public,
        Policy::SignedIn,
        Policy::Coordinator,
        Policy::Statistics,
        Policy::Case,
        Policy::Auditor,
        Policy::Admin,
    ];

    /// The name used in the OpenAPI extension.
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Public => "public",
            Policy::SignedIn => "signed-in",
            Policy::Coordinator => "coordinator",
            Policy::Statistics => "statistics",
            Policy::Case => "case",
            Policy::Auditor => "auditor",
            Policy::Admin => "admin",
        }
    }

    /// Parses a policy name.
    pub fn parse(name: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// Policies by method and route template (`/api/cases/{id}`).
#[derive(Debug, Default, Clone)]
pub struct PolicyTable {
    routes: HashMap<(Method, String), Policy>,
    /// Operations without a (valid) policy, for start-up checks and the matrix test.
    pub missing: Vec<(Method, String)>,
}

impl PolicyTable {
    /// Reads every operation's policy from the OpenAPI document.
    pub fn from_openapi(doc: &OpenApi) -> PolicyTable {
        let mut table = PolicyTable::default();
        for (path, item) in &doc.paths.paths {
            let operations = [
                (Method::GET, &item.get),
                (Method::POST, &item.post),
                (Method::PUT, &item.put),
                (Method::PATCH, &item.patch),
                (Method::DELETE, &item.delete),
                (Method::HEAD, &item.head),
                (Method::OPTIONS, &item.options),
            ];
            for (method, operation) in operations {
                let Some(operation) = operation else { continue };
                let policy = operation
                    .extensions
                    .as_ref()
                    .and_then(|ext| ext.get(POLICY_EXTENSION))
                    .and_then(|value| value.as_str())
                    .and_then(Policy::parse);
                match policy {
                    Some(policy) => {
                        table.routes.insert((method, path.clone()), policy);
                    }
                    None => table.missing.push((method, path.clone())),
                }
            }
        }
        table
    }

    /// The policy of a route, if it has one.
    pub fn get(&self, method: &Method, route: &str) -> Option<Policy> {
        self.routes
            .get(&(method.clone(), route.to_owned()))
            .copied()
    }

    /// Every route with its policy.
    pub fn iter(&self) -> impl Iterator<Item = (&Method, &str, Policy)> {
        self.routes
            .iter()
            .map(|((method, path), policy)| (method, path.as_str(), *policy))
    }
}

/// Whether a method changes state (and so needs the cross-site and CSRF checks).
pub fn is_unsafe(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Refuses a request a browser marks as cross-site, or whose `Origin` is not ours.
/// Requests without either header (scripts, curl) pass here and meet the CSRF token check.
pub fn check_same_origin(headers: &HeaderMap, origin: &str) -> Result<(), AppError> {
    let refused = || AppError::Forbidden {
        code: "csrf",
        message: "cross-site request refused".into(),
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("cross-site");
        if !matches!(site, "same-origin" | "none") {
            return Err(refused());
        }
    }
    if let Some(value) = headers.get(axum::http::header::ORIGIN)
        && value.to_str().map(|v| v != origin).unwrap_or(true)
    {
        return Err(refused());
    }
    Ok(())
}

fn check_csrf_token(headers: &HeaderMap, expected: &str) -> Result<(), AppError> {
    let given = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let matches: bool = given.as_bytes().ct_eq(expected.as_bytes()).into();
    if given.is_empty() || !matches {
        return Err(AppError::Forbidden {
            code: "csrf",
            message: format!("missing or wrong {CSRF_HEADER} header"),
        });
    }
    Ok(())
}

/// The client's address: the TCP peer (no proxy headers are trusted); `None` when the server
/// was not started with connect info (in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// The middleware: looks up the route's policy and enforces it.
pub async fn enforce(
    State((state, table)): State<(AppState, Arc<PolicyTable>)>,
    mut request: Request,
    next: Next,
) -> Response {
    match check(&state, &table, &mut request).await {
        Ok(()) => next.run(request).await,
        Err(err) => err.into_response(),
    }
}

async fn check(
    state: &AppState,
    table: &PolicyTable,
    request: &mut Request,
) -> Result<(), AppError> {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let method = request.method().clone();
    let Some(policy) = table.get(&method, &route) else {
        tracing::error!(%method, %route, "route has no access policy; refused");
        return Err(AppError::forbidden("this route has no access policy"));
    };
    let unsafe_method = is_unsafe(&method);
    if unsafe_method {
        check_same_origin(request.headers(), &state.auth.origin)?;
    }
    if policy == Policy::Public {
        return Ok(());
    }
    let token = state.auth.cookie.token_from(request.headers());
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let mut signed_in =
        match auth::resolve(&state.db, &state.auth, token.as_deref(), auth::now_unix()).await? {
            Ok(signed_in) => signed_in,
            Err(NoSession::Missing) => return Err(AppError::unauthenticated()),
            Err(NoSession::Expired) => {
                return Err(AppError::Unauthenticated {
                    code: "session_expired",
                    message: "your session has expired; sign in again".into(),
                });
            }
        };
    signed_in.client = client;
    if unsafe_method
        && let Err(err) = check_csrf_token(request.headers(), &signed_in.session.csrf_token)
    {
        audit_denial(state, &signed_in, &method, &route, "csrf").await?;
        return Err(err);
    }
    let allowed = match policy {
        Policy::Admin => signed_in.principal.is_admin(),
        Policy::Auditor => signed_in.principal.is_auditor(),
        Policy::Public
        | Policy::SignedIn
        | Policy::Coordinator
        | Policy::Statistics
        | Policy::Case => true,
    };
    if !allowed {
        tracing::info!(user_id = %signed_in.user.id, %route, "denied by route policy");
        audit_denial(state, &signed_in, &method, &route, "role").await?;
        return Err(AppError::forbidden("your roles do not allow this"));
    }
    request.extensions_mut().insert(signed_in);
    Ok(())
}

/// Records a refused request of a signed-in user (`access.denied`).
async fn audit_denial(
    state: &AppState,
    signed_in: &SignedIn,
    method: &axum::http::Method,
    route: &str,
    reason: &str,
) -> Result<(), AppError> {
    let draft = signed_in.event(
        Action::AccessDenied,
        Outcome::Denied,
        None,
        serde_json::json!({ "method": method.as_str(), "route": route, "reason": reason }),
    );
    state.audit.record(draft).await?;
    Ok(())
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<SignedIn>()
            .cloned()
            // A handler asking for a user on a public route is a bug, not the client's fault.
            .ok_or_else(|| AppError::Internal("SignedIn extracted on a public route".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cross_site_requests_are_refused() {
        let origin = "http://127.0.0.1:8080";
        let mut headers = HeaderMap::new();
        assert!(check_same_origin(&headers, origin).is_ok());
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(check_same_origin(&headers, origin).is_err());
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-site"));
        assert!(check_same_origin(&headers, origin).is_err());
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(check_same_origin(&headers, origin).is_ok());
        headers.insert("origin", HeaderValue::from_static("http://evil.example"));
        assert!(check_same_origin(&headers, origin).is_err());
        headers.insert("origin", HeaderValue::from_static("http://127.0.0.1:8080"));
        assert!(check_same_origin(&headers, origin).is_ok());
    }

    #[test]
    fn csrf_token_must_match() {
        let mut headers = HeaderMap::new();
        assert!(check_csrf_token(&headers, "abc").is_err());
        headers.insert(CSRF_HEADER, HeaderValue::from_static("abd"));
        assert!(check_csrf_token(&headers, "abc").is_err());
        headers.insert(CSRF_HEADER, HeaderValue::from_static("abc"));
        assert!(check_csrf_token(&headers, "abc").is_ok());
    }

    #[test]
    fn policy_names_round_trip() {
        for policy in Policy::ALL {
            assert_eq!(Policy::parse(policy.as_str()), Some(policy));
        }
        assert_eq!(Policy::parse("root"), None);
    }
}
