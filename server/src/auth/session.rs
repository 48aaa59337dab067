//! Session cookies and the rules of session expiry.
//!
//! The cookie carries a random token; the database row is found by the token's hash. The cookie
//! is `HttpOnly`, `SameSite=Strict`, `Path=/`, and `Secure` with the `__Host-` name prefix
//! whenever the public URL is https. Only plain-http loopback development goes without `Secure`
//! (browsers refuse Secure cookies over http), and the server refuses to start on plain http
//! anywhere else.

use axum::http::HeaderMap;
use axum::http::header::COOKIE;

use crate::db::Session;

/// Cookie name over https (the `__Host-` prefix forbids `Domain` and requires `Secure`, `Path=/`).
pub const SECURE_COOKIE: &str = "__Host-readroom_session";
/// Cookie name on plain-http loopback development servers.
pub const DEV_COOKIE: &str = "readroom_session";

/// Name of the cookie binding an OIDC sign-in to the browser that began it, over https.
pub const SECURE_OIDC_COOKIE: &str = "__Host-readroom_oidc";
/// The same on plain-http loopback development servers.
pub const DEV_OIDC_COOKIE: &str = "readroom_oidc";
/// Lifetime of the OIDC binding cookie (the login's own lifetime).
pub const OIDC_COOKIE_SECONDS: i64 = 600;

/// How the session cookie is written.
#[derive(Debug, Clone)]
pub struct CookiePolicy {
    /// Whether the cookie is `Secure` (and `__Host-` prefixed).
    pub secure: bool,
}

impl CookiePolicy {
    /// The policy for a public URL; an error for plain http on a non-loopback host.
    pub fn for_public_url(public_url: &str) -> anyhow::Result<CookiePolicy> {
        let url = url::Url::parse(public_url)
            .map_err(|err| anyhow::anyhow!("public_url {public_url:?} is not a URL: {err}"))?;
        match url.scheme() {
            "https" => Ok(CookiePolicy { secure: true }),
            "http" if is_loopback_host(&url) => Ok(CookiePolicy { secure: false }),
            "http" => anyhow::bail!(
                "public_url {public_url} is plain http on a non-loopback host: session cookies \
                 would travel unencrypted; serve over https (e.g. behind a TLS proxy) and set \
                 public_url to the https address"
            ),
            other => anyhow::bail!("public_url scheme {other:?} is not http or https"),
        }
    }

    /// The cookie's name.
    pub fn name(&self) -> &'static str {
        if self.secure {
            SECURE_COOKIE
        } else {
            DEV_COOKIE
        }
    }

    /// `Set-Cookie` value carrying `token` (a session cookie: no `Max-Age`, the server enforces
    /// expiry).
    pub fn set(&self, token: &str) -> String {
        format!("{}={token}; {}", self.name(), self.attributes())
    }

    /// `Set-Cookie` value that deletes the cookie.
    pub fn clear(&self) -> String {
        format!(
            "{}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; {}",
            self.name(),
            self.attributes()
        )
    }

    fn attributes(&self) -> &'static str {
        if self.secure {
            "Path=/; HttpOnly; Secure; SameSite=Strict"
        } else {
            "Path=/; HttpOnly; SameSite=Strict"
        }
    }

    /// The session token from the request's cookies, if any. Several cookies of that name (a
    /// cookie-tossing attempt) count as none.
    pub fn token_from(&self, headers: &HeaderMap) -> Option<String> {
        cookie_value(headers, self.name())
    }

    /// The OIDC binding cookie's name.
    pub fn oidc_name(&self) -> &'static str {
        if self.secure {
            SECURE_OIDC_COOKIE
        } else {
            DEV_OIDC_COOKIE
        }
    }

    /// `Set-Cookie` value binding an OIDC sign-in (its `state`) to this browser. `SameSite=Lax`,
    /// because the provider sends the browser back with a cross-site top-level navigation.
    pub fn set_oidc(&self, state: &str) -> String {
        format!(
            "{}={state}; Max-Age={OIDC_COOKIE_SECONDS}; {}",
            self.oidc_name(),
            self.oidc_attributes()
        )
    }

    /// `Set-Cookie` value that deletes the OIDC binding cookie.
    pub fn clear_oidc(&self) -> String {
        format!(
            "{}=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; {}",
            self.oidc_name(),
            self.oidc_attributes()
        )
    }

    fn oidc_attributes(&self) -> &'static str {
        if self.secure {
            "Path=/; HttpOnly; Secure; SameSite=Lax"
        } else {
            "Path=/; HttpOnly; SameSite=Lax"
        }
    }

    /// The OIDC binding cookie's value, if exactly one is present.
    pub fn oidc_from(&self, headers: &HeaderMap) -> Option<String> {
        cookie_value(headers, self.oidc_name())
    }
}

/// The value of cookie `name`; several cookies of that name (a cookie-tossing attempt) count
/// as none.
fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((key, value)) = pair.trim().split_once('=') else {
                continue;
            };
            if key == name {
                if found.is_some() {
                    return None;
                }
                found = Some(value.to_owned());
            }
        }
    }
    found
}

fn is_loopback_host(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Where a session stands at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Usable.
    Active,
    /// No request within the idle timeout.
    IdleExpired,
    /// Past the absolute timeout.
    AbsoluteExpired,
}

/// The state of `session` at `now_unix` with an idle timeout of `idle_seconds`.
pub fn session_state(session: &Session, now_unix: i64, idle_seconds: i64) -> SessionState {
    if now_unix >= session.expires_unix {
        SessionState::AbsoluteExpired
    } else if now_unix >= session.last_seen_unix + idle_seconds {
        SessionState::IdleExpired
    } else {
        SessionState::Active
    }
}

/// Whether to write `last_seen` for a request at `now_unix` (at most once a minute per session,
/// so reads stay reads; the idle timeout is then exact to a minute).
pub fn needs_touch(session: &Session, now_unix: i64) -> bool {
    now_unix - session.last_seen_unix >= 60
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn session(last_seen_unix: i64, expires_unix: i64) -> Session {
        Session {
            id: uuid::Uuid::nil(),
            user_id: uuid::Uuid::nil(),
            csrf_token: String::new(),
            auth_method: "password".into(),
            id_token: None,
            created_at: time::OffsetDateTime::UNIX_EPOCH,
            last_seen_unix,
            expires_unix,
        }
    }

    #[test]
    fn idle_and_absolute_timeouts() {
        let s = session(1000, 5000);
        assert_eq!(session_state(&s, 1000, 1800), SessionState::Active);
        assert_eq!(session_state(&s, 2799, 1800), SessionState::Active);
        assert_eq!(session_state(&s, 2800, 1800), SessionState::IdleExpired);
        let busy = session(4999, 5000);
        assert_eq!(
            session_state(&busy, 5000, 1800),
            SessionState::AbsoluteExpired
        );
        assert!(!needs_touch(&s, 1059));
        assert!(needs_touch(&s, 1060));
    }

    #[test]
    fn cookie_attributes_follow_the_public_url() {
        let https = CookiePolicy::for_public_url("https://readroom.example.org").unwrap();
        let set = https.set("tok");
        assert!(set.starts_with("__Host-readroom_session=tok;"));
        for attr in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(attr), "{attr}");
        }
        assert!(!set.contains("Domain"));
        let dev = CookiePolicy::for_public_url("http://127.0.0.1:8080").unwrap();
        assert!(!dev.set("tok").contains("Secure"));
        assert!(dev.set("tok").contains("HttpOnly"));
        assert!(CookiePolicy::for_public_url("http://localhost:8080").is_ok());
        let err = CookiePolicy::for_public_url("http://10.1.2.3:8080").unwrap_err();
        assert!(err.to_string().contains("https"));
        assert!(dev.clear().contains("Max-Age=0"));
    }

    #[test]
    fn token_is_read_from_cookies_and_duplicates_are_refused() {
        let policy = CookiePolicy { secure: false };
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; readroom_session=tok; b=2"),
        );
        assert_eq!(policy.token_from(&headers).as_deref(), Some("tok"));
        headers.append(COOKIE, HeaderValue::from_static("readroom_session=other"));
        assert_eq!(policy.token_from(&headers), None);
        assert_eq!(policy.token_from(&HeaderMap::new()), None);
    }
}
